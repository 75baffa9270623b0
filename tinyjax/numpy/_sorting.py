"""Sorting, searching and counting: sort, argsort, lexsort, searchsorted, unique,
nonzero, argwhere, flatnonzero, bincount, histogram.

Functions whose result size depends on the data (unique, nonzero, bincount) need
concrete values, or a static ``size=``/``length=`` under ``jit``/``vmap``.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import Tracer
from tinyjax.lax.elementwise import complex_dtype
from tinyjax.numpy._util import check_arraylike, promote_args_inexact, promote_dtypes

__all__ = ["sort", "sort_complex", "argsort", "lexsort", "searchsorted", "unique", "unique_values",
           "unique_counts", "unique_inverse", "unique_all", "nonzero", "argwhere",
           "flatnonzero", "bincount", "histogram", "histogram_bin_edges", "digitize"]

from tinyjax.numpy._util import dtype_of as _dtype
from tinyjax.numpy._util import full_like_value as _full_like
from tinyjax.numpy._util import ndim_of as _ndim
from tinyjax.numpy._util import shape_of as _shape


def _operand(name: str, x: Any) -> Any:
    check_arraylike(name, x)
    return promote_dtypes(x)[0]


def _ravel(x: Any) -> Any:
    return x if _ndim(x) == 1 else lax.reshape(x, (math.prod(_shape(x)),))


def _int_dtype() -> np.dtype:
    return dtypes.default_int_dtype()


def _canon_axis(axis: int, ndim: int) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def _take1d(x: Any, idx: Any) -> Any:
    """``x[idx]`` for 1-D ``x`` and in-bounds integer ``idx`` of any shape."""
    idx = lax.expand_dims(idx, (_ndim(idx),))
    dnums = lax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,),
                                       start_index_map=(0,))
    return lax.gather(x, idx, dnums, (1,), mode="clip")


def _scatter_add1d(length: int, idx: Any, updates: Any) -> Any:
    """``zeros(length).at[idx].add(updates)``, out-of-range indices dropped."""
    zeros = lax.full((length,), 0, _dtype(updates))
    dnums = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                        scatter_dims_to_operand_dims=(0,))
    return lax.scatter_add(zeros, lax.expand_dims(idx, (_ndim(idx),)), updates, dnums,
                           mode="drop")


def _concrete(x: Any, what: str) -> np.ndarray:
    if isinstance(x, Tracer):
        from tinyjax.errors import ConcretizationTypeError
        raise ConcretizationTypeError(
            f"Abstract tracer value encountered where concrete value is expected: {what}. "
            "Pass a static size= (or length=) argument to use this function under "
            "jit or vmap.")
    return np.asarray(x._value if hasattr(x, "_value") else x)


# ---------------------------------------------------------------------------
# sort, argsort, lexsort
# ---------------------------------------------------------------------------


def _flatten_if_none(a: Any, axis: int | None) -> tuple[Any, int]:
    if axis is None:
        return _ravel(a), 0
    return a, _canon_axis(axis, _ndim(a))


def sort(a: Any, axis: int | None = -1, *, kind: None = None, order: None = None,
         stable: bool = True, descending: bool = False) -> Any:
    """Sorted copy of ``a`` along ``axis`` (flattened for None); NaNs sort last."""
    a = _operand("sort", a)
    if order is not None:
        raise ValueError("The 'order' argument to sort is not supported.")
    if _ndim(a) == 0 and axis is not None:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension 0")
    a, axis = _flatten_if_none(a, axis)
    out = lax.sort(a, dimension=axis, is_stable=stable)
    return lax.rev(out, (axis,)) if descending else out


def sort_complex(a: Any) -> Any:
    """``a`` sorted along its last axis by real part, then imaginary part, as complex."""
    out = sort(a, axis=-1)
    dt = _dtype(out)
    return lax.convert_element_type(out, complex_dtype(dt) if dtypes.is_inexact(dt)
                                    else dtypes.default_complex_dtype())


def argsort(a: Any, axis: int | None = -1, *, kind: None = None, order: None = None,
            stable: bool = True, descending: bool = False) -> Any:
    """Indices that sort ``a`` along ``axis``; equal elements keep their order
    (descending too)."""
    a = _operand("argsort", a)
    if order is not None:
        raise ValueError("The 'order' argument to argsort is not supported.")
    if _ndim(a) == 0 and axis is not None:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension 0")
    a, axis = _flatten_if_none(a, axis)
    if descending:
        a = lax.rev(a, (axis,))
    iota = lax.broadcasted_iota(_int_dtype(), _shape(a), axis)
    _, perm = lax.sort((a, iota), dimension=axis, is_stable=stable, num_keys=1)
    if descending:
        perm = lax.rev(perm, (axis,))
        perm = lax.sub(_full_like(perm, _shape(a)[axis] - 1), perm)
    return perm


def lexsort(keys: Sequence[Any], axis: int = -1) -> Any:
    """Indices that sort by the keys, the last key primary (a stable sort)."""
    keys = tuple(keys) if not hasattr(keys, "shape") or _ndim(keys) != 2 else \
        tuple(lax.index_in_dim(keys, i, 0, keepdims=False) for i in range(_shape(keys)[0]))
    if not keys:
        raise TypeError("need sequence of keys with len > 0 in lexsort")
    keys = [_operand("lexsort", k) for k in keys]
    if len({_shape(k) for k in keys}) > 1:
        raise ValueError("all keys need to be the same shape")
    if _ndim(keys[0]) == 0:
        return lax.full((), 0, _int_dtype())
    axis = _canon_axis(axis, _ndim(keys[0]))
    iota = lax.broadcasted_iota(_int_dtype(), _shape(keys[0]), axis)
    out = lax.sort(tuple(reversed(keys)) + (iota,), dimension=axis, is_stable=True,
                   num_keys=len(keys))
    return out[-1]


# ---------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------


def _sort_lt(x: Any, y: Any) -> Any:
    """``x < y`` in sort order: NaN above everything (and equal to NaN)."""
    if not dtypes.is_inexact(_dtype(x)):
        return lax.lt(x, y)
    x_nan, y_nan = lax.ne(x, x), lax.ne(y, y)
    return lax.bitwise_or(lax.lt(x, y), lax.bitwise_and(y_nan, lax.bitwise_not(x_nan)))


def _sort_le(x: Any, y: Any) -> Any:
    return lax.bitwise_not(_sort_lt(y, x))


_SEARCH_METHODS = ("scan", "scan_unrolled", "sort", "compare_all")


def searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None, *,
                 method: str = "scan") -> Any:
    """Insertion points of ``v`` in sorted 1-D ``a`` (int32 indices, NaNs last).

    ``method``: 'scan'/'scan_unrolled' (binary search), 'compare_all' (count the
    smaller elements; fast for small ``a``), 'sort' (here the same as 'compare_all')."""
    check_arraylike("searchsorted", a, v)
    if side not in ("left", "right"):
        raise ValueError(f"{side!r} is an invalid value for keyword 'side'. "
                         "Expected one of ['left', 'right'].")
    if method not in _SEARCH_METHODS:
        raise ValueError(f"{method!r} is an invalid value for keyword 'method'. "
                         f"Expected one of {sorted(_SEARCH_METHODS)}.")
    a, v = promote_dtypes(a, v)
    if _ndim(a) != 1:
        raise ValueError("a should be 1-dimensional")
    n = _shape(a)[0]
    out_dt = dtypes.canonicalize_dtype(np.int32 if n <= np.iinfo(np.int32).max else np.int64)
    if n == 0:
        return _full_like(v, 0, out_dt)
    if sorter is not None:
        a = _take1d(a, _operand("searchsorted", sorter))
    before = _sort_lt if side == "left" else _sort_le  # does a[i] come before v?
    if method in ("compare_all", "sort"):
        nv = _ndim(v)
        full = _shape(v) + (n,)
        av = lax.broadcast_in_dim(a, full, (nv,))
        vv = lax.broadcast_in_dim(v, full, tuple(range(nv)))
        return lax.reduce_sum(lax.convert_element_type(before(av, vv), out_dt), (nv,))
    # binary search for the first i in [0, n] with not before(a[i], v)
    lo, hi = _full_like(v, 0, out_dt), _full_like(v, n, out_dt)
    one = _full_like(v, 1, out_dt)
    for _ in range(int(n).bit_length()):
        mid = lax.div(lax.add(lo, hi), lax.add(one, one))
        go_right = before(_take1d(a, lax.min(mid, _full_like(mid, n - 1))), v)
        go_right = lax.bitwise_and(go_right, lax.lt(mid, hi))
        lo = lax.select(go_right, lax.add(mid, one), lo)
        hi = lax.select(go_right, hi, mid)
    return lo


def digitize(x: Any, bins: Any, right: bool = False, *, method: str | None = None) -> Any:
    """Indices of the bins (monotonic 1-D ``bins``) that ``x``'s values fall in."""
    check_arraylike("digitize", x, bins)
    x, bins = promote_dtypes(x, bins)
    if _ndim(bins) != 1:
        raise ValueError(f"digitize: bins must be a 1-dimensional array; got bins={bins}")
    if _shape(bins)[0] == 0:
        return _full_like(x, 0, np.int32)
    side = "left" if right else "right"
    kw = {} if method is None else {"method": method}
    first, last = lax.index_in_dim(bins, 0, 0, False), lax.index_in_dim(bins, -1 % _shape(
        bins)[0], 0, False)
    up = searchsorted(bins, x, side=side, **kw)
    down = lax.sub(_full_like(up, _shape(bins)[0]),
                   searchsorted(lax.rev(bins, (0,)), x, side=side, **kw))
    return lax.select(lax.broadcast_in_dim(lax.ge(last, first), _shape(up), ()), up, down)


# ---------------------------------------------------------------------------
# nonzero, argwhere, flatnonzero
# ---------------------------------------------------------------------------


def _as_mask(x: Any) -> Any:
    return x if _dtype(x) == np.bool_ else lax.ne(x, _full_like(x, 0))


def nonzero(a: Any, *, size: int | None = None,
            fill_value: Any = None) -> tuple[Any, ...]:
    """Indices of the nonzero elements, one int32 array per axis.

    With ``size``: exactly ``size`` entries, the missing ones ``fill_value``
    (default 0; a scalar or one value per axis)."""
    a = _operand("nonzero", a)
    if _ndim(a) == 0:
        raise ValueError("Calling nonzero on 0d arrays is not allowed. Use "
                         "jnp.atleast_1d(scalar).nonzero() instead.")
    mask = _ravel(_as_mask(a))
    n = _shape(mask)[0]
    if size is None:
        size = int(np.count_nonzero(_concrete(mask, "The size argument of jnp.nonzero")))
    size = int(size)
    idt = _int_dtype()
    iota = lax.iota(idt, n)
    if n:
        # a stable sort puts the positions of the True entries first, in order
        _, flat = lax.sort((lax.bitwise_not(mask), iota), is_stable=True, num_keys=1)
        count = lax.reduce_sum(lax.convert_element_type(mask, idt), (0,))
    else:
        flat, count = iota, lax.full((), 0, idt)
    if size <= n:
        flat = lax.slice_in_dim(flat, 0, size, axis=0)
    else:
        flat = lax.pad(flat, lax.full((), 0, idt), ((0, size - n, 0),))
    valid = lax.lt(lax.iota(idt, size), lax.broadcast_in_dim(count, (size,), ()))
    out = []
    stride = n
    fills = fill_value if isinstance(fill_value, (tuple, list)) else \
        [fill_value] * _ndim(a)
    if len(fills) != _ndim(a):
        raise ValueError(f"fill_value must be a scalar or a tuple of length {_ndim(a)}; "
                         f"got {fill_value}")
    for d, fill in zip(_shape(a), fills):
        stride //= max(d, 1)
        idx = flat if stride == 1 else lax.div(flat, _full_like(flat, max(stride, 1)))
        if d:
            idx = lax.rem(idx, _full_like(idx, d))
        fill = 0 if fill is None else fill
        out.append(lax.select(valid, idx, lax.convert_element_type(
            lax.broadcast_in_dim(promote_dtypes(fill)[0], (size,), ()), idt)))
    return tuple(out)


def flatnonzero(a: Any, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Indices of the nonzero elements of ``ravel(a)``."""
    return nonzero(_ravel(_operand("flatnonzero", a)), size=size, fill_value=fill_value)[0]


def argwhere(a: Any, *, size: int | None = None, fill_value: Any = None) -> Any:
    """Indices of the nonzero elements as an ``(N, a.ndim)`` array."""
    a = _operand("argwhere", a)
    nd = _ndim(a)
    idx = nonzero(a if nd else lax.reshape(a, (1,)), size=size, fill_value=fill_value)
    cols = lax.concatenate([lax.expand_dims(i, (1,)) for i in idx], 1)
    if nd == 0:
        return lax.slice_in_dim(cols, 0, 0, axis=1)
    return cols


# ---------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------


def _take_rows(x: Any, idx: Any) -> Any:
    """``x[idx]`` for 2-D ``x`` and in-bounds 1-D integer ``idx``."""
    dnums = lax.GatherDimensionNumbers(offset_dims=(1,), collapsed_slice_dims=(0,),
                                       start_index_map=(0,))
    return lax.gather(x, lax.expand_dims(idx, (1,)), dnums, (1, _shape(x)[1]), mode="clip")


def _differs(nxt: Any, prev: Any, equal_nan: bool) -> Any:
    out = lax.ne(nxt, prev)
    if equal_nan and dtypes.is_inexact(_dtype(nxt)):
        out = lax.bitwise_and(out, lax.bitwise_not(lax.bitwise_and(
            lax.ne(nxt, nxt), lax.ne(prev, prev))))
    return out


def unique(ar: Any, return_index: bool = False, return_inverse: bool = False,
           return_counts: bool = False, axis: int | None = None, *, equal_nan: bool = True,
           size: int | None = None, fill_value: Any = None, sorted: bool = True) -> Any:
    """Sorted unique elements of ``ar`` (flattened, or the unique slices along
    ``axis``), with optional first indices, inverse indices (``ar``'s shape for
    ``axis=None``) and counts.

    With ``size``: exactly ``size`` entries, padded with ``fill_value`` (default: the
    smallest unique value); index and count padding is 0."""
    ar = _operand("unique", ar)
    if axis is None:
        x = _ravel(ar)
        rows = lax.reshape(x, (_shape(x)[0], 1))
    else:
        ax = _canon_axis(axis, _ndim(ar))
        perm_axes = (ax,) + tuple(i for i in range(_ndim(ar)) if i != ax)
        x = lax.transpose(ar, perm_axes)
        rows = lax.reshape(x, (_shape(x)[0], math.prod(_shape(x)[1:])))
    n, m = _shape(rows)
    idt = _int_dtype()
    # sort the rows lexicographically (first column most significant), stably
    cols = [lax.index_in_dim(rows, j, 1, keepdims=False) for j in range(m)] or \
        [lax.full((n,), 0, np.int32)]
    *sorted_cols, perm = lax.sort(tuple(cols) + (lax.iota(idt, n),), is_stable=True,
                                  num_keys=len(cols))
    if n:
        new = [_differs(lax.slice_in_dim(c, 1, n), lax.slice_in_dim(c, 0, n - 1), equal_nan)
               for c in sorted_cols]
        new_row = new[0]
        for d in new[1:]:
            new_row = lax.bitwise_or(new_row, d)
        mask = lax.concatenate([lax.full((1,), True, np.bool_), new_row], 0)
    else:
        mask = lax.full((0,), True, np.bool_)
    pad_values = size is not None
    if size is None:
        size = int(np.count_nonzero(_concrete(mask, "The size argument of jnp.unique")))
    size = int(size)
    (ind,) = nonzero(mask, size=size)
    if n:
        first = _take1d(perm, ind)
        result = _take_rows(rows, first)
    else:
        first = lax.full((size,), 0, idt)
        result = lax.full((size, m), 0, _dtype(rows))
    if pad_values and fill_value is not None and n:
        num = lax.reduce_sum(lax.convert_element_type(mask, idt), (0,))
        valid = lax.lt(lax.broadcasted_iota(idt, (size, m), 0),
                       lax.broadcast_in_dim(num, (size, m), ()))
        fill = lax.convert_element_type(promote_dtypes(fill_value)[0], _dtype(rows))
        result = lax.select(valid, result, lax.broadcast_in_dim(fill, (size, m), ()))
    if axis is None:
        result = lax.reshape(result, (size,))
    else:
        result = lax.reshape(result, (size,) + _shape(x)[1:])
        inv_axes = tuple(perm_axes.index(i) for i in range(_ndim(ar)))
        result = lax.transpose(result, inv_axes)
    ret = [result]
    if return_index:
        ret.append(first)
    if return_inverse:
        if n:
            imask = lax.sub(lax.cumsum(lax.convert_element_type(mask, idt), 0),
                            lax.full((n,), 1, idt))
            # inverse[perm[j]] = imask[j]: sort imask by perm
            _, inv = lax.sort((perm, imask), is_stable=True, num_keys=1)
        else:
            inv = lax.full((0,), 0, idt)
        ret.append(lax.reshape(inv, _shape(ar)) if axis is None else inv)
    if return_counts:
        if n:
            (starts,) = nonzero(mask, size=size + 1)
            later = lax.slice_in_dim(starts, 1, size + 1)
            later = lax.select(lax.ne(later, _full_like(later, 0)), later,
                               _full_like(later, n))
            ends = lax.concatenate([lax.slice_in_dim(starts, 0, 1), later], 0)
            counts = lax.sub(lax.slice_in_dim(ends, 1, size + 1),
                             lax.slice_in_dim(ends, 0, size))
        else:
            counts = lax.full((size,), 0, idt)
        ret.append(counts)
    return ret[0] if len(ret) == 1 else tuple(ret)


def unique_values(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """``unique(x)`` (the array API's name)."""
    return unique(x, size=size, fill_value=fill_value)


def unique_counts(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """``(values, counts)`` of ``unique(x, return_counts=True)``."""
    return unique(x, return_counts=True, size=size, fill_value=fill_value)


def unique_inverse(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """``(values, inverse_indices)``."""
    return unique(x, return_inverse=True, size=size, fill_value=fill_value)


def unique_all(x: Any, /, *, size: int | None = None, fill_value: Any = None) -> Any:
    """``(values, indices, inverse_indices, counts)``."""
    return unique(x, return_index=True, return_inverse=True, return_counts=True, size=size,
                  fill_value=fill_value)


# ---------------------------------------------------------------------------
# bincount, histogram
# ---------------------------------------------------------------------------


def bincount(x: Any, weights: Any = None, minlength: int = 0, *,
             length: int | None = None) -> Any:
    """Counts (or summed ``weights``) of each value of non-negative integer ``x``.

    Under ``jit`` pass a static ``length``; negative values count in bin 0 and values
    ``>= length`` are dropped (as JAX)."""
    x = _operand("bincount", x)
    if not dtypes.is_int(_dtype(x)):
        raise TypeError(f"x argument to bincount must have an integer type; got "
                        f"{_dtype(x)}")
    if _ndim(x) != 1:
        raise ValueError("only 1-dimensional input supported.")
    minlength = int(minlength)
    if minlength < 0:
        raise ValueError("minlength must not be negative")
    if length is None:
        xv = _concrete(x, "The error occurred because of argument 'x' of jnp.bincount. To "
                          "avoid this error, pass a static `length` argument.")
        length = max(minlength, int(xv.max()) + 1 if xv.size else 0)
    else:
        length = int(length)
    if weights is None:
        weights = lax.full(_shape(x), 1, _int_dtype())
    else:
        weights = _operand("bincount", weights)
        if _shape(weights) != _shape(x):
            raise ValueError(f"shape of weights {_shape(weights)} does not match shape of "
                             f"x {_shape(x)}")
    idx = lax.max(x, _full_like(x, 0))
    return _scatter_add1d(length, idx, weights)


def histogram_bin_edges(a: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
                        weights: Any = None) -> Any:
    """The edges ``histogram`` uses: ``bins + 1`` evenly spaced over ``range`` (default:
    the data's min to max), or ``bins`` itself when it is an array."""
    if isinstance(bins, str):
        raise NotImplementedError("string values for `bins` not implemented.")
    (a,) = promote_args_inexact("histogram_bin_edges", a)
    if np.ndim(bins) == 1 or (hasattr(bins, "shape") and len(bins.shape) == 1):
        return promote_dtypes(bins)[0]
    bins = int(bins)
    if bins < 1:
        raise ValueError("`bins` must be positive, when an integer")
    dt = _dtype(a)
    flat = _ravel(a)
    if range is None:
        lo, hi = lax.reduce_min(flat, (0,)), lax.reduce_max(flat, (0,))
    else:
        if len(range) != 2:
            raise ValueError(f"range must be a pair (min, max); got {range}")
        lo, hi = (lax.convert_element_type(promote_dtypes(r)[0], dt) for r in range)
    same = lax.eq(lo, hi)
    half = lax.full((), 0.5, dt)
    lo = lax.select(same, lax.sub(lo, half), lo)
    hi = lax.select(same, lax.add(hi, half), hi)
    step = lax.div(lax.sub(hi, lo), lax.full((), bins, dt))
    edges = lax.add(lax.broadcast_in_dim(lo, (bins + 1,), ()),
                    lax.mul(lax.convert_element_type(lax.iota(np.int32, bins + 1), dt),
                            lax.broadcast_in_dim(step, (bins + 1,), ())))
    last = lax.eq(lax.iota(np.int32, bins + 1), lax.full((bins + 1,), bins, np.int32))
    return lax.select(last, lax.broadcast_in_dim(hi, (bins + 1,), ()), edges)


def histogram(a: Any, bins: Any = 10, range: Sequence[Any] | None = None,  # noqa: A002
              weights: Any = None, density: bool | None = None) -> tuple[Any, Any]:
    """``(counts, bin_edges)``; counts are floats (as JAX), densities if ``density``."""
    check_arraylike("histogram", a)
    if weights is None:
        (a,) = promote_args_inexact("histogram", a)
        weights = _full_like(a, 1)
    else:
        a, weights = promote_args_inexact("histogram", a, weights)
        if _shape(a) != _shape(weights):
            raise ValueError("weights should have the same shape as a.")
    edges = histogram_bin_edges(a, bins, range, weights)
    flat, w = _ravel(a), _ravel(weights)
    nedges = _shape(edges)[0]
    idx = searchsorted(edges, flat, side="right")
    last = lax.index_in_dim(edges, nedges - 1, 0, keepdims=False)
    idx = lax.select(lax.eq(flat, lax.broadcast_in_dim(last, _shape(flat), ())),
                     _full_like(idx, nedges - 1), idx)
    counts = lax.slice_in_dim(_scatter_add1d(nedges, idx, w), 1, nedges)
    if density:
        widths = lax.sub(lax.slice_in_dim(edges, 1, nedges),
                         lax.slice_in_dim(edges, 0, nedges - 1))
        total = lax.broadcast_in_dim(lax.reduce_sum(counts, (0,)), _shape(counts), ())
        counts = lax.div(lax.div(counts, widths), total)
    return counts, edges
