"""The CPU device: kernel IR -> C (via :mod:`tinyjax.devices.cstyle`) -> shared library
compiled by the system C compiler (a long program as several translation units, compiled
side by side) -> launched through a small C launcher (one foreign call
per program, the GIL released for all but tiny programs; per-kernel ctypes calls where the
launcher cannot be built).

Compiled libraries are cached in memory and on disk (``$TINYJAX_CACHE_DIR`` or
``~/.cache/tinyjax``), keyed by a hash of source + compiler + flags; compiler flag probes are
cached on disk too, so a warm process compiles nothing.  OpenMP threads wait passively
(``OMP_WAIT_POLICY=passive`` unless set): see :func:`_tame_openmp`.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import lru_cache

from tinyjax.devices.cstyle import PRELUDE, CStyleLanguage
from tinyjax.lowering.kernel import Kernel

__all__ = ["CPUDevice", "CompilerNotFoundError", "find_compiler", "compile_source"]

# No -ffast-math: it breaks NaN/inf semantics (isnan, NaN-propagating max).  -fwrapv: signed
# integer overflow wraps as in numpy.  -fno-math-errno lets libm calls vectorise;
# -fno-trapping-math lets comparisons (NaN-propagating max, where) become vector blends.
# -mprefer-vector-width=512: on an AVX-512 machine, loops (and libmvec's tanhf, expf) run on
# 16 floats at a time rather than gcc's default 8 (elementwise_chain 2x faster on a Xeon);
# it changes nothing elsewhere.  The flags in PROBED_FLAGS are kept where the compiler takes them.
BASE_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno",
              "-fno-trapping-math", "-fwrapv", "-fPIC", "-shared", "-std=c11", "-D_GNU_SOURCE"]
PROBED_FLAGS = ("-march=native", "-mprefer-vector-width=512")


class CompilerNotFoundError(NotImplementedError):
    """No C compiler was found; jit falls back to eager evaluation (a NotImplementedError)."""


@lru_cache(maxsize=None)
def find_compiler() -> str:
    for cand in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    raise CompilerNotFoundError(
        "tinyjax: no C compiler found (tried $CC, cc, gcc, clang); install one or use "
        "TINYJAX_DEVICE=interp")


@lru_cache(maxsize=None)
def _supports(cc: str, flag: str) -> bool:
    """Whether ``cc`` accepts ``flag`` (probed once per compiler binary; the answer is kept
    on disk so a fresh process does not pay a compiler run per flag)."""
    try:
        st = os.stat(cc)
        ident = f"{cc}\0{st.st_size}\0{st.st_mtime_ns}\0{flag}"
    except OSError:
        return _probe(cc, flag)
    path = os.path.join(cache_dir(), "flag_" + hashlib.sha256(ident.encode()).hexdigest()[:24])
    try:
        with open(path) as f:
            return f.read().strip() == "1"
    except OSError:
        pass
    ok = _probe(cc, flag)
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("1" if ok else "0")
    os.replace(tmp, path)
    return ok


def _probe(cc: str, flag: str) -> bool:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("int f(int x){return x;}\n")
        r = subprocess.run([cc, flag, "-shared", "-fPIC", src, "-o", os.path.join(d, "t.so")],
                           capture_output=True)
        return r.returncode == 0


# glibc's vector math library: vector variants of libm functions (max 4 ulp error, special
# values handled as in libm) that let loops calling them vectorise without -ffast-math.
LIBMVEC_FUNCS = ("exp", "exp2", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh",
                 "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "erf", "erfc",
                 "cbrt")


@lru_cache(maxsize=None)
def libmvec_available() -> bool:
    """Whether glibc's libmvec has every variant (SSE..AVX-512, float and double) of
    :data:`LIBMVEC_FUNCS` (x86-64 Linux with glibc >= 2.35)."""
    if os.environ.get("TINYJAX_NO_LIBMVEC") or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        lib = ctypes.CDLL("libmvec.so.1")
    except OSError:
        return False
    for f in LIBMVEC_FUNCS:
        for isa, nf, nd in (("b", 4, 2), ("c", 8, 4), ("d", 8, 4), ("e", 16, 8)):
            for name in (f"_ZGV{isa}N{nf}v_{f}f", f"_ZGV{isa}N{nd}v_{f}"):
                if not hasattr(lib, name):
                    return False
    return True


def compiler_flags() -> list[str]:
    cc = find_compiler()
    flags = [f for f in BASE_FLAGS if f not in PROBED_FLAGS or _supports(cc, f)]
    if os.environ.get("TINYJAX_NO_OPENMP") is None and _supports(cc, "-fopenmp"):
        flags.append("-fopenmp")
    elif _supports(cc, "-fopenmp-simd"):
        flags.append("-fopenmp-simd")
    if libmvec_available():
        flags.append("-DTJ_LIBMVEC")
    return flags


def link_flags() -> list[str]:
    return (["-lmvec"] if libmvec_available() else []) + ["-lm"]


def cache_dir() -> str:
    d = os.environ.get("TINYJAX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "tinyjax")
    os.makedirs(d, exist_ok=True)
    return d


_libs: dict[str, ctypes.CDLL] = {}


def _tame_openmp() -> None:
    """libgomp's idle threads spin (~300k iterations) before sleeping.  Between the short
    kernels of a step that spinning competes with the thread launching them, and on a
    loaded machine a spinning or preempted thread stalls every barrier: measured on 2 cores,
    mlp_step took 6x longer by default when idle, 2x with a short spin when another process
    was busy; with passive waiting it is as fast as the best of both in either case.  Applies
    unless the user chose a policy; must run before libgomp is loaded (it reads the
    environment once)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "passive"


_tame_openmp()


def compile_source(src: "str | list[str]") -> ctypes.CDLL:
    """Compile C source to a shared library (cached in memory and on disk) and load it.
    A list is several translation units (each complete, with its own prelude): they are
    compiled side by side, one compiler process each, and linked into one library."""
    units = [src] if isinstance(src, str) else list(src)
    cc = find_compiler()
    flags = compiler_flags()
    key = hashlib.sha256("\0".join(units + [cc] + flags).encode()).hexdigest()[:32]
    lib = _libs.get(key)
    if lib is not None:
        return lib
    path = os.path.join(cache_dir(), f"k_{key}.so")
    if not os.path.exists(path):
        fd, tmp_out = tempfile.mkstemp(suffix=".so", dir=cache_dir())
        os.close(fd)
        try:
            _build(cc, flags, units, tmp_out)
            os.replace(tmp_out, path)  # atomic: concurrent processes see a whole file
        finally:
            if os.path.exists(tmp_out):
                os.remove(tmp_out)
    lib = ctypes.CDLL(path)
    _libs[key] = lib
    return lib


def _build(cc: str, flags: list[str], units: list[str], out: str) -> None:
    """Compile ``units`` into the shared library ``out``: one unit directly, several into
    objects by concurrent compiler processes, then linked."""
    files = []
    try:
        for unit in units:
            fd, name = tempfile.mkstemp(suffix=".c", dir=cache_dir())
            with os.fdopen(fd, "w") as f:
                f.write(unit)
            files.append(name)
        if len(units) == 1:
            steps = [[[cc] + flags + [files[0], "-o", out] + link_flags()]]
        else:
            objs = [name[:-2] + ".o" for name in files]
            compile_flags = [f for f in flags if f != "-shared"]
            steps = [[[cc] + compile_flags + ["-c", name, "-o", obj]
                      for name, obj in zip(files, objs)],
                     [[cc] + flags + objs + ["-o", out] + link_flags()]]
            files += objs
        for step in steps:
            procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                      text=True) for cmd in step]
            errors = [err for proc in procs for _, err in [proc.communicate()]
                      if proc.returncode != 0]
            if errors:
                raise RuntimeError("tinyjax: C compilation failed:\n" + "\n".join(errors)
                                   + "\n--- source ---\n" + "\n".join(units))
    finally:
        for name in files:
            if os.path.exists(name):
                os.remove(name)


# A program's kernels are cut into this many translation units at most (one compiler
# process each; never more than the machine's cores), once its kernels' source is this long.
MAX_UNITS = 8
SPLIT_MIN_CHARS = 20000


def translation_units(prelude: str, bodies: list[str]) -> list[str]:
    """``bodies`` (each kernel's C) in contiguous groups of about equal length, each group a
    complete unit after ``prelude``; one group for a short program or a one-core machine."""
    total = sum(len(b) for b in bodies)
    n = min(MAX_UNITS, os.cpu_count() or 1, len(bodies))
    if n < 2 or total < SPLIT_MIN_CHARS:
        return [join_source(prelude, bodies)]
    groups, acc = [[] for _ in range(n)], 0
    for body in bodies:
        groups[min(n - 1, acc * n // total)].append(body)
        acc += len(body)
    return [join_source(prelude, g) for g in groups if g]


def join_source(prelude: str, bodies: list[str]) -> str:
    """One C source: the prelude, then the kernels."""
    return prelude + "\n" + "\n\n".join(bodies) + "\n"


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
    if os.environ.get("TINYJAX_NO_RUNTIME"):
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


class CPUDevice:
    name = "cpu"
    host = True  # buffers are numpy arrays
    language = CStyleLanguage()

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

    def make_launcher(self, fn, kernel: Kernel):
        n = len(kernel.bufs)
        arr_t = ctypes.c_void_p * n

        def launch(arrays):
            ptrs = arr_t(*[a.ctypes.data for a in arrays])
            fn(ptrs)
        return launch
