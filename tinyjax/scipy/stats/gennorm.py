"""``jax.scipy.stats.gennorm``: the generalized normal distribution with shape ``beta``."""
from __future__ import annotations

from typing import Any

from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["cdf", "logpdf", "pdf"]


def logpdf(x: Any, beta: Any) -> Any:
    """Log of the density ``beta / (2 Gamma(1/beta)) exp(-|x| ** beta)``."""
    x, beta = promote_args_inexact("gennorm.logpdf", x, beta)
    return lax.log(0.5 * beta) - lax.lgamma(1 / beta) - lax.abs(x) ** beta


def pdf(x: Any, beta: Any) -> Any:
    """The generalized normal density."""
    return lax.exp(logpdf(x, beta))


def cdf(x: Any, beta: Any) -> Any:
    """The distribution function ``(1 + sign(x) P(1/beta, |x| ** beta)) / 2``."""
    x, beta = promote_args_inexact("gennorm.cdf", x, beta)
    return 0.5 * (1 + lax.sign(x) * lax.igamma(1 / beta, lax.abs(x) ** beta))
