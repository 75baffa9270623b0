"""Gather and scatter: XLA's general indexed slicing, with all their rules.

``gather`` reads a window of ``operand`` at each index vector of ``start_indices``;
the ``scatter`` family writes (replaces, adds, multiplies, takes the min/max of)
windows of ``updates`` into ``operand``.  As in JAX, the index vector is always
the *last* dimension of the indices.

Out-of-bounds indices follow :class:`GatherScatterMode`:

* ``CLIP``: each start index is clamped so that the whole window is in bounds;
* ``FILL_OR_DROP``: a gathered window that is not wholly in bounds is filled with
  ``fill_value``; a scattered window that is not wholly in bounds is dropped;
* ``PROMISE_IN_BOUNDS``: the caller promises in-bounds indices; as XLA does,
  gather then clamps and scatter drops.

Defaults are JAX's: ``lax.gather`` with ``mode=None`` is ``PROMISE_IN_BOUNDS``
(``GatherScatterMode.from_any(None)`` itself is ``FILL_OR_DROP``, which is the
default of every scatter).
"""
from __future__ import annotations

import enum
import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, instantiate_zeros, is_undefined_primal

__all__ = [
    "GatherDimensionNumbers", "ScatterDimensionNumbers", "GatherScatterMode",
    "gather_p", "scatter_p", "scatter_add_p", "scatter_mul_p", "scatter_min_p",
    "scatter_max_p", "gather", "scatter", "scatter_add", "scatter_mul", "scatter_min",
    "scatter_max",
]

# ---------------------------------------------------------------------------
# Dimension numbers and modes
# ---------------------------------------------------------------------------


class GatherDimensionNumbers(NamedTuple):
    """How the dimensions of a gather's operand, indices and output relate.

    * ``offset_dims``: the output dimensions (sorted) that hold the window dims
      of each slice (the operand dims that are neither collapsed nor batching);
    * ``collapsed_slice_dims``: operand dims (sorted, slice size 1) dropped from
      each slice;
    * ``start_index_map``: for each entry of the index vector (the last dimension
      of ``start_indices``), the operand dim it starts;
    * ``operand_batching_dims`` / ``start_indices_batching_dims``: paired dims of
      the operand and the indices that are indexed together (slice size 1, dropped
      from the slice): the slice of index batch position ``b`` is taken from
      operand position ``b`` along the paired operand dim.
    """
    offset_dims: tuple[int, ...]
    collapsed_slice_dims: tuple[int, ...]
    start_index_map: tuple[int, ...]
    operand_batching_dims: tuple[int, ...] = ()
    start_indices_batching_dims: tuple[int, ...] = ()


class ScatterDimensionNumbers(NamedTuple):
    """How the dimensions of a scatter's operand, indices and updates relate
    (the mirror image of :class:`GatherDimensionNumbers`).

    * ``update_window_dims``: the dims of ``updates`` (sorted) that are window dims;
    * ``inserted_window_dims``: operand dims (sorted) of window size 1 that have
      no dim in ``updates``;
    * ``scatter_dims_to_operand_dims``: for each entry of the index vector, the
      operand dim it starts;
    * ``operand_batching_dims`` / ``scatter_indices_batching_dims``: paired batch
      dims of the operand and the indices.
    """
    update_window_dims: tuple[int, ...]
    inserted_window_dims: tuple[int, ...]
    scatter_dims_to_operand_dims: tuple[int, ...]
    operand_batching_dims: tuple[int, ...] = ()
    scatter_indices_batching_dims: tuple[int, ...] = ()


class GatherScatterMode(enum.Enum):
    """What gather/scatter do with out-of-bounds indices (see the module docstring)."""
    CLIP = enum.auto()
    FILL_OR_DROP = enum.auto()
    PROMISE_IN_BOUNDS = enum.auto()

    @staticmethod
    def from_any(s: "str | GatherScatterMode | None") -> "GatherScatterMode":
        """Parse ``'clip'``, ``'fill'``/``'drop'`` (and None), ``'promise_in_bounds'``."""
        if isinstance(s, GatherScatterMode):
            return s
        if s == "clip":
            return GatherScatterMode.CLIP
        if s is None or s == "fill" or s == "drop":
            return GatherScatterMode.FILL_OR_DROP
        if s == "promise_in_bounds":
            return GatherScatterMode.PROMISE_IN_BOUNDS
        raise ValueError(f'Unknown gather mode "{s}"')


def _ints(xs: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(x) for x in xs)


def _canonical_gather_dnums(dn: Any) -> GatherDimensionNumbers:
    if not isinstance(dn, GatherDimensionNumbers):
        raise TypeError(f"gather dimension_numbers must be a GatherDimensionNumbers, "
                        f"got {dn!r}")
    return GatherDimensionNumbers(*map(_ints, dn))


def _canonical_scatter_dnums(dn: Any) -> ScatterDimensionNumbers:
    if not isinstance(dn, ScatterDimensionNumbers):
        raise TypeError(f"scatter dimension_numbers must be a ScatterDimensionNumbers, "
                        f"got {dn!r}")
    return ScatterDimensionNumbers(*map(_ints, dn))


def _scatter_to_gather_dnums(dn: ScatterDimensionNumbers) -> GatherDimensionNumbers:
    return GatherDimensionNumbers(
        offset_dims=dn.update_window_dims, collapsed_slice_dims=dn.inserted_window_dims,
        start_index_map=dn.scatter_dims_to_operand_dims,
        operand_batching_dims=dn.operand_batching_dims,
        start_indices_batching_dims=dn.scatter_indices_batching_dims)


def _gather_to_scatter_dnums(dn: GatherDimensionNumbers) -> ScatterDimensionNumbers:
    return ScatterDimensionNumbers(
        update_window_dims=dn.offset_dims, inserted_window_dims=dn.collapsed_slice_dims,
        scatter_dims_to_operand_dims=dn.start_index_map,
        operand_batching_dims=dn.operand_batching_dims,
        scatter_indices_batching_dims=dn.start_indices_batching_dims)


def scatter_window_sizes(operand_ndim: int, updates_shape: Sequence[int],
                         dn: ScatterDimensionNumbers) -> tuple[int, ...]:
    """The window (slice) size along every operand dim: the gather that reads back
    what a scatter wrote uses these as its ``slice_sizes``."""
    sizes, window = [], iter(dn.update_window_dims)
    for d in range(operand_ndim):
        if d in dn.inserted_window_dims or d in dn.operand_batching_dims:
            sizes.append(1)
        else:
            sizes.append(int(updates_shape[next(window)]))
    return tuple(sizes)


# ---------------------------------------------------------------------------
# Shared numpy machinery: the operand positions that each window covers
# ---------------------------------------------------------------------------


def _window_positions(operand_shape, indices, start_index_map, operand_batching_dims,
                      indices_batching_dims, window, mode):
    """Fancy indices into the operand for every (index batch position, window
    position), broadcastable to ``batch_shape + window``, and a ``batch_shape``
    mask of the windows that are wholly in bounds (all True in CLIP mode)."""
    batch_shape = indices.shape[:-1]
    nb, n = len(batch_shape), len(operand_shape)
    indices = indices.astype(np.int64)
    in_bounds = np.ones(batch_shape, bool)
    starts: list[Any] = [np.zeros(batch_shape, np.int64)] * n
    for j, d in enumerate(start_index_map):
        hi = operand_shape[d] - window[d]
        raw = indices[..., j]
        in_bounds &= (raw >= 0) & (raw <= hi)
        starts[d] = np.clip(raw, 0, max(hi, 0))
    for od, bd in zip(operand_batching_dims, indices_batching_dims):
        view = [1] * nb
        view[bd] = batch_shape[bd]
        starts[od] = np.arange(batch_shape[bd], dtype=np.int64).reshape(view)
    positions = []
    for d in range(n):
        ramp = [1] * (nb + n)
        ramp[nb + d] = window[d]
        start = np.reshape(np.broadcast_to(starts[d], batch_shape), batch_shape + (1,) * n)
        positions.append(start + np.arange(window[d], dtype=np.int64).reshape(ramp))
    if n == 0:  # a 0-d operand is indexed as its 1-element reshape
        positions.append(np.zeros(batch_shape, np.int64))
    if mode == GatherScatterMode.CLIP:
        in_bounds = np.ones(batch_shape, bool)
    return tuple(positions), in_bounds


def output_permutation(nbatch: int, offset_dims: Sequence[int]) -> list[int]:
    """Permutation taking ``batch dims + offset dims`` to the gather output order."""
    out_rank = nbatch + len(offset_dims)
    perm, b, o = [], 0, nbatch
    for pos in range(out_rank):
        if pos in offset_dims:
            perm.append(o)
            o += 1
        else:
            perm.append(b)
            b += 1
    return perm


# ---------------------------------------------------------------------------
# Shape checks (JAX's wording, with the shapes appended)
# ---------------------------------------------------------------------------


def _aval(x: np.ndarray) -> ShapedArray:
    return ShapedArray(np.shape(x), np.asarray(x).dtype)


def _context(name: str, *avals: ShapedArray) -> str:
    labels = ("operand", "indices", "updates")
    shapes = ", ".join(f"{lab} {a.str_short()}" for lab, a in zip(labels, avals))
    return f" [{name} with {shapes}]"


def _check_sorted(dims, name, what, ctx):
    if list(dims) != sorted(dims):
        raise TypeError(f"{what} in {name} op must be sorted; got {dims}{ctx}")


def _check_no_dups(dims, name, what, ctx):
    if len(set(dims)) != len(dims):
        raise TypeError(f"{what} in {name} op must not repeat; got: {dims}.{ctx}")


def _check_in_range(dims, rank, name, what, ctx):
    for d in dims:
        if not 0 <= d < rank:
            raise TypeError(f"Invalid {what} set in {name} op; valid range is "
                            f"[0, {rank}); got: {d}.{ctx}")


def _check_disjoint(dims1, dims2, name, what1, what2, ctx):
    if set(dims1) & set(dims2):
        raise TypeError(f"{what1} and {what2} in {name} op must be disjoint; "
                        f"got: {dims1} and {dims2}.{ctx}")


def _check_indices_dtype(name: str, indices: ShapedArray, ctx: str) -> None:
    if not dtypes.is_int(indices.dtype):
        raise ValueError(f"{name} indices must have an integer type, got "
                         f"{dtypes.short_dtype_name(indices.dtype)}{ctx}")
    if indices.ndim < 1:
        raise TypeError(f"{name} indices must have rank >= 1 (the last dimension is the "
                        f"index vector), got a scalar{ctx}")


def _check_batching(name, operand, indices, obd, ibd, ibd_word, others, ctx):
    """The batching dims, after the operand dims they must be disjoint from
    (``others``: (name, dims) pairs), in JAX's order of checks."""
    _check_no_dups(obd, name, "operand_batching_dims", ctx)
    _check_sorted(obd, name, "operand_batching_dims", ctx)
    _check_in_range(obd, operand.ndim, name, "operand_batching_dims", ctx)
    for what, dims in others:
        _check_disjoint(dims, obd, name, what, "operand_batching_dims", ctx)
    _check_no_dups(ibd, name, ibd_word, ctx)
    _check_in_range(ibd, indices.ndim, name, ibd_word, ctx)
    if indices.ndim - 1 in ibd:
        raise TypeError(f"{name.capitalize()} op cannot have the index vector dimension as "
                        f"a batching dimension; got {ibd}.{ctx}")
    if len(obd) != len(ibd):
        raise TypeError(f"{name.capitalize()} op requires equal numbers of "
                        f"operand_batching_dims and {ibd_word}, got {obd} and {ibd}.{ctx}")
    ob_shape = tuple(operand.shape[d] for d in obd)
    ib_shape = tuple(indices.shape[d] for d in ibd)
    if ob_shape != ib_shape:
        raise TypeError(f"{name.capitalize()} op requires operand batching dimensions and "
                        f"indices batching dimensions to have the same shape, got "
                        f"{ob_shape} and {ib_shape}.{ctx}")


def _check_index_map(name, index_map, map_word, operand, indices, ctx):
    if len(index_map) != indices.shape[-1]:
        raise TypeError(f"{name.capitalize()} op has {len(index_map)} elements in "
                        f"{map_word} and the bound of dimension "
                        f"index_vector_dim={indices.ndim - 1} of indices is "
                        f"{indices.shape[-1]}. These two numbers must be equal.{ctx}")
    for i, d in enumerate(index_map):
        if not 0 <= d < operand.ndim:
            mapping = " mapping" if name == "scatter" else ""
            raise TypeError(f"Invalid {map_word}{mapping}; domain is [0, {operand.ndim}), "
                            f"got: {i}->{d}.{ctx}")
    _check_no_dups(index_map, name, map_word, ctx)


def _gather_shape(operand: ShapedArray, indices: ShapedArray, dn: GatherDimensionNumbers,
                  slice_sizes: Sequence[int]) -> tuple[int, ...]:
    ctx = _context("gather", operand, indices)
    _check_indices_dtype("gather", indices, ctx)
    offset_dims, collapsed = dn.offset_dims, dn.collapsed_slice_dims
    obd, sibd = dn.operand_batching_dims, dn.start_indices_batching_dims
    _check_sorted(offset_dims, "gather", "offset_dims", ctx)
    _check_no_dups(offset_dims, "gather", "offset_dims", ctx)
    out_rank = len(offset_dims) + indices.ndim - 1
    for i, d in enumerate(offset_dims):
        if not 0 <= d < out_rank:
            raise TypeError(f"Offset dimension {i} in gather op is out of bounds; got {d}, "
                            f"but should have been in [0, {out_rank}){ctx}")
    _check_index_map("gather", dn.start_index_map, "start_index_map", operand, indices, ctx)
    _check_sorted(collapsed, "gather", "collapsed_slice_dims", ctx)
    _check_in_range(collapsed, operand.ndim, "gather", "collapsed_slice_dims", ctx)
    _check_no_dups(collapsed, "gather", "collapsed_slice_dims", ctx)
    _check_batching("gather", operand, indices, obd, sibd, "start_indices_batching_dims",
                    [("collapsed_slice_dims", collapsed),
                     ("start_index_map", dn.start_index_map)], ctx)
    if len(slice_sizes) != operand.ndim:
        raise TypeError(f"Gather op must have one slice size for every input dimension; "
                        f"got: len(slice_sizes)={len(slice_sizes)}, "
                        f"input_shape.rank={operand.ndim}{ctx}")
    if len(slice_sizes) != len(offset_dims) + len(collapsed) + len(obd):
        raise TypeError(f"All components of the offset index in a gather op must either be "
                        f"a offset dimension or explicitly collapsed/batching; got "
                        f"len(slice_sizes)={len(slice_sizes)}, output_slice_sizes="
                        f"{offset_dims}, collapsed_slice_dims={collapsed}, "
                        f"operand_batching_dims={obd}.{ctx}")
    for i, (s, size) in enumerate(zip(slice_sizes, operand.shape)):
        if not 0 <= s <= size:
            raise TypeError(f"Slice size at index {i} in gather op is out of range, must be "
                            f"within [0, {size} + 1), got {s}.{ctx}")
    for i, d in enumerate(collapsed):
        if slice_sizes[d] != 1:
            raise TypeError(f"Gather op can only collapse slice dims with bound 1, but bound "
                            f"is {slice_sizes[d]} for index {d} at position {i}.{ctx}")
    for i, d in enumerate(obd):
        if slice_sizes[d] > 1:
            raise TypeError(f"Gather op can only have operand batching dims with bound 0/1, "
                            f"but bound is {slice_sizes[d]} for index {d} at position "
                            f"{i}.{ctx}")
    window = iter(s for d, s in enumerate(slice_sizes) if d not in collapsed and d not in obd)
    batch = iter(indices.shape[:-1])
    return tuple(next(window) if i in offset_dims else next(batch) for i in range(out_rank))


def _scatter_check(name: str, operand: ShapedArray, indices: ShapedArray,
                   updates: ShapedArray, dn: ScatterDimensionNumbers) -> None:
    ctx = _context(name, operand, indices, updates)
    _check_indices_dtype(name, indices, ctx)
    if operand.dtype != updates.dtype:
        raise TypeError(f"{name} requires arguments to have the same dtypes, got "
                        f"{operand.dtype.name}, {updates.dtype.name}.{ctx}")
    uwd, inserted = dn.update_window_dims, dn.inserted_window_dims
    obd, sibd = dn.operand_batching_dims, dn.scatter_indices_batching_dims
    expected_rank = indices.ndim - 1 + len(uwd)
    if updates.ndim != expected_rank:
        raise TypeError(f"Updates tensor must be of rank {expected_rank}; got "
                        f"{updates.ndim}.{ctx}")
    _check_sorted(uwd, "scatter", "update_window_dims", ctx)
    _check_no_dups(uwd, "scatter", "update_window_dims", ctx)
    _check_in_range(uwd, updates.ndim, "scatter", "update_window_dims", ctx)
    _check_sorted(inserted, "scatter", "inserted_window_dims", ctx)
    _check_no_dups(inserted, "scatter", "inserted_window_dims", ctx)
    _check_in_range(inserted, operand.ndim, "scatter", "inserted_window_dims", ctx)
    _check_batching("scatter", operand, indices, obd, sibd, "scatter_indices_batching_dims",
                    [("inserted_window_dims", inserted),
                     ("scatter_dims_to_operand_dims", dn.scatter_dims_to_operand_dims)],
                    ctx)
    window_size = len(uwd) + len(inserted) + len(obd)
    if window_size != operand.ndim:
        raise TypeError(f"Scatter op has window of size {window_size}; doesn't match "
                        f"operand of rank {operand.ndim}.{ctx}")
    _check_index_map("scatter", dn.scatter_dims_to_operand_dims,
                     "scatter_dims_to_operand_dims", operand, indices, ctx)
    max_sizes = [s for d, s in enumerate(operand.shape) if d not in inserted and d not in obd]
    for i, d in enumerate(uwd):
        if updates.shape[d] > max_sizes[i]:
            raise TypeError(f"Bounds of the window dimensions of updates must not exceed the "
                            f"bounds of the corresponding dimensions of operand. For "
                            f"dimension {d}, updates bound is {updates.shape[d]}, operand "
                            f"bound is {max_sizes[i]}.{ctx}")
    scatter_dims = [d for d in range(updates.ndim) if d not in uwd]
    for d, bound in zip(scatter_dims, indices.shape[:-1]):
        if updates.shape[d] != bound:
            raise TypeError(f"Bounds of the scatter dimensions of updates must be the same "
                            f"as the bounds of the corresponding dimensions of scatter "
                            f"indices. For scatter dimension {d}, updates bound is "
                            f"{updates.shape[d]}, indices bound is {bound}.{ctx}")


# ---------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------

gather_p = Primitive("gather")


@gather_p.def_impl
def _gather_impl(operand, indices, *, dimension_numbers, slice_sizes, unique_indices,
                 indices_are_sorted, mode, fill_value):
    dn = dimension_numbers
    _gather_shape(_aval(operand), _aval(indices), dn, slice_sizes)
    positions, in_bounds = _window_positions(
        operand.shape, np.asarray(indices), dn.start_index_map, dn.operand_batching_dims,
        dn.start_indices_batching_dims, slice_sizes, mode)
    batch_shape = in_bounds.shape
    out = operand.reshape(operand.shape or (1,))[positions]  # batch_shape + slice_sizes
    if mode == GatherScatterMode.FILL_OR_DROP and not in_bounds.all():
        mask = in_bounds.reshape(batch_shape + (1,) * operand.ndim)
        out = np.where(mask, out, np.asarray(fill_value, operand.dtype))
    dropped = set(dn.collapsed_slice_dims) | set(dn.operand_batching_dims)
    kept = tuple(s for d, s in enumerate(slice_sizes) if d not in dropped)
    out = out.reshape(batch_shape + kept)
    return np.transpose(out, output_permutation(len(batch_shape), dn.offset_dims))


@gather_p.def_abstract_eval
def _gather_abstract_eval(operand, indices, *, dimension_numbers, slice_sizes,
                          unique_indices, indices_are_sorted, mode, fill_value):
    shape = _gather_shape(operand, indices, dimension_numbers, slice_sizes)
    return ShapedArray(shape, operand.dtype, operand.weak_type)


gather_p.weak_type_rule = lambda weak, **_: weak[0]


def default_fill_value(dtype: np.dtype) -> Any:
    if dtypes.is_float(dtype) or dtypes.is_complex(dtype):
        return np.nan
    if dtypes.is_unsigned(dtype):
        return int(np.iinfo(dtype).max)
    if dtypes.is_int(dtype):
        return int(np.iinfo(dtype).min)
    if dtype == np.bool_:
        return True
    raise ValueError(f"Unsupported dtype for gather fill_value {dtype}")


def _static_scalar(value: Any, dtype: np.dtype) -> Any:
    """A hashable Python scalar of ``dtype`` (NaN as the one ``np.nan`` object, so
    that equal params compare equal)."""
    v = np.asarray(value).astype(dtype).item()
    if isinstance(v, float) and math.isnan(v):
        return np.nan
    return v


def gather(operand, start_indices, dimension_numbers: GatherDimensionNumbers,
           slice_sizes: Sequence[int], *, unique_indices: bool = False,
           indices_are_sorted: bool = False,
           mode: "str | GatherScatterMode | None" = None, fill_value: Any = None):
    """XLA's gather: a slice of ``slice_sizes`` of ``operand`` starting at each index
    vector (the last dimension) of ``start_indices``.

    ``mode=None`` is ``PROMISE_IN_BOUNDS`` (as in JAX; it clamps).  In
    ``'fill'`` mode an out-of-bounds slice is ``fill_value``: by default NaN for
    inexact types, the minimum of signed and the maximum of unsigned integers,
    True for bools.
    """
    x, idx = as_operand(operand), as_operand(start_indices)
    parsed = GatherScatterMode.from_any(
        GatherScatterMode.PROMISE_IN_BOUNDS if mode is None else mode)
    dtype = get_aval(x).dtype
    if parsed == GatherScatterMode.FILL_OR_DROP:
        fill_value = _static_scalar(
            default_fill_value(dtype) if fill_value is None else fill_value, dtype)
    else:
        fill_value = None
    return gather_p.bind(x, idx, dimension_numbers=_canonical_gather_dnums(dimension_numbers),
                         slice_sizes=_ints(slice_sizes), unique_indices=bool(unique_indices),
                         indices_are_sorted=bool(indices_are_sorted), mode=parsed,
                         fill_value=fill_value)


def _gather_jvp(primals, tangents, *, dimension_numbers, slice_sizes, unique_indices,
                indices_are_sorted, mode, fill_value):
    operand, indices = primals
    g = tangents[0]
    params = dict(dimension_numbers=dimension_numbers, slice_sizes=slice_sizes,
                  unique_indices=unique_indices, indices_are_sorted=indices_are_sorted,
                  mode=mode)
    out = gather_p.bind(operand, indices, fill_value=fill_value, **params)
    if type(g) is Zero or get_aval(g).dtype == dtypes.float0:
        return out, Zero.from_primal(out)
    # an out-of-bounds slice is a constant: its tangent is zero
    tangent_fill = 0 if mode == GatherScatterMode.FILL_OR_DROP else None
    return out, gather_p.bind(g, indices, fill_value=tangent_fill, **params)


def _gather_transpose(ct, operand, indices, *, dimension_numbers, slice_sizes,
                      unique_indices, indices_are_sorted, mode, fill_value):
    assert is_undefined_primal(operand) and not is_undefined_primal(indices)
    if type(ct) is Zero:
        return [Zero(operand.aval), None]
    from tinyjax.lax.shape import full
    zeros = full(operand.aval.shape, 0, get_aval(ct).dtype)
    # PROMISE_IN_BOUNDS gathers clamp, so their transpose clamps too: the gradient
    # then stays exact even for out-of-bounds indices (JAX's drops it there)
    if mode == GatherScatterMode.PROMISE_IN_BOUNDS:
        mode = GatherScatterMode.CLIP
    out = scatter_add(zeros, indices, ct, _gather_to_scatter_dnums(dimension_numbers),
                      indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                      mode=mode)
    return [out, None]


def _shift(dims: Sequence[int], by: int = 1) -> tuple[int, ...]:
    return tuple(d + by for d in dims)


def _gather_batch(vals, dims, *, dimension_numbers, slice_sizes, unique_indices,
                  indices_are_sorted, mode, fill_value):
    operand, indices = vals
    op_dim, idx_dim = dims
    dn = dimension_numbers
    params = dict(unique_indices=unique_indices, indices_are_sorted=indices_are_sorted,
                  mode=mode, fill_value=fill_value)
    if idx_dim is None:
        # the batch axis of the operand becomes a full-size leading window dim
        operand = batching.moveaxis(operand, op_dim, 0)
        new_dn = GatherDimensionNumbers(
            offset_dims=(0,) + _shift(dn.offset_dims),
            collapsed_slice_dims=_shift(dn.collapsed_slice_dims),
            start_index_map=_shift(dn.start_index_map),
            operand_batching_dims=_shift(dn.operand_batching_dims),
            start_indices_batching_dims=dn.start_indices_batching_dims)
        sizes = (get_aval(operand).shape[0],) + tuple(slice_sizes)
        return gather_p.bind(operand, indices, dimension_numbers=new_dn, slice_sizes=sizes,
                             **params), 0
    indices = batching.moveaxis(indices, idx_dim, 0)
    if op_dim is None:
        # the batch axis of the indices becomes the leading batch dim of the output
        new_dn = dn._replace(offset_dims=_shift(dn.offset_dims),
                             start_indices_batching_dims=_shift(dn.start_indices_batching_dims))
        params.update(unique_indices=False, indices_are_sorted=False)
        return gather_p.bind(operand, indices, dimension_numbers=new_dn,
                             slice_sizes=slice_sizes, **params), 0
    # both batched: pair the two batch axes as a batching dim
    operand = batching.moveaxis(operand, op_dim, 0)
    size = get_aval(operand).shape[0]
    new_dn = GatherDimensionNumbers(
        offset_dims=_shift(dn.offset_dims),
        collapsed_slice_dims=_shift(dn.collapsed_slice_dims),
        start_index_map=_shift(dn.start_index_map),
        operand_batching_dims=(0,) + _shift(dn.operand_batching_dims),
        start_indices_batching_dims=(0,) + _shift(dn.start_indices_batching_dims))
    sizes = (min(size, 1),) + tuple(slice_sizes)
    return gather_p.bind(operand, indices, dimension_numbers=new_dn, slice_sizes=sizes,
                         **params), 0


ad.primitive_jvps[gather_p] = _gather_jvp
ad.primitive_transposes[gather_p] = _gather_transpose
batching.primitive_batchers[gather_p] = _gather_batch

# ---------------------------------------------------------------------------
# The scatter family
# ---------------------------------------------------------------------------


def _scatter_impl_for(name: str, combine: str):
    def impl(operand, indices, updates, *, dimension_numbers, indices_are_sorted,
             unique_indices, mode):
        dn = dimension_numbers
        _scatter_check(name, _aval(operand), _aval(indices), _aval(updates), dn)
        window = scatter_window_sizes(operand.ndim, updates.shape, dn)
        positions, in_bounds = _window_positions(
            operand.shape, np.asarray(indices), dn.scatter_dims_to_operand_dims,
            dn.operand_batching_dims, dn.scatter_indices_batching_dims, window, mode)
        batch_shape = in_bounds.shape
        # updates -> batch_shape + window, in the order of the operand dims
        scatter_dims = [d for d in range(updates.ndim) if d not in dn.update_window_dims]
        upd = np.transpose(updates, scatter_dims + list(dn.update_window_dims))
        full = batch_shape + window
        upd = upd.reshape(full)
        keep = np.broadcast_to(in_bounds.reshape(batch_shape + (1,) * operand.ndim), full)
        where = tuple(np.broadcast_to(p, full)[keep] for p in positions)
        values = upd[keep]
        out = np.array(operand, copy=True).reshape(operand.shape or (1,))
        if combine == "replace":
            out[where] = values  # repeated positions: the last update (C order) wins
        else:
            getattr(np, combine).at(out, where, values)
        return out.reshape(operand.shape)
    return impl


def _scatter_prim(name: str, combine: str) -> Primitive:
    prim = Primitive(name)
    prim.def_impl(_scatter_impl_for(name, combine))

    def abstract_eval(operand, indices, updates, *, dimension_numbers, indices_are_sorted,
                      unique_indices, mode):
        _scatter_check(name, operand, indices, updates, dimension_numbers)
        return ShapedArray(operand.shape, operand.dtype, operand.weak_type)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = lambda weak, **_: weak[0]
    batching.primitive_batchers[prim] = lambda vals, dims, **params: _scatter_batch(
        prim, vals, dims, **params)
    return prim


scatter_p = _scatter_prim("scatter", "replace")
scatter_add_p = _scatter_prim("scatter-add", "add")
scatter_mul_p = _scatter_prim("scatter-mul", "multiply")
scatter_min_p = _scatter_prim("scatter-min", "minimum")
scatter_max_p = _scatter_prim("scatter-max", "maximum")


def _scatter_public(prim: Primitive, what: str):
    def fn(operand, scatter_indices, updates, dimension_numbers: ScatterDimensionNumbers,
           *, indices_are_sorted: bool = False, unique_indices: bool = False,
           mode: "str | GatherScatterMode | None" = None):
        x = as_operand(operand)
        idx = as_operand(scatter_indices)
        upd = as_operand(updates, get_aval(x).dtype) if isinstance(
            updates, (bool, int, float)) else as_operand(updates)
        return prim.bind(x, idx, upd,
                         dimension_numbers=_canonical_scatter_dnums(dimension_numbers),
                         indices_are_sorted=bool(indices_are_sorted),
                         unique_indices=bool(unique_indices),
                         mode=GatherScatterMode.from_any(mode))
    fn.__name__ = prim.name.replace("-", "_")
    fn.__qualname__ = fn.__name__
    fn.__doc__ = (
        f"XLA's scatter, {what}: each window of ``updates`` goes to ``operand`` at the "
        f"index vector (last dimension) of ``scatter_indices``.\n\n"
        f"``mode=None`` is ``FILL_OR_DROP`` (as in JAX): a window that is not wholly in "
        f"bounds is dropped; ``'clip'`` clamps its start so that it is.")
    return fn


scatter = _scatter_public(scatter_p, "replacing the operand's values (where indices "
                          "repeat, one of the updates wins)")
scatter_add = _scatter_public(scatter_add_p, "adding to the operand's values")
scatter_mul = _scatter_public(scatter_mul_p, "multiplying the operand's values")
scatter_min = _scatter_public(scatter_min_p, "taking the minimum with the operand's values")
scatter_max = _scatter_public(scatter_max_p, "taking the maximum with the operand's values")


# --- helpers for the rules --------------------------------------------------


def _inverse_gather(x, indices, updates_shape, dn: ScatterDimensionNumbers, mode,
                    fill_value=0):
    """Read back, for every element of ``updates``, the element of ``x`` that it
    scatters to (``fill_value`` for a dropped window)."""
    sizes = scatter_window_sizes(get_aval(x).ndim, updates_shape, dn)
    mode = GatherScatterMode.FILL_OR_DROP if mode != GatherScatterMode.CLIP else mode
    return gather(x, indices, _scatter_to_gather_dnums(dn), sizes, mode=mode,
                  fill_value=fill_value)


def _zeros(shape, dtype):
    from tinyjax.lax.shape import full
    return full(shape, 0, dtype)


def _winner_masks(operand_shape, indices, updates_shape, params):
    """For a ``scatter`` (replace) with possibly repeated indices: which operand
    elements survive (boolean, operand shaped) and which update elements win
    (boolean, updates shaped).  Each update window gets a positive id, the ids
    are scattered with the same primitive, and read back: an update element won
    where the id found at its target is its own."""
    from tinyjax.lax.elementwise import add, eq
    from tinyjax.lax.shape import broadcast_in_dim, broadcasted_iota, reshape
    dn = params["dimension_numbers"]
    id_shape = tuple(1 if d in dn.update_window_dims else s
                     for d, s in enumerate(updates_shape))
    n_ids = math.prod(id_shape)
    id_dtype = np.int32 if n_ids < np.iinfo(np.int32).max else np.int64
    ids = add(reshape(broadcasted_iota(id_dtype, (n_ids,), 0), id_shape),
              as_operand(1, id_dtype))
    ids = broadcast_in_dim(ids, tuple(updates_shape), tuple(range(len(updates_shape))))
    scattered = scatter_p.bind(_zeros(operand_shape, id_dtype), indices, ids, **params)
    read_back = _inverse_gather(scattered, indices, updates_shape, dn, params["mode"])
    return eq(scattered, as_operand(0, id_dtype)), eq(ids, read_back)


def _masked(mask, x):
    from tinyjax.lax.elementwise import select
    return select(mask, x, _zeros(get_aval(x).shape, get_aval(x).dtype))


def _float_tangent(*ts) -> bool:
    return any(type(t) is not Zero and get_aval(t).dtype != dtypes.float0 for t in ts)


# --- scatter_add -------------------------------------------------------------


def _scatter_add_jvp(primals, tangents, **params):
    operand, indices, updates = primals
    g_op, _, g_upd = tangents
    out = scatter_add_p.bind(operand, indices, updates, **params)
    if not _float_tangent(g_op, g_upd):
        return out, Zero.from_primal(out)
    return out, scatter_add_p.bind(instantiate_zeros(g_op), indices,
                                   instantiate_zeros(g_upd), **params)


def _scatter_add_transpose(ct, operand, indices, updates, **params):
    assert not is_undefined_primal(indices)
    op_ct = upd_ct = None
    if type(ct) is Zero:
        op_ct = Zero(operand.aval) if is_undefined_primal(operand) else None
        upd_ct = Zero(updates.aval) if is_undefined_primal(updates) else None
        return [op_ct, None, upd_ct]
    if is_undefined_primal(operand):
        op_ct = ct
    if is_undefined_primal(updates):
        upd_ct = _inverse_gather(ct, indices, updates.aval.shape,
                                 params["dimension_numbers"], params["mode"])
    return [op_ct, None, upd_ct]


ad.primitive_jvps[scatter_add_p] = _scatter_add_jvp
ad.primitive_transposes[scatter_add_p] = _scatter_add_transpose


# --- scatter (replace) --------------------------------------------------------


def _scatter_jvp(primals, tangents, **params):
    operand, indices, updates = primals
    g_op, _, g_upd = tangents
    if not _float_tangent(g_op, g_upd):
        out = scatter_p.bind(operand, indices, updates, **params)
        return out, Zero.from_primal(out)
    g_op, g_upd = instantiate_zeros(g_op), instantiate_zeros(g_upd)
    if params["unique_indices"]:
        return (scatter_p.bind(operand, indices, updates, **params),
                scatter_p.bind(g_op, indices, g_upd, **params))
    # Repeated indices: which update wins is up to the implementation, so find out
    # with ids, and express primal and tangent as scatter_adds of the winners only.
    kept, won = _winner_masks(get_aval(operand).shape, indices, get_aval(updates).shape,
                              params)
    add_params = dict(params)
    out = scatter_add_p.bind(_masked(kept, operand), indices, _masked(won, updates),
                             **add_params)
    tangent = scatter_add_p.bind(_masked(kept, g_op), indices, _masked(won, g_upd),
                                 **add_params)
    return out, tangent


def _scatter_transpose(ct, operand, indices, updates, **params):
    assert not is_undefined_primal(indices)
    op_undef, upd_undef = is_undefined_primal(operand), is_undefined_primal(updates)
    if type(ct) is Zero:
        return [Zero(operand.aval) if op_undef else None, None,
                Zero(updates.aval) if upd_undef else None]
    op_shape = operand.aval.shape if op_undef else get_aval(operand).shape
    upd_shape = updates.aval.shape if upd_undef else get_aval(updates).shape
    dn, mode = params["dimension_numbers"], params["mode"]
    kept, won = _winner_masks(op_shape, indices, upd_shape, params)
    op_ct = _masked(kept, ct) if op_undef else None
    upd_ct = _masked(won, _inverse_gather(ct, indices, upd_shape, dn, mode)) \
        if upd_undef else None
    return [op_ct, None, upd_ct]


ad.primitive_jvps[scatter_p] = _scatter_jvp
ad.primitive_transposes[scatter_p] = _scatter_transpose


# --- scatter_mul ---------------------------------------------------------------


def _scatter_mul_jvp(primals, tangents, **params):
    from tinyjax.lax.elementwise import (bitwise_not, convert_element_type, div, eq, mul,
                                         select)
    operand, indices, updates = primals
    g_op, _, g_upd = tangents
    out = scatter_mul_p.bind(operand, indices, updates, **params)
    if not _float_tangent(g_op, g_upd):
        return out, Zero.from_primal(out)
    tangent: Any = Zero.from_primal(out)
    if _float_tangent(g_op):
        tangent = scatter_mul_p.bind(g_op, indices, updates, **params)
    if _float_tangent(g_upd):
        shape, dt = get_aval(operand).shape, get_aval(operand).dtype
        if params["unique_indices"]:
            summed = scatter_add_p.bind(_zeros(shape, dt), indices, g_upd, **params)
        else:
            # d/dy_u of prod_u y_u without dividing by zero: count the zero updates
            # reaching each element; with none, sum g/y times the product; with one,
            # the tangent of that zero times the product of the others; else 0.
            is_zero = eq(updates, as_operand(0, dt))
            safe = select(is_zero, _ones_like(updates), updates)
            n_zero = scatter_add_p.bind(_zeros(shape, np.int32), indices,
                                        convert_element_type(is_zero, np.int32), **params)
            prod_nonzero = scatter_mul_p.bind(_ones_like(operand), indices, safe, **params)
            by_ratio = scatter_add_p.bind(_zeros(shape, dt), indices,
                                          _masked(bitwise_not(is_zero), div(g_upd, safe)),
                                          **params)
            at_zero = scatter_add_p.bind(_zeros(shape, dt), indices,
                                         _masked(is_zero, g_upd), **params)
            summed = mul(prod_nonzero, select(
                eq(n_zero, as_operand(0, np.int32)), by_ratio,
                _masked(eq(n_zero, as_operand(1, np.int32)), at_zero)))
        tangent = ad.add_tangents(tangent, mul(operand, summed))
    return out, tangent


def _ones_like(x):
    from tinyjax.lax.shape import full
    return full(get_aval(x).shape, 1, get_aval(x).dtype)


def _scatter_mul_transpose(ct, operand, indices, updates, **params):
    if is_undefined_primal(updates):
        raise NotImplementedError("scatter-mul is not linear in its updates; transpose "
                                  "it only with respect to the operand")
    if type(ct) is Zero:
        return [Zero(operand.aval), None, None]
    return [scatter_mul_p.bind(ct, indices, updates, **params), None, None]


ad.primitive_jvps[scatter_mul_p] = _scatter_mul_jvp
ad.primitive_transposes[scatter_mul_p] = _scatter_mul_transpose


# --- scatter_min / scatter_max ---------------------------------------------------


def _scatter_extremum_jvp(prim: Primitive):
    """The tangent of each element is the average of the tangents of all the values
    (operand and updates) that attain its extremum, as for ``reduce_max``."""
    def rule(primals, tangents, **params):
        from tinyjax.lax.elementwise import convert_element_type, div, eq, max as max_
        operand, indices, updates = primals
        g_op, _, g_upd = tangents
        out = prim.bind(operand, indices, updates, **params)
        if not _float_tangent(g_op, g_upd):
            return out, Zero.from_primal(out)
        g_op, g_upd = instantiate_zeros(g_op), instantiate_zeros(g_upd)
        dt = get_aval(operand).dtype
        dn, mode = params["dimension_numbers"], params["mode"]
        update_wins = eq(updates, _inverse_gather(out, indices, get_aval(updates).shape,
                                                  dn, mode))
        operand_wins = eq(operand, out)
        count = scatter_add_p.bind(convert_element_type(operand_wins, dt), indices,
                                   convert_element_type(update_wins, dt), **params)
        total = scatter_add_p.bind(_masked(operand_wins, g_op), indices,
                                   _masked(update_wins, g_upd), **params)
        return out, div(total, max_(count, as_operand(1, dt)))
    ad.primitive_jvps[prim] = rule


_scatter_extremum_jvp(scatter_min_p)
_scatter_extremum_jvp(scatter_max_p)


# --- batching -------------------------------------------------------------------


def _scatter_batch(prim, vals, dims, *, dimension_numbers, indices_are_sorted,
                   unique_indices, mode):
    operand, indices, updates = vals
    op_dim, idx_dim, upd_dim = dims
    dn = dimension_numbers
    size = batching.batch_size(vals, dims)
    operand = batching.bdim_at_front(operand, op_dim, size)
    updates = batching.bdim_at_front(updates, upd_dim, size)
    if idx_dim is None:
        # the batch axis is a full-size leading window dim of the updates
        new_dn = ScatterDimensionNumbers(
            update_window_dims=(0,) + _shift(dn.update_window_dims),
            inserted_window_dims=_shift(dn.inserted_window_dims),
            scatter_dims_to_operand_dims=_shift(dn.scatter_dims_to_operand_dims),
            operand_batching_dims=_shift(dn.operand_batching_dims),
            scatter_indices_batching_dims=dn.scatter_indices_batching_dims)
    else:
        indices = batching.bdim_at_front(indices, idx_dim, size)
        new_dn = ScatterDimensionNumbers(
            update_window_dims=_shift(dn.update_window_dims),
            inserted_window_dims=_shift(dn.inserted_window_dims),
            scatter_dims_to_operand_dims=_shift(dn.scatter_dims_to_operand_dims),
            operand_batching_dims=(0,) + _shift(dn.operand_batching_dims),
            scatter_indices_batching_dims=(0,) + _shift(dn.scatter_indices_batching_dims))
    return prim.bind(operand, indices, updates, dimension_numbers=new_dn,
                     indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                     mode=mode), 0
