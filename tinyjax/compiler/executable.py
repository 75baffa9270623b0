"""The executable of a compiled jaxpr: a :class:`~tinyjax.compiler.steps.Program` loaded by a
backend, called with the program's arguments.

A call converts its inputs to the backend's buffers (dtype, contiguity), allocates the
outputs, takes a scratch arena and runs the program -- on the CPU one native call
(:mod:`tinyjax.backends.c.program`), elsewhere the host walks the steps.  Buffers belong
to a call, not to the executable: the arena comes from the executable's pool of free
arenas (or is allocated), so calls from several threads at once never share
intermediates.  ``DEBUG`` (environment): 1 kernel count, 2 a timing table per call (each
kernel timed inside the compiled program where the backend can, else the steps walked from
the host), 3 the scheduled kernels, 4 the generated source.
"""
from __future__ import annotations

import time

import numpy as np

from tinyjax.backends.base import Backend, host_empty
from tinyjax.compiler.memory import donation_plan
from tinyjax.compiler.steps import Loop, Program, Switch, walk_steps
from tinyjax.compiler.walk import Walker
from tinyjax.config import debug_level

__all__ = ["Executable", "ARENAS_KEPT"]

# arenas an executable keeps for later calls (one per call running at the same time; beyond
# this many, a finished call's arena is dropped)
ARENAS_KEPT = 4


class Executable:
    """Compiled program: ``exe(*flat_args) -> list of output buffers`` (numpy arrays on a
    host backend)."""

    def __init__(self, program: Program, backend: Backend):
        self.program, self.backend = program, backend
        self.name = program.name
        self.device = backend
        loaded = backend.load_program(program)
        self._source, self._run, self._launchers = loaded.source, loaded.run, loaded.launchers
        self._timed = loaded.timed
        self._host = backend.host
        # A loop reads its operands every iteration: its program's outputs (carries among
        # them) start on a cache line.  A straight-line program reads each about once, where
        # numpy's faster allocation is worth more.
        self._alloc = backend.alloc if not self._host else \
            host_empty if any(isinstance(s, Loop) for s in walk_steps(program.steps)) \
            else np.empty
        # constants live where the kernels run: copied to a device once, here
        self._consts = list(program.const_values) if self._host else \
            [backend.asbuffer(c) for c in program.const_values]
        self._n_in = len(program.inputs)
        # the arrays' dtypes (a complex array is passed whole: the program computes on its
        # interleaved real and imaginary parts)
        self._in_dtypes = list(program.in_dtypes)
        self._outs = list(zip(program.out_shapes, program.out_dtypes))
        self._arena_bytes = program.arena_bytes
        self._arenas: list = []
        self._alias_plans: dict[tuple, dict] = {}

    # ---- what was compiled ----------------------------------------------------------------
    @property
    def num_kernels(self) -> int:
        return len(self.program.kernels)

    def kernels(self) -> list[str]:
        return [k.describe() for k in self.program.kernels]

    def source(self) -> str:
        return self._source

    def describe(self) -> list[str]:
        return self.program.describe()

    # ---- calls -----------------------------------------------------------------------------
    def _take_arena(self):
        try:
            return self._arenas.pop()   # atomic: two threads never get the same arena
        except IndexError:
            n = self._arena_bytes
            if not self._host:
                return self.backend.alloc((max(n, 1),), np.uint8)
            return host_empty((n,), np.uint8, min_bytes=0)  # (its offsets assume a line)

    def _give_arena(self, arena) -> None:
        if len(self._arenas) < ARENAS_KEPT:
            self._arenas.append(arena)

    def _inputs(self, flat_args) -> list:
        if len(flat_args) != self._n_in:
            raise TypeError(f"{self.name}: expected {self._n_in} arguments, "
                            f"got {len(flat_args)}")
        if not self._host:
            be = self.backend
            return [be.asbuffer(a, dt) for a, dt in zip(flat_args, self._in_dtypes)]
        args = []
        for a, dt in zip(flat_args, self._in_dtypes):
            if type(a) is not np.ndarray or a.dtype != dt or not a.flags.c_contiguous:
                a = np.ascontiguousarray(a, dt)
            args.append(a)
        return args

    def alias_plan(self, donated: tuple) -> dict[int, int]:
        """Output number -> the donated argument whose memory it takes (see
        :func:`~tinyjax.compiler.memory.donation_plan`)."""
        plan = self._alias_plans.get(donated)
        if plan is None:
            plan = self._alias_plans[donated] = donation_plan(self.program, donated)
        return plan

    def __call__(self, *flat_args, donated: tuple = ()) -> list:
        """Run on buffers of the backend (numpy arrays on a host backend, device buffers
        otherwise; host values are copied in); returns the outputs as such buffers.
        ``donated``: arguments whose host arrays the caller gives up (no one else holds
        them), or (argument, output) pairs: outputs may be written into them (see
        :meth:`alias_plan`)."""
        args = self._inputs(flat_args)
        alloc = self._alloc
        outs = [alloc(shape, dt) for shape, dt in self._outs]
        if donated and self._host:
            for k, d in self.alias_plan(donated).items():
                outs[k] = _writable(args[d], *self._outs[k], outs[k])
        arena = self._take_arena()
        try:
            if debug_level() >= 2:
                self._run_timed(self._consts + args + outs, arena)
            else:
                self._run(self._consts + args + outs, arena)
        finally:
            # (an asynchronous device may still be running the kernels: the next call to
            # take this arena queues its own kernels after them, on the same stream)
            self._give_arena(arena)
        return outs

    def _run_timed(self, bufs: list, arena) -> None:
        """One call with each kernel timed (inside the compiled program, or the steps walked
        from the host); prints the table."""
        if self._timed is not None:
            run = self._timed()
            t0 = time.perf_counter()
            kernels = [(k, dt, n) for k, dt, n in run(bufs, arena) if n]
            how = "in the compiled program"
        else:
            t0 = time.perf_counter()
            rows: list = []
            Walker(self.program, self.backend, self._launchers)(bufs, arena, rows)
            self.backend.synchronize()
            # an asynchronous device answers with a function to call once all is queued
            rows = [(k, dt() if callable(dt) else dt) for k, dt in rows]
            for st, n in rows:
                if isinstance(st, Loop):
                    print(f"  {st.kind} {st.counter}: {n} iterations")
                elif isinstance(st, Switch):
                    print(f"  cond: branch {n} taken")
            kernels = [(k, dt, 1) for k, dt in rows if not isinstance(k, (Loop, Switch))]
            how = "walked"
        total = time.perf_counter() - t0
        info = self.backend.launch_info
        print(f"*** {self.name}: {sum(n for *_, n in kernels)} kernel launches on "
              f"{self.backend.name}")
        print(f"{'kernel':<8} {'time us':>10} {'GFLOP/s':>9} {'GB/s':>8}  source")
        per: dict = {}
        for k, dt, n in kernels:
            per.setdefault(id(k), [k, 0.0, 0])
            per[id(k)][1] += dt
            per[id(k)][2] += n
        for k, dt, n in per.values():
            note = info(k)
            note = f"[{note}] " if note else ""
            times = f" x{n}" if n > 1 else ""
            print(f"{k.name:<8} {dt * 1e6:>10.1f} {k.flops * n / dt / 1e9 if dt else 0:>9.2f} "
                  f"{k.nbytes * n / dt / 1e9 if dt else 0:>8.2f}  {note}"
                  f"{', '.join(k.source_lines)}{times}")
        print(f"{'total':<8} {sum(dt for _, dt, _ in kernels) * 1e6:>10.1f}"
              f"   ({how}: {total * 1e6:.1f} us)")


def _writable(a: np.ndarray, shape: tuple, dtype, fresh: np.ndarray) -> np.ndarray:
    """The donated array ``a`` as an output buffer of ``shape``; ``fresh`` where numpy will
    not make it writable."""
    try:
        a.flags.writeable = True
    except ValueError:
        return fresh
    return a if a.shape == tuple(shape) else a.reshape(shape)
