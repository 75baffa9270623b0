"""Spherical harmonics: ``sph_harm_y``."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.numpy._creation import concrete_value
from tinyjax.numpy._util import promote_args_inexact

__all__ = ["sph_harm_y"]


def _integer_array(name: str, x: Any) -> Any:
    x = jnp.asarray(x)
    if not dtypes.is_int(x.dtype):
        raise TypeError(f"sph_harm_y: {name} must be an integer array, got dtype "
                        f"{x.dtype.name}")
    return x


def _normalized_legendre(n: Any, am: Any, x: Any, n_max: int) -> Any:
    """The orthonormalised associated Legendre function ``P_n^am(x)`` (Condon-Shortley
    phase, the factor that makes the spherical harmonics orthonormal included), per
    element, for degrees up to ``n_max``: the diagonal ``P_k^k`` up to ``k = am``, then
    the three-term recurrence in the degree from ``am`` up to ``n`` (both stable for
    normalised functions).  Zero where ``am > n``."""
    sin = jnp.sqrt(jnp.maximum(1 - x * x, 0))
    dt = x.dtype

    def diagonal(k, p):
        factor = -jnp.sqrt(1 + 0.5 / k.astype(dt)) * sin
        return jnp.where(k <= am, p * factor, p)
    p_mm = lax.fori_loop(1, n_max + 1, diagonal,
                         jnp.full(x.shape, 0.5 / np.sqrt(np.pi), dt))

    def degree(l, carry):
        prev, cur, out = carry
        up = l > am
        lf, mf = l.astype(dt), am.astype(dt)
        # P_l = a (x P_{l-1} - b P_{l-2}); b = 0 at l = am + 1 (no P_{l-2} term)
        a = jnp.sqrt(jnp.where(up, (4 * lf * lf - 1) / jnp.where(up, lf * lf - mf * mf, 1),
                               0))
        b = jnp.sqrt(jnp.where(up, ((lf - 1) ** 2 - mf * mf) / (4 * (lf - 1) ** 2 - 1), 0))
        new = a * (x * cur - b * prev)
        prev, cur = jnp.where(up, cur, prev), jnp.where(up, new, cur)
        out = jnp.where(l == n, jnp.where(l >= am, cur, 0), out)
        return prev, cur, out
    zeros = jnp.zeros(x.shape, dt)
    return lax.fori_loop(0, n_max + 1, degree, (zeros, p_mm, zeros))[2]


def sph_harm_y(n: Any, m: Any, theta: Any, phi: Any, diff_n: int | None = None,
               n_max: int | None = None) -> Any:
    """The spherical harmonic ``Y_n^m(theta, phi)`` of degree ``n`` and order ``m`` at
    colatitude ``theta`` and longitude ``phi`` (complex): the orthonormalised associated
    Legendre function of ``cos(theta)`` times ``exp(i m phi)`` (scipy's convention).
    The arguments broadcast together.  ``n_max`` (JAX's extra argument, the largest
    degree; required under ``jit``) bounds the recurrences: degrees above it are clipped
    to it, as in JAX.  ``|m| > n`` gives 0; ``diff_n`` is not supported (as in JAX)."""
    if diff_n is not None:
        raise NotImplementedError(
            "The 'diff_n' argument to jax.scipy.special.sph_harm_y is not supported.")
    n, m = _integer_array("n", n), _integer_array("m", m)
    theta, phi = promote_args_inexact("sph_harm_y", theta, phi)
    if n_max is None:
        n_max = np.max(concrete_value(n, "n_max of jax.scipy.special.sph_harm_y (pass "
                                         "n_max, the largest degree, under transformations)"))
    n_max = operator.index(n_max)
    shape = jnp.broadcast_shapes(n.shape, m.shape, theta.shape, phi.shape)
    n, m, theta, phi = (jnp.broadcast_to(v, shape) for v in (n, m, theta, phi))
    am = jnp.abs(m)
    p = _normalized_legendre(jnp.clip(n, 0, n_max), am, jnp.cos(theta), n_max)
    angle = am.astype(p.dtype) * phi
    y = lax.complex(p * jnp.cos(angle), p * jnp.sin(angle))
    # Y_n^-m = (-1)^m conj(Y_n^m)
    return jnp.where(m < 0, jnp.where(am % 2 == 1, -1, 1) * jnp.conj(y), y)
