"""Lowering rules of the reductions (:mod:`tinyjax.lax.reductions`): one REDUCE each (none
over the axes a broadcast operand is constant along: :mod:`~tinyjax.compiler.lower.fold`);
argmax and argmin as two."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.fold import fold_broadcast_reduction
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.ops import reduce_identity
from tinyjax.lax.reductions import (argmax_p, argmin_p, reduce_and_p, reduce_max_p,
                                    reduce_min_p, reduce_or_p, reduce_prod_p, reduce_sum_p,
                                    reduce_xor_p)


def _reducer(op: str):
    def rule(avals_in, avals_out, x, *, axes, **params):
        if x.size == 0 or not axes:
            if not axes:
                return x
            return ops.const(reduce_identity(op, x.dtype), x.dtype, avals_out[0].shape)
        # over axes the operand is broadcast along: folded (see compiler.lower.fold)
        red = fold_broadcast_reduction(x, op, axes)
        return ops.reshape(ops.reduce(x, op, axes) if red is None else red,
                           avals_out[0].shape)
    return rule


for _p, _o in ((reduce_sum_p, "sum"), (reduce_prod_p, "prod"), (reduce_max_p, "max"),
               (reduce_min_p, "min"), (reduce_and_p, "and"), (reduce_or_p, "or"),
               (reduce_xor_p, "xor")):
    register_lowering(_p, _reducer(_o))


def _arg_rule(op: str):
    """argmax/argmin as two reductions: the extremum m (NaN wins), then the smallest index
    whose value equals m (or is NaN when m is)."""
    def rule(avals_in, avals_out, x, *, axes, index_dtype):
        axis, = axes
        m = ops.expand(ops.reduce(x, op, (axis,)), x.shape)
        hit = ops.alu("eq", x, m)
        if ops.is_float(x.dtype):
            nan_x = ops.alu("ne", x, x)
            nan_m = ops.alu("ne", m, m)
            hit = ops.alu("or", hit, ops.alu("and", nan_x, nan_m))
        n = x.shape[axis]
        it = ops.cast(ops.idx(n, np.int64), index_dtype)
        view = [1] * x.ndim
        view[axis] = n
        it = ops.expand(ops.reshape(it, view), x.shape)
        cand = ops.where(hit, it, ops.const(n, index_dtype, x.shape))
        return ops.reshape(ops.reduce(cand, "min", (axis,)), avals_out[0].shape)
    return rule


register_lowering(argmax_p, _arg_rule("max"))
register_lowering(argmin_p, _arg_rule("min"))
