"""The executable of a jaxpr without control flow: its scheduled kernels, compiled by a
backend, run over planned buffers.

The executable is a flat list of kernel launches over buffers planned at compile time:
intermediates share scratch slots (a buffer whose last reader has run is handed to the
next kernel that needs one of the same dtype and size); outputs are fresh arrays per call.
Buffers belong to a call, not to the executable: a call takes a set of scratch arrays from
the executable's pool (or allocates one), so calls from several threads at once are safe.
A jaxpr with control flow becomes a :class:`~tinyjax.compiler.program.Program` of steps
(fused runs, and loops/branches over compiled sub-programs).  ``DEBUG`` (environment): 1
kernel count, 2 a timing table per call, 3 the scheduled kernels, 4 the generated source.
"""
from __future__ import annotations

import time

import numpy as np

from tinyjax.backends.base import Backend
from tinyjax.compiler.schedule import Schedule
from tinyjax.config import debug_level

__all__ = ["Executable"]

# scratch sets an executable keeps for later calls (one per call running at the same time;
# beyond this many, a finished call's set is dropped)
SCRATCH_SETS_KEPT = 4


class Executable:
    """Compiled program: ``exe(*flat_args) -> list of output arrays``."""

    def __init__(self, sched: Schedule, consts: list[np.ndarray], backend: Backend,
                 source: str, fns: list, name: str = "jaxpr", timed: bool = True):
        self.schedule = sched
        self._timed = timed  # a loop body's sub-program: no timing table per iteration
        self.backend = backend
        self._source = source
        self._kernels = sched.kernels
        self._host = backend.host
        self._alloc = np.empty if self._host else backend.alloc
        # constants live where the kernels run: copied to the device once, here
        self._consts = list(consts) if self._host else \
            [backend.asbuffer(c, sched.buffers[i][0]) for i, c in enumerate(consts)]
        self.name = name
        self._launch = [backend.make_launcher(f, k) for f, k in zip(fns, sched.kernels)]
        self._run = backend.make_program(fns, sched.kernels)
        self._plan()

    # ---- buffer planning ----------------------------------------------------------------
    def _plan(self):
        """Plan the intermediates: each gets a scratch slot, and a slot whose last reader
        has run is handed to the next kernel that needs one of the same dtype and size.
        The arrays of the slots (a *scratch set*) belong to one call at a time: a call takes
        a set from :attr:`_scratch_free` (or allocates one) and gives it back when its
        kernels are queued, so concurrent calls never share intermediates."""
        sched = self.schedule
        n_in = sched.n_inputs
        out_ids = {o.buf for o in sched.outputs if o.view is None and o.buf >= n_in}
        last_use: dict[int, int] = {}
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[k.n_outs:]:
                last_use[b] = i
        free: dict[tuple, list] = {}
        self.scratch_slot: dict[int, int] = {}   # buffer id -> scratch slot
        self._scratch_specs: list[tuple] = []   # slot -> (size, dtype)
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[:k.n_outs]:
                if b not in out_ids:
                    dt, n = sched.buffers[b]
                    pool = free.get((dt, n))
                    if pool:
                        self.scratch_slot[b] = pool.pop()
                    else:
                        self.scratch_slot[b] = len(self._scratch_specs)
                        self._scratch_specs.append(((n,), dt))
            for r in set(k.buf_ids[k.n_outs:]):
                if r >= n_in and r not in out_ids and last_use.get(r) == i:
                    free.setdefault(sched.buffers[r], []).append(self.scratch_slot[r])
        self._scratch_free: list[list] = []
        self._alias_plans: dict[tuple, dict] = {}
        self._scratch_fill = list(self.scratch_slot.items())
        self._out_ids = sorted(out_ids)
        self._n_consts = len(self._consts)
        # per-call work, precomputed: the outputs to allocate (with their final shape when
        # a single output owns one)
        self._n_in = n_in
        self._in_specs = [sched.buffers[i] for i in range(n_in)]
        self._n_bufs = len(sched.buffers)
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

    def _take_scratch(self) -> list:
        """A scratch set for one call: a free one, or new arrays."""
        try:
            return self._scratch_free.pop()   # atomic: two threads never get the same set
        except IndexError:
            alloc = self._alloc
            return [alloc(shape, dt) for shape, dt in self._scratch_specs]

    def _give_scratch(self, scratch: list) -> None:
        if len(self._scratch_free) < SCRATCH_SETS_KEPT:
            self._scratch_free.append(scratch)

    @property
    def num_kernels(self) -> int:
        return len(self._kernels)

    def kernels(self) -> list[str]:
        return [k.describe() for k in self._kernels]

    def source(self) -> str:
        return self._source

    # ---- donated inputs ---------------------------------------------------------------
    def alias_plan(self, donated: tuple[int, ...]) -> dict[int, int]:
        """Output buffer -> the donated argument (index into the call's arguments) whose
        memory it may take: of the same dtype and size, and read by no kernel after the
        output is written -- except by the kernel writing it, when that is elementwise and
        reads the argument exactly where it writes (each point read before it is written)."""
        plan = self._alias_plans.get(donated)
        if plan is not None:
            return plan
        sched, n_c = self.schedule, self._n_consts
        writer: dict[int, int] = {}
        last_read: dict[int, int] = {}
        for i, k in enumerate(self._kernels):
            for b in k.buf_ids[:k.n_outs]:
                writer.setdefault(b, i)
            for b in k.buf_ids[k.n_outs:]:
                last_read[b] = i
        plan, taken = {}, set()
        for b, _, _ in self._out_allocs:
            w = writer.get(b)
            for d in donated:
                arg = n_c + d
                if w is None or arg in taken or sched.buffers[arg] != sched.buffers[b]:
                    continue
                r = last_read.get(arg, -1)
                if r < w or (r == w and _reads_in_place(self._kernels[w], arg, b)):
                    plan[b] = d
                    taken.add(arg)
                    break
        self._alias_plans[donated] = plan
        return plan

    def __call__(self, *flat_args: np.ndarray, donated: tuple[int, ...] = ()
                 ) -> list[np.ndarray]:
        """Run on buffers of the backend (numpy arrays on a host backend, backend buffers
        otherwise; host values are copied in); returns the outputs as such buffers.
        ``donated``: arguments whose host arrays the caller gives up (no one else holds
        them): outputs may be written into them (see :meth:`alias_plan`)."""
        n_in = self._n_in
        if len(flat_args) + self._n_consts != n_in:
            raise TypeError(f"{self.name}: expected {n_in - self._n_consts} arguments, "
                            f"got {len(flat_args)}")
        bufs = [None] * self._n_bufs
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
        aliases = self.alias_plan(donated) if donated and self._host else {}
        for b, shape, dt in self._out_allocs:
            d = aliases.get(b)
            bufs[b] = alloc(shape, dt) if d is None else _writable(bufs[self._n_consts + d],
                                                                   shape, dt, alloc)
        scratch = self._take_scratch()
        try:
            for b, slot in self._scratch_fill:
                bufs[b] = scratch[slot]
            if self._timed and debug_level() >= 2:
                self._run_timed(bufs)
            elif self._run is not None:
                self._run(bufs)
            else:
                for ids, launch in self._launch_ids:
                    launch([bufs[b] for b in ids])
        finally:
            # (an asynchronous device may still be running the kernels: the next call to
            # take this set queues its own kernels after them, on the same stream)
            self._give_scratch(scratch)
        if self._simple_outputs:
            return [bufs[b] for b in self._out_order]
        return self._outputs(bufs)

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


def _reads_in_place(k, arg: int, out: int) -> bool:
    """Whether kernel ``k`` is elementwise and loads buffer ``arg`` only at the point where
    it stores buffer ``out`` (then ``out`` may live in ``arg``'s memory)."""
    if k.reduce_op is not None or k.pre or k.gemm is not None or k.sort is not None \
            or k.scatter_shape is not None or k.n_outs != 1:
        return False
    slots = {bid: slot for slot, bid in enumerate(k.buf_ids)}
    stores = [u.arg for u in k.body if u.op == "STORE" and u.arg[0] == slots.get(out)]
    loads = [u for u in k.body if u.op == "LOAD" and u.arg[0] == slots.get(arg)]
    if len(stores) != 1 or any(u.srcs for u in loads):  # (a load at a computed offset)
        return False
    _, where, valid = stores[0]
    return all(u.arg[1] == where and u.arg[2] == valid for u in loads)


def _writable(a: np.ndarray, shape: tuple, dtype, alloc) -> np.ndarray:
    """The donated array ``a`` as the output buffer of ``shape``; a new one where numpy will
    not make it writable."""
    try:
        a.flags.writeable = True
    except ValueError:
        return alloc(shape, dtype)
    return a if a.shape == tuple(shape) else a.reshape(shape)


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
