"""Large eager draws run through jit (one compiled program per shape and dtype) and give
the bits the eager path gives; small draws and draws under a transformation do not."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import random
from tinyjax.random import _compiled

SAMPLERS = {
    "normal": lambda k, n: random.normal(k, (n,)),
    "uniform": lambda k, n: random.uniform(k, (n,), minval=-2.0, maxval=3.0),
    "bits": lambda k, n: random.bits(k, (n,)),
    "exponential": lambda k, n: random.exponential(k, (n,)),
    "randint": lambda k, n: random.randint(k, (n,), 0, 7),
    "bernoulli": lambda k, n: random.bernoulli(k, 0.3, (n,)),
    "gamma": lambda k, n: random.gamma(k, 1.5, (n,)),
    "poisson": lambda k, n: random.poisson(k, 4.0, (n,)),
}


@pytest.fixture
def small_threshold(monkeypatch):
    monkeypatch.setattr(_compiled, "LARGE_DRAW", 64)


def _public(name):
    return getattr(random, name)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_a_large_eager_draw_is_compiled_and_equal(name, small_threshold):
    key = random.PRNGKey(5)
    compiled = _public(name).compiled
    compiled.clear_cache()
    big = np.asarray(SAMPLERS[name](key, 100))
    assert len(compiled.cache) == 1          # went through jit
    with pytest.MonkeyPatch.context() as m:  # the same draw op by op
        m.setattr(_compiled, "LARGE_DRAW", 1 << 40)
        eager = np.asarray(SAMPLERS[name](key, 100))
    if jax.default_backend() == "cpu" or not np.issubdtype(big.dtype, np.floating):
        np.testing.assert_array_equal(big, eager)
    else:
        # CUDA's log/erfinv may round the last bit differently from the host's, and CUDA
        # fuses minval + u * range into one FMA: after that cancellation a value near zero
        # is off by an ulp of the operands, which is many ulps of the value itself
        eps = np.finfo(big.dtype).eps
        np.testing.assert_allclose(big, eager, rtol=2 * eps,
                                   atol=2 * eps * np.abs(eager).max())


def test_small_and_traced_draws_stay_uncompiled(small_threshold):
    key = random.PRNGKey(1)
    random.normal.compiled.clear_cache()
    random.normal(key, (10,))
    jax.jit(lambda k: random.normal(k, (1000,)))(key)
    jax.vmap(lambda k: random.normal(k, (1000,)))(random.split(key, 2))
    assert len(random.normal.compiled.cache) == 0


def test_parameter_arrays_count_towards_the_size(small_threshold):
    key = random.PRNGKey(2)
    random.gamma.compiled.clear_cache()
    out = random.gamma(key, np.linspace(0.5, 3.0, 200).astype(np.float32))
    assert out.shape == (200,) and len(random.gamma.compiled.cache) == 1
