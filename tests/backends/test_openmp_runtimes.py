"""A second OpenMP runtime in the process -- scikit-learn's wheel bundles its own libgomp
under another name -- loaded before or after tinyjax's kernels run: both keep working, and
unloading tinyjax's libraries never unloads the runtime whose idle threads they started
(that crashed the process). Each case runs in a subprocess: a crash fails the test, not the
run."""
from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.subprocess_support import describe, run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="libraries are unloaded on Linux only")

# Runs C kernels on OpenMP threads, then unloads every library (clear_caches), several times.
KERNELS_AND_UNLOADING = """
import gc
import numpy as np
import tinyjax as jax, tinyjax.numpy as jnp

def openmp_runtimes():
    with open("/proc/self/maps") as f:
        return sorted({l.split()[-1] for l in f
                       if re.match(r"lib(g|i)?omp", l.split()[-1].rsplit("/", 1)[-1])})

def kernels_then_unloading(rounds):
    x = np.linspace(-1, 1, 256 * 512, dtype=np.float32).reshape(256, 512)
    for i in range(rounds):
        f = jax.jit(lambda x: jnp.tanh(x * (i + 1)).sum(0), device="cpu")
        np.testing.assert_allclose(np.asarray(f(x)), np.tanh(x * (i + 1)).sum(0),
                                   rtol=1e-5, atol=1e-4)
        del f
        jax.clear_caches()
        gc.collect()
"""


@pytest.fixture(scope="module")
def kernel_openmp_runtime() -> str:
    """The path of the OpenMP runtime tinyjax's C kernels use here (skips without one)."""
    proc = run_python("import re\n" + KERNELS_AND_UNLOADING
                      + "kernels_then_unloading(1)\nprint('\\n'.join(openmp_runtimes()))")
    assert proc.returncode == 0, describe(proc)
    paths = proc.stdout.split()
    if not paths:
        pytest.skip("the C kernels are not compiled with OpenMP here")
    assert len(paths) == 1, paths
    return paths[0]


def second_runtime(original: str, directory) -> str:
    """A copy of the runtime ``original`` under another file name and soname, as a wheel
    bundles one (its soname no longer matches what our kernels ask for, so the dynamic
    loader keeps both)."""
    image = open(original, "rb").read()
    soname = re.match(r"lib\w+\.so(\.\d+)?", original.rsplit("/", 1)[-1]).group(0).encode()
    assert image.count(soname + b"\0") == 1, soname
    path = directory / ("libgomp-second" + soname.decode()[soname.index(b".so"):])
    path.write_bytes(image.replace(soname + b"\0", soname.upper() + b"\0"))
    return str(path)


@pytest.mark.parametrize("order", ["second runtime first", "second runtime after"])
def test_a_second_openmp_runtime_beside_the_kernels(order, tmp_path, kernel_openmp_runtime):
    ours = kernel_openmp_runtime
    second = second_runtime(ours, tmp_path)
    load_second = (f"second = ctypes.CDLL({second!r})\n"
                   "second.omp_set_num_threads(2)\n"
                   "second.GOMP_parallel(ctypes.CFUNCTYPE(None, ctypes.c_void_p)"
                   "(lambda _: None), None, 2, 0)\n")  # its own team of threads, started
    first, after = (load_second, "") if order == "second runtime first" else ("", load_second)
    code = ("import ctypes, re\n" + first + KERNELS_AND_UNLOADING
            + "kernels_then_unloading(1)\n" + after + "kernels_then_unloading(2)\n"
            + "print('\\n'.join(openmp_runtimes()))")
    proc = run_python(code, {"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0, describe(proc)
    # both still loaded, ours kept after every library using it was unloaded
    assert sorted(proc.stdout.split()) == sorted([ours, second]), proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="scikit-learn is not installed")
@pytest.mark.parametrize("sklearn_first", [True, False])
def test_scikit_learn_and_the_kernels_in_one_process(sklearn_first):
    use_sklearn = ("from sklearn.cluster import KMeans\n"
                   "rng = np.random.default_rng(0)\n"
                   "KMeans(3, n_init=2, random_state=0).fit(rng.standard_normal((2000, 8)))\n")
    imports = "import re\nimport numpy as np\n"
    code = imports + (use_sklearn if sklearn_first else "") + KERNELS_AND_UNLOADING \
        + "kernels_then_unloading(2)\n" + ("" if sklearn_first else use_sklearn) \
        + "kernels_then_unloading(2)\n" + use_sklearn + "print('done')"
    proc = run_python(code, {"OMP_NUM_THREADS": "2"})
    assert proc.returncode == 0 and "done" in proc.stdout, describe(proc)
