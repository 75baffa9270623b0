"""Which GPU passes a kernel gets: the cost model of the CUDA target.

* elementwise: a grid-stride loop of ``BLOCK``-thread blocks, one point per thread -- or,
  where the innermost axis is contiguous and 16-byte aligned in the store (and the size
  divides), ``VECTOR`` points per thread with 16-byte accesses;
* reductions: ``W`` threads per output point.  ``rows`` (an output's threads consecutive,
  walking the reduce space: a row sum) unless more loads run along the innermost output
  axis than along the innermost reduce axis -- then ``cols`` (consecutive threads on
  consecutive outputs: a column sum, coalesced across threads; up to ``COLS_MAX_W`` threads
  per output while that leaves the GPU idle).  ``rows`` gives each thread about
  ``ROW_ELEMS`` elements (at most ``MAX_W`` threads), more threads while the GPU would be
  idle.  With few output blocks and no stages, the reduce space is split over ``G`` blocks
  per output group (:func:`~tinyjax.compiler.codegen.gpu_opts.split_reduce`); a ``rows``
  reduction over contiguous rows loads ``VECTOR`` points per access; elements that several
  passes read stay in registers (``ROW_CACHE`` bytes per thread); the output axis stored
  with unit stride runs innermost;
* sort: a block per row, its indices in shared memory up to ``SORT_SHARED`` elements;
* scatter: the copy as an elementwise launch, then the updates one per thread (atomics, a
  compare-and-swap loop, or a winner array for ``replace``), 1-2 byte values serially;
* every kernel whose addresses fit gets 32-bit index arithmetic.

The GPU's size comes from :class:`CudaTarget` (an H100 by default: 132 SMs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from tinyjax.compiler.codegen import gpu_opts
from tinyjax.compiler.codegen.gpu_loops import MAX_GRID_X, GpuKernel, cdiv, gpu_base, prod
from tinyjax.compiler.codegen.opts import OptError
from tinyjax.compiler.kernel import Kernel

__all__ = ["CudaTarget", "cuda_loops", "scatter_copy", "BLOCK", "VECTOR", "ROW_ELEMS", "MAX_W",
           "ROW_CACHE", "COLS_MAX_W", "COLS_MAX_G", "SORT_SHARED", "SORT_SCRATCH"]

BLOCK = 256            # threads per block of elementwise kernels (and at least of reductions)
VECTOR = 4             # points per thread on the vectorised path
ROW_ELEMS = 16         # reduce elements per thread before more threads join an output
MAX_W = 512            # threads per output point
ROW_CACHE = 128        # most bytes per thread kept in registers between reduce passes
COLS_MAX_W = 8         # ... when threads run along the outputs: a warp spans 32 of them
COLS_MAX_G = 256       # ... and the most blocks sharing one output's reduction
SORT_SHARED = 4096     # longest row sorted in shared memory
SORT_SCRATCH = 1 << 22  # indices of the global scratch area for longer rows


@dataclass(frozen=True)
class CudaTarget:
    """What the passes need to know of the GPU: ``sms`` streaming multiprocessors (how many
    blocks fill it), ``wgmma`` whether it has Hopper's warpgroup MMA (sm_90a)."""
    sms: int = 132
    wgmma: bool = True

    @property
    def busy(self) -> int:
        """Threads that fill the GPU."""
        return self.sms * 2048


def _pow2ceil(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def cuda_loops(k: Kernel, target: CudaTarget = CudaTarget(),
               trace: Optional[Callable[[GpuKernel], None]] = None,
               tiled: Optional[Callable] = None, narrow: bool = True) -> GpuKernel:
    """The GPU passes of ``k`` (see the module docstring), ``trace`` seeing it after each;
    ``tiled(gk, target, trace)``: a product's tile passes, or None where they do not apply
    (then it is a reduction like any other); ``narrow``: 32-bit indices where they fit."""
    gk = gpu_base(k)
    steps: list = []
    if k.gemm is not None and tiled is not None:
        out = tiled(gk, target, trace)
        if out is not None:
            return out
    if gk.kind == "sort":
        steps.append(("sort_rows", _sort_plan(k)))
    elif gk.kind == "scatter":
        mode = scatter_mode(k)
        nu = prod(k.scatter_shape)
        block, grid = (1, min(nu, 1)) if mode == "serial" else \
            (BLOCK, min(cdiv(nu, BLOCK), MAX_GRID_X))
        copy = cuda_loops(scatter_copy(k), target, narrow=False)
        steps.append(("scatter_updates", (mode, block, grid, copy)))
    elif gk.kind == "reduce":
        steps += _reduce_steps(k, target)
    else:
        steps.append(("grid_stride", (BLOCK,)))
        if gpu_opts.vector_store(k, VECTOR):
            steps.append(("vectorize", (VECTOR,)))
    if narrow and gk.kind in ("elementwise", "reduce"):
        steps.append(("index32", ()))
    for name, args in steps:
        try:
            gk = gpu_opts.GPU_PASSES[name](gk, *args)
        except OptError:
            if name not in ("row_cache", "index32"):  # these two apply where they can
                raise
            continue
        if trace is not None:
            trace(gk)
    return gk


def _reduce_steps(k: Kernel, target: CudaTarget) -> list:
    """The passes of a reduction: its thread layout, a split over blocks, vector loads, the
    row cache."""
    full, red = k.full_shape, set(k.reduce_axes)
    outer = [a for a in range(len(full)) if a not in red]
    O, R = prod(full[a] for a in outer), prod(full[a] for a in red)
    ro = next((a for a in reversed(sorted(red)) if full[a] > 1), None)
    loads = [u.arg[1] for rb in [s[2] for s in k.pre] + [k.rbody] for u in rb
             if u.op == "LOAD" and not u.srcs]
    order, oo = output_order(k, outer, loads)
    rows = cols = 0
    for index in loads:
        cr, co = gpu_opts.coef(index, ro), gpu_opts.coef(index, oo)
        rows += cr is not None and abs(cr) <= 1
        cols += co is not None and abs(co) <= 1
    busy = target.busy
    if oo is not None and cols > rows:
        W = 1
        while W < COLS_MAX_W and 2 * W <= R and O * W < busy:
            W *= 2
        T, layout, least, gmax = BLOCK, "cols", W * 8, COLS_MAX_G
    else:
        W = min(_pow2ceil(cdiv(max(R, 1), ROW_ELEMS)), MAX_W)
        while W < MAX_W and W < R and O * W < busy:
            W *= 2
        T, layout, least, gmax = max(W, BLOCK), "rows", W * 32, MAX_GRID_X
    steps = [("group_reduce", (layout, W, T, tuple(order)))]
    blocks = cdiv(O, T // W)
    if not k.pre and not k.full_epilogue and 0 < blocks < 2 * busy // T:
        G = max(1, min(cdiv(2 * busy // T, blocks), R // least, gmax))
        if G > 1:
            steps.append(("split_reduce", (G,)))
    if blocks > MAX_GRID_X:
        raise NotImplementedError(f"cuda: {k.name}: {O} outputs exceed the grid")
    red_axes = [a for a in range(len(full)) if a in red]
    if layout == "rows" and not k.pre and red_axes and full[red_axes[-1]] % VECTOR == 0 and \
            gpu_opts.vector_loads(k, k.rbody, red_axes[-1], VECTOR):
        steps.append(("vectorize", (VECTOR,)))
    steps.append(("row_cache", (ROW_CACHE,)))
    return steps


def output_order(k: Kernel, outer: list, loads: list) -> tuple[list, Optional[int]]:
    """The output axes in the order the flat output index runs over them, and the innermost
    (consecutive threads along it in a ``cols`` layout): the kernel's last, or the axis the
    result is stored along with unit stride when no fewer loads read along it with stride
    at most 1 (a convolution's output channels, NHWC: coalesced stores, and the input window
    read once for all channels)."""
    full = k.full_shape
    live = [a for a in outer if full[a] > 1]
    if not live:
        return outer, None
    store = k.body[-1].arg[1] if k.body and k.body[-1].op == "STORE" else None

    def score(a):
        n = sum(c is not None and abs(c) <= 1 for c in (gpu_opts.coef(i, a) for i in loads))
        return n + (store is not None and gpu_opts.coef(store, a) == 1)
    best = max(live, key=lambda a: (score(a), a == live[-1]))
    return [a for a in outer if a != best] + [best], best


def _sort_plan(k: Kernel) -> tuple:
    """(mode, block, grid) of a sort: one block per row (rows in a grid-stride loop)."""
    n = k.full_shape[k.sort[0]]
    rows = prod(k.full_shape) // n if n else 0
    if n <= SORT_SHARED:
        return ("shared", min(1024, max(32, _pow2ceil(n))), min(rows, MAX_GRID_X))
    return ("global", 1024, min(rows, max(1, SORT_SCRATCH // n)))


def scatter_mode(k: Kernel) -> str:
    """How the updates of a scatter combine into the output (see the module docstring)."""
    sc = k.sbody[-1]
    dt = np.dtype(k.sbody[sc.srcs[1]].dtype)
    if sc.arg == "replace":
        # the per-element winner array is module memory: not for huge outputs
        return "winner" if prod(k.scatter_shape) < 2 ** 32 - 1 and k.bufs[0][1] <= 1 << 28 \
            else "serial"
    if dt.itemsize < 4 or dt == np.bool_:
        return "serial"
    if sc.arg == "add" and (dt.kind in "iu" or dt.itemsize == 4 or dt == np.float64):
        return "atomic"
    if sc.arg in ("max", "min") and dt.kind in "iu":
        return "atomic"
    return "cas"


def scatter_copy(k: Kernel) -> Kernel:
    """The copy phase of scatter ``k``: ``body`` as an elementwise kernel over its buffers."""
    return Kernel(f"{k.name}_copy", k.bufs, k.buf_ids, k.full_shape, (), None, None, [], k.body)
