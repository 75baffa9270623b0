"""How a matmul-shaped reduction (a kernel with a :class:`~tinyjax.compiler.kernel.GemmPlan`)
runs on a GPU: the decisions of the tiled product, each a pass over its
:class:`~tinyjax.compiler.codegen.gpu_loops.GpuKernel` (:func:`mma`, :func:`stage`,
:func:`wgmma`, :func:`tile`, :func:`split_k`), chosen by :func:`gemm_tiles`;
:mod:`tinyjax.compiler.codegen.gemm_linearizer` spells the result as loop IR.

One thread block computes a ``BM x BN`` tile of the (M, N) product (M: the plan's m axes
flattened, N: its n axes, K: the reduce axes; outer axes are the grid's y), looping over K
in ``BK`` slices staged into shared memory:

* tensor cores (``mma.sync`` through inline PTX, no headers): bf16 x bf16 and f16 x f16
  (m16n8k16) when both operands are exactly such values (a 16-bit load cast to float32),
  TF32 (m16n8k8) for float32 operands when the plan allows it (JAX's default precision)
  or when both are 16-bit floats of different kinds (TF32 holds them exactly); fragments
  come from shared memory through ``ldmatrix`` (``.trans`` when the tile runs along M/N;
  TF32 tiles along M/N: 128-bit loads, each giving one lane's values of 2 m16 or 4 n8
  fragments, whose rows/columns are permuted to match), the tile is XOR-swizzled so those
  reads are free of bank conflicts; TF32 operands are rounded to nearest where they are
  computed, and truncated by the tensor cores where they are copied (as in Triton);
* warpgroup MMA (``wgmma.mma_async``, Hopper: ``sm_90a``; :data:`WGMMA`) in place of
  ``mma.sync`` when both operands are copied with ``cp.async`` and need no function: a
  warpgroup (4 warps) multiplies 64 rows by the whole tile, both operands read from shared
  memory through descriptors (the tiles in the 128-byte swizzle's canonical layouts), or
  for TF32, whose shared tiles must run along K, an operand along M/N from registers
  (:func:`_wgmma_regs`);
* otherwise (float32 at ``Precision.HIGHEST``) a SIMT kernel: 8x8 outputs per thread,
  exact float32 fused multiply-adds;
* staging: an operand that is one load whose 16-byte chunks along K or along its rows are
  contiguous and aligned (reshaped, transposed, flipped or padded views too: a mask that
  does not depend on the copied axis zero-fills the chunk; rows may be reordered to put
  the unit-stride axis last), optionally followed by a pointwise function that keeps zero
  at zero (a fused ReLU, applied to the fragments as they leave shared memory), is copied
  with ``cp.async`` in a multi-stage pipeline (:class:`_Copy`); any other operand (a fused
  layer norm, a load along no contiguous axis) is computed element by element from its
  reduce-body uops, the reads running along its unit-stride axis;
* edges: out-of-range elements are staged as zeros and the epilogue (the kernel's body,
  which may read other buffers: a bias, a ReLU) stores only in-range outputs; on the tensor
  cores the finished tile passes through shared memory first, so that the epilogue runs
  with consecutive threads along N (coalesced stores and reads).
* split-K: with few blocks (fewer than two per SM) and a long K, the reduction is cut into
  chunks (a third grid axis): each block writes its raw float32 accumulators into a
  module-global scratch array, and the last block of a tile to finish (an atomic count per
  tile) adds up the tile's partial sums in chunk order (deterministic) and runs the epilogue,
  in the same launch; beyond SPLIT_ONE_LEVEL chunks, the last block of each group of chunks
  adds up the group and the last of those the groups, so that no block reads more than
  about sqrt(splits) tiles.  Like the generic split reductions, the scratch array and the counts
  assume one launch of a kernel at a time (one stream).

float64, kernels whose outer axes exceed the grid and thin products (M, N or K below
``MIN_DIM``) stay on the generic reduction path.  The GPU's size (its SMs: the waves of
blocks decide the tile and split-K) and whether it has warpgroup MMA come from the
:class:`~tinyjax.compiler.codegen.gpu_heuristics.CudaTarget`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from tinyjax.backends.cuda.launch import fits_int32
from tinyjax.compiler.codegen.gpu_loops import GpuKernel
from tinyjax.compiler.codegen.opts import OptError
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape import symbolic
from tinyjax.compiler.shape.symbolic import Node
from tinyjax.config import env_flag

__all__ = ["TilePlan", "gemm_tiles", "mma", "stage", "wgmma", "tile", "split_k", "GEMM_PASSES",
           "WGMMA", "MIN_DIM", "SPLIT_MIN_K", "SPLIT_MAX_BYTES", "SPLIT_ONE_LEVEL"]

def _half(dt) -> Optional[str]:
    dt = np.dtype(dt)
    return "f16" if dt == np.float16 else ("bf16" if dt.name == "bfloat16" else None)


@dataclass(frozen=True)
class _Side:
    """One operand: ``a`` (rows: the m axes) or ``b`` (rows: the n axes)."""
    name: str
    uops: frozenset
    root: int
    axes: tuple            # its row axes (flattened, C order)
    rows: int              # their extent: M or N
    half: Optional[str]    # 'bf16'/'f16' when its values are exactly such 16-bit floats
    kmajor: bool           # its shared tile (and its global reads) run along K
    plain: Optional["_Copy"]  # staged with cp.async (else computed element by element)


@dataclass(frozen=True)
class TilePlan:
    mode: str              # 'bf16' | 'f16' | 'tf32' | 'simt'
    a: _Side
    b: _Side
    M: int
    N: int
    K: int
    outer: int             # product of the outer (batch) axes: the grid's y
    BM: int
    BN: int
    BK: int
    WM: int                # warps along M (tensor cores)
    WN: int
    stages: int
    splits: int = 1        # split-K: chunks of K reduced by separate blocks (see _split)
    kchunk: int = 0        # K per chunk (a multiple of BK) when split
    kaxes: tuple = ()      # the reduce axes in the order K flattens them (see _k_orders)
    index: str = "long"    # the C type of index arithmetic: "int" where no value can overflow it
    wgmma: bool = False    # warpgroup MMA (sm_90a): WM (WN) warps of 16 rows (columns) each
    wg_regs: str = ""      # its operand loaded into registers ('a'/'b'; see _wgmma_regs)

    @property
    def outputs(self) -> int:
        return self.M * self.N * self.outer

    def describe(self) -> str:
        """The plan in a few words: mode, tile, how each operand is staged (``c``: copied
        with cp.async, ``f``: copied then a pointwise function, ``e``: computed element by
        element), M x N x K (x outer), K chunks."""
        stage = "".join(("f" if s.plain.fn else "c") if s.plain else "e" for s in (self.a, self.b))
        split = f" split {self.splits}" if self.splits > 1 else ""
        outer = f"x{self.outer}" if self.outer > 1 else ""
        mma = " wgmma" if self.wgmma else ""
        return (f"gemm {self.mode}{mma} {self.BM}x{self.BN}x{self.BK} stage {stage} "
                f"{self.M}x{self.N}x{self.K}{outer}{split}")

    @property
    def group_size(self) -> int:
        """K chunks per group of a split reduction's two-level sum (all of them up to
        SPLIT_ONE_LEVEL; else about sqrt(splits))."""
        S = self.splits
        return S if S <= SPLIT_ONE_LEVEL else math.isqrt(S - 1) + 1

    @property
    def groups(self) -> int:
        return -(-self.splits // self.group_size)

    @property
    def threads(self) -> int:
        return 256 if self.mode == "simt" else 32 * self.WM * self.WN

    @property
    def esize(self) -> int:
        """Bytes per staged element."""
        return 2 if self.mode in ("bf16", "f16") else 4

    @property
    def tiles(self) -> tuple[int, int]:
        return -(-self.M // self.BM), -(-self.N // self.BN)

    def tile_elems(self, s: _Side) -> int:
        """Elements of one stage of ``s``'s shared tile (SIMT rows padded by 4)."""
        R = self.BM if s.name == "a" else self.BN
        return self.BK * (R + 4) if self.mode == "simt" else self.BK * R

    @property
    def out_ld(self) -> int:
        """Row stride (floats) of the output tile staged in shared memory for the epilogue."""
        return self.BN + 4

    @property
    def shared_bytes(self) -> int:
        tiles = self.stages * (self.tile_elems(self.a) + self.tile_elems(self.b)) * self.esize
        if self.wgmma:  # the stages start at the next 1024-byte boundary (the swizzle atom)
            tiles += WG_ALIGN
        return tiles if self.mode == "simt" else max(tiles, self.BM * self.out_ld * 4)


def _affine(node) -> Optional[tuple[dict, int]]:
    aff = symbolic.as_affine(node) if isinstance(node, Node) else None
    if aff is None:
        return None
    return {v.name: int(c) for v, c in aff[0].items()}, int(aff[1])


def _unit_along_rows(k: Kernel, uops, row_axis: int, k_axis: int) -> bool:
    """Whether the operand's loads run with unit stride along its (last) row axis more than
    along the innermost reduce axis ``k_axis``: then its tile is staged along the rows."""
    row = col = 0
    for i in uops:
        u = k.rbody[i]
        aff = _affine(u.arg[1]) if u.op == "LOAD" else None
        if aff is not None:
            row += aff[0].get(f"i{row_axis}") == 1
            col += aff[0].get(f"i{k_axis}") == 1
    return row > col


def _index_type(k: Kernel, M: int, N: int, K: int, outer: int) -> str:
    """``int`` when every address and mask of the kernel, the flattened M, N, K and the
    outputs fit in 31 bits (see :func:`~tinyjax.backends.cuda.launch.fits_int32`)."""
    return "int" if fits_int32(k, max(M, N, K) + 256, M * N * outer) else "long"


@dataclass(frozen=True)
class _Copy:
    """An operand staged with ``cp.async``: 16-byte chunks of one load along its unit-stride
    axis (zero-filled where its mask fails or out of range), then ``fn`` -- the uops between
    the load and the operand, a pointwise function of the loaded value (a fused ReLU) --
    applied to the fragments as they leave shared memory."""
    slot: int
    load: int                 # the LOAD uop
    index: Node
    valid: Optional[Node]     # None when unmasked
    fn: frozenset = frozenset()


def _chunks_contiguous(index: Node, d: int, V: int) -> bool:
    """Whether ``index`` reads V consecutive, V-aligned elements for every V-aligned run of
    the loop variable ``i<d>`` (the other variables fixed): ``i<d>`` enters with unit stride
    exactly once (as itself or modulo a multiple of V), any other term using it is constant
    over such a run (divided by a multiple of V, then anything) and scaled by a multiple of
    V, and so are the terms without it and the constant -- the views a reshape or transpose
    leaves (a head axis split off K, a flipped kernel)."""
    name = f"i{d}"

    def unit(n) -> bool:  # i_d, or i_d % c: steps by one along a run
        return (isinstance(n, symbolic.Var) and n.name == name) or (
            isinstance(n, symbolic.Mod) and n.c % V == 0 and unit(n.x))

    def constant(n) -> bool:  # the same value along a run
        if name not in _names(n):
            return True
        if isinstance(n, symbolic.Div) and n.c % V == 0 and unit(n.x):
            return True
        return isinstance(n, (symbolic.Div, symbolic.Mod)) and constant(n.x)

    terms, const = symbolic.linear_terms(index)
    units = 0
    for atom, c in terms.items():
        if unit(atom) and int(c) == 1:
            units += 1
        elif not constant(atom) or int(c) % V:
            return False
    return units == 1 and int(const) % V == 0


def _names(n: Node) -> set:
    """The names of the loop variables ``n`` depends on."""
    return {v.name for v in n.vars()}


def _pointwise_fn(k: Kernel, uops, load: int) -> Optional[frozenset]:
    """The operand's uops other than ``load`` when they are a pointwise function of its value
    alone (constants, ALU ops, and the load's own mask, which a zero-filled chunk makes
    redundant) that maps the zero-filled value to zero both with the mask and without it."""
    from tinyjax.backends.interp import _alu
    valid = k.rbody[load].arg[2]
    fn = frozenset(uops) - {load}
    for i in fn:
        u = k.rbody[i]
        if not (u.op in ("CONST", "ALU") or (u.op == "INDEX" and u.arg == valid)):
            return None
    for mask in (False, True):
        vals = {}
        for i in sorted(uops):
            u = k.rbody[i]
            vals[i] = (np.zeros((), u.dtype) if u.op == "LOAD" else
                       np.asarray(mask) if u.op == "INDEX" else
                       np.asarray(u.arg, u.dtype) if u.op == "CONST" else
                       _alu(u.arg, [vals[j] for j in u.srcs], u.dtype))
        if float(vals[max(uops)]) != 0.0:
            return None
    return fn


def _copy(k: Kernel, uops, root: int, axes, kaxes, mode: str) -> Optional[tuple]:
    """``(copy, along K)`` when the operand can be staged with cp.async (see :class:`_Copy`):
    one load (cast from 16 bits in the 16-bit modes, a pointwise function of it in TF32),
    whose index reads aligned 16-byte chunks along the innermost reduce axis or, failing
    that, the innermost row axis (:func:`_chunks_contiguous`), with a mask that does not
    depend on that axis."""
    half = mode in ("bf16", "f16")
    u = k.rbody[root]
    loads = [i for i in uops if k.rbody[i].op == "LOAD"]
    if len(loads) != 1 or k.rbody[loads[0]].srcs:
        return None
    load = loads[0]
    if half:
        if u.op != "CAST" or u.srcs[0] != load or len(uops) != 2:
            return None
        fn = frozenset()
    else:
        fn = _pointwise_fn(k, uops, load) if root != load else frozenset()
        if fn is None:
            return None
    slot, index, valid = k.rbody[load].arg
    size = np.dtype(k.bufs[slot][0]).itemsize
    if size != (2 if half else 4) or not isinstance(index, Node):
        return None
    full = k.full_shape
    known = {f"i{a}" for a in (*axes, *kaxes, *k.gemm.outer_axes)}
    masked = isinstance(valid, Node) and not valid.vmin > 0
    if not _names(index) <= known or (masked and not _names(valid) <= known):
        return None
    V = 16 // size
    for along_k, ax in ((True, kaxes), (False, axes)):
        live = [a for a in ax if full[a] > 1]
        if not live or full[live[-1]] % V:
            continue
        d = live[-1]
        if masked and f"i{d}" in _names(valid):
            continue
        if _chunks_contiguous(index, d, V):
            return _Copy(slot, load, index, valid if masked else None, fn), along_k
    return None


def _side(k: Kernel, name: str, kaxes: tuple, mode: Optional[str] = None,
          axes: Optional[tuple] = None) -> _Side:
    """Operand ``name`` with K flattened in the order ``kaxes`` and its rows in the order
    ``axes`` (default: the plan's)."""
    g = k.gemm
    uops, root, default = ((g.a_uops, g.a_root, g.m_axes) if name == "a" else
                           (g.b_uops, g.b_root, g.n_axes))
    axes = tuple(default if axes is None else axes)
    u = k.rbody[root]
    half = _half(k.rbody[u.srcs[0]].dtype) if u.op == "CAST" else None
    rows = int(np.prod([k.full_shape[a] for a in axes]))
    found = _copy(k, uops, root, axes, kaxes, mode) if mode not in (None, "simt") else None
    if found is not None:
        return _Side(name, uops, root, axes, rows, half, found[1], found[0])
    kmajor = not _unit_along_rows(k, uops, axes[-1], kaxes[-1])
    return _Side(name, uops, root, axes, rows, half, kmajor, None)


def _strides(k: Kernel, uops) -> list[dict]:
    """Per affine load of ``uops``: its stride along each loop variable."""
    out = []
    for i in sorted(uops):
        u = k.rbody[i]
        aff = _affine(u.arg[1]) if u.op == "LOAD" else None
        if aff is not None:
            out.append(aff[0])
    return out


def _row_orders(k: Kernel, name: str) -> list[tuple]:
    """Orders of an operand's row axes to flatten M (or N) in: the plan's, then with the axis
    its load reads with unit stride moved last (a weight gradient's input channels, which
    the kernel lists first): chunks of consecutive rows are then contiguous."""
    g = k.gemm
    uops, axes = (g.a_uops, g.m_axes) if name == "a" else (g.b_uops, g.n_axes)
    orders = [tuple(axes)]
    for st in _strides(k, uops):
        unit = [a for a in axes if st.get(f"i{a}") == 1]
        if unit:
            order = tuple(a for a in axes if a != unit[0]) + (unit[0],)
            if order not in orders:
                orders.append(order)
    return orders


def _k_orders(k: Kernel) -> list[tuple]:
    """Orders of the reduce axes to flatten K in: the kernel's, then for each operand load
    its axes by decreasing stride (its own memory order: a convolution's (channel, kh, kw)
    becomes (kh, kw, channel) for NHWC/HWIO data, contiguous along K)."""
    red = tuple(k.reduce_axes)
    orders = [red]
    for st in _strides(k, k.gemm.a_uops | k.gemm.b_uops):
        order = tuple(sorted(red, key=lambda a: -abs(st.get(f"i{a}", 0))))
        if order not in orders:
            orders.append(order)
    return orders


def _sides(k: Kernel, mode: str) -> tuple[_Side, _Side, tuple]:
    """The operands and the orders of K and of their rows that copy most of them with
    cp.async (those needing no function first), then (for operands computed element by
    element) read most of their loads along K with unit stride (coalesced: a convolution's
    input window and flipped kernel along the channels); the plan's orders on a tie."""
    best = None
    loads = _strides(k, k.gemm.a_uops | k.gemm.b_uops)
    for kaxes in _k_orders(k):
        unit = sum(abs(st.get(f"i{kaxes[-1]}", 0)) == 1 for st in loads)
        for a_axes in _row_orders(k, "a"):
            for b_axes in _row_orders(k, "b"):
                a, b = _side(k, "a", kaxes, mode, a_axes), _side(k, "b", kaxes, mode, b_axes)
                copied = [s for s in (a, b) if s.plain]
                score = (len(copied), -sum(bool(s.plain.fn) for s in copied), unit)
                if best is None or score > best[0]:
                    best = (score, a, b, kaxes)
    return best[1:]


# (BM, BN, BK, warps along M, warps along N, stages) per staged element size, largest first
_CONFIGS = {2: ((128, 256, 64, 2, 4, 3), (128, 128, 64, 2, 4, 4), (128, 64, 64, 2, 2, 3),
                (128, 32, 64, 4, 1, 3), (64, 64, 32, 2, 2, 3)),
            4: ((128, 256, 32, 2, 4, 3), (128, 128, 32, 2, 4, 3), (128, 64, 32, 2, 2, 3),
                (128, 32, 32, 4, 1, 3), (64, 64, 32, 2, 2, 3))}


# warpgroup MMA (wgmma, sm_90a): (BM, BN, BK, warps along M (16 rows each), 1, stages); a
# k-slice's rows are 128 bytes (the 128-byte swizzle atom), so BK = 64 (16-bit) or 32 (TF32)
_WG_CONFIGS = {e: ((256, 128, bk, 16, 1, 4), (128, 128, bk, 8, 1, 4), (128, 64, bk, 8, 1, 4),
                   (64, 128, bk, 4, 1, 4), (64, 64, bk, 4, 1, 4)) for e, bk in ((2, 64), (4, 32))}
# warpgroup MMA on where the target has it (TINYJAX_CUDA_WGMMA=0: off)
WGMMA = env_flag("TINYJAX_CUDA_WGMMA")
WG_ALIGN = 1024


SIMT_BK = 32  # the SIMT kernel's k-slice (128 x 128 tiles)
SM_SHARED_BYTES = 233472  # shared memory per SM (an H100's 228 KiB)
SMALL_PRODUCT = 1 << 30   # multiply-adds below which a product is latency-bound
PREFETCH_MAX = 16  # elements per thread of a computed operand's k-slice (registers)


def _blocks_per_sm(c: tuple, esize: int, wgmma: bool) -> int:
    """How many blocks of config ``c`` one SM holds: by shared memory (its stages; 1 KiB of
    each block is the driver's) and by registers (assuming the ~128 per thread that
    ``__launch_bounds__`` kernels of this size take: 512 threads per SM)."""
    BM, BN, BK, WM, WN, stages = c
    smem = stages * (BM + BN) * BK * esize + (WG_ALIGN if wgmma else 0)
    smem = max(smem, BM * (BN + 4) * 4) + 1024
    return max(1, min(SM_SHARED_BYTES // smem, 512 // (32 * WM * WN)))


def _fitting_tiles(mode: str, M: int, N: int, a: _Side, b: _Side, configs: dict) -> list:
    """The configs (largest first) not wider than the product (a 256-wide tile of a 64-wide
    product would multiply zeros; 32 wide for N <= 32: a convolution's 32 channels) whose
    computed operands' prefetch fits in PREFETCH_MAX registers per thread (more spills)."""
    def prefetch_fits(c):
        threads = 32 * c[3] * c[4]
        return all(s.plain or R * c[2] // threads <= PREFETCH_MAX
                   for s, R in ((a, c[0]), (b, c[1])))

    def width_fits(c):  # 32 wide only for N <= 32, where it is the only width that fits
        return c[1] == 32 if N <= 32 else 64 <= c[1] <= max(64, _pow2ceil(N))
    candidates = configs[2 if mode != "tf32" else 4]
    return [c for c in candidates if c[0] <= max(64, _pow2ceil(M)) and width_fits(c)
            and prefetch_fits(c)] or [candidates[-1]]


def _pick_tile(mode: str, M: int, N: int, K: int, outer: int, a: _Side, b: _Side,
               configs: dict, wgmma: bool = False, sms: int = 132) -> tuple:
    """The tile of a product, of :func:`_fitting_tiles`.  A large product is
    throughput-bound: the largest tile that still gives two blocks per SM.  A small one
    (under SMALL_PRODUCT multiply-adds: microseconds of tensor-core time) is latency-bound,
    so blocks that share an SM overlap and its time is the waves of blocks (each K chunk of a
    split one) times one block's multiply-adds: the tile with the fewest (on a tie the
    larger).  A 2048 x 1024 x 256 product takes 256 tiles of 64 x 128 in one wave rather
    than 512 of 64 x 64 in 1.3 (11.7 against 15.0 us on an H100)."""
    fits = _fitting_tiles(mode, M, N, a, b, configs)

    def blocks(c):
        return -(-M // c[0]) * -(-N // c[1]) * outer
    if M * N * K * outer > SMALL_PRODUCT:
        return next((c for c in fits if blocks(c) >= 2 * sms), fits[-1])
    esize = 2 if mode != "tf32" else 4

    def cost(c):  # waves (K split as split_k will) x the multiply-adds of one block
        S, chunk = _split_chunks(blocks(c), K, c[0], c[1], c[2], sms)
        return -(-blocks(c) * S // (sms * _blocks_per_sm(c, esize, wgmma))) * c[0] * c[1] * chunk
    return min(fits, key=cost)  # min keeps the first (largest) of equals


def _wgmma_regs(mode: str, N: int, a: _Side, b: _Side, on: bool = True) -> Optional[str]:
    """How warpgroup MMA takes the operands, or None where it does not apply (``on``: the
    target has it): both must be copied with cp.async.  The warpgroup multiplies an m64 x k
    operand (shared memory or registers) by a k x n one (shared memory): ``""``, both read
    from shared memory (16-bit types in either orientation, TF32 only along K);
    ``"a"``/``"b"``: TF32 with that operand loaded into registers as the m64 side (``"b"``:
    the warpgroup computes the transposed tile) -- the one along M/N, else one with a
    pointwise function (applied to the registers; one on a shared-memory operand is applied
    to its tile in place)."""
    if not on or N <= 32 or mode not in ("bf16", "f16", "tf32"):
        return None
    if not (a.plain and b.plain):
        return None
    if mode != "tf32":
        return ""
    along_mn = [s.name for s in (a, b) if not s.kmajor]
    if len(along_mn) == 2:
        return None
    if along_mn:
        return along_mn[0]
    with_fn = [s.name for s in (a, b) if s.plain.fn]
    return with_fn[0] if with_fn else ""


def _pow2ceil(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


MIN_DIM = 16  # a product thinner than this (N = 10 classes, K = 9 taps) wastes most of a
#              tile: the generic reduction serves it better
SPLIT_MIN_K = 256                 # the least K one chunk of a split reduction keeps
SPLIT_MAX_BYTES = 64 << 20        # the partial sums' scratch (module memory)
SPLIT_ONE_LEVEL = 8               # up to this many chunks are added up by one block


def _split_chunks(blocks: int, K: int, BM: int, BN: int, BK: int,
                  sms: int = 132) -> tuple[int, int]:
    """(chunks, chunk length) that :func:`split_k` cuts K into for ``blocks`` tiles (until
    about three blocks per SM); (1, K) unsplit."""
    S = min(-(-3 * sms // max(blocks, 1)), K // SPLIT_MIN_K,
            # float32 tile slots per chunk, and per group of chunks (at most as many)
            SPLIT_MAX_BYTES // (2 * 4 * BM * BN * blocks), 65535)
    if blocks >= 2 * sms or S < 2:
        return 1, K
    chunk = -(-K // S)
    chunk = -(-chunk // BK) * BK
    S = -(-K // chunk)
    return (S, chunk) if S >= 2 else (1, K)


# ---- the passes -----------------------------------------------------------------------------

def _sizes(k: Kernel) -> tuple[int, int, int, int]:
    g, full = k.gemm, k.full_shape
    return tuple(int(np.prod([full[a] for a in axes])) for axes in
                 (g.m_axes, g.n_axes, k.reduce_axes, g.outer_axes))


def _step(gk: GpuKernel, name: str, args: tuple, label: str, **changes) -> GpuKernel:
    p = replace(gk.tile, **changes)
    return gk.after((name, args, label), tile=p, block=p.threads,
                    grid=p.tiles[0] * p.tiles[1] * p.outer * p.splits)


def mma(gk: GpuKernel, mode: str) -> GpuKernel:
    """The product's multiply: the tensor cores' ``mma.sync`` on ``bf16``, ``f16`` or
    ``tf32`` operands, or exact float32 fused multiply-adds (``simt``: 8x8 outputs per
    thread).  Its operands keep the kernel's orders and are computed element by element
    until :func:`stage` says otherwise; the tile is 128 x 128 x ``SIMT_BK`` until
    :func:`tile`."""
    k = gk.kernel
    if k.gemm is None or gk.kind != "reduce" or gk.layout or mode not in ("bf16", "f16", "tf32",
                                                                          "simt"):
        raise OptError(f"mma: {k.name} is not a plain product ({mode})")
    M, N, K, outer = _sizes(k)
    red = tuple(k.reduce_axes)
    a, b = _side(k, "a", red), _side(k, "b", red)
    p = TilePlan(mode, a, b, M, N, K, outer, 128, 128, SIMT_BK, 1, 1, 2, kaxes=red,
                 index="long")
    return gk.after(("mma", (mode,), f"mma({mode})"), kind="gemm", tile=p, block=p.threads,
                    grid=p.tiles[0] * p.tiles[1] * p.outer)


def stage(gk: GpuKernel, kaxes: tuple, a_axes: tuple, b_axes: tuple) -> GpuKernel:
    """How the operands reach shared memory: K flattened in the order ``kaxes``, each
    operand's rows in the order given; an operand whose 16-byte chunks are then contiguous
    (and needs at most a pointwise function that keeps zero at zero) is copied with
    ``cp.async`` (not SIMT), any other computed element by element."""
    p = gk.tile
    k = gk.kernel
    mode = None if p.mode == "simt" else p.mode
    a, b = _side(k, "a", tuple(kaxes), mode, tuple(a_axes)), _side(k, "b", tuple(kaxes), mode,
                                                                    tuple(b_axes))
    copied = "".join(("f" if s.plain.fn else "c") if s.plain else "e" for s in (a, b))
    return _step(gk, "stage", (tuple(kaxes), tuple(a_axes), tuple(b_axes)), f"stage({copied})",
                 a=a, b=b, kaxes=tuple(kaxes))


def wgmma(gk: GpuKernel, regs: str) -> GpuKernel:
    """Warpgroup MMA (``wgmma.mma_async``, sm_90a) in place of ``mma.sync``: both operands
    copied with cp.async, read from shared memory through descriptors -- or with ``regs``
    (``a``/``b``, TF32) that one from registers as the m64 side (``b``: the transposed
    tile)."""
    p = gk.tile
    if p.mode not in ("bf16", "f16", "tf32") or not (p.a.plain and p.b.plain) or \
            (regs and p.mode != "tf32") or regs not in ("", "a", "b"):
        raise OptError(f"wgmma: {gk.kernel.name} ({p.mode}) cannot take warpgroup MMA")
    return _step(gk, "wgmma", (regs,), f"wgmma({regs or 'shared'})", wgmma=True, wg_regs=regs)


def tile(gk: GpuKernel, BM: int, BN: int, BK: int, WM: int, WN: int, stages: int) -> GpuKernel:
    """A block computes a ``BM x BN`` tile over K slices of ``BK`` staged through shared
    memory in ``stages`` buffers, with ``WM x WN`` warps (warpgroup MMA: ``WM`` warps of 16
    rows)."""
    p = gk.tile
    if p.mode == "simt" and (BM, BN, WM, WN) != (128, 128, 1, 1):
        raise OptError(f"tile: the SIMT product takes 128 x 128 tiles ({gk.kernel.name})")
    if -(-p.M // BM) * -(-p.N // BN) >= 1 << 31:
        raise OptError(f"tile: {gk.kernel.name} has too many tiles of {BM} x {BN}")
    return _step(gk, "tile", (BM, BN, BK, WM, WN, stages), f"tile({BM}x{BN}x{BK}, {stages})",
                 BM=BM, BN=BN, BK=BK, WM=WM, WN=WN, stages=stages)


def split_k(gk: GpuKernel, S: int, chunk: int) -> GpuKernel:
    """K cut into ``S`` chunks of ``chunk`` (a multiple of BK) reduced by separate blocks (a
    third grid axis); their raw partial sums go to a module-global scratch array that the
    last blocks to finish add up in a fixed order before the epilogue."""
    p = gk.tile
    if S < 2 or chunk % p.BK or (S - 1) * chunk >= p.K or S * chunk < p.K:
        raise OptError(f"split_k: {gk.kernel.name}: {S} chunks of {chunk} for K = {p.K}")
    return _step(gk, "split_k", (S, chunk), f"split_k({S} x {chunk})", splits=S, kchunk=chunk)


def gemm_index32(gk: GpuKernel) -> GpuKernel:
    """32-bit index arithmetic where every address and mask of the product, the flattened
    M, N, K and its outputs fit in 31 bits."""
    p = gk.tile
    if not fits_int32(gk.kernel, max(p.M, p.N, p.K) + 256, p.M * p.N * p.outer):
        raise OptError(f"index32: {gk.kernel.name} may need 64-bit indices")
    return replace(_step(gk, "index32", (), "index32", index="int"), index="int")


GEMM_PASSES = {f.__name__: f for f in (mma, stage, wgmma, tile, split_k)}


def _mode(k: Kernel) -> Optional[str]:
    """The multiply a product takes (None: not on the tile path)."""
    g = k.gemm
    if g is None or k.pre or k.full_epilogue or np.dtype(k.acc_dtype) != np.float32:
        return None
    if not k.body or k.body[-1].op != "STORE" or any(u.op == "ACC" and u.arg is not None
                                                     for u in k.body):
        return None
    M, N, K, outer = _sizes(k)
    if outer > 65535 or max(M, N, K) >= 1 << 30 or min(M, N, K) < MIN_DIM:
        return None
    red = tuple(k.reduce_axes)
    ha, hb = _side(k, "a", red).half, _side(k, "b", red).half
    if ha is not None and ha == hb:
        return ha
    if (ha is not None and hb is not None) or g.allow_tf32:
        return "tf32"  # TF32 holds any 16-bit float exactly
    return "simt"


def gemm_tiles(gk: GpuKernel, target, trace: Optional[Callable] = None) -> Optional[GpuKernel]:
    """The tile passes of a product on ``target`` (a
    :class:`~tinyjax.compiler.codegen.gpu_heuristics.CudaTarget`), or None where it stays
    a generic reduction (float64, a thin product, an epilogue reading earlier stages)."""
    k = gk.kernel
    mode = _mode(k)
    if mode is None:
        return None
    steps: list = [(mma, (mode,))]
    a, b, kaxes = _sides(k, mode)
    steps.append((stage, (kaxes, a.axes, b.axes)))
    p = TilePlan(mode, a, b, *_sizes(k), 128, 128, SIMT_BK, 1, 1, 2, kaxes=kaxes)
    if mode != "simt":
        regs = _wgmma_regs(mode, p.N, a, b, WGMMA and target.wgmma)
        configs = _CONFIGS if regs is None else _WG_CONFIGS
        if regs == "b":  # warpgroups along N: the tiles transposed
            configs = {e: tuple((c[1], c[0], c[2], c[4], c[3], c[5]) for c in cs)
                       for e, cs in configs.items()}
        if regs is not None:
            steps.append((wgmma, (regs,)))
        c = _pick_tile(mode, p.M, p.N, p.K, p.outer, a, b, configs, regs is not None,
                       target.sms)
        steps.append((tile, c))
        p = replace(p, BM=c[0], BN=c[1], BK=c[2])
    S, chunk = _split_chunks(p.tiles[0] * p.tiles[1] * p.outer, p.K, p.BM, p.BN, p.BK,
                             target.sms)
    if S > 1:
        steps.append((split_k, (S, chunk)))
    try:
        for fn, args in steps:
            gk = fn(gk, *args)
            if trace is not None:
                trace(gk)
    except OptError:
        return None
    try:
        gk = gemm_index32(gk)
        if trace is not None:
            trace(gk)
    except OptError:
        pass
    return gk
