"""Entropy-like functions: ``xlogy``, ``xlog1py``, ``entr``, ``rel_entr``, ``kl_div``
(0 where ``x == 0``, with derivative rules that stay finite there), and the Box-Cox
transforms."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["boxcox", "boxcox1p", "entr", "kl_div", "rel_entr", "xlog1py", "xlogy"]


def _full(x: Any, value: Any) -> Any:
    return lax.full(jnp.shape(x), value, jnp.result_type(x))


@custom_jvp
def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, defined as 0 where ``x == 0`` (even for ``y == 0``)."""
    x, y = promote_args_inexact("xlogy", x, y)
    x_ok = x != 0.
    return jnp.where(x_ok, lax.mul(x, lax.log(jnp.where(x_ok, y, 1))), jnp.zeros_like(x))


@xlogy.defjvp
def _xlogy_jvp(primals, tangents):
    x, y = primals
    x_dot, y_dot = tangents
    result = xlogy(x, y)
    return result, (x_dot * jnp.log(y) + y_dot * x / y).astype(result.dtype)


@custom_jvp
def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, defined as 0 where ``x == 0`` (even for ``y == -1``)."""
    x, y = promote_args_inexact("xlog1py", x, y)
    x_ok = x != 0.
    return jnp.where(x_ok, lax.mul(x, lax.log1p(jnp.where(x_ok, y, 0))), jnp.zeros_like(x))


@xlog1py.defjvp
def _xlog1py_jvp(primals, tangents):
    x, y = primals
    x_dot, y_dot = tangents
    result = xlog1py(x, y)
    return result, (x_dot * jnp.log1p(y) + y_dot * x / (1 + y)).astype(result.dtype)


@custom_jvp
def _xlogx(x: Any) -> Any:
    return xlogy(x, x)


@_xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _xlogx(x), x_dot * (jnp.log(x) + 1)


def entr(x: Any) -> Any:
    """Elementwise entropy ``-x log x`` (0 at 0, ``-inf`` for ``x < 0``)."""
    (x,) = promote_args_inexact("entr", x)
    return lax.select(lax.lt(x, _full(x, 0)), _full(x, -np.inf), lax.neg(_xlogx(x)))


def rel_entr(p: Any, q: Any) -> Any:
    """Elementwise relative entropy ``p log(p / q)``: 0 where ``p == 0 <= q``, ``inf``
    where either is negative or ``q == 0 < p``."""
    p, q = promote_args_inexact("rel_entr", p, q)
    both_positive = (p > 0) & (q > 0)
    p_zero = (p == 0) & (q >= 0)
    safe_p = jnp.where(both_positive, p, 1)
    safe_q = jnp.where(both_positive, q, 1)
    value = _xlogx(safe_p) - xlogy(safe_p, safe_q)
    return jnp.where(both_positive, value, jnp.where(p_zero, jnp.zeros_like(value), np.inf))


def kl_div(p: Any, q: Any) -> Any:
    """Elementwise Kullback-Leibler divergence term ``p log(p / q) - p + q``."""
    p, q = promote_args_inexact("kl_div", p, q)
    return rel_entr(p, q) - p + q


def _boxcox(log_x: Any, lmbda: Any) -> Any:
    lmbda_zero = lmbda == 0
    safe_lmbda = jnp.where(lmbda_zero, jnp.ones_like(lmbda), lmbda)
    return jnp.where(lmbda_zero, log_x, jnp.expm1(safe_lmbda * log_x) / safe_lmbda)


def boxcox(x: Any, lmbda: Any) -> Any:
    """The Box-Cox transform ``(x**lmbda - 1) / lmbda`` (``log(x)`` at ``lmbda == 0``)."""
    x, lmbda = promote_args_inexact("boxcox", x, lmbda)
    return _boxcox(jnp.log(x), lmbda)


def boxcox1p(x: Any, lmbda: Any) -> Any:
    """The Box-Cox transform of ``1 + x``, accurate for small ``x``."""
    x, lmbda = promote_args_inexact("boxcox1p", x, lmbda)
    return _boxcox(jnp.log1p(x), lmbda)
