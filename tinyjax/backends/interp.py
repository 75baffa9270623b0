"""The reference interpreter backend: runs the loop IR (:mod:`tinyjax.compiler.codegen.uops`)
with numpy, no compiling.

Every loop variable gets an axis of its own and is a broadcast ``arange`` array along it
(with a mask where a block of a ragged loop runs past the end), so a loop nest runs as one
vectorised evaluation; an accumulation reduces its value over the axes of the loops opened
since its accumulator was defined (an ``upcast`` loop's axis stays: a row of
accumulators).  Index expressions are evaluated with
:func:`tinyjax.compiler.shape.symbolic.evaluate`, and ops take their reference semantics
(:data:`tinyjax.compiler.ops.reference_impls`, registered by the lowering rules): an ALU op
the eager semantics of the lax primitive of the same name -- so a disagreement with the C
device points at the renderer or a pass, and a disagreement with eager evaluation at
lowering or scheduling.  Sorts run through the reference sort; a scatter's updates
serially in C order.
"""
from __future__ import annotations

import numpy as np

from tinyjax.backends.base import HostBackend
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.ops import reduce_identity, reference_impls
from tinyjax.compiler.shape.symbolic import evaluate

__all__ = ["InterpBackend", "run_kernel", "run_loop_ir", "host_library_call"]


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
        return reference_impls[op](*args)


_REDUCE = {
    "sum": lambda x, ax: np.sum(x, axis=ax, keepdims=True, dtype=x.dtype),
    "prod": lambda x, ax: np.prod(x, axis=ax, keepdims=True, dtype=x.dtype),
    "max": lambda x, ax: np.max(x, axis=ax, keepdims=True),
    "min": lambda x, ax: np.min(x, axis=ax, keepdims=True),
    "and": lambda x, ax: np.bitwise_and.reduce(x, axis=ax, keepdims=True),
    "or": lambda x, ax: np.bitwise_or.reduce(x, axis=ax, keepdims=True),
    "xor": lambda x, ax: np.bitwise_xor.reduce(x, axis=ax, keepdims=True),
}


_COMBINE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum,
            "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}


class _LoopState:
    """The loops open during a run of loop IR: an axis per loop variable, the variables'
    values, and the mask of iterations that run (a ragged block's tail does not)."""

    def __init__(self, names, env=None):
        self.axis = {v: j for j, v in enumerate(dict.fromkeys(names))}
        self.env: dict = dict(env or {})
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
        seen = lo[self.mask.any(axis=rest)]
        if (seen != hi[self.mask.any(axis=rest)]).any() or seen.min() < 0 or \
                seen.max() >= acc.count or len(np.unique(seen)) != seen.size:
            raise AssertionError(f"interp: row of accumulators indexed by {acc.index} does not "
                                 "give each upcast iteration its own one")


def run_loop_ir(uops, arrays: list) -> None:
    """Run loop IR over ``arrays`` (one per buffer slot; outputs written in place)."""
    st = _LoopState(u.arg.var for u in uops if u.op == "RANGE")
    vals: list = [None] * len(uops)
    depth_of: dict = {}
    for i, u in enumerate(uops):
        if u.op == "RANGE":
            st.enter(u.arg)
        elif u.op == "ENDRANGE":
            st.leave()
        elif u.op == "DEFINE_VAR":  # a named value of the loop variables, read by name
            st.env[u.arg.name] = np.asarray(evaluate(u.arg.value, st.env))
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
            vals[i] = _eval_op(u, [vals[s] for s in u.srcs], st, arrays)


def _eval_op(u, args: list, st: _LoopState, arrays: list):
    """The value of one op (or the effect of a store or scatter) under the loops of ``st``."""
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
        return np.asarray(reference_impls["CAST"](np.asarray(args[0]), new_dtype=u.dtype))
    if u.op == "BITCAST":
        src = np.ascontiguousarray(args[0])
        return src.view(u.dtype).reshape(src.shape)
    if u.op == "ALU":
        return np.asarray(_alu(u.arg, args, u.dtype)).astype(u.dtype)
    if u.op == "STORE":
        slot, index, valid = u.arg
        i, ok, v = _where_valid(st, [evaluate(index, env)], valid, args[0])
        arrays[slot].reshape(-1)[i[0][ok]] = v[ok]
        return None
    if u.op == "SCATTER":
        (off, val), ok, _ = _where_valid(st, args[:2], args[2], 0)
        out_flat = arrays[0].reshape(-1)
        where, val = off[ok], val[ok].astype(out_flat.dtype)
        if u.arg == "replace":
            out_flat[where] = val  # numpy: the last of repeated indices wins
        else:
            ufunc = {"add": np.add, "mul": np.multiply, "min": np.minimum,
                     "max": np.maximum}[u.arg]
            if out_flat.dtype == np.bool_ and u.arg in ("add", "mul"):
                ufunc = np.logical_or if u.arg == "add" else np.logical_and
            ufunc.at(out_flat, where, val)
        return None
    raise NotImplementedError(f"interp: unknown op {u.op}")


def _where_valid(st: _LoopState, values: list, valid, value):
    """``values`` and ``value`` flattened over the open loops (C order), and the mask of the
    points where ``valid`` holds and the loops run."""
    ok = valid if not hasattr(valid, "vars") else evaluate(valid, st.env)
    arrays = [np.asarray(v) for v in values] + [np.asarray(ok), np.asarray(value)]
    shape = np.broadcast_shapes(st.mask.shape, *(a.shape for a in arrays))
    flat = [np.broadcast_to(a, shape).reshape(-1) for a in arrays]
    mask = flat[-2].astype(bool) & np.broadcast_to(st.mask, shape).reshape(-1)
    return flat[:-2], mask, flat[-1]


def _run_sort(k: Kernel, arrays: list) -> None:
    axis, desc, slots = k.sort
    shape = k.full_shape
    keys = [arrays[s].reshape(-1)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
            for s in slots]
    perm = reference_impls["SORTPERM"](keys, axis, desc)
    arrays[0].reshape(-1)[:] = perm.reshape(-1)


def run_kernel(k: Kernel, arrays: list) -> None:
    """Run kernel ``k`` over ``arrays``: a sort through the reference sort, anything else
    from its loop IR (and a scatter's updates after its copy, serially in C order)."""
    if k.sort is not None:
        return _run_sort(k, arrays)
    if k.loop_ir is None:
        raise ValueError(f"interp: kernel {k.name} has no loop IR (compiler.codegen."
                         "attach_loop_ir gives it one)")
    run_loop_ir(k.loop_ir, arrays)
    if k.scatter_shape is not None:
        st = _LoopState([f"i{a}" for a in range(len(k.scatter_shape))])
        for a, n in enumerate(k.scatter_shape):
            st.enter(_Whole(f"i{a}", n))
        vals: list = []
        for u in k.sbody:
            vals.append(_eval_op(u, [vals[s] for s in u.srcs], st, arrays))


class _Whole:
    """A loop over a whole axis (a scatter's serial update space)."""

    def __init__(self, var: str, n: int):
        self.var, self.trips, self.kind, self.cap = var, n, "global", None
        self.lo, self.hi = 0, n


class InterpBackend(HostBackend):
    name = "interp"
    loop_ir_target = "interp"  # runs the plain loop nest of each kernel

    def render(self, kernels: list[Kernel]) -> str:
        return "\n\n".join(k.dump() for k in kernels) + "\n"

    def compile(self, kernels: list[Kernel]):
        return self.render(kernels), [None] * len(kernels)

    def make_launcher(self, fn, kernel: Kernel):
        def launch(arrays):
            run_kernel(kernel, arrays)
        return launch

    def library_call(self, primitive, in_avals, out_avals, params):
        """A library step (linear algebra, FFT) as the primitive's eager evaluation: the
        reference the C and CUDA library calls are tested against."""
        return host_library_call(primitive, params)


def host_library_call(primitive, params):
    """``impl(ins, outs)``: ``primitive``'s eager implementation (numpy / SciPy) on host
    buffers, written into ``outs``."""
    def impl(ins, outs):
        res = primitive.impl(*ins, **params)
        for out, r in zip(outs, res if primitive.multiple_results else [res]):
            np.copyto(out, r)
    return impl
