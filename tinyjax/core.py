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
import weakref
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.errors import (ConcretizationTypeError, ShardingTypeError,  # noqa: F401
                            TracerArrayConversionError,
                            TracerBoolConversionError, TracerIntegerConversionError,
                            UnexpectedTracerError)

# ---------------------------------------------------------------------------
# Abstract values
# ---------------------------------------------------------------------------


class AbstractValue:
    """The base of abstract values (what a traced value is known to be)."""

    __slots__ = ()


class ManualAxisType:
    """The manual mesh axes a value inside ``shard_map`` varies over (``varying``: it may
    differ from device to device along them), as JAX's ``aval.manual_axis_type``
    (``jax.sharding.ManualAxisType``); ``unreduced`` / ``reduced`` name axes over which
    a value is a partial sum still to be reduced / already reduced (tinyjax's programs
    make none of either)."""

    __slots__ = ("varying", "unreduced", "reduced")

    def __init__(self, *, varying=frozenset(), unreduced=frozenset(), reduced=frozenset()):
        varying, unreduced, reduced = map(frozenset, (varying, unreduced, reduced))
        for name, other in (("unreduced", unreduced), ("reduced", reduced)):
            if varying & other:
                raise ValueError(f"varying and {name} cannot have common mesh axes. Got "
                                 f"varying={varying} and {name}={other}")
        self.varying, self.unreduced, self.reduced = varying, unreduced, reduced

    def update(self, **changes: Any) -> "ManualAxisType":
        """A copy with the given fields (``varying``, ``unreduced``, ``reduced``) replaced."""
        fields = dict(varying=self.varying, unreduced=self.unreduced, reduced=self.reduced)
        fields.update(changes)
        return ManualAxisType(**fields)

    def to_ct_mat(self) -> "ManualAxisType":
        """The type of a cotangent: unreduced and reduced swapped."""
        return self.update(unreduced=self.reduced, reduced=self.unreduced)

    @property
    def empty(self) -> bool:
        return not (self.varying or self.unreduced or self.reduced)

    def __eq__(self, other: object) -> bool:
        return (type(other) is ManualAxisType and self.varying == other.varying
                and self.unreduced == other.unreduced and self.reduced == other.reduced)

    def __hash__(self) -> int:
        return hash((self.varying, self.unreduced, self.reduced))

    def __repr__(self) -> str:
        return (f"ManualAxisType(varying={self.varying}, unreduced={self.unreduced}, "
                f"reduced={self.reduced})")


class ShapedArray(AbstractValue):
    """The abstract value of an array: its shape, dtype and weak type flag.

    Inside ``shard_map`` an aval also names the mesh axes the value varies over (``vma``,
    in the mesh's order; empty elsewhere), and an array laid out over the Explicit axes of
    a mesh the axes each dimension is split over (``spec``: per dimension, a tuple of axis
    names; empty when no dimension is split) with that mesh's shape (``mesh``, an
    AbstractMesh, or None: the current one).  Both are shown in the type
    (``float32[3]{V:i}``, ``float32[8@X,4]``) and are no part of the type's identity: two
    avals that differ only in them are equal.

    ``sharding`` is JAX's view of ``spec`` and ``mesh``: a NamedSharding over the abstract
    mesh with a spec of one entry per dimension (made by the function that
    :func:`register_aval_sharding` installs); given to the constructor, it sets them."""

    __slots__ = ("shape", "dtype", "weak_type", "vma_order", "spec", "mesh")

    def __init__(self, shape: Sequence[int], dtype: Any, weak_type: bool = False,
                 vma: Sequence[str] = (), spec: Sequence[tuple] = (), *,
                 sharding: Any = None, mesh: Any = None):
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype if dtypes.is_extended(dtype) else np.dtype(dtype)
        self.weak_type = bool(weak_type)
        self.vma_order = tuple(vma)
        if sharding is not None and _aval_sharding is not None:
            spec, mesh = _aval_sharding[1](sharding, len(self.shape))
        spec = tuple(tuple(axes) for axes in spec)
        self.spec = spec if len(spec) == len(self.shape) and any(spec) else ()
        self.mesh = mesh

    ndim = property(lambda self: len(self.shape))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def vma(self) -> frozenset:
        """The manual mesh axes the value varies over."""
        return frozenset(self.vma_order)

    @property
    def manual_axis_type(self) -> ManualAxisType:
        return ManualAxisType(varying=self.vma_order)

    mat = manual_axis_type

    @property
    def has_explicit_layout(self) -> bool:
        """Whether the type says how the value is laid out: it is split over Explicit mesh
        axes, or lies on a mesh that has some (replicated over them)."""
        return bool(self.spec) or bool(getattr(self.mesh, "explicit_axes", ()))

    @property
    def sharding(self) -> Any:
        """The value's layout as its type says it (JAX's ``aval.sharding``): a
        NamedSharding over an abstract mesh, one spec entry per dimension."""
        return None if _aval_sharding is None else _aval_sharding[0](self)

    def update(self, shape=None, dtype=None, weak_type=None, vma=None,
               spec=None, sharding=None) -> "ShapedArray":
        """A copy with the given fields changed; a new shape drops the layout."""
        same_shape = shape is None or tuple(shape) == self.shape
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type,
                           self.vma_order if vma is None else vma,
                           spec if spec is not None else self.spec if same_shape else (),
                           sharding=sharding, mesh=self.mesh)

    def strip_weak_type(self) -> "ShapedArray":
        return self.update(weak_type=False) if self.weak_type else self

    def to_tangent_aval(self) -> "ShapedArray":
        """The type of this value's tangents and cotangents (float0 unless inexact)."""
        return ShapedArray(self.shape, dtypes.tangent_dtype(self.dtype), self.weak_type)

    to_ct_aval = to_tangent_aval

    def _vma_str(self) -> str:
        if not self.vma_order:
            return ""
        names = ",".join(map(str, self.vma_order))
        return f"{{V:{names if len(self.vma_order) == 1 else f'({names})'}}}"

    def _dims_str(self) -> str:
        if not self.spec:
            return ",".join(map(str, self.shape))
        return ",".join(str(n) if not axes else f"{n}@{axes[0]}" if len(axes) == 1 else
                        f"{n}@({','.join(axes)})" for n, axes in zip(self.shape, self.spec))

    def str_short(self) -> str:
        """JAX's short form, e.g. ``f32[3,4]``."""
        name = self.dtype.name if dtypes.is_extended(self.dtype) else \
            dtypes.short_dtype_name(self.dtype)
        return f"{name}[{self._dims_str()}]{self._vma_str()}"

    def __eq__(self, other: object) -> bool:
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def __str__(self) -> str:
        """JAX's long form, e.g. ``float32[3,4]``; ``~`` marks a weak type."""
        weak = "~" if self.weak_type else ""
        return f"{weak}{self.dtype.name}[{self._dims_str()}]{self._vma_str()}"

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.dtype.name}[{self._dims_str()}]{self._vma_str()}{weak})"


# ``(to_sharding(aval) -> NamedSharding, from_sharding(sharding, ndim) -> (spec, mesh))``:
# how an aval's layout reads as JAX's ``aval.sharding`` and back (``tinyjax.sharding``
# registers them: the classes live above the core).
_aval_sharding: tuple[Callable, Callable] | None = None


def register_aval_sharding(to_sharding: Callable, from_sharding: Callable) -> None:
    global _aval_sharding
    _aval_sharding = (to_sharding, from_sharding)


# How the layouts an aval's type names (``spec``, Explicit mesh axes) of a staged
# equation's results follow from its operands' (registered by :mod:`tinyjax.spmd.types`):
# ``rule(primitive, params, in_avals, out_avals)`` returns the out avals with theirs, or
# raises JAX's ShardingTypeError where the layout is ambiguous or illegal.
_spec_rule: Callable[..., list] | None = None


def register_spec_rule(rule: Callable[..., list]) -> None:
    global _spec_rule
    _spec_rule = rule


def with_spec(primitive: "Primitive", params: dict, in_avals: Sequence[ShapedArray],
              out_avals: list) -> list:
    """``out_avals`` with the layouts their types name (unchanged where no operand's type
    names one and the primitive does not set one)."""
    if _spec_rule is None:
        return out_avals
    return _spec_rule(primitive, params, in_avals, out_avals)


# How the varying manual axes of a staged equation's results follow from its operands'
# (``shard_map``'s rule, registered by :mod:`tinyjax.spmd.shard_map`): called as
# ``rule(primitive, params, in_avals, out_avals)`` and returning the out avals with their
# ``vma``; the primitives in ``vma_sources`` get it even from operands that vary over none.
# ``cast(primitive, params, args)`` gives the operands to stage the equation on: those that
# vary over fewer axes than the others marked varying over the rest (JAX's automatic
# ``pvary``).
_vma_rule: Callable[..., list] | None = None
_vma_cast: Callable[..., list] | None = None
vma_sources: set = set()


def register_vma_rule(rule: Callable[..., list], cast: Callable[..., list]) -> None:
    global _vma_rule, _vma_cast
    _vma_rule, _vma_cast = rule, cast


def varying_operands(primitive: "Primitive", params: dict, args: Sequence[Any]) -> list:
    """``args``, those varying over fewer manual mesh axes than the others (inside
    ``shard_map``) marked varying over all of them."""
    if _vma_cast is None or len(args) < 2:
        return list(args)
    orders = [getattr(getattr(a, "aval", None), "vma_order", ()) for a in args]
    if all(o == orders[0] for o in orders):
        return list(args)
    return _vma_cast(primitive, params, args)


def with_vma(primitive: "Primitive", params: dict, in_avals: Sequence[ShapedArray],
             out_avals: list) -> list:
    """``out_avals`` with the mesh axes they vary over inside ``shard_map`` (unchanged
    outside one: no operand varies)."""
    if _vma_rule is None or not (primitive in vma_sources
                                 or any(getattr(a, "vma_order", ()) for a in in_avals)):
        return out_avals
    return _vma_rule(primitive, params, in_avals, out_avals)


# JAX's ``jax.core`` also names the type of a jaxpr's atoms and the jaxpr evaluator, which
# tinyjax defines above the core (:mod:`tinyjax.jaxpr`); that module registers them here.
_jaxpr_names: dict[str, Any] = {}


def register_jaxpr_names(**names: Any) -> None:
    """Make ``names`` (``Atom``, ``eval_jaxpr``) attributes of this module, as in JAX."""
    _jaxpr_names.update(names)


def __getattr__(name: str) -> Any:
    try:
        return _jaxpr_names[name]
    except KeyError:
        raise AttributeError(f"module 'tinyjax.core' has no attribute {name!r}") from None


def physical_aval(aval: ShapedArray) -> ShapedArray:
    """The type of the data of a value of type ``aval``: for an extended dtype that has
    data (a key array's, ``dtypes.ExtendedDType``) its ``physical_dtype`` with the element
    axes appended (``key<fry>[3]`` is ``uint32[3,2]``); ``aval`` itself otherwise."""
    dt = aval.dtype
    if not dtypes.is_extended(dt) or getattr(dt, "physical_dtype", None) is None:
        return aval
    return ShapedArray(aval.shape + tuple(dt.element_shape), dt.physical_dtype)


def from_physical(aval: ShapedArray, data: Any) -> Any:
    """The value of type ``aval`` whose data is ``data`` (of type ``physical_aval(aval)``):
    the array of the extended dtype around it (a key array), or ``data`` itself."""
    return data if physical_aval(aval) is aval else aval.dtype.wrap(data)


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
# Errors (the classes are tinyjax.errors')
# ---------------------------------------------------------------------------


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


def _conversion_message(tracer: "Tracer", fun: str) -> str:
    return (f"Abstract tracer value encountered where concrete value is expected: traced "
            f"array with shape {tracer.aval.strip_weak_type()}.\nThe problem arose with the "
            f"`{fun}` function. If trying to convert the data type of a value, try using `x.astype({fun})` or "
            f"`jnp.array(x, {fun})` instead.")


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
        _primitives.add(self)

    def bind(self, *args: Any, **params: Any) -> Any:
        return _state.trace.process_primitive(self, args, params)

    def def_impl(self, impl: Callable) -> Callable:
        self.impl = impl
        return impl

    def def_abstract_eval(self, rule: Callable) -> Callable:
        self.abstract_eval = rule
        return rule

    def get_bind_params(self, params: dict) -> dict:
        """The keyword arguments that re-bind an equation of this primitive with
        ``params`` (JAX's interpreters call ``bind(*args, **get_bind_params(params))``):
        tinyjax's primitives take their equations' parameters as they are."""
        return dict(params)

    def __repr__(self) -> str:
        return self.name


def _never_weak(weak_flags, **params):
    return False


# every primitive alive, so that a serialized program can name its primitives
_primitives: "weakref.WeakSet[Primitive]" = weakref.WeakSet()


def primitives_named(name: str) -> list[Primitive]:
    """The live primitives called ``name`` (one, unless two share a name; none if no
    module defining it has been imported)."""
    return [p for p in list(_primitives) if p.name == name]


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

    # A call of a function with custom derivative rules.  ``fun(*args)``,
    # ``jvp(*primals, *tangents) -> [*primal_outs, *tangent_outs]``,
    # ``fwd(perturbed, *args) -> (residuals, outs)`` and ``bwd(residuals, cts) -> cts per
    # arg`` take every operand; the first ``num_consts`` are values the function closes over
    # (made explicit when it was staged), which the rules ignore and must not be
    # differentiated.  ``perturbed`` holds one bool per operand: whether its tangent is
    # nonzero (what a ``symbolic_zeros`` fwd rule is told).  Rules given
    # ``symbolic_zeros`` take and may return ``SymbolicZero`` (co)tangents.
    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros,
                                num_consts=0):
        """Default: call the function; only JVP traces use the custom rule."""
        with set_current_trace(self):
            return fun(*args)

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros, num_consts=0):
        """Default: call the function; only autodiff traces use the custom rule."""
        with set_current_trace(self):
            return fun(*args)

    @property
    def main(self) -> "Trace":
        """What identifies this transformation (JAX's older ``Trace.main``, which libraries
        compare to tell a tracer of this trace from others): the trace itself."""
        return self

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
        value = self.to_concrete_value()
        if value is None:
            raise ConcretizationTypeError(_conversion_message(self, "int"))
        return int(value)

    def __index__(self):
        return self._concrete("the conversion to an index (__index__)",
                              TracerIntegerConversionError).__index__()

    # As JAX: float() and complex() of a tracer raise even when its value is known
    # (under grad), while bool(), int() and index() use a known value.
    def __float__(self):
        raise ConcretizationTypeError(_conversion_message(self, "float"))

    def __complex__(self):
        raise ConcretizationTypeError(_conversion_message(self, "complex"))

    def __array__(self, dtype=None, copy=None):
        value = self._concrete("the conversion to a numpy array (np.asarray)",
                               TracerArrayConversionError)
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
        return f"{type(self).__name__}({self.aval})"

    def __format__(self, spec):
        return repr(self) if not spec else format(self._concrete("formatting"), spec)


class EvalTrace(Trace):
    """Eager evaluation: each primitive is applied at once by the function that
    :func:`register_apply_primitive` installs -- :func:`tinyjax.dispatch.apply_primitive`,
    which runs the primitive's numpy implementation on the host, or a compiled
    one-equation program on a device backend."""

    def process_primitive(self, primitive, args, params):
        return _apply_primitive(primitive, args, params)


def _undispatched(primitive, args, params):
    raise RuntimeError(f"eager `{primitive.name}` before tinyjax.dispatch registered eager "
                       "evaluation: import tinyjax first")


_apply_primitive: Callable[[Primitive, Sequence[Any], dict], Any] = _undispatched


def register_apply_primitive(apply: Callable[[Primitive, Sequence[Any], dict], Any]) -> None:
    """Make ``apply(primitive, args, params)`` evaluate primitives eagerly (called by
    :mod:`tinyjax.dispatch` when it is imported)."""
    global _apply_primitive
    _apply_primitive = apply


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


# Called with (trace, completed) when a transform's trace ends, before it is retired
# (tinyjax.ref settles the array references the transform wrote).
trace_exit_hooks: list[Callable[[Trace, bool], None]] = []


@contextmanager
def new_trace(trace: Trace) -> Iterator[Trace]:
    """Make ``trace`` current for the duration of a transform, then retire it."""
    completed = False
    try:
        with set_current_trace(trace):
            yield trace
        completed = True
    finally:
        try:
            for hook in trace_exit_hooks:
                hook(trace, completed)
        finally:
            trace.invalidate()


# Inside ensure_compile_time_eval, staging traces evaluate at once a primitive whose
# operands are all concrete (JAX's eager constant folding); tracers are still traced.
_eager_constant_folding = [False]


def eager_constant_folding() -> bool:
    """Whether staging traces evaluate operations on concrete operands at once."""
    return _eager_constant_folding[0]


@contextmanager
def ensure_compile_time_eval() -> Iterator[None]:
    """Inside ``jit`` (and the other staging transforms), compute operations whose
    operands are all concrete values at once, so that their results are concrete (as
    JAX's ``ensure_compile_time_eval``); operations on traced values are staged as usual."""
    prev = _eager_constant_folding[0]
    _eager_constant_folding[0] = True
    try:
        yield
    finally:
        _eager_constant_folding[0] = prev


# ---------------------------------------------------------------------------
# Source information for staged equations
# ---------------------------------------------------------------------------

_PACKAGE_DIR = __file__.rsplit("/", 1)[0] + "/"
# files whose frames are not the user's: tinyjax's own, and those registered by libraries
# built on it (JAX's source_info_util.register_exclusion)
_excluded_paths: tuple[str, ...] = (_PACKAGE_DIR,)


def is_excluded_source(filename: str) -> bool:
    """Whether code in ``filename`` is tinyjax's or a registered library's, not the user's."""
    return filename.startswith(_excluded_paths)


def register_source_exclusion(path: str) -> None:
    """Equations made from code under ``path`` take their source line from the first
    frame outside it (a library built on tinyjax registers its own directory)."""
    global _excluded_paths
    if path not in _excluded_paths:
        _excluded_paths = _excluded_paths + (path,)


class SourceInfo(str):
    """Where the user's code made an equation: ``file:line`` (it is that string), with the
    column of the call and the function's qualified name on demand."""

    __slots__ = ("_code", "_lasti", "name_stack")

    def __new__(cls, text: str, code: Any = None, lasti: int = -1,
                name_stack: tuple[str, ...] = ()) -> "SourceInfo":
        out = super().__new__(cls, text)
        out._code, out._lasti, out.name_stack = code, lasti, name_stack
        return out

    @property
    def column(self) -> int | None:
        if self._code is None or self._lasti < 0:
            return None
        for i, pos in enumerate(self._code.co_positions()):
            if i == self._lasti // 2:
                return pos[2]
        return None

    @property
    def function(self) -> str:
        return getattr(self._code, "co_qualname", "") if self._code is not None else ""


# [the SourceInfo that equations made now take, or None: the user's frame]
source_override: list = [None]
# the scopes (jax.named_scope) open now, outermost first: recorded with each equation
name_stack: list[str] = []


@contextmanager
def source_info_of(info: str | None) -> Iterator[None]:
    """Equations made inside the block take ``info`` as their source (re-tracing the
    equations of an existing jaxpr keeps the user's line)."""
    prev = source_override[0]
    source_override[0] = info or prev
    try:
        yield
    finally:
        source_override[0] = prev


def user_source_info() -> SourceInfo:
    """``file:line`` of the innermost frame outside tinyjax (where the user wrote it)."""
    if source_override[0] is not None:
        return source_override[0]
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if not is_excluded_source(code.co_filename):
            return SourceInfo(f"{code.co_filename}:{frame.f_lineno}", code, frame.f_lasti,
                              tuple(name_stack))
        frame = frame.f_back
    return SourceInfo("<unknown>")
