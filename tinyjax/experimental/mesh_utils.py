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
    """A mesh over several granules (tinyjax's granule is a process, whichever
    ``process_is_granule`` says): each granule's devices shaped as ``mesh_shape``, the
    granules laid out as ``dcn_mesh_shape``; the result's shape is their elementwise
    product."""
    devices = list(all_devices() if devices is None else devices)
    by_process: dict[int, list] = {}
    for d in devices:
        by_process.setdefault(d.process_index, []).append(d)
    keys = sorted(by_process) if should_sort_granules_by_key else list(by_process)
    granules = [by_process[k] for k in keys]
    if math.prod(dcn_mesh_shape) != len(granules):
        raise ValueError(f"Number of slices/granules {len(granules)} must equal the product "
                         f"of dcn_mesh_shape {tuple(dcn_mesh_shape)}")
    meshes = [create_device_mesh(mesh_shape, g) for g in granules]
    layout = np.arange(len(granules)).reshape(tuple(dcn_mesh_shape))
    blocks = np.vectorize(lambda i: meshes[i], otypes=[object])(layout)
    return np.block(blocks.tolist())
