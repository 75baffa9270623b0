"""``associative_scan``: a parallel prefix scan written with slicing ops (no primitive).

The recursive odd/even scheme of Blelloch (as in JAX): combine adjacent pairs, scan
the half-length result, then fill in the remaining elements; O(log n) depth.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.core import get_aval
from tinyjax.lax.control_flow.common import flatten_operands
from tinyjax.lax.elementwise import add, bitwise_or
from tinyjax.lax.shape import full
from tinyjax.lax.slicing import concatenate, pad, rev, slice_in_dim


def _interleave(a: Any, b: Any, axis: int) -> Any:
    """Interleave ``a`` and ``b`` along ``axis`` (``a`` first; it may be one longer)."""
    na, nb = get_aval(a).shape[axis], get_aval(b).shape[axis]
    a_pad = [(0, 0, 0)] * get_aval(a).ndim
    b_pad = [(0, 0, 0)] * get_aval(b).ndim
    a_pad[axis] = (0, 1 if na == nb else 0, 1)
    b_pad[axis] = (1, 0 if na == nb else 1, 1)
    dt = get_aval(a).dtype
    zero = full((), 0, dt)
    op = bitwise_or if dt == np.bool_ else add
    return op(pad(a, zero, a_pad), pad(b, zero, b_pad))


def associative_scan(fn: Callable, elems: Any, reverse: bool = False, axis: int = 0) -> Any:
    """Inclusive scan of ``elems`` (a pytree of arrays of one length along ``axis``) with
    the associative binary ``fn``: ``out[i] = fn(...fn(fn(e[0], e[1]), e[2])..., e[i])``."""
    flat, tree = flatten_operands(elems)
    if not flat:
        return elems
    ndim = get_aval(flat[0]).ndim
    if not -ndim <= axis < max(ndim, 1) or ndim == 0:
        raise ValueError(f"associative_scan: axis {axis} is out of bounds for arrays of "
                         f"rank {ndim}")
    axis = axis % ndim
    lengths = [get_aval(x).shape[axis] for x in flat]
    if len(set(lengths)) != 1:
        raise ValueError("Array inputs to associative_scan must have the same first "
                         f"dimension. (saw: {[get_aval(x).shape for x in flat]})")
    if reverse:
        flat = [rev(x, (axis,)) for x in flat]

    def combine(a_flat, b_flat):
        c = fn(tree_util.tree_unflatten(tree, a_flat), tree_util.tree_unflatten(tree, b_flat))
        c_flat, c_tree = physical.tree_flatten(c)
        if c_tree != tree:
            raise TypeError(f"associative_scan: fn must return the structure of its inputs "
                            f"{tree}, got {c_tree}")
        return c_flat

    def sl(x, start, stop, stride=1):
        return slice_in_dim(x, start, stop, stride, axis)

    def _scan(xs):
        n = get_aval(xs[0]).shape[axis]
        if n < 2:
            return xs
        reduced = combine([sl(x, 0, -1, 2) for x in xs], [sl(x, 1, None, 2) for x in xs])
        odd = _scan(reduced)
        if n % 2 == 0:
            even = combine([sl(e, 0, -1) for e in odd], [sl(x, 2, None, 2) for x in xs])
        else:
            even = combine(odd, [sl(x, 2, None, 2) for x in xs])
        even = [concatenate([sl(x, 0, 1), e], axis) for x, e in zip(xs, even)]
        return [_interleave(e, o, axis) for e, o in zip(even, odd)]

    out = _scan(flat)
    if reverse:
        out = [rev(x, (axis,)) for x in out]
    return tree_util.tree_unflatten(tree, out)
