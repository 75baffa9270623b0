"""The program IR: what a compiled ``jit`` call runs -- buffers planned ahead and a tree of
steps over them (kernel launches, copies, loops, branches and foreign calls).

The compiler (:mod:`tinyjax.compiler.program`) builds a :class:`Program` from a jaxpr; a
backend runs it: the C backend renders the whole tree as one C function (one native call
per ``jit`` call), the interpreter and CUDA walk it from the host
(:mod:`tinyjax.compiler.walk`).  Every backend runs the same steps in the same order.

Memory.  A :class:`Buffer` is a region of one dtype: a *constant* (held by the program), an
*input* (the caller's argument), an *output* (allocated per call) or *scratch* (at a byte
``offset`` in the call's arena: one block per running call, so concurrent calls never share
intermediates).  Scratch buffers whose lifetimes do not overlap share arena bytes.

Addresses.  A :class:`Ref` names where a value lives: a base -- a :class:`Buffer`, or a
:class:`Pointer` that a loop moves between buffers -- plus an element offset and, inside
loops, a stride per enclosing loop's counter (a scan's ``xs[i]`` and ``ys[i]``).

Steps (each a dataclass; a backend dispatches on the class):

* :class:`Launch`  one kernel over its slots' refs (outputs first);
* :class:`Copy`    ``dst <- src``, optionally reading ``src`` through a strided view;
* :class:`Loop`    a scan (``length`` iterations, ``reverse``) or a while loop (``cond``
  steps writing the boolean ``pred``, run before every iteration); loop-carried values
  live in two buffers each (:class:`Carry`): iteration ``it`` reads the carry through
  ``cur`` and writes the next one through ``nxt``, which alternates between the two, so a
  carry is handed on by swapping pointers, never copied; after the loop its value is in
  ``bufs[0]`` (a final copy only where a while loop ended on the other one);
* :class:`Switch`  ``cond``/``switch``: the index (clamped) picks one branch's steps;
* :class:`Call`    a foreign routine (a library call, a host callback, a collective):
  ``run(ins, outs)`` on the host, and on the CPU an optional native routine
  ``int fn(void **bufs, const void *params, const void *fns)`` (inputs first) called
  through a pointer from compiled code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from tinyjax.compiler.kernel import Kernel

__all__ = ["CONST", "INPUT", "OUTPUT", "SCRATCH", "Buffer", "Pointer", "Ref", "Launch",
           "Copy", "Carry", "Loop", "Switch", "Call", "Step", "Program", "walk_steps",
           "ARENA_ALIGN"]

CONST, INPUT, OUTPUT, SCRATCH = "const", "input", "output", "scratch"
ARENA_ALIGN = 64  # bytes: every scratch buffer starts on a cache line


@dataclass(eq=False)
class Buffer:
    """A region of ``size`` elements of ``dtype``.  ``index``: the constant's, input's or
    output's number; for scratch, the byte offset in the arena (set by the planner)."""
    dtype: np.dtype
    size: int
    kind: str
    index: int = -1
    name: str = ""

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        return self.name or f"{self.kind}{self.index}"


@dataclass(eq=False)
class Pointer:
    """A pointer variable: where a loop-carried value is this iteration."""
    name: str

    def __repr__(self) -> str:
        return self.name


@dataclass(frozen=True, eq=False)
class Ref:
    """``base + offset + sum(counter(loop) * stride for loop, stride in terms)`` elements,
    holding ``size`` elements of ``dtype``."""
    base: Union[Buffer, Pointer]
    dtype: np.dtype
    size: int
    offset: int = 0
    terms: tuple = ()   # ((Loop, stride in elements), ...)

    def same_place(self, other: "Ref") -> bool:
        return (self.base is other.base and self.offset == other.offset
                and len(self.terms) == len(other.terms)
                and all(a is c and b == d for (a, b), (c, d) in zip(self.terms, other.terms)))

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def __repr__(self) -> str:
        s = repr(self.base)
        if self.offset:
            s += f"+{self.offset}"
        for loop, stride in self.terms:
            s += f"+{loop.counter}*{stride}"
        return s


@dataclass(eq=False)
class Launch:
    kernel: Kernel
    refs: list[Ref]     # one per kernel slot (outputs first)


@dataclass(eq=False)
class Copy:
    """``dst <- src``; with ``view`` = (shape, strides, offset) in elements, ``src`` is read
    as that strided view (row-major order into ``dst``)."""
    dst: Ref
    src: Ref
    view: Optional[tuple] = None


@dataclass(eq=False)
class Carry:
    """A loop-carried value: read through ``cur`` (``init`` before the first iteration),
    written through ``nxt`` = ``bufs[(it + loop.parity) % 2]``; after the loop in
    ``bufs[0]``.  The two buffers are one where the body updates the carry in place
    (:func:`tinyjax.compiler.memory.updates_in_place`)."""
    init: Ref
    cur: Pointer
    nxt: Pointer
    bufs: tuple[Buffer, Buffer]


@dataclass(eq=False)
class Loop:
    """A scan (``length`` set; the counter runs ``length-1 .. 0`` when ``reverse``) or a
    while loop (``length`` None: ``cond`` then ``pred`` decide each iteration).  ``parity``
    makes a scan's last write land in each carry's ``bufs[0]``."""
    counter: str
    body: list
    carries: list[Carry]
    length: Optional[int] = None
    reverse: bool = False
    cond: list = field(default_factory=list)
    pred: Optional[Ref] = None
    parity: int = 0

    @property
    def kind(self) -> str:
        return "while" if self.length is None else "scan"


@dataclass(eq=False)
class Switch:
    index: Ref          # int32 scalar, clamped to the branches
    branches: list      # a list of steps per branch


@dataclass(eq=False)
class Call:
    """A foreign routine: ``run(ins, outs)`` over the backend's buffers (host numpy arrays
    on the CPU) seen as arrays of ``in_avals`` / ``out_avals`` ((shape, dtype) each);
    ``native``: (address, params, fns) of a C routine ``int fn(void **bufs, const void
    *params, const void *fns)`` (inputs first; nonzero: failure) a compiled program calls
    instead, where there is one."""
    name: str
    run: Callable[[list, list], Any]
    ins: list[Ref]
    outs: list[Ref]
    in_avals: list[tuple]
    out_avals: list[tuple]
    native: Optional[tuple] = None


Step = Union[Launch, Copy, Loop, Switch, Call]


@dataclass(eq=False)
class Program:
    """A compiled jaxpr: ``consts`` (host arrays, passed first), ``inputs`` and ``outputs``
    (one buffer each, holding arrays of ``in_dtypes`` / ``out_dtypes`` and ``out_shapes``:
    a complex array's buffer holds its interleaved real parts), the ``arena_bytes`` of
    scratch a call needs, and the steps."""
    name: str
    consts: list[Buffer]
    const_values: list[np.ndarray]
    inputs: list[Buffer]
    outputs: list[Buffer]
    out_shapes: list[tuple]
    steps: list
    arena_bytes: int = 0
    scratch: list[Buffer] = field(default_factory=list)
    in_dtypes: list = field(default_factory=list)    # the arrays' dtypes (complex: the
    out_dtypes: list = field(default_factory=list)   # buffers hold their real pairs)

    @property
    def kernels(self) -> list[Kernel]:
        """Every kernel, each once, in first-launch order (loop bodies counted once)."""
        seen: dict[int, Kernel] = {}
        for st in walk_steps(self.steps):
            if isinstance(st, Launch):
                seen.setdefault(id(st.kernel), st.kernel)
        return list(seen.values())

    @property
    def has_control_flow(self) -> bool:
        return any(isinstance(st, (Loop, Switch)) for st in self.steps)

    def describe(self, indent: str = "") -> list[str]:
        """One line per step (kernels grouped), loops and branches indented."""
        return _describe(self.steps, indent)


def walk_steps(steps: list):
    """Every step, nested ones after their parent (loop conditions before bodies)."""
    stack = list(reversed(steps))
    while stack:
        st = stack.pop()
        yield st
        if isinstance(st, Loop):
            stack.extend(reversed(st.cond + st.body))
        elif isinstance(st, Switch):
            for br in reversed(st.branches):
                stack.extend(reversed(br))


def _count_kernels(steps: list) -> int:
    return sum(1 for st in walk_steps(steps) if isinstance(st, Launch))


def _describe(steps: list, indent: str) -> list[str]:
    lines: list[str] = []
    run = 0

    def flush():
        nonlocal run
        if run:
            lines.append(f"{indent}call: {run} kernel(s)")
            run = 0
    for st in steps:
        if isinstance(st, Launch):
            run += 1
            continue
        flush()
        if isinstance(st, Loop) and st.length is not None:
            lines.append(f"{indent}scan(length={st.length}{', reverse' if st.reverse else ''}): "
                         f"body of {_count_kernels(st.body)} kernel(s), {st.length} "
                         "iterations per call")
            lines.extend(_describe(st.body, indent + "  "))
        elif isinstance(st, Loop):
            lines.append(f"{indent}while: predicate of {_count_kernels(st.cond)} kernel(s), "
                         f"body of {_count_kernels(st.body)} kernel(s)")
            lines.extend(_describe(st.cond + st.body, indent + "  "))
        elif isinstance(st, Switch):
            lines.append(f"{indent}cond: branches of " + ", ".join(
                str(_count_kernels(b)) for b in st.branches) + " kernel(s)")
            for b in st.branches:
                lines.extend(_describe(b, indent + "  "))
        elif isinstance(st, Call):
            lines.append(f"{indent}call {st.name}")
        elif isinstance(st, Copy):
            lines.append(f"{indent}copy {st.src!r} -> {st.dst!r}")
    flush()
    return lines
