"""The Hurwitz zeta function and the Bernoulli numbers."""
from __future__ import annotations

import functools
import math
import operator
from fractions import Fraction
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.scipy.special._gamma import _real
from tinyjax.api import jvp
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["bernoulli", "zeta"]


@functools.lru_cache(maxsize=None)
def _bernoulli_exact(n: int) -> tuple[Fraction, ...]:
    """B_0..B_n exactly (B_1 = -1/2), from sum_{k<=m} C(m+1, k) B_k = 0."""
    b = [Fraction(1)]
    for m in range(1, n + 1):
        b.append(-sum(math.comb(m + 1, k) * b[k] for k in range(m)) / (m + 1))
    return tuple(b)


def bernoulli(n: int) -> Any:
    """The Bernoulli numbers from ``B_0`` to ``B_n`` (with ``B_1 = -1/2``), as a float array."""
    n = operator.index(n)
    if n < 0:
        raise ValueError("n must be a non-negative integer.")
    return jnp.asarray(np.array([float(b) for b in _bernoulli_exact(n)]))


def _riemann_not_available() -> None:
    raise NotImplementedError("Riemann zeta function not implemented; pass q != None to "
                              "compute the Hurwitz Zeta function.")


@custom_jvp
def zeta(x: Any, q: Any = None) -> Any:
    """The Hurwitz zeta function ``sum_n (n + q)^-x`` (``q`` is required, as in JAX)."""
    if q is None:
        _riemann_not_available()
    x, q = _real("zeta", x, q)
    return lax.zeta(x, q)


def _zeta_series(x: Any, q: Any = None) -> Any:
    """zeta(x, q) by its Euler-Maclaurin form (Johansson 2015, eq. 5) with N = M = 8
    terms (float32) or 16 (float64), written in differentiable operations: the
    derivatives of ``zeta`` are the derivatives of this sum."""
    if q is None:
        _riemann_not_available()
    s, a = _real("zeta", x, q)
    n = 8 if a.dtype == np.float32 else 16
    b = _bernoulli_exact(2 * n)
    total = sum((a + k) ** -s for k in range(n))
    w = a + n
    total = total + w ** (1 - s) / (s - 1)
    tail = jnp.full_like(w, 0.5)
    rising_over_w = jnp.ones_like(w)          # s (s+1) ... (s+2j) / w^(2j+1)
    for j in range(n):
        rising_over_w = rising_over_w * (s + 2 * j) / w
        coef = float(b[2 * j + 2] / math.factorial(2 * j + 2))
        tail = tail + jnp.clip(rising_over_w, max=float(jnp.finfo(w.dtype).max)) * coef
        rising_over_w = rising_over_w * (s + 2 * j + 1) / w
    return total + w ** -s * tail


zeta.defjvp(lambda primals, tangents: jvp(_zeta_series, primals, tangents))
