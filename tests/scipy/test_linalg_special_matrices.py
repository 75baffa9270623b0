"""tinyjax.scipy.linalg's special matrices against scipy.linalg's: values, dtypes,
batching over leading dimensions, jit, the errors."""
import numpy as np
import pytest
import scipy.linalg as sl
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
import tinyjax.scipy.linalg as jsl

rng = np.random.default_rng(0)


def close(ours, theirs, rtol=1e-5, atol=1e-5):
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=rtol, atol=atol)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 6), n=st.integers(1, 8), mode=st.sampled_from(["full", "same", "valid"]))
def test_convolution_matrix_convolves(m, n, mode):
    a = rng.standard_normal(m).astype(np.float32)
    v = rng.standard_normal(n).astype(np.float32)
    out = jsl.convolution_matrix(a, n, mode)
    close(out, sl.convolution_matrix(a, n, mode))
    close(out @ v, np.convolve(a, v, mode), atol=1e-4)


def test_convolution_matrix_batches_and_errors():
    a = rng.standard_normal((2, 3)).astype(np.float32)
    out = jsl.convolution_matrix(a, 4)
    assert out.shape == (2, 6, 4)
    for k in range(2):
        close(out[k], sl.convolution_matrix(a[k], 4))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        jsl.convolution_matrix(a, 0)
    with pytest.raises(ValueError, match="mode must be one of"):
        jsl.convolution_matrix(a, 2, "circular")


@pytest.mark.parametrize("coeffs", [[1.0, -16, 86, -176, 105], [2.0, 3.0], [1.0, 0, -1],
                                    [4.0, 1, 2, 3, 5, 6]])
def test_fiedler_companion_eigenvalues_are_the_roots(coeffs):
    a = np.array(coeffs)
    out = jsl.fiedler_companion(a)
    close(out, sl.fiedler_companion(a))
    np.testing.assert_allclose(np.sort_complex(np.linalg.eigvals(np.asarray(out))),
                               np.sort_complex(np.roots(a)), atol=1e-3)


def test_vector_built_matrices():
    a = np.array([1, 4, 12, 45, 77])
    out = jsl.fiedler(a)
    assert out.dtype == np.int32
    close(out, sl.fiedler(a))
    close(jsl.fiedler(np.stack([a, 2 * a]))[1], sl.fiedler(2 * a))
    f, s = np.array([0.1, 2.0, 1.0, 0.1]), np.array([0.2, 0.8, 0.7])
    close(jsl.leslie(f, s), sl.leslie(f, s))
    close(jsl.leslie(np.stack([f, f]), s)[1], sl.leslie(f, s))
    with pytest.raises(ValueError, match="one less than the length of f"):
        jsl.leslie(f, f)
    with pytest.raises(ValueError, match="nonzero length"):
        jsl.fiedler_companion(np.zeros(0))


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_matrices_of_an_order(n):
    close(jsl.invhilbert(n), sl.invhilbert(n), rtol=1e-4)
    if n <= 4:  # (the Hilbert matrix's condition number grows like e^(3.5 n))
        close(jsl.invhilbert(n) @ jsl.hilbert(n), np.eye(n), atol=1e-2)
    for kind in ("symmetric", "lower", "upper"):
        close(jsl.pascal(n, kind), sl.pascal(n, kind), rtol=1e-4)
        close(jsl.invpascal(n, kind), sl.invpascal(n, kind), rtol=1e-4)
    for full in (False, True):
        close(jsl.helmert(n, full), sl.helmert(n, full))
    for scale in (None, "sqrtn", "n"):
        out = jsl.dft(n, scale)
        assert out.dtype == np.complex64
        close(out, sl.dft(n, scale))


@pytest.mark.parametrize("n", [1, 2, 4, 16])
def test_hadamard(n):
    out = jsl.hadamard(n)
    assert out.dtype == np.int32
    close(out, sl.hadamard(n))
    assert jsl.hadamard(n, dtype=jnp.float32).dtype == np.float32


def test_jit_and_errors():
    close(jax.jit(lambda a: jsl.fiedler_companion(a))(np.array([1.0, 2, 3])),
          sl.fiedler_companion([1.0, 2, 3]))
    with pytest.raises(ValueError, match="positive power of 2"):
        jsl.hadamard(6)
    with pytest.raises(ValueError, match="Expected kind to be one of"):
        jsl.pascal(3, "diagonal")
    with pytest.raises(ValueError, match="complex floating-point"):
        jsl.dft(3, dtype=jnp.float32)
    with pytest.raises(ValueError, match="scale must be None"):
        jsl.dft(3, "unit")
    with pytest.raises(TypeError, match="static integer"):
        jax.jit(jsl.helmert)(3)
