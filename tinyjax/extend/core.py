"""``jax.extend.core``: the pieces of the core that libraries build new primitives and
jaxpr passes from -- tinyjax's own classes, plus a :class:`Primitive` whose rules follow
JAX's conventions.

A primitive made here is a tinyjax primitive like any other: its jvp, transpose and
batching rules go into tinyjax's tables (``jax.interpreters.ad.primitive_jvps``, ...), its
abstract evaluation is used when it is staged, and ``mlir.register_lowering(p,
mlir.lower_fun(fn))`` makes it compile under ``jit`` (:mod:`tinyjax.compat.mlir`).
"""
from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyjax import core
from tinyjax.core import ShapedArray, Trace, current_trace, is_eager, set_current_trace
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var, eval_jaxpr, sub_jaxprs
from tinyjax.lax._helpers import as_operand

__all__ = ["ClosedJaxpr", "DropVar", "Effect", "Effects", "Jaxpr", "JaxprEqn", "Literal",
           "Primitive", "Var", "find_top_trace", "get_opaque_trace_state", "jaxpr_as_fun",
           "jaxprs_in_params", "mapped_aval", "no_effects", "set_current_trace",
           "subjaxprs", "take_current_trace", "unmapped_aval"]


class _AnyPrimitive(type):
    """In JAX ``jax.extend.core.Primitive`` is the class of every primitive: here every
    primitive (tinyjax's own ones too) is an instance of it (libraries type-annotate
    jaxpr passes with it)."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, core.Primitive)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, core.Primitive)


class Primitive(core.Primitive, metaclass=_AnyPrimitive):
    """A primitive defined outside tinyjax, with JAX's conventions for its rules.

    * ``def_impl(impl)``: ``impl(*arrays, **params)`` computes it eagerly from arrays
      (it may call ``jax.numpy``; tinyjax's own primitives take numpy values instead --
      the adapter in ``self.impl`` gives those callers that convention, and passes
      arrays and tracers through to ``impl`` as JAX's ``Primitive.impl`` does);
    * ``def_abstract_eval(rule)``: ``rule(*avals, **params)`` -> aval (or a list of avals
      when ``multiple_results``);
    * ``def_effectful_abstract_eval(rule)``: the same, returning ``(avals, effects)``.
    """

    __slots__ = ("array_impl",)

    def __init__(self, name: str):
        super().__init__(name)
        self.array_impl: Callable[..., Any] | None = None

    def def_impl(self, impl: Callable) -> Callable:
        self.array_impl = impl
        self.impl = self._numpy_impl
        return impl

    def def_abstract_eval(self, rule: Callable) -> Callable:
        self.abstract_eval = rule
        return rule

    def def_effectful_abstract_eval(self, rule: Callable) -> Callable:
        def abstract_eval(*avals, **params):
            out, effects = rule(*avals, **params)
            return out
        self.abstract_eval = abstract_eval
        self.effectful = True
        return rule

    def bind(self, *args: Any, **params: Any) -> Any:
        if is_eager() and self.array_impl is not None:
            return self.array_impl(*args, **params)  # as JAX's eval trace: the impl itself
        return super().bind(*args, **params)

    def _numpy_impl(self, *values: Any, **params: Any) -> Any:
        out = self.array_impl(*values, **params)
        if not all(isinstance(v, (np.ndarray, np.generic)) for v in values):
            return out  # a library calling ``impl`` itself on arrays or tracers (as JAX's)
        if self.multiple_results:
            return [np.asarray(o) for o in out]
        return np.asarray(out)


class DropVar(Var):
    """An equation output that nothing reads (printed ``_``)."""

    def __repr__(self) -> str:
        return "_"


class Effect:
    """The base of side-effect types recorded with an effectful primitive."""


Effects = frozenset
no_effects: frozenset = frozenset()


def mapped_aval(size: int, axis: int | None, aval: ShapedArray) -> ShapedArray:
    """``aval`` without its mapped axis ``axis`` (of length ``size``); None: unmapped."""
    if axis is None:
        return aval
    if aval.shape[axis] != size:
        raise ValueError(f"mapped_aval: axis {axis} of {aval.str_short()} has size "
                         f"{aval.shape[axis]}, not {size}")
    return aval.update(shape=aval.shape[:axis] + aval.shape[axis + 1:])


def unmapped_aval(size: int, axis: int | None, aval: ShapedArray,
                  explicit_mesh_axis: Any = None) -> ShapedArray:
    """``aval`` with a new axis of length ``size`` inserted at ``axis``; None: as it is."""
    if axis is None:
        return aval
    shape = list(aval.shape)
    shape.insert(axis if axis >= 0 else len(shape) + axis + 1, size)
    return aval.update(shape=tuple(shape))


class OpaqueTraceState:
    """Which trace is current, comparable with ``==`` and holding no reference to it."""

    __slots__ = ("_trace_ref",)

    def __init__(self, trace: Trace):
        self._trace_ref = weakref.ref(trace)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OpaqueTraceState) and self._trace_ref == other._trace_ref

    def __hash__(self) -> int:
        return hash(self._trace_ref)

    def __repr__(self) -> str:
        return f"OpaqueTraceState({self._trace_ref()!r})"


def get_opaque_trace_state(convention: Any = None) -> OpaqueTraceState:
    """The current trace, as an opaque value: equal to another such value exactly when
    both were taken under the same trace (Flax checks that a module is used where it was
    made)."""
    return OpaqueTraceState(current_trace())


@contextmanager
def take_current_trace() -> Iterator[Trace]:
    """Yield the current trace, with eager evaluation current inside the block (a trace
    written outside tinyjax runs its parent's rules this way)."""
    prev = current_trace()
    with set_current_trace(core.eval_trace):
        yield prev


def find_top_trace(xs: Any) -> Trace:
    """The trace that primitives applied now would be processed by (the current one)."""
    return current_trace()


def jaxpr_as_fun(closed_jaxpr: ClosedJaxpr) -> Callable[..., list]:
    """A function that evaluates ``closed_jaxpr`` on its arguments (under the current
    trace), returning the list of its outputs."""
    def fun(*args: Any) -> list:
        return eval_jaxpr(closed_jaxpr.jaxpr, closed_jaxpr.consts, *map(as_operand, args))
    return fun


def jaxprs_in_params(params: dict) -> list[Jaxpr]:
    """The jaxprs (open) among an equation's parameters."""
    return list(sub_jaxprs(params))


def subjaxprs(jaxpr: Jaxpr) -> Sequence[Jaxpr]:
    """The jaxprs nested in ``jaxpr``'s equations (one level)."""
    return [j for eqn in jaxpr.eqns for j in sub_jaxprs(eqn.params)]
