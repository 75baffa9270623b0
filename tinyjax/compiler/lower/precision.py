"""Lowering rules of :mod:`tinyjax.lax.precision`: ``reduce_precision`` as integer ALU ops
on the float's bits (the algorithm the eager implementation runs, shared through
:class:`~tinyjax.lax.precision.BitOps`), ``optimization_barrier`` as its operands."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.lax.precision import (BitOps, optimization_barrier_p, reduce_precision_bits,
                                   reduce_precision_p)


def _alu_bit_ops(udt: np.dtype, shape) -> BitOps:
    def const(v):
        return ops.const(int(v), udt, shape)
    return BitOps(const=const, and_=lambda a, b: ops.alu("and", a, b),
                  or_=lambda a, b: ops.alu("or", a, b), add=lambda a, b: ops.alu("add", a, b),
                  shr=lambda a, n: ops.alu("shift_right_logical", a, const(n)),
                  gt=lambda a, b: ops.alu("gt", a, b), le=lambda a, b: ops.alu("le", a, b),
                  where=ops.where)


def _reduce_precision(avals_in, avals_out, x, *, exponent_bits, mantissa_bits):
    dt = np.dtype(x.dtype)
    if dt.itemsize not in (4, 8):
        # the renderers bitcast 4- and 8-byte floats only
        raise NotImplementedError(f"no lowering for primitive 'reduce_precision' on "
                                  f"{dt.name}")
    udt = np.dtype(f"uint{dt.itemsize * 8}")
    bits = reduce_precision_bits(ops.bitcast(x, udt), dt, exponent_bits, mantissa_bits,
                                 _alu_bit_ops(udt, x.shape))
    out = ops.bitcast(bits, dt)
    return ops.where(ops.alu("ne", x, x), x, out)


register_lowering(reduce_precision_p, _reduce_precision)
register_lowering(optimization_barrier_p, lambda avals_in, avals_out, *xs: list(xs))
