"""``jax.dlpack``: arrays exchanged with other libraries through the DLPack protocol.

``from_dlpack`` takes any object with ``__dlpack__`` (a numpy array, a CPU torch tensor,
...) whose memory is on the host; tinyjax arrays export themselves the same way
(``np.from_dlpack(x)``, ``torch.from_dlpack(x)``) from their host copy.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes

__all__ = ["from_dlpack", "is_supported_dtype"]


def is_supported_dtype(dtype: Any) -> bool:
    """Whether arrays of ``dtype`` can be exchanged."""
    dt = np.dtype(dtype)
    return dt == np.bool_ or dt.kind in "iufc" or dt == dtypes.bfloat16


def from_dlpack(external_array: Any, device: Any = None, copy: bool | None = None) -> Any:
    """A tinyjax array with the contents of ``external_array`` (copied)."""
    from tinyjax.dispatch import device_put
    from tinyjax.numpy import asarray
    if not hasattr(external_array, "__dlpack__"):
        raise TypeError(f"from_dlpack: {type(external_array).__name__} does not implement "
                        "the DLPack protocol (__dlpack__)")
    host = np.from_dlpack(external_array)
    if not is_supported_dtype(host.dtype):
        raise TypeError(f"from_dlpack: unsupported dtype {host.dtype}")
    out = asarray(np.array(host, copy=True))
    return out if device is None else device_put(out, device)
