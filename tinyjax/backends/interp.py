"""The reference interpreter backend: runs the kernel IR with numpy, no compiling.

Loop variables become broadcast ``arange`` arrays, index expressions are evaluated with
:func:`tinyjax.compiler.shape.symbolic.evaluate`, and ops take their reference semantics
(:data:`tinyjax.compiler.ops.reference_impls`, registered by the lowering rules): an ALU op
the eager semantics of the lax primitive of the same name -- so a disagreement with the C
device points at the renderer, and a disagreement with eager evaluation points at lowering
or scheduling.
"""
from __future__ import annotations

import numpy as np

from tinyjax.backends.base import HostBackend
from tinyjax.compiler.kernel import Kernel, UOp
from tinyjax.compiler.ops import reference_impls
from tinyjax.compiler.shape.symbolic import evaluate

__all__ = ["InterpBackend", "run_kernel"]


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
            out = np.asarray(reference_impls["CAST"](np.asarray(vals[u.srcs[0]]),
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
    axis, desc, slots = k.sort
    shape = k.full_shape
    keys = [arrays[s].reshape(-1)[:int(np.prod(shape, dtype=np.int64))].reshape(shape)
            for s in slots]
    perm = reference_impls["SORTPERM"](keys, axis, desc)
    arrays[0].reshape(-1)[:] = perm.reshape(-1)


def run_kernel(k: Kernel, arrays: list) -> None:
    if k.sort is not None:
        return _run_sort(k, arrays)
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


class InterpBackend(HostBackend):
    name = "interp"

    def render(self, kernels: list[Kernel]) -> str:
        return "\n\n".join(k.dump() for k in kernels) + "\n"

    def compile(self, kernels: list[Kernel]):
        return self.render(kernels), [None] * len(kernels)

    def make_launcher(self, fn, kernel: Kernel):
        def launch(arrays):
            run_kernel(kernel, arrays)
        return launch
