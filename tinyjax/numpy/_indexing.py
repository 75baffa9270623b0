"""NumPy indexing on tinyjax arrays: ``x[idx]``, ``x.at[idx].set(...)`` and friends,
``take``, ``take_along_axis`` and ``where``.

Basic indices (ints, slices, ``None``, ``...``) lower to one ``rev`` + ``slice`` +
``reshape`` (free views when compiled); integer-array indices lower to one
``gather``, with numpy's rule for where the advanced axes go.  As in JAX,
out-of-bound retrievals are clamped (``mode='fill'`` fills instead) and
out-of-bound updates are dropped.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import core, dtypes, lax
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.core import Tracer, get_aval
from tinyjax.errors import NonConcreteBooleanIndexError
from tinyjax.numpy import _extended
from tinyjax.numpy._creation import _canon_axis, asarray
from tinyjax.numpy._extended import is_extended
from tinyjax.numpy._util import (broadcast_shapes, broadcast_to_shape, check_arraylike,
                                 promote_args, staged_as_jit)

_state = core._state
_eval_trace = core.eval_trace


_SLICE_ERROR = ("Array slice indices must have static start/stop/step to be used with "
                "NumPy indexing syntax. Found {}. To index a statically sized array at a "
                "dynamic position, try lax.dynamic_slice/dynamic_update_slice (JAX does "
                "not support dynamically sized arrays within JIT compiled functions).")


# ---------------------------------------------------------------------------
# Parsing an index expression
# ---------------------------------------------------------------------------

class _Entry(NamedTuple):
    """One element of an expanded index: kind is 'slice', 'int', 'array' or 'new'."""
    kind: str
    value: Any = None
    # an ellipsis of no axes came just before: numpy then counts advanced indices on
    # either side as separated (their result axes go first)
    gap_before: bool = False


def _static_slice_part(v: Any, s: slice) -> int | None:
    if v is None:
        return None
    if isinstance(v, (ArrayImpl, Tracer)):
        c = v.to_concrete_value() if isinstance(v, Tracer) else v._value
        if c is None:
            raise IndexError(_SLICE_ERROR.format(s))
        v = c
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"slice indices must be integers or None, got {v!r}") from None


def _concrete_mask(m: Any) -> np.ndarray:
    if isinstance(m, Tracer):
        v = m.to_concrete_value()
        if v is None:
            raise NonConcreteBooleanIndexError(
                f"Array boolean indices must be concrete; got {m.aval.str_short()}\n\n"
                "See https://docs.jax.dev/en/latest/errors.html"
                "#jax.errors.NonConcreteBooleanIndexError")
        return np.asarray(v)
    return np.asarray(m._value if isinstance(m, ArrayImpl) else m)


def _classify(i: Any, position: int, idx: Any) -> list[Any]:
    """Turn one user index element into entries (a mask may give several) or a
    ('mask', array) / 'ellipsis' marker."""
    if i is None:
        return [_Entry("new")]
    if i is Ellipsis:
        return ["ellipsis"]
    if isinstance(i, slice):
        return [_Entry("slice", slice(_static_slice_part(i.start, i),
                                      _static_slice_part(i.stop, i),
                                      _static_slice_part(i.step, i)))]
    if isinstance(i, (bool, np.bool_)):
        if not i:
            raise NotImplementedError("indexing with a scalar False is not supported")
        return [_Entry("new")]
    if isinstance(i, (int, np.integer)):
        return [_Entry("int", int(i))]
    if isinstance(i, (list, tuple)):
        if any(isinstance(v, (ArrayImpl, Tracer)) for v in _flat(i)):
            i = asarray(i)
        else:
            i = np.asarray(i)
            if i.size == 0 and i.dtype == np.float64:
                i = i.astype(np.int32)
    if isinstance(i, (ArrayImpl, Tracer, np.ndarray, np.generic)):
        dt = get_aval(i).dtype if isinstance(i, (ArrayImpl, Tracer)) else np.asarray(i).dtype
        if dt == np.bool_:
            mask = _concrete_mask(i)
            if mask.ndim == 0:
                if not mask:
                    raise NotImplementedError("indexing with a scalar False is not supported")
                return [_Entry("new")]
            return [("mask", mask)]
        if dtypes.is_int(dt):
            return [_Entry("array", i)]
    raise TypeError(f"Indexer must have integer or boolean type, got indexer with type "
                    f"{getattr(i, 'dtype', type(i).__name__)} at position {position}, "
                    f"indexer value {i}")


def _flat(xs):
    for x in xs:
        if isinstance(x, (list, tuple)):
            yield from _flat(x)
        else:
            yield x


def _expand_index(idx: Any, shape: tuple[int, ...]) -> list[_Entry]:
    """The index as one entry per consumed axis (plus 'new' entries), with the
    ellipsis expanded, masks turned into integer arrays and trailing full slices."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    items: list[Any] = []
    for pos, i in enumerate(idx):
        items.extend(_classify(i, pos, idx))
    consumed = sum(1 if isinstance(e, _Entry) and e.kind != "new" else
                   e[1].ndim if isinstance(e, tuple) and e[0] == "mask" else 0
                   for e in items)
    nd = len(shape)
    if sum(1 for e in items if e == "ellipsis") > 1:
        raise IndexError("An index can only have a single ellipsis ('...')")
    if consumed > nd:
        raise IndexError(f"Too many indices: {nd}-dimensional array indexed with "
                         f"{consumed} regular indices.")
    out: list[_Entry] = []
    gap = False
    for e in items:
        after_gap, gap = gap, False  # the gap is the next element's, whatever it is
        if e == "ellipsis":
            out.extend([_Entry("slice", slice(None))] * (nd - consumed))
            gap = nd == consumed
            continue
        if isinstance(e, tuple) and not isinstance(e, _Entry):
            mask = e[1]
            axis = sum(1 for o in out if o.kind != "new")
            want = shape[axis:axis + mask.ndim]
            if mask.shape != want:
                raise IndexError(f"boolean index did not match shape of indexed array in "
                                 f"index {axis}: got {mask.shape}, expected {want}")
            new = [_Entry("array", np.asarray(nz, np.int32)) for nz in np.nonzero(mask)]
        else:
            new = [e]
        if after_gap:
            new[0] = new[0]._replace(gap_before=True)
        out.extend(new)
    n_axes = sum(1 for o in out if o.kind != "new")
    out.extend([_Entry("slice", slice(None))] * (nd - n_axes))
    return out


# ---------------------------------------------------------------------------
# getitem
# ---------------------------------------------------------------------------

def _as_numpy_index(idx: Any, shape: tuple[int, ...]) -> tuple | None:
    """``idx`` as an index that numpy's own indexing answers as JAX does (integers,
    slices, ``None``, one ``...`` and integer arrays on the host, every integer in
    bounds), or None when it needs ``_rewriting_take`` (tracers, out-of-bound integers
    that JAX clamps, boolean masks, device arrays, sequences)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    out, axis, ellipsis = [], 0, False
    for position, i in enumerate(idx):
        t = type(i)
        if t is int:
            if axis >= len(shape) or not -shape[axis] <= i < shape[axis]:
                return None
            axis += 1
        elif t is slice:
            if not all(v is None or type(v) is int for v in (i.start, i.stop, i.step)):
                return None
            axis += 1
        elif t is ArrayImpl or t is np.ndarray:
            if t is ArrayImpl:
                if i._device is not None:
                    return None
                i = i._value
            if i.dtype.kind not in "iu" or axis >= len(shape):
                return None
            if i.size and not -shape[axis] <= i.min() <= i.max() < shape[axis]:
                return None
            axis += 1
        elif i is None:
            pass
        elif i is Ellipsis and not ellipsis:
            ellipsis = True
            axis = len(shape) - sum(1 for j in idx[position + 1:]
                                    if j is not None and j is not Ellipsis)
        else:
            return None
        out.append(i)
    return tuple(out) if axis <= len(shape) else None


def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with numpy's semantics (out-of-bound integers are clamped, as in JAX)."""
    if _state.trace is _eval_trace and type(x) is ArrayImpl and x._device is None:
        host_idx = _as_numpy_index(idx, x.shape)
        if host_idx is not None:
            return wrap_eager(np.asarray(x._value[host_idx]), x.weak_type)
    return _rewriting_take(x, idx)


def _int_out_of_bounds(entries: list, shape: tuple[int, ...]) -> bool:
    axes = [e for e in entries if e.kind != "new"]
    return any(e.kind == "int" and n and not -n <= e.value < n for e, n in zip(axes, shape))


def _rewriting_take(x: Any, idx: Any, *, indices_are_sorted: bool = False,
                    unique_indices: bool = False, mode: Any = None,
                    fill_value: Any = None, ints_as_arrays: bool = False) -> Any:
    x = asarray(x)
    shape = get_aval(x).shape
    entries = _expand_index(idx, shape)
    has_arrays = any(e.kind == "array" for e in entries)
    # an out-of-bound static integer becomes a (clamping) gather, as in JAX: checkify's
    # index checks see it there
    if has_arrays or ints_as_arrays or _int_out_of_bounds(entries, shape):
        entries = [e._replace(kind="array", value=np.asarray(e.value, np.int32))
                   if e.kind == "int" else e for e in entries]
        has_arrays = any(e.kind == "array" for e in entries)

    # 1. basic slicing of every axis (advanced axes are kept whole)
    starts, limits, strides, rev_axes, kept = [], [], [], [], []
    axis = 0
    for e in entries:
        if e.kind == "new":
            continue
        n = shape[axis]
        if e.kind == "slice":
            start, stop, step = e.value.indices(n)
            count = len(range(start, stop, step))
            if step < 0:
                rev_axes.append(axis)
                start = n - 1 - start
                step = -step
            limit = start + (count - 1) * step + 1 if count else start
            starts.append(start), limits.append(limit), strides.append(step)
            kept.append(count)
        elif e.kind == "int":
            if n == 0:
                raise IndexError(f"index {e.value} is out of bounds for axis {axis} with "
                                 f"size 0")
            i = e.value + n if e.value < 0 else e.value
            i = min(max(i, 0), n - 1)  # JAX clamps out-of-bound static indices
            starts.append(i), limits.append(i + 1), strides.append(1)
        else:
            starts.append(0), limits.append(n), strides.append(1)
        axis += 1
    if rev_axes:
        x = lax.rev(x, tuple(rev_axes))
    x = lax.slice(x, starts, limits, strides)

    if not has_arrays:
        out_shape = []
        it = iter(kept)
        for e in entries:
            if e.kind == "slice":
                out_shape.append(next(it))
            elif e.kind == "new":
                out_shape.append(1)
        out_shape = tuple(out_shape)
        return x if get_aval(x).shape == out_shape else lax.reshape(x, out_shape)

    # 2. one gather over the advanced axes, moved to the front
    axes = [e for e in entries if e.kind != "new"]
    adv_axes = [a for a, e in enumerate(axes) if e.kind == "array"]
    rest_axes = [a for a, e in enumerate(axes) if e.kind != "array"]
    xs = get_aval(x).shape
    arrays = [_normalize_indices(axes[a].value, xs[a]) for a in adv_axes]
    bshape = broadcast_shapes(*(get_aval(a).shape for a in arrays))
    idt = _index_dtype(arrays)
    arrays = [broadcast_to_shape(lax.convert_element_type(a, idt), bshape) for a in arrays]
    k = len(arrays)
    indices = lax.concatenate([lax.reshape(a, bshape + (1,)) for a in arrays], len(bshape)) \
        if k > 1 else lax.reshape(arrays[0], bshape + (1,))
    perm = tuple(adv_axes + rest_axes)
    if perm != tuple(range(len(perm))):
        x = lax.transpose(x, perm)
    rest_shape = tuple(xs[a] for a in rest_axes)
    nb = len(bshape)
    dnums = lax.GatherDimensionNumbers(
        offset_dims=tuple(range(nb, nb + len(rest_shape))),
        collapsed_slice_dims=tuple(range(k)), start_index_map=tuple(range(k)))
    if 0 in bshape + rest_shape:  # nothing to gather (as JAX: x of size 0, no indices)
        out = lax.full(bshape + rest_shape, 0, get_aval(x).dtype)
    else:
        out = lax.gather(x, indices, dnums, (1,) * k + rest_shape,
                         indices_are_sorted=indices_are_sorted,
                         unique_indices=unique_indices, mode=mode, fill_value=fill_value)

    # 3. new axes, and the advanced block moved where numpy puts it
    nonadv = [e for e in entries if e.kind != "array"]
    it = iter(rest_shape)
    nonadv_sizes = [1 if e.kind == "new" else next(it) for e in nonadv]
    target = bshape + tuple(nonadv_sizes)
    if get_aval(out).shape != target:
        out = lax.reshape(out, target)
    positions = [j for j, e in enumerate(entries) if e.kind == "array"]
    contiguous = positions == list(range(positions[0], positions[-1] + 1)) and not any(
        entries[j].gap_before for j in positions[1:])
    if contiguous and positions[0] > 0:
        p = positions[0]  # the entries before it are all non-advanced
        n_nonadv = len(nonadv_sizes)
        perm = tuple(range(nb, nb + p)) + tuple(range(nb)) + tuple(range(nb + p,
                                                                         nb + n_nonadv))
        out = lax.transpose(out, perm)
    return out


def _index_dtype(arrays: list[Any]) -> np.dtype:
    dts = {get_aval(a).dtype for a in arrays}
    return np.dtype(np.int64) if np.dtype(np.int64) in dts else np.dtype(np.int32)


def _normalize_indices(i: Any, n: int) -> Any:
    """Negative indices count from the end (once)."""
    if isinstance(i, (np.ndarray, np.generic)):
        i = np.asarray(i)
        i = np.where(i < 0, i + n, i)
        dt = np.int64 if i.dtype == np.int64 and dtypes.canonicalize_dtype(np.int64) == \
            np.int64 else np.int32
        return asarray(i.astype(dt))
    i = asarray(i)
    if dtypes.is_unsigned(get_aval(i).dtype):
        return lax.convert_element_type(i, np.int32)
    zero = lax.full((), 0, get_aval(i).dtype)
    return lax.select(lax.lt(i, broadcast_to_shape(zero, get_aval(i).shape)),
                      lax.add(i, lax.full(get_aval(i).shape, n, get_aval(i).dtype)), i)


# ---------------------------------------------------------------------------
# .at[idx] updates
# ---------------------------------------------------------------------------

class _IndexUpdateHelper:
    """``x.at``: ``x.at[idx].set(y)`` and friends (functional index updates)."""
    __slots__ = ("array",)

    def __init__(self, array: Any):
        self.array = array

    def __getitem__(self, index: Any) -> "_IndexUpdateRef":
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


class _IndexUpdateRef:
    """``x.at[idx]``: each method returns an updated copy of ``x``.  Out-of-bound
    updates are dropped (``mode='clip'`` clamps them instead)."""
    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: Any):
        self.array = array
        self.index = index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode: Any = None, fill_value: Any = None, out_sharding: Any = None) -> Any:
        """``x[idx]`` (with the gather ``mode`` and ``fill_value`` as options)."""
        if mode is None and fill_value is None:
            return getitem(self.array, self.index)
        return _rewriting_take(self.array, self.index, indices_are_sorted=indices_are_sorted,
                               unique_indices=unique_indices, mode=mode,
                               fill_value=fill_value, ints_as_arrays=True)

    def set(self, values: Any, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] = values``."""
        return _scatter_update(self.array, self.index, values, lax.scatter,
                               indices_are_sorted, unique_indices, mode)

    def add(self, values: Any, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] += values`` (repeated indices accumulate)."""
        return _scatter_update(self.array, self.index, values, lax.scatter_add,
                               indices_are_sorted, unique_indices, mode)

    def subtract(self, values: Any, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] -= values``."""
        return _scatter_update(self.array, self.index, values, lax.scatter_sub,
                               indices_are_sorted, unique_indices, mode)

    def multiply(self, values: Any, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] *= values``."""
        return _scatter_update(self.array, self.index, values, lax.scatter_mul,
                               indices_are_sorted, unique_indices, mode)

    mul = multiply

    def divide(self, values: Any, *, indices_are_sorted: bool = False,
               unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] /= values``."""
        from tinyjax.numpy._ufuncs import divide
        x = asarray(self.array)
        ones = lax.full(get_aval(x).shape, 1, get_aval(x).dtype)
        d = _scatter_update(ones, self.index, values, lax.scatter_mul,
                            indices_are_sorted, unique_indices, mode)
        return lax.convert_element_type(divide(x, d), get_aval(x).dtype)

    def power(self, values: Any, *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] **= values``."""
        from tinyjax.numpy._ufuncs import power
        x = asarray(self.array)
        ones = lax.full(get_aval(x).shape, 1, get_aval(x).dtype)
        e = _scatter_update(ones, self.index, values, lax.scatter,
                            indices_are_sorted, unique_indices, mode)
        return power(x, e)

    def min(self, values: Any, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] = minimum(x[idx], values)``."""
        return _scatter_update(self.array, self.index, values, lax.scatter_min,
                               indices_are_sorted, unique_indices, mode)

    def max(self, values: Any, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] = maximum(x[idx], values)``."""
        return _scatter_update(self.array, self.index, values, lax.scatter_max,
                               indices_are_sorted, unique_indices, mode)

    def apply(self, func: Callable, *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: Any = None) -> Any:
        """``x[idx] = func(x[idx])`` (``func`` must be elementwise)."""
        x = asarray(self.array)
        got = _rewriting_take(x, self.index, mode="clip")
        return _scatter_update(x, self.index, func(got), lax.scatter,
                               indices_are_sorted, unique_indices, mode)


def _scatter_update(x: Any, idx: Any, values: Any, scatter_fn: Callable,
                    indices_are_sorted: bool, unique_indices: bool, mode: Any) -> Any:
    """Scatter into the flattened ``x`` at the flat positions that ``x[idx]`` reads:
    the positions come from indexing an iota the same way (out-of-bound positions
    are filled with ``x.size``, which the scatter then drops)."""
    x = asarray(x)
    check_arraylike("at", values)
    aval = get_aval(x)
    n = math.prod(aval.shape)
    idt = np.int32 if n < 2 ** 31 else np.int64
    pos = lax.broadcasted_iota(idt, (n,), 0)
    pos = lax.reshape(pos, aval.shape) if aval.shape != (n,) else pos
    clip = mode is not None and lax.GatherScatterMode.from_any(mode) == \
        lax.GatherScatterMode.CLIP
    positions = _rewriting_take(pos, idx, mode="clip" if clip else "fill", fill_value=n,
                                ints_as_arrays=True, indices_are_sorted=indices_are_sorted,
                                unique_indices=unique_indices)
    pshape = get_aval(positions).shape
    y = asarray(values)
    yaval = get_aval(y)
    if yaval.dtype != aval.dtype:
        from tinyjax.lax.elementwise import _convert_weak
        y = _convert_weak(y, aval.dtype, aval.weak_type) if yaval.weak_type else \
            lax.convert_element_type(y, aval.dtype)
    ys = yaval.shape
    while len(ys) > len(pshape) and ys[0] == 1:
        ys = ys[1:]
    if ys != yaval.shape:
        y = lax.reshape(y, ys)
    try:
        y = broadcast_to_shape(y, pshape)
    except ValueError:
        raise ValueError(f"shape mismatch: value array of shape {yaval.shape} could not be "
                         f"broadcast to indexing result of shape {pshape}") from None
    m = math.prod(pshape)
    flat = lax.reshape(x, (n,)) if aval.shape != (n,) else x
    dnums = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                        scatter_dims_to_operand_dims=(0,))
    out = scatter_fn(flat, lax.reshape(positions, (m, 1)), lax.reshape(y, (m,)), dnums,
                     indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                     mode="clip" if clip else "drop")
    return lax.reshape(out, aval.shape) if aval.shape != (n,) else out


# ---------------------------------------------------------------------------
# take, take_along_axis, where
# ---------------------------------------------------------------------------

def _gather_mode(mode: Any, fun_name: str) -> str:
    if mode is None or mode == "fill" or mode == "drop":
        return "fill"
    if mode in ("clip", "wrap", "promise_in_bounds"):
        return mode
    if mode == "raise":
        raise NotImplementedError(f"The 'raise' mode to jnp.{fun_name} is not supported.")
    raise ValueError(f"Invalid mode '{mode}' for jnp.{fun_name}")


def take(a: Any, indices: Any, axis: int | None = None, out: None = None,
         mode: str | None = None, unique_indices: bool = False,
         indices_are_sorted: bool = False, fill_value: Any = None) -> Any:
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened ``a`` when None).

    ``mode``: 'fill' (default: out-of-bound indices give ``fill_value``, NaN for
    floats), 'clip', 'wrap'.  Negative indices count from the end.
    """
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.take is not supported.")
    check_arraylike("take", a, indices)
    a = asarray(a)
    if axis is None:
        a = lax.reshape(a, (math.prod(get_aval(a).shape),))
        axis = 0
    shape = get_aval(a).shape
    axis = _canon_axis(axis, len(shape))
    mode = _gather_mode(mode, "take")
    idx = asarray(indices)
    if not dtypes.is_int(get_aval(idx).dtype):
        raise TypeError(f"take: indices must be integers, got {get_aval(idx).dtype}")
    n = shape[axis]
    if mode == "wrap":
        idx = lax.rem(idx, lax.full(get_aval(idx).shape, n, get_aval(idx).dtype))
        mode = "promise_in_bounds"
    idx = _normalize_indices(idx, n)
    ishape = get_aval(idx).shape
    slice_sizes = tuple(1 if d == axis else s for d, s in enumerate(shape))
    offset = tuple(range(axis)) + tuple(range(axis + len(ishape), len(shape) - 1 +
                                                len(ishape)))
    dnums = lax.GatherDimensionNumbers(offset_dims=offset, collapsed_slice_dims=(axis,),
                                       start_index_map=(axis,))
    return lax.gather(a, lax.reshape(idx, ishape + (1,)), dnums, slice_sizes,
                      indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                      mode=mode, fill_value=fill_value)


def take_along_axis(arr: Any, indices: Any, axis: int | None, mode: Any = None,
                    fill_value: Any = None) -> Any:
    """``arr`` indexed by ``indices`` along ``axis`` (numpy's broadcasting of the other
    axes); ``mode`` 'fill' (default) or 'clip'."""
    check_arraylike("take_along_axis", arr, indices)
    arr, idx = asarray(arr), asarray(indices)
    if axis is None:
        if get_aval(idx).ndim != 1:
            raise ValueError("when axis=None, `indices` must have a single dimension.")
        arr = lax.reshape(arr, (math.prod(get_aval(arr).shape),))
        axis = 0
    shape, ishape = get_aval(arr).shape, get_aval(idx).shape
    if len(shape) != len(ishape):
        raise ValueError("indices and arr must have the same number of dimensions; "
                         f"{len(ishape)} vs. {len(shape)}")
    axis = _canon_axis(axis, len(shape))
    if not dtypes.is_int(get_aval(idx).dtype):
        raise TypeError(f"take_along_axis indices must be of integer type, got "
                        f"{get_aval(idx).dtype}")
    full_idx = []
    for d, n in enumerate(shape):
        if d == axis:
            full_idx.append(idx)
        else:
            s = [1] * len(shape)
            s[d] = n
            full_idx.append(np.arange(n, dtype=np.int32).reshape(s))
    return _rewriting_take(arr, tuple(full_idx), mode=_gather_mode(mode, "take_along_axis"),
                           fill_value=fill_value)


def where(condition: Any, x: Any = None, y: Any = None, /, *, size: int | None = None,
          fill_value: Any = None) -> Any:
    """``x`` where ``condition`` else ``y`` (broadcast, promoted); with one argument,
    ``nonzero(condition, size=size, fill_value=fill_value)``."""
    if x is None and y is None:
        from tinyjax.numpy._sorting import nonzero
        return nonzero(condition, size=size, fill_value=fill_value)
    if x is None or y is None:
        raise ValueError("Either both or neither of the x and y arguments should be "
                         f"provided to jax.numpy.where, got {x} and {y}.")
    extended = is_extended(x) or is_extended(y)  # key arrays: selected key by key
    check_arraylike("where", condition, *(() if extended else (x, y)))
    cond = asarray(condition)
    if get_aval(cond).dtype != np.bool_:
        cond = lax.ne(cond, lax.full((), 0, get_aval(cond).dtype))
    if extended:
        return _extended.select(cond, x, y)
    x, y = promote_args("where", x, y)
    return _where(cond, x, y)


@staged_as_jit
def _where(condition: Any, x: Any, y: Any) -> Any:
    shape = broadcast_shapes(get_aval(condition).shape, get_aval(x).shape, get_aval(y).shape)
    return lax.select(broadcast_to_shape(condition, shape), broadcast_to_shape(x, shape),
                      broadcast_to_shape(y, shape))


__all__ = ["take", "take_along_axis", "where"]
