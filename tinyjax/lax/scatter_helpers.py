"""Scatters and gathers written with the gather/scatter primitives: ``scatter_sub``,
``scatter_apply`` and ``index_take``."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax.core import Primitive, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.elementwise import add, convert_element_type, lt, neg, rem, select
from tinyjax.lax.control_flow import while_loop
from tinyjax.lax.gather_scatter import (GatherDimensionNumbers, ScatterDimensionNumbers,
                                        _scatter_check, _scatter_public, gather,
                                        scatter_add, scatter_add_p)
from tinyjax.lax.reductions import reduce_max
from tinyjax.lax.shape import broadcast_in_dim, full, reshape
from tinyjax.lax.slicing import concatenate

__all__ = ["scatter_sub", "scatter_sub_p", "scatter_apply", "index_take"]


def _scatter_sub(operand: Any, scatter_indices: Any, updates: Any, **params: Any) -> Any:
    _scatter_check("scatter-sub", get_aval(operand), get_aval(scatter_indices),
                   get_aval(updates), params["dimension_numbers"])
    return scatter_add_p.bind(operand, scatter_indices, neg(updates), **params)


scatter_sub_p = Primitive("scatter-sub")
define_composite(scatter_sub_p, _scatter_sub)
derive_rules(scatter_sub_p, linear=(0, 2))
scatter_sub_p.weak_type_rule = lambda weak, **params: weak[0]
scatter_sub = _scatter_public(scatter_sub_p, "subtracting ``updates`` from the operand's "
                              "values (repeated indices subtract each of their updates)")


def scatter_apply(operand: Any, scatter_indices: Any, func: Callable[[Any], Any],
                  dimension_numbers: ScatterDimensionNumbers, *,
                  update_shape: Sequence[int] = (), indices_are_sorted: bool = False,
                  unique_indices: bool = False, mode: Any = None) -> Any:
    """``operand`` with the elementwise ``func`` applied at the positions the scatter
    addresses (``update_shape`` the shape its updates would have), once per update that
    reaches a position (twice where an index repeats, as XLA's scatter does)."""
    x = as_operand(operand)
    hits = scatter_add(full(get_aval(x).shape, 0, np.int32), scatter_indices,
                       full(tuple(update_shape), 1, np.int32), dimension_numbers,
                       indices_are_sorted=indices_are_sorted, unique_indices=unique_indices,
                       mode=mode)
    most = reduce_max(hits, tuple(range(len(get_aval(x).shape))))

    def body(carry):
        k, value = carry
        return add(k, as_operand(np.int32(1))), select(lt(k, hits), as_operand(func(value)),
                                                      value)

    return while_loop(lambda carry: lt(carry[0], most), body,
                      (as_operand(np.int32(0)), x))[1]


def index_take(src: Any, idxs: Sequence[Any], axes: Sequence[int]) -> Any:
    """``src`` indexed along ``axes`` by one index array per axis (all of shape ``(N,)``;
    indices wrap around): the result has shape ``(N,) + the other axes of src``."""
    src = as_operand(src)
    axes = tuple(int(a) for a in axes)
    shape = get_aval(src).shape
    if len(idxs) != len(axes):
        raise ValueError(f"index_take: one index array per axis expected, got {len(idxs)} "
                         f"for axes {axes}")
    columns = [as_operand(i) for i in idxs]
    n = get_aval(columns[0]).shape[0] if columns else 0
    columns = [rem(convert_element_type(c, np.int32),
                   as_operand(np.int32(shape[ax]))) for c, ax in zip(columns, axes)]
    indices = concatenate([reshape(c, (n, 1)) for c in columns], 1)
    # rem keeps the sign of the index: wrap negative ones once more
    indices = select(lt(indices, full(get_aval(indices).shape, 0, np.int32)),
                     add(indices, broadcast_in_dim(as_operand(np.array(
                         [shape[ax] for ax in axes], np.int32)), (n, len(axes)), (1,))),
                     indices)
    rest = len(shape) - len(axes)
    dn = GatherDimensionNumbers(offset_dims=tuple(range(1, rest + 1)),
                                collapsed_slice_dims=axes, start_index_map=axes)
    sizes = tuple(1 if d in axes else shape[d] for d in range(len(shape)))
    return gather(src, indices, dn, sizes)
