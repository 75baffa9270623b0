"""CUDA C rendering of the kernel IR: the C renderer of :mod:`tinyjax.devices.cstyle` with a
grid in place of the CPU loop nest.

A first, correctness-first step:

* elementwise kernels: one thread per point of the loop space;
* reductions (softmax's stages, matmuls too): one thread per output point, each running a
  serial accumulation loop over the reduce axes (a ``full_epilogue`` body then loops over
  them again);
* sort and scatter kernels raise ``NotImplementedError`` (``jit`` evaluates eagerly).

:meth:`CUDALanguage.launch_dims` gives the launch geometry of a rendered kernel.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tinyjax.devices.cstyle import PRELUDE, CStyleLanguage, _is_float
from tinyjax.devices.cuda_gemm import gemm_launch_dims, gemm_supported, render_gemm
from tinyjax.lowering.kernel import Kernel

__all__ = ["CUDALanguage", "CUDA_PRELUDE", "render_source", "LaunchDims"]

BLOCK = 256


class LaunchDims(NamedTuple):
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    shared_bytes: int

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


class CUDALanguage(CStyleLanguage):
    """CUDA spellings: kernels are ``extern "C" __global__`` over one pointer per buffer."""

    kernel_prefix = 'extern "C" __global__ '
    index_type = "long"  # 64-bit on the device as on the (LP64) host

    def alu(self, op, dt, args, arg_dts):
        xt = np.dtype(arg_dts[0])
        if op == "population_count":
            return f"(({self.type(dt)})__popcll((unsigned long long)(uint{xt.itemsize * 8}_t){args[0]}))"
        if op == "is_finite" and _is_float(xt):
            big = "3.4028234663852886e38f" if self.type(xt) == "float" else "1.7976931348623157e308"
            return f"({self.fn('fabs', xt)}({args[0]})<={big})"
        return super().alu(op, dt, args, arg_dts)

    def kernel_header(self, k: Kernel) -> list[str]:
        head = []
        if k.source_lines:
            head.append("/* " + k.name + " fuses: " +
                        ", ".join(k.source_lines).replace("*/", "* /") + " */")
        params = []
        for slot, (dt, _) in enumerate(k.bufs):
            q = "" if slot == 0 else "const "
            params.append(f"{q}{self.storage(dt)} *__restrict__ data{slot}")
        head.append(f"{self.kernel_prefix}void {k.name}({', '.join(params)}) {{")
        return head

    @staticmethod
    def threads(k: Kernel) -> int:
        """How many threads ``k`` runs: one per output point."""
        if k.reduce_op is None:
            return int(np.prod(k.full_shape, dtype=np.int64))
        return int(np.prod([s for a, s in enumerate(k.full_shape) if a not in k.reduce_axes],
                           dtype=np.int64))

    def launch_dims(self, k: Kernel) -> "LaunchDims":
        """The launch geometry of ``render_kernel(k)``: (grid, block, dynamic shared bytes)."""
        if k.gemm is not None and gemm_supported(k):
            return gemm_launch_dims(k)
        return LaunchDims((max(-(-self.threads(k) // BLOCK), 1), 1, 1), (BLOCK, 1, 1), 0)

    def render_kernel(self, k: Kernel, parallel_threshold: int = 0) -> str:
        if k.gemm is not None and gemm_supported(k):
            return render_gemm(self, k)
        if k.sort is not None:
            raise NotImplementedError("cuda: no rendering for the sort kernel kind yet")
        if k.scatter_shape is not None:
            raise NotImplementedError("cuda: no rendering for the scatter kernel kind yet")
        it, full = self.index_type, k.full_shape
        red = set(k.reduce_axes) if k.reduce_op is not None else set()
        outer = [a for a in range(len(full)) if a not in red]
        inner = [a for a in range(len(full)) if a in red]
        L = self.kernel_header(k)
        L.append(f"  const {it} gid = (({it})blockIdx.x) * blockDim.x + threadIdx.x;")
        L.append(f"  if (gid >= {self.threads(k)}) return;")
        L.extend(self._unravel("gid", outer, full, "  ") if outer else [])
        ind = "  "
        if k.reduce_op is None:
            body, _ = self.render_body(k.body, "v", None, k.bufs, ind)
            L.extend(body)
            return "\n".join(L + ["}"])

        def reduce_into(rbody, op, dt, acc, prefix):
            L.append(f"{ind}{self.type(dt)} {acc} = {self.identity(op, dt)};")
            rind = ind
            for a in inner:
                L.append(f"{rind}for ({it} i{a} = 0; i{a} < {full[a]}; i{a}++) {{")
                rind += "  "
            rb, val = self.render_body(rbody, prefix, None, k.bufs, rind)
            L.extend(rb)
            L.append(f"{rind}{acc} = {self.combine(op, acc, val, dt)};")
            for _ in inner:
                rind = rind[:-2]
                L.append(f"{rind}}}")

        for j, (op, dt, rb) in enumerate(k.pre):
            reduce_into(rb, op, dt, f"pacc{j}", f"p{j}_")
        reduce_into(k.rbody, k.reduce_op, k.acc_dtype, "acc0", "r")
        eind = ind
        if k.full_epilogue:
            for a in inner:
                L.append(f"{eind}for ({it} i{a} = 0; i{a} < {full[a]}; i{a}++) {{")
                eind += "  "
        body, _ = self.render_body(k.body, "v", "acc0", k.bufs, eind)
        L.extend(body)
        if k.full_epilogue:
            for _ in inner:
                eind = eind[:-2]
                L.append(f"{eind}}}")
        return "\n".join(L + ["}"])


def render_source(kernels: list[Kernel]) -> str:
    """The CUDA C++ source of ``kernels`` (raises NotImplementedError for unsupported kinds)."""
    lang = CUDALanguage()
    return CUDA_PRELUDE + "\n" + "\n\n".join(lang.render_kernel(k) for k in kernels) + "\n"
