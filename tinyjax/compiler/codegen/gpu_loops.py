"""A kernel's launch on a GPU: what the GPU passes (:mod:`tinyjax.compiler.codegen.gpu_opts`)
transform and :mod:`~tinyjax.compiler.codegen.gpu_linearizer` turns into loop IR.

A GPU kernel has no loop per axis: its output points are spread over the launch's threads.
:class:`GpuKernel` records how -- threads per block, points per thread, threads per
output, blocks per output group, registers kept between passes, the index width -- and
:func:`gpu_base` is where every kernel starts: the kind its structure follows, no decision
made yet.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tinyjax.compiler.kernel import Kernel

__all__ = ["GpuKernel", "gpu_base", "MAX_GRID_X", "cdiv", "prod"]

MAX_GRID_X = 2 ** 31 - 1


def cdiv(a: int, b: int) -> int:
    return -(-a // b)


def prod(xs) -> int:
    return int(np.prod(list(xs), dtype=np.int64))


@dataclass(frozen=True)
class GpuKernel:
    """``kernel`` as it runs on a GPU.

    ``kind``: elementwise (a grid-stride loop over the points), reduce, sort, scatter or gemm;
    ``block``: threads per block; ``lanes``: consecutive points per thread along the
    innermost axis, moved by 16-byte accesses (elementwise; a ``rows`` reduction's reduce
    axis); ``layout``/``W``/``G``: a reduction's thread layout (``rows``: an output's ``W``
    threads consecutive; ``cols``: consecutive threads on consecutive outputs), threads per
    output and blocks per group of outputs; ``order``: the output axes in the order the flat
    output index runs over them; ``cache``: the loads (``(slot, index)``) a reduction keeps in
    registers between its passes; ``index``: the C type of index arithmetic; ``mode``: how a
    scatter's updates combine or where a sort keeps its indices; ``grid``: blocks (of a
    scatter: those of its update launch); ``copy``: a scatter's copy launch (an elementwise
    GpuKernel); ``tile``: a product's tile plan
    (:class:`tinyjax.compiler.codegen.cuda_gemm.TilePlan`).  ``applied``: the passes, as in
    :class:`~tinyjax.compiler.codegen.loops.LoopKernel`."""
    kernel: Kernel
    kind: str
    block: int = 0
    grid: int = 0
    lanes: int = 1
    layout: str = ""
    W: int = 1
    G: int = 1
    order: tuple = ()
    cache: tuple = ()
    index: str = "long"
    mode: str = ""
    copy: Any = None
    tile: Any = None
    applied: tuple = field(default=())

    @property
    def P(self) -> int:
        """Output points per block (a reduction)."""
        return self.block // self.W

    def describe(self) -> str:
        """The decisions in a few words (DEBUG=2's launch column)."""
        if self.kind == "gemm":
            return self.tile.describe()
        return self.kind + {"elementwise": f" x{self.lanes}",
                            "reduce": f" {self.layout} W={self.W} G={self.G}",
                            "sort": f" {self.mode}", "scatter": f" {self.mode}"}[self.kind]

    def after(self, step: tuple, **changes) -> "GpuKernel":
        """A copy with ``changes``, after the pass ``step`` = (name, arguments, label)."""
        return replace(self, applied=self.applied + (step,), **changes)


def gpu_base(k: Kernel) -> GpuKernel:
    """``k`` before any GPU pass: its kind (a product is a reduce until a tile plan applies)."""
    if k.sort is not None:
        kind = "sort"
    elif k.scatter_shape is not None:
        kind = "scatter"
    elif k.reduce_op is not None:
        kind = "reduce"
    else:
        kind = "elementwise"
    return GpuKernel(k, kind)
