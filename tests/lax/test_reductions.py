"""Reductions: reduce_sum/prod/max/min/and/or/xor and argmax/argmin against numpy,
their derivatives against finite differences, vmap against Python loops."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
from tinyjax import config, dtypes, lax
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=25, deadline=None)


@st.composite
def shape_and_axes(draw, min_rank=0, max_rank=3, max_size=4):
    shape = tuple(draw(st.lists(st.integers(0, max_size), min_size=min_rank,
                                max_size=max_rank)))
    axes = draw(st.lists(st.integers(0, max(len(shape) - 1, 0)), unique=True,
                         max_size=len(shape)))
    return shape, tuple(axes)


def _values(rng, shape, dtype, nan=False):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtypes.is_int(dtype):
        lo = 0 if dtypes.is_unsigned(dtype) else -5
        return rng.integers(lo, 6, shape).astype(dtype)
    x = rng.integers(-4, 5, shape).astype(dtype)  # small integers: ties happen
    if nan and x.size:
        x[rng.random(shape) < 0.2] = np.nan
    return x


NUMPY_REDUCTIONS = {
    lax.reduce_sum: lambda x, a: np.sum(x, axis=a, dtype=x.dtype),
    lax.reduce_prod: lambda x, a: np.prod(x, axis=a, dtype=x.dtype),
    lax.reduce_max: lambda x, a: np.max(x, axis=a, initial=_lowest(x.dtype)),
    lax.reduce_min: lambda x, a: np.min(x, axis=a, initial=_highest(x.dtype)),
}
BIT_REDUCTIONS = {
    lax.reduce_and: lambda x, a: np.logical_and.reduce(x, axis=a) if x.dtype == bool
    else np.bitwise_and.reduce(x, axis=a),
    lax.reduce_or: lambda x, a: np.logical_or.reduce(x, axis=a) if x.dtype == bool
    else np.bitwise_or.reduce(x, axis=a),
    lax.reduce_xor: lambda x, a: np.logical_xor.reduce(x, axis=a) if x.dtype == bool
    else np.bitwise_xor.reduce(x, axis=a),
}


def _lowest(dt):
    return -np.inf if dtypes.is_float(dt) else np.iinfo(dt).min


def _highest(dt):
    return np.inf if dtypes.is_float(dt) else np.iinfo(dt).max


@SETTINGS
@given(shape_and_axes(), st.sampled_from(["float32", "int32", "int8", "uint8"]),
       st.sampled_from(list(NUMPY_REDUCTIONS)), st.integers(0, 2**16))
def test_reduce_values(sa, dtype, op, seed):
    shape, axes = sa
    x = _values(np.random.default_rng(seed), shape, dtype, nan=op is not lax.reduce_sum)
    out = op(x, axes)
    expected = NUMPY_REDUCTIONS[op](x, axes)
    assert out.dtype == x.dtype and out.shape == expected.shape
    np.testing.assert_array_equal(np.asarray(out), expected)


@SETTINGS
@given(shape_and_axes(), st.sampled_from(["bool", "int32", "uint8"]),
       st.sampled_from(list(BIT_REDUCTIONS)), st.integers(0, 2**16))
def test_bitwise_reduce_values(sa, dtype, op, seed):
    shape, axes = sa
    x = _values(np.random.default_rng(seed), shape, dtype)
    out = op(x, axes)
    expected = BIT_REDUCTIONS[op](x, axes)
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_reduce_negative_axes_and_weak_type():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(lax.reduce_sum(x, (-1,)), [3, 12])
    assert lax.reduce_max(2.0, ()).weak_type
    assert not lax.reduce_max(np.float32(2.0), ()).weak_type


@pytest.mark.parametrize("op,dtype,match", [
    (lax.reduce_sum, np.bool_, "reduce_sum does not accept dtype bool"),
    (lax.reduce_prod, np.bool_, "reduce_prod does not accept dtype bool"),
    (lax.reduce_and, np.float32, "reduce_and does not accept dtype float32"),
    (lax.reduce_xor, np.float32, "reduce_xor does not accept dtype float32"),
])
def test_reduce_dtype_errors(op, dtype, match):
    with pytest.raises(TypeError, match=match):
        op(np.zeros((2, 3), dtype), (0,))


def test_reduce_axes_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"reduce_sum: reduction axes \(0, 0\)"):
        lax.reduce_sum_p.bind(jax.numpy.asarray(x), axes=(0, 0), out_sharding=None)
    with pytest.raises(ValueError, match=r"reduce_max: reduction axes \(2,\) .* \(2, 3\)"):
        lax.reduce_max_p.bind(jax.numpy.asarray(x), axes=(2,), out_sharding=None)


# --- derivatives -----------------------------------------------------------

@settings(max_examples=10, deadline=None)
@given(shape_and_axes(min_rank=1, max_size=3), st.sampled_from(
    [lax.reduce_sum, lax.reduce_max, lax.reduce_min, lax.reduce_prod]), st.integers(0, 2**16))
def test_reduce_grads(sa, op, seed):
    shape, axes = sa
    rng = np.random.default_rng(seed)
    if op in (lax.reduce_max, lax.reduce_min):  # the max of nothing has no derivative
        shape = tuple(max(d, 1) for d in shape)
    x = rng.standard_normal(shape)  # distinct values: max/min are differentiable
    with config.enable_x64(True):
        check_grads(lambda x: op(x, axes), (x,), order=2)


@pytest.mark.parametrize("x", [
    [[2.0, 0.0, 3.0], [1.5, -2.0, 0.5]],   # one zero
    [[0.0, 0.0, 3.0], [1.5, -2.0, 0.5]],   # two zeros
    [[0.0, 1.0, 3.0], [1.5, 0.0, 0.5]],    # a zero in each row
])
@pytest.mark.parametrize("axes", [(0, 1), (1,), (0,)])
def test_reduce_prod_grad_with_zeros(x64, x, axes):
    x = np.array(x)
    check_grads(lambda x: lax.reduce_prod(x, axes), (x,), order=2)
    kept = tuple(d for d in range(2) if d not in axes)
    grad = jax.grad(lambda x: lax.reduce_sum(lax.reduce_prod(x, axes),
                                           tuple(range(len(kept)))))(x)
    expected = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        others = x.copy()
        others[idx] = 1.0  # d prod / d x_i = the product of the rest of x_i's group
        expected[idx] = np.prod(others, axis=axes)[tuple(idx[d] for d in kept)]
    np.testing.assert_allclose(np.asarray(grad), expected)


def test_reduce_max_ties_split_the_gradient():
    x = np.array([1.0, 3.0, 3.0, 2.0], np.float32)
    np.testing.assert_allclose(jax.grad(lambda x: lax.reduce_max(x, (0,)))(x),
                               [0, 0.5, 0.5, 0])
    np.testing.assert_allclose(jax.grad(lambda x: lax.reduce_min(x, (0,)))(
        np.array([1.0, 1.0, 1.0, 2.0], np.float32)), [1 / 3, 1 / 3, 1 / 3, 0], rtol=1e-6)


# --- vmap ------------------------------------------------------------------

ALL_REDUCTIONS = list(NUMPY_REDUCTIONS) + list(BIT_REDUCTIONS)


@SETTINGS
@given(shape_and_axes(min_rank=1, max_size=3), st.sampled_from(ALL_REDUCTIONS),
       st.integers(0, 3), st.integers(0, 2**16))
def test_reduce_vmap(sa, op, in_axis, seed):
    shape, axes = sa
    in_axis = in_axis % (len(shape) + 1)
    dtype = "int32" if op in BIT_REDUCTIONS else "float32"
    full_shape = shape[:in_axis] + (3,) + shape[in_axis:]
    x = _values(np.random.default_rng(seed), full_shape, dtype)
    out = jax.vmap(lambda v: op(v, axes), in_axes=in_axis)(x)
    loop = np.stack([np.asarray(op(np.take(x, i, axis=in_axis), axes)) for i in range(3)])
    np.testing.assert_array_equal(np.asarray(out), loop)


# --- argmax / argmin -------------------------------------------------------

@SETTINGS
@given(shape_and_axes(min_rank=1, max_size=4), st.sampled_from(
    ["float32", "float16", "bfloat16", "int32", "uint8", "bool"]),
    st.booleans(), st.integers(0, 2**16))
def test_argminmax_values(sa, dtype, is_max, seed):
    shape, _ = sa
    shape = tuple(max(d, 1) for d in shape)
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(0, len(shape)))
    x = _values(rng, shape, np.float32 if "float" in dtype else dtype, nan=True)
    x = x.astype(dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    op, ref = (lax.argmax, np.argmax) if is_max else (lax.argmin, np.argmin)
    out = op(x, axis, np.int32)
    # numpy: the first NaN wins, else the first of equal extrema (as JAX)
    expected = ref(x.astype(np.float32) if "float" in dtype else x, axis=axis)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_argminmax_nan_and_ties():
    x = np.array([1.0, np.nan, 3.0, np.nan, 3.0], np.float32)
    assert int(lax.argmax(x, 0, np.int32)) == 1
    assert int(lax.argmin(x, 0, np.int32)) == 1
    y = np.array([0.0, 3.0, -0.0, 3.0, -1.0, -1.0], np.float32)
    assert int(lax.argmax(y, 0, np.int32)) == 1
    assert int(lax.argmin(y, 0, np.int32)) == 4
    assert int(lax.argmax(np.array([-0.0, 0.0]), 0, np.int32)) == 0


def test_argminmax_index_dtype_and_negative_axis(x64):
    x = np.arange(12.0).reshape(3, 4)
    out = lax.argmax(x, -1, np.int64)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [3, 3, 3])
    assert lax.argmin(x, 0, np.uint8).dtype == np.uint8


def test_argmax_index_dtype_canonicalized():
    assert lax.argmax(np.ones(3, np.float32), 0, np.int64).dtype == np.int32


@pytest.mark.parametrize("args,exc,match", [
    ((np.zeros((2, 0), np.float32), 1, np.int32), ValueError,
     "argmin and argmax require non-empty reduction dimension"),
    ((np.zeros((2, 3), np.float32), 2, np.int32), ValueError,
     r"argmax: invalid axis 2 for operand shape \(2, 3\)"),
    ((np.zeros((2, 3), np.float32), 0, np.float32), TypeError,
     "index_dtype must be an integer type, but got float32"),
])
def test_argmax_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        lax.argmax(*args)


def test_argmax_jvp_is_zero(x64):
    x = np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]])
    out, t = jax.jvp(lambda x: lax.argmax(x, 1, np.int32), (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(out, [1, 0])
    assert t.dtype == dtypes.float0


@SETTINGS
@given(shape_and_axes(min_rank=1, max_size=3), st.booleans(), st.integers(0, 3),
       st.integers(0, 2**16))
def test_argminmax_vmap(sa, is_max, in_axis, seed):
    shape, _ = sa
    shape = tuple(max(d, 1) for d in shape)
    rng = np.random.default_rng(seed)
    axis = int(rng.integers(0, len(shape)))
    in_axis = in_axis % (len(shape) + 1)
    x = _values(rng, shape[:in_axis] + (3,) + shape[in_axis:], np.float32, nan=True)
    op = lax.argmax if is_max else lax.argmin
    out = jax.vmap(lambda v: op(v, axis, np.int32), in_axes=in_axis)(x)
    loop = np.stack([np.asarray(op(np.take(x, i, axis=in_axis), axis, np.int32))
                     for i in range(3)])
    np.testing.assert_array_equal(np.asarray(out), loop)


def test_argmax_in_jaxpr():
    jaxpr = jax.make_jaxpr(lambda x: lax.argmax(x, 0, np.int32))(np.ones(3, np.float32))
    assert "argmax[axes=(0,) index_dtype=int32]" in str(jaxpr)
