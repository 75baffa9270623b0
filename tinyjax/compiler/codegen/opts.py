"""The optimisation passes: each a named transformation of a
:class:`~tinyjax.compiler.codegen.loops.LoopKernel` that keeps its results (only the order
in which the same values are computed and combined changes).

A pass raises :class:`OptError` where it does not apply, so that a search may try any
sequence.  Which passes a kernel gets is decided by :mod:`tinyjax.compiler.codegen.heuristics`
(or by a search); every pass here is target-independent.
"""
from __future__ import annotations

from dataclasses import replace

from tinyjax.compiler.codegen.loops import Loop, LoopKernel

__all__ = ["OptError", "parallelize", "block_reduce", "upcast", "tile", "hoist_row_stores",
           "PASSES", "replay"]


class OptError(ValueError):
    """A pass that does not apply to a kernel."""


def parallelize(lk: LoopKernel, pos: int) -> LoopKernel:
    """The loop at ``pos`` spreads its iterations over the threads (a reduce loop combines
    the threads' accumulators).  At most one loop of a nest is parallel."""
    if not 0 <= pos < len(lk.loops):
        raise OptError(f"parallelize: no loop {pos} in {lk.kernel.name}")
    if any(lp.parallel for lp in lk.loops):
        raise OptError(f"parallelize: {lk.kernel.name} has a parallel loop already")
    lp = lk.loops[pos]
    if lp.kind == "upcast" or (lp.kind == "reduce" and lk.of_kind("upcast")):
        raise OptError(f"parallelize: loop {lp.var} of {lk.kernel.name} runs per output")
    loops = list(lk.loops)
    loops[pos] = replace(lp, parallel=True)
    return lk.with_loops(loops, ("parallelize", (pos,), f"parallelize({lp.var})"))


def block_reduce(lk: LoopKernel, block: int, simd: bool = True) -> LoopKernel:
    """The innermost reduce loop runs in blocks of ``block``: a loop over the blocks first
    (outermost of the reduce loops), the others, then the loop within a block into a partial
    accumulator (with ``simd``, in vector lanes; the partial sums also keep a float sum
    accurate)."""
    red = lk.of_kind("reduce")
    if not red or lk.of_kind("upcast") or any(lp.block or lp.partial for lp in red):
        raise OptError(f"block_reduce: {lk.kernel.name} has no plain reduce loops")
    last = red[-1]
    start = lk.loops.index(red[0])
    if lk.size(last) <= block:  # one block: no loop over blocks
        inner, outer = replace(last, partial=True, simd=simd), []
    else:
        inner = replace(last, block=block, partial=True, simd=simd)
        outer = [replace(last, block=block, outer=True)]
    loops = list(lk.loops[:start]) + outer + red[:-1] + [inner] + \
        [lp for lp in lk.loops[start:] if lp.kind != "reduce"]
    return lk.with_loops(loops, ("block_reduce", (block, simd),
                                 f"block_reduce({last.var}, {block})"))


def upcast(lk: LoopKernel, axis: int, block: int) -> LoopKernel:
    """Output axis ``axis`` runs below the reduction as a row of accumulators, ``block`` at a
    time (a loop over its blocks stays among the global loops): every load along it is
    reused across the reduction (a column sum reads rows once)."""
    k = lk.kernel
    if k.reduce_op is None or k.full_epilogue:
        raise OptError(f"upcast: {k.name} has no per-output reduction")
    if any(lp.block or lp.partial for lp in lk.of_kind("reduce")):
        raise OptError(f"upcast: the reduce loops of {k.name} run in blocks already")
    try:
        pos = lk.find(axis)
    except KeyError:
        raise OptError(f"upcast: {k.name} has no loop over axis {axis}") from None
    if lk.loops[pos].kind != "global" or lk.loops[pos].block:
        raise OptError(f"upcast: axis {axis} of {k.name} is not a plain output loop")
    loops = [lp for j, lp in enumerate(lk.loops) if j != pos]
    n_glob = sum(lp.kind == "global" for lp in loops)
    loops.insert(n_glob, Loop(axis, "global", block=block, outer=True))
    loops.append(Loop(axis, "upcast", block=block))
    return lk.with_loops(loops, ("upcast", (axis, block), f"upcast(i{axis}, {block})"))


def tile(lk: LoopKernel, axes: tuple[int, int], block: int) -> LoopKernel:
    """Two output axes in ``block`` x ``block`` tiles (the loops over tiles, then the loops
    within one, innermost): a transposing copy keeps both its read and its write in cache
    lines."""
    if lk.kernel.reduce_op is not None:
        raise OptError(f"tile: {lk.kernel.name} is a reduction")
    try:
        pos = [lk.find(a) for a in axes]
    except KeyError:
        raise OptError(f"tile: {lk.kernel.name} has no loops over axes {axes}") from None
    if any(lk.loops[p].block for p in pos):
        raise OptError(f"tile: an axis of {axes} is split already")
    rest = [lp for j, lp in enumerate(lk.loops) if j not in pos]
    loops = rest + [Loop(a, "global", block=block, outer=True) for a in axes] + \
        [Loop(a, "global", block=block) for a in axes]
    return lk.with_loops(loops, ("tile", (tuple(axes), block),
                                 f"tile(i{axes[0]}, i{axes[1]}, {block})"))


def hoist_row_stores(lk: LoopKernel) -> LoopKernel:
    """A full epilogue's stores of one value per row run before its loop over the row (a
    guarded store inside the loop would keep it from vectorising)."""
    if not lk.kernel.full_epilogue or lk.hoist_row_stores:
        raise OptError(f"hoist_row_stores: {lk.kernel.name} has no full epilogue")
    return lk.with_loops(lk.loops, ("hoist_row_stores", (), "hoist_row_stores"),
                         hoist_row_stores=True)


PASSES = {f.__name__: f for f in (parallelize, block_reduce, upcast, tile, hoist_row_stores)}


def replay(lk: LoopKernel, steps) -> LoopKernel:
    """``lk`` after the passes ``steps`` (``(name, arguments)`` pairs, as in ``applied``)."""
    for name, args, *_ in steps:
        lk = PASSES[name](lk, *args)
    return lk
