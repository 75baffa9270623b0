"""The arena plan: every scratch buffer of a program gets a byte offset in one block per call,
and buffers whose lifetimes do not overlap share bytes.

Lifetimes are intervals of step positions (steps numbered in the order they are built,
nested ones after their parent).  A buffer defined before a loop and used inside it lives
to the end of the loop (it is read again by every iteration); one defined and used within
an iteration lives only there.  Branches of a ``cond`` get disjoint position ranges, so
their buffers may share bytes (only one branch runs).
"""
from __future__ import annotations

from tinyjax.compiler.steps import ARENA_ALIGN, Buffer

__all__ = ["Lifetimes", "place"]


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
