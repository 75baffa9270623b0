"""Lowering rules of gather and scatter (:mod:`tinyjax.lax.gather_scatter`): a DLOAD (the
gather kernel kind) or a SCATTER (the scatter kernel kind) at the windows' offsets."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.lower.slicing import c_strides, iota_along
from tinyjax.compiler.ops import LazyOp
from tinyjax.lax.gather_scatter import (GatherScatterMode, default_fill_value, gather_p,
                                        output_permutation, scatter_add_p, scatter_max_p,
                                        scatter_min_p, scatter_mul_p, scatter_p,
                                        scatter_window_sizes)


def _window_offsets(x_shape, indices: LazyOp, start_index_map, operand_batching_dims,
                    indices_batching_dims, window):
    """Lazy ``_window_positions``: the flat operand offset of every (index batch position,
    window position) (shape ``batch + window``, starts clamped into bounds) and the
    ``batch``-shaped mask of windows wholly in bounds (None: no index dims)."""
    batch = tuple(indices.shape[:-1])
    nb, n = len(batch), len(x_shape)
    G = batch + tuple(window)
    idx = ops.cast(indices, np.int64)
    ok = None
    starts: list = [None] * n
    for j, d in enumerate(start_index_map):
        cut = [(0, s) for s in idx.shape]
        cut[-1] = (j, j + 1)
        raw = ops.reshape(ops.shrink(idx, cut), batch)
        hi = x_shape[d] - window[d]
        inb = ops.alu("and", ops.alu("ge", raw, ops.const(0, np.int64, batch)),
                      ops.alu("le", raw, ops.const(hi, np.int64, batch)))
        ok = inb if ok is None else ops.alu("and", ok, inb)
        starts[d] = ops.alu("min", ops.alu("max", raw, ops.const(0, np.int64, batch)),
                            ops.const(max(hi, 0), np.int64, batch))
    for od, bd in zip(operand_batching_dims, indices_batching_dims):
        starts[od] = iota_along(batch, bd) if batch else ops.const(0, np.int64, ())
    offset = ops.const(0, np.int64, G)
    for d, st in enumerate(c_strides(x_shape)):
        pos = iota_along(G, nb + d)
        if starts[d] is not None:
            s = ops.expand(ops.reshape(starts[d], batch + (1,) * n), G)
            pos = ops.alu("add", pos, s)
        offset = ops.alu("add", offset, ops.alu("mul", pos, ops.const(st, np.int64, G)))
    if ok is not None:
        ok = ops.expand(ops.reshape(ok, batch + (1,) * n), G)
    return offset, ok, G


def _gather(avals_in, avals_out, x, indices, *, dimension_numbers, slice_sizes,
            unique_indices=False, indices_are_sorted=False, mode=None, fill_value=None):
    """XLA gather as one DLOAD at the window offsets; FILL_OR_DROP masks windows not wholly
    in bounds (the eager implementation's semantics, step for step)."""
    dn = dimension_numbers
    out = avals_out[0]
    if 0 in out.shape or x.size == 0:
        return ops.const(0, x.dtype, out.shape)
    window = tuple(int(s) for s in slice_sizes)
    offset, ok, G = _window_offsets(x.shape, indices, dn.start_index_map,
                                    dn.operand_batching_dims, dn.start_indices_batching_dims,
                                    window)
    batch = tuple(indices.shape[:-1])
    val = ops.dload(x, offset)
    if GatherScatterMode.from_any(mode) == GatherScatterMode.FILL_OR_DROP and ok is not None:
        fill = default_fill_value(x.dtype) if fill_value is None else fill_value
        val = ops.where(ok, val, ops.const(fill, x.dtype, G))
    dropped = set(dn.collapsed_slice_dims) | set(dn.operand_batching_dims)
    kept = tuple(s for d, s in enumerate(window) if d not in dropped)
    val = ops.reshape(val, batch + kept)
    return ops.permute(val, output_permutation(len(batch), dn.offset_dims))


register_lowering(gather_p, _gather)


def _scatter_rule(combine: str):
    def rule(avals_in, avals_out, x, indices, updates, *, dimension_numbers,
             indices_are_sorted=False, unique_indices=False, mode=None, **params):
        """The scatter kernel kind: a copy of ``x``, then a serial loop over the updates
        (in C order, as the eager ``np.<ufunc>.at``) at the window offsets."""
        dn = dimension_numbers
        if x.size == 0 or updates.size == 0:
            return x
        window = scatter_window_sizes(x.ndim, updates.shape, dn)
        offset, ok, G = _window_offsets(x.shape, indices, dn.scatter_dims_to_operand_dims,
                                        dn.operand_batching_dims,
                                        dn.scatter_indices_batching_dims, window)
        scatter_dims = [d for d in range(updates.ndim) if d not in dn.update_window_dims]
        upd = ops.reshape(ops.permute(updates, scatter_dims + list(dn.update_window_dims)), G)
        if ok is None or GatherScatterMode.from_any(mode) == GatherScatterMode.CLIP:
            ok = ops.const(True, np.bool_, G)
        if x.ndim == 0:
            return ops.reshape(ops.scatter(ops.reshape(x, (1,)), offset, upd, ok, combine), ())
        return ops.scatter(x, offset, upd, ok, combine)
    return rule


for _p, _c in ((scatter_p, "replace"), (scatter_add_p, "add"), (scatter_mul_p, "mul"),
               (scatter_min_p, "min"), (scatter_max_p, "max")):
    register_lowering(_p, _scatter_rule(_c))
