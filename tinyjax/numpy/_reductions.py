"""Reductions: sums, products, extrema, statistics, cumulative sums and quantiles.

Each is one lax reduction over the normalised axes, with JAX's result dtypes: sums
and products of bool and small integers accumulate in the default integer type;
means, variances and quantiles of integers are floats.
"""
from __future__ import annotations

import builtins
import math
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax.elementwise import _convert_weak, real_dtype
from tinyjax.numpy._creation import _canon_axis, asarray, concrete_value
from tinyjax.numpy._util import broadcast_shapes, broadcast_to_shape, check_arraylike

_py_any = builtins.any  # the module defines its own ``any``


# ---------------------------------------------------------------------------
# Shared machinery
# ---------------------------------------------------------------------------

def _reduction_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = tuple(_canon_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return out


def _keepdims(out: Any, shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    return lax.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(shape)))


def _upcast_int(dt: np.dtype) -> np.dtype:
    """JAX's promote_integers rule for sum/prod/cumsum: bool and narrow ints widen."""
    if dt == np.bool_:
        return dtypes.default_int_dtype()
    if dtypes.is_unsigned(dt) and dt.itemsize < dtypes.default_uint_dtype().itemsize:
        return dtypes.default_uint_dtype()
    if dtypes.is_signed(dt) and dt.itemsize < dtypes.default_int_dtype().itemsize:
        return dtypes.default_int_dtype()
    return dt


def _to_dtype(x: Any, dt: np.dtype) -> Any:
    aval = get_aval(x)
    if aval.dtype == dt:
        return x
    return _convert_weak(x, dt, aval.weak_type) if aval.weak_type else \
        lax.convert_element_type(x, dt)


def _identity_fill(x: Any, value: Any) -> Any:
    return lax.full(get_aval(x).shape, value, get_aval(x).dtype)


def _apply_where(x: Any, where: Any, identity: Any) -> Any:
    mask = asarray(where)
    if get_aval(mask).dtype != np.bool_:
        mask = lax.ne(mask, lax.full(get_aval(mask).shape, 0, get_aval(mask).dtype))
    shape = broadcast_shapes(get_aval(x).shape, get_aval(mask).shape)
    x = broadcast_to_shape(x, shape)
    return lax.select(broadcast_to_shape(mask, shape), x, _identity_fill(x, identity))


def _lowest(dt: np.dtype) -> Any:
    if dt == np.bool_:
        return False
    return -np.inf if dtypes.is_inexact(dt) else int(np.iinfo(dt).min)


def _highest(dt: np.dtype) -> Any:
    if dt == np.bool_:
        return True
    return np.inf if dtypes.is_inexact(dt) else int(np.iinfo(dt).max)


def _reduce(name: str, a: Any, axis: Any, dtype: Any, keepdims: bool, initial: Any,
            where: Any, lax_fn: Callable, combine: Callable, identity: Callable | None,
            upcast: bool = False, to_bool: bool = False) -> Any:
    check_arraylike(name, a)
    a = asarray(a)
    aval = get_aval(a)
    axes = _reduction_axes(axis, aval.ndim)
    if to_bool:
        dt = np.dtype(np.bool_)
    elif dtype is not None:
        dt = dtypes.canonicalize_dtype(dtype)
    else:
        dt = _upcast_int(aval.dtype) if upcast else aval.dtype
    x = a if to_bool and aval.dtype == np.bool_ else (
        lax.ne(a, _identity_fill(a, 0)) if to_bool else _to_dtype(a, dt))
    if where is not None:
        if identity is None and initial is None:
            raise ValueError(f"reduction operation {name} does not have an identity, so to "
                             "use a where mask one has to specify 'initial'")
        x = _apply_where(x, where, identity(dt) if identity else _lowest(dt))
    shape = get_aval(x).shape
    if identity is None and initial is None and _py_any(shape[i] == 0 for i in axes):
        raise ValueError(f"zero-size array to reduction operation {name} which has no "
                         "identity")
    out = lax_fn(x, axes)
    if initial is not None:
        init = lax.convert_element_type(asarray(initial), dt)
        out = combine(out, broadcast_to_shape(init, get_aval(out).shape))
    if keepdims:
        out = _keepdims(out, shape, axes)
    return out


# ---------------------------------------------------------------------------
# Sums, products, extrema, logical reductions
# ---------------------------------------------------------------------------

def sum(a: Any, axis: Any = None, dtype: Any = None, out: None = None,  # noqa: A001
        keepdims: bool = False, initial: Any = None, where: Any = None,
        promote_integers: bool = True) -> Any:
    """Sum of elements over ``axis`` (bool and narrow ints sum in the default int)."""
    _no_out("sum", out)
    return _reduce("sum", a, axis, dtype, keepdims, initial, where, lax.reduce_sum, lax.add,
                   lambda dt: 0, upcast=promote_integers)


def prod(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
         keepdims: bool = False, initial: Any = None, where: Any = None,
         promote_integers: bool = True) -> Any:
    """Product of elements over ``axis``."""
    _no_out("prod", out)
    return _reduce("prod", a, axis, dtype, keepdims, initial, where, lax.reduce_prod,
                   lax.mul, lambda dt: 1, upcast=promote_integers)


def max(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Maximum over ``axis`` (NaN propagates); ``where`` needs ``initial``."""
    _no_out("max", out)
    return _reduce("max", a, axis, None, keepdims, initial, where, lax.reduce_max, lax.max,
                   _lowest if where is not None and initial is not None else None)


def min(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Minimum over ``axis`` (NaN propagates); ``where`` needs ``initial``."""
    _no_out("min", out)
    return _reduce("min", a, axis, None, keepdims, initial, where, lax.reduce_min, lax.min,
                   _highest if where is not None and initial is not None else None)


amax = max
amin = min


def all(a: Any, axis: Any = None, out: None = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """Whether every element over ``axis`` is true."""
    _no_out("all", out)
    return _reduce("all", a, axis, None, keepdims, None, where, lax.reduce_and,
                   lax.bitwise_and, lambda dt: True, to_bool=True)


def any(a: Any, axis: Any = None, out: None = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """Whether any element over ``axis`` is true."""
    _no_out("any", out)
    return _reduce("any", a, axis, None, keepdims, None, where, lax.reduce_or,
                   lax.bitwise_or, lambda dt: False, to_bool=True)


def _no_out(name: str, out: Any) -> None:
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to jnp.{name} is not supported.")


def ptp(a: Any, axis: Any = None, out: None = None, keepdims: bool = False) -> Any:
    """``max - min`` over ``axis``."""
    _no_out("ptp", out)
    return lax.sub(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """The number of non-zero elements over ``axis`` (default int dtype)."""
    check_arraylike("count_nonzero", a)
    a = asarray(a)
    nz = lax.ne(a, _identity_fill(a, 0)) if get_aval(a).dtype != np.bool_ else a
    return sum(nz, axis, dtype=dtypes.default_int_dtype(), keepdims=keepdims)


# ---------------------------------------------------------------------------
# argmax / argmin
# ---------------------------------------------------------------------------

def _arg(name: str, lax_fn: Callable, a: Any, axis: Any, out: Any, keepdims: Any) -> Any:
    _no_out(name, out)
    check_arraylike(name, a)
    a = asarray(a)
    shape = get_aval(a).shape
    if axis is None:
        x = lax.reshape(a, (math.prod(shape),))
        ax = 0
    else:
        x, ax = a, _canon_axis(axis, len(shape))
    if get_aval(x).shape[ax] == 0:
        raise ValueError(f"attempt to get {name} of an empty sequence")
    res = lax_fn(x, ax, dtypes.default_int_dtype())
    if keepdims:
        res = lax.reshape(res, (1,) * len(shape) if axis is None else
                          tuple(1 if i == ax else d for i, d in enumerate(shape)))
    return res


def argmax(a: Any, axis: int | None = None, out: None = None,
           keepdims: bool | None = None) -> Any:
    """Index of the maximum (of the flattened array when ``axis`` is None)."""
    return _arg("argmax", lax.argmax, a, axis, out, keepdims)


def argmin(a: Any, axis: int | None = None, out: None = None,
           keepdims: bool | None = None) -> Any:
    """Index of the minimum (of the flattened array when ``axis`` is None)."""
    return _arg("argmin", lax.argmin, a, axis, out, keepdims)


# ---------------------------------------------------------------------------
# Means and variances
# ---------------------------------------------------------------------------

def _inexact_dtype(dt: np.dtype) -> np.dtype:
    return dt if dtypes.is_inexact(dt) else dtypes.default_float_dtype()


def _count(a: Any, axis: Any, where: Any, keepdims: bool, dt: np.dtype) -> Any:
    shape = get_aval(a).shape
    axes = _reduction_axes(axis, len(shape))
    if where is None:
        return lax.full((), math.prod(shape[i] for i in axes), dt)
    mask = broadcast_to_shape(asarray(where), broadcast_shapes(shape, get_aval(
        asarray(where)).shape))
    return sum(mask, axis, dtype=dt, keepdims=keepdims)


def mean(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
         keepdims: bool = False, *, where: Any = None) -> Any:
    """Arithmetic mean over ``axis`` (a float for integer input)."""
    _no_out("mean", out)
    check_arraylike("mean", a)
    a = asarray(a)
    aval = get_aval(a)
    dt = _inexact_dtype(aval.dtype) if dtype is None else dtypes.canonicalize_dtype(dtype)
    comp = _inexact_dtype(dt)
    if comp in (np.dtype(np.float16), np.dtype(dtypes.bfloat16)):
        comp = np.dtype(np.float32)
    total = sum(_to_dtype(a, comp), axis, dtype=comp, keepdims=keepdims, where=where)
    n = _count(a, axis, where, keepdims, comp)
    return _to_dtype(lax.div(total, broadcast_to_shape(n, get_aval(total).shape)), dt)


def var(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, correction: Any = None) -> Any:
    """Variance over ``axis``, dividing by ``N - ddof`` (``correction`` is the Array
    API name of ``ddof``)."""
    _no_out("var", out)
    check_arraylike("var", a)
    if correction is not None:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    a = asarray(a)
    aval = get_aval(a)
    dt = _inexact_dtype(aval.dtype) if dtype is None else dtypes.canonicalize_dtype(dtype)
    comp = _inexact_dtype(dt)
    if comp in (np.dtype(np.float16), np.dtype(dtypes.bfloat16)):
        comp = np.dtype(np.float32)
    x = _to_dtype(a, comp)
    centered = lax.sub(x, broadcast_to_shape(mean(x, axis, keepdims=True, where=where),
                                             get_aval(x).shape))
    if dtypes.is_complex(comp):  # |x - mean|^2: the variance of a complex array is real
        sq = lax.real(lax.mul(centered, lax.conj(centered)))
        comp, dt = real_dtype(comp), real_dtype(dt)
    else:
        sq = lax.mul(centered, centered)
    total = sum(sq, axis, keepdims=keepdims, where=where)
    n = _count(a, axis, where, keepdims, comp)
    denom = lax.sub(n, lax.full(get_aval(n).shape, ddof, comp))
    denom = lax.max(denom, lax.full(get_aval(denom).shape, 0, comp))
    return _to_dtype(lax.div(total, broadcast_to_shape(denom, get_aval(total).shape)), dt)


def std(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, correction: Any = None) -> Any:
    """Standard deviation: ``sqrt(var(...))``."""
    v = var(a, axis, dtype, out, ddof, keepdims, where=where, correction=correction)
    return lax.sqrt(v)


def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False,
            keepdims: bool = False) -> Any:
    """Weighted mean over ``axis``; with ``returned``, also the sum of the weights."""
    check_arraylike("average", a)
    a = asarray(a)
    shape = get_aval(a).shape
    if weights is None:
        avg = mean(a, axis, keepdims=keepdims)
        wsum = _count(a, axis, None, keepdims, get_aval(avg).dtype)
        wsum = broadcast_to_shape(wsum, get_aval(avg).shape)
    else:
        w = asarray(weights)
        dt = _inexact_dtype(dtypes.result_type(a, w))
        a, w = _to_dtype(a, dt), _to_dtype(w, dt)
        wshape = get_aval(w).shape
        if wshape != shape:
            if axis is None:
                raise ValueError("Axis must be specified when shapes of a and weights "
                                 "differ.")
            if np.ndim(axis) != 0:
                raise ValueError("Single axis expected when shapes of a and weights differ")
            if len(wshape) != 1:
                raise TypeError("1D weights expected when shapes of a and weights differ.")
            ax = _canon_axis(axis, len(shape))
            if wshape[0] != shape[ax]:
                raise ValueError("Length of weights not compatible with specified axis.")
            w = lax.broadcast_in_dim(w, shape, (ax,))
        wsum = sum(w, axis, keepdims=keepdims)
        avg = lax.div(sum(lax.mul(a, w), axis, keepdims=keepdims), wsum)
    return (avg, wsum) if returned else avg


# ---------------------------------------------------------------------------
# Cumulative reductions
# ---------------------------------------------------------------------------

def _cumulative(name: str, lax_fn: Callable, a: Any, axis: Any, dtype: Any,
                upcast: bool = True) -> Any:
    check_arraylike(name, a)
    a = asarray(a)
    if axis is None:
        a = lax.reshape(a, (math.prod(get_aval(a).shape),))
        axis = 0
    axis = _canon_axis(axis, get_aval(a).ndim)
    dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else (
        _upcast_int(get_aval(a).dtype) if upcast else get_aval(a).dtype)
    if dt == np.bool_:
        dt = dtypes.default_int_dtype()
    return lax_fn(_to_dtype(a, dt), axis)


def cumsum(a: Any, axis: int | None = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative sum along ``axis`` (of the flattened array when None)."""
    _no_out("cumsum", out)
    return _cumulative("cumsum", lax.cumsum, a, axis, dtype)


def cumprod(a: Any, axis: int | None = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative product along ``axis`` (of the flattened array when None)."""
    _no_out("cumprod", out)
    return _cumulative("cumprod", lax.cumprod, a, axis, dtype)


def _cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    include_initial: bool = False) -> Any:
    """Array API cumulative sum (``include_initial`` prepends a zero)."""
    x = asarray(x)
    if axis is None:
        if get_aval(x).ndim > 1:
            raise ValueError("The input array has rank > 1; axis must be specified")
        axis = 0
    out = cumsum(x, axis, dtype)
    if include_initial:
        ax = _canon_axis(axis, get_aval(out).ndim)
        cfg = [(0, 0, 0)] * get_aval(out).ndim
        cfg[ax] = (1, 0, 0)
        out = lax.pad(out, lax.full((), 0, get_aval(out).dtype), tuple(cfg))
    return out


cumulative_sum = _cumulative_sum


# ---------------------------------------------------------------------------
# NaN-ignoring reductions
# ---------------------------------------------------------------------------

def _isnan(x: Any) -> Any:
    return lax.ne(x, x)


def _nan_to(a: Any, value: Any) -> tuple[Any, Any]:
    a = asarray(a)
    if not dtypes.is_inexact(get_aval(a).dtype):
        return a, None
    nan = _isnan(a)
    return lax.select(nan, _identity_fill(a, value), a), nan


def nansum(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
           keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """Sum treating NaNs as zero."""
    check_arraylike("nansum", a)
    return sum(_nan_to(a, 0)[0], axis, dtype, out, keepdims, initial, where)


def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
            keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """Product treating NaNs as one."""
    check_arraylike("nanprod", a)
    return prod(_nan_to(a, 1)[0], axis, dtype, out, keepdims, initial, where)


def _nan_extremum(name: str, fn: Callable, fill: Callable, a: Any, axis: Any, out: Any,
                  keepdims: bool, initial: Any, where: Any) -> Any:
    check_arraylike(name, a)
    a = asarray(a)
    if not dtypes.is_inexact(get_aval(a).dtype):
        return fn(a, axis, out, keepdims, initial, where)
    x, nan = _nan_to(a, fill(get_aval(a).dtype))
    res = fn(x, axis, out, keepdims, initial, where)
    all_nan = all(nan, axis, keepdims=keepdims, where=where)
    return lax.select(all_nan, _identity_fill(res, np.nan), res)


def nanmax(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """Maximum ignoring NaNs (NaN where every element is NaN)."""
    return _nan_extremum("nanmax", max, _lowest, a, axis, out, keepdims, initial, where)


def nanmin(a: Any, axis: Any = None, out: None = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """Minimum ignoring NaNs (NaN where every element is NaN)."""
    return _nan_extremum("nanmin", min, _highest, a, axis, out, keepdims, initial, where)


def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: None = None,
            keepdims: bool = False, where: Any = None) -> Any:
    """Mean of the non-NaN elements."""
    _no_out("nanmean", out)
    check_arraylike("nanmean", a)
    a = asarray(a)
    if not dtypes.is_inexact(get_aval(a).dtype):
        return mean(a, axis, dtype, keepdims=keepdims, where=where)
    dt = get_aval(a).dtype if dtype is None else dtypes.canonicalize_dtype(dtype)
    x, nan = _nan_to(a, 0)
    total = sum(x, axis, dtype=dt, keepdims=keepdims, where=where)
    n = sum(lax.bitwise_not(nan), axis, dtype=dt, keepdims=keepdims, where=where)
    return lax.div(total, n)


def nanvar(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
           keepdims: bool = False, where: Any = None) -> Any:
    """Variance of the non-NaN elements."""
    _no_out("nanvar", out)
    a = asarray(a)
    if not dtypes.is_inexact(get_aval(a).dtype):
        return var(a, axis, dtype, ddof=ddof, keepdims=keepdims, where=where)
    valid = lax.bitwise_not(_isnan(a))
    if where is not None:
        valid = lax.bitwise_and(valid, broadcast_to_shape(asarray(where),
                                                          get_aval(a).shape))
    return var(_nan_to(a, 0)[0], axis, dtype, ddof=ddof, keepdims=keepdims, where=valid)


def nanstd(a: Any, axis: Any = None, dtype: Any = None, out: None = None, ddof: int = 0,
           keepdims: bool = False, where: Any = None) -> Any:
    """Standard deviation of the non-NaN elements."""
    return lax.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims, where))


# ---------------------------------------------------------------------------
# Quantiles
# ---------------------------------------------------------------------------

_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")


def quantile(a: Any, q: Any, axis: Any = None, out: None = None,
             overwrite_input: bool = False, method: str = "linear",
             keepdims: bool = False, *, interpolation: Any = None) -> Any:
    """The ``q``-th quantiles over ``axis`` (``q`` in [0, 1]; ``method`` one of
    linear, lower, higher, nearest, midpoint).  The dims of ``q`` come first."""
    _no_out("quantile", out)
    if interpolation is not None:
        method = interpolation
    return _quantile("quantile", a, q, axis, method, keepdims)


def percentile(a: Any, q: Any, axis: Any = None, out: None = None,
               overwrite_input: bool = False, method: str = "linear",
               keepdims: bool = False, *, interpolation: Any = None) -> Any:
    """The ``q``-th percentiles (``q`` in [0, 100]); see :func:`quantile`."""
    _no_out("percentile", out)
    if interpolation is not None:
        method = interpolation
    return _quantile("percentile", a, q, axis, method, keepdims, scale=100)


def median(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
           keepdims: bool = False) -> Any:
    """The median over ``axis``."""
    _no_out("median", out)
    return _quantile("median", a, 0.5, axis, "midpoint", keepdims)


def nanmedian(a: Any, axis: Any = None, out: None = None, overwrite_input: bool = False,
              keepdims: bool = False) -> Any:
    """The median of the non-NaN elements."""
    return _quantile("nanmedian", a, 0.5, axis, "midpoint", keepdims, ignore_nan=True)


def nanquantile(a: Any, q: Any, axis: Any = None, out: None = None,
                overwrite_input: bool = False, method: str = "linear",
                keepdims: bool = False) -> Any:
    """:func:`quantile` ignoring NaNs."""
    return _quantile("nanquantile", a, q, axis, method, keepdims, ignore_nan=True)


def nanpercentile(a: Any, q: Any, axis: Any = None, out: None = None,
                  overwrite_input: bool = False, method: str = "linear",
                  keepdims: bool = False) -> Any:
    """:func:`percentile` ignoring NaNs."""
    return _quantile("nanpercentile", a, q, axis, method, keepdims, scale=100,
                     ignore_nan=True)


def _quantile(name: str, a: Any, q: Any, axis: Any, method: str, keepdims: bool,
              scale: float = 1, ignore_nan: bool = False) -> Any:
    from tinyjax.numpy._indexing import take_along_axis
    if method not in _METHODS:
        raise ValueError(f"{name}: method must be one of {list(_METHODS)}, got "
                         f"method={method!r}")
    check_arraylike(name, a, q)
    a = asarray(a)
    dt = _inexact_dtype(get_aval(a).dtype)
    q = asarray(q)
    qv = None
    try:
        qv = np.asarray(concrete_value(q, "q"))
    except TypeError:
        pass
    if qv is not None and qv.size and (np.any(qv < 0) or np.any(qv > scale)):
        raise ValueError(f"{'Percentiles' if scale == 100 else 'Quantiles'} must be in the "
                         f"range [0, {scale}]")
    q = _to_dtype(q, dt)
    if scale != 1:
        q = lax.div(q, lax.full(get_aval(q).shape, scale, dt))
    x = _to_dtype(a, dt)
    shape = get_aval(x).shape
    axes = _reduction_axes(axis, len(shape))
    keep = [i for i in range(len(shape)) if i not in axes]
    x = lax.transpose(x, tuple(keep) + axes)
    lead = tuple(shape[i] for i in keep)
    n = math.prod(shape[i] for i in axes)
    x = lax.reshape(x, lead + (n,))
    if n == 0:
        raise ValueError(f"{name} of an empty array is not supported")
    nan = _isnan(x)
    if ignore_nan:
        x = lax.select(nan, _identity_fill(x, np.inf), x)
    x = lax.sort(x, dimension=len(lead))
    qshape = get_aval(q).shape
    nq = math.prod(qshape)
    qf = lax.reshape(q, (nq,))
    if ignore_nan:
        count = lax.convert_element_type(
            sum(lax.bitwise_not(nan), len(lead), dtype=np.int32, keepdims=True), dt)
        count = lax.max(count, lax.full(get_aval(count).shape, 1, dt))
    else:
        count = lax.full(lead + (1,), n, dt)
    count = broadcast_to_shape(count, lead + (nq,))
    pos = lax.mul(lax.sub(count, lax.full(get_aval(count).shape, 1, dt)),
                  broadcast_to_shape(qf, lead + (nq,)))
    if method == "nearest":
        pos = lax.round(pos, lax.RoundingMethod.TO_NEAREST_EVEN)
    low = lax.floor(pos)
    high = lax.min(lax.ceil(pos), lax.sub(count, lax.full(get_aval(count).shape, 1, dt)))
    t = lax.sub(pos, low)
    idt = dtypes.default_int_dtype()
    lo_v = take_along_axis(x, lax.convert_element_type(low, idt), len(lead), mode="clip")
    hi_v = take_along_axis(x, lax.convert_element_type(high, idt), len(lead), mode="clip")
    if method in ("lower", "nearest"):
        res = lo_v
    elif method == "higher":
        res = hi_v
    else:
        if method == "midpoint":
            t = lax.select(lax.eq(low, high), lax.full(get_aval(t).shape, 0, dt),
                           lax.full(get_aval(t).shape, 0.5, dt))
        diff = lax.sub(hi_v, lo_v)
        one = lax.full(get_aval(t).shape, 1, dt)
        res = lax.select(lax.ge(t, lax.full(get_aval(t).shape, 0.5, dt)),
                         lax.sub(hi_v, lax.mul(diff, lax.sub(one, t))),
                         lax.add(lo_v, lax.mul(diff, t)))
    if not ignore_nan:
        any_nan = lax.reduce_or(nan, (len(lead),))
        res = lax.select(broadcast_to_shape(lax.reshape(any_nan, lead + (1,)), lead + (nq,)),
                         _identity_fill(res, np.nan), res)
    else:
        all_nan = lax.reduce_and(nan, (len(lead),))
        res = lax.select(broadcast_to_shape(lax.reshape(all_nan, lead + (1,)), lead + (nq,)),
                         _identity_fill(res, np.nan), res)
    # q's dims first, then the kept dims (with size-1 reduced dims under keepdims)
    res = lax.transpose(res, (len(lead),) + tuple(range(len(lead))))
    out_tail = tuple(1 if i in axes else d for i, d in enumerate(shape)) if keepdims \
        else lead
    return lax.reshape(res, qshape + out_tail)


__all__ = [
    "sum", "prod", "max", "min", "amax", "amin", "all", "any", "ptp", "count_nonzero",
    "argmax", "argmin", "mean", "var", "std", "average", "cumsum", "cumprod",
    "cumulative_sum", "nansum", "nanprod", "nanmax", "nanmin", "nanmean", "nanvar",
    "nanstd", "quantile", "percentile", "median", "nanmedian", "nanquantile",
    "nanpercentile",
]
