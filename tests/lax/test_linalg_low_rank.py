"""lax.linalg.symmetric_product and cholesky_update (composite primitives): values
against numpy over drawn shapes, batch dimensions and dtypes; derivatives against finite
differences; vmap against loops; every device's compiled program against eager; JAX's
errors for bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.test_util import check_grads
from tests.linalg_support import close, hermitian_pd, rand, x64_for

SETTINGS = settings(max_examples=10, deadline=None)
REAL = ["float32", "float64"]


def _upper_factor(rng, n, dtype):
    """The upper Cholesky factor R (A = R^T R) of a random positive-definite A."""
    return np.linalg.cholesky(hermitian_pd(rng, (), n, dtype)).T.astype(dtype)


@SETTINGS
@given(dtype=st.sampled_from(REAL), batch=st.sampled_from([(), (2,), (2, 1)]),
       m=st.integers(1, 5), n=st.integers(1, 5), alpha=st.floats(-2, 2),
       beta=st.floats(-2, 2), symmetrize=st.booleans(), seed=st.integers(0, 999))
def test_symmetric_product(dtype, batch, m, n, alpha, beta, symmetrize, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        a = rand(rng, batch + (m, n), dtype)
        c = hermitian_pd(rng, batch, m, dtype)
        out = lax.linalg.symmetric_product(a, c, alpha=alpha, beta=beta,
                                           symmetrize_output=symmetrize)
        assert out.shape == c.shape and out.dtype == np.dtype(dtype)
        want = alpha * a @ np.swapaxes(a, -1, -2) + beta * c
        close(out, want, dtype, 10 * max(n, 1))


def test_symmetrize_output_mirrors_the_lower_triangle():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    c = np.triu(np.ones((3, 3), np.float32))   # not symmetric: only the lower half counts
    out = np.asarray(lax.linalg.symmetric_product(a, c, beta=1.0, symmetrize_output=True))
    low = np.tril(a @ a.T + c)
    np.testing.assert_allclose(out, low + np.tril(low, -1).T)


@SETTINGS
@given(dtype=st.sampled_from(REAL), n=st.integers(1, 6), zeros=st.integers(0, 2),
       seed=st.integers(0, 999))
def test_cholesky_update(dtype, n, zeros, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        r = _upper_factor(rng, n, dtype)
        w = rand(rng, (n,), dtype)
        w[:min(zeros, n)] = 0   # rotations that are the identity
        out = np.asarray(lax.linalg.cholesky_update(r, w))
        assert out.shape == r.shape and out.dtype == np.dtype(dtype)
        close(np.tril(out, -1), 0, dtype)
        want = np.linalg.cholesky(r.T.astype(np.float64) @ r + np.outer(w, w)).T
        close(out, want, dtype, 20)


def test_derivatives(x64):
    rng = np.random.default_rng(3)
    a, c = rand(rng, (2, 3, 2), "float64"), hermitian_pd(rng, (2,), 3, "float64")
    check_grads(lambda a, c: lax.linalg.symmetric_product(a, c, alpha=0.5, beta=2.0),
                (a, c), order=2, modes=["fwd", "rev"])
    r, w = _upper_factor(rng, 4, "float64"), rand(rng, (4,), "float64")
    check_grads(lax.linalg.cholesky_update, (r, w), order=1, modes=["fwd", "rev"])


def test_vmap_matches_loops(x64):
    rng = np.random.default_rng(4)
    rs = np.stack([_upper_factor(rng, 4, "float64") for _ in range(3)])
    ws = rand(rng, (3, 4), "float64")
    got = jax.vmap(lax.linalg.cholesky_update)(rs, ws)
    for i in range(3):
        np.testing.assert_allclose(got[i], lax.linalg.cholesky_update(rs[i], ws[i]),
                                   rtol=1e-13, atol=1e-13)
    a, c = rand(rng, (2, 3, 4, 2), "float64"), hermitian_pd(rng, (3, 2), 4, "float64")
    got = jax.vmap(lambda a, c: lax.linalg.symmetric_product(a, c, beta=1.0),
                   in_axes=(1, 0))(a, c)
    for i in range(3):
        np.testing.assert_allclose(got[i], lax.linalg.symmetric_product(a[:, i], c[i],
                                                                        beta=1.0),
                                   rtol=1e-13, atol=1e-13)


def test_compiled_matches_eager(device, x64):
    rng = np.random.default_rng(6)
    r, w = _upper_factor(rng, 5, "float64"), rand(rng, (5,), "float64")
    a, c = rand(rng, (2, 5, 3), "float64"), hermitian_pd(rng, (2,), 5, "float64")

    def fn(r, w, a, c):
        return [lax.linalg.cholesky_update(r, w),
                lax.linalg.symmetric_product(a, c, alpha=2.0, beta=-1.0,
                                             symmetrize_output=True)]
    closed = jax.make_jaxpr(fn)(r, w, a, c)
    got = compile_jaxpr(closed, get_backend(device))(r, w, a, c)
    for g, e in zip(got, eval_jaxpr(closed.jaxpr, closed.consts, r, w, a, c)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(r, w, a, c)[0]), np.asarray(got[0]),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, error, text", [
    (lambda: lax.linalg.symmetric_product(np.ones((3, 2), np.float32),
                                          np.ones((2, 2), np.float32)), ValueError,
     r"shapes \(3, 2\) and \(2, 2\)"),
    (lambda: lax.linalg.symmetric_product(np.ones((3, 2), np.complex64),
                                          np.ones((3, 3), np.complex64)), TypeError,
     "symmetric_product does not accept dtype complex64"),
    (lambda: lax.linalg.cholesky_update(np.eye(3, dtype=np.float32),
                                        np.ones(2, np.float32)), ValueError,
     r"Got shapes \(3, 3\) and \(2,\)"),
    (lambda: lax.linalg.cholesky_update(np.ones((2, 3, 3), np.float32),
                                        np.ones((2, 3), np.float32)), TypeError,
     "must have a rank of exactly 2"),
    (lambda: lax.linalg.cholesky_update(np.eye(3, dtype=np.float32),
                                        np.ones(3, np.int32)), TypeError,
     "cholesky_update does not accept dtype int32"),
])
def test_bad_input_raises_at_trace_time(call, error, text):
    with pytest.raises(error, match=text):
        call()
    with pytest.raises(error, match=text):
        jax.make_jaxpr(call)()
