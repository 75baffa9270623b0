"""Staging: trace a Python function into a jaxpr (what ``make_jaxpr``, ``eval_shape`` and
``jit`` build on).

:class:`StagingTrace` records every primitive applied to its tracers as a jaxpr
equation.  Values that are not its own tracers become inputs of the jaxpr: Python
scalars and 0-d arrays as inline literals, other arrays (and tracers of enclosing
transforms) as constant variables.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tinyjax.core import (ShapedArray, Trace, Tracer, check_foreign_tracer,
                          eager_constant_folding, eval_trace, from_physical, get_aval,
                          new_trace, physical_aval, set_current_trace, user_source_info,
                          varying_operands, with_spec, with_vma)
from tinyjax.interpreters.ad import SymbolicZero, Zero, tangent_aval
from tinyjax.jaxpr import (ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var, eval_jaxpr,
                           literal_or_none)
from tinyjax import tree_util
from tinyjax.tree_util import physical


class StagingTracer(Tracer):
    __slots__ = ("_aval", "_var")

    def __init__(self, trace: "StagingTrace", aval: ShapedArray, var: Var):
        self._trace = trace
        self._aval = aval
        self._var = var

    @property
    def aval(self) -> ShapedArray:
        return self._aval

    def _origin(self) -> str:
        return self._trace.origins.get(self._var, "an intermediate value")

    def __repr__(self) -> str:
        return f"JitTracer({self._aval})"  # JAX's name for a tracer being staged


class StagingTrace(Trace):
    """Records primitives into a jaxpr instead of running them."""

    def __init__(self, parent: Trace):
        self.parent = parent
        self.eqns: list[JaxprEqn] = []
        self.invars: list[Var] = []
        self.constvars: dict[int, Var] = {}
        self.consts: list[Any] = []
        self.origins: dict[Var, str] = {}

    def new_arg(self, aval: ShapedArray, origin: str = "") -> StagingTracer:
        var = Var(aval)
        self.invars.append(var)
        if origin:
            self.origins[var] = origin
        return StagingTracer(self, aval, var)

    def to_atom(self, x: Any) -> Var | Literal:
        if isinstance(x, StagingTracer) and x._trace is self:
            return x._var
        check_foreign_tracer(x)
        lit = None if isinstance(x, Tracer) else literal_or_none(x)
        if lit is not None:
            return lit
        var = self.constvars.get(id(x))
        if var is None:
            var = Var(get_aval(x))
            self.constvars[id(x)] = var
            self.consts.append(x)
        return var

    def process_primitive(self, primitive, args, params):
        if eager_constant_folding() and not any(isinstance(x, Tracer) for x in args):
            with set_current_trace(eval_trace):
                return primitive.bind(*args, **params)
        atoms = [self.to_atom(x) for x in varying_operands(primitive, params, args)]
        in_avals = [a.aval for a in atoms]
        out_avals = primitive.abstract_eval(*in_avals, **params)
        source = user_source_info()
        outs = out_avals if primitive.multiple_results else [out_avals]
        outs = with_spec(primitive, params, in_avals, with_vma(primitive, params, in_avals,
                                                               outs))
        outvars = [Var(a) for a in outs]
        self.eqns.append(JaxprEqn(atoms, outvars, primitive, params, source))
        for v in outvars:
            self.origins[v] = f"the output of `{primitive.name}` at {source}"
        tracers = [StagingTracer(self, v.aval, v) for v in outvars]
        return tracers if primitive.multiple_results else tracers[0]

    # A custom-derivative call is staged as one equation of ``primitive`` holding the
    # function's jaxpr and the rules, so that transforming the jaxpr later (a loop body
    # under grad, say) still uses the rules.  Values the function closes over become
    # its leading operands (``num_consts``).
    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros,
                                num_consts=0):
        jaxpr, consts = _trace_call(fun, args)
        n = len(consts)
        return self.process_primitive(primitive, [*consts, *args], dict(
            call_jaxpr=jaxpr, jvp=_jvp_skipping(jvp, n), num_consts=n + num_consts,
            symbolic_zeros=symbolic_zeros))

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros, num_consts=0):
        jaxpr, consts = _trace_call(fun, args)
        n = len(consts)
        return self.process_primitive(primitive, [*consts, *args], dict(
            call_jaxpr=jaxpr, fwd=_TracedOnce(_fwd_skipping(fwd, n)),
            bwd=_TracedOnce(_bwd_skipping(bwd, [get_aval(c) for c in consts])),
            out_trees=out_trees,
            num_consts=n + num_consts, symbolic_zeros=symbolic_zeros))

    def to_closed_jaxpr(self, outs: Sequence[Any]) -> ClosedJaxpr:
        outvars = [self.to_atom(x) for x in outs]
        # to_atom may have added constants; constvars are listed in creation order.
        constvars = list(self.constvars.values())
        return ClosedJaxpr(Jaxpr(constvars, self.invars, outvars, self.eqns), self.consts)


def _trace_call(fun: Callable, args: Sequence[Any]) -> tuple[Jaxpr, list[Any]]:
    """``fun`` traced on the types of ``args``: an open jaxpr whose first inputs are the
    values it closes over, and those values."""
    closed = trace_to_closed_jaxpr(fun, [get_aval(a) for a in args])
    j = closed.jaxpr
    return Jaxpr([], list(j.constvars) + list(j.invars), j.outvars, j.eqns), closed.consts


def _jvp_skipping(jvp: Callable, n: int) -> Callable:
    """A jvp rule over ``n`` more leading operands, which it ignores."""
    if not n:
        return jvp

    def rule(*primals_and_tangents):
        m = len(primals_and_tangents) // 2
        return jvp(*primals_and_tangents[n:m], *primals_and_tangents[m + n:])
    return rule


def _fwd_skipping(fwd: Callable, n: int) -> Callable:
    """A fwd rule over ``n`` more leading operands (never perturbed), which it ignores."""
    return fwd if not n else (lambda perturbed, *args: fwd(perturbed[n:], *args[n:]))


def _bwd_skipping(bwd: Callable, avals: Sequence[ShapedArray]) -> Callable:
    """A bwd rule over more leading operands, whose cotangents are zero."""
    if not avals:
        return bwd
    return lambda res, cts: [Zero(tangent_aval(a)) for a in avals] + list(bwd(res, cts))


class _TracedOnce:
    """A ``custom_vjp`` rule held by a staged equation: traced into a jaxpr once per
    signature of its arguments (the types of its arrays and the values of the rest:
    ``perturbed`` flags, symbolic zeros) and evaluated from then on, as JAX keeps the
    rules' jaxprs -- a jitted function differentiated twice runs its rules' Python once.
    A trace that closes over tracers of an enclosing transform serves only its own call;
    arguments or results of extended dtypes (key arrays) go to the rule itself."""

    def __init__(self, rule: Callable):
        self.rule = rule
        self.traces: dict[tuple, Any] = {}

    def __call__(self, *args: Any) -> Any:
        leaves, args_tree = _flatten(args)
        operands = [i for i, x in enumerate(leaves) if _is_operand(x)]
        try:
            key = (args_tree, *(_signature(x, i in operands) for i, x in enumerate(leaves)))
            known = key in self.traces
        except TypeError:  # an unhashable argument: no signature
            return self.rule(*args)
        if known:
            entry = self.traces[key]
        else:
            entry = self._trace(leaves, operands, args_tree.unflatten)
            if entry is None or not any(isinstance(c, Tracer) for c in entry[0].consts):
                self.traces[key] = entry
        if entry is None:  # (an extended dtype)
            return self.rule(*args)
        closed, out_leaves, out_operands, rebuild_out = entry
        values = eval_jaxpr(closed.jaxpr, closed.consts, *[leaves[i] for i in operands])
        out_leaves = list(out_leaves)
        for i, v in zip(out_operands, values):
            out_leaves[i] = v
        return rebuild_out(out_leaves)

    def _trace(self, leaves: list, operands: list[int], rebuild_args: Callable):
        """(jaxpr, the result's leaves, which of them are its outputs, how to rebuild the
        result), or None where an array of an extended dtype is involved."""
        avals = [get_aval(leaves[i]) for i in operands]
        if any(physical_aval(a) != a for a in avals):
            return None
        found: list = []

        def flat_rule(*values):
            args = list(leaves)
            for i, v in zip(operands, values):
                args[i] = v
            out_leaves, out_tree = _flatten(self.rule(*rebuild_args(args)))
            outs = [i for i, x in enumerate(out_leaves) if _is_operand(x)]
            found.append(([None if i in outs else x for i, x in enumerate(out_leaves)],
                          outs, out_tree.unflatten))
            return [out_leaves[i] for i in outs]

        closed = trace_to_closed_jaxpr(flat_rule, avals)
        out_leaves, outs, rebuild_out = found[0]
        if any(physical_aval(v.aval) != v.aval for v in closed.jaxpr.outvars):
            return None
        return closed, out_leaves, outs, rebuild_out


def _is_operand(x: Any) -> bool:
    return not (x is None or type(x) in (bool, Zero, SymbolicZero))


def _signature(x: Any, operand: bool) -> Any:
    if operand:
        return get_aval(x)
    return (type(x), x.aval) if type(x) in (Zero, SymbolicZero) else x


def _flatten(tree: Any) -> tuple[list, tree_util.PyTreeDef]:
    """``tree_flatten`` with None a leaf, so that every argument keeps its place."""
    return tree_util.tree_flatten(tree, is_leaf=lambda x: x is None)


def trace_to_closed_jaxpr(fun: Callable[..., Sequence[Any]], in_avals: Sequence[ShapedArray],
                          origins: Sequence[str] = ()) -> ClosedJaxpr:
    """Trace a flat function (list of arrays in, list of arrays out) to a ClosedJaxpr.
    An input of an extended dtype (a key array) is traced as its data, and so is such an
    output: the jaxpr's types are the physical ones."""
    from tinyjax.core import current_trace
    trace = StagingTrace(current_trace())
    with new_trace(trace):
        origins = list(origins) + [""] * (len(in_avals) - len(origins))
        args = [from_physical(a, trace.new_arg(physical_aval(a), o))
                for a, o in zip(in_avals, origins)]
        outs = fun(*args)
        return trace.to_closed_jaxpr([physical.leaf_data(o) for o in outs])
