"""Slicing primitives: slice, pad, concatenate, rev, squeeze, split, dynamic_slice,
dynamic_update_slice, and the convenience functions of ``jax.lax`` built on them.

Static slicing and padding are movement ops (views) on the compiler side; eagerly
they are numpy views where numpy allows it.  The dynamic ops clamp their start
indices so that the slice stays inside the operand, as XLA does.
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand, canonicalize_axis
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, instantiate_zeros, is_undefined_primal
from tinyjax.lax.gather_scatter import (GatherDimensionNumbers, GatherScatterMode,
                                        ScatterDimensionNumbers, gather, scatter)

__all__ = [
    "slice_p", "pad_p", "concatenate_p", "rev_p", "squeeze_p", "split_p",
    "dynamic_slice_p", "dynamic_update_slice_p",
    "slice", "slice_in_dim", "index_in_dim", "pad", "concatenate", "rev", "squeeze",
    "expand_dims", "split", "dynamic_slice", "dynamic_slice_in_dim",
    "dynamic_index_in_dim", "dynamic_update_slice", "dynamic_update_slice_in_dim",
    "dynamic_update_index_in_dim",
]

# The checks below take avals or numpy arrays alike (both have .shape, .ndim and
# .dtype): eager mode runs only the impl, so each impl runs the same check first.


_py_slice = builtins.slice  # the module's own ``slice`` is lax.slice


def _ints(xs: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(x) for x in xs)


def _zero_scalar(dtype: Any) -> ArrayImpl:
    return wrap_eager(np.zeros((), dtype))


def _all_weak(weak, **_):
    return all(weak)


def _first_weak(weak, **_):
    return weak[0]


def _dilate_dim(d: int, dilation: int) -> int:
    return 0 if d == 0 else 1 + dilation * (d - 1)


# ---------------------------------------------------------------------------
# slice
# ---------------------------------------------------------------------------

slice_p = Primitive("slice")


def _slice_shape(x, start_indices, limit_indices, strides) -> tuple[int, ...]:
    shape = x.shape
    if len(start_indices) != x.ndim:
        raise TypeError("slice start_indices must have length equal to the number of "
                        f"dimensions of the operand, got indices {start_indices} for "
                        f"operand shape {shape}.")
    if len(limit_indices) != len(start_indices):
        raise TypeError("slice limit_indices must have the same length as start_indices, "
                        f"got start_indices {start_indices} and limit_indices "
                        f"{limit_indices}.")
    if any(l > d for l, d in zip(limit_indices, shape)):
        raise TypeError("slice limit_indices must be less than or equal to operand shape, "
                        f"got limit_indices {limit_indices} for operand shape {shape}.")
    if any(s < 0 for s in start_indices):
        raise TypeError("slice start_indices must be greater than or equal to zero, got "
                        f"start_indices {start_indices}.")
    if any(l < s for s, l in zip(start_indices, limit_indices)):
        raise TypeError("slice limit_indices must be greater than or equal to "
                        f"start_indices, got start_indices {start_indices} and "
                        f"limit_indices {limit_indices}.")
    if strides is None:
        return tuple(l - s for s, l in zip(start_indices, limit_indices))
    if len(strides) != x.ndim:
        raise TypeError("slice strides must have length equal to the number of dimensions "
                        f"of the operand, got strides {strides} for operand shape {shape}.")
    if any(st <= 0 for st in strides):
        raise TypeError(f"slice strides must be positive, got {strides}")
    return tuple((l - s + st - 1) // st
                 for s, l, st in zip(start_indices, limit_indices, strides))


@slice_p.def_impl
def _slice_impl(x, *, start_indices, limit_indices, strides):
    _slice_shape(x, start_indices, limit_indices, strides)
    steps = strides or (1,) * x.ndim
    return x[tuple(map(_py_slice, start_indices, limit_indices, steps))]


@slice_p.def_abstract_eval
def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    return ShapedArray(_slice_shape(x, start_indices, limit_indices, strides), x.dtype,
                       x.weak_type)


slice_p.weak_type_rule = _first_weak


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    shape = x.aval.shape
    ct_shape = get_aval(ct).shape
    if strides is None:
        config = tuple((s, d - l, 0) for s, l, d in zip(start_indices, limit_indices, shape))
    else:  # the last element taken sits at start + (n-1)*stride; the rest is padding
        config = tuple((s, d - (s + _dilate_dim(n, st)), st - 1)
                       for s, n, st, d in zip(start_indices, ct_shape, strides, shape))
    return [pad(ct, _zero_scalar(get_aval(ct).dtype), config)]


ad.deflinear(slice_p, _slice_transpose)


def _slice_batch(vals, dims, *, start_indices, limit_indices, strides):
    (x,), (d,) = vals, dims
    size = get_aval(x).shape[d]
    start = start_indices[:d] + (0,) + start_indices[d:]
    limit = limit_indices[:d] + (size,) + limit_indices[d:]
    strides = None if strides is None else strides[:d] + (1,) + strides[d:]
    return slice_p.bind(x, start_indices=start, limit_indices=limit, strides=strides), d


batching.primitive_batchers[slice_p] = _slice_batch


def slice(operand, start_indices: Sequence[int], limit_indices: Sequence[int],  # noqa: A001
          strides: Sequence[int] | None = None):
    """``operand[start:limit:stride]`` along every axis (static bounds)."""
    x = as_operand(operand)
    start, limit = _ints(start_indices), _ints(limit_indices)
    strides = None if strides is None else _ints(strides)
    if strides is not None and all(s == 1 for s in strides) and len(strides) == len(start):
        strides = None
    if strides is None and start == (0,) * len(start) and limit == get_aval(x).shape:
        return x
    return slice_p.bind(x, start_indices=start, limit_indices=limit, strides=strides)


def slice_in_dim(operand, start_index: int | None, limit_index: int | None,
                 stride: int = 1, axis: int = 0):
    """``operand[..., start:limit:stride]`` along ``axis``; negative bounds count from
    the end and ``None`` means the whole extent."""
    x = as_operand(operand)
    shape = get_aval(x).shape
    axis = int(axis)
    size = shape[axis]
    start = 0 if start_index is None else int(start_index)
    limit = size if limit_index is None else int(limit_index)
    start = start + size if start < 0 else start
    limit = limit + size if limit < 0 else limit
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, limit, int(stride)
    return slice(x, starts, limits, strides)


def index_in_dim(operand, index: int, axis: int = 0, keepdims: bool = True):
    """Element ``index`` along ``axis`` (kept as a size-1 axis when ``keepdims``)."""
    x = as_operand(operand)
    index, axis = int(index), int(axis)
    size = get_aval(x).shape[axis]
    wrapped = index + size if index < 0 else index
    if not 0 <= wrapped < size:
        raise IndexError(f"index {index} is out of bounds for axis {axis} with size {size}")
    out = slice_in_dim(x, wrapped, wrapped + 1, 1, axis)
    return out if keepdims else squeeze(out, (axis,))


# ---------------------------------------------------------------------------
# pad
# ---------------------------------------------------------------------------

pad_p = Primitive("pad")


def _pad_shape(x, padding_value, padding_config) -> tuple[int, ...]:
    if x.dtype != padding_value.dtype:
        raise TypeError("pad operand and padding_value must be same dtype: got "
                        f"{x.dtype.name} and {padding_value.dtype.name}.")
    if padding_value.ndim != 0:
        raise TypeError("pad padding_value must be a scalar, got padding_value of shape "
                        f"{padding_value.shape}.")
    if len(padding_config) != x.ndim:
        raise ValueError("length of padding_config must equal the number of axes of "
                         f"operand, got padding_config {padding_config} for operand shape "
                         f"{x.shape}")
    if any(len(c) != 3 for c in padding_config):
        raise ValueError("pad padding_config must be a sequence of (low, high, interior) "
                         f"triples, got {padding_config}")
    if any(i < 0 for _, _, i in padding_config):
        raise ValueError("interior padding in padding_config must be nonnegative, got "
                         f"padding_config {padding_config}")
    out = tuple(lo + hi + _dilate_dim(d, i + 1)
                for (lo, hi, i), d in zip(padding_config, x.shape))
    if any(d < 0 for d in out):
        raise ValueError("Dimension size after padding is not at least 0, got result shape "
                         f"{out}, for padding_config {padding_config} and operand shape "
                         f"{x.shape}")
    return out


def _pad_placement(n: int, out: int, lo: int, step: int):
    """Which operand elements of one axis land inside the output, and where."""
    first = 0 if lo >= 0 else -(lo // step)           # ceil(-lo / step)
    stop = min(n, -((lo - out) // step)) if out > lo else 0   # ceil((out - lo) / step)
    if stop <= first:
        return None
    return _py_slice(first, stop), _py_slice(lo + first * step, lo + (stop - 1) * step + 1,
                                             step)


@pad_p.def_impl
def _pad_impl(x, padding_value, *, padding_config):
    shape = _pad_shape(x, padding_value, padding_config)
    if all(c == (0, 0, 0) for c in padding_config):
        return x
    if all(lo <= 0 and hi <= 0 and i == 0 for lo, hi, i in padding_config):
        return x[tuple(_py_slice(-lo, d + hi) for (lo, hi, _), d in
                       zip(padding_config, x.shape))]   # pure cropping: a view
    out = np.full(shape, padding_value, x.dtype)
    places = [_pad_placement(n, o, lo, i + 1)
              for n, o, (lo, _, i) in zip(x.shape, shape, padding_config)]
    if all(p is not None for p in places):
        out[tuple(p[1] for p in places)] = x[tuple(p[0] for p in places)]
    return out


@pad_p.def_abstract_eval
def _pad_abstract_eval(x, padding_value, *, padding_config):
    return ShapedArray(_pad_shape(x, padding_value, padding_config), x.dtype,
                       x.weak_type and padding_value.weak_type)


pad_p.weak_type_rule = _all_weak


def _pad_transpose(ct, x, padding_value, *, padding_config):
    if type(ct) is Zero:
        return [Zero(x.aval) if is_undefined_primal(x) else None,
                Zero(padding_value.aval) if is_undefined_primal(padding_value) else None]
    from tinyjax.lax.reductions import reduce_sum
    zero = _zero_scalar(get_aval(ct).dtype)
    unpadded = pad(ct, zero, tuple((-lo, -hi, 0) for lo, hi, _ in padding_config))
    shape = get_aval(unpadded).shape
    ct_x = slice(unpadded, (0,) * len(shape), shape,
                 tuple(i + 1 for _, _, i in padding_config))
    ct_pv = None
    if is_undefined_primal(padding_value):
        axes = tuple(range(len(shape)))
        from tinyjax.lax.elementwise import sub
        ct_pv = sub(reduce_sum(ct, axes), reduce_sum(ct_x, axes))
    return [ct_x if is_undefined_primal(x) else None, ct_pv]


ad.deflinear(pad_p, _pad_transpose)


def _pad_batch(vals, dims, *, padding_config):
    (x, pv), (xd, pvd) = vals, dims
    size = batching.batch_size(vals, dims)
    if pvd is None:
        config = padding_config[:xd] + ((0, 0, 0),) + padding_config[xd:]
        return pad_p.bind(x, pv, padding_config=config), xd
    # A batched padding value: pad with zeros, then select the padding positions.
    from tinyjax.lax.elementwise import select
    from tinyjax.lax.shape import broadcast_in_dim, full
    x = batching.moveaxis(x, xd, 0, size)
    config = ((0, 0, 0),) + padding_config
    dt = get_aval(x).dtype
    padded = pad_p.bind(x, _zero_scalar(dt), padding_config=config)
    shape = get_aval(padded).shape
    mask = pad_p.bind(full(get_aval(x).shape, True, np.bool_), wrap_eager(np.array(False)),
                      padding_config=config)
    fill = broadcast_in_dim(pv, shape, (0,))
    return select(mask, padded, fill), 0


batching.primitive_batchers[pad_p] = _pad_batch


def pad(operand, padding_value, padding_config: Sequence[tuple[int, int, int]]):
    """Pad each axis with ``(low, high, interior)`` copies of ``padding_value``; negative
    ``low``/``high`` crop."""
    x = as_operand(operand)
    pv = as_operand(padding_value, get_aval(x).dtype) \
        if isinstance(padding_value, (bool, int, float)) else as_operand(padding_value)
    config = tuple(_ints(c) for c in padding_config)
    return pad_p.bind(x, pv, padding_config=config)


# ---------------------------------------------------------------------------
# concatenate
# ---------------------------------------------------------------------------

concatenate_p = Primitive("concatenate")


def _concatenate_shape(operands, dimension) -> tuple[int, ...]:
    shapes = ", ".join(str(tuple(o.shape)) for o in operands)
    if not operands:
        raise TypeError("concatenate expects at least one operand, got 0.")
    if len({o.dtype for o in operands}) != 1:
        raise TypeError("lax.concatenate requires arguments to have the same dtypes, got "
                        f"{', '.join(o.dtype.name for o in operands)}.")
    if len({o.ndim for o in operands}) != 1:
        raise TypeError("Cannot concatenate arrays with different numbers of dimensions: "
                        f"got {shapes}.")
    if not 0 <= dimension < operands[0].ndim:
        raise TypeError(f"concatenate dimension out of bounds: dimension {dimension} for "
                        f"shapes {shapes}.")
    rest = {tuple(o.shape[:dimension]) + tuple(o.shape[dimension + 1:]) for o in operands}
    if len(rest) != 1:
        raise TypeError("Cannot concatenate arrays with shapes that differ in dimensions "
                        "other than the one being concatenated: concatenating along "
                        f"dimension {dimension} for shapes {shapes}.")
    shape = list(operands[0].shape)
    shape[dimension] = sum(o.shape[dimension] for o in operands)
    return tuple(shape)


@concatenate_p.def_impl
def _concatenate_impl(*operands, dimension):
    _concatenate_shape(operands, dimension)
    return np.concatenate(operands, axis=dimension)


@concatenate_p.def_abstract_eval
def _concatenate_abstract_eval(*operands, dimension):
    return ShapedArray(_concatenate_shape(operands, dimension), operands[0].dtype,
                       all(o.weak_type for o in operands))


concatenate_p.weak_type_rule = _all_weak


def _concatenate_transpose(ct, *operands, dimension):
    sizes = [o.aval.shape[dimension] if is_undefined_primal(o) else get_aval(o).shape[dimension]
             for o in operands]
    if type(ct) is Zero:
        return [Zero(o.aval) if is_undefined_primal(o) else None for o in operands]
    outs, start = [], 0
    for o, n in zip(operands, sizes):
        outs.append(slice_in_dim(ct, start, start + n, 1, dimension)
                    if is_undefined_primal(o) else None)
        start += n
    return outs


ad.deflinear(concatenate_p, _concatenate_transpose)


def _concatenate_batch(vals, dims, *, dimension):
    size = batching.batch_size(vals, dims)
    vals = [batching.moveaxis(v, d, 0, size) for v, d in zip(vals, dims)]
    return concatenate_p.bind(*vals, dimension=dimension + 1), 0


batching.primitive_batchers[concatenate_p] = _concatenate_batch


def concatenate(operands: Sequence[Any], dimension: int):
    """Join ``operands`` along ``dimension`` (all other axes must agree)."""
    ops = [as_operand(o) for o in operands]
    if len(ops) == 1:
        return ops[0]
    return concatenate_p.bind(*ops, dimension=int(dimension))


# ---------------------------------------------------------------------------
# rev
# ---------------------------------------------------------------------------

rev_p = Primitive("rev")


def _rev_check(x, dimensions) -> None:
    if any(d < 0 for d in dimensions):
        raise TypeError(f"rev dimensions must have all nonnegative values, got {dimensions}.")
    if len(set(dimensions)) != len(dimensions):
        raise TypeError(f"rev dimensions must be unique, got {dimensions}.")
    if dimensions and not max(dimensions) < x.ndim:
        raise TypeError("rev dimensions must all be less than operand ndim, got dimension "
                        f"{max(dimensions)} for operand ndim {x.ndim}.")


@rev_p.def_impl
def _rev_impl(x, *, dimensions):
    _rev_check(x, dimensions)
    return np.flip(x, dimensions) if dimensions else x


@rev_p.def_abstract_eval
def _rev_abstract_eval(x, *, dimensions):
    _rev_check(x, dimensions)
    return x


rev_p.weak_type_rule = _first_weak
ad.deflinear(rev_p, lambda ct, x, *, dimensions:
             [Zero(x.aval) if type(ct) is Zero else rev(ct, dimensions)])


def _rev_batch(vals, dims, *, dimensions):
    (x,), (d,) = vals, dims
    return rev_p.bind(x, dimensions=tuple(a + (a >= d) for a in dimensions)), d


batching.primitive_batchers[rev_p] = _rev_batch


def rev(operand, dimensions: Sequence[int]):
    """Reverse ``operand`` along each axis in ``dimensions``."""
    return rev_p.bind(as_operand(operand), dimensions=_ints(dimensions))


# ---------------------------------------------------------------------------
# squeeze, expand_dims
# ---------------------------------------------------------------------------

squeeze_p = Primitive("squeeze")


def _squeeze_shape(x, dimensions) -> tuple[int, ...]:
    if len(set(dimensions)) != len(dimensions):
        raise ValueError(f"squeeze dimensions are not unique: {dimensions}")
    if not all(0 <= d < x.ndim for d in dimensions):
        raise ValueError(f"squeeze dimensions outside range [0, ndim): {dimensions} for "
                         f"operand shape {x.shape}")
    if any(x.shape[d] != 1 for d in dimensions):
        raise ValueError("cannot select an axis to squeeze out which has size not equal "
                         f"to one, got shape={x.shape} and dimensions={dimensions}")
    return tuple(s for i, s in enumerate(x.shape) if i not in dimensions)


@squeeze_p.def_impl
def _squeeze_impl(x, *, dimensions):
    return np.reshape(x, _squeeze_shape(x, dimensions))


@squeeze_p.def_abstract_eval
def _squeeze_abstract_eval(x, *, dimensions):
    return ShapedArray(_squeeze_shape(x, dimensions), x.dtype, x.weak_type)


squeeze_p.weak_type_rule = _first_weak


def _squeeze_transpose(ct, x, *, dimensions):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    from tinyjax.lax.shape import reshape
    return [reshape(ct, x.aval.shape)]


ad.deflinear(squeeze_p, _squeeze_transpose)


def _squeeze_batch(vals, dims, *, dimensions):
    (x,), (d,) = vals, dims
    dimensions = tuple(a + (a >= d) for a in dimensions)
    return squeeze_p.bind(x, dimensions=dimensions), d - sum(a < d for a in dimensions)


batching.primitive_batchers[squeeze_p] = _squeeze_batch


def squeeze(array, dimensions: Sequence[int]):
    """Remove the size-1 axes ``dimensions`` (negative axes count from the end)."""
    x = as_operand(array)
    ndim = get_aval(x).ndim
    dims = tuple(sorted(canonicalize_axis(int(d), ndim, "squeeze dimension")
                        for d in dimensions))
    if not dims:
        return x
    return squeeze_p.bind(x, dimensions=dims)


def expand_dims(array, dimensions: Sequence[int]):
    """Insert size-1 axes at ``dimensions`` (positions in the result)."""
    from tinyjax.lax.shape import broadcast_in_dim
    x = as_operand(array)
    dimensions = _ints(dimensions)
    if len(set(dimensions)) != len(dimensions):
        raise ValueError(f"repeated axis in lax.expand_dims: {dimensions}")
    shape = get_aval(x).shape
    ndim_out = len(shape) + len(dimensions)
    dims = [canonicalize_axis(d, ndim_out) for d in dimensions]
    if len(set(dims)) != len(dims):
        raise ValueError(f"repeated axis in lax.expand_dims: {tuple(dims)}")
    out_shape = list(shape)
    for d in sorted(dims):
        out_shape.insert(d, 1)
    kept = tuple(i for i in range(ndim_out) if i not in dims)
    return broadcast_in_dim(x, tuple(out_shape), kept)


# ---------------------------------------------------------------------------
# split
# ---------------------------------------------------------------------------

split_p = Primitive("split", multiple_results=True)


def _split_shapes(x, sizes, axis) -> list[tuple[int, ...]]:
    if not 0 <= axis < x.ndim:
        raise ValueError(f"split axis {axis} is out of bounds for operand shape {x.shape}")
    if any(s < 0 for s in sizes):
        raise ValueError(f"split: sizes passed to split must be nonnegative, got {list(sizes)}")
    if sum(sizes) != x.shape[axis]:
        raise ValueError(f"split: sum of sizes {sum(sizes)} must be equal to dimension {axis} of "
                         f"the operand shape {x.shape}")
    return [x.shape[:axis] + (s,) + x.shape[axis + 1:] for s in sizes]


@split_p.def_impl
def _split_impl(x, *, sizes, axis):
    _split_shapes(x, sizes, axis)
    return np.split(x, np.cumsum(sizes[:-1]), axis=axis) if sizes else []


@split_p.def_abstract_eval
def _split_abstract_eval(x, *, sizes, axis):
    return [ShapedArray(s, x.dtype, x.weak_type) for s in _split_shapes(x, sizes, axis)]


split_p.weak_type_rule = lambda weak, *, sizes, axis: [weak[0]] * len(sizes)


def _split_transpose(cts, x, *, sizes, axis):
    if all(type(ct) is Zero for ct in cts):
        return [Zero(x.aval)]
    return [concatenate([instantiate_zeros(ct) for ct in cts], axis)]


ad.deflinear(split_p, _split_transpose)


def _split_batch(vals, dims, *, sizes, axis):
    (x,), (d,) = vals, dims
    return split_p.bind(x, sizes=sizes, axis=axis + (axis >= d)), [d] * len(sizes)


batching.primitive_batchers[split_p] = _split_batch


def split(operand, sizes: Sequence[int], axis: int = 0) -> list:
    """Split ``operand`` along ``axis`` into pieces of the given ``sizes``."""
    x = as_operand(operand)
    axis = canonicalize_axis(int(axis), get_aval(x).ndim)
    return split_p.bind(x, sizes=_ints(sizes), axis=axis)


# ---------------------------------------------------------------------------
# dynamic_slice, dynamic_update_slice
# ---------------------------------------------------------------------------

dynamic_slice_p = Primitive("dynamic_slice")
dynamic_update_slice_p = Primitive("dynamic_update_slice")


def _check_indices(name: str, x, indices) -> None:
    if x.ndim != len(indices):
        raise TypeError(f"{name} start_indices must have length equal to the number of "
                        f"dimensions of the operand, got {len(indices)} indices for "
                        f"operand shape {tuple(x.shape)}.")
    if any(i.ndim != 0 for i in indices):
        raise TypeError(f"{name} start_indices must be scalars, got indices of shapes "
                        f"{[tuple(i.shape) for i in indices]}")
    if any(i.dtype != indices[0].dtype or not dtypes.is_int(i.dtype) for i in indices):
        raise TypeError(f"index arguments to {name} must be integers of the same type, got: "
                        f"{', '.join(i.dtype.name for i in indices)}")


def _dynamic_slice_check(x, indices, slice_sizes) -> None:
    _check_indices("dynamic_slice", x, indices)
    if len(slice_sizes) != len(indices):
        raise TypeError("dynamic_slice slice_sizes must have the same length as "
                        f"start_indices, got start_indices length {len(indices)} and "
                        f"slice_sizes {slice_sizes}.")
    if any(s > d for s, d in zip(slice_sizes, x.shape)):
        raise TypeError("dynamic_slice slice_sizes must be less than or equal to operand "
                        f"shape, got slice_sizes {slice_sizes} for operand shape "
                        f"{tuple(x.shape)}.")
    if any(s < 0 for s in slice_sizes):
        raise TypeError("dynamic_slice slice_sizes must be greater than or equal to zero, "
                        f"got slice_sizes of {slice_sizes}.")


def _clamped_slices(indices, shape, sizes) -> tuple:
    return tuple(_py_slice(s, s + n) for s, n in
                 ((min(max(int(i), 0), d - n), n) for i, d, n in zip(indices, shape, sizes)))


@dynamic_slice_p.def_impl
def _dynamic_slice_impl(x, *indices, slice_sizes):
    _dynamic_slice_check(x, indices, slice_sizes)
    return x[_clamped_slices(indices, x.shape, slice_sizes)]


@dynamic_slice_p.def_abstract_eval
def _dynamic_slice_abstract_eval(x, *indices, slice_sizes):
    _dynamic_slice_check(x, indices, slice_sizes)
    return ShapedArray(slice_sizes, x.dtype, x.weak_type)


dynamic_slice_p.weak_type_rule = _first_weak


def _dynamic_slice_jvp(primals, tangents, *, slice_sizes):
    x, *indices = primals
    out = dynamic_slice_p.bind(x, *indices, slice_sizes=slice_sizes)
    t = tangents[0]
    if type(t) is Zero:
        return out, Zero.from_primal(out)
    return out, dynamic_slice_p.bind(t, *indices, slice_sizes=slice_sizes)


def _dynamic_slice_transpose(ct, x, *indices, slice_sizes):
    assert is_undefined_primal(x) and not any(map(is_undefined_primal, indices))
    if type(ct) is Zero:
        return [Zero(x.aval)] + [None] * len(indices)
    from tinyjax.lax.shape import full
    zeros = full(x.aval.shape, 0, x.aval.dtype)
    return [dynamic_update_slice_p.bind(zeros, ct, *indices)] + [None] * len(indices)


ad.primitive_jvps[dynamic_slice_p] = _dynamic_slice_jvp
ad.primitive_transposes[dynamic_slice_p] = _dynamic_slice_transpose


def _dus_check(x, update, indices) -> None:
    if x.dtype != update.dtype:
        raise TypeError("lax.dynamic_update_slice requires arguments to have the same "
                        f"dtypes, got {x.dtype.name}, {update.dtype.name}.")
    if x.ndim != update.ndim:
        raise TypeError("dynamic_update_slice update must have the same rank as operand, "
                        f"got update shape {tuple(update.shape)} for operand shape "
                        f"{tuple(x.shape)}.")
    _check_indices("dynamic_update_slice", x, indices)
    if any(u > d for u, d in zip(update.shape, x.shape)):
        raise TypeError("dynamic_update_slice update shape must be smaller than operand "
                        f"shape, got update shape {tuple(update.shape)} for operand shape "
                        f"{tuple(x.shape)}.")


@dynamic_update_slice_p.def_impl
def _dus_impl(x, update, *indices):
    _dus_check(x, update, indices)
    out = np.array(x)
    out[_clamped_slices(indices, x.shape, update.shape)] = update
    return out


@dynamic_update_slice_p.def_abstract_eval
def _dus_abstract_eval(x, update, *indices):
    _dus_check(x, update, indices)
    return ShapedArray(x.shape, x.dtype, x.weak_type and update.weak_type)


dynamic_update_slice_p.weak_type_rule = lambda weak, **_: weak[0] and weak[1]


def _dus_jvp(primals, tangents):
    x, update, *indices = primals
    out = dynamic_update_slice_p.bind(x, update, *indices)
    tx, tu = tangents[:2]
    if type(tx) is Zero and type(tu) is Zero:
        return out, Zero.from_primal(out)
    return out, dynamic_update_slice_p.bind(instantiate_zeros(tx), instantiate_zeros(tu),
                                            *indices)


def _dus_transpose(ct, x, update, *indices):
    assert not any(map(is_undefined_primal, indices))
    nones = [None] * len(indices)
    u_aval = update.aval if is_undefined_primal(update) else get_aval(update)
    if type(ct) is Zero:
        return [Zero(x.aval) if is_undefined_primal(x) else None,
                Zero(update.aval) if is_undefined_primal(update) else None] + nones
    ct_x = ct_u = None
    if is_undefined_primal(x):
        from tinyjax.lax.shape import full
        ct_x = dynamic_update_slice_p.bind(ct, full(u_aval.shape, 0, u_aval.dtype), *indices)
    if is_undefined_primal(update):
        ct_u = dynamic_slice_p.bind(ct, *indices, slice_sizes=u_aval.shape)
    return [ct_x, ct_u] + nones


ad.primitive_jvps[dynamic_update_slice_p] = _dus_jvp
ad.primitive_transposes[dynamic_update_slice_p] = _dus_transpose


def _index_dtype(indices) -> np.dtype:
    return get_aval(indices[0]).dtype if indices else dtypes.default_int_dtype()


def _stacked_indices(indices, dims, size):
    """The batched start indices as one ``[size, 1 + ndim]`` array whose first column is
    the batch position (for a gather/scatter that treats the batch axis as indexed)."""
    from tinyjax.lax.shape import broadcast_in_dim, broadcasted_iota
    dt = get_aval(indices[0]).dtype
    cols = [broadcasted_iota(dt, (size, 1), 0)]
    for i, d in zip(indices, dims):
        cols.append(broadcast_in_dim(i, (size, 1), () if d is None else (0,)))
    return concatenate(cols, 1)


def _dynamic_slice_batch(vals, dims, *, slice_sizes):
    x, *indices = vals
    xd, *idims = dims
    size = batching.batch_size(vals, dims)
    if all(d is None for d in idims):  # only the operand varies: slice all of its batch
        zero = _zero_scalar(_index_dtype(indices))
        return dynamic_slice_p.bind(x, *indices[:xd], zero, *indices[xd:],
                                    slice_sizes=slice_sizes[:xd] + (size,)
                                    + slice_sizes[xd:]), xd
    x = batching.moveaxis(x, xd, 0, size)
    n = len(slice_sizes)
    dnums = GatherDimensionNumbers(offset_dims=tuple(range(1, n + 1)),
                                   collapsed_slice_dims=(0,),
                                   start_index_map=tuple(range(n + 1)))
    out = gather(x, _stacked_indices(indices, idims, size), dnums,
                 slice_sizes=(1,) + tuple(slice_sizes), mode=GatherScatterMode.CLIP)
    return out, 0


def _dus_batch(vals, dims):
    x, update, *indices = vals
    xd, ud, *idims = dims
    size = batching.batch_size(vals, dims)
    x = batching.moveaxis(x, xd, 0, size)
    update = batching.moveaxis(update, ud, 0, size)
    if all(d is None for d in idims):
        zero = _zero_scalar(_index_dtype(indices))
        return dynamic_update_slice_p.bind(x, update, zero, *indices), 0
    n = len(indices)
    dnums = ScatterDimensionNumbers(update_window_dims=tuple(range(1, n + 1)),
                                    inserted_window_dims=(0,),
                                    scatter_dims_to_operand_dims=tuple(range(n + 1)))
    out = scatter(x, _stacked_indices(indices, idims, size), update, dnums,
                  indices_are_sorted=True, unique_indices=True, mode=GatherScatterMode.CLIP)
    return out, 0


batching.primitive_batchers[dynamic_slice_p] = _dynamic_slice_batch
batching.primitive_batchers[dynamic_update_slice_p] = _dus_batch


def _wrap_negative(i, d: int):
    """``i + d`` where ``i < 0`` (JAX's ``allow_negative_indices``)."""
    if isinstance(i, ArrayImpl):
        v = i._value
        return wrap_eager(v + np.asarray(d, v.dtype), i.weak_type) if v < 0 else i
    from tinyjax.lax.elementwise import add, lt, select
    dd = as_operand(d, get_aval(i).dtype)
    return select(lt(i, as_operand(0, get_aval(i).dtype)), add(i, dd), i)


def _dynamic_indices(name: str, shape: tuple[int, ...], start_indices,
                     allow_negative_indices) -> list:
    """One scalar index of a common integer dtype per axis, negative ones wrapped."""
    from tinyjax.lax.elementwise import convert_element_type
    if not isinstance(start_indices, (tuple, list)):
        arr = as_operand(start_indices)
        if get_aval(arr).ndim != 1:
            raise ValueError(f"{name}: slice indices must be a 1D sequence, got "
                             f"{get_aval(arr).shape}")
        start_indices = [index_in_dim(arr, k, keepdims=False)
                         for k in range(get_aval(arr).shape[0])]
    if len(start_indices) != len(shape):
        raise ValueError(f"{name}: length of slice indices must match number of operand "
                         "dimensions "
                         f"({len(start_indices)} vs {len(shape)})")
    ops = [as_operand(int(i)) if isinstance(i, np.integer) else as_operand(i)
           for i in start_indices]
    for i in ops:
        if not dtypes.is_int(get_aval(i).dtype):
            raise TypeError(f"index arguments to {name} must be integers, got "
                            f"{', '.join(get_aval(o).dtype.name for o in ops)}")
    dt = dtypes.result_type(*ops) if ops else dtypes.default_int_dtype()
    # concrete indices are converted (and wrapped below) in numpy, adding no equations
    ops = [wrap_eager(np.asarray(i._value, dt)) if isinstance(i, ArrayImpl)
           else convert_element_type(i, dt) for i in ops]
    allow = allow_negative_indices
    allow = [bool(allow)] * len(ops) if isinstance(allow, (bool, np.bool_)) else list(allow)
    return [_wrap_negative(i, d) if a else i for i, d, a in zip(ops, shape, allow)]


def dynamic_slice(operand, start_indices, slice_sizes: Sequence[int], *,
                  allow_negative_indices: bool | Sequence[bool] = True):
    """The ``slice_sizes`` block of ``operand`` at (possibly traced) ``start_indices``;
    starts are clamped so the block lies inside ``operand``."""
    x = as_operand(operand)
    shape = get_aval(x).shape
    idx = _dynamic_indices("dynamic_slice", shape, start_indices, allow_negative_indices)
    return dynamic_slice_p.bind(x, *idx, slice_sizes=_ints(slice_sizes))


def dynamic_slice_in_dim(operand, start_index, slice_size: int, axis: int = 0, *,
                         allow_negative_indices: bool = True):
    """:func:`dynamic_slice` along one ``axis``."""
    x = as_operand(operand)
    shape = get_aval(x).shape
    axis = int(axis)
    starts = [0] * len(shape)
    starts[axis] = start_index
    sizes = list(shape)
    sizes[axis] = int(slice_size)
    allow = [False] * len(shape)
    allow[axis] = allow_negative_indices
    return dynamic_slice(x, starts, sizes, allow_negative_indices=allow)


def dynamic_index_in_dim(operand, index, axis: int = 0, keepdims: bool = True, *,
                         allow_negative_indices: bool = True):
    """Element ``index`` (possibly traced) along ``axis``."""
    out = dynamic_slice_in_dim(operand, index, 1, axis,
                               allow_negative_indices=allow_negative_indices)
    return out if keepdims else squeeze(out, (axis,))


def dynamic_update_slice(operand, update, start_indices, *,
                         allow_negative_indices: bool | Sequence[bool] = True):
    """``operand`` with ``update`` written at (possibly traced) ``start_indices``; starts
    are clamped so ``update`` lies inside ``operand``."""
    x, u = as_operand(operand), as_operand(update)
    shape = get_aval(x).shape
    idx = _dynamic_indices("dynamic_update_slice", shape, start_indices,
                           allow_negative_indices)
    return dynamic_update_slice_p.bind(x, u, *idx)


def dynamic_update_slice_in_dim(operand, update, start_index, axis: int, *,
                                allow_negative_indices: bool = True):
    """:func:`dynamic_update_slice` along one ``axis``."""
    x = as_operand(operand)
    axis = int(axis)
    starts: list[Any] = [0] * get_aval(x).ndim
    starts[axis] = start_index
    allow = [False] * len(starts)
    allow[axis] = allow_negative_indices
    return dynamic_update_slice(x, update, starts, allow_negative_indices=allow)


def dynamic_update_index_in_dim(operand, update, index, axis: int, *,
                                allow_negative_indices: bool = True):
    """Write ``update`` as element ``index`` along ``axis`` (``update`` may lack the
    axis)."""
    x, u = as_operand(operand), as_operand(update)
    axis = int(axis)
    if get_aval(u).ndim == get_aval(x).ndim - 1:
        u = expand_dims(u, (axis,))
    return dynamic_update_slice_in_dim(x, u, index, axis,
                                       allow_negative_indices=allow_negative_indices)
