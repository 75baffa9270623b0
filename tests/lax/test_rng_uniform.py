"""rng_uniform: binds rng_uniform_p; draws lie in [a, b) with a uniform spread, eagerly and
compiled on every device; every draw is new (two in one program too); vmap draws a row per
interval; JAX's errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tests.cuda_support import CUDA_PARAM


def _check_uniform(u, a, b):
    u = np.asarray(u, np.float64)
    assert u.min() >= a and u.max() < b
    assert abs(u.mean() - (a + b) / 2) < 0.05 * (b - a)
    counts = np.histogram(u, bins=4, range=(a, b))[0]
    assert counts.min() > 0.8 * len(u) / 4  # no quarter of the interval left out


def test_eager_floats_and_ints():
    u = lax.rng_uniform(np.float32(-2), np.float32(3), (4000,))
    assert u.shape == (4000,) and u.dtype == np.float32 and not u.weak_type
    _check_uniform(u, -2, 3)
    assert lax.rng_uniform(0.0, 1.0, (2,)).weak_type  # both weak
    ints = np.asarray(lax.rng_uniform(np.int32(3), np.int32(9), (3000,)))
    assert ints.dtype == np.int32 and set(np.unique(ints)) == set(range(3, 9))
    assert not np.array_equal(lax.rng_uniform(0.0, 1.0, (8,)), lax.rng_uniform(0.0, 1.0, (8,)))
    assert lax.rng_uniform(0.0, 1.0, (2, 0, 3)).shape == (2, 0, 3)


def test_staged_as_jax_stages_it():
    jaxpr = jax.make_jaxpr(lambda: lax.rng_uniform(0.0, 1.0, (3,)))()
    assert str(jaxpr.eqns[0]).endswith("rng_uniform[shape=(3,)] 0.0:f32[] 1.0:f32[]")


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_compiled_draws(device):
    a = jax.device_put(np.float32(1), jax.devices(device)[0])
    f = jax.jit(lambda a: (lax.rng_uniform(a, a + 2, (2000,)),
                           lax.rng_uniform(a, a + 2, (2000,))))
    first, second = f(a)
    _check_uniform(first, 1, 3)
    _check_uniform(second, 1, 3)
    assert not np.array_equal(first, second)  # two draws, never merged into one


def test_vmap_draws_per_interval():
    lows = np.array([0.0, 10.0, 20.0], np.float32)
    rows = jax.vmap(lambda a: lax.rng_uniform(a, a + 1, (1000,)))(lows)
    assert rows.shape == (3, 1000)
    for low, row in zip(lows, np.asarray(rows)):
        _check_uniform(row, low, low + 1)
    assert not np.array_equal(rows[0], rows[1] - 10)
    ints = jax.vmap(lambda b: lax.rng_uniform(np.int32(0), b, (500,)))(np.array([2, 5], np.int32))
    assert [set(np.unique(r)) for r in np.asarray(ints)] == [{0, 1}, set(range(5))]


def test_errors():
    with pytest.raises(ValueError, match="Arguments to rng_uniform must have identical dtypes, "
                                         "got float32 and int32"):
        lax.rng_uniform(0.0, 1, (3,))
    with pytest.raises(ValueError, match="must be scalars; got shapes \\(2,\\) and \\(2,\\)"):
        jax.jit(lambda a: lax.rng_uniform(a, a, (3,)))(jnp.ones(2))
    with pytest.raises(TypeError, match="rng_uniform: dtype bool is not supported"):
        lax.rng_uniform(False, True, (3,))
    with pytest.raises(NotImplementedError, match="Differentiation rule for 'rng_uniform'"):
        jax.grad(lambda a: lax.rng_uniform(a, 2.0, ()))(1.0)
