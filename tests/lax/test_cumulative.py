"""Cumulative reductions: values against numpy, derivatives against finite
differences (float64), vmap against Python loops, abstract-eval errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
from tinyjax import config, dtypes, lax
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=25, deadline=None)


def _np_cum(ufunc, x, axis, reverse):
    work = x.astype(np.float32) if x.dtype in (np.float16, dtypes.bfloat16) else x
    if reverse:
        work = np.flip(work, axis)
    with np.errstate(all="ignore"):
        out = ufunc.accumulate(work, axis=axis, dtype=work.dtype)
    return np.flip(out, axis) if reverse else out


OPS = {lax.cumsum: np.add, lax.cumprod: np.multiply, lax.cummax: np.maximum,
       lax.cummin: np.minimum, lax.cumlogsumexp: np.logaddexp}


@st.composite
def shape_axis(draw, max_rank=3, max_size=5, min_size=0):
    shape = tuple(draw(st.lists(st.integers(min_size, max_size), min_size=1,
                                max_size=max_rank)))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def _values(rng, shape, dtype, nan=False):
    dtype = np.dtype(dtype)
    if dtypes.is_int(dtype):
        lo = 0 if dtypes.is_unsigned(dtype) else -3
        return rng.integers(lo, 4, shape).astype(dtype)
    x = rng.integers(-3, 4, shape).astype(dtype)
    if nan and x.size:
        x[rng.random(shape) < 0.15] = np.nan
    return x


@SETTINGS
@given(shape_axis(), st.sampled_from(list(OPS)), st.sampled_from(
    ["float32", "float64", "float16", "int32", "int8", "uint8"]), st.booleans(),
    st.booleans(), st.integers(0, 2**16))
def test_cumulative_values(sa, op, dtype, reverse, nan, seed):
    shape, axis = sa
    if op is lax.cumlogsumexp and "int" in dtype:
        dtype = "float32"
    with config.enable_x64(True):
        x = _values(np.random.default_rng(seed), shape, dtype, nan)
        out = op(x, axis=axis, reverse=reverse)
        expected = _np_cum(OPS[op], x, axis % len(shape), reverse).astype(x.dtype)
        assert out.dtype == x.dtype and out.shape == x.shape
        tol = 1e-2 if dtype == "float16" else 1e-6
        np.testing.assert_allclose(np.asarray(out, np.float64), expected.astype(np.float64),
                                   rtol=tol, atol=tol)


def test_cumulative_examples():
    x = np.array([3.0, 1.0, np.nan, 5.0, 0.0], np.float32)
    np.testing.assert_array_equal(lax.cummax(x), [3, 3, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(lax.cummin(x, reverse=True), [np.nan, np.nan, np.nan, 0, 0])
    np.testing.assert_array_equal(lax.cumsum(np.array([1, 2, 3], np.int8), reverse=True),
                                  [6, 5, 3])
    np.testing.assert_array_equal(lax.cumprod(np.array([100, 3], np.int8)),
                                  np.array([100, 300], np.int64).astype(np.int8))
    np.testing.assert_allclose(lax.cumlogsumexp(np.array([-np.inf, 0.0, 0.0], np.float32)),
                               [-np.inf, 0, np.log(2)], rtol=1e-6)


def test_weak_type_and_bf16():
    assert lax.cumsum(lax.broadcast_in_dim(2.0, (3,), ())).weak_type is True
    assert lax.cumsum(np.ones(3, np.float32)).weak_type is False
    y = lax.cumsum(np.ones(300, dtypes.bfloat16))
    assert y.dtype == dtypes.bfloat16 and float(np.asarray(y, np.float32)[-1]) == 300.0


@pytest.mark.parametrize("op,dtype,match", [
    (lax.cumsum, np.bool_, "cumsum does not accept dtype bool. Accepted dtypes are "
                           "subtypes of number"),
    (lax.cummax, np.bool_, "cummax does not accept dtype bool"),
    (lax.cumlogsumexp, np.int32, "cumlogsumexp does not accept dtype int32. Accepted "
                                 "dtypes are subtypes of floating"),
])
def test_dtype_errors(op, dtype, match):
    with pytest.raises(TypeError, match=match):
        op(np.zeros(3, dtype))
    with pytest.raises(TypeError, match=match):
        jax.make_jaxpr(op)(np.zeros(3, dtype))


@pytest.mark.parametrize("axis", [2, -3])
def test_axis_errors(axis):
    with pytest.raises(ValueError, match=r"cumprod: axis -?\d+ is out of bounds for array of "
                                         r"shape \(2, 3\)"):
        lax.cumprod(np.ones((2, 3), np.float32), axis=axis)
    with pytest.raises(ValueError, match=r"cumsum: axis .* out of bounds .* shape \(\)"):
        jax.make_jaxpr(lax.cumsum)(np.float32(1))


def test_jaxpr_params():
    jaxpr = jax.make_jaxpr(lambda x: lax.cummax(x, axis=-1, reverse=True))(np.ones((2, 3)))
    assert "cummax[axis=1 reverse=True]" in str(jaxpr)


# --- derivatives -----------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(shape_axis(max_rank=2, max_size=6), st.sampled_from(list(OPS)), st.booleans(),
       st.integers(0, 2**16))
def test_cumulative_grads(sa, op, reverse, seed):
    shape, axis = sa
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)  # distinct values: cummax/cummin are differentiable
    with config.enable_x64(True):
        check_grads(lambda x: op(x, axis=axis, reverse=reverse), (x,), order=2)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumprod_grads_with_zeros(reverse):
    x = np.array([[2.0, 0.0, 3.0, -1.5, 0.0], [0.5, 1.5, 0.0, 2.0, -1.0]])
    with config.enable_x64(True):
        check_grads(lambda x: lax.cumprod(x, axis=1, reverse=reverse), (x,), order=2)
        # the exact Jacobian: d y_i / d x_j = prod_{k <= i, k != j} x_k  (j <= i)
        jac = jax.jacfwd(lambda v: lax.cumprod(v, reverse=reverse))(x[0])
    v = x[0][::-1] if reverse else x[0]
    expected = np.zeros((5, 5))
    for i in range(5):
        for j in range(i + 1):
            expected[i, j] = np.prod(np.delete(v[:i + 1], j))
    if reverse:
        expected = expected[::-1, ::-1]
    np.testing.assert_allclose(np.asarray(jac), expected)


def test_cummax_jvp_follows_running_argmax():
    x = np.array([1.0, 3.0, 2.0, 3.0, 5.0, 4.0], np.float32)
    t = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], np.float32)
    _, out = jax.jvp(lambda x: lax.cummax(x), (x,), (t,))
    np.testing.assert_array_equal(out, [10, 20, 20, 20, 50, 50])  # ties: the first
    _, out = jax.jvp(lambda x: lax.cummin(x, reverse=True), (x,), (t,))
    np.testing.assert_array_equal(out, [10, 30, 30, 40, 60, 60])
    _, out = jax.jvp(lambda x: lax.cummax(x), (np.array([-np.inf, -np.inf, 1.0]),),
                     (np.array([1.0, 2.0, 3.0]),))
    np.testing.assert_array_equal(out, [1, 1, 3])


def test_cumlogsumexp_jvp_with_neg_inf():
    x = np.array([-np.inf, -np.inf, 0.0, 1.0], np.float32)
    t = np.ones(4, np.float32)
    _, out = jax.jvp(lambda x: lax.cumlogsumexp(x), (x,), (t,))
    np.testing.assert_allclose(out, [0, 0, 1, 1], rtol=1e-6)


def test_cumsum_transpose_is_reverse_cumsum():
    x = np.arange(5.0, dtype=np.float32)
    ct = np.array([1.0, 0.0, 2.0, 0.0, 3.0], np.float32)
    for reverse in (False, True):
        _, pullback = jax.vjp(lambda v: lax.cumsum(v, reverse=reverse), x)
        np.testing.assert_array_equal(pullback(ct)[0], _np_cum(np.add, ct, 0, not reverse))


def test_int_operand_has_zero_tangent():
    x = np.array([1, 2, 3], np.int32)
    _, t = jax.jvp(lambda v: lax.cummax(v), (x,), (np.zeros(3, dtypes.float0),))
    assert t.dtype == dtypes.float0


# --- vmap ------------------------------------------------------------------

@SETTINGS
@given(shape_axis(max_rank=2, max_size=4), st.sampled_from(list(OPS)), st.booleans(),
       st.integers(0, 2), st.integers(0, 2**16))
def test_cumulative_vmap(sa, op, reverse, in_axis, seed):
    shape, axis = sa
    in_axis = in_axis % (len(shape) + 1)
    x = _values(np.random.default_rng(seed), shape[:in_axis] + (3,) + shape[in_axis:],
                np.float32)
    out = jax.vmap(lambda v: op(v, axis=axis, reverse=reverse), in_axes=in_axis)(x)
    loop = np.stack([np.asarray(op(np.take(x, i, axis=in_axis), axis=axis, reverse=reverse))
                     for i in range(3)])
    np.testing.assert_allclose(np.asarray(out), loop, rtol=1e-6)


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(list(OPS)), st.booleans(), st.integers(0, 2**16))
def test_vmap_of_grad(op, reverse, seed):
    x = np.random.default_rng(seed).standard_normal((3, 4))

    def f(v):
        return lax.reduce_sum(lax.mul(op(v, reverse=reverse), v), (0,))
    with config.enable_x64(True):
        out = jax.vmap(jax.grad(f), in_axes=1, out_axes=1)(x)
        loop = np.stack([np.asarray(jax.grad(f)(x[:, i])) for i in range(4)], 1)
    np.testing.assert_allclose(np.asarray(out), loop, rtol=1e-10)
