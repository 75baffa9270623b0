"""``jax.scipy.stats.wrapcauchy``: the wrapped Cauchy distribution on ``[0, 2 pi]`` with shape ``c``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf"]


def logpdf(x: Any, c: Any) -> Any:
    """Log of the density ``(1 - c^2) / (2 pi (1 + c^2 - 2 c cos x))`` (NaN unless
    0 < c < 1, ``-inf`` outside [0, 2 pi])."""
    x, c = promote_args_inexact("wrapcauchy.logpdf", x, c)
    value = jnp.log(1 - c * c) - jnp.log(2 * np.pi) - jnp.log(1 + c * c - 2 * c * jnp.cos(x))
    inside = jnp.where((x >= 0) & (x <= np.pi * 2), value, -np.inf)
    return jnp.where((c > 0) & (c < 1), inside, np.nan)


def pdf(x: Any, c: Any) -> Any:
    """The wrapped Cauchy density."""
    return lax.exp(logpdf(x, c))
