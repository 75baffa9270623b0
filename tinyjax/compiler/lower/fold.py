"""Reductions over broadcast axes, folded at lowering (XLA's algebraic simplifier does the
same): an operand that is constant along a reduced axis of extent ``n`` -- a view with stride 0
there (a broadcast), or elementwise operations of such -- reduces along it to its value at
index 0, combined ``n`` times:

* ``sum``: multiplied by ``n`` (integers wrap as ``n`` additions do);
* ``max``, ``min``, ``and``, ``or``: itself;
* ``prod``: its ``n``-th power, by repeated squaring;
* ``xor``: itself for odd ``n``, else 0.

So ``jnp.sum(jnp.ones((10**6, 10**6)))`` is one multiplication instead of 10**12 additions.
Axes the operand varies along are reduced as before.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.compiler import ops
from tinyjax.compiler.ops import LazyOp

__all__ = ["fold_broadcast_reduction"]

# the operand's elementwise expression is searched this far (nodes) for its broadcasts
MAX_FOLD_NODES = 64
_ELEMENTWISE = ("ALU", "CAST", "BITCAST")


def fold_broadcast_reduction(x: LazyOp, op: str, axes: Sequence[int]) -> Optional[LazyOp]:
    """``ops.reduce(x, op, axes)`` with the axes ``x`` is constant along folded (same shape:
    reduced axes kept with size 1), or None when there are none."""
    if x.dtype == np.bool_ and op in ("sum", "prod"):
        return None
    axes = [a for a in axes if x.shape[a] > 1]
    const = _constant_axes(x, axes)
    if not const:
        return None
    n = int(np.prod([x.shape[a] for a in const], dtype=np.int64))
    y = _at_index_zero(x, const)
    rest = [a for a in axes if a not in const]
    r = ops.reduce(y, op, rest) if rest else y
    return _repeat(r, op, n)


def _constant_axes(x: LazyOp, axes: list[int]) -> list[int]:
    """The axes among ``axes`` that ``x`` does not vary along (judged within
    MAX_FOLD_NODES nodes of its elementwise expression)."""
    found = set(axes)
    seen, stack = set(), [x]
    while stack and found:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen.add(id(n))
        if len(seen) > MAX_FOLD_NODES:
            return []
        if n.op in _ELEMENTWISE:
            stack.extend(n.srcs)
        elif n.op == "VIEW":
            v = n.arg.views[-1]
            found &= {a for a in found if v.strides[a] == 0 and v.mask is None}
        elif n.op != "CONST":
            return []  # (a scalar constant is constant along everything)
    return sorted(found)


def _at_index_zero(x: LazyOp, axes: list[int]) -> LazyOp:
    """``x`` restricted to index 0 along ``axes`` (kept with size 1): its broadcast views
    shrunk, its elementwise operations rebuilt over them (sources first, no recursion)."""
    box = [(0, 1) if a in axes else (0, s) for a, s in enumerate(x.shape)]
    new: dict[int, LazyOp] = {}
    stack = [(x, False)]
    while stack:
        n, ready = stack.pop()
        if id(n) in new:
            continue
        if n.op not in _ELEMENTWISE:
            new[id(n)] = ops.shrink(n, box) if n.shape else n
            continue
        if not ready:
            stack.append((n, True))
            stack.extend((s, False) for s in n.srcs)
            continue
        srcs = [new[id(s)] for s in n.srcs]
        new[id(n)] = ops.alu(n.arg, *srcs, dtype=n.dtype) if n.op == "ALU" else \
            ops.cast(srcs[0], n.dtype) if n.op == "CAST" else ops.bitcast(srcs[0], n.dtype)
    return new[id(x)]


def _repeat(r: LazyOp, op: str, n: int) -> LazyOp:
    """``r`` combined with itself ``n`` times by ``op``."""
    if op in ("max", "min", "and", "or"):
        return r
    if op == "xor":
        return r if n % 2 else ops.const(0, r.dtype, r.shape)
    half = np.dtype(r.dtype).itemsize == 2 and dtypes.is_float(r.dtype)
    acc = ops.cast(r, np.float32) if half else r  # (16-bit floats accumulate in float32)
    if op == "sum":
        out = ops.alu("mul", acc, ops.const(_wrapped(n, acc.dtype), acc.dtype, acc.shape))
    else:  # prod: the n-th power by squaring
        out, base = None, acc
        while n:
            if n & 1:
                out = base if out is None else ops.alu("mul", out, base)
            n >>= 1
            if n:
                base = ops.alu("mul", base, base)
    return ops.cast(out, r.dtype)


def _wrapped(n: int, dt) -> object:
    """``n`` as a value of ``dt``: modulo 2**bits for integers (as ``n`` wrapping additions
    of one value give), as the nearest value for floats."""
    dt = np.dtype(dt)
    if dtypes.is_float(dt):
        return float(n)
    bits = 8 * dt.itemsize
    n %= 1 << bits
    return n - (1 << bits) if np.issubdtype(dt, np.signedinteger) and n >= 1 << (bits - 1) \
        else n
