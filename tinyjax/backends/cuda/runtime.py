"""The CUDA device: kernel IR -> CUDA C (:mod:`tinyjax.backends.cuda.render`) -> cubin through
NVRTC -> launched with the driver API (:mod:`tinyjax.backends.cuda.driver`, ctypes; nothing is
loaded at import).

Arrays on this device hold a :class:`CUDABuffer`; kernels are launched asynchronously on
the default stream, in program order, so a jitted call returns as soon as its launches are
queued and a host read (``np.asarray``, printing, ``block_until_ready``) waits.  On Hopper
the launches are programmatic dependent launches: a kernel is scheduled while the one before
it finishes, and waits for its results in its first statement (see
:meth:`~tinyjax.backends.cuda.driver.Driver.dependent_config`).  A repeated call replays a CUDA
graph of its launches, in which kernels that do not depend on each other run side by side
on several streams (:mod:`tinyjax.backends.lanes`); the graph as a whole is ordered on the
default stream like any launch.  Device memory is recycled through a pool keyed by size:
freeing with ``cuMemFree`` would synchronise the device, and reusing a block between calls
is safe because every call is ordered on the one stream.  Compiled modules are cached in
memory and on disk (next to the CPU's libraries).
"""
from __future__ import annotations

import hashlib
import math
import os
import threading
import weakref
from typing import Optional, Sequence

import numpy as np

from tinyjax.backends import diskcache
from tinyjax.backends.cuda.library import CUDALibraries
from tinyjax.backends.cuda.render import CUDALanguage, describe_launch, render_source
from tinyjax.backends.cuda.program import load_cuda_program
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.steps import Program
from tinyjax.compiler.walk import LoadedProgram
from tinyjax.config import env_flag, env_str

__all__ = ["CUDABackend", "CUDABuffer"]


class _Pool:
    """Device allocations by rounded size; blocks come back when their buffer dies.  Safe
    from several threads (a block given back by one thread and taken by another is reused
    in stream order: every call queues its work on the one default stream)."""

    ROUND = 512

    def __init__(self, drv):
        self.drv = drv
        self.free: dict[int, list[int]] = {}
        self.cached = 0
        # reentrant: a buffer's __del__ may give its block back while this thread takes one
        self.lock = threading.RLock()

    def take(self, nbytes: int) -> tuple[int, int]:
        n = max(-(-int(nbytes) // self.ROUND), 1) * self.ROUND
        with self.lock:
            blocks = self.free.get(n)
            if blocks:
                self.cached -= n
                return blocks.pop(), n
        try:
            return self.drv.alloc(n), n
        except Exception:  # out of memory: give the cached blocks back and retry once
            self.release()
            return self.drv.alloc(n), n

    def give(self, ptr: int, n: int) -> None:
        with self.lock:
            self.free.setdefault(n, []).append(ptr)
            self.cached += n

    def release(self) -> None:
        with self.lock:
            blocks = [p for ps in self.free.values() for p in ps]
            self.free.clear()
            self.cached = 0
        for p in blocks:
            self.drv.free(p)


class _Allocation:
    """One pooled block; returned to the pool when the last buffer viewing it is gone."""

    __slots__ = ("pool", "ptr", "size")

    def __init__(self, pool: _Pool, nbytes: int):
        self.pool = pool
        self.ptr, self.size = pool.take(nbytes)

    def __del__(self):
        try:
            self.pool.give(self.ptr, self.size)
        except Exception:  # noqa: BLE001 - at interpreter exit the pool may be gone
            pass


class CUDABuffer:
    """A C-contiguous array in device memory: ``ptr`` plus shape and dtype.  Reshapes and
    leading-axis indexing are views of the same memory."""

    __slots__ = ("ptr", "shape", "dtype", "_alloc", "_dev")

    def __init__(self, dev: "CUDABackend", shape: Sequence[int], dtype, alloc: _Allocation,
                 ptr: Optional[int] = None):
        self._dev, self._alloc = dev, alloc
        self.shape = shape if type(shape) is tuple else tuple(map(int, shape))
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        self.ptr = alloc.ptr if ptr is None else ptr

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def numpy(self) -> np.ndarray:
        """Copy to a new host array (waits for the kernels writing it)."""
        out = np.empty(self.shape, self.dtype)
        self._dev.driver.dtoh(out.ctypes.data, self.ptr, out.nbytes)
        return out

    def __array__(self, dtype=None, copy=None):
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def reshape(self, *shape) -> "CUDABuffer":
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = int(np.prod([s for s in shape if s != -1], dtype=np.int64))
            shape = tuple(self.size // max(known, 1) if s == -1 else s for s in shape)
        assert int(np.prod(shape, dtype=np.int64)) == self.size, (shape, self.shape)
        return CUDABuffer(self._dev, shape, self.dtype, self._alloc, self.ptr)

    def view(self, dtype) -> "CUDABuffer":
        """The same memory as ``dtype`` (numpy's ``view``: the last axis rescales), e.g. a
        complex buffer as its interleaved real parts."""
        dtype = np.dtype(dtype)
        old, new = self.dtype.itemsize, dtype.itemsize
        last = self.shape[-1] if self.shape else 1
        if (last * old) % new:
            raise ValueError(f"cannot view {self.dtype} of shape {self.shape} as {dtype}")
        shape = self.shape[:-1] + (last * old // new,) if self.shape else (old // new,)
        return CUDABuffer(self._dev, shape, dtype, self._alloc, self.ptr)

    def _row(self, i: int) -> tuple[int, tuple]:
        i = int(i)
        n = self.shape[0]
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of bounds for axis 0 with size {n}")
        rest = self.shape[1:]
        row_bytes = int(np.prod(rest, dtype=np.int64)) * self.dtype.itemsize
        return self.ptr + (i % n) * row_bytes, rest

    def __getitem__(self, i: int) -> "CUDABuffer":
        ptr, rest = self._row(i)
        return CUDABuffer(self._dev, rest, self.dtype, self._alloc, ptr)

    def __setitem__(self, i: int, value) -> None:
        ptr, rest = self._row(i)
        src = self._dev.asbuffer(value, self.dtype)
        assert src.size == int(np.prod(rest, dtype=np.int64)), (src.shape, rest)
        self._dev.driver.dtod(ptr, src.ptr, src.nbytes)

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    __index__ = __int__

    def __repr__(self) -> str:
        return f"CUDABuffer({self.dtype.name}{list(self.shape)} at {self.ptr:#x})"


class _Module:
    """A loaded CUDA module: unloaded when the last kernel taken from it (an executable's)
    is gone."""

    def __init__(self, drv, image: bytes):
        self.handle = drv.load_module(image)
        weakref.finalize(self, drv.unload_module, self.handle).atexit = False


class _Kernel:
    """A loaded kernel: the functions it launches in order, each with its geometry and a
    parameter block (all of them take the kernel's buffers)."""

    def __init__(self, drv, mod: _Module, k: Kernel):
        from tinyjax.backends.cuda.driver import Params
        self.module = mod  # loaded while this kernel exists
        mod = mod.handle
        self.name = k.name
        self.params = Params(len(k.bufs))
        self.steps = []
        for fname, dims in CUDABackend.language.launches(k):
            fn = drv.get_function(mod, fname)
            if dims.shared_bytes > 48 * 1024:
                drv.set_max_shared(fn, dims.shared_bytes)
            if dims.grid[0] * dims.grid[1] * dims.grid[2] > 0:
                config = drv.dependent_config(dims.grid, dims.block, dims.shared_bytes)
                self.steps.append((fn, dims.grid, dims.block, dims.shared_bytes, fname, config))

    def launch(self, drv, ptrs: list[int], stream=None):
        self.params.set(ptrs)
        ps = self.params.pointer
        for fn, grid, block, shared, fname, config in self.steps:
            drv.launch_params(fn, grid, block, shared, ps, fname, stream, config)




class CUDABackend:
    """The ``cuda`` backend of one GPU (``ordinal``: its index in this process).
    Constructing it loads the driver and raises ``NotImplementedError`` when there is no
    such CUDA device."""

    name = "cuda"
    loop_ir_target = "cuda"  # the renderer spells each kernel's GPU loop IR
    sms = 132  # streaming multiprocessors (an H100's): how many blocks fill the GPU
    host = False  # buffers live on the device (CUDABuffer), not in numpy arrays
    language = CUDALanguage()
    # fused multiply-adds on (NVRTC's default, and XLA's): the transcendental-heavy
    # elementwise kernels are instruction-bound without them; results differ from eager
    # numpy by rounding (~1 ulp per contraction)
    options = ("--fmad=true", "-default-device")

    def __init__(self, ordinal: int = 0):
        from tinyjax.backends.cuda.driver import driver, nvrtc
        self.ordinal = ordinal
        self.driver = driver(ordinal)
        nvrtc()  # fail now (NotImplementedError) rather than at the first compile
        # warpgroup MMA is Hopper's (sm_90a; TINYJAX_CUDA_WGMMA=0 turns it off everywhere)
        self.wgmma = self.driver.compute_capability == (9, 0)
        # loaded modules by source; a module is unloaded when its last kernel is gone
        self._modules: "weakref.WeakValueDictionary[str, _Module]" = \
            weakref.WeakValueDictionary()
        self.pool = _Pool(self.driver)
        self._support: dict = {}   # helper modules (device loops), kept
        self._scalars: dict = {}
        self._libraries = None

    # ---- buffers -----------------------------------------------------------------------------
    def alloc(self, shape: Sequence[int], dtype) -> CUDABuffer:
        """An uninitialised device buffer."""
        if not isinstance(dtype, np.dtype):
            dtype = np.dtype(dtype)
        shape = tuple(map(int, shape))
        return CUDABuffer(self, shape, dtype,
                          _Allocation(self.pool, math.prod(shape) * dtype.itemsize))

    def zeros(self, shape: Sequence[int], dtype) -> CUDABuffer:
        buf = self.alloc(shape, dtype)
        self.driver.memset(buf.ptr, buf.nbytes)
        return buf

    def put(self, value) -> CUDABuffer:
        """Copy a host array to a new device buffer."""
        a = np.asarray(value, order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
        buf = self.alloc(a.shape, a.dtype)
        self.driver.htod(buf.ptr, a.ctypes.data, a.nbytes)
        return buf

    def asbuffer(self, value, dtype=None) -> CUDABuffer:
        """``value`` as a device buffer of ``dtype``: device buffers pass through (a dtype
        change goes through the host), host values are copied in."""
        if type(value) is CUDABuffer:
            if dtype is None or value.dtype == dtype:
                return value
            value = value.numpy()
        a = np.asarray(value)
        if dtype is not None and a.dtype != dtype:
            a = a.astype(dtype)
        if a.ndim == 0:  # scalars (Python numbers in eager ops): one device copy per value
            key = (a.dtype, a.tobytes())
            buf = self._scalars.get(key)
            if buf is None:
                if len(self._scalars) > 4096:
                    self._scalars.clear()
                buf = self._scalars[key] = self.put(a)
            return buf
        return self.put(a)

    def copy(self, buf: CUDABuffer) -> CUDABuffer:
        out = self.alloc(buf.shape, buf.dtype)
        self.driver.dtod(out.ptr, buf.ptr, buf.nbytes)
        return out

    def synchronize(self) -> None:
        self.driver.synchronize()

    def to_host(self, buf: CUDABuffer) -> np.ndarray:
        return buf.numpy()

    # ---- compiling and running ---------------------------------------------------------------
    def render(self, kernels: list[Kernel]) -> str:
        return render_source(kernels)

    def compile(self, kernels: list[Kernel]):
        """Returns (source, [loaded kernel per kernel]); modules are cached in memory and
        their cubins on disk."""
        src = self.render(kernels)
        if not kernels:
            return src, []
        drv = self.driver
        key = hashlib.sha256("\0".join((drv.arch, *self.options, src)).encode()).hexdigest()
        with drv.lock:
            mod = self._modules.get(key)
            if mod is None:
                mod = self._modules[key] = _Module(drv, self._cubin(key, src))
            fns = [_Kernel(drv, mod, k) for k in kernels]
        return src, fns

    def support_functions(self, src: str, names) -> dict:
        """The functions ``names`` of the helper source ``src`` (compiled once, the module
        kept for the life of the backend)."""
        drv = self.driver
        key = hashlib.sha256("\0".join((drv.arch, *self.options, src)).encode()).hexdigest()
        with drv.lock:
            mod = self._support.get(key)
            if mod is None:
                mod = self._support[key] = _Module(drv, self._cubin(key, src))
            return {n: drv.get_function(mod.handle, n) for n in names}

    def _cubin(self, key: str, src: str) -> bytes:
        """The cubin of ``src`` from the disk cache (checked: see
        :mod:`tinyjax.backends.diskcache`), else compiled by NVRTC and stored."""
        from tinyjax.backends.cuda.driver import nvrtc_compile
        image = diskcache.read("cu", key)
        if image is None:
            image = nvrtc_compile(src, self.driver.arch, self.options)
            diskcache.write("cu", key, image)
        return image

    def view(self, buf: CUDABuffer, byte_offset: int, dtype, size: int) -> CUDABuffer:
        """A flat device buffer aliasing ``buf``'s memory from ``byte_offset`` on."""
        return CUDABuffer(self, (int(size),), dtype, buf._alloc, buf.ptr + int(byte_offset))

    def copy_into(self, dst: CUDABuffer, src: CUDABuffer) -> None:
        self.driver.dtod(dst.ptr, src.ptr, dst.nbytes)

    def load_program(self, program: Program) -> LoadedProgram:
        """The program's kernels in one module, run by :func:`load_cuda_program`."""
        return load_cuda_program(self, program)

    def make_launcher(self, fn: _Kernel, kernel: Kernel):
        """Queue one kernel between two events; returns a function that waits for it and
        gives its device time in seconds (the DEBUG=2 table).  Reading the time only after
        every kernel is queued keeps the host's launch latency out of it while the stream
        stays busy."""
        drv = self.driver
        start, end = drv.event(), drv.event()

        def launch(bufs):
            with drv.lock:
                drv.record(start)
                fn.launch(drv, [b.ptr for b in bufs])
                drv.record(end)
            return lambda: drv.elapsed_ms(start, end) / 1e3
        return launch

    def library_call(self, primitive, in_avals, out_avals, params):
        """A library step (cuFFT, cuSOLVER, cuBLAS, or LAPACK on the host): see
        :mod:`tinyjax.backends.cuda.library`."""
        if self._libraries is None:
            self._libraries = CUDALibraries(self)
        return self._libraries.library_call(primitive, in_avals, out_avals, params)

    def launch_info(self, kernel: Kernel) -> str:
        """How ``kernel`` runs here, for the DEBUG=2 table: its plan and launch geometry."""
        return describe_launch(kernel)
