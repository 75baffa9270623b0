"""``jax.scipy.stats.gumbel_r``: the right-skewed Gumbel distribution (of maxima)."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.scipy.special import xlogy
from tinyjax.scipy.special._logsumexp import log1mexp

__all__ = ["cdf", "logcdf", "logpdf", "logsf", "pdf", "ppf", "sf"]


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the density ``exp(-(z + exp(-z))) / scale`` (NaN for scale <= 0)."""
    x, loc, scale = promote_args_inexact("gumbel_r.logpdf", x, loc, scale)
    z = (x - loc) / scale
    return jnp.where(scale > 0, xlogy(-1, scale) - (z + lax.exp(-z)), np.nan)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The density."""
    return lax.exp(logpdf(x, loc, scale))


def logcdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the distribution function ``-exp(-z)``."""
    x, loc, scale = promote_args_inexact("gumbel_r.logcdf", x, loc, scale)
    return jnp.where(scale > 0, -lax.exp(-(x - loc) / scale), np.nan)


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The distribution function ``exp(-exp(-z))``."""
    return lax.exp(logcdf(x, loc, scale))


def ppf(p: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile function ``loc - scale log(-log p)`` (NaN outside (0, 1))."""
    p, loc, scale = promote_args_inexact("gumbel_r.ppf", p, loc, scale)
    value = loc - scale * lax.log(xlogy(-1, p))
    return jnp.where((p > 0) & (p < 1), value, np.nan)


def sf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The survival function ``1 - exp(-exp(-z))``."""
    x, loc, scale = promote_args_inexact("gumbel_r.sf", x, loc, scale)
    value = 1 - lax.exp(-lax.exp((loc - x) / scale))
    return jnp.where(scale > 0, value, np.nan)


def logsf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the survival function, ``log1mexp(exp(-z))``."""
    x, loc, scale = promote_args_inexact("gumbel_r.logsf", x, loc, scale)
    return jnp.where(scale > 0, log1mexp(lax.exp((loc - x) / scale)), np.nan)
