"""A program with loops and branches as one CUDA graph: loops and branches run device-side
(conditional graph nodes, CUDA 12.4 on), with no host round trip per iteration and no
``while`` predicate copied back.

The graph is built node by node for one call's addresses (its arguments and arena):

* a kernel launch is a kernel node over fixed addresses;
* a scan is ``tj_loop_start`` (counter to its first index, the loop's condition set to
  ``length > 0``), then a ``while`` node whose body runs the body's steps and ends with
  ``tj_loop_next`` (the counter on, the condition set to ``it < length``);
* a ``while`` loop runs its predicate's steps and ``tj_while_test`` (the condition set from
  the predicate, on the device) before the node and again at the end of its body;
* a ``cond`` is ``tj_switch_select`` (one condition per branch set from the clamped index)
  and an ``if`` node per branch.

A graph's kernels take fixed addresses, so what the host walk does with pointers is done
with copies here: a carry lives in its first buffer -- the body reads it there, writes its
next value into the second and a copy brings it back (``tj_copy``); an operand at a loop's
counter (a scan's ``xs[i]`` or ``ys[i]``) is staged through a buffer of its own, copied in
before its kernel or out after it (``tj_copy_at`` reads the counters on the device).  Loop
counters and staging buffers belong to the loaded program and are shared by its graphs:
every graph runs on the one default stream, one after the other.

Programs with foreign calls, strided views inside loops, more than eight branches or
counters nested more than two deep are not turned into graphs (the host walks them).
"""
from __future__ import annotations

import ctypes

import numpy as np

from tinyjax.backends.cuda.driver import COND_IF, COND_WHILE
from tinyjax.compiler.steps import (CONST, INPUT, OUTPUT, Buffer, Call, Copy, Launch, Loop,
                                    Pointer, Program, Ref, Switch, walk_steps)

__all__ = ["SUPPORT_SOURCE", "supports_program", "DeviceLoops"]

MAX_BRANCHES = 8
MAX_TERMS = 2

# The kernels the graphs need besides the program's own (all parameters 64-bit).
SUPPORT_SOURCE = r"""
typedef unsigned long long tj_u64;
typedef long long tj_i64;
extern "C" __device__ void cudaGraphSetConditional(tj_u64 handle, unsigned int value);
extern "C" __global__ void tj_loop_start(tj_i64 *ctr, tj_i64 length, tj_i64 reverse,
                                         tj_u64 handle) {
  ctr[0] = 0;
  ctr[1] = reverse ? length - 1 : 0;
  cudaGraphSetConditional(handle, length > 0);
}
extern "C" __global__ void tj_loop_next(tj_i64 *ctr, tj_i64 length, tj_i64 reverse,
                                        tj_u64 handle) {
  tj_i64 it = ctr[0] + 1;
  ctr[0] = it;
  ctr[1] = reverse ? length - 1 - it : it;
  cudaGraphSetConditional(handle, it < length);
}
extern "C" __global__ void tj_while_test(const unsigned char *pred, tj_u64 handle) {
  cudaGraphSetConditional(handle, *pred != 0);
}
extern "C" __global__ void tj_switch_select(const int *index, tj_i64 n, tj_u64 h0, tj_u64 h1,
                                            tj_u64 h2, tj_u64 h3, tj_u64 h4, tj_u64 h5,
                                            tj_u64 h6, tj_u64 h7) {
  tj_i64 i = *index;
  i = i < 0 ? 0 : (i > n - 1 ? n - 1 : i);
  tj_u64 h[8] = {h0, h1, h2, h3, h4, h5, h6, h7};
  for (tj_i64 b = 0; b < n; b++) cudaGraphSetConditional(h[b], b == i);
}
/* dst[0:nbytes] = src[0:nbytes], each at an offset of counter[1] * stride per term (a null
   counter adds nothing) */
extern "C" __global__ void tj_copy_at(char *dst, const char *src, tj_i64 nbytes,
                                      const tj_i64 *d0, tj_i64 ds0, const tj_i64 *d1,
                                      tj_i64 ds1, const tj_i64 *s0, tj_i64 ss0,
                                      const tj_i64 *s1, tj_i64 ss1) {
  if (d0) dst += d0[1] * ds0;
  if (d1) dst += d1[1] * ds1;
  if (s0) src += s0[1] * ss0;
  if (s1) src += s1[1] * ss1;
  tj_i64 stride = (tj_i64)gridDim.x * blockDim.x;
  tj_i64 t = (tj_i64)blockIdx.x * blockDim.x + threadIdx.x;
  if (((tj_u64)dst | (tj_u64)src | (tj_u64)nbytes) % 16 == 0) {
    for (tj_i64 j = t; j < nbytes / 16; j += stride)
      ((int4 *)dst)[j] = ((const int4 *)src)[j];
  } else {
    for (tj_i64 j = t; j < nbytes; j += stride) dst[j] = src[j];
  }
}
/* a strided view (up to 8 axes; element strides, an element offset) read into dst */
extern "C" __global__ void tj_view_copy(char *dst, const char *src, tj_i64 esize, tj_i64 nd,
    tj_i64 n0, tj_i64 n1, tj_i64 n2, tj_i64 n3, tj_i64 n4, tj_i64 n5, tj_i64 n6, tj_i64 n7,
    tj_i64 t0, tj_i64 t1, tj_i64 t2, tj_i64 t3, tj_i64 t4, tj_i64 t5, tj_i64 t6, tj_i64 t7,
    tj_i64 offset) {
  tj_i64 shape[8] = {n0, n1, n2, n3, n4, n5, n6, n7};
  tj_i64 strides[8] = {t0, t1, t2, t3, t4, t5, t6, t7};
  tj_i64 n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  for (tj_i64 j = (tj_i64)blockIdx.x * blockDim.x + threadIdx.x; j < n;
       j += (tj_i64)gridDim.x * blockDim.x) {
    tj_i64 r = j, off = offset;
    for (int d = (int)nd - 1; d >= 0; d--) { off += (r % shape[d]) * strides[d]; r /= shape[d]; }
    for (tj_i64 b = 0; b < esize; b++) dst[j * esize + b] = src[off * esize + b];
  }
}
"""
SUPPORT_KERNELS = ("tj_loop_start", "tj_loop_next", "tj_while_test", "tj_switch_select",
                   "tj_copy_at", "tj_view_copy")


def supports_program(program: Program) -> bool:
    """Whether :class:`DeviceLoops` can run ``program`` as one graph."""
    for st in walk_steps(program.steps):
        if isinstance(st, Call):
            return False
        if isinstance(st, Switch) and (len(st.branches) > MAX_BRANCHES
                                       or st.index.dtype != np.int32):
            return False
        if isinstance(st, Copy) and st.view is not None and (st.dst.terms or st.src.terms
                                                            or len(st.view[0]) > 8):
            return False
        refs = st.refs if isinstance(st, Launch) else [st.dst, st.src] \
            if isinstance(st, Copy) else []
        if any(len(r.terms) > MAX_TERMS for r in refs):
            return False
    return True


class DeviceLoops:
    """Builds the graph of ``program`` for given base addresses.  ``kernels``: the loaded
    kernel (``_Kernel``) of each program kernel, by ``id``; ``support``: the support
    kernels' functions by name; ``alloc(nbytes)``: device memory the graphs share
    (counters, staging buffers), kept with this object."""

    def __init__(self, drv, program: Program, kernels: dict, support: dict, alloc):
        self.drv, self.program, self.kernels, self.support = drv, program, kernels, support
        loops = [st for st in walk_steps(program.steps) if isinstance(st, Loop)]
        self._keep = []   # device allocations and parameter arrays alive with the graphs
        ctr = self._device(alloc, 16 * max(len(loops), 1))
        self.counter = {id(lp): ctr + 16 * i for i, lp in enumerate(loops)}
        self.staging: dict = {}
        for st in walk_steps(program.steps):
            for r in (st.refs if isinstance(st, Launch) else []):
                if r.terms and id(r) not in self.staging:
                    self.staging[id(r)] = self._device(alloc, max(r.nbytes, 16))
        self.n_args = len(program.consts) + len(program.inputs) + len(program.outputs)
        self.index = {id(b): i for i, b in enumerate(program.consts + program.inputs +
                                                     program.outputs)}

    def _device(self, alloc, nbytes: int) -> int:
        buf = alloc(nbytes)
        self._keep.append(buf)
        return buf.ptr

    # ---- addresses ---------------------------------------------------------------------
    def _base(self, b, bases: tuple, homes: dict) -> int:
        if isinstance(b, Pointer):
            return homes[id(b)]
        if b.kind in (CONST, INPUT, OUTPUT):
            return bases[self.index[id(b)]]
        return bases[self.n_args] + b.index

    def _addr(self, r: Ref, bases: tuple, homes: dict) -> int:
        """The fixed address of ``r`` (its loop terms not included)."""
        return self._base(r.base, bases, homes) + r.offset * r.dtype.itemsize

    def _terms(self, r: Ref) -> list:
        out = []
        for loop, stride in r.terms:
            out += [self.counter[id(loop)], stride * r.dtype.itemsize]
        return out + [0, 0] * (MAX_TERMS - len(r.terms))

    # ---- building ----------------------------------------------------------------------
    def build(self, bases: tuple):
        """The executable graph of the program at ``bases`` (arguments, then the arena)."""
        drv = self.drv
        graph = drv.graph_create()
        try:
            self._steps(graph, [], self.program.steps, bases, {})
            return drv.instantiate(graph)
        except BaseException:
            drv.lib.cuGraphDestroy(graph)
            raise

    def _kernel(self, graph, deps: list, fn, grid, block, shared, values: list) -> list:
        vals = (ctypes.c_uint64 * max(len(values), 1))(*[int(v) & (2**64 - 1) for v in values])
        base = ctypes.addressof(vals)
        ptrs = (ctypes.c_void_p * max(len(values), 1))(*[base + 8 * i
                                                          for i in range(len(values))])
        self._keep.append((vals, ptrs))
        node = self.drv.add_kernel_node(graph, deps, fn, grid, block, shared,
                                        ctypes.cast(ptrs, ctypes.c_void_p))
        return [node]

    def _support(self, graph, deps, name: str, values: list, threads: int = 1) -> list:
        blocks = max(1, min(1024, -(-threads // 256)))
        return self._kernel(graph, deps, self.support[name], (blocks, 1, 1),
                            (256 if threads > 1 else 1, 1, 1), 0, values)

    def _copy(self, graph, deps, dst: int, src: int, nbytes: int, dterms=(0, 0, 0, 0),
              sterms=(0, 0, 0, 0)) -> list:
        if nbytes == 0:
            return deps
        return self._support(graph, deps, "tj_copy_at",
                             [dst, src, nbytes, *dterms, *sterms], threads=nbytes // 16 + 1)

    def _steps(self, graph, deps: list, steps: list, bases: tuple, homes: dict) -> list:
        for st in steps:
            if isinstance(st, Launch):
                deps = self._launch(graph, deps, st, bases, homes)
            elif isinstance(st, Copy):
                deps = self._copy_step(graph, deps, st, bases, homes)
            elif isinstance(st, Loop):
                deps = self._loop(graph, deps, st, bases, homes)
            elif isinstance(st, Switch):
                deps = self._switch(graph, deps, st, bases, homes)
            else:
                raise TypeError(f"no graph node for program step {st!r}")
        return deps

    def _launch(self, graph, deps, st: Launch, bases, homes) -> list:
        n_out = st.kernel.n_outs
        ptrs = []
        for j, r in enumerate(st.refs):
            if r.terms:
                stage = self.staging[id(r)]
                if j >= n_out:   # an input at the counter: staged in
                    deps = self._copy(graph, deps, stage, self._addr(r, bases, homes),
                                      r.nbytes, sterms=self._terms(r))
                ptrs.append(stage)
            else:
                ptrs.append(self._addr(r, bases, homes))
        k = self.kernels[id(st.kernel)]
        for fn, grid, block, shared, _, _ in k.steps:
            deps = self._kernel(graph, deps, fn, grid, block, shared, ptrs)
        for j, r in enumerate(st.refs[:n_out]):
            if r.terms:         # an output at the counter: staged out
                deps = self._copy(graph, deps, self._addr(r, bases, homes),
                                  self.staging[id(r)], r.nbytes, dterms=self._terms(r))
        return deps

    def _copy_step(self, graph, deps, st: Copy, bases, homes) -> list:
        dst, src = self._addr(st.dst, bases, homes), self._addr(st.src, bases, homes)
        if st.view is None:
            return self._copy(graph, deps, dst, src, st.dst.nbytes,
                              self._terms(st.dst), self._terms(st.src))
        shape, strides, offset = st.view
        pad = 8 - len(shape)
        return self._support(graph, deps, "tj_view_copy",
                             [dst, src, st.dst.dtype.itemsize, len(shape),
                              *shape, *([1] * pad), *strides, *([0] * pad), offset],
                             threads=st.dst.size)

    def _loop(self, graph, deps, st: Loop, bases, homes) -> list:
        drv = self.drv
        homes = dict(homes)
        for c in st.carries:   # the carry lives in its first buffer; the body writes the second
            homes[id(c.cur)] = self._base(c.bufs[0], bases, homes)
            homes[id(c.nxt)] = self._base(c.bufs[1], bases, homes)
        for c in st.carries:
            deps = self._copy(graph, deps, homes[id(c.cur)], self._addr(c.init, bases, homes),
                              c.init.nbytes, sterms=self._terms(c.init))
        handle = drv.conditional_handle(graph)
        ctr = self.counter[id(st)]
        if st.length is not None:
            deps = self._support(graph, deps, "tj_loop_start",
                                 [ctr, st.length, int(st.reverse), handle])
        else:
            deps = self._steps(graph, deps, st.cond, bases, homes)
            deps = self._support(graph, deps, "tj_while_test",
                                 [self._addr(st.pred, bases, homes), handle])
        node, body = drv.add_conditional_node(graph, deps, handle, COND_WHILE)
        inner = self._steps(body, [], st.body, bases, homes)
        for c in st.carries:   # the next carry back into the first buffer (unless in place)
            if c.bufs[1] is not c.bufs[0]:
                inner = self._copy(body, inner, homes[id(c.cur)], homes[id(c.nxt)],
                                   c.init.nbytes)
        if st.length is not None:
            self._support(body, inner, "tj_loop_next", [ctr, st.length, int(st.reverse),
                                                        handle])
        else:
            inner = self._steps(body, inner, st.cond, bases, homes)
            self._support(body, inner, "tj_while_test",
                          [self._addr(st.pred, bases, homes), handle])
        return [node]

    def _switch(self, graph, deps, st: Switch, bases, homes) -> list:
        drv = self.drv
        handles = [drv.conditional_handle(graph) for _ in st.branches]
        deps = self._support(graph, deps, "tj_switch_select",
                             [self._addr(st.index, bases, homes), len(handles),
                              *handles, *([0] * (MAX_BRANCHES - len(handles)))])
        for h, branch in zip(handles, st.branches):
            node, body = drv.add_conditional_node(graph, deps, h, COND_IF)
            self._steps(body, [], branch, bases, homes)
            deps = [node]
        return deps
