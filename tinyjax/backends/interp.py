"""The reference interpreter device: runs the loop IR (:mod:`tinyjax.compiler.codegen.uops`)
with numpy, no compiling.

Every loop variable gets an axis of its own and is a broadcast ``arange`` array along it
(with a mask where a block of a ragged loop runs past the end), so a loop nest runs as one
vectorised evaluation; an accumulation reduces its value over the axes of the loops opened
since its accumulator was defined (an ``upcast`` loop's axis stays: a row of
accumulators).  Index expressions are evaluated with
:func:`tinyjax.compiler.shape.symbolic.evaluate` and ALU ops take the eager semantics of the lax
primitive of the same name -- so a disagreement with the C device points at the renderer
or a pass, and a disagreement with eager evaluation at lowering or scheduling.  Sorts run
through numpy's stable sorts; a scatter's updates serially in C order.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from tinyjax.compiler.kernel import Kernel, UOp
from tinyjax.compiler.ops import reduce_identity
from tinyjax.compiler.shape.symbolic import evaluate

__all__ = ["InterpDevice", "run_kernel", "run_loop_ir"]


@lru_cache(maxsize=None)
def _prims() -> dict:
    from tinyjax.core import Primitive
    from tinyjax.lax import elementwise
    return {p.name: p for p in vars(elementwise).values() if isinstance(p, Primitive)}


def _alu(op: str, args: list, dt):
    with np.errstate(all="ignore"):
        if op == "where":
            return np.where(args[0], args[1], args[2])
        if op == "round_even":
            return np.round(args[0])
        if op == "round_away":
            x = args[0]
            return np.trunc(x + np.copysign(np.asarray(0.5, x.dtype), x))
        if op == "recip":
            return np.asarray(1, args[0].dtype) / args[0]
        args = np.broadcast_arrays(*[np.asarray(a) for a in args])
        if len(args) == 2 and args[0].dtype != args[1].dtype:
            raise AssertionError(f"interp: {op} on {args[0].dtype} and {args[1].dtype}")
        return _prims()[op].impl(*args)


_REDUCE = {
    "sum": lambda x, ax: np.sum(x, axis=ax, keepdims=True, dtype=x.dtype),
    "prod": lambda x, ax: np.prod(x, axis=ax, keepdims=True, dtype=x.dtype),
    "max": lambda x, ax: np.max(x, axis=ax, keepdims=True),
    "min": lambda x, ax: np.min(x, axis=ax, keepdims=True),
    "and": lambda x, ax: np.bitwise_and.reduce(x, axis=ax, keepdims=True),
    "or": lambda x, ax: np.bitwise_or.reduce(x, axis=ax, keepdims=True),
    "xor": lambda x, ax: np.bitwise_xor.reduce(x, axis=ax, keepdims=True),
}


def _eval(uops: list[UOp], env: dict, arrays: list, acc, shape):
    vals: list = []
    for u in uops:
        if u.op == "LOAD":
            slot, idx, valid = u.arg
            i = np.asarray(evaluate(idx, env))
            if u.srcs:
                i = i + np.asarray(vals[u.srcs[0]], np.int64)
            v = np.asarray(evaluate(valid, env)).astype(bool)
            buf = arrays[slot].reshape(-1)
            safe = np.where(v, i, 0)
            x = buf[safe] if buf.size else np.zeros(safe.shape, buf.dtype)
            out = np.where(v, x, np.zeros((), buf.dtype)).astype(u.dtype)
        elif u.op == "CONST":
            out = np.asarray(u.arg, u.dtype)
        elif u.op == "INDEX":
            out = np.asarray(evaluate(u.arg, env)).astype(u.dtype)
        elif u.op == "ACC":
            out = acc[u.arg]
        elif u.op == "CAST":
            from tinyjax.lax.elementwise import convert_element_type_p
            out = np.asarray(convert_element_type_p.impl(np.asarray(vals[u.srcs[0]]),
                                                         new_dtype=u.dtype))
        elif u.op == "BITCAST":
            src = np.ascontiguousarray(vals[u.srcs[0]])
            out = src.view(u.dtype).reshape(src.shape)
        elif u.op == "ALU":
            out = np.asarray(_alu(u.arg, [vals[s] for s in u.srcs], u.dtype)).astype(u.dtype)
        elif u.op == "SCATTER":
            off, val, ok = (np.broadcast_to(np.asarray(vals[i]), shape).reshape(-1)
                            for i in u.srcs)
            out_flat = arrays[0].reshape(-1)
            where, val = off[ok.astype(bool)], val[ok.astype(bool)].astype(out_flat.dtype)
            if u.arg == "replace":
                out_flat[where] = val  # numpy: the last of repeated indices wins
            else:
                ufunc = {"add": np.add, "mul": np.multiply, "min": np.minimum,
                         "max": np.maximum}[u.arg]
                if out_flat.dtype == np.bool_ and u.arg in ("add", "mul"):
                    ufunc = np.logical_or if u.arg == "add" else np.logical_and
                ufunc.at(out_flat, where, val)
            out = None
        elif u.op == "STORE":
            slot, index, valid = u.arg
            i = np.broadcast_to(np.asarray(evaluate(index, env)), shape).reshape(-1)
            v = np.broadcast_to(vals[u.srcs[0]], shape).reshape(-1)
            ok = np.broadcast_to(np.asarray(evaluate(valid, env)), shape).reshape(-1).astype(bool)
            arrays[slot].reshape(-1)[i[ok]] = v[ok]
            out = None
        else:
            raise NotImplementedError(f"interp: unknown uop {u.op}")
        vals.append(out)
    return vals


def _env(shape, pinned=()) -> dict:
    nd = len(shape)
    env = {}
    for a, s in enumerate(shape):
        n = 1 if a in pinned else s
        env[f"i{a}"] = np.arange(n, dtype=np.int64).reshape([n if j == a else 1 for j in range(nd)])
    return env


def _run_sort(k: Kernel, arrays: list) -> None:
    from tinyjax.lax.sorting import _descending_key, _lexsort_keys
    axis, desc, slots = k.sort
    shape = k.full_shape
    keys = [arrays[s].reshape(-1)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
            for s in slots]
    if desc:
        perm = np.argsort(_descending_key(keys[0]), axis=axis, kind="stable")
    else:
        lex = []
        for x in reversed(keys):
            lex.extend(_lexsort_keys(x))
        perm = np.lexsort(lex, axis=axis)
    arrays[0].reshape(-1)[:] = perm.reshape(-1)


_COMBINE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum,
            "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}


class _LoopState:
    """The loops open during a run of loop IR: an axis per loop variable, the variables'
    values, and the mask of iterations that run (a ragged block's tail does not)."""

    def __init__(self, uops):
        names = dict.fromkeys(u.arg.var for u in uops if u.op == "RANGE")
        self.axis = {v: j for j, v in enumerate(names)}
        self.env: dict = {}
        self.open: list = []           # (range op, previous value of its variable, mask)
        self.mask = np.ones((1,) * len(self.axis), bool)

    def enter(self, r) -> None:
        lo = np.asarray(evaluate(r.lo, self.env))
        shape = [1] * len(self.axis)
        shape[self.axis[r.var]] = r.trips
        v = lo + np.arange(r.trips, dtype=np.int64).reshape(shape)
        hi = np.asarray(evaluate(r.hi, self.env))
        if r.cap is not None:
            hi = np.minimum(hi, r.cap)
        self.open.append((r, self.env.get(r.var), self.mask))
        self.env[r.var] = v
        self.mask = self.mask & (v < hi)

    def leave(self) -> None:
        r, prev, self.mask = self.open.pop()
        if prev is None:
            del self.env[r.var]
        else:
            self.env[r.var] = prev

    def axes_since(self, depth: int) -> tuple:
        """The axes of the loops opened since ``depth`` that an accumulation reduces over."""
        return tuple(self.axis[r.var] for r, _, _ in self.open[depth:] if r.kind != "upcast")

    def check_row(self, acc) -> None:
        """A row of accumulators gives every iteration of the open upcast loops its own one:
        ``acc.index`` depends on nothing else and is distinct and in range over them (the
        interpreter keeps the row along those loops' axes; the C renderer indexes it)."""
        up = [self.axis[r.var] for r, _, _ in self.open if r.kind == "upcast"]
        idx = np.broadcast_to(np.asarray(evaluate(acc.index, self.env)), self.mask.shape)
        if not self.mask.any():
            return
        rest = tuple(a for a in range(idx.ndim) if a not in up)
        lo = np.min(np.where(self.mask, idx, np.iinfo(np.int64).max), axis=rest)
        hi = np.max(np.where(self.mask, idx, np.iinfo(np.int64).min), axis=rest)
        live = self.mask.any(axis=rest)
        seen = lo[live]
        if (lo[live] != hi[live]).any() or seen.min() < 0 or seen.max() >= acc.count or \
                len(np.unique(seen)) != seen.size:
            raise AssertionError(f"interp: row of accumulators indexed by {acc.index} does not "
                                 "give each upcast iteration its own one")


def run_loop_ir(uops, arrays: list) -> None:
    """Run loop IR over ``arrays`` (one per buffer slot; outputs written in place)."""
    st = _LoopState(uops)
    vals: list = [None] * len(uops)
    depth_of: dict = {}
    for i, u in enumerate(uops):
        if u.op == "RANGE":
            st.enter(u.arg)
        elif u.op == "ENDRANGE":
            st.leave()
        elif u.op == "DEFINE_ACC":
            vals[i] = np.full((1,) * len(st.axis), reduce_identity(u.arg.op, u.dtype), u.dtype)
            depth_of[i] = len(st.open)
        elif u.op == "ACCUMULATE":
            acc, src = u.srcs
            op, dt = uops[acc].arg.op, uops[acc].dtype
            if uops[acc].arg.count > 1:
                st.check_row(uops[acc].arg)
            x = np.broadcast_to(np.asarray(vals[src], dt), np.broadcast_shapes(
                np.shape(vals[src]), st.mask.shape))
            x = np.where(st.mask, x, np.asarray(reduce_identity(op, dt), dt))
            if dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16"):
                x = x.astype(np.float32)  # 16-bit floats accumulate in float32, as the C device
            with np.errstate(all="ignore"):
                part = _REDUCE[op](x, st.axes_since(depth_of[acc]))
                vals[acc] = _COMBINE[op](vals[acc], part).astype(dt)
        else:
            vals[i] = _eval_op(u, [vals[s] for s in u.srcs], [uops[s].dtype for s in u.srcs],
                               st, arrays)


def _eval_op(u, args: list, arg_dts: list, st: _LoopState, arrays: list):
    """The value of one value op (or the effect of a store) under the loops open in ``st``."""
    env = st.env
    if u.op == "LOAD":
        slot, idx, valid = u.arg
        i = np.asarray(evaluate(idx, env))
        if u.srcs:
            i = i + np.asarray(args[0], np.int64)
        v = np.asarray(evaluate(valid, env)).astype(bool) & st.mask
        buf = arrays[slot].reshape(-1)
        safe = np.where(v, i, 0)
        x = buf[safe] if buf.size else np.zeros(safe.shape, buf.dtype)
        return np.where(v, x, np.zeros((), buf.dtype)).astype(u.dtype)
    if u.op == "CONST":
        return np.asarray(u.arg, u.dtype)
    if u.op == "INDEX":
        return np.asarray(evaluate(u.arg, env)).astype(u.dtype)
    if u.op == "CAST":
        from tinyjax.lax.elementwise import convert_element_type_p
        return np.asarray(convert_element_type_p.impl(np.asarray(args[0]), new_dtype=u.dtype))
    if u.op == "BITCAST":
        src = np.ascontiguousarray(args[0])
        return src.view(u.dtype).reshape(src.shape)
    if u.op == "ALU":
        return np.asarray(_alu(u.arg, args, u.dtype)).astype(u.dtype)
    if u.op == "STORE":
        slot, index, valid = u.arg
        shape = np.broadcast_shapes(np.shape(args[0]), st.mask.shape,
                                    *(np.shape(evaluate(n, env)) for n in (index, valid)))
        i = np.broadcast_to(np.asarray(evaluate(index, env)), shape).reshape(-1)
        v = np.broadcast_to(args[0], shape).reshape(-1)
        ok = (np.broadcast_to(np.asarray(evaluate(valid, env)), shape).astype(bool)
              & np.broadcast_to(st.mask, shape)).reshape(-1)
        arrays[slot].reshape(-1)[i[ok]] = v[ok]
        return None
    raise NotImplementedError(f"interp: unknown op {u.op}")


def run_kernel(k: Kernel, arrays: list) -> None:
    if k.sort is not None:
        return _run_sort(k, arrays)
    if k.loop_ir is not None:
        run_loop_ir(k.loop_ir, arrays)
        if k.scatter_shape is not None:
            _eval(k.sbody, _env(k.scatter_shape), arrays, None, k.scatter_shape)
        return
    full = k.full_shape
    accs: dict = {}
    stages = list(enumerate(k.pre)) + ([(None, (k.reduce_op, k.acc_dtype, k.rbody))]
                                       if k.reduce_op is not None else [])
    for j, (op, dt, rbody) in stages:
        vals = _eval(rbody, _env(full), arrays, accs, full)
        x = np.broadcast_to(np.asarray(vals[-1], dt), full)
        if dt.itemsize == 2 and (dt.kind == "f" or dt.name == "bfloat16"):
            x = x.astype(np.float32)  # 16-bit floats accumulate in float32, as the C device
        with np.errstate(all="ignore"):
            accs[j] = _REDUCE[op](x, tuple(k.reduce_axes)).astype(dt)
    if k.full_epilogue:
        _eval(k.body, _env(full), arrays, accs, full)
    else:
        _eval(k.body, _env(full, k.reduce_axes), arrays, accs, k.out_shape)
    if k.scatter_shape is not None:
        _eval(k.sbody, _env(k.scatter_shape), arrays, None, k.scatter_shape)


class InterpDevice:
    name = "interp"
    loop_ir_target = "interp"  # runs the plain loop nest of each kernel
    host = True  # buffers are numpy arrays

    def compile(self, kernels: list[Kernel]):
        return "\n\n".join(k.dump() for k in kernels) + "\n", [None] * len(kernels)

    def make_launcher(self, fn, kernel: Kernel):
        def launch(arrays):
            run_kernel(kernel, arrays)
        return launch
