"""Lowering rules of the cumulative reductions (:mod:`tinyjax.lax.cumulative`): a masked,
expanded view of the operand reduced in one kernel."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.ops import LazyOp, reduce_identity
from tinyjax.lax.cumulative import cumlogsumexp_p, cummax_p, cummin_p, cumprod_p, cumsum_p


def prefix_view(x: LazyOp, axis: int) -> tuple[LazyOp, LazyOp]:
    """``(xe, keep)``: ``x`` expanded along a new axis after ``axis`` --
    ``xe[..., i, j, ...] = x[..., j, ...]`` -- and the mask ``j <= i`` (same shape), so
    that a reduction over axis ``axis + 1`` of the kept elements is the cumulative
    reduction at ``i`` (quadratic work, in one kernel: fine for the short axes
    cumulative reductions run along)."""
    n = x.shape[axis]
    sh = list(x.shape)
    full = sh[:axis] + [n, n] + sh[axis + 1:]
    xe = ops.expand(ops.reshape(x, sh[:axis] + [1, n] + sh[axis + 1:]), full)
    ii = ops.expand(ops.reshape(ops.idx(n, np.int32), [n, 1]), [n, n])
    jj = ops.expand(ops.reshape(ops.idx(n, np.int32), [1, n]), [n, n])
    keep = ops.expand(ops.reshape(ops.alu("le", jj, ii), [1] * axis + [n, n] +
                                  [1] * (x.ndim - axis - 1)), full)
    return xe, keep


def _cumulative(op: str):
    """out[i] = reduce_{j <= i} x[j] over the prefix view (:func:`prefix_view`)."""
    def rule(avals_in, avals_out, x, *, axis, reverse=False):
        n = x.shape[axis]
        if n == 0:
            return x
        if reverse:
            x = ops.flip(x, (axis,))
        xe, keep = prefix_view(x, axis)
        y = ops.where(keep, xe, ops.const(reduce_identity(op, x.dtype), x.dtype, xe.shape))
        out = ops.reshape(ops.reduce(y, op, (axis + 1,)), x.shape)
        return ops.flip(out, (axis,)) if reverse else out
    return rule


for _p, _o in ((cumsum_p, "sum"), (cumprod_p, "prod"), (cummax_p, "max"), (cummin_p, "min")):
    register_lowering(_p, _cumulative(_o))


def _cumlogsumexp(avals_in, avals_out, x, *, axis, reverse=False):
    """log(sum_{j<=i} exp(x_j)) with the running max m_i as the shift: the masked, expanded
    view of the cumulative rules, two reductions (max, then the shifted sum)."""
    n = x.shape[axis]
    if n == 0 or not ops.is_float(x.dtype):
        return x
    if reverse:
        x = ops.flip(x, (axis,))
    xe, keep = prefix_view(x, axis)
    full = xe.shape
    y = ops.where(keep, xe, ops.const(-np.inf, x.dtype, full))
    m = ops.reduce(y, "max", (axis + 1,))                       # keeps the axis, size 1
    finite = ops.alu("is_finite", m)
    shift = ops.where(finite, m, ops.const(0, x.dtype, m.shape))
    e = ops.alu("exp", ops.alu("sub", y, ops.expand(shift, full)))
    s = ops.reduce(e, "sum", (axis + 1,))
    out = ops.alu("add", ops.alu("log", s), shift)
    out = ops.reshape(out, x.shape)
    return ops.flip(out, (axis,)) if reverse else out


register_lowering(cumlogsumexp_p, _cumlogsumexp)
