"""The C backend's compiler: C source -> shared library, built by the system C compiler (a
long program as several translation units, compiled side by side).

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

from tinyjax.config import cache_dir, env, env_flag, set_env_default


__all__ = ["CompilerNotFoundError", "find_compiler", "compile_source", "cache_dir"]

# No -ffast-math: it breaks NaN/inf semantics (isnan, NaN-propagating max).  -fwrapv: signed
# integer overflow wraps as in numpy.  -fno-math-errno lets libm calls vectorise;
# -fno-trapping-math lets comparisons (NaN-propagating max, where) become vector blends.
# -mprefer-vector-width=512: on an AVX-512 machine, loops (and libmvec's tanhf, expf) run on
# 16 floats at a time rather than gcc's default 8 (elementwise_chain 2x faster on a Xeon);
# it changes nothing elsewhere.  The flags in PROBED_FLAGS are kept where the compiler takes them.
# -fno-unswitch-loops: GCC 12.2 at -O3 -march=native with -fwrapv -fno-trapping-math
# miscompiles loop unswitching + if-conversion + vectorisation of a loop whose two masked
# loads are selected by the innermost index (a padded view of interleaved complex parts
# read back wrong values); without unswitching the loops still vectorise (if-converted).
BASE_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno",
              "-fno-trapping-math", "-fwrapv", "-fno-unswitch-loops", "-fPIC", "-shared",
              "-std=c11", "-D_GNU_SOURCE"]
PROBED_FLAGS = ("-march=native", "-mprefer-vector-width=512")


class CompilerNotFoundError(NotImplementedError):
    """No C compiler was found; jit falls back to eager evaluation (a NotImplementedError)."""


@lru_cache(maxsize=None)
def find_compiler() -> str:
    for cand in (env("CC"), "cc", "gcc", "clang"):
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
    if env_flag("TINYJAX_NO_LIBMVEC") or platform.machine() not in ("x86_64", "AMD64"):
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
    if not env_flag("TINYJAX_NO_OPENMP") and _supports(cc, "-fopenmp"):
        flags.append("-fopenmp")
    elif _supports(cc, "-fopenmp-simd"):
        flags.append("-fopenmp-simd")
    if libmvec_available():
        flags.append("-DTJ_LIBMVEC")
    return flags


def link_flags() -> list[str]:
    return (["-lmvec"] if libmvec_available() else []) + ["-lm"]


_libs: dict[str, ctypes.CDLL] = {}


def _tame_openmp() -> None:
    """libgomp's idle threads spin (~300k iterations) before sleeping.  Between the short
    kernels of a step that spinning competes with the thread launching them, and on a
    loaded machine a spinning or preempted thread stalls every barrier: measured on 2 cores,
    mlp_step took 6x longer by default when idle, 2x with a short spin when another process
    was busy; with passive waiting it is as fast as the best of both in either case.  Applies
    unless the user chose a policy; must run before libgomp is loaded (it reads the
    environment once)."""
    if env("GOMP_SPINCOUNT") is None:
        set_env_default("OMP_WAIT_POLICY", "passive")


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
