"""Which passes a kernel gets on the CPU: the cost model.

* threads: a loop nest goes to the threads only when its work (points x ops) reaches
  ``PARALLEL_THRESHOLD``; below that it runs on the calling thread with no parallel region
  (waking the threads costs more than such a kernel runs, and on a machine shared with other
  work a parallel region waits for its slowest, preempted thread: on this project's 2-core
  machine the research-size steps ran fastest with 2^20 here and 2^22 multiply-adds for
  products, :data:`tinyjax.compiler.codegen.gemm.PARALLEL_MIN_FLOPS`);
* an elementwise kernel that transposes (its store runs along one axis, a load along
  another) is tiled 32 x 32 where the two axes span more than ``TILE_MIN_POINTS`` (below
  that its strided reads stay in L1 untiled, and the tile loops cost more than they save:
  a 40 x 100 or 64 x 64 transposing update ran 10-15 % faster untiled, and compiles in
  half the time);
* a reduction runs its innermost reduced axis in blocks of ``REDUCE_BLOCK`` with partial
  accumulators (vector lanes); with (almost) no outputs to share, its blocks go to the
  threads;
* a reduction with an ``upcast_axis`` (chosen by the scheduler: the output axis most
  loads run along) keeps a row of ``UPCAST_BLOCK`` accumulators below the reduction;
* a full epilogue stores its per-row values before its loop over the row.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from tinyjax.compiler.codegen import opts
from tinyjax.compiler.codegen.loops import LoopKernel, base
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape.symbolic import as_affine

__all__ = ["cpu_loops", "PARALLEL_THRESHOLD", "REDUCE_BLOCK", "UPCAST_BLOCK", "TILE",
           "TILE_MIN_POINTS"]

PARALLEL_THRESHOLD = 1 << 20
REDUCE_BLOCK = 4096
UPCAST_BLOCK = 256
TILE = 32
TILE_MIN_POINTS = 4096


def cpu_loops(k: Kernel, parallel_threshold: Optional[int] = None,
              reducible: Callable[[str, np.dtype], bool] = lambda op, dt: True,
              trace: Optional[Callable[[LoopKernel], None]] = None) -> LoopKernel:
    """The loop nest of an elementwise or reduce kernel on the CPU (see the module
    docstring).  ``reducible(op, dtype)``: whether the target can combine accumulators of
    ``op`` across threads and lanes; ``trace`` sees the kernel after each pass."""
    if parallel_threshold is None:
        parallel_threshold = PARALLEL_THRESHOLD
    lk = base(k)
    steps: list = []
    work = int(np.prod(k.full_shape, dtype=np.int64)) * max(
        1, len(k.rbody) + len(k.body))
    big = work >= parallel_threshold
    if k.reduce_op is None:
        pair = _transpose_axes(k)
        if pair is not None:
            steps.append((opts.tile, pair, TILE))
    elif k.upcast_axis is not None:
        steps.append((opts.upcast, k.upcast_axis, min(k.full_shape[k.upcast_axis],
                                                      UPCAST_BLOCK)))
    elif lk.of_kind("reduce"):
        stages = [(op, dt) for op, dt, _ in k.pre] + [(k.reduce_op, k.acc_dtype)]
        steps.append((opts.block_reduce, REDUCE_BLOCK,
                      all(reducible(op, dt) for op, dt in stages)))
    if k.full_epilogue:
        steps.append((opts.hoist_row_stores,))
    for fn, *args in steps:
        lk = fn(lk, *args)
        if trace is not None:
            trace(lk)
    if big:
        pos = _parallel_loop(lk, reducible)
        if pos is not None:
            lk = opts.parallelize(lk, pos)
            if trace is not None:
                trace(lk)
    return lk


def _parallel_loop(lk: LoopKernel, reducible) -> Optional[int]:
    """The loop to spread over the threads: the outermost output loop (a loop over tiles
    or over a row's blocks too); else, for a reduction with (almost) no outputs, its loop
    over blocks."""
    k = lk.kernel
    for j, lp in enumerate(lk.loops):
        if lp.kind == "global":
            if not lp.outer or lk.size(lp) > 1:
                return j
    red = [j for j, lp in enumerate(lk.loops) if lp.kind == "reduce" and lp.outer]
    outer_work = int(np.prod([n for a, n in enumerate(k.full_shape)
                              if a not in k.reduce_axes], dtype=np.int64))
    stages = [(op, dt) for op, dt, _ in k.pre] + [(k.reduce_op, k.acc_dtype)]
    if red and lk.size(lk.loops[red[0]]) > 1 and outer_work < 4 and \
            all(reducible(op, dt) for op, dt in stages):
        return red[0]
    return None


def _unit_axis(index) -> Optional[int]:
    aff = as_affine(index)
    if aff is None:
        return None
    for v, c in aff[0].items():
        if c == 1 and v.name[1:].isdigit():
            return int(v.name[1:])
    return None


def _transpose_axes(k: Kernel) -> Optional[tuple[int, int]]:
    """(load axis, store axis) of an elementwise kernel whose store runs with unit stride
    along one axis and some load along another, both at least ``TILE`` long and together
    more than ``TILE_MIN_POINTS``."""
    full = k.full_shape
    if len(full) < 2 or not k.body or k.body[-1].op != "STORE":
        return None
    s_ax = _unit_axis(k.body[-1].arg[1])
    if s_ax is None or full[s_ax] < TILE:
        return None
    for u in k.body:
        if u.op == "LOAD" and not u.srcs:
            a = _unit_axis(u.arg[1])
            if a is not None and a != s_ax and full[a] >= TILE \
                    and full[a] * full[s_ax] > TILE_MIN_POINTS:
                return (a, s_ax)
    return None
