"""lax.linalg primitives: values against numpy/SciPy over drawn shapes, batch dimensions
and dtypes; derivatives against finite differences; vmap against loops; failures give
JAX's NaNs/infinities."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.test_util import check_grads
from tests.linalg_support import DTYPES, close, hermitian_pd, rand, x64_for

SETTINGS = settings(max_examples=12, deadline=None)


def H(x):
    return np.conj(np.swapaxes(x, -1, -2))


def per_matrix(fn, *arrays):
    """``fn`` applied to each matrix of the batch (the independent reference)."""
    batch = arrays[0].shape[:-2]
    flat = [a.reshape((-1,) + a.shape[len(batch):]) for a in arrays]
    outs = [fn(*[f[i] for f in flat]) for i in range(flat[0].shape[0])]
    return np.stack(outs).reshape(batch + np.shape(outs[0])) if outs else None


cases = given(dtype=st.sampled_from(DTYPES), batch=st.sampled_from([(), (2,), (2, 1)]),
              n=st.integers(1, 5), seed=st.integers(0, 999))


@SETTINGS
@cases
def test_cholesky(dtype, batch, n, seed):
    with x64_for(dtype):
        a = hermitian_pd(np.random.default_rng(seed), batch, n, dtype)
        chol = lax.linalg.cholesky(a)
        assert chol.dtype == np.dtype(dtype) and chol.shape == a.shape
        close(chol, np.linalg.cholesky(a), dtype, 10)
        close(np.triu(np.asarray(chol), 1), 0, dtype)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), batch=st.sampled_from([(), (3,)]),
       m=st.integers(1, 5), n=st.integers(1, 5), seed=st.integers(0, 999))
def test_lu_qr_svd(dtype, batch, m, n, seed):
    with x64_for(dtype):
        a = rand(np.random.default_rng(seed), batch + (m, n), dtype)
        packed, pivots, perm = lax.linalg.lu(a)
        assert pivots.dtype == perm.dtype == np.int32
        k = min(m, n)
        low = np.tril(np.asarray(packed), -1)[..., :, :k] + np.eye(m, k)
        up = np.triu(np.asarray(packed))[..., :k, :]
        close(low @ up, np.take_along_axis(a, np.asarray(perm)[..., None], -2), dtype, 10)
        if m == n:  # LAPACK's getrf row swaps
            np.testing.assert_array_equal(
                pivots, per_matrix(lambda x: scipy.linalg.lu_factor(x)[1][None], a)[..., 0, :])
        for full in (True, False):
            q, r = lax.linalg.qr(a, full_matrices=full)
            kk = m if full else k
            assert q.shape == batch + (m, kk) and r.shape == batch + (kk, n)
            close(np.asarray(q) @ np.asarray(r), a, dtype, 10)
            close(H(np.asarray(q)) @ np.asarray(q), np.eye(kk), dtype, 10)
            close(np.tril(np.asarray(r), -1), 0, dtype)
        s = lax.linalg.svd(a, compute_uv=False)
        assert s.dtype == np.asarray(a).real.dtype
        close(s, np.linalg.svd(a, compute_uv=False), dtype, 10)
        u, s, vh = lax.linalg.svd(a, full_matrices=False)
        close((np.asarray(u) * np.asarray(s)[..., None, :]) @ np.asarray(vh), a, dtype, 10)
        u, s, vh = lax.linalg.svd(a, full_matrices=True)
        assert u.shape == batch + (m, m) and vh.shape == batch + (n, n)


@SETTINGS
@cases
def test_eigh_eig_schur(dtype, batch, n, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        h = hermitian_pd(rng, batch, n, dtype)
        v, w = lax.linalg.eigh(h)
        close(w, np.linalg.eigvalsh(h), dtype, 10 * n)
        assert np.all(np.diff(np.asarray(w), axis=-1) >= 0)       # ascending
        close(np.asarray(v) @ (np.asarray(w)[..., :, None] * H(np.asarray(v))), h, dtype,
              10 * n)
        # the eigenvectors LAPACK's syevd/heevd gives, sign included
        close(v, per_matrix(lambda x: scipy.linalg.eigh(x, driver="evd")[1], h), dtype, 100)
        a = rand(rng, batch + (n, n), dtype)
        w, vl, vr = lax.linalg.eig(a)
        cdt = np.result_type(dtype, np.complex64)
        assert w.dtype == vl.dtype == vr.dtype == cdt
        close(a @ np.asarray(vr), np.asarray(vr) * np.asarray(w)[..., None, :], dtype, 100)
        close(H(np.asarray(vl)) @ a, np.asarray(w)[..., :, None] * H(np.asarray(vl)), dtype,
              100)
        t, z = lax.linalg.schur(a)
        close(np.asarray(z) @ np.asarray(t) @ H(np.asarray(z)), a, dtype, 100)


@pytest.mark.parametrize("left_side", [True, False])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", ["N", "T", "C", "conj"])
@pytest.mark.parametrize("unit", [True, False])
def test_triangular_solve_flags(left_side, lower, trans, unit, x64):
    rng = np.random.default_rng(3)
    a = rand(rng, (2, 4, 4), "complex128") + 4 * np.eye(4)
    b = rand(rng, (2, 4, 3) if left_side else (2, 3, 4), "complex128")
    x = lax.linalg.triangular_solve(a, b, left_side=left_side, lower=lower,
                                    transpose_a=trans in ("T", "C"),
                                    conjugate_a=trans in ("C", "conj"), unit_diagonal=unit)
    tri = np.tril(a) if lower else np.triu(a)
    if unit:
        tri = tri - tri * np.eye(4) + np.eye(4)
    op = {"N": tri, "T": np.swapaxes(tri, -1, -2), "C": H(tri), "conj": np.conj(tri)}[trans]
    np.testing.assert_allclose(op @ np.asarray(x) if left_side else np.asarray(x) @ op, b,
                               rtol=1e-10, atol=1e-10)


def test_tridiagonal_solve(x64):
    rng = np.random.default_rng(4)
    dl, d, du = rng.standard_normal((3, 2, 5))
    d = d + 4
    dl[:, 0] = 0
    du[:, -1] = 0
    b = rng.standard_normal((2, 5, 3))
    dense = np.stack([np.diag(d[i]) + np.diag(dl[i, 1:], -1) + np.diag(du[i, :-1], 1)
                      for i in range(2)])
    np.testing.assert_allclose(lax.linalg.tridiagonal_solve(dl, d, du, b),
                               np.linalg.solve(dense, b), rtol=1e-12)
    check_grads(lambda dl, d, du, b: lax.linalg.tridiagonal_solve(dl, d, du, b),
                (dl, d, du, b), order=2)


def test_lu_pivots_to_permutation():
    piv = np.array([[2, 2, 2], [1, 2, 2]], np.int32)
    perm = lax.linalg.lu_pivots_to_permutation(piv, 4)
    np.testing.assert_array_equal(perm, [[2, 0, 1, 3], [1, 2, 0, 3]])
    np.testing.assert_array_equal(jax.vmap(lambda p: lax.linalg.lu_pivots_to_permutation(
        p, 4))(piv), perm)


# ---- failures: JAX's values, no LAPACK errors ------------------------------------------


def test_failures_give_jax_values():
    not_pd = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)
    np.testing.assert_array_equal(np.isnan(lax.linalg.cholesky(not_pd)),
                                  [[True, False], [True, True]])
    singular = np.array([[1.0, 2.0], [2.0, 4.0]], np.float32)
    packed, pivots, perm = lax.linalg.lu(singular)       # factored all the same
    np.testing.assert_allclose(packed, [[2.0, 4.0], [0.5, 0.0]])
    x = lax.linalg.triangular_solve(np.array([[0.0, 0], [1, 1]], np.float32),
                                    np.ones((2, 2), np.float32), left_side=True, lower=True)
    assert np.all(np.isinf(x))
    sing = lax.linalg.tridiagonal_solve(np.array([0.0, 1]), np.array([1.0, 1]),
                                        np.array([1.0, 0]), np.ones((2, 1)))
    assert np.all(np.isnan(sing))
    s = lax.linalg.svd(np.array([[np.nan, 0.0], [0.0, 1.0]], np.float32), compute_uv=False)
    assert np.all(np.isnan(s))
    w = lax.linalg.eig(np.array([[np.nan, -1.0], [1.0, 0.0]], np.float32))[0]
    assert np.all(np.isnan(w))


def test_empty_matrices():
    for m, n in [(0, 0), (0, 3), (3, 0)]:
        a = np.zeros((2, m, n), np.float32)
        q, r = lax.linalg.qr(a)
        assert q.shape == (2, m, m) and r.shape == (2, m, n)
        u, s, vh = lax.linalg.svd(a)
        assert s.shape == (2, 0) and u.shape == (2, m, m) and vh.shape == (2, n, n)
        assert lax.linalg.lu(a)[0].shape == (2, m, n)
    assert lax.linalg.cholesky(np.zeros((0, 0), np.float32)).shape == (0, 0)
    assert lax.linalg.eigh(np.zeros((3, 0, 0), np.float32))[1].shape == (3, 0)


# ---- eager stacks: the CPU backend's loop in C ------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_stacks_run_in_one_library_call(dtype, monkeypatch):
    """A stack of >= LIBRARY_STACK matrices runs through the CPU backend's routine (never the
    per-matrix implementation) with the per-matrix results, failures included."""
    from tinyjax.dispatch import LIBRARY_STACK
    rng = np.random.default_rng(3)
    with x64_for(dtype):
        h = hermitian_pd(rng, (LIBRARY_STACK + 2,), 4, dtype)
        h[5] = -h[5]  # not positive definite: NaN, as alone
        a = rand(rng, (LIBRARY_STACK, 4, 3), dtype)
        b = rand(rng, (LIBRARY_STACK, 4, 2), dtype)
        fns = [lambda h, a, b: lax.linalg.cholesky(h),
               lambda h, a, b: lax.linalg.eigh(h),
               lambda h, a, b: lax.linalg.qr(a),
               lambda h, a, b: lax.linalg.svd(a),
               lambda h, a, b: lax.linalg.lu(h),
               lambda h, a, b: lax.linalg.triangular_solve(h[:LIBRARY_STACK], b,
                                                           left_side=True, lower=True)]
        singles = [[fn(h[i], a[i % LIBRARY_STACK], b[i % LIBRARY_STACK])
                    for i in range(LIBRARY_STACK)] for fn in fns]
        for prim in (lax.linalg.cholesky_p, lax.linalg.eigh_p, lax.linalg.qr_p,
                     lax.linalg.svd_p, lax.linalg.lu_p, lax.linalg.triangular_solve_p):
            monkeypatch.setattr(prim, "impl", None)  # a per-matrix call would fail
        for fn, single in zip(fns, singles):
            got = fn(h, a, b)
            for i, want in enumerate(single):
                for g, w in zip(got if isinstance(got, (tuple, list)) else [got],
                                want if isinstance(want, (tuple, list)) else [want]):
                    close(np.asarray(g)[i], w, dtype)


# ---- derivatives ------------------------------------------------------------------------


def _pd(seed, n=3, dtype="float64"):
    return hermitian_pd(np.random.default_rng(seed), (), n, dtype)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_cholesky_grads(dtype, x64):
    check_grads(lambda a: lax.linalg.cholesky(a), (_pd(0, 3, dtype),), order=2)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_lu_qr_grads(shape, dtype, x64):
    a = rand(np.random.default_rng(1), shape, dtype)
    check_grads(lambda a: lax.linalg.lu(a)[0], (a,), order=2)
    check_grads(lambda a: lax.linalg.qr(a, full_matrices=False), (a,), order=2)
    if shape[0] >= shape[1]:  # a tall full Q has its own rule
        check_grads(lambda a: lax.linalg.qr(a, full_matrices=True), (a,), order=1)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_svd_grads(shape, dtype, x64):
    a = rand(np.random.default_rng(2), shape, dtype)
    check_grads(lambda a: lax.linalg.svd(a, compute_uv=False), (a,), order=2)

    def invariant(a):  # singular vectors are fixed up to a phase: use U diag(s) V^H parts
        u, s, vh = lax.linalg.svd(a, full_matrices=False)
        return jnp.abs(u) ** 2, s, jnp.abs(vh) ** 2
    check_grads(invariant, (a,), order=1)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_eigh_eig_grads(dtype, x64):
    a = _pd(3, 4, dtype)

    def invariant(a):  # eigenvectors are fixed up to a phase
        v, w = lax.linalg.eigh(a)
        return w, jnp.abs(v) ** 2
    check_grads(invariant, (a,), order=2)
    g = rand(np.random.default_rng(5), (4, 4), dtype)
    check_grads(lambda g: lax.linalg.eig(g, compute_left_eigenvectors=False,
                                         compute_right_eigenvectors=False)[0], (g,), order=1)
    with pytest.raises(NotImplementedError, match="enable_eigvec_derivs"):
        jax.jvp(lambda g: lax.linalg.eig(g)[2], (g,), (g,))


@pytest.mark.parametrize("left_side", [True, False])
def test_triangular_solve_grads(left_side, x64):
    rng = np.random.default_rng(6)
    a = rand(rng, (4, 4), "complex128") + 4 * np.eye(4)
    b = rand(rng, (4, 2) if left_side else (2, 4), "complex128")
    check_grads(lambda a, b: lax.linalg.triangular_solve(
        a, b, left_side=left_side, lower=True, transpose_a=True, conjugate_a=True), (a, b),
        order=2)


# ---- vmap ---------------------------------------------------------------------------------


def test_vmap_matches_loops(x64):
    rng = np.random.default_rng(7)
    a = hermitian_pd(rng, (3,), 4, "float64")
    b = rng.standard_normal((3, 4, 2))
    for fn in [lax.linalg.cholesky, lambda x: lax.linalg.qr(x), lambda x: lax.linalg.lu(x),
               lambda x: lax.linalg.svd(x, compute_uv=False), lambda x: lax.linalg.eigh(x),
               lambda x: lax.linalg.eig(x, compute_left_eigenvectors=False),
               lambda x: lax.linalg.schur(x)]:
        batched = jax.vmap(fn, in_axes=1, out_axes=0)(np.swapaxes(a, 0, 1))
        looped = [fn(x) for x in a]
        for got, want in zip(jax.tree_util.tree_leaves(batched),
                             zip(*[jax.tree_util.tree_leaves(x) for x in looped])):
            np.testing.assert_allclose(got, np.stack(want), rtol=1e-10, atol=1e-12)
    solve = lambda a, b: lax.linalg.triangular_solve(a, b, left_side=True, lower=True)
    np.testing.assert_allclose(jax.vmap(solve, (None, 0))(a[0], b),
                               np.stack([solve(a[0], x) for x in b]), rtol=1e-12)
    np.testing.assert_allclose(jax.vmap(solve, (0, 2))(a, np.moveaxis(b, 0, 2)),
                               np.stack([solve(x, y) for x, y in zip(a, b)]), rtol=1e-12)
