"""``jax.scipy.stats.expon``: the exponential distribution on ``[loc, inf)`` with scale ``scale``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["cdf", "logcdf", "logpdf", "logsf", "pdf", "ppf", "sf"]


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the exponential density (``-inf`` below ``loc``)."""
    x, loc, scale = promote_args_inexact("expon.logpdf", x, loc, scale)
    log_probs = -((x - loc) / scale + lax.log(scale))
    return jnp.where(x < loc, -np.inf, log_probs)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The exponential density."""
    return lax.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The distribution function ``1 - exp(-(x - loc) / scale)``."""
    x, loc, scale = promote_args_inexact("expon.cdf", x, loc, scale)
    neg_scaled = (loc - x) / scale
    return jnp.where(x < loc, jnp.zeros_like(neg_scaled), -lax.expm1(neg_scaled))


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the survival function."""
    x, loc, scale = promote_args_inexact("expon.logsf", x, loc, scale)
    neg_scaled = (loc - x) / scale
    return jnp.where(x < loc, jnp.zeros_like(neg_scaled), neg_scaled)


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The survival function."""
    return lax.exp(logsf(x, loc, scale))


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the distribution function."""
    return lax.log1p(-sf(x, loc, scale))


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile function ``loc - scale * log1p(-q)`` (NaN outside [0, 1])."""
    q, loc, scale = promote_args_inexact("expon.ppf", q, loc, scale)
    return jnp.where(jnp.isnan(q) | (q < 0) | (q > 1), np.nan, loc - scale * lax.log1p(-q))
