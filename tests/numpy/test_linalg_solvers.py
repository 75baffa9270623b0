"""jnp.linalg's decompositions, solves, determinants and derived quantities against numpy
over drawn shapes, batch dimensions and dtypes; JAX's custom derivative rules against
finite differences (including singular matrices); JAX's result types and errors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads
from tests.linalg_support import DTYPES, close, rand, x64_for

SETTINGS = settings(max_examples=12, deadline=None)


cases = given(dtype=st.sampled_from(DTYPES), batch=st.sampled_from([(), (2,), (1, 3)]),
              n=st.integers(1, 5), seed=st.integers(0, 999))


@SETTINGS
@cases
def test_square_functions_match_numpy(dtype, batch, n, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        a = rand(rng, batch + (n, n), dtype) + 2 * np.eye(n, dtype=dtype)
        b = rand(rng, batch + (n, 2), dtype)
        close(jnp.linalg.det(a), np.linalg.det(a), dtype, 50)
        sign, logdet = jnp.linalg.slogdet(a)
        ref_sign, ref_logdet = np.linalg.slogdet(a)
        close(sign, ref_sign, dtype, 50)
        close(logdet, ref_logdet, dtype, 50)
        assert logdet.dtype == np.asarray(a).real.dtype
        close(jnp.linalg.inv(a), np.linalg.inv(a), dtype, 100)
        close(jnp.linalg.solve(a, b), np.linalg.solve(a, b), dtype, 100)
        close(jnp.linalg.solve(a, b[..., 0]) if not batch else
              jnp.linalg.solve(a, b[..., :1])[..., 0],
              np.linalg.solve(a, b[..., :1])[..., 0], dtype, 100)
        close(jnp.linalg.matrix_power(a, 3), np.linalg.matrix_power(a, 3), dtype, 100)
        close(jnp.linalg.matrix_power(a, -2), np.linalg.matrix_power(a, -2), dtype, 1000)
        h = a @ np.conj(np.swapaxes(a, -1, -2))
        close(jnp.linalg.eigvalsh(h), np.linalg.eigvalsh(h), dtype, 100)
        close(jnp.linalg.cholesky(h), np.linalg.cholesky(h), dtype, 100)
        close(jnp.linalg.cond(a), np.linalg.cond(a), dtype, 1000)
        close(jnp.linalg.cond(a, 1), np.linalg.cond(a, 1), dtype, 1000)
        w = np.sort_complex(np.asarray(jnp.linalg.eigvals(a)).reshape(-1, n))
        close(w, np.sort_complex(np.linalg.eigvals(a).reshape(-1, n)), dtype, 100)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.integers(1, 5), n=st.integers(1, 5),
       seed=st.integers(0, 999))
def test_rectangular_functions_match_numpy(dtype, m, n, seed):
    with x64_for(dtype):
        a = rand(np.random.default_rng(seed), (m, n), dtype)
        b = rand(np.random.default_rng(seed + 1), (m, 2), dtype)
        close(jnp.linalg.pinv(a), np.linalg.pinv(a), dtype, 100)
        close(jnp.linalg.svdvals(a), np.linalg.svd(a, compute_uv=False), dtype, 10)
        assert int(jnp.linalg.matrix_rank(a)) == np.linalg.matrix_rank(a)
        x, resid, rank, s = jnp.linalg.lstsq(a, b)
        ref = np.linalg.lstsq(a, b, rcond=None)
        close(x, ref[0], dtype, 100)
        assert int(rank) == ref[2]
        for ord in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
            close(jnp.linalg.norm(a, ord), np.linalg.norm(a, ord), dtype, 10)
        q, r = jnp.linalg.qr(a, mode="complete")
        close(np.asarray(q) @ np.asarray(r), a, dtype, 10)
        assert jnp.linalg.qr(a, mode="r").shape == (min(m, n), n)


def test_result_types_and_hermitian_svd():
    a = np.array([[2.0, 1.0], [1.0, -3.0]], np.float32)
    res = jnp.linalg.eigh(a)
    assert type(res).__name__ == "EighResult" and res.eigenvalues.shape == (2,)
    assert type(jnp.linalg.svd(a)).__name__ == "SVDResult"
    assert type(jnp.linalg.qr(a)).__name__ == "QRResult"
    assert type(jnp.linalg.slogdet(a)).__name__ == "SlogdetResult"
    assert type(jnp.linalg.eig(a)).__name__ == "EigResult"
    u, s, vh = jnp.linalg.svd(a, hermitian=True)
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), rtol=1e-6)
    np.testing.assert_allclose((np.asarray(u) * np.asarray(s)) @ np.asarray(vh), a, atol=1e-5)
    assert jnp.linalg.cholesky(np.array([[4, 2], [2, 3]])).dtype == np.float32  # promotes


def test_singular_and_bad_input():
    sing = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]], np.float32)
    assert float(jnp.linalg.det(sing)) == 0.0
    sign, logdet = jnp.linalg.slogdet(sing)
    assert float(sign) == 0.0 and float(logdet) == -np.inf
    assert np.all(~np.isfinite(np.asarray(jnp.linalg.inv(sing))))
    assert float(jnp.linalg.cond(sing)) > 1e6 or np.isinf(float(jnp.linalg.cond(sing)))
    assert np.all(np.isnan(np.asarray(jnp.linalg.cholesky(-np.eye(2)))[np.tril_indices(2)]))
    with pytest.raises(ValueError, match=r"Argument to inv must have shape \[..., n, n\]"):
        jnp.linalg.inv(np.ones((2, 3)))
    with pytest.raises(ValueError, match="Argument to slogdet"):
        jnp.linalg.slogdet(np.ones(3))
    with pytest.raises(ValueError, match="Invalid shapes for solve"):
        jnp.linalg.solve(np.ones((2, 3, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="UPLO must be one of"):
        jnp.linalg.eigh(np.eye(2), UPLO="X")
    with pytest.raises(TypeError, match="Last 2 dimensions of the array must be square"):
        jnp.linalg.matrix_power(np.ones((2, 3)), 2)


def test_tensor_and_products():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 6, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(jnp.linalg.tensorinv(a, ind=2), np.linalg.tensorinv(a, 2),
                               rtol=1e-3, atol=1e-3)
    t = rng.standard_normal((6, 2, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    np.testing.assert_allclose(jnp.linalg.tensorsolve(t, b), np.linalg.tensorsolve(t, b),
                               rtol=1e-3, atol=1e-3)
    ms = [rng.standard_normal(s).astype(np.float32) for s in [(3,), (3, 5), (5, 2), (2,)]]
    np.testing.assert_allclose(jnp.linalg.multi_dot(ms), np.linalg.multi_dot(ms), rtol=1e-4)
    np.testing.assert_allclose(jnp.linalg.outer(ms[0], ms[3]), np.outer(ms[0], ms[3]))
    np.testing.assert_allclose(jnp.linalg.cross(np.eye(3), np.ones(3)),
                               np.cross(np.eye(3), np.ones(3)))


# ---- derivatives (JAX's rules) ------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_det_slogdet_grads(dtype, x64):
    rng = np.random.default_rng(1)
    for n in (1, 2, 3, 4):
        a = rand(rng, (n, n), dtype) + np.eye(n)
        check_grads(jnp.linalg.det, (a,), order=2)
        check_grads(lambda a: jnp.linalg.slogdet(a)[1], (a,), order=2)
        if dtype == "complex128":
            check_grads(lambda a: jnp.linalg.slogdet(a)[0], (a,), order=1)


def test_det_grad_of_singular_matrix_is_the_cofactor_matrix(x64):
    # rank n-1: d det / dA = adj(A)^T, finite although A has no inverse
    a = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0], [1.0, 0.0, 1.0, 2.0],
                  [0.0, 1.0, 3.0, 1.0]])
    cof = np.array([[np.linalg.det(np.delete(np.delete(a, i, 0), j, 1)) * (-1) ** (i + j)
                     for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(jax.grad(jnp.linalg.det)(a), cof, atol=1e-10)


@pytest.mark.parametrize("fn", [jnp.linalg.inv, jnp.linalg.pinv,
                                lambda a: jnp.linalg.solve(a, np.arange(3.0)),
                                lambda a: jnp.linalg.matrix_power(a, -2),
                                lambda a: jnp.linalg.norm(a, 2),
                                lambda a: jnp.linalg.eigvalsh(a + a.T),
                                lambda a: jnp.linalg.lstsq(a, np.arange(3.0))[0]],
                         ids=["inv", "pinv", "solve", "matrix_power", "norm2", "eigvalsh",
                              "lstsq"])
def test_grads(fn, x64):
    a = np.random.default_rng(2).standard_normal((3, 3)) + 2 * np.eye(3)
    check_grads(fn, (a,), order=2)


def test_pinv_grads_rectangular(x64):
    a = np.random.default_rng(3).standard_normal((4, 2))
    check_grads(jnp.linalg.pinv, (a,), order=1)
    check_grads(jnp.linalg.pinv, (a.T,), order=1)


def test_solve_reuses_one_factorisation():
    # custom_linear_solve: the reverse pass solves with the same LU factors
    jaxpr = jax.make_jaxpr(jax.grad(lambda a, b: jnp.linalg.solve(a, b).sum(),
                                    argnums=(0, 1)))(np.eye(3), np.ones(3))
    names = [e.primitive.name for e in jaxpr.jaxpr.eqns]
    assert names.count("lu") == 1 and "custom_linear_solve" in names


def test_vmap_and_broadcasting():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 3, 3)).astype(np.float32) + 3 * np.eye(3, dtype=np.float32)
    b = rng.standard_normal((3, 2)).astype(np.float32)
    np.testing.assert_allclose(jax.vmap(jnp.linalg.solve, (0, None))(a, b),
                               np.linalg.solve(a, b), rtol=1e-4)
    np.testing.assert_allclose(jnp.linalg.solve(a, b), np.linalg.solve(a, b), rtol=1e-4)
    np.testing.assert_allclose(jax.vmap(jnp.linalg.det)(a), np.linalg.det(a), rtol=1e-4)
    np.testing.assert_allclose(jax.vmap(jnp.linalg.inv)(a), np.linalg.inv(a), rtol=1e-4,
                               atol=1e-5)
