"""``jax.distributed``: several processes (on one host or many) as one job.

``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` is called by
every process of the job before anything else runs: process 0 starts the coordinator
service at ``coordinator_address`` (``'host:port'``, reachable from every process), every
process connects to it and says how many devices it has; from then on ``jax.devices()``
lists the devices of all processes (numbered in process order), ``jax.local_devices()``
this process's, and a mesh over all of them runs one program per device across the
processes.  GPUs talk through NCCL (the coordinator hands each communicator's unique id
from its rank 0 to the others); CPU devices of different processes exchange their buffers
through the coordinator.  On several hosts the same call works unchanged with the address
of process 0's host.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from tinyjax.backends import backend_available, devices_created, topology
from tinyjax.backends.coordinator import CoordinatorServer, connect

__all__ = ["initialize", "shutdown", "is_initialized"]


class _State:
    server: Optional[CoordinatorServer] = None
    client: Any = None


_state = _State()


def is_initialized() -> bool:
    """Whether :func:`initialize` has run (and :func:`shutdown` not since)."""
    return _state.client is not None


def initialize(coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None, process_id: Optional[int] = None,
               local_device_ids: Optional[Sequence[int]] = None,
               cluster_detection_method: Optional[str] = None,
               initialization_timeout: int = 300,
               coordinator_bind_address: Optional[str] = None, **kwargs: Any) -> None:
    """Join this process to a job of ``num_processes`` processes, as process
    ``process_id``, through the coordinator at ``coordinator_address`` (run by process 0).
    ``local_device_ids``: the GPUs of this machine this process uses (default: all).
    Must be called before any computation (before devices are listed)."""
    if is_initialized():
        raise RuntimeError("jax.distributed.initialize should only be called once.")
    if coordinator_address is None or num_processes is None or process_id is None:
        raise ValueError("jax.distributed.initialize needs coordinator_address, "
                         "num_processes and process_id (no cluster environment is detected)")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id} must be in [0, num_processes="
                         f"{num_processes})")
    if devices_created():
        raise RuntimeError("jax.distributed.initialize() must be called before any JAX "
                           "computations are executed.")
    if process_id == 0:
        _state.server = CoordinatorServer(coordinator_bind_address or coordinator_address,
                                          num_processes)
    client = connect(coordinator_address, initialization_timeout)
    ordinals: dict[str, list[int]] = {}
    counts = {"cpu": topology.local_count("cpu")}
    if backend_available("cuda"):
        if local_device_ids is not None:
            ordinals["cuda"] = [int(i) for i in local_device_ids]
        counts["cuda"] = len(ordinals.get("cuda", [])) or topology.local_count("cuda")
    everyone = client.register(process_id, counts)
    per_backend = {b: [c.get(b, 0) for c in everyone] for b in counts}
    topology.set_cluster(topology.Cluster(process_id, num_processes, per_backend, ordinals,
                                          client))
    _state.client = client


def shutdown() -> None:
    """Leave the job: close the connection (and, in process 0, stop the coordinator)."""
    if _state.client is not None:
        _state.client.close()
    if _state.server is not None:
        _state.server.shutdown()
    _state.client = _state.server = None
    topology.set_cluster(topology.Cluster())
