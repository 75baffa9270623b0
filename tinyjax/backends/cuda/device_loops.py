"""A program with loops and branches as one CUDA graph: loops and branches run device-side
(conditional graph nodes, CUDA 12.4 on), with no host round trip per iteration and no
``while`` predicate copied back.

The graph is built node by node for one call's addresses (its arguments and arena):

* a kernel launch is a kernel node over fixed addresses;
* a scan is ``tj_loop_start`` (counter to its first index, the loop's condition set to
  ``length > 0``), then a ``while`` node whose body runs the body's steps and ends with a
  ``tj_copies`` node that also steps the loop (the counter on, the condition set to
  ``it < length``);
* a ``while`` loop runs its predicate's steps and ``tj_while_test`` (the condition set from
  the predicate, on the device) before the node and again at the end of its body;
* a ``cond`` is ``tj_switch_select`` (one condition per branch set from the clamped index)
  and an ``if`` node per branch.

A graph's kernels take fixed addresses, so what the host walk does with pointers is done
on the device here: a carry lives in its first buffer -- the body reads it there, writes
its next value into the second and a copy brings it back (unless it is updated in place);
an operand at a loop's counter (a scan's ``xs[i]`` or ``ys[i]``) is passed at its buffer's
start with a table of the counters and strides that move it (the kernel's last parameter,
``tj_at``; the kernel reads the counters on the device), and copies read them the same way
(``tj_copies``).  A graph node costs microseconds however little it moves, so the copies
between two kernels share one ``tj_copies`` node (up to eight, in order), and at a scan
body's end that node also steps the loop.  Loop counters and staging buffers
belong to the loaded program and are shared by its graphs: every graph runs on the one
default stream, one after the other.

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
MAX_COPIES = 8          # tj_copies' TJ_COPIES
ONE_BLOCK_BYTES = 1 << 16  # a copies node up to this size is one block (ordered copies)

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
/* Up to TJ_COPIES copies -- dst[0:nbytes] = src[0:nbytes], each at an offset of
   counter[1] * stride per term (a null counter adds nothing) -- then, where next[0] (a
   loop's counters) is set, the loop's next iteration: the counter on and its condition
   set.  One block runs the copies in order (a copy may read what an earlier one wrote) and
   is the only launch that moves a counter (every thread has read it before thread 0 moves
   it); several blocks run copies that are independent. */
#define TJ_COPIES 8
struct tj_copy_list {
  tj_i64 n, next[4];      /* next: counters, length, reverse, condition handle */
  tj_i64 c[TJ_COPIES][11];  /* dst, src, nbytes, d0, ds0, d1, ds1, s0, ss0, s1, ss1 */
};
extern "C" __global__ void tj_copies(const tj_copy_list L) {
  tj_i64 stride = (tj_i64)gridDim.x * blockDim.x;
  tj_i64 t = (tj_i64)blockIdx.x * blockDim.x + threadIdx.x;
  for (int k = 0; k < L.n; k++) {
    const tj_i64 *c = L.c[k];
    char *dst = (char *)c[0];
    const char *src = (const char *)c[1];
    tj_i64 nbytes = c[2];
    if (c[3]) dst += ((const tj_i64 *)c[3])[1] * c[4];
    if (c[5]) dst += ((const tj_i64 *)c[5])[1] * c[6];
    if (c[7]) src += ((const tj_i64 *)c[7])[1] * c[8];
    if (c[9]) src += ((const tj_i64 *)c[9])[1] * c[10];
    if (((tj_u64)dst | (tj_u64)src | (tj_u64)nbytes) % 16 == 0) {
      for (tj_i64 j = t; j < nbytes / 16; j += stride)
        ((int4 *)dst)[j] = ((const int4 *)src)[j];
    } else {
      for (tj_i64 j = t; j < nbytes; j += stride) dst[j] = src[j];
    }
    if (gridDim.x == 1) __syncthreads();   /* one block: the copies in order */
  }
  if (L.next[0]) {
    if (t == 0) {
      tj_i64 *ctr = (tj_i64 *)L.next[0], length = L.next[1];
      tj_i64 it = ctr[0] + 1;
      ctr[0] = it;
      ctr[1] = L.next[2] ? length - 1 - it : it;
      cudaGraphSetConditional((tj_u64)L.next[3], it < length);
    }
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
SUPPORT_KERNELS = ("tj_loop_start", "tj_while_test", "tj_switch_select", "tj_copies",
                   "tj_view_copy")


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
        self.at: dict = {}   # the tj_at table of each launch with an operand at a counter
        for st in walk_steps(program.steps):
            if isinstance(st, Launch) and any(r.terms for r in st.refs):
                table = np.array([v for r in st.refs for v in self._terms(r)], np.int64)
                self.at[id(st)] = self._device(alloc, table.nbytes)
                drv.htod(self.at[id(st)], table.ctypes.data, table.nbytes)
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
            return homes[id(b)][0]
        if b.kind in (CONST, INPUT, OUTPUT):
            return bases[self.index[id(b)]]
        return bases[self.n_args] + b.index

    def _addr(self, r: Ref, bases: tuple, homes: dict) -> int:
        """The fixed address of ``r`` (its loop terms not included)."""
        return self._base(r.base, bases, homes) + r.offset * r.dtype.itemsize

    def _extent(self, r: Ref, bases: tuple, homes: dict) -> tuple[int, int]:
        """The bytes ``r`` may touch: its own, or its whole buffer where a counter moves it."""
        if r.terms:
            lo = self._base(r.base, bases, homes)
            size = homes[id(r.base)][1] if isinstance(r.base, Pointer) else r.base.nbytes
            return lo, lo + size
        lo = self._addr(r, bases, homes)
        return lo, lo + r.nbytes

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
        self._pending: list = []   # copies not yet in a node (see _flush)
        self._ordered = False      # whether one of them depends on an earlier one
        try:
            deps = self._steps(graph, [], self.program.steps, bases, {})
            self._flush(graph, deps)
            return drv.instantiate(graph)
        except BaseException:
            drv.lib.cuGraphDestroy(graph)
            raise

    def _kernel(self, graph, deps: list, fn, grid, block, shared, values: list,
                one_struct: bool = False) -> list:
        """A kernel node after ``deps`` (the pending copies first), its parameters 64-bit
        ``values`` -- or, with ``one_struct``, one parameter: a struct of them."""
        deps = self._flush(graph, deps)
        vals = (ctypes.c_uint64 * max(len(values), 1))(*[int(v) & (2**64 - 1) for v in values])
        base = ctypes.addressof(vals)
        n = 1 if one_struct else len(values)
        ptrs = (ctypes.c_void_p * max(n, 1))(*[base + 8 * i for i in range(n)])
        self._keep.append((vals, ptrs))
        return [self.drv.add_kernel_node(graph, deps, fn, grid, block, shared,
                                         ctypes.cast(ptrs, ctypes.c_void_p))]

    def _support(self, graph, deps, name: str, values: list, threads: int = 1) -> list:
        blocks = max(1, min(1024, -(-threads // 256)))
        return self._kernel(graph, deps, self.support[name], (blocks, 1, 1),
                            (256 if threads > 1 else 1, 1, 1), 0, values)

    def _copy(self, graph, deps, dst: int, src: int, nbytes: int, dterms=(0, 0, 0, 0),
              sterms=(0, 0, 0, 0), extents=None) -> list:
        """A copy, kept pending so that the copies between two kernels share one node.
        ``extents``: the (lo, hi) bytes of its destination and source where a counter
        moves them.  A node of at most ``ONE_BLOCK_BYTES`` is one block, which runs its
        copies in order; a larger one runs them side by side, so a copy that reads or
        overwrites what a pending one writes starts a node of its own there."""
        if nbytes == 0:
            return deps
        dext, sext = extents or ((dst, dst + nbytes), (src, src + nbytes))
        overlap = lambda a, b: a[0] < b[1] and b[0] < a[1]  # noqa: E731
        ordered = any(overlap(sext, p_d) or overlap(dext, p_d) or overlap(dext, p_s)
                      for *_, (p_d, p_s) in self._pending)
        total = nbytes + sum(p[1] for p in self._pending)
        if len(self._pending) == MAX_COPIES or (
                (ordered or self._ordered) and total > ONE_BLOCK_BYTES):
            deps = self._flush(graph, deps)
            ordered = False
        self._ordered = self._ordered or ordered
        self._pending.append(([dst, src, nbytes, *dterms, *sterms], nbytes, (dext, sext)))
        return deps

    def _flush(self, graph, deps: list, step_loop: tuple = ()) -> list:
        """The pending copies as one ``tj_copies`` node; with ``step_loop`` (its counters,
        length, reverse, condition handle) the loop's next iteration too, in the same node
        where the copies fit one block."""
        pending, self._pending, self._ordered = self._pending, [], False
        nbytes = sum(p[1] for p in pending)
        if step_loop and nbytes > ONE_BLOCK_BYTES:
            deps = self._copies(graph, deps, pending, ())
            pending = []
        return self._copies(graph, deps, pending, step_loop) if pending or step_loop else deps

    def _copies(self, graph, deps, pending: list, step_loop: tuple) -> list:
        values = [len(pending), *(step_loop or (0, 0, 0, 0))]
        for fields, _, _ in pending:
            values += fields
        values += [0] * (11 * (MAX_COPIES - len(pending)))
        nbytes = sum(p[1] for p in pending)
        if nbytes <= ONE_BLOCK_BYTES:
            grid, block = 1, min(1024, max(32, -(-nbytes // 16)))
        else:
            grid, block = min(1024, -(-max(p[1] for p in pending) // 4096)), 256
        return self._kernel(graph, deps, self.support["tj_copies"], (grid, 1, 1),
                            (block, 1, 1), 0, values, one_struct=True)

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
        ptrs = [self._addr(r, bases, homes) for r in st.refs] + [self.at.get(id(st), 0)]
        for fn, grid, block, shared, _, _ in self.kernels[id(st.kernel)].steps:
            deps = self._kernel(graph, deps, fn, grid, block, shared, ptrs)
        return deps

    def _copy_step(self, graph, deps, st: Copy, bases, homes) -> list:
        dst, src = self._addr(st.dst, bases, homes), self._addr(st.src, bases, homes)
        if st.view is None:
            return self._copy(graph, deps, dst, src, st.dst.nbytes,
                              self._terms(st.dst), self._terms(st.src),
                              (self._extent(st.dst, bases, homes),
                               self._extent(st.src, bases, homes)))
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
            homes[id(c.cur)] = (self._base(c.bufs[0], bases, homes), c.bufs[0].nbytes)
            homes[id(c.nxt)] = (self._base(c.bufs[1], bases, homes), c.bufs[1].nbytes)
        for c in st.carries:
            deps = self._copy(graph, deps, homes[id(c.cur)][0],
                              self._addr(c.init, bases, homes), c.init.nbytes,
                              sterms=self._terms(c.init), extents=(
                                  (homes[id(c.cur)][0], homes[id(c.cur)][0] + c.init.nbytes),
                                  self._extent(c.init, bases, homes)))
        handle = drv.conditional_handle(graph)
        ctr = self.counter[id(st)]
        if st.length is not None:
            deps = self._support(graph, deps, "tj_loop_start",
                                 [ctr, st.length, int(st.reverse), handle])
        else:
            deps = self._steps(graph, deps, st.cond, bases, homes)
            deps = self._support(graph, deps, "tj_while_test",
                                 [self._addr(st.pred, bases, homes), handle])
        deps = self._flush(graph, deps)
        node, body = drv.add_conditional_node(graph, deps, handle, COND_WHILE)
        inner = self._steps(body, [], st.body, bases, homes)
        for c in st.carries:   # the next carry back into the first buffer (unless in place)
            if c.bufs[1] is not c.bufs[0]:
                inner = self._copy(body, inner, homes[id(c.cur)][0], homes[id(c.nxt)][0],
                                   c.init.nbytes)
        if st.length is not None:   # the last copies and the counter's step: one node
            self._flush(body, inner, (ctr, st.length, int(st.reverse), handle))
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
            self._flush(body, self._steps(body, [], branch, bases, homes))
            deps = [node]
        return deps
