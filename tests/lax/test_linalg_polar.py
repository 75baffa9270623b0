"""lax.linalg.qdwh, the polar decomposition: against scipy.linalg.polar over drawn shapes,
conditioning and dtypes; the outputs' types (num_iters weakly typed, as in JAX); JAX's
error types; dynamic_shape; vmap against loops; every device's compiled program against
eager."""
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.config import config
from tinyjax.core import ShapedArray
from tinyjax.jaxpr import eval_jaxpr
from tests.linalg_support import DTYPES, close, rand, x64_for

SETTINGS = settings(max_examples=10, deadline=None)


def _conditioned(rng, m, n, dtype, cond):
    """An m x n matrix with singular values spread log-evenly over [1/cond, 1]."""
    u = np.linalg.qr(rand(rng, (m, n), dtype))[0]
    v = np.linalg.qr(rand(rng, (n, n), dtype))[0]
    s = np.logspace(0, -np.log10(cond), n)
    return ((u * s) @ v).astype(dtype)


@SETTINGS
@given(dtype=st.sampled_from(DTYPES), m=st.integers(1, 7), n=st.integers(1, 7),
       log_cond=st.integers(0, 4), scale=st.sampled_from([1e-3, 1.0, 50.0]),
       seed=st.integers(0, 999))
def test_matches_scipy_polar(dtype, m, n, log_cond, scale, seed):
    m, n = max(m, n), min(m, n)
    with x64_for(dtype):
        x = (_conditioned(np.random.default_rng(seed), m, n, dtype, 10.0 ** log_cond)
             * scale).astype(dtype)
        u, h, iters, converged = lax.linalg.qdwh(x)
        assert u.shape == (m, n) and h.shape == (n, n)
        assert u.dtype == h.dtype == np.dtype(dtype)
        assert converged.dtype == np.bool_
        assert bool(converged) and 0 < int(iters) <= 10
        want_u, want_h = scipy.linalg.polar(x.astype(np.complex128 if "complex" in dtype
                                                     else np.float64))
        tol = 10 ** log_cond * 20
        close(u, want_u, dtype, tol)
        close(np.asarray(h) / scale, want_h / scale, dtype, tol)
        close(np.conj(np.asarray(u)).T @ np.asarray(u), np.eye(n), dtype, 20)


def test_options():
    rng = np.random.default_rng(1)
    x = rand(rng, (6, 4), "float32")
    capped = lax.linalg.qdwh(x, max_iterations=1)
    assert int(capped[2]) == 1 and not bool(capped[3])
    loose = lax.linalg.qdwh(x, eps=1e-3, is_hermitian=False)
    close(loose[0] @ loose[1], x, "float32", 50)
    padded = np.zeros((8, 6), np.float32)
    padded[:6, :4] = x
    u, h, _, _ = lax.linalg.qdwh(padded, dynamic_shape=(6, 4))
    assert u.shape == (8, 6) and h.shape == (6, 6)
    u0, h0, _, _ = lax.linalg.qdwh(x)
    close(np.asarray(u)[:6, :4], u0, "float32")
    close(np.asarray(h)[:4, :4], h0, "float32")
    assert not np.asarray(u)[6:].any() and not np.asarray(u)[:, 4:].any()
    assert not np.asarray(h)[4:].any() and not np.asarray(h)[:, 4:].any()


@pytest.mark.parametrize("x64_on, int_dtype", [(False, np.int32), (True, np.int64)])
def test_num_iters_is_weakly_typed(x64_on, int_dtype):
    """JAX's count is a weakly typed integer of the default width (eager, jit and vmap)."""
    x = rand(np.random.default_rng(4), (5, 3), "float32")
    with config.override(jax_enable_x64=x64_on):
        want = ShapedArray((), int_dtype, weak_type=True)
        assert jax.typeof(lax.linalg.qdwh(x)[2]) == want
        assert jax.typeof(jax.jit(lax.linalg.qdwh)(x)[2]) == want
        assert jax.typeof(lax.linalg.qdwh(x, max_iterations=0)[2]) == want
        batched = jax.typeof(jax.vmap(lax.linalg.qdwh)(np.stack([x, x]))[2])
        assert batched == ShapedArray((2,), int_dtype, weak_type=True)
        assert jax.typeof(lax.linalg.qdwh(x)[3]) == ShapedArray((), np.bool_)
        # a weak count takes the other operand's type, as in JAX
        assert (lax.linalg.qdwh(x)[2] + np.int8(1)).dtype == np.int8


@pytest.mark.parametrize("x, error, text", [
    (np.ones((2, 3), np.float32), ValueError, "must have M >= N"),
    (np.ones((2, 3, 3), np.float32), ValueError, "shape M x N"),
    (np.ones((3, 3), np.int32), ValueError, "qdwh: data type int32 not inexact"),
    (np.ones((3, 3), np.bool_), ValueError, "qdwh: data type bool not inexact"),
    (np.ones((3, 3), np.float16), NotImplementedError, "qdwh: Unsupported dtype float16"),
])
def test_bad_input(x, error, text):
    """JAX's exception types: integers are not inexact, half precision is not
    implemented."""
    with pytest.raises(error, match=text):
        lax.linalg.qdwh(x)


@pytest.mark.parametrize("name, value", [("eps", 1e-3), ("max_iterations", 3),
                                         ("is_hermitian", True)])
def test_traced_static_argument(name, value):
    """JAX's qdwh takes these as static jit arguments: a traced one is a ValueError."""
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ValueError, match=f"Non-hashable static.*qdwh's `{name}`"):
        jax.jit(lambda x, v: lax.linalg.qdwh(x, **{name: v}))(x, value)


def test_vmap_matches_loops(x64):
    rng = np.random.default_rng(2)
    xs = np.stack([_conditioned(rng, 5, 3, "float64", c) for c in (1.0, 1e3, 1e6)])
    got = jax.vmap(lax.linalg.qdwh)(xs)
    for i in range(3):
        for g, w in zip(got, lax.linalg.qdwh(xs[i])):
            np.testing.assert_allclose(np.asarray(g)[i], np.asarray(w), rtol=1e-10,
                                       atol=1e-12)


@pytest.mark.parametrize("padded", [False, True])
def test_compiled_matches_eager(device, x64, padded):
    """Every device's program against the eager evaluation of the same jaxpr; padded:
    with a traced dynamic_shape (the masked QR steps)."""
    x = _conditioned(np.random.default_rng(3), 6, 4, "complex128", 1e4)
    if padded:
        x = np.pad(x, ((0, 2), (0, 1)))
        args = (x, np.int32(6), np.int32(4))
        closed = jax.make_jaxpr(
            lambda p, m, n: lax.linalg.qdwh(p, dynamic_shape=(m, n)))(*args)
    else:
        args = (x,)
        closed = jax.make_jaxpr(lax.linalg.qdwh)(x)
    got = compile_jaxpr(closed, get_backend(device))(*args)
    for g, w in zip(got, eval_jaxpr(closed.jaxpr, closed.consts, *args)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_traced_dynamic_shape(dtype):
    """As in JAX, dynamic_shape may be traced: one jitted function decomposes blocks of
    several sizes of one padded shape, each as the unpadded matrix, zero-padded."""
    rng = np.random.default_rng(8)
    decompose = jax.jit(lambda p, m, n: lax.linalg.qdwh(p, dynamic_shape=(m, n)))
    with x64_for(dtype):
        for m, n, cond in ((6, 4, 1e3), (5, 2, 10.0), (7, 5, 1e8)):
            x = _conditioned(rng, m, n, dtype, cond)
            padded = np.zeros((7, 5), dtype)
            padded[:m, :n] = x
            u, h, iters, converged = decompose(padded, m, n)
            want = lax.linalg.qdwh(x)
            np.testing.assert_allclose(np.asarray(u)[:m, :n], want[0], rtol=1e-9, atol=1e-9)
            np.testing.assert_allclose(np.asarray(h)[:n, :n], want[1], rtol=1e-9, atol=1e-9)
            assert int(iters) == int(want[2]) and bool(converged) == bool(want[3])
            assert not np.asarray(u)[m:].any() and not np.asarray(u)[:, n:].any()
            assert not np.asarray(h)[n:].any() and not np.asarray(h)[:, n:].any()
