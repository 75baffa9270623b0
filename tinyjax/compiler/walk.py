"""Running a :class:`~tinyjax.compiler.steps.Program` from the host, step by step: the
interpreter device's way (the oracle the compiled programs are checked against), CUDA's
for what it does not run device-side, and the C device's when it times each kernel
(``DEBUG=2``) or has no launcher library.

The walker needs of a backend only its buffers: ``view(buf, byte_offset, dtype, size)`` (a
buffer aliasing part of another), ``copy_into(dst, src)``, ``to_host`` and ``put``; and
one launcher per kernel (``launch(buffers)``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from tinyjax.compiler.steps import Call, Copy, Launch, Loop, Program, Ref, Switch

__all__ = ["Walker", "LoadedProgram", "load_walked", "strided_host_view"]


class Walker:
    """``walker(args, arena)`` runs ``program`` on ``backend``: ``args`` are the constants',
    inputs' and outputs' buffers in that order, ``arena`` the call's scratch block.
    ``launchers`` maps each kernel (by id) to ``launch(buffers)``.  With ``timings`` (a
    list), every launch appends ``(kernel, seconds)`` (the launcher's own timing where it
    gives one)."""

    def __init__(self, program: Program, backend, launchers: dict[int, Callable]):
        self.program, self.backend, self.launchers = program, backend, launchers
        p = program
        self._bases = [(b, i) for i, b in enumerate(p.consts + p.inputs + p.outputs)]
        self._scratch = [b for b in p.scratch]

    def __call__(self, args: list, arena: Any, timings: Optional[list] = None) -> None:
        env: dict = {}
        for b, i in self._bases:
            env[b] = (args[i], 0)
        for b in self._scratch:
            env[b] = (arena, b.index)
        _Run(self, env, timings).steps(self.program.steps)


class _Run:
    """One call's state: where each buffer and pointer is (base buffer, byte offset) and
    the loop counters."""

    def __init__(self, walker: Walker, env: dict, timings: Optional[list]):
        self.w, self.env, self.timings = walker, env, timings
        self.counters: dict = {}
        self.view = walker.backend.view

    def at(self, ref: Ref, size: Optional[int] = None):
        """The backend buffer at ``ref`` (``size`` elements: default the ref's)."""
        base, off = self._loc(ref)
        return self.view(base, off, ref.dtype, ref.size if size is None else size)

    def array(self, ref: Ref, aval: tuple):
        """The buffer at ``ref`` as an array of ``aval`` = (shape, dtype)."""
        shape, dtype = aval
        return self.at(ref).view(dtype).reshape(shape)

    def _loc(self, ref: Ref) -> tuple:
        """(base buffer, byte offset) of ``ref`` now."""
        base, off = self.env[ref.base]
        elems = ref.offset
        for loop, stride in ref.terms:
            elems += self.counters[loop] * stride
        return base, off + elems * ref.dtype.itemsize

    def steps(self, steps: list) -> None:
        for st in steps:
            kind = type(st)
            if kind is Launch:
                self.launch(st)
            elif kind is Copy:
                self.copy(st)
            elif kind is Loop:
                self.loop(st)
            elif kind is Switch:
                self.switch(st)
            elif kind is Call:
                st.run([self.array(r, a) for r, a in zip(st.ins, st.in_avals)],
                       [self.array(r, a) for r, a in zip(st.outs, st.out_avals)])
            else:
                raise TypeError(f"unknown program step {st!r}")

    def launch(self, st: Launch) -> None:
        bufs = [self.at(r) for r in st.refs]
        launch = self.w.launchers[id(st.kernel)]
        if self.timings is None:
            launch(bufs)
            return
        t0 = time.perf_counter()
        dt = launch(bufs)
        self.timings.append((st.kernel, time.perf_counter() - t0 if dt is None else dt))

    def copy(self, st: Copy) -> None:
        if st.dst.size == 0:
            return
        be = self.w.backend
        dst = self.at(st.dst)
        if st.view is None:
            be.copy_into(dst, self.at(st.src))
            return
        src = be.to_host(self.at(st.src, _span(*st.view)))
        be.copy_into(dst, be.put(np.ascontiguousarray(
            strided_host_view(src, st.view)).reshape(-1)))

    def loop(self, st: Loop) -> None:
        env, be = self.env, self.w.backend
        for c in st.carries:
            env[c.cur] = self._loc(c.init)
        it = 0
        while True:
            if st.length is None:
                self.steps(st.cond)
                if not bool(be.to_host(self.at(st.pred)).reshape(-1)[0]):
                    break
            elif it == st.length:
                break
            self.counters[st] = st.length - 1 - it if st.reverse else it
            for c in st.carries:
                env[c.nxt] = env[c.bufs[(it + st.parity) % 2]]
            self.steps(st.body)
            for c in st.carries:
                env[c.cur] = env[c.nxt]
            it += 1
        for c in st.carries:
            (b, off), (h, hoff) = env[c.cur], env[c.bufs[0]]
            if b is not h or off != hoff:  # a while loop ended on the other buffer
                dt, n = c.init.dtype, c.init.size
                be.copy_into(self.view(h, hoff, dt, n), self.view(b, off, dt, n))
        if self.timings is not None:
            self.timings.append((st, it))

    def switch(self, st: Switch) -> None:
        i = int(self.w.backend.to_host(self.at(st.index)).reshape(-1)[0])
        i = min(max(i, 0), len(st.branches) - 1)
        if self.timings is not None:
            self.timings.append((st, i))
        self.steps(st.branches[i])


def _span(shape, strides, offset) -> int:
    """Elements from the base that a (shape, strides, offset) view can reach."""
    hi = offset + sum((s - 1) * st for s, st in zip(shape, strides) if st > 0 and s > 0)
    return hi + 1


def strided_host_view(base: np.ndarray, view: tuple) -> np.ndarray:
    """The (shape, element strides, element offset) view of the flat host array ``base``."""
    shape, strides, offset = view
    flat = base.reshape(-1)
    if all(s >= 0 for s in strides):
        it = flat.dtype.itemsize
        return np.lib.stride_tricks.as_strided(flat[offset:], shape, [s * it for s in strides])
    idx = np.full(shape, offset, np.int64)
    for ax, (s, st) in enumerate(zip(shape, strides)):
        r = np.arange(s, dtype=np.int64) * st
        idx = idx + r.reshape([-1 if j == ax else 1 for j in range(len(shape))])
    return flat[idx]


@dataclass
class LoadedProgram:
    """A program a backend has compiled: its ``source``, ``run(args, arena)``, one launcher
    per kernel (by ``id``) for the timed walk, and where the backend times kernels inside
    its compiled program, ``timed()``: the run ``(args, arena) -> [(kernel, seconds,
    calls)]`` (one entry per launch site) of the program with each launch timed, built at
    the first ask (``DEBUG=2`` then times the program as it runs)."""
    source: str
    run: Callable[[list, Any], None]
    launchers: dict[int, Callable]
    timed: Optional[Callable[[], Callable[[list, Any], list]]] = None


def load_walked(backend, program: Program) -> LoadedProgram:
    """``program`` with its kernels compiled by ``backend`` and its steps walked from the
    host (the default ``load_program``)."""
    kernels = program.kernels
    source, fns = backend.compile(kernels)
    launchers = {id(k): backend.make_launcher(f, k) for f, k in zip(fns, kernels)}
    return LoadedProgram(source, Walker(program, backend, launchers), launchers)
