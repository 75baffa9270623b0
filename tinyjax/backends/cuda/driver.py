"""ctypes bindings to the CUDA driver API (``libcuda``) and NVRTC (``libnvrtc``).

Nothing is loaded at import: :func:`driver` and :func:`nvrtc` open the libraries on first
use and raise :class:`CUDANotFoundError` (a ``NotImplementedError``, so ``jit`` falls back to
eager evaluation) when they are missing or no device answers.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
from functools import lru_cache
from typing import Optional

from tinyjax.config import env, env_flag

__all__ = ["CUDANotFoundError", "CUDAError", "Driver", "Params", "driver", "nvrtc",
           "nvrtc_compile"]

CUdeviceptr = ctypes.c_uint64

# cuDeviceGetAttribute
_CC_MAJOR, _CC_MINOR = 75, 76
# cuFuncSetAttribute
_MAX_DYNAMIC_SHARED = 8
# cuLaunchKernelEx: CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
_PROGRAMMATIC_SERIALIZATION = 6

# programmatic dependent launch (Hopper on): TINYJAX_CUDA_PDL=0 turns it off
PDL = env_flag("TINYJAX_CUDA_PDL")


class _LaunchAttribute(ctypes.Structure):  # CUlaunchAttribute: an id and a 64-byte union
    _fields_ = [("id", ctypes.c_int), ("pad", ctypes.c_char * 4), ("value", ctypes.c_int * 16)]


class LaunchConfig(ctypes.Structure):
    """``CUlaunchConfig`` of one kernel's launches (the stream is set per launch)."""
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("sharedMemBytes", ctypes.c_uint), ("hStream", ctypes.c_void_p),
                ("attrs", ctypes.POINTER(_LaunchAttribute)), ("numAttrs", ctypes.c_uint)]


class _KernelNodeParams(ctypes.Structure):  # CUDA_KERNEL_NODE_PARAMS_v3
    _fields_ = [("func", ctypes.c_void_p), ("grid", ctypes.c_uint * 3),
                ("block", ctypes.c_uint * 3), ("sharedMemBytes", ctypes.c_uint),
                ("kernelParams", ctypes.c_void_p), ("extra", ctypes.c_void_p),
                ("kern", ctypes.c_void_p), ("ctx", ctypes.c_void_p)]


class _ConditionalNodeParams(ctypes.Structure):  # CUDA_CONDITIONAL_NODE_PARAMS
    _fields_ = [("handle", ctypes.c_uint64), ("type", ctypes.c_int), ("size", ctypes.c_uint),
                ("phGraph_out", ctypes.POINTER(ctypes.c_void_p)), ("ctx", ctypes.c_void_p)]


class _NodeUnion(ctypes.Union):
    _fields_ = [("reserved1", ctypes.c_longlong * 29), ("kernel", _KernelNodeParams),
                ("conditional", _ConditionalNodeParams)]


class _GraphNodeParams(ctypes.Structure):  # CUgraphNodeParams (256 bytes)
    _anonymous_ = ("u",)
    _fields_ = [("type", ctypes.c_int), ("reserved0", ctypes.c_int * 3), ("u", _NodeUnion),
                ("reserved2", ctypes.c_longlong)]


# CUgraphNodeType, CUgraphConditionalNodeType
_NODE_KERNEL, _NODE_CONDITIONAL = 0, 13
COND_IF, COND_WHILE = 0, 1


class CUDANotFoundError(NotImplementedError):
    """No usable CUDA driver / NVRTC / device."""


class CUDAError(RuntimeError):
    """A CUDA driver call returned an error."""


def _load(names: list[str]) -> Optional[ctypes.CDLL]:
    for n in names:
        if os.path.isabs(n):
            # NVRTC opens its builtins library by name: make the one beside it loadable
            for b in sorted(glob.glob(os.path.join(os.path.dirname(n), "libnvrtc-builtins.so*"))):
                try:
                    ctypes.CDLL(b, mode=ctypes.RTLD_GLOBAL)
                    break
                except OSError:
                    pass
        try:
            return ctypes.CDLL(n)
        except OSError:
            continue
    return None


def library_candidates(stem: str) -> list[str]:
    """The file names to try, in order, for the CUDA library ``lib<stem>`` (the system's,
    under ``CUDA_HOME``/``CUDA_PATH``/``/usr/local/cuda``, then pip's ``nvidia-*`` wheels)."""
    names = [f"lib{stem}.so", f"lib{stem}.so.13", f"lib{stem}.so.12", f"lib{stem}.so.11"]
    roots = [env("CUDA_HOME"), env("CUDA_PATH"), "/usr/local/cuda"]
    for r in roots:
        if r:
            names += sorted(glob.glob(os.path.join(r, "lib*", f"lib{stem}.so*")), reverse=True)
    # pip wheels (nvidia-cuda-nvrtc, nvidia-cufft, ...): site-packages/nvidia/**/lib/
    for p in sys.path:
        if p and os.path.isdir(os.path.join(p, "nvidia")):
            names += sorted(glob.glob(os.path.join(p, "nvidia", "**", f"lib{stem}.so*"),
                                      recursive=True), reverse=True)
    return names


def _nvrtc_candidates() -> list[str]:
    return [n for n in library_candidates("nvrtc") if "builtins" not in os.path.basename(n)]


class _Bound(threading.local):
    """Whether the calling thread has made the primary context current (a CUDA context is
    current per thread: every thread that talks to the device makes it so once)."""
    done = False


class Driver:
    """The driver API of device 0 in its primary context.  Every method may be called from
    any thread: each makes the context current in a thread that has not done so yet."""

    def __init__(self):
        lib = _load(["libcuda.so.1", "libcuda.so"])
        if lib is None:
            raise CUDANotFoundError("no CUDA device: libcuda not found")
        self.lib = lib
        self._sigs()
        try:
            self.check(lib.cuInit(0), "cuInit")
            n = ctypes.c_int()
            self.check(lib.cuDeviceGetCount(ctypes.byref(n)), "cuDeviceGetCount")
        except CUDAError as e:
            raise CUDANotFoundError(f"no CUDA device: {e}") from None
        if n.value < 1:
            raise CUDANotFoundError("no CUDA device: the driver sees none")
        dev = ctypes.c_int()
        self.check(lib.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
        self.device = dev.value
        ctx = ctypes.c_void_p()
        self.check(lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
        self.ctx = ctx
        self._bound = _Bound()
        self.make_current()
        cc = []
        for attr in (_CC_MAJOR, _CC_MINOR):
            v = ctypes.c_int()
            self.check(lib.cuDeviceGetAttribute(ctypes.byref(v), attr, dev), "cuDeviceGetAttribute")
            cc.append(v.value)
        self.compute_capability = (cc[0], cc[1])
        name = ctypes.create_string_buffer(256)
        self.check(lib.cuDeviceGetName(name, 256, dev), "cuDeviceGetName")
        self.name = name.value.decode(errors="replace")
        self.lock = threading.RLock()
        # kernels may start launching while the one before them finishes: each waits for
        # its predecessor's results (griddepcontrol.wait, sm_90 on) before touching memory
        self.dependent_launch = (PDL and cc[0] >= 9 and
                                 hasattr(lib, "cuLaunchKernelEx"))
        if self.dependent_launch:
            self._launch_ex = lib["cuLaunchKernelEx"]
            attr = self._pdl_attribute = _LaunchAttribute()
            attr.id, attr.value[0] = _PROGRAMMATIC_SERIALIZATION, 1

    def _sigs(self):
        L, p, u64 = self.lib, ctypes.c_void_p, ctypes.c_uint64
        L.cuGetErrorName.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        L.cuGetErrorString.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        L.cuCtxSetCurrent.argtypes = [p]
        L.cuModuleLoadData.argtypes = [ctypes.POINTER(p), p]
        L.cuModuleUnload.argtypes = [p]
        L.cuModuleGetFunction.argtypes = [ctypes.POINTER(p), p, ctypes.c_char_p]
        L.cuMemAlloc_v2.argtypes = [ctypes.POINTER(CUdeviceptr), ctypes.c_size_t]
        L.cuMemFree_v2.argtypes = [CUdeviceptr]
        L.cuMemcpyHtoD_v2.argtypes = [CUdeviceptr, p, ctypes.c_size_t]
        L.cuMemcpyDtoH_v2.argtypes = [p, CUdeviceptr, ctypes.c_size_t]
        L.cuMemcpyDtoD_v2.argtypes = [CUdeviceptr, CUdeviceptr, ctypes.c_size_t]
        L.cuMemcpyDtoDAsync_v2.argtypes = [CUdeviceptr, CUdeviceptr, ctypes.c_size_t, p]
        L.cuMemsetD8_v2.argtypes = [CUdeviceptr, ctypes.c_ubyte, ctypes.c_size_t]
        L.cuFuncSetAttribute.argtypes = [p, ctypes.c_int, ctypes.c_int]
        L.cuEventCreate.argtypes = [ctypes.POINTER(p), ctypes.c_uint]
        L.cuEventRecord.argtypes = [p, p]
        L.cuStreamWaitEvent.argtypes = [p, p, ctypes.c_uint]
        L.cuEventSynchronize.argtypes = [p]
        L.cuEventElapsedTime.argtypes = [ctypes.POINTER(ctypes.c_float), p, p]
        L.cuEventDestroy_v2.argtypes = [p]
        del u64
        # the launch without argtypes: the hot path passes only small ints, None and
        # c_void_p objects, and skipping the per-argument conversion halves its Python cost
        self._launch_raw = L["cuLaunchKernel"]
        L.cuStreamCreate.argtypes = [ctypes.POINTER(p), ctypes.c_uint]
        L.cuStreamBeginCapture_v2.argtypes = [p, ctypes.c_int]
        L.cuStreamEndCapture.argtypes = [p, ctypes.POINTER(p)]
        L.cuGraphInstantiateWithFlags.argtypes = [ctypes.POINTER(p), p, ctypes.c_ulonglong]
        L.cuGraphDestroy.argtypes = [p]
        L.cuDriverGetVersion.argtypes = [ctypes.POINTER(ctypes.c_int)]
        if hasattr(L, "cuGraphConditionalHandleCreate"):  # CUDA 12.4 on
            L.cuGraphCreate.argtypes = [ctypes.POINTER(p), ctypes.c_uint]
            L.cuGraphConditionalHandleCreate.argtypes = [ctypes.POINTER(ctypes.c_uint64), p, p,
                                                         ctypes.c_uint, ctypes.c_uint]
        if hasattr(L, "cuGraphAddNode_v2"):
            L.cuGraphAddNode_v2.argtypes = [ctypes.POINTER(p), p, p, p, ctypes.c_size_t, p]
        L.cuGraphExecDestroy.argtypes = [p]
        self._graph_launch = L["cuGraphLaunch"]
        self._capture_streams: list = []

    def check(self, rc: int, what: str):
        if rc != 0:
            nm, s = ctypes.c_char_p(), ctypes.c_char_p()
            self.lib.cuGetErrorName(rc, ctypes.byref(nm))
            self.lib.cuGetErrorString(rc, ctypes.byref(s))
            raise CUDAError(f"{what} failed: {rc} {(nm.value or b'?').decode()} "
                            f"({(s.value or b'').decode()})")

    def make_current(self):
        self.check(self.lib.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")
        self._bound.done = True

    def _bind(self) -> None:
        """Make the context current in the calling thread (once per thread)."""
        if not self._bound.done:
            self.make_current()

    @property
    def arch(self) -> str:
        """The compile target: ``sm_90a`` on Hopper (its warpgroup MMA instructions exist only
        in the architecture-specific target), else ``sm_XY``."""
        cc = self.compute_capability
        return "sm_%d%d" % cc + ("a" if cc == (9, 0) else "")

    def load_module(self, image: bytes) -> ctypes.c_void_p:
        self._bind()
        mod = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(image, len(image))
        self.check(self.lib.cuModuleLoadData(ctypes.byref(mod), buf), "cuModuleLoadData")
        return mod

    def unload_module(self, mod) -> None:
        """Unload ``mod`` once the work queued so far (which may use it) is done; best
        effort (a finaliser calls it)."""
        try:
            self._bind()
            self.synchronize()
            self.lib.cuModuleUnload(mod)
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def get_function(self, mod, name: str) -> ctypes.c_void_p:
        self._bind()
        fn = ctypes.c_void_p()
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(fn), mod, name.encode()),
                   f"cuModuleGetFunction({name})")
        return fn

    def alloc(self, nbytes: int) -> int:
        self._bind()
        ptr = CUdeviceptr()
        self.check(self.lib.cuMemAlloc_v2(ctypes.byref(ptr), max(int(nbytes), 16)), "cuMemAlloc")
        return ptr.value

    def free(self, ptr: int):
        self._bind()
        self.lib.cuMemFree_v2(ptr)  # best effort (also runs at interpreter exit)

    def htod(self, dst: int, host_ptr: int, nbytes: int):
        self._bind()
        if nbytes:
            self.check(self.lib.cuMemcpyHtoD_v2(dst, host_ptr, nbytes), "cuMemcpyHtoD")

    def dtoh(self, host_ptr: int, src: int, nbytes: int):
        self._bind()
        if nbytes:
            self.check(self.lib.cuMemcpyDtoH_v2(host_ptr, src, nbytes), "cuMemcpyDtoH")

    def dtod(self, dst: int, src: int, nbytes: int):
        self._bind()
        if nbytes:
            self.check(self.lib.cuMemcpyDtoD_v2(dst, src, nbytes), "cuMemcpyDtoD")

    def dtod_async(self, dst: int, src: int, nbytes: int, stream=None):
        """A device-to-device copy queued on ``stream`` (a graph capture records it)."""
        self._bind()
        if nbytes:
            self.check(self.lib.cuMemcpyDtoDAsync_v2(dst, src, nbytes, stream),
                       "cuMemcpyDtoDAsync")

    def memset(self, dst: int, nbytes: int, byte: int = 0):
        self._bind()
        if nbytes:
            self.check(self.lib.cuMemsetD8_v2(dst, byte, nbytes), "cuMemsetD8")

    def set_max_shared(self, fn, nbytes: int):
        """Allow ``fn`` more than 48 KiB of dynamic shared memory."""
        self._bind()
        self.check(self.lib.cuFuncSetAttribute(fn, _MAX_DYNAMIC_SHARED, int(nbytes)),
                   "cuFuncSetAttribute")

    def launch(self, fn, grid, block, args: list[int], what: str = "kernel", shared: int = 0):
        """Launch ``fn``; ``grid``/``block``: ints or (x, y, z); ``args``: device pointers,
        one per parameter; ``shared``: dynamic shared memory in bytes."""
        ps = Params(len(args))
        ps.set(args)
        grid = (grid, 1, 1) if isinstance(grid, int) else grid
        block = (block, 1, 1) if isinstance(block, int) else block
        self.launch_params(fn, grid, block, shared, ps.pointer, what)

    def launch_params(self, fn, grid: tuple, block: tuple, shared: int, params, what: str,
                      stream=None, config: Optional[LaunchConfig] = None):
        """``cuLaunchKernel`` with a prepared parameter array (:class:`Params`) on ``stream``
        (default: the legacy default stream, which all our work is ordered on); with a
        ``config`` of :meth:`dependent_config`, ``cuLaunchKernelEx`` with it."""
        self._bind()
        if config is not None:
            config.hStream = stream
            rc = self._launch_ex(ctypes.byref(config), fn, params, None)
        else:
            rc = self._launch_raw(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2],
                                  shared, stream, params, None)
        if rc:
            self.check(rc, f"cuLaunchKernel{'Ex' if config is not None else ''}({what})")

    def dependent_config(self, grid: tuple, block: tuple, shared: int) -> Optional[LaunchConfig]:
        """The launch configuration of a kernel that may start while the previous kernel on
        its stream is still running (programmatic dependent launch: the kernel must wait for
        it with ``griddepcontrol.wait`` before it reads or writes memory, as every kernel of
        :mod:`tinyjax.backends.cuda.render` does); None where the GPU or driver has none."""
        if not self.dependent_launch:
            return None
        c = LaunchConfig()
        c.grid[:], c.block[:], c.sharedMemBytes = grid, block, shared
        c.attrs, c.numAttrs = ctypes.pointer(self._pdl_attribute), 1
        return c

    # ---- CUDA graphs: a recorded sequence of launches, replayed with one call ------------------
    def capture(self, launch, lanes: int = 1) -> ctypes.c_void_p:
        """Record the launches ``launch(streams)`` makes into an executable graph (nothing
        runs now).  ``streams`` are ``lanes`` capturing streams: the others fork from the
        first at the start and join it at the end, and between those points only the
        events the launches record and wait for (:meth:`record`, :meth:`wait`) order them:
        their kernels may run side by side when the graph is replayed."""
        self._bind()
        L = self.lib
        while len(self._capture_streams) < lanes:
            st = ctypes.c_void_p()
            self.check(L.cuStreamCreate(ctypes.byref(st), 1), "cuStreamCreate")  # non-blocking
            self._capture_streams.append(st)
        streams = self._capture_streams[:lanes]
        st = streams[0]
        self.check(L.cuStreamBeginCapture_v2(st, 1), "cuStreamBeginCapture")  # thread-local
        graph = ctypes.c_void_p()
        events = [self.event(timing=False) for _ in streams[1:]]
        try:
            for other, ev in zip(streams[1:], events):  # fork: the others join the capture
                self.record(ev, st)
                self.wait(other, ev)
            launch(streams)
            for other, ev in zip(streams[1:], events):
                self.record(ev, other)
                self.wait(st, ev)
        finally:
            rc = L.cuStreamEndCapture(st, ctypes.byref(graph))
            for ev in events:  # captured waits are graph edges: the events are not kept
                self.event_destroy(ev)
        self.check(rc, "cuStreamEndCapture")
        exe = ctypes.c_void_p()
        try:
            self.check(L.cuGraphInstantiateWithFlags(ctypes.byref(exe), graph, 0),
                       "cuGraphInstantiate")
        finally:
            L.cuGraphDestroy(graph)
        return exe

    # ---- graphs built node by node, with conditional nodes (CUDA 12.4 on) ------------------
    @property
    def conditional_graphs(self) -> bool:
        """Whether the driver builds graphs with conditional (``while``/``if``) nodes."""
        v = ctypes.c_int()
        if self.lib.cuDriverGetVersion(ctypes.byref(v)) or v.value < 12040:
            return False
        return all(hasattr(self.lib, f) for f in ("cuGraphConditionalHandleCreate",
                                                   "cuGraphAddNode_v2", "cuGraphCreate"))

    def graph_create(self) -> ctypes.c_void_p:
        self._bind()
        g = ctypes.c_void_p()
        self.check(self.lib.cuGraphCreate(ctypes.byref(g), 0), "cuGraphCreate")
        return g

    def conditional_handle(self, graph) -> int:
        """A condition of ``graph``'s conditional nodes, 0 at every launch until a kernel
        sets it (``cudaGraphSetConditional``)."""
        h = ctypes.c_uint64()
        self.check(self.lib.cuGraphConditionalHandleCreate(ctypes.byref(h), graph, self.ctx,
                                                           0, 0),
                   "cuGraphConditionalHandleCreate")
        return h.value

    def _add_node(self, graph, deps: list, params: _GraphNodeParams) -> ctypes.c_void_p:
        node = ctypes.c_void_p()
        arr = (ctypes.c_void_p * max(len(deps), 1))(*deps)
        self.check(self.lib.cuGraphAddNode_v2(ctypes.byref(node), graph, arr, None, len(deps),
                                              ctypes.byref(params)), "cuGraphAddNode")
        return node

    def add_kernel_node(self, graph, deps: list, fn, grid: tuple, block: tuple, shared: int,
                        kernel_params) -> ctypes.c_void_p:
        """A kernel node after ``deps`` (its parameters are copied now)."""
        p = _GraphNodeParams()
        p.type = _NODE_KERNEL
        k = p.kernel
        k.func = fn.value if isinstance(fn, ctypes.c_void_p) else fn
        k.grid[:], k.block[:], k.sharedMemBytes = grid, block, shared
        k.kernelParams = kernel_params
        return self._add_node(graph, deps, p)

    def add_conditional_node(self, graph, deps: list, handle: int, kind: int
                             ) -> tuple[ctypes.c_void_p, ctypes.c_void_p]:
        """A ``while`` or ``if`` node of ``handle`` after ``deps``; returns (node, its body
        graph, to be filled)."""
        p = _GraphNodeParams()
        p.type = _NODE_CONDITIONAL
        c = p.conditional
        c.handle, c.type, c.size, c.ctx = handle, kind, 1, self.ctx
        node = self._add_node(graph, deps, p)
        return node, ctypes.c_void_p(c.phGraph_out[0])

    def instantiate(self, graph) -> ctypes.c_void_p:
        """The executable graph of ``graph`` (which is destroyed)."""
        exe = ctypes.c_void_p()
        try:
            self.check(self.lib.cuGraphInstantiateWithFlags(ctypes.byref(exe), graph, 0),
                       "cuGraphInstantiate")
        finally:
            self.lib.cuGraphDestroy(graph)
        return exe

    def graph_launch(self, exe) -> None:
        """Queue an executable graph on the default stream."""
        self._bind()
        rc = self._graph_launch(exe, None)
        if rc:
            self.check(rc, "cuGraphLaunch")

    def graph_destroy(self, exe) -> None:
        self._bind()
        self.lib.cuGraphExecDestroy(exe)  # best effort (also at interpreter exit)

    def event(self, timing: bool = True) -> ctypes.c_void_p:
        """A new event; ``timing=False``: one that only orders work (cheaper to record)."""
        self._bind()
        ev = ctypes.c_void_p()
        self.check(self.lib.cuEventCreate(ctypes.byref(ev), 0 if timing else 2), "cuEventCreate")
        return ev

    def record(self, ev, stream=None):
        """Record ``ev`` after the work queued so far on ``stream`` (default: the default
        stream)."""
        self._bind()
        self.check(self.lib.cuEventRecord(ev, stream), "cuEventRecord")

    def event_destroy(self, ev) -> None:
        self._bind()
        self.lib.cuEventDestroy_v2(ev)

    def wait(self, stream, ev) -> None:
        """Work queued on ``stream`` from now on waits for the last recording of ``ev``."""
        self._bind()
        self.check(self.lib.cuStreamWaitEvent(stream, ev, 0), "cuStreamWaitEvent")

    def elapsed_ms(self, start, end) -> float:
        """Milliseconds between two recorded events (waits for ``end``)."""
        self._bind()
        self.check(self.lib.cuEventSynchronize(end), "cuEventSynchronize")
        ms = ctypes.c_float()
        self.check(self.lib.cuEventElapsedTime(ctypes.byref(ms), start, end), "cuEventElapsedTime")
        return ms.value

    def synchronize(self, what: str = ""):
        self._bind()
        self.check(self.lib.cuCtxSynchronize(), f"cuCtxSynchronize{' after ' + what if what else ''}")


class Params:
    """The parameter block of one launch of a kernel over ``n`` device pointers: made once
    and refilled per launch (``cuLaunchKernel`` copies the values when it is called)."""

    __slots__ = ("values", "pointer", "_array")

    def __init__(self, n: int):
        self.values = (CUdeviceptr * max(n, 1))()
        base = ctypes.addressof(self.values)
        self._array = (ctypes.c_void_p * max(n, 1))(*[base + 8 * i for i in range(max(n, 1))])
        self.pointer = ctypes.cast(self._array, ctypes.c_void_p)

    def set(self, ptrs: list[int]) -> None:
        self.values[:len(ptrs)] = ptrs


@lru_cache(maxsize=None)
def driver() -> Driver:
    """The process's driver handle (raises :class:`CUDANotFoundError` without a device)."""
    return Driver()


@lru_cache(maxsize=None)
def nvrtc() -> ctypes.CDLL:
    lib = _load(_nvrtc_candidates())
    if lib is None:
        raise CUDANotFoundError("no CUDA compiler: libnvrtc not found (set CUDA_HOME)")
    p = ctypes.c_void_p
    lib.nvrtcCreateProgram.argtypes = [ctypes.POINTER(p), ctypes.c_char_p, ctypes.c_char_p,
                                       ctypes.c_int, p, p]
    lib.nvrtcCompileProgram.argtypes = [p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
    lib.nvrtcGetProgramLogSize.argtypes = [p, ctypes.POINTER(ctypes.c_size_t)]
    lib.nvrtcGetProgramLog.argtypes = [p, ctypes.c_char_p]
    lib.nvrtcGetCUBINSize.argtypes = [p, ctypes.POINTER(ctypes.c_size_t)]
    lib.nvrtcGetCUBIN.argtypes = [p, ctypes.c_char_p]
    lib.nvrtcDestroyProgram.argtypes = [ctypes.POINTER(p)]
    lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]
    lib.nvrtcGetErrorString.restype = ctypes.c_char_p
    return lib


def nvrtc_compile(src: str, arch: str, options: tuple = ()) -> bytes:
    """CUDA C++ source -> a cubin for ``arch`` (e.g. ``sm_90``) through NVRTC."""
    lib = nvrtc()
    prog = ctypes.c_void_p()
    rc = lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"tinyjax.cu", 0, None, None)
    if rc:
        raise RuntimeError(f"nvrtcCreateProgram: {lib.nvrtcGetErrorString(rc).decode()}")
    try:
        opts = [f"--gpu-architecture={arch}".encode(), *[o.encode() for o in options]]
        arr = (ctypes.c_char_p * len(opts))(*opts)
        rc = lib.nvrtcCompileProgram(prog, len(opts), arr)
        n = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
        log = ctypes.create_string_buffer(n.value + 1)
        lib.nvrtcGetProgramLog(prog, log)
        if rc:
            raise RuntimeError(f"tinyjax: CUDA compilation failed "
                               f"({lib.nvrtcGetErrorString(rc).decode()}):\n"
                               f"{log.value.decode(errors='replace')}\n--- source ---\n{src}")
        lib.nvrtcGetCUBINSize(prog, ctypes.byref(n))
        out = ctypes.create_string_buffer(n.value)
        rc = lib.nvrtcGetCUBIN(prog, out)
        if rc:
            raise RuntimeError(f"nvrtcGetCUBIN: {lib.nvrtcGetErrorString(rc).decode()}")
        return out.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
