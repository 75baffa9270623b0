"""The GPU passes: each a named transformation of a
:class:`~tinyjax.compiler.codegen.gpu_loops.GpuKernel` -- how its points map onto the
launch's blocks and threads (the global and local dimensions), what each thread keeps in
registers, how the threads sharing an output combine -- that keeps its results.  Like the
CPU passes (:mod:`tinyjax.compiler.codegen.opts`) each raises
:class:`~tinyjax.compiler.codegen.opts.OptError` where it does not apply; which ones a
kernel gets is :mod:`tinyjax.compiler.codegen.gpu_heuristics`' choice.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tinyjax.backends.cuda.launch import fits_int32
from tinyjax.compiler.codegen.gpu_loops import MAX_GRID_X, GpuKernel, cdiv, prod
from tinyjax.compiler.codegen.opts import OptError
from tinyjax.compiler.kernel import Kernel, _is_true
from tinyjax.compiler.shape.symbolic import as_affine

__all__ = ["grid_stride", "vectorize", "group_reduce", "split_reduce", "row_cache", "index32",
           "sort_rows", "scatter_updates", "vector_ok", "vector_store", "vector_loads",
           "cached_loads", "coef", "GPU_PASSES"]


def coef(index, axis: Optional[int]) -> Optional[int]:
    """The coefficient of loop variable ``i<axis>`` in an affine index (None: not affine)."""
    aff = as_affine(index)
    if aff is None or axis is None:
        return None
    return {v.name: c for v, c in aff[0].items()}.get(f"i{axis}", 0)


def vector_ok(index, valid, last: int, lanes: int) -> bool:
    """Whether ``lanes`` consecutive points along ``i<last>`` (the first a multiple of
    ``lanes``) are consecutive, aligned elements: unit stride along it, every other stride
    and the offset multiples of ``lanes``, no mask."""
    aff = as_affine(index)
    if aff is None or not _is_true(valid):
        return False
    coefs, off = aff
    c = {v.name: x for v, x in coefs.items()}
    return (c.get(f"i{last}") == 1 and off % lanes == 0 and
            all(x % lanes == 0 for n, x in c.items() if n != f"i{last}"))


def vector_store(k: Kernel, lanes: int) -> bool:
    """Whether an elementwise kernel's one store takes ``lanes`` points per access."""
    full = k.full_shape
    stores = [u for u in k.body if u.op == "STORE"]
    if not full or full[-1] % lanes or len(stores) != 1 or k.body[-1].op != "STORE":
        return False
    return vector_ok(k.body[-1].arg[1], 1, len(full) - 1, lanes)


def vector_loads(k: Kernel, uops: list, axis: int, lanes: int) -> list[int]:
    """The loads of ``uops`` that read ``lanes`` consecutive, aligned elements along
    ``i<axis>`` (:func:`vector_ok`)."""
    return [i for i, u in enumerate(uops) if u.op == "LOAD" and not u.srcs
            and vector_ok(u.arg[1], u.arg[2], axis, lanes)]


def _reduce_sizes(k: Kernel) -> tuple[int, int]:
    full, red = k.full_shape, set(k.reduce_axes)
    return (prod(full[a] for a in range(len(full)) if a not in red),
            prod(full[a] for a in range(len(full)) if a in red))


def grid_stride(gk: GpuKernel, block: int) -> GpuKernel:
    """An elementwise kernel: a grid-stride loop, ``block`` threads per block, each thread
    one point (``lanes`` after :func:`vectorize`) per step."""
    if gk.kind != "elementwise":
        raise OptError(f"grid_stride: {gk.kernel.name} is a {gk.kind}")
    n = prod(gk.kernel.full_shape)
    return gk.after(("grid_stride", (block,), f"grid_stride({block})"), block=block,
                    grid=min(cdiv(n // gk.lanes, block), MAX_GRID_X))


def vectorize(gk: GpuKernel, lanes: int) -> GpuKernel:
    """``lanes`` consecutive points per thread along the innermost axis, moved by one 16-byte
    access where aligned: an elementwise kernel's store (and every load that allows it), a
    ``rows`` reduction's loads along its innermost reduce axis."""
    k = gk.kernel
    step = ("vectorize", (lanes,), f"vectorize({lanes})")
    if gk.kind == "elementwise" and vector_store(k, lanes):
        grid = min(cdiv(prod(k.full_shape) // lanes, gk.block), MAX_GRID_X) if gk.block else 0
        return gk.after(step, lanes=lanes, grid=grid)
    red = [a for a in range(len(k.full_shape)) if a in k.reduce_axes]
    if gk.kind == "reduce" and gk.layout == "rows" and not k.pre and red and \
            k.full_shape[red[-1]] % lanes == 0 and vector_loads(k, k.rbody, red[-1], lanes):
        return gk.after(step, lanes=lanes)
    raise OptError(f"vectorize: {k.name} has no {lanes} consecutive aligned points per access")


def group_reduce(gk: GpuKernel, layout: str, W: int, block: int, order: tuple) -> GpuKernel:
    """A reduction with ``W`` threads per output point (``block`` threads per block), laid
    out ``rows`` or ``cols`` (see :class:`GpuKernel`), the outputs flattened in ``order``;
    each thread accumulates every ``W``-th point of the reduce space and the ``W``
    partial results are combined by warp shuffles and shared memory."""
    if gk.kind != "reduce" or gk.W != 1 or gk.layout:
        raise OptError(f"group_reduce: {gk.kernel.name} is not a plain reduction")
    if layout not in ("rows", "cols") or block % W:
        raise OptError(f"group_reduce: {layout} W={W} in blocks of {block}")
    O, _ = _reduce_sizes(gk.kernel)
    return gk.after(("group_reduce", (layout, W, block, tuple(order)),
                     f"group_reduce({layout}, W={W}, block={block})"),
                    layout=layout, W=W, block=block, order=tuple(order),
                    grid=cdiv(O, block // W))


def split_reduce(gk: GpuKernel, G: int) -> GpuKernel:
    """Each output's reduce space split over ``G`` blocks: their partial results go to
    module memory and the last block of each group to finish combines them and runs the
    epilogue (one stage, no full epilogue)."""
    k = gk.kernel
    if not gk.layout or gk.G != 1 or k.pre or k.full_epilogue or G < 2:
        raise OptError(f"split_reduce: {k.name} cannot split over {G} blocks")
    if gk.grid * G > MAX_GRID_X:
        raise OptError(f"split_reduce: {k.name}: {gk.grid * G} blocks exceed the grid")
    return gk.after(("split_reduce", (G,), f"split_reduce({G})"), G=G, grid=gk.grid * G)


def cached_loads(gk: GpuKernel, limit: int) -> tuple:
    """The loads that more than one pass over the reduce space reads (softmax reads its
    row for the max, the sum and the division), when each thread's share of them fits in
    ``limit`` bytes: ``(slot, index)`` each."""
    k = gk.kernel
    _, R = _reduce_sizes(k)
    if gk.layout != "rows" or gk.G != 1 or not (k.pre or k.full_epilogue) or R < gk.W or \
            R % gk.W:
        return ()
    passes = [rb for _, _, rb in k.pre] + [k.rbody] + ([k.body] if k.full_epilogue else [])
    seen: dict = {}
    for rb in passes:
        for key in dict.fromkeys((u.arg[0], u.arg[1]) for u in rb if u.op == "LOAD"
                                 and not u.srcs and _is_true(u.arg[2])):
            seen[key] = seen.get(key, 0) + 1
    keys = tuple(key for key, m in seen.items() if m > 1)
    per_thread = R // gk.W * sum(np.dtype(k.bufs[slot][0]).itemsize for slot, _ in keys)
    return keys if per_thread <= limit else ()


def row_cache(gk: GpuKernel, limit: int) -> GpuKernel:
    """The elements that several passes over the reduce space read are loaded once, by the
    first, into each thread's registers (its share of them at most ``limit`` bytes); the
    later passes read them there (a 64 KiB row's later passes would otherwise come from L2
    at best)."""
    keys = cached_loads(gk, limit)
    if not keys:
        raise OptError(f"row_cache: no loads of {gk.kernel.name} shared between passes fit")
    return gk.after(("row_cache", (limit,), f"row_cache({len(keys)} loads)"), cache=keys)


def index32(gk: GpuKernel) -> GpuKernel:
    """Index arithmetic in 32 bits: every address and mask of the kernel, its loop space and
    its threads stay below 2**31 (64-bit divisions by constants cost several times their
    32-bit forms)."""
    if gk.kind not in ("elementwise", "reduce") or not fits_int32(gk.kernel, gk.grid * gk.block):
        raise OptError(f"index32: {gk.kernel.name} may need 64-bit indices")
    return gk.after(("index32", (), "index32"), index="int")


def sort_rows(gk: GpuKernel, mode: str, block: int, grid: int) -> GpuKernel:
    """A sort: one block of ``block`` threads per row, ``grid`` blocks, its indices in
    ``mode`` memory (``shared``, or ``global`` module scratch for long rows)."""
    if gk.kind != "sort" or mode not in ("shared", "global"):
        raise OptError(f"sort_rows: {gk.kernel.name} ({gk.kind}) in {mode} memory")
    return gk.after(("sort_rows", (mode, block, grid), f"sort_rows({mode}, {block})"),
                    mode=mode, block=block, grid=grid)


def scatter_updates(gk: GpuKernel, mode: str, block: int, grid: int,
                    copy: GpuKernel) -> GpuKernel:
    """A scatter: ``copy`` (an elementwise launch) copies the operand, then the updates run
    one per thread of a grid-stride loop (``serial``: all in one thread, in C order),
    combining as ``mode`` says (``atomic``, ``cas``, ``winner``, ``serial``)."""
    if gk.kind != "scatter" or mode not in ("atomic", "cas", "winner", "serial"):
        raise OptError(f"scatter_updates: {gk.kernel.name} ({gk.kind}) by {mode}")
    return gk.after(("scatter_updates", (mode, block, grid), f"scatter_updates({mode})"),
                    mode=mode, block=block, grid=grid, copy=copy)


GPU_PASSES = {f.__name__: f for f in (grid_stride, vectorize, group_reduce, split_reduce,
                                      row_cache, index32, sort_rows, scatter_updates)}
