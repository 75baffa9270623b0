"""Staging: trace a Python function into a jaxpr (what ``make_jaxpr``, ``eval_shape`` and
``jit`` build on).

:class:`StagingTrace` records every primitive applied to its tracers as a jaxpr
equation.  Values that are not its own tracers become inputs of the jaxpr: Python
scalars and 0-d arrays as inline literals, other arrays (and tracers of enclosing
transforms) as constant variables.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tinyjax.core import (ShapedArray, Trace, Tracer, check_foreign_tracer, get_aval,
                          new_trace, user_source_info)
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var, literal_or_none


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
        atoms = [self.to_atom(x) for x in args]
        out_avals = primitive.abstract_eval(*[a.aval for a in atoms], **params)
        source = user_source_info()
        if primitive.multiple_results:
            outvars = [Var(a) for a in out_avals]
        else:
            outvars = [Var(out_avals)]
        self.eqns.append(JaxprEqn(atoms, outvars, primitive, params, source))
        for v in outvars:
            self.origins[v] = f"the output of `{primitive.name}` at {source}"
        tracers = [StagingTracer(self, v.aval, v) for v in outvars]
        return tracers if primitive.multiple_results else tracers[0]

    def to_closed_jaxpr(self, outs: Sequence[Any]) -> ClosedJaxpr:
        outvars = [self.to_atom(x) for x in outs]
        # to_atom may have added constants; constvars are listed in creation order.
        constvars = list(self.constvars.values())
        return ClosedJaxpr(Jaxpr(constvars, self.invars, outvars, self.eqns), self.consts)


def trace_to_closed_jaxpr(fun: Callable[..., Sequence[Any]], in_avals: Sequence[ShapedArray],
                          origins: Sequence[str] = ()) -> ClosedJaxpr:
    """Trace a flat function (list of arrays in, list of arrays out) to a ClosedJaxpr."""
    from tinyjax.core import current_trace
    trace = StagingTrace(current_trace())
    with new_trace(trace):
        origins = list(origins) + [""] * (len(in_avals) - len(origins))
        args = [trace.new_arg(a, o) for a, o in zip(in_avals, origins)]
        outs = fun(*args)
        return trace.to_closed_jaxpr(list(outs))
