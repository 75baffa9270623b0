"""jnp.vectorize against numpy.vectorize."""
import numpy as np
import pytest

from tinyjax import lax
from tinyjax.numpy._vectorize import vectorize


def test_elementwise_vectorize_broadcasts():
    f = vectorize(lambda a, b: lax.max(a, b) * 2.0)
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    b = np.array([1.0, 4.0, 2.0], np.float32)
    np.testing.assert_allclose(f(a, b), np.vectorize(lambda a, b: max(a, b) * 2)(a, b))


def test_signature_core_dims():
    dot = vectorize(lambda x, y: lax.reduce_sum(x * y, (0,)), signature="(n),(n)->()")
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((3,)).astype(np.float32)
    np.testing.assert_allclose(dot(x, y), x @ y, rtol=1e-5)


def test_signature_errors():
    f = vectorize(lambda x, y: x, signature="(n),(n)->(n)")
    with pytest.raises(ValueError, match="inconsistent size for core dimension 'n'"):
        f(np.ones(3, np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="not a valid gufunc signature"):
        vectorize(lambda x: x, signature="(n->)")


def test_excluded_argument():
    f = vectorize(lambda x, p: x * p, excluded={1})
    np.testing.assert_allclose(f(np.arange(3.0, dtype=np.float32), 2.0), [0, 2, 4])
