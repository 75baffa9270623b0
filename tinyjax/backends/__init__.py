"""Backends: one package or module per target (``c``: the ``cpu`` device, C via the system
compiler; ``cuda``: CUDA C++ via NVRTC and the driver API; ``interp``: the numpy reference
interpreter of the kernel IR), their registry, and JAX's device API over them (``devices``,
``default_backend``, ...).

Host backends (``cpu``, ``interp``) run kernels on numpy buffers.  A device backend
(``cuda``) owns its buffers: arrays on it hold a device buffer and copy to the host only
when read (printing, ``np.asarray``).  ``tinyjax.devices`` is JAX's ``devices()`` function.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from tinyjax.backends.base import Backend, HostBackend
from tinyjax.config import DEVICE_NAMES, config

__all__ = ["Backend", "HostBackend", "Device", "get_device", "get_backend", "default_device",
           "devices", "local_devices", "device_count", "local_device_count", "default_backend",
           "backend_available", "register_backend"]


# user-facing platform names (JAX's) per backend, and the names accepted for each backend
_PLATFORM = {"cpu": "cpu", "cuda": "gpu", "interp": "interp"}
# the names a device is known by (register_backend adds; the flag tinyjax_device checks)
_ALIASES = DEVICE_NAMES


class Device:
    """A device handle (``jax.Device``-like): ``platform`` is JAX's name ('cpu', 'gpu'),
    ``backend`` tinyjax's ('cpu', 'cuda', 'interp')."""

    def __init__(self, backend: str, id: int = 0):  # noqa: A002
        self.backend = backend
        self.platform = _PLATFORM.get(backend, backend)
        self.id = id
        self.process_index = 0

    @property
    def device_kind(self) -> str:
        if self.backend == "cuda":
            return get_backend("cuda").driver.name
        return self.platform

    def __repr__(self) -> str:
        kind = {"cpu": "CpuDevice", "cuda": "CudaDevice"}.get(self.backend, self.backend)
        return f"{kind}(id={self.id})"

    def __str__(self) -> str:
        return f"{self.platform}:{self.id}"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.backend, self.id) == (other.backend, other.id)

    def __hash__(self):
        return hash((self.backend, self.id))


def backend_name(name: Any) -> str:
    """'cpu' / 'cuda' / 'interp' for a Device, a backend or platform name, or None (the
    default); ValueError for anything else."""
    if isinstance(name, Device):
        return name.backend
    if name is None:
        return default_device()
    b = _ALIASES.get(str(name).lower())
    if b is None:
        raise ValueError(f"Unknown device or backend {name!r}: expected a Device from "
                         f"tinyjax.devices() or one of {sorted(_ALIASES)}")
    return b


def default_device() -> str:
    """The default backend: ``jax_default_device`` (``jax.default_device(...)``) when set,
    else the flag ``tinyjax_device`` (from ``TINYJAX_DEVICE`` at import; cpu by default)."""
    chosen = config.jax_default_device
    if chosen is not None:
        return backend_name(chosen)
    return config.tinyjax_device


def get_device(name: Any = None) -> Device:
    return name if isinstance(name, Device) else Device(backend_name(name))


_backends: dict = {}


def _cpu() -> Backend:
    from tinyjax.backends.c.runtime import CBackend
    return CBackend()


def _interp() -> Backend:
    from tinyjax.backends.interp import InterpBackend
    return InterpBackend()


def _cuda() -> Backend:  # loads the driver here, not at import; NotImplementedError if none
    from tinyjax.backends.cuda.runtime import CUDABackend
    return CUDABackend()


_FACTORIES = {"cpu": _cpu, "interp": _interp, "cuda": _cuda}


def register_backend(name: str, factory: Callable[[], Backend],
                     platform: Optional[str] = None) -> None:
    """Make a backend available as ``name``: ``factory()`` builds it on first use (raising
    NotImplementedError when the hardware is missing); ``platform``: its JAX platform name."""
    _FACTORIES[name] = factory
    _ALIASES[name] = name
    _PLATFORM[name] = platform or name
    _backends.pop(name, None)


def get_backend(name: Any = None) -> Backend:
    """The backend object of a device (name, Device or None: the default)."""
    name = backend_name(name)
    be = _backends.get(name)
    if be is None:
        be = _backends[name] = _FACTORIES[name]()
    return be


def backend_available(name: str) -> bool:
    try:
        get_backend(name)
        return True
    except NotImplementedError:
        return False


def devices(backend: Optional[str] = None) -> list[Device]:
    """The devices of ``backend`` ('cpu', 'gpu'/'cuda'; default: the default backend)."""
    try:
        name = backend_name(backend)
    except ValueError:
        raise RuntimeError(f"Unknown backend {backend}. Available: {_present()}") from None
    if not backend_available(name):
        raise RuntimeError(f"Unknown backend: '{backend or name}' requested, but no platforms "
                           f"that are instances of {backend or name} are present. Platforms "
                           f"present are: {','.join(_present())}")
    return [Device(name, 0)]


def _present() -> list[str]:
    return [_PLATFORM[b] for b in _FACTORIES if b != "interp" and backend_available(b)]


def local_devices(process_index: Optional[int] = None, backend: Optional[str] = None
                  ) -> list[Device]:
    """The devices of ``backend`` this process can address (one process: ``devices()``)."""
    return devices(backend)


def device_count(backend: Optional[str] = None) -> int:
    """How many devices ``backend`` has."""
    return len(devices(backend))


local_device_count = device_count


def default_backend() -> str:
    """JAX's name of the default platform: 'cpu' or 'gpu'."""
    return _PLATFORM[default_device()]


def to_host(x: Any) -> np.ndarray:
    """A host numpy array for a device buffer (anything with ``.numpy()``) or array-like."""
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
