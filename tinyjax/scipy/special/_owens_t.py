"""Owen's T function."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.scipy.special._gamma import _real
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["owens_t"]

# Patefield and Tandy's method T5 (J. Stat. Software 5(5), 2000): a 13-point Gauss rule
# for T(h, a) = a sum_i w_i exp(-h^2 (1 + a^2 t_i)/2) / (1 + a^2 t_i), the substitution
# u^2 = a^2 t and the factor 1/(2 pi) folded into the weights.
_NODES = (0.0035082039676451715, 0.031279042338030754, 0.085266826283219451,
          0.16245071730812277, 0.25851196049125435, 0.36807553840697534,
          0.48501092905604697, 0.60277514152618577, 0.71477884217753227,
          0.81475510988760099, 0.89711029755948966, 0.95723808085944262,
          0.99178832974629704)
_WEIGHTS = (0.018831438115323503, 0.018567086243977649, 0.018042093461223386,
            0.017263829606398753, 0.016243219975989857, 0.014994592034116705,
            0.013535474469662088, 0.011886351605820165, 0.010070377242777432,
            0.0081130545742299587, 0.0060419009528470239, 0.0038862217010742058,
            0.0016793031084546090)


def _quadrature(h: Any, a: Any) -> Any:
    total = jnp.zeros_like(h)
    for t, w in zip(_NODES, _WEIGHTS):
        r = a * a * t
        total = total + w * jnp.exp(-0.5 * h * h * (1.0 + r)) / (1.0 + r)
    return a * total


@custom_jvp
def _owens_t(h: Any, a: Any) -> Any:
    h_abs, a_abs = jnp.abs(h), jnp.abs(a)
    root2 = np.sqrt(2).astype(h_abs.dtype)
    h_normed = h_abs / root2
    # T(h, a) for |a| > 1 through T(ah, 1/a) (Owen's reciprocal relation)
    small_a = a_abs <= 1.
    mod_a = jnp.where(small_a, a_abs, 1.0 / a_abs)
    mod_h = jnp.where(small_a, h_abs, a_abs * h_abs)
    result = _quadrature(mod_h, mod_a)
    result = jnp.where(mod_h == 0., jnp.arctan(mod_a) / (2 * np.pi), result)
    result = jnp.where(mod_a == 1.,
                       0.125 * lax.erfc(-mod_h / root2) * lax.erfc(mod_h / root2), result)
    norm_h, norm_ah = lax.erfc(h_normed), lax.erfc(a_abs * h_normed)
    reciprocal = jnp.where(
        a_abs * h_abs <= 0.67,
        0.25 - 0.25 * lax.erf(h_normed) * lax.erf(a_abs * h_normed) - result,
        0.25 * (norm_h + norm_ah - norm_h * norm_ah) - result)
    result = lax.sign(a) * jnp.where(small_a, result, reciprocal)
    return jnp.where(jnp.isnan(a) | jnp.isnan(h), np.nan, result)


@_owens_t.defjvp
def _owens_t_jvp(primals, tangents):
    (h, a), (dh, da) = primals, tangents
    root2 = np.sqrt(2).astype(jnp.result_type(h))
    d_dh = (-jnp.exp(-0.5 * h * h) * lax.erf(a * h / root2)
            / (2. * np.sqrt(2. * np.pi).astype(root2.dtype)))
    d_da = jnp.exp(-0.5 * (a * a + 1.) * h * h) / (2. * np.pi * (a * a + 1.))
    result = _owens_t(h, a)
    return result, (d_dh * dh + d_da * da).astype(result.dtype)


def owens_t(h: Any, a: Any) -> Any:
    """Owen's T function ``T(h, a) = 1/(2 pi) int_0^a exp(-h^2 (1 + x^2)/2) / (1 + x^2) dx``."""
    h, a = _real("owens_t", h, a)
    return _owens_t(h, a)
