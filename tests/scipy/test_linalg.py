"""jax.scipy.linalg against SciPy: values over drawn shapes and dtypes, derivatives
against finite differences."""
import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.scipy.linalg as jsl
from tinyjax.config import config
from tinyjax.test_util import check_grads
from tests.linalg_support import rand

SETTINGS = settings(max_examples=10, deadline=None)


def close(actual, expected, tol):
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=tol, atol=tol)


@SETTINGS
@given(dtype=st.sampled_from(["float32", "float64", "complex64", "complex128"]),
       n=st.integers(1, 5), seed=st.integers(0, 999), lower=st.booleans())
def test_factorisations_and_solves(dtype, n, seed, lower):
    with config.override(jax_enable_x64=dtype in ("float64", "complex128")):
        tol = 2e-3 if dtype in ("float32", "complex64") else 1e-9
        rng = np.random.default_rng(seed)
        a = rand(rng, (n, n), dtype) + 2 * np.eye(n)
        pd = a @ a.conj().T + np.eye(n)
        b = rand(rng, (n, 2), dtype)
        close(jsl.cholesky(pd, lower=lower), sl.cholesky(pd, lower=lower), tol)
        close(jsl.cho_solve(jsl.cho_factor(pd, lower=lower), b),
              sl.cho_solve(sl.cho_factor(pd, lower=lower), b), tol)
        close(jsl.solve(pd, b, assume_a="pos", lower=lower), sl.solve(pd, b), tol)
        lu, piv = jsl.lu_factor(a)
        ref_lu, ref_piv = sl.lu_factor(a)
        close(lu, ref_lu, tol)
        np.testing.assert_array_equal(piv, ref_piv)
        for trans in (0, 1, 2):
            close(jsl.lu_solve((lu, piv), b, trans=trans),
                  sl.lu_solve((ref_lu, ref_piv), b, trans=trans), tol)
        p, low, up = jsl.lu(a)
        for x, y in zip((p, low, up), sl.lu(a)):
            close(x, y, tol)
        for trans in ("N", "T", "C"):
            close(jsl.solve_triangular(a, b, trans=trans, lower=lower),
                  sl.solve_triangular(a, b, trans=trans, lower=lower), tol * 10)
        close(jsl.solve(a, b), sl.solve(a, b), tol)
        q, r = jsl.qr(a)
        close(q, sl.qr(a)[0], tol)
        w, v = jsl.eigh(pd, lower=lower)
        close(w, sl.eigh(pd, lower=lower, eigvals_only=True), tol * 10)
        close(jsl.expm(a / n), sl.expm(a / n), tol * 10)
        close(jsl.sqrtm(pd), sl.sqrtm(pd), tol * 10)
        t, z = jsl.schur(a)
        close(z @ t @ np.conj(z).T, a, tol * 10)


def test_decomposition_variants():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((5, 3))
    q, rr, p = jsl.qr(r, pivoting=True)
    qs, rs, ps = sl.qr(r, pivoting=True)
    np.testing.assert_array_equal(p, ps)
    np.testing.assert_allclose(rr, rs, atol=1e-5)
    assert len(jsl.qr(r, mode="r")) == 1 and jsl.qr(r, mode="economic")[0].shape == (5, 3)
    u, s, vh = jsl.svd(r)
    np.testing.assert_allclose(s, sl.svd(r, compute_uv=False), rtol=1e-5)
    t, z = jsl.schur(rng.standard_normal((4, 4)), output="complex")
    assert t.dtype == np.complex64 and np.allclose(np.tril(np.asarray(t), -1), 0, atol=1e-5)
    up, pos = jsl.polar(r)
    np.testing.assert_allclose(up @ pos, r, atol=1e-5)
    np.testing.assert_allclose(pos, sl.polar(r)[1], atol=1e-4)
    pl, pl_pos = jsl.polar(r.T, side="left")
    np.testing.assert_allclose(pl_pos @ pl, r.T, atol=1e-5)
    e = np.array([[0.0, 1.0], [-1.0, 0.0]])
    for m in (e * 0.01, e, e * 40):
        np.testing.assert_allclose(jsl.expm(m.astype(np.float32)), sl.expm(m), rtol=2e-4,
                                   atol=2e-4)
    with config.override(jax_enable_x64=True):
        a = rng.standard_normal((3, 3))
        d = rng.standard_normal((3, 3))
        ea, fr = jsl.expm_frechet(a, d)
        ref_ea, ref_fr = sl.expm_frechet(a, d)
        np.testing.assert_allclose(fr, ref_fr, rtol=1e-9)
        np.testing.assert_allclose(jsl.expm(np.stack([a, d])), [sl.expm(a), sl.expm(d)],
                                   rtol=1e-10)
        w = jsl.eigh_tridiagonal(np.arange(5.0), np.ones(4), eigvals_only=True)
        np.testing.assert_allclose(w, sl.eigh_tridiagonal(np.arange(5.0), np.ones(4),
                                                          eigvals_only=True), rtol=1e-12)
        wi = jsl.eigh_tridiagonal(np.arange(5.0), np.ones(4), eigvals_only=True, select="i",
                                  select_range=(1, 3))
        np.testing.assert_allclose(wi, w[1:4])


def test_special_matrices():
    c, r = np.array([1.0, 2.0, 3.0]), np.array([9.0, 8.0, 7.0, 6.0])
    np.testing.assert_array_equal(jsl.toeplitz(c, r), sl.toeplitz(c, r))
    np.testing.assert_array_equal(jsl.toeplitz(c + 1j), sl.toeplitz(c + 1j))
    np.testing.assert_array_equal(jsl.hankel(c, r), sl.hankel(c, r))
    np.testing.assert_array_equal(jsl.hankel(c), sl.hankel(c))
    np.testing.assert_array_equal(jsl.circulant(c), sl.circulant(c))
    np.testing.assert_allclose(jsl.companion(np.array([2.0, 3.0, 4.0, 5.0])),
                               sl.companion([2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_allclose(jsl.hilbert(4), sl.hilbert(4), rtol=1e-6)
    blocks = [np.ones((2, 3)), np.array([4.0, 5.0]), 7.0]
    np.testing.assert_array_equal(jsl.block_diag(*blocks), sl.block_diag(*blocks))
    assert jsl.block_diag().shape == (1, 0)
    batched = jsl.toeplitz(np.stack([c, c + 1]), np.stack([r, r]))
    np.testing.assert_array_equal(batched[1], sl.toeplitz(c + 1, r))


def test_errors():
    with pytest.raises(NotImplementedError, match="b=None"):
        jsl.eigh(np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="assume_a"):
        jsl.solve(np.eye(2), np.ones(2), assume_a="band")
    with pytest.raises(ValueError, match="Invalid 'trans'"):
        jsl.solve_triangular(np.eye(2), np.ones(2), trans=3)
    with pytest.raises(ValueError, match="'output' to be either"):
        jsl.schur(np.eye(2), output="x")
    with pytest.raises(ValueError, match="square matrix"):
        jsl.expm(np.ones((2, 3)))


def test_grads(x64):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    pd = a @ a.T
    b = rng.standard_normal((3, 2))
    sym = lambda a: (a + a.T) / 2  # noqa: E731  (a Cholesky factor reads one triangle)
    check_grads(lambda a: jsl.cho_solve(jsl.cho_factor(sym(a)), b), (pd,), order=2)
    check_grads(lambda a, b: jsl.solve(sym(a), b, assume_a="pos"), (pd, b), order=2)
    check_grads(lambda a: jsl.expm(a * 0.3), (a,), order=1)
    check_grads(lambda a: jsl.solve_triangular(a, b, lower=True), (a,), order=2)
    check_grads(lambda a: jsl.lu(a)[1:], (a,), order=1)
    with pytest.raises(NotImplementedError, match="'schur'"):  # as in JAX
        jax.jvp(jsl.sqrtm, (pd,), (pd,))
    jax.jit(lambda a: jsl.expm(a))(a)
