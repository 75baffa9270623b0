"""lax.linalg's Householder reductions and products (hessenberg, tridiagonal,
householder_product, ormqr): values against SciPy (scipy.linalg.hessenberg,
scipy.linalg.qr(mode='raw'), scipy.linalg.lapack's routines) and against what the
factorisations mean (products of the reflectors, built here in numpy), over drawn shapes,
batch dimensions and dtypes; vmap against loops; JAX's errors for bad input."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import lapack

import tinyjax as jax
from tinyjax import lax
from tests.linalg_support import DTYPES, close, hermitian_pd, rand, x64_for

SETTINGS = settings(max_examples=10, deadline=None)
BATCHES = st.sampled_from([(), (3,), (2, 1)])


def H(x):
    return np.conj(np.swapaxes(x, -1, -2))


def matrices(x):
    """The matrices of a stack, one after another."""
    x = np.asarray(x)
    return x.reshape((int(np.prod(x.shape[:-2])),) + x.shape[-2:])


def vectors(x):
    x = np.asarray(x)
    return x.reshape((int(np.prod(x.shape[:-1])), x.shape[-1]))


def reflector_product(store, taus, first_row=0):
    """``H_1 ... H_k`` (``H_i = I - tau_i v_i v_i^H``) from the reflectors stored below the
    diagonal of ``store``, shifted down by ``first_row`` rows (1 for a Hessenberg
    reduction): ``v_i`` is 1 at row ``i + first_row`` and ``store[i+first_row+1:, i]``
    below it."""
    m = store.shape[0]
    q = np.eye(m, dtype=store.dtype)
    for i, tau in enumerate(taus):
        v = np.zeros(m, store.dtype)
        v[i + first_row] = 1
        v[i + first_row + 1:] = store[i + first_row + 1:, i]
        q = q @ (np.eye(m, dtype=store.dtype) - tau * np.outer(v, np.conj(v)))
    return q


def _prefix(dtype):
    return {"float32": "s", "float64": "d", "complex64": "c", "complex128": "z"}[dtype]


# ---- hessenberg ---------------------------------------------------------------------------


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), batch=BATCHES, n=st.integers(1, 6),
       seed=st.integers(0, 999))
def test_hessenberg(dtype, batch, n, seed):
    with x64_for(dtype):
        a = rand(np.random.default_rng(seed), batch + (n, n), dtype)
        h, taus = lax.linalg.hessenberg(a)
        assert h.shape == a.shape and taus.shape == batch + (n - 1,)
        assert h.dtype == taus.dtype == np.dtype(dtype)
        gehrd = getattr(lapack, _prefix(dtype) + "gehrd")
        for x, hb, tb in zip(matrices(a), matrices(h), vectors(taus)):
            upper = np.triu(hb, -1)
            if n > 2:   # (SciPy returns a matrix of 2 rows unreduced; gehrd, as JAX, not)
                close(upper, scipy.linalg.hessenberg(x), dtype, 20)
            close(hb, gehrd(x)[0], dtype, 20)
            close(tb, gehrd(x)[1], dtype, 20)
            q = reflector_product(hb, tb, first_row=1)
            close(q @ upper @ H(q), x, dtype, 20)   # a = Q H Q^H


# ---- tridiagonal --------------------------------------------------------------------------


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), batch=BATCHES, n=st.integers(1, 6),
       lower=st.booleans(), seed=st.integers(0, 999))
def test_tridiagonal(dtype, batch, n, lower, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        a = hermitian_pd(rng, batch, n, dtype)
        junk = rand(rng, batch + (n, n), dtype)  # the triangle not read
        a = np.where(np.tri(n, dtype=bool) if lower else ~np.tri(n, k=-1, dtype=bool), a, junk)
        out, d, e, taus = lax.linalg.tridiagonal(a, lower=lower)
        real = np.dtype(dtype).type(0).real.dtype
        assert d.dtype == e.dtype == real and out.dtype == taus.dtype == np.dtype(dtype)
        assert (out.shape, d.shape, e.shape, taus.shape) == (
            a.shape, batch + (n,), batch + (n - 1,), batch + (n - 1,))
        routine = getattr(lapack, _prefix(dtype) + ("hetrd" if "complex" in dtype else "sytrd"))
        for x, ob, db, eb, tb in zip(matrices(a), matrices(out), vectors(d), vectors(e),
                                     vectors(taus)):
            want = routine(x, lower=int(lower))
            for got, ref in zip((ob, db, eb, tb), want[:4]):
                close(got, ref, dtype, 20)
            full = np.tril(x) + H(np.tril(x, -1)) if lower else np.triu(x) + H(np.triu(x, 1))
            tri = np.diag(db) + np.diag(eb, -1) + np.diag(eb, 1)
            close(np.linalg.eigvalsh(tri), np.linalg.eigvalsh(full), dtype, 50 * n)


# ---- householder_product and ormqr ---------------------------------------------------------


def _raw_qr(x):
    """The reflectors (LAPACK's layout, as a row-major array) and their factors."""
    (store, taus), _ = scipy.linalg.qr(x, mode="raw")
    return np.ascontiguousarray(store), taus


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), batch=BATCHES, m=st.integers(1, 6),
       n=st.integers(1, 6), drop=st.integers(0, 2), seed=st.integers(0, 999))
def test_householder_product(dtype, batch, m, n, drop, seed):
    m, n = max(m, n), min(m, n)
    with x64_for(dtype):
        x = rand(np.random.default_rng(seed), batch + (m, n), dtype)
        raw = [_raw_qr(xb) for xb in matrices(x)]
        k = max(n - drop, 0)
        store = np.stack([r[0] for r in raw]).reshape(x.shape)
        taus = np.stack([r[1][:k] for r in raw]).reshape(batch + (k,))
        q = lax.linalg.householder_product(store, taus)
        assert q.shape == x.shape and q.dtype == np.dtype(dtype)
        orgqr = getattr(lapack, _prefix(dtype) + ("ungqr" if "complex" in dtype else "orgqr"))
        for qb, (sb, tb), xb in zip(matrices(q), raw, matrices(x)):
            close(qb, reflector_product(sb, tb[:k])[:, :n], dtype, 20)
            if k:
                close(qb, orgqr(sb, tb[:k])[0], dtype, 20)
            if k == n:   # all reflectors: the Q of scipy's economic QR
                close(qb, scipy.linalg.qr(xb, mode="economic")[0], dtype, 20)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), batch=BATCHES, m=st.integers(1, 6),
       n=st.integers(1, 6), cols=st.integers(1, 4), left=st.booleans(),
       transpose=st.booleans(), seed=st.integers(0, 999))
def test_ormqr(dtype, batch, m, n, cols, left, transpose, seed):
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        x = rand(rng, batch + (m, n), dtype)
        raw = [_raw_qr(xb) for xb in matrices(x)]
        store = np.stack([r[0] for r in raw]).reshape(x.shape)
        taus = np.stack([r[1] for r in raw]).reshape(batch + (min(m, n),))
        c = rand(rng, batch + ((m, cols) if left else (cols, m)), dtype)
        out = lax.linalg.ormqr(store, taus, c, left=left, transpose=transpose)
        assert out.shape == c.shape and out.dtype == np.dtype(dtype)
        side, trans = "L" if left else "R", ("C" if "complex" in dtype else "T") \
            if transpose else "N"
        ormqr = getattr(lapack, _prefix(dtype) + ("unmqr" if "complex" in dtype else "ormqr"))
        for ob, (sb, tb), cb in zip(matrices(out), raw, matrices(c)):
            q = reflector_product(sb, tb)
            q = H(q) if transpose else q
            close(ob, q @ cb if left else cb @ q, dtype, 20)
            want = ormqr(side, trans, sb[:, :len(tb)], tb, cb, max(1, 64 * m))[0]
            close(ob, want, dtype, 20)


# ---- batching, errors ---------------------------------------------------------------------


def test_vmap_matches_loops(x64):
    rng = np.random.default_rng(5)
    a = rand(rng, (3, 2, 5, 5), "float64")
    c = rand(rng, (3, 2, 5, 2), "float64")

    def fns(a, c):
        h, taus = lax.linalg.hessenberg(a)
        return [h, taus, *lax.linalg.tridiagonal(a, lower=False),
                lax.linalg.householder_product(a[:, :4], taus[:3]),
                lax.linalg.ormqr(a, taus, c, transpose=True)]
    for in_axes in (0, 1):
        got = jax.vmap(jax.vmap(fns), in_axes=in_axes)(a, c)
        for i, g in enumerate(got):
            for j in range(a.shape[in_axes]):
                outer = [x[j] if in_axes == 0 else x[:, j] for x in (a, c)]
                for k in range(outer[0].shape[0]):
                    want = fns(outer[0][k], outer[1][k])[i]
                    np.testing.assert_allclose(np.asarray(g)[j, k], want, rtol=1e-12,
                                               atol=1e-12)


@pytest.mark.parametrize("call, error, text", [
    (lambda: lax.linalg.hessenberg(np.ones((3, 2), np.float32)), ValueError,
     r"must have shape \[..., n, n\], got shape \(3, 2\)"),
    (lambda: lax.linalg.hessenberg(np.ones((3, 3), np.int32)), TypeError,
     "hessenberg does not accept dtype int32"),
    (lambda: lax.linalg.tridiagonal(np.ones((0, 0), np.float32)), ValueError,
     "must be a square matrix"),
    (lambda: lax.linalg.householder_product(np.ones((2, 3), np.float32),
                                            np.ones(2, np.float32)), ValueError,
     "at least as many rows as columns, got shape \\(2, 3\\)"),
    (lambda: lax.linalg.householder_product(np.ones((3, 2), np.float32),
                                            np.ones(3, np.float32)), ValueError,
     "must not have more rows"),
    (lambda: lax.linalg.householder_product(np.ones((3, 2), np.float32),
                                            np.ones(2, np.complex64)), TypeError,
     "requires arguments to have the same dtypes, got float32, complex64"),
    (lambda: lax.linalg.householder_product(np.ones((2, 3, 2), np.float32),
                                            np.ones(2, np.float32)), TypeError,
     "same number of batch dimensions"),
    (lambda: lax.linalg.ormqr(np.ones((3, 2), np.float32), np.ones(2, np.float32),
                              np.ones((2, 3), np.float32)), ValueError,
     r"left=True expects c to have the same number of rows .* c shape \(2, 3\)"),
    (lambda: lax.linalg.ormqr(np.ones((3, 2), np.float32), np.ones(2, np.float32),
                              np.ones((3, 2), np.float32), left=False), ValueError,
     "left=False expects c to have the same number of columns"),
])
def test_bad_input_raises_at_trace_time(call, error, text):
    with pytest.raises(error, match=text):
        call()
    with pytest.raises(error, match=text):
        jax.make_jaxpr(call)()


def test_no_derivatives_as_in_jax():
    a = np.eye(3, dtype=np.float32) * 2
    with pytest.raises(NotImplementedError, match="hessenberg"):
        jax.jvp(lambda a: lax.linalg.hessenberg(a)[0], (a,), (a,))


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_stacks_run_in_the_c_routine(dtype, monkeypatch):
    """A stack of >= LIBRARY_STACK matrices runs through the CPU backend's C loop over
    LAPACK (never the per-matrix implementation), with the per-matrix results."""
    from tinyjax.dispatch import LIBRARY_STACK
    rng = np.random.default_rng(7)
    with x64_for(dtype):
        a = rand(rng, (LIBRARY_STACK + 1, 4, 4), dtype)
        c = rand(rng, (LIBRARY_STACK + 1, 3, 4), dtype)

        def fn(a, c):
            h, taus = lax.linalg.hessenberg(a)
            return [h, taus, *lax.linalg.tridiagonal(a),
                    lax.linalg.householder_product(h, taus),
                    lax.linalg.ormqr(h, taus, c, left=False, transpose=True)]
        singles = [fn(a[i], c[i]) for i in range(len(a))]
        for prim in (lax.linalg.hessenberg_p, lax.linalg.tridiagonal_p,
                     lax.linalg.householder_product_p, lax.linalg.ormqr_p):
            monkeypatch.setattr(prim, "impl", None)   # a per-matrix call would fail
        for k, got in enumerate(fn(a, c)):
            for i, single in enumerate(singles):
                close(np.asarray(got)[i], single[k], dtype)


@settings(max_examples=8, deadline=None)
@given(dtype=st.sampled_from(DTYPES), batch=BATCHES, m=st.integers(1, 6),
       n=st.integers(1, 6), cols=st.integers(1, 3), left=st.booleans(),
       transpose=st.booleans(), lower=st.booleans(), seed=st.integers(0, 999))
def test_jit_matches_eager(dtype, batch, m, n, cols, left, transpose, lower, seed):
    """The compiled CPU step (the C loop over LAPACK) against the eager SciPy calls."""
    m, n = max(m, n), min(m, n)
    with x64_for(dtype):
        rng = np.random.default_rng(seed)
        a = rand(rng, batch + (m, n), dtype)
        sq = rand(rng, batch + (m, m), dtype)
        c = rand(rng, batch + ((m, cols) if left else (cols, m)), dtype)

        def fn(a, sq, c):
            h, taus = lax.linalg.hessenberg(sq)
            k = min(n, m - 1)
            return [h, taus, *lax.linalg.tridiagonal(sq, lower=lower),
                    lax.linalg.householder_product(a, taus[..., :k]),
                    lax.linalg.ormqr(a, taus[..., :k], c, left=left, transpose=transpose)]
        for got, want in zip(jax.jit(fn)(a, sq, c), fn(a, sq, c)):
            close(got, want, dtype, 10)
