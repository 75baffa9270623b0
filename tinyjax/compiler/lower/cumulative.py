"""Lowering rules of the cumulative reductions (:mod:`tinyjax.lax.cumulative`): a masked,
expanded view of the operand reduced in one kernel."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.ops import reduce_identity
from tinyjax.lax.cumulative import cumlogsumexp_p, cummax_p, cummin_p, cumprod_p, cumsum_p


def _cumulative(op: str):
    """out[i] = reduce_{j <= i} x[j] as a masked, expanded view reduced in one kernel
    (quadratic work; fine for the small axes it is used on)."""
    def rule(avals_in, avals_out, x, *, axis, reverse=False):
        n = x.shape[axis]
        if n == 0:
            return x
        if reverse:
            x = ops.flip(x, (axis,))
        # y[..., i, j, ...] = x[..., j, ...] for j <= i, identity elsewhere
        sh = list(x.shape)
        xe = ops.reshape(x, sh[:axis] + [1, n] + sh[axis + 1:])
        xe = ops.expand(xe, sh[:axis] + [n, n] + sh[axis + 1:])
        ii = ops.expand(ops.reshape(ops.idx(n, np.int32), [n, 1]), [n, n])
        jj = ops.expand(ops.reshape(ops.idx(n, np.int32), [1, n]), [n, n])
        keep = ops.alu("le", jj, ii)
        keep = ops.expand(ops.reshape(keep, [1] * axis + [n, n] + [1] * (x.ndim - axis - 1)),
                          xe.shape)
        ident = ops.const(reduce_identity(op, x.dtype), x.dtype, xe.shape)
        y = ops.where(keep, xe, ident)
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
    sh = list(x.shape)
    full = sh[:axis] + [n, n] + sh[axis + 1:]
    xe = ops.expand(ops.reshape(x, sh[:axis] + [1, n] + sh[axis + 1:]), full)
    ii = ops.expand(ops.reshape(ops.idx(n, np.int32), [n, 1]), [n, n])
    jj = ops.expand(ops.reshape(ops.idx(n, np.int32), [1, n]), [n, n])
    keep = ops.expand(ops.reshape(ops.alu("le", jj, ii), [1] * axis + [n, n] +
                                  [1] * (x.ndim - axis - 1)), full)
    neg_inf = ops.const(-np.inf, x.dtype, full)
    y = ops.where(keep, xe, neg_inf)
    m = ops.reduce(y, "max", (axis + 1,))                       # keeps the axis, size 1
    finite = ops.alu("is_finite", m)
    shift = ops.where(finite, m, ops.const(0, x.dtype, m.shape))
    e = ops.alu("exp", ops.alu("sub", y, ops.expand(shift, full)))
    s = ops.reduce(e, "sum", (axis + 1,))
    out = ops.alu("add", ops.alu("log", s), shift)
    out = ops.reshape(out, x.shape)
    return ops.flip(out, (axis,)) if reverse else out


register_lowering(cumlogsumexp_p, _cumlogsumexp)
