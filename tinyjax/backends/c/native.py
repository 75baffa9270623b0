"""Calling a compiled program (:mod:`tinyjax.backends.c.program`): one foreign call per
``jit`` call.

The call goes through a small launcher built against Python's and numpy's headers
(``tj_call``: reads the buffers' data pointers from the list of arrays, releases the GIL
for programs that run long enough to be worth it, calls the program); where the headers
are missing, through ctypes with the pointers gathered in Python.  Foreign routines
(:class:`~tinyjax.compiler.steps.Call`) are called by the program through the ``hooks``
table made here at load time: a routine's native function where it has one (a LAPACK
driver), else a ctypes callback (``CFUNCTYPE``) that runs the routine's Python ``run`` on
numpy views of the buffers -- ctypes takes the GIL for it, so it works whether or not the
program released it.  An exception raised there stops the program (its hook returns 1)
and is raised again by the call.

Threads: the launcher and the program keep no state between calls; everything a call
writes is in its own outputs and arena.
"""
from __future__ import annotations

import ctypes
import os
import threading
from functools import lru_cache

import numpy as np

from tinyjax.backends.c.compiler import build_library, cached_library, compiler_problem
from tinyjax.backends.c.program import call_steps
from tinyjax.backends.c.toolchain import find_compiler, flags_key
from tinyjax.compiler.steps import Call, Launch, Loop, Program, Switch, walk_steps
from tinyjax.config import env_flag

__all__ = ["NativeProgram", "runtime", "looped_kernels", "RELEASE_GIL_BYTES"]

# a program that moves fewer bytes than this keeps the GIL: releasing and retaking it costs
# more than such a program runs
RELEASE_GIL_BYTES = 1 << 16
# trips assumed of a while loop when deciding that
WHILE_TRIPS = 16


# The launcher of a compiled program: reads the data pointers of the buffers (a Python list
# of numpy arrays: the program's arguments, then the arena), releases the GIL where asked and
# calls the program.  Needs Python's and numpy's headers; without them the program is called
# through ctypes with the pointers gathered in Python.
RUNTIME_SRC = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>
typedef int (*tj_prog)(void **, char *, void **);
int tj_call(PyObject *bufs, tj_prog fn, void **hooks, int release) {
  long nb = (long)PyList_GET_SIZE(bufs);
  void *ptrs[nb > 0 ? nb : 1];
  for (long b = 0; b < nb; b++)
    ptrs[b] = PyArray_DATA((PyArrayObject *)PyList_GET_ITEM(bufs, b));
  int rc;
  if (release) {
    Py_BEGIN_ALLOW_THREADS
    rc = fn(ptrs, (char *)ptrs[nb - 1], hooks);
    Py_END_ALLOW_THREADS
  } else {
    rc = fn(ptrs, (char *)ptrs[nb - 1], hooks);
  }
  return rc;
}
"""


@lru_cache(maxsize=None)
def runtime():
    """The program launcher (``tj_call``), or None where it cannot be built."""
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
        return lib.function("tj_call", [ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p,
                                        ctypes.c_int], ctypes.c_int)
    except (RuntimeError, OSError):  # the ctypes path
        return None


def looped_kernels(program: Program) -> set[int]:
    """The ids of the kernels launched inside a loop or a branch."""
    out: set[int] = set()
    for st in program.steps:
        if isinstance(st, (Loop, Switch)):
            out.update(id(s.kernel) for s in walk_steps([st]) if isinstance(s, Launch))
    return out


def _work_bytes(steps: list, trips: int = 1) -> int:
    """Bytes the kernels move per call (loop bodies times their trip counts)."""
    total = 0
    for st in steps:
        if isinstance(st, Launch):
            total += st.kernel.nbytes * trips
        elif isinstance(st, Loop):
            n = trips * (st.length if st.length is not None else WHILE_TRIPS)
            total += _work_bytes(st.cond + st.body, n)
        elif isinstance(st, Switch):
            total += max((_work_bytes(b, trips) for b in st.branches), default=0)
    return total


_HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p))
_failures = threading.local()


def _host_hook(call: Call):
    """A ctypes callback running ``call.run`` on numpy views of the buffers it is given."""
    specs = [(r.dtype, r.size) for r in call.outs + call.ins]
    n_out = len(call.outs)

    def hook(ptrs) -> int:
        try:
            arrays = [np.ctypeslib.as_array(ctypes.cast(ptrs[j], ctypes.POINTER(ctypes.c_uint8)),
                                            (max(n * dt.itemsize, 1),))[:n * dt.itemsize].view(dt)
                      if n else np.empty(0, dt) for j, (dt, n) in enumerate(specs)]
            call.run(arrays[n_out:], arrays[:n_out])
            return 0
        except BaseException as e:  # noqa: BLE001 - raised again by the call
            _failures.error = e
            return 1
    return _HOOK(hook)


class NativeProgram:
    """``run(args, arena)``: one call of the compiled program ``entry``."""

    def __init__(self, program: Program, entry):
        calls = call_steps(program)
        self._hooks = [c.native if c.native is not None else _host_hook(c) for c in calls]
        table = (ctypes.c_void_p * max(len(calls), 1))(
            *[h if isinstance(h, int) else ctypes.cast(h, ctypes.c_void_p).value
              for h in self._hooks])
        self._table, self._entry = table, entry   # kept alive with the program
        hooks = ctypes.addressof(table)
        address = ctypes.cast(entry, ctypes.c_void_p).value
        release = int(_work_bytes(program.steps) >= RELEASE_GIL_BYTES or bool(calls))
        rt = runtime()
        if rt is not None:
            def call(bufs: list) -> int:
                return rt(bufs, address, hooks, release)
        else:
            def call(bufs: list) -> int:
                ptrs = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
                return entry(ptrs, ptrs[-1], hooks)
        self._call = call

    def __call__(self, args: list, arena) -> None:
        args.append(arena)
        if self._call(args):
            error = getattr(_failures, "error", None)
            _failures.error = None
            if error is not None:
                raise error
            raise RuntimeError("tinyjax: a foreign routine of the compiled program failed")
