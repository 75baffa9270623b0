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

from tinyjax.devices.cuda_render import CUDALanguage, render_source
from tinyjax.lowering.kernel import Kernel

__all__ = ["CUDADevice"]


class _Kernel:
    """A loaded kernel: its function handle, launch size and buffer sizes."""

    def __init__(self, drv, fn, k: Kernel):
        self.fn, self.name = fn, k.name
        self.dims = CUDADevice.language.launch_dims(k)
        if self.dims.shared_bytes > 48 * 1024:
            drv.set_max_shared(fn, self.dims.shared_bytes)
        self.nbytes = [int(n) * np.dtype(dt).itemsize for dt, n in k.bufs]

    def launch(self, drv, ptrs: list[int]):
        grid, block, shared = self.dims
        if grid[0] * grid[1] * grid[2] > 0:
            drv.launch(self.fn, grid, block, ptrs, self.name, shared)


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
            fns = [_Kernel(drv, drv.get_function(mod, k.name), k) for k in kernels]
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
