"""Window functions and i0 against numpy."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp


@pytest.mark.parametrize("name", ["bartlett", "blackman", "hamming", "hanning"])
@pytest.mark.parametrize("M", [0, 1, 2, 5, 8])
def test_windows_match_numpy(name, M):
    out = getattr(jnp, name)(M)
    assert out.dtype == np.float32 and out.shape == (M,)
    np.testing.assert_allclose(out, getattr(np, name)(M), atol=1e-6)
    np.testing.assert_allclose(jax.jit(getattr(jnp, name), static_argnums=0)(M),
                               getattr(np, name)(M), atol=1e-6)


def test_i0_and_kaiser():
    x = np.linspace(-5, 5, 11).astype(np.float32)
    np.testing.assert_allclose(jnp.i0(x), np.i0(x), rtol=1e-5)
    for M, beta in [(1, 2.0), (5, 2.0), (8, 0.5)]:
        np.testing.assert_allclose(jnp.kaiser(M, beta), np.kaiser(M, beta), rtol=1e-5)
