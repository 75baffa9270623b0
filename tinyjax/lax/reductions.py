"""Reduction primitives over a set of axes: reduce_sum, reduce_max, reduce_min,
reduce_prod, reduce_and, reduce_or, reduce_xor; and argmax / argmin over one axis."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.interpreters import ad, batching, lax_ops
from tinyjax.interpreters.ad import Zero

__all__ = ["reduce_sum", "reduce_prod", "reduce_max", "reduce_min", "reduce_and", "reduce_or",
           "reduce_xor", "argmax", "argmin", "reduce_sum_p", "reduce_prod_p", "reduce_max_p",
           "reduce_min_p", "reduce_and_p", "reduce_or_p", "reduce_xor_p", "argmax_p",
           "argmin_p"]


def _reduce_abstract_eval(name: str, accepted: Callable[[np.dtype], bool], kinds: str):
    def rule(x, *, axes, out_sharding=None):
        if not accepted(x.dtype):
            raise TypeError(f"{name} does not accept dtype {x.dtype.name}. Accepted dtypes "
                            f"are subtypes of {kinds}.")
        if len(set(axes)) != len(axes) or any(not 0 <= a < x.ndim for a in axes):
            raise ValueError(f"{name}: reduction axes {tuple(axes)} are invalid or repeated "
                             f"for an operand of shape {x.shape}.")
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return ShapedArray(shape, x.dtype, x.weak_type)
    return rule


def _reduce_prim(name: str, np_fn: Callable, accepted, kinds: str) -> Primitive:
    prim = Primitive(name)
    abstract_eval = _reduce_abstract_eval(name, accepted, kinds)

    def impl(x, *, axes, out_sharding=None):
        abstract_eval(_aval(x), axes=axes)  # eager mode validates like tracing does
        out = np_fn(x, axis=tuple(axes))
        return np.asarray(out, x.dtype)
    prim.def_impl(impl)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = lambda weak, **_: weak[0]

    def batch(vals, dims, *, axes, out_sharding=None):
        (x,), (d,) = vals, dims
        new_axes = tuple(a + (a >= d) for a in axes)
        out_dim = d - sum(a < d for a in axes)
        return prim.bind(x, axes=new_axes, out_sharding=None), out_dim
    batching.primitive_batchers[prim] = batch
    return prim


def _aval(x: np.ndarray) -> ShapedArray:
    return ShapedArray(x.shape, x.dtype)


def _num(d):
    return dtypes.is_int(d) or dtypes.is_inexact(d)


def _any(d):
    return _num(d) or d == np.bool_


def _ordered(d):
    return dtypes.is_int(d) or dtypes.is_float(d) or d == np.bool_


def _bool_int(d):
    return dtypes.is_int(d) or d == np.bool_


def _max_impl(x, axis):
    return np.max(x, axis=axis) if x.size else np.full(
        [s for i, s in enumerate(x.shape) if i not in axis], _lowest(x.dtype), x.dtype)


def _min_impl(x, axis):
    return np.min(x, axis=axis) if x.size else np.full(
        [s for i, s in enumerate(x.shape) if i not in axis], _highest(x.dtype), x.dtype)


def _lowest(dt):
    if dt == np.bool_:
        return False
    return -np.inf if dtypes.is_inexact(dt) else np.iinfo(dt).min


def _highest(dt):
    if dt == np.bool_:
        return True
    return np.inf if dtypes.is_inexact(dt) else np.iinfo(dt).max


def _sum_impl(x, axis):
    if x.dtype in (np.dtype(np.float16), np.dtype(dtypes.bfloat16)):
        return np.sum(x.astype(np.float32), axis=axis).astype(x.dtype)
    return np.sum(x, axis=axis, dtype=x.dtype)


def _prod_impl(x, axis):
    if x.dtype in (np.dtype(np.float16), np.dtype(dtypes.bfloat16)):
        return np.prod(x.astype(np.float32), axis=axis).astype(x.dtype)
    return np.prod(x, axis=axis, dtype=x.dtype)


def _xor_impl(x, axis):
    out = np.bitwise_xor.reduce(x, axis=axis) if x.size else np.zeros(
        [s for i, s in enumerate(x.shape) if i not in axis], x.dtype)
    return out


reduce_sum_p = _reduce_prim("reduce_sum", _sum_impl, _num, "number")
reduce_prod_p = _reduce_prim("reduce_prod", _prod_impl, _num, "number")
reduce_max_p = _reduce_prim("reduce_max", _max_impl, _any, "bool, number")
reduce_min_p = _reduce_prim("reduce_min", _min_impl, _any, "bool, number")
reduce_and_p = _reduce_prim("reduce_and", lambda x, axis: np.bitwise_and.reduce(x, axis=axis)
                            if x.dtype != np.bool_ else np.all(x, axis=axis), _bool_int,
                            "bool, integer")
reduce_or_p = _reduce_prim("reduce_or", lambda x, axis: np.bitwise_or.reduce(x, axis=axis)
                           if x.dtype != np.bool_ else np.any(x, axis=axis), _bool_int,
                           "bool, integer")
reduce_xor_p = _reduce_prim("reduce_xor", _xor_impl, _bool_int, "bool, integer")


def _axes(x, axes, name: str) -> tuple[int, ...]:
    ndim = get_aval(x).ndim
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"{name}: reduction axis {a} is out of bounds for an operand "
                             f"of shape {get_aval(x).shape}.")
    return tuple(int(a) % ndim for a in axes)


def _public(prim: Primitive):
    def fn(operand, axes: Sequence[int]):
        x = as_operand(operand)
        return prim.bind(x, axes=_axes(x, axes, prim.name), out_sharding=None)
    fn.__name__ = prim.name
    fn.__doc__ = f"``{prim.name}`` of ``operand`` over ``axes``."
    return fn


reduce_sum = _public(reduce_sum_p)
reduce_prod = _public(reduce_prod_p)
reduce_max = _public(reduce_max_p)
reduce_min = _public(reduce_min_p)
reduce_and = _public(reduce_and_p)
reduce_or = _public(reduce_or_p)
reduce_xor = _public(reduce_xor_p)

# ---------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------


def _kept_dims(shape, axes):
    return tuple(i for i in range(len(shape)) if i not in axes)


def _reduce_sum_transpose(ct, x, *, axes, out_sharding=None):
    from tinyjax.lax.shape import broadcast_in_dim
    if type(ct) is Zero:
        return [Zero(x.aval)]
    return [broadcast_in_dim(ct, x.aval.shape, _kept_dims(x.aval.shape, axes))]


ad.deflinear(reduce_sum_p, _reduce_sum_transpose)


def _chooser_jvp(prim: Primitive):
    """max/min: the tangent is averaged over the positions that attain the extremum."""
    def rule(primals, tangents, *, axes, out_sharding=None):
        from tinyjax.lax.elementwise import convert_element_type, div, eq, mul
        from tinyjax.lax.shape import broadcast_in_dim
        (x,), (t,) = primals, tangents
        ans = prim.bind(x, axes=axes, out_sharding=None)
        if type(t) is Zero:
            return ans, Zero.from_primal(ans)
        shape = get_aval(x).shape
        location = eq(x, broadcast_in_dim(ans, shape, _kept_dims(shape, axes)))
        location = convert_element_type(location, get_aval(t).dtype)
        counts = reduce_sum(location, axes)
        return ans, div(reduce_sum(mul(t, location), axes), counts)
    ad.primitive_jvps[prim] = rule


_chooser_jvp(reduce_max_p)
_chooser_jvp(reduce_min_p)


def _reduce_prod_jvp(primals, tangents, *, axes, out_sharding=None):
    # d prod(x) = sum_i t_i * prod_{j != i} x_j, computed without dividing by x
    # (so zeros are handled) by moving the reduced axes to the front and using
    # exclusive cumulative products from both sides.
    from tinyjax.lax.elementwise import mul
    from tinyjax.lax.shape import reshape, transpose
    (x,), (t,) = primals, tangents
    ans = reduce_prod_p.bind(x, axes=axes, out_sharding=None)
    if type(t) is Zero:
        return ans, Zero.from_primal(ans)
    shape = get_aval(x).shape
    kept = _kept_dims(shape, axes)
    perm = tuple(axes) + kept
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    rest = tuple(shape[k] for k in kept)
    xs = reshape(transpose(x, perm), (n,) + rest)
    ts = reshape(transpose(t, perm), (n,) + rest)
    others = _exclusive_products(xs)
    return ans, reduce_sum(mul(ts, others), (0,))


def _exclusive_products(xs):
    """``out[i] = prod_{j != i} xs[j]`` along axis 0: the product of the exclusive
    cumulative products from both sides (no division, so zeros are fine)."""
    from tinyjax.lax.elementwise import mul
    before = lax_ops.shift(lax_ops.cumprod(xs, axis=0), 1, 0, False, 1)
    after = lax_ops.shift(lax_ops.cumprod(xs, axis=0, reverse=True), 1, 0, True, 1)
    return mul(before, after)


ad.primitive_jvps[reduce_prod_p] = _reduce_prod_jvp
ad.defjvp_zero(reduce_and_p)
ad.defjvp_zero(reduce_or_p)
ad.defjvp_zero(reduce_xor_p)

# ---------------------------------------------------------------------------
# argmax / argmin
# ---------------------------------------------------------------------------


def _arg_prim(name: str, np_fn: Callable) -> Primitive:
    prim = Primitive(name)

    def impl(x, *, axes, index_dtype):
        abstract_eval(_aval(x), axes=axes, index_dtype=index_dtype)
        # NaN wins (the first one), then the first of equal extrema, as numpy does;
        # low-precision floats widen exactly so numpy sees their NaNs.
        if x.dtype in (np.dtype(np.float16), np.dtype(dtypes.bfloat16)):
            x = x.astype(np.float32)
        return np.asarray(np_fn(x, axis=axes[0]), index_dtype)
    prim.def_impl(impl)

    def abstract_eval(x, *, axes, index_dtype):
        if not _ordered(x.dtype):
            raise TypeError(f"{name} does not accept dtype {x.dtype.name}. Accepted dtypes "
                            "are subtypes of bool, integer, floating.")
        if not dtypes.is_int(index_dtype):
            raise TypeError(f"index_dtype must be an integer type, but got "
                            f"{np.dtype(index_dtype).name}")
        axis, = axes
        if not 0 <= axis < x.ndim:
            raise ValueError(f"{name}: invalid axis {axis} for operand shape {x.shape}")
        if x.shape[axis] < 1:
            raise ValueError("argmin and argmax require non-empty reduction dimension. "
                             f"operand.shape={x.shape} axis={axis}")
        return ShapedArray(x.shape[:axis] + x.shape[axis + 1:], index_dtype)
    prim.def_abstract_eval(abstract_eval)

    def batch(vals, dims, *, axes, index_dtype):
        (x,), (d,) = vals, dims
        axis, = axes
        return (prim.bind(x, axes=(axis + (axis >= d),), index_dtype=index_dtype),
                d - (axis < d))
    batching.primitive_batchers[prim] = batch
    ad.defjvp_zero(prim)
    return prim


argmax_p = _arg_prim("argmax", np.argmax)
argmin_p = _arg_prim("argmin", np.argmin)


def _arg_public(prim: Primitive, what: str):
    def fn(operand, axis: int, index_dtype) -> Any:
        x = as_operand(operand)
        ndim = get_aval(x).ndim
        axis = int(axis)
        if -ndim <= axis < 0:
            axis += ndim
        return prim.bind(x, axes=(axis,), index_dtype=dtypes.canonicalize_dtype(index_dtype))
    fn.__name__ = fn.__qualname__ = prim.name
    fn.__doc__ = (f"Index of the {what} of ``operand`` along ``axis``, as ``index_dtype``: "
                  "the first NaN if there is one, else the first of equal extrema.")
    return fn


argmax = _arg_public(argmax_p, "maximum")
argmin = _arg_public(argmin_p, "minimum")
