"""Collectives between CPU devices of different processes: the ranks exchange their
buffers through the job's coordinator (:mod:`tinyjax.backends.coordinator`), and each
computes what it receives as the shared-memory ranks do (the same operations, on the same
values in rank order: bit-identical results on every rank)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinyjax.backends.collectives.shm import SharedMemoryCommunicator

__all__ = ["CoordinatorGroup", "coordinator_communicator"]


class CoordinatorGroup:
    """A group of ``size`` ranks (spread over processes) exchanging buffers through the
    coordinator; ``name`` tells groups apart, and each rank counts its steps (every rank
    runs the same collectives in the same order)."""

    def __init__(self, client: Any, name: str, size: int):
        self.client, self.name, self.size = client, name, size
        self._steps: dict[int, int] = {}

    def exchange(self, rank: int, value: np.ndarray,
                 combine: Callable[[list[np.ndarray]], np.ndarray]) -> np.ndarray:
        """``combine`` of every rank's ``value`` in rank order (the values received are
        copies: the buffer given may be reused at once)."""
        step = self._steps.get(rank, 0)
        self._steps[rank] = step + 1
        return combine(self.client.exchange(f"{self.name}/{step}", rank, self.size,
                                            np.ascontiguousarray(value)))


def coordinator_communicator(client: Any, name: str, size: int,
                             rank: int) -> SharedMemoryCommunicator:
    """Rank ``rank``'s end of the group ``name`` of ``size`` ranks."""
    return SharedMemoryCommunicator(CoordinatorGroup(client, name, size), rank)
