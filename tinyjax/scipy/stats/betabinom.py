"""``jax.scipy.stats.betabinom``: the beta-binomial distribution."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.scipy.special import betaln

__all__ = ["logpmf", "pmf"]


def logpmf(k: Any, n: Any, a: Any, b: Any, loc: Any = 0) -> Any:
    """Log of ``C(n, y) B(y + a, n - y + b) / B(a, b)``, ``y = floor(k) - loc``
    (``-inf`` outside 0..n, NaN for invalid parameters)."""
    k, n, a, b, loc = promote_args_inexact("betabinom.logpmf", k, n, a, b, loc)
    y = lax.floor(k) - loc
    log_comb = -(lax.log1p(n) + betaln(n - y + 1, y + 1))
    log_probs = log_comb + (betaln(y + a, n - y + b) - betaln(a, b))
    log_probs = jnp.where((y == 0) & (n == 0), 0.0, log_probs)
    log_probs = jnp.where((y < -loc) | (y > n) | (y + a <= 0), -np.inf, log_probs)
    return jnp.where((n < 0) | (a <= 0) | (b <= 0), np.nan, log_probs)


def pmf(k: Any, n: Any, a: Any, b: Any, loc: Any = 0) -> Any:
    """The probability mass function."""
    return lax.exp(logpmf(k, n, a, b, loc))
