"""Cumulative reductions along one axis: cumsum, cumprod, cummax, cummin, cumlogsumexp.

``cumsum`` is linear (its transpose is the cumsum in the other direction).  The
jvps of the others are first-order linear recurrences in the tangent,
``h[i] = a[i] * h[i-1] + b[i]``, evaluated by one log-depth scan
(:func:`linear_recurrence`); none divides by the operand, so zeros, ties and
``-inf`` are handled.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero

__all__ = ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp", "cumsum_p", "cumprod_p",
           "cummax_p", "cummin_p", "cumlogsumexp_p"]

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(dtypes.bfloat16))


def _number(d: np.dtype) -> bool:
    return dtypes.is_int(d) or dtypes.is_inexact(d)


def _accumulate(ufunc: np.ufunc) -> Callable:
    """``ufunc.accumulate`` along ``axis`` (from the end if ``reverse``), computing
    float16/bfloat16 in float32 and keeping the operand's dtype."""
    def impl(x, *, axis, reverse):
        work = x.astype(np.float32) if x.dtype in _LOW_PRECISION else x
        if reverse:
            work = np.flip(work, axis)
        with np.errstate(all="ignore"):
            out = ufunc.accumulate(work, axis=axis, dtype=work.dtype)
        if reverse:
            out = np.flip(out, axis)
        return np.ascontiguousarray(out).astype(x.dtype, copy=False)
    return impl


def _cumulative_prim(name: str, ufunc: np.ufunc, accepted: Callable[[np.dtype], bool],
                     kinds: str) -> Primitive:
    prim = Primitive(name)
    accumulate = _accumulate(ufunc)

    def impl(x, *, axis, reverse):
        abstract_eval(ShapedArray(x.shape, x.dtype), axis=axis, reverse=reverse)
        return accumulate(x, axis=axis, reverse=reverse)
    prim.def_impl(impl)

    def abstract_eval(x: ShapedArray, *, axis, reverse):
        if not accepted(x.dtype):
            raise TypeError(f"{name} does not accept dtype {x.dtype.name}. Accepted dtypes "
                            f"are subtypes of {kinds}.")
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: axis {axis} is out of bounds for array of shape "
                             f"{x.shape}")
        return ShapedArray(x.shape, x.dtype, x.weak_type)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = lambda weak, **_: weak[0]

    def batch(vals, dims, *, axis, reverse):
        (x,), (d,) = vals, dims
        return prim.bind(x, axis=axis + (d <= axis), reverse=reverse), d
    batching.primitive_batchers[prim] = batch
    return prim


cumsum_p = _cumulative_prim("cumsum", np.add, _number, "number")
cumprod_p = _cumulative_prim("cumprod", np.multiply, _number, "number")
cummax_p = _cumulative_prim("cummax", np.maximum, _number, "number")
cummin_p = _cumulative_prim("cummin", np.minimum, _number, "number")
cumlogsumexp_p = _cumulative_prim("cumlogsumexp", np.logaddexp, dtypes.is_float, "floating")


def _public(prim: Primitive, doc: str) -> Callable:
    def fn(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
        x = as_operand(operand)
        ndim = get_aval(x).ndim
        axis = int(axis)
        if -ndim <= axis < 0:
            axis += ndim
        return prim.bind(x, axis=axis, reverse=bool(reverse))
    fn.__name__ = prim.name
    fn.__qualname__ = prim.name
    fn.__doc__ = (f"Cumulative {doc} of ``operand`` along ``axis`` (from the end when "
                  "``reverse``); same shape and dtype as ``operand``.")
    return fn


cumsum = _public(cumsum_p, "sum")
cumprod = _public(cumprod_p, "product")
cummax = _public(cummax_p, "maximum")
cummin = _public(cummin_p, "minimum")
cumlogsumexp = _public(cumlogsumexp_p, "log-sum-exp")

# ---------------------------------------------------------------------------
# Scan helpers shared by the jvp rules
# ---------------------------------------------------------------------------


def shift(x: Any, offset: int, axis: int, reverse: bool, fill: Any) -> Any:
    """``x`` moved ``offset`` places along ``axis`` towards its end (towards its start
    if ``reverse``); the vacated places hold ``fill``."""
    from tinyjax.lax.shape import full
    from tinyjax.lax.slicing import concatenate, slice_in_dim
    aval = get_aval(x)
    n = aval.shape[axis]
    if offset >= n:
        return full(aval.shape, fill, aval.dtype)
    pad_shape = list(aval.shape)
    pad_shape[axis] = offset
    pad = full(pad_shape, fill, aval.dtype)
    if reverse:
        return concatenate([slice_in_dim(x, offset, n, axis=axis), pad], axis)
    return concatenate([pad, slice_in_dim(x, 0, n - offset, axis=axis)], axis)


def linear_recurrence(a: Any, b: Any, axis: int, reverse: bool = False) -> Any:
    """``h[i] = a[i] * h[i-1] + b[i]`` along ``axis`` with ``h[-1] = 0`` (running from
    the end if ``reverse``), in ceil(log2 n) steps of a Hillis-Steele scan.  Linear in
    ``b``; ``a`` enters only multiplicatively, so the result is differentiable in both.
    """
    from tinyjax.lax.elementwise import add, mul
    n = get_aval(b).shape[axis]
    offset = 1
    while offset < n:
        # compose each element's affine map with the one ending `offset` places before
        b = add(b, mul(a, shift(b, offset, axis, reverse, 0)))
        if 2 * offset < n:
            a = mul(a, shift(a, offset, axis, reverse, 1))
        offset *= 2
    return b


def _first_mask(aval: ShapedArray, axis: int, reverse: bool) -> Any:
    """True at the first position of the scan along ``axis``."""
    from tinyjax.lax.elementwise import eq
    from tinyjax.lax.shape import broadcasted_iota, full
    first = aval.shape[axis] - 1 if reverse else 0
    idx = broadcasted_iota(np.int32, aval.shape, axis)
    return eq(idx, full(aval.shape, first, np.int32))


# ---------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------


def _cumsum_transpose(ct, x, *, axis, reverse):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    return [cumsum_p.bind(ct, axis=axis, reverse=not reverse)]


ad.deflinear(cumsum_p, _cumsum_transpose)


def _recurrence_jvp(prim: Primitive, coefficients: Callable) -> None:
    """jvp rule whose tangent is ``linear_recurrence(a, b(t))`` with
    ``a, b = coefficients(t, x, y, axis, reverse)``."""
    def rule(primals, tangents, *, axis, reverse):
        (x,), (t,) = primals, tangents
        y = prim.bind(x, axis=axis, reverse=reverse)
        if type(t) is Zero:
            return y, Zero.from_primal(y)
        a, b = coefficients(t, x, y, axis, reverse)
        return y, linear_recurrence(a, b, axis, reverse)
    ad.primitive_jvps[prim] = rule


def _cumprod_coefficients(t, x, y, axis, reverse):
    # y[i] = x[i] * y[i-1]  =>  dy[i] = x[i] * dy[i-1] + y[i-1] * t[i]
    from tinyjax.lax.elementwise import mul
    return x, mul(t, shift(y, 1, axis, reverse, 1))


def _chooser_coefficients(beats: Callable) -> Callable:
    # The tangent follows the running argmax/argmin (first position on ties): at a
    # position that sets a new extremum the tangent restarts from t, else it is carried.
    def coefficients(t, x, y, axis, reverse):
        from tinyjax.lax.elementwise import bitwise_or, convert_element_type, mul, sub
        from tinyjax.lax.shape import full
        aval = get_aval(t)
        new_best = bitwise_or(beats(x, shift(y, 1, axis, reverse, 0)),
                              _first_mask(aval, axis, reverse))
        m = convert_element_type(new_best, aval.dtype)
        return sub(full(aval.shape, 1, aval.dtype), m), mul(t, m)
    return coefficients


def _cumlogsumexp_coefficients(t, x, y, axis, reverse):
    # y[i] = logaddexp(y[i-1], x[i])
    #   =>  dy[i] = exp(y[i-1] - y[i]) dy[i-1] + exp(x[i] - y[i]) t[i]
    # where y[i] is -inf every term is -inf and the tangent is 0 (not nan).
    from tinyjax.lax.elementwise import eq, exp, mul, select, sub
    from tinyjax.lax.shape import full
    aval = get_aval(y)
    empty = eq(y, full(aval.shape, -np.inf, aval.dtype))
    zeros = full(aval.shape, 0, aval.dtype)
    safe_y = select(empty, zeros, y)
    a = select(empty, zeros, exp(sub(shift(y, 1, axis, reverse, -np.inf), safe_y)))
    b = select(empty, zeros, mul(t, exp(sub(x, safe_y))))
    return a, b


def _gt(x, y):
    from tinyjax.lax.elementwise import gt
    return gt(x, y)


def _lt(x, y):
    from tinyjax.lax.elementwise import lt
    return lt(x, y)


_recurrence_jvp(cumprod_p, _cumprod_coefficients)
_recurrence_jvp(cummax_p, _chooser_coefficients(_gt))
_recurrence_jvp(cummin_p, _chooser_coefficients(_lt))
_recurrence_jvp(cumlogsumexp_p, _cumlogsumexp_coefficients)
