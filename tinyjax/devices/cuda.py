"""The CUDA device: kernel IR -> CUDA C (the C renderer of :mod:`tinyjax.devices.cstyle`
with a grid instead of the CPU loop nest) -> cubin through NVRTC -> launched with the driver
API (:mod:`tinyjax.devices.cuda_driver`, ctypes; nothing is loaded at import).

A first, correctness-first step:

* elementwise kernels: one thread per point of the loop space;
* reductions (softmax's stages, matmuls too): one thread per output point, each running a
  serial accumulation loop over the reduce axes (a ``full_epilogue`` body then loops over
  them again);
* sort and scatter kernels raise ``NotImplementedError`` (``jit`` evaluates eagerly).

Inputs are copied to the device and outputs (and intermediates) back on every call; each
program keeps its device buffers between calls.
"""
from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Optional

import numpy as np

from tinyjax.devices.cstyle import PRELUDE, CStyleLanguage, _is_float
from tinyjax.lowering.kernel import Kernel

__all__ = ["CUDALanguage", "CUDADevice", "CUDA_PRELUDE", "render_source"]

BLOCK = 256

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

    def render_kernel(self, k: Kernel, parallel_threshold: int = 0) -> str:
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
    lang = CUDADevice.language
    return CUDA_PRELUDE + "\n" + "\n\n".join(lang.render_kernel(k) for k in kernels) + "\n"


class _Kernel:
    """A loaded kernel: its function handle, launch size and buffer sizes."""

    def __init__(self, fn, k: Kernel):
        self.fn, self.name = fn, k.name
        self.threads = CUDALanguage.threads(k)
        self.nbytes = [int(n) * np.dtype(dt).itemsize for dt, n in k.bufs]

    def launch(self, drv, ptrs: list[int]):
        if self.threads > 0:
            drv.launch(self.fn, -(-self.threads // BLOCK), BLOCK, ptrs, self.name)


class _Program:
    """Runs a kernel list over host buffers (indexed by program buffer id): inputs copied
    in, kernels launched, every written buffer copied back.  Device buffers are allocated
    on first use and kept until the program is dropped."""

    def __init__(self, drv, kernels: list[_Kernel], buf_ids: list[list[int]]):
        self.drv, self.kernels, self.buf_ids = drv, kernels, buf_ids
        self.dev: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        written: set = set()
        self.inputs: list[int] = []
        for k, ids in zip(kernels, buf_ids):
            for slot, b in enumerate(ids):
                self.sizes[b] = max(self.sizes.get(b, 0), k.nbytes[slot])
                if slot > 0 and b not in written and b not in self.inputs:
                    self.inputs.append(b)
            written.add(ids[0])
        self.outputs = sorted(written)
        self.lock = threading.Lock()
        weakref.finalize(self, _free_all, drv, self.dev)

    def __call__(self, bufs):
        drv = self.drv
        with self.lock, drv.lock:
            drv.make_current()
            for b, n in self.sizes.items():
                if b not in self.dev:
                    self.dev[b] = drv.alloc(n)
            for b in self.inputs:
                a = np.ascontiguousarray(bufs[b])
                drv.htod(self.dev[b], a.ctypes.data, min(a.nbytes, self.sizes[b]))
            for k, ids in zip(self.kernels, self.buf_ids):
                k.launch(drv, [self.dev[b] for b in ids])
            drv.synchronize(", ".join(k.name for k in self.kernels))
            for b in self.outputs:
                a = bufs[b]
                assert a.flags.c_contiguous
                drv.dtoh(a.ctypes.data, self.dev[b], min(a.nbytes, self.sizes[b]))


def _free_all(drv, dev: dict):
    for p in dev.values():
        try:
            drv.free(p)
        except Exception:  # noqa: BLE001 - at exit the context may be gone
            pass
    dev.clear()


class CUDADevice:
    """The ``cuda`` backend (device 0).  Constructing it loads the driver and raises
    ``NotImplementedError`` when there is no CUDA device."""

    name = "cuda"
    language = CUDALanguage()
    # fused multiply-add off: results stay close to the CPU backend's and to eager numpy
    options = ("--fmad=false", "-default-device")

    def __init__(self):
        from tinyjax.devices.cuda_driver import driver, nvrtc
        self.driver = driver()
        nvrtc()  # fail now (NotImplementedError) rather than at the first compile
        self._modules: dict[str, object] = {}

    def render(self, kernels: list[Kernel]) -> str:
        return render_source(kernels)

    def compile(self, kernels: list[Kernel]):
        """Returns (source, [loaded kernel per kernel])."""
        from tinyjax.devices.cuda_driver import nvrtc_compile
        src = self.render(kernels)
        if not kernels:
            return src, []
        drv = self.driver
        key = hashlib.sha256((drv.arch + "\0" + src).encode()).hexdigest()
        with drv.lock:
            drv.make_current()
            mod = self._modules.get(key)
            if mod is None:
                mod = drv.load_module(nvrtc_compile(src, drv.arch, self.options))
                self._modules[key] = mod
            fns = [_Kernel(drv.get_function(mod, k.name), k) for k in kernels]
        return src, fns

    def make_program(self, fns, kernels: list[Kernel]) -> Optional[_Program]:
        if not kernels:
            return None
        return _Program(self.driver, list(fns), [list(k.buf_ids) for k in kernels])

    def make_launcher(self, fn: _Kernel, kernel: Kernel):
        prog = _Program(self.driver, [fn], [list(range(len(kernel.bufs)))])

        def launch(arrays):
            prog(arrays)
        return launch
