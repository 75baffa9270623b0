"""tinyjax.scipy.special: values against numpy/math references (and scipy where it is
installed), derivatives against finite differences, stability in the tails."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.scipy import special
from tinyjax.test_util import check_grads

try:
    import scipy.special as sps
except ImportError:  # pragma: no cover - depends on the environment
    sps = None
needs_scipy = pytest.mark.skipif(sps is None, reason="scipy is not installed; the "
                                 "numpy-only reference tests cover these functions")


def _np_logsumexp(a, axis=None, b=None, keepdims=False):
    a = np.asarray(a, np.float64)
    b = np.ones_like(a) if b is None else np.broadcast_to(np.asarray(b, np.float64), a.shape)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    s = np.sum(b * np.exp(a - m), axis=axis, keepdims=True)
    out = np.log(np.abs(s)) + m
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else \
        out.reshape(())


def _mills_ratio(t):
    """(1 - Phi(t)) / phi(t) for t >= 5 by its continued fraction (converges fast)."""
    acc = t
    for k in range(300, 0, -1):
        acc = t + k / acc
    return 1.0 / acc


def _ref_log_ndtr(x):
    if x < -30:
        return -0.5 * x * x - 0.5 * math.log(2 * math.pi) + math.log(_mills_ratio(-x))
    if x > 5:
        return math.log1p(-0.5 * math.erfc(x / math.sqrt(2)))
    return math.log(0.5 * math.erfc(-x / math.sqrt(2)))


# ---------------------------------------------------------------------------
# logsumexp
# ---------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_logsumexp_matches_numpy(shape, data):
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1)))
    keepdims = data.draw(st.booleans())
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32) * 10
    out = special.logsumexp(a, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out, _np_logsumexp(a, axis, keepdims=keepdims), rtol=1e-5,
                               atol=1e-5)
    assert out.dtype == np.float32


def test_logsumexp_tuple_axis_b_and_sign():
    a = np.random.default_rng(1).normal(size=(3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(special.logsumexp(a, axis=(0, 2)),
                               _np_logsumexp(a, (0, 2)), rtol=1e-5)
    b = np.random.default_rng(2).uniform(0.1, 2, size=(5,)).astype(np.float32)
    np.testing.assert_allclose(special.logsumexp(a, axis=-1, b=b),
                               _np_logsumexp(a, -1, b), rtol=1e-5)
    # a negative weighted sum: NaN by default, (log|s|, -1) with return_sign
    x = np.array([0.0, 1.0], np.float32)
    bn = np.array([1.0, -1.0], np.float32)
    assert np.isnan(special.logsumexp(x, b=bn))
    val, sign = special.logsumexp(x, b=bn, return_sign=True)
    np.testing.assert_allclose(val, np.log(np.e - 1), rtol=1e-6)
    assert sign == -1
    # b == 0 masks its entry out entirely (even an infinite one)
    masked = special.logsumexp(np.array([np.inf, 1.0]), b=np.array([0., 1.]))
    np.testing.assert_allclose(masked, 1.0)


def test_logsumexp_where_and_infinities():
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    where = np.array([[True, False, True], [False, False, False]])
    out = special.logsumexp(a, axis=1, where=where)
    np.testing.assert_allclose(out[0], np.log(np.exp(1) + np.exp(3)), rtol=1e-6)
    assert out[1] == -np.inf
    assert special.logsumexp(np.array([-np.inf, -np.inf])) == -np.inf
    assert special.logsumexp(np.array([np.inf, 0.0])) == np.inf


def test_logsumexp_stable_and_gradient_is_softmax():
    a = np.array([1e4, 1e4 - 1, -1e4], np.float32)
    np.testing.assert_allclose(special.logsumexp(a), 1e4 + np.log1p(np.exp(-1)), rtol=1e-6)
    g = jax.grad(special.logsumexp)(jnp.asarray(a))
    e = np.exp(a.astype(np.float64) - 1e4)
    np.testing.assert_allclose(g, e / e.sum(), rtol=1e-5, atol=1e-7)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(jax.jit(special.logsumexp)(a), special.logsumexp(a))


def test_logsumexp_grads(x64):
    a = np.random.default_rng(3).normal(size=(3, 4))
    b = np.random.default_rng(4).uniform(0.5, 2, size=(3, 4))
    check_grads(lambda a: special.logsumexp(a, axis=1), (a,), order=2)
    check_grads(lambda a, b: special.logsumexp(a, axis=0, b=b), (a, b), order=1)


def test_logsumexp_axis_error():
    with pytest.raises(ValueError, match="out of bounds"):
        special.logsumexp(np.ones((2, 3)), axis=2)


# ---------------------------------------------------------------------------
# elementary special functions
# ---------------------------------------------------------------------------

X = np.array([-3.0, -1.2, -0.3, 0.0, 0.4, 1.1, 2.5], np.float64)
POS = np.array([0.1, 0.5, 1.0, 2.5, 7.0, 30.0], np.float64)


@pytest.mark.parametrize("fn,ref,xs", [
    (special.erf, np.vectorize(math.erf), X),
    (special.erfc, np.vectorize(math.erfc), X),
    (special.gammaln, np.vectorize(math.lgamma), POS),
    (special.expit, lambda x: 1 / (1 + np.exp(-x)), X),
])
def test_values_vs_math(fn, ref, xs):
    np.testing.assert_allclose(fn(xs.astype(np.float32)), ref(xs), rtol=2e-6, atol=1e-6)


def test_erfinv_inverts_erf():
    y = np.array([-0.999, -0.7, -0.1, 0.0, 0.3, 0.9, 0.99999], np.float64)
    x = np.asarray(special.erfinv(y.astype(np.float32)), np.float64)
    np.testing.assert_allclose(np.vectorize(math.erf)(x), y, rtol=1e-5, atol=1e-6)
    assert special.erfinv(np.float32(1.0)) == np.inf


def test_digamma_recurrence_and_value():
    x = POS.astype(np.float32)
    # psi(x + 1) = psi(x) + 1/x, and psi(1) = -Euler's constant
    np.testing.assert_allclose(special.digamma(x + 1), special.digamma(x) + 1 / x, rtol=1e-5)
    np.testing.assert_allclose(special.digamma(1.0), -0.5772156649015329, rtol=1e-6)


def test_logit_and_expit_inverse(x64):
    p = np.array([1e-10, 0.01, 0.3, 0.5, 0.9, 1 - 1e-10])
    np.testing.assert_allclose(special.logit(p), np.log(p / (1 - p)), rtol=1e-12)
    np.testing.assert_allclose(special.expit(special.logit(p[1:])), p[1:], rtol=1e-9)
    check_grads(special.logit, (np.array([0.2, 0.6]),), order=2)
    check_grads(special.expit, (X,), order=2)


def test_expit_relative_accuracy_in_lower_tail(x64):
    x = np.array([-23.0, -40.0])
    np.testing.assert_allclose(special.expit(x), 1 / (1 + np.exp(-x)), rtol=1e-12)


def test_integer_inputs_promote():
    assert special.erf(1).dtype == np.float32
    assert special.gammaln(np.arange(1, 4)).dtype == np.float32


@needs_scipy
@pytest.mark.parametrize("name,xs", [("erf", X), ("erfc", X), ("gammaln", POS),
                                     ("digamma", POS), ("expit", X), ("ndtr", X)])
def test_values_vs_scipy(x64, name, xs):
    np.testing.assert_allclose(getattr(special, name)(xs), getattr(sps, name)(xs),
                               rtol=1e-10, atol=1e-12)


def test_special_grads(x64):
    check_grads(special.erf, (X,), order=2)
    check_grads(special.erfc, (X,), order=1)
    check_grads(special.gammaln, (POS,), order=2)
    check_grads(special.erfinv, (np.array([-0.5, 0.1, 0.7]),), order=1)


# ---------------------------------------------------------------------------
# xlogy, xlog1py, entr
# ---------------------------------------------------------------------------

def test_xlogy_values():
    x = np.array([0.0, 0.0, 2.0, 3.0], np.float32)
    y = np.array([0.0, 5.0, 3.0, 0.5], np.float32)
    np.testing.assert_allclose(special.xlogy(x, y), [0.0, 0.0, 2 * np.log(3), 3 * np.log(.5)],
                               rtol=1e-6)
    np.testing.assert_allclose(special.xlog1py(x, y - 1),
                               [0.0, 0.0, 2 * np.log(3), 3 * np.log(.5)], rtol=1e-6)
    assert special.xlog1py(0.0, -1.0) == 0.0
    np.testing.assert_allclose(special.entr(np.array([0.0, 0.5, 2.0, -1.0])),
                               [0.0, -0.5 * np.log(.5), -2 * np.log(2.0), -np.inf])


def test_xlogy_grads_at_zero():
    # at x == 0 the y-derivative is x / y == 0, not 0 * inf
    dx, dy = jax.grad(special.xlogy, argnums=(0, 1))(0.0, 2.0)
    np.testing.assert_allclose([dx, dy], [np.log(2.0), 0.0], rtol=1e-6)
    dx, dy = jax.grad(special.xlog1py, argnums=(0, 1))(0.0, 1.0)
    np.testing.assert_allclose([dx, dy], [np.log(2.0), 0.0], rtol=1e-6)
    assert special.xlogy(0.0, 0.0) == 0.0


def test_xlogy_grads(x64):
    x = np.array([0.5, 1.5, 2.0])
    y = np.array([0.3, 2.0, 4.0])
    check_grads(special.xlogy, (x, y), order=2)
    check_grads(special.xlog1py, (x, y), order=2)
    check_grads(special.entr, (y,), order=1)


# ---------------------------------------------------------------------------
# ndtr, log_ndtr, ndtri
# ---------------------------------------------------------------------------

def test_ndtr_values(x64):
    x = np.array([-30.0, -8.0, -1.0, -0.5, 0.0, 0.5, 2.0, 9.0])
    ref = np.array([0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    np.testing.assert_allclose(special.ndtr(x), ref, rtol=1e-12)
    np.testing.assert_allclose(special.ndtr(x.astype(np.float32)), ref, rtol=2e-6,
                               atol=1e-37)


# JAX's numerics: relative accuracy in the lower tail (the order-3 asymptotic series
# truncates at ~1e-11 relative); in the upper tail log(ndtr(x)) has the absolute
# accuracy of ndtr near 1 (one ulp of 1) until -ndtr(-x) takes over.
@pytest.mark.parametrize("dtype,rtol,atol", [(np.float64, 1e-10, 1e-15),
                                             (np.float32, 2e-6, 1e-7)])
def test_log_ndtr_accurate_in_tails(x64, dtype, rtol, atol):
    xs = [-1e3, -80.0, -37.0, -21.0, -19.0, -11.0, -9.0, -5.0, -1.0, 0.0, 1.0, 4.0]
    if dtype == np.float64:
        xs += [6.0, 8.5, 30.0]
    x = np.array(xs, dtype)
    out = np.asarray(special.log_ndtr(x), np.float64)
    ref = np.array([_ref_log_ndtr(float(v)) for v in x])
    np.testing.assert_allclose(out, ref, rtol=rtol, atol=atol)
    assert np.all(np.isfinite(out))


def test_log_ndtr_upper_tail_is_tiny_negative(x64):
    # log(1 - q) ~ -q for the tiny upper-tail mass q: not rounded to 0
    out = special.log_ndtr(np.array([10.0, 20.0]))
    ref = [-0.5 * math.erfc(10 / math.sqrt(2)), -0.5 * math.erfc(20 / math.sqrt(2))]
    np.testing.assert_allclose(out, ref, rtol=1e-12)


def test_log_ndtr_grads(x64):
    x = np.array([-40.0, -25.0, -15.0, -3.0, 0.0, 2.0, 9.0])
    g = jax.vmap(jax.grad(special.log_ndtr))(x)
    # d/dx log Phi(x) = phi(x) / Phi(x); ~ -x for x << 0
    ref = [math.exp(-0.5 * v * v - 0.5 * math.log(2 * math.pi) - _ref_log_ndtr(v)) for v in x]
    np.testing.assert_allclose(g, ref, rtol=1e-9)
    check_grads(special.log_ndtr, (np.array([-30.0, -3.0, 0.5]),), order=2)
    g32 = jax.vmap(jax.grad(special.log_ndtr))(np.array([-1e4, -12.0, 0.0, 7.0], np.float32))
    assert np.all(np.isfinite(g32))


def test_log_ndtr_errors():
    with pytest.raises(TypeError, match="series_order must be a Python integer"):
        special.log_ndtr(1.0, series_order=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        special.log_ndtr(1.0, series_order=-1)
    with pytest.raises(ValueError, match="<= 30"):
        special.log_ndtr(1.0, series_order=31)
    with pytest.raises(TypeError, match="not supported"):
        special.log_ndtr(np.array([1], np.int32))
    with pytest.raises(TypeError, match="not supported"):
        special.ndtr(np.array([1], np.int32))


def test_ndtri_inverts_ndtr(x64):
    p = np.array([1e-300, 1e-30, 1e-8, 0.01, 0.1, 0.3, 0.5, 0.8, 0.95, 1 - 1e-9])
    x = np.asarray(special.ndtri(p))
    np.testing.assert_allclose(np.asarray(special.ndtr(x)), p, rtol=1e-11)
    assert special.ndtri(0.0) == -np.inf and special.ndtri(1.0) == np.inf
    assert special.ndtri(0.5) == 0.0
    x32 = np.asarray(special.ndtri(p[2:-1].astype(np.float32)), np.float64)
    np.testing.assert_allclose(x32, x[2:-1], rtol=2e-5, atol=1e-6)


@needs_scipy
def test_ndtri_and_log_ndtr_vs_scipy(x64):
    p = np.array([1e-200, 1e-12, 0.02, 0.2, 0.5, 0.7, 0.99, 1 - 1e-12])
    np.testing.assert_allclose(special.ndtri(p), sps.ndtri(p), rtol=1e-12)
    x = np.array([-100.0, -30.0, -12.0, -2.0, 0.0, 3.0, 7.0])
    np.testing.assert_allclose(special.log_ndtr(x), sps.log_ndtr(x), rtol=1e-10, atol=1e-15)


def test_ndtri_grad(x64):
    check_grads(special.ndtri, (np.array([0.05, 0.4, 0.9]),), order=1)
    g = jax.grad(special.ndtri)(0.5)
    np.testing.assert_allclose(g, math.sqrt(2 * math.pi), rtol=1e-12)


def test_under_jit_and_vmap():
    x = np.linspace(-4, 4, 9).astype(np.float32)
    for fn in (special.ndtr, special.log_ndtr, special.erf, special.expit):
        np.testing.assert_allclose(jax.jit(fn)(x), fn(x), rtol=1e-6, atol=1e-7)
    out = jax.vmap(lambda r: special.logsumexp(r))(x.reshape(3, 3))
    np.testing.assert_allclose(out, _np_logsumexp(x.reshape(3, 3), 1), rtol=1e-6)
