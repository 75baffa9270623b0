"""``jax.scipy.stats.t``: Student's t distribution with ``df`` degrees of freedom."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf"]


def logpdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Log of Student's t density."""
    x, df, loc, scale = promote_args_inexact("t.logpdf", x, df, loc, scale)
    z = (x - loc) / scale
    half_df = df / 2
    half_df_plus_half = half_df + 0.5
    normalizer = (lax.lgamma(half_df) + lax.log(scale * scale * np.pi * df) / 2
                  - lax.lgamma(half_df_plus_half))
    return -(normalizer + half_df_plus_half * lax.log1p(z * z / df))


def pdf(x: Any, df: Any, loc: Any = 0, scale: Any = 1) -> Any:
    """Student's t density."""
    return lax.exp(logpdf(x, df, loc, scale))
