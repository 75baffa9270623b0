"""CUDA C rendering of the loop IR: the shared walk of :mod:`tinyjax.backends.cstyle` with
CUDA's spellings.

Nothing here decides how a kernel runs: the GPU passes (:mod:`tinyjax.compiler.codegen`)
chose its launch geometry, thread layout, registers and tiles, and its loop IR
(``kernel.loop_ir``) says so op by op.  This module spells the ops a GPU kernel adds to
the C ones: a ``FUNCTION`` is an ``extern "C" __global__`` function over one pointer per
buffer (the kernel's buffers, in slot order) whose first statement waits for the kernel
before it on the stream (``griddepcontrol.wait``: the runtime launches kernels as
programmatic dependent launches), ``SPECIAL`` the thread and block indices, a ``grid``
loop a grid-stride loop, ``GROUP_REDUCE`` warp shuffles (``__shfl_xor_sync``) and shared
memory, ``GRID_REDUCE`` an atomic count of the blocks of a group (the last one combines
their partial results from module memory), ``VLOAD``/``VSTORE`` 16-byte accesses
(``tj_vec``; lane by lane where the pointer is not aligned), ``SORT`` a stable merge sort
of a row's indices by one block, ``SCATTER`` an update by atomics, a compare-and-swap loop
or a winner array.  :meth:`CUDALanguage.launches` reads the geometry of each launch from
the ``FUNCTION`` ops.

Module-global arrays (split reductions, long sorts, ``replace`` scatters' winner array)
assume one launch of a kernel at a time (one stream).
"""
from __future__ import annotations

import numpy as np

from tinyjax.backends.cstyle import CStyleLanguage, Walk, _half, _is_float
from tinyjax.backends.cuda.launch import LaunchDims
from tinyjax.backends.cuda.prelude import (CUDA_PRELUDE, GEMM_HELPERS, WG_HELPERS,
                                          wgmma_name, wgmma_source)
from tinyjax.compiler.kernel import Kernel

__all__ = ["CUDALanguage", "CUDA_PRELUDE", "render_source", "LaunchDims", "describe_launch"]


_SPECIALS = {"thread": "threadIdx.x", "block": "blockIdx.x", "block_y": "blockIdx.y",
             "block_z": "blockIdx.z"}


class CUDALanguage(CStyleLanguage):
    """CUDA spellings: kernels are ``extern "C" __global__`` over one pointer per buffer."""

    kernel_prefix = 'extern "C" __global__ '
    index_type = "long"  # 64-bit on the device as on the (LP64) host
    var_prefix = "[[maybe_unused]] "

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

    def bitcast(self, x: str, src, dst) -> str:
        """The bits of ``x`` as ``dst``: CUDA's intrinsics between 32-bit floats and ints."""
        pair = (np.dtype(src).name, np.dtype(dst).name)
        fn = {("uint32", "float32"): "__uint_as_float", ("float32", "uint32"): "__float_as_uint",
              ("int32", "float32"): "__int_as_float", ("float32", "int32"): "__float_as_int"}
        return f"{fn[pair]}({x})" if pair in fn else super().bitcast(x, src, dst)

    def float_bits(self, bits: int, x: str, y: str) -> str:
        if bits == 32:
            return f"int bx = __float_as_int({x}), by = __float_as_int({y});"
        return f"long long bx = __double_as_longlong({x}), by = __double_as_longlong({y});"

    def grid_stride(self, it: str) -> tuple[str, str]:
        return (f"({it})blockIdx.x * blockDim.x + threadIdx.x", f"({it})gridDim.x * blockDim.x")

    def params(self, k: Kernel, slots=None) -> str:
        """The parameters of a function over ``k``'s buffers (``slots``: only those, read)."""
        out = []
        for slot, (dt, _) in enumerate(k.bufs):
            if slots is None or slot in slots:
                q = "" if slot < k.n_outs and slots is None else "const "
                out.append(f"{q}{self.storage(dt)} *__restrict__ data{slot}")
        return ", ".join(out)

    # ---- the ops a GPU kernel adds -------------------------------------------------------------
    def op_FUNCTION(self, w: Walk, i: int, u) -> str:
        f, k = u.arg, w.k
        w.header_at = len(w.lines)
        if k.source_lines and not f.name:
            w.lines.append("/* " + k.name + " fuses: " +
                           ", ".join(k.source_lines).replace("*/", "* /") + " */")
        bounds = f"__launch_bounds__({f.bounds}) " if f.bounds else ""
        w.lines.append(f"{self.kernel_prefix}void {bounds}{k.name}{f.name}({self.params(k)}) {{")
        w.lines.append("  tj_wait_for_previous_kernel();")
        w.ind, w.index_type = "  ", f.index
        return f.name

    def op_INCLUDE(self, w: Walk, i: int, u) -> str:
        what = u.arg
        w.lines.append({"gemm": GEMM_HELPERS, "wgmma": WG_HELPERS}[what[0]] if len(what) == 1
                       else wgmma_source(*what[1:]))
        return ""

    def op_SPECIAL(self, w: Walk, i: int, u) -> str:
        w.lines.append(f"{w.ind}{self.var_prefix}const {self.type(u.dtype)} {u.arg.name} = "
                       f"{_SPECIALS[u.arg.what]};")
        return u.arg.name

    def op_DEFINE_LOCAL(self, w: Walk, i: int, u) -> str:
        loc = u.arg
        S = self.storage(u.dtype)
        dims = "".join(f"[{n}]" for n in (loc.size if isinstance(loc.size, tuple) else (loc.size,)))
        if loc.where == "module":
            w.lines.append(f"__device__ {S} {w.k.name}{loc.name}{dims};")
            return w.k.name + loc.name
        q = f"{loc.qual} " if loc.qual else ""
        if loc.where == "shared":
            w.lines.append(f"{w.ind}__shared__ __align__(16) {S} {loc.name}{dims};")
        elif loc.where == "dynamic":
            w.lines.append(f"{w.ind}extern __shared__ __align__(128) {S} {loc.name}[];")
        elif loc.where == "view" and loc.align:
            base, A = w.names[u.srcs[0]], loc.align
            w.lines.append(f"{w.ind}{S} *const {loc.name} = {base} + (({A} - "
                           f"(tj_smem_addr({base}) & {A - 1})) & {A - 1});")
        elif loc.where == "view":
            terms, off = [loc.offset], ""
            while getattr(terms[0], "op", None) == "add":  # pointer + a + b, in that order
                terms[:1] = list(terms[0].args)
            for t in terms:
                off += f" + {self.expr(t)}" if not (isinstance(t, int) and t == 0) else ""
            if loc.inline:
                return f"(({q}{S} *){w.names[u.srcs[0]]}{off})"
            w.lines.append(f"{w.ind}{q}{S} *{loc.name} = ({q}{S} *){w.names[u.srcs[0]]}{off};")
        else:  # registers
            return super().op_DEFINE_LOCAL(w, i, u)
        return loc.name

    def op_BARRIER(self, w: Walk, i: int, u) -> str:
        w.lines.append(f"{w.ind}__syncthreads();")
        return ""

    def op_VLOAD(self, w: Walk, i: int, u) -> str:
        slot, index, lanes = u.arg
        if slot is None:  # from a local array: a CUDA vector type
            vt = f"{'uint' if u.dtype == np.uint32 else 'float'}{lanes}"
            w.lines.append(f"{w.ind}const {vt} v{i} = *(const {vt} *)({w.names[u.srcs[0]]} + "
                           f"{self.expr(index)});")
            return f"v{i}"
        S = self.storage(w.k.bufs[slot][0])
        w.lines.append(f"{w.ind}const tj_vec<{S}, {lanes}> v{i} = tj_ld<{S}, {lanes}>(data{slot} + "
                       f"({self.index(index)}), {w.names[u.srcs[0]]});")
        return f"v{i}"

    def op_GEP(self, w: Walk, i: int, u) -> str:
        vl = w.uops[u.srcs[0]]
        if vl.arg[0] is None:
            return f"{w.names[u.srcs[0]]}.{'xyzw'[u.arg]}"
        return self.load(w.k.bufs[vl.arg[0]][0], f"{w.names[u.srcs[0]]}.v[{u.arg}]")

    def op_CP_ASYNC(self, w: Walk, i: int, u) -> str:
        slot, index, dst = u.arg
        ok = w.names[u.srcs[0]]
        w.lines.append(f"{w.ind}const void *src{i} = data{slot} + ({ok} ? {self.index(index)} : 0);")
        w.lines.append(f"{w.ind}tj_cp_async16({self.expr(dst)}, src{i}, {ok} ? 16 : 0);")
        return ""

    ASYNC = {"commit": "tj_cp_async_commit();",
             "wait": 'asm volatile("cp.async.wait_group {n};");',
             "fence_proxy": 'asm volatile("fence.proxy.async.shared::cta;" ::: "memory");',
             "wg_fence": 'asm volatile("wgmma.fence.sync.aligned;" ::: "memory");',
             "wg_commit": 'asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");',
             "wg_wait": 'asm volatile("wgmma.wait_group.sync.aligned {n};" ::: "memory");',
             "fence_acc": "tj_wg_fence_acc({acc});"}

    def op_ASYNC(self, w: Walk, i: int, u) -> str:
        kind, n = u.arg
        acc = w.names[u.srcs[0]] if u.srcs else ""
        w.lines.append(w.ind + self.ASYNC[kind].format(n=n, acc=acc))
        return ""

    def op_LDMATRIX(self, w: Walk, i: int, u) -> str:
        trans, addr = u.arg
        dst = w.names[u.srcs[0]] + "".join(f"[{w.names[s]}]" for s in u.srcs[1:])
        w.lines.append(f"{w.ind}tj_ldsm_x4{'_t' if trans else ''}({dst}, {self.expr(addr)});")
        return ""

    def op_MMA(self, w: Walk, i: int, u) -> str:
        acc, af, bf, i_, j_ = (w.names[s] for s in u.srcs)
        w.lines.append(f"{w.ind}tj_mma_{u.arg}({acc}[{i_}][{j_}], {af}[{i_}], {bf}[{j_}]);")
        return ""

    def op_WGMMA(self, w: Walk, i: int, u) -> str:
        acc, a, db, ks = (w.names[s] for s in u.srcs)
        if w.uops[u.srcs[1]].op == "DEFINE_LOCAL":  # registers: this k-step's
            a = f"{a}[{ks}]"
        w.lines.append(f"{w.ind}{wgmma_name(*u.arg)}({acc}, {a}, {db});")
        return ""

    def op_FMA(self, w: Walk, i: int, u) -> str:
        fn = "__fmaf_rn" if self.type(u.dtype) == "float" else "__fma_rn"
        return f"{fn}({', '.join(w.names[s] for s in u.srcs)})"

    def op_ROUND(self, w: Walk, i: int, u) -> str:  # to TF32, nearest
        return f"__uint_as_float(tj_tf32(__float_as_uint({w.names[u.srcs[0]]})))"

    def op_ARRIVE(self, w: Walk, i: int, u) -> str:
        """This block's arrival at a counter (its results written before); all but the one
        that brings it to ``last + 1`` return, and that one resets it."""
        index, last = u.arg
        count, tid, flag = (w.names[s] for s in u.srcs)
        c = f"{count}[{self.expr(index)}]"
        w.lines.extend(w.ind + x for x in [
            "__threadfence();", "__syncthreads();",
            f"if ({tid} == 0) *{flag} = atomicAdd(&{c}, 1u) == {self.expr(last)};",
            "__syncthreads();", f"if (!*{flag}) return;", "__threadfence();",
            f"if ({tid} == 0) {c} = 0u;"])
        return ""

    def op_SUM_SLOTS(self, w: Walk, i: int, u) -> str:
        """The sum of the tile-sized slots ``lo`` .. ``hi`` of an array, in slot order (the
        same rounding whichever block runs it), into another as float4s: each thread owns
        float4s ``tid + j * threads`` and keeps up to 8 of them in flight per slot (one block
        pulls whole tiles through one SM: the loads must overlap)."""
        src_off, lo, hi, dst_off, NV, JV, T, size = u.arg
        tid, src, dst = (w.names[s] for s in u.srcs)
        src = f"{src} + {self.expr(src_off)}"
        dst = f"(float4 *)({dst} + {self.expr(dst_off)})"
        w.lines.extend(w.ind + x for x in [
            f"for (int j0 = 0; j0 < {NV}; j0 += {JV}) {{",
            f"  float4 v[{JV}];",
            "  #pragma unroll",
            f"  for (int j = 0; j < {JV}; j++) v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);",
            "  #pragma unroll 2",
            f"  for (int s = {self.expr(lo)}; s < {self.expr(hi)}; s++) {{",
            f"    const float4 *x = (const float4 *)({src} + (long)s * {size}) + {tid} + j0 * {T};",
            "    #pragma unroll",
            f"    for (int j = 0; j < {JV}; j++) {{",
            f"      const float4 t = __ldcg(x + j * {T});",
            "      v[j].x += t.x; v[j].y += t.y; v[j].z += t.z; v[j].w += t.w;",
            "    }",
            "  }",
            "  #pragma unroll",
            f"  for (int j = 0; j < {JV}; j++) ({dst} + {tid} + j0 * {T})[j * {T}] = v[j];",
            "}"])
        return ""

    def op_VSTORE(self, w: Walk, i: int, u) -> str:
        slot, index, lanes = u.arg
        dt = w.k.bufs[slot][0]
        S = self.storage(dt)
        w.lines.append(f"{w.ind}tj_vec<{S}, {lanes}> v{i};")
        for j, s in enumerate(u.srcs[1:]):
            w.lines.append(f"{w.ind}v{i}.v[{j}] = {self.store(dt, w.names[s])};")
        w.lines.append(f"{w.ind}tj_st<{S}, {lanes}>(data{slot} + ({self.index(index)}), v{i}, "
                       f"{w.names[u.srcs[0]]});")
        return ""

    def _shfl(self, fn: str, v: str, dt, arg: str) -> str:
        """A warp shuffle of ``v`` (a value of ``dt``'s compute type); narrow ints go as int."""
        T = self.type(dt)
        if np.dtype(dt).itemsize < 4 and not _half(dt):
            return f"(({T}){fn}(0xffffffffu, (int){v}, {arg}))"
        return f"{fn}(0xffffffffu, {v}, {arg})"

    def op_GROUP_REDUCE(self, w: Walk, i: int, u) -> str:
        """Combine the accumulator over the ``W`` threads of each output point; every one of
        them ends with the same result (combined in the same order)."""
        g, acc = u.arg, u.srcs[0]
        v, tid, ol = (w.names[s] for s in u.srcs[:3])
        smem = w.names[u.srcs[3]] if len(u.srcs) > 3 else ""
        dt, op = w.uops[acc].dtype, w.uops[acc].arg.op
        W, P, ind, T_ = g.W, g.P, w.ind, self.type(dt)
        L = w.lines
        if g.layout == "cols":
            L += [f"{ind}{{ {T_} *sm = ({T_} *){smem};",
                  f"{ind}  sm[{tid}] = {v};",
                  f"{ind}  __syncthreads();",
                  f"{ind}  {v} = sm[{ol}];",
                  f"{ind}  for (int j = 1; j < {W}; j++) "
                  f"{v} = {self.combine(op, v, f'sm[j * {P} + {ol}]', dt)};",
                  f"{ind}  __syncthreads(); }}"]
            return ""
        m = min(W, 32) // 2
        while m >= 1:  # every lane shuffles (a shuffle inside ?: would not run in all)
            L.append(f"{ind}{{ const {T_} t = {self._shfl('__shfl_xor_sync', v, dt, str(m))}; "
                     f"{v} = {self.combine(op, v, 't', dt)}; }}")
            m //= 2
        # max/min may keep either of two equal values (+-0): take the group leader's
        L.append(f"{ind}{v} = {self._shfl('__shfl_sync', v, dt, f'({tid} & 31) & ~{min(W, 32) - 1}')};")
        if W > 32:
            nw = W // 32
            L += [f"{ind}{{ {T_} *sm = ({T_} *){smem};",
                  f"{ind}  if (({tid} & 31) == 0) sm[{tid} >> 5] = {v};",
                  f"{ind}  __syncthreads();",
                  f"{ind}  {v} = sm[{ol} * {nw}];",
                  f"{ind}  for (int j = 1; j < {nw}; j++) "
                  f"{v} = {self.combine(op, v, f'sm[{ol} * {nw} + j]', dt)};",
                  f"{ind}  __syncthreads(); }}"]
        return ""

    @staticmethod
    def _load_cg(ctype: str, ptr: str) -> str:
        """A load of another block's result past L1 (``ld.global.cg``, which unlike a
        volatile load can be pipelined); volatile for types ``__ldcg`` does not take."""
        if ctype in ("float", "double", "int", "long", "int32_t", "int64_t", "uint32_t",
                     "uint64_t"):
            return f"__ldcg({ptr})"
        return f"*(volatile {ctype} *)({ptr})"

    def op_GRID_REDUCE(self, w: Walk, i: int, u) -> str:
        """The last block of an output group to finish combines the ``G`` partial results
        (the others return)."""
        group, G = u.arg
        acc = u.srcs[0]
        v, part, o, g, ob, tid, parts, count = (w.names[s] for s in u.srcs)
        dt, op = w.uops[acc].dtype, w.uops[acc].arg.op
        ind, T_ = w.ind, self.type(dt)
        w.lines.extend(ind + x for x in [
            f"if ({part} == 0) {parts}[{o} * {G} + {g}] = {v};",
            "__threadfence();",
            "__shared__ int tj_last;",
            "__syncthreads();",
            f"if ({tid} == 0) tj_last = atomicAdd(&{count}[{ob}], 1u) == {G - 1};",
            "__syncthreads();",
            "if (!tj_last) return;",
            "__threadfence();",
            f"if ({tid} == 0) {count}[{ob}] = 0u;",
            f"{v} = {self.identity(op, dt)};",
            "#pragma unroll 8",
            f"for ({w.index_type} q = {part}; q < {G}; q += {group.W}) {v} = "
            f"{self.combine(op, v, self._load_cg(T_, f'{parts} + {o} * {G} + q'), dt)};"])
        return ""

    def loop_pragmas(self, r, names: list[str], uops) -> list[str]:
        if r.unroll is None:
            return []
        return ["#pragma unroll" + (f" {r.unroll}" if r.unroll else "")]

    # ---- sort and scatter ----------------------------------------------------------------------
    def op_SORT(self, w: Walk, i: int, u) -> str:
        """One block per row: a stable bottom-up merge sort of the indices in which each
        element finds its place by binary search in the other run (the indices in shared
        memory, or for long rows in module scratch)."""
        k = w.k
        mode, (axis, desc, slots) = u.arg
        w.lines[w.header_at:w.header_at] = self.sort_less(k, slots, desc)
        w.header_at += len(self.sort_less(k, slots, desc))
        shape = k.full_shape
        n = shape[axis]
        stride = int(np.prod(shape[axis + 1:], dtype=np.int64))
        rows = int(np.prod(shape, dtype=np.int64)) // n if n else 0
        keys = ", ".join(f"data{s}" for s in slots)
        L = ["const int tid = threadIdx.x;"]
        if mode == "shared":
            L.append(f"__shared__ int tj_idx[{max(2 * n, 1)}];")
            L.append("int *src = tj_idx, *dst = tj_idx + " + str(n) + ";")
        else:
            L.append(f"int *src = {k.name}_scratch + (long)blockIdx.x * {2 * n}, "
                     f"*dst = src + {n};")
        less = f"{k.name}_less({keys}, "
        L += [
            f"for (long row = blockIdx.x; row < {rows}; row += gridDim.x) {{",
            f"  const long base = (row / {stride}) * {n * stride} + row % {stride};",
            f"  for (long j = tid; j < {n}; j += blockDim.x) src[j] = (int)j;",
            "  __syncthreads();",
            # merge runs of w: each element's place is its index plus the number of elements
            # of the other run that go before it (ties: the left run first, so it is stable)
            f"  for (long w = 1; w < {n}; w *= 2) {{",
            f"    for (long i = tid; i < {n}; i += blockDim.x) {{",
            "      const long lo = i / (2 * w) * (2 * w);",
            f"      const long mid = lo + w < {n} ? lo + w : {n}, "
            f"hi = lo + 2 * w < {n} ? lo + 2 * w : {n};",
            "      const int x = src[i];",
            f"      const long xo = base + (long)x * {stride};",
            "      long l, h;",
            "      if (i < mid) {",
            "        l = mid; h = hi;",
            "        while (l < h) { long m = (l + h) / 2;",
            f"          if ({less}base + (long)src[m] * {stride}, xo)) l = m + 1; else h = m; }}",
            "        dst[i + l - mid] = x;",
            "      } else {",
            "        l = lo; h = mid;",
            "        while (l < h) { long m = (l + h) / 2;",
            f"          if (!{less}xo, base + (long)src[m] * {stride})) l = m + 1; else h = m; }}",
            "        dst[i - mid + l] = x;",
            "      }",
            "    }",
            "    __syncthreads();",
            "    int *t = src; src = dst; dst = t;",
            "  }",
            f"  for (long j = tid; j < {n}; j += blockDim.x) data0[base + j * {stride}] = src[j];",
            "  __syncthreads();",
            "}"]
        w.lines.extend(w.ind + x for x in L)
        return ""

    def sort_less(self, k: Kernel, slots, desc: bool) -> list[str]:
        """``<name>_less(keys.., a, b)``: whether the row element at offset ``a`` sorts strictly
        before the one at ``b`` -- the semantics of the C renderer's ``render_sort_less``."""
        L = [f"__device__ __forceinline__ int {k.name}_less("
             f"{self.params(k, slots)}, long a, long b) {{"]
        for slot in slots:
            dt = np.dtype(k.bufs[slot][0])
            T = self.type(dt)
            L.append(f"  {{ {T} x = {self.load(dt, f'data{slot}[a]')}, "
                     f"y = {self.load(dt, f'data{slot}[b]')};")
            L.extend("    " + ln for ln in self.sort_key_order(dt, desc))
            L.append("  }")
        return L + ["  return 0;", "}"]

    def _scatter_new(self, op: str, dt, cur: str, v: str) -> str:
        """The combined value of a scatter update (the C renderer's ``render_scatter``)."""
        if op == "replace":
            return v
        if op in ("add", "mul"):
            if dt == np.bool_:
                return f"({cur}{'|' if op == 'add' else '&'}{v})"
            return f"{cur}{'+' if op == 'add' else '*'}{v}"
        return self.alu(op, dt, [cur, v], [dt, dt])

    def op_SCATTER(self, w: Walk, i: int, u) -> str:
        """One update: serially, marking its number as the winner of its target, writing it
        where it won, by an atomic, or by a compare-and-swap loop over the element's bits."""
        combine, mode = u.arg
        o, v, ok, upd = (w.names[s] for s in u.srcs[:4])
        win = w.names[u.srcs[4]] if len(u.srcs) > 4 else ""
        dt = np.dtype(u.dtype)
        S = self.storage(dt)
        if mode == "serial":
            new = self._scatter_new(combine, dt, self.load(dt, f"data0[{o}]"), v)
            stmt = f"if ({ok}) data0[{o}] = {self.store(dt, new)};"
        elif mode == "mark":
            stmt = f"if ({ok}) atomicMax(&{win}[{o}], (unsigned int)({upd} + 1));"
        elif mode == "winner":
            stmt = (f"if ({ok} && {win}[{o}] == (unsigned int)({upd} + 1)) "
                    f"data0[{o}] = {self.store(dt, v)};")
        elif mode == "atomic":
            fn = {"add": "atomicAdd", "max": "atomicMax", "min": "atomicMin"}[combine]
            if dt.itemsize == 8 and dt.kind in "iu":
                A = "long long" if dt.kind == "i" and combine != "add" else "unsigned long long"
                stmt = f"if ({ok}) {fn}(({A} *)&data0[{o}], ({A}){v});"
            else:
                stmt = f"if ({ok}) {fn}(&data0[{o}], {v});"
        else:  # a compare-and-swap loop over the element's bits
            U = "unsigned int" if dt.itemsize == 4 else "unsigned long long"
            new = self._scatter_new(combine, dt, f"tj_as<{S}>(as)", v)
            cas = f"atomicCAS(pt, as, tj_as<{U}>(({S})({new})))"
            stmt = (f"if ({ok}) {{ {U} *pt = ({U} *)&data0[{o}], old = *pt, as; "
                    f"do {{ as = old; old = {cas}; }} while (old != as); }}")
        w.lines.append(w.ind + stmt)
        return ""

    # ---- kernels -----------------------------------------------------------------------------
    def render_kernel(self, k: Kernel) -> str:
        """The functions of ``k`` from its loop IR (``k.loop_ir``, which
        :func:`tinyjax.compiler.codegen.attach_loop_ir` attaches for the ``cuda`` target)."""
        if k.loop_ir is None:
            raise ValueError(f"cuda: kernel {k.name} has no loop IR (compiler.codegen."
                             "attach_loop_ir gives it one)")
        return self.render_uops(k, k.loop_ir).rstrip("\n")

    def launches(self, k: Kernel) -> list[tuple[str, LaunchDims]]:
        """The functions of ``render_kernel(k)`` to launch, in order, each with its geometry
        and all taking the kernel's buffers (each launch is ordered after the previous one,
        the grid-wide barrier between a scatter's phases)."""
        return [(k.name + u.arg.name, LaunchDims(u.arg.grid, u.arg.block, u.arg.shared))
                for u in k.loop_ir if u.op == "FUNCTION"]

    def launch_dims(self, k: Kernel) -> LaunchDims:
        """The geometry of the function ``k.name`` (its last launch)."""
        return self.launches(k)[-1][1]


def describe_launch(k: Kernel) -> str:
    """One line on how ``k`` runs on the GPU: its passes and each launch's grid x block."""
    lang = CUDALanguage()
    how = next(u.arg.how for u in k.loop_ir if u.op == "FUNCTION" and not u.arg.name)
    dims = " + ".join("x".join(str(g) for g in d.grid if g > 1) or "1" for _, d in
                      lang.launches(k))
    return f"{how}; grid {dims}"


def render_source(kernels: list[Kernel]) -> str:
    """The CUDA C++ source of ``kernels``."""
    lang = CUDALanguage()
    return CUDA_PRELUDE + "\n" + "\n\n".join(lang.render_kernel(k) for k in kernels) + "\n"
