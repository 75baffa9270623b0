"""Lowering rules of sort and top_k (:mod:`tinyjax.lax.sorting`): the sort kernel kind
computes permutations; the values are gathered through them."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.lower.slicing import c_strides, iota_along
from tinyjax.compiler.ops import LazyOp, register_reference_impl
from tinyjax.lax.sorting import descending_key, lexsort_keys, sort_p, top_k_p


def take_along(x: LazyOp, perm: LazyOp, axis: int) -> LazyOp:
    """``take_along_axis(x, perm, axis)`` as one DLOAD (``perm``: int64, in range)."""
    shape = perm.shape
    offset = None
    for d, st in enumerate(c_strides(x.shape)):
        pos = perm if d == axis else iota_along(shape, d)
        term = ops.alu("mul", pos, ops.const(st, np.int64, shape))
        offset = term if offset is None else ops.alu("add", offset, term)
    return ops.dload(x, offset)


def _sort(avals_in, avals_out, *operands, dimension, is_stable=True, num_keys=1):
    if operands[0].size == 0 or operands[0].shape[dimension] <= 1:
        return list(operands)
    perm = ops.sortperm(operands[:num_keys], dimension)
    return [take_along(x, perm, dimension) for x in operands]


register_lowering(sort_p, _sort)


def _top_k(avals_in, avals_out, x, *, k):
    out_shape = avals_out[0].shape
    if 0 in out_shape:
        return [ops.const(0, x.dtype, out_shape), ops.const(0, np.int32, out_shape)]
    axis = x.ndim - 1
    perm = ops.sortperm([x], axis, descending=True)
    cut = [(0, s) for s in x.shape]
    cut[-1] = (0, k)
    perm = ops.shrink(perm, cut)
    return [take_along(x, perm, axis), ops.cast(perm, np.int32)]


register_lowering(top_k_p, _top_k)


def _sortperm_reference(keys: list[np.ndarray], axis: int, descending: bool) -> np.ndarray:
    """SORTPERM's semantics: the stable permutation sorting every row along ``axis``
    (lexicographic over ``keys``; descending: XLA's TopK order), as sort and top_k order."""
    if descending:
        return np.argsort(descending_key(keys[0]), axis=axis, kind="stable")
    lex: list = []
    for x in reversed(keys):
        lex.extend(lexsort_keys(x))
    return np.lexsort(lex, axis=axis)


register_reference_impl("SORTPERM", _sortperm_reference)
