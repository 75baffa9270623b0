"""CUDA launch geometry shared by the renderers: a launch's grid, block and shared memory,
and whether a kernel's index arithmetic fits in 32 bits."""
from __future__ import annotations

import math
from typing import NamedTuple

from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape.symbolic import Node, magnitude

__all__ = ["LaunchDims", "INT32_MAX", "fits_int32"]


class LaunchDims(NamedTuple):
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int


INT32_MAX = (1 << 31) - 1


def fits_int32(k: Kernel, *sizes: int) -> bool:
    """Whether 32-bit index arithmetic is exact for ``k``: every address and mask it
    computes (and every partial result of one), its loop extent and ``sizes`` stay below
    2**31.  64-bit divisions by constants (unravelling a flat index, a convolution's window
    offsets) cost several times their 32-bit forms."""
    nodes = []
    for uops in [k.rbody, k.body] + [s[2] for s in k.pre]:
        for u in uops:
            if u.op in ("LOAD", "STORE"):  # (slot, index, valid)
                nodes += [u.arg[1], u.arg[2]]
            elif u.op == "INDEX":
                nodes.append(u.arg)
    return (all(not isinstance(n, Node) or magnitude(n) < INT32_MAX for n in nodes)
            and max((math.prod(k.full_shape), *sizes)) < INT32_MAX - (1 << 20))
