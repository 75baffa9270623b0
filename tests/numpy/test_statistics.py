"""cov/corrcoef/gradient/trapezoid/unwrap/histograms/nan-arg and cumulative functions,
geomspace and bit packing against numpy; derivatives against finite differences."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

RNG = np.random.default_rng(0)
M = RNG.normal(size=(3, 6)).astype(np.float32)
Y = RNG.normal(size=(2, 6)).astype(np.float32)


def _close(a, b, rtol=1e-4):
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=rtol, atol=1e-5,
                               equal_nan=True)


def test_cov_and_corrcoef():
    fw, aw = RNG.integers(1, 4, 6), RNG.uniform(0.1, 1, 6)
    _close(jnp.cov(M), np.cov(M))
    _close(jnp.cov(M, Y), np.cov(M, Y))
    _close(jnp.cov(M.T, rowvar=False, bias=True), np.cov(M.T, rowvar=False, bias=True))
    _close(jnp.cov(M, ddof=0, fweights=fw, aweights=aw), np.cov(M, ddof=0, fweights=fw,
                                                                aweights=aw))
    _close(jnp.cov(M[0]), np.cov(M[0]))
    _close(jnp.corrcoef(M), np.corrcoef(M))
    _close(jnp.corrcoef(M[0], M[1]), np.corrcoef(M[0], M[1]))
    check_grads(lambda m: jnp.cov(m), (M,), order=1, modes=["rev"])
    with pytest.raises(TypeError, match="fweights must be integer"):
        jnp.cov(M, fweights=aw)


def test_gradient_and_trapezoid():
    f = RNG.normal(size=(4, 5)).astype(np.float32)
    xs = np.cumsum(RNG.uniform(0.5, 1, 5)).astype(np.float32)
    for got, want in zip(jnp.gradient(f), np.gradient(f)):
        _close(got, want)
    _close(jnp.gradient(f, 2.0, axis=1), np.gradient(f, 2.0, axis=1))
    _close(jnp.gradient(f, xs, axis=1), np.gradient(f, xs, axis=1))
    _close(jnp.trapezoid(f), np.trapezoid(f))
    _close(jnp.trapezoid(f, xs), np.trapezoid(f, xs))
    _close(jnp.trapezoid(f, dx=0.3, axis=0), np.trapezoid(f, dx=0.3, axis=0))
    check_grads(lambda y: jnp.trapezoid(y, xs), (f,), order=1)
    with pytest.raises(ValueError, match="too small"):
        jnp.gradient(np.ones(1))


def test_unwrap():
    phase = np.cumsum(RNG.uniform(-3, 3, 20)).astype(np.float32)
    _close(jnp.unwrap(phase), np.unwrap(phase))
    _close(jax.jit(jnp.unwrap)(phase), np.unwrap(phase))
    ints = np.array([0, 5, 10, 3, 8])
    _close(jnp.unwrap(ints, period=6), np.unwrap(ints, period=6))


def test_histograms():
    s = RNG.normal(size=(50, 2)).astype(np.float32)
    _close(jnp.histogramdd(s, bins=4)[0], np.histogramdd(s, bins=4)[0])
    h, ex, ey = jnp.histogram2d(s[:, 0], s[:, 1], bins=3, density=True)
    eh, eex, eey = np.histogram2d(s[:, 0], s[:, 1], bins=3, density=True)
    _close(h, eh)
    _close(ex, eex)
    _close(ey, eey)
    w = RNG.uniform(size=50).astype(np.float32)
    _close(jnp.histogram2d(s[:, 0], s[:, 1], bins=[2, 3], weights=w)[0],
           np.histogram2d(s[:, 0], s[:, 1], bins=[2, 3], weights=w)[0])


def test_nan_functions_and_cumulative_prod():
    a = np.array([[np.nan, 2, 1], [3, np.nan, 5]], np.float32)
    _close(jnp.nanargmax(a, axis=1), np.nanargmax(a, axis=1))
    _close(jnp.nanargmin(a), np.nanargmin(a))
    _close(jnp.nanargmax(np.array([np.nan, np.nan])), -1)
    _close(jnp.nancumsum(a, axis=1), np.nancumsum(a, axis=1))
    _close(jnp.nancumprod(a), np.nancumprod(a))
    _close(jnp.cumulative_prod(np.arange(1, 5), include_initial=True), [1, 1, 2, 6, 24])
    _close(jnp.cumulative_prod(a, axis=0), np.cumprod(a, axis=0))


def test_geomspace_and_bits():
    _close(jnp.geomspace(1, 1000, 4), np.geomspace(1, 1000, 4))
    _close(jnp.geomspace(-1, -1000, 4, endpoint=False), np.geomspace(-1, -1000, 4,
                                                                      endpoint=False))
    b = RNG.integers(0, 2, (3, 11))
    for axis in (None, 0, 1):
        for order in ("big", "little"):
            packed = jnp.packbits(b, axis=axis, bitorder=order)
            assert packed.dtype == np.uint8
            _close(packed, np.packbits(b, axis=axis, bitorder=order))
            u = np.packbits(b, axis=axis, bitorder=order)
            _close(jnp.unpackbits(u, axis=axis, bitorder=order),
                   np.unpackbits(u, axis=axis, bitorder=order))
    u = np.packbits(b, axis=1)
    _close(jnp.unpackbits(u, axis=1, count=11), np.unpackbits(u, axis=1, count=11))
    _close(jnp.unpackbits(u, count=-3), np.unpackbits(u, count=-3))
    with pytest.raises(TypeError, match="unsigned byte"):
        jnp.unpackbits(b)
