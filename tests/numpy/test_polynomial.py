"""Polynomial functions against numpy; derivatives of polyval against finite
differences; roots (eigenvalues of the companion matrix) and polyfit (least squares)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

P = np.array([1.0, -3.0, 2.0, 5.0], np.float32)
Q = np.array([2.0, 0.5], np.float32)


def _close(a, b):
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=1e-5, atol=1e-5)


def test_arithmetic_matches_numpy():
    _close(jnp.polyadd(P, Q), np.polyadd(P, Q))
    _close(jnp.polyadd(Q, P), np.polyadd(Q, P))
    _close(jnp.polysub(Q, P), np.polysub(Q, P))
    _close(jnp.polymul(P, Q), np.polymul(P, Q))
    q, r = jnp.polydiv(P, Q)
    eq, er = np.polydiv(P, Q)
    _close(q, eq)
    _close(r[-er.size:], er)
    _close(jnp.polydiv(P, Q, trim_leading_zeros=True)[1], er)
    assert jnp.polymul(np.array([1, 2]), np.array([3])).dtype == np.float32


@pytest.mark.parametrize("m", [0, 1, 2, 5])
def test_derivative_and_integral_match_numpy(m):
    _close(jnp.polyder(P, m), np.polyder(P, m) if m < 4 else np.array([], np.float32))
    _close(jnp.polyint(P, m), np.polyint(P, m))
    _close(jnp.polyint(P, m, k=3.0), np.polyint(P, m, k=3.0))
    with pytest.raises(ValueError):
        jnp.polyder(P, -1)


def test_polyval_values_batches_and_grads():
    x = np.linspace(-2, 2, 7).astype(np.float32)
    _close(jnp.polyval(P, x), np.polyval(P, x))
    _close(jax.jit(jnp.polyval)(P, x), np.polyval(P, x))
    batch = np.stack([P, 2 * P], axis=1)           # coefficients with a trailing batch axis
    _close(jnp.polyval(batch, 0.5), np.polyval(batch, 0.5))
    check_grads(jnp.polyval, (P, x), order=2, modes=["fwd", "rev"])


def test_poly_vander_trim_zeros():
    roots = np.array([1.0, -2.0, 0.5], np.float32)
    _close(jnp.poly(roots), np.poly(roots))
    _close(jnp.vander(roots), np.vander(roots))
    _close(jnp.vander(roots, 5, increasing=True), np.vander(roots, 5, increasing=True))
    z = np.array([0, 0, 1, 2, 0, 3, 0, 0])
    for trim in ("f", "b", "fb"):
        np.testing.assert_array_equal(jnp.trim_zeros(z, trim), np.trim_zeros(z, trim))


def test_roots_polyfit_and_poly_of_a_matrix_match_numpy():
    np.testing.assert_allclose(np.sort_complex(np.asarray(jnp.roots(P))),
                               np.sort_complex(np.roots(P)), rtol=1e-4)
    padded = np.concatenate([np.zeros(2, np.float32), P])
    got = np.asarray(jax.jit(lambda p: jnp.roots(p, strip_zeros=False))(padded))
    np.testing.assert_allclose(np.sort_complex(got[:3]), np.sort_complex(np.roots(P)),
                               rtol=1e-4)
    assert np.all(np.isnan(got[3:]))
    x = np.linspace(-1, 1, 9)
    y = 2 * x ** 2 - x + 0.5 + 0.01 * np.cos(7 * x)
    _close(jnp.polyfit(x.astype(np.float32), y.astype(np.float32), 2), np.polyfit(x, y, 2))
    c, cov = jnp.polyfit(x.astype(np.float32), y.astype(np.float32), 2, cov=True)
    ec, ecov = np.polyfit(x, y, 2, cov=True)
    np.testing.assert_allclose(np.asarray(cov), ecov, rtol=2e-2, atol=1e-7)
    m = np.array([[2.0, 1.0], [1.0, 3.0]], np.float32)
    got = jnp.poly(m)                      # complex, as in JAX (eigenvalues are complex)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(np.asarray(got), np.poly(m), rtol=1e-5, atol=1e-5)
