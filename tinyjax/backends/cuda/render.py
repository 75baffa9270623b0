"""CUDA C rendering of the kernel IR: the C renderer of :mod:`tinyjax.backends.cstyle` (atoms,
ALU ops, SSA bodies) with GPU launch geometry and loop structure per kernel kind.

:meth:`CUDALanguage.plan` picks the structure of each kernel from its shapes; the rendering
and :meth:`CUDALanguage.launch_dims` (grid, block, dynamic shared bytes: what the runtime
launches) both follow that plan:

* elementwise: a grid-stride loop, one point per thread -- or, where the innermost axis is
  contiguous and 16-byte aligned in the store (and the size divides), ``VECTOR`` points per
  thread with 16-byte vector loads/stores (``tj_vec``) for every load that allows it;
* reductions (``pre`` stages and ``full_epilogue`` too: softmax is one kernel): ``W`` threads
  per output point, each accumulating a strided part of the reduce space, combined by warp
  shuffles (``__shfl_xor_sync``) and, across warps, through shared memory, so that every one
  of the ``W`` threads ends with the final accumulator (later stages and a full epilogue run
  over the reduce space again, spread over the same threads; where each thread's share of
  the elements those passes all read fits in ``ROW_CACHE`` bytes, the first pass keeps them
  in registers and the later ones read them there).  Two layouts: ``rows``
  (consecutive threads walk the reduce space: a row sum; four points per step with 16-byte
  loads where every load runs contiguously along the innermost reduce axis) and ``cols``
  (consecutive threads are consecutive output points: a column sum, coalesced across
  threads; ``W = 1`` is one thread per output with a serial loop); the output axis stored
  with unit stride runs innermost (``Plan.order``).  With few outputs and a long reduce
  space (a full sum) the reduce space is split over ``G`` blocks per output, whose partial
  results go to a module-global array; the last block to finish (an atomic counter)
  combines them and runs the epilogue;
* every kernel starts with ``tj_wait_for_previous_kernel()`` (``griddepcontrol.wait``): the
  runtime launches kernels so that they may be scheduled while their predecessor finishes;
* index arithmetic is 32-bit where every address fits
  (:func:`~tinyjax.backends.cuda.launch.fits_int32`);
* sort: one block per row, a stable bottom-up merge sort of the indices in which each
  element finds its place by binary search in the other run (rows up to ``SORT_SHARED``
  in shared memory, longer ones in a module-global scratch area);
* scatter: several launches over the whole GPU (:meth:`CUDALanguage.launches`; each one
  ordered after the previous on the stream, which is the grid-wide barrier between phases):
  ``<name>_copy`` runs ``body`` (the copy of the operand) as an elementwise kernel (vectorised
  where that path would be), then the updates, one per thread of a grid-stride loop over
  ``scatter_shape``: ``add`` with ``atomicAdd``, integer ``min``/``max`` with ``atomicMin``/
  ``Max``, other combines of 4/8-byte values with an ``atomicCAS`` loop (floating-point
  ``add``/``mul`` then round in an unspecified order, as JAX on GPUs).  ``replace`` is
  parallel but deterministic (the last update in C order wins): ``<name>_mark`` takes the
  ``atomicMax`` of the update number per target into a module-global winner array (which the
  copy launch resets to 0, so every call starts clean), then ``<name>`` writes each update
  whose number won.  Combines of 1/2-byte values run serially in one thread after the copy.

Module-global arrays (split reductions, long sorts, ``replace`` scatters' winner array)
assume one launch of a kernel at a time (one stream): two calls of the same kernel running
concurrently on two streams would share them.  Vectorised kernels check their pointers'
alignment once at run time (a view may start inside an allocation) and otherwise move lane
by lane.
"""
from __future__ import annotations

import copy
from typing import NamedTuple, Optional

import numpy as np

from tinyjax.backends.cstyle import PRELUDE, CStyleLanguage, _half, _is_float
from tinyjax.backends.cuda.gemm import gemm_launch_dims, gemm_supported, render_gemm
from tinyjax.backends.cuda.launch import LaunchDims, fits_int32
from tinyjax.compiler.kernel import Kernel, UOp, _is_true, uop_deps
from tinyjax.compiler.shape.symbolic import Var, as_affine

__all__ = ["CUDALanguage", "CUDA_PRELUDE", "render_source", "LaunchDims", "Plan"]

BLOCK = 256
MAX_GRID_X = 2 ** 31 - 1


class Plan(NamedTuple):
    """How a kernel runs: ``kind`` (elementwise, reduce, sort, scatter, gemm), threads per
    block, blocks, and per kind: ``lanes`` (elementwise points per thread), ``layout``/``W``/
    ``G`` (reduce: thread layout, threads per output point, blocks per output group) and
    ``order`` (reduce: the output axes in the order their flat index runs over them),
    ``mode`` (scatter: how updates combine; sort: where the indices live).  A scatter's
    ``block``/``grid`` are those of its update launch, ``lanes`` those of its copy launch."""
    kind: str
    block: int
    grid: int
    lanes: int = 1
    layout: str = ""
    W: int = 1
    G: int = 1
    mode: str = ""
    order: tuple = ()


_TYPES = r"""
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;
typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif
__device__ __forceinline__ void tj_memcpy(void *d, const void *s, unsigned long n) {
  for (unsigned long i = 0; i < n; i++) ((char *)d)[i] = ((const char *)s)[i];
}
/* N consecutive elements moved by one (16-byte where N * sizeof(T) == 16) access; element
   by element where the pointer is not aligned for it (a view into a row of a buffer) */
template <typename T, int N> struct alignas(sizeof(T) * N) tj_vec { T v[N]; };
template <typename T, int N>
__device__ __forceinline__ tj_vec<T, N> tj_ld(const T *__restrict__ p, bool aligned) {
  if (aligned) return *(const tj_vec<T, N> *)p;
  tj_vec<T, N> r;
  for (int j = 0; j < N; j++) r.v[j] = p[j];
  return r;
}
template <typename T, int N>
__device__ __forceinline__ void tj_st(T *__restrict__ p, const tj_vec<T, N> &x, bool aligned) {
  if (aligned) { *(tj_vec<T, N> *)p = x; return; }
  for (int j = 0; j < N; j++) p[j] = x.v[j];
}
/* a select that stays one: the value (a masked load from a clamped address) is computed
   unconditionally, so that the loads of an unrolled loop are all in flight at once (as a
   plain ?: the compiler turns a select of a load back into a branch around the load) */
__device__ __forceinline__ float tj_sel_f(int c, float x, float y) {
  float r;
  asm("{ .reg .pred p; setp.ne.s32 p, %1, 0; selp.f32 %0, %2, %3, p; }"
      : "=f"(r) : "r"(c), "f"(x), "f"(y));
  return r;
}
__device__ __forceinline__ double tj_sel_d(int c, double x, double y) {
  double r;
  asm("{ .reg .pred p; setp.ne.s32 p, %1, 0; selp.f64 %0, %2, %3, p; }"
      : "=d"(r) : "r"(c), "d"(x), "d"(y));
  return r;
}
/* the first statement of every kernel: launched as a programmatic dependent launch (sm_90
   on), a kernel may start while the one before it on the stream finishes, so it waits
   until that one's writes are visible (and so everything before it: that one waited too) */
__device__ __forceinline__ void tj_wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
/* the bits of a value as another type of the same size */
template <typename D, typename S> __device__ __forceinline__ D tj_as(S s) {
  union { S s; D d; } u; u.s = s; return u.d;
}
"""


def _device_helpers() -> str:
    """The C prelude's scalar helpers (bit casts, 16-bit floats, special functions) as
    device functions: one source of truth for their semantics."""
    start = PRELUDE.index("static inline uint8_t tj_bc_int8_uint8")
    text = PRELUDE[start:]
    lines = [ln for ln in text.split("\n") if not ln.startswith("#pragma omp")]
    text = "\n".join(lines)
    text = text.replace("static inline ", "__device__ __forceinline__ ")
    text = text.replace("memcpy(", "tj_memcpy(")
    text = text.replace("static const double", "const double")
    return text


CUDA_PRELUDE = _TYPES + _device_helpers()


class _Raw(str):
    """A CONST uop argument rendered verbatim (a lane of a vector load)."""


def _prod(xs) -> int:
    return int(np.prod(list(xs), dtype=np.int64))


def _pow2ceil(n: int) -> int:
    return 1 << max(int(n) - 1, 0).bit_length()


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def _coef(index, axis: Optional[int]) -> Optional[int]:
    """The coefficient of loop variable ``i<axis>`` in an affine index (None: not affine)."""
    aff = as_affine(index)
    if aff is None or axis is None:
        return None
    return {v.name: c for v, c in aff[0].items()}.get(f"i{axis}", 0)


class CUDALanguage(CStyleLanguage):
    """CUDA spellings: kernels are ``extern "C" __global__`` over one pointer per buffer."""

    kernel_prefix = 'extern "C" __global__ '
    index_type = "long"  # 64-bit on the device as on the (LP64) host
    sms = 132            # streaming multiprocessors (H100): how many blocks fill the GPU
    VECTOR = 4           # elementwise points per thread on the vectorised path
    ROW_ELEMS = 16       # reduce elements per thread before more threads join an output
    MAX_W = 512          # threads per output point
    ROW_CACHE = 128      # most bytes per thread kept in registers between reduce passes
    COLS_MAX_W = 8       # ... when threads run along the outputs: a warp spans 32 of them
    COLS_MAX_G = 256     # ... and the most blocks sharing one output's reduction
    SORT_SHARED = 4096   # longest row sorted in shared memory
    SORT_SCRATCH = 1 << 22  # indices of the global scratch area for longer rows

    # ---- spellings ---------------------------------------------------------------------------
    def clz(self, T, a, bits):
        # __clzll(0) is 64, so zero needs no test
        return f"(({T})(__clzll((long long)(unsigned long long)(uint{bits}_t){a})-{64 - bits}))"

    def mulhi(self, T, a, b, xt):
        if xt.itemsize == 8:
            fn = "__mul64hi" if xt.kind == "i" else "__umul64hi"
            return f"(({T}){fn}({a},{b}))"
        return super().mulhi(T, a, b, xt)

    def alu(self, op, dt, args, arg_dts):
        xt = np.dtype(arg_dts[0])
        if op == "population_count":
            return f"(({self.type(dt)})__popcll((unsigned long long)(uint{xt.itemsize * 8}_t){args[0]}))"
        if op == "is_finite" and _is_float(xt):
            big = "3.4028234663852886e38f" if self.type(xt) == "float" else "1.7976931348623157e308"
            return f"({self.fn('fabs', xt)}({args[0]})<={big})"
        return super().alu(op, dt, args, arg_dts)

    def const(self, value, dt) -> str:
        if isinstance(value, _Raw):
            return str(value)
        return super().const(value, dt)

    def kernel_header(self, k: Kernel, block: Optional[int] = None) -> list[str]:
        """The comment and signature of ``k``; with ``block``, ``__launch_bounds__(block)``
        (registers are budgeted for that many threads)."""
        head = []
        if k.source_lines:
            head.append("/* " + k.name + " fuses: " +
                        ", ".join(k.source_lines).replace("*/", "* /") + " */")
        bounds = f"__launch_bounds__({block}) " if block else ""
        head.append(f"{self.kernel_prefix}void {bounds}{k.name}({', '.join(self._params(k))}) {{")
        head.append("  tj_wait_for_previous_kernel();")
        return head

    def _params(self, k: Kernel, slots=None) -> list[str]:
        params = []
        for slot, (dt, _) in enumerate(k.bufs):
            if slots is None or slot in slots:
                q = "" if slot < k.n_outs and slots is None else "const "
                params.append(f"{q}{self.storage(dt)} *__restrict__ data{slot}")
        return params

    def _indices(self, flat: str, names: list[str], sizes: list[int], ind: str) -> list[str]:
        """Declarations of ``names`` (C order over ``sizes``) from the flat index ``flat``."""
        out, it = [], self.index_type
        for j in range(len(names) - 1, -1, -1):
            if j == 0:
                out.append(f"{ind}[[maybe_unused]] const {it} {names[j]} = {flat};")
            else:
                out.append(f"{ind}[[maybe_unused]] const {it} {names[j]} = {flat} % {sizes[j]};")
                flat = f"({flat} / {sizes[j]})"
        return out

    def _shfl(self, fn: str, v: str, dt, arg: str) -> str:
        """A warp shuffle of ``v`` (a value of ``dt``'s compute type); narrow ints go as int."""
        T = self.type(dt)
        if np.dtype(dt).itemsize < 4 and not _half(dt):
            return f"(({T}){fn}(0xffffffffu, (int){v}, {arg}))"
        return f"{fn}(0xffffffffu, {v}, {arg})"

    # ---- plans -------------------------------------------------------------------------------
    def plan(self, k: Kernel) -> Plan:
        """The structure and launch size of ``k`` (see the module docstring)."""
        if k.gemm is not None and gemm_supported(k):
            return Plan("gemm", 0, 0)
        if k.sort is not None:
            return self._sort_plan(k)
        if k.scatter_shape is not None:
            mode = self._scatter_mode(k)
            nu = _prod(k.scatter_shape)
            lanes = self.plan(self._scatter_copy(k)).lanes
            if mode == "serial":
                return Plan("scatter", 1, min(nu, 1), lanes=lanes, mode=mode)
            return Plan("scatter", BLOCK, min(_cdiv(nu, BLOCK), MAX_GRID_X), lanes=lanes,
                        mode=mode)
        if k.reduce_op is not None:
            return self._reduce_plan(k)
        n = _prod(k.full_shape)
        lanes = self.VECTOR if self._vector_store(k) else 1
        return Plan("elementwise", BLOCK, min(_cdiv(n // lanes, BLOCK), MAX_GRID_X), lanes=lanes)

    def launch_dims(self, k: Kernel) -> LaunchDims:
        """The launch geometry of the function ``k.name`` of ``render_kernel(k)``: (grid,
        block, dynamic shared bytes) -- of a scatter, its last (update) launch."""
        p = self.plan(k)
        if p.kind == "gemm":
            return gemm_launch_dims(k)
        return LaunchDims((p.grid, 1, 1), (p.block, 1, 1), 0)

    def launches(self, k: Kernel) -> list[tuple[str, LaunchDims]]:
        """The functions of ``render_kernel(k)`` to launch, in order, each with its geometry
        and all taking the kernel's buffers: one (``k.name``) unless a kind needs a
        grid-wide step between phases (each launch is ordered after the previous one)."""
        p = self.plan(k)
        if p.kind == "gemm":
            from tinyjax.backends.cuda.gemm import gemm_launches
            return gemm_launches(k)
        out = [(k.name, self.launch_dims(k))]
        if p.kind == "scatter":
            steps = [self._scatter_copy(k)]
            if p.mode == "winner":
                steps.append(self._scatter_step(k, "_mark"))
            out = [(s.name, self._scatter_step_dims(k, s)) for s in steps] + out
        return out

    def _scatter_copy(self, k: Kernel) -> Kernel:
        """The copy phase of scatter ``k``: ``body`` as an elementwise kernel over its buffers."""
        return Kernel(f"{k.name}_copy", k.bufs, k.buf_ids, k.full_shape, (), None, None, [],
                      k.body)

    def _scatter_step(self, k: Kernel, suffix: str) -> Kernel:
        """A kernel named ``<k.name><suffix>`` with ``k``'s buffers (a scatter phase's header)."""
        return Kernel(f"{k.name}{suffix}", k.bufs, k.buf_ids, k.full_shape, (), None, None, [],
                      [], scatter_shape=k.scatter_shape, sbody=k.sbody)

    def _scatter_step_dims(self, k: Kernel, step: Kernel) -> LaunchDims:
        """The geometry of a phase before a scatter's last launch."""
        if step.scatter_shape is None:  # the copy (with the winner reset in its grid-stride loop)
            p = self.plan(step)
            grid = p.grid
            if self._scatter_mode(k) == "winner":
                grid = max(grid, min(_cdiv(k.bufs[0][1], BLOCK), MAX_GRID_X))
            return LaunchDims((grid, 1, 1), (p.block, 1, 1), 0)
        return self.launch_dims(k)  # the mark: one update per thread like the last phase

    def _vector_ok(self, index, valid, last: int) -> bool:
        """Whether ``VECTOR`` consecutive points along ``i<last>`` (the first a multiple of
        ``VECTOR``) are consecutive, aligned elements: unit stride along it, every other
        stride and the offset multiples of ``VECTOR``, no mask."""
        aff = as_affine(index)
        if aff is None or not _is_true(valid):
            return False
        coefs, off = aff
        V = self.VECTOR
        c = {v.name: x for v, x in coefs.items()}
        return (c.get(f"i{last}") == 1 and off % V == 0 and
                all(x % V == 0 for n, x in c.items() if n != f"i{last}"))

    def _vector_store(self, k: Kernel) -> bool:
        full = k.full_shape
        stores = [u for u in k.body if u.op == "STORE"]
        if not full or full[-1] % self.VECTOR or len(stores) != 1 or k.body[-1].op != "STORE":
            return False
        return self._vector_ok(k.body[-1].arg[1], 1, len(full) - 1)

    def _reduce_plan(self, k: Kernel) -> Plan:
        full, red = k.full_shape, set(k.reduce_axes)
        outer = [a for a in range(len(full)) if a not in red]
        O, R = _prod(full[a] for a in outer), _prod(full[a] for a in red)
        ro = next((a for a in reversed(sorted(red)) if full[a] > 1), None)
        loads = [u.arg[1] for rb in [s[2] for s in k.pre] + [k.rbody] for u in rb
                 if u.op == "LOAD" and not u.srcs]
        outer, oo = self._output_order(k, outer, loads)
        rows = cols = 0
        for index in loads:
            cr, co = _coef(index, ro), _coef(index, oo)
            rows += cr is not None and abs(cr) <= 1
            cols += co is not None and abs(co) <= 1
        busy = self.sms * 2048  # threads that fill the GPU
        if oo is not None and cols > rows:
            # consecutive threads on consecutive outputs; more threads per output (up to
            # COLS_MAX_W) while that leaves the GPU idle, then blocks over the rows
            W = 1
            while W < self.COLS_MAX_W and 2 * W <= R and O * W < busy:
                W *= 2
            T, layout, least, gmax = BLOCK, "cols", W * 8, self.COLS_MAX_G
        else:
            W = min(_pow2ceil(_cdiv(max(R, 1), self.ROW_ELEMS)), self.MAX_W)
            while W < self.MAX_W and W < R and O * W < busy:
                W *= 2
            T, layout, least, gmax = max(W, BLOCK), "rows", W * 32, MAX_GRID_X
        P = T // W
        blocks = _cdiv(O, P)
        G = 1
        if not k.pre and not k.full_epilogue and 0 < blocks < 2 * busy // T:
            # each block's share of an output's reduction: at least `least` elements; at
            # most `gmax` shares (the last block of a group adds them up with W threads)
            G = max(1, min(_cdiv(2 * busy // T, blocks), R // least, gmax))
        if blocks * G > MAX_GRID_X:
            raise NotImplementedError(f"cuda: {k.name}: {O} outputs exceed the grid")
        return Plan("reduce", T, blocks * G, layout=layout, W=W, G=G, order=tuple(outer))

    @staticmethod
    def _output_order(k: Kernel, outer: list, loads: list) -> tuple[list, Optional[int]]:
        """The output axes in the order the flat output index runs over them, and the
        innermost (consecutive threads along it in a "cols" layout): the kernel's last, or
        the axis the result is stored along with unit stride when no fewer loads read along
        it with stride at most 1 (a convolution's output channels, NHWC: coalesced stores,
        and the input window read once for all channels)."""
        full = k.full_shape
        live = [a for a in outer if full[a] > 1]
        if not live:
            return outer, None
        store = k.body[-1].arg[1] if k.body and k.body[-1].op == "STORE" else None

        def score(a):
            n = sum(c is not None and abs(c) <= 1 for c in (_coef(i, a) for i in loads))
            return n + (store is not None and _coef(store, a) == 1)
        best = max(live, key=lambda a: (score(a), a == live[-1]))
        return [a for a in outer if a != best] + [best], best

    def _sort_plan(self, k: Kernel) -> Plan:
        axis = k.sort[0]
        n = k.full_shape[axis]
        rows = _prod(k.full_shape) // n if n else 0
        if n <= self.SORT_SHARED:
            return Plan("sort", min(1024, max(32, _pow2ceil(n))), min(rows, MAX_GRID_X),
                        mode="shared")
        return Plan("sort", 1024, min(rows, max(1, self.SORT_SCRATCH // n)), mode="global")

    def _scatter_mode(self, k: Kernel) -> str:
        """How the updates of a scatter combine into the output (see the module docstring)."""
        sc = k.sbody[-1]
        dt = np.dtype(k.sbody[sc.srcs[1]].dtype)
        if sc.arg == "replace":
            # the per-element winner array is module memory: not for huge outputs
            return "winner" if _prod(k.scatter_shape) < 2 ** 32 - 1 and k.bufs[0][1] <= 1 << 28 \
                else "serial"
        if dt.itemsize < 4 or _half(dt) or dt == np.bool_:
            return "serial"
        if sc.arg == "add" and (dt.kind in "iu" or dt.itemsize == 4 or dt == np.float64):
            return "atomic"
        if sc.arg in ("max", "min") and dt.kind in "iu":
            return "atomic"
        return "cas"

    # ---- rendering ---------------------------------------------------------------------------
    def render_kernel(self, k: Kernel, parallel_threshold: int = 0) -> str:
        p = self.plan(k)
        if p.kind == "gemm":
            return render_gemm(self, k)
        lang = self
        if p.kind in ("elementwise", "reduce") and fits_int32(k, p.grid * p.block):
            lang = copy.copy(self)
            lang.index_type = "int"
        return "\n".join(getattr(lang, f"_render_{p.kind}")(k, p) + ["}"])

    def _render_elementwise(self, k: Kernel, p: Plan) -> list[str]:
        it, full, V = self.index_type, k.full_shape, p.lanes
        n = _prod(full)
        loop = (f"  for ({it} gid = ({it})blockIdx.x * blockDim.x + threadIdx.x; gid < {n // V}; "
                f"gid += ({it})gridDim.x * blockDim.x) {{")
        names = [f"i{a}" for a in range(len(full))]
        if V == 1:
            L = self.kernel_header(k, p.block) + [loop]
            L.extend(self._indices("gid", names, list(full), "    "))
            L.extend(self.render_body(k.body, "v", None, k.bufs, "    ")[0])
            return L + ["  }"]
        # V points per thread along the last axis: vector loads and store, then the body once
        # per lane in its own scope, every vectorised load replaced by its lane
        last = len(full) - 1
        which = [i for i, u in enumerate(k.body) if u.op == "LOAD" and not u.srcs
                 and self._vector_ok(u.arg[1], u.arg[2], last)]
        body, slots, loads = self._vectorise(k, k.body, which, f"i{last}", full[-1])
        ib = {f"i{last}": Var("ib", 0, max(full[-1] - V, 0))}  # the store's first lane
        st = body[-1]
        body[-1] = UOp("CAST", body[st.srcs[0]].dtype, st.srcs, None)
        S0 = self.storage(k.bufs[0][0])
        L = self.kernel_header(k, p.block)
        L.append(self._aligned(k, slots | {0}))
        L.append(loop)
        L.extend(self._indices("gid", names[:-1] + ["ib0"], list(full[:-1]) + [full[-1] // V],
                               "    "))
        L.append(f"    const {it} ib = ib0 * {V};")
        L.extend(loads)
        L.append(f"    tj_vec<{S0}, {V}> vs;")
        L.extend(self._per_lane(k, body, f"i{last}", "v", lambda j, val:
                                f"vs.v[{j}] = {self.store(k.bufs[0][0], val)};"))
        L.append(f"    tj_st<{S0}, {V}>(data0 + ({self.index(st.arg[1].substitute(ib))}), vs, aligned);")
        return L + ["  }"]

    def _vectorise(self, k: Kernel, uops: list, which: list, axis: str,
                   extent: int) -> tuple[list, set, list[str]]:
        """``VECTOR`` lanes along the loop variable ``axis``: the loads ``which`` of ``uops``
        become vector loads at ``ib`` (the first lane's point; declarations returned) and,
        in the returned body, constants holding one value per lane (see :meth:`_lane`);
        also the buffer slots they read."""
        V = self.VECTOR
        ib = {axis: Var("ib", 0, max(extent - V, 0))}
        body, slots, loads = list(uops), set(), []
        for i in which:
            u = body[i]
            slot = u.arg[0]
            dt = k.bufs[slot][0]
            S = self.storage(dt)
            slots.add(slot)
            loads.append(f"    const tj_vec<{S}, {V}> vl{i} = tj_ld<{S}, {V}>(data{slot} + "
                         f"({self.index(u.arg[1].substitute(ib))}), aligned);")
            body[i] = UOp("CONST", u.dtype, (), [_Raw(self.load(dt, f"vl{i}.v[{j}]"))
                                                 for j in range(V)])
        return body, slots, loads

    def _per_lane(self, k: Kernel, body: list, axis: str, prefix: str, consume) -> list[str]:
        """A body from :meth:`_vectorise` once per lane, each in its own scope with ``axis``
        at ``ib`` plus the lane; ``consume(lane, value)`` is the scope's last statement."""
        out = []
        for j in range(self.VECTOR):
            lane = [UOp(u.op, u.dtype, u.srcs, u.arg[j]) if u.op == "CONST" and
                    isinstance(u.arg, list) else u for u in body]
            out.append(f"    {{ [[maybe_unused]] const {self.index_type} {axis} = ib + {j};")
            lines, val = self.render_body(lane, prefix, None, k.bufs, "      ")
            out.extend(lines)
            out.append(f"      {consume(j, val)} }}")
        return out

    def _aligned(self, k: Kernel, slots) -> str:
        """``aligned``: whether every buffer of ``slots`` starts on a vector boundary (decided
        once per launch: a view may start inside an allocation)."""
        V = self.VECTOR
        return "  const bool aligned = " + " && ".join(
            f"(unsigned long)data{s} % {V * np.dtype(k.bufs[s][0]).itemsize} == 0"
            for s in sorted(slots)) + ";"

    def _vector_loads(self, k: Kernel, p: Plan) -> list[int]:
        """The loads of a "rows" reduction (no stages before it) that read ``VECTOR``
        consecutive, aligned elements along its innermost reduce axis (see
        :meth:`_vector_ok`); empty when that axis' extent is not a multiple of ``VECTOR``."""
        red = [a for a in range(len(k.full_shape)) if a in k.reduce_axes]
        if p.layout != "rows" or k.pre or not red or k.full_shape[red[-1]] % self.VECTOR:
            return []
        return [i for i, u in enumerate(k.rbody) if u.op == "LOAD" and not u.srcs
                and self._vector_ok(u.arg[1], u.arg[2], red[-1])]

    def _reduce_vectorised(self, k: Kernel, p: Plan, vec: list, red_names: list,
                           red_sizes: list) -> list[str]:
        """The reduction loop taking ``VECTOR`` consecutive points per step along the innermost
        reduce axis: the loads of ``vec`` as vector loads, then the body once per lane."""
        it, V, W = self.index_type, self.VECTOR, p.W
        last = red_names[-1]
        body, slots, loads = self._vectorise(k, k.rbody, vec, last, red_sizes[-1])
        op, dt = k.reduce_op, k.acc_dtype
        hi = "hi" if p.G > 1 else f"(active ? {_prod(red_sizes)} : 0)"
        lo = "lo + " if p.G > 1 else ""
        L = [self._aligned(k, slots),
             f"  {self.type(dt)} acc0 = {self.identity(op, dt)};",
             "  #pragma unroll 4",
             f"  for ({it} r = {lo}part * {V}; r < {hi}; r += {W * V}) {{"]
        L.extend(self._indices("r", red_names[:-1] + ["ib"], red_sizes, "    "))
        L.extend(loads)
        L.extend(self._per_lane(k, body, last, "r", lambda j, val:
                                f"acc0 = {self.combine(op, 'acc0', val, dt)};"))
        L.append("  }")
        L.extend(self._group_combine(p, op, dt, "acc0", "  "))
        return L

    def _group_combine(self, p: Plan, op: str, dt, v: str, ind: str) -> list[str]:
        """Combine ``v`` over the ``W`` threads of each output point; every one of them ends
        with the same result (combined in the same order)."""
        W, T = p.W, p.block
        P = T // W
        if W == 1:
            return []
        T_ = self.type(dt)
        if p.layout == "cols":
            return [f"{ind}{{ {T_} *sm = ({T_} *)tj_smem;",
                    f"{ind}  sm[tid] = {v};",
                    f"{ind}  __syncthreads();",
                    f"{ind}  {v} = sm[ol];",
                    f"{ind}  for (int j = 1; j < {W}; j++) "
                    f"{v} = {self.combine(op, v, f'sm[j * {P} + ol]', dt)};",
                    f"{ind}  __syncthreads(); }}"]
        L = []
        m = min(W, 32) // 2
        while m >= 1:  # every lane shuffles (a shuffle inside ?: would not run in all)
            L.append(f"{ind}{{ const {T_} t = {self._shfl('__shfl_xor_sync', v, dt, str(m))}; "
                     f"{v} = {self.combine(op, v, 't', dt)}; }}")
            m //= 2
        # max/min may keep either of two equal values (+-0): take the group leader's
        L.append(f"{ind}{v} = {self._shfl('__shfl_sync', v, dt, f'(tid & 31) & ~{min(W, 32) - 1}')};")
        if W > 32:
            nw = W // 32
            L += [f"{ind}{{ {T_} *sm = ({T_} *)tj_smem;",
                  f"{ind}  if ((tid & 31) == 0) sm[tid >> 5] = {v};",
                  f"{ind}  __syncthreads();",
                  f"{ind}  {v} = sm[ol * {nw}];",
                  f"{ind}  for (int j = 1; j < {nw}; j++) "
                  f"{v} = {self.combine(op, v, f'sm[ol * {nw} + j]', dt)};",
                  f"{ind}  __syncthreads(); }}"]
        return L

    def _render_reduce(self, k: Kernel, p: Plan) -> list[str]:
        it, full = self.index_type, k.full_shape
        red = [a for a in range(len(full)) if a in k.reduce_axes]
        outer = [a for a in range(len(full)) if a not in k.reduce_axes]
        O, R = _prod(full[a] for a in outer), _prod(full[a] for a in red)
        T, W, G = p.block, p.W, p.G
        P = T // W
        L = []
        if G > 1:
            L.append(f"__device__ {self.type(k.acc_dtype)} {k.name}_part[{_cdiv(O, P) * P * G}];")
            L.append(f"__device__ unsigned int {k.name}_count[{_cdiv(O, P)}];")
        L += self.kernel_header(k, T)
        L.append("  const int tid = threadIdx.x;")
        if p.layout == "rows":
            L.append(f"  const int part = tid % {W}, ol = tid / {W};")
        else:
            L.append(f"  const int part = tid / {P}, ol = tid % {P};")
        L.append(f"  const {it} ob = blockIdx.x / {G}, o = ob * {P} + ol;")
        L.append(f"  const bool active = o < {O};")
        if W > 1 and (p.layout == "cols" or W > 32):
            L.append(f"  __shared__ __align__(16) unsigned char tj_smem[{T * 8}];")
        order = p.order or outer
        L.extend(self._indices("o", [f"i{a}" for a in order], [full[a] for a in order], "  "))
        vec = self._vector_loads(k, p)
        V = self.VECTOR if vec else 1
        if G > 1:
            C = _cdiv(_cdiv(R, G), V) * V  # chunks start on vector boundaries
            L.append(f"  const {it} g = blockIdx.x % {G}, lo = g * {C}, "
                     f"hi = active ? (lo + {C} < {R} ? lo + {C} : {R}) : lo;")
        red_names, red_sizes = [f"i{a}" for a in red], [full[a] for a in red]
        stages = [(rb, op, dt, f"pacc{j}", f"p{j}_") for j, (op, dt, rb) in enumerate(k.pre)]
        stages.append((k.rbody, k.reduce_op, k.acc_dtype, "acc0", "r"))
        cache = self._row_cache(k, p, R)
        cached: set = set()  # the cached loads filled by an earlier pass
        for key, n in cache.items():
            L.append(f"  {self.storage(k.bufs[key[0]][0])} c{n}[{R // W}];")
        if vec:
            L.extend(self._reduce_vectorised(k, p, vec, red_names, red_sizes))
        for rbody, op, dt, acc, prefix in ([] if vec else stages):
            L.append(f"  {self.type(dt)} {acc} = {self.identity(op, dt)};")
            fills = []
            if cache:
                rbody, fills = self._from_row_cache(k, rbody, cache, cached)
                L.extend(self._row_cache_loop(W, R))
            elif G > 1:
                L.append("  #pragma unroll 4")
                L.append(f"  for ({it} r = lo + part; r < hi; r += {W}) {{")
            elif R <= 16 * W:  # a constant trip count: short ones (a 3x3 window) unroll fully
                L.append("  #pragma unroll")
                L.append(f"  for ({it} r = part; active && r < {R}; r += {W}) {{")
            else:
                L.append("  #pragma unroll 4")
                L.append(f"  for ({it} r = part; r < (active ? {R} : 0); r += {W}) {{")
            L.extend(self._indices("r", red_names, red_sizes, "    "))
            L.extend(fills)
            lines, val = self.render_body(rbody, prefix, None, k.bufs, "    ")
            L.extend(lines)
            L.append(f"    {acc} = {self.combine(op, acc, val, dt)};")
            L.append("  }")
            L.extend(self._group_combine(p, op, dt, acc, "  "))
        if G > 1:
            # the last block of this output group to finish combines the G partial results
            dt, op = k.acc_dtype, k.reduce_op
            T_ = self.type(dt)
            L += [f"  if (part == 0) {k.name}_part[o * {G} + g] = acc0;",
                  "  __threadfence();",
                  "  __shared__ int tj_last;",
                  "  __syncthreads();",
                  f"  if (tid == 0) tj_last = atomicAdd(&{k.name}_count[ob], 1u) == {G - 1};",
                  "  __syncthreads();",
                  "  if (!tj_last) return;",
                  "  __threadfence();",
                  f"  if (tid == 0) {k.name}_count[ob] = 0u;",
                  f"  acc0 = {self.identity(op, dt)};",
                  "  #pragma unroll 8",
                  f"  for ({it} q = part; q < {G}; q += {W}) acc0 = "
                  f"{self.combine(op, 'acc0', self._load_cg(T_, f'{k.name}_part + o * {G} + q'), dt)};"]
            L.extend(self._group_combine(p, op, dt, "acc0", "  "))
        body = k.body
        if k.full_epilogue:
            fills = []
            if cache:
                body, fills = self._from_row_cache(k, body, cache, cached)
                L.extend(self._row_cache_loop(W, R))
            else:
                L.append(f"  for ({it} r = part; active && r < {R}; r += {W}) {{")
            L.extend(self._indices("r", red_names, red_sizes, "    "))
            L.extend(fills)
        else:
            L.append("  if (active && part == 0) {")
        L.extend(self.render_body(body, "v", "acc0", k.bufs, "    ")[0])
        return L + ["  }"]

    def _row_cache(self, k: Kernel, p: Plan, R: int) -> dict:
        """The loads that more than one pass over the reduce space reads (softmax reads its
        row for the max, the sum and the division), when each thread's share of it fits in
        registers: key ``(slot, index)`` -> number of its register array.  Each such element
        is then read from memory once, not once per pass (a 64 KiB row's later passes would
        otherwise come from L2 at best)."""
        if p.layout != "rows" or p.G != 1 or not (k.pre or k.full_epilogue) or R < p.W or \
                R % p.W:
            return {}
        passes = [rb for _, _, rb in k.pre] + [k.rbody] + ([k.body] if k.full_epilogue else [])
        seen: dict = {}
        for rb in passes:
            for key in dict.fromkeys((u.arg[0], u.arg[1]) for u in rb if u.op == "LOAD"
                                     and not u.srcs and _is_true(u.arg[2])):
                seen[key] = seen.get(key, 0) + 1
        keys = [key for key, m in seen.items() if m > 1]
        per_thread = R // p.W * sum(np.dtype(k.bufs[slot][0]).itemsize for slot, _ in keys)
        return {key: n for n, key in enumerate(keys)} if per_thread <= self.ROW_CACHE else {}

    def _from_row_cache(self, k: Kernel, uops: list, cache: dict,
                        cached: set) -> tuple[list, list[str]]:
        """``uops`` reading the loads of ``cache`` from their registers (element ``j`` of the
        thread's share), and the statements that fill those not filled by an earlier pass."""
        out, fills = list(uops), []
        for i, u in enumerate(uops):
            if u.op != "LOAD" or u.srcs or not _is_true(u.arg[2]) or \
                    (u.arg[0], u.arg[1]) not in cache:
                continue
            key = (u.arg[0], u.arg[1])
            name = f"c{cache[key]}"
            if key not in cached:
                cached.add(key)
                fills.append(f"    {name}[j] = data{key[0]}[{self.index(key[1])}];")
            out[i] = UOp("CONST", u.dtype, (), _Raw(self.load(k.bufs[key[0]][0], f"{name}[j]")))
        return out, fills

    def _row_cache_loop(self, W: int, R: int) -> list[str]:
        """The head of a fully unrolled pass over a thread's share of the reduce space:
        element ``j`` of the share at constant indices into the register arrays."""
        return ["  #pragma unroll",
                f"  for (int j = 0; j < {R // W}; j++) {{",
                "    if (!active) break;",
                f"    const {self.index_type} r = part + j * {W};"]

    @staticmethod
    def _load_cg(ctype: str, ptr: str) -> str:
        """A load of another block's result past L1 (``ld.global.cg``, which unlike a
        volatile load can be pipelined); volatile for types ``__ldcg`` does not take."""
        if ctype in ("float", "double", "int", "long", "int32_t", "int64_t", "uint32_t",
                     "uint64_t"):
            return f"__ldcg({ptr})"
        return f"*(volatile {ctype} *)({ptr})"

    def _sort_less(self, k: Kernel) -> list[str]:
        """``<name>_less(keys.., a, b)``: whether the row element at offset ``a`` sorts strictly
        before the one at ``b`` -- the semantics of the C renderer's ``render_sort_less``."""
        desc, slots = k.sort[1], k.sort[2]
        L = [f"__device__ __forceinline__ int {k.name}_less("
             f"{', '.join(self._params(k, slots))}, long a, long b) {{"]
        for slot in slots:
            dt = np.dtype(k.bufs[slot][0])
            T = self.type(dt)
            L.append(f"  {{ {T} x = {self.load(dt, f'data{slot}[a]')}, "
                     f"y = {self.load(dt, f'data{slot}[b]')};")
            L.extend("    " + ln for ln in self.sort_key_order(dt, desc))
            L.append("  }")
        return L + ["  return 0;", "}"]

    def float_bits(self, bits: int, x: str, y: str) -> str:
        if bits == 32:
            return f"int bx = __float_as_int({x}), by = __float_as_int({y});"
        return f"long long bx = __double_as_longlong({x}), by = __double_as_longlong({y});"

    def _render_sort(self, k: Kernel, p: Plan) -> list[str]:
        axis, _, slots = k.sort
        shape = k.full_shape
        n = shape[axis]
        stride = _prod(shape[axis + 1:])
        rows = _prod(shape) // n if n else 0
        keys = ", ".join(f"data{s}" for s in slots)
        L = self._sort_less(k)
        if p.mode == "global":
            L.append(f"__device__ int {k.name}_scratch[{p.grid * 2 * n}];")
        L += self.kernel_header(k, p.block)
        L.append("  const int tid = threadIdx.x;")
        if p.mode == "shared":
            L.append(f"  __shared__ int tj_idx[{max(2 * n, 1)}];")
            L.append("  int *src = tj_idx, *dst = tj_idx + " + str(n) + ";")
        else:
            L.append(f"  int *src = {k.name}_scratch + (long)blockIdx.x * {2 * n}, "
                     f"*dst = src + {n};")
        less = f"{k.name}_less({keys}, "
        L += [
            f"  for (long row = blockIdx.x; row < {rows}; row += gridDim.x) {{",
            f"    const long base = (row / {stride}) * {n * stride} + row % {stride};",
            f"    for (long j = tid; j < {n}; j += blockDim.x) src[j] = (int)j;",
            "    __syncthreads();",
            # merge runs of w: each element's place is its index plus the number of elements
            # of the other run that go before it (ties: the left run first, so it is stable)
            f"    for (long w = 1; w < {n}; w *= 2) {{",
            f"      for (long i = tid; i < {n}; i += blockDim.x) {{",
            "        const long lo = i / (2 * w) * (2 * w);",
            f"        const long mid = lo + w < {n} ? lo + w : {n}, "
            f"hi = lo + 2 * w < {n} ? lo + 2 * w : {n};",
            "        const int x = src[i];",
            f"        const long xo = base + (long)x * {stride};",
            "        long l, h;",
            "        if (i < mid) {",
            "          l = mid; h = hi;",
            "          while (l < h) { long m = (l + h) / 2;",
            f"            if ({less}base + (long)src[m] * {stride}, xo)) l = m + 1; else h = m; }}",
            "          dst[i + l - mid] = x;",
            "        } else {",
            "          l = lo; h = mid;",
            "          while (l < h) { long m = (l + h) / 2;",
            f"            if (!{less}xo, base + (long)src[m] * {stride})) l = m + 1; else h = m; }}",
            "          dst[i - mid + l] = x;",
            "        }",
            "      }",
            "      __syncthreads();",
            "      int *t = src; src = dst; dst = t;",
            "    }",
            f"    for (long j = tid; j < {n}; j += blockDim.x) data0[base + j * {stride}] = src[j];",
            "    __syncthreads();",
            "  }",
        ]
        return L

    def _scatter_new(self, op: str, dt, cur: str, v: str) -> str:
        """The combined value of a scatter update (the C renderer's ``render_scatter``)."""
        if op == "replace":
            return v
        if op in ("add", "mul"):
            if dt == np.bool_:
                return f"({cur}{'|' if op == 'add' else '&'}{v})"
            return f"{cur}{'+' if op == 'add' else '*'}{v}"
        return self.alu(op, dt, [cur, v], [dt, dt])

    def _render_scatter(self, k: Kernel, p: Plan) -> list[str]:
        it, ss, n0 = self.index_type, k.scatter_shape, k.bufs[0][1]
        nu = _prod(ss)
        uops, sc = k.sbody, k.sbody[-1]
        dt = np.dtype(uops[sc.srcs[1]].dtype)
        win = f"{k.name}_win"
        L = []
        if p.mode == "winner":
            L.append(f"/* the winning update number + 1 per element of data0 (0: none); reset by "
                     f"{k.name}_copy: one call of {k.name} at a time (one stream) */")
            L.append(f"__device__ unsigned int {win}[{max(n0, 1)}];")
        copy = self._scatter_copy(k)
        L += self._render_elementwise(copy, self.plan(copy))
        if p.mode == "winner":
            L.append(f"  for ({it} q = ({it})blockIdx.x * blockDim.x + threadIdx.x; q < {n0}; "
                     f"q += ({it})gridDim.x * blockDim.x) {win}[q] = 0u;")
        L.append("}")

        def updates(fk: Kernel, stmt: str, needs=(0, 1, 2)) -> list[str]:
            """A function running ``stmt`` for every update: one per thread over the grid, or
            all of them in C order in one thread (the serial mode)."""
            F = self.kernel_header(fk, p.block)
            if p.mode == "serial":
                F.append(f"  for ({it} u = 0; u < {nu}; u++) {{")
            else:
                F.append(f"  for ({it} u = ({it})blockIdx.x * blockDim.x + threadIdx.x; "
                         f"u < {nu}; u += ({it})gridDim.x * blockDim.x) {{")
            F.extend(self._indices("u", [f"i{a}" for a in range(len(ss))], list(ss), "    "))
            F.extend(self.render_body(uops[:-1], "s", None, k.bufs, "    ",
                                      only=uop_deps(uops, [sc.srcs[j] for j in needs]))[0])
            o, v, ok = (f"s{i}" if uops[i].op != "CONST" else self.const(uops[i].arg, uops[i].dtype)
                        for i in sc.srcs)
            F.append("    " + stmt.format(o=o, v=v, ok=ok))
            return F + ["  }"]
        S = self.storage(dt)
        if p.mode == "serial":
            new = self._scatter_new(sc.arg, dt, self.load(dt, "data0[{o}]"), "{v}")
            L += updates(k, f"if ({{ok}}) data0[{{o}}] = {self.store(dt, new)};")
        elif p.mode == "winner":
            L += updates(self._scatter_step(k, "_mark"),
                         f"if ({{ok}}) atomicMax(&{win}[{{o}}], (unsigned int)(u + 1));",
                         needs=(0, 2))
            L.append("}")
            L += updates(k, f"if ({{ok}} && {win}[{{o}}] == (unsigned int)(u + 1)) "
                            f"data0[{{o}}] = {self.store(dt, '{v}')};")
        elif p.mode == "atomic":
            fn = {"add": "atomicAdd", "max": "atomicMax", "min": "atomicMin"}[sc.arg]
            if dt.itemsize == 8 and dt.kind in "iu":
                A = "long long" if dt.kind == "i" and sc.arg != "add" else "unsigned long long"
                L += updates(k, f"if ({{ok}}) {fn}(({A} *)&data0[{{o}}], ({A}){{v}});")
            else:
                L += updates(k, f"if ({{ok}}) {fn}(&data0[{{o}}], {{v}});")
        else:  # a compare-and-swap loop over the element's bits
            U = "unsigned int" if dt.itemsize == 4 else "unsigned long long"
            new = self._scatter_new(sc.arg, dt, f"tj_as<{S}>(as)", "{v}")
            cas = f"atomicCAS(pt, as, tj_as<{U}>(({S})({new})))"
            L += updates(k, f"if ({{ok}}) {{{{ {U} *pt = ({U} *)&data0[{{o}}], old = *pt, as; "
                            f"do {{{{ as = old; old = {cas}; }}}} while (old != as); }}}}")
        return L


def describe_launch(k: Kernel) -> str:
    """One line on how ``k`` runs on the GPU: its plan and each launch's grid x block."""
    lang = CUDALanguage()
    p = lang.plan(k)
    if p.kind == "gemm":
        from tinyjax.backends.cuda.gemm import gemm_describe
        how = gemm_describe(k)
    else:
        how = p.kind + {"elementwise": f" x{p.lanes}", "reduce": f" {p.layout} W={p.W} G={p.G}",
                        "sort": f" {p.mode}", "scatter": f" {p.mode}"}[p.kind]
    dims = " + ".join("x".join(str(g) for g in d.grid if g > 1) or "1" for _, d in
                      lang.launches(k))
    return f"{how}; grid {dims}"


def render_source(kernels: list[Kernel]) -> str:
    """The CUDA C++ source of ``kernels``."""
    lang = CUDALanguage()
    return CUDA_PRELUDE + "\n" + "\n\n".join(lang.render_kernel(k) for k in kernels) + "\n"
