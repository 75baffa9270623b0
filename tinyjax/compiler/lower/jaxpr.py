"""The jaxpr walk: every equation lowered by its primitive's rule, in order.  Importing this
module imports every family of rules (each registers its rules when imported)."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower import (convolution, cumulative, dot, elementwise,  # noqa: F401
                                    gather_scatter, precision, random_bits, reductions,
                                    shape, slicing, sorting, windowed)
from tinyjax.compiler.lower.registry import check_dtype, lowering_rules
from tinyjax.jaxpr import Literal


__all__ = ["lower_jaxpr"]


def lower_jaxpr(jaxpr, n_slots_start: int = 0):
    """Lower a jaxpr's equations to a LazyOp graph.

    Returns (input leaves for constvars + invars, output LazyOps).  Literals become CONST
    nodes; unused equations are lowered too (cheap) but never scheduled."""
    env: dict = {}
    leaves = []
    for slot, v in enumerate(list(jaxpr.constvars) + list(jaxpr.invars)):
        check_dtype(v.aval.dtype)
        leaf = ops.load(slot, v.aval.shape, v.aval.dtype)
        env[v] = leaf
        leaves.append(leaf)

    def read(a):
        if isinstance(a, Literal):
            check_dtype(a.aval.dtype)
            return ops.const(np.asarray(a.val).item(), a.aval.dtype, a.aval.shape)
        return env[a]

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        rule = lowering_rules.get(eqn.primitive)
        if rule is None:
            raise NotImplementedError(f"no lowering for primitive '{name}'")
        for v in eqn.outvars:
            check_dtype(v.aval.dtype)
        ops.current_source(eqn.source_info or "")
        try:
            ins = [read(a) for a in eqn.invars]
            out = rule([a.aval for a in eqn.invars], [v.aval for v in eqn.outvars], *ins,
                       **eqn.params)
        finally:
            ops.current_source("")
        outs = out if isinstance(out, (list, tuple)) else [out]
        for v, o in zip(eqn.outvars, outs):
            if o.shape != tuple(v.aval.shape):
                raise AssertionError(f"lowering of {name} gave shape {o.shape}, "
                                     f"expected {v.aval.shape}")
            env[v] = ops.cast(o, v.aval.dtype)
    return leaves, [read(a) for a in jaxpr.outvars]
