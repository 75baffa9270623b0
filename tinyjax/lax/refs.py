"""Mutable array references (``jax.new_ref``, ``jax.Ref``) and how transforms thread them.

A :class:`Ref` is a box holding an array that code may read (``ref[idx]``) and overwrite
(``ref[idx] = v``, ``ref[...] += v``).  Functions stay pure from the point of view of every
transform: a reference is *state threaded through the program*, never a value of it.

* A reference keeps one value per trace that wrote it (``_vals``).  Reading it under a
  trace takes the value of the nearest enclosing trace that has one; writing it under a
  trace sets that trace's value.  So a reference created inside a transform lives and dies
  with it, and one created outside is only *shadowed* while a transform writes it.
* When a transform's trace ends (:data:`tinyjax.core.trace_exit_hooks`), the values it
  wrote to references it does not own are settled: a staged function (``jit``, a loop body,
  a branch) hands them to the :func:`collect` around its tracing, whose owner threads them
  as extra inputs and outputs (``jit`` reads every captured reference at each call and
  writes the results back; ``scan``/``while_loop`` carry them; ``cond`` passes them through
  its branches); under ``grad`` a non-differentiated value is written to the enclosing
  trace's copy, a differentiated one is an error, as is any write under ``vmap`` to a
  reference that is not one of the mapped arguments.
* :func:`bind` gives references explicit values under the current trace (the inputs of a
  re-traced function), :func:`placeholder` makes a fresh reference for an argument.
"""
from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import numpy as np


from tinyjax import core, dtypes
from tinyjax.core import ShapedArray, Trace, Tracer, current_trace, get_aval
from tinyjax.interpreters.ad import JVPTrace, JVPTracer, Zero
from tinyjax.interpreters.batching import BatchTrace
from tinyjax.interpreters.staging import StagingTrace

__all__ = ["AbstractRef", "Ref", "new_ref", "empty_ref", "free_ref", "freeze", "get", "set",
           "swap", "addupdate", "collect", "bind", "placeholder", "refs_exist", "Slice", "ds"]


class Slice:
    """``size`` elements from ``start`` (which may be traced) every ``stride``: an index
    of a reference along one axis (``jax.ds``)."""

    __slots__ = ("start", "size", "stride")

    def __init__(self, start: Any, size: int, stride: int = 1):
        self.start, self.size, self.stride = start, int(size), int(stride)

    def __repr__(self) -> str:
        return f"Slice(start={self.start!r}, size={self.size}, stride={self.stride})"


def ds(start: Any, size: Any = None, stride: int | None = None) -> "slice | Slice":
    """``ds(j)`` is ``:j``, ``ds(i, n)`` is ``i:i+n`` and ``ds(i, n, s)`` ``i:i+n*s:s``
    (as the builtin slice); a traced ``i`` gives a :class:`Slice`."""
    if size is None:
        return slice(None, start)
    stride = 1 if stride is None else int(stride)
    if isinstance(start, (int, np.integer)) and isinstance(size, (int, np.integer)):
        return slice(int(start), int(start) + int(size) * stride, stride)
    return Slice(start, size, stride)


def _dynamic(idx: Any) -> tuple | None:
    """``idx`` as (start per axis, size per axis) when it holds a traced :class:`Slice`
    (every other entry ``:``); None for an ordinary index."""
    items = idx if isinstance(idx, tuple) else (idx,)
    if not any(isinstance(i, Slice) for i in items):
        return None
    if any(not isinstance(i, Slice) and i != slice(None) for i in items) or \
            any(isinstance(i, Slice) and i.stride != 1 for i in items):
        raise NotImplementedError("indexing a reference with a traced jax.ds start is "
                                  "supported with unit strides and ':' on the other axes")
    return items


class AbstractRef:
    """The type of a reference: ``Ref{float32[3]}`` (``jax.typeof(ref)``)."""

    def __init__(self, inner_aval: ShapedArray):
        self.inner_aval = inner_aval

    shape = property(lambda self: self.inner_aval.shape)
    dtype = property(lambda self: self.inner_aval.dtype)
    ndim = property(lambda self: len(self.inner_aval.shape))
    size = property(lambda self: self.inner_aval.size)
    weak_type = property(lambda self: self.inner_aval.weak_type)

    def __eq__(self, other):
        return isinstance(other, AbstractRef) and other.inner_aval == self.inner_aval

    def __hash__(self):
        return hash(("Ref", self.inner_aval))

    def __str__(self) -> str:
        a = self.inner_aval
        return f"Ref{{{a.dtype.name}[{','.join(str(d) for d in a.shape)}]}}"

    __repr__ = __str__


# Whether any reference was ever made: until then tracing pays nothing for them.
_created = [False]
# trace -> {id(ref): ref} for the references a trace wrote or read from an outer trace
_writes: dict[Trace, dict[int, "Ref"]] = {}
_reads: dict[Trace, dict[int, "Ref"]] = {}
# (trace, id(ref)) given explicit values by bind(): the re-traced function returns them
_explicit: dict[tuple[Trace, int], bool] = {}
_collectors: list["_Collector"] = []


def refs_exist() -> bool:
    return _created[0]


class Ref:
    """A mutable array reference: ``ref[idx]`` reads, ``ref[idx] = v`` writes in place
    (``jax.Ref``).  Not an array: arithmetic on it is a TypeError; read it first."""

    __slots__ = ("_vals", "_aval", "_owner", "_origin", "_freed", "__weakref__")

    def __init__(self, value: Any, owner: Trace, origin: str = ""):
        _created[0] = True
        self._vals = {owner: value}
        self._aval = get_aval(value)
        self._owner = owner
        self._origin = origin
        self._freed = False

    # -- the type ------------------------------------------------------------------------
    aval = property(lambda self: AbstractRef(self._aval))
    shape = property(lambda self: self._aval.shape)
    dtype = property(lambda self: self._aval.dtype)
    ndim = property(lambda self: len(self._aval.shape))
    size = property(lambda self: self._aval.size)
    weak_type = property(lambda self: self._aval.weak_type)

    def __len__(self) -> int:
        if not self._aval.shape:
            raise TypeError("len() of unsized object")
        return self._aval.shape[0]

    @property
    def sharding(self):
        return getattr(self._read(), "sharding")

    @property
    def committed(self) -> bool:
        return bool(getattr(self._read(), "committed", False))

    @property
    def at(self):
        raise NotImplementedError("Ref.at: index the reference itself (ref[idx])")

    def unsafe_buffer_pointer(self) -> int:
        value = self._read()
        if isinstance(value, Tracer):
            raise TypeError("unsafe_buffer_pointer of a reference inside a transform")
        return value.unsafe_buffer_pointer()

    # -- reading and writing -------------------------------------------------------------
    def _read(self) -> Any:
        """The value under the current trace: that of the nearest trace that has one."""
        if self._freed:
            raise RuntimeError("the array reference was freed (jax.free_ref)")
        trace = current_trace()
        t = trace
        while t is not None:
            if t in self._vals:
                return self._vals[t]
            _reads.setdefault(t, {})[id(self)] = self
            t = t.parent
        raise core.UnexpectedTracerError(
            "a mutable array reference created inside a transformed function was used "
            "after that transformation ended (a reference cannot escape the function that "
            "created it)")

    def _write(self, value: Any) -> None:
        """Set the value under the current trace (``value`` has the reference's type)."""
        if self._freed:
            raise RuntimeError("the array reference was freed (jax.free_ref)")
        trace = current_trace()
        mine = trace is self._owner or (trace, id(self)) in _explicit
        if not mine:
            if isinstance(trace, BatchTrace):
                raise Exception(
                    "performing a set/swap operation with vmapped value on an unbatched "
                    f"array reference of type {self.aval}. Move the array reference to be "
                    "an argument to the vmapped function?")
            if isinstance(trace, JVPTrace) and isinstance(value, JVPTracer) and \
                    value._trace is trace:
                if not isinstance(value.tangent, Zero):
                    raise Exception(
                        "performing a set/swap operation with a differentiated value on a "
                        f"non-differentiated array reference of type {self.aval}. Move "
                        "the array reference to be an argument of the differentiated "
                        "function?")
                value = value.primal
            _writes.setdefault(trace, {})[id(self)] = self
        self._vals[trace] = value

    def _typed(self, value: Any, shape: tuple, what: str) -> Any:
        """``value`` as an operand of the reference's dtype (a weakly typed value
        converts), of exactly ``shape``."""
        from tinyjax.lax._helpers import as_operand
        from tinyjax.lax.elementwise import _convert_weak
        value = as_operand(value)
        aval = get_aval(value)
        dt = self._aval.dtype
        if aval.dtype != dt and not aval.weak_type:
            raise ValueError(f"Invalid dtype for `{what}`. Ref dtype: {dt}. "
                             f"Value dtype: {aval.dtype}. ")
        if tuple(aval.shape) != tuple(shape):
            raise ValueError(f"Invalid shape for `{what}`. Ref shape: {self.shape}. "
                             f"Expected shape: {tuple(shape)}. Value shape: "
                             f"{tuple(aval.shape)}. Transforms: (). ")
        # a weakly typed value converts; the result is weak only if the reference is
        weak = aval.weak_type and self._aval.weak_type
        if aval.dtype != dt or aval.weak_type != weak:
            value = _convert_weak(value, dt, weak)
        return value

    def _whole(self, idx: Any) -> bool:
        if idx is Ellipsis or idx is None:
            return True
        if isinstance(idx, tuple):
            if idx == ():
                return True
            if idx == (Ellipsis,):
                return True
        return False

    def _starts_sizes(self, items: tuple) -> tuple[list, list]:
        from tinyjax.lax._helpers import as_operand
        starts, sizes = [], []
        for d, n in enumerate(self.shape):
            i = items[d] if d < len(items) else slice(None)
            starts.append(as_operand(i.start) if isinstance(i, Slice) else 0)
            sizes.append(i.size if isinstance(i, Slice) else n)
        return starts, sizes

    def get(self, idx: Any = Ellipsis) -> Any:
        value = self._read()
        items = _dynamic(idx)
        if items is not None:
            from tinyjax.lax.slicing import dynamic_slice
            return dynamic_slice(value, *self._starts_sizes(items))
        return value if self._whole(idx) else value[idx]

    def swap(self, idx: Any, new: Any, _what: str = "swap") -> Any:
        old = self._read()
        items = _dynamic(idx)
        if items is not None:
            from tinyjax.lax.slicing import dynamic_slice, dynamic_update_slice
            starts, sizes = self._starts_sizes(items)
            cur = dynamic_slice(old, starts, sizes)
            self._write(dynamic_update_slice(old, self._typed(new, tuple(sizes), _what),
                                             starts))
            return cur
        if self._whole(idx):
            new = self._typed(new, self.shape, _what)
            self._write(new)
            return old
        cur = old[idx]
        new = self._typed(new, get_aval(cur).shape, _what)
        self._write(old.at[idx].set(new))
        return cur

    def set(self, idx: Any, new: Any) -> None:
        self.swap(idx, new)

    def addupdate(self, x: Any, idx: Any = ()) -> None:
        old = self._read()
        if self._whole(idx):
            self._write(old + self._typed(x, self.shape, "addupdate"))
            return
        x = self._typed(x, get_aval(old[idx]).shape, "addupdate")
        self._write(old.at[idx].add(x))

    def __getitem__(self, idx: Any) -> Any:
        return self.get(idx)

    def __setitem__(self, idx: Any, value: Any) -> None:
        self.swap(idx, value)

    def __repr__(self) -> str:
        value = self._read() if not self._freed else None
        if value is None:
            return f"Ref(<freed>, {self.aval})"
        if isinstance(value, Tracer):
            return f"Ref({value!r})"
        text = repr(value)
        head = text.split("(", 1)
        return "Ref(" + head[1] if len(head) == 2 else f"Ref({text})"

    __str__ = __repr__


def _source_line() -> str:
    """``file:line:column (function)`` of the user code making a reference."""
    frame = inspect.currentframe()
    here = __file__.rsplit("/", 2)[0]
    while frame is not None and frame.f_code.co_filename.startswith(here):
        frame = frame.f_back
    if frame is None:
        return "an unknown line"
    return f"{frame.f_code.co_filename}:{frame.f_lineno} ({frame.f_code.co_name})"


def new_ref(init_val: Any, *, memory_space: Any = None, kind: str | None = None) -> Ref:
    """A new mutable array reference holding (a copy of) ``init_val``."""
    from tinyjax.lax._helpers import as_operand
    value = as_operand(init_val)
    if isinstance(init_val, Ref):
        raise TypeError("new_ref of a reference: read it first (ref[...])")
    return Ref(value, current_trace(), _source_line())


def empty_ref(ty: Any, memory_space: Any = None) -> Ref:
    """A new reference of type ``ty`` (anything with ``shape`` and ``dtype``); its
    contents are unspecified until written (zeros here)."""
    from tinyjax.lax.shape import full
    aval = ty.inner_aval if isinstance(ty, AbstractRef) else ty
    return Ref(full(tuple(aval.shape), 0, dtypes.dtype(aval.dtype)), current_trace(),
               _source_line())


def free_ref(ref: Ref) -> None:
    """Release the reference's storage; using it afterwards is an error."""
    ref._freed = True


def freeze(ref: Ref) -> Any:
    """The reference's final value, as an array."""
    return ref._read()


def get(ref: Ref, idx: Any = None) -> Any:
    """``ref[idx]`` (the whole value when ``idx`` is None)."""
    return ref.get(Ellipsis if idx is None else idx)


def swap(ref: Ref, idx: Any, value: Any, _function_name: str = "ref_swap") -> Any:
    """Write ``value`` at ``ref[idx]`` and return what was there."""
    return ref.swap(Ellipsis if idx is None else idx, value)


def set(ref: Ref, idx: Any, value: Any) -> None:  # noqa: A001 (jax.ref.set)
    """``ref[idx] = value``."""
    ref.swap(Ellipsis if idx is None else idx, value)


def addupdate(ref: Ref, idx: Any, x: Any) -> None:
    """``ref[idx] += x``."""
    ref.addupdate(x, () if idx is None else idx)


# ---------------------------------------------------------------------------
# Threading references through transforms
# ---------------------------------------------------------------------------


class _Collector:
    """The references captured by the staged traces that end directly under ``trace``:
    ``written`` (in order) and ``read`` (outer references a staged function read)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.written: dict[int, Ref] = {}
        self.read: dict[int, Ref] = {}

    @property
    def refs(self) -> list[Ref]:
        """Every captured reference, written or read."""
        out = dict(self.written)
        for k, r in self.read.items():
            out.setdefault(k, r)
        return list(out.values())


@contextmanager
def collect() -> Iterator[_Collector]:
    """Collect the references that staged functions traced in this block capture (an
    enclosing block collecting for the same trace gets them too)."""
    c = _Collector(current_trace())
    _collectors.append(c)
    try:
        yield c
    finally:
        _collectors.remove(c)
        outer = _collectors[-1] if _collectors else None
        if outer is not None and outer.trace is c.trace:
            outer.written.update(c.written)
            outer.read.update(c.read)


@contextmanager
def bind(refs: Sequence[Ref], values: Sequence[Any]) -> Iterator[None]:
    """Give ``refs`` the values ``values`` under the current trace (the inputs of a
    re-traced function, which returns their final values itself)."""
    trace = current_trace()
    for r, v in zip(refs, values):
        _explicit[(trace, id(r))] = True
        r._vals[trace] = v
    try:
        yield
    finally:
        for r in refs:
            _explicit.pop((trace, id(r)), None)


def placeholder(value: Any, like: Ref | None = None) -> Ref:
    """A reference owned by the current trace standing for an argument reference."""
    r = Ref(value, current_trace(), like._origin if like is not None else "")
    if like is not None:
        r._aval = like._aval.update(shape=get_aval(value).shape)
    return r


def _on_trace_exit(trace: Trace, completed: bool) -> None:
    if not _created[0]:
        return
    written = _writes.pop(trace, None)
    read = _reads.pop(trace, None)
    pending = []
    for r in (written or {}).values():
        v = r._vals.pop(trace, None)
        if r._owner is trace or (trace, id(r)) in _explicit:
            continue
        pending.append((r, v))
    for r in list((read or {}).values()):
        if r._owner is trace:
            read.pop(id(r))
    for key in [k for k in _explicit if k[0] is trace]:
        _explicit.pop(key)
    if not completed or not (pending or read):
        return
    if isinstance(trace, StagingTrace):
        collector = _collectors[-1] if _collectors else None
        if collector is not None and collector.trace is trace.parent:
            for r, _ in pending:
                collector.written[id(r)] = r
            collector.read.update(read or {})
            return
        if pending:
            raise NotImplementedError(
                f"a mutable array reference of type {pending[0][0].aval} closed over by a "
                "staged function is written there; jit, scan, fori_loop, while_loop, cond "
                "and switch thread written references, other staged functions "
                "(make_jaxpr, custom_jvp/custom_vjp rules, checkpoint) do not: pass the "
                "value in and out instead")
        return
    parent = trace.parent
    for r, v in pending:
        if isinstance(v, Tracer) and v._trace is trace:
            raise Exception(
                f"a value of a transformation ({type(trace).__name__}) was written to the "
                f"array reference of type {r.aval} created outside it")
        r._vals[parent] = v
        if parent is not r._owner:
            _writes.setdefault(parent, {})[id(r)] = r


core.trace_exit_hooks.append(_on_trace_exit)
