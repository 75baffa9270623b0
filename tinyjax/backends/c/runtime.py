"""The C backend's runtime: the CPU device object (render, compile and launch kernels on numpy
buffers) and the program launcher, a small C function that runs a whole program's kernels in
one foreign call (the GIL released for all but tiny programs; per-kernel ctypes calls where
the launcher cannot be built).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
import tempfile
from functools import lru_cache

from tinyjax.backends.base import HostBackend
from tinyjax.backends.c.compiler import (cache_dir, compile_source, find_compiler, join_source,
                                         translation_units)
from tinyjax.backends.c.library import library_call
from tinyjax.backends.c.render import CLanguage
from tinyjax.backends.prelude import PRELUDE
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
    if env_flag("TINYJAX_NO_RUNTIME"):
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
        key = hashlib.sha256("\0".join([RUNTIME_SRC, cc] + flags).encode()).hexdigest()[:32]
        path = os.path.join(cache_dir(), f"rt_{key}.so")
        if not os.path.exists(path):
            fd, tmp_src = tempfile.mkstemp(suffix=".c", dir=cache_dir())
            with os.fdopen(fd, "w") as f:
                f.write(RUNTIME_SRC)
            tmp_out = tmp_src[:-2] + ".so"
            try:
                r = subprocess.run([cc] + flags + [tmp_src, "-o", tmp_out], capture_output=True)
                if r.returncode != 0:
                    return None
                os.replace(tmp_out, path)
            finally:
                for p in (tmp_src, tmp_out):
                    if os.path.exists(p):
                        os.remove(p)
        fn = ctypes.PyDLL(path).tj_exec  # PyDLL: called holding the GIL; it releases it
        fn.argtypes = [ctypes.py_object, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    except Exception:  # noqa: BLE001 - any failure: the per-kernel ctypes path
        return None


class CBackend(HostBackend):
    """The ``cpu`` device's backend: C kernels on numpy buffers."""

    name = "cpu"
    language = CLanguage()

    def render(self, kernels: list[Kernel]) -> str:
        return join_source(PRELUDE, [self.language.render_kernel(k) for k in kernels])

    def compile(self, kernels: list[Kernel]):
        """Returns (source, [callable(ptr_array) per kernel])."""
        bodies = [self.language.render_kernel(k) for k in kernels]
        src = join_source(PRELUDE, bodies)
        if not kernels:
            return src, []
        lib = compile_source(translation_units(PRELUDE, bodies))
        fns = []
        for k in kernels:
            fn = getattr(lib, k.name)
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = None
            fns.append(fn)
        return src, fns

    def make_program(self, fns, kernels: list[Kernel]):
        """``run(bufs)`` launching every kernel over ``bufs`` (a list of arrays indexed by
        program buffer id) in one foreign call, or None (then launch per kernel)."""
        rt = runtime()
        if rt is None or not kernels:
            return None
        nk = len(kernels)
        fn_arr = (ctypes.c_void_p * nk)(*[ctypes.cast(f, ctypes.c_void_p).value for f in fns])
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

    def library_call(self, primitive, in_avals, out_avals, params):
        """A library step (LAPACK, FFT): see :mod:`tinyjax.backends.c.library`."""
        return library_call(primitive, in_avals, out_avals, params)

    def make_launcher(self, fn, kernel: Kernel):
        n = len(kernel.bufs)
        arr_t = ctypes.c_void_p * n

        def launch(arrays):
            ptrs = arr_t(*[a.ctypes.data for a in arrays])
            fn(ptrs)
        return launch
