"""Calling a compiled program (:mod:`tinyjax.backends.c.program`): one foreign call per
``jit`` call.

The call goes through a launcher compiled into the program's own library (``tj_call``,
:data:`LAUNCHER_SOURCE`): it reads the buffers' data pointers from the Python list of numpy
arrays, releases the GIL for programs that run long enough to be worth it, and calls the
program.  It needs no Python or numpy header -- it reads the two fields it needs (a list's
size and items, an array's data pointer) at their places in CPython's and numpy's object
layouts, checked once per process (:func:`launcher_usable`); where they differ (a
free-threaded Python) or ``TINYJAX_NO_RUNTIME`` is set, the program is called through ctypes
with the pointers gathered in Python.  Foreign routines
(:class:`~tinyjax.compiler.steps.Call`) are called by the program through the ``hooks``
table made here at load time: a routine's native function where it has one (a LAPACK
driver, with its parameters), else a ctypes callback (``CFUNCTYPE``) that runs the
routine's Python ``run`` on numpy arrays over the buffers -- ctypes takes the GIL for it, so it works whether or not the
program released it.  An exception raised there stops the program (its hook returns 1)
and is raised again by the call.

Threads: the launcher and the program keep no state between calls; everything a call
writes is in its own outputs and arena.
"""
from __future__ import annotations

import ctypes
import sysconfig
import threading
from functools import lru_cache

import numpy as np

from tinyjax.backends.c.program import OUT_OF_MEMORY, PROGRAM_NAME, call_steps
from tinyjax.backends.c.threads import thread_budget
from tinyjax.compiler.steps import Call, Launch, Loop, Program, Switch, walk_steps
from tinyjax.config import env_flag

__all__ = ["NativeProgram", "LAUNCHER_SOURCE", "LAUNCHER_NAME", "THREADS_NAME",
           "launcher_usable", "looped_kernels", "RELEASE_GIL_BYTES"]

# a program that moves fewer bytes than this keeps the GIL: releasing and retaking it costs
# more than such a program runs
RELEASE_GIL_BYTES = 1 << 16
# trips assumed of a while loop when deciding that
WHILE_TRIPS = 16

LAUNCHER_NAME = "tj_call"
THREADS_NAME = "tj_threads"   # sets the calling thread's team size (the ctypes path)
# The launcher, compiled after the program (CPython's PyVarObject / PyListObject and numpy's
# PyArrayObject as far as they are read; the GIL released through CPython's own functions).
LAUNCHER_SOURCE = f"""
typedef struct {{ long refcnt; void *type; long size; void **items; }} tj_pylist;
typedef struct {{ long refcnt; void *type; char *data; }} tj_pyarray;
void *PyEval_SaveThread(void);
void PyEval_RestoreThread(void *);
int {THREADS_NAME}(int threads) {{ tj_use_threads(threads); return 0; }}
int {LAUNCHER_NAME}(const tj_pylist *bufs, void **hooks, int release, int threads) {{
  tj_use_threads(threads);
  long nb = bufs->size;
  void *ptrs[nb > 0 ? nb : 1];
  for (long b = 0; b < nb; b++) ptrs[b] = ((const tj_pyarray *)bufs->items[b])->data;
  if (!release) return {PROGRAM_NAME}(ptrs, (char *)ptrs[nb - 1], hooks);
  void *state = PyEval_SaveThread();
  int rc = {PROGRAM_NAME}(ptrs, (char *)ptrs[nb - 1], hooks);
  PyEval_RestoreThread(state);
  return rc;
}}
"""


@lru_cache(maxsize=None)
def launcher_usable() -> bool:
    """Whether :data:`LAUNCHER_SOURCE` reads this process's objects right: a GIL build whose
    lists and numpy arrays keep their fields where the launcher looks (checked on live
    objects), and ``TINYJAX_NO_RUNTIME`` unset."""
    if env_flag("TINYJAX_NO_RUNTIME") or sysconfig.get_config_var("Py_GIL_DISABLED") or \
            ctypes.sizeof(ctypes.c_long) != ctypes.sizeof(ctypes.c_void_p):
        return False
    word = ctypes.sizeof(ctypes.c_void_p)
    a, b = np.arange(3.0), np.zeros(5, np.int32)
    items = [a, b, a]
    size = ctypes.c_ssize_t.from_address(id(items) + 2 * word).value
    table = ctypes.c_void_p.from_address(id(items) + 3 * word).value
    first = ctypes.c_void_p.from_address(table).value if table else None
    data = ctypes.c_void_p.from_address(id(b) + 2 * word).value
    return size == 3 and first == id(a) and data == b.ctypes.data


_LAUNCHER_TYPE = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_void_p, ctypes.c_int,
                                   ctypes.c_int)


def launcher(lib):
    """The launcher of the loaded program library ``lib``, called holding the GIL (it
    releases it itself), or None where :func:`launcher_usable` says no."""
    if not launcher_usable():
        return None
    fn = _LAUNCHER_TYPE(lib.function(LAUNCHER_NAME).address)
    fn.library = lib   # keeps the library loaded
    return fn


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


_HOOK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                         ctypes.c_void_p)
_failures = threading.local()


def _host_hook(call: Call):
    """A ctypes callback running ``call.run`` on numpy arrays over the buffers it is given
    (inputs first), shaped and typed as the call's operands."""
    avals = [(tuple(shape), np.dtype(dt)) for shape, dt in call.in_avals + call.out_avals]
    n_in = len(call.ins)

    def hook(ptrs, params, fns) -> int:
        try:
            arrays = []
            for j, (shape, dt) in enumerate(avals):
                n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
                raw = ctypes.cast(ptrs[j], ctypes.POINTER(ctypes.c_uint8))
                flat = np.ctypeslib.as_array(raw, (n,)) if n else np.empty(0, np.uint8)
                arrays.append(flat.view(dt).reshape(shape))
            call.run(arrays[:n_in], arrays[n_in:])
            return 0
        except BaseException as e:  # noqa: BLE001 - raised again by the call
            _failures.error = e
            return 1
    return _HOOK(hook)


class NativeProgram:
    """``run(args, arena)``: one call of the compiled program ``entry`` (through
    ``launch``, the library's launcher, where there is one; else ``set_threads`` sets the
    team size first), on as many threads as :mod:`tinyjax.backends.c.threads` says.
    ``releases_gil``: whether a call runs the program without the GIL (the launcher
    releases it for a program that moves at least :data:`RELEASE_GIL_BYTES` or calls
    foreign routines)."""

    def __init__(self, program: Program, entry, launch=None, set_threads=None):
        calls = call_steps(program)
        # (a host routine's ctypes callback stays alive with the program)
        self._callbacks = [_host_hook(c) for c in calls if c.native is None]
        callbacks = iter(self._callbacks)
        entries = []
        for c in calls:
            entries += [int(x or 0) for x in c.native] if c.native is not None else \
                [ctypes.c_void_p.from_buffer(next(callbacks)).value, 0, 0]
        table = (ctypes.c_void_p * max(len(entries), 1))(*entries)
        self._table, self._entry = table, entry   # kept alive with the program
        hooks = ctypes.addressof(table)
        release = int(_work_bytes(program.steps) >= RELEASE_GIL_BYTES or bool(calls))
        # (without the launcher the program is a ctypes.CDLL function: ctypes releases it)
        self.releases_gil = bool(release) or launch is None
        threads = thread_budget.threads
        if launch is not None:
            def call(bufs: list) -> int:
                return launch(bufs, hooks, release, threads())
        else:
            def call(bufs: list) -> int:
                if set_threads is not None:
                    set_threads(threads())
                ptrs = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
                return entry(ptrs, ptrs[-1], hooks)
        self._call = call

    def __call__(self, args: list, arena) -> None:
        args.append(arena)
        rc = self._call(args)
        if rc:
            if rc == OUT_OF_MEMORY:
                raise MemoryError("tinyjax: a matrix product or convolution of the compiled "
                                  "program could not allocate its packing buffers (out of "
                                  "memory); its outputs were not computed")
            error = getattr(_failures, "error", None)
            _failures.error = None
            if error is not None:
                raise error
            raise RuntimeError("tinyjax: a foreign routine of the compiled program failed")
