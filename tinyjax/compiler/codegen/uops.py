"""The loop IR: a kernel as one linear list of ops, loops included.

Every renderer (C, CUDA) walks this list once, spelling each op from a table; nothing in a
renderer decides a loop order, a block size or what runs in parallel -- the passes of
:mod:`tinyjax.compiler.codegen.opts` decided that before the list was made
(:mod:`tinyjax.compiler.codegen.linearizer` makes it).

Each op is a :class:`~tinyjax.compiler.kernel.UOp` ``(op, dtype, srcs, arg)``, as in a
scheduled kernel's bodies; ``srcs`` index earlier ops of the same list (SSA).  The ops:

==============  ========================================================================
``RANGE``       opens a loop, ``arg`` a :class:`Range` (variable, bounds, kind); closed by
                the ``ENDRANGE`` whose ``srcs`` is ``(range,)``
``DEFINE_ACC``  an accumulator of ``dtype`` starting at the identity of ``arg`` (an
                :class:`Acc`: the reduce op, and a row of ``count`` of them indexed by
                ``index`` where a loop below the reduction runs over outputs)
``ACCUMULATE``  ``srcs = (acc, value)``: the accumulator combined with a value
``LOAD``        ``arg = (slot, index, valid)``: buffer ``slot`` at ``index`` where
                ``valid``, else 0; with a source, at ``index + srcs[0]`` (a gather)
``STORE``       ``arg = (slot, index, valid)``: ``srcs[0]`` written where ``valid``
``CONST``       ``arg`` the value
``INDEX``       ``arg`` a symbolic expression of the loop variables, as ``dtype``
``ALU``         ``arg`` the op name (:data:`tinyjax.compiler.ops.ALU_OPS`)
``CAST``        ``srcs[0]`` converted to ``dtype``; ``BITCAST`` its bits read as ``dtype``
==============  ========================================================================

A value op inside loops is recomputed per iteration of every loop around it; reading an
accumulator (an op whose source is a ``DEFINE_ACC``) gives its current value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


from tinyjax.compiler.kernel import UOp, format_access
from tinyjax.compiler.shape.symbolic import Const, Node, render

__all__ = ["Range", "Acc", "LOOP_KINDS", "format_op", "format_uops", "VALUE_OPS"]

# what a loop is for: "global" runs over outputs, "reduce" over a reduction, "upcast" over a
# row of outputs below a reduction (each with its own accumulator)
LOOP_KINDS = ("global", "reduce", "upcast")
VALUE_OPS = frozenset({"LOAD", "CONST", "INDEX", "ALU", "CAST", "BITCAST"})


@dataclass(frozen=True)
class Range:
    """A loop ``for var in [lo, min(hi, cap))``.  ``parallel``: its iterations go to the
    threads (accumulators ``accs`` combined across them); ``simd``: they run in vector lanes
    (``accs`` combined across lanes)."""
    var: str
    lo: Node
    hi: Node
    kind: str = "global"
    cap: Optional[int] = None
    parallel: bool = False
    simd: bool = False
    accs: tuple[int, ...] = ()

    @property
    def trips(self) -> int:
        """The most iterations (an upper bound for a block of a ragged loop)."""
        n = self.hi.vmax - self.lo.vmin if not isinstance(self.lo, Const) else \
            self.hi.vmax - self.lo.value
        return max(0, min(n, self.cap - self.lo.vmin) if self.cap is not None else n)

    def __str__(self) -> str:
        hi = render(self.hi) if self.cap is None else f"min({render(self.hi)}, {self.cap})"
        flags = "".join(f" {f}" for f, on in (("parallel", self.parallel), ("simd", self.simd))
                        if on)
        accs = f" accs={list(self.accs)}" if self.accs else ""
        return f"{self.var} in [{render(self.lo)}, {hi}) {self.kind}{flags}{accs}"


@dataclass(frozen=True)
class Acc:
    """An accumulator of reduce op ``op``; ``count > 1``: a row of them, the one in use at
    ``index`` (a symbolic expression of the loop variables)."""
    op: str
    count: int = 1
    index: Optional[Node] = None

    def __str__(self) -> str:
        row = f"[{self.count}] at {render(self.index)}" if self.count > 1 else ""
        return f"{self.op}{row}"


def format_op(u: UOp) -> str:
    """One op of the loop IR on one line: name, dtype, sources, argument."""
    arg = u.arg
    if u.op in ("LOAD", "STORE"):
        arg = format_access(arg)
    elif u.op == "INDEX":
        arg = render(arg)
    dt = u.dtype.name if u.dtype is not None else ""
    return f"{u.op:<10} {dt:<8} {list(u.srcs)}" + ("" if arg is None else f" {arg}")


def format_uops(uops: list[UOp]) -> str:
    """The ops one per line, indented by loop depth (DEBUG=3 prints this)."""
    lines, depth = [], 0
    for i, u in enumerate(uops):
        if u.op == "ENDRANGE":
            depth -= 1
        lines.append(f"  %{i:<3} {'  ' * depth}{format_op(u)}")
        if u.op == "RANGE":
            depth += 1
    return "\n".join(lines)
