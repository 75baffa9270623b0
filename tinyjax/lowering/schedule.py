"""The scheduler: group the low-level op graph into kernels (fusion) and plan buffers.

Fusion policy:

* elementwise ops, casts and views are inlined into whatever consumes them (movement ops
  never cost a kernel: they become index arithmetic);
* a kernel holds at most one reduction; its elementwise inputs are fused into the reduce
  loop and an elementwise epilogue over the reduction's output space is fused after it;
* a node is materialised ("realized") only when it must be: a jaxpr output; a reduction
  with more than one consumer or read through a non-trivial view (e.g. broadcast back over
  the reduced axis, as softmax's max and sum); a second reduction met in one kernel; an
  elementwise node whose recomputation would be costly (several consumers, or a view that
  expands it many times);
* only nodes reachable from the outputs are scheduled (dead code never runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from tinyjax import dtypes
from tinyjax.lowering import ops, symbolic
from tinyjax.lowering.kernel import Kernel, UOp, loop_var
from tinyjax.lowering.ops import LazyOp
from tinyjax.lowering.shapetracker import unravel
from tinyjax.lowering.symbolic import Const, Node, and_

__all__ = ["Schedule", "schedule", "OutputSpec"]

_LEAVES = ("LOAD", "CONST", "IDX")
_EXPENSIVE = frozenset({"exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sin",
                        "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh",
                        "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "erf", "erfc", "erf_inv",
                        "lgamma", "digamma", "pow", "atan2", "polygamma", "div", "rem"})


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

    def __init__(self, root: LazyOp, realized: dict, buf_of: dict):
        self.root, self.realized, self.buf_of = root, realized, buf_of
        self.slots: dict[int, int] = {}
        self.bufs: list = []
        self.buf_ids: list = []
        self.deps: list[LazyOp] = []
        self.sources: dict[str, None] = {}

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

    def find_reduce(self) -> Optional[LazyOp]:
        found, seen = None, set()
        stack = [self.root]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n is not self.root and id(n) in self.realized:
                continue
            if n.op == "REDUCE":
                if found is None:
                    found = n
                elif found is not n:
                    raise FuseFail(n)
                continue
            stack.extend(n.srcs)
        return found

    def build(self, name: str) -> Kernel:
        root = self.root
        self.slot(root)  # slot 0: the output
        red = self.find_reduce()
        if red is not None:
            if red.size != root.size:
                raise FuseFail(red)
            full = red.srcs[0].shape
            axes = red.arg[1]
        else:
            full, axes = root.shape, ()
        lv = [loop_var(k, s) if s != 1 else Const(0) for k, s in enumerate(full)]
        out_idxs = [Const(0) if k in axes else v for k, v in enumerate(lv)]
        out_shape = red.shape if red is not None else root.shape
        self.red, self.out_idxs = red, out_idxs
        self.rbody: list[UOp] = []
        self.body: list[UOp] = []
        self.cse: dict = {}
        flat = _flat(out_idxs, out_shape)
        root_idxs = unravel(flat, root.shape) if root.shape != out_shape else out_idxs
        if red is not None:
            self.stage = self.rbody
            self.acc_src = self.render(red.srcs[0], lv, Const(1), top=True)
            self.cse = {}
        self.stage = self.body
        val = self.render(root, root_idxs, Const(1), top=True)
        val = self.emit("CAST", root.dtype, (val,), None) if self.body[val].dtype != root.dtype else val
        self.emit("STORE", None, (val,), flat)
        k = Kernel(name, self.bufs, self.buf_ids, tuple(full), tuple(axes),
                   red.arg[0] if red is not None else None,
                   red.dtype if red is not None else None, self.rbody, self.body,
                   [s for s in self.sources if s])
        _choose_opts(k)
        n_out = int(np.prod(k.out_shape, dtype=np.int64))
        n_full = int(np.prod(full, dtype=np.int64))
        k.flops = sum(u.op == "ALU" for u in k.rbody) * n_full + (n_full if red is not None else 0) \
            + sum(u.op == "ALU" for u in k.body) * n_out
        k.nbytes = sum(int(dt.itemsize) * n for dt, n in k.bufs)
        return k

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
        idxs = tuple(idxs)
        key = ("node", id(n), idxs, valid)
        hit = self.cse.get(key)
        if hit is not None:
            return hit
        out = self._render(n, idxs, valid, top)
        self.cse[key] = out
        return out

    def _render(self, n: LazyOp, idxs, valid: Node, top: bool) -> int:
        if n.source_info:
            self.sources[n.source_info] = None
        if isinstance(valid, Const) and not valid.value:
            return self.emit("CONST", n.dtype, (), np.zeros((), n.dtype).item())
        if (not top or n is not self.root) and id(n) in self.realized:
            slot = self.slot(n)
            return self.emit("LOAD", n.dtype, (), (slot, _flat(idxs, n.shape), valid))
        if n.op == "LOAD":  # an input not otherwise realized cannot happen: inputs are realized
            raise AssertionError("unrealized LOAD")
        if n.op == "CONST":
            return self.gate(valid, self.emit("CONST", n.dtype, (), n.arg), n.dtype)
        if n.op == "IDX":
            return self.gate(valid, self.emit("INDEX", n.dtype, (), idxs[0]), n.dtype)
        if n.op == "VIEW":
            src = n.srcs[0]
            flat, v = n.arg.expr_idxs(list(idxs))
            sub = unravel(flat, src.shape)
            inner = and_(valid, v)
            val = self.render(src, sub, inner)
            if src.op in _LEAVES or id(src) in self.realized:
                return val  # leaves are gated by their own validity
            return self.gate(v, val, n.dtype)
        if n.op == "DLOAD":
            x, off = n.srcs
            if x.size == 0:
                return self.emit("CONST", n.dtype, (), np.zeros((), n.dtype).item())
            o = self.render(off, idxs, valid)
            return self.emit("LOAD", n.dtype, (o,), (self.slot(x), Const(0), valid))
        if n.op == "REDUCE":
            if n is not self.red or list(idxs) != list(self.out_idxs) or self.stage is self.rbody:
                raise FuseFail(n)
            return self.emit("ACC", n.dtype, (), None)
        srcs = tuple(self.render(s, idxs, valid) for s in n.srcs)
        if n.op == "CAST":
            return self.emit("CAST", n.dtype, srcs, None)
        return self.emit("ALU", n.dtype, srcs, n.arg)


def _choose_opts(k: Kernel) -> None:
    """Pick an output axis to run innermost below the reduce loop (a row of accumulators):
    the one read or written with unit stride by the most buffers (matmul: the rhs's columns)."""
    if k.reduce_op is None or not k.reduce_axes:
        return
    lv = k.loop_vars()
    best, best_score = None, 0
    for ax, s in enumerate(k.full_shape):
        if ax in k.reduce_axes or s < 4 or s > 2048:
            continue
        v = lv[ax]
        score = 0
        for u in k.rbody:
            if u.op == "LOAD" and symbolic.linear_terms(u.arg[1])[0].get(v) == 1:
                score += 2
        store = k.body[-1].arg
        if isinstance(store, Node) and symbolic.linear_terms(store)[0].get(v) == 1:
            score += 1
        if score > best_score:
            best, best_score = ax, score
    if best is not None and best_score >= 2:
        k.upcast_axis = best


def _cost(n: LazyOp, realized) -> int:
    total, seen, stack = 0, set(), [n]
    while stack:
        m = stack.pop()
        if id(m) in seen or (m is not n and id(m) in realized):
            continue
        seen.add(id(m))
        if m.op == "ALU":
            total += 4 if m.arg in _EXPENSIVE else 1
        elif m.op == "CAST":
            total += 1
        elif m.op == "REDUCE":
            continue  # reductions are realized or fused on their own terms
        stack.extend(m.srcs)
    return total


def _strided_view(n: LazyOp):
    """(shape, strides, offset) if ``n`` is a single-view, unmasked view of an input."""
    if n.op != "VIEW" or n.srcs[0].op != "LOAD" or len(n.arg.views) != 1:
        return None
    v = n.arg.views[0]
    if v.mask is not None:
        return None
    return v.shape, v.strides, v.offset


def schedule(leaves: list[LazyOp], outs: list[LazyOp], name_prefix: str = "k") -> Schedule:
    n_in = len(leaves)
    realized: dict[int, LazyOp] = {id(l): l for l in leaves}
    nodes = _walk(outs)
    users: dict[int, int] = {}
    for n in nodes:
        for s in set(map(id, n.srcs)):
            users[s] = users.get(s, 0) + 1
    out_specs_pending = []
    for o in outs:
        if o.size == 0 or o.op == "LOAD" or _strided_view(o) is not None:
            out_specs_pending.append(o)
            continue
        realized[id(o)] = o
        out_specs_pending.append(o)
    # costly recomputation -> materialise
    for n in nodes:
        if n.op == "REDUCE" and users.get(id(n), 0) > 1:
            realized[id(n)] = n
        if n.op == "DLOAD" and n.srcs[0].size:  # data-dependent reads need a real buffer
            realized[id(n.srcs[0])] = n.srcs[0]
    for n in nodes:
        if n.op in ("ALU", "CAST") and id(n) not in realized:
            c = _cost(n, realized)
            if users.get(id(n), 0) > 1 and c * (users[id(n)] - 1) >= 12:
                realized[id(n)] = n
        if n.op == "VIEW":
            src = n.srcs[0]
            if src.op in ("ALU", "CAST") and id(src) not in realized and src.size \
                    and n.size >= 4 * src.size and _cost(src, realized) >= 2:
                realized[id(src)] = src
    while True:
        try:
            return _build(leaves, outs, realized, n_in, name_prefix)
        except FuseFail as e:
            realized[id(e.node)] = e.node


def _build(leaves, outs, realized, n_in, prefix) -> Schedule:
    buf_of: dict[int, int] = {id(l): i for i, l in enumerate(leaves)}
    buffers: dict[int, tuple] = {i: (l.dtype, l.size) for i, l in enumerate(leaves)}
    for n in realized.values():
        if id(n) not in buf_of and n.size:
            buf_of[id(n)] = len(buffers)
            buffers[buf_of[id(n)]] = (n.dtype, n.size)
    kernels: list[Kernel] = []
    done: set[int] = set(range(n_in))

    def visit(n: LazyOp):
        bid = buf_of[id(n)]
        if bid in done:
            return
        done.add(bid)
        b = _Builder(n, realized, buf_of)
        k = b.build(f"{prefix}{len(kernels)}")
        for d in b.deps:
            if d is not n:
                visit(d)
        k.name = f"{prefix}{len(kernels)}"
        kernels.append(k)

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
