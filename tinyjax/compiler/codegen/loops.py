"""A scheduled kernel with its loops spelled out: what the passes of
:mod:`tinyjax.compiler.codegen.opts` transform and :mod:`~tinyjax.compiler.codegen.linearizer`
turns into the loop IR.

:func:`base` gives the plain loop nest of a kernel: one loop per output axis (``global``),
in axis order, then one per reduced axis (``reduce``), each stage's reduction inside the
output loops and the epilogue after them (a full epilogue loops over the reduced axes
again).  Axes of size 1 get no loop (their index is the constant 0).  Passes move, split and
mark these loops; the kernel's bodies (its SSA uops) never change.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from tinyjax.compiler.kernel import Kernel

__all__ = ["Loop", "LoopKernel", "base"]


@dataclass(frozen=True)
class Loop:
    """One loop over axis ``axis`` of the kernel (variable ``i<axis>``).

    ``block > 0`` splits the axis into blocks of ``block``: the loop with ``outer`` set runs
    over the blocks (variable ``b<axis>``), the other within one.  ``kind``: ``global``
    (outputs), ``reduce`` or ``upcast`` (a row of outputs below the reduction, each with
    its own accumulator).  ``parallel``: iterations go to the threads; ``simd``: to vector
    lanes; ``partial``: the reduction below this loop's head goes into a partial
    accumulator, combined into the stage's after the loop (sums stay accurate and
    vectorise)."""
    axis: int
    kind: str
    block: int = 0
    outer: bool = False
    parallel: bool = False
    simd: bool = False
    partial: bool = False

    @property
    def var(self) -> str:
        return f"b{self.axis}" if self.outer else f"i{self.axis}"


@dataclass(frozen=True)
class LoopKernel:
    """``kernel`` with its loops in nesting order (global loops first; each reduction stage
    runs the ``reduce`` loops and inside them the ``upcast`` ones; the epilogue runs inside
    the ``upcast`` loops).  ``hoist_row_stores``: a full epilogue's stores of one value per
    row (a softmax's row max beside its division) run before its loop over the row.
    ``applied``: the passes that made it, in order, each ``(pass name, arguments, label)``
    (the label names the loops it touched: what DEBUG prints)."""
    kernel: Kernel
    loops: tuple[Loop, ...]
    hoist_row_stores: bool = False
    applied: tuple[str, ...] = field(default=())

    def of_kind(self, kind: str) -> list[Loop]:
        return [lp for lp in self.loops if lp.kind == kind]

    def find(self, axis: int, outer: bool = False) -> int:
        """The position of the loop over ``axis`` (its block loop with ``outer``)."""
        for j, lp in enumerate(self.loops):
            if lp.axis == axis and lp.outer == outer:
                return j
        raise KeyError(f"{self.kernel.name}: no loop over axis {axis}")

    def size(self, lp: Loop) -> int:
        """The number of iterations of ``lp`` (of a block: the full block)."""
        n = self.kernel.full_shape[lp.axis]
        if lp.block <= 0:
            return n
        return -(-n // lp.block) if lp.outer else min(lp.block, n)

    def with_loops(self, loops, step: tuple, **changes) -> "LoopKernel":
        """A copy with ``loops``, after the pass ``step`` = (name, arguments, label)."""
        return replace(self, loops=tuple(loops), applied=self.applied + (step,), **changes)


def base(k: Kernel) -> LoopKernel:
    """The plain loop nest of ``k`` (see the module docstring)."""
    full, red = k.full_shape, set(k.reduce_axes)
    loops = [Loop(a, "global") for a, n in enumerate(full) if a not in red and n > 1]
    loops += [Loop(a, "reduce") for a, n in enumerate(full) if a in red and n > 1]
    return LoopKernel(k, tuple(loops))
