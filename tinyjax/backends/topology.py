"""Which devices exist: the processes of a job, how many devices of each backend every
process has, and the global device ids.

One process alone (the default) has ``jax_num_cpu_devices`` CPU devices (1 when unset) and
one device per CUDA GPU.  After ``jax.distributed.initialize`` the job's processes have
exchanged their local device counts (:func:`set_cluster`): every process then lists the
devices of all of them, numbered in process order, and addresses its own.

The CPU device count is fixed the first time devices are counted (as in JAX, where
``jax_num_cpu_devices`` must be set before the backends start).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from tinyjax.config import add_update_check, config, env_num_cpu_devices

__all__ = ["Cluster", "cluster", "set_cluster", "local_count", "global_counts",
           "register_counter", "cpu_device_count", "hardware_index"]


class Cluster:
    """The processes of a job: this one's index, how many there are, per backend the
    number of devices each process has (missing: not exchanged; every process has as many
    as this one) and which of the machine's devices this process uses (``ordinals``: per
    backend, the hardware index of each local device; missing: all, in order); ``client``:
    the connection to the job's coordinator (None for a process alone)."""

    def __init__(self, process_index: int = 0, process_count: int = 1,
                 counts: Optional[dict[str, list[int]]] = None,
                 ordinals: Optional[dict[str, list[int]]] = None, client: Any = None):
        self.process_index = process_index
        self.process_count = process_count
        self.counts = counts or {}
        self.ordinals = ordinals or {}
        self.client = client


cluster = Cluster()
_lock = threading.Lock()
_cpu_count: list[int] = []  # fixed on first use
_counters: dict[str, Callable[[], int]] = {}


def set_cluster(new: Cluster) -> None:
    """Make ``new`` the job's process layout (``jax.distributed.initialize``)."""
    global cluster
    cluster = new



def register_counter(backend: str, count: Callable[[], int]) -> None:
    """How to count the local devices of ``backend`` (CUDA: the driver's device count)."""
    _counters[backend] = count


def cpu_device_count() -> int:
    """The number of CPU devices of this process: ``jax_num_cpu_devices``, else what the
    environment asks for (:func:`~tinyjax.config.env_num_cpu_devices`), else 1; read once."""
    with _lock:
        if not _cpu_count:
            n = config.jax_num_cpu_devices
            if n < 0:
                n = env_num_cpu_devices()
            _cpu_count.append(1 if n < 0 else n)
            if _cpu_count[0] < 1:
                raise ValueError(f"jax_num_cpu_devices must be at least 1, got {n}")
        return _cpu_count[0]


def _refuse_late_cpu_count(name: str, value: int) -> None:
    if _cpu_count and value != _cpu_count[0]:
        raise RuntimeError(
            f"{name} config should be updated before backends are initialized i.e. before "
            "any JAX operation is executed. You should initialize this config immediately "
            "after `import jax`.")


add_update_check("jax_num_cpu_devices", _refuse_late_cpu_count)


def local_count(backend: str) -> int:
    """How many devices of ``backend`` this process has."""
    if backend in cluster.ordinals:
        return len(cluster.ordinals[backend])
    if backend == "cpu":
        return cpu_device_count()
    counter = _counters.get(backend)
    return counter() if counter is not None else 1


def hardware_index(backend: str, local_index: int) -> int:
    """The machine's index of this process's ``local_index``-th device of ``backend``."""
    ordinals = cluster.ordinals.get(backend)
    return local_index if ordinals is None else ordinals[local_index]


def global_counts(backend: str) -> list[int]:
    """The number of devices of ``backend`` in each process of the job."""
    counts = cluster.counts.get(backend)
    if counts is None:
        return [local_count(backend)] * cluster.process_count
    return counts
