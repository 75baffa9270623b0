"""Backends: one package or module per target (``c``: the ``cpu`` device, C via the system
compiler; ``cuda``: CUDA C++ via NVRTC and the driver API; ``interp``: the numpy reference
interpreter of the kernel IR), their registry, and JAX's device API over them (``devices``,
``default_backend``, ...).

Host backends (``cpu``, ``interp``) run kernels on numpy buffers.  A device backend
(``cuda``) owns its buffers: arrays on it hold a device buffer and copy to the host only
when read (printing, ``np.asarray``).  ``tinyjax.devices`` is JAX's ``devices()`` function.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Optional

import numpy as np

from tinyjax.backends import topology
from tinyjax.backends.base import Backend, HostBackend
from tinyjax.config import DEVICE_NAMES, config

__all__ = ["Backend", "HostBackend", "Device", "get_device", "get_backend", "default_device",
           "devices", "local_devices", "device_count", "local_device_count", "default_backend",
           "backend_available", "register_backend", "process_index", "process_count"]


# user-facing platform names (JAX's) per backend, and the names accepted for each backend
_PLATFORM = {"cpu": "cpu", "cuda": "gpu", "interp": "interp"}
# the names a device is known by (register_backend adds; the flag tinyjax_device checks)
_ALIASES = DEVICE_NAMES


class Device:
    """A device (``jax.Device``): ``platform`` is JAX's name ('cpu', 'gpu'), ``backend``
    tinyjax's ('cpu', 'cuda', 'interp'); ``id`` is unique over the job's devices of that
    backend, ``local_hardware_id`` the device's index within its process."""

    def __init__(self, backend: str, id: int = 0, process_index: int = 0,  # noqa: A002
                 local_hardware_id: Optional[int] = None):
        self.backend = backend
        self.platform = _PLATFORM.get(backend, backend)
        self.id = id
        self.process_index = process_index
        self.local_hardware_id = id if local_hardware_id is None else local_hardware_id

    host_id = property(lambda self: self.process_index)
    client = property(lambda self: None)

    @property
    def device_kind(self) -> str:
        if self.backend == "cuda":
            return get_backend(self).driver.name
        return self.platform

    @property
    def key(self) -> str:
        """How arrays committed to this device name it: the backend's name for this
        process's first device of it, ``'backend:id'`` for the others."""
        first = _first_local_id(self.backend)
        return self.backend if self.id == first else f"{self.backend}:{self.id}"

    def addressable_memories(self) -> list:
        return []

    def __repr__(self) -> str:
        kind = {"cpu": "CpuDevice", "cuda": "CudaDevice"}.get(self.backend, self.backend)
        return f"{kind}(id={self.id})"

    def __str__(self) -> str:
        return f"{self.platform}:{self.id}"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.backend, self.id) == (other.backend, other.id)

    def __hash__(self):
        return hash((self.backend, self.id))

    def __reduce__(self):
        return (_device_by_id, (self.backend, self.id))


def _split_key(name: str) -> tuple[str, Optional[int]]:
    """('cuda', 1) for 'cuda:1', ('gpu' -> 'cuda', None) for a bare name."""
    base, sep, num = name.partition(":")
    backend = _ALIASES.get(base.lower())
    if backend is None or (sep and not num.isdigit()):
        raise ValueError(f"Unknown device or backend {name!r}: expected a Device from "
                         f"tinyjax.devices() or one of {sorted(_ALIASES)}")
    return backend, (int(num) if sep else None)


def backend_name(name: Any) -> str:
    """'cpu' / 'cuda' / 'interp' for a Device, a device key ('cuda:1'), a backend or
    platform name, or None (the default); ValueError for anything else."""
    if isinstance(name, Device):
        return name.backend
    if name is None:
        return default_device()
    b = _ALIASES.get(str(name).lower())
    return b if b is not None else _split_key(str(name))[0]


def default_device() -> str:
    """The default backend: ``jax_default_device`` (``jax.default_device(...)``) when set,
    else the flag ``tinyjax_device`` (from ``TINYJAX_DEVICE`` at import; cpu by default)."""
    chosen = config.jax_default_device
    if chosen is not None:
        return backend_name(chosen)
    return config.tinyjax_device


def get_device(name: Any = None) -> Device:
    """The Device of ``name``: a Device, a device key ('cpu:3'), a backend name (its first
    device in this process) or None (the default backend's)."""
    if isinstance(name, Device):
        return name
    backend, i = _split_key(default_device() if name is None else str(name))
    return _device_by_id(backend, _first_local_id(backend) if i is None else i)


_backends: dict = {}
_device_objects: dict = {}


def _device_by_id(backend: str, i: int) -> Device:
    dev = _device_objects.get((backend, i))
    if dev is None:
        for d in _all_devices(backend):
            _device_objects[(backend, d.id)] = d
        dev = _device_objects.get((backend, i))
        if dev is None:
            raise ValueError(f"no {_PLATFORM.get(backend, backend)} device with id {i}: the "
                             f"devices are {_all_devices(backend)}")
    return dev


def _all_devices(backend: str) -> list[Device]:
    """Every device of ``backend`` in the job, in process order."""
    out = []
    for p, n in enumerate(topology.global_counts(backend)):
        base = len(out)
        out += [Device(backend, base + i, p, i) for i in range(n)]
    return [_device_objects.setdefault((backend, d.id), d) for d in out]


def devices_created() -> bool:
    """Whether any Device object exists yet (the job's layout can no longer change)."""
    return bool(_device_objects)


def _first_local_id(backend: str) -> int:
    return sum(topology.global_counts(backend)[:topology.cluster.process_index])


def _cpu() -> Backend:
    from tinyjax.backends.c.runtime import CBackend
    return CBackend()


def _interp() -> Backend:
    from tinyjax.backends.interp import InterpBackend
    return InterpBackend()


def _cuda(index: int) -> Backend:  # loads the driver here, not at import; NotImplementedError if none
    from tinyjax.backends.cuda.runtime import CUDABackend
    return CUDABackend(index)


def _cuda_count() -> int:
    from tinyjax.backends.cuda.driver import device_count
    return device_count()


_FACTORIES = {"cpu": _cpu, "interp": _interp, "cuda": _cuda}
_PER_DEVICE = {"cuda"}  # backends with one object per device (the others share one)
topology.register_counter("cuda", _cuda_count)


def register_backend(name: str, factory: Callable[[], Backend],
                     platform: Optional[str] = None) -> None:
    """Make a backend available as ``name``: ``factory()`` builds it on first use (raising
    NotImplementedError when the hardware is missing); ``platform``: its JAX platform
    name."""
    _FACTORIES[name] = factory
    _ALIASES[name] = name
    _PLATFORM[name] = platform or name
    _backends.pop(name, None)


def get_backend(name: Any = None) -> Backend:
    """The backend object of a device (a Device, a device key, a backend name -- its first
    local device -- or None: the default)."""
    if isinstance(name, Device):
        backend, index = name.backend, name.local_hardware_id
    elif name is not None and ":" in str(name):
        dev = get_device(name)
        backend, index = dev.backend, dev.local_hardware_id
    else:
        backend, index = backend_name(name), 0
    index = topology.hardware_index(backend, index) if backend in _PER_DEVICE else index
    if backend not in _PER_DEVICE:
        index = 0
    key = (backend, index) if index else backend
    be = _backends.get(key)
    if be is None:
        factory = _FACTORIES[backend]
        be = _backends[key] = factory(index) if backend in _PER_DEVICE else factory()
    return be


def backend_available(name: str) -> bool:
    try:
        get_backend(name)
        return True
    except NotImplementedError:
        return False


def _checked_backend(backend: Optional[str]) -> str:
    try:
        name = backend_name(backend)
    except ValueError:
        raise RuntimeError(f"Unknown backend {backend}. Available: {_present()}") from None
    if not backend_available(name):
        raise RuntimeError(f"Unknown backend: '{backend or name}' requested, but no platforms "
                           f"that are instances of {backend or name} are present. Platforms "
                           f"present are: {','.join(_present())}")
    return name


def devices(backend: Optional[str] = None) -> list[Device]:
    """Every device of ``backend`` ('cpu', 'gpu'/'cuda'; default: the default backend) in
    the job: this process's and, after ``jax.distributed.initialize``, the others'."""
    return _all_devices(_checked_backend(backend))


def _present() -> list[str]:
    return [_PLATFORM[b] for b in _FACTORIES if b != "interp" and backend_available(b)]


def local_devices(process_index: Optional[int] = None, backend: Optional[str] = None,
                  host_id: Optional[int] = None) -> list[Device]:
    """The devices of ``backend`` that process ``process_index`` (default: this one)
    addresses."""
    p = topology.cluster.process_index if process_index is None else process_index
    if host_id is not None:
        p = host_id
    return [d for d in devices(backend) if d.process_index == p]


def device_count(backend: Optional[str] = None) -> int:
    """How many devices ``backend`` has in the job."""
    return len(devices(backend))


def local_device_count(backend: Optional[str] = None) -> int:
    """How many devices of ``backend`` this process addresses."""
    return len(local_devices(backend=backend))


def process_index(backend: Optional[str] = None) -> int:
    """This process's index in the job (0 without ``jax.distributed.initialize``)."""
    return topology.cluster.process_index


def process_count(backend: Optional[str] = None) -> int:
    """How many processes the job has (1 without ``jax.distributed.initialize``)."""
    return topology.cluster.process_count


def process_indices(backend: Optional[str] = None) -> list[int]:
    """The indices of the job's processes that own devices of ``backend``, ascending."""
    return sorted({d.process_index for d in devices(backend)})


def _renamed(old: str, new: Callable[..., Any]) -> Callable[..., Any]:
    """JAX's old ``host_*`` names: ``new`` with a deprecation warning, as JAX warns."""
    def alias(backend: Optional[str] = None) -> Any:
        warnings.warn(f"jax.{old} has been renamed to jax.{new.__name__}. This alias will "
                      "eventually be removed; please update your code.", DeprecationWarning,
                      stacklevel=2)
        return new(backend)
    alias.__name__ = alias.__qualname__ = old
    alias.__doc__ = f"Deprecated name of :func:`{new.__name__}`."
    return alias


host_id = _renamed("host_id", process_index)
host_count = _renamed("host_count", process_count)
host_ids = _renamed("host_ids", process_indices)


def default_backend() -> str:
    """JAX's name of the default platform: 'cpu' or 'gpu'."""
    return _PLATFORM[default_device()]


def to_host(x: Any) -> np.ndarray:
    """A host numpy array for a device buffer (anything with ``.numpy()``) or array-like."""
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)
