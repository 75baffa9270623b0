"""jax.scipy.linalg.polar: both methods against scipy.linalg.polar over drawn shapes, sides,
batches and dtypes; method='qdwh' runs lax.linalg.qdwh (its eps and max_iterations
included) and takes the shapes and sides JAX's does; JAX's errors."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
from tinyjax import lax
from tinyjax.scipy.linalg import polar
from tests.linalg_support import DTYPES, close, rand, x64_for

SETTINGS = settings(max_examples=12, deadline=None)
NOT_QDWH = "method='qdwh' only supports mxn matrices"
# how far one iteration's u is, at least, from the converged one
TOL_MOVED = {"float32": 1e-4, "complex64": 1e-4, "float64": 1e-8, "complex128": 1e-8}
# two compilations of the same ops agree to a few ulps (bitwise on the C device; CUDA's
# fusion of polar's program may round differently from qdwh's own)
TOL_SAME = {"float32": 2e-6, "complex64": 2e-6, "float64": 1e-14, "complex128": 1e-14}


def _scipy_polar(x: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """scipy.linalg.polar of every matrix of a stack, in double precision."""
    wide = np.complex128 if np.iscomplexobj(x) else np.float64
    flat = x.reshape((-1,) + x.shape[-2:]).astype(wide)
    us, ps = zip(*(scipy.linalg.polar(a, side) for a in flat))
    return (np.stack(us).reshape(x.shape),
            np.stack(ps).reshape(x.shape[:-2] + ps[0].shape))


def _well_conditioned(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Matrices of ``shape`` with singular values in [1, 3] (u is well determined)."""
    *batch, m, n = shape
    k = min(m, n)
    u = np.linalg.qr(rand(rng, (*batch, m, k), dtype))[0]
    v = np.linalg.qr(rand(rng, (*batch, n, k), dtype))[0]
    s = rng.uniform(1.0, 3.0, (*batch, 1, k))
    return ((u * s) @ np.conj(np.swapaxes(v, -1, -2))).astype(dtype)


def _qdwh_supports(m: int, n: int, side: str) -> bool:
    return (m >= n) == (side == "right")


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.integers(1, 6), n=st.integers(1, 6),
       batch=st.sampled_from([(), (2,), (2, 1)]), side=st.sampled_from(["right", "left"]),
       method=st.sampled_from(["qdwh", "svd"]), seed=st.integers(0, 999))
def test_matches_scipy(dtype, m, n, batch, side, method, seed):
    if method == "qdwh" and not _qdwh_supports(m, n, side):   # (tested below)
        m, n, side = (n, m, side) if m != n else (m, n, "right")
    with x64_for(dtype):
        x = _well_conditioned(np.random.default_rng(seed), batch + (m, n), dtype)
        u, p = polar(x, side, method=method)
        want_u, want_p = _scipy_polar(x, side)
        k = n if side == "right" else m
        assert u.shape == x.shape and p.shape == batch + (k, k)
        assert u.dtype == p.dtype == np.dtype(dtype)
        close(u, want_u, dtype, 10)
        close(p, want_p, dtype, 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_qdwh_is_lax_qdwh(dtype):
    """method='qdwh' gives lax.linalg.qdwh's factors (conjugate-transposed for a wide
    matrix decomposed from the left), with its eps and max_iterations."""
    rng = np.random.default_rng(5)
    with x64_for(dtype):
        tall = _well_conditioned(rng, (6, 4), dtype)
        for opts in ({}, {"max_iterations": 1}, {"eps": 1e-3}):
            u, h, _, _ = lax.linalg.qdwh(tall, **opts)
            got = polar(tall, **opts)
            same = dict(rtol=TOL_SAME[dtype], atol=TOL_SAME[dtype])
            np.testing.assert_allclose(got[0], u, **same)
            np.testing.assert_allclose(got[1], h, **same)
            left = polar(np.conj(tall).T, "left", **opts)
            np.testing.assert_allclose(left[0], np.conj(np.asarray(u)).T, **same)
            np.testing.assert_allclose(left[1], h, **same)
        capped = polar(tall, max_iterations=1)[0]
        assert np.abs(np.asarray(capped) - np.asarray(polar(tall)[0])).max() > TOL_MOVED[dtype]


def test_methods_trace_to_their_algorithms():
    x = np.ones((4, 3), np.float32)
    qdwh = str(jax.make_jaxpr(polar)(x))
    svd = str(jax.make_jaxpr(lambda a: polar(a, method="svd"))(x))
    assert "while" in qdwh and "cholesky" in qdwh and "svd" not in qdwh
    assert "svd" in svd and "while" not in svd


def test_svd_ignores_qdwh_options():
    x = rand(np.random.default_rng(6), (3, 5), "float32")
    for side in ("right", "left"):
        want = polar(x, side, method="svd")
        got = polar(x, side, method="svd", eps=0.5, max_iterations=0)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_jvp_matches_svd_method():
    """Both methods compute the same function of a full-rank matrix, so their jvps
    agree (JAX, like tinyjax, has no reverse mode through qdwh's while loop)."""
    rng = np.random.default_rng(7)
    x, t = rand(rng, (5, 3), "float32"), rand(rng, (5, 3), "float32")
    got = jax.jvp(polar, (x,), (t,))[1]
    want = jax.jvp(lambda a: polar(a, method="svd"), (x,), (t,))[1]
    for g, w in zip(got, want):
        close(g, w, "float32", 20)
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        jax.grad(lambda a: polar(a)[0].sum())(x)


@pytest.mark.parametrize("shape, side", [((5, 3), "left"), ((3, 5), "right"),
                                         ((4, 4), "left"), ((2, 0, 3), "right")])
def test_qdwh_shapes_jax_rejects(shape, side):
    core = shape[-2:]
    with pytest.raises(NotImplementedError,
                       match=rf"{NOT_QDWH} .*got \({core[0]}, {core[1]}\) with side='{side}'"):
        polar(np.ones(shape, np.float32), side)
    u, p = polar(np.ones(shape, np.float32), side, method="svd")
    assert u.shape == shape


@pytest.mark.parametrize("args, kwargs, error, text", [
    ((np.ones(3),), {}, ValueError, "must be at least a 2-D array"),
    ((np.ones(3), "up"), {}, ValueError, "must be at least a 2-D array"),
    ((np.ones((3, 3)), "up"), {"method": "eig"}, ValueError, "`side` must be either"),
    ((np.ones((3, 3)),), {"method": "eig"}, ValueError, "Unknown polar .* method eig"),
    ((np.eye(3, dtype=np.int32),), {}, ValueError, "data type int32 not inexact"),
    ((np.eye(3, dtype=np.int32),), {"method": "svd"}, TypeError, "svd .* dtype int32"),
    ((np.eye(3, dtype=np.float16),), {}, NotImplementedError, "Unsupported dtype float16"),
])
def test_bad_input(args, kwargs, error, text):
    """JAX's checks in JAX's order: rank, side, method, then the algorithm's dtypes."""
    with pytest.raises(error, match=text):
        polar(*args, **kwargs)


def test_empty_and_list_inputs():
    u, p = polar(np.ones((3, 0), np.float32))
    assert u.shape == (3, 0) and p.shape == (0, 0)
    u, p = polar(np.ones((0, 3), np.float32), "left")
    assert u.shape == (0, 3) and p.shape == (0, 0)
    u, p = polar([[1.0, 2.0], [3.0, 4.0]])
    assert u.dtype == np.float32
    close(np.asarray(u) @ np.asarray(p), [[1.0, 2.0], [3.0, 4.0]], "float32", 5)
