"""The complex-valued special functions against scipy.special: wofz (and erfcx of complex
arguments) over every quadrant, sph_harm_y over degrees, orders and angles; derivatives
against finite differences, jit against eager, vmap against a loop."""
import numpy as np
import pytest
import scipy.special as ss

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.scipy import special
from tinyjax.test_util import check_grads

rng = np.random.default_rng(0)
# every quadrant, near the origin, along the axes, large arguments (but not so far into
# the lower half-plane that exp(-z^2) overflows)
Z = np.concatenate([
    (rng.uniform(-6, 6, 60) + 1j * rng.uniform(-3, 6, 60)),
    [0, 1e-3j, -1e-3, 1.0, -2.0, 3j, -2j, 25 + 1j, -40 + 5j, 10 - 1j, 100j]])


@pytest.mark.parametrize("dtype,rtol", [(np.complex64, 2e-5), (np.complex128, 1e-11)])
def test_wofz_matches_scipy(dtype, rtol, request):
    if dtype == np.complex128:
        request.getfixturevalue("x64")
    got = special.wofz(Z.astype(dtype))
    assert got.dtype == dtype
    want = ss.wofz(Z)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(jax.jit(special.wofz)(Z.astype(dtype)), got, rtol=rtol)
    # erfcx(z) = wofz(iz)
    np.testing.assert_allclose(special.erfcx(Z.astype(dtype) * -1j), want, rtol=rtol,
                               atol=rtol * 1e-3)


def test_wofz_of_real_input_and_edges():
    for x in (1.0, 1, np.float32(1), np.float16(1)):
        assert special.wofz(x).dtype == np.complex64
    np.testing.assert_allclose(special.wofz(np.array([0.5, -2.0], np.float32)),
                               ss.wofz(np.array([0.5, -2.0])), rtol=2e-6)
    assert np.isnan(special.wofz(np.nan))
    assert np.isinf(special.wofz(-30j).real)               # 2 exp(900) overflows


def test_wofz_derivatives(x64):
    # w is holomorphic: w' = -2 z w + 2i / sqrt(pi); its real and imaginary parts as
    # functions of (x, y) against finite differences
    z = Z[:12]
    parts = lambda x, y: (jnp.real(special.wofz(x + 1j * y)),  # noqa: E731
                          jnp.imag(special.wofz(x + 1j * y)))
    check_grads(parts, (z.real, z.imag), order=2)
    d = jax.vmap(jax.grad(special.wofz, holomorphic=True))(z)
    np.testing.assert_allclose(d, -2 * z * ss.wofz(z) + 2j / np.sqrt(np.pi), rtol=1e-10)


def test_sph_harm_y_matches_scipy(x64):
    n = rng.integers(0, 15, 300)
    m = rng.integers(-16, 17, 300)            # |m| > n included: zero, as in scipy
    theta, phi = rng.uniform(0, np.pi, 300), rng.uniform(0, 2 * np.pi, 300)
    want = ss.sph_harm_y(n, m, theta, phi)
    got = special.sph_harm_y(n, m, theta, phi)
    assert got.dtype == np.complex128
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    got32 = special.sph_harm_y(n, m, theta.astype(np.float32), phi.astype(np.float32))
    assert got32.dtype == np.complex64
    np.testing.assert_allclose(got32, want, atol=2e-5)
    # the poles and the equator; broadcasting (one point, many orders)
    for t in (0.0, np.pi / 2, np.pi):
        np.testing.assert_allclose(special.sph_harm_y(4, np.arange(-4, 5), t, 0.7),
                                   ss.sph_harm_y(4, np.arange(-4, 5), t, 0.7), atol=1e-12)


def test_sph_harm_y_transforms(x64):
    n, m = np.array([2, 3, 5]), np.array([1, -2, 0])
    theta, phi = np.array([0.5, 1.0, 2.2]), np.array([0.3, 2.0, 4.0])
    fn = jax.jit(lambda t, p: special.sph_harm_y(n, m, t, p, n_max=5))
    np.testing.assert_allclose(fn(theta, phi), ss.sph_harm_y(n, m, theta, phi), rtol=1e-12)
    parts = lambda t, p: (jnp.real(special.sph_harm_y(n, m, t, p)),  # noqa: E731
                          jnp.imag(special.sph_harm_y(n, m, t, p)))
    check_grads(parts, (theta, phi), order=1)
    got = jax.vmap(lambda t: special.sph_harm_y(n, m, t, phi, n_max=5))(np.stack([theta,
                                                                               theta / 2]))
    np.testing.assert_allclose(got[1], ss.sph_harm_y(n, m, theta / 2, phi), rtol=1e-12)
    # degrees above n_max are clipped to it, as in JAX
    np.testing.assert_allclose(special.sph_harm_y(np.array([6]), np.array([2]), 0.4, 0.1,
                                                  n_max=4),
                               ss.sph_harm_y(4, 2, 0.4, 0.1), rtol=1e-12)


def test_sph_harm_y_errors():
    with pytest.raises(NotImplementedError, match="diff_n"):
        special.sph_harm_y(np.array([1]), np.array([0]), 0.1, 0.2, diff_n=1)
    with pytest.raises(TypeError, match="sph_harm_y: n must be an integer array, got dtype "
                                        "float32"):
        special.sph_harm_y(np.array([1.0], np.float32), np.array([0]), 0.1, 0.2)
    with pytest.raises(jax.errors.ConcretizationTypeError, match="n_max"):
        jax.jit(lambda n: special.sph_harm_y(n, 0, 0.1, 0.2))(np.array([2]))
