"""``jax._src.xla_bridge``: the registry of initialized XLA backends, which Chex reads
(``_backends``) before it sets ``XLA_FLAGS`` for a number of CPU devices.  tinyjax's
backends need no initialization that such flags must precede, so none is listed; tinyjax
does not read ``XLA_FLAGS`` (its number of CPU devices is ``jax_num_cpu_devices``)."""
from typing import Any

__all__ = ["_backends"]

_backends: dict[str, Any] = {}
