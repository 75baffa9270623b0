"""Shape manipulation: reshape, transpose, joining, splitting, tiling, flipping, padding.

Everything lowers to lax movement primitives (reshape, transpose, broadcast_in_dim,
slice, rev, pad, concatenate), which the compiler folds into views.
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

from tinyjax import core, lax
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.core import get_aval
from tinyjax.numpy._creation import _canon_axis, _shape_tuple, asarray, concrete_value
from tinyjax.numpy._extended import is_extended, on_data, on_data_of_all
from tinyjax.numpy._util import broadcast_shapes as _broadcast_shapes_impl
from tinyjax.numpy._util import broadcast_to_shape, check_arraylike, promote_dtypes


def _shape(x: Any) -> tuple[int, ...]:
    return get_aval(x).shape


def canonicalize_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """An int or a sequence of ints as sorted-by-appearance non-negative axes,
    rejecting repeats (numpy's errors)."""
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    out = tuple(_canon_axis(a, ndim) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis: {tuple(axes)}")
    return out


# ---------------------------------------------------------------------------
# Basic shape queries
# ---------------------------------------------------------------------------

def ndim(a: Any) -> int:
    """The number of dimensions of ``a`` (any object with ``ndim``, as JAX's)."""
    return a.ndim if hasattr(a, "ndim") else len(shape(a))


def shape(a: Any) -> tuple[int, ...]:
    """The shape of ``a``: any object with ``shape`` (a ShapeDtypeStruct, a key array)
    gives it, as JAX's; other values are arrays."""
    return tuple(a.shape) if hasattr(a, "shape") else get_aval(asarray(a)).shape


def size(a: Any, axis: int | None = None) -> int:
    """The number of elements of ``a`` (along ``axis`` when given)."""
    if axis is None and hasattr(a, "size"):
        return a.size
    s = shape(a)
    return math.prod(s) if axis is None else s[_canon_axis(axis, len(s))]


# ---------------------------------------------------------------------------
# Reshaping and transposing
# ---------------------------------------------------------------------------

def _resolve_shape(old: tuple[int, ...], new: Any) -> tuple[int, ...]:
    new = _shape_tuple_neg(new)
    n = math.prod(old)
    if new.count(-1) > 1:
        raise ValueError("can only specify one unknown dimension")
    if -1 in new:
        known = math.prod(d for d in new if d != -1)
        if known == 0 or n % known:
            raise TypeError(f"cannot reshape array of shape {old} (size {n}) into shape "
                            f"{new} because the product of specified axis sizes "
                            f"({known}) does not evenly divide {n}")
        new = tuple(n // known if d == -1 else d for d in new)
    if any(d < 0 for d in new):
        raise ValueError(f"negative dimensions are not allowed in reshape: {new}")
    if math.prod(new) != n:
        raise TypeError(f"cannot reshape array of shape {old} (size {n}) into shape "
                        f"{new} (size {math.prod(new)})")
    return new


def _shape_tuple_neg(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) and np.ndim(shape) == 0:
        shape = (shape,)
    try:
        return tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"Shapes must be 1D sequences of concrete values of integer type, "
                        f"got {shape}.") from None


def reshape(a: Any, shape: Any = None, order: str = "C", *, newshape: Any = None,
            copy: bool | None = None, out_sharding: Any = None) -> Any:
    """``a`` with a new shape (one dimension may be -1); ``order`` 'C' or 'F';
    ``out_sharding``: the result's layout (explicit sharding)."""
    if shape is None:
        if newshape is None:
            raise TypeError("reshape() missing required argument 'shape'")
        shape = newshape
    if is_extended(a) and order == "C":
        new = _resolve_shape(a.shape, shape)
        return on_data(a, lambda d, tail: lax.reshape(d, new + tail))
    check_arraylike("reshape", a)
    a = asarray(a)
    old = _shape(a)
    new = _resolve_shape(old, shape)
    if order == "C":
        return lax.reshape(a, new, out_sharding=out_sharding) \
            if new != old or out_sharding is not None else a
    if order == "F":
        x = transpose(a)
        out = transpose(lax.reshape(x, new[::-1]))
        return out if out_sharding is None else lax.with_sharding_constraint(out, out_sharding)
    if order == "A":
        raise NotImplementedError("jnp.reshape does not support order='A'.")
    raise ValueError(f"Unexpected value for 'order' argument: {order}.")


def ravel(a: Any, order: str = "C") -> Any:
    """``a`` flattened to one dimension."""
    if type(a) is ArrayImpl and a._device is None and order == "C" and core.is_eager():
        return wrap_eager(a._value.reshape(-1), a.weak_type)  # a numpy view: no copy
    check_arraylike("ravel", a)
    return reshape(a, (-1,), order=order)


def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """``a`` with its axes permuted (reversed when ``axes`` is None)."""
    check_arraylike("transpose", a)
    a = asarray(a)
    nd = get_aval(a).ndim
    if axes is None:
        perm = tuple(range(nd))[::-1]
    else:
        perm = tuple(_canon_axis(ax, nd) for ax in axes)
        if len(perm) != nd or sorted(perm) != list(range(nd)):
            raise ValueError(f"axes {tuple(axes)} don't match array of dimension {nd}; "
                             "transpose permutation isn't a permutation of operand "
                             "dimensions")
    return a if perm == tuple(range(nd)) else lax.transpose(a, perm)


def permute_dims(a: Any, /, axes: Sequence[int]) -> Any:
    """Array API name of :func:`transpose`."""
    return transpose(a, axes)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    return swapaxes(x, -1, -2)


def moveaxis(a: Any, source: Any, destination: Any) -> Any:
    """Move the axes ``source`` to the positions ``destination``."""
    a = asarray(a)
    nd = get_aval(a).ndim
    src = canonicalize_axes(source, nd)
    dst = canonicalize_axes(destination, nd)
    if len(src) != len(dst):
        raise ValueError("Inconsistent number of elements: "
                         f"{len(src)} vs {len(dst)}")
    perm = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        perm.insert(d, s)
    return transpose(a, perm)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """Interchange two axes."""
    a = asarray(a)
    nd = get_aval(a).ndim
    perm = list(range(nd))
    i, j = _canon_axis(axis1, nd), _canon_axis(axis2, nd)
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def squeeze(a: Any, axis: Any = None) -> Any:
    """Remove size-1 axes (all of them, or those in ``axis``)."""
    if is_extended(a):
        s = tuple(a.shape)
        axes = tuple(i for i, d in enumerate(s) if d == 1) if axis is None else \
            canonicalize_axes(axis, len(s))
        return on_data(a, lambda d, tail: squeeze(d, axes))
    check_arraylike("squeeze", a)
    a = asarray(a)
    s = _shape(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(s) if d == 1)
    else:
        axes = canonicalize_axes(axis, len(s))
        if any(s[i] != 1 for i in axes):
            raise ValueError("cannot select an axis to squeeze out which has size not "
                             f"equal to one, got shape={s} and dimensions={axes}")
    return lax.squeeze(a, axes) if axes else a


def expand_dims(a: Any, axis: Any) -> Any:
    """Insert size-1 axes at the positions ``axis`` of the result."""
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    if is_extended(a):
        axes = canonicalize_axes(axes, len(a.shape) + len(axes))
        return on_data(a, lambda d, tail: lax.expand_dims(d, axes))
    check_arraylike("expand_dims", a)
    a = asarray(a)
    out_nd = get_aval(a).ndim + len(axes)
    return lax.expand_dims(a, canonicalize_axes(axes, out_nd))


# ---------------------------------------------------------------------------
# Broadcasting
# ---------------------------------------------------------------------------

def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that ``shapes`` broadcast to."""
    return _broadcast_shapes_impl(*(_shape_tuple(s, "broadcast_shapes") for s in shapes))


def broadcast_to(array: Any, shape: Any) -> Any:
    """``array`` broadcast to ``shape`` (numpy's rules)."""
    if is_extended(array):
        shape = _shape_tuple(shape, "broadcast_to")
        return on_data(array, lambda d, tail: broadcast_to(d, shape + tail))
    check_arraylike("broadcast_to", array)
    x = asarray(array)
    shape = _shape_tuple(shape, "broadcast_to")
    xs = _shape(x)
    if len(shape) < len(xs) or any(d not in (1, t) for d, t in
                                   zip(xs[::-1], shape[::-1])):
        raise ValueError(f"Incompatible shapes for broadcasting: {xs} and requested "
                         f"shape {shape}")
    return broadcast_to_shape(x, shape)


def broadcast_arrays(*args: Any) -> list[Any]:
    """The arguments broadcast against each other (dtypes unchanged)."""
    xs = [asarray(a) for a in args]
    shp = _broadcast_shapes_impl(*(_shape(x) for x in xs))
    return [broadcast_to_shape(x, shp) for x in xs]


def atleast_1d(*arys: Any) -> Any:
    """Inputs viewed with at least one dimension."""
    out = [reshape(a, (1,)) if ndim(a) == 0 else asarray(a) for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys: Any) -> Any:
    """Inputs viewed with at least two dimensions (a 1-d input becomes a row)."""
    out = []
    for a in arys:
        a = asarray(a)
        nd = get_aval(a).ndim
        out.append(reshape(a, (1,) * (2 - nd) + _shape(a)) if nd < 2 else a)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys: Any) -> Any:
    """Inputs viewed with at least three dimensions: (N,) -> (1, N, 1),
    (M, N) -> (M, N, 1)."""
    out = []
    for a in arys:
        a = asarray(a)
        s = _shape(a)
        if len(s) == 0:
            a = reshape(a, (1, 1, 1))
        elif len(s) == 1:
            a = reshape(a, (1, s[0], 1))
        elif len(s) == 2:
            a = reshape(a, s + (1,))
        out.append(a)
    return out[0] if len(out) == 1 else out


# ---------------------------------------------------------------------------
# Joining
# ---------------------------------------------------------------------------

def _join_operands(name: str, arrays: Any, dtype: Any) -> list[Any]:
    if hasattr(arrays, "shape") and not isinstance(arrays, (list, tuple)):
        arrays = [arrays[i] for i in range(_shape(asarray(arrays))[0])]
    arrays = list(arrays)
    if not arrays:
        verb = "concatenate" if name == "concatenate" else "stack"
        raise ValueError(f"Need at least one array to {verb}.")
    check_arraylike(name, *arrays)
    ops = promote_dtypes(*[asarray(a) for a in arrays])
    if dtype is not None:
        ops = [lax.convert_element_type(o, dtype) for o in ops]
    return ops


def concatenate(arrays: Any, axis: int | None = 0, dtype: Any = None) -> Any:
    """Join arrays along an existing axis (``axis=None``: of the flattened arrays)."""
    if any(is_extended(a) for a in arrays):
        if axis is None:
            return concatenate([ravel(a) for a in arrays])
        nd = len(arrays[0].shape)
        return on_data_of_all(arrays, lambda ds, tail: concatenate(ds, _canon_axis(axis, nd)))
    ops = _join_operands("concatenate", arrays, dtype)
    if axis is None:
        ops = [ravel(o) for o in ops]
        axis = 0
    nd = get_aval(ops[0]).ndim
    if nd == 0:
        raise ValueError("Zero-dimensional arrays cannot be concatenated.")
    for o in ops:
        if get_aval(o).ndim != nd:
            raise ValueError("All input arrays must have the same number of dimensions, "
                             f"got shapes {[_shape(o) for o in ops]}")
    axis = _canon_axis(axis, nd)
    return ops[0] if len(ops) == 1 else lax.concatenate(ops, axis)


def concat(arrays: Any, /, *, axis: int | None = 0) -> Any:
    """Array API name of :func:`concatenate`."""
    return concatenate(arrays, axis)


def stack(arrays: Any, axis: int = 0, out: None = None, dtype: Any = None) -> Any:
    """Join arrays along a new axis."""
    if any(is_extended(a) for a in arrays):
        axis = _canon_axis(axis, len(arrays[0].shape) + 1)
        return on_data_of_all(arrays, lambda ds, tail: stack(ds, axis))
    ops = _join_operands("stack", arrays, dtype)
    s = _shape(ops[0])
    for o in ops:
        if _shape(o) != s:
            raise ValueError("All input arrays must have the same shape.")
    axis = _canon_axis(axis, len(s) + 1)
    return concatenate([lax.expand_dims(o, (axis,)) for o in ops], axis)


def vstack(tup: Any, dtype: Any = None) -> Any:
    """Stack along the first axis (1-d inputs become rows)."""
    return concatenate([atleast_2d(t) for t in _join_operands("vstack", tup, None)], 0,
                       dtype)


row_stack = vstack


def hstack(tup: Any, dtype: Any = None) -> Any:
    """Stack along the second axis (the first for 1-d inputs)."""
    ops = [atleast_1d(t) for t in _join_operands("hstack", tup, None)]
    return concatenate(ops, 0 if get_aval(ops[0]).ndim == 1 else 1, dtype)


def dstack(tup: Any, dtype: Any = None) -> Any:
    """Stack along the third axis."""
    return concatenate([atleast_3d(t) for t in _join_operands("dstack", tup, None)], 2,
                       dtype)


def column_stack(tup: Any) -> Any:
    """Stack 1-d arrays as columns (2-d arrays as they are)."""
    ops = []
    for t in _join_operands("column_stack", tup, None):
        ops.append(reshape(t, (-1, 1)) if get_aval(t).ndim < 2 else t)
    return concatenate(ops, 1)


# ---------------------------------------------------------------------------
# Splitting
# ---------------------------------------------------------------------------

def _split(name: str, ary: Any, indices_or_sections: Any, axis: int,
           strict: bool) -> list[Any]:
    ary = asarray(ary)
    s = _shape(ary)
    axis = _canon_axis(axis, len(s))
    n = s[axis]
    ios = concrete_value(indices_or_sections, f"'indices_or_sections' of jnp.{name}")
    if np.ndim(ios) == 0:
        sections = operator.index(ios)
        if sections <= 0:
            raise ValueError("number sections must be larger than 0.")
        if strict and n % sections:
            raise ValueError("array split does not result in an equal division: "
                             f"{n} into {sections}")
        q, r = divmod(n, sections)
        sizes = [q + 1] * r + [q] * (sections - r)
        bounds = np.cumsum([0] + sizes)
    else:
        idx = [operator.index(i) for i in np.asarray(ios).tolist()]
        bounds = [0] + [min(max(i + n if i < 0 else i, 0), n) for i in idx] + [n]
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        hi = max(int(lo), int(hi))
        out.append(lax.slice_in_dim(ary, int(lo), hi, 1, axis))
    return out


def split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Split into equal sections, or at the given indices."""
    return _split("split", ary, indices_or_sections, axis, strict=True)


def array_split(ary: Any, indices_or_sections: Any, axis: int = 0) -> list[Any]:
    """Like :func:`split`, but sections may differ in size by one."""
    return _split("array_split", ary, indices_or_sections, axis, strict=False)


def hsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the second axis (the first for 1-d)."""
    return split(ary, indices_or_sections, 0 if ndim(ary) == 1 else 1)


def vsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the first axis."""
    return split(ary, indices_or_sections, 0)


def dsplit(ary: Any, indices_or_sections: Any) -> list[Any]:
    """Split along the third axis."""
    return split(ary, indices_or_sections, 2)


# ---------------------------------------------------------------------------
# Repetition
# ---------------------------------------------------------------------------

def tile(A: Any, reps: Any) -> Any:
    """``A`` repeated ``reps`` times along each axis."""
    A = asarray(A)
    reps = _shape_tuple(reps, "tile")
    s = _shape(A)
    nd = max(len(s), len(reps))
    s = (1,) * (nd - len(s)) + s
    reps = (1,) * (nd - len(reps)) + reps
    # broadcast a new axis of size r before each axis, then merge the pairs
    x = lax.reshape(A, s)
    inter = tuple(v for r, d in zip(reps, s) for v in (r, d))
    x = lax.broadcast_in_dim(x, inter, tuple(range(1, 2 * nd, 2)))
    return lax.reshape(x, tuple(r * d for r, d in zip(reps, s)))


def repeat(a: Any, repeats: Any, axis: int | None = None, *,
           total_repeat_length: int | None = None) -> Any:
    """Repeat each element of ``a`` (``repeats`` a scalar or one count per element).

    Under ``jit`` per-element repeats need a static ``total_repeat_length``; the
    result is truncated to it, or padded with the last element.
    """
    a = asarray(a)
    if axis is None:
        a = ravel(a)
        axis = 0
    s = _shape(a)
    axis = _canon_axis(axis, len(s))
    n = s[axis]
    rep_np = None
    try:
        rep_np = np.asarray(concrete_value(repeats, "'repeats' of jnp.repeat"))
    except TypeError:
        if total_repeat_length is None:
            raise
    if rep_np is not None and rep_np.ndim == 0:
        r = int(rep_np)
        if r < 0:
            raise ValueError("repeats may not contain negative values.")
        if total_repeat_length is None or total_repeat_length == r * n:
            x = lax.broadcast_in_dim(a, s[:axis + 1] + (r,) + s[axis + 1:],
                                     tuple(range(axis + 1)) +
                                     tuple(range(axis + 2, len(s) + 1)))
            return lax.reshape(x, s[:axis] + (n * r,) + s[axis + 1:])
        rep_np = np.full((n,), r)
    if rep_np is not None:
        if rep_np.shape not in ((n,), (1,)):
            raise ValueError(f"repeats shape {rep_np.shape} does not match the size "
                             f"{n} of axis {axis}")
        rep_np = np.broadcast_to(rep_np, (n,))
        if (rep_np < 0).any():
            raise ValueError("repeats may not contain negative values.")
        if total_repeat_length is None:
            total_repeat_length = int(rep_np.sum())
        repeats = rep_np.astype(np.int32)
    from tinyjax.numpy._indexing import take
    return take(a, _repeat_indices(asarray(repeats), total_repeat_length), axis=axis,
                mode="clip")


def _repeat_indices(repeats: Any, total: int) -> Any:
    """Source index of each output position: mark the start of each element's run
    with a scatter-add, then a cumulative sum counts the runs started so far."""
    n = _shape(repeats)[0]
    if n == 0 or total == 0:
        return lax.full((total,), 0, np.int32)
    starts = lax.cumsum(lax.convert_element_type(repeats, np.int32), 0)[:-1]
    marks = lax.full((total,), 0, np.int32)
    dn = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                     scatter_dims_to_operand_dims=(0,))
    marks = lax.scatter_add(marks, lax.reshape(starts, (n - 1, 1)),
                            lax.full((n - 1,), 1, np.int32), dn, mode="drop")
    return lax.cumsum(marks, 0)


# ---------------------------------------------------------------------------
# Flipping and rolling
# ---------------------------------------------------------------------------

def flip(m: Any, axis: Any = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    check_arraylike("flip", m)
    m = asarray(m)
    nd = get_aval(m).ndim
    axes = tuple(range(nd)) if axis is None else canonicalize_axes(axis, nd)
    return lax.rev(m, tuple(sorted(axes))) if axes else m


def fliplr(m: Any) -> Any:
    """Reverse the second axis."""
    if ndim(m) < 2:
        raise ValueError("fliplr requires an array of at least two dimensions")
    return flip(m, 1)


def flipud(m: Any) -> Any:
    """Reverse the first axis."""
    if ndim(m) < 1:
        raise ValueError("flipud requires an array of at least one dimension")
    return flip(m, 0)


def roll(a: Any, shift: Any, axis: Any = None) -> Any:
    """Roll elements along ``axis`` (of the flattened array when None); a traced
    ``shift`` is allowed."""
    a = asarray(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), _shape(a))
    s = _shape(a)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    axes = tuple(_canon_axis(ax, len(s)) for ax in axes)
    shift_v = None
    try:
        shift_v = np.asarray(concrete_value(shift, "shift"))
    except TypeError:
        pass
    if shift_v is not None:
        shifts = np.broadcast_to(shift_v, (len(axes),)) if shift_v.ndim else \
            [int(shift_v)] * len(axes)
        for ax, sh in zip(axes, shifts):
            n = s[ax]
            if n == 0:
                continue
            k = int(sh) % n
            if k:
                a = lax.concatenate([lax.slice_in_dim(a, n - k, n, 1, ax),
                                     lax.slice_in_dim(a, 0, n - k, 1, ax)], ax)
        return a
    shift = asarray(shift)
    shifts = lax.broadcast_in_dim(shift, (len(axes),), ()) if not _shape(shift) else shift
    for i, ax in enumerate(axes):
        n = s[ax]
        if n == 0:
            continue
        k = lax.rem(lax.convert_element_type(shifts[i], np.int32), np.int32(n))
        k = lax.select(lax.lt(k, np.int32(0)), k + np.int32(n), k)
        doubled = lax.concatenate([a, a], ax)
        start = [np.int32(0)] * len(s)
        start[ax] = np.int32(n) - k
        a = lax.dynamic_slice(doubled, start, s)
    return a


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    """Rotate by 90 degrees ``k`` times in the plane ``axes`` (from the first axis
    towards the second)."""
    m = asarray(m)
    nd = get_aval(m).ndim
    if len(axes) != 2:
        raise ValueError("len(axes) must be 2.")
    a0, a1 = _canon_axis(axes[0], nd), _canon_axis(axes[1], nd)
    if a0 == a1:
        raise ValueError("Axes must be different.")
    k = operator.index(k) % 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


# ---------------------------------------------------------------------------
# Padding
# ---------------------------------------------------------------------------

def _pad_pairs(pad_width: Any, nd: int, what: str = "pad_width") -> np.ndarray:
    pw = np.asarray(concrete_value(pad_width, "'pad_width' of jnp.pad"))
    if pw.dtype.kind not in "iub":
        raise TypeError(f"`{what}` must be of integral type.")
    try:
        pw = np.broadcast_to(pw, (nd, 2))
    except ValueError:
        raise ValueError(f"jnp.pad: {what} with shape {pw.shape} cannot be broadcast to "
                         f"({nd}, 2)") from None
    if (pw < 0).any():
        raise ValueError(f"index can't contain negative values; got {what}={pw.tolist()}")
    return pw.astype(np.int64)


def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """Pad an array: modes 'constant' (``constant_values``), 'edge', 'reflect',
    'symmetric', 'wrap' and 'empty'."""
    check_arraylike("pad", array)
    x = asarray(array)
    nd = get_aval(x).ndim
    pw = _pad_pairs(pad_width, nd)
    allowed = {"constant": {"constant_values"}, "reflect": {"reflect_type"},
               "symmetric": {"reflect_type"}}.get(mode, set())
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"unsupported keyword arguments for mode '{mode}': {unknown}")
    if mode in ("constant", "empty"):
        return _pad_constant(x, pw, kwargs.get("constant_values", 0))
    if mode == "edge":
        return _pad_edge(x, pw)
    if mode in ("reflect", "symmetric"):
        if kwargs.get("reflect_type", "even") != "even":
            raise NotImplementedError("jnp.pad: only reflect_type='even' is supported")
        return _pad_reflect(x, pw, mode)
    if mode == "wrap":
        return _pad_wrap(x, pw)
    raise NotImplementedError(f"jnp.pad: mode '{mode}' is not implemented (supported: "
                              "constant, edge, reflect, symmetric, wrap, empty)")


def _pad_constant(x: Any, pw: np.ndarray, constant_values: Any) -> Any:
    nd = get_aval(x).ndim
    dt = get_aval(x).dtype
    cv = constant_values
    if isinstance(cv, (int, float, bool)) or np.ndim(cv) == 0 and not hasattr(cv, "aval"):
        if not pw.any():
            return x
        value = lax.convert_element_type(asarray(cv), dt)
        return lax.pad(x, value, tuple((int(lo), int(hi), 0) for lo, hi in pw))
    cv = asarray(cv)
    if not get_aval(cv).shape:
        value = lax.convert_element_type(cv, dt)
        return lax.pad(x, value, tuple((int(lo), int(hi), 0) for lo, hi in pw))
    cv = lax.convert_element_type(broadcast_to_shape(cv, (nd, 2)) if get_aval(cv).ndim
                                  else cv, dt)
    zero_cfg = [(0, 0, 0)] * nd
    for i in range(nd):
        for side in (0, 1):
            cfg = list(zero_cfg)
            cfg[i] = (int(pw[i, 0]), 0, 0) if side == 0 else (0, int(pw[i, 1]), 0)
            if cfg[i] != (0, 0, 0):
                x = lax.pad(x, cv[i, side], tuple(cfg))
    return x


def _pad_edge(x: Any, pw: np.ndarray) -> Any:
    s = list(_shape(x))
    for i, (lo, hi) in enumerate(pw):
        if lo == 0 and hi == 0:
            continue
        if s[i] == 0:
            raise ValueError("can't extend empty axis using modes other than 'constant' "
                             "or 'empty'")
        parts = []
        if lo:
            parts.append(_repeat_slice(x, 0, i, int(lo)))
        parts.append(x)
        if hi:
            parts.append(_repeat_slice(x, s[i] - 1, i, int(hi)))
        x = lax.concatenate(parts, i)
        s[i] += int(lo + hi)
    return x


def _repeat_slice(x: Any, index: int, axis: int, times: int) -> Any:
    edge = lax.slice_in_dim(x, index, index + 1, 1, axis)
    shp = list(_shape(edge))
    shp[axis] = times
    return lax.broadcast_in_dim(lax.squeeze(edge, (axis,)), tuple(shp),
                                tuple(d for d in range(len(shp)) if d != axis))


def _pad_reflect(x: Any, pw: np.ndarray, mode: str) -> Any:
    offset = 1 if mode == "reflect" else 0
    for i, (lo, hi) in enumerate(pw):
        n = _shape(x)[i]
        if lo == 0 and hi == 0:
            continue
        if n == 0:
            raise ValueError("can't extend empty axis using modes other than 'constant' "
                             "or 'empty'")
        if n == 1:
            x = _pad_edge(x, np.array([[lo, hi] if j == i else [0, 0]
                                       for j in range(len(pw))]))
            continue
        # numpy extends the already padded array period by period
        lo, hi = int(lo), int(hi)
        while lo > 0:
            cur = min(lo, n - offset)
            lo -= cur
            piece = lax.rev(lax.slice_in_dim(x, offset, offset + cur, 1, i), (i,))
            x = lax.concatenate([piece, x], i)
        while hi > 0:
            cur = min(hi, n - offset)
            hi -= cur
            size = _shape(x)[i]
            piece = lax.slice_in_dim(x, size - cur - offset, size - offset, 1, i)
            x = lax.concatenate([x, lax.rev(piece, (i,))], i)
    return x


def _pad_wrap(x: Any, pw: np.ndarray) -> Any:
    for i, (lo, hi) in enumerate(pw):
        n = _shape(x)[i]
        if lo == 0 and hi == 0:
            continue
        if n == 0:
            raise ValueError("can't extend empty axis using modes other than 'constant' "
                             "or 'empty'")
        lrep, lrem = divmod(int(lo), n)
        rrep, rrem = divmod(int(hi), n)
        parts = []
        if lrem:
            parts.append(lax.slice_in_dim(x, n - lrem, n, 1, i))
        parts += [x] * (lrep + rrep + 1)
        if rrem:
            parts.append(lax.slice_in_dim(x, 0, rrem, 1, i))
        x = lax.concatenate(parts, i)
    return x


__all__ = [
    "ndim", "shape", "size", "reshape", "ravel", "transpose", "permute_dims",
    "matrix_transpose", "moveaxis", "swapaxes", "squeeze", "expand_dims",
    "broadcast_shapes", "broadcast_to", "broadcast_arrays", "atleast_1d", "atleast_2d",
    "atleast_3d", "concatenate", "concat", "stack", "vstack", "row_stack", "hstack",
    "dstack", "column_stack", "split", "array_split", "hsplit", "vsplit", "dsplit", "tile",
    "repeat", "flip", "fliplr", "flipud", "roll", "rot90", "pad",
]
