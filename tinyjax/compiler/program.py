"""``compile_jaxpr``: a jaxpr compiled for a backend -- one :class:`~tinyjax.compiler.steps.Program`
(buffers planned ahead, kernels, loops and branches; see :mod:`tinyjax.compiler.steps`) run
by an :class:`~tinyjax.compiler.executable.Executable`.

The jaxpr is cut into runs of ordinary equations, each lowered and fused into kernels
(:func:`~tinyjax.compiler.schedule.schedule`), and the equations between them:

* ``scan``   a :class:`~tinyjax.compiler.steps.Loop` of ``length`` iterations around its
  body's steps: the ``xs`` read in place (``xs + i * row``), each iteration's ``ys``
  written in place into the stacked output, the carries in two buffers each whose roles
  swap every iteration (a carry the body returns unchanged is no carry at all);
* ``while``  the same with the predicate's steps run before each iteration; the predicate
  is a scalar in the arena that the running program reads (no host round trip);
* ``cond``   a :class:`~tinyjax.compiler.steps.Switch` over the branches' steps, each
  writing the results into the same buffers;
* a library call (LAPACK, an FFT; registered with
  :func:`~tinyjax.compiler.lower.registry.register_library_call`) is a
  :class:`~tinyjax.compiler.steps.Call` of the backend's routine (``backend.library_call``)
  between the kernels, with its C routine where the backend has one;
* a host callback (``pure_callback``, ``io_callback``, ``jax.debug.print``; registered with
  :func:`~tinyjax.compiler.lower.registry.register_host_callback`) is a ``Call`` of a
  Python routine: the operands copied to the host, the equation's ``callback`` run, its
  results copied into the program's buffers (a native program calls it through a
  function pointer);
* a collective (``psum``, ``all_gather``, ... of a program that runs on every device of a
  mesh) is a ``Call`` of the device's communicator on whole buffers
  (:mod:`tinyjax.compiler.collectives`);
* ``checkpoint``, ``custom_linear_solve`` (its ``solve`` jaxpr: derivatives were taken
  before compiling) and composite primitives (:mod:`tinyjax.lax.composite`) are inlined:
  their jaxprs are lowered in place.

Complex values are computed on their interleaved real and imaginary parts: a complex
array's buffer holds those.

Results go straight where they are needed: a kernel whose result is a loop's next carry,
a row of a loop's stacked output or the program's output writes it there; a copy is made
only where a result is no kernel's (a pass-through, a constant, a strided view).  Every
kernel of every loop body is compiled once, so compile time does not depend on trip counts.
Scratch buffers share one arena per call (:mod:`tinyjax.compiler.memory`).
"""
from __future__ import annotations

import ctypes
import itertools
from typing import Optional, Sequence

import numpy as np

from tinyjax.backends.base import Backend
from tinyjax.compiler.collectives import COLLECTIVES, canonicalize, collective_routine
from tinyjax.compiler.codegen import prepare_kernels
from tinyjax.compiler.executable import Executable
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.lower.registry import host_callbacks, inlined_calls, library_calls
from tinyjax.compiler.memory import Lifetimes, place, updates_in_place
from tinyjax.compiler.schedule import schedule
from tinyjax.compiler.steps import (CONST, INPUT, OUTPUT, SCRATCH, Buffer, Call, Carry, Copy,
                                    Launch, Loop, Pointer, Program, Ref, Switch)
from tinyjax.config import debug_level
from tinyjax.jaxpr import Jaxpr, Literal, Var
from tinyjax.lax.composite import composite_definitions, composite_inline
from tinyjax.lax.control_flow.conditionals import cond_p
from tinyjax.lax.control_flow.loops import scan_p, while_p

__all__ = ["CONTROL_FLOW", "compile_jaxpr", "build_program", "inline_calls"]

CONTROL_FLOW = frozenset({cond_p, while_p, scan_p})


def _is_step(prim) -> bool:
    """Equations that end a run of kernels and become steps of their own."""
    return (prim in CONTROL_FLOW or prim in host_callbacks or prim in COLLECTIVES
            or prim in library_calls)


def _inlined(eqn, operands: list) -> tuple[Jaxpr, list] | None:
    """The equations an equation stands for, when it is a call the compiler inlines
    (``checkpoint``, ``custom_linear_solve``: see
    :func:`~tinyjax.compiler.lower.registry.register_inlined_call`) or a composite
    primitive (:mod:`tinyjax.lax.composite`): an open jaxpr and the operands (of
    ``operands``, the equation's) its invars take; None for any other equation."""
    if eqn.primitive in inlined_calls:
        inner, operands = inlined_calls[eqn.primitive](eqn, operands)
        invars = list(inner.constvars) + list(inner.invars)
        if len(invars) != len(operands):
            raise NotImplementedError(f"no lowering for primitive '{eqn.primitive.name}'"
                                      " with closed-over constants")
        return Jaxpr([], invars, inner.outvars, inner.eqns), operands
    if eqn.primitive not in composite_definitions:
        return None
    return composite_inline(eqn, operands)


def _inlines(jaxpr: Jaxpr) -> bool:
    return any(e.primitive in inlined_calls or e.primitive in composite_definitions
               for e in jaxpr.eqns)


def inline_calls(jaxpr: Jaxpr) -> Jaxpr:
    """``jaxpr`` with every inlined call's and every composite primitive's equation
    replaced by the equations it stands for (recursively, with fresh variables, so one
    inner jaxpr may be inlined several times)."""
    if not _inlines(jaxpr):
        return jaxpr
    sub: dict = {}
    eqns: list = []

    def read(a):
        return sub.get(a, a) if isinstance(a, Var) else a

    def expand(eqn_list):
        for e in eqn_list:
            ins = [read(a) for a in e.invars]
            inlined = _inlined(e, ins)
            if inlined is not None:
                inner, operands = inlined
                sub.update(zip(inner.invars, operands))
                expand(inner.eqns)
                for v, o in zip(e.outvars, inner.outvars):
                    sub[v] = read(o)
                continue
            outs = []
            for v in e.outvars:
                nv = Var(v.aval)
                sub[v] = nv
                outs.append(nv)
            eqns.append(e.replace(invars=ins, outvars=outs))

    expand(jaxpr.eqns)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, [read(a) for a in jaxpr.outvars], eqns)


def _open(j) -> tuple[Jaxpr, list]:
    """An open jaxpr (every input an invar) and the constants to pass first."""
    consts: list = []
    if hasattr(j, "consts") and hasattr(j, "jaxpr"):  # a ClosedJaxpr
        consts = [np.asarray(getattr(c, "_value", c)) for c in j.consts]
        j = j.jaxpr
    if len(j.constvars) != len(consts):
        raise NotImplementedError("no lowering for a loop body with unbound constants")
    return Jaxpr([], list(j.constvars) + list(j.invars), j.outvars, j.eqns), consts


def _storage(aval) -> tuple[np.dtype, int]:
    """(dtype, elements) of the buffer holding an array of ``aval``: a complex array's holds
    its interleaved real and imaginary parts (compiled code computes on those)."""
    dt, n = np.dtype(aval.dtype), int(np.prod(aval.shape, dtype=np.int64))
    if dt.kind == "c":
        return np.dtype(np.float64 if dt == np.complex128 else np.float32), 2 * n
    return dt, n


def _whole(buf: Buffer) -> Ref:
    return Ref(buf, buf.dtype, buf.size)


def _as_buffer(ref: Optional[Ref], size: int) -> Optional[Buffer]:
    """The buffer ``ref`` is all of, if it is one (a destination a loop may own)."""
    if ref is None or not isinstance(ref.base, Buffer) or ref.offset or ref.terms \
            or ref.base.size != size:
        return None
    return ref.base


class _Builder:
    """Builds a program's steps, its buffers and their lifetimes."""

    def __init__(self, backend: Optional[Backend] = None):
        self.backend = backend   # the library calls' routines come from it
        self.consts: list[Buffer] = []
        self.const_values: list[np.ndarray] = []
        self.scratch: list[Buffer] = []
        self.scratch_names = itertools.count()
        self.life = Lifetimes()
        self.loops: list[tuple[Loop, int]] = []   # enclosing loops, with their start positions
        self.pos = 0
        self.names = itertools.count()
        self.n_kernels = 0

    # ---- buffers and uses -------------------------------------------------------------------
    def new_scratch(self, dtype, size: int) -> Ref:
        buf = Buffer(np.dtype(dtype), int(size), SCRATCH, name=f"s{next(self.scratch_names)}")
        self.scratch.append(buf)
        return _whole(buf)

    def const(self, value) -> Ref:
        value = np.ascontiguousarray(getattr(value, "_value", value))
        if value.dtype.kind == "c":   # held as its real pairs
            value = value.view(np.float64 if value.dtype == np.complex128 else np.float32)
        buf = Buffer(value.dtype, value.size, CONST, len(self.consts), f"c{len(self.consts)}")
        self.consts.append(buf)
        self.const_values.append(value)
        return _whole(buf)

    def emit(self, steps: list, step, refs: Sequence[Ref]) -> None:
        steps.append(step)
        self.use(refs)
        self.pos += 1

    def use(self, refs: Sequence[Ref]) -> None:
        for r in refs:
            if isinstance(r.base, Buffer) and r.base.kind == SCRATCH:
                self.life.use(r.base, self.pos, self.loops)

    # ---- blocks -----------------------------------------------------------------------------
    def block(self, steps: list, jaxpr: Jaxpr, in_refs: list[Ref],
              dests: Sequence[Optional[Ref]]) -> list[Ref]:
        """Append the steps of the open ``jaxpr`` reading ``in_refs``; returns where its
        results are -- at ``dests[i]`` wherever one is given."""
        jaxpr = canonicalize(inline_calls(jaxpr))
        env: dict = dict(zip(jaxpr.invars, in_refs))
        want: dict = {}
        for v, d in zip(jaxpr.outvars, dests):
            if d is not None and isinstance(v, Var) and v not in env:
                want.setdefault(v, []).append(d)
        last: dict = {}
        for i, e in enumerate(jaxpr.eqns):
            for a in e.invars:
                if isinstance(a, Var):
                    last[a] = i
        for a in jaxpr.outvars:
            if isinstance(a, Var):
                last[a] = len(jaxpr.eqns)
        seg: list = []
        for i, e in enumerate(jaxpr.eqns):
            if not _is_step(e.primitive):
                seg.append(e)
                continue
            self.unit(steps, seg, env, want, [v for s in seg for v in s.outvars
                                               if last.get(v, -1) >= i])
            seg = []
            if e.primitive in library_calls:
                self.library(steps, e, env, want)
            elif e.primitive in host_callbacks:
                self.host_callback(steps, e, env, want)
            elif e.primitive in COLLECTIVES:
                self.collective(steps, e, env, want)
            else:
                self.control(steps, e, env, want)
        self.unit(steps, seg, env, want, [v for s in seg for v in s.outvars
                                           if last.get(v, -1) >= len(jaxpr.eqns)])
        outs = []
        for v, d in zip(jaxpr.outvars, dests):
            r = self.read(env, v)
            if d is not None and not r.same_place(d):
                self.emit(steps, Copy(d, r), [d, r])
                r = d
            outs.append(r)
        return outs

    def read(self, env: dict, a) -> Ref:
        if isinstance(a, Literal):
            return self.const(np.asarray(a.val, a.aval.dtype))
        return env[a]

    def take(self, want: dict, v) -> Optional[Ref]:
        """The next destination wanted for ``v`` (taken: it will be written), or None."""
        ds = want.get(v)
        return ds.pop(0) if ds else None

    def unit(self, steps: list, seg: list, env: dict, want: dict, outs: list) -> None:
        """Lower, fuse and launch a run of ordinary equations."""
        if not outs:
            return
        defined = {v for e in seg for v in e.outvars}
        ins = list(dict.fromkeys(a for e in seg for a in e.invars
                                 if isinstance(a, Var) and a not in defined))
        leaves, lazy = lower_jaxpr(Jaxpr([], ins, outs, seg))
        sched = schedule(leaves, lazy)
        for k in sched.kernels:   # names unique in the program: k0, k1, ...
            k.name = f"k{self.n_kernels}"
            self.n_kernels += 1
        local: dict[int, Ref] = {i: env[v] for i, v in enumerate(ins)}
        for o, v in zip(sched.outputs, outs):
            if o.buf >= sched.n_inputs and o.view is None and o.buf not in local:
                d = self.take(want, v)
                if d is not None:
                    local[o.buf] = d
        for k in sched.kernels:
            refs = []
            for b in k.buf_ids:
                if b not in local:
                    local[b] = self.new_scratch(*sched.buffers[b])
                refs.append(local[b])
            self.emit(steps, Launch(k, refs), refs)
        for o, v in zip(sched.outputs, outs):
            if o.buf < 0:   # no elements
                env[v] = self.new_scratch(o.dtype, 0)
            elif o.view is None:
                env[v] = local[o.buf]
            else:           # a strided view of a buffer: materialised
                dst = self.take(want, v) or self.new_scratch(o.dtype, int(np.prod(o.shape)))
                src = local[o.buf]
                self.emit(steps, Copy(dst, src, o.view), [dst, src])
                env[v] = dst

    def library(self, steps: list, e, env: dict, want: dict) -> None:
        """A call into a numerical library (LAPACK, an FFT): the backend's routine between
        the kernels, over the operands' buffers, into buffers of its own."""
        if self.backend is None:
            raise NotImplementedError(f"no lowering for primitive '{e.primitive.name}' "
                                      "without a backend to call its library")
        ins = [self.read(env, a) for a in e.invars]
        outs = [self.take(want, v) or self.new_scratch(*_storage(v.aval)) for v in e.outvars]
        in_avals, out_avals = [a.aval for a in e.invars], [v.aval for v in e.outvars]
        impl = self.backend.library_call(e.primitive, in_avals, out_avals, e.params)
        routine = getattr(impl, "routine", None)   # a C routine the program may call
        native = None if routine is None else (
            routine.fn.address, ctypes.addressof(routine.params), ctypes.addressof(routine.fns))
        call = Call(e.primitive.name, impl, ins, outs,
                    [(tuple(a.shape), np.dtype(a.dtype)) for a in in_avals],
                    [(tuple(a.shape), np.dtype(a.dtype)) for a in out_avals], native)
        self.emit(steps, call, ins + outs)
        env.update(zip(e.outvars, outs))

    def host_callback(self, steps: list, e, env: dict, want: dict) -> None:
        """A call back into Python (``pure_callback``, ``io_callback``, ``jax.debug.*``):
        a foreign routine of the program like a library call, with no native routine (the
        C program calls it through a ctypes callback)."""
        if self.backend is None:
            raise NotImplementedError(f"no lowering for primitive '{e.primitive.name}' "
                                      "without a backend to call back from")
        ins = [self.read(env, a) for a in e.invars]
        outs = [self.take(want, v) or self.new_scratch(*_storage(v.aval)) for v in e.outvars]
        call = Call(e.primitive.name, _host_routine(e.params["callback"], self.backend), ins,
                    outs, [(tuple(a.aval.shape), np.dtype(a.aval.dtype)) for a in e.invars],
                    [(tuple(v.aval.shape), np.dtype(v.aval.dtype)) for v in e.outvars])
        self.emit(steps, call, ins + outs)
        env.update(zip(e.outvars, outs))

    def collective(self, steps: list, e, env: dict, want: dict) -> None:
        """A collective: the calling device's communicator, a foreign routine of the
        program like a host callback, exchanging whole buffers."""
        if self.backend is None:
            raise NotImplementedError(f"no lowering for primitive '{e.primitive.name}' "
                                      "without a backend to exchange buffers on")
        ins = [self.read(env, a) for a in e.invars]
        outs = [self.take(want, v) or self.new_scratch(*_storage(v.aval)) for v in e.outvars]
        call = Call(e.primitive.name, collective_routine(e.primitive, e.params, self.backend),
                    ins, outs, [(tuple(a.aval.shape), np.dtype(a.aval.dtype))
                                for a in e.invars],
                    [(tuple(v.aval.shape), np.dtype(v.aval.dtype)) for v in e.outvars])
        self.emit(steps, call, ins + outs)
        env.update(zip(e.outvars, outs))

    # ---- control flow -----------------------------------------------------------------------
    def control(self, steps: list, e, env: dict, want: dict) -> None:
        ins = [self.read(env, a) for a in e.invars]
        if e.primitive is scan_p:
            outs = self.scan(steps, e, ins, want)
        elif e.primitive is while_p:
            outs = self.while_loop(steps, e, ins, want)
        else:
            outs = self.switch(steps, e, ins, want)
        env.update(zip(e.outvars, outs))

    def carries(self, loop: Loop, body: Jaxpr, first: int, inits: list[Ref], outvars: list,
                want: dict) -> tuple[list, list, list]:
        """The carries of ``loop``: (the body's carry inputs, its carry destinations, the
        loop's carry results).  A carry the body returns unchanged stays where it is."""
        body_in, body_out, results = [], [], []
        for j, init in enumerate(inits):
            if body.outvars[j] is body.invars[first + j]:
                body_in.append(init)
                body_out.append(None)
                results.append(init)
                continue
            n = next(self.names)
            home = _as_buffer(want.get(outvars[j], [None])[0] if want.get(outvars[j]) else None,
                              init.size)
            if home is not None:
                self.take(want, outvars[j])
            else:
                home = self.new_scratch(init.dtype, init.size).base
            other = self.new_scratch(init.dtype, init.size).base
            c = Carry(init, Pointer(f"cur{n}"), Pointer(f"nxt{n}"), (home, other))
            loop.carries.append(c)
            body_in.append(Ref(c.cur, init.dtype, init.size))
            body_out.append(Ref(c.nxt, init.dtype, init.size))
            results.append(_whole(home))
        return body_in, body_out, results

    def update_in_place(self, loop: Loop) -> None:
        """Give each carry the body may update in place (:func:`updates_in_place`) one
        buffer: its second one is dropped."""
        for c in loop.carries:
            home, other = c.bufs
            if other is not home and updates_in_place(loop, c):
                c.bufs = (home, home)
                self.scratch.remove(other)

    def open_loop(self, loop: Loop, refs: list[Ref]) -> None:
        self.use(refs)
        self.loops.append((loop, self.pos))
        self.pos += 1

    def close_loop(self, steps: list, loop: Loop, refs: list[Ref]) -> None:
        _, start = self.loops.pop()
        self.life.close_loop(loop, start, self.pos)
        steps.append(loop)
        self.use(refs)
        self.pos += 1

    def scan(self, steps: list, e, ins: list[Ref], want: dict) -> list[Ref]:
        p = e.params
        body, consts = _open(p["jaxpr"])
        nc, ncar, length = p["num_consts"], p["num_carry"], int(p["length"])
        const_refs = [self.const(c) for c in consts] + ins[:nc]
        loop = Loop(f"i{next(self.names)}", [], [], length=length, reverse=bool(p["reverse"]),
                    parity=(length - 1) % 2 if length else 0)
        first = len(const_refs)
        carry_in, carry_out, carry_res = self.carries(loop, body, first, ins[nc:nc + ncar],
                                                      e.outvars[:ncar], want)
        xs_in = []
        for x in ins[nc + ncar:]:
            row = x.size // length if length else 0
            xs_in.append(Ref(x.base, x.dtype, row, x.offset, x.terms + ((loop, row),)))
        ys_out, ys_res = [], []
        for v, a in zip(e.outvars[ncar:], body.outvars[ncar:]):
            dtype, row = _storage(a.aval)
            d = want.get(v)
            buf = _as_buffer(d[0] if d else None, row * length)
            if buf is not None:
                self.take(want, v)
            else:
                buf = self.new_scratch(dtype, row * length).base
            ys_out.append(Ref(buf, buf.dtype, row, 0, ((loop, row),)))
            ys_res.append(_whole(buf))
        owned = [_whole(b) for c in loop.carries for b in c.bufs] + ys_res
        self.open_loop(loop, owned)
        self.block(loop.body, body, const_refs + carry_in + xs_in, carry_out + ys_out)
        self.update_in_place(loop)
        self.close_loop(steps, loop, owned + [c.init for c in loop.carries] + const_refs
                        + [x for x in ins[nc + ncar:]])
        return carry_res + ys_res

    def while_loop(self, steps: list, e, ins: list[Ref], want: dict) -> list[Ref]:
        p = e.params
        cond, cconsts = _open(p["cond_jaxpr"])
        body, bconsts = _open(p["body_jaxpr"])
        ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
        cond_refs = [self.const(c) for c in cconsts] + ins[:ncc]
        body_refs = [self.const(c) for c in bconsts] + ins[ncc:ncc + nbc]
        loop = Loop(f"i{next(self.names)}", [], [])
        carry_in, carry_out, carry_res = self.carries(loop, body, len(body_refs),
                                                      ins[ncc + nbc:], e.outvars, want)
        loop.pred = self.new_scratch(np.bool_, 1)
        owned = [_whole(b) for c in loop.carries for b in c.bufs] + [loop.pred]
        self.open_loop(loop, owned)
        self.block(loop.cond, cond, cond_refs + carry_in, [loop.pred])
        self.block(loop.body, body, body_refs + carry_in, carry_out)
        self.update_in_place(loop)
        self.close_loop(steps, loop, owned + [c.init for c in loop.carries] + cond_refs
                        + body_refs)
        return carry_res

    def switch(self, steps: list, e, ins: list[Ref], want: dict) -> list[Ref]:
        results = []
        for v in e.outvars:
            results.append(self.take(want, v) or self.new_scratch(*_storage(v.aval)))
        st = Switch(ins[0], [])
        self.emit([], st, results + [ins[0]])   # positions: the results live from here
        for b in e.params["branches"]:
            jaxpr, consts = _open(b)
            st.branches.append([])
            self.block(st.branches[-1], jaxpr, [self.const(c) for c in consts] + ins[1:],
                       results)
        steps.append(st)
        self.use(ins)   # the operands live until every branch has read them
        self.pos += 1
        return results


def _host_routine(callback, backend: Backend):
    """``run(ins, outs)`` of a host callback step: the operands copied to the host (the
    callback may keep them; the program reuses its buffers), the results copied into the
    program's buffers."""
    def run(ins: list, outs: list) -> None:
        results = callback(*[np.array(backend.to_host(x)) for x in ins])
        for dst, value in zip(outs, results):
            backend.copy_into(dst, backend.put(np.asarray(value, dst.dtype)))
    return run


def build_program(closed_jaxpr, backend: Optional[Backend] = None,
                  name: str = "jaxpr") -> Program:
    """The :class:`~tinyjax.compiler.steps.Program` of ``closed_jaxpr`` (``backend``: where
    its library calls' routines come from)."""
    jaxpr = closed_jaxpr.jaxpr
    b = _Builder(backend)
    const_refs = [b.const(c) for c in closed_jaxpr.consts]
    inputs = [Buffer(*_storage(v.aval), INPUT, i, f"in{i}") for i, v in enumerate(jaxpr.invars)]
    outputs = [Buffer(*_storage(a.aval), OUTPUT, i, f"out{i}")
               for i, a in enumerate(jaxpr.outvars)]
    steps: list = []
    b.block(steps, Jaxpr([], list(jaxpr.constvars) + list(jaxpr.invars), jaxpr.outvars,
                         jaxpr.eqns),
            const_refs + [_whole(x) for x in inputs], [_whole(o) for o in outputs])
    arena = place(b.scratch, b.life)
    return Program(name, b.consts, b.const_values, inputs, outputs,
                   [tuple(a.aval.shape) for a in jaxpr.outvars], steps, arena, b.scratch,
                   [np.dtype(v.aval.dtype) for v in jaxpr.invars],
                   [np.dtype(a.aval.dtype) for a in jaxpr.outvars])


def compile_jaxpr(closed_jaxpr, backend: Backend) -> Executable:
    """Compile a ClosedJaxpr for ``backend`` (:func:`tinyjax.backends.get_backend` gives a
    device's).  Raises ``NotImplementedError("no lowering for primitive '<name>'")`` for a
    primitive without a lowering rule (``jit`` then evaluates eagerly)."""
    dbg = debug_level()
    program = build_program(closed_jaxpr, backend)
    kernels = program.kernels
    if dbg >= 3:
        for k in kernels:
            print(k.dump())
    prepare_kernels(kernels, backend, dbg)   # each kernel's loop IR, for its renderer
    exe = Executable(program, backend)
    if dbg >= 4:
        print(exe.source())
    if dbg >= 1:
        if program.has_control_flow:
            print(f"*** compiled {len(kernels)} kernel(s) for {backend.name} in "
                  f"{len(program.steps)} steps (loop bodies counted once)")
            for line in program.describe("    "):
                print(line)
        else:
            print(f"*** compiled {len(kernels)} kernel(s) for {backend.name}")
    return exe
