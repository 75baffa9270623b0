"""The jaxpr walk: every equation lowered by its primitive's rule, in order.  Importing this
module imports every family of rules (each registers its rules when imported)."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower import (convolution, cumulative, dot, elementwise,  # noqa: F401
                                    gather_scatter, linalg, precision, random_bits,
                                    reductions, shape, slicing, sorting, windowed)
from tinyjax.compiler.lower.complex import (Pair, const_pair, is_complex, load_pair,
                                            lower_complex, store_pair)
from tinyjax.compiler.lower.registry import check_dtype, inlined_calls, lowering_rules
from tinyjax.jaxpr import Literal


__all__ = ["lower_jaxpr"]


def lower_jaxpr(jaxpr, n_slots_start: int = 0):
    """Lower a jaxpr's equations to a LazyOp graph.

    Returns (input leaves for constvars + invars, output LazyOps).  Literals become CONST
    nodes; unused equations are lowered too (cheap) but never scheduled.  Complex values
    become pairs of real LazyOps (:mod:`tinyjax.compiler.lower.complex`): a complex input
    leaf is its interleaved buffer, a complex output the interleaved parts.  Calls the
    compiler inlines (``jit`` equations, ``checkpoint``, ...: ``inlined_calls``) are
    lowered as the equations of their bodies."""
    env: dict = {}
    leaves = []
    for slot, v in enumerate(list(jaxpr.constvars) + list(jaxpr.invars)):
        if is_complex(v.aval.dtype):
            leaf, env[v] = load_pair(slot, v.aval.shape, v.aval.dtype)
        else:
            check_dtype(v.aval.dtype)
            leaf = env[v] = ops.load(slot, v.aval.shape, v.aval.dtype)
        leaves.append(leaf)

    def read(a):
        if isinstance(a, Literal):
            if is_complex(a.aval.dtype):
                return const_pair(a.val, a.aval.dtype, a.aval.shape)
            check_dtype(a.aval.dtype)
            return ops.const(np.asarray(a.val).item(), a.aval.dtype, a.aval.shape)
        return env[a]

    def lower_eqn(eqn) -> None:
        name = eqn.primitive.name
        if eqn.primitive in inlined_calls:
            inner, operands = inlined_calls[eqn.primitive](eqn, [read(a) for a in eqn.invars])
            env.update(zip(list(inner.constvars) + list(inner.invars), operands))
            for e in inner.eqns:
                lower_eqn(e)
            env.update(zip(eqn.outvars, [read(a) for a in inner.outvars]))
            return
        avals_in, avals_out = [a.aval for a in eqn.invars], [v.aval for v in eqn.outvars]
        with_complex = any(is_complex(a.dtype) for a in avals_in + avals_out)
        rule = lowering_rules.get(eqn.primitive)
        if rule is None and not with_complex:
            raise NotImplementedError(f"no lowering for primitive '{name}'")
        for v in eqn.outvars:
            if not is_complex(v.aval.dtype):
                check_dtype(v.aval.dtype)
        ops.current_source(eqn.source_info or "")
        try:
            ins = [read(a) for a in eqn.invars]
            out = lower_complex(eqn.primitive, avals_in, avals_out, ins, eqn.params,
                                lowering_rules) if with_complex else \
                rule(avals_in, avals_out, *ins, **eqn.params)
        finally:
            ops.current_source("")
        outs = out if isinstance(out, (list, tuple)) and not isinstance(out, Pair) else [out]
        for v, o in zip(eqn.outvars, outs):
            if o.shape != tuple(v.aval.shape):
                raise AssertionError(f"lowering of {name} gave shape {o.shape}, "
                                     f"expected {v.aval.shape}")
            env[v] = o if isinstance(o, Pair) else ops.cast(o, v.aval.dtype)

    for eqn in jaxpr.eqns:
        lower_eqn(eqn)
    outputs = [read(a) for a in jaxpr.outvars]
    return leaves, [store_pair(o) if isinstance(o, Pair) else o for o in outputs]
