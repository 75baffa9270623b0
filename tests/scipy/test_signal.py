"""tinyjax.scipy.signal against scipy.signal: N-d convolution and correlation in every
mode and method, 2-D variants, FFT convolution along chosen axes; derivatives by finite
differences; jit against eager; the errors."""
import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.scipy import signal
from tinyjax.test_util import check_grads

MODES = ("full", "same", "valid")


@st.composite
def shape_pairs(draw):
    ndim = draw(st.integers(1, 3))
    s1 = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    if draw(st.booleans()):  # 'valid' needs one input to dominate the other
        s2 = tuple(draw(st.integers(1, n)) for n in s1)
    else:
        s2 = tuple(draw(st.integers(1, 6)) for _ in range(ndim))
    return s1, s2


@settings(max_examples=25, deadline=None)
@given(shape_pairs(), st.sampled_from(MODES), st.sampled_from(["convolve", "correlate"]),
       st.sampled_from(["direct", "fft"]))
def test_against_scipy(shapes, mode, name, method):
    rng = np.random.default_rng(sum(shapes[0]) + 7 * sum(shapes[1]))
    a, b = (rng.standard_normal(s) for s in shapes)
    try:
        want = getattr(ss, name)(a, b, mode, method)
    except ValueError:
        with pytest.raises(ValueError, match="'valid' mode"):
            getattr(signal, name)(a.astype(np.float32), b.astype(np.float32), mode, method)
        return
    got = getattr(signal, name)(a.astype(np.float32), b.astype(np.float32), mode, method)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-4)


def test_complex_and_integer_inputs():
    a = np.array([1 + 2j, 3 - 1j, 0.5j], np.complex64)
    b = np.array([2 - 1j, 1j], np.complex64)
    for method in ("direct", "fft"):
        np.testing.assert_allclose(np.asarray(signal.correlate(a, b, method=method)),
                                   ss.correlate(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(signal.fftconvolve(a, b, "same")),
                               ss.fftconvolve(a, b, "same"), rtol=1e-5, atol=1e-5)
    out = signal.convolve(jnp.arange(4), jnp.arange(3))  # integers give floats, as in JAX
    assert out.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(out), [0, 0, 1, 4, 7, 6])


@pytest.mark.parametrize("mode", MODES)
def test_2d_variants(mode):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 6)), rng.standard_normal((3, 2))
    for name in ("convolve2d", "correlate2d"):
        got = getattr(signal, name)(a.astype(np.float32), b.astype(np.float32), mode)
        np.testing.assert_allclose(np.asarray(got), getattr(ss, name)(a, b, mode),
                                   rtol=1e-4, atol=1e-4)


def test_fftconvolve_along_some_axes():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 7)), rng.standard_normal((3, 4))
    for mode in MODES:
        np.testing.assert_allclose(np.asarray(signal.fftconvolve(
            a.astype(np.float32), b.astype(np.float32), mode, axes=1)),
            ss.fftconvolve(a, b, mode, axes=1), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="axes not convolved must have the same size"):
        signal.fftconvolve(a, b[:1], axes=1)


def test_derivatives_jit_and_vmap():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((6, 5)), rng.standard_normal((3, 3))
    with jax.enable_x64(True):
        check_grads(lambda x, k: signal.convolve(x, k, "same"), (a, b), order=2)
        check_grads(lambda x, k: signal.fftconvolve(x, k, "valid"), (a, b), order=1)
    f = lambda x, k: signal.correlate(x, k, "valid")
    x32, k32 = a.astype(np.float32), b.astype(np.float32)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(x32, k32)), np.asarray(f(x32, k32)),
                               rtol=1e-6, atol=1e-6)
    xs = np.stack([x32, 2 * x32])
    np.testing.assert_allclose(np.asarray(jax.vmap(f, (0, None))(xs, k32)),
                               np.stack([np.asarray(f(x, k32)) for x in xs]), rtol=1e-6,
                               atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match="convolve: in1 and in2 should have the same "
                                         r"dimensionality, got shapes \(3, 3\) and \(2,\)"):
        signal.convolve(jnp.ones((3, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match="mode must be one of"):
        signal.correlate(jnp.ones(3), jnp.ones(2), mode="middle")
    with pytest.raises(ValueError, match="method must be"):
        signal.convolve(jnp.ones(3), jnp.ones(2), method="winograd")
    with pytest.raises(ValueError, match=r"convolve2d\(\) only supports 2-dimensional"):
        signal.convolve2d(jnp.ones(3), jnp.ones(2))
    with pytest.raises(NotImplementedError, match="boundary='fill' with fillvalue=0"):
        signal.convolve2d(jnp.ones((3, 3)), jnp.ones((2, 2)), boundary="wrap")
    with pytest.raises(ValueError, match="inputs cannot be empty"):
        signal.convolve(jnp.ones(3), jnp.ones(0))
    with pytest.raises(TypeError):
        signal.convolve([1.0, 2.0], jnp.ones(2))
