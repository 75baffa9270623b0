"""Running a :class:`~tinyjax.compiler.steps.Program` on the CUDA device.

A program without loops or branches is a fixed sequence of launches and device copies over
addresses known once the call's arguments and arena are: a call whose addresses were seen
before replays a CUDA graph of it (one driver call instead of one per kernel; see
:class:`_Graphs`), in which kernels that do not depend on each other run on separate
streams, side by side (:mod:`tinyjax.backends.lanes`).  A program with loops or branches
becomes one graph with conditional nodes where the driver has them (CUDA 12.4 on; see
:mod:`tinyjax.backends.cuda.device_loops`): its loops run on the device, recorded at a call's
first addresses.  Otherwise it is walked from the host (:class:`~tinyjax.compiler.walk.Walker`).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional

import numpy as np

from tinyjax.backends.cuda.device_loops import (SUPPORT_KERNELS, SUPPORT_SOURCE, DeviceLoops,
                                                supports_program)
from tinyjax.backends.lanes import plan_lanes
from tinyjax.compiler.steps import CONST, INPUT, OUTPUT, Buffer, Copy, Launch, Program
from tinyjax.compiler.walk import LoadedProgram, Walker
from tinyjax.config import env_flag, env_str

__all__ = ["load_cuda_program"]


# CUDA graphs for repeated calls (TINYJAX_CUDA_GRAPHS=0 turns them off)
GRAPHS = env_flag("TINYJAX_CUDA_GRAPHS")


def _lanes_setting() -> int:
    """How many streams a graph's independent kernels are spread over: TINYJAX_CUDA_LANES
    (default 3; 1 keeps every kernel on one stream)."""
    raw = env_str("TINYJAX_CUDA_LANES")
    try:
        return max(1, int(raw))
    except ValueError:
        raise ValueError(f"TINYJAX_CUDA_LANES must be a number of streams, got {raw!r}") from None


LANES = _lanes_setting()


class _Graphs:
    """The CUDA graphs of one program, keyed by the buffer addresses of a call.

    A graph bakes its launches' arguments in, so it serves exactly the calls with the same
    addresses -- which is what a training loop makes: the intermediates are the program's
    own, and the pool hands the outputs the blocks that the previous step's arrays gave
    back, so a step's addresses repeat every call or two.  An address tuple is recorded on
    its second sighting (one-off calls cost no capture) and the last ``KEEP`` graphs are
    kept.  ``record(ptrs, streams)`` queues a call's launches on the capturing streams and
    returns the events it recorded (destroyed once the graph is made); or ``build(ptrs)``
    makes the executable graph itself, and with ``eager`` a graph is made at the first
    sighting (a program whose loops would otherwise be walked from the host)."""

    KEEP = 8
    SEEN = 64

    def __init__(self, drv, record, lanes: int, build=None, eager: bool = False):
        self.drv, self.record, self.lanes = drv, record, lanes
        self.build, self.eager = build, eager
        self.graphs: "OrderedDict[tuple, object]" = OrderedDict()
        self.seen: "OrderedDict[tuple, None]" = OrderedDict()

    def replay(self, ptrs: tuple) -> bool:
        """Launch the graph of ``ptrs`` (recording it if these addresses were seen before);
        False when the caller should launch the kernels itself."""
        exe = self.graphs.get(ptrs)
        if exe is None:
            if ptrs not in self.seen and not self.eager:
                self.seen[ptrs] = None
                if len(self.seen) > self.SEEN:
                    self.seen.popitem(last=False)
                return False
            if self.build is not None:
                exe = self.graphs[ptrs] = self.build(ptrs)
            else:
                exe = self.graphs[ptrs] = self._capture(ptrs)
            if len(self.graphs) > self.KEEP:
                self.drv.graph_destroy(self.graphs.popitem(last=False)[1])
        else:
            self.graphs.move_to_end(ptrs)
        self.drv.graph_launch(exe)
        return True

    def _capture(self, ptrs: tuple):
        spent: list = []
        try:
            return self.drv.capture(lambda st: spent.extend(self.record(ptrs, st)), self.lanes)
        finally:
            for ev in spent:
                self.drv.event_destroy(ev)

    def __del__(self):
        try:
            for exe in self.graphs.values():
                self.drv.graph_destroy(exe)
        except Exception:  # noqa: BLE001 - at interpreter exit the driver may be gone
            pass


def _straight_line(program: Program) -> Optional[list]:
    """The program as [(kernel or None for a copy, [(base, byte offset) per operand])] where
    every step is a launch or a plain copy at a fixed address; None otherwise.  ``base``
    indexes the call's arguments, the arena last."""
    n_args = len(program.consts) + len(program.inputs) + len(program.outputs)
    index = {id(b): i for i, b in enumerate(program.consts + program.inputs + program.outputs)}
    out = []
    for st in program.steps:
        if isinstance(st, Launch):
            refs, kernel = st.refs, st.kernel
        elif isinstance(st, Copy) and st.view is None:
            refs, kernel = [st.dst, st.src], None
        else:
            return None
        places = []
        for r in refs:
            if not isinstance(r.base, Buffer) or r.terms:
                return None
            base = index[id(r.base)] if r.base.kind in (CONST, INPUT, OUTPUT) else n_args
            off = (r.base.index if base == n_args else 0) + r.offset * r.dtype.itemsize
            places.append((base, off, r.nbytes))
        out.append((kernel, places))
    return out


def load_cuda_program(backend, program: Program) -> LoadedProgram:
    """``program``'s kernels compiled into one module; ``run`` replays graphs of a
    straight-line program, else walks the steps from the host."""
    drv = backend.driver
    kernels = program.kernels
    source, fns = backend.compile(kernels)
    by_id = {id(k): f for k, f in zip(kernels, fns)}
    timed = {id(k): backend.make_launcher(f, k) for k, f in zip(kernels, fns)}
    plan = _straight_line(program)
    if plan is None:
        return LoadedProgram(source, _with_control_flow(backend, program, by_id), timed)
    steps = [(by_id[id(k)] if k is not None else None, places) for k, places in plan]

    def launch_all(bases, stream=None):
        for f, places in steps:
            ptrs = [bases[b] + off for b, off, _ in places]
            if f is None:
                drv.dtod_async(ptrs[0], ptrs[1], places[0][2], stream)
            else:
                f.launch(drv, ptrs, stream)

    def record(bases, streams):
        if len(streams) == 1:
            launch_all(bases, streams[0])
            return []
        spans = [[(bases[b] + off, bases[b] + off + n) for b, off, n in places]
                 for _, places in steps]
        n_outs = [k.n_outs if k is not None else 1 for k, _ in plan]
        launches = plan_lanes([s[:o] for s, o in zip(spans, n_outs)],
                              [s[o:] for s, o in zip(spans, n_outs)], len(streams))
        done = {i: drv.event(timing=False) for launch in launches for i in launch.waits}
        for j, lane, waits in launches:
            for i in waits:
                drv.wait(streams[lane], done[i])
            f, places = steps[j]
            ptrs = [bases[b] + off for b, off, _ in places]
            if f is None:
                drv.dtod_async(ptrs[0], ptrs[1], places[0][2], streams[lane])
            else:
                f.launch(drv, ptrs, streams[lane])
            if j in done:
                drv.record(done[j], streams[lane])
        return list(done.values())

    graphs = _Graphs(drv, record, LANES) if GRAPHS and len(steps) > 1 else None

    def run(args: list, arena) -> None:
        bases = tuple([b.ptr for b in args] + [arena.ptr])
        with drv.lock:  # the kernels' parameter blocks are shared by every call
            if graphs is None or not graphs.replay(bases):
                launch_all(bases)
    return LoadedProgram(source, run, timed)


def _with_control_flow(backend, program: Program, by_id: dict):
    """``run(args, arena)`` of a program with loops or branches: one graph with conditional
    nodes per call addresses where the driver has them, else the host walks the steps."""
    drv = backend.driver

    def plain(f):
        def launch(bufs):
            with drv.lock:   # a kernel's parameter block is shared by every call
                f.launch(drv, [b.ptr for b in bufs])
        return launch
    walker = Walker(program, backend, {i: plain(f) for i, f in by_id.items()})
    if not (GRAPHS and drv.conditional_graphs and supports_program(program)):
        return walker
    support = backend.support_functions(SUPPORT_SOURCE, SUPPORT_KERNELS)
    loops = DeviceLoops(drv, program, by_id, support,
                        lambda n: backend.alloc((n,), np.uint8))
    graphs = _Graphs(drv, None, 1, build=loops.build, eager=True)

    def run(args: list, arena) -> None:
        bases = tuple([b.ptr for b in args] + [arena.ptr])
        with drv.lock:
            graphs.replay(bases)
    run.device_loops = loops
    return run
