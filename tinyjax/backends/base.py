"""What a backend is: the :class:`Backend` protocol the compiler and the runtime program
against, and :class:`HostBackend`, the buffer half shared by backends whose buffers are
numpy arrays."""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from tinyjax.compiler.steps import ARENA_ALIGN, Program
from tinyjax.compiler.walk import LoadedProgram, load_walked

if TYPE_CHECKING:
    from tinyjax.compiler.kernel import Kernel

__all__ = ["Backend", "HostBackend", "host_empty", "host_copy"]

# Below this size an array is numpy's own allocation: aligning it costs more than the few
# vector accesses that straddle a cache line.
ALIGNED_MIN_BYTES = 1024


def host_empty(shape: Sequence[int], dtype: Any,
               min_bytes: int = ALIGNED_MIN_BYTES) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line
    (``ARENA_ALIGN`` bytes), as compiled kernels want it: numpy's allocator only gives
    malloc's 16 bytes, and a loop reading a weight matrix whose rows straddle cache lines
    with 64-byte vectors runs ~10-20 % slower (an RNN scan's step: 1.62 against 1.37 ms).
    Arrays under ``min_bytes`` are numpy's own allocation."""
    dt = np.dtype(dtype)
    nbytes = dt.itemsize
    for d in shape:
        nbytes *= d
    if nbytes < min_bytes:
        return np.empty(shape, dt)
    raw = np.empty(nbytes + ARENA_ALIGN, np.uint8)
    skip = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % ARENA_ALIGN
    return np.ndarray(shape, dt, raw, skip)


def host_copy(value: Any, dtype: Any = None) -> np.ndarray:
    """A C-contiguous copy of ``value`` (cast to ``dtype`` as numpy casts: wrapping, no
    check) whose data starts on a cache line as :func:`host_empty`'s."""
    value = np.asarray(value)
    dt = value.dtype if dtype is None else np.dtype(dtype)
    if value.size * dt.itemsize < ALIGNED_MIN_BYTES:
        return np.array(value, dtype=dt, order="C")
    out = host_empty(value.shape, dt)
    np.copyto(out, value, casting="unsafe")
    return out


@runtime_checkable
class Backend(Protocol):
    """What the compiler and the runtime need of a backend.

    A *buffer* is what the backend computes on: a numpy array on a host backend (``host``
    true), the backend's own device buffer otherwise (with ``.shape``, ``.dtype``,
    ``.reshape`` and ``.numpy()``).  A compiled program's kernels are ``compile``d together
    and run through launchers over a list of buffers indexed by the kernels' ``buf_ids``."""

    name: str
    host: bool
    # the loop IR its renderer reads (:func:`tinyjax.compiler.codegen.attach_loop_ir`):
    # "cpu" (the C renderer's optimised loops), "cuda" (a GPU's launches, read with the
    # backend's ``sms`` and ``wgmma``), "interp" (the plain loop nest) or None
    loop_ir_target: Optional[str]

    # ---- buffers: allocate, copy in, copy, copy out
    def alloc(self, shape: Sequence[int], dtype: Any) -> Any:
        """An uninitialised buffer."""

    def zeros(self, shape: Sequence[int], dtype: Any) -> Any:
        """A buffer of zeros."""

    def put(self, value: Any) -> Any:
        """A new buffer holding a copy of the host array ``value``."""

    def asbuffer(self, value: Any, dtype: Any = None) -> Any:
        """``value`` as a buffer of ``dtype``: the backend's own buffers pass through, host
        values are copied in."""

    def copy(self, buf: Any) -> Any:
        """A new buffer holding a copy of ``buf``."""

    def view(self, buf: Any, byte_offset: int, dtype: Any, size: int) -> Any:
        """A flat buffer of ``size`` elements of ``dtype`` aliasing ``buf``'s memory from
        ``byte_offset`` on (the walker's view of a program's buffers and arena)."""

    def copy_into(self, dst: Any, src: Any) -> None:
        """Copy the flat buffer ``src`` into ``dst`` (same dtype and size)."""

    def to_host(self, buf: Any) -> np.ndarray:
        """A host numpy array holding ``buf``'s values."""

    def synchronize(self) -> None:
        """Wait until everything queued on the backend has run."""

    # ---- kernels: render, compile, launch
    def render(self, kernels: list[Kernel]) -> str:
        """The source of ``kernels`` in the backend's language."""

    def compile(self, kernels: list[Kernel]) -> tuple[str, list]:
        """(source, one compiled function per kernel)."""

    def make_launcher(self, fn: Any, kernel: Kernel) -> Callable[[list], Any]:
        """``launch(buffers)`` running ``kernel`` (compiled as ``fn``) on its buffers; it
        may return the kernel's own timing (seconds, or a function giving them later)."""

    def load_program(self, program: Program) -> LoadedProgram:
        """``program``'s kernels compiled and loaded, with ``run(args, arena)`` running the
        whole program (its constants', inputs' and outputs' buffers, then the call's scratch
        arena).  :func:`tinyjax.compiler.walk.load_walked` walks the steps from the host."""

    def launch_info(self, kernel: Kernel) -> Optional[str]:
        """How ``kernel`` runs (launch geometry), for DEBUG's timing table, or None."""

    # ---- library calls: a step of the program computed by a library routine
    def library_call(self, primitive: Any, in_avals: Sequence[Any], out_avals: Sequence[Any],
                     params: dict) -> Callable[[list, list], None]:
        """``impl(ins, outs)`` computing ``primitive`` (a linear-algebra or FFT primitive)
        with ``params`` from the buffers ``ins`` into the preallocated buffers ``outs``
        (shapes and dtypes ``in_avals`` / ``out_avals``; complex values as complex buffers)."""


class HostBackend:
    """The buffer half of a :class:`Backend` whose buffers are numpy arrays."""

    host = True
    loop_ir_target: Optional[str] = "cpu"

    def alloc(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        return np.empty(shape, dtype)

    def zeros(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        return np.zeros(shape, dtype)

    def put(self, value: Any) -> np.ndarray:
        return host_copy(value)

    def asbuffer(self, value: Any, dtype: Any = None) -> np.ndarray:
        return np.asarray(value, dtype)

    def copy(self, buf: np.ndarray) -> np.ndarray:
        return buf.copy()

    def to_host(self, buf: np.ndarray) -> np.ndarray:
        return buf

    def view(self, buf: np.ndarray, byte_offset: int, dtype: Any, size: int) -> np.ndarray:
        flat = buf.reshape(-1).view(np.uint8)
        return flat[byte_offset:byte_offset + size * dtype.itemsize].view(dtype)

    def copy_into(self, dst: np.ndarray, src: np.ndarray) -> None:
        dst[...] = src

    def synchronize(self) -> None:
        pass

    def load_program(self, program: Program) -> LoadedProgram:
        return load_walked(self, program)

    def launch_info(self, kernel: Kernel) -> Optional[str]:
        return None
