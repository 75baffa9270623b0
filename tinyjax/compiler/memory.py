"""The memory of a program: the arena plan -- every scratch buffer gets a byte offset in one
block per call, and buffers whose lifetimes do not overlap share bytes -- and which outputs
may take a donated input's memory (:func:`donation_plan`), and which loop carries the body
may update in place (:func:`updates_in_place`).

Lifetimes are intervals of step positions (steps numbered in the order they are built,
nested ones after their parent).  A buffer defined before a loop and used inside it lives
to the end of the loop (it is read again by every iteration); one defined and used within
an iteration lives only there.  Branches of a ``cond`` get disjoint position ranges, so
their buffers may share bytes (only one branch runs).
"""
from __future__ import annotations

from typing import Union

from tinyjax.compiler.steps import (ARENA_ALIGN, Buffer, Call, Carry, Copy, Launch, Loop, Pointer,
                                    Program, Ref, Switch, walk_steps)

__all__ = ["Lifetimes", "place", "donation_plan", "updates_in_place"]


class Lifetimes:
    """Collects uses of scratch buffers while a program is built."""

    def __init__(self):
        self.first: dict[Buffer, int] = {}
        self.last: dict[Buffer, int] = {}
        self.pending: list[tuple[Buffer, object]] = []   # (buffer, loop it must outlive)
        self.loop_span: dict[int, tuple[int, int]] = {}

    def use(self, buf: Buffer, pos: int, loops: list) -> None:
        """``buf`` is read or written at ``pos`` inside ``loops`` (outermost first, each a
        (loop, start position) pair)."""
        first = self.first.setdefault(buf, pos)
        if pos > self.last.get(buf, -1):
            self.last[buf] = pos
        for loop, start in loops:
            if first <= start:   # defined before the loop: read by every iteration
                self.pending.append((buf, loop))

    def close_loop(self, loop, start: int, end: int) -> None:
        self.loop_span[id(loop)] = (start, end)

    def intervals(self) -> dict[Buffer, tuple[int, int]]:
        last = dict(self.last)
        for buf, loop in self.pending:
            end = self.loop_span[id(loop)][1]
            if end > last[buf]:
                last[buf] = end
        return {b: (self.first[b], last[b]) for b in self.first}


def place(buffers: list[Buffer], lifetimes: Lifetimes) -> int:
    """Give every buffer its arena offset (``buf.index``); returns the arena's size in bytes.
    Largest first, each at the lowest aligned offset free over its whole lifetime."""
    spans = lifetimes.intervals()
    placed: list[tuple[int, int, int, int]] = []   # (offset, end offset, first, last)
    total = 0
    for buf in sorted(buffers, key=lambda b: -b.nbytes):
        if buf.nbytes == 0:
            buf.index = 0
            continue
        lo, hi = spans.get(buf, (0, 0))
        size = -(-buf.nbytes // ARENA_ALIGN) * ARENA_ALIGN
        busy = sorted((o, e) for o, e, f, l in placed if f <= hi and lo <= l)
        offset = 0
        for o, e in busy:
            if offset + size <= o:
                break
            offset = max(offset, e)
        buf.index = offset
        placed.append((offset, offset + size, lo, hi))
        total = max(total, offset + size)
    return total


def donation_plan(program: Program, donated: tuple) -> dict[int, int]:
    """Output number -> the donated input (number) whose memory it may take: of the same
    dtype and size, written by a kernel of the top level (not inside a loop or branch) and
    read by no step after it -- except by that kernel itself, when it is elementwise and
    reads the input exactly where it writes (each point read before it is written).
    An entry of ``donated`` is an input number (any output may take it) or a pair
    (input, output): only that output may (an array reference updated in place)."""
    only = {d[0]: d[1] for d in donated if isinstance(d, tuple)}
    donated = tuple(d[0] if isinstance(d, tuple) else d for d in donated)
    reads: dict[int, int] = {}     # id(input buffer) -> last top-level step reading it
    writer: dict[int, tuple] = {}  # id(output buffer) -> (step number, its launch)
    for i, st in enumerate(program.steps):
        for inner in walk_steps([st]):
            for ref, written in _operands(inner):
                if written and inner is st and isinstance(st, Launch):
                    writer.setdefault(id(ref.base), (i, st))
                elif not written or inner is not st:
                    reads[id(ref.base)] = i
    plan, taken = {}, set()
    for k, out in enumerate(program.outputs):
        w = writer.get(id(out))
        if w is None:
            continue
        for d in donated:
            inp = program.inputs[d]
            if d in taken or inp.dtype != out.dtype or inp.size != out.size or \
                    only.get(d, k) != k:
                continue
            r = reads.get(id(inp), -1)
            if r < w[0] or (r == w[0] and _reads_in_place(w[1], inp, out)):
                plan[k] = d
                taken.add(d)
                break
    return plan


def updates_in_place(loop: Loop, carry: Carry) -> bool:
    """Whether ``loop``'s body may write ``carry``'s next value over its current one (one
    buffer instead of two, which halves what an iteration touches -- an RNN's
    weight-gradient sums stay in the L1 cache): one launch of the body's top level writes
    it, loading the current value only where it stores the next (:func:`_reads_in_place`),
    and no step after that launch reads the current value."""
    writer = None
    for st in loop.body:
        for inner in walk_steps([st]):
            for ref, written in _operands(inner):
                if ref.base is carry.nxt and written:
                    if writer is not None or inner is not st or not isinstance(st, Launch):
                        return False
                    writer = st
                elif ref.base is carry.cur and writer is not None and st is not writer:
                    return False
    return writer is not None and _reads_in_place(writer, carry.cur, carry.nxt)


def _operands(st) -> list[tuple[Ref, bool]]:
    """(ref, written) for every operand of a step (a loop's or branch's own operands only)."""
    if isinstance(st, Launch):
        n = st.kernel.n_outs
        return [(r, j < n) for j, r in enumerate(st.refs)]
    if isinstance(st, Copy):
        return [(st.dst, True), (st.src, False)]
    if isinstance(st, Call):
        return [(r, True) for r in st.outs] + [(r, False) for r in st.ins]
    if isinstance(st, Loop):
        return [(c.init, False) for c in st.carries] + \
            [(Ref(b, b.dtype, b.size), True) for c in st.carries for b in c.bufs]
    if isinstance(st, Switch):
        return [(st.index, False)]
    return []


def _reads_in_place(launch: Launch, inp: Union[Buffer, Pointer],
                     out: Union[Buffer, Pointer]) -> bool:
    """Whether the launch's kernel is elementwise and loads ``inp`` only at the point where
    it stores ``out`` (then ``out`` may live in ``inp``'s memory)."""
    k = launch.kernel
    if k.reduce_op is not None or k.pre or k.gemm is not None or k.sort is not None \
            or k.scatter_shape is not None or k.n_outs != 1:
        return False
    in_slots = {j for j, r in enumerate(launch.refs) if r.base is inp}
    out_slots = {j for j, r in enumerate(launch.refs) if r.base is out}
    if any(launch.refs[j].offset or launch.refs[j].terms for j in in_slots | out_slots):
        return False
    stores = [u.arg for u in k.body if u.op == "STORE" and u.arg[0] in out_slots]
    loads = [u for u in k.body if u.op == "LOAD" and u.arg[0] in in_slots]
    if len(stores) != 1 or any(u.srcs for u in loads):  # (a load at a computed offset)
        return False
    _, where, valid = stores[0]
    return all(u.arg[1] == where and u.arg[2] == valid for u in loads)
