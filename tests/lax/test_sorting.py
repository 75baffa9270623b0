"""sort / sort_key_val / top_k: values against numpy, derivatives against finite
differences (float64), vmap against Python loops, abstract-eval errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
from tinyjax import config, dtypes, lax
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=25, deadline=None)
DTYPES = ["float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool"]


@st.composite
def shape_dim(draw, max_rank=3, max_size=5):
    shape = tuple(draw(st.lists(st.integers(0, max_size), min_size=1, max_size=max_rank)))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def _values(rng, shape, dtype, nan=True):
    dtype = np.dtype(dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtypes.is_int(dtype):
        lo = 0 if dtypes.is_unsigned(dtype) else -3
        return rng.integers(lo, 4, shape).astype(dtype)
    x = rng.integers(-3, 4, shape).astype(np.float32)  # ties happen
    x[rng.random(shape) < 0.1] = 0.0
    x = np.where(rng.random(shape) < 0.5, x, -x)  # -0.0 and 0.0 both occur
    if nan and x.size:
        x[rng.random(shape) < 0.1] = np.nan
        x[rng.random(shape) < 0.05] = -np.nan
    return x.astype(dtype)


def _ref_sort_perm(keys, axis):
    """Stable lexicographic order with NaN last and -0.0 == 0.0 (JAX's sort)."""
    lex = []
    for k in reversed(keys):
        if dtypes.is_float(k.dtype):
            k = k.astype(np.float64)
            lex += [np.where(np.isnan(k), 0.0, k) + 0.0, np.isnan(k)]
        else:
            lex.append(k)
    return np.lexsort(lex, axis=axis)


def _bits(x):
    x = np.asarray(x)
    return x.view(f"u{x.dtype.itemsize}") if dtypes.is_float(x.dtype) else x


@SETTINGS
@given(shape_dim(), st.sampled_from(DTYPES), st.integers(0, 2**16))
def test_sort_values(sd, dtype, seed):
    shape, dim = sd
    x = _values(np.random.default_rng(seed), shape, dtype)
    out = lax.sort(x, dimension=dim)
    perm = _ref_sort_perm([x], dim % len(shape))
    expected = np.take_along_axis(x, perm, dim % len(shape))
    assert out.dtype == x.dtype and out.shape == x.shape
    # bit-exact: -0.0 and 0.0 keep their (stable) order, NaNs go last
    np.testing.assert_array_equal(_bits(out), _bits(expected))
    if dtypes.is_float(x.dtype):
        wide = np.asarray(out, np.float64)
        assert (np.diff(np.isnan(wide).astype(int), axis=dim) >= 0).all()


@SETTINGS
@given(shape_dim(max_rank=2), st.lists(st.sampled_from(DTYPES), min_size=2, max_size=3),
       st.integers(1, 3), st.integers(0, 2**16))
def test_sort_multiple_operands(sd, dts, num_keys, seed):
    shape, dim = sd
    num_keys = min(num_keys, len(dts))
    rng = np.random.default_rng(seed)
    xs = [_values(rng, shape, dt) for dt in dts]
    outs = lax.sort(xs, dimension=dim, num_keys=num_keys)
    assert isinstance(outs, tuple) and len(outs) == len(xs)
    perm = _ref_sort_perm(xs[:num_keys], dim % len(shape))
    for x, out in zip(xs, outs):
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(_bits(out), _bits(np.take_along_axis(x, perm,
                                                                            dim % len(shape))))


def test_sort_examples():
    x = np.array([np.nan, 2.0, -0.0, -np.inf, 0.0, 1.0, -np.nan], np.float32)
    out = np.asarray(lax.sort(x))
    np.testing.assert_array_equal(out[:5], [-np.inf, 0.0, 0.0, 1.0, 2.0])
    assert np.signbit(out[1]) and not np.signbit(out[2])  # stable: -0.0 stays first
    assert np.isnan(out[5:]).all()
    keys, vals = lax.sort_key_val(np.array([2, 1, 2, 0], np.int32),
                                  np.array([0.5, 1.5, 2.5, 3.5], np.float32))
    np.testing.assert_array_equal(keys, [0, 1, 2, 2])
    np.testing.assert_array_equal(vals, [3.5, 1.5, 0.5, 2.5])
    a, b = lax.sort((np.array([1, 0, 1, 0]), np.array([4, 3, 2, 1])), num_keys=2)
    np.testing.assert_array_equal(a, [0, 0, 1, 1])
    np.testing.assert_array_equal(b, [1, 3, 2, 4])


def test_sort_weak_types():
    w = lax.broadcast_in_dim(1.0, (3,), ())
    a, b = lax.sort((np.array([3, 1, 2], np.int32), w))
    assert not a.weak_type and b.weak_type


@pytest.mark.parametrize("call,exc,match", [
    (lambda: lax.sort([]), TypeError, "Sort requires at least one operand"),
    (lambda: lax.sort(np.ones(3), num_keys=2), ValueError,
     "num_keys=2 must equal 1 for a single operand"),
    (lambda: lax.sort((np.ones(3), np.ones(3)), num_keys=3), ValueError,
     r"num_keys=3 must be between 1 and len\(operand\)=2"),
    (lambda: lax.sort((np.ones(3), np.ones(4))), TypeError,
     r"Arguments to sort must have equal shapes, got: \(3,\) \(4,\)"),
    (lambda: lax.sort(np.ones((2, 3)), dimension=2), ValueError,
     "dimension 2 is out of bounds for array of dimension 2"),
    (lambda: lax.top_k(np.ones((2, 3)), 4), ValueError,
     r"k argument to top_k must be no larger than minor dimension; 4 vs \[2, 3\]"),
    (lambda: lax.top_k(np.ones((2, 3)), -1), ValueError,
     "k argument to top_k must be nonnegative, got -1"),
    (lambda: lax.top_k(np.float32(1), 1), TypeError,
     r"top_k operand must have >= 1 dimension, got \(\)"),
])
def test_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_sort_errors_under_tracing():
    with pytest.raises(TypeError, match="Arguments to sort must have equal shapes"):
        jax.make_jaxpr(lambda a, b: lax.sort((a, b)))(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match=r"sort: dimension 3 is out of bounds .* \(2, 3\)"):
        lax.sort_p.bind(jax.numpy.asarray(np.ones((2, 3))), dimension=3, is_stable=True,
                        num_keys=1)


def test_jaxpr_params():
    jaxpr = jax.make_jaxpr(lambda k, v: lax.sort_key_val(k, v, dimension=0))(
        np.ones((2, 3), np.float32), np.ones((2, 3), np.int32))
    assert "sort[dimension=0 is_stable=True num_keys=1]" in str(jaxpr)


# --- top_k -----------------------------------------------------------------

def _ref_top_k(x, k):
    """Descending IEEE total order (NaN first, +0.0 before -0.0), stable."""
    if x.dtype == np.bool_:
        key = x.astype(np.int64)
    elif dtypes.is_float(x.dtype):
        wide = x.astype(np.float64)
        key = np.where(np.isnan(wide), np.where(np.signbit(wide), -np.inf, np.inf), wide)
        rank = np.where(np.isnan(wide), np.where(np.signbit(wide), -2, 2), 0)
        zero_sign = np.where(wide == 0, np.where(np.signbit(wide), -1, 1), 0)
        idx = np.lexsort((-zero_sign, -key, -rank), axis=-1)[..., :k]
        return np.take_along_axis(x, idx, -1), idx
    else:
        key = x.astype(np.int64)
    idx = np.argsort(-key, axis=-1, kind="stable")[..., :k]
    return np.take_along_axis(x, idx, -1), idx


@SETTINGS
@given(shape_dim(), st.sampled_from(DTYPES), st.integers(0, 5), st.integers(0, 2**16))
def test_top_k_values(sd, dtype, k, seed):
    shape, _ = sd
    k = min(k, shape[-1])
    x = _values(np.random.default_rng(seed), shape, dtype)
    values, idx = lax.top_k(x, k)
    ref_values, ref_idx = _ref_top_k(x, k)
    assert values.dtype == x.dtype and idx.dtype == np.int32
    assert values.shape == shape[:-1] + (k,)
    np.testing.assert_array_equal(np.asarray(idx), ref_idx)
    np.testing.assert_array_equal(_bits(values), _bits(ref_values))


def test_top_k_examples():
    v, i = lax.top_k(np.array([1.0, np.nan, 3.0, 3.0, -0.0, 0.0], np.float32), 6)
    np.testing.assert_array_equal(i, [1, 2, 3, 0, 5, 4])
    v, i = lax.top_k(np.array([[5, 1, 5], [0, 7, 7]], np.int32), 2)
    np.testing.assert_array_equal(v, [[5, 5], [7, 7]])
    np.testing.assert_array_equal(i, [[0, 2], [1, 2]])


# --- derivatives -----------------------------------------------------------

@settings(max_examples=12, deadline=None)
@given(shape_dim(max_rank=2, max_size=5), st.integers(0, 2**16))
def test_sort_grads(sd, seed):
    shape, dim = sd
    x = np.random.default_rng(seed).standard_normal(shape)
    with config.enable_x64(True):
        check_grads(lambda x: lax.sort(x, dimension=dim), (x,), order=2)


@settings(max_examples=12, deadline=None)
@given(shape_dim(max_rank=2, max_size=5), st.integers(0, 2**16))
def test_sort_multi_operand_grads(sd, seed):
    shape, dim = sd
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 3, shape).astype(np.int32)   # ties broken by the second key
    k2, v = rng.standard_normal(shape), rng.standard_normal(shape)
    with config.enable_x64(True):
        check_grads(lambda k2, v: lax.sort((keys, k2, v), dimension=dim, num_keys=2),
                    (k2, v), order=2)
        check_grads(lambda v: lax.sort_key_val(keys, v, dimension=dim)[1], (v,), order=2)


def test_sort_grad_is_the_inverse_permutation():
    x = np.array([3.0, 1.0, 2.0, 0.5], np.float32)
    w = np.array([1.0, 10.0, 100.0, 1000.0], np.float32)
    grad = jax.grad(lambda x: lax.reduce_sum(lax.mul(lax.sort(x), w), (0,)))(x)
    np.testing.assert_array_equal(grad, [1000.0, 10.0, 100.0, 1.0])


@settings(max_examples=12, deadline=None)
@given(shape_dim(max_rank=3, max_size=5), st.integers(0, 5), st.integers(0, 2**16))
def test_top_k_grads(sd, k, seed):
    shape, _ = sd
    k = min(k, shape[-1])
    x = np.random.default_rng(seed).standard_normal(shape)
    with config.enable_x64(True):
        check_grads(lambda x: lax.top_k(x, k)[0], (x,), order=2)


def test_top_k_grad_picks_the_chosen_positions():
    x = np.array([[1.0, 4.0, 3.0, 4.0]], np.float32)
    grad = jax.grad(lambda x: lax.reduce_sum(lax.mul(lax.top_k(x, 2)[0],
                                                     np.array([[1.0, 10.0]], np.float32)),
                                             (0, 1)))(x)
    np.testing.assert_array_equal(grad, [[0.0, 1.0, 0.0, 10.0]])


# --- vmap ------------------------------------------------------------------

@SETTINGS
@given(shape_dim(max_rank=2, max_size=4), st.sampled_from(["float32", "int32"]),
       st.lists(st.sampled_from([0, 1, 2, None]), min_size=2, max_size=2),
       st.integers(0, 2**16))
def test_sort_vmap(sd, dtype, in_axes, seed):
    shape, dim = sd
    rng = np.random.default_rng(seed)
    if in_axes == [None, None]:
        in_axes = [0, None]
    in_axes = [None if a is None else a % (len(shape) + 1) for a in in_axes]
    args = [_values(rng, shape if a is None else shape[:a] + (3,) + shape[a:], dtype)
            for a in in_axes]

    def f(a, b):
        return lax.sort((a, b), dimension=dim, num_keys=1)
    outs = jax.vmap(f, in_axes=tuple(in_axes))(*args)
    for j in range(2):
        loop = np.stack([np.asarray(f(*[x if a is None else np.take(x, i, axis=a)
                                        for x, a in zip(args, in_axes)])[j])
                         for i in range(3)])
        np.testing.assert_array_equal(_bits(outs[j]), _bits(loop))


@SETTINGS
@given(shape_dim(max_rank=2, max_size=4), st.integers(0, 4), st.integers(0, 2),
       st.integers(0, 2**16))
def test_top_k_vmap(sd, k, in_axis, seed):
    shape, _ = sd
    k = min(k, shape[-1])
    in_axis = in_axis % (len(shape) + 1)
    x = _values(np.random.default_rng(seed), shape[:in_axis] + (3,) + shape[in_axis:],
                "float32")
    values, idx = jax.vmap(lambda v: lax.top_k(v, k), in_axes=in_axis)(x)
    for out, j in ((values, 0), (idx, 1)):
        loop = np.stack([np.asarray(lax.top_k(np.take(x, i, axis=in_axis), k)[j])
                         for i in range(3)])
        np.testing.assert_array_equal(_bits(out), _bits(loop))


@settings(max_examples=8, deadline=None)
@given(st.integers(1, 3), st.integers(0, 2**16))
def test_vmap_of_grad(k, seed):
    x = np.random.default_rng(seed).standard_normal((3, 4))

    def f(v):
        return lax.add(lax.reduce_sum(lax.mul(lax.top_k(v, k)[0], lax.top_k(v, k)[0]), (0,)),
                       lax.reduce_sum(lax.mul(lax.sort(v), v), (0,)))
    with config.enable_x64(True):
        out = jax.vmap(jax.grad(f))(x)
        loop = np.stack([np.asarray(jax.grad(f)(x[i])) for i in range(3)])
    np.testing.assert_allclose(np.asarray(out), loop, rtol=1e-12)
