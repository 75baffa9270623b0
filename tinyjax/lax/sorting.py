"""Sorting primitives: ``sort`` (several operands, lexicographic in the first
``num_keys``) and ``top_k``.

Sorting moves the non-key operands by the keys' permutation, so ``sort`` is linear
in them: the jvp sorts the tangents as extra non-key operands, and the transpose
undoes the permutation by sorting the cotangents with the permutation as the key.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand, canonicalize_axis
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.elementwise import bitwise_not, neg
from tinyjax.lax.shape import transpose
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, is_undefined_primal

__all__ = ["sort", "sort_key_val", "top_k", "sort_p", "top_k_p", "approx_max_k",
           "approx_min_k", "approx_top_k_p"]


def _sortable(d: np.dtype) -> bool:
    return dtypes.is_int(d) or dtypes.is_inexact(d) or d == np.bool_


def _check_sortable(name: str, aval: ShapedArray, what: str) -> None:
    if not _sortable(aval.dtype) or (name != "sort" and dtypes.is_complex(aval.dtype)):
        kinds = "bool, integer, floating" + (", complexfloating" if name == "sort" else "")
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} ({what}). Accepted "
                        f"dtypes are subtypes of {kinds}.")


# ---------------------------------------------------------------------------
# sort
# ---------------------------------------------------------------------------

sort_p = Primitive("sort", multiple_results=True)


def lexsort_keys(x: np.ndarray) -> list[np.ndarray]:
    """Keys (least significant first) that order ``x`` as JAX's sort does: -0.0 equals
    0.0, and every NaN sorts after +inf, all NaNs equal (stable among themselves); complex
    numbers by real part, then imaginary part."""
    if dtypes.is_complex(x.dtype):
        return lexsort_keys(x.imag) + lexsort_keys(x.real)
    if dtypes.is_float(x.dtype):
        wide = x.astype(np.float64)
        nan = np.isnan(wide)
        return [np.where(nan, 0.0, wide) + 0.0, nan]
    return [x]


@sort_p.def_impl
def _sort_impl(*operands, dimension, is_stable, num_keys):
    _sort_abstract_eval(*[ShapedArray(x.shape, x.dtype) for x in operands],
                        dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    keys: list[np.ndarray] = []
    for k in reversed(operands[:num_keys]):
        keys.extend(lexsort_keys(k))
    perm = np.lexsort(keys, axis=dimension) if operands[0].size else \
        np.zeros(operands[0].shape, np.intp)
    return [np.take_along_axis(x, perm, axis=dimension) for x in operands]


@sort_p.def_abstract_eval
def _sort_abstract_eval(*operands, dimension, is_stable, num_keys):
    if not operands:
        raise TypeError("Sort requires at least one operand")
    if any(x.shape != operands[0].shape for x in operands[1:]):
        shapes = " ".join(str(x.shape) for x in operands)
        raise TypeError(f"Arguments to sort must have equal shapes, got: {shapes}")
    if not 1 <= num_keys <= len(operands):
        raise ValueError(f"sort: num_keys={num_keys} must be between 1 and "
                         f"len(operand)={len(operands)}")
    ndim = operands[0].ndim
    if not 0 <= dimension < ndim:
        raise ValueError(f"sort: dimension {dimension} is out of bounds for operands of "
                         f"shape {operands[0].shape}")
    for i, x in enumerate(operands):
        _check_sortable("sort", x, f"operand {i}")
    return [ShapedArray(x.shape, x.dtype, x.weak_type) for x in operands]


sort_p.weak_type_rule = lambda weak, **_: list(weak)


def sort(operand: Any, dimension: int = -1, is_stable: bool = True, num_keys: int = 1) -> Any:
    """Sort ``operand`` along ``dimension``; a sequence of arrays of one shape is sorted
    together, lexicographically by its first ``num_keys`` arrays (a tuple comes back).
    NaNs sort to the end and ``-0.0`` equals ``0.0``."""
    if isinstance(operand, (list, tuple)):
        if len(operand) == 0:
            raise TypeError("Sort requires at least one operand")
        if not 1 <= num_keys <= len(operand):
            raise ValueError(f"num_keys={num_keys} must be between 1 and "
                             f"len(operand)={len(operand)}")
        xs = [as_operand(x) for x in operand]
        dim = canonicalize_axis(int(dimension), get_aval(xs[0]).ndim, "dimension")
        return tuple(sort_p.bind(*xs, dimension=dim, is_stable=bool(is_stable),
                                 num_keys=int(num_keys)))
    if num_keys != 1:
        raise ValueError(f"num_keys={num_keys} must equal 1 for a single operand.")
    x = as_operand(operand)
    dim = canonicalize_axis(int(dimension), get_aval(x).ndim, "dimension")
    return sort_p.bind(x, dimension=dim, is_stable=bool(is_stable), num_keys=1)[0]


def sort_key_val(keys: Any, values: Any, dimension: int = -1,
                 is_stable: bool = True) -> tuple[Any, Any]:
    """Sort ``keys`` along ``dimension`` and move ``values`` with them."""
    return sort((keys, values), dimension=dimension, is_stable=is_stable, num_keys=1)


def _permutation(keys: Sequence[Any], dimension: int, is_stable: bool) -> Any:
    """The int32 permutation that sorts ``keys``: ``sorted[i] = x[perm[i]]``."""
    from tinyjax.lax.shape import broadcasted_iota
    iota = broadcasted_iota(np.int32, get_aval(keys[0]).shape, dimension)
    return sort_p.bind(*keys, iota, dimension=dimension, is_stable=is_stable,
                       num_keys=len(keys))[-1]


def _sort_jvp(primals, tangents, *, dimension, is_stable, num_keys):
    outs = sort_p.bind(*primals, dimension=dimension, is_stable=is_stable, num_keys=num_keys)
    moving = [i for i, t in enumerate(tangents) if type(t) is not Zero]
    out_tangents: list[Any] = [Zero.from_primal(o) for o in outs]
    if moving:
        # the same keys give the same permutation, applied to the tangents
        sorted_t = sort_p.bind(*primals[:num_keys], *[tangents[i] for i in moving],
                               dimension=dimension, is_stable=is_stable,
                               num_keys=num_keys)[num_keys:]
        for i, t in zip(moving, sorted_t):
            out_tangents[i] = t
    return outs, out_tangents


def _sort_transpose(cts, *operands, dimension, is_stable, num_keys):
    keys = operands[:num_keys]
    if any(is_undefined_primal(k) for k in keys):
        raise NotImplementedError("sort is not linear in its keys (the first num_keys "
                                  "operands); it cannot be transposed with respect to them")
    result: list[Any] = [None] * len(operands)
    moving = []
    for i in range(num_keys, len(operands)):
        if is_undefined_primal(operands[i]):
            if type(cts[i]) is Zero:
                result[i] = Zero(operands[i].aval)
            else:
                moving.append(i)
    if moving:
        perm = _permutation(keys, dimension, is_stable)
        # sorting by the permutation sends every element back where it came from
        unsorted = sort_p.bind(perm, *[cts[i] for i in moving], dimension=dimension,
                               is_stable=True, num_keys=1)[1:]
        for i, ct in zip(moving, unsorted):
            result[i] = ct
    return result


ad.primitive_jvps[sort_p] = _sort_jvp
ad.primitive_transposes[sort_p] = _sort_transpose


def _sort_batch(vals, dims, *, dimension, is_stable, num_keys):
    if len(set(dims)) == 1:  # all batched along one axis: keep it there
        d = dims[0]
        outs = sort_p.bind(*vals, dimension=dimension + (d <= dimension),
                           is_stable=is_stable, num_keys=num_keys)
        return outs, [d] * len(outs)
    size = batching.batch_size(vals, dims)
    vals = [batching.moveaxis(v, d, 0, size) for v, d in zip(vals, dims)]
    outs = sort_p.bind(*vals, dimension=dimension + 1, is_stable=is_stable, num_keys=num_keys)
    return outs, [0] * len(outs)


batching.primitive_batchers[sort_p] = _sort_batch

# ---------------------------------------------------------------------------
# top_k
# ---------------------------------------------------------------------------

top_k_p = Primitive("top_k", multiple_results=True)


def descending_key(x: np.ndarray) -> np.ndarray:
    """Integers whose ascending order is ``x``'s descending IEEE total order (as XLA's
    TopK: NaN first, then +inf, …, +0.0 before -0.0, …, -inf, -NaN last)."""
    if x.dtype == np.bool_:
        x = x.astype(np.uint8)
    if dtypes.is_float(x.dtype):
        bits = x.view(np.dtype(f"i{x.dtype.itemsize}"))
        magnitude = np.array(np.iinfo(bits.dtype).max, bits.dtype)
        x = np.where(bits < 0, bits ^ magnitude, bits)
    return np.invert(x)  # reverses the order of signed and unsigned integers alike


@top_k_p.def_impl
def _top_k_impl(x, *, k):
    _top_k_abstract_eval(ShapedArray(x.shape, x.dtype), k=k)
    idx = np.argsort(descending_key(x), axis=-1, kind="stable")[..., :k]
    return [np.take_along_axis(x, idx, axis=-1), idx.astype(np.int32)]


@top_k_p.def_abstract_eval
def _top_k_abstract_eval(x, *, k):
    if k < 0:
        raise ValueError(f"k argument to top_k must be nonnegative, got {k}")
    if x.ndim == 0:
        raise TypeError(f"top_k operand must have >= 1 dimension, got {x.shape}")
    if x.shape[-1] < k:
        raise ValueError("k argument to top_k must be no larger than minor dimension; "
                         f"{k} vs {list(x.shape)}")
    _check_sortable("top_k", x, "operand")
    shape = x.shape[:-1] + (k,)
    return [ShapedArray(shape, x.dtype, x.weak_type), ShapedArray(shape, np.int32)]


top_k_p.weak_type_rule = lambda weak, **_: [weak[0], False]


def top_k(operand: Any, k: int, *, axis: int = -1) -> tuple[Any, Any]:
    """The ``k`` largest entries along ``axis`` (the last by default), in descending
    order, and their int32 indices (the lower index first among equal entries)."""
    x = as_operand(operand)
    nd = get_aval(x).ndim
    if nd == 0:
        raise TypeError(f"top_k operand must have >= 1 dimension, got {get_aval(x).shape}")
    axis = canonicalize_axis(axis, nd)
    if axis == nd - 1:
        return tuple(top_k_p.bind(x, k=int(k)))
    perm = tuple(i for i in range(nd) if i != axis) + (axis,)
    back = tuple(int(i) for i in np.argsort(perm))
    values, indices = top_k_p.bind(transpose(x, perm), k=int(k))
    return transpose(values, back), transpose(indices, back)


def _approx_k(name: str, operand: Any, k: int, reduction_dimension: int,
              recall_target: float, reduction_input_size_override: int,
              aggregate_to_topk: bool, largest: bool) -> tuple[Any, Any]:
    if not 0 < recall_target <= 1:
        raise ValueError(f"{name}: recall_target must be in (0, 1], got {recall_target}")
    return tuple(approx_top_k_p.bind(
        as_operand(operand), k=int(k), reduction_dimension=int(reduction_dimension),
        recall_target=float(recall_target), is_max_k=bool(largest),
        reduction_input_size_override=int(reduction_input_size_override),
        aggregate_to_topk=bool(aggregate_to_topk)))


def _approx_top_k(x: Any, *, k: int, reduction_dimension: int, recall_target: float,
                  is_max_k: bool, reduction_input_size_override: int,
                  aggregate_to_topk: bool) -> list[Any]:
    """The exact top ``k`` (XLA's approximation is a TPU algorithm; recall 1 here)."""
    _check_sortable("approx_top_k", get_aval(x), "operand")
    if not is_max_k:
        # order-reversing and exact for every sortable dtype: negate floats, complement ints
        x = neg(x) if dtypes.is_float(get_aval(x).dtype) else bitwise_not(x)
    values, indices = top_k(x, k, axis=reduction_dimension)
    if not is_max_k:
        values = neg(values) if dtypes.is_float(get_aval(x).dtype) else \
            bitwise_not(values)
    return [values, indices]


approx_top_k_p = Primitive("approx_top_k", multiple_results=True)
define_composite(approx_top_k_p, _approx_top_k)
derive_rules(approx_top_k_p)
approx_top_k_p.weak_type_rule = lambda weak, **params: [weak[0], False]


def approx_max_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True) -> tuple[Any, Any]:
    """The ``k`` largest entries along ``reduction_dimension`` and their indices.  XLA
    may return approximate results on TPUs; tinyjax's are exact (recall 1)."""
    return _approx_k("approx_max_k", operand, k, reduction_dimension, recall_target,
                     reduction_input_size_override, aggregate_to_topk, largest=True)


def approx_min_k(operand: Any, k: int, reduction_dimension: int = -1,
                 recall_target: float = 0.95, reduction_input_size_override: int = -1,
                 aggregate_to_topk: bool = True) -> tuple[Any, Any]:
    """The ``k`` smallest entries along ``reduction_dimension`` (ascending) and their
    indices; exact, as :func:`approx_max_k`."""
    return _approx_k("approx_min_k", operand, k, reduction_dimension, recall_target,
                     reduction_input_size_override, aggregate_to_topk, largest=False)


def take_along_last_axis(x: Any, idx: Any) -> Any:
    """``out[..., j] = x[..., idx[..., j]]`` (a gather batched over the leading axes)."""
    from tinyjax.lax.gather_scatter import GatherDimensionNumbers, gather
    from tinyjax.lax.shape import broadcast_in_dim, full
    x_aval, i_aval = get_aval(x), get_aval(idx)
    if x_aval.size == 0 or i_aval.size == 0:  # nothing to take (gather needs slices of 1)
        return full(i_aval.shape, 0, x_aval.dtype)
    nd = i_aval.ndim - 1
    lead = tuple(range(nd))
    dnums = GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(nd,),
                                   start_index_map=(nd,), operand_batching_dims=lead,
                                   start_indices_batching_dims=lead)
    index_vectors = broadcast_in_dim(idx, i_aval.shape + (1,), tuple(range(nd + 1)))
    return gather(x, index_vectors, dnums, (1,) * (nd + 1), indices_are_sorted=False,
                  unique_indices=True)


def _top_k_jvp(primals, tangents, *, k):
    (x,), (t,) = primals, tangents
    values, idx = top_k_p.bind(x, k=k)
    if type(t) is Zero:
        return [values, idx], [Zero.from_primal(values), Zero.from_primal(idx)]
    return [values, idx], [take_along_last_axis(t, idx), Zero.from_primal(idx)]


ad.primitive_jvps[top_k_p] = _top_k_jvp


def _top_k_batch(vals, dims, *, k):
    (x,), (d,) = vals, dims
    if d == get_aval(x).ndim - 1:  # the batch axis must not be the one sorted
        x, d = batching.moveaxis(x, d, 0), 0
    return top_k_p.bind(x, k=k), [d, d]


batching.primitive_batchers[top_k_p] = _top_k_batch
