"""``ragged_dot``: a matmul whose lhs rows fall into groups, each group with its own rhs
matrix (mixture-of-experts layers), written as one batched ``dot_general`` and a mask."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.cumulative import cumsum
from tinyjax.lax.dot import dot_general
from tinyjax.lax.elementwise import bitwise_and, convert_element_type, ge, lt, mul, sub
from tinyjax.lax.reductions import reduce_sum
from tinyjax.lax.shape import broadcast_in_dim, iota

__all__ = ["ragged_dot"]


def ragged_dot(lhs: Any, rhs: Any, group_sizes: Any, precision: Any = None,
               preferred_element_type: Any = None, group_offset: Any = None,
               out_sharding: Any = None) -> Any:
    """``lhs`` (m, k) split into consecutive row groups of ``group_sizes`` (g,), group
    ``i`` multiplied by ``rhs[i]`` (rhs: g, k, n); rows past the groups give zeros."""
    if group_offset is not None:
        raise NotImplementedError("ragged_dot: group_offset is not supported")
    lhs, rhs, sizes = as_operand(lhs), as_operand(rhs), as_operand(group_sizes)
    ls, rs = get_aval(lhs).shape, get_aval(rhs).shape
    if len(ls) != 2 or len(rs) != 3 or ls[1] != rs[1] or get_aval(sizes).shape != rs[:1]:
        raise TypeError("ragged_dot: expected lhs (m, k), rhs (g, k, n) and group_sizes "
                        f"(g,), got {ls}, {rs} and {get_aval(sizes).shape}")
    (m, _), (g, _, n) = ls, rs
    sizes = convert_element_type(sizes, np.int32)
    ends = cumsum(sizes, 0)
    starts = sub(ends, sizes)
    rows = broadcast_in_dim(iota(np.int32, m), (m, g), (0,))
    member = bitwise_and(ge(rows, broadcast_in_dim(starts, (m, g), (1,))),
                         lt(rows, broadcast_in_dim(ends, (m, g), (1,))))
    per_group = dot_general(lhs, rhs, (((1,), (1,)), ((), ())), precision=precision,
                            preferred_element_type=preferred_element_type)   # (m, g, n)
    mask = broadcast_in_dim(convert_element_type(member, get_aval(per_group).dtype),
                            (m, g, n), (0, 1))
    return reduce_sum(mul(per_group, mask), (1,))
