"""The devices the multi-device tests run on: the default backend's (8 CPU devices in the
suite, see tests/conftest.py; the GPUs on a GPU machine), and meshes over them."""
from __future__ import annotations

import numpy as np
import pytest

import tinyjax as jax
from tinyjax.sharding import Mesh

DEVICES = jax.devices()
N = min(8, len(DEVICES))


def needs_devices(n: int):
    """Skip a test where fewer than ``n`` devices exist (a one-GPU machine)."""
    return pytest.mark.skipif(len(DEVICES) < n, reason=f"needs {n} devices, "
                              f"{len(DEVICES)} present")


def mesh_1d(name: str = "i", n: int = N) -> Mesh:
    return Mesh(np.array(DEVICES[:n], dtype=object), (name,))


def mesh_2d(names=("x", "y")) -> Mesh:
    """A (N/2, 2) mesh (a (1, 1) one on a single device)."""
    rows = max(N // 2, 1)
    cols = 2 if N >= 2 else 1
    return Mesh(np.array(DEVICES[:rows * cols], dtype=object).reshape(rows, cols), names)


def mapped(f, mesh: Mesh, in_specs, out_specs, mode: str):
    """``shard_map(f)`` (unchecked replication), jitted in mode "jit"."""
    g = jax.shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    return jax.jit(g) if mode == "jit" else g


def blocks(x: np.ndarray, n: int, axis: int = 0) -> list[np.ndarray]:
    return np.split(x, n, axis=axis)
