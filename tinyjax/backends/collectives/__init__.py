"""Collective communication between the devices of an SPMD program.

Every device runs the same compiled program on its own data; a collective step of that
program (``psum``, ``all_gather``, ...) calls the :class:`Communicator` of its device for
the mesh axes it names.  A communicator connects the devices that differ only in their
coordinates along those axes (a *group*), and offers the operations NCCL offers, on whole
buffers, leading dimension first:

* ``all_reduce(x, op)`` -- every rank gets the reduction (sum, max or min) of all ``x``;
* ``all_gather(x)`` -- every rank gets the ``x`` of all ranks concatenated along the leading
  dimension, in rank order;
* ``reduce_scatter(x, op)`` -- the reduction, split along the leading dimension into one
  block per rank; rank ``r`` gets block ``r``;
* ``permute(x, pairs)`` -- rank ``d`` gets the ``x`` of rank ``s`` for each ``(s, d)``; ranks
  that receive nothing get zeros;
* ``all_to_all(x)`` -- ``x`` split along the leading dimension into one block per rank; rank
  ``r`` gets block ``r`` of every rank, concatenated in rank order.

Devices of one process on the CPU talk through shared memory (:mod:`.shm`), GPUs through
NCCL (:mod:`.nccl`).  The program finds its device's communicators through the
:class:`Participant` that the runtime makes current in the thread running it
(:func:`participating`).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Protocol, Sequence

__all__ = ["Communicator", "Participant", "current", "participating"]


class Communicator(Protocol):
    """A device's end of a group of ``size`` devices, of which it is ``rank``."""

    rank: int
    size: int

    def all_reduce(self, x: Any, op: str) -> Any: ...

    def all_gather(self, x: Any) -> Any: ...

    def reduce_scatter(self, x: Any, op: str) -> Any: ...

    def permute(self, x: Any, pairs: Sequence[tuple[int, int]]) -> Any: ...

    def all_to_all(self, x: Any) -> Any: ...


class Participant:
    """One device's part in an SPMD program: its position on each mesh axis and its
    communicators, made on first use by ``make_communicator(axes)``."""

    def __init__(self, device: Any, coords: dict[str, int], sizes: dict[str, int],
                 make_communicator: Callable[[tuple], Communicator]):
        self.device, self.coords, self.sizes = device, coords, sizes
        self._make = make_communicator
        self._comms: dict[tuple, Communicator] = {}

    def axis_index(self, axes: Sequence[Any]) -> int:
        """The linear index of this device over ``axes`` (row-major)."""
        index = 0
        for name in axes:
            index = index * self.sizes[name] + self.coords[name]
        return index

    def communicator(self, axes: Sequence[Any]) -> Communicator:
        axes = tuple(axes)
        comm = self._comms.get(axes)
        if comm is None:
            comm = self._comms[axes] = self._make(axes)
        return comm


class _Current(threading.local):
    participant: "Participant | None" = None


_current = _Current()


def current() -> Participant:
    """The device whose program the calling thread runs (RuntimeError outside one)."""
    p = _current.participant
    if p is None:
        raise RuntimeError("a collective ran outside an SPMD program (shard_map, pmap or a "
                           "jit over sharded arrays)")
    return p


@contextmanager
def participating(p: Participant) -> Iterator[Participant]:
    """Make ``p`` the calling thread's device for the collectives it runs."""
    prev = _current.participant
    _current.participant = p
    try:
        yield p
    finally:
        _current.participant = prev
