"""Whether the tests can use the ``cuda`` device, decided without importing tinyjax's CUDA
modules: a CUDA driver library (``libcuda``) loads.  ``needs_cuda`` skips a test, with a
visible reason, where none does; ``CUDA_PARAM`` is the ``"cuda"`` device as a pytest
parameter carrying that mark, to add to a device list.

``TINYJAX_CUDA_STRICT=1`` (set by ``scripts/gpu_check.sh``) turns a missing driver into an
error at collection rather than a silent run of skips."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from typing import Any

import numpy as np
import pytest

__all__ = ["HAS_CUDA", "needs_cuda", "CUDA_PARAM", "SKIP_REASON", "to_host", "needs_nvcc",
           "assert_nvcc_compiles", "cuda_source"]

SKIP_REASON = "no CUDA device: libcuda not found"


def _has_libcuda() -> bool:
    for name in ("libcuda.so.1", "libcuda.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            pass
    return False


HAS_CUDA = _has_libcuda()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason=SKIP_REASON)
CUDA_PARAM = pytest.param("cuda", marks=needs_cuda, id="cuda")


needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")


def assert_nvcc_compiles(source: str, tmp_path) -> None:
    """``source`` compiles for sm_90a (an H100: the gemm kernels' warpgroup MMA needs the
    architecture-specific target) with every warning an error (nvcc, no GPU needed)."""
    cu = tmp_path / "k.cu"
    cu.write_text(source)
    r = subprocess.run(["nvcc", "-c", "-gencode", "arch=compute_90a,code=sm_90a", "-Werror", "all-warnings", str(cu), "-o",
                        str(tmp_path / "k.o")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    assert os.path.getsize(tmp_path / "k.o") > 0


def to_host(x: Any) -> np.ndarray:
    """A numpy array of an executable's output: a host array as it is, a device buffer
    (which has ``.numpy()``, the copy to the host) copied back, anything else through
    ``np.asarray`` (tinyjax Arrays)."""
    if isinstance(x, np.ndarray):
        return x
    if not hasattr(x, "__array__") and callable(getattr(x, "numpy", None)):
        return x.numpy()
    return np.asarray(x)


if os.environ.get("TINYJAX_CUDA_STRICT") and not HAS_CUDA:
    raise RuntimeError("TINYJAX_CUDA_STRICT is set but libcuda was not found")


def cuda_source(kernels: list) -> str:
    """The CUDA source of scheduled ``kernels``: each given its loop IR for an H100 (what
    the compiler attaches before the ``cuda`` backend renders), then rendered."""
    from tinyjax.compiler.codegen import cuda_loop_ir
    from tinyjax.backends.cuda.render import render_source
    for k in kernels:
        k.loop_ir = cuda_loop_ir(k)
    return render_source(kernels)
