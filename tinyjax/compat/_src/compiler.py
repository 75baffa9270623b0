"""``jax._src.compiler``: the function every compilation goes through.

Chex's ``restrict_backends`` replaces ``backend_compile_and_load`` on this module to forbid
compiling for some platforms; tinyjax's jit calls it (through
:func:`tinyjax.dispatch.register_compile_entry`) so that such a replacement takes effect."""
from __future__ import annotations

import sys
from typing import Any

from tinyjax.backends import Device
from tinyjax.dispatch import compile_for_device, register_compile_entry
from tinyjax.jaxpr import ClosedJaxpr

__all__ = ["backend_compile_and_load"]


def backend_compile_and_load(backend: Device, closed_jaxpr: ClosedJaxpr) -> Any:
    """``closed_jaxpr`` compiled for the device ``backend`` (its ``platform``: 'cpu' or
    'gpu')."""
    return compile_for_device(closed_jaxpr, backend)


_this_module = sys.modules[__name__]
# looked up on the module at each call, so that a replacement of the name takes effect
register_compile_entry(lambda closed, device:
                       _this_module.backend_compile_and_load(device, closed))
