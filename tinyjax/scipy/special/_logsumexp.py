"""The log-sum-exp family: ``logsumexp``, ``softmax``, ``log_softmax``, ``expit``,
``logit``; ``jax.nn``'s softmax, log_softmax and log1mexp are the functions here (and
``jax.scipy.stats`` uses log1mexp too)."""
from __future__ import annotations

import math
import operator
from functools import partial
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import check_arraylike, promote_args_inexact
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["expit", "log_softmax", "logit", "logsumexp", "softmax"]


def _full(x: Any, value: Any) -> Any:
    return lax.full(jnp.shape(x), value, jnp.result_type(x))


def _reduction_dims(ndim: int, axis: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(positive dims, dims as given) of a reduction over ``axis``."""
    if axis is None:
        dims = tuple(range(ndim))
    elif isinstance(axis, (tuple, list)):
        dims = tuple(int(a) for a in axis)
    else:
        dims = (int(axis),)
    pos = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1) or (ndim == 0 and d not in (0, -1)):
            raise ValueError(f"axis {d} is out of bounds for array of dimension {ndim}")
        pos.append(d % ndim if ndim else 0)
    if len(set(pos)) != len(pos):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(pos)) if ndim else (), dims if ndim else ()


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, where: Any = None) -> Any:
    """``log(sum(b * exp(a), axis))`` computed stably: the (stop-gradient) maximum is
    subtracted before exponentiating.

    With ``return_sign=True`` returns ``(log|sum|, sign(sum))``; otherwise a negative
    sum (possible only with ``b``) gives NaN, as in JAX.
    """
    if b is not None:
        a_arr, b_arr = promote_args_inexact("logsumexp", a, b)
        a_arr = jnp.where(b_arr != 0, a_arr, -jnp.inf)
    else:
        (a_arr,) = promote_args_inexact("logsumexp", a)
        b_arr = a_arr
    pos_dims, dims = _reduction_dims(jnp.ndim(a_arr), axis)
    amax = jnp.max(a_arr, axis=dims, keepdims=keepdims, where=where, initial=-jnp.inf)
    amax = lax.stop_gradient(jnp.where(jnp.isfinite(amax), amax, jnp.zeros_like(amax)))
    amax_with_dims = amax if keepdims else lax.expand_dims(amax, pos_dims)
    exp_a = lax.exp(lax.sub(a_arr, jnp.broadcast_to(amax_with_dims, jnp.shape(a_arr))))
    if b is not None:
        exp_a = lax.mul(exp_a, b_arr)
    sumexp = jnp.sum(exp_a, axis=dims, keepdims=keepdims, where=where)
    sign = lax.sign(sumexp)
    sumexp = lax.abs(sumexp)
    out = lax.add(lax.log(sumexp), amax)
    if return_sign:
        return out, sign
    if b is not None:
        out = jnp.where(sign < 0, jnp.array(np.nan, dtype=jnp.result_type(out)), out)
    return out


# ---------------------------------------------------------------------------
# softmax and log_softmax
# ---------------------------------------------------------------------------

def softmax(x: Any, /, *, axis: int | tuple[int, ...] | None = None) -> Any:
    """``exp(x) / sum(exp(x), axis)`` over ``axis`` (all axes by default)."""
    return softmax_along(jnp.asarray(x), axis, None)


def log_softmax(x: Any, /, *, axis: int | tuple[int, ...] | None = None) -> Any:
    """``x - logsumexp(x, axis)`` over ``axis`` (all axes by default)."""
    return log_softmax_along(jnp.asarray(x), axis, None)


def log_softmax_along(x: Any, axis: Any, where: Any) -> Any:
    """``log_softmax`` of the array ``x`` over ``axis``; entries outside ``where`` are
    ``-inf`` and do not take part (the maximum subtracted first is a constant)."""
    x_max = jnp.max(x, axis, where=where, initial=-jnp.inf, keepdims=True)
    x_safe = x if where is None else jnp.where(where, x, -jnp.inf)
    shifted = x_safe - lax.stop_gradient(x_max)
    shifted_logsumexp = jnp.log(jnp.sum(jnp.exp(shifted), axis, where=where, keepdims=True))
    result = shifted - shifted_logsumexp
    if where is not None:
        return jnp.where(where, result, -jnp.inf)
    return result


def softmax_along(x: Any, axis: Any, where: Any) -> Any:
    """``softmax`` of the array ``x`` over ``axis`` with JAX's custom derivative
    ``y * (dx - sum(y * dx))``; entries outside ``where`` are 0 and do not take part."""
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    axis = _hashable_axis(axis)
    if where is None:
        return _softmax(x, axis)
    return _softmax_where(x, jnp.asarray(where), axis)


def _hashable_axis(axis: Any) -> Any:
    if isinstance(axis, (list, tuple)):
        return tuple(operator.index(a) for a in axis)
    return axis if axis is None else operator.index(axis)


def _softmax_impl(x: Any, axis: Any, where: Any) -> Any:
    x_max = jnp.max(x, axis, where=where, initial=-jnp.inf, keepdims=True)
    x_safe = x if where is None else jnp.where(where, x, -jnp.inf)
    unnormalized = jnp.exp(x_safe - x_max)
    result = unnormalized / jnp.sum(unnormalized, axis, where=where, keepdims=True)
    if where is not None:
        result = jnp.where(where, result, 0)
    return result


@partial(custom_jvp, nondiff_argnums=(1,))
def _softmax(x: Any, axis: Any) -> Any:
    return _softmax_impl(x, axis, None)


@_softmax.defjvp
def _softmax_jvp(axis, primals, tangents):
    (x,), (x_dot,) = primals, tangents
    y = _softmax(x, axis)
    return y, y * (x_dot - jnp.sum(y * x_dot, axis, keepdims=True))


@partial(custom_jvp, nondiff_argnums=(2,))
def _softmax_where(x: Any, where: Any, axis: Any) -> Any:
    return _softmax_impl(x, axis, where)


@_softmax_where.defjvp
def _softmax_where_jvp(axis, primals, tangents):
    (x, where), (x_dot, _) = primals, tangents
    y = _softmax_where(x, where, axis)
    return y, y * (x_dot - jnp.sum(y * x_dot, axis, where=where, keepdims=True))


# ---------------------------------------------------------------------------
# the logistic function and its inverse
# ---------------------------------------------------------------------------

def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``."""
    (x,) = promote_args_inexact("expit", x)
    return lax.logistic(x)


@custom_jvp
def logit(x: Any) -> Any:
    """The inverse of ``expit``: ``log(x / (1 - x))``."""
    (x,) = promote_args_inexact("logit", x)
    return lax.log(lax.div(x, lax.sub(_full(x, 1), x)))


logit.defjvps(lambda g, ans, x: lax.div(g, lax.mul(x, lax.sub(_full(x, 1), x))))


def log1mexp(x: Any) -> Any:
    """``log(1 - exp(-x))`` for ``x >= 0``, accurate for small and large ``x`` (the two
    formulas meet at ``log 2``)."""
    check_arraylike("log1mexp", x)
    x = jnp.asarray(x)
    return jnp.where(x < math.log(2.0), jnp.log(-jnp.expm1(-x)), jnp.log1p(-jnp.exp(-x)))
