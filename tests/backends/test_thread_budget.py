"""How many threads the C kernels use (tinyjax/backends/c/threads.py): the cores other
processes leave idle, read from /proc/stat less this process's own time; fixed by
TINYJAX_CPU_THREADS; applied to the calling thread by each compiled program's call, with
subnormals flushed whatever the team's size."""
import ctypes
import ctypes.util
import os

import numpy as np
import pytest

import tinyjax as jax
from tinyjax.backends.c import threads
from tinyjax.backends.c.threads import ThreadBudget


class _Machine:
    """A fake clock, /proc/stat and os.times: ``run(seconds, others, own)`` advances them
    with the other processes and this one busy on that many cores."""

    def __init__(self, tmp_path, monkeypatch, cores=(0, 1)):
        self.path, self.cores = tmp_path / "stat", cores
        self.now, self.busy, self.own = 100.0, 0.0, 0.0
        monkeypatch.setattr(threads.time, "monotonic", lambda: self.now)
        monkeypatch.setattr(threads.os, "times", lambda: os.times_result(
            (self.own, 0.0, 0.0, 0.0, self.now)))
        self._write()

    def _write(self):
        tick = os.sysconf("SC_CLK_TCK")
        lines = ["cpu  1 2 3 4 5 6 7 8 9 10"]
        for c in self.cores:   # busy split over user/system/steal, a constant idle + iowait
            b = int(round(self.busy * tick / len(self.cores)))
            lines.append(f"cpu{c} {b // 2} 0 {b - b // 2 - b // 4} 500 7 0 0 {b // 4} 0 0")
        lines.append("cpu9 99999 0 0 0 0 0 0 0 0 0")   # a core this process may not use
        self.path.write_text("\n".join(lines) + "\nintr 1 2 3\n")

    def run(self, seconds, others, own):
        self.now += seconds
        self.busy += seconds * (others + own)
        self.own += seconds * own
        self._write()


@pytest.mark.parametrize("others, own, want", [
    (0.0, 0.0, 2), (0.0, 2.0, 2), (0.3, 1.7, 2), (1.0, 0.0, 1), (1.0, 1.0, 1), (2.0, 0.0, 1)])
def test_the_cores_other_processes_leave_idle(tmp_path, monkeypatch, others, own, want):
    m = _Machine(tmp_path, monkeypatch)
    budget = ThreadBudget([0, 1], stat_path=str(m.path))
    assert budget.threads() == 2            # no reading to compare with yet: every core
    m.run(1.0, others, own)
    assert budget.threads() == want
    m.run(threads.INTERVAL / 2, 2.0, 0.0)   # read again only after INTERVAL
    assert budget.threads() == want
    m.run(1.0, 0.0, 0.0)                    # the others stopped
    assert budget.threads() == 2


def test_a_forked_child_starts_measuring_over(tmp_path, monkeypatch):
    m = _Machine(tmp_path, monkeypatch)
    budget = ThreadBudget([0, 1], stat_path=str(m.path))
    m.run(1.0, 0.0, 2.0)
    assert budget.threads() == 2
    m.own = 0.0                             # the child's own time starts at zero
    m.run(0.5, 0.0, 2.0)
    assert budget.threads() == 2            # not its parent's time counted as others'
    m.run(1.0, 0.0, 2.0)
    assert budget.threads() == 2
    m.run(1.0, 1.0, 1.0)
    assert budget.threads() == 1


def test_without_proc_stat_every_core(tmp_path, monkeypatch):
    m = _Machine(tmp_path, monkeypatch)
    budget = ThreadBudget([0, 1, 2], stat_path=str(tmp_path / "missing"))
    m.run(1.0, 3.0, 0.0)
    assert budget.threads() == 3


def test_tinyjax_cpu_threads_fixes_the_count(monkeypatch):
    monkeypatch.setenv("TINYJAX_CPU_THREADS", "3")
    assert threads._budget().threads() == 3
    monkeypatch.setenv("TINYJAX_CPU_THREADS", "auto")
    assert threads._budget().fixed is None
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads._budget().threads() == 0   # OpenMP's own setting is left alone
    monkeypatch.setenv("TINYJAX_CPU_THREADS", "many")
    with pytest.raises(ValueError, match="TINYJAX_CPU_THREADS must be 'auto' or a number"):
        threads._budget()


def _gomp():
    name = ctypes.util.find_library("gomp")
    return ctypes.CDLL(name) if name else None


@pytest.mark.skipif(jax.devices("cpu")[0].platform != "cpu" or _gomp() is None,
                    reason="needs libgomp")
def test_a_call_runs_on_the_budget_with_subnormals_flushed(monkeypatch):
    gomp = _gomp()
    f = jax.jit(lambda x: x * x, device="cpu")
    big = np.full((1024, 1024), 1e-20, np.float32)   # parallel; its squares are subnormal
    for n in (1, 2):
        monkeypatch.setattr(threads.thread_budget, "fixed", n)
        out = np.asarray(f(big))
        assert gomp.omp_get_max_threads() == n      # the calling thread's team size
        assert not out.any()                        # flushed on every thread of the team
