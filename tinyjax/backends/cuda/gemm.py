"""Matmul-shaped reductions (kernels with a :class:`~tinyjax.compiler.kernel.GemmPlan`) on
the GPU: tiled through shared memory, on the tensor cores where the dtype allows.

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
``MIN_DIM``) stay on the generic reduction path.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np

from tinyjax.compiler.shape import symbolic
from tinyjax.backends.cuda.launch import LaunchDims, fits_int32
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.shape.symbolic import Node
from tinyjax.config import env_flag

__all__ = ["gemm_supported", "render_gemm", "gemm_launch_dims", "gemm_launches",
           "gemm_describe"]

NUM_SMS = 132  # an H100: the waves of blocks decide the tile size and split-K

HELPERS = r"""
#ifndef TJ_GEMM_HELPERS
#define TJ_GEMM_HELPERS
__device__ __forceinline__ uint32_t tj_smem_addr(const void *p) {
  uint32_t a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}
__device__ __forceinline__ void tj_cp_async16(uint32_t dst, const void *src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void tj_cp_async_commit() { asm volatile("cp.async.commit_group;"); }
__device__ __forceinline__ void tj_ldsm_x4(uint32_t *r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ void tj_ldsm_x4_t(uint32_t *r, uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}
__device__ __forceinline__ uint32_t tj_tf32(uint32_t x) {
  uint32_t y;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(y) : "f"(__uint_as_float(x)));
  return y;
}
#define TJ_MMA(NAME, SHAPE, AB)                                                               \
__device__ __forceinline__ void NAME(float *c, const uint32_t *a, const uint32_t *b) {       \
  asm volatile("mma.sync.aligned." SHAPE ".row.col.f32." AB "." AB ".f32 "                   \
               "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"                       \
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                               \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));          \
}
TJ_MMA(tj_mma_bf16, "m16n8k16", "bf16")
TJ_MMA(tj_mma_f16, "m16n8k16", "f16")
TJ_MMA(tj_mma_tf32, "m16n8k8", "tf32")
#undef TJ_MMA
#endif
"""


WG_HELPERS = r"""
#ifndef TJ_WG_HELPERS
#define TJ_WG_HELPERS
/* a shared-memory matrix descriptor: 128-byte swizzle, 8-row atoms 1024 bytes apart (SBO),
   64-element column blocks lbo bytes apart (MN-major tiles) */
__device__ __forceinline__ uint64_t tj_wg_desc(uint32_t addr, uint32_t lbo) {
  return (uint64_t)((addr & 0x3FFFF) >> 4) | ((uint64_t)(lbo >> 4) << 16) |
         ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}
/* keeps the compiler from moving the accumulators across the asynchronous MMAs */
template <int N> __device__ __forceinline__ void tj_wg_fence_acc(float (&acc)[N]) {
  #pragma unroll
  for (int i = 0; i < N; i++) asm volatile("" : "+f"(acc[i]) :: "memory");
}
#endif
"""


def _wgmma_name(mode: str, N: int, ta, tb: int) -> str:
    return f"tj_wgmma_{mode}_n{N}_{ta}{tb}"


def _wgmma_source(mode: str, N: int, ta, tb: int) -> str:
    """The device function issuing one ``wgmma.mma_async`` m64 x ``N`` x k (16, TF32: 8),
    accumulating into ``acc``; ``ta``/``tb``: the operand's tile runs along M/N (16-bit only),
    ``ta == "r"``: the m64 operand comes from registers (four 32-bit values, TF32)."""
    name = _wgmma_name(mode, N, ta, tb)
    n = N // 2
    regs = ", ".join(f"%{i}" for i in range(n))
    shape, kind = (f"m64n{N}k8", "tf32") if mode == "tf32" else (f"m64n{N}k16", mode)
    trans = "" if mode == "tf32" else f", {ta}, {tb}"
    outs = ", ".join(f'"+f"(d[{i}])' for i in range(n))
    if ta == "r":
        a, a_arg, ins = (f"{{%{n}, %{n + 1}, %{n + 2}, %{n + 3}}}", "const uint32_t (&a)[4]",
                         '"r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), ')
        nb = n + 4
    else:
        a, a_arg, ins, nb = f"%{n}", "uint64_t a", '"l"(a), ', n + 1
    return (f"#ifndef {name.upper()}\n#define {name.upper()}\n"
            f"__device__ __forceinline__ void {name}(float (&d)[{n}], {a_arg}, uint64_t db) {{\n"
            f'  asm volatile("{{ .reg .pred p; setp.ne.b32 p, %{nb + 1}, 0; '
            f"wgmma.mma_async.sync.aligned.{shape}.f32.{kind}.{kind} {{{regs}}}, {a}, %{nb}, "
            f'p, 1, 1{trans}; }}"\n'
            f'    : {outs}\n    : {ins}"l"(db), "r"(1));\n}}\n#endif')


# ---- analysis ---------------------------------------------------------------------------------

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
class _Plan:
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
# the target has warpgroup MMA (an H100: sm_90a; CUDABackend turns it off on other GPUs)
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
               configs: dict, wgmma: bool = False) -> tuple:
    """The tile of a product, of :func:`_fitting_tiles`.  A large product is
    throughput-bound: the largest tile that still gives two blocks per SM.  A small one
    (under SMALL_PRODUCT multiply-adds: microseconds of tensor-core time) is latency-bound,
    so blocks that share an SM overlap and its time is the waves of blocks (each K chunk of a
    split one) times one block's multiply-adds: the tile with the fewest (on a tie the
    larger).  A 2048 x 1024 x 256
    product takes 256 tiles of 64 x 128 in one wave rather than 512 of 64 x 64 in 1.3
    (11.7 against 15.0 us on an H100)."""
    fits = _fitting_tiles(mode, M, N, a, b, configs)

    def blocks(c):
        return -(-M // c[0]) * -(-N // c[1]) * outer
    if M * N * K * outer > SMALL_PRODUCT:
        return next((c for c in fits if blocks(c) >= 2 * NUM_SMS), fits[-1])
    esize = 2 if mode != "tf32" else 4

    def cost(c):  # waves (K split as _split will) x the multiply-adds of one block
        S, chunk = _split_chunks(blocks(c), K, c[0], c[1], c[2])
        return -(-blocks(c) * S // (NUM_SMS * _blocks_per_sm(c, esize, wgmma))) * c[0] * c[1] * chunk
    return min(fits, key=cost)  # min keeps the first (largest) of equals


def _wgmma_regs(mode: str, N: int, a: _Side, b: _Side) -> Optional[str]:
    """How warpgroup MMA takes the operands, or None where it does not apply: both must be
    copied with cp.async.  The warpgroup multiplies an m64 x k operand (shared memory or
    registers) by a k x n one (shared memory): ``""``, both read from shared memory (16-bit
    types in either orientation, TF32 only along K); ``"a"``/``"b"``: TF32 with that operand
    loaded into registers as the m64 side (``"b"``: the warpgroup computes the transposed
    tile) -- the one along M/N, else one with a pointwise function (applied to the
    registers; one on a shared-memory operand is applied to its tile in place)."""
    if not WGMMA or N <= 32 or mode not in ("bf16", "f16", "tf32"):
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


def _plan(k: Kernel) -> Optional[_Plan]:
    g = k.gemm
    if g is None or k.pre or k.full_epilogue or np.dtype(k.acc_dtype) != np.float32:
        return None
    if not k.body or k.body[-1].op != "STORE" or any(u.op == "ACC" and u.arg is not None
                                                     for u in k.body):
        return None
    full = k.full_shape
    M = int(np.prod([full[a] for a in g.m_axes]))
    N = int(np.prod([full[a] for a in g.n_axes]))
    K = int(np.prod([full[a] for a in k.reduce_axes]))
    outer = int(np.prod([full[a] for a in g.outer_axes]))
    if outer > 65535 or max(M, N, K) >= 1 << 30 or min(M, N, K) < MIN_DIM:
        return None
    red = tuple(k.reduce_axes)
    ha, hb = _side(k, "a", red).half, _side(k, "b", red).half
    if ha is not None and ha == hb:
        mode = ha
    elif (ha is not None and hb is not None) or g.allow_tf32:
        mode = "tf32"  # TF32 holds any 16-bit float exactly
    else:
        mode = "simt"
    a, b, kaxes = _sides(k, mode)
    index = _index_type(k, M, N, K, outer)
    if mode == "simt":
        return _split(_Plan(mode, a, b, M, N, K, outer, 128, 128, SIMT_BK, 1, 1, 2, kaxes=kaxes,
                            index=index))
    regs = _wgmma_regs(mode, N, a, b)
    configs = _CONFIGS if regs is None else _WG_CONFIGS
    if regs == "b":  # warpgroups along N: the tiles transposed
        configs = {e: tuple((c[1], c[0], c[2], c[4], c[3], c[5]) for c in cs)
                   for e, cs in configs.items()}
    tile = _pick_tile(mode, M, N, K, outer, a, b, configs, regs is not None)
    p = _Plan(mode, a, b, M, N, K, outer, *tile, kaxes=kaxes, index=index,
              wgmma=regs is not None, wg_regs=regs or "")
    if p.tiles[0] * p.tiles[1] >= 1 << 31:
        return None
    return _split(p)


MIN_DIM = 16  # a product thinner than this (N = 10 classes, K = 9 taps) wastes most of a
#              tile: the generic reduction serves it better
SPLIT_MIN_K = 256                 # the least K one chunk of a split reduction keeps
SPLIT_MAX_BYTES = 64 << 20        # the partial sums' scratch (module memory)
SPLIT_ONE_LEVEL = 8               # up to this many chunks are added up by one block


def _split(p: _Plan) -> _Plan:
    """Split-K: with fewer than two blocks per SM and a long reduction, K is cut into chunks
    (multiples of BK, at least SPLIT_MIN_K) reduced by separate blocks (a third grid axis)
    until there are about three blocks per SM; their raw partial sums go to a module-global
    scratch array that the last blocks to finish add up in a fixed order before the
    epilogue (see _Renderer.split_finish)."""
    tm, tn = p.tiles
    S, chunk = _split_chunks(tm * tn * p.outer, p.K, p.BM, p.BN, p.BK)
    return p if S < 2 else replace(p, splits=S, kchunk=chunk)


def _split_chunks(blocks: int, K: int, BM: int, BN: int, BK: int) -> tuple[int, int]:
    """(chunks, chunk length) that :func:`_split` cuts K into for ``blocks`` tiles; (1, K)
    unsplit."""
    S = min(-(-3 * NUM_SMS // max(blocks, 1)), K // SPLIT_MIN_K,
            # float32 tile slots per chunk, and per group of chunks (at most as many)
            SPLIT_MAX_BYTES // (2 * 4 * BM * BN * blocks), 65535)
    if blocks >= 2 * NUM_SMS or S < 2:
        return 1, K
    chunk = -(-K // S)
    chunk = -(-chunk // BK) * BK
    S = -(-K // chunk)
    return (S, chunk) if S >= 2 else (1, K)


def gemm_supported(k: Kernel) -> bool:
    """Whether :func:`render_gemm` renders ``k`` (a kernel with ``k.gemm`` set)."""
    return _plan(k) is not None


def gemm_describe(k: Kernel) -> str:
    """The plan in a few words: mode, tile, M x N x K (x outer), K chunks."""
    p = _plan(k)
    # cp.async copies (f: then a pointwise function) / computed element by element
    stage = "".join(("f" if s.plain.fn else "c") if s.plain else "e" for s in (p.a, p.b))
    split = f" split {p.splits}" if p.splits > 1 else ""
    outer = f"x{p.outer}" if p.outer > 1 else ""
    mma = " wgmma" if p.wgmma else ""
    return (f"gemm {p.mode}{mma} {p.BM}x{p.BN}x{p.BK} stage {stage} "
            f"{p.M}x{p.N}x{p.K}{outer}{split}")


def gemm_launches(k: Kernel) -> list:
    """The functions of :func:`render_gemm`'s source to launch, in order: (name, LaunchDims)
    -- one, ``k.name`` (a split reduction's blocks finish it themselves)."""
    return [(k.name, gemm_launch_dims(k))]


def gemm_launch_dims(k: Kernel):
    """The LaunchDims of :func:`render_gemm`'s function ``k.name``: a block per tile (x),
    per outer index (y) and per K chunk (z)."""
    p = _plan(k)
    tm, tn = p.tiles
    return LaunchDims((tm * tn, p.outer, p.splits), (p.threads, 1, 1), p.shared_bytes)


# ---- rendering --------------------------------------------------------------------------------

def _unravel(flat: str, axes, full, code: str, ind: str, it: str = "long") -> list[str]:
    """Declarations of the loop variables ``i<axis>`` of ``axes`` (C order) from the flat index
    ``flat``, only those that ``code`` uses (nvcc warns about unused variables)."""
    out, stride = [], 1
    strides = []
    for a in reversed(axes):
        strides.append(stride)
        stride *= full[a]
    strides.reverse()
    for j, (a, s) in enumerate(zip(axes, strides)):
        if not re.search(rf"\bi{a}\b", code):
            continue
        e = flat if s == 1 else f"({flat} / {s})"
        if j > 0:
            e = f"{e} % {full[a]}"
        out.append(f"{ind}const {it} i{a} = {e};")
    return out


class _Renderer:
    """Builds the source of one plan's kernel."""

    def __init__(self, lang, k: Kernel, p: _Plan):
        self.lang, self.k, self.p = lang, k, p
        self.L: list[str] = []
        split = p.splits > 1
        # a split kernel's blocks start at k-slice kt0 and run KT of them (nkt: fewer in the last)
        self.k0 = "kt0 + " if split else ""
        self.ragged = split and p.K % p.kchunk != 0
        self.KT = "nkt" if self.ragged else str(-(-(p.kchunk if split else p.K) // p.BK))
        self.partials, self.count = f"{k.name}_partials", f"{k.name}_count"

    # shared-memory addressing -------------------------------------------------------------
    def geometry(self, s: _Side) -> tuple[int, int]:
        """(rows, chunks per row) of one stage of ``s``'s tile (16-byte chunks)."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        V = 16 // p.esize
        return (R, p.BK // V) if s.kmajor else (p.BK, R // V)

    def key(self, s: _Side, row: str) -> str:
        """The XOR swizzle of a tile row's chunks: 8 consecutive rows read at one chunk
        (ldmatrix) hit 8 different bank groups; TF32 fragments read along M/N with 128-bit
        loads (a quarter warp: rows 0..3 at chunks 2c, 2c + 1) want rows 0..3 apart by 2
        chunks instead."""
        _, cpr = self.geometry(s)
        if self.p.mode == "tf32" and not s.kmajor:
            if self.p.wgmma:  # warpgroup MMA's register operand: 64-bit loads of rows k..k+3
                return f"((({row}) & 1) << 2)"
            return f"((({row}) & 3) << 1)"
        if cpr >= 8:
            return f"(({row}) & 7)"
        return f"(((({row}) * {cpr}) >> 3) & 7)"

    def chunk(self, s: _Side, row: str, ch: str) -> str:
        """The physical chunk index of logical chunk ``ch`` of tile row ``row``.  Warpgroup
        MMA reads the 128-byte swizzle's canonical layouts: a tile along K is that already
        (rows of 8 chunks, 8-row atoms); one along M/N is cut into 64-element column blocks,
        each its k rows of 8 chunks in turn."""
        _, cpr = self.geometry(s)
        if self.p.wgmma and not s.kmajor and self.p.mode != "tf32" and cpr > 8:
            block = f"(({ch}) >> 3) * {self.p.BK * 8}"
            return f"({block} + ((({row}) * 8 + (({ch}) & 7)) ^ (({row}) & 7)))"
        return f"((({row}) * {cpr} + ({ch})) ^ {self.key(s, row)})"

    def elem(self, s: _Side, row: str, col: str) -> str:
        """The element offset of (row, col) within a stage of ``s``'s tile."""
        if self.p.mode == "simt":
            R = self.p.BM if s.name == "a" else self.p.BN
            return f"(({row}) * {R + 4} + ({col}))"
        V = 16 // self.p.esize
        return f"({self.chunk(s, row, f'({col}) / {V}')} * {V} + ({col}) % {V})"

    # staging -----------------------------------------------------------------------------
    def _loads(self, s: _Side) -> list[int]:
        """The operand's loads that a prefetch issues ahead of the rest of its computation
        (none when a load's offset is data-dependent: then it is computed in one go)."""
        loads = [i for i in sorted(s.uops) if self.k.rbody[i].op == "LOAD"]
        return [] if any(self.k.rbody[i].srcs for i in loads) else loads

    def operand_value(self, s: _Side, gr: str, gk: str, ind: str, uops=None,
                      given: tuple = ()) -> tuple[list[str], str]:
        """Lines computing the operand's value at global row ``gr`` and reduce index ``gk``:
        of its ``uops`` only if given, with ``given`` lines declaring the others they use."""
        k = self.k
        body, _ = self.lang.render_body(k.rbody, "p" + s.name, None, k.bufs, ind,
                                        only=s.uops if uops is None else uops, branchless=True)
        body = list(given) + body
        u = k.rbody[s.root]
        val = self.lang.const(u.arg, u.dtype) if u.op == "CONST" else f"p{s.name}{s.root}"
        code = "\n".join(body)
        it = self.p.index
        decl = (_unravel(gr, s.axes, k.full_shape, code, ind, it) +
                _unravel(gk, self.p.kaxes, k.full_shape, code, ind, it))
        return decl + body, val

    def stage_plain(self, s: _Side, stage: str, kt: str, ind: str) -> None:
        """cp.async the 16-byte chunks of k-slice ``kt`` of ``s`` into stage ``stage``: each
        chunk's address is the load's index at its first element, zero-filled (0 bytes
        read) where out of range or masked."""
        p, L, k = self.p, self.L, self.k
        cp = s.plain
        rows, cpr = self.geometry(s)
        V = 16 // p.esize
        n = rows * cpr // p.threads
        assert rows * cpr % p.threads == 0
        r0 = "tm_m0" if s.name == "a" else "tn_n0"
        sbase = f"s{s.name.upper()}"
        L.append(f"{ind}#pragma unroll")
        L.append(f"{ind}for (int q = 0; q < {n}; q++) {{")
        L.append(f"{ind}  const int c = tid + q * {p.threads}, row = c / {cpr}, ch = c % {cpr};")
        k0 = f"({self.k0}({kt})) * {p.BK}"
        if s.kmajor:
            L.append(f"{ind}  const {p.index} gr = {r0} + row, gk = {k0} + ch * {V};")
        else:
            L.append(f"{ind}  const {p.index} gr = {r0} + ch * {V}, gk = {k0} + row;")
        ok = f"gr < {s.rows} && gk < {p.K}"
        off, mask = self.lang.index(cp.index), ""
        if cp.valid is not None:
            mask = f" && {self.lang.index(cp.valid)}"
        code = off + mask
        L.extend(_unravel("gr", s.axes, k.full_shape, code, ind + "  ", p.index))
        L.extend(_unravel("gk", p.kaxes, k.full_shape, code, ind + "  ", p.index))
        L.append(f"{ind}  const bool ok = {ok}{mask};")
        L.append(f"{ind}  const void *src = data{cp.slot} + (ok ? {off} : 0);")
        stage_bytes = p.tile_elems(s) * p.esize
        L.append(f"{ind}  tj_cp_async16({sbase} + ({stage}) * {stage_bytes} + "
                 f"{self.chunk(s, 'row', 'ch')} * 16, src, ok ? 16 : 0);")
        L.append(f"{ind}}}")

    def apply_fn(self, s: _Side, regs: str, ind: str) -> None:
        """Apply a copied operand's pointwise function to its fragment registers ``regs``
        (float32 bits, TF32 mode)."""
        cp, k, L = s.plain, self.k, self.L
        if not cp or not cp.fn:
            return
        given = [f"{ind}  const float f{s.name}{cp.load} = __uint_as_float({regs});"]
        given += [f"{ind}  const bool f{s.name}{i} = true;" for i in cp.fn
                  if k.rbody[i].op == "INDEX"]
        only = {i for i in cp.fn if k.rbody[i].op != "INDEX"}
        body, _ = self.lang.render_body(k.rbody, f"f{s.name}", None, k.bufs, ind + "  ",
                                        only=only)
        u = k.rbody[s.root]
        val = self.lang.const(u.arg, u.dtype) if u.op == "CONST" else f"f{s.name}{s.root}"
        L.append(f"{ind}{{")
        L.extend(given + body)
        L.append(f"{ind}  {regs} = __float_as_uint({val});")
        L.append(f"{ind}}}")

    def _staging_coords(self, s: _Side, kt: str, ind: str) -> list[str]:
        """Declarations of this thread's q-th element of k-slice ``kt`` of ``s``: its tile
        position (``row``, ``col`` in the staging orientation: consecutive threads along the
        unit-stride axis) and global position (``gr`` along M/N, ``gk`` along K)."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        r0 = "tm_m0" if s.name == "a" else "tn_n0"
        k0 = f"({self.k0}({kt})) * {p.BK}"
        e = f"{ind}const int e = tid + q * {p.threads}"
        if s.kmajor:
            return [f"{e}, row = e / {p.BK}, col = e % {p.BK};",
                    f"{ind}const {p.index} gr = {r0} + row, gk = {k0} + col;"]
        return [f"{e}, row = e / {R}, col = e % {R};",
                f"{ind}const {p.index} gr = {r0} + col, gk = {k0} + row;"]

    def stage_computed(self, s: _Side, dst: str, kt: str, ind: str, regs: Optional[str] = None):
        """Compute k-slice ``kt`` of ``s`` element by element into the shared tile at ``dst``
        -- or, with ``regs``, prefetch it: only its loads are issued here, into the register
        arrays of :meth:`declare_regs`, and :meth:`store_regs` computes the rest and fills the
        tile once the current slice is multiplied, so that the loads are in flight meanwhile.

        No branches: an element out of range is computed at the point (0, 0) (every operand
        load is in bounds there) and masked loads read a clamped address, so that the loads
        of the unrolled loop are issued back to back."""
        p, L = self.p, self.L
        R = p.BM if s.name == "a" else p.BN
        L.append(f"{ind}#pragma unroll")
        L.append(f"{ind}for (int q = 0; q < {R * p.BK // p.threads}; q++) {{")
        L.extend(self._clamped_coords(s, kt, ind + "  "))
        loads = self._loads(s)
        if regs is not None and loads:
            lines, _ = self.operand_value(s, "grc", "gkc", ind + "  ", uops=set(loads))
            L.extend(lines)
            L.extend(f"{ind}  {regs}_{i}[q] = p{s.name}{i};" for i in loads)
        else:
            lines, val = self.operand_value(s, "grc", "gkc", ind + "  ")
            L.extend(lines)
            val = self._staged(val)
            if regs is not None:
                L.append(f"{ind}  {regs}[q] = {val};")
            else:
                L.append(f"{ind}  {dst}[{self._tile_elem(s)}] = ok ? {val} : ({self._ty})0;")
        L.append(f"{ind}}}")

    @property
    def _ty(self) -> str:
        """The C type of a staged element."""
        return "uint16_t" if self.p.mode in ("bf16", "f16") else "float"

    def _staged(self, val: str) -> str:
        """An operand value as the tile stores it (16-bit, or float32 rounded to TF32: to
        nearest here, for free, where cp.async tiles truncate)."""
        p = self.p
        if p.mode in ("bf16", "f16"):
            return self.lang.store(np.dtype(np.float16) if p.mode == "f16" else
                                   np.dtype("bfloat16"), val)
        if p.mode == "tf32":
            return f"__uint_as_float(tj_tf32(__float_as_uint({val})))"
        return val

    def _clamped_coords(self, s: _Side, kt: str, ind: str) -> list[str]:
        """:meth:`_staging_coords` plus ``ok`` (in range) and ``grc``/``gkc`` (the point to
        compute at: (0, 0) when out of range)."""
        p = self.p
        return self._staging_coords(s, kt, ind) + [
            f"{ind}const bool ok = gr < {s.rows} && gk < {p.K};",
            f"{ind}[[maybe_unused]] const {p.index} grc = ok ? gr : 0, gkc = ok ? gk : 0;"]

    def declare_regs(self, s: _Side, regs: str, ind: str) -> None:
        """The prefetch registers of ``s``: one array per load (one value per element of a
        k-slice), or one of staged values when its loads cannot go first."""
        p, k = self.p, self.k
        n = (p.BM if s.name == "a" else p.BN) * p.BK // p.threads
        loads = self._loads(s)
        if not loads:
            self.L.append(f"{ind}{self._ty} {regs}[{n}];")
        for i in loads:
            self.L.append(f"{ind}{self.lang.type(k.rbody[i].dtype)} {regs}_{i}[{n}];")

    def _tile_elem(self, s: _Side) -> str:
        """The tile offset of the element at (``row``, ``col``): the SIMT tile's rows run along
        K whatever the staging order, the tensor cores' tile keeps the staging orientation."""
        if s.kmajor and self.p.mode == "simt":
            return self.elem(s, "col", "row")
        return self.elem(s, "row", "col")

    def store_regs(self, s: _Side, dst: str, regs: str, kt: str, ind: str) -> None:
        """The prefetched k-slice ``kt`` of ``s`` into its shared tile at ``dst``: the operand
        computed from the loaded registers, zeros where out of range."""
        p, L = self.p, self.L
        R = p.BM if s.name == "a" else p.BN
        L.append(f"{ind}#pragma unroll")
        L.append(f"{ind}for (int q = 0; q < {R * p.BK // p.threads}; q++) {{")
        loads = self._loads(s)
        L.extend(self._clamped_coords(s, kt, ind + "  "))
        if loads:
            given = [f"{ind}  const {self.lang.type(self.k.rbody[i].dtype)} p{s.name}{i} = "
                     f"{regs}_{i}[q];" for i in loads]
            lines, val = self.operand_value(s, "grc", "gkc", ind + "  ",
                                            uops=set(s.uops) - set(loads), given=given)
            L.extend(lines)
            val = self._staged(val)
        else:
            val = f"{regs}[q]"
        L.append(f"{ind}  {dst}[{self._tile_elem(s)}] = ok ? {val} : ({self._ty})0;")
        L.append(f"{ind}}}")

    # epilogue ----------------------------------------------------------------------------
    def epilogue(self, gm: str, gn: str, accv: str, ind: str) -> None:
        """The kernel's body for output (``gm``, ``gn``): every thread runs it, at (0, 0)
        where the output is out of range, and only in-range outputs are stored -- no branch
        around the loads, so that an unrolled loop of epilogues has all of its loads (a
        bias, the parameter an SGD update reads) in flight at once."""
        k, p, L = self.k, self.p, self.L
        body, _ = self.lang.render_body(k.body, "v", "accv", k.bufs, ind + "  ")
        code = "\n".join(body)
        it = p.index
        L.append(f"{ind}{{")
        L.append(f"{ind}  const bool in = {gm} < {p.M} && {gn} < {p.N};")
        L.append(f"{ind}  [[maybe_unused]] const {it} gmc = in ? ({it})({gm}) : 0, "
                 f"gnc = in ? ({it})({gn}) : 0;")
        L.extend(_unravel("gmc", p.a.axes, k.full_shape, code, ind + "  ", it))
        L.extend(_unravel("gnc", p.b.axes, k.full_shape, code, ind + "  ", it))
        if re.search(r"\baccv\b", code):
            L.append(f"{ind}  const float accv = {accv};")
        L.extend(f"{ind}  if (in) {ln.lstrip()}" if ln.lstrip().startswith("data0[") else ln
                 for ln in body)
        L.append(f"{ind}}}")

    def out(self, gm: str, gn: str, accv: str, ind: str) -> None:
        """A finished accumulator: the epilogue, or in a split reduction, the raw partial sum
        into this block's slot of the scratch array (the whole tile: edge elements too)."""
        p, L = self.p, self.L
        if p.splits == 1:
            self.epilogue(gm, gn, accv, ind)
            return
        L.append(f"{ind}{self.partials}[part0 + (long)blockIdx.z * {p.BM * p.BN} + "
                 f"({gm} - tm_m0) * {p.BN} + ({gn} - tn_n0)] = {accv};")

    def sum_slots(self, src: str, lo: str, hi: str, dst: str) -> None:
        """``dst`` (float4s, tile order) = the sum of the tile-sized slots ``lo`` .. ``hi``
        of ``src``, in slot order (the same rounding whichever block runs it).  Each thread
        owns float4s ``tid + j * threads`` and keeps up to 8 of them in flight per slot
        (one block pulls whole tiles through one SM: the loads must overlap)."""
        p, L = self.p, self.L
        NV, JV = p.BM * p.BN // (4 * p.threads), min(p.BM * p.BN // (4 * p.threads), 8)
        assert NV % JV == 0 and NV * 4 * p.threads == p.BM * p.BN  # every config's tile
        L.append(f"  for (int j0 = 0; j0 < {NV}; j0 += {JV}) {{")
        L.append(f"    float4 v[{JV}];")
        L.append("    #pragma unroll")
        L.append(f"    for (int j = 0; j < {JV}; j++) v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);")
        L.append("    #pragma unroll 2")
        L.append(f"    for (int s = {lo}; s < {hi}; s++) {{")
        L.append(f"      const float4 *x = (const float4 *)({src} + (long)s * {p.BM * p.BN}) + "
                 f"tid + j0 * {p.threads};")
        L.append("      #pragma unroll")
        L.append(f"      for (int j = 0; j < {JV}; j++) {{")
        L.append(f"        const float4 t = __ldcg(x + j * {p.threads});")
        L.append("        v[j].x += t.x; v[j].y += t.y; v[j].z += t.z; v[j].w += t.w;")
        L.append("      }")
        L.append("    }")
        L.append("    #pragma unroll")
        L.append(f"    for (int j = 0; j < {JV}; j++) (({dst}) + tid + j0 * {p.threads})[j * {p.threads}] = v[j];")
        L.append("  }")

    def arrive(self, count: str, last: "int | str") -> None:
        """This block's arrival at ``count`` (its results written before); all but the
        one that brings it to ``last + 1`` return, and that one resets it."""
        L = self.L
        L.append("  __threadfence();")
        L.append("  __syncthreads();")
        L.append(f"  if (tid == 0) *tj_last = atomicAdd(&{count}, 1u) == {last};")
        L.append("  __syncthreads();")
        L.append("  if (!*tj_last) return;")
        L.append("  __threadfence();")
        L.append(f"  if (tid == 0) {count} = 0u;")

    def split_finish(self) -> None:
        """The end of a split reduction's block: once its raw partial sums are written, the
        last block of its group of chunks to get here (an atomic count) adds up the group's
        partial sums in chunk order, and where there are several groups the last of those
        adds up the group sums in group order (deterministic, whichever blocks are last:
        a tree of two levels keeps any one block from reading more than ~sqrt(splits)
        tiles); the final sum goes through shared memory to the epilogue, run with
        consecutive threads along N (coalesced stores) -- no second launch."""
        p, L = self.p, self.L
        S, NG, G = p.splits, p.groups, p.group_size
        T = p.BM * p.BN
        # the flag lives in the (by now unused) dynamic shared memory: a static __shared__
        # variable would push a 48 KiB tile past the default limit
        L.append("  volatile int *tj_last = (volatile int *)tj_smem;")
        src = f"{self.partials} + part0"
        if NG == 1:
            self.arrive(f"{self.count}[tile]", S - 1)
            lo, hi = "0", str(S)
        else:
            L.append(f"  const int kg = blockIdx.z / {G}, s0 = kg * {G}, "
                     f"s1 = s0 + {G} < {S} ? s0 + {G} : {S};")
            self.arrive(f"{self.count}[tile * {NG} + kg]", "s1 - s0 - 1")
            self.sum_slots(src, "s0", "s1", f"(float4 *)({self.partials}_groups + "
                                            f"(tile * {NG} + kg) * {T}L)")
            self.arrive(f"{self.count}_groups[tile]", NG - 1)
            src, lo, hi = f"{self.partials}_groups + tile * {NG * T}L", "0", str(NG)
        L.append("  __syncthreads();  // every thread has read the flag that Ct overwrites")
        L.append("  float *Ct = (float *)tj_smem;")
        self.sum_slots(src, lo, hi, "(float4 *)Ct")
        L.append("  __syncthreads();")
        L.append("  #pragma unroll 8")
        L.append(f"  for (int e = tid; e < {T}; e += {p.threads}) {{")
        L.append(f"    const int row = e / {p.BN}, col = e % {p.BN};")
        L.append(f"    const {p.index} gm = tm_m0 + row, gn = tn_n0 + col;")
        self.epilogue("gm", "gn", "Ct[e]", "    ")
        L.append("  }")

    # the kernel --------------------------------------------------------------------------
    def prologue(self) -> None:
        """Header, tile coordinates (grouped along M for L2 reuse), outer axes."""
        k, p, L = self.k, self.p, self.L
        head = self.lang.kernel_header(k, p.threads)
        if p.splits > 1:
            T = p.tiles[0] * p.tiles[1] * p.outer
            L.append(f"__device__ float {self.partials}[{p.splits * T * p.BM * p.BN}];")
            L.append(f"__device__ unsigned int {self.count}[{T * p.groups}];")
            if p.groups > 1:
                L.append(f"__device__ float {self.partials}_groups[{p.groups * T * p.BM * p.BN}];")
                L.append(f"__device__ unsigned int {self.count}_groups[{T}];")
        L.extend(head)
        tm, tn = p.tiles
        G = 8
        L.append("  extern __shared__ __align__(128) unsigned char tj_smem[];")
        L.append("  const int tid = threadIdx.x;")
        L.append(f"  const int bid = blockIdx.x, grp = bid / {G * tn}, first = grp * {G};")
        L.append(f"  const int gsz = {tm} - first < {G} ? {tm} - first : {G};")
        it = p.index
        L.append(f"  const {it} tm_m0 = ({it})(first + (bid % {G * tn}) % gsz) * {p.BM};")
        L.append(f"  const {it} tn_n0 = ({it})((bid % {G * tn}) / gsz) * {p.BN};")
        L.append(f"  const {it} ob = blockIdx.y;")
        if p.splits > 1:
            C = p.kchunk
            KT = -(-p.K // p.BK)
            L.append(f"  const int kt0 = blockIdx.z * {C // p.BK};")
            L.append(f"  const int tile = blockIdx.y * {tm * tn} + blockIdx.x;")
            L.append(f"  const long part0 = (long)tile * {p.splits * p.BM * p.BN};")
            if self.ragged:
                L.append(f"  const int nkt = {KT} - kt0 < {C // p.BK} ? {KT} - kt0 : {C // p.BK};")
        L.append("  /*OUTER*/")

    def finish(self) -> str:
        k, L = self.k, self.L
        if self.p.splits > 1:
            self.split_finish()
        L.append("}")
        i = L.index("  /*OUTER*/")
        code = "\n".join(L[i + 1:])
        L[i:i + 1] = _unravel("ob", k.gemm.outer_axes, k.full_shape, code, "  ")
        text = "\n".join(L)
        for name in ("ob", "sA", "sB"):  # nvcc warns about unused variables
            if len(re.findall(rf"\b{name}\b", text)) == 1:
                L = [ln for ln in L if not re.match(rf"\s*const \w+ {name} = ", ln)]
        return HELPERS + (WG_HELPERS if self.p.wgmma else "") + "\n".join(L)

    def render_mma(self) -> str:
        p, L = self.p, self.L
        a, b = p.a, p.b
        ty = "uint16_t" if p.esize == 2 else "float"
        sa, sb = p.tile_elems(a), p.tile_elems(b)
        WTM, WTN = p.BM // p.WM, p.BN // p.WN
        MT, NT = WTM // 16, WTN // 8
        KS = 16 if p.esize == 2 else 8
        assert MT % 2 == 0 and NT % 4 == 0  # the 128-bit TF32 fragment loads
        self.prologue()
        L.append(f"  {ty} *As = ({ty} *)tj_smem, *Bs = As + {p.stages * sa};")
        L.append(f"  const uint32_t sA = tj_smem_addr(As);")
        L.append(f"  const uint32_t sB = tj_smem_addr(Bs);")
        L.append(f"  const int lane = tid & 31, warp = tid >> 5;")
        L.append(f"  const int wm = warp % {p.WM}, wn = warp / {p.WM};")
        L.append(f"  float acc[{MT}][{NT}][4];")
        L.append(f"  #pragma unroll")
        L.append(f"  for (int i = 0; i < {MT}; i++) {{")
        L.append(f"    #pragma unroll")
        L.append(f"    for (int j = 0; j < {NT}; j++) {{")
        L.append(f"      acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;")
        L.append("    }")
        L.append("  }")
        KT = self.KT
        S = p.stages

        def stage_async(stage, kt, ind):
            for s in (a, b):
                if s.plain:
                    self.stage_plain(s, stage, kt, ind)
            L.append(f"{ind}tj_cp_async_commit();")

        computed = [(s, base, n, f"r{s.name}") for s, base, n in ((a, "As", sa), (b, "Bs", sb))
                    if not s.plain]

        def stage_sync(stage, kt, ind):
            for s, base, n, _ in computed:
                self.stage_computed(s, f"({base} + ({stage}) * {n})", kt, ind)

        L.append(f"  #pragma unroll")
        L.append(f"  for (int st = 0; st < {S - 1}; st++) {{")
        L.append(f"    if (st < {KT}) {{")
        stage_async("st", "st", "      ")
        stage_sync("st", "st", "      ")
        L.append("    } else tj_cp_async_commit();")
        L.append("  }")
        for s, _, _, regs in computed:  # the next k-slice of a computed operand, prefetched
            self.declare_regs(s, regs, "  ")
        L.append(f"  for (int kt = 0; kt < {KT}; kt++) {{")
        L.append(f"    asm volatile(\"cp.async.wait_group {S - 2};\");")
        L.append("    __syncthreads();")
        L.append(f"    const int nk = kt + {S - 1}, ns = nk % {S}, cs = kt % {S};")
        L.append(f"    if (nk < {KT}) {{")
        stage_async("ns", "nk", "      ")
        L.append("    } else tj_cp_async_commit();")
        for s, _, _, regs in computed:  # its loads in flight during this slice's mma
            self.stage_computed(s, "", "nk", "    ", regs)
        L.append(f"    #pragma unroll")
        L.append(f"    for (int ks = 0; ks < {p.BK // KS}; ks++) {{")
        L.append(f"      uint32_t af[{MT}][4], bf[{NT}][2];")
        self.fragments_a(MT, WTM, sa, "      ")
        self.fragments_b(NT, WTN, sb, "      ")
        for s, regs, n, m in ((a, "af", MT, 4), (b, "bf", NT, 2)):
            if s.plain and s.plain.fn:
                L.append("      #pragma unroll")
                L.append(f"      for (int i = 0; i < {n * m}; i++)")
                self.apply_fn(s, f"{regs}[i / {m}][i % {m}]", "      ")
        L.append(f"      #pragma unroll")
        L.append(f"      for (int i = 0; i < {MT}; i++) {{")
        L.append(f"        #pragma unroll")
        L.append(f"        for (int j = 0; j < {NT}; j++) tj_mma_{p.mode}(acc[i][j], af[i], bf[j]);")
        L.append("      }")
        L.append("    }")
        if computed:
            L.append(f"    if (nk < {KT}) {{")
            for s, base, n, regs in computed:
                self.store_regs(s, f"({base} + ns * {n})", regs, "nk", "      ")
            L.append("    }")
        L.append("  }")
        self.mma_store(MT, NT, WTM, WTN)
        return self.finish()

    def render_wgmma(self) -> str:
        """Warpgroup MMA (sm_90a): each warpgroup (4 warps) multiplies 64 rows of its m64
        operand (``a``, or ``b`` for the transposed tile) by all of the other's tile with
        ``wgmma.mma_async``; the n operand is read from shared memory through descriptors,
        the m64 one too, or from registers (TF32 along M/N: see :meth:`wgmma_fragments`).
        Every thread copies k-slices with cp.async, S - 2 ahead: slice kt + S - 2 goes into
        the stage of slice kt - 2, whose MMAs every warpgroup has waited for before the
        barrier of slice kt (one MMA group stays in flight, none when registers feed it: the
        next slice's fragments reuse them)."""
        p, L = self.p, self.L
        S, KT = p.stages, self.KT
        mm, nn = (p.b, p.a) if p.wg_regs == "b" else (p.a, p.b)
        size = {"a": p.tile_elems(p.a) * p.esize, "b": p.tile_elems(p.b) * p.esize}
        KS = 16 if p.esize == 2 else 8
        width = p.BM if mm is p.b else p.BN  # the instruction's n
        tm, tn = ("r" if p.wg_regs else int(not mm.kmajor)), int(not nn.kmajor)
        fn = _wgmma_name(p.mode, width, tm, tn)
        self.prologue()
        L.insert(0, _wgmma_source(p.mode, width, tm, tn))
        L.append(f"  unsigned char *const tiles = tj_smem + (({WG_ALIGN} - (tj_smem_addr(tj_smem) & "
                 f"{WG_ALIGN - 1})) & {WG_ALIGN - 1});")
        L.append(f"  const uint32_t sA = tj_smem_addr(tiles), sB = sA + {S * size['a']};")
        L.append("  const int warp = tid >> 5, lane = tid & 31;")
        if not p.wg_regs:
            L.append("  const int wg = warp >> 2;")
        n = width // 2  # accumulators per thread: 64 x width over 128 threads
        L.append(f"  float acc[{n}];")
        L.append("  #pragma unroll")
        L.append(f"  for (int i = 0; i < {n}; i++) acc[i] = 0.0f;")

        def stage_async(stage, kt, ind):
            for s_ in (p.a, p.b):
                self.stage_plain(s_, stage, kt, ind)
            L.append(f"{ind}tj_cp_async_commit();")

        L.append("  #pragma unroll")
        L.append(f"  for (int st = 0; st < {S - 2}; st++) {{")
        L.append(f"    if (st < {KT}) {{")
        stage_async("st", "st", "      ")
        L.append("    } else tj_cp_async_commit();")
        L.append("  }")
        L.append(f"  for (int kt = 0; kt < {KT}; kt++) {{")
        L.append(f'    asm volatile("cp.async.wait_group {S - 3};");')
        L.append(f"    const int nk = kt + {S - 2}, cs = kt % {S};")
        for s_ in (nn,) if p.wg_regs else (p.a, p.b):
            if s_.plain.fn:  # the whole stage is in: apply the function to it in place
                L.append("    __syncthreads();")
                self.tile_fn(s_, "    ")
        L.append('    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");')
        L.append("    __syncthreads();")
        L.append(f"    if (nk < {KT}) {{")
        stage_async(f"nk % {S}", "nk", "      ")
        L.append("    } else tj_cp_async_commit();")
        if p.wg_regs:
            self.wgmma_fragments(mm, KS, "    ")
        L.append("    tj_wg_fence_acc(acc);")
        L.append('    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");')
        L.append("    #pragma unroll")
        L.append(f"    for (int ks = 0; ks < {p.BK // KS}; ks++) {{")
        for s_, name in ((mm, "da"), (nn, "db")):
            if s_ is mm and p.wg_regs:
                continue
            # along K: rows of 128 bytes, a k-step 2 * 16 bytes in; along M/N: k rows of
            # 64-element blocks (LBO apart), a k-step KS rows down; the m64 operand's
            # warpgroup 64 rows in
            lbo = p.BK * 128
            if s_.kmajor:
                off, lbo = "ks * 32" + (" + wg * 8192" if s_ is mm else ""), 16
            else:
                off = f"ks * {KS * 128}" + (f" + wg * {lbo}" if s_ is mm else "")
            base = "sA" if s_ is p.a else "sB"
            L.append(f"      const uint64_t {name} = tj_wg_desc({base} + cs * {size[s_.name]} + "
                     f"{off}, {lbo});")
        L.append(f"      {fn}(acc, {'af[ks]' if p.wg_regs else 'da'}, db);")
        L.append("    }")
        L.append('    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");')
        L.append(f'    asm volatile("wgmma.wait_group.sync.aligned {0 if p.wg_regs else 1};" '
                 f'::: "memory");')
        L.append("    tj_wg_fence_acc(acc);")
        L.append("  }")
        L.append('  asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory");')
        L.append("  tj_wg_fence_acc(acc);")
        # accumulator i: row gq or gq + 8 (i % 4 >= 2) of the warp's 16, column
        # (i / 4) * 8 + tq * 2 + i % 2; register fragments read along M/N hold rows 2 gq, 2 gq + 1
        rows = ("warp * 16 + gq * 2 + ((i & 3) >> 1)" if self._regs_permuted() else
                "warp * 16 + gq + ((i & 3) >> 1) * 8")
        cols = "(i >> 2) * 8 + tq * 2 + (i & 1)"
        if mm is p.b:
            rows, cols = cols, rows
        self.store_tile((("i", n),), "acc[i]", rows, cols)
        return self.finish()

    def wgmma_fragments(self, s: _Side, KS: int, ind: str) -> None:
        """The TF32 m64 operand's register fragments ``af[ks][4]`` of every k-step of stage
        ``cs``: row gq of a warp's 16 (and gq + 8) at k = tq (and tq + 4) -- from a tile
        along M/N, rows 2 gq and 2 gq + 1 instead (one 64-bit load; the epilogue undoes the
        permutation, see :meth:`_regs_permuted`); then the operand's pointwise function."""
        p, L = self.p, self.L
        base = "As" if s is p.a else "Bs"
        T = f"((const float *)tiles + {0 if s is p.a else p.stages * p.tile_elems(p.a)})"
        L.append(f"{ind}const float *{base}t = {T} + cs * {p.tile_elems(s)};")
        L.append(f"{ind}uint32_t af[{p.BK // KS}][4];")
        L.append(f"{ind}#pragma unroll")
        L.append(f"{ind}for (int ks = 0; ks < {p.BK // KS}; ks++) {{")
        if s.kmajor:
            L.append(f"{ind}  const int kr = ks * 8 + (lane & 3), r0 = warp * 16 + (lane >> 2);")
            for j, (r, c) in enumerate((("r0", "kr"), ("r0 + 8", "kr"), ("r0", "kr + 4"),
                                        ("r0 + 8", "kr + 4"))):
                L.append(f"{ind}  af[ks][{j}] = __float_as_uint({base}t[{self.elem(s, r, c)}]);")
        else:
            L.append(f"{ind}  const int kr = ks * 8 + (lane & 3), r0 = warp * 16 + (lane >> 2) * 2;")
            L.append(f"{ind}  const uint2 lo = *(const uint2 *)({base}t + {self.elem(s, 'kr', 'r0')});")
            L.append(f"{ind}  const uint2 hi = *(const uint2 *)({base}t + {self.elem(s, 'kr + 4', 'r0')});")
            L.append(f"{ind}  af[ks][0] = lo.x; af[ks][1] = lo.y; af[ks][2] = hi.x; af[ks][3] = hi.y;")
        if s.plain.fn:
            L.append(f"{ind}  #pragma unroll")
            L.append(f"{ind}  for (int j = 0; j < 4; j++)")
            self.apply_fn(s, "af[ks][j]", ind + "  ")
        L.append(f"{ind}}}")

    def tile_fn(self, s: _Side, ind: str) -> None:
        """Apply ``s``'s pointwise function to stage ``cs`` of its shared tile, element by
        element in place (the function maps the zero fill to zero, so the layout does not
        matter); the async proxy (the MMA) sees the writes after the fence that follows."""
        p, L = self.p, self.L
        n = p.tile_elems(s)
        assert n % p.threads == 0
        off = 0 if s is p.a else p.stages * p.tile_elems(p.a)
        L.append(f"{ind}{{ uint32_t *tw = (uint32_t *)tiles + {off} + cs * {n};")
        L.append(f"{ind}  #pragma unroll")
        L.append(f"{ind}  for (int q = 0; q < {n // p.threads}; q++)")
        self.apply_fn(s, f"tw[tid + q * {p.threads}]", ind + "  ")
        L.append(f"{ind}}}")

    def _regs_permuted(self) -> bool:
        """Whether the register operand's fragments hold rows 2 gq, 2 gq + 1 (read along M/N)."""
        p = self.p
        return bool(p.wg_regs) and not (p.b if p.wg_regs == "b" else p.a).kmajor

    def mma_store(self, MT: int, NT: int, WTM: int, WTN: int) -> None:
        """:meth:`store_tile` of ``mma.sync``'s accumulators ``acc[i][j][r]``: m16 tile i, n8
        tile j, fragment element r."""
        p = self.p
        # TF32 tiles read with 128-bit loads along M/N permute the fragments' rows/columns
        if p.mode == "tf32" and not p.a.kmajor:
            mrow = f"wm * {WTM} + (i >> 1) * 32 + gq * 4 + (i & 1) * 2 + (r >> 1)"
        else:
            mrow = f"wm * {WTM} + i * 16 + gq + (r >> 1) * 8"
        if p.mode == "tf32" and not p.b.kmajor:
            ncol = f"wn * {WTN} + (j >> 2) * 32 + (tq * 2 + (r & 1)) * 4 + (j & 3)"
        else:
            ncol = f"wn * {WTN} + j * 8 + tq * 2 + (r & 1)"
        self.store_tile((("i", MT), ("j", NT), ("r", 4)), "acc[i][j][r]", mrow, ncol)

    def store_tile(self, loops, acc: str, mrow: str, ncol: str) -> None:
        """The accumulators ``acc`` (over the nested ``loops``, (variable, extent) pairs) into
        shared memory at (``mrow``, ``ncol``) (the pipeline's stages are free by now), then
        the epilogue with consecutive threads along N: coalesced stores (and epilogue reads),
        whatever the fragments' layout."""
        p, L = self.p, self.L
        ld = p.out_ld
        L.append('  asm volatile("cp.async.wait_group 0;");')
        L.append("  __syncthreads();")
        L.append("  float *Cs = (float *)tj_smem;")
        L.append("  const int gq = lane >> 2, tq = lane & 3;")
        for var, n in loops:
            L.append("  #pragma unroll")
            L.append(f"  for (int {var} = 0; {var} < {n}; {var}++) {{")
        L.append(f"    Cs[({mrow}) * {ld} + {ncol}] = {acc};")
        L.append("  " + "}" * len(loops))
        L.append("  __syncthreads();")
        L.append("  #pragma unroll 8")
        L.append(f"  for (int e = tid; e < {p.BM * p.BN}; e += {p.threads}) {{")
        L.append(f"    const int row = e / {p.BN}, col = e % {p.BN};")
        L.append(f"    const {p.index} gm = tm_m0 + row, gn = tn_n0 + col;")
        self.out("gm", "gn", f"Cs[row * {ld} + col]", "    ")
        L.append("  }")

    def fragments_a(self, MT: int, WTM: int, sa: int, ind: str) -> None:
        """The A fragments of k-step ``ks`` (16 x KS per m16 tile) from stage ``cs``."""
        p, L, a = self.p, self.L, self.p.a
        stage = f"cs * {sa * p.esize}"
        L.append(f"{ind}#pragma unroll")
        if p.mode == "tf32" and not a.kmajor:
            # along M: one 128-bit load gives rows g, g+8 of tiles i and i+1 (the fragments'
            # rows are permuted: see store_tile), the swizzle keeps the loads conflict-free
            L.append(f"{ind}for (int i = 0; i < {MT}; i += 2) {{")
            L.append(f"{ind}  const int kr = ks * 8 + (lane & 3), ch = (wm * {WTM} + i * 16) / 4 + (lane >> 2);")
            L.append(f"{ind}  const float *T = As + cs * {sa};")
            L.append(f"{ind}  const uint4 lo = *(const uint4 *)(T + {self.chunk(a, 'kr', 'ch')} * 4);")
            L.append(f"{ind}  const uint4 hi = *(const uint4 *)(T + {self.chunk(a, 'kr + 4', 'ch')} * 4);")
            L.append(f"{ind}  af[i][0] = lo.x; af[i][1] = lo.y; af[i + 1][0] = lo.z; af[i + 1][1] = lo.w;")
            L.append(f"{ind}  af[i][2] = hi.x; af[i][3] = hi.y; af[i + 1][2] = hi.z; af[i + 1][3] = hi.w;")
        elif a.kmajor:  # ldmatrix: lanes 0-15 rows 0-15 at the k-step's first chunk, 16-31 next
            L.append(f"{ind}for (int i = 0; i < {MT}; i++) {{")
            L.append(f"{ind}  const int row = wm * {WTM} + i * 16 + (lane & 15), ch = ks * 2 + (lane >> 4);")
            L.append(f"{ind}  tj_ldsm_x4(af[i], sA + {stage} + {self.chunk(a, 'row', 'ch')} * 16);")
        else:  # transposed: rows are k
            L.append(f"{ind}for (int i = 0; i < {MT}; i++) {{")
            L.append(f"{ind}  const int row = ks * 16 + (lane >> 4) * 8 + (lane & 7);")
            L.append(f"{ind}  const int ch = (wm * {WTM} + i * 16) / 8 + ((lane >> 3) & 1);")
            L.append(f"{ind}  tj_ldsm_x4_t(af[i], sA + {stage} + {self.chunk(a, 'row', 'ch')} * 16);")
        L.append(f"{ind}}}")

    def fragments_b(self, NT: int, WTN: int, sb: int, ind: str) -> None:
        """The B fragments of k-step ``ks`` (KS x 8 per n8 tile) from stage ``cs``."""
        p, L, b = self.p, self.L, self.p.b
        stage = f"cs * {sb * p.esize}"
        if b.kmajor or p.esize == 2:
            L.append(f"{ind}#pragma unroll")
            L.append(f"{ind}for (int j = 0; j < {NT}; j += 2) {{")
            L.append(f"{ind}  uint32_t r4[4];")
            if b.kmajor:
                L.append(f"{ind}  const int row = wn * {WTN} + j * 8 + (lane >> 4) * 8 + (lane & 7);")
                L.append(f"{ind}  const int ch = ks * 2 + ((lane >> 3) & 1);")
                L.append(f"{ind}  tj_ldsm_x4(r4, sB + {stage} + {self.chunk(b, 'row', 'ch')} * 16);")
            else:
                L.append(f"{ind}  const int row = ks * 16 + ((lane >> 3) & 1) * 8 + (lane & 7);")
                L.append(f"{ind}  const int ch = (wn * {WTN} + j * 8) / 8 + (lane >> 4);")
                L.append(f"{ind}  tj_ldsm_x4_t(r4, sB + {stage} + {self.chunk(b, 'row', 'ch')} * 16);")
            L.append(f"{ind}  bf[j][0] = r4[0]; bf[j][1] = r4[1]; bf[j + 1][0] = r4[2]; bf[j + 1][1] = r4[3];")
            L.append(f"{ind}}}")
            return
        # tf32 along N: one 128-bit load gives column g of tiles j..j+3 (permuted)
        L.append(f"{ind}#pragma unroll")
        L.append(f"{ind}for (int j = 0; j < {NT}; j += 4) {{")
        L.append(f"{ind}  const int kr = ks * 8 + (lane & 3), ch = (wn * {WTN} + j * 8) / 4 + (lane >> 2);")
        L.append(f"{ind}  const float *T = Bs + cs * {sb};")
        L.append(f"{ind}  const uint4 lo = *(const uint4 *)(T + {self.chunk(b, 'kr', 'ch')} * 4);")
        L.append(f"{ind}  const uint4 hi = *(const uint4 *)(T + {self.chunk(b, 'kr + 4', 'ch')} * 4);")
        L.append(f"{ind}  bf[j][0] = lo.x; bf[j + 1][0] = lo.y; bf[j + 2][0] = lo.z; bf[j + 3][0] = lo.w;")
        L.append(f"{ind}  bf[j][1] = hi.x; bf[j + 1][1] = hi.y; bf[j + 2][1] = hi.z; bf[j + 3][1] = hi.w;")
        L.append(f"{ind}}}")

    def render_simt(self) -> str:
        """128x128 tiles, 256 threads of 8x8 outputs (rows ty*4.., 64+ty*4..; columns alike),
        K in slices of SIMT_BK through two shared buffers, the next slice prefetched into
        registers while this one is multiplied."""
        p, L = self.p, self.L
        a, b = p.a, p.b
        sa, sb = p.tile_elems(a), p.tile_elems(b)
        KT = self.KT
        self.prologue()
        L.append(f"  float *As = (float *)tj_smem, *Bs = As + {2 * sa};")
        L.append("  const int tx = tid & 15, ty = tid >> 4;")
        L.append("  float acc[8][8];")
        L.append("  #pragma unroll")
        L.append("  for (int i = 0; i < 8; i++) {")
        L.append("    #pragma unroll")
        L.append("    for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;")
        L.append("  }")
        sides = ((a, "ra", "As", sa), (b, "rb", "Bs", sb))
        for s_, regs, _, _ in sides:
            self.declare_regs(s_, regs, "  ")
        for s_, regs, _, _ in sides:
            self.stage_computed(s_, "", "0", "  ", regs)
        for s_, regs, base, _ in sides:
            self.store_regs(s_, base, regs, "0", "  ")
        L.append("  __syncthreads();")
        L.append(f"  for (int kt = 0; kt < {KT}; kt++) {{")
        L.append("    const int cs = kt & 1;")
        L.append(f"    if (kt + 1 < {KT}) {{")
        for s_, regs, _, _ in sides:
            self.stage_computed(s_, "", "kt + 1", "      ", regs)
        L.append("    }")
        L.append(f"    const float *TA = As + cs * {sa}, *TB = Bs + cs * {sb};")
        L.append("    #pragma unroll")
        L.append(f"    for (int kk = 0; kk < {p.BK}; kk++) {{")
        L.append(f"      const float4 a0 = *(const float4 *)(TA + kk * {p.BM + 4} + ty * 4);")
        L.append(f"      const float4 a1 = *(const float4 *)(TA + kk * {p.BM + 4} + 64 + ty * 4);")
        L.append(f"      const float4 b0 = *(const float4 *)(TB + kk * {p.BN + 4} + tx * 4);")
        L.append(f"      const float4 b1 = *(const float4 *)(TB + kk * {p.BN + 4} + 64 + tx * 4);")
        L.append("      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};")
        L.append("      const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};")
        L.append("      #pragma unroll")
        L.append("      for (int i = 0; i < 8; i++) {")
        L.append("        #pragma unroll")
        L.append("        for (int j = 0; j < 8; j++) acc[i][j] = __fmaf_rn(av[i], bv[j], acc[i][j]);")
        L.append("      }")
        L.append("    }")
        L.append(f"    if (kt + 1 < {KT}) {{")
        for s_, regs, base, n in sides:
            self.store_regs(s_, f"({base} + (cs ^ 1) * {n})", regs, "kt + 1", "      ")
        L.append("    }")
        L.append("    __syncthreads();")
        L.append("  }")
        L.append("  #pragma unroll")
        L.append("  for (int i = 0; i < 8; i++) {")
        L.append("  #pragma unroll")
        L.append("  for (int j = 0; j < 8; j++) {")
        L.append(f"    const {p.index} gm = tm_m0 + (i >> 2) * 64 + ty * 4 + (i & 3);")
        L.append(f"    const {p.index} gn = tn_n0 + (j >> 2) * 64 + tx * 4 + (j & 3);")
        self.out("gm", "gn", "acc[i][j]", "    ")
        L.append("  }}")
        return self.finish()


def render_gemm(lang, k: Kernel) -> str:
    """The CUDA source of the tiled matmul kernel ``k`` (``lang``: the CUDALanguage)."""
    p = _plan(k)
    if p is None:
        raise NotImplementedError(f"cuda: {k.name} is not a supported matmul kernel")
    r = _Renderer(lang, k, p)
    if p.mode == "simt":
        return r.render_simt()
    return r.render_wgmma() if p.wgmma else r.render_mma()
