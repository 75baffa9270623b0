"""Helpers shared by the control-flow primitives: tracing functions to open jaxprs
and transforming sub-jaxprs (jvp, partial evaluation, batching).

Every sub-jaxpr held by a control-flow primitive is *open*: it has no constvars;
values it closes over are explicit leading arguments of the equation, as in
:mod:`tinyjax.ad_checkpoint`.  Each transformation below returns a new
open jaxpr plus the constants it closed over (to be passed as leading operands).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.tree_util import physical
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.core import ShapedArray, Tracer, current_trace, get_aval, new_trace
from tinyjax.jaxpr import Jaxpr, Var, eval_jaxpr
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import PartialEvalTrace
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.lax.elementwise import convert_element_type


# ---------------------------------------------------------------------------
# Tracing and small jaxpr utilities
# ---------------------------------------------------------------------------


def trace_open(fun: Callable[..., Sequence[Any]], avals: Sequence[ShapedArray]
               ) -> tuple[Jaxpr, list[Any]]:
    """Trace the flat ``fun``; its constants become leading invars (returned apart)."""
    closed = trace_to_closed_jaxpr(fun, avals)
    jaxpr = closed.jaxpr
    return Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.outvars, jaxpr.eqns), closed.consts


def run(jaxpr: Jaxpr, *args: Any) -> list[Any]:
    """Evaluate an open jaxpr under the current trace."""
    return eval_jaxpr(jaxpr, [], *args)


def with_invars(jaxpr: Jaxpr, invars: Sequence[Var], outvars: Sequence[Any] | None = None
                ) -> Jaxpr:
    return Jaxpr([], list(invars), jaxpr.outvars if outvars is None else list(outvars),
                 jaxpr.eqns)


def permute(items: Sequence[Any], groups: Sequence[Sequence[int]]) -> list[Any]:
    return [items[i] for g in groups for i in g]


def split_list(xs: Sequence[Any], sizes: Sequence[int]) -> list[list[Any]]:
    out, start = [], 0
    for n in sizes:
        out.append(list(xs[start:start + n]))
        start += n
    out.append(list(xs[start:]))
    return out


def split_consts(args: Sequence[Any], const_lengths: tuple) -> tuple[tuple, list[Any]]:
    """The operands of an equation whose sub-programs' consts come first: (a tuple of the
    type of ``const_lengths`` holding each sub-program's consts, the other operands)."""
    *groups, rest = split_list(args, const_lengths)
    return type(const_lengths)(*groups), rest


def run_solve(args: Sequence[Any], const_lengths: tuple, jaxprs: Any) -> list[np.ndarray]:
    """Evaluate ``jaxprs.solve`` on its consts and the operands after all the consts (the
    implementation of ``custom_linear_solve`` and ``custom_root``)."""
    consts, rest = split_consts(args, const_lengths)
    jaxpr = jaxprs.solve
    vals = wrap_values(list(consts.solve) + rest, jaxpr.in_avals)
    return [to_numpy(o, v.aval) for o, v in zip(run(jaxpr, *vals), jaxpr.outvars)]


def type_str(aval: ShapedArray) -> str:
    """``float32[3]``: JAX's long form of an aval, as in its error messages."""
    return f"{aval.dtype.name}[{','.join(map(str, aval.shape))}]"


def typematch(a: ShapedArray, b: ShapedArray) -> bool:
    """Same shape and dtype (weak types may differ), like JAX's ``core.typematch``."""
    return a.shape == b.shape and a.dtype == b.dtype


def differentiable(aval: ShapedArray) -> bool:
    return dtypes.is_float(aval.dtype) or dtypes.is_complex(aval.dtype)


def to_numpy(x: Any, aval: ShapedArray) -> np.ndarray:
    value = x._value if type(x) is ArrayImpl else x
    return np.asarray(value, dtype=aval.dtype)


def wrap_values(values: Sequence[Any], avals: Sequence[ShapedArray]) -> list[ArrayImpl]:
    """Numpy values as eager Arrays carrying the weak types of ``avals``."""
    return [wrap_eager(to_numpy(v, a), a.weak_type) for v, a in zip(values, avals)]


def flatten_operands(tree: Any) -> tuple[list[Any], tree_util.PyTreeDef]:
    from tinyjax.lax._helpers import as_operand
    leaves, treedef = physical.tree_flatten(tree)
    return [as_operand(x) for x in leaves], treedef


def join_jaxprs(traced: Sequence[tuple[Jaxpr, list[Any]]]) -> tuple[list[Jaxpr], list[Any]]:
    """Give jaxprs traced apart (each with its own leading consts) one signature:
    every jaxpr takes all the consts of all of them, then the common arguments."""
    consts = [c for _, cs in traced for c in cs]
    out = []
    for i, (jaxpr, cs) in enumerate(traced):
        n = len(cs)
        pre = [Var(get_aval(c)) for _, cs2 in traced[:i] for c in cs2]
        post = [Var(get_aval(c)) for _, cs2 in traced[i + 1:] for c in cs2]
        out.append(with_invars(jaxpr, pre + jaxpr.invars[:n] + post + jaxpr.invars[n:]))
    return out, consts


# ---------------------------------------------------------------------------
# jvp of a jaxpr
# ---------------------------------------------------------------------------


def jvp_jaxpr(jaxpr: Jaxpr, nonzeros: Sequence[bool], instantiate: Sequence[bool]
              ) -> tuple[Jaxpr, list[Any], list[bool]]:
    """The jvp of an open jaxpr.

    The result takes ``[consts, primals, tangents of the nonzero inputs]`` and gives
    ``[primal outputs, tangents of the nonzero outputs]``.  An output has a nonzero
    tangent if it is differentiable and its tangent is not a symbolic zero or it is
    in ``instantiate``.  Returns ``(jaxpr, consts, out_nonzeros)``.
    """
    in_avals = [v.aval for v in jaxpr.invars]
    nonzeros = [bool(nz) and differentiable(a) for nz, a in zip(nonzeros, in_avals)]
    n = len(in_avals)
    store: list[list[bool]] = []

    def fun(*args):
        primals, tans = args[:n], iter(args[n:])
        tangents = [next(tans) if nz else ad.Zero(ad.tangent_aval(a))
                    for nz, a in zip(nonzeros, in_avals)]
        outs, out_t = ad.jvp_flat(lambda *a: run(jaxpr, *a), primals, tangents)
        out_nz = [differentiable(get_aval(o)) and (type(t) is not ad.Zero or inst)
                  for o, t, inst in zip(outs, out_t, instantiate)]
        store.append(out_nz)
        return list(outs) + [_tangent_like(t, o) for t, o, nz in zip(out_t, outs, out_nz)
                             if nz]

    avals = in_avals + [ad.tangent_aval(a) for a, nz in zip(in_avals, nonzeros) if nz]
    new, consts = trace_open(fun, avals)
    return new, consts, store[0]


def _tangent_like(t: Any, primal: Any) -> Any:
    t = ad.instantiate_zeros(t)
    want = ad.tangent_aval(get_aval(primal))
    if get_aval(t).dtype != want.dtype:
        t = convert_element_type(t, want.dtype)
    return t


# ---------------------------------------------------------------------------
# Partial evaluation of a jaxpr
# ---------------------------------------------------------------------------


class PartialEvalSplit:
    """A jaxpr split into a known and an unknown part.

    * ``known``: ``[known_consts, known inputs] -> [known outputs, residuals]``;
    * ``unknown``: ``[residuals, unknown inputs] -> [unknown outputs]``;
    * ``res_forwarded[k]``: index (among the known inputs) of the input that residual
      ``k`` is, or None when it is computed.
    """

    def __init__(self, known, known_consts, unknown, out_unknowns, res_avals,
                 res_forwarded):
        self.known: Jaxpr = known
        self.known_consts: list[Any] = known_consts
        self.unknown: Jaxpr = unknown
        self.out_unknowns: list[bool] = out_unknowns
        self.res_avals: list[ShapedArray] = res_avals
        self.res_forwarded: list[int | None] = res_forwarded

    @property
    def num_res(self) -> int:
        return len(self.res_avals)


def partial_eval_jaxpr(jaxpr: Jaxpr, in_unknowns: Sequence[bool],
                       instantiate: Sequence[bool]) -> PartialEvalSplit:
    """Split ``jaxpr`` by running it under a :class:`PartialEvalTrace` whose parent
    stages the known computation: nested primitives split themselves by their own
    partial-evaluation rules.  Outputs in ``instantiate`` are made unknown."""
    in_avals = [v.aval for v in jaxpr.invars]
    store: list[Any] = []

    def known_fun(*known_args):
        pe = PartialEvalTrace(current_trace())
        with new_trace(pe):
            it = iter(known_args)
            unknown_ins = [pe.new_unknown(a) for a, u in zip(in_avals, in_unknowns) if u]
            uit = iter(unknown_ins)
            args = [next(uit) if u else next(it) for u in in_unknowns]
            outs = run(jaxpr, *args)
            out_uk = [pe.is_unknown(o) or bool(inst) for o, inst in zip(outs, instantiate)]
            unknown_jaxpr, res = pe.to_jaxpr(unknown_ins, [o for o, u in zip(outs, out_uk)
                                                           if u])
        forwarded = [next((i for i, k in enumerate(known_args) if k is r), None)
                     if isinstance(r, Tracer) else None for r in res]
        store.append((unknown_jaxpr, out_uk, [get_aval(r) for r in res], forwarded))
        return [o for o, u in zip(outs, out_uk) if not u] + list(res)

    known, known_consts = trace_open(known_fun, [a for a, u in zip(in_avals, in_unknowns)
                                                  if not u])
    unknown_jaxpr, out_uk, res_avals, forwarded = store[0]
    unknown = Jaxpr([], unknown_jaxpr.constvars + unknown_jaxpr.invars,
                    unknown_jaxpr.outvars, unknown_jaxpr.eqns)
    return PartialEvalSplit(known, known_consts, unknown, out_uk, res_avals, forwarded)


# ---------------------------------------------------------------------------
# Batching of a jaxpr
# ---------------------------------------------------------------------------


def batch_jaxpr(jaxpr: Jaxpr, size: int, in_batched: Sequence[bool],
                instantiate: Sequence[bool]) -> tuple[Jaxpr, list[Any], list[bool]]:
    """Vectorise an open jaxpr; batched inputs and outputs carry the batch at axis 0.
    Returns ``(jaxpr, consts, out_batched)``; outputs in ``instantiate`` are batched."""
    in_avals = [v.aval for v in jaxpr.invars]
    store: list[list[bool]] = []

    def fun(*args):
        trace = batching.BatchTrace(current_trace(), batching.rule_axis_data(size))
        with new_trace(trace):
            outs = run(jaxpr, *[trace.wrap(a, 0 if b else None)
                                for a, b in zip(args, in_batched)])
            pairs = [trace.to_val_dim(o) for o in outs]
        out_b = [d is not None or bool(inst) for (_, d), inst in zip(pairs, instantiate)]
        store.append(out_b)
        return [batching.moveaxis(v, d, 0, size) if b else v
                for (v, d), b in zip(pairs, out_b)]

    avals = [batched_aval(a, size) if b else a for a, b in zip(in_avals, in_batched)]
    new, consts = trace_open(fun, avals)
    return new, consts, store[0]


def batched_aval(aval: ShapedArray, size: int, axis: int = 0) -> ShapedArray:
    shape = list(aval.shape)
    shape.insert(axis, size)
    return aval.update(shape=tuple(shape))


def fixed_point(flags: list[bool], step: Callable[[list[bool]], list[bool]]) -> list[bool]:
    """Grow ``flags`` (OR) with ``step(flags)`` until it stops changing."""
    for _ in range(len(flags) + 1):
        new = [a or b for a, b in zip(flags, step(flags))]
        if new == flags:
            return flags
        flags = new
    return flags
