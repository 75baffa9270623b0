"""``jax.scipy.stats.multinomial``: the multinomial distribution of ``n`` trials over categories with probabilities ``p``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax import dtypes
from tinyjax.numpy._util import promote_args
from tinyjax.scipy.special import gammaln, xlogy

__all__ = ["logpmf", "pmf"]


def logpmf(x: Any, n: Any, p: Any) -> Any:
    """Log of ``n! prod p_i**x_i / x_i!`` over the last axis (``-inf`` unless the
    integer counts ``x`` sum to ``n``)."""
    (p,) = promote_args_inexact("multinomial.logpmf", p)
    x, n = promote_args("multinomial.logpmf", x, n)
    if not dtypes.is_int(x.dtype):
        raise ValueError(f"x and n must be of integer type; got x.dtype={x.dtype}, "
                         f"n.dtype={n.dtype}")
    x, n = x.astype(p.dtype), n.astype(p.dtype)
    log_probs = gammaln(n + 1) + jnp.sum(xlogy(x, p) - gammaln(x + 1), axis=-1)
    return jnp.where(jnp.sum(x) == n, log_probs, -np.inf)


def pmf(x: Any, n: Any, p: Any) -> Any:
    """The probability mass function."""
    return lax.exp(logpmf(x, n, p))
