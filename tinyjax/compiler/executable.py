"""The executable of a jaxpr without control flow: its scheduled kernels, compiled by a
backend, run over planned buffers.

The executable is a flat list of kernel launches over buffers planned at compile time:
intermediates are allocated once and reused (a buffer whose last reader has run is handed
to the next kernel that needs one of the same dtype and size); outputs are fresh arrays
per call.  A jaxpr with control flow becomes a :class:`~tinyjax.compiler.program.Program`
of steps (fused runs, and loops/branches over compiled sub-programs).  ``DEBUG``
(environment): 1 kernel count, 2 a timing table per call, 3 the scheduled kernels, 4 the
generated source.
"""
from __future__ import annotations

import time

import numpy as np

from tinyjax.backends.base import Backend
from tinyjax.compiler.schedule import Schedule
from tinyjax.config import debug_level

__all__ = ["Executable"]


class Executable:
    """Compiled program: ``exe(*flat_args) -> list of output arrays``."""

    def __init__(self, sched: Schedule, consts: list[np.ndarray], backend: Backend,
                 source: str, fns: list, name: str = "jaxpr", timed: bool = True,
                 out_avals=()):
        self.schedule = sched
        # complex outputs: computed as interleaved real pairs, returned as complex views
        self._complex_outs = [(i, a.dtype, a.shape) for i, a in enumerate(out_avals)
                              if np.dtype(a.dtype).kind == "c"]
        self._timed = timed  # a loop body's sub-program: no timing table per iteration
        self.backend = backend
        self._source = source
        self._kernels = sched.kernels
        self._host = backend.host
        self._alloc = np.empty if self._host else backend.alloc
        # constants live where the kernels run: copied to the device once, here
        consts = [real_pairs(c) for c in consts]
        self._consts = list(consts) if self._host else \
            [backend.asbuffer(c, sched.buffers[i][0]) for i, c in enumerate(consts)]
        self.name = name
        self._launch = [backend.make_launcher(f, k) for f, k in zip(fns, sched.kernels)]
        self._run = backend.make_program(fns, sched.kernels)
        self._plan()

    # ---- buffer planning ----------------------------------------------------------------
    def _plan(self):
        sched = self.schedule
        n_in = sched.n_inputs
        out_ids = {o.buf for o in sched.outputs if o.view is None and o.buf >= n_in}
        last_use: dict[int, int] = {}
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[k.n_outs:]:
                last_use[b] = i
        free: dict[tuple, list] = {}
        self._static: dict[int, np.ndarray] = {}
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[:k.n_outs]:
                if b not in out_ids:
                    dt, n = sched.buffers[b]
                    pool = free.get((dt, n))
                    self._static[b] = pool.pop() if pool else self._alloc((n,), dt)
            for r in set(k.buf_ids[k.n_outs:]):
                if r >= n_in and r not in out_ids and last_use.get(r) == i:
                    free.setdefault(sched.buffers[r], []).append(self._static[r])
        self._out_ids = sorted(out_ids)
        self._n_consts = len(self._consts)
        # per-call work, precomputed: the buffer list template (intermediates in place),
        # the outputs to allocate (with their final shape when a single output owns one)
        self._n_in = n_in
        self._in_specs = [sched.buffers[i] for i in range(n_in)]
        self._template = [None] * len(sched.buffers)
        for b, arr in self._static.items():
            self._template[b] = arr
        owners: dict[int, list] = {}
        for o in sched.outputs:
            if o.buf >= 0:
                owners.setdefault(o.buf, []).append(o)
        self._out_allocs = []
        for b in self._out_ids:
            dt, n = sched.buffers[b]
            os_ = owners.get(b, [])
            shape = os_[0].shape if len(os_) == 1 and os_[0].view is None else (n,)
            self._out_allocs.append((b, shape, dt))
        self._simple_outputs = all(o.buf >= n_in and o.view is None and len(owners[o.buf]) == 1
                                   for o in sched.outputs)
        self._out_order = [o.buf for o in sched.outputs]
        self._launch_ids = [(k.buf_ids, launch) for k, launch in zip(self._kernels, self._launch)]

    @property
    def num_kernels(self) -> int:
        return len(self._kernels)

    def kernels(self) -> list[str]:
        return [k.describe() for k in self._kernels]

    def source(self) -> str:
        return self._source

    def __call__(self, *flat_args: np.ndarray) -> list[np.ndarray]:
        """Run on buffers of the backend (numpy arrays on a host backend, backend buffers
        otherwise; host values are copied in); returns the outputs as such buffers."""
        n_in = self._n_in
        if len(flat_args) + self._n_consts != n_in:
            raise TypeError(f"{self.name}: expected {n_in - self._n_consts} arguments, "
                            f"got {len(flat_args)}")
        bufs = list(self._template)
        flat_args = [real_pairs(a) for a in flat_args]
        if self._host:
            args = self._consts + [a if type(a) is np.ndarray else np.asarray(a)
                                   for a in flat_args]
            for i, a in enumerate(args):
                dt, n = self._in_specs[i]
                if a.dtype != dt:
                    a = a.astype(dt)
                if not a.flags.c_contiguous:
                    a = np.ascontiguousarray(a)
                bufs[i] = a
        else:
            bufs[:n_in] = self._consts + [self.backend.asbuffer(a, self._in_specs[i][0])
                                          for i, a in enumerate(flat_args, self._n_consts)]
        alloc = self._alloc
        for b, shape, dt in self._out_allocs:
            bufs[b] = alloc(shape, dt)
        if self._timed and debug_level() >= 2:
            self._run_timed(bufs)
        elif self._run is not None:
            self._run(bufs)
        else:
            for ids, launch in self._launch_ids:
                launch([bufs[b] for b in ids])
        outs = [bufs[b] for b in self._out_order] if self._simple_outputs else \
            self._outputs(bufs)
        for i, dt, shape in self._complex_outs:
            outs[i] = complex_view(outs[i], dt, shape)
        return outs

    def _outputs(self, bufs) -> list[np.ndarray]:
        if self._host:
            return self._host_outputs(bufs)
        dev, outs = self.backend, []
        for o in self.schedule.outputs:
            if o.buf < 0:
                outs.append(dev.zeros(o.shape, o.dtype))
            elif o.view is None:
                outs.append(bufs[o.buf].reshape(o.shape))
            else:  # a strided view of a backend buffer: made on the host, copied back
                outs.append(dev.put(_strided(bufs[o.buf].numpy().reshape(-1), o.view)))
        return outs

    def _host_outputs(self, bufs) -> list[np.ndarray]:
        outs = []
        for o in self.schedule.outputs:
            if o.buf < 0:
                outs.append(np.zeros(o.shape, o.dtype))
                continue
            base = bufs[o.buf].reshape(-1)
            outs.append(base.reshape(o.shape) if o.view is None else _strided(base, o.view))
        return outs

    def _run_timed(self, bufs):
        rows = []
        for k, launch in zip(self._kernels, self._launch):
            t0 = time.perf_counter()
            dt = launch([bufs[b] for b in k.buf_ids])  # a device's own timing, if it has one
            rows.append((k, time.perf_counter() - t0 if dt is None else dt))
        # an asynchronous backend answers with a function to call once everything is queued
        rows = [(k, dt() if callable(dt) else dt) for k, dt in rows]
        print(f"*** {self.name}: {len(rows)} kernels on {self.backend.name}")
        print(f"{'kernel':<8} {'time us':>10} {'GFLOP/s':>9} {'GB/s':>8}  source")
        for k, dt in rows:
            info = self.backend.launch_info(k)
            how = f"[{info}] " if info is not None else ""
            print(f"{k.name:<8} {dt * 1e6:>10.1f} {k.flops / dt / 1e9 if dt else 0:>9.2f} "
                  f"{k.nbytes / dt / 1e9 if dt else 0:>8.2f}  {how}{', '.join(k.source_lines)}")
        print(f"{'total':<8} {sum(dt for _, dt in rows) * 1e6:>10.1f}")


def real_pairs(x):
    """A complex buffer (numpy or a device's) seen as its interleaved real parts, the
    layout compiled programs compute complex values in; other values unchanged."""
    dt = getattr(x, "dtype", None)
    if dt is None or np.dtype(dt).kind != "c":
        return x
    part = np.float64 if dt == np.complex128 else np.float32
    if type(x) is np.ndarray:
        return np.ascontiguousarray(x).view(part)
    return x.view(part)


def complex_view(x, dtype, shape):
    """The interleaved real pairs ``x`` (last axis 2) seen as complex values of ``shape``."""
    if type(x) is np.ndarray:
        return np.ascontiguousarray(x).view(dtype).reshape(shape)
    return x.view(dtype).reshape(shape)


def _strided(base: np.ndarray, view) -> np.ndarray:
    """The (shape, strides in elements, offset) view of the flat array ``base``."""
    shape, strides, offset = view
    if all(s >= 0 for s in strides):
        it = base.dtype.itemsize
        return np.lib.stride_tricks.as_strided(base[offset:], shape, [s * it for s in strides])
    return _neg_strided(base, shape, strides, offset)


def _neg_strided(base, shape, strides, offset):
    out = base[offset:offset + 1] if base.size else base
    idx = np.full(shape, offset, np.int64)
    for ax, (s, st) in enumerate(zip(shape, strides)):
        r = np.arange(s, dtype=np.int64) * st
        idx = idx + r.reshape([-1 if j == ax else 1 for j in range(len(shape))])
    del out
    return base[idx]
