"""The samplers' distributions: KS tests and moments against the exact distributions."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyjax.numpy as jnp
from tinyjax import random


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------

N = 100000
KS_CRIT = 1.95 / math.sqrt(N)  # 0.1% level


def _ks(samples: np.ndarray, cdf) -> float:
    x = np.sort(np.asarray(samples, np.float64))
    f = cdf(x)
    n = len(x)
    i = np.arange(1, n + 1)
    return float(max((i / n - f).max(), (f - (i - 1) / n).max()))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def test_ks_uniform_normal_exponential_gamma():
    keys = random.split(random.PRNGKey(2024), 5)
    assert _ks(random.uniform(keys[0], (N,)), lambda x: np.clip(x, 0, 1)) < KS_CRIT
    assert _ks(random.normal(keys[1], (N,)), lambda x: 0.5 * (1 + _erf(x / math.sqrt(2)))) \
        < KS_CRIT
    assert _ks(random.exponential(keys[2], (N,)), lambda x: 1 - np.exp(-x)) < KS_CRIT
    # Gamma(3): 1 - e^-x (1 + x + x^2/2);  Gamma(1/2): erf(sqrt(x))
    assert _ks(random.gamma(keys[3], 3.0, (N,)),
               lambda x: 1 - np.exp(-x) * (1 + x + x * x / 2)) < KS_CRIT
    assert _ks(random.gamma(keys[4], 0.5, (N,)), lambda x: _erf(np.sqrt(x))) < KS_CRIT


def test_ks_detects_a_wrong_distribution():
    u = random.uniform(random.PRNGKey(0), (N,))
    assert _ks(np.asarray(u) ** 1.05, lambda x: np.clip(x, 0, 1)) > KS_CRIT


@pytest.mark.parametrize("name,draw,mean,var", [
    ("uniform", lambda k: random.uniform(k, (N,), minval=-1.0, maxval=3.0), 1.0, 16 / 12),
    ("normal", lambda k: random.normal(k, (N,)), 0.0, 1.0),
    ("exponential", lambda k: random.exponential(k, (N,)), 1.0, 1.0),
    ("laplace", lambda k: random.laplace(k, (N,)), 0.0, 2.0),
    ("logistic", lambda k: random.logistic(k, (N,)), 0.0, math.pi ** 2 / 3),
    ("gumbel", lambda k: random.gumbel(k, (N,)), 0.5772156649, math.pi ** 2 / 6),
    ("bernoulli", lambda k: random.bernoulli(k, 0.3, (N,)), 0.3, 0.21),
    ("randint", lambda k: random.randint(k, (N,), 0, 10), 4.5, 8.25),
    ("rademacher", lambda k: random.rademacher(k, (N,)), 0.0, 1.0),
    ("truncated_normal", lambda k: random.truncated_normal(k, -1.0, 1.0, (N,)), 0.0,
     0.2911),
    ("gamma_2.5", lambda k: random.gamma(k, 2.5, (N,)), 2.5, 2.5),
    ("gamma_0.3", lambda k: random.gamma(k, 0.3, (N,)), 0.3, 0.3),
    ("beta_2_5", lambda k: random.beta(k, 2.0, 5.0, (N,)), 2 / 7, 10 / (49 * 8)),
    ("dirichlet", lambda k: random.dirichlet(k, jnp.asarray(np.array([1.0, 2.0, 3.0],
                                                                     np.float32)), (N,))[:, 2],
     0.5, 0.5 * 0.5 / 7),
])
def test_mean_and_variance(name, draw, mean, var):
    x = np.asarray(draw(random.PRNGKey(11)), np.float64)
    assert x.shape == (N,)
    se_mean = math.sqrt(var / N)
    assert abs(x.mean() - mean) < 5 * se_mean + 1e-3, name
    assert abs(x.var() / var - 1) < 0.05, name


def test_loggamma_consistent_with_gamma():
    key = random.PRNGKey(3)
    lg = np.asarray(random.loggamma(key, 1e-3, (N,)), np.float64)
    assert np.isfinite(lg).all()  # gamma(1e-3) underflows; its log does not
    g = np.exp(np.asarray(random.loggamma(key, 4.0, (N,)), np.float64))
    assert abs(g.mean() - 4.0) < 0.05 and abs(g.var() / 4.0 - 1) < 0.05


def test_streams_deterministic_and_uncorrelated():
    key = random.PRNGKey(99)
    a1, b1 = random.split(key)
    a2, b2 = random.split(key)
    assert np.asarray(a1).tolist() == np.asarray(a2).tolist()
    # JAX's (partitionable) split: split(key, n)[i] is fold_in(key, i)
    assert np.asarray(random.split(key, 4)[2]).tolist() == \
        np.asarray(random.fold_in(key, 2)).tolist()
    streams = [random.normal(k, (N // 10,)) for k in random.split(key, 4)]
    streams += [random.normal(random.fold_in(key, i), (N // 10,)) for i in range(100, 104)]
    streams.append(random.normal(key, (N // 10,)))
    m = np.corrcoef(np.stack([np.asarray(s, np.float64) for s in streams]))
    off = m[~np.eye(len(streams), dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(N // 10)
    # consecutive elements of one stream are uncorrelated too
    s = np.asarray(streams[0], np.float64)
    assert abs(np.corrcoef(s[:-1], s[1:])[0, 1]) < 5 / math.sqrt(len(s))
    # fold_in is deterministic and distinct across data
    f = {tuple(np.asarray(random.fold_in(key, i)).tolist()) for i in range(50)}
    assert len(f) == 50


def test_small_eager_normal_path_is_bit_identical_to_the_array_path():
    from tinyjax.random import _bits, _normal
    for seed in range(200):
        key = random.PRNGKey(seed)
        for n in (1, 3, 64):
            fast = np.asarray(random.normal(key, (n,)))
            b = _bits.bits_np(key._value, 32, (n,))
            floats = ((b >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - 1
            u = np.maximum(_normal._LO_F32, floats * (np.float32(1) - _normal._LO_F32) + _normal._LO_F32)
            ref = np.float32(np.sqrt(2)) * _normal._erf_inv_f32_np(u)
            np.testing.assert_array_equal(fast.view(np.uint32), ref.view(np.uint32))
