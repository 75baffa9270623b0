"""The CPU device: kernel IR -> C (via :mod:`tinyjax.devices.cstyle`) -> shared library
compiled by the system C compiler -> launched through ctypes.

Compiled libraries are cached in memory and on disk (``$TINYJAX_CACHE_DIR`` or
``~/.cache/tinyjax``), keyed by a hash of source + compiler + flags.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from functools import lru_cache
from typing import Optional

from tinyjax.devices.cstyle import PRELUDE, CStyleLanguage
from tinyjax.lowering.kernel import Kernel

__all__ = ["CPUDevice", "CompilerNotFoundError", "find_compiler", "compile_source"]

# No -ffast-math: it breaks NaN/inf semantics (isnan, NaN-propagating max).  -fwrapv: signed
# integer overflow wraps as in numpy.  -fno-math-errno lets libm calls vectorise.
BASE_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fwrapv", "-fPIC", "-shared",
              "-std=c11", "-D_GNU_SOURCE"]


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
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "t.c")
        with open(src, "w") as f:
            f.write("int f(int x){return x;}\n")
        r = subprocess.run([cc, flag, "-shared", "-fPIC", src, "-o", os.path.join(d, "t.so")],
                           capture_output=True)
        return r.returncode == 0


def compiler_flags() -> list[str]:
    cc = find_compiler()
    flags = [f for f in BASE_FLAGS if f != "-march=native" or _supports(cc, f)]
    if os.environ.get("TINYJAX_NO_OPENMP") is None and _supports(cc, "-fopenmp"):
        flags.append("-fopenmp")
    return flags


def cache_dir() -> str:
    d = os.environ.get("TINYJAX_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache",
                                                            "tinyjax")
    os.makedirs(d, exist_ok=True)
    return d


_libs: dict[str, ctypes.CDLL] = {}


def compile_source(src: str) -> ctypes.CDLL:
    """Compile C source to a shared library (cached in memory and on disk) and load it."""
    cc = find_compiler()
    flags = compiler_flags()
    key = hashlib.sha256("\0".join([src, cc] + flags).encode()).hexdigest()[:32]
    lib = _libs.get(key)
    if lib is not None:
        return lib
    path = os.path.join(cache_dir(), f"k_{key}.so")
    if not os.path.exists(path):
        fd, tmp_src = tempfile.mkstemp(suffix=".c", dir=cache_dir())
        with os.fdopen(fd, "w") as f:
            f.write(src)
        tmp_out = tmp_src[:-2] + ".so"
        try:
            r = subprocess.run([cc] + flags + [tmp_src, "-o", tmp_out, "-lm"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"tinyjax: C compilation failed:\n{r.stderr}\n--- source ---\n{src}")
            os.replace(tmp_out, path)  # atomic: concurrent processes see a whole file
        finally:
            for p in (tmp_src, tmp_out):
                if os.path.exists(p):
                    os.remove(p)
    lib = ctypes.CDLL(path)
    _libs[key] = lib
    return lib


class CPUDevice:
    name = "cpu"
    language = CStyleLanguage()

    def render(self, kernels: list[Kernel]) -> str:
        return PRELUDE + "\n" + "\n\n".join(self.language.render_kernel(k) for k in kernels) + "\n"

    def compile(self, kernels: list[Kernel]):
        """Returns (source, [callable(ptr_array) per kernel])."""
        src = self.render(kernels)
        if not kernels:
            return src, []
        lib = compile_source(src)
        fns = []
        for k in kernels:
            fn = getattr(lib, k.name)
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = None
            fns.append(fn)
        return src, fns

    def make_launcher(self, fn, kernel: Kernel):
        n = len(kernel.bufs)
        arr_t = ctypes.c_void_p * n

        def launch(arrays):
            ptrs = arr_t(*[a.ctypes.data for a in arrays])
            fn(ptrs)
        return launch
