"""lax functions written as compositions of primitives: against numpy references, loops
for vmap, eager for jit, finite differences for derivatives, JAX's errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.test_util import check_grads

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3, 4)).astype(np.float32)


def test_shape_helpers():
    np.testing.assert_array_equal(lax.stack([X[0], X[1]], axis=1), np.stack([X[0], X[1]], 1))
    assert [u.shape for u in lax.unstack(X, 2)] == [(2, 3)] * 4
    np.testing.assert_array_equal(lax.tile(X[0], (2, 3)), np.tile(X[0], (2, 3)))
    assert lax.collapse(X, 1).shape == (2, 12) and lax.collapse(X, 0, 2).shape == (6, 4)
    assert lax.broadcast_shapes((3, 1), (4,), ()) == (3, 4)
    with pytest.raises(ValueError, match="Incompatible shapes"):
        lax.broadcast_shapes((3,), (4,))
    assert lax.broadcast_to_rank(X[0], 4).shape == (1, 1, 3, 4)
    np.testing.assert_array_equal(lax.broadcast_like(np.arange(4.0), X), np.broadcast_to(
        np.arange(4.0), X.shape))
    out = lax.full_like(jnp.asarray(1.0), 3)
    assert out.weak_type and float(out) == 3.0
    assert lax.full_like(X, 2, np.int32, (5,)).dtype == np.int32
    assert lax.full_like(jax.ShapeDtypeStruct((2,), np.float32), 1).shape == (2,)
    assert lax.empty((2, 3), np.float32).shape == (2, 3)
    assert lax.dtype(1.0) == np.float32 and lax.dtype(np.int8(1)) == np.int8
    np.testing.assert_allclose(lax.reciprocal(X), 1 / X, rtol=1e-6)
    check_grads(lax.reciprocal, (X + 3,), order=2)


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_top_k_any_axis_and_approx(axis):
    vals, idx = lax.top_k(X, 2, axis=axis)
    ref = -np.sort(-X, axis=axis)
    np.testing.assert_allclose(vals, np.take(ref, [0, 1], axis=axis))
    np.testing.assert_array_equal(np.take_along_axis(X, np.asarray(idx), axis), vals)
    lo, lo_idx = lax.approx_min_k(X, 2, reduction_dimension=axis)
    np.testing.assert_allclose(lo, np.take(np.sort(X, axis=axis), [0, 1], axis=axis))
    hi, _ = lax.approx_max_k(X, 2, reduction_dimension=axis)
    np.testing.assert_allclose(hi, vals)
    ints = np.array([[3, np.iinfo(np.int32).min, 7, -1]], np.int32)
    np.testing.assert_array_equal(lax.approx_min_k(ints, 2)[0], [[ints.min(), -1]])
    check_grads(lambda v: lax.top_k(v, 2, axis=axis)[0], (X,), order=1)


def test_scatter_helpers_and_index_take():
    x = np.arange(12.0).reshape(3, 4).astype(np.float32)
    dn = lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                     scatter_dims_to_operand_dims=(0,))
    idx = np.array([[0], [2], [0]])
    expect = x.copy()
    np.subtract.at(expect, [0, 2, 0], 1.0)
    np.testing.assert_array_equal(lax.scatter_sub(x, idx, np.ones((3, 4), np.float32), dn),
                                  expect)
    applied = x.copy()
    applied[0] *= 100      # index 0 appears twice: func applied twice
    applied[2] *= 10
    f = lambda v: lax.scatter_apply(v, idx, lambda t: t * 10, dn, update_shape=(3, 4))  # noqa
    np.testing.assert_array_equal(f(x), applied)
    np.testing.assert_array_equal(jax.jit(f)(x), applied)
    src = np.arange(24.0).reshape(2, 3, 4)
    rows, cols = np.array([1, 0, 1]), np.array([2, 0, -1])
    np.testing.assert_array_equal(lax.index_take(src, [rows, cols], (0, 2)),
                                  src[rows, :, cols % 4])


def test_reduce_with_python_reducers():
    ints = RNG.integers(0, 16, (2, 3, 4)).astype(np.int32)
    assert "reduce_sum" in str(jax.make_jaxpr(lambda v: lax.reduce(v, 0.0, lax.add, (0,)))(X))
    np.testing.assert_allclose(lax.reduce(X, 0.0, lax.add, (0, 2)), X.sum((0, 2)), rtol=1e-6)
    np.testing.assert_allclose(lax.reduce(X, -np.inf, lax.max, (1,)), X.max(1))
    np.testing.assert_allclose(lax.reduce(X, 1.5, lax.add, (0,)), X.sum(0) + 1.5, rtol=1e-6)
    np.testing.assert_array_equal(lax.reduce(ints, 0, lax.bitwise_or, (0, 1)),
                                  np.bitwise_or.reduce(ints.reshape(6, 4), 0))
    # a non-monoid reducer folds in order
    ref = np.zeros((2, 3), np.float64)
    for k in range(4):
        ref = ref * 0.5 + X[..., k]
    fold = lambda v: lax.reduce(v, 0.0, lambda a, b: a * 0.5 + b, (2,))  # noqa: E731
    np.testing.assert_allclose(fold(X), ref, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(fold)(X), ref, rtol=1e-5)
    check_grads(fold, (X,), order=1, modes=["fwd", "rev"])
    v, i = lax.reduce((X, ints), (-np.inf, 0), lambda a, b: (lax.max(a[0], b[0]), lax.select(
        a[0] >= b[0], a[1], b[1])), (2,))
    np.testing.assert_allclose(v, X.max(2))
    np.testing.assert_array_equal(i, np.take_along_axis(ints, X.argmax(2)[..., None], 2)[..., 0])
    with pytest.raises(ValueError, match="same tree structure"):
        lax.reduce((X, X), 0.0, lax.add, (0,))


def test_ragged_dot_and_dot_algorithms():
    lhs = RNG.normal(size=(7, 4)).astype(np.float32)
    rhs = RNG.normal(size=(3, 4, 5)).astype(np.float32)
    sizes = np.array([2, 0, 3], np.int32)
    expect = np.zeros((7, 5), np.float32)
    expect[:2] = lhs[:2] @ rhs[0]
    expect[2:5] = lhs[2:5] @ rhs[2]
    np.testing.assert_allclose(lax.ragged_dot(lhs, rhs, sizes), expect, rtol=1e-5, atol=1e-5)
    check_grads(lambda a, b: lax.ragged_dot(a, b, sizes), (lhs, rhs), order=1, modes=["rev"])
    for preset in lax.DotAlgorithmPreset:
        np.testing.assert_allclose(lax.dot(lhs, rhs[0], precision=preset), lhs @ rhs[0],
                                   rtol=1e-2, atol=1e-2)
    alg = lax.DotAlgorithm(np.float32, np.float32, np.float32)
    np.testing.assert_allclose(lax.dot(lhs, rhs[0], precision=alg), lhs @ rhs[0], rtol=1e-5,
                               atol=1e-5)
    np.testing.assert_allclose(lax.exp(X, accuracy=lax.Tolerance(atol=1e-3)), np.exp(X),
                               rtol=1e-6)
    with pytest.raises(TypeError, match="accuracy"):
        lax.exp(X, accuracy="high")


def test_platform_composite_rng_and_axis_size():
    assert float(lax.platform_dependent(2.0, cpu=lambda x: x * 10, default=lambda x: x)) == 20
    assert float(jax.jit(lambda x: lax.platform_dependent(
        x, cuda=lambda v: v + 1, default=lambda v: v - 1))(1.0)) == 0.0
    double = lax.composite(lambda x: x * 2, "my.double")
    assert float(double(3.0)) == 6.0 and double.composite_name == "my.double"
    key = np.array([1, 2, 3, 4], np.uint32)
    new_key, bits = lax.rng_bit_generator(key, (2, 3))
    assert new_key.shape == (4,) and new_key.dtype == np.uint32 and bits.dtype == np.uint32
    np.testing.assert_array_equal(lax.rng_bit_generator(key, (2, 3))[1], bits)  # deterministic
    assert not np.array_equal(lax.rng_bit_generator(new_key, (2, 3))[1], bits)
    many = np.asarray(lax.rng_bit_generator(key, (20000,), np.uint8)[1])
    assert many.dtype == np.uint8 and abs(many.mean() - 127.5) < 3
    u = np.asarray(lax.rng_uniform(2.0, 3.0, (1000,)))
    assert u.min() >= 2 and u.max() < 3 and abs(u.mean() - 2.5) < 0.05
    ints = np.asarray(lax.rng_uniform(np.int32(2), np.int32(9), (1000,)))
    assert ints.min() >= 2 and ints.max() < 9
    with pytest.raises(TypeError, match="uint32\\[4\\]"):
        lax.rng_bit_generator(np.zeros(2, np.uint32), (3,))
    sizes = jax.vmap(lambda v: v * lax.axis_size("i"), axis_name="i")(jnp.ones(3))
    np.testing.assert_array_equal(sizes, [3.0, 3.0, 3.0])
    assert lax.reduce_window_shape_tuple((4, 6), (2, 3), (1, 2), ((0, 0), (1, 1)),
                                         (2, 1), (1, 2)) == (6, 2)


def test_convolution_helpers_against_numpy():
    x = RNG.normal(size=(2, 5, 3)).astype(np.float32)          # N W C
    w = RNG.normal(size=(3, 3, 4)).astype(np.float32)          # W I O
    # conv_transpose with transpose_kernel is the gradient of the strided convolution
    fwd = lambda v: lax.conv_general_dilated(v, w, (2,), "SAME",  # noqa: E731
                                              dimension_numbers=("NWC", "WIO", "NWC"))
    y, pull = jax.vjp(fwd, RNG.normal(size=(2, 10, 3)).astype(np.float32))
    ct = RNG.normal(size=y.shape).astype(np.float32)
    via_transpose = lax.conv_transpose(ct, w, (2,), "SAME", dimension_numbers=(
        "NWC", "WIO", "NWC"), transpose_kernel=True)
    np.testing.assert_allclose(via_transpose, pull(ct)[0], rtol=1e-4, atol=1e-4)
    # patches: output feature c * window + k reads channel c at window position k
    p = lax.conv_general_dilated_patches(np.transpose(x, (0, 2, 1)), (2,), (1,), "VALID")
    expect = np.stack([x[:, k:k + 4, :] for k in range(2)], axis=-1)   # N W' C K
    np.testing.assert_allclose(p, np.transpose(expect, (0, 2, 3, 1)).reshape(2, 6, 4))
    # local: a different kernel per output position
    kernels = RNG.normal(size=(4, 3 * 2, 5)).astype(np.float32)      # W' (C*K) O
    local = lax.conv_general_dilated_local(x, kernels, (1,), "VALID", (2,),
                                           dimension_numbers=("NWC", "WIO", "NWC"))
    flat = np.transpose(expect, (0, 1, 2, 3)).reshape(2, 4, 6)
    np.testing.assert_allclose(local, np.einsum("bwp,wpo->bwo", flat, kernels), rtol=1e-4,
                               atol=1e-5)
    assert lax.conv_general_shape_tuple((2, 3, 7, 6), (4, 3, 2, 3), (2, 1), "SAME",
                                        ("NCHW", "OIHW", "NCHW")) == (2, 4, 4, 6)
    assert lax.conv_transpose_shape_tuple((2, 7, 6, 3), (3, 2, 3, 4), (2, 1), "SAME",
                                          ("NHWC", "HWIO", "NHWC")) == (2, 14, 6, 4)


def test_stage_and_shape_as_value():
    out = lax.stage(3.0)
    assert isinstance(out, jax.Array) and out.dtype == np.float32 and out.weak_type
    assert lax.stage(np.ones(2, np.int64)).dtype == np.int32
    assert str(jax.make_jaxpr(lax.stage)(X).eqns) == "[]"  # the identity on tracers
    np.testing.assert_array_equal(jax.vmap(lax.stage)(X), X)
    with pytest.raises(TypeError, match="argument to stage"):
        lax.stage("a")
    np.testing.assert_array_equal(lax.shape_as_value(X.shape), np.array([2, 3, 4], np.int32))
    assert lax.shape_as_value(()).shape == (0,)
    assert jax.jit(lambda x: lax.shape_as_value(x.shape))(X).dtype == np.int32


def _bf16(x):
    return np.asarray(x, jnp.bfloat16).astype(np.float32)


@pytest.mark.parametrize("batched", [False, True])
def test_scaled_dot_against_blockwise_numpy(batched):
    lhs, rhs = RNG.normal(size=(2, 4, 8)), RNG.normal(size=(2, 8, 3))
    lhs_scale, rhs_scale = RNG.uniform(1, 2, (2, 4, 2)), RNG.uniform(1, 2, (2, 2, 3))
    if not batched:
        lhs, rhs, lhs_scale, rhs_scale = lhs[0], rhs[0], lhs_scale[0], rhs_scale[0]
    f = jax.jit(lambda *a: lax.scaled_dot(a[0], a[1], lhs_scale=a[2], rhs_scale=a[3],
                                          preferred_element_type=np.float32))
    out = f(lhs, rhs, lhs_scale, rhs_scale)
    k = lhs.ndim - 1  # blocks of 4 along the contracting axis
    ref = (_bf16(lhs) * np.repeat(_bf16(lhs_scale), 4, axis=k)) @ \
        (_bf16(rhs) * np.repeat(_bf16(rhs_scale), 4, axis=k - 1))
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=2e-2, atol=2e-2)
    assert lax.scaled_dot(lhs, rhs).dtype == jnp.bfloat16  # no scales: products in bfloat16
    with pytest.raises(TypeError, match="multiple"):
        lax.scaled_dot(lhs, rhs, lhs_scale=lhs_scale[..., :1].repeat(3, -1))
    with pytest.raises(TypeError, match="0-rank and 1-rank"):
        lax.scaled_dot(np.ones(3), np.ones(3))
