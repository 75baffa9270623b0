"""The scheduler: group the low-level op graph into kernels (fusion) and plan buffers.

Fusion policy:

* elementwise ops, casts and views are inlined into whatever consumes them (movement ops
  never cost a kernel: they become index arithmetic);
* a kernel holds one reduction loop space: its elementwise inputs are fused into the reduce
  loop and an elementwise epilogue over the reduction's output space is fused after it;
  several reductions over the same loop space and axes become successive stages of one
  kernel when the later ones read the earlier ones broadcast back over the reduced axes
  (softmax: max, then the sum of exp(x - max)), and an epilogue over the whole loop space
  reads them broadcast back too (softmax's division) while the rows leave the threads
  enough to share;
* a matmul-shaped reduction (sum of a product whose operands depend on disjoint output
  axes) gets a :class:`GemmPlan`: packed panels and a register-blocked micro-kernel; an
  epilogue reading it transposed (a gradient feeding an SGD update) stays fused, the store
  becomes strided (a conv and its transposes are such reductions over windowed views);
* successive reduction stages keep a row of accumulators along a unit-stride output axis
  (a max-pool gradient's argmax over the channels);
* scatters and sorts are kernel kinds of their own (a serial update loop; per-row merge
  sorts);
* a node is materialised ("realized") only when it must be: a jaxpr output; a reduction
  with more than one consumer or read through a view that does not fit the above; an
  elementwise node whose recomputation would be costly (several consumers -- a reduction
  below it counts as very costly, so a forward matmul is never recomputed in the backward
  pass -- or a view that expands it many times); the sources of data-dependent reads; never
  an expression of constants alone (folded where it is read);
* a reduction that has several readers, all through one transpose (a weight gradient read
  by Adam's two moments), is realized transposed: its product stores in its readers'
  layout and they read it contiguously;
* multi-output fusion: a realized per-row result (a reduction, or a function of some: a
  mean, a log-sum-exp) becomes a stage of the last kernel over the same loop space that
  reads it, which also writes its buffer where other kernels read it -- a layer norm's
  statistics and its normalisation are one kernel; a realized elementwise function of
  reductions is computed by the elementwise kernel that reads it, which writes it too --
  Adam's new moments and parameter are one kernel (see :func:`_plan_hosts`);
* only nodes reachable from the outputs are scheduled (dead code never runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tinyjax.compiler.shape import symbolic
from tinyjax.compiler.kernel import GemmPlan, Kernel, UOp, loop_var
from tinyjax.compiler.ops import ALU, LazyOp
from tinyjax.compiler.shape.shapetracker import unravel
from tinyjax.compiler.shape.symbolic import Const, Node, and_, simplify_given

__all__ = ["Schedule", "schedule", "OutputSpec"]

_LEAVES = ("LOAD", "CONST", "IDX")


# what a node's rendering needs besides its sources (see _Builder._sources_of)
_ZERO, _LOADED = object(), object()


class FuseFail(Exception):
    def __init__(self, node: LazyOp):
        self.node = node


@dataclass
class OutputSpec:
    """How an output is produced: from buffer ``buf``; if ``view`` is set, as a strided
    numpy view (shape, element strides, element offset) of that buffer (no kernel)."""
    buf: int
    shape: tuple[int, ...]
    dtype: np.dtype
    view: Optional[tuple[tuple[int, ...], tuple[int, ...], int]] = None


@dataclass
class Schedule:
    kernels: list[Kernel]
    n_inputs: int
    buffers: dict[int, tuple[np.dtype, int]]   # program buffer id -> (dtype, size)
    outputs: list[OutputSpec]


def _flat(idxs, shape) -> Node:
    acc, out = 1, Const(0)
    for i, s in zip(reversed(list(idxs)), reversed(shape)):
        if s != 1:
            out = out + i * acc
        acc *= s
    return out


def _walk(roots) -> list[LazyOp]:
    """Nodes reachable from roots, sources before users."""
    seen, order = set(), []
    stack = [(r, False) for r in roots]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        stack.extend((s, False) for s in n.srcs)
    return order


class _Builder:
    """Linearise the fused tree under one realized root into a Kernel."""

    def __init__(self, root: LazyOp, realized: dict, buf_of: dict,
                 absorbed: tuple = (), stored: tuple = ()):
        """``absorbed``: realized per-row results computed here from stages instead of
        loaded (see :func:`_plan_hosts`); ``stored``: those of them that other kernels read,
        written to their buffers too."""
        self.root, self.realized, self.buf_of = root, realized, buf_of
        self.absorbed = {id(r) for r in absorbed}
        self.stored = list(stored)
        self.slots: dict[int, int] = {}
        self.bufs: list = []
        self.buf_ids: list = []
        self.deps: list[LazyOp] = []
        self.sources: dict[str, None] = {}
        self.walked: set[int] = set()  # the nodes it looked at (see _Attempts)

    def slot(self, node: LazyOp) -> int:
        bid = self.buf_of[id(node)]
        if bid not in self.slots:
            self.slots[bid] = len(self.bufs)
            size = node.size
            self.bufs.append((node.dtype, size))
            self.buf_ids.append(bid)
            if node.op != "LOAD":
                self.deps.append(node)
        return self.slots[bid]

    def find_reduces(self) -> list[LazyOp]:
        """The unrealized reductions under the root, sources first.  Several fuse into one
        kernel as successive stages over the same loop space when each later one reads the
        earlier ones broadcast back over the reduced axes (softmax: max, then the sum of
        exp(x - max)); one that does not fit is realized on its own."""
        order, seen = [], set()
        stack = [(self.root, False)]
        while stack:
            n, done = stack.pop()
            if done:
                if n.op == "REDUCE":
                    order.append(n)
                continue
            if id(n) in seen:
                continue
            seen.add(id(n))
            self.walked.add(id(n))
            if n is not self.root and id(n) in self.realized and id(n) not in self.absorbed:
                continue
            stack.append((n, True))
            stack.extend((s, False) for s in n.srcs)
        if order:
            main = order[-1]
            for r in order[:-1]:
                if r.srcs[0].shape != main.srcs[0].shape or r.arg[1] != main.arg[1]:
                    raise FuseFail(r)
        return order

    def build(self, name: str) -> Kernel:
        root = self.root
        self.slot(root)  # slot 0: the output
        for r in self.stored:  # slots 1..: the absorbed stages other kernels read
            self.slots[self.buf_of[id(r)]] = len(self.bufs)
            self.bufs.append((r.dtype, r.size))
            self.buf_ids.append(self.buf_of[id(r)])
        if root.op == "SCATTER":
            return self.build_scatter(name)
        if root.op == "SORTPERM":
            key_slots = tuple(self.slot(key) for key in root.srcs)
            k = Kernel(name, self.bufs, self.buf_ids, tuple(root.shape), (), None, None, [],
                       [], [root.source_info] if root.source_info else [],
                       sort=root.arg + (key_slots,))
            k.nbytes = sum(int(dt.itemsize) * n for dt, n in k.bufs)
            return k
        reds = self.find_reduces()
        red = reds[-1] if reds else None
        if red is None and any(r.size != root.size for r in self.stored):
            raise FuseFail(root)  # (an elementwise kernel stores results of its own size)
        full_epilogue = False
        if red is not None:
            full = red.srcs[0].shape
            axes = red.arg[1]
            if red.size != root.size:
                # an epilogue over the whole loop space (softmax's division), allowed where
                # the rows still give the threads enough to share
                rows = int(np.prod(red.shape, dtype=np.int64))
                if root.shape != tuple(full) or (rows < 8 and root.size > 1 << 16):
                    raise FuseFail(red)
                full_epilogue = True
        else:
            full, axes = root.shape, ()
        lv = [loop_var(k, s) if s != 1 else Const(0) for k, s in enumerate(full)]
        out_idxs = [Const(0) if k in axes else v for k, v in enumerate(lv)]
        self.reds = {id(r): (j if r is not red else None) for j, r in enumerate(reds)}
        self.red, self.out_idxs, self.body_over_full = red, out_idxs, full_epilogue
        if full_epilogue:
            out_shape, default, cands = tuple(full), lv, [lv]
        else:
            out_shape = red.shape if red is not None else root.shape
            flat = _flat(out_idxs, out_shape)
            default = unravel(flat, root.shape) if root.shape != out_shape else out_idxs
            cands = [default] + (_permuted_idxs(out_idxs, out_shape, root.shape)
                                 if red is not None else [])
        snapshot = (dict(self.slots), list(self.bufs), list(self.buf_ids), list(self.deps),
                    dict(self.sources))
        for j, root_idxs in enumerate(cands):
            self.slots, self.bufs, self.buf_ids, self.deps, self.sources = (
                dict(snapshot[0]), list(snapshot[1]), list(snapshot[2]), list(snapshot[3]),
                dict(snapshot[4]))
            try:
                self._build_bodies(root, reds, lv, root_idxs)
                break
            except FuseFail as e:
                # the epilogue may read the reduction through a transpose: the loop space
                # stays the reduction's, the store becomes strided
                if e.node is not red or j == len(cands) - 1:
                    raise
        k = Kernel(name, self.bufs, self.buf_ids, tuple(full), tuple(axes),
                   red.arg[0] if red is not None else None,
                   red.dtype if red is not None else None, self.rbody, self.body,
                   [s for s in self.sources if s], pre=self.pre, full_epilogue=full_epilogue,
                   n_outs=1 + len(self.stored))
        _choose_opts(k, red is not None and red.arg[2])
        n_out = int(np.prod(k.out_shape, dtype=np.int64))
        n_full = int(np.prod(full, dtype=np.int64))
        k.flops = sum(u.op == "ALU" for u in k.rbody) * n_full + (n_full if red is not None else 0) \
            + sum(u.op == "ALU" for u in k.body) * n_out
        k.nbytes = sum(int(dt.itemsize) * n for dt, n in k.bufs)
        return k

    def build_scatter(self, name: str) -> Kernel:
        """The scatter kernel kind: copy the operand, then a serial loop over the updates."""
        root = self.root
        x, off, upd, valid = root.srcs
        self.red, self.reds, self.stage_index = None, {}, 0
        lv = [loop_var(k, s) if s != 1 else Const(0) for k, s in enumerate(root.shape)]
        self.body, self.cse, self.stage = [], {}, None
        self.stage = self.body
        v = self.render(x, lv, Const(1))
        self.emit("STORE", None, (v,), (0, _flat(lv, root.shape), Const(1)))
        sv = [loop_var(k, s) if s != 1 else Const(0) for k, s in enumerate(upd.shape)]
        self.sbody: list[UOp] = []
        self.stage, self.cse = self.sbody, {}
        o = self.render(off, sv, Const(1))
        u = self.render(upd, sv, Const(1))
        ok = self.render(valid, sv, Const(1))
        self.emit("SCATTER", None, (o, u, ok), root.arg)
        k = Kernel(name, self.bufs, self.buf_ids, tuple(root.shape), (), None, None, [],
                   self.body, [s for s in self.sources if s], scatter_shape=tuple(upd.shape),
                   sbody=self.sbody)
        k.nbytes = sum(int(dt.itemsize) * n for dt, n in k.bufs)
        return k

    def _build_bodies(self, root, reds, lv, root_idxs) -> None:
        self.pre: list = []
        self.rbody: list[UOp] = []
        self.body: list[UOp] = []
        self.cse: dict = {}
        for j, r in enumerate(reds):
            self.stage, self.cse, self.stage_index = [], {}, j
            self.render(r.srcs[0], lv, Const(1), top=True)
            if r is reds[-1]:
                self.rbody = self.stage
            else:
                self.pre.append((r.arg[0], r.dtype, self.stage))
        self.stage, self.cse, self.stage_index = self.body, {}, len(reds)
        if self.stored:
            # a stage result is stored once per output point: in a body over the whole loop
            # space, where the reduced loop variables are 0 (an elementwise kernel stores
            # the results it absorbed where it stores its own)
            once, flat = Const(1), _flat(self.out_idxs, root.shape)
            if reds:
                full = reds[-1].srcs[0].shape
                once = and_(*[lv[a] < 1 for a in reds[-1].arg[1] if full[a] > 1]) \
                    if self.body_over_full else Const(1)
                flat = _flat(self.out_idxs, reds[-1].shape)
            for r in self.stored:  # (a row result may be laid out as (rows,) or keep dims)
                v = self.render(r, unravel(flat, r.shape), Const(1))
                self.emit("STORE", None, (v,), (self.slot(r), flat, once))
        val = self.render(root, root_idxs, Const(1), top=True)
        val = self.emit("CAST", root.dtype, (val,), None) if self.body[val].dtype != root.dtype else val
        self.emit("STORE", None, (val,), (0, _flat(root_idxs, root.shape), Const(1)))

    def emit(self, op, dtype, srcs, arg) -> int:
        key = (op, None if dtype is None else np.dtype(dtype), tuple(srcs), arg)
        hit = self.cse.get(key)
        if hit is not None:
            return hit
        self.stage.append(UOp(op, None if dtype is None else np.dtype(dtype), tuple(srcs), arg))
        self.cse[key] = len(self.stage) - 1
        return len(self.stage) - 1

    def gate(self, valid: Node, val: int, dtype) -> int:
        if isinstance(valid, Const) and valid.value:
            return val
        cond = self.emit("INDEX", np.bool_, (), valid)
        zero = self.emit("CONST", dtype, (), np.zeros((), dtype).item())
        return self.emit("ALU", dtype, (cond, val, zero), "where")

    def render(self, n: LazyOp, idxs, valid: Node, top: bool = False) -> int:
        """Emit the uops computing ``n`` at ``idxs`` (zero where ``valid`` is false) into
        the current stage; returns the uop's index.  An iterative post-order walk (sources
        first, in order), so a chain of any length renders without recursion."""
        root = ("node", id(n), tuple(idxs), valid)
        hit = self.cse.get(root)
        if hit is not None:
            return hit
        stack = [(n, root[2], valid, top, None)]
        while stack:
            n, idxs, valid, top, pending = stack.pop()
            key = ("node", id(n), idxs, valid)
            if key in self.cse:
                continue
            if pending is None:
                if n.source_info:
                    self.sources[n.source_info] = None
                pending = self._sources_of(n, idxs, valid, top)
                if pending[0]:  # render the sources first, then come back
                    stack.append((n, idxs, valid, top, pending))
                    for s, s_idxs, s_valid in reversed(pending[0]):
                        if ("node", id(s), s_idxs, s_valid) not in self.cse:
                            stack.append((s, s_idxs, s_valid, False, None))
                    continue
            srcs = tuple(self.cse[("node", id(s), i, v)] for s, i, v in pending[0])
            self.cse[key] = self._emit_node(n, idxs, valid, srcs, pending[1])
        return self.cse[root]

    def _sources_of(self, n: LazyOp, idxs, valid: Node, top: bool) -> tuple[list, object]:
        """What ``n`` needs rendered first, as (node, idxs, valid) triples, and what
        :meth:`_emit_node` needs besides their values: ``_ZERO`` (nothing is valid),
        ``_LOADED`` (realized elsewhere: read from its buffer), a view's own validity."""
        self.walked.add(id(n))
        if isinstance(valid, Const) and not valid.value:
            return [], _ZERO
        if (not top or n is not self.root) and id(n) in self.realized \
                and id(n) not in self.absorbed:
            return [], _LOADED
        if n.op == "VIEW":
            src = n.srcs[0]
            flat, v = n.arg.expr_idxs(list(idxs))
            return [(src, tuple(unravel(flat, src.shape)), and_(valid, v))], v
        if n.op == "DLOAD":
            return ([] if n.srcs[0].size == 0 else [(n.srcs[1], idxs, valid)]), None
        if n.op in ("ALU", "CAST", "BITCAST"):
            return [(s, idxs, valid) for s in n.srcs], None
        return [], None

    def _emit_node(self, n: LazyOp, idxs, valid: Node, srcs: tuple, extra) -> int:
        """The uops of ``n`` itself, its sources' values being ``srcs``."""
        if extra is _ZERO:
            return self.emit("CONST", n.dtype, (), np.zeros((), n.dtype).item())
        if extra is _LOADED:
            slot = self.slot(n)
            # the address only matters where the load is valid: simplified under that
            return self.emit("LOAD", n.dtype, (),
                             (slot, simplify_given(_flat(idxs, n.shape), valid), valid))
        if n.op == "LOAD":  # an input not otherwise realized cannot happen: inputs are realized
            raise AssertionError("unrealized LOAD")
        if n.op == "CONST":
            return self.gate(valid, self.emit("CONST", n.dtype, (), n.arg), n.dtype)
        if n.op == "IDX":
            return self.gate(valid, self.emit("INDEX", n.dtype, (), idxs[0]), n.dtype)
        if n.op == "VIEW":
            src = n.srcs[0]
            if src.op in _LEAVES or (id(src) in self.realized and id(src) not in self.absorbed):
                return srcs[0]  # leaves are gated by their own validity
            return self.gate(extra, srcs[0], n.dtype)  # (an absorbed result is computed)
        if n.op == "DLOAD":
            x = n.srcs[0]
            if x.size == 0:
                return self.emit("CONST", n.dtype, (), np.zeros((), n.dtype).item())
            return self.emit("LOAD", n.dtype, (srcs[0],), (self.slot(x), Const(0), valid))
        if n.op == "REDUCE":
            j = self.reds.get(id(n), -1)
            pos = len(self.reds) - 1 if j is None else j
            if j == -1 or list(idxs) != list(self.out_idxs) or pos >= self.stage_index:
                raise FuseFail(n)
            return self.emit("ACC", n.dtype, (), j)
        if n.op in ("CAST", "BITCAST"):
            return self.emit(n.op, n.dtype, srcs, None)
        return self.emit("ALU", n.dtype, srcs, n.arg)


def _deps(uops) -> list[frozenset]:
    """Loop axes each uop depends on."""
    out: list[frozenset] = []
    for u in uops:
        d: set = set()
        nodes = []
        if u.op == "LOAD":
            nodes = [u.arg[1], u.arg[2]]
        elif u.op == "INDEX":
            nodes = [u.arg]
        for n in nodes:
            if isinstance(n, Node):
                d.update(int(v.name[1:]) for v in n.vars())
        for s in u.srcs:
            d |= out[s]
        out.append(frozenset(d))
    return out


def _closure(uops, root: int) -> frozenset:
    seen, stack = set(), [root]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(uops[i].srcs)
    return frozenset(seen)


GEMM_MIN_WORK = 1 << 15


def _gemm_plan(k: Kernel, allow_tf32: bool = False) -> Optional[GemmPlan]:
    if k.reduce_op != "sum" or k.acc_dtype not in (np.float32, np.float64) or not k.rbody:
        return None
    last = k.rbody[-1]
    if last.op != "ALU" or last.arg != "mul" or last.dtype != k.acc_dtype:
        return None
    if any(u.op == "LOAD" and u.srcs for u in k.rbody):
        return None
    deps = _deps(k.rbody)
    a, b = last.srcs
    da, db = deps[a], deps[b]
    full = k.full_shape
    red = set(k.reduce_axes)
    out = [ax for ax in range(len(full)) if ax not in red and full[ax] > 1]
    m_axes = tuple(ax for ax in out if ax in da and ax not in db)
    n_axes = tuple(ax for ax in out if ax in db and ax not in da)
    if not m_axes or not n_axes:
        return None
    M = int(np.prod([full[ax] for ax in m_axes]))
    N = int(np.prod([full[ax] for ax in n_axes]))
    K = int(np.prod([full[ax] for ax in k.reduce_axes]))
    outer = tuple(ax for ax in out if ax not in m_axes and ax not in n_axes)
    batch = int(np.prod([full[ax] for ax in outer]))
    # the work of all the products counts: a small transformer's per-head products are
    # small, but there are batch x heads of them
    if M * N * K * batch < GEMM_MIN_WORK or min(M, N) < 2 or max(M, N) < 8:
        return None
    store = symbolic.as_affine(k.body[-1].arg[1]) if isinstance(k.body[-1].arg[1], Node) else None
    if store is not None:
        coef = {v.name: c for v, c in store[0].items()}
        if coef.get(f"i{m_axes[-1]}") == 1 and coef.get(f"i{n_axes[-1]}") != 1:
            # the tile's columns run along the output's unit stride: swap the operands
            m_axes, n_axes, a, b = n_axes, m_axes, b, a
    return GemmPlan(m_axes, n_axes, outer, _closure(k.rbody, a), _closure(k.rbody, b), a, b,
                    allow_tf32)


def _permuted_idxs(out_idxs, out_shape, root_shape, limit: int = 4) -> list:
    """Indices of ``root_shape`` that are permutations of the (non-trivial) reduction output
    indices, for an epilogue that reads the reduction transposed."""
    import itertools
    src = [(i, s) for i, s in zip(out_idxs, out_shape) if s != 1]
    dst = [k for k, s in enumerate(root_shape) if s != 1]
    if len(src) != len(dst) or not 2 <= len(src) <= limit:
        return []
    out = []
    for perm in itertools.permutations(range(len(src))):
        if perm == tuple(range(len(src))):
            continue
        if all(src[p][1] == root_shape[d] for p, d in zip(perm, dst)):
            idxs = [Const(0)] * len(root_shape)
            for p, d in zip(perm, dst):
                idxs[d] = src[p][0]
            out.append(idxs)
    return out


def _choose_opts(k: Kernel, allow_tf32: bool = False) -> None:
    if k.full_epilogue:
        return
    if k.pre:  # successive stages: a row of accumulators each (no gemm)
        _choose_upcast(k)
        return
    k.gemm = _gemm_plan(k, allow_tf32)
    if k.gemm is not None:
        return
    _choose_upcast(k)


def _choose_upcast(k: Kernel) -> None:
    """Pick an output axis to run innermost below the reduce loop (a row of accumulators):
    the one read or written with unit stride by the most buffers (matmul: the rhs's columns)."""
    if k.reduce_op is None or not k.reduce_axes:
        return
    lv = k.loop_vars()
    best, best_score = None, 0
    for ax, s in enumerate(k.full_shape):
        if ax in k.reduce_axes or s < 4:
            continue
        v = lv[ax]
        score = 0
        for u in [u for _, _, rb in k.pre for u in rb] + k.rbody:
            if u.op == "LOAD" and symbolic.linear_terms(u.arg[1])[0].get(v) == 1:
                score += 2
        for u in k.body:
            if u.op == "STORE" and symbolic.linear_terms(u.arg[1])[0].get(v) == 1:
                score += 1
        if score > best_score:
            best, best_score = ax, score
    if best is not None and best_score >= 2:
        k.upcast_axis = best


def _cost(n: LazyOp, realized, free=frozenset(), enough: int = 1 << 62) -> int:
    """What recomputing ``n`` costs (ALU ops, a reduction as very many); nodes in ``free``
    (constant expressions) cost nothing.  The walk stops once the cost reaches ``enough``
    (the callers only compare it with a threshold: a long chain is not walked per node)."""
    return _recompute(n, realized, free, enough)[0]


def _recompute(n: LazyOp, realized, free=frozenset(), enough: int = 1 << 62
               ) -> tuple[int, bool]:
    """:func:`_cost` of ``n`` (the walk stopping at ``enough``), and whether recomputing it
    would redo a reduction (found before the walk stopped)."""
    total, reduces, seen, stack = 0, False, set(), [n]
    while stack and total < enough:
        m = stack.pop()
        if id(m) in seen or (m is not n and id(m) in realized) or id(m) in free:
            continue
        seen.add(id(m))
        if m.op == "ALU":
            total += ALU[m.arg].cost
        elif m.op == "CAST":
            total += 1
        elif m.op == "REDUCE":
            # recomputing a reduction in every consumer (a matmul in the forward and again
            # in the backward pass) costs far more than a buffer
            total, reduces = total + 64, True
            continue
        elif m.op == "VIEW" and m.srcs[0].op == "REDUCE" and m.size != m.srcs[0].size:
            continue  # a reduction read through a broadcast is realized anyway
        stack.extend(m.srcs)
    return total, reduces


def _strided_view(n: LazyOp):
    """(shape, strides, offset) if ``n`` is a single-view, unmasked view of an input."""
    if n.op != "VIEW" or n.srcs[0].op != "LOAD" or len(n.arg.views) != 1:
        return None
    v = n.arg.views[0]
    if v.mask is not None:
        return None
    return v.shape, v.strides, v.offset


# an elementwise node read by several consumers is realized where recomputing it in each
# costs this much (ALU ops times the extra consumers)
RECOMPUTE_LIMIT = 12


def schedule(leaves: list[LazyOp], outs: list[LazyOp], name_prefix: str = "k") -> Schedule:
    n_in = len(leaves)
    realized: dict[int, LazyOp] = {id(l): l for l in leaves}
    nodes = _walk(outs)
    users: dict[int, int] = {}
    users_of: dict[int, list] = {}
    for n in nodes:
        for s in {id(s): s for s in n.srcs}:
            users[s] = users.get(s, 0) + 1
            users_of.setdefault(s, []).append(n)
    # a node read only by elementwise consumers (at its own index) is computed once per
    # kernel that reads it (the kernel builder's CSE): its users do not multiply its cost,
    # unless a reduction lies below it (which every kernel reading it would redo)
    only_elementwise_users = {id(n) for n in nodes}
    for n in nodes:
        if n.op not in ("ALU", "CAST", "BITCAST"):
            only_elementwise_users.difference_update(map(id, n.srcs))
    out_specs_pending = []
    for o in outs:
        if o.size == 0 or o.op == "LOAD" or _strided_view(o) is not None:
            out_specs_pending.append(o)
            continue
        realized[id(o)] = o
        out_specs_pending.append(o)
    # costly recomputation -> materialise (a reduction read through reshapes and transposes
    # counts their readers: an Adam update reads a transposed weight gradient twice, for m
    # and for v; one read broadcast back over its rows stays a stage, as softmax's max)
    readers = _readers_through_views(nodes)
    for n in nodes:
        if n.op == "REDUCE" and readers.get(id(n), 0) > 1:
            layout = _read_permuted(n, users_of)
            realized[id(layout or n)] = layout or n
        if n.op == "DLOAD" and n.srcs[0].size:  # data-dependent reads need a real buffer
            realized[id(n.srcs[0])] = n.srcs[0]
        if n.op == "SCATTER":  # its own kernel kind
            realized[id(n)] = n
        if n.op == "SORTPERM":  # its own kernel kind, reading its keys at computed offsets
            realized[id(n)] = n
            for k in n.srcs:
                realized[id(k)] = k
    # an expression of constants and positions alone is recomputed wherever it is read (the
    # compiler folds it, or it is a few integer ops): never a kernel of its own (the -1/n
    # cotangent of a mean, a causal mask)
    constant: set[int] = set()
    for n in nodes:
        if n.op in ("CONST", "IDX") or (n.op in ("ALU", "CAST", "BITCAST", "VIEW")
                               and all(id(s) in constant for s in n.srcs)):
            constant.add(id(n))
    for n in nodes:
        if id(n) in constant:
            continue
        extra_users = users.get(id(n), 0) - 1
        if n.op in ("ALU", "CAST", "BITCAST") and id(n) not in realized and extra_users > 0:
            needed = -(-RECOMPUTE_LIMIT // extra_users)
            # read only elementwise, it is costly only with a reduction below it: walk it all
            elementwise = id(n) in only_elementwise_users
            c, reduces = _recompute(n, realized, constant, 1 << 62 if elementwise else needed)
            if (reduces or not elementwise) and c >= needed:
                realized[id(n)] = n
        if n.op == "VIEW":
            src = n.srcs[0]
            if src.op in ("ALU", "CAST") and id(src) not in realized and src.size \
                    and n.size >= 4 * src.size and _cost(src, realized, constant, 2) >= 2:
                realized[id(src)] = src
    _bound_stacked_views(nodes, realized)
    attempts = _Attempts()
    while True:
        try:
            return _build(leaves, outs, nodes, realized, n_in, name_prefix, attempts)
        except FuseFail as e:
            realized[id(e.node)] = e.node
            attempts.realized(e.node)


# the most views stacked on one path inside a kernel: each view wraps the index expression
# of the one below it (masks, divisions), so their number bounds the expressions' depth
MAX_STACKED_VIEWS = 16


def _bound_stacked_views(nodes: list, realized: dict) -> None:
    """Realize the source of a view that would stack more than :data:`MAX_STACKED_VIEWS`
    views in one kernel (a chain of thousands of pads and slices): index expressions stay
    of bounded depth, however long the program."""
    depth: dict[int, int] = {}
    for n in nodes:
        d = max((0 if id(s) in realized else depth[id(s)] for s in n.srcs), default=0)
        if n.op == "VIEW":
            d += 1
            src = n.srcs[0]
            if d > MAX_STACKED_VIEWS and src.op not in _LEAVES and id(src) not in realized:
                realized[id(src)] = src
                d = 1
        depth[id(n)] = d


def _read_permuted(r: LazyOp, users_of: dict) -> Optional[LazyOp]:
    """The transpose through which alone a reduction is read, if there is one (a weight
    gradient read transposed by Adam's two moment updates): realized in that layout (the
    product's store strided instead), its readers read it contiguously and fuse."""
    us = users_of.get(id(r), [])
    if len(us) != 1 or us[0].op != "VIEW" or us[0].size != r.size or len(us[0].arg.views) != 1:
        return None
    v = us[0].arg.views[0]
    if v.mask is not None or v.offset != 0:
        return None
    strides = [st for st, d in zip(v.strides, v.shape) if d != 1]
    if strides == sorted(strides, reverse=True):
        return None  # a reshape: the same layout
    span = 1
    for st, d in sorted((st, d) for st, d in zip(v.strides, v.shape) if d != 1):
        if st != span:  # (the strides of some order of the dimensions, contiguous)
            return None
        span *= d
    return us[0]


def _readers_through_views(nodes: list[LazyOp]) -> dict[int, int]:
    """How many nodes read each node, a view of the same size (a reshape, a transpose)
    counting as the nodes that read it."""
    direct: dict[int, list] = {}
    for n in nodes:
        for s in {id(s): s for s in n.srcs}.values():
            direct.setdefault(id(s), []).append(n)
    out: dict[int, int] = {}
    for n in reversed(nodes):  # users before sources
        out[id(n)] = sum(out.get(id(u), 1) if u.op == "VIEW" and u.size == n.size else 1
                         for u in direct.get(id(n), ()))
    return out


# a realized reduction joins another kernel as a stage only where that kernel keeps enough
# threads busy without splitting rows across blocks: many rows, or short ones
MULTI_OUTPUT_MIN_ROWS = 64
MULTI_OUTPUT_MAX_ROW = 4096


def _stage_key(r: LazyOp) -> tuple:
    """The loop space a reduction stage runs over: stages of one kernel share it."""
    return tuple(r.srcs[0].shape), tuple(r.arg[1])


_MANY = ("several loop spaces",)


def _reductions_reached(nodes: list) -> dict[int, object]:
    """Per node (``nodes`` sources first): the stage loop space of the reductions it reads
    through elementwise ops and views (None: none; ``_MANY``: more than one), computed in
    one pass -- not a walk per node, which is quadratic on a long chain."""
    reached: dict[int, object] = {}
    for n in nodes:
        if n.op == "REDUCE":
            reached[id(n)] = _stage_key(n)
            continue
        key = None
        if n.op in ("ALU", "CAST", "BITCAST", "VIEW"):
            for s in n.srcs:
                k = reached.get(id(s))
                if k is not None and k != key:
                    key = k if key is None else _MANY
        reached[id(n)] = key
    return reached


def _row_key(n: LazyOp, row_spaces: dict) -> Optional[tuple]:
    """The stage loop space of a node computed per output point of reductions over one loop
    space (a reduction, or an elementwise function of such: a mean, a log-sum-exp), where
    its shape is that of their outputs; else None.  ``row_spaces``: see
    :func:`_reductions_reached`."""
    if n.op == "REDUCE":
        return _stage_key(n)
    if n.op not in ("ALU", "CAST", "BITCAST"):
        return None
    key = row_spaces.get(id(n))
    if key is None or key is _MANY:
        return None
    shape, axes = key
    rows = int(np.prod([d for a, d in enumerate(shape) if a not in axes], dtype=np.int64))
    return key if n.size == rows else None


def _absorbable(r: LazyOp, key: tuple) -> bool:
    """Whether the per-row result ``r`` over ``key``'s loop space may become a stage (see
    MULTI_OUTPUT_MIN_ROWS)."""
    rows = max(r.size, 1)
    return rows >= MULTI_OUTPUT_MIN_ROWS or int(np.prod(key[0])) // rows <= MULTI_OUTPUT_MAX_ROW


def _plan_hosts(nodes: list, realized: dict) -> dict[int, list]:
    """Multi-output fusion: realized per-row results of reductions (a reduction, or a
    function of some: a mean, a log-sum-exp) that a later kernel over the same loop space
    computes as stages of its own (writing their buffers too where others read them)
    instead of each taking a kernel: a layer norm's mean and variance in the kernel that
    normalises, a softmax's max in the one that sums; an elementwise function of one
    (Adam's new moments of a weight gradient) in the elementwise kernel that reads it (the
    parameter's update).  Returns host id -> what it may absorb, choices tried in turn
    (all of them; those that are no reductions, where the reductions do not fuse: a
    weight gradient is a product of its own).

    Users are tried before sources, so the absorbing kernel is the last that reads them all.
    A node is absorbed only if nothing else the host reads depends on it (that would have to
    run between the two)."""
    hosted: set[int] = set()
    plan: dict[int, list] = {}
    row_spaces = _reductions_reached(nodes)
    order = {id(n): i for i, n in enumerate(nodes)}
    for h in reversed(nodes):
        if id(h) not in realized or id(h) in hosted or h.op in ("LOAD", "SCATTER", "SORTPERM"):
            continue
        key = _own_key(h, realized)
        excluded: set[int] = set()
        while True:
            cands, boundary = _region(h, realized, hosted | excluded, key, row_spaces)
            if not cands:
                break
            reached = _reached(boundary, {id(c) for c in cands}, order)
            if not reached:
                plan[id(h)] = [cands] + _without_reductions(cands, boundary, order)
                hosted.update(id(c) for c in cands)
                break
            excluded |= reached
    return plan


def _without_reductions(cands: list, boundary: list, order: dict) -> list:
    """``[cands]`` less its reductions, where that is another choice: something is left and
    the reductions left out (read from their buffers then) depend on none of it."""
    kept = [c for c in cands if c.op != "REDUCE"]
    if not kept or len(kept) == len(cands):
        return []
    left = [c for c in cands if c.op == "REDUCE"]
    return [] if _reached(boundary + left, {id(c) for c in kept}, order) else [kept]


def _own_key(h: LazyOp, realized: dict) -> Optional[tuple]:
    """The stage loop space of the reductions fused under ``h`` already (None if none)."""
    keys: list = []

    def expand(n):
        if n is not h and id(n) in realized:
            return ()
        if n.op == "REDUCE":
            keys.append(_stage_key(n))
        return n.srcs
    _depth_first([h], expand)
    return keys[0] if keys else None


def _region(h: LazyOp, realized: dict, skip: set, key, row_spaces: dict
            ) -> tuple[list, list]:
    """The realized nodes that ``h``'s kernel could compute as stages (per-row results over
    ``key``'s loop space; the first one met sets it when ``key`` is None), and the realized
    nodes it would still read."""
    cands: list = []
    boundary: list = []

    def expand(n):
        nonlocal key
        if n is not h and id(n) in realized:
            k = _row_key(n, row_spaces) if id(n) not in skip else None
            if k is not None and (key is None or k == key) and _absorbable(n, k):
                key = k
                cands.append(n)
                return n.srcs
            boundary.append(n)
            return ()
        if n.op == "DLOAD":  # read at computed offsets: a buffer
            boundary.append(n.srcs[0])
            return n.srcs[1:]
        return n.srcs
    _depth_first([h], expand)
    return cands, boundary


def _reached(starts: list, targets: set, order: dict) -> set:
    """The ids in ``targets`` that ``starts`` depend on; ``order``: each node's place in an
    order with sources before users (a node before every target has none of them above
    it, so the walk stops there)."""
    out: set = set()
    first = min(order[t] for t in targets)

    def expand(n):
        if id(n) in targets:
            out.add(id(n))
        return n.srcs if order.get(id(n), first) >= first else ()
    _depth_first(starts, expand)
    return out


def _read_elsewhere(r: LazyOp, kernel_nodes: set, realized: dict, users: dict,
                    outs: set) -> bool:
    """Whether a kernel other than the one computing ``kernel_nodes`` reads ``r``'s buffer
    (or ``r`` is a program output)."""
    readers: list = []

    def expand(n):
        if id(n) in realized:
            readers.append(n)
            return ()
        return users.get(id(n), ())
    _depth_first(users.get(id(r), ()), expand)
    return id(r) in outs or any(id(n) not in kernel_nodes for n in readers)


def _depth_first(starts, expand) -> None:
    """Visit the nodes reachable from ``starts``, each once; ``expand(n)`` visits ``n`` and
    returns the nodes to go on to."""
    seen, stack = set(), list(starts)
    while stack:
        n = stack.pop()
        if id(n) not in seen:
            seen.add(id(n))
            stack.extend(expand(n))


class _Attempts:
    """The kernels built by earlier rounds of :func:`_build` (each round ends where a fusion
    fails and the node is realized, then the schedule starts over): a kernel whose builder
    never looked at the node realized since is built again exactly as before, so it is kept
    (keyed by its root and the per-row results it absorbs and stores) -- rebuilding every
    kernel in every round made scheduling quadratic in the number of failed fusions."""

    def __init__(self):
        self.built: dict[tuple, tuple] = {}

    def get(self, key: tuple):
        return self.built.get(key)

    def put(self, key: tuple, kernel: Kernel, builder: "_Builder") -> None:
        self.built[key] = (kernel, builder)

    def realized(self, node: LazyOp) -> None:
        """Forget the kernels that would read ``node`` from its buffer now."""
        self.built = {key: kb for key, kb in self.built.items() if id(node) not in kb[1].walked}


def _build(leaves, outs, nodes, realized, n_in, prefix, built: _Attempts) -> Schedule:
    buf_of: dict[int, int] = {id(l): i for i, l in enumerate(leaves)}
    buffers: dict[int, tuple] = {i: (l.dtype, l.size) for i, l in enumerate(leaves)}
    for n in realized.values():
        if id(n) not in buf_of and n.size:
            buf_of[id(n)] = len(buffers)
            buffers[buf_of[id(n)]] = (n.dtype, n.size)
    kernels: list[Kernel] = []
    done: set[int] = set(range(n_in))
    users: dict[int, list] = {}
    for n in nodes:
        for s in {id(s): s for s in n.srcs}.values():
            users.setdefault(id(s), []).append(n)
    out_ids = {id(o) for o in outs}
    plan = _plan_hosts(nodes, realized)
    host_of = {id(r): h for h in nodes if id(h) in plan for r in plan[id(h)][0]}
    attempts: dict[int, tuple] = {}

    def attempt(n: LazyOp) -> tuple:
        """n's kernel and builder: absorbing the first of the plan's choices for it that
        builds (else nothing), each absorbed result stored where others read it."""
        if id(n) not in attempts:
            choices = []
            for absorbed in plan.get(id(n), []) + [[]]:
                inside = {id(n)} | {id(r) for r in absorbed}
                choices.append((absorbed, [r for r in absorbed if _read_elsewhere(
                    r, inside, realized, users, out_ids)]))
            key = (id(n),) + tuple((tuple(map(id, a)), tuple(map(id, s))) for a, s in choices)
            attempts[id(n)] = built.get(key) or _attempt(n, choices)
            built.put(key, *attempts[id(n)])
        return attempts[id(n)]

    def _attempt(n: LazyOp, choices: list) -> tuple:
        walked: set[int] = set()  # (what the choices that did not build met decided it too)
        for absorbed, stored in choices:
            b = _Builder(n, realized, buf_of, absorbed, stored)
            try:
                k = b.build("")
                if k.gemm is not None and absorbed:  # a matmul keeps its own kernel
                    raise FuseFail(n)
            except FuseFail:
                if not absorbed:
                    raise
                walked |= b.walked
                continue
            b.walked |= walked
            return k, b

    def visit(root: LazyOp):
        """Append the kernel of ``root`` after those of the kernels it reads (depth first,
        with an explicit stack: a chain of any number of kernels)."""
        stack: list = [(root, None)]
        while stack:
            n, k = stack.pop()
            if k is not None:  # its dependences are in: its turn
                k.name = f"{prefix}{len(kernels)}"
                kernels.append(k)
                continue
            bid = buf_of[id(n)]
            if bid in done:
                continue
            h = host_of.get(id(n))
            if h is not None and id(n) in attempt(h)[1].absorbed:
                stack.append((h, None))  # computes n too
                continue
            done.add(bid)
            k, b = attempt(n)
            for r in plan.get(id(n), [[]])[0]:
                if id(r) in b.absorbed:
                    done.add(buf_of[id(r)])
            stack.append((n, k))
            stack.extend((d, None) for d in reversed(b.deps) if d is not n)

    specs = []
    for o in outs:
        if o.size == 0:
            specs.append(OutputSpec(-1, o.shape, o.dtype))
        elif o.op == "LOAD":
            specs.append(OutputSpec(buf_of[id(o)], o.shape, o.dtype))
        elif id(o) not in realized and _strided_view(o) is not None:
            specs.append(OutputSpec(buf_of[id(o.srcs[0])], o.shape, o.dtype, _strided_view(o)))
        else:
            visit(o)
            specs.append(OutputSpec(buf_of[id(o)], o.shape, o.dtype))
    return Schedule(kernels, n_in, buffers, specs)
