"""The core of tinyjax: abstract values, primitives, and the trace machinery.

Every transform (eager evaluation, staging to a jaxpr, jvp, partial evaluation,
batching) is an interpreter: a :class:`Trace` that decides what ``Primitive.bind``
means while it is the *current* trace, and a :class:`Tracer` type for the values it
owns.  There is no trace stack: each trace remembers its ``parent`` (the trace that
was current when it was created) and evaluates the rules of a primitive under it.
A value that belongs to some other, still-valid trace is a constant for this one;
a tracer whose trace has ended has escaped its transform and is an error.

This module knows no individual primitive.
"""
from __future__ import annotations

import sys
import threading
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyjax import dtypes

# ---------------------------------------------------------------------------
# Abstract values
# ---------------------------------------------------------------------------


class ShapedArray:
    """The abstract value of an array: its shape, dtype and weak type flag."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = bool(weak_type)

    ndim = property(lambda self: len(self.shape))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def update(self, shape=None, dtype=None, weak_type=None) -> "ShapedArray":
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def strip_weak_type(self) -> "ShapedArray":
        return self.update(weak_type=False) if self.weak_type else self

    def str_short(self) -> str:
        """JAX's short form, e.g. ``f32[3,4]``."""
        return f"{dtypes.short_dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __eq__(self, other: object) -> bool:
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.str_short()}{weak})"


def get_aval(x: Any) -> ShapedArray:
    """The abstract value of an Array, a Tracer, a numpy value or a Python scalar."""
    aval = getattr(x, "aval", None)
    if aval is not None:
        return aval
    if isinstance(x, (np.ndarray, np.generic)):
        return ShapedArray(x.shape, dtypes.canonicalize_dtype(x.dtype))
    if isinstance(x, (bool, int, float, complex)):
        return ShapedArray((), dtypes.dtype(x), weak_type=not isinstance(x, bool))
    raise TypeError(f"Value {x!r} of type {type(x).__name__} is not a valid JAX type")


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class ConcretizationTypeError(TypeError):
    """A Python control-flow or conversion needed the value of an abstract tracer."""


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool()`` of an abstract tracer, typically a Python ``if`` under ``jit``."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """``int()``/``__index__`` of an abstract tracer."""


class UnexpectedTracerError(Exception):
    """A tracer was used after the transform that created it had finished."""


def _concretization_message(tracer: "Tracer", what: str) -> str:
    return (
        f"Attempted {what} on an abstract value: traced array with shape "
        f"{tracer.aval.str_short()}.\n"
        f"The problem arose with the value of {tracer._origin()}.\n"
        "Under jit (and the other staging transforms) values are abstract: their shape "
        "and dtype are known, their contents are not. Python control flow that "
        "depends on array values cannot be traced. Use lax.cond / lax.switch / "
        "lax.while_loop / lax.fori_loop for control flow, jnp.where for elementwise "
        "selection, or mark the argument static with static_argnums / static_argnames.")


# ---------------------------------------------------------------------------
# Primitives
# ---------------------------------------------------------------------------


class Primitive:
    """A primitive operation.  Its rules live in registries next to its definition:

    * ``impl(*values, **params)`` runs it eagerly on numpy values;
    * ``abstract_eval(*avals, **params)`` gives the output aval(s), raising a clear
      error for bad input;
    * the transform rules are kept in the transforms' own tables.
    """

    __slots__ = ("name", "multiple_results", "impl", "abstract_eval", "weak_type_rule",
                 "effectful", "__weakref__")

    def __init__(self, name: str, multiple_results: bool = False):
        self.name = name
        self.multiple_results = multiple_results
        self.impl: Callable[..., Any] | None = None
        self.abstract_eval: Callable[..., Any] | None = None
        # weak_type_rule(weak_flags, **params) -> bool (or list of bools); eager mode
        # uses it to tag results without running the full abstract evaluation.
        self.weak_type_rule: Callable[..., Any] = _never_weak
        self.effectful = False

    def bind(self, *args: Any, **params: Any) -> Any:
        return _state.trace.process_primitive(self, args, params)

    def def_impl(self, impl: Callable) -> Callable:
        self.impl = impl
        return impl

    def def_abstract_eval(self, rule: Callable) -> Callable:
        self.abstract_eval = rule
        return rule

    def __repr__(self) -> str:
        return self.name


def _never_weak(weak_flags, **params):
    return False


# ---------------------------------------------------------------------------
# Traces and tracers
# ---------------------------------------------------------------------------


class Trace:
    """An interpreter.  Subclasses implement :meth:`process_primitive`.

    ``parent`` is the trace that was current when this one was created; a trace
    evaluates the rules of primitives under its parent.
    """

    parent: "Trace | None" = None
    _valid = True

    def process_primitive(self, primitive: Primitive, args: Sequence[Any],
                          params: dict) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.process_primitive")

    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros):
        """Default: call the function; only JVP traces use the custom rule."""
        with set_current_trace(self):
            return fun(*args)

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros):
        """Default: call the function; only autodiff traces use the custom rule."""
        with set_current_trace(self):
            return fun(*args)

    def invalidate(self) -> None:
        self._valid = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Tracer:
    """A value being traced by some :class:`Trace`.

    The array methods and operators (``+``, ``.sum()``, indexing, …) are installed
    on this class and on :class:`tinyjax.Array` by ``tinyjax.numpy``.
    """

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError(f"{type(self).__name__}.aval")

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    weak_type = property(lambda self: self.aval.weak_type)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: self.aval.size)

    def to_concrete_value(self) -> Any:
        """The concrete value behind this tracer, or None if it is abstract."""
        return None

    def _origin(self) -> str:
        return f"a {type(self._trace).__name__} tracer ({self.aval.str_short()})"

    def _concrete(self, what: str, error=ConcretizationTypeError):
        value = self.to_concrete_value()
        if value is None:
            raise error(_concretization_message(self, what))
        return value

    def __bool__(self):
        return bool(self._concrete("the conversion to bool (e.g. a Python `if`)",
                                   TracerBoolConversionError))

    def __int__(self):
        return int(self._concrete("the conversion to int", TracerIntegerConversionError))

    def __index__(self):
        return self._concrete("the conversion to an index (__index__)",
                              TracerIntegerConversionError).__index__()

    def __float__(self):
        return float(self._concrete("the conversion to float"))

    def __complex__(self):
        return complex(self._concrete("the conversion to complex"))

    def __array__(self, dtype=None, copy=None):
        value = self._concrete("the conversion to a numpy array (np.asarray)")
        return np.asarray(value, dtype=dtype)

    def item(self, *args):
        return self._concrete("`.item()`").item(*args)

    def tolist(self):
        return self._concrete("`.tolist()`").tolist()

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        raise TypeError(f"unhashable type: {type(self).__name__} (tracers are arrays; "
                        "arrays are not hashable)")

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>with<{type(self._trace).__name__}>"

    def __format__(self, spec):
        return repr(self) if not spec else format(self._concrete("formatting"), spec)


class EvalTrace(Trace):
    """Eager evaluation: run each primitive's numpy implementation at once."""

    def __init__(self):
        # Signatures (primitive, input types, params) whose abstract evaluation has
        # passed: eager ops validate their input once per signature, so bad input
        # gets the primitive's own error instead of whatever numpy would do.
        self.checked: set = set()

    def process_primitive(self, primitive, args, params):
        from tinyjax.array import Array, wrap_eager
        values, weak = [], []
        for x in args:
            if type(x) is Array:
                if x._device is not None:  # committed to a device: run there
                    return self.process_placed(primitive, args, params)
                values.append(x._value)
                weak.append(x.weak_type)
            elif isinstance(x, Tracer):
                raise escaped_tracer_error(x, primitive)
            else:
                values.append(x)
                weak.append(type(x) in (int, float, complex))
        self.check(primitive, args, values, params)
        out = primitive.impl(*values, **params)
        if not args:  # a constructor (iota): its result goes to the default device
            from tinyjax.array import on_default_device
            return on_default_device(wrap_eager(out, False))
        weak_out = primitive.weak_type_rule(weak, **params)
        if primitive.multiple_results:
            if not isinstance(weak_out, (list, tuple)):
                weak_out = [weak_out] * len(out)
            return [wrap_eager(o, w) for o, w in zip(out, weak_out)]
        return wrap_eager(out, weak_out)

    def process_placed(self, primitive, args, params):
        """An operation on arrays committed to a device (see dispatch.py)."""
        from tinyjax.array import Array, placed
        from tinyjax.backends import get_backend
        from tinyjax.dispatch import computation_device, run_on_device
        for x in args:
            if isinstance(x, Tracer):
                raise escaped_tracer_error(x, primitive)
        device = computation_device(args, f"primitive `{primitive.name}`")
        if not get_backend(device).host:
            return run_on_device(primitive, args, params, device)
        host = [x._value if type(x) is Array else x for x in args]
        self.check(primitive, args, host, params)
        out = primitive.impl(*host, **params)
        weak = primitive.weak_type_rule([get_aval(x).weak_type for x in args], **params)
        if primitive.multiple_results:
            weak = weak if isinstance(weak, (list, tuple)) else [weak] * len(out)
            return [placed(np.asarray(o), device, w) for o, w in zip(out, weak)]
        return placed(np.asarray(out), device, weak)

    def check(self, primitive, args, values, params) -> None:
        try:
            key = (primitive, tuple((getattr(v, "shape", ()), getattr(v, "dtype", type(v)))
                                    for v in values), tuple(params.items()))
            if key in self.checked:
                return
        except TypeError:  # unhashable params: check every time
            key = None
        primitive.abstract_eval(*map(get_aval, args), **params)
        if key is not None:
            if len(self.checked) > 100_000:
                self.checked.clear()
            self.checked.add(key)


def escaped_tracer_error(tracer: Tracer, primitive: Primitive | None = None
                         ) -> UnexpectedTracerError:
    where = f" by primitive `{primitive.name}`" if primitive is not None else ""
    return UnexpectedTracerError(
        f"Encountered an unexpected tracer{where}: {tracer!r}.\n"
        "A function transformed by JAX had a side effect that let a traced value "
        "escape its transformation (for example it was stored in a global or a "
        "closure and used after jit/grad/vmap returned). Return traced values from "
        "the transformed function instead of leaking them.")


def check_foreign_tracer(x: Any, primitive: Primitive | None = None) -> None:
    """Raise if ``x`` is a tracer whose transform has already finished."""
    if isinstance(x, Tracer) and not x._trace._valid:
        raise escaped_tracer_error(x, primitive)


eval_trace: Trace = EvalTrace()


class _TraceState(threading.local):
    """The current trace, per thread (as in JAX): a thread tracing a function never sees
    another thread's transform, and every thread starts at the eager trace."""

    def __init__(self):
        self.trace: Trace = eval_trace


_state = _TraceState()


def current_trace() -> Trace:
    return _state.trace


def is_eager() -> bool:
    """True when no transform is running (ops execute eagerly)."""
    return _state.trace is eval_trace


@contextmanager
def set_current_trace(trace: Trace) -> Iterator[Trace]:
    prev = _state.trace
    _state.trace = trace
    try:
        yield trace
    finally:
        _state.trace = prev


@contextmanager
def new_trace(trace: Trace) -> Iterator[Trace]:
    """Make ``trace`` current for the duration of a transform, then retire it."""
    try:
        with set_current_trace(trace):
            yield trace
    finally:
        trace.invalidate()


@contextmanager
def ensure_compile_time_eval() -> Iterator[None]:
    """Run the enclosed operations eagerly even inside a transform."""
    with set_current_trace(eval_trace):
        yield


# ---------------------------------------------------------------------------
# Source information for staged equations
# ---------------------------------------------------------------------------

_PACKAGE_DIR = __file__.rsplit("/", 1)[0] + "/"


def warn_user(message: str, category: type = UserWarning) -> None:
    """``warnings.warn`` attributed to the innermost frame outside tinyjax (the user's line
    that led to it)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def user_source_info() -> str:
    """``file:line`` of the innermost frame outside tinyjax (where the user wrote it)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"
