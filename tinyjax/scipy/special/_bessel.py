"""Bessel functions: the modified ones of orders 0 and 1 (plain and exponentially
scaled) and ``bessel_jn`` (orders 0..v of the first kind by Miller's backward
recurrence)."""
from __future__ import annotations

import operator
from typing import Any

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.scipy.special._gamma import _real

__all__ = ["bessel_jn", "i0", "i0e", "i1", "i1e"]


def i0e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 0, ``exp(-|x|) I0(x)``."""
    (x,) = _real("i0e", x)
    return lax.bessel_i0e(x)


def i0(x: Any) -> Any:
    """The modified Bessel function of order 0."""
    (x,) = _real("i0", x)
    return lax.exp(lax.abs(x)) * lax.bessel_i0e(x)


def i1e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 1, ``exp(-|x|) I1(x)``."""
    (x,) = _real("i1e", x)
    return lax.bessel_i1e(x)


def i1(x: Any) -> Any:
    """The modified Bessel function of order 1."""
    (x,) = _real("i1", x)
    return lax.exp(lax.abs(x)) * lax.bessel_i1e(x)


def bessel_jn(z: Any, *, v: int, n_iter: int = 50) -> Any:
    """Bessel functions of the first kind of orders ``0..v`` at ``z``, stacked on a new
    leading axis (shape ``(v + 1, *z.shape)``).

    Miller's algorithm: the recurrence ``J_{k-1} = 2k/z J_k - J_{k+1}`` run downwards from
    ``k = n_iter`` with arbitrary small seeds, normalised by ``J_0 + 2 sum J_2k = 1``.
    """
    z = jnp.asarray(z)
    (z,) = _real("bessel_jn", z)
    v = operator.index(v)
    n_iter = operator.index(n_iter)

    def step(carry, k):
        f_next2, f_next, total = carry
        f = 2.0 * (k + 1.0) * f_next / z - f_next2
        total = jnp.where(jnp.fmod(k, 2.0) == 0, total + 2.0 * f, total)
        return (f_next, f, total), f

    init = (jnp.zeros_like(z), jnp.full_like(z, 1e-16), jnp.zeros_like(z))
    orders = lax.iota(z.dtype, n_iter + 1)
    (_, _, total), values = lax.scan(step, init, orders, reverse=True)
    return values[:v + 1] / (total - values[0])
