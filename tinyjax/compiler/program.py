"""``compile_jaxpr``: a jaxpr compiled for a backend -- one executable, or a program of steps
where it has control flow (loops stay loops).

A jaxpr without control flow compiles to one :class:`~tinyjax.compiler.executable.Executable`
(a list of kernel launches over planned buffers).  One with ``cond``/``while``/``scan``
compiles to a :class:`Program`: a list of *steps* over a slot environment (one slot per
jaxpr value that crosses a step boundary):

* ``call``  a run of ordinary equations, fused and scheduled as one sub-program (an
  ``Executable``);
* ``scan``  a loop: the body is itself compiled once (a sub-program, or a nested
  ``Program``) and run ``length`` times by the host, the carries handed from one iteration
  to the next, the ``xs`` read as slices (zero-copy views at an offset) and each
  iteration's ``ys`` written into the stacked output at its offset;
* ``while`` the same, until the compiled predicate (a scalar read back) is false;
* ``cond``  the branches compiled once each; only the taken one runs;
* ``library`` a call into a numerical library (LAPACK, an FFT; cuSOLVER and cuFFT on
  CUDA) for a primitive that is no fused elementwise work (registered with
  :func:`~tinyjax.compiler.lower.registry.register_library_call`): the
  backend provides the routine (``backend.library_call``), the step gives it its input
  buffers and the output buffers it allocates, so it sits between fused kernels like any
  other step.
* ``host_callback``  a call back into Python (``pure_callback``, ``io_callback``,
  ``jax.debug.print``): the operands are brought to the host, the equation's ``callback``
  parameter (host arrays in, host arrays out) runs, its results go back to the device.
  It is a step of its own so that a native program can make the same call through a
  function pointer.

``checkpoint``, ``custom_linear_solve`` (its ``solve`` jaxpr: derivatives were taken
before compiling; see :func:`~tinyjax.compiler.lower.registry.register_inlined_call`) and
composite primitives (:mod:`tinyjax.lax.composite`) are inlined: their jaxprs are lowered
in place.  Every kernel of every
sub-program (loop bodies counted once) is rendered into one source and compiled in one go,
so the compile time does not depend on trip counts.  Nothing here is device specific: a
device renders kernels; the steps only sequence sub-programs.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from tinyjax.backends.base import Backend
from tinyjax.compiler.executable import Executable
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.lower.registry import host_callbacks, inlined_calls, library_calls
from tinyjax.compiler.schedule import schedule
from tinyjax.compiler.codegen import prepare_kernels
from tinyjax.config import debug_level
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, Literal, Var, literal_or_none
from tinyjax.lax.composite import composite_definitions, composite_jaxpr
from tinyjax.lax.control_flow import cond_p, scan_p, while_p

__all__ = ["CONTROL_FLOW", "compile_jaxpr", "needs_program", "build_program", "Program",
           "LibraryCallStep"]

CONTROL_FLOW = frozenset({cond_p, while_p, scan_p})


def _is_step(prim) -> bool:
    """Equations that end a run of kernels and become steps of their own."""
    return prim in CONTROL_FLOW or prim in library_calls or prim in host_callbacks


def needs_program(jaxpr: Jaxpr) -> bool:
    """Whether ``jaxpr`` has equations the flat kernel list cannot express."""
    return any(_is_step(e.primitive) for e in jaxpr.eqns) or _inlines(jaxpr)


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
    closed = composite_jaxpr(eqn.primitive, tuple(a.aval for a in eqn.invars), **eqn.params)
    literals = [literal_or_none(c) for c in closed.consts]
    if any(lit is None for lit in literals):
        raise NotImplementedError(f"no lowering for primitive '{eqn.primitive.name}': its "
                                  "definition captures array constants")
    jaxpr = closed.jaxpr
    consts = dict(zip(jaxpr.constvars, literals))
    return Jaxpr([], jaxpr.invars, [consts.get(o, o) for o in jaxpr.outvars],
                 [e.replace(invars=[consts.get(a, a) if isinstance(a, Var) else a
                                    for a in e.invars]) for e in jaxpr.eqns]), operands


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


# ---- steps ---------------------------------------------------------------------------------
# An operand reference is a slot number (int) or a constant numpy array (a literal).

def _read(env: list, refs: Sequence) -> list:
    return [env[r] if type(r) is int else r for r in refs]


class CallStep:
    kind = "call"

    def __init__(self, unit, in_refs, out_slots):
        self.unit, self.in_refs, self.out_slots = unit, list(in_refs), list(out_slots)

    def run(self, env: list) -> int:
        outs = self.unit(*_read(env, self.in_refs))
        for s, v in zip(self.out_slots, outs):
            env[s] = v
        return 1

    def describe(self) -> str:
        return f"call: {self.unit.num_kernels} kernel(s)"


class ScanStep:
    kind = "scan"

    def __init__(self, body, in_refs, out_slots, *, length, reverse, num_consts, num_carry,
                 y_avals, alloc=np.empty):
        self.body, self.in_refs, self.out_slots = body, list(in_refs), list(out_slots)
        self.alloc = alloc  # the backend's buffer allocator (np.empty on the host)
        self.length, self.reverse = int(length), bool(reverse)
        self.nc, self.ncar = num_consts, num_carry
        self.y_specs = [((int(length),) + tuple(a.shape), np.dtype(a.dtype)) for a in y_avals]

    def run(self, env: list) -> int:
        vals = _read(env, self.in_refs)
        nc, ncar = self.nc, self.ncar
        consts, carry = vals[:nc], vals[nc:nc + ncar]
        xs = vals[nc + ncar:]
        ys = [self.alloc(shape, dt) for shape, dt in self.y_specs]
        body = self.body
        order = range(self.length - 1, -1, -1) if self.reverse else range(self.length)
        for i in order:
            outs = body(*consts, *carry, *[x[i] for x in xs])
            carry = outs[:ncar]
            for y, o in zip(ys, outs[ncar:]):
                y[i] = o
        for s, v in zip(self.out_slots, list(carry) + ys):
            env[s] = v
        return self.length

    def describe(self) -> str:
        return (f"scan(length={self.length}{', reverse' if self.reverse else ''}): body of "
                f"{self.body.num_kernels} kernel(s), {self.length} iterations per call")


class WhileStep:
    kind = "while"

    def __init__(self, cond, body, in_refs, out_slots, *, cond_nconsts, body_nconsts):
        self.cond, self.body = cond, body
        self.in_refs, self.out_slots = list(in_refs), list(out_slots)
        self.ncc, self.nbc = cond_nconsts, body_nconsts
        self.last_iterations = 0

    def run(self, env: list) -> int:
        vals = _read(env, self.in_refs)
        cc, bc = vals[:self.ncc], vals[self.ncc:self.ncc + self.nbc]
        carry = vals[self.ncc + self.nbc:]
        cond, body, n = self.cond, self.body, 0
        while bool(cond(*cc, *carry)[0]):
            carry = body(*bc, *carry)
            n += 1
        for s, v in zip(self.out_slots, carry):
            env[s] = v
        self.last_iterations = n
        return n

    def describe(self) -> str:
        return (f"while: predicate of {self.cond.num_kernels} kernel(s), body of "
                f"{self.body.num_kernels} kernel(s)")


class CondStep:
    kind = "cond"

    def __init__(self, branches, in_refs, out_slots):
        self.branches, self.in_refs, self.out_slots = list(branches), list(in_refs), list(out_slots)

    def run(self, env: list) -> int:
        vals = _read(env, self.in_refs)
        i = min(max(int(vals[0]), 0), len(self.branches) - 1)
        outs = self.branches[i](*vals[1:])
        for s, v in zip(self.out_slots, outs):
            env[s] = v
        return i

    def describe(self) -> str:
        return "cond: branches of " + ", ".join(f"{b.num_kernels}" for b in self.branches) \
            + " kernel(s)"


class LibraryCallStep:
    """A call into a numerical library: the routine ``impl`` (given by the backend, e.g.
    LAPACK through function pointers on the CPU) reads the input buffers and writes the
    output buffers this step allocates (``alloc``, the backend's allocator)."""
    kind = "library"

    def __init__(self, name: str, impl, in_refs, out_slots, out_avals, alloc=np.empty):
        self.name, self.impl = name, impl
        self.in_refs, self.out_slots = list(in_refs), list(out_slots)
        self.out_specs = [(tuple(a.shape), np.dtype(a.dtype)) for a in out_avals]
        self.alloc = alloc

    def run(self, env: list) -> int:
        outs = [self.alloc(shape, dt) for shape, dt in self.out_specs]
        self.impl(_read(env, self.in_refs), outs)
        for s, v in zip(self.out_slots, outs):
            env[s] = v
        return 1

    def describe(self) -> str:
        outs = ", ".join(f"{dt.name}{list(shape)}" for shape, dt in self.out_specs)
        return f"library: {self.name} -> {outs}"


class HostCallbackStep:
    kind = "host_callback"

    def __init__(self, callback, in_refs, out_slots, *, to_host, to_device):
        self.callback, self.in_refs, self.out_slots = callback, list(in_refs), list(out_slots)
        self.to_host, self.to_device = to_host, to_device

    def run(self, env: list) -> int:
        outs = self.callback(*[self.to_host(v) for v in _read(env, self.in_refs)])
        for s, v in zip(self.out_slots, outs):
            env[s] = self.to_device(v)
        return 1

    def describe(self) -> str:
        return f"host callback: {self.callback!r}"


# ---- the program ---------------------------------------------------------------------------

class Program:
    """A compiled program with control flow: ``prog(*flat_args) -> list of arrays``."""

    def __init__(self, n_inputs: int, n_slots: int, steps: list, out_refs: list,
                 units: list, consts: Sequence[np.ndarray] = (), name: str = "jaxpr"):
        self.n_inputs, self.n_slots = n_inputs, n_slots
        self.steps, self.out_refs = steps, out_refs
        self.units = units  # every kernel sub-program reachable from here, each once
        self._consts = list(consts)
        self.name = name
        self.source_text = ""
        self.asbuffer = np.asarray  # the backend's conversion of inputs to its buffers
        self.synchronize = None     # an asynchronous backend's wait (DEBUG=2 step timings)

    @property
    def num_kernels(self) -> int:
        return sum(u.num_kernels for u in self.units)

    def kernels(self) -> list[str]:
        return [d for u in self.units for d in u.kernels()]

    def source(self) -> str:
        return self.source_text

    def describe(self, indent: str = "") -> list[str]:
        lines = []
        for st in self.steps:
            lines.append(indent + st.describe())
            for sub in ([st.body] if st.kind == "scan" else [st.cond, st.body]
                        if st.kind == "while" else st.branches if st.kind == "cond" else []):
                if isinstance(sub, Program):
                    lines.extend(sub.describe(indent + "  "))
        return lines

    def __call__(self, *flat_args) -> list[np.ndarray]:
        args = self._consts + [self.asbuffer(a) for a in flat_args]
        if len(args) != self.n_inputs:
            raise TypeError(f"{self.name}: expected {self.n_inputs - len(self._consts)} "
                            f"arguments, got {len(flat_args)}")
        env: list = args + [None] * (self.n_slots - len(args))
        if debug_level() >= 2 and self.name != "body":
            return self._run_timed(env)
        for st in self.steps:
            st.run(env)
        return _read(env, self.out_refs)

    def _run_timed(self, env: list) -> list:
        print(f"*** {self.name}: {len(self.steps)} steps, {self.num_kernels} kernels")
        for st in self.steps:
            t0 = time.perf_counter()
            r = st.run(env)
            if self.synchronize is not None:
                self.synchronize()
            dt = time.perf_counter() - t0
            extra = f", {r} iterations" if st.kind in ("scan", "while") else \
                f", branch {r} taken" if st.kind == "cond" else ""
            print(f"  {st.describe()}{extra}: {dt * 1e6:.1f} us")
        return _read(env, self.out_refs)


class _Unit:
    """A run of equations without control flow: scheduled now, compiled with the others."""

    def __init__(self, sched, name: str, out_avals=()):
        self.schedule, self.name, self.out_avals = sched, name, list(out_avals)
        self.exe = None

    @property
    def num_kernels(self) -> int:
        return len(self.schedule.kernels)

    def kernels(self) -> list[str]:
        return [k.describe() for k in self.schedule.kernels]

    def __call__(self, *args):
        return self.exe(*args)


class _ProgramBuilder:
    def __init__(self, backend):
        self.units: list[_Unit] = []
        self.backend = backend
        # constants (literals, closed-over arrays) as buffers of the backend, made once
        self.const = np.asarray if backend.host else backend.asbuffer

    def unit(self, jaxpr: Jaxpr) -> _Unit:
        leaves, outs = lower_jaxpr(jaxpr)
        u = _Unit(schedule(leaves, outs, name_prefix=f"u{len(self.units)}k"),
                  f"unit{len(self.units)}", jaxpr.out_avals)
        self.units.append(u)
        return u

    def callable(self, j, name: str = "body"):
        """A sub-program for the open or closed jaxpr ``j`` and the constants it needs
        before its operands."""
        jaxpr, consts = _open(j)
        jaxpr = inline_calls(jaxpr)
        first = len(self.units)
        body = self.program(jaxpr, name) if needs_program(jaxpr) else self.unit(jaxpr)
        if isinstance(body, Program):
            body.units = self.units[first:]
        return body, [self.const(getattr(c, "_value", c)) for c in consts]

    def program(self, jaxpr: Jaxpr, name: str) -> Program:
        jaxpr = inline_calls(jaxpr)
        inputs = list(jaxpr.constvars) + list(jaxpr.invars)
        slots: dict = {v: i for i, v in enumerate(inputs)}
        eqns = jaxpr.eqns
        last: dict = {}
        for i, e in enumerate(eqns):
            for a in e.invars:
                if isinstance(a, Var):
                    last[a] = i
        for a in jaxpr.outvars:
            if isinstance(a, Var):
                last[a] = len(eqns)
        steps: list = []
        seg: list = []

        def ref(a):
            if isinstance(a, Literal):
                return self.const(np.asarray(a.val, a.aval.dtype))
            return slots[a]

        def alloc(vs) -> list[int]:
            out = []
            for v in vs:
                slots[v] = len(slots)
                out.append(slots[v])
            return out

        def flush(end: int) -> None:
            if not seg:
                return
            defined = {v for e in seg for v in e.outvars}
            ins: dict = {}
            for e in seg:
                for a in e.invars:
                    if isinstance(a, Var) and a not in defined:
                        ins[a] = None
            outs = [v for e in seg for v in e.outvars if last.get(v, -1) >= end]
            if outs:
                u = self.unit(Jaxpr([], list(ins), outs, list(seg)))
                steps.append(CallStep(u, [ref(a) for a in ins], alloc(outs)))
            seg.clear()

        for i, e in enumerate(eqns):
            if not _is_step(e.primitive):
                seg.append(e)
                continue
            flush(i)
            in_refs = [ref(a) for a in e.invars]
            step = self.library_step(e, in_refs, alloc(e.outvars)) \
                if e.primitive in library_calls else self.control_step(e, in_refs,
                                                                        alloc(e.outvars))
            steps.append(step)
        flush(len(eqns))
        prog = Program(len(inputs), len(slots), steps, [ref(a) for a in jaxpr.outvars],
                       [], name=name)
        if not self.backend.host:
            prog.asbuffer, prog.synchronize = self.backend.asbuffer, self.backend.synchronize
        return prog

    def library_step(self, e, in_refs: list, out_slots: list) -> LibraryCallStep:
        out_avals = [v.aval for v in e.outvars]
        impl = self.backend.library_call(e.primitive, [a.aval for a in e.invars], out_avals,
                                         e.params)
        return LibraryCallStep(e.primitive.name, impl, in_refs, out_slots, out_avals,
                               np.empty if self.backend.host else self.backend.alloc)

    def control_step(self, e, in_refs: list, out_slots: list):
        p, prim = e.params, e.primitive
        if prim is scan_p:
            body, consts = self.callable(p["jaxpr"])
            nc = p["num_consts"]
            return ScanStep(body, consts + in_refs, out_slots, length=p["length"],
                            reverse=p["reverse"], num_consts=nc + len(consts),
                            num_carry=p["num_carry"],
                            y_avals=_open(p["jaxpr"])[0].out_avals[p["num_carry"]:],
                            alloc=np.empty if self.backend.host else self.backend.alloc)
        if prim is while_p:
            cond, cc = self.callable(p["cond_jaxpr"])
            body, bc = self.callable(p["body_jaxpr"])
            ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
            refs = (cc + in_refs[:ncc] + bc + in_refs[ncc:ncc + nbc] + in_refs[ncc + nbc:])
            return WhileStep(cond, body, refs, out_slots, cond_nconsts=ncc + len(cc),
                             body_nconsts=nbc + len(bc))
        if prim is cond_p:
            branches = []
            for b in p["branches"]:
                fn, consts = self.callable(b)
                if consts:
                    fn = _WithConsts(fn, consts)
                branches.append(fn)
            return CondStep(branches, in_refs, out_slots)
        if prim in host_callbacks:
            host = self.backend.host
            return HostCallbackStep(p["callback"], in_refs, out_slots,
                                    to_host=np.asarray if host else _buffer_to_host,
                                    to_device=np.asarray if host else self.backend.asbuffer)
        raise NotImplementedError(f"no lowering for primitive '{prim.name}'")


def _buffer_to_host(buf) -> np.ndarray:
    """A device buffer's contents (or a host constant) as a numpy array."""
    return buf.numpy() if hasattr(buf, "numpy") else np.asarray(buf)


class _WithConsts:
    """A sub-program called with constants of its own before the operands."""

    def __init__(self, fn, consts):
        self.fn, self.consts = fn, list(consts)
        self.num_kernels = fn.num_kernels

    def __call__(self, *args):
        return self.fn(*self.consts, *args)


def build_program(closed_jaxpr, backend, name: str = "jaxpr"):
    """Compile ``closed_jaxpr`` (which has control flow) into a :class:`Program`.

    Returns (program, every kernel in launch-list order)."""
    jaxpr = closed_jaxpr.jaxpr
    b = _ProgramBuilder(backend)
    consts = [b.const(getattr(c, "_value", c)) for c in closed_jaxpr.consts]
    prog = b.program(Jaxpr([], list(jaxpr.constvars) + list(jaxpr.invars), jaxpr.outvars,
                           jaxpr.eqns), name)
    prog._consts = consts
    prog.units = list(b.units)
    kernels = [k for u in b.units for k in u.schedule.kernels]
    prepare_kernels(kernels, backend, debug_level())
    source, fns = backend.compile(kernels)
    i = 0
    for u in b.units:
        n = len(u.schedule.kernels)
        u.exe = Executable(u.schedule, [], backend, source, fns[i:i + n], name=u.name,
                           timed=False, out_avals=u.out_avals)
        i += n
    prog.source_text = source
    return prog, kernels


def compile_jaxpr(closed_jaxpr, backend: Backend):
    """Compile a ClosedJaxpr for ``backend`` (:func:`tinyjax.backends.get_backend` gives a
    device's).

    A jaxpr with control flow (``cond``, ``while``, ``scan``) becomes a
    :class:`~tinyjax.compiler.program.Program` whose loop and branch steps run compiled
    sub-programs; ``checkpoint`` and composite primitives are inlined.  Raises
    ``NotImplementedError("no lowering for primitive '<name>'")`` for a primitive without a
    lowering rule (``jit`` then evaluates eagerly)."""
    jaxpr = inline_calls(closed_jaxpr.jaxpr)
    dbg = debug_level()
    if needs_program(jaxpr):
        prog, kernels = build_program(ClosedJaxpr(jaxpr, closed_jaxpr.consts), backend)
        if dbg >= 3:
            for k in kernels:
                print(k.dump())
        if dbg >= 4:
            print(prog.source())
        if dbg >= 1:
            print(f"*** compiled {len(kernels)} kernel(s) for {backend.name} in "
                  f"{len(prog.steps)} steps (loop bodies counted once)")
            for line in prog.describe("    "):
                print(line)
        return prog
    leaves, outs = lower_jaxpr(jaxpr)
    sched = schedule(leaves, outs)
    consts = [np.asarray(getattr(c, "_value", c)) for c in closed_jaxpr.consts]
    if dbg >= 3:
        for k in sched.kernels:
            print(k.dump())
    prepare_kernels(sched.kernels, backend, dbg)
    source, fns = backend.compile(sched.kernels)
    if dbg >= 4:
        print(source)
    if dbg >= 1:
        print(f"*** compiled {len(sched.kernels)} kernel(s) for {backend.name}")
    return Executable(sched, consts, backend, source, fns, out_avals=jaxpr.out_avals)
