"""How many threads the C kernels' parallel regions use: the cores that the rest of the
machine leaves free, measured while the program runs.

libgomp's idle threads either sleep or spin.  Waking a sleeping thread costs every parallel
region tens of microseconds (measured on a 2-core VM: 40-60 us for an empty region against
~1 us with spinning threads) -- more than most kernels of a research-size step take.  But a
thread spinning on a core that another process needs takes that core's time from the
thread that launches the kernels.  Measured with MNIST-1D's CNN step on 2 cores (ms per
step, idle / one other busy process): sleeping threads 1.69-1.85 / 2.0-2.2, spinning
threads 1.25 / 3.7-9.5, one thread 1.53 / 1.53.  So the pool spins briefly
(``GOMP_SPINCOUNT``, see :mod:`tinyjax.backends.c.toolchain`) and a compiled program asks
for as many threads as there are cores that other processes leave idle: all of them on an
idle machine, one where the others keep a core busy -- no parallel region's wake-ups and no
spinning then.

The others' load is read from ``/proc/stat`` (the busy time of the cores this process may
run on) less this process's own CPU time (so its own spinning threads do not count), at
most every :data:`INTERVAL` seconds.  ``TINYJAX_CPU_THREADS`` fixes the count; with
``OMP_NUM_THREADS`` set, OpenMP's own setting is left alone.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

from tinyjax.config import env

__all__ = ["ThreadBudget", "thread_budget", "INTERVAL"]

INTERVAL = 0.1   # seconds between two readings of the machine's load
SPARE = 0.4      # a core counts as free when the others leave at least 1 - SPARE of it idle


class ThreadBudget:
    """``threads()``: the threads a parallel region should use now (0: leave OpenMP's
    setting alone).  ``cores``: the CPU numbers this process may run on; ``fixed``: a count
    to return always (None: measure)."""

    def __init__(self, cores: list[int], fixed: Optional[int] = None,
                 stat_path: str = "/proc/stat"):
        self.cores, self.fixed, self.stat_path = cores, fixed, stat_path
        self._names = {f"cpu{c}" for c in cores}
        self._threads = len(cores)
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._prev: Optional[tuple[float, float, float]] = None  # wall, cores' busy, own cpu
        self._lock = threading.Lock()

    def threads(self) -> int:
        if self.fixed is not None:
            return self.fixed
        now = time.monotonic()
        if (self._prev is None or now - self._prev[0] >= INTERVAL) and \
                self._lock.acquire(blocking=False):
            try:
                self._sample(now)
            finally:
                self._lock.release()
        return self._threads

    def _busy_seconds(self) -> Optional[float]:
        """The time our cores have spent busy (not idle, not waiting for I/O) since boot."""
        try:
            with open(self.stat_path) as f:
                lines = f.readlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            parts = line.split()
            if parts and parts[0] in self._names:
                # user nice system idle iowait irq softirq steal (guest time is in user)
                ticks = [int(x) for x in parts[1:9]]
                busy += sum(ticks) - ticks[3] - ticks[4]
        return busy / self._tick

    def _sample(self, now: float) -> None:
        busy = self._busy_seconds()
        if busy is None:      # no /proc/stat: every core, always
            self.fixed = len(self.cores)
            return
        t = os.times()
        own = t.user + t.system
        if self._prev is not None and own >= self._prev[2]:   # (a forked child starts over)
            wall, busy0, own0 = self._prev
            others = max(0.0, (busy - busy0) - (own - own0)) / max(now - wall, 1e-9)
            self._threads = max(1, min(len(self.cores), int(len(self.cores) - others + SPARE)))
        self._prev = (now, busy, own)


def _cores() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return list(range(os.cpu_count() or 1))


def _budget() -> ThreadBudget:
    fixed = env("TINYJAX_CPU_THREADS")
    if fixed is not None and fixed.strip().lower() != "auto":
        try:
            return ThreadBudget(_cores(), max(1, int(fixed)))
        except ValueError:
            raise ValueError("TINYJAX_CPU_THREADS must be 'auto' or a number of threads, "
                             f"got {fixed!r}") from None
    if env("OMP_NUM_THREADS") is not None:
        return ThreadBudget(_cores(), 0)
    return ThreadBudget(_cores())


thread_budget = _budget()
