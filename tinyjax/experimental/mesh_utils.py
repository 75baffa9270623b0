"""``jax.experimental.mesh_utils``: device arrays shaped for a ``Mesh``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinyjax.backends import devices as all_devices

__all__ = ["create_device_mesh", "create_hybrid_device_mesh"]


def create_device_mesh(mesh_shape: Sequence[int], devices: Sequence[Any] | None = None, *,
                       contiguous_submeshes: bool = False,
                       allow_split_physical_axes: bool = False) -> np.ndarray:
    """The devices (default: every device) as an object array of shape ``mesh_shape``,
    in order (tinyjax's devices have no physical topology to follow)."""
    devices = list(all_devices() if devices is None else devices)
    if math.prod(mesh_shape) != len(devices):
        raise ValueError(f"Number of devices {len(devices)} must equal the product of "
                         f"mesh_shape {tuple(mesh_shape)}")
    out = np.empty(len(devices), dtype=object)
    out[:] = devices
    return out.reshape(tuple(mesh_shape))


def create_hybrid_device_mesh(mesh_shape: Sequence[int], dcn_mesh_shape: Sequence[int],
                              devices: Sequence[Any] | None = None, *,
                              process_is_granule: bool = False,
                              should_sort_granules_by_key: bool = True,
                              allow_split_physical_axes: bool = False) -> np.ndarray:
    """A mesh over several processes (granules): ``mesh_shape`` within each times
    ``dcn_mesh_shape`` across them.  tinyjax runs in one process, so ``dcn_mesh_shape``
    must be all ones."""
    if math.prod(dcn_mesh_shape) != 1:
        raise ValueError(f"create_hybrid_device_mesh: dcn_mesh_shape {tuple(dcn_mesh_shape)} "
                         "spans several processes; tinyjax runs in one")
    shape = tuple(a * b for a, b in zip(mesh_shape, dcn_mesh_shape))
    return create_device_mesh(shape, devices)
