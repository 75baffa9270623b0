"""tinyjax.nn activations: values against numpy formulas, derivatives against finite
differences and at the kinks, finiteness at extreme inputs, softmax family, one_hot."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import nn
from tinyjax.test_util import check_grads


_erf = np.vectorize(math.erf)
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _np_sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) /
                    (1 + np.exp(-np.abs(x))))


def _np_softplus(x):
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def _np_elu(x, a=1.0):
    return np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))


REFS = {
    "relu": (nn.relu, lambda x: np.maximum(x, 0)),
    "relu6": (nn.relu6, lambda x: np.clip(x, 0, 6)),
    "leaky_relu": (nn.leaky_relu, lambda x: np.where(x >= 0, x, 0.01 * x)),
    "elu": (nn.elu, _np_elu),
    "selu": (nn.selu, lambda x: SELU_SCALE * _np_elu(x, SELU_ALPHA)),
    "celu": (lambda x: nn.celu(x, 0.5),
             lambda x: np.maximum(x, 0) + 0.5 * np.expm1(np.minimum(x, 0) / 0.5)),
    "gelu_tanh": (nn.gelu, lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) *
                                                            (x + 0.044715 * x ** 3)))),
    "gelu_erf": (lambda x: nn.gelu(x, approximate=False),
                 lambda x: 0.5 * x * (1 + _erf(x / np.sqrt(2)))),
    "silu": (nn.silu, lambda x: x * _np_sigmoid(x)),
    "swish": (nn.swish, lambda x: x * _np_sigmoid(x)),
    "sigmoid": (nn.sigmoid, _np_sigmoid),
    "log_sigmoid": (nn.log_sigmoid, lambda x: -_np_softplus(-x)),
    "softplus": (nn.softplus, _np_softplus),
    "soft_sign": (nn.soft_sign, lambda x: x / (np.abs(x) + 1)),
    "hard_tanh": (nn.hard_tanh, lambda x: np.clip(x, -1, 1)),
    "hard_sigmoid": (nn.hard_sigmoid, lambda x: np.clip(x + 3, 0, 6) / 6),
    "hard_silu": (nn.hard_silu, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    "mish": (nn.mish, lambda x: x * np.tanh(_np_softplus(x))),
    "squareplus": (nn.squareplus, lambda x: (x + np.sqrt(x * x + 4)) / 2),
}
X = np.array([-7.5, -3.0, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 6.5, 9.0], np.float32)


@pytest.mark.parametrize("name", sorted(REFS))
def test_activation_values(name):
    fn, ref = REFS[name]
    out = fn(X)
    assert out.dtype == np.float32 and out.shape == X.shape
    np.testing.assert_allclose(out, ref(X.astype(np.float64)), rtol=2e-6, atol=2e-7)
    np.testing.assert_allclose(jax.jit(fn)(X), out, rtol=1e-6, atol=1e-7)


SMOOTH = ["elu", "selu", "celu", "gelu_tanh", "gelu_erf", "silu", "sigmoid", "log_sigmoid",
          "softplus", "soft_sign", "mish", "squareplus", "leaky_relu", "relu", "relu6",
          "hard_tanh", "hard_sigmoid", "hard_silu"]


@pytest.mark.parametrize("name", SMOOTH)
def test_activation_grads(x64, name):
    fn, _ = REFS[name]
    # points away from the kinks (0, +-1, -3, 3, 6) so finite differences apply
    x = np.array([-4.2, -2.1, -0.7, 0.45, 1.6, 4.1, 7.3])
    check_grads(fn, (x,), order=2)


@pytest.mark.parametrize("name", sorted(REFS))
def test_grads_finite_at_extremes(name):
    fn, _ = REFS[name]
    x = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4], np.float32)
    out = fn(x)
    g = jax.vmap(jax.grad(fn))(x)
    assert np.all(np.isfinite(out)), out
    assert np.all(np.isfinite(g)), g


def test_derivatives_at_kinks_match_jax():
    # relu and relu6 have custom rules: derivative 0 at the kinks
    assert jax.grad(nn.relu)(0.0) == 0.0
    assert jax.grad(nn.relu6)(0.0) == 0.0 and jax.grad(nn.relu6)(6.0) == 0.0
    assert jax.grad(nn.relu)(1e-30) == 1.0
    assert jax.grad(nn.leaky_relu)(0.0) == 1.0  # x >= 0 branch
    assert jax.grad(nn.elu)(0.0) == 1.0  # alpha * exp(0) on the x <= 0 side
    assert jax.grad(nn.hard_tanh)(1.0) == 1.0
    np.testing.assert_allclose(jax.grad(nn.gelu)(0.0), 0.5)
    np.testing.assert_allclose(jax.grad(nn.softplus)(0.0), 0.5)
    np.testing.assert_allclose(jax.grad(nn.log_sigmoid)(-1e4), 1.0)
    np.testing.assert_allclose(jax.grad(nn.log_sigmoid)(1e4), 0.0)
    # the jvp of relu under vmap and jit too
    g = jax.jit(jax.vmap(jax.grad(nn.relu)))(jnp.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 1.0])


def test_activation_stability():
    big = np.float32(1e4)
    assert nn.softplus(big) == big and nn.softplus(-big) == 0.0
    assert nn.log_sigmoid(-big) == -big
    assert nn.sigmoid(-big) == 0.0 and nn.sigmoid(big) == 1.0
    assert nn.elu(-big) == -1.0
    np.testing.assert_allclose(nn.selu(-big), -SELU_SCALE * SELU_ALPHA, rtol=1e-6)


def test_activation_dtypes_and_int_inputs():
    assert nn.relu(np.arange(3)).dtype == np.int32
    assert nn.sigmoid(np.arange(3)).dtype == np.float32
    assert nn.gelu(np.arange(3)).dtype == np.float32
    x16 = np.array([0.5, -1.0], np.float16)
    for fn in (nn.relu, nn.gelu, nn.silu, nn.softplus, nn.elu):
        assert fn(x16).dtype == np.float16


def test_glu():
    x = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(nn.glu(x), x[:, :4] * _np_sigmoid(x[:, 4:]), rtol=1e-6)
    np.testing.assert_allclose(nn.glu(x.T, axis=0), (x[:, :4] * _np_sigmoid(x[:, 4:])).T,
                               rtol=1e-6)
    with pytest.raises(AssertionError, match="divisible by 2"):
        nn.glu(np.ones((3, 5)))


# ---------------------------------------------------------------------------
# softmax family
# ---------------------------------------------------------------------------

def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_softmax_log_softmax_match_numpy(shape, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.integers(-ndim, ndim - 1),
                               st.just(tuple(range(ndim)))))
    x = np.random.default_rng(1).normal(size=shape).astype(np.float32) * 5
    ref = _np_softmax(x.astype(np.float64), axis)
    np.testing.assert_allclose(nn.softmax(x, axis=axis), ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(nn.log_softmax(x, axis=axis), np.log(ref), rtol=1e-5,
                               atol=1e-5)


def test_softmax_extremes():
    x = jnp.array([1e4, 0.0, -1e4], np.float32)
    np.testing.assert_allclose(nn.softmax(x), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(nn.log_softmax(x), [0.0, -1e4, -2e4])
    for fn in (lambda x: nn.softmax(x)[1], lambda x: nn.log_softmax(x)[1],
               lambda x: nn.logsumexp(x)):
        g = jax.grad(fn)(x)
        assert np.all(np.isfinite(g)), g
    # -inf entries (masking by value) are fine too
    y = jnp.array([0.0, -np.inf, 1.0], np.float32)
    np.testing.assert_allclose(nn.softmax(y), _np_softmax(np.array([0.0, -np.inf, 1.0])),
                               rtol=1e-6)


def test_softmax_grads(x64):
    x = np.random.default_rng(2).normal(size=(3, 4))
    check_grads(lambda x: nn.softmax(x, axis=1), (x,), order=2)
    check_grads(lambda x: nn.softmax(x, axis=0), (x,), order=1)
    check_grads(lambda x: nn.log_softmax(x), (x,), order=2)
    check_grads(lambda x: nn.log_softmax(x, axis=(0, 1)), (x,), order=1)


def test_softmax_where():
    x = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]], np.float32)
    where = np.array([[True, False, True], [True, True, False]])
    out = nn.softmax(x, where=where)
    ref = np.where(where, np.exp(x), 0)
    ref = ref / ref.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    lout = nn.log_softmax(x, where=where)
    log_ref = np.where(where, np.log(np.where(where, ref, 1)), 0)
    np.testing.assert_allclose(np.where(where, lout, 0), log_ref, rtol=1e-6)
    assert np.all(np.asarray(lout)[~where] == -np.inf)
    # derivatives ignore the masked entries
    g = jax.grad(lambda x: jnp.sum(nn.softmax(x, where=where)[:, 0] * 2.0))(x)
    assert np.all(np.asarray(g)[~where] == 0)
    eps = 1e-3
    fd = (nn.softmax(x + np.array([[eps, 0, 0], [0, 0, 0]], np.float32), where=where)[0, 0] -
          nn.softmax(x - np.array([[eps, 0, 0], [0, 0, 0]], np.float32), where=where)[0, 0]
          ) / (2 * eps)
    np.testing.assert_allclose(g[0, 0] / 2.0, fd, rtol=1e-2)


def test_softmax_under_vmap_and_jit():
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(jax.vmap(nn.softmax)(x), _np_softmax(x), rtol=1e-6)
    np.testing.assert_allclose(jax.jit(nn.log_softmax)(x), np.log(_np_softmax(x)),
                               rtol=1e-5, atol=1e-6)
    g = jax.jit(jax.grad(lambda x: nn.log_softmax(x)[:, 0].sum()))(x)
    np.testing.assert_allclose(g, (np.eye(4)[0] - _np_softmax(x)) * 1.0, rtol=1e-5,
                               atol=1e-6)


def test_logsumexp_reexport():
    from tinyjax.scipy.special import logsumexp
    assert nn.logsumexp is logsumexp


def test_standardize():
    x = np.random.default_rng(4).normal(size=(4, 6)).astype(np.float32) * 3 + 1
    out = np.asarray(nn.standardize(x))
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    out0 = nn.standardize(x, axis=0, mean=0.0, variance=4.0, epsilon=0.0)
    np.testing.assert_allclose(out0, x / 2, rtol=1e-6)
    where = x > 0
    outw = nn.standardize(x, axis=None, where=where)
    xs = x[where]
    np.testing.assert_allclose(np.asarray(outw)[where],
                               (xs - xs.mean()) / np.sqrt(xs.var() + 1e-5), rtol=1e-4,
                               atol=1e-5)


# ---------------------------------------------------------------------------
# one_hot
# ---------------------------------------------------------------------------

def test_one_hot():
    x = np.array([0, 2, 1, 5, -1])
    out = nn.one_hot(x, 3)
    assert out.dtype == np.float32 and out.shape == (5, 3)
    np.testing.assert_array_equal(out, (x[:, None] == np.arange(3)).astype(np.float32))
    out0 = nn.one_hot(np.array([[0, 1], [2, 2]]), 3, axis=0, dtype=jnp.int32)
    assert out0.dtype == np.int32 and out0.shape == (3, 2, 2)
    np.testing.assert_array_equal(out0, np.moveaxis(np.eye(3, dtype=np.int32)[[[0, 1],
                                                                                [2, 2]]],
                                                    -1, 0))
    out1 = nn.one_hot(np.array([[0, 1], [2, 2]]), 4, axis=1)
    assert out1.shape == (2, 4, 2)
    np.testing.assert_array_equal(out1[1, :, 0], [0, 0, 1, 0])
    assert nn.one_hot(2, 4).shape == (4,)
    assert nn.one_hot(np.array([1, 0]), 2, dtype=jnp.bool_).dtype == np.bool_
    np.testing.assert_array_equal(jax.jit(lambda x: nn.one_hot(x, 3))(x), out)
    np.testing.assert_array_equal(jax.vmap(lambda x: nn.one_hot(x, 3))(x), out)


def test_one_hot_errors():
    with pytest.raises(ValueError, match="out of bounds"):
        nn.one_hot(np.array([1, 2]), 3, axis=2)
    with pytest.raises(TypeError, match="num_classes"):
        nn.one_hot(np.array([1, 2]), 3.5)


def test_one_hot_x64(x64):
    assert nn.one_hot(np.array([1]), 2).dtype == np.float64
