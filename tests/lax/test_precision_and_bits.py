"""The primitives clz, mulhi, reduce_precision and optimization_barrier: eager values
against independent references (Python integers, ml_dtypes' narrow floats), compiled on
the C and interpreter devices against eager, vmap against loops, derivatives against
finite differences, JAX's errors; their CUDA source compiles with nvcc where it exists."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends.cuda.render import render_source
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.schedule import schedule
from tinyjax.test_util import check_grads
from tests.cuda_support import CUDA_PARAM, assert_nvcc_compiles, cuda_source, needs_nvcc

DEVICES = ["cpu", "interp", CUDA_PARAM]
INT_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32]


def _ints(dtype, n, seed):
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed)
    edges = np.array([0, 1, info.max, info.min, info.max // 2 + 1], dtype)
    return np.concatenate([edges, rng.integers(info.min, info.max, n, dtype=dtype,
                                               endpoint=True)])


def _clz_ref(x):
    bits = x.dtype.itemsize * 8
    return np.array([bits - (int(v) & ((1 << bits) - 1)).bit_length() for v in x], x.dtype)


def _mulhi_ref(x, y):
    bits = x.dtype.itemsize * 8
    out = [(int(a) * int(b)) >> bits for a, b in zip(x, y)]
    return np.array([v & ((1 << bits) - 1) for v in out], np.uint64).astype(
        np.dtype(f"uint{bits}")).view(x.dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_clz_and_mulhi_eager_and_compiled(dtype, device):
    x, y = _ints(dtype, 40, 0), _ints(dtype, 40, 1)
    np.testing.assert_array_equal(lax.clz(x), _clz_ref(x))
    np.testing.assert_array_equal(lax.mulhi(x, y), _mulhi_ref(x, y))
    dev = jax.devices(device)[0]
    xd, yd = jax.device_put(x, dev), jax.device_put(y, dev)
    np.testing.assert_array_equal(jax.jit(lax.clz)(xd), _clz_ref(x))
    np.testing.assert_array_equal(jax.jit(lax.mulhi)(xd, yd), _mulhi_ref(x, y))


@pytest.mark.usefixtures("x64")
@pytest.mark.parametrize("dtype", [np.int64, np.uint64], ids=lambda d: np.dtype(d).name)
def test_clz_and_mulhi_64_bit(dtype):
    x, y = _ints(dtype, 20, 2), _ints(dtype, 20, 3)
    np.testing.assert_array_equal(lax.clz(x), _clz_ref(x))
    np.testing.assert_array_equal(lax.mulhi(x, y), _mulhi_ref(x, y))
    np.testing.assert_array_equal(jax.jit(lax.clz)(x), _clz_ref(x))
    np.testing.assert_array_equal(jax.jit(lax.mulhi)(x, y), _mulhi_ref(x, y))


def test_bit_primitives_rules_and_errors():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.testing.assert_array_equal(jax.vmap(lax.clz)(x), np.stack([_clz_ref(r) for r in x]))
    np.testing.assert_array_equal(jax.vmap(lax.mulhi, (0, None))(x, x[0]),
                                  np.stack([_mulhi_ref(r, x[0]) for r in x]))
    with pytest.raises(TypeError, match="clz does not accept dtype f32"):
        lax.clz(1.0)
    with pytest.raises(TypeError, match="mulhi does not accept dtype f32"):
        lax.mulhi(1.0, 2.0)
    with pytest.raises(TypeError, match="same dtypes"):
        lax.mulhi(np.int8(1), np.int16(2))
    assert "clz" in str(jax.make_jaxpr(lax.clz)(x))


# reduce_precision to the formats ml_dtypes implements equals a round trip through them
# wherever the value is a normal number of the narrow format (no subnormals there)
FORMATS = [(5, 10, np.float16), (8, 7, ml_dtypes.bfloat16), (4, 3, ml_dtypes.float8_e4m3),
           (5, 2, ml_dtypes.float8_e5m2)]


@pytest.mark.parametrize("exponent_bits,mantissa_bits,fmt", FORMATS,
                         ids=lambda v: getattr(v, "__name__", str(v)))
def test_reduce_precision_matches_narrow_formats(exponent_bits, mantissa_bits, fmt):
    info = ml_dtypes.finfo(fmt)
    rng = np.random.default_rng(exponent_bits * 16 + mantissa_bits)
    mags = np.exp(rng.uniform(np.log(float(info.tiny)), np.log(float(info.max) / 2), 300))
    x = (mags * rng.choice([-1, 1], 300)).astype(np.float32)
    expect = x.astype(fmt).astype(np.float32)
    for f in (lambda v: lax.reduce_precision(v, exponent_bits, mantissa_bits),
              jax.jit(lambda v: lax.reduce_precision(v, exponent_bits, mantissa_bits))):
        np.testing.assert_array_equal(f(x), expect)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, float(info.max) * 4,
                        -float(info.max) * 4, float(info.tiny) / 4], np.float32)
    out = np.asarray(lax.reduce_precision(special, exponent_bits, mantissa_bits))
    # below the narrow format's range: zero where the exponent shrinks (float32's own
    # exponent, as bfloat16's, keeps subnormals)
    tiny = 0 if exponent_bits < 8 else special[7].astype(fmt).astype(np.float32)
    np.testing.assert_array_equal(out, [np.nan, np.inf, -np.inf, 0, 0, np.inf, -np.inf, tiny])
    assert np.signbit(out[4]) and not np.signbit(out[3])


@settings(max_examples=20, deadline=None)
@pytest.mark.parametrize("device", DEVICES)
@given(st.integers(1, 11), st.integers(0, 52))
def test_reduce_precision_compiled_equals_eager(device, exponent_bits, mantissa_bits):
    rng = np.random.default_rng(exponent_bits * 64 + mantissa_bits)
    x = np.concatenate([rng.normal(size=30) * 10.0 ** rng.integers(-40, 38, 30),
                        [np.nan, np.inf, -np.inf, 0.0, 1e-45, 3e38]]).astype(np.float32)
    eager = np.asarray(lax.reduce_precision(x, exponent_bits, mantissa_bits))
    xd = jax.device_put(x, jax.devices(device)[0])
    compiled = jax.jit(lambda v: lax.reduce_precision(v, exponent_bits, mantissa_bits))(xd)
    np.testing.assert_array_equal(np.asarray(compiled).view(np.uint32), eager.view(np.uint32))


def test_reduce_precision_rules_and_errors():
    x = np.linspace(-3, 3, 7).astype(np.float32)
    # linear: the derivative is the rounded tangent
    _, t = jax.jvp(lambda v: lax.reduce_precision(v, 5, 2), (x,), (np.full(7, 1.3, np.float32),))
    np.testing.assert_array_equal(t, np.full(7, np.float32(1.25)))
    g = jax.grad(lambda v: lax.reduce_precision(v, 8, 23).sum())(x)
    np.testing.assert_array_equal(g, np.ones(7))
    check_grads(lambda v: lax.reduce_precision(v, 8, 23) ** 2, (x,), order=1)
    np.testing.assert_array_equal(jax.vmap(lambda v: lax.reduce_precision(v, 4, 3))(x[:, None]),
                                  lax.reduce_precision(x[:, None], 4, 3))
    assert lax.reduce_precision(2.0, 5, 10).weak_type
    with pytest.raises(TypeError, match="reduce_precision does not accept dtype i32"):
        lax.reduce_precision(np.int32(1), 5, 10)
    with pytest.raises(ValueError, match="exponent_bits must be positive"):
        lax.reduce_precision(1.0, 0, 10)
    with pytest.raises(ValueError, match="mantissa_bits must be non-negative"):
        lax.reduce_precision(1.0, 5, -1)


def test_optimization_barrier():
    tree = {"a": jnp.ones(2), "b": (jnp.arange(3), 2.0)}
    out = lax.optimization_barrier(tree)
    assert jax.tree_util.tree_structure(out) == jax.tree_util.tree_structure(tree)
    assert "optimization_barrier" in str(jax.make_jaxpr(lax.optimization_barrier)(tree))
    x = np.linspace(0, 1, 4).astype(np.float32)
    check_grads(lambda v: lax.optimization_barrier((jnp.sin(v), v))[0] * 3, (x,), order=2)
    np.testing.assert_allclose(jax.jit(lambda v: lax.optimization_barrier(jnp.sin(v)) * 3)(x),
                               np.sin(x) * 3, rtol=1e-6)
    np.testing.assert_array_equal(jax.vmap(lax.optimization_barrier)(x), x)


@needs_nvcc
def test_cuda_source_of_the_new_ops_compiles(tmp_path):
    def f(x, y, z):
        return lax.clz(x), lax.mulhi(x, y), lax.reduce_precision(z, 5, 2)
    args = (np.arange(8, dtype=np.int32), np.arange(8, dtype=np.int32),
            np.ones(8, np.float32))
    leaves, outs = lower_jaxpr(inline_calls(jax.make_jaxpr(f)(*args).jaxpr))
    src = cuda_source(schedule(leaves, outs).kernels)
    assert "__clzll" in src and "__mulhi" not in src
    assert_nvcc_compiles(src, tmp_path)
