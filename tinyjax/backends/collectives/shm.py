"""Collectives between devices of one process whose buffers are host memory (the CPU
devices): the ranks are threads that exchange references to their buffers through a
shared table, two barriers per operation.

Every rank computes what it receives from the same inputs in the same (rank) order, so
that a reduction gives bit-identical results on every rank, as NCCL's do.  A rank that
fails breaks the group's barrier: the others raise instead of waiting for it forever.
"""
from __future__ import annotations

import functools
import threading
from typing import Callable, Sequence

import numpy as np

__all__ = ["SharedMemoryGroup", "SharedMemoryCommunicator"]

_REDUCERS = {"sum": np.add, "max": np.maximum, "min": np.minimum}
TIMEOUT_S = 600.0  # a rank waiting longer than this for the others gives up


class SharedMemoryGroup:
    """The table and barrier that ``size`` threads exchange buffers through."""

    def __init__(self, size: int):
        self.size = size
        self._slots: list = [None] * size
        self._barrier = threading.Barrier(size, timeout=TIMEOUT_S)

    def exchange(self, rank: int, value: np.ndarray,
                 combine: Callable[[list[np.ndarray]], np.ndarray]) -> np.ndarray:
        """``combine`` of every rank's ``value`` in rank order (each rank calls this once
        per step), a new array: it is computed while every rank waits, since a rank's
        buffer may be reused (a compiled program's memory) as soon as the step is over."""
        if self.size == 1:
            return combine([value])
        self._slots[rank] = value
        self._wait()
        try:
            return combine(list(self._slots))
        finally:
            self._wait()  # nobody goes on before everyone has read

    def _wait(self) -> None:
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise RuntimeError("a collective was abandoned: another device of the group "
                               "failed or did not arrive") from None

    def abort(self) -> None:
        """Release every waiting rank with an error (a rank failed)."""
        self._barrier.abort()

    def reset(self) -> None:
        self._barrier.reset()


class SharedMemoryCommunicator:
    """Rank ``rank``'s end of a :class:`SharedMemoryGroup` (see the Communicator
    protocol in :mod:`tinyjax.backends.collectives`)."""

    def __init__(self, group: SharedMemoryGroup, rank: int):
        self.group, self.rank, self.size = group, rank, group.size

    def all_reduce(self, x: np.ndarray, op: str) -> np.ndarray:
        return self.group.exchange(self.rank, np.asarray(x), lambda values: np.array(
            functools.reduce(_REDUCERS[op], values)))

    def all_gather(self, x: np.ndarray) -> np.ndarray:
        return self.group.exchange(self.rank, np.asarray(x),
                                   lambda values: np.concatenate(values, axis=0))

    def reduce_scatter(self, x: np.ndarray, op: str) -> np.ndarray:
        def mine(values):
            block = values[0].shape[0] // self.size
            lo, hi = self.rank * block, (self.rank + 1) * block
            return np.array(functools.reduce(_REDUCERS[op], [v[lo:hi] for v in values]))
        return self.group.exchange(self.rank, np.asarray(x), mine)

    def permute(self, x: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
        def received(values):
            for src, dst in pairs:
                if dst == self.rank:
                    return np.array(values[src])
            return np.zeros_like(values[self.rank])
        return self.group.exchange(self.rank, np.asarray(x), received)

    def all_to_all(self, x: np.ndarray) -> np.ndarray:
        def mine(values):
            block = values[0].shape[0] // self.size
            lo, hi = self.rank * block, (self.rank + 1) * block
            return np.concatenate([v[lo:hi] for v in values], axis=0)
        return self.group.exchange(self.rank, np.asarray(x), mine)
