"""Collectives between GPUs through NCCL, loaded with ctypes.

The library is looked for where it is usually installed: ``TINYJAX_NCCL_LIBRARY`` if set,
the ``nvidia-nccl-cu*`` wheel's (``pip install tinyjax[nccl]``), then ``libnccl.so.2`` on
the system's library path.  NVLink multicast (NVLS) stays off (``NCCL_NVLS_ENABLE=0``
unless the user set it) before the library loads.

A group of GPUs of one process gets its communicators from ``ncclCommInitAll``; a group
spanning processes (``jax.distributed``) from ``ncclCommInitRank``, rank 0's
``ncclUniqueId`` handed to the others through the job's coordinator.  Every operation runs
on the device's stream -- the default stream, which its kernels are ordered on -- so it
starts when the kernels before it are done and the kernels after it wait for it, without a
host synchronisation.  A communicator of one GPU (a one-GPU machine) works the same way.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import threading
from functools import lru_cache
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax.backends.cuda.driver import forget_current_context
from tinyjax.config import env, set_env_default

__all__ = ["NCCLError", "nccl", "unique_id", "NcclCommunicator", "communicators_in_process",
           "communicators_across_processes"]

_DTYPES = {np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int32): 2,
           np.dtype(np.uint32): 3, np.dtype(np.int64): 4, np.dtype(np.uint64): 5,
           np.dtype(np.float16): 6, np.dtype(np.float32): 7, np.dtype(np.float64): 8,
           np.dtype(np.bool_): 1}
_OPS = {"sum": 0, "prod": 1, "max": 2, "min": 3}
_UNIQUE_ID_BYTES = 128


class NCCLError(RuntimeError):
    """NCCL is missing or an NCCL call failed."""


class UniqueId(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_byte * _UNIQUE_ID_BYTES)]


def _candidates() -> list[str]:
    names = []
    given = env("TINYJAX_NCCL_LIBRARY")
    if given:
        names.append(given)
    for root in sys.path:  # the nvidia-nccl-cu* wheels (nvidia/nccl/lib; nvidia/cu13/lib)
        for folder in ("nccl", "cu*"):
            names += sorted(glob.glob(os.path.join(root, "nvidia", folder, "lib",
                                                   "libnccl.so*")), reverse=True)
    return names + ["libnccl.so.2", "libnccl.so"]


@lru_cache(maxsize=None)
def nccl() -> ctypes.CDLL:
    """The NCCL library, its functions' signatures declared (NCCLError if none loads)."""
    set_env_default("NCCL_NVLS_ENABLE", "0")
    errors = []
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as e:
            errors.append(f"{name}: {e}")
    else:
        raise NCCLError("NCCL not found (install it with `pip install nvidia-nccl-cu12`, or "
                        "set TINYJAX_NCCL_LIBRARY): " + "; ".join(errors))
    p, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    lib.ncclGetErrorString.argtypes = [i]
    lib.ncclGetErrorString.restype = ctypes.c_char_p
    lib.ncclGetUniqueId.argtypes = [ctypes.POINTER(UniqueId)]
    lib.ncclCommInitRank.argtypes = [ctypes.POINTER(p), i, UniqueId, i]
    lib.ncclCommInitAll.argtypes = [ctypes.POINTER(p), i, ctypes.POINTER(i)]
    lib.ncclCommDestroy.argtypes = [p]
    lib.ncclAllReduce.argtypes = [p, p, sz, i, i, p, p]
    lib.ncclAllGather.argtypes = [p, p, sz, i, p, p]
    lib.ncclReduceScatter.argtypes = [p, p, sz, i, i, p, p]
    lib.ncclSend.argtypes = [p, sz, i, i, p, p]
    lib.ncclRecv.argtypes = [p, sz, i, i, p, p]
    return lib


def _check(rc: int, what: str) -> None:
    if rc != 0:
        msg = nccl().ncclGetErrorString(rc)
        raise NCCLError(f"{what} failed: {(msg or b'?').decode()} (error {rc})")


def unique_id() -> bytes:
    """A fresh ``ncclUniqueId`` (made by one rank, handed to the others)."""
    uid = UniqueId()
    _check(nccl().ncclGetUniqueId(ctypes.byref(uid)), "ncclGetUniqueId")
    return bytes(bytearray(uid.internal))


def _dtype(dt: Any) -> int:
    dt = np.dtype(dt)
    if dt not in _DTYPES:
        if dt.name == "bfloat16":
            return 9
        raise NCCLError(f"NCCL has no type for {dt.name}")
    return _DTYPES[dt]


class NcclCommunicator:
    """One GPU's end of an NCCL communicator (the Communicator protocol of
    :mod:`tinyjax.backends.collectives`); buffers are the CUDA backend's, results new
    buffers of the same device."""

    def __init__(self, comm: ctypes.c_void_p, rank: int, size: int, backend: Any):
        self.comm, self.rank, self.size, self.backend = comm, rank, size, backend
        self.stream = None  # the default stream, which the device's kernels run on

    def _out(self, shape: Sequence[int], dtype: Any):
        return self.backend.alloc(tuple(shape), dtype)

    def all_reduce(self, x: Any, op: str) -> Any:
        out = self._out(x.shape, x.dtype)
        self.backend.driver._bind()
        _check(nccl().ncclAllReduce(x.ptr, out.ptr, x.size, _dtype(x.dtype), _OPS[op],
                                    self.comm, self.stream), "ncclAllReduce")
        return out

    def all_gather(self, x: Any) -> Any:
        out = self._out((x.shape[0] * self.size,) + tuple(x.shape[1:]), x.dtype)
        self.backend.driver._bind()
        _check(nccl().ncclAllGather(x.ptr, out.ptr, x.size, _dtype(x.dtype), self.comm,
                                    self.stream), "ncclAllGather")
        return out

    def reduce_scatter(self, x: Any, op: str) -> Any:
        out = self._out((x.shape[0] // self.size,) + tuple(x.shape[1:]), x.dtype)
        self.backend.driver._bind()
        _check(nccl().ncclReduceScatter(x.ptr, out.ptr, out.size, _dtype(x.dtype), _OPS[op],
                                        self.comm, self.stream), "ncclReduceScatter")
        return out

    def permute(self, x: Any, pairs: Sequence[tuple[int, int]]) -> Any:
        out = self.backend.zeros(x.shape, x.dtype)
        lib, dt = nccl(), _dtype(x.dtype)
        self.backend.driver._bind()
        _check(lib.ncclGroupStart(), "ncclGroupStart")
        try:
            for src, dst in pairs:
                if src == self.rank:
                    _check(lib.ncclSend(x.ptr, x.size, dt, dst, self.comm, self.stream),
                           "ncclSend")
                if dst == self.rank:
                    _check(lib.ncclRecv(out.ptr, out.size, dt, src, self.comm, self.stream),
                           "ncclRecv")
        finally:
            _check(lib.ncclGroupEnd(), "ncclGroupEnd")
        return out

    def all_to_all(self, x: Any) -> Any:
        out = self._out(x.shape, x.dtype)
        lib, dt = nccl(), _dtype(x.dtype)
        block = x.size // self.size
        nbytes = block * x.dtype.itemsize
        self.backend.driver._bind()
        _check(lib.ncclGroupStart(), "ncclGroupStart")
        try:
            for peer in range(self.size):
                _check(lib.ncclSend(x.ptr + peer * nbytes, block, dt, peer, self.comm,
                                    self.stream), "ncclSend")
                _check(lib.ncclRecv(out.ptr + peer * nbytes, block, dt, peer, self.comm,
                                    self.stream), "ncclRecv")
        finally:
            _check(lib.ncclGroupEnd(), "ncclGroupEnd")
        return out


_init_lock = threading.Lock()


def communicators_in_process(groups: list[list[Any]],
                             backend_of: Callable[[Any], Any]) -> dict:
    """``{device: NcclCommunicator}`` for groups of GPUs of this process (one
    ``ncclCommInitAll`` per group; ``backend_of(device)`` gives its CUDA backend)."""
    out = {}
    lib = nccl()
    with _init_lock:
        for group in groups:
            n = len(group)
            comms = (ctypes.c_void_p * n)()
            ordinals = (ctypes.c_int * n)(*[backend_of(d).ordinal for d in group])
            _check(lib.ncclCommInitAll(comms, n, ordinals), "ncclCommInitAll")
            forget_current_context()  # NCCL set each device current in turn
            for rank, d in enumerate(group):
                out[d] = NcclCommunicator(ctypes.c_void_p(comms[rank]), rank, n, backend_of(d))
    return out


def communicators_across_processes(groups: list[list[Any]], backend_of: Callable[[Any], Any],
                                   is_local: Callable[[Any], bool],
                                   exchange_id: Callable[[str, Optional[bytes]], bytes]
                                   ) -> dict:
    """``{device: NcclCommunicator}`` for this process's devices of groups spanning
    processes.  ``exchange_id(key, uid_or_None)``: the process owning a group's rank 0
    publishes its unique id under ``key``, the others get it."""
    out = {}
    lib = nccl()
    with _init_lock:
        for g, group in enumerate(groups):
            mine = [(rank, d) for rank, d in enumerate(group) if is_local(d)]
            if not mine:
                continue
            key = "nccl/" + ",".join(str(d.id) for d in group)
            uid_bytes = exchange_id(key, unique_id() if is_local(group[0]) else None)
            uid = UniqueId()
            ctypes.memmove(ctypes.byref(uid), uid_bytes, _UNIQUE_ID_BYTES)
            comms = [ctypes.c_void_p() for _ in mine]
            _check(lib.ncclGroupStart(), "ncclGroupStart")
            try:
                for (rank, d), comm in zip(mine, comms):
                    backend_of(d).driver._bind()  # NCCL takes the current device
                    _check(lib.ncclCommInitRank(ctypes.byref(comm), len(group), uid, rank),
                           "ncclCommInitRank")
            finally:
                _check(lib.ncclGroupEnd(), "ncclGroupEnd")
            for (rank, d), comm in zip(mine, comms):
                out[d] = NcclCommunicator(comm, rank, len(group), backend_of(d))
    return out
