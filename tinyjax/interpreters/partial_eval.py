"""Online partial evaluation: split a computation into a known and an unknown part.

Inside a :class:`PartialEvalTrace`, values are either *known* (ordinary values of
the parent trace, computed at once) or *unknown* (:class:`UnknownTracer`, whose
computation is recorded).  ``linearize`` runs the jvp of a function with known
primals and unknown tangents: the primal computation happens immediately, and
the tangent computation — linear in the tangents — is recorded and returned as a
jaxpr whose constants are the residuals it needs.  Known values never get a
tracer, so Python control flow on primal values works under ``grad``, as in JAX.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tinyjax.core import (Primitive, ShapedArray, Trace, Tracer, check_foreign_tracer,
                          current_trace, from_physical, get_aval, new_trace, physical_aval,
                          set_current_trace, user_source_info)
from tinyjax.jaxpr import Jaxpr, JaxprEqn, Var, literal_or_none
from tinyjax.tree_util import physical

# Primitives with sub-programs (control flow, remat, custom rules) may need to split
# themselves: custom_partial_eval_rules[prim](trace, args, params) -> outputs.
custom_partial_eval_rules: dict[Primitive, Callable] = {}


class Recipe:
    """One recorded equation: its primitive, params and inputs (unknown tracers or
    known values), and its output tracers."""

    __slots__ = ("primitive", "params", "inputs", "outputs", "source_info")

    def __init__(self, primitive: Primitive, params: dict, inputs: list, source_info: str):
        self.primitive = primitive
        self.params = params
        self.inputs = inputs
        self.outputs: list[UnknownTracer] = []
        self.source_info = source_info


class UnknownTracer(Tracer):
    __slots__ = ("_aval", "recipe")

    def __init__(self, trace: "PartialEvalTrace", aval: ShapedArray, recipe: Recipe | None):
        self._trace = trace
        self._aval = aval
        self.recipe = recipe  # None for an input of the unknown computation

    @property
    def aval(self) -> ShapedArray:
        return self._aval

    def _origin(self) -> str:
        return "a tangent value (linear in the function's inputs)"


class PartialEvalTrace(Trace):
    def __init__(self, parent: Trace):
        self.parent = parent

    def new_unknown(self, aval: ShapedArray) -> UnknownTracer:
        return UnknownTracer(self, aval, None)

    def is_unknown(self, x: Any) -> bool:
        return isinstance(x, UnknownTracer) and x._trace is self

    def process_primitive(self, primitive, args, params):
        if not any(self.is_unknown(x) for x in args):
            with set_current_trace(self.parent):
                return primitive.bind(*args, **params)
        rule = custom_partial_eval_rules.get(primitive)
        if rule is not None:
            return rule(self, list(args), params)
        return self.record(primitive, list(args), params)

    # A custom-derivative call on known values belongs to the trace below (an enclosing
    # jvp must see the rule, not the function: grad of grad of a custom_vjp); with unknown
    # operands the function is recorded as it is.
    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros,
                                num_consts=0):
        if any(self.is_unknown(a) for a in args):
            return super().process_custom_jvp_call(primitive, fun, jvp, args,
                                                   symbolic_zeros=symbolic_zeros)
        return self.parent.process_custom_jvp_call(primitive, fun, jvp, args,
                                                   symbolic_zeros=symbolic_zeros,
                                                   num_consts=num_consts)

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros, num_consts=0):
        if any(self.is_unknown(a) for a in args):
            return super().process_custom_vjp_call(primitive, fun, fwd, bwd, args,
                                                   out_trees=out_trees,
                                                   symbolic_zeros=symbolic_zeros)
        return self.parent.process_custom_vjp_call(primitive, fun, fwd, bwd, args,
                                                   out_trees=out_trees,
                                                   symbolic_zeros=symbolic_zeros,
                                                   num_consts=num_consts)

    def record(self, primitive: Primitive, args: list, params: dict) -> Any:
        """Record ``primitive`` applied to ``args`` as part of the unknown computation."""
        for x in args:
            if not self.is_unknown(x):
                check_foreign_tracer(x, primitive)
        out_avals = primitive.abstract_eval(*map(get_aval, args), **params)
        recipe = Recipe(primitive, params, args, user_source_info())
        avals = out_avals if primitive.multiple_results else [out_avals]
        recipe.outputs = [UnknownTracer(self, a, recipe) for a in avals]
        return recipe.outputs if primitive.multiple_results else recipe.outputs[0]

    def to_jaxpr(self, inputs: Sequence[UnknownTracer], outputs: Sequence[Any]
                 ) -> tuple[Jaxpr, list[Any]]:
        """The recorded computation from ``inputs`` to ``outputs`` as a jaxpr; its
        constvars stand for the known values (residuals) it reads."""
        var_of: dict[int, Var] = {}
        constvars: dict[int, Var] = {}
        consts: list[Any] = []
        eqns: list[JaxprEqn] = []
        for t in inputs:
            var_of[id(t)] = Var(t.aval)

        def atom(x):
            if self.is_unknown(x):
                return var_of[id(x)]
            lit = None if isinstance(x, Tracer) else literal_or_none(x)
            if lit is not None:
                return lit
            if id(x) not in constvars:
                constvars[id(x)] = Var(get_aval(x))
                consts.append(x)
            return constvars[id(x)]

        # Topological order by an iterative depth-first walk from the outputs.
        order: list[Recipe] = []
        visited: set[int] = set()
        stack = [(o.recipe, False) for o in outputs if self.is_unknown(o) and o.recipe]
        while stack:
            recipe, expanded = stack.pop()
            if expanded:
                order.append(recipe)
                continue
            if id(recipe) in visited:
                continue
            visited.add(id(recipe))
            stack.append((recipe, True))
            for x in recipe.inputs:
                if self.is_unknown(x) and x.recipe is not None and id(x.recipe) not in visited:
                    stack.append((x.recipe, False))
        for recipe in order:
            invars = [atom(x) for x in recipe.inputs]
            outvars = []
            for o in recipe.outputs:
                var_of[id(o)] = Var(o.aval)
                outvars.append(var_of[id(o)])
            eqns.append(JaxprEqn(invars, outvars, recipe.primitive, recipe.params,
                                 recipe.source_info))
        for t in outputs:
            if self.is_unknown(t) and t.recipe is None and id(t) not in var_of:
                raise ValueError("an output depends on an unknown input that was not given")
        outvars = [atom(o) for o in outputs]
        invars = [var_of[id(t)] for t in inputs]
        return Jaxpr(list(constvars.values()), invars, outvars, eqns), consts


# ---------------------------------------------------------------------------
# JAX's interface: partial values and tracing with some inputs unknown
# ---------------------------------------------------------------------------


class PartialVal(tuple):
    """A value known (``(None, value)``) or unknown but for its aval (``(aval, None)``)."""

    __slots__ = ()

    def __new__(cls, pair: tuple[ShapedArray | None, Any]) -> "PartialVal":
        return super().__new__(cls, pair)

    @classmethod
    def known(cls, value: Any) -> "PartialVal":
        return cls((None, value))

    @classmethod
    def unknown(cls, aval: ShapedArray) -> "PartialVal":
        return cls((aval, None))

    def is_known(self) -> bool:
        return self[0] is None

    def get_known(self) -> Any:
        """The value, or None when it is unknown."""
        return self[1] if self[0] is None else None

    def get_aval(self) -> ShapedArray:
        return get_aval(self[1]) if self[0] is None else self[0]


def trace_to_jaxpr_nounits(fun: Callable[..., Sequence[Any]], pvals: Sequence[PartialVal],
                           instantiate: bool | Sequence[bool] = False
                           ) -> tuple[Jaxpr, list[PartialVal], list[Any]]:
    """Run the flat ``fun`` with its known inputs and record what depends on the unknown
    ones: (the jaxpr of the unknown outputs -- those ``instantiate`` asks for as well --
    from the unknown inputs, every output's partial value, the jaxpr's constants).  Known
    computations run at once (under the current trace)."""
    call = getattr(fun, "call_wrapped", fun)
    trace = PartialEvalTrace(current_trace())
    with new_trace(trace):
        # (an unknown input of an extended dtype -- a key array -- is traced as its data)
        ins = [pv.get_known() if pv.is_known() else trace.new_unknown(physical_aval(pv[0]))
               for pv in pvals]
        outs = [physical.leaf_data(o) for o in call(*[
            x if pv.is_known() else from_physical(pv[0], x) for x, pv in zip(ins, pvals)])]
        if isinstance(instantiate, bool):
            instantiate = [instantiate] * len(outs)
        staged = [o for o, inst in zip(outs, instantiate) if inst or trace.is_unknown(o)]
        jaxpr, consts = trace.to_jaxpr([x for x in ins if trace.is_unknown(x)], staged)
    out_pvals = [PartialVal.unknown(get_aval(o)) if inst or trace.is_unknown(o)
                 else PartialVal.known(o) for o, inst in zip(outs, instantiate)]
    return jaxpr, out_pvals, consts
