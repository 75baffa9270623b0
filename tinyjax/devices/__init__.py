"""Devices: one module per backend (``cpu``: C via the system compiler; ``interp``: the
numpy reference interpreter of the kernel IR)."""
from __future__ import annotations

import os
from typing import Optional

__all__ = ["Device", "get_device", "get_backend", "default_device"]


class Device:
    """A user-visible device handle (``jax.Device``-like)."""

    def __init__(self, platform: str, id: int = 0):  # noqa: A002
        self.platform = platform
        self.id = id
        self.device_kind = platform

    def __repr__(self) -> str:
        return f"{'CpuDevice' if self.platform == 'cpu' else self.platform}(id={self.id})"

    def __eq__(self, other):
        return isinstance(other, Device) and (self.platform, self.id) == (other.platform, other.id)

    def __hash__(self):
        return hash((self.platform, self.id))


def default_device() -> str:
    return os.environ.get("TINYJAX_DEVICE", "cpu")


def get_device(name: Optional[str] = None) -> Device:
    if isinstance(name, Device):
        return name
    return Device(name or default_device())


_backends: dict = {}


def get_backend(name: str):
    """The compiler backend object for a device name ('cpu', 'interp' or 'cuda')."""
    name = getattr(name, "platform", name) or default_device()
    if name not in _backends:
        if name == "cpu":
            from tinyjax.devices.cpu import CPUDevice
            _backends[name] = CPUDevice()
        elif name == "interp":
            from tinyjax.devices.interp import InterpDevice
            _backends[name] = InterpDevice()
        elif name == "cuda":  # loads the driver here, not at import; NotImplementedError if none
            from tinyjax.devices.cuda import CUDADevice
            _backends[name] = CUDADevice()
        else:
            raise NotImplementedError(f"no backend for device '{name}'")
    return _backends[name]
