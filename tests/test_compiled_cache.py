"""jit's compiled calls are bounded and releasable: at most a configured number per function
and in total (least recently called out), ``clear_cache``/``jax.clear_caches`` release the
executables and unload their compiled libraries, and memory returns after thousands of
shapes."""
from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.config import config
from tests.subprocess_support import describe, run_python


def shapes_called(f, n0: int, n1: int, device: str = "interp") -> None:
    for n in range(n0, n1):
        np.testing.assert_allclose(np.asarray(f(np.full(n, 0.5, np.float32))),
                                   np.full(n, np.float32(np.tanh(0.5) * 2)), rtol=1e-6)


def test_least_recently_called_shapes_go_first():
    f = jax.jit(lambda x: jnp.tanh(x) * 2, device="interp")
    with config.override(tinyjax_executables_per_function=3):
        shapes_called(f, 1, 4)                 # shapes 1, 2, 3
        shapes_called(f, 1, 2)                 # 1 used again: 2 is now the oldest
        shapes_called(f, 4, 5)                 # 4 evicts 2
        assert f._cache_size() == 3
        traced = []
        g = jax.jit(lambda x: traced.append(x.shape) or jnp.tanh(x) * 2, device="interp")
        with config.override(tinyjax_executables_per_function=3):
            for n in (1, 2, 3, 1, 4, 1, 3, 2):
                g(np.full(n, 0.5, np.float32))
        # 4 evicted 2 (1 was used after it); 2 again evicted 4 (1 and 3 were used since)
        assert traced == [(1,), (2,), (3,), (4,), (2,)]


def test_total_bound_over_every_function():
    fs = [jax.jit(lambda x, k=k: jnp.tanh(x) * 2 + 0 * k, device="interp") for k in range(3)]
    with config.override(tinyjax_executables_total=4):
        for f in fs:
            shapes_called(f, 1, 3)  # six entries made, four kept: the last ones
        assert [f._cache_size() for f in fs] == [0, 2, 2]


def test_clear_cache_releases_executables_and_unloads_libraries():
    f = jax.jit(lambda x: jnp.sin(x) * 3 + 1)
    f(np.ones(7, np.float32))
    (compiled,) = f.cache._entries.values()
    exe = weakref.ref(compiled.executable)
    del compiled
    f.clear_cache()
    gc.collect()
    assert exe() is None and f._cache_size() == 0
    np.testing.assert_allclose(np.asarray(f(np.ones(7, np.float32))), np.sin(1) * 3 + 1,
                               rtol=1e-6)


def mapped() -> int:
    """How many libraries are loaded: memory files (or files) named tinyjax-library."""
    with open("/proc/self/maps") as fh:
        return len({line.split()[4] for line in fh if "tinyjax-library" in line})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_an_evicted_executable_unloads_its_library_at_once():
    """No reference cycle keeps a library: eviction unloads it without a garbage collection."""
    jax.jit(lambda x: x * 2)(np.ones(3, np.float32))  # the launcher: loaded for good
    f = jax.jit(lambda x: jnp.tanh(x) + 3.0)
    gc.collect()
    before = mapped()
    gc.disable()
    try:
        with config.override(tinyjax_executables_per_function=2):
            for n in range(1, 7):
                f(np.ones(n, np.float32))
            assert f._cache_size() == 2 and mapped() <= before + 2
    finally:
        gc.enable()


def test_products_run_in_the_support_library():
    """A product kernel's library calls the support library's driver (which owns the
    per-thread packing buffers and stays loaded: unloading a product's library leaks none);
    a library without products does not get it."""
    from tinyjax.backends.c import compiler
    from tinyjax.backends.c.support import GEMM_DRIVER

    def provider(lib) -> int:
        return compiler.ctypes.c_void_p.from_address(
            compiler._symbol(lib._cdll, "tj_gemm_provider")).value
    f = jax.jit(lambda a, b: a @ b)
    a = np.random.default_rng(0).standard_normal((40, 48)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(f(a, a.T)), a @ a.T, rtol=1e-4, atol=1e-4)
    driver = compiler.support_library().address(GEMM_DRIVER)
    products = [lib for lib in list(compiler._libs.values()) if lib.has("tj_gemm_provider")
                and provider(lib)]
    assert products and all(provider(lib) == driver for lib in products)
    from tinyjax.backends.prelude import PRELUDE
    plain = compiler.compile_source(PRELUDE + "\nint tj_test_plain(void) { return 3; }\n")
    assert provider(plain) in (None, 0)


def test_support_library_builds_while_the_first_program_is_traced(tmp_path):
    """The CPU backend starts building the products' support library when it is created,
    before any program reaches the compiler: on a cold cache its compiler process runs
    beside the first program's tracing and lowering, not after them."""
    r = run_python(
        "import time, tinyjax\n"
        "from tinyjax.backends.c import compiler\n"
        "built = compiler.build_library\n"
        "units = []\n"
        "compiler.build_library = lambda cc, f, u, l: units.append(u) or built(cc, f, u, l)\n"
        "tinyjax.devices('cpu')\n"
        "deadline = time.monotonic() + 60\n"
        "while not compiler.support_library.cache_info().currsize and "
        "time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "print(sum('tj_gemm_run' in ''.join(u) for u in units))\n",
        env={"TINYJAX_CACHE_DIR": str(tmp_path)})
    assert r.returncode == 0, describe(r)
    assert r.stdout.split() == ["1"], describe(r)


def test_double_products_run_in_their_own_support_library(x64):
    from tinyjax.backends.c import compiler
    from tinyjax.backends.c.support import GEMM_DRIVER
    a = np.random.default_rng(1).standard_normal((40, 48))
    f = jax.jit(lambda a, b: a @ b)  # (kept: its library stays loaded)
    np.testing.assert_allclose(np.asarray(f(a, a.T)), a @ a.T)
    driver = compiler.support_library("double").address(GEMM_DRIVER)
    assert driver != compiler.support_library("float").address(GEMM_DRIVER)
    pointers = [compiler.ctypes.c_void_p.from_address(
        compiler._symbol(lib._cdll, "tj_gemm_provider_d")).value
        for lib in list(compiler._libs.values()) if lib.has("tj_gemm_provider_d")]
    assert driver in pointers


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_evicted_products_leak_no_memory():
    rng = np.random.default_rng(0)
    f = jax.jit(lambda a, b: a @ b)

    def rss_mb() -> float:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024
    with config.override(tinyjax_executables_per_function=2):
        for n in range(200, 246):  # 46 products, 44 evicted and unloaded
            if n == 206:
                start = rss_mb()
            a = rng.standard_normal((n, 512)).astype(np.float32)
            np.testing.assert_allclose(np.asarray(f(a, a.T.copy())), a @ a.T, rtol=1e-3,
                                       atol=1e-3)
    assert rss_mb() - start < 10  # (each unloaded library leaked ~1 MB of buffers before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_clear_caches_unloads_every_library():
    jax.jit(lambda x: x * 2)(np.ones(3, np.float32))  # the launcher: loaded for good
    jax.clear_caches()
    before = mapped()
    fs = [jax.jit(lambda x, k=k: jnp.cos(x) + k) for k in range(4)]
    for f in fs:
        f(np.ones(5, np.float32))
    assert mapped() >= before + 1
    jax.clear_caches()
    assert mapped() <= before and all(f._cache_size() == 0 for f in fs)


RSS_PROGRAM = """
import sys
import numpy as np
import tinyjax as jax, tinyjax.numpy as jnp
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
device, shapes = sys.argv[1], int(sys.argv[2])
f = jax.jit(lambda x: jnp.tanh(x) * 2 + x.sum(), device=device)
for n in range(1, 30):  # warm: libraries, caches of the interpreter itself
    f(np.ones(n, np.float32))
jax.clear_caches()
start = rss_mb()
for n in range(30, 30 + shapes):
    x = np.full(n, 0.25, np.float32)
    assert np.allclose(np.asarray(f(x)), np.tanh(x) * 2 + x.sum(), rtol=1e-5)
peak = rss_mb()
jax.clear_caches()
print(start, peak, rss_mb())
"""


def rss_after(device: str, shapes: int, tmp_path) -> tuple[float, float, float]:
    proc = run_python(f"import sys; sys.argv = ['', {device!r}, '{shapes}']\n" + RSS_PROGRAM,
                      {"TINYJAX_CACHE_DIR": str(tmp_path / "cache")}, timeout=1800)
    assert proc.returncode == 0, describe(proc)
    start, peak, end = map(float, proc.stdout.split())
    return start, peak, end


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_returns_after_many_shapes(tmp_path):
    """(The interpreter: no compiler runs; the C device's libraries are checked above and
    in the slow test below.)"""
    start, peak, end = rss_after("interp", 400, tmp_path)
    assert end <= start * 1.10, (start, peak, end)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_returns_after_2000_compiled_shapes(tmp_path):
    start, peak, end = rss_after("cpu", 2000, tmp_path)
    assert end <= start * 1.10, (start, peak, end)
