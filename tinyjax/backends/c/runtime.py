"""The C backend's runtime: the CPU device object -- kernels rendered and compiled with the
program that runs them (one C function per compiled program, :mod:`tinyjax.backends.c.program`,
called once per ``jit`` call: :mod:`tinyjax.backends.c.native`), each kernel also
launchable on its own (``DEBUG=2`` timings).  Without a working C compiler (see
:func:`~tinyjax.backends.c.compiler.compiler_problem`) the device runs its kernels on the
interpreter.

Threads: a compiled program may run in several threads at once: its kernels and its C
function keep no state between calls (every buffer comes with the call).
"""
from __future__ import annotations

import ctypes

from tinyjax.backends.base import HostBackend
from tinyjax.backends.c.compiler import (build_support_library_aside, compile_source,
                                         compiler_problem, join_source,
                                         translation_units)
from tinyjax.backends.c import native
from tinyjax.backends.c.library import library_call
from tinyjax.backends.c.native import LAUNCHER_SOURCE, NativeProgram, looped_kernels
from tinyjax.backends.c.program import (LAUNCH_CALLS, LAUNCH_SECONDS, PROGRAM_NAME,
                                       PROGRAM_PRELUDE, distinct_kernels, render_program,
                                       timed_program)
from tinyjax.backends.c.render import CLanguage
from tinyjax.backends.interp import InterpBackend
from tinyjax.backends.prelude import PRELUDE
from tinyjax.compiler.kernel import Kernel
from tinyjax.compiler.steps import Program
from tinyjax.compiler.walk import LoadedProgram, load_walked

__all__ = ["CBackend"]


class CBackend(HostBackend):
    """The ``cpu`` device's backend: C kernels on numpy buffers."""

    name = "cpu"
    language = CLanguage()
    interpreter = InterpBackend()  # runs the kernels where no C compiler works

    def __init__(self) -> None:
        # the products' driver (compiled once per machine, then read from the disk cache) is
        # built while the first program is traced and lowered: it does not depend on it
        build_support_library_aside()

    def render(self, kernels: list[Kernel]) -> str:
        return join_source(PRELUDE, [self.language.render_kernel(k) for k in kernels])

    def compile(self, kernels: list[Kernel]):
        """Returns (source, [callable(ptr_array) per kernel]); without a working C compiler,
        the interpreter's (source, [None per kernel]): those kernels run on numpy."""
        bodies = [self.language.render_kernel(k) for k in kernels]
        src = join_source(PRELUDE, bodies)
        if not kernels:
            return src, []
        if compiler_problem() is not None:
            return self.interpreter.compile(kernels)
        lib = compile_source(translation_units(PRELUDE, bodies))
        return src, [lib.function(k.name, [ctypes.c_void_p]) for k in kernels]

    def load_program(self, program: Program) -> LoadedProgram:
        """The program's kernels and its C function (:mod:`tinyjax.backends.c.program`)
        compiled into one library; ``run`` is one call into it, ``timed`` a call of the
        same program with each launch timed (built at its first use).  Without a working
        compiler the steps are walked and the kernels run on the interpreter."""
        kernels = program.kernels
        if compiler_problem() is not None:
            return load_walked(self, program)
        bodies = [self.language.render_kernel(k) for k in kernels]
        fn = distinct_kernels(kernels, bodies)
        own = [(k, b) for k, b in zip(kernels, bodies) if fn[id(k)] == k.name]
        looped = looped_kernels(program)
        hot = [b for k, b in own if id(k) in looped]
        cold = [b for k, b in own if id(k) not in looped]

        def build(program_src: str):
            # the program and its loops' kernels in one translation unit (the compiler may
            # inline a small body into its loop); the other kernels split as usual
            return compile_source(translation_units(PRELUDE, ["\n\n".join([program_src] + hot)]
                                                    + cold))
        program_src = PROGRAM_PRELUDE + render_program(program, fn) + LAUNCHER_SOURCE
        lib = build(program_src)
        launchers = {id(k): self.make_launcher(lib.function(fn[id(k)], [ctypes.c_void_p]), k)
                     for k in kernels}
        source = join_source(PRELUDE, [b for _, b in own] + [program_src])
        timed_runs: list = []

        def timed():
            """The run with every launch timed (its library built at the first ask)."""
            if not timed_runs:
                timed_c, sites = timed_program(program, fn)
                timed_lib = build(PROGRAM_PRELUDE + timed_c + LAUNCHER_SOURCE)
                timed_runs.append(_timed_run(program, timed_lib, sites))
            return timed_runs[0]
        return LoadedProgram(source, _native(program, lib), launchers, timed)

    def library_call(self, primitive, in_avals, out_avals, params):
        """A library step (LAPACK, FFT): see :mod:`tinyjax.backends.c.library`."""
        return library_call(primitive, in_avals, out_avals, params)

    def make_launcher(self, fn, kernel: Kernel):
        if fn is None:  # no compiler: the interpreter runs it
            return self.interpreter.make_launcher(fn, kernel)
        n = len(kernel.bufs)
        arr_t = ctypes.c_void_p * n

        def launch(arrays):
            ptrs = arr_t(*[a.ctypes.data for a in arrays])
            fn(ptrs)
        return launch


def _native(program: Program, lib) -> NativeProgram:
    """The program's C function in ``lib``, called as :class:`NativeProgram` calls it."""
    entry = lib.function(PROGRAM_NAME, [ctypes.c_void_p] * 3, ctypes.c_int)
    set_threads = lib.function(native.THREADS_NAME, [ctypes.c_int], ctypes.c_int)
    return NativeProgram(program, entry, native.launcher(lib), set_threads)


def _timed_run(program: Program, lib, sites: list):
    """``run(bufs, arena) -> [(kernel, seconds, calls)]`` per launch site of a library
    built from :func:`~tinyjax.backends.c.program.timed_program`."""
    call = _native(program, lib)
    n = max(len(sites), 1)
    seconds = (ctypes.c_double * n).from_address(lib.address(LAUNCH_SECONDS))
    calls = (ctypes.c_long * n).from_address(lib.address(LAUNCH_CALLS))

    def run(bufs: list, arena) -> list:
        ctypes.memset(seconds, 0, ctypes.sizeof(seconds))
        ctypes.memset(calls, 0, ctypes.sizeof(calls))
        call(bufs, arena)
        return [(st.kernel, seconds[i], calls[i]) for i, st in enumerate(sites)]
    return run
