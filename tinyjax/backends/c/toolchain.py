"""The system C compiler: which one, with which flags, and whether it works.

:func:`find_compiler` looks for ``$CC``, ``cc``, ``gcc`` and ``clang`` on ``PATH``.  Flags
the compiler may refuse (``PROBED_FLAGS``, OpenMP) are probed once per compiler binary and
the answers kept in the disk cache (:mod:`tinyjax.backends.diskcache`), so a warm process
runs no compiler.  A probe counts as a yes only when the compiler exits with 0 *and* writes a
shared library: a "compiler" that exits 0 and writes nothing (``CC=/bin/true``) supports
nothing.  OpenMP's idle threads spin briefly before they sleep (``GOMP_SPINCOUNT=30000``
unless a policy is set): see :func:`_tame_openmp`.
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
from typing import Optional

from tinyjax.backends import diskcache
from tinyjax.config import env, env_flag, env_str, set_env_default

__all__ = ["CompilerNotFoundError", "find_compiler", "compiler_flags", "link_flags",
           "compiler_identity", "library_problem", "INSTALL_HINT"]

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
# -falign-loops=64: where a hot loop starts within a cache line otherwise depends on the code
# before it in the library -- elementwise_chain's loop (libmvec calls, spills) ran at half
# speed after an unrelated function grew by 32 bytes (28 against 14 ms); aligned, both 14.
BASE_FLAGS = ["-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno",
              "-fno-trapping-math", "-fwrapv", "-fno-unswitch-loops", "-fPIC", "-shared",
              "-std=c11", "-D_GNU_SOURCE", "-falign-loops=64"]
PROBED_FLAGS = ("-march=native", "-mprefer-vector-width=512")

INSTALL_HINT = ("install a C compiler (Debian/Ubuntu: apt install gcc; Fedora: dnf install "
                "gcc; macOS: xcode-select --install; conda: conda install -c conda-forge "
                "c-compiler) or point $CC at one")

# the first bytes of a shared library: ELF (Linux, BSD), Mach-O (macOS, both byte orders
# and 32/64 bits, and universal binaries)
_LIBRARY_MAGICS = (b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xcf",
                   b"\xfe\xed\xfa\xce", b"\xca\xfe\xba\xbe")


class CompilerNotFoundError(NotImplementedError):
    """No working C compiler: the CPU device then runs kernels on the interpreter."""


def find_compiler() -> str:
    """The path of the C compiler (``$CC``, else ``cc``, ``gcc``, ``clang`` on ``PATH``)."""
    cc = env("CC")
    for cand in (cc, "cc", "gcc", "clang"):
        if cand and shutil.which(cand):
            return shutil.which(cand)
    raise CompilerNotFoundError(
        f"tinyjax: no C compiler found (looked for $CC{'=' + repr(cc) if cc else ''}, cc, "
        f"gcc and clang on PATH); {INSTALL_HINT}")


def compiler_identity(cc: str) -> str:
    """What a compiler's cached answers depend on: its path, size and modification time."""
    try:
        st = os.stat(cc)
        return f"{cc}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError:
        return cc


def library_problem(image: bytes) -> Optional[str]:
    """Why ``image`` is not a shared library a compiler produced (None: it may be one)."""
    if not image:
        return "the compiler wrote an empty file"
    if not image.startswith(_LIBRARY_MAGICS):
        return "the compiler's output is not a shared library"
    return None


@lru_cache(maxsize=None)
def _supports(cc: str, flag: str) -> bool:
    """Whether ``cc`` accepts ``flag`` (probed once per compiler binary; the answer is kept
    in the disk cache so a fresh process does not pay a compiler run per flag)."""
    key = f"flag\0{compiler_identity(cc)}\0{flag}"
    cached = diskcache.read("flag", key)
    if cached in (b"0", b"1"):
        return cached == b"1"
    ok = _probe(cc, [flag])
    try:
        diskcache.write("flag", key, b"1" if ok else b"0")
    except OSError:
        pass  # the answer is only a cache
    return ok


def _probe_together(cc: str, flags: list[str]) -> None:
    """One compiler run for every flag not answered yet: where ``cc`` takes them all at once
    (the usual case), each is recorded as supported; otherwise they are probed one by one
    when asked (a cold cache costs one compiler run instead of one per flag)."""
    keys = {f: f"flag\0{compiler_identity(cc)}\0{f}" for f in flags}
    if all(diskcache.read("flag", k) in (b"0", b"1") for k in keys.values()) or \
            not _probe(cc, flags):
        return
    for k in keys.values():
        try:
            diskcache.write("flag", k, b"1")
        except OSError:
            pass  # the answer is only a cache


def _probe(cc: str, flags: list[str]) -> bool:
    """Whether ``cc`` with ``flags`` turns a one-line function into a shared library."""
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "t.c"), os.path.join(d, "t.so")
        with open(src, "w") as f:
            f.write("int f(int x){return x;}\n")
        try:
            r = subprocess.run([cc, *flags, "-shared", "-fPIC", src, "-o", out],
                               capture_output=True)
        except OSError:
            return False
        if r.returncode != 0 or not os.path.exists(out):
            return False
        with open(out, "rb") as f:
            return library_problem(f.read(8)) is None


# glibc's vector math library: vector variants of libm functions (max 4 ulp error, special
# values handled as in libm) that let loops calling them vectorise without -ffast-math.
LIBMVEC_FUNCS = ("exp", "exp2", "expm1", "log", "log1p", "sin", "cos", "tan", "tanh", "sinh",
                 "cosh", "asin", "acos", "atan", "asinh", "acosh", "atanh", "erf", "erfc",
                 "cbrt")
LIBMVEC_FUNCS2 = ("pow", "atan2")  # of two arguments (Adam's update raises to 0.5)


@lru_cache(maxsize=None)
def libmvec_available() -> bool:
    """Whether glibc's libmvec has every variant (SSE..AVX-512, float and double) of
    :data:`LIBMVEC_FUNCS` and :data:`LIBMVEC_FUNCS2` (x86-64 Linux with glibc >= 2.35)."""
    if env_flag("TINYJAX_NO_LIBMVEC") or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        lib = ctypes.CDLL("libmvec.so.1")
    except OSError:
        return False
    for f, args in [(f, "v") for f in LIBMVEC_FUNCS] + [(f, "vv") for f in LIBMVEC_FUNCS2]:
        for isa, nf, nd in (("b", 4, 2), ("c", 8, 4), ("d", 8, 4), ("e", 16, 8)):
            for name in (f"_ZGV{isa}N{nf}{args}_{f}f", f"_ZGV{isa}N{nd}{args}_{f}"):
                if not hasattr(lib, name):
                    return False
    return True


def compiler_flags() -> list[str]:
    cc = find_compiler()
    _probe_together(cc, list(PROBED_FLAGS) + ["-fopenmp"])
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


def flags_key(cc: str, flags: list[str]) -> str:
    """The part of a library's cache key that names the compiler and its flags."""
    return hashlib.sha256("\0".join([compiler_identity(cc)] + flags).encode()).hexdigest()


def _tame_openmp() -> None:
    """libgomp's idle threads spin 300k iterations by default before they sleep, which on a
    loaded machine takes a busy core from the thread launching the kernels; sleeping at once
    makes every parallel region wait tens of microseconds to wake them.  A short spin (30k)
    keeps the threads awake between a program's kernels, and a compiled program uses only
    the cores other processes leave idle (:mod:`tinyjax.backends.c.threads`), so nothing
    spins on a busy core.  Applies unless the user chose a policy; must run before libgomp
    is loaded (it reads the environment once)."""
    if env("OMP_WAIT_POLICY") is None:
        set_env_default("GOMP_SPINCOUNT", env_str("GOMP_SPINCOUNT"))  # (its declared default)


_tame_openmp()
