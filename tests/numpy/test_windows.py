"""Window functions and i0 against numpy; i0 and kaiser's derivatives against finite
differences, jit against eager, vmap against a loop."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads


@pytest.mark.parametrize("name", ["bartlett", "blackman", "hamming", "hanning"])
@pytest.mark.parametrize("M", [0, 1, 2, 5, 8])
def test_windows_match_numpy(name, M):
    out = getattr(jnp, name)(M)
    assert out.dtype == np.float32 and out.shape == (M,)
    np.testing.assert_allclose(out, getattr(np, name)(M), atol=1e-6)
    np.testing.assert_allclose(jax.jit(getattr(jnp, name), static_argnums=0)(M),
                               getattr(np, name)(M), atol=1e-6)


def test_i0_matches_numpy():
    x = np.concatenate([np.linspace(-30, 30, 61), [0.0, 1e-3, -85.0, 85.0]])
    np.testing.assert_allclose(jnp.i0(x.astype(np.float32)), np.i0(x), rtol=2e-6)
    np.testing.assert_allclose(jax.jit(jnp.i0)(x.astype(np.float32)), np.i0(x), rtol=2e-6)
    assert jnp.i0(np.float16(2)).dtype == np.float16
    assert jnp.i0(3).dtype == np.float32 and jnp.i0(3).weak_type   # integers promote
    assert np.isinf(jnp.i0(700.0)) and np.isnan(jnp.i0(np.nan))
    with pytest.raises(ValueError, match="Unsupported input type to jax.numpy.i0: complex64"):
        jnp.i0(1 + 2j)


def test_i0_derivatives(x64):
    x = np.array([-2.5, -0.3, 0.7, 4.0])
    check_grads(jnp.i0, (x,), order=2)
    # i0' = i1 (scipy.special.i1 as the reference)
    from scipy.special import i1
    np.testing.assert_allclose(jax.vmap(jax.grad(jnp.i0))(x), i1(x), rtol=1e-12)
    assert float(jax.grad(jnp.i0)(0.0)) == 0.0


@pytest.mark.parametrize("M,beta", [(0, 2.0), (1, 2.0), (5, 2.0), (8, 0.5), (12, 14.0),
                                    (6, 0)])
def test_kaiser_matches_numpy(M, beta):
    out = jnp.kaiser(M, beta)
    assert out.dtype == np.float32 and out.shape == (M,)
    np.testing.assert_allclose(out, np.kaiser(M, beta), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(jax.jit(jnp.kaiser, static_argnums=0)(M, beta),
                               np.kaiser(M, beta), rtol=2e-6, atol=1e-7)


def test_kaiser_in_beta(x64):
    check_grads(lambda b: jnp.kaiser(7, b), (3.0,), order=2)
    betas = np.array([0.5, 2.0, 8.0])
    np.testing.assert_allclose(jax.vmap(lambda b: jnp.kaiser(6, b))(betas),
                               np.stack([np.kaiser(6, b) for b in betas]), rtol=1e-12)
