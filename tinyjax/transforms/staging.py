"""Staging: trace a Python function into a jaxpr (``make_jaxpr``, ``eval_shape``).

:class:`StagingTrace` records every primitive applied to its tracers as a jaxpr
equation.  Values that are not its own tracers become inputs of the jaxpr: Python
scalars and 0-d arrays as inline literals, other arrays (and tracers of enclosing
transforms) as constant variables.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

from tinyjax import tree_util
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


def flatten_fun(fun: Callable, in_tree: tree_util.PyTreeDef):
    """Wrap a pytree function as a flat one; the output treedef lands in ``store``."""
    store: list[tree_util.PyTreeDef] = []

    def flat_fun(*flat_args):
        args, kwargs = tree_util.tree_unflatten(in_tree, flat_args)
        out = fun(*args, **kwargs)
        flat_out, out_tree = tree_util.tree_flatten(out)
        store.append(out_tree)
        return flat_out

    return flat_fun, store


def shaped_abstractify(x: Any) -> ShapedArray:
    """The aval with which an argument is traced (ShapeDtypeStruct and arrays alike)."""
    if isinstance(x, ShapeDtypeStruct):
        return ShapedArray(x.shape, x.dtype, x.weak_type)
    return get_aval(x)


def argument_origins(fun: Callable, args: tuple, kwargs: dict) -> list[str]:
    """Human names for each flat argument, e.g. ``argument 'x' of f``."""
    name = getattr(fun, "__name__", "the function")
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
        names = list(bound.arguments)
        values = list(bound.arguments.values())
    except (TypeError, ValueError):
        names = [f"#{i}" for i in range(len(args))] + list(kwargs)
        values = list(args) + list(kwargs.values())
    origins = []
    for arg_name, value in zip(names, values):
        n = len(tree_util.tree_leaves(value))
        label = f"argument '{arg_name}' of {name}"
        origins += [label] * n
    return origins


class ShapeDtypeStruct:
    """A shape, a dtype and a weak type flag: a stand-in for an array's type."""

    __slots__ = ("shape", "dtype", "weak_type", "sharding")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False,
                 sharding: Any = None):
        from tinyjax import dtypes
        self.shape = tuple(shape)
        self.dtype = dtypes.canonicalize_dtype(dtype)
        self.weak_type = weak_type
        self.sharding = sharding

    ndim = property(lambda self: len(self.shape))

    @property
    def size(self) -> int:
        out = 1
        for d in self.shape:
            out *= d
        return out

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def _split_static(fun, args, static_argnums):
    static_argnums = (static_argnums,) if isinstance(static_argnums, int) else \
        tuple(static_argnums)
    static_argnums = tuple(i % len(args) if i < 0 else i for i in static_argnums)
    dyn_args = tuple(a for i, a in enumerate(args) if i not in static_argnums)

    def fun_dyn(*dyn, **kwargs):
        it = iter(dyn)
        full = [args[i] if i in static_argnums else next(it) for i in range(len(args))]
        return fun(*full, **kwargs)

    return fun_dyn, dyn_args


def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               return_shape: bool = False) -> Callable[..., Any]:
    """Return a function that traces ``fun`` and gives its ClosedJaxpr (JAX's format
    when printed).  With ``return_shape`` it also returns the output's
    :class:`ShapeDtypeStruct` pytree."""

    def make_jaxpr_f(*args, **kwargs):
        f, dyn_args = _split_static(fun, args, static_argnums)
        flat_args, in_tree = tree_util.tree_flatten((dyn_args, kwargs))
        flat_fun, out_tree = flatten_fun(f, in_tree)
        origins = argument_origins(fun, args, kwargs)
        closed = trace_to_closed_jaxpr(flat_fun, [shaped_abstractify(x) for x in flat_args],
                                       origins)
        if return_shape:
            shapes = [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type)
                      for a in closed.out_avals]
            return closed, tree_util.tree_unflatten(out_tree[0], shapes)
        return closed

    make_jaxpr_f.__name__ = f"make_jaxpr({getattr(fun, '__name__', 'fun')})"
    return make_jaxpr_f


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """The output shapes and dtypes of ``fun(*args, **kwargs)`` without computing it."""
    flat_args, in_tree = tree_util.tree_flatten((args, kwargs))
    flat_fun, out_tree = flatten_fun(fun, in_tree)
    closed = trace_to_closed_jaxpr(flat_fun, [shaped_abstractify(x) for x in flat_args])
    shapes = [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type) for a in closed.out_avals]
    return tree_util.tree_unflatten(out_tree[0], shapes)
