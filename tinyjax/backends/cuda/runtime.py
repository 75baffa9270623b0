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
from collections import OrderedDict
from typing import Optional, Sequence

import numpy as np

from tinyjax.backends.cuda.library import CUDALibraries
from tinyjax.backends.cuda.render import CUDALanguage, describe_launch, render_source
from tinyjax.backends.lanes import plan_lanes
from tinyjax.compiler.kernel import Kernel
from tinyjax.config import env_flag, env_str

__all__ = ["CUDABackend", "CUDABuffer"]


class _Pool:
    """Device allocations by rounded size; blocks come back when their buffer dies."""

    ROUND = 512

    def __init__(self, drv):
        self.drv = drv
        self.free: dict[int, list[int]] = {}
        self.cached = 0

    def take(self, nbytes: int) -> tuple[int, int]:
        n = max(-(-int(nbytes) // self.ROUND), 1) * self.ROUND
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
        self.free.setdefault(n, []).append(ptr)
        self.cached += n

    def release(self) -> None:
        for blocks in self.free.values():
            for p in blocks:
                self.drv.free(p)
        self.free.clear()
        self.cached = 0


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


class _Kernel:
    """A loaded kernel: the functions it launches in order, each with its geometry and a
    parameter block (all of them take the kernel's buffers)."""

    def __init__(self, drv, mod, k: Kernel):
        from tinyjax.backends.cuda.driver import Params
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


# CUDA graphs for repeated calls (TINYJAX_CUDA_GRAPHS=0 turns them off)
GRAPHS = env_flag("TINYJAX_CUDA_GRAPHS")


def _lanes_setting() -> int:
    """How many streams a graph's independent kernels are spread over: TINYJAX_CUDA_LANES
    (default 3; 1 keeps every kernel on one stream)."""
    raw = env_str("TINYJAX_CUDA_LANES")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"TINYJAX_CUDA_LANES must be a number of streams, got {raw!r}") from None


LANES = _lanes_setting()


class _Graphs:
    """The CUDA graphs of one program, keyed by the buffer addresses of a call.

    A graph bakes its launches' arguments in, so it serves exactly the calls with the same
    addresses -- which is what a training loop makes: the intermediates are the program's
    own, and the pool hands the outputs the blocks that the previous step's arrays gave
    back, so a step's addresses repeat every call or two.  An address tuple is recorded on
    its second sighting (one-off calls cost no capture) and the last ``KEEP`` graphs are
    kept.  ``record(ptrs, streams)`` queues a call's launches on the capturing streams and
    returns the events it recorded (destroyed once the graph is made)."""

    KEEP = 8
    SEEN = 64

    def __init__(self, drv, record, lanes: int):
        self.drv, self.record, self.lanes = drv, record, lanes
        self.graphs: "OrderedDict[tuple, object]" = OrderedDict()
        self.seen: "OrderedDict[tuple, None]" = OrderedDict()

    def replay(self, ptrs: tuple) -> bool:
        """Launch the graph of ``ptrs`` (recording it if these addresses were seen before);
        False when the caller should launch the kernels itself."""
        exe = self.graphs.get(ptrs)
        if exe is None:
            if ptrs not in self.seen:
                self.seen[ptrs] = None
                if len(self.seen) > self.SEEN:
                    self.seen.popitem(last=False)
                return False
            spent: list = []
            try:
                exe = self.graphs[ptrs] = self.drv.capture(
                    lambda st: spent.extend(self.record(ptrs, st)), self.lanes)
            finally:
                for ev in spent:
                    self.drv.event_destroy(ev)
            if len(self.graphs) > self.KEEP:
                self.drv.graph_destroy(self.graphs.popitem(last=False)[1])
        else:
            self.graphs.move_to_end(ptrs)
        self.drv.graph_launch(exe)
        return True

    def __del__(self):
        try:
            for exe in self.graphs.values():
                self.drv.graph_destroy(exe)
        except Exception:  # noqa: BLE001 - at interpreter exit the driver may be gone
            pass


class CUDABackend:
    """The ``cuda`` backend (device 0).  Constructing it loads the driver and raises
    ``NotImplementedError`` when there is no CUDA device."""

    name = "cuda"
    loop_ir_target = "cuda"  # the renderer spells each kernel's GPU loop IR
    sms = 132  # streaming multiprocessors (an H100's): how many blocks fill the GPU
    host = False  # buffers live on the device (CUDABuffer), not in numpy arrays
    language = CUDALanguage()
    # fused multiply-adds on (NVRTC's default, and XLA's): the transcendental-heavy
    # elementwise kernels are instruction-bound without them; results differ from eager
    # numpy by rounding (~1 ulp per contraction)
    options = ("--fmad=true", "-default-device")

    def __init__(self):
        from tinyjax.backends.cuda.driver import driver, nvrtc
        self.driver = driver()
        nvrtc()  # fail now (NotImplementedError) rather than at the first compile
        # warpgroup MMA is Hopper's (sm_90a; TINYJAX_CUDA_WGMMA=0 turns it off everywhere)
        self.wgmma = self.driver.compute_capability == (9, 0)
        self._modules: dict[str, object] = {}
        self.pool = _Pool(self.driver)
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
                mod = self._modules[key] = drv.load_module(self._cubin(key, src))
            fns = [_Kernel(drv, mod, k) for k in kernels]
        return src, fns

    def _cubin(self, key: str, src: str) -> bytes:
        from tinyjax.backends.c.compiler import cache_dir
        from tinyjax.backends.cuda.driver import nvrtc_compile
        path = os.path.join(cache_dir(), f"cu_{key[:40]}.cubin")
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            pass
        image = nvrtc_compile(src, self.driver.arch, self.options)
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(image)
            os.replace(tmp, path)
        except OSError:  # a read-only cache is not an error
            pass
        return image

    def make_program(self, fns: list[_Kernel], kernels: list[Kernel]):
        """``run(bufs)``: queue every kernel over ``bufs`` (CUDABuffers indexed by program
        buffer id); returns without waiting.  A call whose buffer addresses were seen before
        replays a CUDA graph of its launches (one driver call instead of one per kernel;
        see :class:`_Graphs`), in which kernels that do not depend on each other run on
        separate streams, side by side (:mod:`tinyjax.backends.lanes`)."""
        if not kernels:
            return None
        drv = self.driver
        plan = [(f, list(k.buf_ids)) for f, k in zip(fns, kernels)]
        nbytes = [[np.dtype(dt).itemsize * n for dt, n in k.bufs] for k in kernels]
        n_outs = [k.n_outs for k in kernels]

        def launch_all(ptrs, stream=None):
            for f, ids in plan:
                f.launch(drv, [ptrs[b] for b in ids], stream)

        def record(ptrs, streams):
            if len(streams) == 1:
                launch_all(ptrs, streams[0])
                return []
            spans = [[(ptrs[b], ptrs[b] + n) for b, n in zip(ids, sizes)]
                     for (_, ids), sizes in zip(plan, nbytes)]
            launches = plan_lanes([s[:o] for s, o in zip(spans, n_outs)],
                                  [s[o:] for s, o in zip(spans, n_outs)], len(streams))
            done = {i: drv.event(timing=False) for launch in launches for i in launch.waits}
            for j, lane, waits in launches:
                for i in waits:
                    drv.wait(streams[lane], done[i])
                f, ids = plan[j]
                f.launch(drv, [ptrs[b] for b in ids], streams[lane])
                if j in done:
                    drv.record(done[j], streams[lane])
            return list(done.values())

        graphs = _Graphs(drv, record, LANES) if GRAPHS and len(kernels) > 1 else None

        def run(bufs):
            ptrs = tuple([0 if b is None else b.ptr for b in bufs])
            with drv.lock:  # the kernels' parameter blocks are shared by every call
                if graphs is None or not graphs.replay(ptrs):
                    launch_all(ptrs)
        return run

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
