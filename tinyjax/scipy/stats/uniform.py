"""``jax.scipy.stats.uniform``: the uniform distribution on ``[loc, loc + scale]``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["cdf", "logpdf", "pdf", "ppf"]


def logpdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of the uniform density (``-inf`` outside the interval)."""
    x, loc, scale = promote_args_inexact("uniform.logpdf", x, loc, scale)
    log_probs = -lax.log(scale)
    return jnp.where((x > loc + scale) | (x < loc), -np.inf, log_probs)


def pdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The uniform density."""
    return lax.exp(logpdf(x, loc, scale))


def cdf(x: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The distribution function: 0 below, ``(x - loc) / scale`` inside, 1 above."""
    x, loc, scale = promote_args_inexact("uniform.cdf", x, loc, scale)
    inside = jnp.where(x > loc + scale, 1.0, (x - loc) / scale)
    return jnp.where(x < loc, 0.0, inside).astype(x.dtype)


def ppf(q: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """The quantile function ``loc + scale * q`` (NaN outside [0, 1])."""
    q, loc, scale = promote_args_inexact("uniform.ppf", q, loc, scale)
    return jnp.where(jnp.isnan(q) | (q < 0) | (q > 1), np.nan, loc + scale * q)
