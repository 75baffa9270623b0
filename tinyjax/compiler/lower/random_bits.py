"""Lowering rule of ``threefry2x32`` (:mod:`tinyjax.lax.random_bits`): the rounds as uint32
adds, shifts, ors and xors, which the compiler fuses into one kernel; ``rng_uniform``
inlined as its draw with a seed of its own."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_inlined_call, register_lowering
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.lax.random_bits import PARITY, ROTATIONS, threefry2x32_p
from tinyjax.lax.rng_uniform import next_seed, rng_uniform_p, uniform_from_seed


def _threefry2x32_lowering(avals_in, avals_out, k0, k1, x0, x1):
    shape = avals_out[0].shape

    def c(v):
        return ops.const(v, np.uint32, shape)

    def add(a, b):
        return ops.alu("add", a, b)
    k0, k1, x0, x1 = (ops.broadcast_to(v, shape) for v in (k0, k1, x0, x1))
    ks = (k0, k1, ops.alu("xor", ops.alu("xor", k0, k1), c(PARITY)))
    x0, x1 = add(x0, k0), add(x1, k1)
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            x0 = add(x0, x1)
            rot = ops.alu("or", ops.alu("shift_left", x1, c(r)),
                          ops.alu("shift_right_logical", x1, c(32 - r)))
            x1 = ops.alu("xor", rot, x0)
        x0 = add(x0, ks[(i + 1) % 3])
        x1 = add(add(x1, ks[(i + 2) % 3]), c(i + 1))
    return [x0, x1]


register_lowering(threefry2x32_p, _threefry2x32_lowering)


def _rng_uniform_body(eqn, operands):
    """``rng_uniform``'s draw with a seed of this equation's own (traced afresh, never cached:
    two draws of one shape in one program differ)."""
    shape = eqn.params["shape"]
    closed = trace_to_closed_jaxpr(
        lambda a, b: [uniform_from_seed(a, b, shape=shape, seed=next_seed())],
        [v.aval for v in eqn.invars])
    return closed.jaxpr, operands


register_inlined_call(rng_uniform_p, _rng_uniform_body)
