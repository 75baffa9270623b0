"""``ragged_dot_general``: a ``dot_general`` whose lhs has one *ragged* dimension, split
into consecutive groups of ``group_sizes`` (mixture-of-experts layers, grouped GEMMs).

Written with lax operations, so every transform comes from theirs: the ragged dimension
is spread over a new leading group axis (each group's slice kept, the rest zero) and one
``dot_general`` contracts or keeps that axis, depending on what kind of dimension is
ragged (JAX's three modes):

1. a non-contracting dimension of lhs: each group is multiplied by its own slice of rhs
   along rhs's group dimension (``[m, k] x [g, k, n] -> [m, n]``);
2. a contracting dimension: each group gives its own product, stacked in front
   (``[m, k] x [k, n] -> [g, m, n]``);
3. a batch dimension: groups change nothing, the result is ``dot_general``'s.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.cumulative import cumsum
from tinyjax.lax.dot import dot_general
from tinyjax.lax.elementwise import bitwise_and, convert_element_type, full_like_aval, ge, lt, \
    select, sub
from tinyjax.lax.shape import broadcast, broadcast_in_dim, iota, transpose

__all__ = ["ragged_dot", "ragged_dot_general", "RaggedDotDimensionNumbers"]


class RaggedDotDimensionNumbers:
    """The dimensions of :func:`ragged_dot_general`: ``dot_dimension_numbers`` as
    ``dot_general`` takes them, the lhs ragged dimension (one) and the rhs group dimension
    (one in mode 1, none otherwise)."""

    def __init__(self, dot_dimension_numbers: Any, lhs_ragged_dimensions: Sequence[int],
                 rhs_group_dimensions: Sequence[int]):
        (lc, rc), (lb, rb) = dot_dimension_numbers
        self.dot_dimension_numbers = tuple(tuple(tuple(int(d) for d in dims) for dims in pair)
                                           for pair in ((lc, rc), (lb, rb)))
        self.lhs_ragged_dimensions = tuple(int(d) for d in lhs_ragged_dimensions)
        self.rhs_group_dimensions = tuple(int(d) for d in rhs_group_dimensions)

    def _key(self) -> tuple:
        return (self.dot_dimension_numbers, self.lhs_ragged_dimensions,
                self.rhs_group_dimensions)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, RaggedDotDimensionNumbers) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (f"RaggedDotDimensionNumbers(dot_dimension_numbers={self.dot_dimension_numbers}, "
                f"lhs_ragged_dimensions={self.lhs_ragged_dimensions}, "
                f"rhs_group_dimensions={self.rhs_group_dimensions})")


def ragged_dot(lhs: Any, rhs: Any, group_sizes: Any, precision: Any = None,
               preferred_element_type: Any = None, group_offset: Any = None,
               out_sharding: Any = None) -> Any:
    """``lhs`` (m, k) split into consecutive row groups of ``group_sizes`` (g,), group
    ``i`` multiplied by ``rhs[i]`` (rhs: g, k, n); rows past the groups give zeros."""
    ls, rs = get_aval(as_operand(lhs)).shape, get_aval(as_operand(rhs)).shape
    gs = get_aval(as_operand(group_sizes)).shape
    if len(ls) != 2 or len(rs) != 3 or ls[1] != rs[1] or gs != rs[:1]:
        raise TypeError("ragged_dot: expected lhs (m, k), rhs (g, k, n) and group_sizes "
                        f"(g,), got {ls}, {rs} and {gs}")
    dims = RaggedDotDimensionNumbers((((1,), (1,)), ((), ())), [0], [0])
    return ragged_dot_general(lhs, rhs, group_sizes, dims, precision, preferred_element_type,
                              group_offset, out_sharding)


def ragged_dot_general(lhs: Any, rhs: Any, group_sizes: Any,
                       ragged_dot_dimension_numbers: RaggedDotDimensionNumbers,
                       precision: Any = None, preferred_element_type: Any = None,
                       group_offset: Any = None, out_sharding: Any = None) -> Any:
    """``dot_general`` of ``lhs`` and ``rhs`` with lhs's ragged dimension split into
    groups of ``group_sizes`` (integers; shape ``(g,)``, or the lhs dimensions in front of
    the ragged one followed by ``g``, as JAX defines them), in the mode the ragged
    dimension's kind selects (module docstring)."""
    if group_offset is not None:
        raise NotImplementedError("ragged_dot_general: group_offset is not supported")
    lhs, rhs, sizes = as_operand(lhs), as_operand(rhs), as_operand(group_sizes)
    dims = ragged_dot_dimension_numbers
    (lc, rc), (lb, rb) = dims.dot_dimension_numbers
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    if len(dims.lhs_ragged_dimensions) != 1:
        raise TypeError("ragged_dot_general expects exactly one lhs ragged dimension.")
    ragged = dims.lhs_ragged_dimensions[0]
    if not 0 <= ragged < len(lhs_shape):
        raise TypeError("ragged_dot_general requires lhs ragged dimension numbers to be "
                        "nonnegative and less than the number of axes of the lhs value, "
                        f"got {ragged} for lhs of rank {len(lhs_shape)}.")
    if not np.issubdtype(get_aval(sizes).dtype, np.integer):
        raise TypeError("ragged_dot_general: group_sizes must be integers, got "
                        f"{get_aval(sizes).dtype}")
    lhs_free = [d for d in range(len(lhs_shape)) if d not in lc and d not in lb]
    dot = lambda a, b, dn: dot_general(a, b, dn, precision=precision,
                                       preferred_element_type=preferred_element_type)
    if ragged in lb:
        return dot(lhs, rhs, dims.dot_dimension_numbers)
    if ragged in lhs_free:
        prefix = list(lb) + lhs_free[:lhs_free.index(ragged)]
    else:
        prefix = list(lb) + list(lc[:lc.index(ragged)])
    sizes = _group_sizes(sizes, [lhs_shape[d] for d in prefix])
    groups = get_aval(sizes).shape[-1]
    shift = lambda ds: [d + 1 for d in ds]
    spread_lhs = _spread_groups(lhs, ragged, sizes, prefix)
    if ragged in lhs_free:
        if len(dims.rhs_group_dimensions) != 1:
            raise TypeError("ragged_dot_general: a ragged non-contracting lhs dimension "
                            "needs exactly one rhs group dimension, got "
                            f"{dims.rhs_group_dimensions}")
        group_dim = dims.rhs_group_dimensions[0]
        if rhs_shape[group_dim] != groups:
            raise TypeError(f"ragged_dot_general: rhs group dimension {group_dim} has size "
                            f"{rhs_shape[group_dim]}, group_sizes has {groups} groups")
        return dot(spread_lhs, rhs, ((shift(lc) + [0], list(rc) + [group_dim]),
                                     (shift(lb), list(rb))))
    if dims.rhs_group_dimensions:
        raise TypeError("ragged_dot_general: a ragged contracting dimension takes no rhs "
                        f"group dimension, got {dims.rhs_group_dimensions}")
    rhs_ragged = rc[lc.index(ragged)]
    rhs_prefix = list(rb) + list(rc[:rc.index(rhs_ragged)])
    spread_rhs = _spread_groups(rhs, rhs_ragged, sizes, rhs_prefix)
    return dot(spread_lhs, spread_rhs, ((shift(lc), shift(rc)),
                                        ([0] + shift(lb), [0] + shift(rb))))


def _group_sizes(sizes: Any, prefix_shape: list[int]) -> Any:
    """``sizes`` as int32 of shape ``prefix_shape + [g]`` (a ``(g,)`` vector broadcast)."""
    shape = get_aval(sizes).shape
    if len(shape) == 1:
        sizes = broadcast(sizes, prefix_shape)
    elif list(shape[:-1]) != list(prefix_shape):
        raise TypeError(f"ragged_dot_general: group_sizes of shape {shape} must be (g,) or "
                        f"{tuple(prefix_shape)} + (g,)")
    return convert_element_type(sizes, np.int32)


def _spread_groups(x: Any, dim: int, sizes: Any, prefix: list[int]) -> Any:
    """``x`` with a new leading axis of groups: entry ``i`` keeps the slice of ``x`` along
    ``dim`` that group ``i`` covers and is zero elsewhere.  ``sizes`` has the shape of
    ``x``'s ``prefix`` dimensions followed by the group count."""
    aval = get_aval(x)
    groups = get_aval(sizes).shape[-1]
    shape = (groups, *aval.shape)
    ends = cumsum(sizes, len(prefix))
    starts = sub(ends, sizes)
    where = [1 + d for d in prefix] + [0]          # each axis of sizes' place in ``shape``
    order = [int(i) for i in np.argsort(where)]    # broadcast_in_dim wants them ascending
    spread_bounds = lambda b: broadcast_in_dim(transpose(b, order), shape, sorted(where))
    index = broadcast_in_dim(iota(np.int32, aval.shape[dim]), shape, (1 + dim,))
    inside = bitwise_and(ge(index, spread_bounds(starts)), lt(index, spread_bounds(ends)))
    spread = broadcast_in_dim(x, shape, tuple(range(1, len(shape))))
    return select(inside, spread, full_like_aval(get_aval(spread), 0))
