"""``jax.memory``: the memory spaces an array may live in (``jax.memory.Space``).

``jax.device_put(x, jax.memory.Space.Host)`` asks for ``x`` in host memory on its device.
tinyjax keeps every array in its device's one memory (on the CPU that memory is the
host's): a space is accepted wherever JAX accepts one and the array stays where it is.
"""
from __future__ import annotations

import enum

__all__ = ["Space"]


class MemorySpace(enum.Enum):
    """A memory space: the device's own memory, the host's, or any."""
    Device = enum.auto()
    Host = enum.auto()
    Any = enum.auto()

    def __repr__(self) -> str:
        return f"MemorySpace.{self.name}"

    __hash__ = object.__hash__


Space = MemorySpace  # (JAX's class is called MemorySpace, jax.memory holds just Space)
del MemorySpace
