"""How a matmul-shaped reduction (a kernel with a :class:`~tinyjax.compiler.kernel.GemmPlan`)
runs on the CPU: the decisions of the packed product, each a named pass over a
:class:`GemmLoops` (:func:`base_product`, then :func:`swap_operands`, :func:`fuse_packing`
or :func:`split_k`, :func:`parallelize`, :func:`unit_stride_last`, :func:`pack`,
:func:`strided_views`, :func:`read_in_place`), chosen by the cost model of :func:`cpu_gemm`.
:mod:`~tinyjax.compiler.codegen.cpu_gemm_linearizer` makes the loop IR of any of them (what
``DEBUG=3`` prints after each pass), and the C renderer only spells it.

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
``PARALLEL_MIN_FLOPS`` multiply-adds, each result element counted as ``EPILOGUE_WORK``
more) runs on the calling thread with no parallel region.
Each operand's panels are filled (``pack``) along its unit-stride axis: ``rows`` (rows
innermost), ``blocked`` (the last reduce axis along the reads: blocks of ``PACK_BLOCK``
values per row, written transposed; a conv's windows, channels last) or ``k`` (reduce axes
innermost).
``views``: an operand that is one buffer read as it is at an affine index (a weight, an
activation, a transposed gradient), or a result stored as it is, is a :class:`StridedView`:
the support library's driver fills (stores) it, so the kernel compiles no function of its
own for it -- most of a training step's products are such, and the C compiler's time goes
with the C it is given.  ``read_in_place``: a view ``b`` whose panels' columns have unit
stride and which spans little is not packed at all: the micro-kernel reads its rows where
they are (``pack_b`` ``none``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape.symbolic import as_affine

__all__ = ["GemmLoops", "StridedView", "cpu_gemm", "operands", "base_product", "swap_operands",
           "fuse_packing", "split_k", "parallelize", "unit_stride_last", "pack",
           "strided_views", "read_in_place", "PANEL_ROWS", "PANEL_ROWS_BY_WIDTH", "PACK_BLOCK"]

# the rows of a packed panel (TJ_MR, TJ_NR, TJ_NRD) in the prelude's two configurations:
# 16-float vectors (AVX-512), else 8 (AVX2)
PANEL_ROWS_BY_WIDTH = {"TJ_MR": (8, 6), "TJ_NR": (32, 16), "TJ_NRD": (16, 8)}
# the most rows of a packed panel (the AVX-512 sizes)
PANEL_ROWS = {name: rows[0] for name, rows in PANEL_ROWS_BY_WIDTH.items()}
PANEL_L1_BYTES = 32768   # a packed panel up to this size is filled in L1
L2_BYTES = 262144        # what the fused strategy's packed b and split-K's result may take
BATCH_PARALLEL_MIN = 16  # this many products (outer axes) go to the threads whole
PACK_BLOCK = 32          # values per row of a panel computed at a time before the transpose
PARALLEL_MIN_FLOPS = 1 << 21  # multiply-adds below which a product runs on one thread
# what a result element costs besides its K multiply-adds (its tile stored, the epilogue
# run over it), in multiply-adds: a conv over one input channel (K = 5) is mostly this
EPILOGUE_WORK = 32
B_IN_PLACE_BYTES = 524288  # the most a view operand b may span to be read without packing
MAX_VIEW_OUTER = 4       # the outer axes a StridedView holds (tj_view's ext and str)


@dataclass(frozen=True)
class StridedView:
    """An operand read (a result written) as it is: element ``(p, q)`` of product ``ob``
    (``p`` a panel row, ``q`` along K; for the result its row and column) is
    ``bufs[slot][offset + p * row_stride + q * col_stride + sum(i * stride)]``, the outer
    axes' indices ``i`` unravelled from ``ob`` over ``outer``'s ``(extent, stride)`` pairs,
    the last fastest."""
    slot: int
    offset: int
    row_stride: int
    col_stride: int
    outer: tuple = ()


@dataclass(frozen=True)
class GemmLoops:
    """The decisions for one product (see the module docstring).  ``steps``: first-reduce-
    axis values per split-K chunk, ``chunks`` their number; ``pack_a``/``pack_b``: how
    each operand's panels are filled; ``applied``: the passes that made it, in order, each
    ``(name, arguments)``."""
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
    views: tuple = (None, None, None)  # StridedView or None: operand a, operand b, result
    applied: tuple = ()

    def __str__(self) -> str:
        views = "".join(n for n, v in zip("abc", self.views) if v is not None)
        return (f"{self.strategy}{' threads' if self.threads else ''}"
                f"{' batched' if self.batched and self.threads else ''}"
                f"{' swapped' if self.swapped else ''} pack a:{self.pack_a} b:{self.pack_b}"
                f" rows {self.m_axes} cols {self.n_axes}" + (f" views {views}" if views else ""))


def operands(k: Kernel, gl: GemmLoops) -> tuple:
    """``((a's ops, its root), (b's ops, its root))`` of product ``k`` as ``gl`` has its
    sides."""
    g = k.gemm
    sides = ((g.a_uops, g.a_root), (g.b_uops, g.b_root))
    return sides[::-1] if gl.swapped else sides


# ---- the passes: each a named transformation of a product's decisions -------------------


def _step(gl: GemmLoops, name: str, args: tuple, **changes) -> GemmLoops:
    return replace(gl, applied=gl.applied + ((name, args),), **changes)


def base_product(k: Kernel) -> GemmLoops:
    """The plain product: the operands on the sides the plan gives them, each panel filled
    k by k (right for any operand), b packed in groups, on the calling thread, no views."""
    return GemmLoops("grouped", False, False, "k", "k", k.gemm.m_axes, k.gemm.n_axes)


def swap_operands(k: Kernel, gl: GemmLoops) -> GemmLoops:
    """The operands change sides (``a`` becomes the panels of NR columns)."""
    return _step(gl, "swap_operands", (), swapped=not gl.swapped, m_axes=gl.n_axes,
                 n_axes=gl.m_axes, pack_a=gl.pack_b, pack_b=gl.pack_a)


def fuse_packing(k: Kernel, gl: GemmLoops) -> GemmLoops:
    """``b`` packed once, each ``a`` panel right before its tiles (the ``fused`` strategy)."""
    return _step(gl, "fuse_packing", (), strategy="fused")


def split_k(k: Kernel, gl: GemmLoops, steps: int) -> GemmLoops:
    """K in chunks of ``steps`` values of the first reduce axis, each into its own copy of
    the result, the copies summed at the end (the ``splitk`` strategy)."""
    chunks = -(-k.full_shape[k.reduce_axes[0]] // steps)
    return _step(gl, "split_k", (steps,), strategy="splitk", steps=steps, chunks=chunks)


def parallelize(k: Kernel, gl: GemmLoops, batched: bool) -> GemmLoops:
    """The product on the threads (``batched``: whole products to each thread)."""
    return _step(gl, "parallelize", (batched,), threads=True, batched=batched)


def unit_stride_last(k: Kernel, gl: GemmLoops, side: str) -> GemmLoops:
    """``side``'s rows flattened with the axis its loads read with unit stride last (a
    conv's channels), so that a panel's rows are consecutive elements."""
    uops = operands(k, gl)[side == "b"][0]
    field = "m_axes" if side == "a" else "n_axes"
    return _step(gl, "unit_stride_last", (side,),
                 **{field: _unit_stride_last(k, uops, getattr(gl, field))})


def pack(k: Kernel, gl: GemmLoops, side: str, how: str) -> GemmLoops:
    """``side``'s panels filled ``how`` (``rows``, ``blocked`` or ``k``)."""
    return _step(gl, "pack", (side, how), **{f"pack_{side}": how})


def strided_views(k: Kernel, gl: GemmLoops) -> GemmLoops:
    """Each operand that is one buffer read as it is, and the result where it is stored as
    it is, a :class:`StridedView` (the support library fills and stores those itself)."""
    (a_uops, _), (b_uops, _) = operands(k, gl)
    views = (_operand_view(k, a_uops, gl.m_axes), _operand_view(k, b_uops, gl.n_axes),
             _result_view(k, gl.m_axes, gl.n_axes))
    return _step(gl, "strided_views", (), views=views)


def read_in_place(k: Kernel, gl: GemmLoops) -> GemmLoops:
    """Operand ``b`` (a view) read by the micro-kernel where it is, not packed: its
    panels' columns have unit stride (``pack_b`` ``none``)."""
    return _step(gl, "read_in_place", ("b",), pack_b="none")


def _b_in_place(gl: GemmLoops, N: int, K: int, esize: int, nr: str) -> bool:
    """Whether ``b`` is worth reading in place: a view with unit stride along its panels'
    columns, whole panels, and a span of at most ``B_IN_PLACE_BYTES`` -- where N is small
    and K long (a kernel gradient's output gradient) its copy costs as much as the product;
    a larger one is packed, its rows far apart (mlp_step's 4 MB weights read in place made
    the step 1.5x slower).  Not for split-K, whose chunks pack their own panels."""
    v = gl.views[1]
    return (v is not None and v.row_stride == 1 and N % PANEL_ROWS[nr] == 0
            and gl.strategy != "splitk" and abs(v.col_stride) * K * esize <= B_IN_PLACE_BYTES)


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


def cpu_gemm(k: Kernel, parallel_min_flops: Optional[int] = None,
             trace: Optional[Callable[[GemmLoops], None]] = None) -> GemmLoops:
    """The CPU decisions for product ``k`` (see the module docstring): the passes the cost
    model chooses, applied to :func:`base_product`; ``trace`` sees the decisions before
    and after each."""
    if parallel_min_flops is None:
        parallel_min_flops = PARALLEL_MIN_FLOPS
    g, full = k.gemm, k.full_shape
    esize = 8 if np.dtype(k.acc_dtype) == np.float64 else 4
    nr = "TJ_NRD" if esize == 8 else "TJ_NR"
    M = int(np.prod([full[a] for a in g.m_axes]))
    N = int(np.prod([full[a] for a in g.n_axes]))
    K = int(np.prod([full[a] for a in k.reduce_axes]))
    gl = base_product(k)
    steps = [gl]

    def then(step: GemmLoops) -> GemmLoops:
        steps.append(step)
        return step
    # swap where that halves the padded tiles, unless it loses the fused strategy (b then
    # no longer fits L2: the big operand would be packed out of cache)
    if (_padded(N, M, PANEL_ROWS[nr]) * 2 <= _padded(M, N, PANEL_ROWS[nr])
            and (_fits_fused(M, K, esize) or not _fits_fused(N, K, esize))):
        gl = then(swap_operands(k, gl))
        M, N = N, M
    outer = int(np.prod([full[a] for a in g.outer_axes]))
    S0 = full[k.reduce_axes[0]]
    kin = K // S0
    chunk = max(1, 1024 // kin)
    threads = M * N * (K + EPILOGUE_WORK) * outer >= parallel_min_flops
    if _fits_fused(N, K, esize):
        gl = then(fuse_packing(k, gl))
    elif (threads and M * N * esize <= L2_BYTES and -(-S0 // chunk) >= 4
          and K >= 8 * max(M, N) and not g.outer_axes):
        gl = then(split_k(k, gl, chunk))
    if threads:
        gl = then(parallelize(k, gl, outer >= BATCH_PARALLEL_MIN))
    for side, along_k in (("a", K >= N), ("b", K >= M)):
        moved = unit_stride_last(k, gl, side)
        if along_k and (moved.m_axes, moved.n_axes) != (gl.m_axes, gl.n_axes):
            gl = then(moved)
    klen = gl.steps * kin if gl.strategy == "splitk" else K
    for side, (uops, _), axes, R in zip("ab", operands(k, gl), (gl.m_axes, gl.n_axes),
                                        ("TJ_MR", nr)):
        how = _pack(k, uops, axes, PANEL_ROWS[R], klen, esize, gl.strategy == "splitk")
        if how != "k":
            gl = then(pack(k, gl, side, how))
    views = strided_views(k, gl)
    if any(v is not None for v in views.views):
        gl = then(views)
    if _b_in_place(gl, N, K, esize, nr):
        gl = then(read_in_place(k, gl))
    if trace is not None:
        for step in steps:
            trace(step)
    return gl


def _operand_view(k: Kernel, side, rows: tuple) -> Optional[StridedView]:
    """The view an operand is, if it is one load of the accumulator's type (else None)."""
    if len(side) != 1:
        return None
    u = k.rbody[next(iter(side))]
    if u.op != "LOAD" or u.srcs or np.dtype(u.dtype) != np.dtype(k.acc_dtype):
        return None
    return _view(k, u.arg, rows, k.reduce_axes)


def _result_view(k: Kernel, rows: tuple, cols: tuple) -> Optional[StridedView]:
    """The view the result is, if the epilogue stores the accumulator as it is."""
    if k.n_outs != 1 or [u.op for u in k.body] != ["ACC", "STORE"] or k.body[0].arg is not None:
        return None
    return _view(k, k.body[1].arg, rows, cols)


def _view(k: Kernel, access, rows: tuple, cols: tuple) -> Optional[StridedView]:
    """The :class:`StridedView` of the load or store ``access`` (its ``(slot, index,
    valid)``) over the flattened ``rows`` and ``cols`` axes, if one describes it."""
    slot, index, valid = access
    if not isinstance(slot, int) or getattr(valid, "vmin", 1) < 1 \
            or np.dtype(k.bufs[slot][0]) != np.dtype(k.acc_dtype):
        return None
    affine = as_affine(index)
    if affine is None:
        return None
    coefs = {v.name: c for v, c in affine[0].items()}
    outer = k.gemm.outer_axes
    if set(coefs) - {f"i{a}" for a in rows + cols + outer} or len(outer) > MAX_VIEW_OUTER:
        return None
    full = k.full_shape
    row_stride, col_stride = _flat_stride(coefs, rows, full), _flat_stride(coefs, cols, full)
    if row_stride is None or col_stride is None:
        return None
    return StridedView(slot, affine[1], row_stride, col_stride,
                       tuple((full[a], coefs.get(f"i{a}", 0)) for a in outer))


def _flat_stride(coefs: dict, axes: tuple, full: tuple) -> Optional[int]:
    """The stride of the index over ``axes`` flattened (the last fastest) where the address
    moves by ``coefs`` along each axis, if one stride does it (None: the axes do not merge)."""
    stride, span = None, 1
    for a in reversed(axes):
        if full[a] == 1:
            continue
        c = coefs.get(f"i{a}", 0)
        if stride is None:
            stride = c
        elif c != stride * span:
            return None
        span *= full[a]
    return stride or 0


def _fits_fused(n: int, k: int, esize: int) -> bool:
    """Whether the fused strategy applies: all of ``b`` (n x k) fits L2, an ``a`` panel L1."""
    return n * k * esize <= L2_BYTES and k * esize <= 8192


def _padded(m: int, n: int, nr: int) -> int:
    """The outputs the tiles of an m x n product compute, padding included."""
    mr = PANEL_ROWS["TJ_MR"]
    return -(-m // mr) * mr * (-(-n // nr) * nr)
