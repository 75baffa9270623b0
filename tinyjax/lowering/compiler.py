"""``compile_jaxpr``: jaxpr -> low-level ops -> schedule -> device kernels -> Executable.

The executable is a flat list of kernel launches over buffers planned at compile time:
intermediates are allocated once and reused (a buffer whose last reader has run is handed
to the next kernel that needs one of the same dtype and size); outputs are fresh arrays
per call.  ``DEBUG`` (environment): 1 kernel count, 2 a timing table per call, 3 the
scheduled kernels, 4 the generated source.
"""
from __future__ import annotations

import os
import time
from typing import Optional, Sequence

import numpy as np

from tinyjax.lowering.kernel import Kernel
from tinyjax.lowering.rules import lower_jaxpr
from tinyjax.lowering.schedule import Schedule, schedule

__all__ = ["compile_jaxpr", "Executable"]


def _debug() -> int:
    try:
        return int(os.environ.get("DEBUG", "0") or 0)
    except ValueError:
        return 0


class Executable:
    """Compiled program: ``exe(*flat_args) -> list of output arrays``."""

    def __init__(self, sched: Schedule, consts: list[np.ndarray], device, source: str,
                 fns: list, name: str = "jaxpr"):
        self.schedule = sched
        self.device = device
        self._source = source
        self._kernels = sched.kernels
        self._consts = consts
        self.name = name
        self._launch = [device.make_launcher(f, k) for f, k in zip(fns, sched.kernels)]
        self._plan()

    # ---- buffer planning ----------------------------------------------------------------
    def _plan(self):
        sched = self.schedule
        n_in = sched.n_inputs
        out_ids = {o.buf for o in sched.outputs if o.view is None and o.buf >= n_in}
        last_use: dict[int, int] = {}
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[1:]:
                last_use[b] = i
        free: dict[tuple, list] = {}
        self._static: dict[int, np.ndarray] = {}
        for i, k in enumerate(self._kernels):
            b = k.buf_ids[0]
            if b not in out_ids:
                dt, n = sched.buffers[b]
                pool = free.get((dt, n))
                self._static[b] = pool.pop() if pool else np.empty(n, dt)
            for r in set(k.buf_ids[1:]):
                if r >= n_in and r not in out_ids and last_use.get(r) == i:
                    free.setdefault(sched.buffers[r], []).append(self._static[r])
        self._out_ids = sorted(out_ids)
        self._n_consts = len(self._consts)

    @property
    def num_kernels(self) -> int:
        return len(self._kernels)

    def kernels(self) -> list[str]:
        return [k.describe() for k in self._kernels]

    def source(self) -> str:
        return self._source

    def __call__(self, *flat_args: np.ndarray) -> list[np.ndarray]:
        sched = self.schedule
        n_in = sched.n_inputs
        args = list(self._consts) + [np.asarray(a) for a in flat_args]
        if len(args) != n_in:
            raise TypeError(f"{self.name}: expected {n_in - self._n_consts} arguments, "
                            f"got {len(flat_args)}")
        bufs: dict[int, np.ndarray] = dict(self._static)
        for i, a in enumerate(args):
            dt, n = sched.buffers[i]
            if a.dtype != dt:
                a = a.astype(dt)
            bufs[i] = np.ascontiguousarray(a).reshape(-1) if a.size == n else a
        for b in self._out_ids:
            dt, n = sched.buffers[b]
            bufs[b] = np.empty(n, dt)
        dbg = _debug()
        if dbg >= 2:
            self._run_timed(bufs)
        else:
            for k, launch in zip(self._kernels, self._launch):
                launch([bufs[b] for b in k.buf_ids])
        outs = []
        for o in sched.outputs:
            if o.buf < 0:
                outs.append(np.zeros(o.shape, o.dtype))
                continue
            base = bufs[o.buf]
            if o.view is not None:
                shape, strides, offset = o.view
                it = base.dtype.itemsize
                outs.append(np.lib.stride_tricks.as_strided(
                    base[offset:] if all(s >= 0 for s in strides) else base,
                    shape, [s * it for s in strides]) if all(s >= 0 for s in strides)
                    else _neg_strided(base, shape, strides, offset))
            else:
                outs.append(base.reshape(o.shape))
        return outs

    def _run_timed(self, bufs):
        rows = []
        for k, launch in zip(self._kernels, self._launch):
            t0 = time.perf_counter()
            launch([bufs[b] for b in k.buf_ids])
            dt = time.perf_counter() - t0
            rows.append((k, dt))
        print(f"*** {self.name}: {len(rows)} kernels on {self.device.name}")
        print(f"{'kernel':<8} {'time us':>10} {'GFLOP/s':>9} {'GB/s':>8}  source")
        for k, dt in rows:
            print(f"{k.name:<8} {dt * 1e6:>10.1f} {k.flops / dt / 1e9 if dt else 0:>9.2f} "
                  f"{k.nbytes / dt / 1e9 if dt else 0:>8.2f}  {', '.join(k.source_lines)}")


def _neg_strided(base, shape, strides, offset):
    out = base[offset:offset + 1] if base.size else base
    idx = np.full(shape, offset, np.int64)
    for ax, (s, st) in enumerate(zip(shape, strides)):
        r = np.arange(s, dtype=np.int64) * st
        idx = idx + r.reshape([-1 if j == ax else 1 for j in range(len(shape))])
    del out
    return base[idx]


def compile_jaxpr(closed_jaxpr, device: str = "cpu") -> Executable:
    """Compile a ClosedJaxpr for ``device`` ('cpu' or 'interp').

    Raises ``NotImplementedError("no lowering for primitive '<name>'")`` for a primitive
    without a lowering rule (``jit`` then evaluates eagerly)."""
    from tinyjax.devices import get_backend
    backend = get_backend(device)
    jaxpr = closed_jaxpr.jaxpr
    leaves, outs = lower_jaxpr(jaxpr)
    sched = schedule(leaves, outs)
    consts = [np.asarray(getattr(c, "_value", c)) for c in closed_jaxpr.consts]
    dbg = _debug()
    if dbg >= 3:
        for k in sched.kernels:
            print(k.dump())
    source, fns = backend.compile(sched.kernels)
    if dbg >= 4:
        print(source)
    if dbg >= 1:
        print(f"*** compiled {len(sched.kernels)} kernel(s) for {device}")
    return Executable(sched, consts, backend, source, fns)
