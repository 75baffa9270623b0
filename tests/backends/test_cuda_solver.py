"""The CUDA backend's cuSOLVER and cuBLAS steps (tinyjax/backends/cuda/solver.py).

Everywhere: the steps run against stand-ins for cuSOLVER, cuBLAS and the fix-up kernels
on host memory (tests/backends/fake_cuda_libraries.py, each routine as NVIDIA documents it
on column-major matrices), which checks the row-/column-major reasoning, leading
dimensions, batch strides, workspaces, the choice of routine and JAX's NaNs against
numpy; the fix-up kernels compile with nvcc where it is installed.  On a machine with a
CUDA device: the same steps compiled for ``cuda``, against numpy."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
import tinyjax.scipy.linalg as jsl
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.backends.cuda import solver
from tinyjax.backends.cuda.library import FIXUP_SOURCE
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.config import config
from tinyjax.lax.linalg import SvdAlgorithm

from tests.backends.fake_cuda_libraries import fake_libraries
from tests.linalg_support import hermitian_pd, rand
from tests.cuda_support import assert_nvcc_compiles, needs_cuda, needs_nvcc, to_host

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]


def _tol(dtype) -> float:
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


def _run(libs, run, ins, out_shapes):
    """``run`` on fake device copies of ``ins``; the outputs on the host."""
    bufs = [libs.device.put(x) for x in ins]
    outs = [libs.device.alloc(shape, dt) for shape, dt in out_shapes]
    run(bufs, outs)
    return [o.numpy() for o in outs]


# ---- Cholesky ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, routine", [((5, 5), "potrf"), ((1, 7, 7), "potrf"),
                                            ((3, 4, 4), "potrfBatched"),
                                            ((2, 40, 40), "potrf")])
def test_cholesky_factors_each_matrix(dtype, shape, routine):
    libs = fake_libraries()
    a = hermitian_pd(np.random.default_rng(0), shape[:-2], shape[-1], dtype)
    if len(shape) == 3 and shape[0] > 1:
        a[1] = -a[1]   # not positive definite: its factor is NaN
    (got,) = _run(libs, solver.cholesky(libs, jax.ShapedArray(shape, dtype)), [a],
                  [(shape, dtype)])
    assert libs.cusolver[0].calls[-1] == solver.PREFIX[np.dtype(dtype)] + routine
    for b, (g, x) in enumerate(zip(got.reshape((-1,) + shape[-2:]),
                                   a.reshape((-1,) + shape[-2:]))):
        assert np.all(np.triu(g, 1) == 0)
        if len(shape) == 3 and b == 1:
            assert np.all(np.isnan(g[np.tril_indices(shape[-1])]))
        else:
            np.testing.assert_allclose(g, np.linalg.cholesky(x), rtol=_tol(dtype),
                                       atol=_tol(dtype))


# ---- triangular solves -------------------------------------------------------------------

def _solve_reference(a, b, left_side, lower, transpose_a, conjugate_a, unit_diagonal):
    t = np.tril(a) if lower else np.triu(a)
    if unit_diagonal:
        t = t.copy()
        np.fill_diagonal(t, 1)
    if conjugate_a:
        t = np.conj(t)
    if transpose_a:
        t = t.T
    return np.linalg.solve(t, b) if left_side else np.linalg.solve(t.T, b.T).T


@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
@pytest.mark.parametrize("batch", [(), (3,)])
@pytest.mark.parametrize("left_side", [True, False])
def test_triangular_solve_every_flag(dtype, batch, left_side):
    rng = np.random.default_rng(1)
    rows, cols = 4, 3
    k = rows if left_side else cols
    a = rand(rng, batch + (k, k), dtype) + 3 * np.eye(k, dtype=dtype)
    b = rand(rng, batch + (rows, cols), dtype)
    for lower in (False, True):
        for transpose_a in (False, True):
            for conjugate_a in (False, True):
                for unit in (False, True):
                    flags = dict(left_side=left_side, lower=lower, transpose_a=transpose_a,
                                 conjugate_a=conjugate_a, unit_diagonal=unit)
                    libs = fake_libraries()
                    avals = [jax.ShapedArray(a.shape, dtype), jax.ShapedArray(b.shape, dtype)]
                    (got,) = _run(libs, solver.triangular_solve(libs, avals, flags), [a, b],
                                  [(b.shape, dtype)])
                    want = np.stack([_solve_reference(x, y, **flags) for x, y in zip(
                        a.reshape((-1, k, k)), b.reshape((-1, rows, cols)))])
                    np.testing.assert_allclose(got.reshape(want.shape), want,
                                               rtol=_tol(dtype), atol=_tol(dtype),
                                               err_msg=str(flags))
                    routine = "trsm" if not batch else "trsmBatched"
                    assert libs.cublas[0].calls == [solver.PREFIX[np.dtype(dtype)] + routine]


# ---- SVD ---------------------------------------------------------------------------------

def _svd(libs, a, full_matrices, compute_uv, algorithm=None):
    m, n = a.shape[-2:]
    k = min(m, n)
    params = dict(full_matrices=full_matrices, compute_uv=compute_uv, subset_by_index=None,
                  algorithm=algorithm)
    aval = jax.ShapedArray(a.shape, a.dtype)
    assert solver.svd_on_device(aval, params)
    batch = a.shape[:-2]
    real = np.zeros(1, a.dtype).real.dtype
    shapes = [(batch + (k,), real)]
    if compute_uv:
        shapes += [(batch + (m, m if full_matrices else k), a.dtype),
                   (batch + (n if full_matrices else k, n), a.dtype)]
    return _run(libs, solver.svd(libs, aval, params), [a], shapes)


def _check_svd(a, outs, full_matrices, compute_uv):
    tol = _tol(a.dtype)
    m, n = a.shape[-2:]
    k = min(m, n)
    s = outs[0]
    np.testing.assert_allclose(s, np.linalg.svd(a, compute_uv=False), rtol=tol,
                               atol=tol * max(1, np.abs(s).max()))
    if not compute_uv:
        return
    u, vt = outs[1], outs[2]
    back = (u[..., :, :k] * s[..., None, :].astype(a.dtype)) @ vt[..., :k, :]
    np.testing.assert_allclose(back, a, atol=tol * 10 * max(1, np.abs(a).max()))
    for q in (u, np.conj(np.swapaxes(vt, -1, -2))):   # orthonormal columns
        gram = np.conj(np.swapaxes(q, -1, -2)) @ q
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(q.shape[-1]), gram.shape),
                                   atol=tol * 10)


@given(m=st.integers(1, 12), n=st.integers(1, 12), batch=st.sampled_from([(), (1,), (3,)]),
       dtype=st.sampled_from(DTYPES), full_matrices=st.booleans(), compute_uv=st.booleans(),
       algorithm=st.sampled_from([None, SvdAlgorithm.DEFAULT, SvdAlgorithm.QR,
                                  SvdAlgorithm.JACOBI]),
       seed=st.integers(0, 2 ** 16))
@settings(max_examples=60, deadline=None)
def test_svd_of_every_shape(m, n, batch, dtype, full_matrices, compute_uv, algorithm, seed):
    a = rand(np.random.default_rng(seed), batch + (m, n), dtype)
    libs = fake_libraries()
    outs = _svd(libs, a, full_matrices, compute_uv, algorithm)
    _check_svd(a, outs, full_matrices, compute_uv)
    routine = libs.cusolver[0].calls[-1][1:]
    if algorithm == SvdAlgorithm.QR:
        assert routine == "gesvd"
    else:
        assert routine == ("gesvdjBatched" if len(batch) and batch[0] > 1 else "gesvdj")


@pytest.mark.parametrize("shape", [(2, 40, 33), (33, 40)])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_of_matrices_over_the_batched_limit(shape, full_matrices):
    a = rand(np.random.default_rng(3), shape, np.complex64)
    libs = fake_libraries()
    _check_svd(a, _svd(libs, a, full_matrices, True), full_matrices, True)
    batch = shape[0] if len(shape) == 3 else 1
    assert libs.cusolver[0].calls == ["Cgesvdj_bufferSize"] + ["Cgesvdj"] * batch


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (5, 5), (2, 6, 4), (2, 4, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128])
def test_gesvd_of_tall_wide_and_square_matrices(shape, dtype):
    a = rand(np.random.default_rng(2), shape, dtype)
    for full in (False, True):
        for compute_uv in (False, True):
            libs = fake_libraries()
            outs = _svd(libs, a, full, compute_uv, SvdAlgorithm.QR)
            _check_svd(a, outs, full, compute_uv)


def test_large_matrices_take_gesvd_as_in_jax(monkeypatch):
    monkeypatch.setattr(solver, "JACOBI_MAX", 8)
    for shape in [(9, 4), (4, 9), (2, 12, 12)]:
        a = rand(np.random.default_rng(4), shape, np.float64)
        libs = fake_libraries()
        _check_svd(a, _svd(libs, a, False, True), False, True)
        assert set(libs.cusolver[0].calls) == {"Dgesvd_bufferSize", "Dgesvd"}
        libs = fake_libraries()
        _svd(libs, a, False, True, SvdAlgorithm.JACOBI)
        assert libs.cusolver[0].calls[-1].startswith("Dgesvdj")


@pytest.mark.parametrize("algorithm", [SvdAlgorithm.JACOBI, SvdAlgorithm.QR])
@pytest.mark.parametrize("shape", [(3, 5, 4), (3, 40, 33)])
def test_svd_that_does_not_converge_is_nan(algorithm, shape):
    a = rand(np.random.default_rng(5), shape, np.float32)
    a[1, 0, 0] = np.nan
    outs = _svd(fake_libraries(), a, False, True, algorithm)
    for out in outs:
        assert np.all(np.isnan(out[1]))
        assert np.all(np.isfinite(out[[0, 2]]))
    _check_svd(a[[0, 2]], [o[[0, 2]] for o in outs], False, True)


def test_what_runs_on_the_host():
    aval = jax.ShapedArray((4, 3), np.float32)
    base = dict(full_matrices=False, compute_uv=True, subset_by_index=None, algorithm=None)
    assert solver.svd_on_device(aval, base)
    assert not solver.svd_on_device(jax.ShapedArray((0, 3), np.float32), base)
    assert not solver.svd_on_device(aval, dict(base, subset_by_index=(0, 2)))
    assert not solver.svd_on_device(aval, dict(base, algorithm=SvdAlgorithm.POLAR))


def test_workspaces_are_queried_once_per_shape():
    libs = fake_libraries()
    aval = jax.ShapedArray((6, 6), np.float32)
    run = solver.cholesky(libs, aval)
    a = hermitian_pd(np.random.default_rng(6), (), 6, np.float32)
    for _ in range(3):
        _run(libs, run, [a], [((6, 6), np.float32)])
    assert libs.cusolver[0].calls == ["Spotrf_bufferSize"] + ["Spotrf"] * 3


# ---- Householder products and the tridiagonal reduction ----------------------------------

def _reflectors(rng, batch, m, n, dtype):
    """Reflectors and factors of a random m x n stack (from the CPU's geqrf via SciPy)."""
    a = rand(rng, batch + (m, n), dtype)
    raw = [scipy.linalg.qr(x, mode="raw")[0] for x in a.reshape((-1, m, n))]
    store = np.stack([np.ascontiguousarray(r[0]) for r in raw]).reshape(a.shape)
    taus = np.stack([r[1] for r in raw]).reshape(batch + (min(m, n),))
    return store, taus


def _eager(fn, *args):
    with config.override(jax_enable_x64=True):
        out = fn(*args)
    return [np.asarray(o) for o in (out if isinstance(out, (tuple, list)) else [out])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(), (3,)])
def test_householder_product_and_ormqr(dtype, batch):
    rng = np.random.default_rng(11)
    store, taus = _reflectors(rng, batch, 6, 4, dtype)
    avals = [jax.ShapedArray(store.shape, dtype), jax.ShapedArray(taus[..., :3].shape, dtype)]
    libs = fake_libraries()
    (q,) = _run(libs, solver.householder_product(libs, avals), [store, taus[..., :3]],
                [(store.shape, dtype)])
    (want,) = _eager(lax.linalg.householder_product, store, taus[..., :3])
    np.testing.assert_allclose(q, want, rtol=_tol(dtype), atol=_tol(dtype))
    p = solver.PREFIX[np.dtype(dtype)]
    routine = "orgqr" if p in "SD" else "ungqr"
    assert libs.cusolver[0].calls == [p + routine + "_bufferSize"] + [p + routine] * max(
        1, int(np.prod(batch)))
    for left in (True, False):
        for transpose in (False, True):
            c = rand(rng, batch + ((6, 2) if left else (3, 6)), dtype)
            params = dict(left=left, transpose=transpose)
            avals = [jax.ShapedArray(x.shape, dtype) for x in (store, taus, c)]
            libs = fake_libraries()
            (got,) = _run(libs, solver.ormqr(libs, avals, params), [store, taus, c],
                          [(c.shape, dtype)])
            (want,) = _eager(lambda *x: lax.linalg.ormqr(*x, **params), store, taus, c)
            np.testing.assert_allclose(got, want, rtol=_tol(dtype), atol=_tol(dtype),
                                       err_msg=str(params))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch", [(), (2,)])
@pytest.mark.parametrize("lower", [True, False])
def test_tridiagonal(dtype, batch, lower):
    a = rand(np.random.default_rng(12), batch + (5, 5), dtype)
    real = np.zeros(1, dtype).real.dtype
    shapes = [(a.shape, dtype), (batch + (5,), real), (batch + (4,), real),
              (batch + (4,), dtype)]
    libs = fake_libraries()
    got = _run(libs, solver.tridiagonal(libs, jax.ShapedArray(a.shape, dtype),
                                        dict(lower=lower)), [a], shapes)
    want = _eager(lambda x: lax.linalg.tridiagonal(x, lower=lower), a)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=_tol(dtype), atol=_tol(dtype))


# ---- on the GPU --------------------------------------------------------------------------

def _on_cuda(fn, *args):
    closed = jax.make_jaxpr(fn)(*args)
    return [to_host(o) for o in compile_jaxpr(closed, get_backend("cuda"))(*args)]


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_cholesky_and_cho_solve(dtype):
    rng = np.random.default_rng(7)
    with config.override(jax_enable_x64=np.dtype(dtype) in (np.float64, np.complex128)):
        for shape in [(64, 64), (4, 8, 8), (2, 40, 40)]:
            a = hermitian_pd(rng, shape[:-2], shape[-1], dtype)
            (got,) = _on_cuda(lambda x: lax.linalg.cholesky(x), a)
            np.testing.assert_allclose(got, np.linalg.cholesky(a), rtol=_tol(dtype) * 10,
                                       atol=_tol(dtype) * 10)
        a, b = hermitian_pd(rng, (), 200, dtype), rand(rng, (200, 16), dtype)
        (x,) = _on_cuda(lambda a, b: jsl.cho_solve(jsl.cho_factor(a, lower=True), b), a, b)
        np.testing.assert_allclose(a @ x, b, atol=_tol(dtype) * 100)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(40, 33), (33, 40), (3, 6, 4), (2, 40, 33), (1, 1)])
@pytest.mark.parametrize("full_matrices", [False, True])
def test_cuda_svd_jacobi(dtype, shape, full_matrices):
    a = rand(np.random.default_rng(8), shape, dtype)
    with config.override(jax_enable_x64=np.dtype(dtype) in (np.float64, np.complex128)):
        u, s, vt = _on_cuda(lambda x: lax.linalg.svd(x, full_matrices=full_matrices), a)
        _check_svd(a, [s, u, vt], full_matrices, True)
        (s_only,) = _on_cuda(lambda x: lax.linalg.svd(x, compute_uv=False), a)
        _check_svd(a, [s_only], False, False)


@needs_cuda
@pytest.mark.parametrize("shape", [(40, 33), (33, 40), (2, 12, 12)])
def test_cuda_svd_gesvd(shape):
    a = rand(np.random.default_rng(9), shape, np.float32)
    for full in (False, True):
        u, s, vt = _on_cuda(lambda x: lax.linalg.svd(x, full_matrices=full,
                                                     algorithm=SvdAlgorithm.QR), a)
        _check_svd(a, [s, u, vt], full, True)


@needs_cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_householder_routines(dtype):
    rng = np.random.default_rng(13)
    with config.override(jax_enable_x64=np.dtype(dtype) in (np.float64, np.complex128)):
        store, taus = _reflectors(rng, (2,), 7, 5, dtype)
        c = rand(rng, (2, 7, 3), dtype)
        a = rand(rng, (2, 6, 6), dtype)

        def products(store, taus, c):
            return [lax.linalg.householder_product(store, taus),
                    lax.linalg.ormqr(store, taus, c, transpose=True),
                    lax.linalg.ormqr(store, taus, jnp.swapaxes(c, 1, 2), left=False)]
        got = _on_cuda(products, store, taus, c)
        for g, w in zip(got, _eager(products, store, taus, c)):
            np.testing.assert_allclose(g, w, rtol=_tol(dtype) * 10, atol=_tol(dtype) * 10)
        for lower in (True, False):
            # the reduction is unique up to the signs (phases) of the reflectors: the
            # diagonal and the off-diagonal's magnitudes are fixed
            out, d, e, _ = _on_cuda(lambda x: lax.linalg.tridiagonal(x, lower=lower), a)
            _, want_d, want_e, _ = _eager(lambda x: lax.linalg.tridiagonal(x, lower=lower), a)
            tol = _tol(dtype) * 10
            np.testing.assert_allclose(d, want_d, rtol=tol, atol=tol)
            np.testing.assert_allclose(np.abs(e), np.abs(want_e), rtol=tol, atol=tol)
            untouched = (lambda x: np.triu(x, 1)) if lower else (lambda x: np.tril(x, -1))
            np.testing.assert_array_equal(untouched(out), untouched(a))   # not accessed


@needs_nvcc
def test_fixup_kernels_compile(tmp_path):
    assert_nvcc_compiles(FIXUP_SOURCE, tmp_path)
