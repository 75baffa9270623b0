"""``hoist_masks``: a pass over the CPU loop IR moving the validity tests of masked loads out
of the loops they do not depend on.

A load with a mask (``LOAD`` whose ``valid`` is not always true: a padded view, one phase of
an interleaving, a concatenation) is spelled ``valid ? x[index] : 0``.  Where ``valid``
reads only variables of outer loops, C compilers still leave the test inside the inner
loop, and a compound test (``0 < i1 && i1 < 18 && (i1 + 1) % 2 < 1``) keeps that loop from
vectorising (GCC 12 then runs it element by element: an interleaving of two convolution
phases took 5 ns per element).  The pass computes each such test once, as a named value
(``DEFINE_VAR``) just before the outermost loop it does not depend on, and the load's mask
becomes that name.
"""
from __future__ import annotations

from dataclasses import replace

from tinyjax.compiler.codegen.uops import Define, Range
from tinyjax.compiler.kernel import UOp
from tinyjax.compiler.shape.symbolic import Const, Var

__all__ = ["hoist_masks"]


def hoist_masks(uops: list[UOp]) -> list[UOp]:
    """``uops`` with the masks of loads hoisted (see the module docstring)."""
    opened: list[tuple[int, str]] = []   # (index of the RANGE, its variable) of open loops
    before: dict[int, list] = {}          # RANGE index -> masks to compute before it
    for i, u in enumerate(uops):
        if u.op == "RANGE":
            opened.append((i, u.arg.var))
        elif u.op == "ENDRANGE":
            opened.pop()
        elif u.op == "LOAD" and isinstance(u.arg[0], int) and opened:
            valid = u.arg[2]
            if isinstance(valid, Const) or valid.vmin > 0:
                continue
            names = {v.name for v in valid.vars()}
            depth = len(opened)
            while depth > 0 and opened[depth - 1][1] not in names:
                depth -= 1
            if depth < len(opened):
                masks = before.setdefault(opened[depth][0], [])
                if valid not in masks:
                    masks.append(valid)
    if not before:
        return uops
    out: list[UOp] = []
    new: dict[int, int] = {}
    named: dict = {}
    for i, u in enumerate(uops):
        for valid in before.get(i, ()):
            named[valid] = Var(f"mask{len(named)}", 0, 1)
            out.append(UOp("DEFINE_VAR", None, (), Define(named[valid].name, valid)))
        arg = u.arg
        if u.op == "RANGE" and isinstance(arg, Range) and arg.accs:
            arg = replace(arg, accs=tuple(new[a] for a in arg.accs))
        elif u.op == "LOAD" and isinstance(arg[0], int) and arg[2] in named:
            arg = (arg[0], arg[1], named[arg[2]])
        out.append(UOp(u.op, u.dtype, tuple(new[s] for s in u.srcs), arg))
        new[i] = len(out) - 1
    return out


