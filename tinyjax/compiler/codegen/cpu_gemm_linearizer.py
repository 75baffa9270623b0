"""``linearize_cpu_gemm``: a CPU product (a kernel with a
:class:`~tinyjax.compiler.kernel.GemmPlan` and its decisions, a
:class:`~tinyjax.compiler.codegen.gemm.GemmLoops`) as loop IR -- the counterpart of
:mod:`tinyjax.compiler.codegen.gemm_linearizer` (the GPU's tiles).

What every product shares -- the loops over panels and tiles, the threads, the register-
blocked micro-kernel -- is the support library's driver, compiled once
(:mod:`tinyjax.backends.c.support`); the kernel's loop IR holds what is its own, each a
``FUNCTION`` op (its :class:`~tinyjax.compiler.codegen.uops.Routine`) the driver calls:

* ``_pa`` / ``_pb`` (:func:`pack_rows`, :func:`pack_blocked`, :func:`pack_k`, as the plan's
  ``pack_a``/``pack_b`` say): fill zero-padded panel ``pb`` of an operand (``TJ_MR`` rows
  of ``a``, ``TJ_NR`` columns of ``b``, the K values of the first reduce axis' range
  ``lo .. hi`` each) at the pointer ``out``, any fused producer computed while packing;
* ``_epi`` (:func:`epilogue`): the kernel's body applied to finished tile ``ip, jp`` (the
  accumulators at ``t``);
* the kernel itself: one ``GEMM`` op, the driver called with the product's plan (a
  :class:`~tinyjax.compiler.codegen.uops.Product`) and those routines.

An operand that is a strided view and a result stored as it is (the plan's ``views``) get
no routine: the driver fills and stores them itself.  The panels' row counts are the
target's names ``TJ_MR``, ``TJ_NR``, ``TJ_NRD`` (set by the vector width the program is
compiled for); a panel fill whose best loop differs between the widths tests ``TJ_VW``
(a constant: the C compiler keeps one branch).
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np

from tinyjax.compiler.codegen.gemm import PACK_BLOCK, PANEL_ROWS_BY_WIDTH, GemmLoops, operands
from tinyjax.compiler.codegen.gpu_linearizer import Emitter, X
from tinyjax.compiler.codegen.uops import Local, Product, Range, Routine
from tinyjax.compiler.kernel import Kernel, UOp
from tinyjax.compiler.shape.symbolic import Const, Var

__all__ = ["linearize_cpu_gemm", "pack_rows", "pack_blocked", "pack_k", "epilogue"]

I32 = np.dtype(np.int32)


class _Product:
    """One product kernel's facts the routines read: its operands after any swap, sizes."""

    def __init__(self, k: Kernel, plan: GemmLoops):
        full = k.full_shape
        self.k, self.plan, self.full = k, plan, full
        self.sides = operands(k, plan)
        self.dtype = np.dtype(k.acc_dtype)
        self.nr = "TJ_NRD" if self.dtype == np.float64 else "TJ_NR"
        self.M = int(np.prod([full[a] for a in plan.m_axes]))
        self.N = int(np.prod([full[a] for a in plan.n_axes]))
        self.K = int(np.prod([full[a] for a in k.reduce_axes]))
        self.outer = int(np.prod([full[a] for a in k.gemm.outer_axes]))
        self.chunked = plan.strategy == "splitk"


def linearize_cpu_gemm(k: Kernel, plan: GemmLoops) -> list[UOp]:
    """The loop IR of product ``k`` as its decisions ``plan`` say (see the module
    docstring)."""
    p, e = _Product(k, plan), Emitter()
    plan = p.plan
    fills = {"rows": pack_rows, "blocked": pack_blocked, "k": pack_k}
    sides = (("_pa", p.M, "TJ_MR", plan.m_axes, plan.pack_a),
             ("_pb", p.N, p.nr, plan.n_axes, plan.pack_b))
    fns = []
    for (name, rows, R, axes, how), (uops, root), view in zip(sides, p.sides, plan.views):
        if view is not None:
            fns.append(None)
            continue
        dst = _routine(e, p, name, ("ob", "pb", "lo", "hi"), "out")
        fills[how](e, p, dst, rows, R, axes, uops, root)
        e.close()
        fns.append(name)
    if plan.views[2] is None:
        epilogue(e, p)
        fns.append("_epi")
    else:
        fns.append(None)
    srcs = [i for i, u in enumerate(e.out) if u.op == "FUNCTION"]
    e.open.append(e.emit("FUNCTION", None, (), Routine("")))
    e.emit("GEMM", p.dtype, srcs, Product(p.M, p.N, p.K, p.full[k.reduce_axes[0]], p.outer,
                                          plan, tuple(fns)))
    e.close()
    return e.out


def _routine(e: Emitter, p: _Product, name: str, params: tuple, pointer: str) -> int:
    """Open routine ``name``: its pointer seen as the accumulator's type (``dst``, or the
    tile read: returned), the outer (batch) axes' indices of product ``ob``."""
    e.open.append(e.emit("FUNCTION", None, (), Routine(name, params, pointer)))
    writes = pointer == "out"
    local = e.emit("DEFINE_LOCAL", p.dtype, (), Local(
        "dst" if writes else "tile", 0, "argument", offset=pointer,
        qual="" if writes else "const"))
    outer = p.k.gemm.outer_axes
    if outer:
        e.unravel("ob", [f"i{a}" for a in outer], [p.full[a] for a in outer])
    return local


def _loop(e: Emitter, var: str, lo, hi, simd: bool = False, step: int = 1,
          branchless: bool = True, dtype=None) -> Var:
    """A loop of a routine (its selects branch-free: packing loops run scalar or in lanes;
    ``dtype``: its variable's, by default the index type)."""
    lo = Const(lo) if isinstance(lo, int) else lo
    hi = Const(hi) if isinstance(hi, int) else hi
    return e.open_range(Range(var, lo, hi, "reduce", simd=simd, step=step,
                              branchless=branchless, dtype=dtype))


def _reduce_loops(e: Emitter, p: _Product, axes=None) -> str:
    """The loops over the reduce axes (``axes``: those only), the first over the chunk
    ``lo .. hi`` in split-K; returns ``q``, the flat position along K they are at."""
    k, full = p.k, p.full
    axes = k.reduce_axes if axes is None else axes
    q = None
    for j, a in enumerate(axes):
        first = j == 0 and p.chunked
        _loop(e, f"i{a}", "lo" if first else 0, "hi" if first else full[a])
        pos = X("sub", f"i{a}", "lo") if first else f"i{a}"
        q = pos if q is None else X("add", X("mul", q, full[a]), pos)
    e.define("q", q if q is not None else 0)
    return "q"


def _panel_index(q, R: str, r):
    return X("add", X("mul", q, R), r)


def _store(e: Emitter, local: int, index, value: int) -> None:
    e.emit("STORE", None, (local, value), (e.out[local].arg, index, Const(1)))


def _zero(e: Emitter, p: _Product) -> int:
    return e.emit("CONST", p.dtype, (), 0.0)


def _operand(e: Emitter, p: _Product, uops, root: int,
             row: str = "") -> Union[int, Callable[[], int]]:
    """The operand's ops at the current indices (their value); with ``row``, the innermost
    variable of a vector loop about to open: the indices and the load masks that do not
    move along it are computed here, the rest by the function returned, inside the loop
    (so that it vectorises, its masked loads as selects)."""
    rbody, inside, made = list(p.k.rbody), set(uops), {}
    if row:
        for i in sorted(uops):
            u = rbody[i]
            if u.op == "INDEX" and row not in {v.name for v in u.arg.vars()}:
                made[i] = e.emit("INDEX", u.dtype, (), u.arg)
                continue
            if u.op != "LOAD" or not isinstance(u.arg[0], int):
                continue
            slot, idx, valid = u.arg
            if valid.vmin > 0 or row in {v.name for v in valid.vars()}:
                continue
            mask = e.define(f"mask{i}", valid, 0, 1, dtype=I32)
            rbody[i] = UOp(u.op, u.dtype, u.srcs, (slot, idx, mask))

    def inner() -> int:
        return e.body(rbody, {}, only=inside, subst=made)[root]
    return inner if row else inner()


def _panel_rows(e: Emitter, R: str) -> Var:
    """``p``: the panel row at loop variable ``r`` (``pb * R + r``)."""
    return e.define("p", X("add", X("mul", "pb", R), "r"), 0, 1 << 30)


def pack_rows(e: Emitter, p: _Product, dst: int, rows: int, R: str, axes: tuple, uops,
              root: int) -> None:
    """Fill a panel rows innermost (reads and writes both along the unit-stride axis).  The
    full-panel nest has no bounds test, so its row loop vectorises; a nest only where some
    panel can be so (for both register tiles, ``PANEL_ROWS_BY_WIDTH``); a full panel within
    one run of the innermost row axis (its length a multiple of the panel's rows) has the
    other axes hoisted out of its row loop, which then reads consecutive elements."""
    sizes = PANEL_ROWS_BY_WIDTH[R]
    inner = p.full[axes[-1]]
    variants = [v for v, needed in ((True, rows >= min(sizes)),
                                    (False, any(rows % n for n in sizes))) if needed]

    def nest(full_panel: bool, within: bool) -> None:
        q = _reduce_loops(e, p)
        fill = None
        if within:
            e.unravel(X("div", X("mul", "pb", R), inner), [f"i{a}" for a in axes[:-1]],
                      [p.full[a] for a in axes[:-1]])
            e.define("r0", X("mod", X("mul", "pb", R), inner))
            fill = _operand(e, p, uops, root, f"i{axes[-1]}")
        _loop(e, "r", 0, R, simd=within)
        if not within:
            _panel_rows(e, R)
        if not full_panel:
            e.if_(X("ge", "p", rows))
            _store(e, dst, _panel_index(q, R, "r"), _zero(e, p))
            e.else_()
        if within:
            e.define(f"i{axes[-1]}", X("add", "r0", "r"))
            value = fill()
        else:
            e.unravel("p", [f"i{a}" for a in axes], [p.full[a] for a in axes])
            value = _operand(e, p, uops, root)
        _store(e, dst, _panel_index(q, R, "r"), value)
        e.close(len(p.k.reduce_axes) + 1 + (not full_panel))

    for full_panel in variants:
        if len(variants) == 2 and full_panel:  # (the first test folds where R divides rows)
            e.if_(X("or", X("eq", X("mod", rows, R), 0),
                    X("ge", rows, X("add", X("mul", "pb", R), R))))
        elif len(variants) == 2:
            e.else_()
        withins = [full_panel and inner % n == 0 for n in sizes]
        if len(set(withins)) == 1:
            nest(full_panel, withins[0])
        else:  # the register tiles differ: each its own
            e.if_(X("eq", "TJ_VW", 16))
            nest(full_panel, withins[0])
            e.else_()
            nest(full_panel, withins[1])
            e.close()
    if len(variants) == 2:
        e.close()


def pack_blocked(e: Emitter, p: _Product, dst: int, rows: int, R: str, axes: tuple, uops,
                 root: int) -> None:
    """Fill a panel whose operand is read along the last reduce axis (a row-major
    activation, a conv window's channels): blocks of ``PACK_BLOCK`` values per row (for each
    value of the other reduce axes) are computed with vector loads into a small tile, then
    written out transposed (both loops vectorise; element by element the panel's stores
    would stride by R)."""
    k = p.k
    a, KB = k.reduce_axes[-1], PACK_BLOCK
    outer = k.reduce_axes[:-1]
    klo, khi = ("lo", "hi") if p.chunked and not outer else (0, p.full[a])
    if outer:
        q = _reduce_loops(e, p, outer)
        e.define("qb", X("mul", q, p.full[a]))
    q0 = _loop(e, "q0", klo, khi, step=KB)
    e.define("kb", X("min", X("sub", khi, q0), KB), dtype=I32)
    blk = e.emit("DEFINE_LOCAL", p.dtype, (), Local("blk", (R, KB), "register", align=64))
    _loop(e, "r", 0, R, dtype=I32)
    _panel_rows(e, R)
    e.if_(X("ge", "p", rows))
    _loop(e, "j", 0, "kb", dtype=I32)
    _store(e, blk, ("r", "j"), _zero(e, p))
    e.close()
    e.else_()
    e.unravel("p", [f"i{x}" for x in axes], [p.full[x] for x in axes])
    fill = _operand(e, p, uops, root, f"i{a}")
    _loop(e, "j", 0, "kb", simd=True)
    e.define(f"i{a}", X("add", q0, "j"))
    _store(e, blk, ("r", "j"), fill())
    e.close(3)
    _loop(e, "j", 0, "kb", dtype=I32)
    _loop(e, "r", 0, R, dtype=I32)
    at = X("add", "qb", q0) if outer else q0
    at = X("add", at if klo == 0 else X("sub", at, klo), "j")
    _store(e, dst, _panel_index(at, R, "r"),
           e.emit("LOAD", p.dtype, (blk,), (e.out[blk].arg, ("r", "j"), Const(1))))
    e.close(3 + len(outer))


def pack_k(e: Emitter, p: _Product, dst: int, rows: int, R: str, axes: tuple, uops,
           root: int) -> None:
    """Fill a panel reduce axes innermost, row by row (a conv's windows whose channels run
    with unit stride)."""
    width = X("mul", X("sub", "hi", "lo"), p.K // p.full[p.k.reduce_axes[0]]) \
        if p.chunked else p.K
    _loop(e, "r", 0, R, dtype=I32)
    _panel_rows(e, R)
    e.if_(X("ge", "p", rows))
    _loop(e, "q", 0, width)
    _store(e, dst, _panel_index("q", R, "r"), _zero(e, p))
    e.close()
    e.else_()
    e.unravel("p", [f"i{a}" for a in axes], [p.full[a] for a in axes])
    q = _reduce_loops(e, p)
    _store(e, dst, _panel_index(q, R, "r"), _operand(e, p, uops, root))
    e.close(len(p.k.reduce_axes) + 2)


def epilogue(e: Emitter, p: _Product) -> None:
    """The routine applying the kernel's body to finished tile ``ip, jp`` (the accumulators
    at ``t``, ``TJ_MR x NR``): every output of the tile in range, row by row."""
    k, plan, R, NR = p.k, p.plan, "TJ_MR", p.nr
    tile = _routine(e, p, "_epi", ("ob", "ip", "jp"), "t")
    e.define("rmax", X("min", X("sub", p.M, X("mul", "ip", R)), R))
    e.define("cmax", X("min", X("sub", p.N, X("mul", "jp", NR)), NR))
    _loop(e, "r", 0, "rmax", branchless=False)
    e.unravel(X("add", X("mul", "ip", R), "r"), [f"i{a}" for a in plan.m_axes],
              [p.full[a] for a in plan.m_axes])
    _loop(e, "c", 0, "cmax", branchless=False)
    e.unravel(X("add", X("mul", "jp", NR), "c"), [f"i{a}" for a in plan.n_axes],
              [p.full[a] for a in plan.n_axes])
    acc = e.emit("LOAD", p.dtype, (tile,), (e.out[tile].arg, _panel_index("r", NR, "c"),
                                            Const(1)))
    e.body(k.body, {None: acc})
    e.close(3)
