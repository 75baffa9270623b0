"""tinyjax.scipy.linalg's Hessenberg and Schur-form algorithms (hessenberg, rsf2csf, funm,
solve_sylvester) and qr_multiply against scipy.linalg; jit and vmap against eager;
derivatives by finite differences; the errors."""
import numpy as np
import pytest
import scipy.linalg as sl

import tinyjax as jax
import tinyjax.numpy as jnp
import tinyjax.scipy.linalg as jsl
from tinyjax.test_util import check_grads

rng = np.random.default_rng(0)


def close(ours, theirs, tol=2e-5):
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=tol, atol=tol)


@pytest.mark.parametrize("n", [1, 2, 3, 6])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_hessenberg_matches_scipy(n, dtype):
    a = rng.standard_normal((n, n)).astype(dtype)
    if dtype == np.complex64:
        a = a + 1j * rng.standard_normal((n, n)).astype(np.float32)
    h, q = jsl.hessenberg(a, calc_q=True)
    close(q @ h @ jnp.conj(q).T, a, 1e-4)
    assert np.all(np.tril(np.asarray(h), -2) == 0)
    np.testing.assert_allclose(np.imag(np.diag(np.asarray(h), -1)), 0, atol=1e-6)
    if n == 2 and dtype == np.complex64:
        return  # (scipy returns a 2x2 matrix as it is; LAPACK, and JAX, make h[1, 0] real)
    expected_h, expected_q = sl.hessenberg(a, calc_q=True)
    close(h, expected_h, 1e-4)
    close(q, expected_q, 1e-4)
    close(jsl.hessenberg(a), expected_h, 1e-4)


def test_hessenberg_batched_jit_and_grad():
    a = rng.standard_normal((3, 4, 4)).astype(np.float32)
    h = jax.jit(jsl.hessenberg)(a)
    for k in range(3):
        close(h[k], sl.hessenberg(a[k]), 1e-4)
    with jax.enable_x64(True):
        check_grads(lambda x: jsl.hessenberg(x)[-1, -2:], (rng.standard_normal((4, 4)),),
                    order=1, modes=["rev"])


@pytest.mark.parametrize("n", [1, 3, 5])
def test_rsf2csf_matches_scipy(n):
    a = rng.standard_normal((n, n))
    t, z = sl.schur(a)
    tc, zc = jsl.rsf2csf(t, z)
    expected_t, expected_z = sl.rsf2csf(t, z)
    close(tc, expected_t, 1e-6)
    close(zc, expected_z, 1e-6)
    assert np.all(np.tril(np.asarray(tc), -1) == 0)
    close(zc @ tc @ jnp.conj(zc).T, a, 1e-5)


@pytest.mark.parametrize("func", [jnp.exp, jnp.sin, lambda x: x ** 3 + 2 * x])
def test_funm_matches_scipy(func):
    a = rng.standard_normal((4, 4)).astype(np.float32)
    np_func = {jnp.exp: np.exp, jnp.sin: np.sin}.get(func, lambda x: x ** 3 + 2 * x)
    out = jsl.funm(a, func)
    assert out.dtype == np.complex64
    close(out, sl.funm(a, np_func), 1e-4)
    f, err = jsl.funm(a, func, disp=False)
    close(f, out)
    assert 0 < float(err) < 1e-3


def test_funm_of_exp_is_expm():
    a = rng.standard_normal((3, 3)).astype(np.float32) / 2
    close(jnp.real(jsl.funm(a, jnp.exp)), sl.expm(a), 1e-5)
    with pytest.raises(ValueError, match="expected square"):
        jsl.funm(np.ones((2, 3)), jnp.exp)


@pytest.mark.parametrize("method", ["schur", "eigen"])
@pytest.mark.parametrize("m, n", [(1, 1), (3, 2), (4, 5)])
def test_solve_sylvester_matches_scipy(method, m, n):
    a = rng.standard_normal((m, m)) + m * np.eye(m)
    b = rng.standard_normal((n, n)) + n * np.eye(n)
    c = rng.standard_normal((m, n))
    a, b, c = (v.astype(np.float32) for v in (a, b, c))
    x = jsl.solve_sylvester(a, b, c, method=method)
    assert x.dtype == np.float32
    close(x, sl.solve_sylvester(a, b, c), 1e-4)
    close(a @ x + x @ b, c, 1e-4)


def test_solve_sylvester_complex_batched_and_singular():
    a = rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3)) + 3 * np.eye(3)
    b = rng.standard_normal((2, 2)) + 2 * np.eye(2)
    c = rng.standard_normal((2, 3, 2)) + 0j
    x = jax.jit(jsl.solve_sylvester)(a.astype(np.complex64), b.astype(np.float32),
                                     c.astype(np.complex64))
    for k in range(2):
        close(x[k], sl.solve_sylvester(a[k], b, c[k]), 1e-4)
    singular = jsl.solve_sylvester(np.eye(2), -np.eye(2), np.ones((2, 2)))
    assert np.isnan(np.asarray(singular)).all()
    with pytest.raises(ValueError, match="Incompatible shapes for Sylvester"):
        jsl.solve_sylvester(np.eye(2), np.eye(3), np.ones((3, 3)))
    with pytest.raises(ValueError, match="Unrecognized method"):
        jsl.solve_sylvester(np.eye(2), np.eye(2), np.ones((2, 2)), method="direct")


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
@pytest.mark.parametrize("mode", ["left", "right"])
@pytest.mark.parametrize("conjugate", [False, True])
def test_qr_multiply_matches_scipy(shape, mode, conjugate):
    a = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    k = min(shape)
    c = rng.standard_normal((k, 3) if mode == "left" else (3, shape[0])).astype(np.complex64)
    ours = jsl.qr_multiply(a, c, mode, conjugate=conjugate)
    theirs = sl.qr_multiply(a, c, mode, conjugate=conjugate)
    for x, y in zip(ours, theirs):
        close(x, y, 1e-4)
    vector = c[:, 0] if mode == "left" else c[0]
    close(jsl.qr_multiply(a, vector, mode)[0], sl.qr_multiply(a, vector, mode)[0], 1e-4)


def test_qr_multiply_pivoting_and_errors():
    a = rng.standard_normal((5, 3)).astype(np.float32)
    c = rng.standard_normal((2, 5)).astype(np.float32)
    cq, r, p = jsl.qr_multiply(a, c, pivoting=True)
    expected = sl.qr_multiply(a, c, pivoting=True)
    close(cq, expected[0], 1e-4)
    close(r, expected[1], 1e-4)
    np.testing.assert_array_equal(np.asarray(p), expected[2])
    with pytest.raises(ValueError, match="mode must be 'right' or 'left'"):
        jsl.qr_multiply(a, c, mode="both")
    with pytest.raises(ValueError, match="not compatible for c @ Q"):
        jsl.qr_multiply(a, c.T)
