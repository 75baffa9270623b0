"""The C backend's compiler: C source -> a loaded shared library, built by the system C
compiler (a long program as several translation units, compiled side by side), cached in
memory and on disk (:mod:`tinyjax.backends.diskcache`), keyed by the source, the compiler,
its flags and the machine.

What is loaded is checked first: a compiler's output must be a shared library (a compiler
that exits 0 and writes nothing fails the build), a disk entry must match its checksum and
key.  The bytes are loaded from a private copy (an anonymous memory file on Linux, else a
temporary file removed once loaded), so no other process can truncate or replace a library
this one runs.  A library is unloaded (``dlclose``, on Linux) when the last function taken
from it is gone -- when the executables using it are released; the OpenMP runtime they
share stays loaded.

Without a working compiler (none found, or one that cannot build and load a small test
library) :func:`compiler_problem` says why, once, in a warning; the CPU device then runs
kernels on the interpreter.
"""
from __future__ import annotations

import ctypes
import hashlib
import itertools
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import weakref
from functools import lru_cache
from typing import Callable, Optional, Sequence

from tinyjax.backends import diskcache
from tinyjax.backends.c.toolchain import (INSTALL_HINT, CompilerNotFoundError, compiler_flags,
                                          find_compiler, flags_key, library_problem,
                                          link_flags)
from tinyjax.backends.c.support import (FAILED_FLAG, FAILED_POINTERS, GEMM_DRIVER,
                                        GEMM_POINTERS, support_source)
from tinyjax.backends.prelude import PRELUDE
from tinyjax.errors import warn_user

__all__ = ["Library", "compile_source", "cached_library", "build_library", "load_library",
           "compiler_problem", "translation_units", "join_source", "support_library",
           "build_support_library_aside"]


# ---- loaded libraries ------------------------------------------------------------------------

# unloading is done where it is known to be safe: glibc's dlclose, with the OpenMP runtime
# pinned (its idle threads run its code)
_CAN_UNLOAD = sys.platform.startswith("linux")


class Library:
    """A loaded shared library.  :meth:`function` gives ctypes functions that keep it loaded;
    once the last of them (and this object) is gone, it is unloaded where the platform
    allows."""

    def __init__(self, cdll: ctypes.CDLL, python_api: bool = False):
        self._cdll = cdll
        # functions that call Python's C API run holding the GIL (ctypes.PyDLL's convention)
        self._prototype = ctypes.PYFUNCTYPE if python_api else ctypes.CFUNCTYPE
        if _CAN_UNLOAD:
            weakref.finalize(self, _dlclose, cdll._handle)

    def function(self, name: str, argtypes: Sequence = (), restype=None):
        """The exported function ``name`` taking ``argtypes`` (RuntimeError naming it if
        there is none).  Made from its address: a function ctypes takes from a library
        refers to itself, which would keep the library loaded until a garbage collection."""
        try:
            address = _symbol(self._cdll, name)
        except (OSError, AttributeError):
            raise RuntimeError(f"tinyjax: the compiled library has no function {name!r}") \
                from None
        fn = self._prototype(restype, *argtypes)(address)
        fn.library = self  # the library stays loaded while the function exists
        fn.address = address  # (ctypes.cast of fn would make it refer to itself too)
        return fn


    def has(self, name: str) -> bool:
        """Whether the library exports ``name``."""
        try:
            _symbol(self._cdll, name)
            return True
        except (OSError, AttributeError):
            return False

    def address(self, name: str) -> int:
        """The address of the exported symbol ``name``."""
        return _symbol(self._cdll, name)

    def set_pointer(self, name: str, value: int) -> None:
        """Store the address ``value`` in the library's pointer variable ``name``."""
        ctypes.c_void_p.from_address(_symbol(self._cdll, name)).value = value


def _symbol(cdll: ctypes.CDLL, name: str) -> int:
    """The address of ``name`` in ``cdll``."""
    try:
        import _ctypes
        return _ctypes.dlsym(cdll._handle, name)
    except (ImportError, AttributeError):  # (no dlsym: Windows)
        return ctypes.cast(cdll[name], ctypes.c_void_p).value


def _dlclose(handle: int) -> None:
    try:
        import _ctypes
        _ctypes.dlclose(handle)
    except Exception:  # noqa: BLE001 - at interpreter exit ctypes may be gone
        pass


def load_library(image: bytes, python_api: bool = False) -> Library:
    """Load the shared library ``image`` from a private copy (see the module docstring);
    ``python_api``: it calls Python's C API (loaded as ``ctypes.PyDLL``).  OSError when the
    dynamic loader refuses it everywhere it was tried."""
    loader = ctypes.PyDLL if python_api else ctypes.CDLL
    # every load gets a name never used before in this process: the dynamic loader hands
    # back an already loaded library of the same name instead of loading the file
    name = f"tinyjax-{os.getpid()}-{next(_load_count)}.so"
    errors = []
    for place in (_load_from_memory, _load_from_temporary_file):
        try:
            cdll = place(image, name, loader)
            break
        except OSError as e:
            errors.append(str(e))
    else:
        raise OSError("; ".join(errors))
    _pin_openmp_runtime(image)
    return Library(cdll, python_api)


_load_count = itertools.count()


def _load_from_memory(image: bytes, name: str, loader) -> ctypes.CDLL:
    """Load from an anonymous memory file (Linux), through a symbolic link of that name."""
    if not hasattr(os, "memfd_create"):
        raise OSError("no anonymous memory files here")
    fd = os.memfd_create("tinyjax-library", os.MFD_CLOEXEC)
    d = tempfile.mkdtemp(prefix="tinyjax-library-")
    try:
        _write_all(fd, image)
        link = os.path.join(d, name)
        os.symlink(f"/proc/self/fd/{fd}", link)
        return loader(link)
    finally:
        os.close(fd)
        shutil.rmtree(d, ignore_errors=True)


def _load_from_temporary_file(image: bytes, name: str, loader) -> ctypes.CDLL:
    """Load from a file of that name in a private temporary directory, removed after."""
    d = tempfile.mkdtemp(prefix="tinyjax-library-")
    try:
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(image)
        return loader(path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# an OpenMP runtime's soname, as a library that links one names it in its dynamic section
_OPENMP_RUNTIME = re.compile(rb"lib(?:g|i)?omp\d*\.so[.\d]*\0")
_pinned: dict = {}  # path -> a loaded OpenMP runtime, kept for the life of the process
_runtimes_linked: set = set()  # the sonames of the runtimes our libraries linked so far


def _pin_openmp_runtime(image: bytes) -> None:
    """Keep the OpenMP runtime the library ``image`` (just loaded) links loaded for the life
    of the process: unloading the library must not take the runtime's code from under its
    idle worker threads.  Every runtime mapped then is pinned by its path, once per runtime
    a library of ours links -- not just the first one seen: another may be in the process
    before ours (scikit-learn's wheel bundles its own ``libgomp`` under another name), and
    pinning only that one left ours to be unloaded with the last library using it, crashing
    its threads."""
    linked = set(_OPENMP_RUNTIME.findall(image))
    if not _CAN_UNLOAD or linked <= _runtimes_linked:
        return
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/lib" in line}
    except OSError:
        return
    for path in sorted(paths):
        if path not in _pinned and os.path.basename(path).startswith(("libgomp", "libomp",
                                                                       "libiomp")):
            try:
                _pinned[path] = ctypes.CDLL(path)
            except OSError:
                pass
    _runtimes_linked.update(linked)


# ---- building --------------------------------------------------------------------------------

def build_library(cc: str, flags: list[str], units: list[str], libs: list[str]) -> bytes:
    """The shared library of ``units`` (one compiled directly; several into objects by
    concurrent compiler processes, then linked) as bytes; RuntimeError with the compiler's
    messages when it fails or writes no shared library.  Works in a private temporary
    directory (the cache directory may be read-only)."""
    with tempfile.TemporaryDirectory(prefix="tinyjax-build-") as d:
        files = []
        for i, unit in enumerate(units):
            files.append(os.path.join(d, f"unit{i}.c"))
            with open(files[-1], "w") as f:
                f.write(unit)
        out = os.path.join(d, "library.so")
        if len(units) == 1:
            steps = [[[cc] + flags + [files[0], "-o", out] + libs]]
        else:
            objs = [name[:-2] + ".o" for name in files]
            compile_flags = [f for f in flags if f != "-shared"]
            steps = [[[cc] + compile_flags + ["-c", name, "-o", obj]
                      for name, obj in zip(files, objs)],
                     [[cc] + flags + objs + ["-o", out] + libs]]
        for step in steps:
            _run_step(step, units)
        try:
            with open(out, "rb") as f:
                image = f.read()
        except OSError:
            raise RuntimeError(f"tinyjax: C compilation failed: {cc} exited with 0 but wrote "
                               "no library") from None
    problem = library_problem(image)
    if problem is not None:
        raise RuntimeError(f"tinyjax: C compilation failed: {cc} exited with 0 but {problem}")
    return image


def _run_step(commands: list[list[str]], units: list[str]) -> None:
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for cmd in commands]
    errors = [err for proc in procs for _, err in [proc.communicate()] if proc.returncode != 0]
    if errors:
        raise RuntimeError("tinyjax: C compilation failed:\n" + "\n".join(errors)
                           + "\n--- source ---\n" + "\n".join(units))


# ---- the caches ------------------------------------------------------------------------------

_libs: "weakref.WeakValueDictionary[str, Library]" = weakref.WeakValueDictionary()
_key_locks = [threading.Lock() for _ in range(64)]  # one build per key at a time


def cached_library(kind: str, key: str, build: Callable[[], bytes],
                   python_api: bool = False) -> Library:
    """The library of ``key``: loaded already, or from the disk cache, or built by
    ``build()`` (then stored).  A disk entry the loader refuses is deleted and rebuilt."""
    digest = hashlib.sha256(key.encode()).hexdigest()
    with _key_locks[int(digest[:8], 16) % len(_key_locks)]:
        lib = _libs.get(digest)
        if lib is not None:
            return lib
        image = diskcache.read(kind, key)
        if image is not None:
            try:
                lib = load_library(image, python_api)
            except OSError as e:
                diskcache.discard(kind, key, f"the dynamic loader refused it: {e}")
        if lib is None:
            image = build()
            try:
                lib = load_library(image, python_api)
            except OSError as e:
                raise RuntimeError(f"tinyjax: the compiled library cannot be loaded: {e}") \
                    from None
            diskcache.write(kind, key, image)
        _libs[digest] = lib
        return lib


@lru_cache(maxsize=None)
def machine_identity() -> str:
    """What a library built with ``-march=native`` depends on besides its source and
    compiler: the processor (a cache directory may be shared by several machines)."""
    ident = [platform.machine(), platform.system()]
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features", "CPU part")):
                    ident.append(line.strip())
                    if len(ident) > 4:
                        break
    except OSError:
        ident.append(platform.processor())
    return "\0".join(ident)


def compile_source(src: "str | list[str]") -> Library:
    """Compile C source to a shared library (cached in memory and on disk) and load it.
    A list is several translation units (each complete, with its own prelude): they are
    compiled side by side, one compiler process each, and linked into one library.  A
    library with products (calling ``tj_gemm_provider`` or ``tj_gemm_provider_d``) gets
    the product driver of the support library of that type, and its failure flag, before it
    is returned."""
    units = [src] if isinstance(src, str) else list(src)
    cc = find_compiler()
    flags = compiler_flags()
    key = "\0".join(units + [flags_key(cc, flags), machine_identity()])
    lib = cached_library("k", key, lambda: build_library(cc, flags, units, link_flags()))
    for pointer, ctype in GEMM_POINTERS.items():
        if any(f"{pointer}(&" in u for u in units):
            support = support_library(ctype)
            lib.set_pointer(pointer, support.address(GEMM_DRIVER))
            lib.set_pointer(FAILED_POINTERS[ctype], support.address(FAILED_FLAG))
    return lib


_kept: list = []  # libraries loaded for the life of the process


@lru_cache(maxsize=None)
def support_library(ctype: str = "float") -> Library:
    """The support library of products of ``ctype`` (:mod:`tinyjax.backends.c.support`: the
    packing buffers, the micro-kernel and the product driver), built with the kernels'
    flags and loaded once for the life of the process -- kernel libraries are unloaded,
    their threads' buffers must not go with them (nor leak)."""
    cc = find_compiler()
    flags = compiler_flags()
    src = join_source(PRELUDE, [support_source(ctype)])
    key = "\0".join([src, flags_key(cc, flags), machine_identity()])
    lib = cached_library("rt", key, lambda: build_library(cc, flags, [src], link_flags()))
    _kept.append(lib)
    return lib


def build_support_library_aside() -> None:
    """Start building the support library of float products in a thread, unless one is
    loaded already (the compiler process runs beside the caller's); a failure is left to
    the caller's own call of :func:`support_library` to report."""
    if support_library.cache_info().currsize:
        return

    def build() -> None:
        try:
            support_library()
        except Exception:  # noqa: BLE001 - reported by the call that needs it
            pass
    threading.Thread(target=build, daemon=True).start()


# ---- is there a working compiler? ------------------------------------------------------------

_PROBE_SOURCE = "int tj_probe(int x) { return 6 * x; }\n"
_problem: list = []


def compiler_problem() -> Optional[str]:
    """Why the CPU device cannot compile (None: it can), decided once per process: no
    compiler found, or one that does not turn a small program into a library that loads
    and runs.  The first time it finds a problem it says so in one warning."""
    if not _problem:
        problem = _find_problem()
        _problem.append(problem)
        if problem is not None:
            warn_user(f"{problem}. jit runs its kernels on the interpreter device (numpy: "
                      f"correct, much slower); to compile them, {INSTALL_HINT}.")
    return _problem[0]


def _find_problem() -> Optional[str]:
    try:
        cc = find_compiler()
    except CompilerNotFoundError as e:
        return str(e).split(";")[0]
    try:
        fn = compile_source(_PROBE_SOURCE).function("tj_probe", [ctypes.c_int], ctypes.c_int)
        if fn(7) == 42:
            return None
        return f"tinyjax: the C compiler {cc!r} built a library that computes wrong results"
    except (RuntimeError, OSError) as e:
        message = str(e).split("\n--- source ---")[0].removeprefix("tinyjax: ")
        detail = " ".join(message.split())[:300]  # the compiler's own words, on one line
        return f"tinyjax: the C compiler {cc!r} does not work ({detail})"


# ---- translation units -----------------------------------------------------------------------

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
