"""Running one per-device program on every device of a mesh (SPMD).

A :class:`MeshProgram` holds a jaxpr written for one device's blocks (its collectives name
mesh axes), the mesh, and the :class:`~tinyjax.sharding.PartitionSpec` of every input and
output.  A call lays each input out as its spec says (arrays already laid out so are used
as they are), runs the compiled program on every device of this process at once -- one
worker thread per device, each making its device current for the collectives
(:func:`tinyjax.backends.collectives.participating`) -- and returns arrays made of the
devices' output blocks.

Communicators are made per mesh and per tuple of axes, once, and shared by every program
on that mesh: shared memory between CPU devices, NCCL between GPUs.
"""
from __future__ import annotations

import math
import queue
import threading
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax.array import ArrayImpl, ShardedBuffer, placed, to_array
from tinyjax.backends import Device, get_backend, topology
from tinyjax.backends.collectives import Participant, participating
from tinyjax.backends.collectives.shm import SharedMemoryCommunicator, SharedMemoryGroup
from tinyjax.backends.collectives.tcp import CoordinatorGroup
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.interpreters.batching import extend_axis_env
from tinyjax.jaxpr import ClosedJaxpr
from tinyjax.sharding import Mesh, NamedSharding, PartitionSpec, put_sharded

__all__ = ["MeshProgram", "MeshCommunicators", "register_communicator_factory"]


# ---- communicators -------------------------------------------------------------------------

def _is_local(d: Device) -> bool:
    return d.process_index == topology.cluster.process_index


def _host_communicators(groups: list[list[Device]]) -> dict[Device, Any]:
    """Shared memory between the devices of this process; through the coordinator where a
    group spans processes."""
    out = {}
    for group in groups:
        if all(_is_local(d) for d in group):
            shared = SharedMemoryGroup(len(group))
            for rank, d in enumerate(group):
                out[d] = SharedMemoryCommunicator(shared, rank)
            continue
        name = "cpu/" + ",".join(str(d.id) for d in group)
        shared = CoordinatorGroup(topology.cluster.client, name, len(group))
        for rank, d in enumerate(group):
            if _is_local(d):
                out[d] = SharedMemoryCommunicator(shared, rank)
    return out


def _nccl_communicators(groups: list[list[Device]]) -> dict[Device, Any]:
    from tinyjax.backends.collectives import nccl  # loads NCCL on first use
    if all(_is_local(d) for g in groups for d in g):
        return nccl.communicators_in_process(groups, get_backend)
    client = topology.cluster.client

    def exchange_id(key: str, uid: Optional[bytes]) -> bytes:
        if uid is not None:
            client.put(key, uid)
            return uid
        return client.get(key)
    return nccl.communicators_across_processes(groups, get_backend, _is_local, exchange_id)


# backend -> factory(groups) -> {device: Communicator}
_FACTORIES: dict[str, Callable] = {"cuda": _nccl_communicators}


def register_communicator_factory(backend: str, factory: Callable) -> None:
    """Make ``factory(groups)`` build the communicators of ``backend``'s devices: it gets a
    list of groups (each a list of devices in rank order) and returns
    ``{device: communicator}`` for this process's devices."""
    _FACTORIES[backend] = factory


class MeshCommunicators:
    """The communicators of one mesh's devices, per tuple of mesh axes (made on first
    use), and the lock that keeps two programs from using them at once."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.lock = threading.Lock()
        self._by_axes: dict[tuple, dict[Device, Any]] = {}
        self._guard = threading.Lock()

    def groups(self, axes: tuple) -> list[list[Device]]:
        """The devices that differ only along ``axes``, each group in rank order (the
        linear index over ``axes``)."""
        names = self.mesh.axis_names
        order = [names.index(a) for a in axes]
        rest = [i for i in range(len(names)) if i not in order]
        grid = np.transpose(self.mesh.devices, rest + order)
        size = math.prod(self.mesh.axis_sizes[i] for i in order)
        return [list(row) for row in grid.reshape(-1, size)]

    def communicator(self, device: Device, axes: tuple) -> Any:
        with self._guard:
            comms = self._by_axes.get(axes)
            if comms is None:
                factory = _FACTORIES.get(device.backend)
                if factory is None:
                    if not get_backend(device).host:
                        raise NotImplementedError(
                            f"collectives between {device.platform} devices: no "
                            f"communicator for the '{device.backend}' backend")
                    factory = _host_communicators
                comms = self._by_axes[axes] = factory(self.groups(axes))
        return comms[device]

    def abort(self) -> None:
        """Release every rank waiting in a collective (one of them failed)."""
        for comms in self._by_axes.values():
            for comm in comms.values():
                group = getattr(comm, "group", None)
                if hasattr(group, "abort"):
                    group.abort()

    def reset(self) -> None:
        for comms in self._by_axes.values():
            for comm in comms.values():
                group = getattr(comm, "group", None)
                if hasattr(group, "reset"):
                    group.reset()


class _PerKey:
    """Objects made once per key, on first use, under a lock."""

    def __init__(self, make: Callable[[Any], Any]):
        self.make, self.made, self.lock = make, {}, threading.Lock()

    def __call__(self, key: Any) -> Any:
        with self.lock:
            obj = self.made.get(key)
            if obj is None:
                obj = self.made[key] = self.make(key)
            return obj


mesh_communicators = _PerKey(MeshCommunicators)


# ---- one worker thread per device ------------------------------------------------------------

class _Worker:
    """A thread that runs the calls given to it, one at a time, for one device."""

    def __init__(self, device: Device):
        self.tasks: "queue.Queue" = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name=f"tinyjax-{device}",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            fn, done = self.tasks.get()
            try:
                done(fn(), None)
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                done(None, e)

    def submit(self, fn: Callable[[], Any], done: Callable[[Any, Any], None]) -> None:
        self.tasks.put((fn, done))


_worker = _PerKey(_Worker)


def run_on_devices(devices: Sequence[Device], fns: Sequence[Callable[[], Any]],
                   on_failure: Callable[[], None]) -> list[Any]:
    """``fns[i]()`` on ``devices[i]``'s worker thread, all at once; their results.  The
    first failure calls ``on_failure`` (releasing the others from their collectives) and
    is raised once all have finished."""
    if len(fns) == 1:
        return [fns[0]()]
    results: list = [None] * len(fns)
    errors: list = [None] * len(fns)
    finished = threading.Semaphore(0)
    failed = threading.Event()

    def done_for(i):
        def done(value, error):
            results[i], errors[i] = value, error
            if error is not None and not failed.is_set():
                failed.set()
                on_failure()
            finished.release()
        return done

    for i, (d, fn) in enumerate(zip(devices, fns)):
        _worker(d).submit(fn, done_for(i))
    for _ in fns:
        finished.acquire()
    raised = [e for e in errors if e is not None]
    if raised:  # the cause rather than the collectives it abandoned
        raise next((e for e in raised if "abandoned" not in str(e)), raised[0])
    return results


# ---- the program -----------------------------------------------------------------------------

class MeshProgram:
    """``local`` (a ClosedJaxpr over one device's blocks) compiled for the devices of
    ``mesh``; called with global arrays laid out (or to be laid out) as ``in_specs`` says,
    it returns global arrays laid out as ``out_specs`` (PartitionSpecs, or NamedShardings
    over these devices) says."""

    def __init__(self, local: ClosedJaxpr, mesh: Mesh, in_specs: Sequence[PartitionSpec],
                 out_specs: Sequence[Any], out_avals: Sequence[Any]):
        self.local, self.mesh = local, mesh
        self.in_shardings = [NamedSharding(mesh, s) for s in in_specs]
        # (a NamedSharding: over these devices, with axis types of its own)
        self.out_shardings = [s if isinstance(s, NamedSharding) else NamedSharding(mesh, s)
                              for s in out_specs]
        self.out_avals = list(out_avals)  # global
        self.devices = list(mesh.local_devices)
        backends = {d.backend for d in mesh.devices.flat}
        if len(backends) != 1:
            raise ValueError(f"a mesh mixes devices of several platforms: {mesh}")
        self.comms = mesh_communicators(mesh)
        self.participants = [self._participant(d) for d in self.devices]
        self._executables: dict[Device, Any] = {}
        self._compile_lock = threading.Lock()

    def _participant(self, device: Device) -> Participant:
        return Participant(device, self.mesh.coords(device), dict(self.mesh.shape),
                           lambda axes, d=device: self.comms.communicator(d, axes))

    def executable(self, device: Device) -> Any:
        """The program compiled for ``device`` (one per device: an executable's scratch
        buffers are its own)."""
        with self._compile_lock:
            exe = self._executables.get(device)
            if exe is None:
                # (the mesh's axes bound: composite collectives expand into the basic ones)
                with extend_axis_env(self.mesh.shape_tuple):
                    exe = compile_jaxpr(self.local, get_backend(device))
                self._executables[device] = exe
            return exe

    @property
    def num_kernels(self) -> int:
        return self.executable(self.devices[0]).num_kernels

    def local_buffers(self, args: Sequence[Any]) -> list[list[Any]]:
        """Per device, its block of every input (laid out as the input specs say)."""
        per_arg = []
        for x, sharding in zip(args, self.in_shardings):
            if type(x) is not ArrayImpl:
                x = to_array(x)
            laid_out = put_sharded(x, sharding)
            buf = laid_out._buf
            by_device = dict(zip(buf.devices, buf.buffers))
            per_arg.append([by_device[d] for d in self.devices])
        return [[bufs[i] for bufs in per_arg] for i in range(len(self.devices))]

    def __call__(self, args: Sequence[Any]) -> list[ArrayImpl]:
        local = self.local_buffers(args)
        for d in self.devices:
            self.executable(d)
        with self.comms.lock:
            try:
                outs = run_on_devices(
                    self.devices,
                    [self._runner(i, local[i]) for i in range(len(self.devices))],
                    self.comms.abort)
            finally:
                self.comms.reset()
        return [self._assemble(i, [o[i] for o in outs]) for i in range(len(self.out_avals))]

    def _runner(self, i: int, bufs: list) -> Callable[[], list]:
        exe, participant = self._executables[self.devices[i]], self.participants[i]

        def run():
            with participating(participant):
                return list(exe(*bufs))
        return run

    def _assemble(self, k: int, buffers: list) -> ArrayImpl:
        aval, sharding = self.out_avals[k], self.out_shardings[k]
        index_map = sharding.devices_indices_map(aval.shape)
        host = get_backend(self.devices[0]).host
        if host:
            buffers = [np.asarray(b) for b in buffers]
            for b in buffers:
                b.flags.writeable = False
        sb = ShardedBuffer(aval.shape, aval.dtype, self.devices,
                           [index_map[d] for d in self.devices], buffers,
                           sharding.is_fully_addressable)
        return placed(sb, sharding, aval.weak_type)
