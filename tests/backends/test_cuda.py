"""The CUDA device: rendering (checked with nvcc where it is installed) and, on a machine
with a CUDA driver, jit on ``cuda`` against eager evaluation."""
import subprocess
import sys

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.schedule import schedule

from tests.cuda_support import HAS_CUDA, assert_nvcc_compiles, cuda_source, needs_cuda, needs_nvcc


def _kernels(f, *args):
    leaves, outs = lower_jaxpr(inline_calls(jax.make_jaxpr(f)(*args).jaxpr))
    return schedule(leaves, outs).kernels


rng = np.random.default_rng(0)
X = rng.standard_normal((8, 16)).astype(np.float32)
Y = rng.standard_normal((8, 16)).astype(np.float32)
W = rng.standard_normal((16, 24)).astype(np.float32)
B3 = rng.standard_normal((3, 8, 16)).astype(np.float32)
C3 = rng.standard_normal((3, 16, 5)).astype(np.float32)
BIG = rng.standard_normal((300, 1000)).astype(np.float32)
MA = rng.standard_normal((128, 256)).astype(np.float32)
MB = rng.standard_normal((256, 192)).astype(np.float32)
I = rng.integers(-50, 50, (8, 16)).astype(np.int32)
J = rng.integers(-5, 5, (8, 16)).astype(np.int32)
Z = np.where(rng.random((8, 16)) < 0.2, 0.0, Y).astype(np.float32)

# name -> (function, args, whether it must compile to kernels: False for expected fallbacks)
CASES = {
    "elementwise_math": (lambda x, y: jnp.sin(x) * 2 + jnp.exp(y) - jnp.tanh(x * y), (X, Y)),
    "log_sqrt_pow": (lambda x, y: jnp.log1p(jnp.abs(x)) + jnp.sqrt(jnp.abs(y)) ** 1.5, (X, Y)),
    "where_relu": (lambda x, y: jnp.where(x > 0, x, 0.1 * y), (X, Y)),
    "isfinite": (lambda x, z: jnp.isfinite(x / z), (X, Z)),
    "int_ops": (lambda a, b: (a * 3 - b, a // jnp.where(b == 0, 1, b), a % jnp.where(b == 0, 7, b),
                              jnp.abs(a), a > b, lax.population_count(jnp.abs(a))), (I, J)),
    "casts": (lambda x, a: ((x * 10).astype(jnp.int32), a.astype(jnp.float32) / 3,
                            (x > 0).astype(jnp.float32)), (X, I)),
    "float16": (lambda x, y: (x.astype(jnp.float16) * 3 + y.astype(jnp.float16)).astype(jnp.float32),
                (X, Y)),
    "bfloat16": (lambda x: (x.astype(jnp.bfloat16) * 2 + 1).astype(jnp.float32), (X,)),
    "sum_axis": (lambda x: jnp.sum(x, axis=1), (X,)),
    "sum_big": (lambda x: (jnp.sum(x, axis=0), jnp.sum(x)), (BIG,)),
    "max_all": (lambda x: jnp.max(x), (X,)),
    "min_int": (lambda a: jnp.min(a, axis=0), (I,)),
    "var": (lambda x: jnp.var(x, axis=0), (X,)),
    "argmax": (lambda x: jnp.argmax(x, axis=1), (X,)),
    "logsumexp": (lambda x: jax.nn.logsumexp(x, axis=-1), (X,)),
    "transpose": (lambda x: x.T + 1, (X,)),
    "transpose_big": (lambda x: x.T * 2, (BIG,)),
    "slice_reshape": (lambda x: x[1:, ::2].reshape(-1) * 3, (X,)),
    "concat_pad": (lambda x, y: (jnp.concatenate([x, y], 0), jnp.pad(x, 1)), (X, Y)),
    "broadcast": (lambda x, y: x[:, :, None] * y[:, None, :], (X, Y)),
    "flip": (lambda x: jnp.flip(x, 1) - x, (X,)),
    "softmax": (lambda x: jax.nn.softmax(x, axis=-1), (X,)),
    "softmax_big": (lambda x: jax.nn.softmax(x, axis=-1), (BIG,)),
    "matmul": (lambda x, w: x @ w, (X, W)),
    "matmul_gemm_plan": (lambda a, b: jnp.tanh(a @ b), (MA, MB)),
    "batched_matmul": (lambda a, b: jnp.einsum("bij,bjk->bik", a, b), (B3, C3)),
    "mlp": (lambda x, w: jnp.sum(jax.nn.relu(x @ w + 1.0) ** 2, axis=1), (X, W)),
    "grad": (lambda x, w: jax.grad(lambda w: jnp.sum(jnp.tanh(x @ w)))(w), (X, W)),
    "fori_loop": (lambda x: lax.fori_loop(0, 3, lambda i, c: c * 2 + 1, x), (X,)),
    "sort": (lambda x: jnp.sort(x, axis=1), (X,)),
    "scatter_add": (lambda x: jnp.asarray(x).at[jnp.array([0, 2, 0])].add(1.0), (X,)),
}


def _check(got, want, name):
    got, want = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, name
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                       rtol=2e-5, atol=2e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


# ---- here: rendering, and nvcc where installed ------------------------------------------------

@pytest.fixture(autouse=True)
def full_float32_matmuls():
    """These cases compare with eager float32 results (TF32 is tested in test_cuda_gemm.py)."""
    with jax.config.override(jax_default_matmul_precision="highest"):
        yield


def test_gemm_plan_kernels_render_as_tiled_matmuls():
    (k,) = _kernels(lambda a, b: a @ b, MA.astype(jnp.bfloat16), MB.astype(jnp.bfloat16))
    assert k.gemm is not None
    assert "mma.sync" in cuda_source([k])


def test_import_does_not_load_cuda():
    code = ("import sys, tinyjax, tinyjax.numpy; "
            "assert 'tinyjax.backends.cuda.runtime' not in sys.modules; "
            "assert 'tinyjax.backends.cuda.driver' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(HAS_CUDA, reason="a CUDA driver is present")
def test_no_driver_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="no CUDA device"):
        get_backend("cuda")
    with pytest.raises(RuntimeError, match="'cuda' requested, but no platforms"):
        jax.jit(lambda x: jnp.sin(x) + 1, device="cuda")(X)
    with pytest.raises(RuntimeError, match="'gpu' requested, .* Platforms present are: cpu"):
        jax.devices("gpu")


@needs_nvcc
def test_rendered_source_compiles_with_nvcc(tmp_path):
    kernels = []
    for name, (f, args) in CASES.items():
        if name in ("grad", "fori_loop"):
            continue
        ks = _kernels(f, *args)
        for k in ks:
            k.name = f"{name}_{k.name}"
        kernels.extend(ks)
    kernels.extend(_kernels(lambda x: jax.scipy.special.digamma(x) + lax.erf_inv(x * 0.1), X))
    kernels[-1].name = "special_" + kernels[-1].name
    src = cuda_source(kernels)
    assert_nvcc_compiles(src, tmp_path)


# ---- on a GPU: jit on cuda against eager ------------------------------------------------------

@needs_cuda
@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_cuda_matches_eager(name):
    f, args = CASES[name]
    want = f(*args)
    jf = jax.jit(f, device="cuda")
    assert jf.lower(*args).compile().num_kernels > 0, "fell back to eager"
    _check(jf(*args), want, name)
    _check(jf(*args), want, name + " (second call)")


@needs_cuda
def test_cuda_backend_reports_device():
    b = get_backend("cuda")
    assert b.driver.compute_capability[0] >= 3 and b.driver.name
    print(f"\ncuda device: {b.driver.name} ({b.driver.arch})", file=sys.stderr)


@needs_cuda
def test_cuda_compile_error_is_clear():
    from tinyjax.backends.cuda.driver import driver, nvrtc_compile
    with pytest.raises(RuntimeError, match="CUDA compilation failed"):
        nvrtc_compile("this is not CUDA;", driver().arch)
