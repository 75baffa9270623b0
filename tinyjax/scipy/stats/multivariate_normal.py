"""``jax.scipy.stats.multivariate_normal``: the multivariate normal distribution."""
from __future__ import annotations

from typing import Any

from functools import partial

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
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
    factor = lax.linalg.cholesky(cov)
    y = jnp.vectorize(partial(lax.linalg.triangular_solve, lower=True, transpose_a=True),
                      signature="(n,n),(n)->(n)")(factor, x - mean)
    log_det = jnp.sum(jnp.log(jnp.diagonal(factor, axis1=-2, axis2=-1)), axis=-1)
    return -1 / 2 * jnp.sum(y * y, axis=-1) - n / 2 * np.log(2 * np.pi) - log_det


def pdf(x: Any, mean: Any, cov: Any) -> Any:
    """The multivariate normal density."""
    return lax.exp(logpdf(x, mean, cov))
