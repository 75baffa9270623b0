"""``linearize``: a :class:`~tinyjax.compiler.codegen.loops.LoopKernel` as the loop IR of
:mod:`tinyjax.compiler.codegen.uops`.

The global loops open first; inside them every reduction stage (``pre`` stages, then the
main one) gets its accumulator (a row of them where ``upcast`` loops run below the
reduction), then its ``reduce`` loops with the ``upcast`` loops inside, its reduce body and
the accumulation; then the epilogue (the kernel's ``body``) runs inside the ``upcast``
loops, or for a full epilogue inside loops over the reduced axes.  A ``partial`` loop gets
its own accumulator, declared before it and combined into the stage's after it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

from tinyjax.compiler.codegen.loops import Loop, LoopKernel
from tinyjax.compiler.codegen.uops import Acc, Range
from tinyjax.compiler.kernel import UOp, uop_deps
from tinyjax.compiler.shape.symbolic import Const, Var, as_affine, substitute

__all__ = ["linearize", "pinned"]


class _Emitter:
    def __init__(self, lk: LoopKernel):
        self.lk, self.k = lk, lk.kernel
        self.out: list[UOp] = []
        self.open: list[int] = []

    def emit(self, op: str, dtype, srcs=(), arg=None) -> int:
        self.out.append(UOp(op, dtype, tuple(srcs), arg))
        return len(self.out) - 1

    def range_of(self, lp: Loop, accs=()) -> Range:
        n = self.k.full_shape[lp.axis]
        if lp.block <= 0:
            return Range(lp.var, Const(0), Const(n), lp.kind, None, lp.parallel, lp.simd, accs)
        if lp.outer:
            nb = -(-n // lp.block)
            return Range(lp.var, Const(0), Const(nb), lp.kind, None, lp.parallel, lp.simd, accs)
        if n <= lp.block:
            return Range(lp.var, Const(0), Const(n), lp.kind, None, lp.parallel, lp.simd, accs)
        b = Var(f"b{lp.axis}", 0, -(-n // lp.block) - 1)
        lo = b * lp.block
        cap = None if n % lp.block == 0 else n
        return Range(lp.var, lo, lo + lp.block, lp.kind, cap, lp.parallel, lp.simd, accs)

    def open_loop(self, lp: Loop, accs=()) -> None:
        self.open.append(self.emit("RANGE", None, (), self.range_of(lp, accs)))

    def close(self, n: int = 1) -> None:
        for _ in range(n):
            self.emit("ENDRANGE", None, (self.open.pop(),))

    def body(self, uops: list[UOp], accs: dict, only: Optional[set] = None,
             pin: Optional[dict] = None) -> int:
        """Append ``uops`` (those in ``only``), their ``ACC`` reads resolved to ``accs``
        (``None``: the main stage, ``j``: pre stage ``j``); ``pin`` substitutes loop variables
        in their indices.  Returns the new index of the last one."""
        m: dict[int, int] = {}
        for i, u in enumerate(uops):
            if only is not None and i not in only:
                continue
            if u.op == "ACC":
                m[i] = accs[u.arg]
                continue
            arg = u.arg
            if pin:
                arg = pinned(u, pin)
            m[i] = self.emit(u.op, u.dtype, tuple(m[s] for s in u.srcs), arg)
        return m[max(m)] if m else -1


def pinned(u: UOp, pin: dict):
    """``u``'s argument with the loop variables of ``pin`` substituted in its indices."""
    if u.op in ("LOAD", "STORE"):
        slot, index, valid = u.arg
        return (slot, substitute(index, pin), substitute(valid, pin))
    if u.op == "INDEX":
        return substitute(u.arg, pin)
    return u.arg


def _row_stores(body: list[UOp], inner: list[int]) -> list[int]:
    """The stores of a full epilogue that write one value per row: address and value do
    not move along the reduced axes ``inner``, and the guard (every reduced axis at 0)
    reads only those axes."""
    names = {f"i{a}" for a in inner}

    def moves(u: UOp) -> bool:
        return u.op in ("LOAD", "INDEX") and bool(
            {v.name for v in (u.arg[1] if u.op == "LOAD" else u.arg).vars()} & names)
    out = []
    for i, u in enumerate(body):
        if u.op != "STORE":
            continue
        _, idx, valid = u.arg
        if ({v.name for v in idx.vars()} & names or not {v.name for v in valid.vars()} <= names
                or any(moves(body[j]) for j in uop_deps(body, u.srcs))):
            continue
        out.append(i)
    return out


def linearize(lk: LoopKernel) -> list[UOp]:
    """The loop IR of ``lk`` (see the module docstring), its innermost loops over
    independent iterations marked so."""
    return _mark_independent(_linearize(lk))


def _mark_independent(uops: list[UOp]) -> list[UOp]:
    """Each innermost loop whose stores (one at least) all move with its variable (an
    affine address with a nonzero coefficient of it) as ``independent``: its iterations
    write different elements, and a kernel reads no buffer it writes but at the element
    it writes (an input updated in place)."""
    out = list(uops)
    opened: list[list] = []  # per open loop: [its RANGE, innermost, its stores all move]
    for i, u in enumerate(uops):
        if u.op == "RANGE":
            if opened:
                opened[-1][1] = False
            opened.append([i, True, None])
        elif u.op == "STORE" and opened:
            loop = opened[-1]
            affine = as_affine(u.arg[1])
            var = uops[loop[0]].arg.var
            moves = affine is not None and any(v.name == var and c for v, c in affine[0].items())
            loop[2] = moves and loop[2] is not False
        elif u.op == "ENDRANGE":
            at, innermost, stores_move = opened.pop()
            if innermost and stores_move:
                out[at] = UOp("RANGE", None, (), replace(uops[at].arg, independent=True))
    return out


def _linearize(lk: LoopKernel) -> list[UOp]:
    e, k = _Emitter(lk), lk.kernel
    if k.reduce_op is None and not k.reduce_axes:
        for lp in lk.loops:
            e.open_loop(lp)
        e.body(k.body, {})
        e.close(len(e.open))
        return e.out
    glob, red, up = lk.of_kind("global"), lk.of_kind("reduce"), lk.of_kind("upcast")
    for lp in glob:
        e.open_loop(lp)
    row = _row(lk, up)
    stages = [(op, dt, rb, j) for j, (op, dt, rb) in enumerate(k.pre)]
    stages.append((k.reduce_op, k.acc_dtype, k.rbody, None))
    accs: dict = {}
    for op, dt, _, j in stages:
        accs[j] = e.emit("DEFINE_ACC", dt, (), Acc(op, *row))
    for op, dt, rbody, j in stages:
        _stage(e, red, up, rbody, accs, j, op, dt)
    if k.full_epilogue:
        _full_epilogue(e, lk, red, accs)
    else:
        for lp in up:
            e.open_loop(lp)
        e.body(k.body, accs)
        e.close(len(up))
    e.close(len(e.open))
    return e.out


def _row(lk: LoopKernel, up: list[Loop]) -> tuple:
    """(count, index) of a stage's row of accumulators: one per iteration of the upcast
    loops (within their block)."""
    if not up:
        return (1, None)
    count, index = 1, Const(0)
    for lp in up:
        n, full = lk.size(lp), lk.kernel.full_shape[lp.axis]
        var = Var(lp.var, 0, full - 1)
        if lp.block > 0:
            var = var - Var(f"b{lp.axis}", 0, -(-full // lp.block) - 1) * lp.block
        index, count = index * n + var, count * n
    return (count, index)


def _stage(e: _Emitter, red: list[Loop], up: list[Loop], rbody, accs: dict, j, op, dt) -> None:
    """One reduction stage: its reduce loops (a partial accumulator below a ``partial`` one),
    the upcast loops inside, the reduce body and the accumulation."""
    target, partials = accs[j], []
    for lp in red:
        if lp.partial:
            part = e.emit("DEFINE_ACC", dt, (), Acc(op))
            partials.append((target, part))
            target = part
        e.open_loop(lp, (target,) if lp.parallel or lp.simd else ())
    for lp in up:
        e.open_loop(lp)
    val = e.body(rbody, accs)
    e.emit("ACCUMULATE", None, (target, val))
    e.close(len(up))
    for lp in reversed(red):
        e.close()
        if lp.partial:
            outer, part = partials.pop()
            e.emit("ACCUMULATE", None, (outer, part))


def _full_epilogue(e: _Emitter, lk: LoopKernel, red: list[Loop], accs: dict) -> None:
    """The epilogue over the whole loop space: inside plain loops over the reduced axes,
    with the row stores first (their reduced indices pinned to 0) where hoisted."""
    k = lk.kernel
    axes = sorted({lp.axis for lp in red})
    rest = None
    if lk.hoist_row_stores:
        once = _row_stores(k.body, axes)
        if once:
            e.body(k.body, accs, only=uop_deps(k.body, once),
                   pin={f"i{a}": 0 for a in axes})
            rest = uop_deps(k.body, [i for i, u in enumerate(k.body)
                                     if u.op == "STORE" and i not in once])
    for a in axes:
        e.open_loop(Loop(a, "reduce"))
    e.body(k.body, accs, only=rest)
    e.close(len(axes))
