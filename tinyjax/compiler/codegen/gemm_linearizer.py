"""A product's tile plan (:mod:`tinyjax.compiler.codegen.cuda_gemm`) as GPU loop IR.

One block computes a ``BM x BN`` tile; its loops are ``RANGE`` ops: the pipeline's first
k-slices, the loop over k-slices (``kt``), over a slice's k-steps (``ks``) and over the
fragments (``i``, ``j``), each thread's share of a copy or of the finished tile (``q``,
``e``).  The tensor cores' work is special ops -- ``CP_ASYNC`` (a 16-byte chunk copied to
shared memory), ``ASYNC`` (the copy pipeline's commits and waits, warpgroup fences),
``LDMATRIX`` (fragments from shared memory), ``MMA`` (``mma.sync`` on one m16 x n8
fragment pair), ``WGMMA`` (a warpgroup's ``wgmma.mma_async`` over descriptors), ``FMA``,
``ARRIVE`` and ``SUM_SLOTS`` (the blocks of a split-K tile: the last one to arrive sums
the partial tiles) -- over shared-memory arrays (``DEFINE_LOCAL``: the stages of each
operand's tile, XOR-swizzled so that fragment reads are free of bank conflicts, with the
addresses spelled out here as expressions); an operand computed element by element and the
epilogue are the kernel's own ops.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from tinyjax.compiler.codegen.cuda_gemm import WG_ALIGN, _Side
from tinyjax.compiler.codegen.gpu_linearizer import BOOL, Emitter, X
from tinyjax.compiler.codegen.gpu_loops import GpuKernel
from tinyjax.compiler.codegen.uops import Local, Range
from tinyjax.compiler.kernel import UOp
from tinyjax.compiler.shape.symbolic import Const, Var, and_

__all__ = ["linearize_gemm"]

I32, U32, U64, I64, F32 = (np.dtype(t) for t in (np.int32, np.uint32, np.uint64, np.int64,
                                                 np.float32))
U16 = np.dtype(np.uint16)


def add(*xs):
    out = xs[0]
    for x in xs[1:]:
        out = X("add", out, x)
    return out


def mul(a, b):
    return X("mul", a, b)


def linearize_gemm(gk: GpuKernel) -> list[UOp]:
    """The loop IR of a product ``gk`` (its ``tile`` set by the tile passes)."""
    g = _Gemm(gk)
    p = gk.tile
    if p.mode == "simt":
        g.simt()
    elif p.wgmma:
        g.wgmma()
    else:
        g.mma()
    return g.e.out


class _Gemm:
    def __init__(self, gk: GpuKernel):
        self.gk, self.p, self.k = gk, gk.tile, gk.kernel
        self.e = Emitter()
        p = self.p
        split = p.splits > 1
        self.ragged = split and p.K % p.kchunk != 0
        self.KT = "nkt" if self.ragged else -(-(p.kchunk if split else p.K) // p.BK)
        self.it = None  # the function's index type (``p.index``)
        self.views = 0

    # ---- names --------------------------------------------------------------------------
    def op(self, name: str) -> int:
        """The op defining ``name`` (the last one)."""
        for i in range(len(self.e.out) - 1, -1, -1):
            u = self.e.out[i]
            if u.op in ("SPECIAL", "DEFINE_VAR", "DEFINE_LOCAL", "RANGE") and \
                    getattr(u.arg, "name", getattr(u.arg, "var", None)) == name:
                return i
        raise KeyError(name)

    def var(self, name: str, value, dtype=I32) -> str:
        self.e.define(name, value, 0, 1 << 30, dtype=dtype)
        return name

    def loop(self, var: str, n, start=0, step: int = 1, unroll: Optional[int] = 0,
             branchless: bool = False) -> str:
        self.e.open_range(Range(var, start if not isinstance(start, int) else Const(start),
                                n if not isinstance(n, int) else Const(n), "reduce",
                                step=step, unroll=unroll, dtype=I32, branchless=branchless))
        return var

    def view(self, name: str, dtype, base: str, offset=0, align: int = 0, qual: str = "",
             inline: bool = False) -> str:
        self.e.emit("DEFINE_LOCAL", dtype, (self.op(base),),
                    Local(name, 0, "view", offset=offset, align=align, qual=qual, inline=inline))
        return name

    def store(self, local: str, index, value: int, valid=None) -> None:
        i = self.op(local)
        self.e.emit("STORE", None, (i, value), (self.e.out[i].arg, index,
                                                 Const(1) if valid is None else valid))

    def load(self, local: str, index, dtype) -> int:
        i = self.op(local)
        return self.e.emit("LOAD", dtype, (i,), (self.e.out[i].arg, index, Const(1)))

    def const(self, v, dtype) -> int:
        return self.e.emit("CONST", dtype, (), v)

    def sync(self, kind: str, n=None, srcs=()) -> None:
        self.e.emit("ASYNC", None, srcs, (kind, n))

    # ---- shared-memory addressing (the decisions of the tile layout) --------------------
    def geometry(self, s: _Side) -> tuple[int, int]:
        """(rows, chunks per row) of one stage of ``s``'s tile (16-byte chunks)."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        V = 16 // p.esize
        return (R, p.BK // V) if s.kmajor else (p.BK, R // V)

    def key(self, s: _Side, row):
        """The XOR swizzle of a tile row's chunks: 8 consecutive rows read at one chunk
        (ldmatrix) hit 8 different bank groups; TF32 fragments read along M/N with 128-bit
        loads (a quarter warp: rows 0..3 at chunks 2c, 2c + 1) want rows 0..3 apart by 2
        chunks instead."""
        _, cpr = self.geometry(s)
        if self.p.mode == "tf32" and not s.kmajor:
            if self.p.wgmma:  # warpgroup MMA's register operand: 64-bit loads of rows k..k+3
                return X("shl", X("bitand", row, 1), 2)
            return X("shl", X("bitand", row, 3), 1)
        if cpr >= 8:
            return X("bitand", row, 7)
        return X("bitand", X("shr", mul(row, cpr), 3), 7)

    def chunk(self, s: _Side, row, ch):
        """The physical chunk index of logical chunk ``ch`` of tile row ``row``.  Warpgroup
        MMA reads the 128-byte swizzle's canonical layouts: a tile along K is that already
        (rows of 8 chunks, 8-row atoms); one along M/N is cut into 64-element column blocks,
        each its k rows of 8 chunks in turn."""
        _, cpr = self.geometry(s)
        if self.p.wgmma and not s.kmajor and self.p.mode != "tf32" and cpr > 8:
            return add(mul(X("shr", ch, 3), self.p.BK * 8),
                       X("xor", add(mul(row, 8), X("bitand", ch, 7)), X("bitand", row, 7)))
        return X("xor", add(mul(row, cpr), ch), self.key(s, row))

    def elem(self, s: _Side, row, col):
        """The element offset of (row, col) within a stage of ``s``'s tile."""
        if self.p.mode == "simt":
            R = self.p.BM if s.name == "a" else self.p.BN
            return add(mul(row, R + 4), col)
        V = 16 // self.p.esize
        return add(mul(self.chunk(s, row, X("div", col, V)), V), X("mod", col, V))

    # ---- the block's coordinates ----------------------------------------------------------
    def prologue(self) -> None:
        """Module scratch of a split reduction, the function, the tile's coordinates
        (blocks grouped along M for L2 reuse), the outer axes."""
        p, e, k = self.p, self.e, self.k
        tm, tn = p.tiles
        if p.splits > 1:
            T = tm * tn * p.outer
            e.local("_partials", F32, p.splits * T * p.BM * p.BN, "module")
            e.local("_count", U32, T * p.groups, "module")
            if p.groups > 1:
                e.local("_partials_groups", F32, p.groups * T * p.BM * p.BN, "module")
                e.local("_count_groups", U32, T, "module")
        e.function("", (tm * tn, p.outer, p.splits), p.threads, p.shared_bytes, p.threads,
                   index=p.index, how=p.describe())
        e.local("tj_smem", np.uint8, 0, "dynamic")
        e.special("tid", "thread", p.threads)
        e.special("bid", "block", tm * tn)
        G = 8
        self.var("grp", X("div", "bid", G * tn))
        self.var("first", mul("grp", G))
        self.var("gsz", X("min", X("sub", tm, "first"), G))
        it = None
        self.var("tm_m0", mul(X("cast", np.dtype(np.int32 if p.index == "int" else np.int64),
                                add("first", X("mod", X("mod", "bid", G * tn), "gsz"))), p.BM), it)
        self.var("tn_n0", mul(X("cast", np.dtype(np.int32 if p.index == "int" else np.int64),
                                X("div", X("mod", "bid", G * tn), "gsz")), p.BN), it)
        e.special("ob", "block_y", p.outer, np.int32 if p.index == "int" else np.int64)
        if p.splits > 1:
            C = p.kchunk
            KT = -(-p.K // p.BK)
            e.special("bx", "block", tm * tn, U32)
            e.special("by", "block_y", p.outer, U32)
            e.special("bz", "block_z", p.splits, U32)
            self.var("kt0", mul("bz", C // p.BK))
            self.var("tile", add(mul("by", tm * tn), "bx"))
            self.var("part0", mul(X("cast", I64, "tile"), p.splits * p.BM * p.BN), I64)
            if self.ragged:
                self.var("nkt", X("min", X("sub", KT, "kt0"), C // p.BK))
        self.unravel("ob", self.k.gemm.outer_axes, I64)

    def unravel(self, flat: str, axes, dtype=None) -> None:
        """The loop variables ``i<axis>`` of ``axes`` (C order) from the flat index ``flat``:
        each ``flat / stride % extent`` (the first without the modulo)."""
        full, stride, strides = self.k.full_shape, 1, []
        for a in reversed(axes):
            strides.append(stride)
            stride *= full[a]
        strides.reverse()
        for j, (a, s) in enumerate(zip(axes, strides)):
            v = flat if s == 1 else X("div", flat, s)
            self.var(f"i{a}", X("mod", v, full[a]) if j > 0 else v, dtype)

    def k0(self, kt):
        """The first reduce index of k-slice ``kt`` (of a split reduction's chunk)."""
        return mul(add("kt0", kt) if self.p.splits > 1 else kt, self.p.BK)

    # ---- staging ------------------------------------------------------------------------
    def stage_plain(self, s: _Side, stage, kt) -> None:
        """cp.async the 16-byte chunks of k-slice ``kt`` of ``s`` into stage ``stage``: each
        chunk's address is the load's index at its first element, zero-filled (0 bytes
        read) where out of range or masked."""
        p, cp = self.p, s.plain
        rows, cpr = self.geometry(s)
        V = 16 // p.esize
        n = rows * cpr // p.threads
        assert rows * cpr % p.threads == 0
        r0 = "tm_m0" if s.name == "a" else "tn_n0"
        q = self.loop("q", n)
        self.var("c", add("tid", mul(q, p.threads)))
        self.var("row", X("div", "c", cpr))
        self.var("ch", X("mod", "c", cpr))
        if s.kmajor:
            self.var("gr", add(r0, "row"), None)
            self.var("gk", add(self.k0(kt), mul("ch", V)), None)
        else:
            self.var("gr", add(r0, mul("ch", V)), None)
            self.var("gk", add(self.k0(kt), "row"), None)
        self.unravel("gr", s.axes, None)
        self.unravel("gk", p.kaxes, None)
        ok = X("and", X("lt", "gr", s.rows), X("lt", "gk", p.K))
        self.var("ok", ok if cp.valid is None else X("and", ok, cp.valid), BOOL)
        base = "sA" if s.name == "a" else "sB"
        dst = add(base, mul(stage, p.tile_elems(s) * p.esize), mul(self.chunk(s, "row", "ch"), 16))
        self.e.emit("CP_ASYNC", None, (self.op("ok"),), (cp.slot, cp.index, dst))
        self.e.close()

    def apply_fn(self, s: _Side, local: str, index) -> None:
        """Apply a copied operand's pointwise function to the fragment registers
        ``local[index]`` (float32 bits, TF32 mode)."""
        cp, k = s.plain, self.k
        if not cp or not cp.fn:
            return
        x = self.e.emit("BITCAST", F32, (self.load(local, index, U32),))
        subst = {cp.load: x}
        for i in cp.fn:
            if k.rbody[i].op == "INDEX":
                subst[i] = self.const(True, BOOL)
        m = self.e.body(k.rbody, {}, only=set(cp.fn) | {cp.load}, subst=subst)
        self.store(local, index, self.e.emit("BITCAST", U32, (m[s.root],)))

    def staging_coords(self, s: _Side, kt) -> None:
        """This thread's q-th element of k-slice ``kt`` of ``s``: its tile position (``row``,
        ``col`` in the staging orientation: consecutive threads along the unit-stride axis),
        global position (``gr`` along M/N, ``gk`` along K), whether it is in range (``ok``)
        and the point to compute at (``grc``/``gkc``: (0, 0) when out of range, where every
        operand load is in bounds)."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        r0 = "tm_m0" if s.name == "a" else "tn_n0"
        self.var("e", add("tid", mul("q", p.threads)))
        if s.kmajor:
            self.var("row", X("div", "e", p.BK))
            self.var("col", X("mod", "e", p.BK))
            self.var("gr", add(r0, "row"), None)
            self.var("gk", add(self.k0(kt), "col"), None)
        else:
            self.var("row", X("div", "e", R))
            self.var("col", X("mod", "e", R))
            self.var("gr", add(r0, "col"), None)
            self.var("gk", add(self.k0(kt), "row"), None)
        self.var("ok", X("and", X("lt", "gr", s.rows), X("lt", "gk", p.K)), BOOL)
        self.var("grc", X("where", "ok", "gr", 0), None)
        self.var("gkc", X("where", "ok", "gk", 0), None)

    def loads(self, s: _Side) -> list[int]:
        """The operand's loads that a prefetch issues ahead of the rest of its computation
        (none when a load's offset is data-dependent: then it is computed in one go)."""
        loads = [i for i in sorted(s.uops) if self.k.rbody[i].op == "LOAD"]
        return [] if any(self.k.rbody[i].srcs for i in loads) else loads

    def operand(self, s: _Side, only=None, subst=None) -> dict:
        """The operand's ops (of ``only``) at (``grc``, ``gkc``)."""
        self.unravel("grc", s.axes, None)
        self.unravel("gkc", self.p.kaxes, None)
        return self.e.body(self.k.rbody, {}, only=s.uops if only is None else only, subst=subst)

    def staged(self, v: int) -> int:
        """An operand value as the tile holds it: TF32 rounded to nearest here, for free,
        where cp.async tiles truncate (16-bit tiles convert as they store)."""
        return self.e.emit("ROUND", F32, (v,), "tf32") if self.p.mode == "tf32" else v

    def tile_dtype(self):
        p = self.p
        return np.dtype(np.float16) if p.mode == "f16" else \
            np.dtype("bfloat16") if p.mode == "bf16" else F32

    def tile_elem(self, s: _Side):
        """The tile offset of the element at (``row``, ``col``): the SIMT tile's rows run along
        K whatever the staging order, the tensor cores' tile keeps the staging orientation."""
        if s.kmajor and self.p.mode == "simt":
            return self.elem(s, "col", "row")
        return self.elem(s, "row", "col")

    def declare_regs(self, s: _Side, regs: str) -> None:
        """The prefetch registers of ``s``: one array per load (one value per element of a
        k-slice), or one of staged values when its loads cannot go first."""
        p, k = self.p, self.k
        n = (p.BM if s.name == "a" else p.BN) * p.BK // p.threads
        loads = self.loads(s)
        if not loads:
            self.e.local(regs, self.tile_dtype() if p.mode != "tf32" else F32, n, "register")
        for i in loads:  # (in the type values are computed in: 16-bit floats as float32)
            dt = k.rbody[i].dtype
            self.e.local(f"{regs}_{i}", F32 if dt.itemsize == 2 and dt.kind in "fV" or
                         dt.name == "bfloat16" else dt, n, "register")

    def stage_computed(self, s: _Side, dst: Optional[str], kt, regs: Optional[str] = None):
        """Compute k-slice ``kt`` of ``s`` element by element into the shared tile ``dst`` --
        or, with ``regs``, prefetch it: only its loads are issued here, into the registers
        of :meth:`declare_regs`, and :meth:`store_regs` computes the rest and fills the tile
        once the current slice is multiplied, so that the loads are in flight meanwhile.
        No branches: masked loads read a clamped address, selects stay selects, so that the
        loads of the unrolled loop are issued back to back."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        self.loop("q", R * p.BK // p.threads, branchless=True)
        self.staging_coords(s, kt)
        loads = self.loads(s)
        if regs is not None and loads:
            m = self.operand(s, only=set(loads))
            for i in loads:
                self.store(f"{regs}_{i}", Var("q", 0, 1 << 20), m[i])
        else:
            m = self.operand(s)
            val = self.staged(m[s.root])
            if regs is not None:
                self.store(regs, Var("q", 0, 1 << 20), val)
            else:
                self.store(self.at(s, dst), self.tile_elem(s), val, valid=Var("ok", 0, 1))
        self.e.close()

    def at(self, s: _Side, dst) -> str:
        """The tile to store into: ``dst``, or a view of ``(tile, offset)`` made here."""
        if isinstance(dst, str):
            return dst
        self.views += 1
        return self.view(f"{dst[0]}{self.views}", self.tile_dtype(), dst[0], dst[1], inline=True)

    def store_regs(self, s: _Side, dst: str, regs: str, kt) -> None:
        """The prefetched k-slice ``kt`` of ``s`` into its shared tile ``dst``: the operand
        computed from the loaded registers, zeros where out of range."""
        p = self.p
        R = p.BM if s.name == "a" else p.BN
        self.loop("q", R * p.BK // p.threads, branchless=True)
        loads = self.loads(s)
        self.staging_coords(s, kt)
        q = Var("q", 0, 1 << 20)
        if loads:
            subst = {i: (lambda i=i: self.load(f"{regs}_{i}", q, self.k.rbody[i].dtype))
                     for i in loads}
            m = self.operand(s, only=set(s.uops), subst=subst)
            val = self.staged(m[s.root])
        else:
            val = self.load(regs, q, self.tile_dtype() if p.mode != "tf32" else F32)
        self.store(self.at(s, dst), self.tile_elem(s), val, valid=Var("ok", 0, 1))
        self.e.close()

    def stage_view(self, s: _Side, stage) -> tuple:
        """A stage of ``s``'s shared tile: (tile, offset)."""
        return ("As" if s.name == "a" else "Bs", mul(stage, self.p.tile_elems(s)))

    # ---- the epilogue ---------------------------------------------------------------------
    def epilogue(self, gm: str, gn: str, accv) -> None:
        """The kernel's body for output (``gm``, ``gn``): every thread runs it, at (0, 0)
        where the output is out of range, and only in-range outputs are stored -- no branch
        around the loads, so that an unrolled loop of epilogues has all of its loads (a
        bias, the parameter an SGD update reads) in flight at once."""
        p, k = self.p, self.k
        self.var("in", X("and", X("lt", gm, p.M), X("lt", gn, p.N)), BOOL)
        it = np.dtype(np.int32 if p.index == "int" else np.int64)
        self.var("gmc", X("where", "in", X("cast", it, gm), 0), None)
        self.var("gnc", X("where", "in", X("cast", it, gn), 0), None)
        self.unravel("gmc", p.a.axes, None)
        self.unravel("gnc", p.b.axes, None)
        inside = Var("in", 0, 1)
        body = [UOp(u.op, u.dtype, u.srcs, (u.arg[0], u.arg[1], and_(inside, u.arg[2])))
                if u.op == "STORE" else u for u in k.body]
        self.e.body(body, {None: accv() if any(u.op == "ACC" for u in body) else None})

    def out(self, gm: str, gn: str, accv) -> None:
        """A finished accumulator: the epilogue, or in a split reduction, the raw partial sum
        into this block's slot of the scratch array (the whole tile: edge elements too)."""
        p = self.p
        if p.splits == 1:
            self.epilogue(gm, gn, accv)
            return
        index = add("part0", mul(X("cast", I64, "bz"), p.BM * p.BN),
                    mul(X("sub", gm, "tm_m0"), p.BN), X("sub", gn, "tn_n0"))
        self.store("_partials", index, accv())

    def sum_slots(self, src: tuple, lo, hi, dst: tuple) -> None:
        """``dst`` (float4s, tile order) = the sum of the tile-sized slots ``lo`` .. ``hi``
        of ``src`` (each ``(array, offset)``), in slot order."""
        p = self.p
        NV, JV = p.BM * p.BN // (4 * p.threads), min(p.BM * p.BN // (4 * p.threads), 8)
        assert NV % JV == 0 and NV * 4 * p.threads == p.BM * p.BN  # every config's tile
        self.e.emit("SUM_SLOTS", None, (self.op("tid"), self.op(src[0]), self.op(dst[0])),
                    (src[1], lo, hi, dst[1], NV, JV, p.threads, p.BM * p.BN))

    def arrive(self, count: str, index, last) -> None:
        """This block's arrival at ``count[index]`` (its results written before); all but
        the one that brings it to ``last + 1`` return, and that one resets it."""
        self.e.emit("ARRIVE", None, (self.op(count), self.op("tid"), self.op("tj_last")),
                    (index, last))

    def split_finish(self) -> None:
        """The end of a split reduction's block: once its raw partial sums are written, the
        last block of its group of chunks to get here adds up the group's partial sums in
        chunk order, and where there are several groups the last of those adds up the
        group sums in group order (deterministic, whichever blocks are last: a tree of two
        levels keeps any one block from reading more than ~sqrt(splits) tiles); the final
        sum goes through shared memory to the epilogue, run with consecutive threads along
        N (coalesced stores) -- no second launch."""
        p = self.p
        S, NG, G = p.splits, p.groups, p.group_size
        T = p.BM * p.BN
        # the flag lives in the (by now unused) dynamic shared memory: a static __shared__
        # variable would push a 48 KiB tile past the default limit
        self.view("tj_last", I32, "tj_smem", qual="volatile")
        src = ("_partials", "part0")
        if NG == 1:
            self.arrive("_count", "tile", S - 1)
            lo, hi = 0, S
        else:
            self.var("kg", X("div", "bz", G))
            self.var("s0", mul("kg", G))
            self.var("s1", X("min", add("s0", G), S))
            self.arrive("_count", add(mul("tile", NG), "kg"), X("sub", X("sub", "s1", "s0"), 1))
            self.sum_slots(src, "s0", "s1", ("_partials_groups",
                                             mul(add(mul("tile", NG), "kg"), X("cast", I64, T))))
            self.arrive("_count_groups", "tile", NG - 1)
            src, lo, hi = ("_partials_groups", mul("tile", X("cast", I64, NG * T))), 0, NG
        self.e.emit("BARRIER")  # every thread has read the flag that Ct overwrites
        self.view("Ct", F32, "tj_smem")
        self.sum_slots(src, lo, hi, ("Ct", 0))
        self.e.emit("BARRIER")
        e = self.loop("e", T, start=Var("tid", 0, p.threads - 1), step=p.threads, unroll=8)
        self.var("row", X("div", e, p.BN))
        self.var("col", X("mod", e, p.BN))
        self.var("gm", add("tm_m0", "row"), None)
        self.var("gn", add("tn_n0", "col"), None)
        self.epilogue("gm", "gn", lambda: self.load("Ct", Var("e", 0, T), F32))
        self.e.close()

    def store_tile(self, loops, acc, mrow, ncol: tuple) -> None:
        """The accumulators ``acc(...)`` (over the nested ``loops``, (variable, extent)
        pairs) into shared memory at (``mrow``, the sum of ``ncol``) (the pipeline's stages are free by
        now), then the epilogue with consecutive threads along N: coalesced stores (and
        epilogue reads), whatever the fragments' layout."""
        p = self.p
        ld = p.out_ld
        self.sync("wait", 0)
        self.e.emit("BARRIER")
        self.view("Cs", F32, "tj_smem")
        self.var("gq", X("shr", "lane", 2))
        self.var("tq", X("bitand", "lane", 3))
        for var, n in loops:
            self.loop(var, n)
        self.store("Cs", add(mul(mrow, ld), *ncol), acc())
        self.e.close(len(loops))
        self.e.emit("BARRIER")
        e = self.loop("e", p.BM * p.BN, start=Var("tid", 0, p.threads - 1), step=p.threads,
                      unroll=8)
        self.var("row", X("div", e, p.BN))
        self.var("col", X("mod", e, p.BN))
        self.var("gm", add("tm_m0", "row"), None)
        self.var("gn", add("tn_n0", "col"), None)
        self.out("gm", "gn", lambda: self.load("Cs", add(mul("row", ld), "col"), F32))
        self.e.close()

    def finish(self) -> None:
        if self.p.splits > 1:
            self.split_finish()
        self.e.close()

    # ---- mma.sync -------------------------------------------------------------------------
    def mma(self) -> None:
        p, a, b = self.p, self.p.a, self.p.b
        self.e.emit("INCLUDE", None, (), ("gemm",))
        ty = U16 if p.esize == 2 else F32
        sa, sb = p.tile_elems(a), p.tile_elems(b)
        WTM, WTN = p.BM // p.WM, p.BN // p.WN
        MT, NT = WTM // 16, WTN // 8
        KS = 16 if p.esize == 2 else 8
        assert MT % 2 == 0 and NT % 4 == 0  # the 128-bit TF32 fragment loads
        self.prologue()
        self.view("As", self.tile_dtype(), "tj_smem")
        self.view("Bs", self.tile_dtype(), "tj_smem", p.stages * sa)
        self.var("sA", X("smem_addr", "As"), U32)
        self.var("sB", X("smem_addr", "Bs"), U32)
        self.var("lane", X("bitand", "tid", 31))
        self.var("warp", X("shr", "tid", 5))
        self.var("wm", X("mod", "warp", p.WM))
        self.var("wn", X("div", "warp", p.WM))
        self.e.local("acc", F32, (MT, NT, 4), "register")
        i, j = self.loop("i", MT), self.loop("j", NT)
        zero = self.const(0.0, F32)
        for r in range(4):
            self.store("acc", (i, j, r), zero)
        self.e.close(2)
        KT, S = self.KT, p.stages
        computed = [(s, base, n, f"r{s.name}") for s, base, n in ((a, "As", sa), (b, "Bs", sb))
                    if not s.plain]

        def stage_async(stage, kt):
            for s in (a, b):
                if s.plain:
                    self.stage_plain(s, stage, kt)
            self.sync("commit")

        st = self.loop("st", S - 1)
        self.e.if_(X("lt", st, KT))
        stage_async(st, st)
        for s, _, _, _ in computed:
            self.stage_computed(s, self.stage_view(s, st), st)
        self.e.else_()
        self.sync("commit")
        self.e.close(2)
        for s, _, _, regs in computed:  # the next k-slice of a computed operand, prefetched
            self.declare_regs(s, regs)
        kt = self.loop("kt", KT, unroll=None)
        self.sync("wait", S - 2)
        self.e.emit("BARRIER")
        self.var("nk", add(kt, S - 1))
        self.var("ns", X("mod", "nk", S))
        self.var("cs", X("mod", kt, S))
        self.e.if_(X("lt", "nk", KT))
        stage_async("ns", "nk")
        self.e.else_()
        self.sync("commit")
        self.e.close()
        for s, _, _, regs in computed:  # its loads in flight during this slice's mma
            self.stage_computed(s, None, "nk", regs)
        self.loop("ks", p.BK // KS)
        self.e.local("af", U32, (MT, 4), "register")
        self.e.local("bf", U32, (NT, 2), "register")
        self.fragments_a(MT, WTM, sa)
        self.fragments_b(NT, WTN, sb)
        for s, regs, n, m in ((a, "af", MT, 4), (b, "bf", NT, 2)):
            if s.plain and s.plain.fn:
                q = self.loop("i", n * m)
                self.apply_fn(s, regs, (X("div", q, m), X("mod", q, m)))
                self.e.close()
        self.loop("i", MT)
        self.loop("j", NT)
        self.e.emit("MMA", None, tuple(self.op(n) for n in ("acc", "af", "bf", "i", "j")), p.mode)
        self.e.close(3)
        if computed:
            self.e.if_(X("lt", "nk", KT))
            for s, base, n, regs in computed:
                self.store_regs(s, self.stage_view(s, "ns"), regs, "nk")
            self.e.close()
        self.e.close()
        self.mma_store(MT, NT, WTM, WTN)
        self.finish()

    def fragments_a(self, MT: int, WTM: int, sa: int) -> None:
        """The A fragments of k-step ``ks`` (16 x KS per m16 tile) from stage ``cs``."""
        p, a = self.p, self.p.a
        if p.mode == "tf32" and not a.kmajor:
            # along M: one 128-bit load gives rows g, g+8 of tiles i and i+1 (the fragments'
            # rows are permuted: see mma_store), the swizzle keeps the loads conflict-free
            i = self.loop("i", MT, step=2)
            self.var("kr", add(mul("ks", 8), X("bitand", "lane", 3)))
            self.var("ch", add(X("div", add(mul("wm", WTM), mul(i, 16)), 4), X("shr", "lane", 2)))
            self.quads("af", "As", sa, [(i, 0), (i, 1), (add(i, 1), 0), (add(i, 1), 1)],
                       [(i, 2), (i, 3), (add(i, 1), 2), (add(i, 1), 3)], a)
        elif a.kmajor:  # ldmatrix: lanes 0-15 rows 0-15 at the k-step's first chunk, 16-31 next
            i = self.loop("i", MT)
            self.var("row", add(mul("wm", WTM), mul(i, 16), X("bitand", "lane", 15)))
            self.var("ch", add(mul("ks", 2), X("shr", "lane", 4)))
            self.ldmatrix("af", i, False, "sA", sa, a)
        else:  # transposed: rows are k
            i = self.loop("i", MT)
            self.var("row", add(mul("ks", 16), mul(X("shr", "lane", 4), 8), X("bitand", "lane", 7)))
            self.var("ch", add(X("div", add(mul("wm", WTM), mul(i, 16)), 8),
                               X("bitand", X("shr", "lane", 3), 1)))
            self.ldmatrix("af", i, True, "sA", sa, a)
        self.e.close()

    def ldmatrix(self, dst: str, i, trans: bool, base: str, n: int, s: _Side) -> None:
        addr = add(base, mul("cs", n * self.p.esize), mul(self.chunk(s, "row", "ch"), 16))
        srcs = (self.op(dst),) + ((self.op(i),) if i is not None else ())
        self.e.emit("LDMATRIX", None, srcs, (trans, addr))

    def quads(self, dst: str, base: str, n: int, lo_to, hi_to, s: _Side) -> None:
        """Two 128-bit loads of TF32 fragments (k rows ``kr`` and ``kr + 4`` at chunk ``ch``
        of stage ``cs``), their words into ``dst`` at ``lo_to`` / ``hi_to``."""
        self.views += 1
        T = self.view(f"T{self.views}", F32, base, mul("cs", n))
        vs = [self.e.emit("VLOAD", U32, (self.op(T),), (None, mul(self.chunk(s, kr, "ch"), 4), 4))
              for kr in ("kr", add("kr", 4))]
        for v, to in zip(vs, (lo_to, hi_to)):
            for w, idx in enumerate(to):
                self.store(dst, idx, self.e.emit("GEP", U32, (v,), w))

    def fragments_b(self, NT: int, WTN: int, sb: int) -> None:
        """The B fragments of k-step ``ks`` (KS x 8 per n8 tile) from stage ``cs``."""
        p, b = self.p, self.p.b
        if b.kmajor or p.esize == 2:
            j = self.loop("j", NT, step=2)
            self.e.local("r4", U32, 4, "register")
            if b.kmajor:
                self.var("row", add(mul("wn", WTN), mul(j, 8), mul(X("shr", "lane", 4), 8),
                                    X("bitand", "lane", 7)))
                self.var("ch", add(mul("ks", 2), X("bitand", X("shr", "lane", 3), 1)))
            else:
                self.var("row", add(mul("ks", 16), mul(X("bitand", X("shr", "lane", 3), 1), 8),
                                    X("bitand", "lane", 7)))
                self.var("ch", add(X("div", add(mul("wn", WTN), mul(j, 8)), 8), X("shr", "lane", 4)))
            self.ldmatrix("r4", None, not b.kmajor, "sB", sb, b)
            for w, idx in enumerate([(j, 0), (j, 1), (add(j, 1), 0), (add(j, 1), 1)]):
                self.store("bf", idx, self.load("r4", w, U32))
            self.e.close()
            return
        # tf32 along N: one 128-bit load gives column g of tiles j..j+3 (permuted)
        j = self.loop("j", NT, step=4)
        self.var("kr", add(mul("ks", 8), X("bitand", "lane", 3)))
        self.var("ch", add(X("div", add(mul("wn", WTN), mul(j, 8)), 4), X("shr", "lane", 2)))
        self.quads("bf", "Bs", sb, [(add(j, w), 0) if w else (j, 0) for w in range(4)],
                   [(add(j, w), 1) if w else (j, 1) for w in range(4)], b)
        self.e.close()

    def mma_store(self, MT: int, NT: int, WTM: int, WTN: int) -> None:
        """:meth:`store_tile` of ``mma.sync``'s accumulators ``acc[i][j][r]``: m16 tile i, n8
        tile j, fragment element r."""
        p = self.p
        # TF32 tiles read with 128-bit loads along M/N permute the fragments' rows/columns
        if p.mode == "tf32" and not p.a.kmajor:
            mrow = add(mul("wm", WTM), mul(X("shr", "i", 1), 32), mul("gq", 4),
                       mul(X("bitand", "i", 1), 2), X("shr", "r", 1))
        else:
            mrow = add(mul("wm", WTM), mul("i", 16), "gq", mul(X("shr", "r", 1), 8))
        if p.mode == "tf32" and not p.b.kmajor:
            ncol = (mul("wn", WTN), mul(X("shr", "j", 2), 32),
                    mul(add(mul("tq", 2), X("bitand", "r", 1)), 4), X("bitand", "j", 3))
        else:
            ncol = (mul("wn", WTN), mul("j", 8), mul("tq", 2), X("bitand", "r", 1))
        self.store_tile((("i", MT), ("j", NT), ("r", 4)),
                        lambda: self.load("acc", ("i", "j", "r"), F32), mrow, ncol)

    # ---- warpgroup MMA ------------------------------------------------------------------
    def wgmma(self) -> None:
        """Warpgroup MMA (sm_90a): each warpgroup (4 warps) multiplies 64 rows of its m64
        operand (``a``, or ``b`` for the transposed tile) by all of the other's tile with
        ``wgmma.mma_async``; the n operand is read from shared memory through descriptors,
        the m64 one too, or from registers (TF32 along M/N: see :meth:`wgmma_fragments`).
        Every thread copies k-slices with cp.async, S - 2 ahead: slice kt + S - 2 goes into
        the stage of slice kt - 2, whose MMAs every warpgroup has waited for before the
        barrier of slice kt (one MMA group stays in flight, none when registers feed it: the
        next slice's fragments reuse them)."""
        p = self.p
        S, KT = p.stages, self.KT
        mm, nn = (p.b, p.a) if p.wg_regs == "b" else (p.a, p.b)
        size = {"a": p.tile_elems(p.a) * p.esize, "b": p.tile_elems(p.b) * p.esize}
        KS = 16 if p.esize == 2 else 8
        width = p.BM if mm is p.b else p.BN  # the instruction's n
        tm, tn = ("r" if p.wg_regs else int(not mm.kmajor)), int(not nn.kmajor)
        self.e.emit("INCLUDE", None, (), ("gemm",))
        self.e.emit("INCLUDE", None, (), ("wgmma",))
        self.e.emit("INCLUDE", None, (), ("wgmma_fn", p.mode, width, tm, tn))
        self.prologue()
        self.view("tiles", np.uint8, "tj_smem", align=WG_ALIGN)
        self.var("sA", X("smem_addr", "tiles"), U32)
        self.var("sB", add("sA", S * size["a"]), U32)
        self.var("warp", X("shr", "tid", 5))
        self.var("lane", X("bitand", "tid", 31))
        if not p.wg_regs:
            self.var("wg", X("shr", "warp", 2))
        n = width // 2  # accumulators per thread: 64 x width over 128 threads
        self.e.local("acc", F32, n, "register")
        i = self.loop("i", n)
        self.store("acc", i, self.const(0.0, F32))
        self.e.close()

        def stage_async(stage, kt):
            for s_ in (p.a, p.b):
                self.stage_plain(s_, stage, kt)
            self.sync("commit")

        st = self.loop("st", S - 2)
        self.e.if_(X("lt", st, KT))
        stage_async(st, st)
        self.e.else_()
        self.sync("commit")
        self.e.close(2)
        kt = self.loop("kt", KT, unroll=None)
        self.sync("wait", S - 3)
        self.var("nk", add(kt, S - 2))
        self.var("cs", X("mod", kt, S))
        for s_ in (nn,) if p.wg_regs else (p.a, p.b):
            if s_.plain.fn:  # the whole stage is in: apply the function to it in place
                self.e.emit("BARRIER")
                self.tile_fn(s_)
        self.sync("fence_proxy")
        self.e.emit("BARRIER")
        self.e.if_(X("lt", "nk", KT))
        stage_async(X("mod", "nk", S), "nk")
        self.e.else_()
        self.sync("commit")
        self.e.close()
        if p.wg_regs:
            self.wgmma_fragments(mm, KS)
        acc = self.op("acc")
        self.sync("fence_acc", srcs=(acc,))
        self.sync("wg_fence")
        ks = self.loop("ks", p.BK // KS)
        for s_, name in ((mm, "da"), (nn, "db")):
            if s_ is mm and p.wg_regs:
                continue
            # along K: rows of 128 bytes, a k-step 2 * 16 bytes in; along M/N: k rows of
            # 64-element blocks (LBO apart), a k-step KS rows down; the m64 operand's
            # warpgroup 64 rows in
            lbo = p.BK * 128
            if s_.kmajor:
                off, lbo = (mul(ks, 32), mul("wg", 8192)) if s_ is mm else (mul(ks, 32),), 16
            else:
                off = (mul(ks, KS * 128), mul("wg", lbo)) if s_ is mm else (mul(ks, KS * 128),)
            base = "sA" if s_ is p.a else "sB"
            self.var(name, X("wg_desc", add(base, mul("cs", size[s_.name]), *off), lbo), U64)
        a_op = self.op("af") if p.wg_regs else self.op("da")
        self.e.emit("WGMMA", None, (acc, a_op, self.op("db"), self.op("ks")),
                    (p.mode, width, tm, tn))
        self.e.close()
        self.sync("wg_commit")
        self.sync("wg_wait", 0 if p.wg_regs else 1)
        self.sync("fence_acc", srcs=(acc,))
        self.e.close()
        self.sync("wg_wait", 0)
        self.sync("fence_acc", srcs=(acc,))
        # accumulator i: row gq or gq + 8 (i % 4 >= 2) of the warp's 16, column
        # (i / 4) * 8 + tq * 2 + i % 2; register fragments read along M/N hold rows 2 gq, 2 gq + 1
        if self.regs_permuted():
            rows = (mul("warp", 16), mul("gq", 2), X("shr", X("bitand", "i", 3), 1))
        else:
            rows = (mul("warp", 16), "gq", mul(X("shr", X("bitand", "i", 3), 1), 8))
        cols = (mul(X("shr", "i", 2), 8), mul("tq", 2), X("bitand", "i", 1))
        if mm is p.b:
            rows, cols = cols, rows
        rows = add(*rows)
        self.store_tile((("i", n),), lambda: self.load("acc", Var("i", 0, n), F32), rows, cols)
        self.finish()

    def wgmma_fragments(self, s: _Side, KS: int) -> None:
        """The TF32 m64 operand's register fragments ``af[ks][4]`` of every k-step of stage
        ``cs``: row gq of a warp's 16 (and gq + 8) at k = tq (and tq + 4) -- from a tile
        along M/N, rows 2 gq and 2 gq + 1 instead (one 64-bit load; the epilogue undoes the
        permutation, see :meth:`regs_permuted`); then the operand's pointwise function."""
        p = self.p
        base = "Ast" if s is p.a else "Bst"
        off = 0 if s is p.a else p.stages * p.tile_elems(p.a)
        self.view(base, F32, "tiles", add(off, mul("cs", p.tile_elems(s))))
        self.e.local("af", U32, (p.BK // KS, 4), "register")
        ks = self.loop("ks", p.BK // KS)
        if s.kmajor:
            self.var("kr", add(mul(ks, 8), X("bitand", "lane", 3)))
            self.var("r0", add(mul("warp", 16), X("shr", "lane", 2)))
            for j, (r, c) in enumerate((("r0", "kr"), (add("r0", 8), "kr"), ("r0", add("kr", 4)),
                                        (add("r0", 8), add("kr", 4)))):
                v = self.load(base, self.elem(s, r, c), F32)
                self.store("af", (ks, j), self.e.emit("BITCAST", U32, (v,)))
        else:
            self.var("kr", add(mul(ks, 8), X("bitand", "lane", 3)))
            self.var("r0", add(mul("warp", 16), mul(X("shr", "lane", 2), 2)))
            vs = [self.e.emit("VLOAD", U32, (self.op(base),), (None, self.elem(s, kr, "r0"), 2))
                  for kr in ("kr", add("kr", 4))]
            for v, to in zip(vs, ((0, 1), (2, 3))):
                for w, j in enumerate(to):
                    self.store("af", (ks, j), self.e.emit("GEP", U32, (v,), w))
        if s.plain.fn:
            j = self.loop("j", 4)
            self.apply_fn(s, "af", (ks, j))
            self.e.close()
        self.e.close()

    def tile_fn(self, s: _Side) -> None:
        """Apply ``s``'s pointwise function to stage ``cs`` of its shared tile, element by
        element in place (the function maps the zero fill to zero, so the layout does not
        matter); the async proxy (the MMA) sees the writes after the fence that follows."""
        p = self.p
        n = p.tile_elems(s)
        assert n % p.threads == 0
        off = 0 if s is p.a else p.stages * p.tile_elems(p.a)
        tw = self.view(f"tw{s.name}", U32, "tiles", add(off, mul("cs", n)))
        q = self.loop("q", n // p.threads)
        self.apply_fn(s, tw, add("tid", mul(q, p.threads)))
        self.e.close()

    def regs_permuted(self) -> bool:
        """Whether the register operand's fragments hold rows 2 gq, 2 gq + 1 (read along M/N)."""
        p = self.p
        return bool(p.wg_regs) and not (p.b if p.wg_regs == "b" else p.a).kmajor

    # ---- SIMT ---------------------------------------------------------------------------
    def simt(self) -> None:
        """128x128 tiles, 256 threads of 8x8 outputs (rows ty*4.., 64+ty*4..; columns alike),
        K in slices of SIMT_BK through two shared buffers, the next slice prefetched into
        registers while this one is multiplied."""
        p, a, b = self.p, self.p.a, self.p.b
        sa, sb = p.tile_elems(a), p.tile_elems(b)
        KT = self.KT
        self.prologue()
        self.view("As", F32, "tj_smem")
        self.view("Bs", F32, "tj_smem", 2 * sa)
        self.var("tx", X("bitand", "tid", 15))
        self.var("ty", X("shr", "tid", 4))
        self.e.local("acc", F32, (8, 8), "register")
        i, j = self.loop("i", 8), self.loop("j", 8)
        self.store("acc", (i, j), self.const(0.0, F32))
        self.e.close(2)
        sides = ((a, "ra", "As", sa), (b, "rb", "Bs", sb))
        for s_, regs, _, _ in sides:
            self.declare_regs(s_, regs)
        for s_, regs, _, _ in sides:
            self.stage_computed(s_, None, 0, regs)
        for s_, regs, base, _ in sides:
            self.store_regs(s_, base, regs, 0)
        self.e.emit("BARRIER")
        kt = self.loop("kt", KT, unroll=None)
        self.var("cs", X("bitand", kt, 1))
        self.e.if_(X("lt", add(kt, 1), KT))
        for s_, regs, _, _ in sides:
            self.stage_computed(s_, None, add(kt, 1), regs)
        self.e.close()
        self.view("TA", F32, "As", mul("cs", sa))
        self.view("TB", F32, "Bs", mul("cs", sb))
        kk = self.loop("kk", p.BK)
        vals = {}
        for name, T, t, R in (("a", "TA", "ty", p.BM), ("b", "TB", "tx", p.BN)):
            vals[name] = [self.e.emit("VLOAD", F32, (self.op(T),), (None, add(
                mul(kk, R + 4), *((64,) if h else ()), mul(t, 4)), 4)) for h in (0, 1)]
        for name in ("a", "b"):
            geps = [self.e.emit("GEP", F32, (v,), w) for v in vals[name] for w in range(4)]
            self.e.emit("DEFINE_LOCAL", F32, tuple(geps), Local(f"{name}v", 8, "register",
                                                                qual="const"))
        i, j = self.loop("i", 8), self.loop("j", 8)
        self.store("acc", (i, j), self.e.emit("FMA", F32, (
            self.load("av", i, F32), self.load("bv", j, F32), self.load("acc", (i, j), F32))))
        self.e.close(3)
        self.e.if_(X("lt", add(kt, 1), KT))
        for s_, regs, base, n in sides:
            self.store_regs(s_, (base, mul(X("xor", "cs", 1), n)), regs, add(kt, 1))
        self.e.close()
        self.e.emit("BARRIER")
        self.e.close()
        i, j = self.loop("i", 8), self.loop("j", 8)
        self.var("gm", add("tm_m0", mul(X("shr", i, 2), 64), mul("ty", 4), X("bitand", i, 3)),
                 None)
        self.var("gn", add("tn_n0", mul(X("shr", j, 2), 64), mul("tx", 4), X("bitand", j, 3)),
                 None)
        self.out("gm", "gn", lambda: self.load("acc", (i, j), F32))
        self.e.close(2)
        self.finish()
