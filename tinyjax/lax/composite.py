"""Primitives defined by a composition of other lax operations.

A *composite* primitive appears in jaxprs under its own name and carries its own
transformation rules (JAX's derivative formulas, batching), but its value is defined by
a Python function written in other lax operations (it may contain ``while`` loops).
That one definition serves every evaluator: it is traced once per signature (operand
types and parameters) into a jaxpr, which eager evaluation interprets and the compiler
inlines in place of the primitive's equation before lowering (JAX's
``mlir.lower_fun``).  Nothing needs a lowering rule per backend.

:func:`derive_rules` gives such a primitive every rule it lacks from the same definition:
its abstract evaluation (the traced definition's output types), its jvp (the
definition pushed forward), its batching (the definition vectorised) and, for a primitive
linear in some operands, its transpose (the definition's jaxpr transposed).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, Var, eval_jaxpr, literal_or_none

__all__ = ["composite_definitions", "composite_inline", "composite_jaxpr", "define_composite",
           "derive_rules"]

# primitive -> definition(*operands, **params) in lax operations
composite_definitions: dict[Primitive, Callable[..., Any]] = {}


def define_composite(prim: Primitive, definition: Callable[..., Any], *,
                     eager: bool = True) -> None:
    """Make ``definition`` the meaning of ``prim``: what the compiler expands it into,
    and (with ``eager``) its eager implementation too."""
    composite_definitions[prim] = definition
    if not eager:  # the primitive keeps the implementation it has
        return

    def impl(*values: Any, **params: Any) -> Any:
        closed = composite_jaxpr(prim, tuple(get_aval(v) for v in values), **params)
        out = [np.asarray(o) for o in eval_jaxpr(closed.jaxpr, closed.consts, *values)]
        return out if prim.multiple_results else out[0]
    prim.def_impl(impl)


def composite_jaxpr(prim: Primitive, avals: tuple[ShapedArray, ...], /, **params: Any
                    ) -> ClosedJaxpr:
    """The jaxpr of ``prim``'s definition for operands of ``avals`` (cached where the
    parameters are hashable)."""
    key = tuple(sorted(params.items()))
    try:
        hash(key)
    except TypeError:
        return _trace.__wrapped__(prim, avals, key)
    return _trace(prim, avals, key)


def composite_inline(eqn: Any, operands: list) -> tuple[Jaxpr, list]:
    """The equations the composite equation ``eqn`` stands for: an open jaxpr (its
    constants written as literals) and its operands, ``operands``."""
    closed = composite_jaxpr(eqn.primitive, tuple(a.aval for a in eqn.invars), **eqn.params)
    literals = [literal_or_none(c) for c in closed.consts]
    if any(lit is None for lit in literals):
        raise NotImplementedError(f"no lowering for primitive '{eqn.primitive.name}': its "
                                  "definition captures array constants")
    jaxpr = closed.jaxpr
    consts = dict(zip(jaxpr.constvars, literals))
    return Jaxpr([], jaxpr.invars, [consts.get(o, o) for o in jaxpr.outvars],
                 [e.replace(invars=[consts.get(a, a) if isinstance(a, Var) else a
                                    for a in e.invars]) for e in jaxpr.eqns]), operands


@functools.lru_cache(maxsize=256)
def _trace(prim: Primitive, avals: tuple, params: tuple) -> ClosedJaxpr:
    definition = composite_definitions[prim]

    def flat(*args: Any) -> list:
        out = definition(*args, **dict(params))
        return list(out) if prim.multiple_results else [out]
    return trace_to_closed_jaxpr(flat, avals)


def derive_rules(prim: Primitive, *, linear: bool | Sequence[int] = False) -> None:
    """Give the composite ``prim`` (see :func:`define_composite`) the rules it has not got
    from its definition: abstract evaluation, jvp, batching, and -- where it is linear in
    all its operands (``linear=True``) or in the operands ``linear`` lists (the others
    must be non-differentiable, such as integer indices) -- a jvp that binds ``prim`` on
    the tangents and a transpose."""
    if prim.abstract_eval is None:
        prim.def_abstract_eval(functools.partial(_abstract_eval, prim))
    if prim not in ad.primitive_jvps:
        rule = _linear_jvp if linear is not False else _jvp
        ad.primitive_jvps[prim] = functools.partial(rule, prim, linear)
    if linear is not False and prim not in ad.primitive_transposes:
        ad.primitive_transposes[prim] = functools.partial(_transpose, prim)
    if prim not in batching.primitive_batchers:
        batching.primitive_batchers[prim] = functools.partial(_batch, prim)


def _avals(args: Sequence[Any]) -> tuple[ShapedArray, ...]:
    return tuple(a.aval if ad.is_undefined_primal(a) else get_aval(a) for a in args)


def _run(prim: Primitive, avals: tuple[ShapedArray, ...], params: dict) -> Callable:
    """The definition as a flat function of the operands (its cached jaxpr, interpreted
    under whichever trace is current)."""
    closed = composite_jaxpr(prim, avals, **params)
    return lambda *args: eval_jaxpr(closed.jaxpr, closed.consts, *args)


def _one_or_many(prim: Primitive, outs: Sequence[Any]) -> Any:
    return list(outs) if prim.multiple_results else outs[0]


def _abstract_eval(prim: Primitive, *avals: ShapedArray, **params: Any) -> Any:
    return _one_or_many(prim, composite_jaxpr(prim, avals, **params).out_avals)


def _jvp(prim: Primitive, _linear: Any, primals: list, tangents: list, **params: Any):
    run = _run(prim, _avals(primals), params)
    outs, tangents_out = ad.jvp_flat(run, primals, tangents)
    return _one_or_many(prim, outs), _one_or_many(prim, tangents_out)


def _linear_jvp(prim: Primitive, linear: bool | Sequence[int], primals: list,
                tangents: list, **params: Any):
    linear = range(len(primals)) if linear is True else tuple(linear)
    out = prim.bind(*primals, **params)
    outs = out if prim.multiple_results else [out]
    if all(type(tangents[i]) is ad.Zero for i in linear):
        return out, _one_or_many(prim, [ad.Zero.from_primal(o) for o in outs])
    args = [ad.instantiate_zeros(t) if i in linear else p
            for i, (p, t) in enumerate(zip(primals, tangents))]
    return out, prim.bind(*args, **params)


def _transpose(prim: Primitive, ct: Any, *args: Any, **params: Any) -> list:
    closed = composite_jaxpr(prim, _avals(args), **params)
    cts = ct if prim.multiple_results else [ct]
    return ad.backward_pass(closed.jaxpr, closed.consts, args, cts)


def _batch(prim: Primitive, vals: list, dims: list, **params: Any):
    size = batching.batch_size(vals, dims)
    unbatched = tuple(ShapedArray(tuple(s for k, s in enumerate(get_aval(v).shape) if k != d),
                                  get_aval(v).dtype, get_aval(v).weak_type)
                      for v, d in zip(vals, dims))
    outs, out_dims = batching.vmap_flat_natural(
        _run(prim, unbatched, params), batching.rule_axis_data(size), vals, dims)
    return _one_or_many(prim, outs), _one_or_many(prim, out_dims)
