import os

# The suite runs with 8 CPU devices, as JAX's own multi-device tests do on a CPU-only
# machine (the multi-device tests build meshes over them); the default device is still the
# first, so single-device tests are unaffected.  Set before tinyjax reads it.
os.environ.setdefault("TINYJAX_NUM_CPU_DEVICES", "8")

import pytest

from tinyjax.config import config
from tests.cuda_support import CUDA_PARAM


@pytest.fixture(params=["cpu", "interp", CUDA_PARAM])
def device(request):
    """Every device: the C backend, the reference interpreter, and CUDA where a driver is
    present (skipped, with the reason shown by ``pytest -rs``, where none is)."""
    return request.param


@pytest.fixture(autouse=True)
def full_float32_matmuls_on_cuda(request):
    """Tests on the cuda device compare against eager float32 results: their matmuls run in
    full float32 (JAX's GPU default, TF32, is tested on its own in test_cuda_gemm.py)."""
    spec = getattr(request.node, "callspec", None)
    on_cuda = spec is not None and any(v == "cuda" for v in spec.params.values()
                                       if isinstance(v, str))
    if not on_cuda:
        yield
        return
    with config.override(jax_default_matmul_precision="highest"):
        yield


@pytest.fixture
def x64():
    """64-bit types on for one test (``jax_enable_x64``), restored after it."""
    with config.override(jax_enable_x64=True):
        yield
