"""``jax.scipy.stats.bernoulli``: the Bernoulli distribution with success probability ``p``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.scipy.special import xlog1py, xlogy

__all__ = ["cdf", "logpmf", "pmf", "ppf"]


def logpmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """Log of ``p`` at 1, ``1 - p`` at 0 (``-inf`` elsewhere)."""
    k, p, loc = promote_args_inexact("bernoulli.logpmf", k, p, loc)
    x = k - loc
    log_probs = xlogy(x, p) + xlog1py(1 - x, -p)
    return jnp.where((x < 0) | (x > 1), -np.inf, log_probs)


def pmf(k: Any, p: Any, loc: Any = 0) -> Any:
    """The probability mass function."""
    return jnp.exp(logpmf(k, p, loc))


def cdf(k: Any, p: Any) -> Any:
    """The distribution function: 0 below 0, ``1 - p`` on [0, 1), 1 from 1 (NaN for an
    invalid ``p``)."""
    k, p = promote_args_inexact("bernoulli.cdf", k, p)
    invalid = jnp.isnan(k) | jnp.isnan(p) | (p < 0) | (p > 1)
    value = jnp.where(k < 0, 0.0, jnp.where(k < 1, 1 - p, 1.0))
    return jnp.where(invalid, np.nan, value).astype(k.dtype)


def ppf(q: Any, p: Any) -> Any:
    """The quantile function: 0 for ``q <= 1 - p``, else 1 (NaN for invalid input)."""
    q, p = promote_args_inexact("bernoulli.ppf", q, p)
    invalid = jnp.isnan(q) | jnp.isnan(p) | (p < 0) | (p > 1) | (q < 0) | (q > 1)
    return jnp.where(invalid, np.nan, jnp.where(q <= 1 - p, 0.0, 1.0)).astype(q.dtype)
