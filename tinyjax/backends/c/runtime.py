"""The C backend's runtime: the CPU device object (render, compile and launch kernels on numpy
buffers) and the program launcher, a small C function that runs a whole program's kernels in
one foreign call (the GIL released for all but tiny programs; per-kernel ctypes calls where
the launcher cannot be built).  Without a working C compiler (see
:func:`~tinyjax.backends.c.compiler.compiler_problem`) the device runs its kernels on the
interpreter.

Threads: a compiled program may run in several threads at once.  The kernels and the
launcher keep no state between calls (every buffer comes with the call); the launcher holds
the GIL only while it reads the buffers' addresses.
"""
from __future__ import annotations

import ctypes
import os
from functools import lru_cache

from tinyjax.backends.base import HostBackend
from tinyjax.backends.c.compiler import (build_library, cached_library, compile_source,
                                         compiler_problem, join_source, translation_units)
from tinyjax.backends.c.render import CLanguage
from tinyjax.backends.c.toolchain import find_compiler, flags_key
from tinyjax.backends.cstyle import PRELUDE
from tinyjax.backends.interp import InterpBackend
from tinyjax.compiler.kernel import Kernel
from tinyjax.config import env_flag

__all__ = ["CBackend", "runtime"]


# The launcher of a whole program: one call per program (not per kernel) that reads the data
# pointers of the buffers (a Python list of numpy arrays, None for unused slots), releases
# the GIL and runs the kernels.  Needs Python's and numpy's headers; without them the
# launches go through ctypes one kernel at a time.
RUNTIME_SRC = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>
typedef void (*tj_kfn)(void **);
int tj_exec(PyObject *bufs, long nk, tj_kfn *fns, const long *offs, const long *ids,
            int release) {
  long nb = (long)PyList_GET_SIZE(bufs);
  void *all[nb > 0 ? nb : 1];
  void *ptrs[offs[nk] > 0 ? offs[nk] : 1];
  for (long b = 0; b < nb; b++) {
    PyObject *o = PyList_GET_ITEM(bufs, b);
    all[b] = o == Py_None ? NULL : PyArray_DATA((PyArrayObject *)o);
  }
  for (long j = 0; j < offs[nk]; j++) ptrs[j] = all[ids[j]];
  if (release) {
    Py_BEGIN_ALLOW_THREADS
    for (long k = 0; k < nk; k++) fns[k](ptrs + offs[k]);
    Py_END_ALLOW_THREADS
  } else {
    for (long k = 0; k < nk; k++) fns[k](ptrs + offs[k]);
  }
  return 0;
}
"""


@lru_cache(maxsize=None)
def runtime():
    """The program launcher (``tj_exec``), or None where it cannot be built."""
    if env_flag("TINYJAX_NO_RUNTIME") or compiler_problem() is not None:
        return None
    try:
        import sysconfig

        import numpy as np
        inc = [sysconfig.get_paths()["include"], np.get_include()]
        if not all(os.path.exists(os.path.join(d, h)) for d, h in
                   zip(inc, ("Python.h", "numpy/ndarraytypes.h"))):
            return None
        cc = find_compiler()
        flags = ["-O2", "-fPIC", "-shared"] + [f"-I{d}" for d in inc]
        key = "\0".join([RUNTIME_SRC, flags_key(cc, flags)])
        # PyDLL: called holding the GIL; it releases it
        lib = cached_library("rt", key, lambda: build_library(cc, flags, [RUNTIME_SRC], []),
                             python_api=True)
        return lib.function("tj_exec", [ctypes.py_object, ctypes.c_long, ctypes.c_void_p,
                                        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int],
                            ctypes.c_int)
    except (RuntimeError, OSError):  # the per-kernel ctypes path
        return None


class CBackend(HostBackend):
    """The ``cpu`` device's backend: C kernels on numpy buffers."""

    name = "cpu"
    language = CLanguage()
    interpreter = InterpBackend()  # runs the kernels where no C compiler works

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

    def make_program(self, fns, kernels: list[Kernel]):
        """``run(bufs)`` launching every kernel over ``bufs`` (a list of arrays indexed by
        program buffer id) in one foreign call, or None (then launch per kernel)."""
        rt = runtime()
        if rt is None or not kernels or any(f is None for f in fns):
            return None
        nk = len(kernels)
        fn_arr = (ctypes.c_void_p * nk)(*[f.address for f in fns])
        offs, ids = [0], []
        for k in kernels:
            ids.extend(k.buf_ids)
            offs.append(len(ids))
        off_arr = (ctypes.c_long * len(offs))(*offs)
        id_arr = (ctypes.c_long * max(len(ids), 1))(*ids)
        keep = (fn_arr, off_arr, id_arr, fns)
        a_fns, a_offs, a_ids = (ctypes.addressof(fn_arr), ctypes.addressof(off_arr),
                                ctypes.addressof(id_arr))

        # small programs keep the GIL: releasing and retaking it costs more than they run
        release = int(sum(k.nbytes for k in kernels) >= 1 << 16)

        def run(bufs, _keep=keep):
            rt(bufs, nk, a_fns, a_offs, a_ids, release)
        return run

    def make_launcher(self, fn, kernel: Kernel):
        if fn is None:  # no compiler: the interpreter runs it
            return self.interpreter.make_launcher(fn, kernel)
        n = len(kernel.bufs)
        arr_t = ctypes.c_void_p * n

        def launch(arrays):
            ptrs = arr_t(*[a.ctypes.data for a in arrays])
            fn(ptrs)
        return launch
