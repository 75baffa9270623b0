"""``jax.scipy.stats.multivariate_normal``: the multivariate normal distribution."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.random._matrices import cholesky_lower, solve_lower
from tinyjax.scipy.stats._util import promote_dtypes_inexact

__all__ = ["logpdf", "pdf"]


def logpdf(x: Any, mean: Any, cov: Any, allow_singular: None = None) -> Any:
    """Log of the density of ``N(mean, cov)`` at ``x`` (a scalar ``cov`` is a multiple
    of the identity), through the Cholesky factor of ``cov``."""
    if allow_singular is not None:
        raise NotImplementedError("allow_singular argument of multivariate_normal.logpdf")
    x, mean, cov = promote_dtypes_inexact(x, mean, cov)
    if not mean.shape:
        return -1 / 2 * jnp.square(x - mean) / cov - 1 / 2 * (np.log(2 * np.pi) + jnp.log(cov))
    n = mean.shape[-1]
    if not cov.shape:
        y = x - mean
        return (-1 / 2 * jnp.sum(y * y, axis=-1) / cov
                - n / 2 * (np.log(2 * np.pi) + jnp.log(cov)))
    if cov.ndim < 2 or cov.shape[-2:] != (n, n):
        raise ValueError("multivariate_normal.logpdf got incompatible shapes")
    diff = x - mean
    batch = jnp.broadcast_shapes(diff.shape[:-1], cov.shape[:-2])
    factor = jnp.broadcast_to(cholesky_lower(cov), batch + (n, n))
    y = solve_lower(factor, jnp.broadcast_to(diff, batch + (n,)))
    log_det = jnp.sum(jnp.log(jnp.diagonal(factor, axis1=-2, axis2=-1)), axis=-1)
    return -1 / 2 * jnp.sum(y * y, axis=-1) - n / 2 * np.log(2 * np.pi) - log_det


def pdf(x: Any, mean: Any, cov: Any) -> Any:
    """The multivariate normal density."""
    return lax.exp(logpdf(x, mean, cov))
