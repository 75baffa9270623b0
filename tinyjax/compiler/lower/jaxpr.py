"""The jaxpr walk: every equation lowered by its primitive's rule, in order.  Importing this
module imports every family of rules (each registers its rules when imported)."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower import (convolution, cumulative, dot, elementwise,  # noqa: F401
                                    gather_scatter, precision, random_bits, reductions,
                                    shape, slicing, sorting, windowed)
from tinyjax.compiler.lower.registry import check_dtype, inlined_calls, lowering_rules
from tinyjax.jaxpr import Jaxpr, Literal, Var, literal_or_none
from tinyjax.lax.composite import composite_definitions, composite_jaxpr


__all__ = ["inline_calls", "inlined_body", "lower_jaxpr"]


def inlined_body(eqn) -> Jaxpr | None:
    """The equations an equation stands for, when it is a call the compiler lowers in place
    (``checkpoint``, ``custom_jvp_call``, ``custom_vjp_call``) or a composite primitive
    (:mod:`tinyjax.lax.composite`): an open jaxpr whose invars take the equation's operands;
    None for any other equation."""
    if eqn.primitive in inlined_calls:
        inner = eqn.params[inlined_calls[eqn.primitive]]
        invars = list(inner.constvars) + list(inner.invars)
        if len(invars) != len(eqn.invars):
            raise NotImplementedError(f"no lowering for primitive '{eqn.primitive.name}'"
                                      " with closed-over constants")
        return Jaxpr([], invars, inner.outvars, inner.eqns)
    if eqn.primitive not in composite_definitions:
        return None
    closed = composite_jaxpr(eqn.primitive, tuple(a.aval for a in eqn.invars), **eqn.params)
    literals = [literal_or_none(c) for c in closed.consts]
    if any(lit is None for lit in literals):
        raise NotImplementedError(f"no lowering for primitive '{eqn.primitive.name}': its "
                                  "definition captures array constants")
    jaxpr = closed.jaxpr
    consts = dict(zip(jaxpr.constvars, literals))
    return Jaxpr([], jaxpr.invars, [consts.get(o, o) for o in jaxpr.outvars],
                 [e.replace(invars=[consts.get(a, a) if isinstance(a, Var) else a
                                    for a in e.invars]) for e in jaxpr.eqns])


def _inlines(jaxpr: Jaxpr) -> bool:
    return any(e.primitive in inlined_calls or e.primitive in composite_definitions
               for e in jaxpr.eqns)


def inline_calls(jaxpr: Jaxpr) -> Jaxpr:
    """``jaxpr`` with every equation that :func:`inlined_body` expands replaced by the
    equations it stands for (recursively, with fresh variables, so one body may be inlined
    several times)."""
    if not _inlines(jaxpr):
        return jaxpr
    sub: dict = {}
    eqns: list = []

    def read(a):
        return sub.get(a, a) if isinstance(a, Var) else a

    def expand(eqn_list):
        for e in eqn_list:
            ins = [read(a) for a in e.invars]
            inner = inlined_body(e)
            if inner is not None:
                sub.update(zip(inner.invars, ins))
                expand(inner.eqns)
                for v, o in zip(e.outvars, inner.outvars):
                    sub[v] = read(o)
                continue
            outs = []
            for v in e.outvars:
                nv = Var(v.aval)
                sub[v] = nv
                outs.append(nv)
            eqns.append(e.replace(invars=ins, outvars=outs))

    expand(jaxpr.eqns)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, [read(a) for a in jaxpr.outvars], eqns)


def lower_jaxpr(jaxpr, n_slots_start: int = 0):
    """Lower a jaxpr's equations to a LazyOp graph (calls inlined first).

    Returns (input leaves for constvars + invars, output LazyOps).  Literals become CONST
    nodes; unused equations are lowered too (cheap) but never scheduled."""
    jaxpr = inline_calls(jaxpr)
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
