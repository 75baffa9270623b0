"""How a matmul-shaped reduction (a kernel with a :class:`~tinyjax.compiler.kernel.GemmPlan`)
runs on the CPU: the decisions of the packed product, made here so that the renderer only
spells them (:mod:`tinyjax.backends.c.gemm`).

Both operands are packed into zero-padded panels (``a``: MR rows, ``b``: NR columns, K
values each) and every MR x NR tile runs a register-blocked micro-kernel over all of K, the
epilogue applied to the finished tile.  The strategies:

* ``fused``: all of ``b`` fits in L2 and an ``a`` panel in L1: ``b`` is packed once, each
  ``a`` panel right before its tiles by the thread that multiplies it (a conv never writes
  its windows out whole);
* ``grouped``: all of ``a`` is packed first, ``b`` a group of panels (~256 KiB) at a time by
  the thread that multiplies every ``a`` panel by it;
* ``splitk``: a small result over a long K (a conv's kernel gradient): K in chunks over the
  threads, each into its own copy of the result, the copies summed at the end;
* ``batched``: with at least ``BATCH_PARALLEL_MIN`` products (outer axes: attention's
  heads), each thread packs and multiplies whole products.

``m_axes``/``n_axes``: the order in which each side's axes are flattened into panel rows;
where packing reads more than the epilogue writes (K at least the other side's size), the
axis an operand is read along with unit stride goes last (a conv's channels), so that a
panel's rows are consecutive elements.

``swapped``: the operands change sides where that pads less: a tile is MR x NR outputs
and a thin product's short side fills a panel of MR rows better than one of NR columns
(a conv's kernel gradient over 5 taps: 8 rows against 32 columns).

``threads``: the cost model -- a product too small to gain from threads (fewer than
``PARALLEL_MIN_FLOPS`` multiply-adds) runs on the calling thread with no parallel region.
Each operand's panels are filled (``pack``) along its unit-stride axis: ``rows`` (rows
innermost), ``blocked`` (the last reduce axis along the reads: blocks of ``PACK_BLOCK``
values per row, written transposed; a conv's windows, channels last) or ``k`` (reduce axes
innermost).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape.symbolic import as_affine

__all__ = ["GemmLoops", "cpu_gemm", "PANEL_ROWS", "PACK_BLOCK"]

# the most rows of a packed panel (the AVX-512 sizes of TJ_MR, TJ_NR and TJ_NRD)
PANEL_ROWS = {"TJ_MR": 8, "TJ_NR": 32, "TJ_NRD": 16}
PANEL_L1_BYTES = 32768   # a packed panel up to this size is filled in L1
L2_BYTES = 262144        # what the fused strategy's packed b and split-K's result may take
BATCH_PARALLEL_MIN = 16  # this many products (outer axes) go to the threads whole
PACK_BLOCK = 32          # values per row of a panel computed at a time before the transpose
PARALLEL_MIN_FLOPS = 1 << 22  # multiply-adds below which a product runs on one thread


@dataclass(frozen=True)
class GemmLoops:
    """The decisions for one product (see the module docstring).  ``steps``: first-reduce-
    axis values per split-K chunk, ``chunks`` their number; ``pack_a``/``pack_b``: how
    each operand's panels are filled."""
    strategy: str
    batched: bool
    threads: bool
    pack_a: str
    pack_b: str
    m_axes: tuple
    n_axes: tuple
    steps: int = 0
    chunks: int = 0
    swapped: bool = False


def _rows_contiguous(k: Kernel, side, row_axis: int) -> bool:
    """Whether the loads of one operand run with unit stride along its row axis (and not
    along the innermost reduce axis): then packing loops over rows innermost."""
    row, col = 0, 0
    for i in side:
        u = k.rbody[i]
        if u.op != "LOAD":
            continue
        aff = as_affine(u.arg[1])
        if aff is None:
            continue
        coefs = {v.name: c for v, c in aff[0].items()}
        row += coefs.get(f"i{row_axis}") == 1
        col += bool(k.reduce_axes) and coefs.get(f"i{k.reduce_axes[-1]}") == 1
    return row > col


def _unit_stride_last(k: Kernel, side, axes: tuple) -> tuple:
    """``axes`` with the one every load of the operand reads with unit stride moved last."""
    units = set()
    for i in side:
        u = k.rbody[i]
        if u.op == "LOAD":
            aff = as_affine(u.arg[1])
            if aff is None:
                return axes
            coefs = {v.name: c for v, c in aff[0].items()}
            units.add(next((a for a in axes if abs(coefs.get(f"i{a}", 0)) == 1), None))
    if len(units) != 1 or None in units:
        return axes
    unit = units.pop()
    return tuple(a for a in axes if a != unit) + (unit,)


def _pack(k: Kernel, side, axes, panel_rows: int, klen: int, esize: int, chunked: bool) -> str:
    """How the panels of one operand are filled (``rows``, ``blocked`` or ``k``).  A panel
    too big for L1 fills k by k even when its reads run along K: its source rows stay in L1,
    whereas filled row by row every line of it would be fetched again for each row."""
    panel_bytes = panel_rows * klen * esize
    if _rows_contiguous(k, side, axes[-1]):
        return "rows"
    single = len(k.reduce_axes) == 1
    if panel_bytes <= PANEL_L1_BYTES and (single and not chunked or not single and
                                          _last_reduce_contiguous(k, side)):
        return "blocked"
    return "rows" if panel_bytes > PANEL_L1_BYTES else "k"


def _last_reduce_contiguous(k: Kernel, side) -> bool:
    """Whether every load of one operand reads the last reduce axis with unit stride (a conv
    window's input channels)."""
    loads = [k.rbody[i] for i in side if k.rbody[i].op == "LOAD"]
    for u in loads:
        aff = as_affine(u.arg[1])
        if aff is None or {v.name: c for v, c in aff[0].items()}.get(
                f"i{k.reduce_axes[-1]}") != 1:
            return False
    return bool(loads)


def cpu_gemm(k: Kernel, parallel_min_flops: Optional[int] = None) -> GemmLoops:
    """The CPU decisions for product ``k`` (see the module docstring)."""
    if parallel_min_flops is None:
        parallel_min_flops = PARALLEL_MIN_FLOPS
    g, full = k.gemm, k.full_shape
    esize = 8 if np.dtype(k.acc_dtype) == np.float64 else 4
    nr = "TJ_NRD" if esize == 8 else "TJ_NR"
    a_uops, m_axes, b_uops, n_axes = g.a_uops, g.m_axes, g.b_uops, g.n_axes
    M = int(np.prod([full[a] for a in m_axes]))
    N = int(np.prod([full[a] for a in n_axes]))
    K = int(np.prod([full[a] for a in k.reduce_axes]))
    # swap where that halves the padded tiles, unless it loses the fused strategy (b then
    # no longer fits L2: the big operand would be packed out of cache)
    swapped = (_padded(N, M, PANEL_ROWS[nr]) * 2 <= _padded(M, N, PANEL_ROWS[nr])
               and (_fits_fused(M, K, esize) or not _fits_fused(N, K, esize)))
    if swapped:
        a_uops, m_axes, b_uops, n_axes, M, N = b_uops, n_axes, a_uops, m_axes, N, M
    outer = int(np.prod([full[a] for a in g.outer_axes]))
    fused = _fits_fused(N, K, esize)
    S0 = full[k.reduce_axes[0]]
    kin = K // S0
    steps = max(1, 1024 // kin)
    chunks = -(-S0 // steps)
    threads = M * N * K * outer >= parallel_min_flops
    splitk = (threads and not fused and M * N * esize <= L2_BYTES and chunks >= 4
              and K >= 8 * max(M, N) and not g.outer_axes)
    strategy = "splitk" if splitk else ("fused" if fused else "grouped")
    klen = steps * kin if splitk else K
    m_axes = _unit_stride_last(k, a_uops, m_axes) if K >= N else m_axes
    n_axes = _unit_stride_last(k, b_uops, n_axes) if K >= M else n_axes
    return GemmLoops(
        strategy, outer >= BATCH_PARALLEL_MIN, threads,
        _pack(k, a_uops, m_axes, PANEL_ROWS["TJ_MR"], klen, esize, splitk),
        _pack(k, b_uops, n_axes, PANEL_ROWS[nr], klen, esize, splitk),
        m_axes, n_axes, steps if splitk else 0, chunks if splitk else 0, swapped)


def _fits_fused(n: int, k: int, esize: int) -> bool:
    """Whether the fused strategy applies: all of ``b`` (n x k) fits L2, an ``a`` panel L1."""
    return n * k * esize <= L2_BYTES and k * esize <= 8192


def _padded(m: int, n: int, nr: int) -> int:
    """The outputs the tiles of an m x n product compute, padding included."""
    mr = PANEL_ROWS["TJ_MR"]
    return -(-m // mr) * mr * (-(-n // nr) * nr)
