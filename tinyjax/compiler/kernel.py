"""The kernel IR: what every device renders (C, CUDA) or executes (the interpreter).

A :class:`Kernel` computes its first ``n_outs`` buffers (``bufs[0]``, and the results of
earlier reduce stages that other kernels read) over a loop nest:

* loop variables ``i0 .. i{n-1}`` range over ``full_shape``;
* with a reduction, the axes ``reduce_axes`` are reduced with ``reduce_op``: for every
  point of the output space (reduce axes pinned to 0), an accumulator starts at the op's
  identity and takes ``rbody[-1]`` for every point of the reduced axes;
* then ``body`` (the epilogue, which may read the accumulator through ``ACC``) runs for
  every output point and ends with a ``STORE``;
* ``pre`` stages run before the main reduction, each into its own accumulator that later
  stages read (softmax: the row max, then the sum of exp(x - max)); with ``full_epilogue``
  the body runs for every point of ``full_shape`` (softmax's division), not once per row.

``rbody`` and ``body`` are lists of :class:`UOp` in SSA form (``srcs`` index into the same
list).  UOp kinds:

=========  ==========================================================================
``LOAD``   ``arg=(slot, index, valid)``: ``bufs[slot][index]`` if ``valid`` else 0; with a
           source (a gather), ``bufs[slot][index + srcs[0]]``
``CONST``  ``arg=value``
``INDEX``  ``arg=node``: the integer value of a symbolic expression (iota, masks)
``ALU``    ``arg=name`` from :data:`tinyjax.compiler.ops.ALU`
``CAST``   conversion of ``srcs[0]`` to ``dtype``
``BITCAST`` the bits of ``srcs[0]`` read as ``dtype`` (same item size)
``ACC``    the accumulator (``arg=None``; body only) or that of an earlier stage ``arg=k``
           of ``pre`` (in later stages and the body)
``STORE``  ``arg=(slot, index, valid)``: ``bufs[slot][index] = srcs[0]`` where ``valid``
``SCATTER`` ``srcs=(offset, value, valid)``, ``arg`` = combine: ``bufs[0][offset] =
           combine(bufs[0][offset], value)`` where ``valid`` (``sbody`` only)
=========  ==========================================================================

A sort kernel (``sort`` set) writes, for every row along the sort axis, the stable sorting
permutation of its keys (the slots ``sort[2]``, most significant first).  A scatter kernel (``scatter_shape`` set) first runs ``body`` (a copy of the operand), then
``sbody`` serially, in C order, over the loop space ``scatter_shape``.

Indices and validities are :mod:`symbolic` nodes over the loop variables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from tinyjax.compiler.shape.symbolic import Node, Var

__all__ = ["UOp", "Kernel", "loop_var", "GemmPlan", "uop_deps", "format_access"]


@dataclass(frozen=True)
class GemmPlan:
    """A sum reduction whose reduce body ends in ``mul(a, b)`` where ``a`` depends on the
    ``m_axes`` (not the ``n_axes``) and ``b`` on the ``n_axes`` (not the ``m_axes``), both on
    the reduce axes: rendered as packed panels of ``a`` and ``b`` and a register-blocked
    micro-kernel, the epilogue applied to each finished tile.  ``a_uops``/``b_uops``: the
    indices of ``rbody`` computing each side; ``outer_axes``: the remaining output axes
    (batch), looped around the whole product.  ``allow_tf32``: float32 operands may be
    multiplied on TF32 tensor cores (JAX's default precision on GPUs; the CPU ignores it)."""
    m_axes: tuple[int, ...]
    n_axes: tuple[int, ...]
    outer_axes: tuple[int, ...]
    a_uops: frozenset
    b_uops: frozenset
    a_root: int
    b_root: int
    allow_tf32: bool = False


@dataclass(frozen=True)
class UOp:
    op: str
    dtype: Optional[np.dtype]
    srcs: tuple[int, ...]
    arg: Any

    def __str__(self) -> str:
        arg = format_access(self.arg) if self.op in ("LOAD", "STORE") else self.arg
        dt = self.dtype.name if self.dtype is not None else ""
        return f"{self.op:<6} {dt:<8} {list(self.srcs)} {arg}"


def format_access(arg) -> str:
    """A load's or store's ``(slot, index, valid)`` as ``buf<slot>[index] if valid``."""
    slot, index, valid = arg
    return f"buf{slot}[{index}]" + ("" if _is_true(valid) else f" if {valid}")


def uop_deps(uops, roots) -> set[int]:
    """The uops that ``roots`` (indices into ``uops``) are computed from, themselves included."""
    out, todo = set(), list(roots)
    while todo:
        i = todo.pop()
        if i not in out:
            out.add(i)
            todo.extend(uops[i].srcs)
    return out


def _is_true(n) -> bool:
    return not isinstance(n, Node) or (n.vmin == n.vmax == 1) or (n.vmin > 0)


def loop_var(k: int, size: int) -> Var:
    return Var(f"i{k}", 0, max(int(size) - 1, 0))


@dataclass
class Kernel:
    name: str
    bufs: list[tuple[np.dtype, int]]        # (dtype, size) per slot; slot 0 is the output
    buf_ids: list[int]                      # program buffer id per slot
    full_shape: tuple[int, ...]
    reduce_axes: tuple[int, ...]
    reduce_op: Optional[str]
    acc_dtype: Optional[np.dtype]
    rbody: list[UOp]
    body: list[UOp]
    source_lines: list[str] = field(default_factory=list)
    upcast_axis: Optional[int] = None       # an output axis to run innermost, below the reduce
    gemm: Optional["GemmPlan"] = None       # a matmul-shaped reduction: packed, tiled rendering
    pre: list = field(default_factory=list)  # earlier reduce stages: (op, acc dtype, rbody)
    full_epilogue: bool = False             # body runs over full_shape (not the reduced space)
    scatter_shape: Optional[tuple] = None   # the scatter kernel kind: sbody's serial loop space
    sort: Optional[tuple] = None            # the sort kind: (axis, descending, key slots)
    sbody: list = field(default_factory=list)
    n_outs: int = 1                         # slots 0 .. n_outs-1 are written (stage results)
    flops: int = 0
    nbytes: int = 0
    loop_ir: Optional[list] = None          # the loop IR a backend renders (compiler.codegen)
    gemm_loops: Any = None                  # a product's CPU decisions (compiler.codegen.gemm)

    @property
    def out_shape(self) -> tuple[int, ...]:
        if self.full_epilogue:
            return self.full_shape
        return tuple(1 if i in self.reduce_axes else s for i, s in enumerate(self.full_shape))

    def loop_vars(self) -> list[Var]:
        return [loop_var(k, s) for k, s in enumerate(self.full_shape)]

    def describe(self) -> str:
        kind = f"reduce_{self.reduce_op}{list(self.reduce_axes)}" if self.reduce_op else "elementwise"
        if self.scatter_shape is not None:
            kind = f"scatter{list(self.scatter_shape)}"
        if self.sort is not None:
            kind = f"sort[axis={self.sort[0]}{', descending' if self.sort[1] else ''}]"
        outs = ", ".join(f"{dt.name}[{n}]" for dt, n in self.bufs[:self.n_outs])
        src = ", ".join(self.source_lines) if self.source_lines else "?"
        return (f"{self.name}: {kind} full={list(self.full_shape)} -> "
                f"{outs} ({len(self.bufs) - self.n_outs} inputs) from {src}")

    def dump(self) -> str:
        lines = [self.describe()]
        for k, (dt, n) in enumerate(self.bufs):
            lines.append(f"  buf{k}: {dt.name}[{n}] (program buffer {self.buf_ids[k]})")
        for j, (op, dt, rb) in enumerate(self.pre):
            lines.append(f"  stage {j}: reduce_{op} (acc {dt.name}):")
            lines.extend(f"    %{i}: {u}" for i, u in enumerate(rb))
        if self.reduce_op:
            lines.append(f"  reduce body (acc {self.acc_dtype.name}):")
            lines.extend(f"    %{i}: {u}" for i, u in enumerate(self.rbody))
        lines.append("  body" + (" (over the full loop space):" if self.full_epilogue else ":"))
        lines.extend(f"    %{i}: {u}" for i, u in enumerate(self.body))
        if self.scatter_shape is not None:
            lines.append(f"  scatter body over {list(self.scatter_shape)} (serial):")
            lines.extend(f"    %{i}: {u}" for i, u in enumerate(self.sbody))
        return "\n".join(lines)
