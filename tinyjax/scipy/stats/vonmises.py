"""``jax.scipy.stats.vonmises``: the von Mises distribution on the circle with concentration ``kappa``."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["logpdf", "pdf"]


def logpdf(x: Any, kappa: Any) -> Any:
    """Log of the density ``exp(kappa cos x) / (2 pi I0(kappa))`` (NaN for kappa <= 0)."""
    x, kappa = promote_args_inexact("vonmises.logpdf", x, kappa)
    value = kappa * (jnp.cos(x) - 1) - jnp.log(2 * np.pi * lax.bessel_i0e(kappa))
    return jnp.where(kappa > 0, value, np.nan)


def pdf(x: Any, kappa: Any) -> Any:
    """The von Mises density."""
    return lax.exp(logpdf(x, kappa))
