"""The distributions added to JAX's original set follow their laws: Kolmogorov-Smirnov
distances to scipy.stats' distribution functions for the continuous ones, frequencies
against scipy's probabilities for the discrete ones (fixed seeds, 0.1% levels), shapes,
dtypes and parameter broadcasting."""
import math

import numpy as np
import pytest
import scipy.stats as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random

N = 20000
KS_CRIT = 1.95 / math.sqrt(N)  # 0.1% level


def _ks(samples, cdf) -> float:
    x = np.sort(np.asarray(samples, np.float64).ravel())
    f = cdf(x)
    i = np.arange(1, len(x) + 1)
    return float(max((i / len(x) - f).max(), (f - (i - 1) / len(x)).max()))


CONTINUOUS = {
    "pareto": (lambda k: random.pareto(k, 2.5, (N,)), st.pareto(2.5).cdf),
    "rayleigh": (lambda k: random.rayleigh(k, 1.5, (N,)), st.rayleigh(scale=1.5).cdf),
    "weibull_min": (lambda k: random.weibull_min(k, 2.0, 1.5, (N,)),
                    st.weibull_min(1.5, scale=2.0).cdf),
    "triangular": (lambda k: random.triangular(k, -1.0, 0.5, 3.0, (N,)),
                   st.triang(1.5 / 4.0, loc=-1.0, scale=4.0).cdf),
    "lognormal": (lambda k: random.lognormal(k, 0.7, (N,)), st.lognorm(0.7).cdf),
    "maxwell": (lambda k: random.maxwell(k, (N,)), st.maxwell.cdf),
    "double_sided_maxwell": (lambda k: random.double_sided_maxwell(k, 1.0, 2.0, (N,)),
                             lambda x: 0.5 + 0.5 * np.sign(x - 1.0)
                             * st.maxwell(scale=2.0).cdf(np.abs(x - 1.0))),
    "wald": (lambda k: random.wald(k, 1.5, (N,)), st.invgauss(1.5).cdf),
    "chisquare": (lambda k: random.chisquare(k, 3.0, (N,)), st.chi2(3.0).cdf),
    "f": (lambda k: random.f(k, 3.0, 7.0, (N,)), st.f(3.0, 7.0).cdf),
    "t": (lambda k: random.t(k, 4.0, (N,)), st.t(4.0).cdf),
    "generalized_normal": (lambda k: random.generalized_normal(k, 1.5, (N,)),
                           st.gennorm(1.5).cdf),
    "gamma_small_a": (lambda k: random.gamma(k, 0.2, (N,)), st.gamma(0.2).cdf),
    "loggamma": (lambda k: jnp.exp(random.loggamma(k, 0.7, (N,))), st.gamma(0.7).cdf),
    "beta": (lambda k: random.beta(k, 0.5, 2.0, (N,)), st.beta(0.5, 2.0).cdf),
    "gumbel_high": (lambda k: random.gumbel(k, (N,), mode="high"), st.gumbel_r.cdf),
    "gumbel_highest": (lambda k: random.gumbel(k, (N,), mode="highest"), st.gumbel_r.cdf),
}


@pytest.mark.parametrize("name", sorted(CONTINUOUS))
def test_continuous_ks(name):
    draw, cdf = CONTINUOUS[name]
    x = np.asarray(draw(random.key(7)))
    assert x.shape == (N,) and x.dtype == np.float32
    assert _ks(x, cdf) < KS_CRIT


DISCRETE = {
    "geometric": (lambda k: random.geometric(k, 0.3, (N,)), st.geom(0.3).pmf),
    "poisson_small": (lambda k: random.poisson(k, 3.5, (N,)), st.poisson(3.5).pmf),
    "poisson_large": (lambda k: random.poisson(k, 40.0, (N,)), st.poisson(40.0).pmf),
    "binomial_inversion": (lambda k: random.binomial(k, 20.0, 0.2, (N,)),
                           st.binom(20, 0.2).pmf),
    "binomial_btrs": (lambda k: random.binomial(k, 200.0, 0.7, (N,)),
                      st.binom(200, 0.7).pmf),
}


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_frequencies(name):
    draw, pmf = DISCRETE[name]
    x = np.asarray(draw(random.key(8))).astype(np.int64)
    values, counts = np.unique(x, return_counts=True)
    p = pmf(values)
    # each frequency within 5 standard errors (plus a little for the rare values)
    se = np.sqrt(p * (1 - p) / N)
    assert np.all(np.abs(counts / N - p) < 5 * se + 2 / N), name
    assert abs(counts.sum() - N) == 0


def test_multinomial_counts_and_marginals():
    p = np.array([0.1, 0.2, 0.3, 0.4], np.float32)
    keys = random.split(random.key(9), 3000)
    counts = np.asarray(jax.vmap(lambda k: random.multinomial(k, 15.0, p))(keys))
    assert counts.shape == (3000, 4) and (counts.sum(-1) == 15).all()
    # each category is Binomial(15, p_i)
    for i in range(4):
        mean, var = 15 * p[i], 15 * p[i] * (1 - p[i])
        assert abs(counts[:, i].mean() - mean) < 5 * math.sqrt(var / 3000)


def test_ball_points_are_uniform_in_the_unit_ball():
    x = np.asarray(random.ball(random.key(3), 3, 2.0, (N,)), np.float64)
    assert x.shape == (N, 3)
    r = np.linalg.norm(x, axis=-1)
    assert (r < 1).all()
    assert _ks(r, lambda v: np.clip(v, 0, 1) ** 3) < KS_CRIT  # P(|x| < r) = r^3
    # p = 1: the cross-polytope |x|_1 < 1, radius law r^d again
    x1 = np.asarray(random.ball(random.key(4), 2, 1.0, (N,)), np.float64)
    assert _ks(np.abs(x1).sum(-1), lambda v: np.clip(v, 0, 1) ** 2) < KS_CRIT


def test_categorical_without_replacement_draws_distinct_categories():
    logits = jnp.log(jnp.array([0.1, 0.2, 0.3, 0.4]))
    draws = np.asarray(jax.vmap(lambda k: random.categorical(k, logits, shape=(4,),
                                                             replace=False))(
        random.split(random.key(1), 500)))
    assert all(sorted(d) == [0, 1, 2, 3] for d in draws)
    first = np.bincount(draws[:, 0], minlength=4) / 500   # P(first = i) = p_i
    np.testing.assert_allclose(first, [0.1, 0.2, 0.3, 0.4], atol=0.07)
    with pytest.raises(ValueError, match="cannot exceed number of categories"):
        random.categorical(random.key(1), logits, shape=(5,), replace=False)


def test_shapes_dtypes_and_broadcasting():
    key = random.key(0)
    assert random.pareto(key, jnp.ones((2, 1)) * 2.0, (2, 3)).shape == (2, 3)
    assert random.poisson(key, jnp.array([1.0, 20.0])).shape == (2,)
    assert random.poisson(key, 3.0, (4,)).dtype == np.int32
    assert random.geometric(key, 0.5, (3,), dtype=np.int16).dtype == np.int16
    assert random.binomial(key, 5.0, jnp.array([0.1, 0.9])).dtype == np.float32
    assert random.double_sided_maxwell(key, jnp.zeros(3), 1.0).shape == (3, 3)  # JAX's rule
    assert random.triangular(key, 0.0, 1.0, 2.0).shape == ()
    assert random.ball(key, 4, shape=(2,)).shape == (2, 4)
    with pytest.raises(ValueError, match="must be an int dtype"):
        random.geometric(key, 0.5, dtype=np.float32)
    with pytest.raises(ValueError, match="must be a float dtype"):
        random.chisquare(key, 2.0, dtype=np.int32)
    with pytest.raises(ValueError, match="broadcast-compatible"):
        random.t(key, jnp.ones(3), (2,))


def test_binomial_edge_values():
    key = random.key(0)
    out = np.asarray(random.binomial(key, jnp.array([np.nan, -1.0, np.inf, 5.0, 5.0]),
                                     jnp.array([0.5, 0.5, 0.5, np.nan, 0.0])))
    assert np.isnan(out[0]) and np.isnan(out[1]) and out[2] == np.inf
    assert np.isnan(out[3]) and out[4] == 0
    assert np.asarray(random.poisson(key, jnp.zeros(3))).tolist() == [0, 0, 0]
