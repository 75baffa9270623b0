"""``hoist_invariant_loads``: a pass over the CPU loop IR moving each load of an input
buffer out of the loops its address does not depend on.

A kernel reads a row's statistic (a softmax's maximum, a norm's mean) in every iteration
of the loops over the row.  Where the loop also stores, GCC cannot tell that the store
leaves the statistic alone (it does not follow ``restrict`` through the pointers a kernel
takes from its buffer array): it reloads the value every iteration, and a reload in the
loop's latch keeps the loop from vectorising at all (a causal softmax's gradient ran
element by element: 310 µs for 64K elements).  The pass loads such a value once, just
before the outermost loop it does not depend on.  Inputs are never written by the kernel,
so the value is the same; only loops that run at least once are left (a load of an empty
buffer must stay where it never runs).
"""
from __future__ import annotations

from dataclasses import replace

from tinyjax.compiler.codegen.uops import Range
from tinyjax.compiler.kernel import UOp
from tinyjax.compiler.shape.symbolic import Const

__all__ = ["hoist_invariant_loads"]


def _runs(r: Range) -> bool:
    """Whether loop ``r`` runs at least once whatever the values of outer loops."""
    if r.guard is not None or not isinstance(r.lo, Const):
        return False
    hi = r.hi.vmin if r.cap is None else min(r.hi.vmin, r.cap)
    return hi > r.lo.value


def _unmasked(valid) -> bool:
    """Whether a load's mask always holds.  A masked load stays: GCC 12.2 with
    ``-mprefer-vector-width=512`` vectorises the loop around hoisted ``mask ? x[i] : 0``
    loads wrongly (a complex pad read garbage)."""
    return valid.vmin > 0


def hoist_invariant_loads(uops: list[UOp], n_outs: int) -> list[UOp]:
    """``uops`` with every unmasked load of an input slot (``>= n_outs``) whose index reads
    no variable of the loops around it moved before the outermost such loop (see the
    module docstring)."""
    if any(u.op in ("IF", "FUNCTION") for u in uops):  # (a load under a condition stays)
        return uops
    opened: list[tuple[int, Range]] = []  # (index of the RANGE, its loop) of open loops
    level: dict[str, int] = {}             # name -> how many loops were open where defined
    target: dict[int, int] = {}            # load index -> RANGE index to load it before
    for i, u in enumerate(uops):
        if u.op == "RANGE":
            opened.append((i, u.arg))
            level[u.arg.var] = len(opened)
        elif u.op == "ENDRANGE":
            opened.pop()
        elif u.op == "DEFINE_VAR":
            level[u.arg.name] = len(opened)
        elif u.op == "LOAD" and not u.srcs and isinstance(u.arg[0], int) and \
                u.arg[0] >= n_outs and opened and _unmasked(u.arg[2]):
            names = {v.name for v in u.arg[1].vars()} if hasattr(u.arg[1], "vars") else set()
            depth = max((level.get(n, 0) for n in names), default=0)
            out = len(opened)
            while out > depth and _runs(opened[out - 1][1]):
                out -= 1
            if out < len(opened):
                target[i] = opened[out][0]
    if not target:
        return uops
    hoisted: dict[int, list[int]] = {}
    for i, r in target.items():
        hoisted.setdefault(r, []).append(i)
    order = []
    for i in range(len(uops)):
        order.extend(hoisted.get(i, ()))
        if i not in target:
            order.append(i)
    new = {old: pos for pos, old in enumerate(order)}
    out_uops = []
    for old in order:
        u = uops[old]
        arg = u.arg
        if u.op == "RANGE" and isinstance(arg, Range) and arg.accs:
            arg = replace(arg, accs=tuple(new[a] for a in arg.accs))
        out_uops.append(UOp(u.op, u.dtype, tuple(new[s] for s in u.srcs), arg))
    return out_uops
