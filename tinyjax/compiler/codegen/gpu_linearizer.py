"""``linearize_gpu``: a :class:`~tinyjax.compiler.codegen.gpu_loops.GpuKernel` as loop IR
(:mod:`tinyjax.compiler.codegen.uops`) for a GPU renderer to spell.

Each launched function is a ``FUNCTION`` op with its geometry; inside it the thread's
coordinates (``SPECIAL``, then named values ``DEFINE_VAR``), the loops (a ``grid``
loop over the points of an elementwise kernel; a reduction's loops over each thread's
share of the reduce space, with their unroll hints and guards) and the kernel's bodies.
A reduction's threads combine with ``GROUP_REDUCE`` (and across blocks ``GRID_REDUCE``);
vector accesses are ``VLOAD``/``GEP``/``VSTORE``, each lane's body emitted on its own with
the innermost index pinned to the lane; registers kept between passes are a
``DEFINE_LOCAL`` filled by the first pass that reads them.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Optional

import numpy as np

from tinyjax.compiler.codegen.gpu_loops import MAX_GRID_X, GpuKernel, cdiv, prod
from tinyjax.compiler.codegen.gpu_opts import vector_loads
from tinyjax.compiler.codegen.gpu_heuristics import BLOCK
from tinyjax.compiler.codegen.linearizer import pinned
from tinyjax.compiler.codegen.uops import (Acc, Define, Expr, Function, Group, Local, Range,
                                           Special)
from tinyjax.compiler.kernel import Kernel, UOp, _is_true, uop_deps
from tinyjax.compiler.shape.symbolic import Const, Node, Var

__all__ = ["linearize_gpu", "Emitter", "X"]

BOOL = np.dtype(np.bool_)


def X(op: str, *args) -> Expr:
    """The expression ``op(*args)``, spelled as written (no simplification: the definitions
    of a thread's coordinates stay what they say)."""
    return Expr(op, args)


class Emitter:
    """Appends ops to one loop IR list (used by :func:`linearize_gpu` and the product
    linearizers of both targets)."""

    def __init__(self):
        self.out: list[UOp] = []
        self.open: list[int] = []

    def emit(self, op: str, dtype=None, srcs=(), arg=None) -> int:
        self.out.append(UOp(op, None if dtype is None else np.dtype(dtype), tuple(srcs), arg))
        return len(self.out) - 1

    def function(self, name: str, grid, block, shared: int = 0, bounds: int = 0,
                 index: str = "long", how: str = "") -> int:
        grid = tuple(grid) + (1,) * (3 - len(tuple(grid))) if isinstance(grid, tuple) else \
            (grid, 1, 1)
        block = tuple(block) + (1,) * (3 - len(tuple(block))) if isinstance(block, tuple) else \
            (block, 1, 1)
        i = self.emit("FUNCTION", None, (), Function(name, grid, block, shared, bounds, index, how))
        self.open.append(i)
        return i

    def special(self, name: str, what: str, extent: int, dtype=np.int32) -> Var:
        """A thread coordinate as ``dtype`` (blocks count unsigned, as CUDA's do)."""
        self.emit("SPECIAL", dtype, (), Special(name, what, extent))
        return Var(name, 0, max(extent - 1, 0))

    def define(self, name: str, value, lo: int = 0, hi: Optional[int] = None,
               dtype=None) -> Var:
        """``const name = value``; returns the variable (range ``[lo, hi]``: by default the
        value's own where it is a node)."""
        self.emit("DEFINE_VAR", dtype, (), Define(name, value))
        if hi is None:
            lo, hi = (value.vmin, value.vmax) if isinstance(value, Node) else (0, 1)
        return Var(name, lo, max(hi, lo))

    def local(self, name: str, dtype, size, where: str) -> int:
        return self.emit("DEFINE_LOCAL", dtype, (), Local(name, size, where))

    def open_range(self, r: Range) -> Var:
        self.open.append(self.emit("RANGE", None, (), r))
        hi = r.hi.vmax if isinstance(r.hi, Node) else r.hi if isinstance(r.hi, int) else 1 << 30
        return Var(r.var, 0, max(hi - 1, 0))  # (a bound named at run time: any int)

    def if_(self, cond) -> None:
        """Open ``if (cond)`` (closed by :meth:`close`)."""
        self.open.append(self.emit("IF", None, (), cond))

    def else_(self) -> None:
        """The ``else`` of the innermost open ``if``."""
        self.emit("ELSE", None, (self.open[-1],))

    def close(self, n: int = 1) -> None:
        for _ in range(n):
            i = self.open.pop()
            end = {"RANGE": "ENDRANGE", "IF": "ENDIF", "FUNCTION": "ENDFUNCTION"}[self.out[i].op]
            self.emit(end, None, (i,))

    def unravel(self, flat, names: list[str], sizes: list[int]) -> None:
        """``names`` (C order over ``sizes``) from the flat index ``flat``: the last is
        ``flat % size``, the one before ``flat / size % size`` ..., the first no modulo."""
        for j in range(len(names) - 1, -1, -1):
            self.define(names[j], flat if j == 0 else X("mod", flat, sizes[j]), 0, sizes[j] - 1)
            flat = X("div", flat, sizes[j])

    def body(self, uops: list[UOp], accs: dict, only=None, pin=None, subst=None) -> dict:
        """Append ``uops`` (those in ``only``): their ``ACC`` reads resolved to ``accs``
        (``None``: the main stage, ``j``: pre stage ``j``), the variables of ``pin``
        substituted in their indices, the ops of ``subst`` replaced by the given ones.
        Returns the map from ``uops`` indices to the emitted ones."""
        m: dict[int, int] = {}
        for i, u in enumerate(uops):
            if only is not None and i not in only:
                continue
            if subst and i in subst:  # an op of its own (made here, in order) or one made before
                m[i] = subst[i]() if callable(subst[i]) else subst[i]
            elif u.op == "ACC":
                m[i] = accs[u.arg]
            else:
                m[i] = self.emit(u.op, u.dtype, tuple(m[s] for s in u.srcs),
                                 pinned(u, pin) if pin else u.arg)
        return m


def linearize_gpu(gk: GpuKernel) -> list[UOp]:
    """The loop IR of ``gk`` (see the module docstring)."""
    e = Emitter()
    if gk.kind == "elementwise":
        _elementwise(e, gk)
    elif gk.kind == "reduce":
        _reduce(e, gk)
    elif gk.kind == "sort":
        _sort(e, gk)
    elif gk.kind == "scatter":
        _scatter(e, gk)
    else:
        raise NotImplementedError(f"linearize_gpu: {gk.kernel.name} is a {gk.kind}")
    return e.out


def _aligned(e: Emitter, k: Kernel, slots, lanes: int) -> int:
    """``aligned``: whether every buffer of ``slots`` starts on a vector boundary (decided
    once per launch: a view may start inside an allocation)."""
    e.emit("DEFINE_VAR", BOOL, (), Define("aligned", Expr("aligned", tuple(
        (s, lanes * np.dtype(k.bufs[s][0]).itemsize) for s in sorted(slots)))))
    return len(e.out) - 1


def _lanes(e: Emitter, k: Kernel, uops: list, accs: dict, which: list, axis: str,
           extent: int, lanes: int, aligned: int, each) -> None:
    """``lanes`` points along the loop variable ``axis`` from ``ib`` (a multiple of
    ``lanes``): the loads ``which`` of ``uops`` as vector loads, then the body once per lane
    with ``axis`` pinned to ``ib`` plus the lane; ``each(lane, map)`` after each lane's."""
    ib = Var("ib", 0, max(extent - lanes, 0))
    vl = {}
    for i in which:
        slot, index, _ = uops[i].arg
        vl[i] = e.emit("VLOAD", uops[i].dtype, (aligned,),
                       (slot, index.substitute({axis: ib}), lanes))
    for j in range(lanes):
        gep = {i: e.emit("GEP", uops[i].dtype, (v,), j) for i, v in vl.items()}
        each(j, e.body(uops, accs, pin={axis: ib + j}, subst=gep))


def _elementwise(e: Emitter, gk: GpuKernel, after=None, suffix: str = "") -> None:
    k, V = gk.kernel, gk.lanes
    full = k.full_shape
    n = prod(full)
    e.function(suffix, gk.grid, gk.block, bounds=gk.block, index=gk.index, how=gk.describe())
    names = [f"i{a}" for a in range(len(full))]
    if V == 1:
        gid = e.open_range(Range("gid", Const(0), Const(n), "grid"))
        e.unravel(gid, names, list(full))
        e.body(k.body, {})
    else:
        last = len(full) - 1
        which = vector_loads(k, k.body, last, V)
        aligned = _aligned(e, k, {k.body[i].arg[0] for i in which} | {0}, V)
        gid = e.open_range(Range("gid", Const(0), Const(n // V), "grid"))
        e.unravel(gid, names[:-1] + ["ib0"], list(full[:-1]) + [full[-1] // V])
        e.define("ib", X("mul", Var("ib0", 0, full[-1] // V - 1), V))
        st = k.body[-1]
        vals = []
        _lanes(e, k, k.body[:-1], {}, which, f"i{last}", full[-1], V, aligned,
               lambda j, m: vals.append(m[st.srcs[0]]))
        ib = Var("ib", 0, max(full[-1] - V, 0))
        e.emit("VSTORE", k.bufs[0][0], (aligned, *vals),
               (0, st.arg[1].substitute({f"i{last}": ib}), V))
    e.close()
    if after is not None:
        after()
    e.close()


def _reduce(e: Emitter, gk: GpuKernel) -> None:
    k = gk.kernel
    full = k.full_shape
    red = [a for a in range(len(full)) if a in k.reduce_axes]
    outer = [a for a in range(len(full)) if a not in k.reduce_axes]
    O, R = prod(full[a] for a in outer), prod(full[a] for a in red)
    T, W, G, P = gk.block, gk.W, gk.G, gk.P
    blocks = gk.grid // G
    if G > 1:
        arrays = (e.local("_part", k.acc_dtype, blocks * P * G, "module"),
                  e.local("_count", np.uint32, blocks, "module"))
    e.function("", gk.grid, T, bounds=T, index=gk.index, how=gk.describe())
    tid = e.special("tid", "thread", T)
    if gk.layout == "rows":
        part, ol = e.define("part", X("mod", tid, W), 0, W - 1), e.define("ol", X("div", tid, W), 0, P - 1)
    else:
        part, ol = e.define("part", X("div", tid, P), 0, W - 1), e.define("ol", X("mod", tid, P), 0, P - 1)
    bid = e.special("bid", "block", gk.grid, np.uint32)
    ob = e.define("ob", X("div", bid, G), 0, blocks - 1)
    o = e.define("o", X("add", X("mul", ob, P), ol), 0, blocks * P - 1)
    active = e.define("active", X("lt", o, O), dtype=BOOL)
    smem = e.local("tj_smem", np.uint8, T * 8, "shared") if W > 1 and \
        (gk.layout == "cols" or W > 32) else None
    order = list(gk.order or outer)
    e.unravel(o, [f"i{a}" for a in order], [full[a] for a in order])
    V = gk.lanes
    if G > 1:
        C = cdiv(cdiv(R, G), V) * V  # chunks start on vector boundaries
        g = e.define("g", X("mod", bid, G), 0, G - 1)
        lo = e.define("lo", X("mul", g, C), 0, (G - 1) * C)
        hi = e.define("hi", X("where", active, X("min", X("add", lo, C), R), lo), 0, R)
    red_names, red_sizes = [f"i{a}" for a in red], [full[a] for a in red]
    group = Group(gk.layout, W, P)
    ctx_ops = _names(e, "tid", "ol") + ((smem,) if smem is not None else ())
    cache = {key: e.local(f"c{n}", k.bufs[key[0]][0], R // W, "register")
             for n, key in enumerate(gk.cache)}
    filled: set = set()
    accs: dict = {}
    stages = [(rb, op, dt, j) for j, (op, dt, rb) in enumerate(k.pre)]
    stages.append((k.rbody, k.reduce_op, k.acc_dtype, None))
    for rbody, op, dt, j in stages:
        if V > 1:  # one stage (vectorize applies to no others)
            aligned = _aligned(e, k, {rbody[i].arg[0] for i in
                                      vector_loads(k, rbody, red[-1], V)}, V)
        acc = accs[j] = e.emit("DEFINE_ACC", dt, (), Acc(op))
        if V > 1:
            start = X("add", lo, X("mul", part, V)) if G > 1 else X("mul", part, V)
            e.open_range(Range("r", start, hi if G > 1 else Const(R), "reduce", step=W * V,
                               unroll=4, guard=None if G > 1 else active,
                               guard_style="" if G > 1 else "bound"))
            e.unravel(Var("r", 0, R - 1), red_names[:-1] + ["ib"], red_sizes)
            _lanes(e, k, rbody, accs, vector_loads(k, rbody, red[-1], V), red_names[-1],
                   red_sizes[-1], V, aligned,
                   lambda _, m: e.emit("ACCUMULATE", None, (acc, m[len(rbody) - 1])))
        else:
            _pass_loop(e, gk, R, part, active, lo if G > 1 else None, hi if G > 1 else None,
                       unroll=True)
            e.unravel(Var("r", 0, R - 1), red_names, red_sizes)
            m = _cached_body(e, k, rbody, accs, cache, filled)
            e.emit("ACCUMULATE", None, (acc, m[len(rbody) - 1]))
        e.close()
        if W > 1:
            e.emit("GROUP_REDUCE", None, (acc,) + ctx_ops, group)
    if G > 1:
        e.emit("GRID_REDUCE", None, (accs[None],) + _names(e, "part", "o", "g", "ob", "tid") +
               arrays, (group, G))
        if W > 1:
            e.emit("GROUP_REDUCE", None, (accs[None],) + ctx_ops, group)
    if k.full_epilogue:
        _pass_loop(e, gk, R, part, active, None, None, unroll=False)
        e.unravel(Var("r", 0, R - 1), red_names, red_sizes)
        _cached_body(e, k, k.body, accs, cache, filled)
    else:
        e.open.append(e.emit("IF", None, (), X("and", active, X("eq", part, 0))))
        e.body(k.body, accs)
    e.close(2)


def _names(e: Emitter, *names: str) -> tuple:
    found = {}
    for i, u in enumerate(e.out):
        if u.op in ("SPECIAL", "DEFINE_VAR") and u.arg.name in names:
            found[u.arg.name] = i
    return tuple(found[n] for n in names)


def _pass_loop(e: Emitter, gk: GpuKernel, R: int, part: Var, active: Var, lo, hi,
               unroll: bool) -> None:
    """The head of one pass of a thread over its share of the reduce space (every W-th point
    from ``part``): over its cached registers, fully unrolled; between ``lo`` and ``hi``
    (a split reduction's chunk); or over all of it, fully unrolled where short (a 3x3
    window), else by 4 (``unroll``: hints at all)."""
    W = gk.W
    if gk.cache:
        j = e.open_range(Range("j", Const(0), Const(R // W), "reduce", unroll=0,
                               guard=active, guard_style="break"))
        e.define("r", X("add", part, X("mul", j, W)), 0, R - 1)
    elif lo is not None:
        e.open_range(Range("r", X("add", lo, part), hi, "reduce", step=W, unroll=4))
    elif not unroll or R <= 16 * W:  # a constant trip count: short ones unroll fully
        e.open_range(Range("r", part, Const(R), "reduce", step=W, unroll=0 if unroll else None,
                           guard=active, guard_style="and"))
    else:
        e.open_range(Range("r", part, Const(R), "reduce", step=W, unroll=4, guard=active,
                           guard_style="bound"))


def _cached_body(e: Emitter, k: Kernel, uops: list, accs: dict, cache: dict,
                 filled: set) -> dict:
    """``uops`` with the loads of ``cache`` read from their registers (element ``j`` of the
    thread's share), those that no earlier pass filled filled first."""
    hits = {i: (u.arg[0], u.arg[1]) for i, u in enumerate(uops) if u.op == "LOAD" and
            not u.srcs and _is_true(u.arg[2]) and (u.arg[0], u.arg[1]) in cache}
    for key in dict.fromkeys(hits.values()):
        if key not in filled:
            filled.add(key)
            c = cache[key]
            v = e.emit("LOAD", k.bufs[key[0]][0], (), (key[0], key[1], Const(1)))
            e.emit("STORE", None, (c, v), (e.out[c].arg, _j(e, c), Const(1)))
    return e.body(uops, accs, subst={i: lambda i=i: e.emit(
        "LOAD", uops[i].dtype, (cache[hits[i]],),
        (e.out[cache[hits[i]]].arg, _j(e, cache[hits[i]]), Const(1))) for i in hits})


def _j(e: Emitter, local: int) -> Var:
    return Var("j", 0, e.out[local].arg.size - 1)


def _sort(e: Emitter, gk: GpuKernel) -> None:
    k = gk.kernel
    axis = k.sort[0]
    n = k.full_shape[axis]
    if gk.mode == "global":
        e.local("_scratch", np.int32, gk.grid * 2 * n, "module")
    e.function("", gk.grid, gk.block, bounds=gk.block, how=gk.describe())
    e.emit("SORT", None, (), (gk.mode, k.sort))
    e.close()


def _scatter(e: Emitter, gk: GpuKernel) -> None:
    k = gk.kernel
    ss, n0 = k.scatter_shape, k.bufs[0][1]
    nu = prod(ss)
    sc = k.sbody[-1]
    win = None
    if gk.mode == "winner":
        win = e.local("_win", np.uint32, max(n0, 1), "module")
    copy = gk.copy
    if gk.mode == "winner":  # its threads reset the winner array too
        copy = replace(copy, grid=max(copy.grid, min(cdiv(n0, BLOCK), MAX_GRID_X)))

    def reset():  # the winner array back to 0 for the next call
        q = e.open_range(Range("q", Const(0), Const(n0), "grid"))
        zero = e.emit("CONST", np.uint32, (), 0)
        e.emit("STORE", None, (win, zero), (e.out[win].arg, q, Const(1)))
        e.close()
    _elementwise(e, copy, reset if win is not None else None, "_copy")

    def updates(name: str, mode: str, needs=(0, 1, 2)) -> None:
        e.function(name, gk.grid, gk.block, bounds=gk.block, how=gk.describe())
        u = e.open_range(Range("u", Const(0), Const(nu), "global" if gk.mode == "serial"
                               else "grid"))
        urange = e.open[-1]
        e.unravel(u, [f"i{a}" for a in range(len(ss))], list(ss))
        m = e.body(k.sbody[:-1], {}, only=uop_deps(k.sbody, [sc.srcs[j] for j in needs]))
        o, v, ok = (m.get(s, m[sc.srcs[0]]) for s in sc.srcs)  # (the mark reads no value)
        srcs = (o, v, ok, urange) + ((win,) if win is not None else ())
        e.emit("SCATTER", k.sbody[sc.srcs[1]].dtype, srcs, (sc.arg, mode))
        e.close(2)
    if gk.mode == "winner":
        updates("_mark", "mark", needs=(0, 2))
    updates("", gk.mode)
