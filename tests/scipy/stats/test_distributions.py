"""The univariate distributions against scipy.stats: every function over drawn points and
parameters (with loc and scale), in float64; float32 results keep their dtype; jit and
vmap agree with eager evaluation; log densities differentiate like finite differences."""
import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as st_h

import tinyjax as jax
from tinyjax.config import config
from tinyjax.scipy import stats
from tinyjax.test_util import check_grads

# name: (tinyjax module, scipy distribution(params), parameter ranges, point range,
#        functions, the tinyjax function's parameters given scipy's)
CONTINUOUS = {
    "norm": (stats.norm, st.norm, [], (-6, 6)),
    "expon": (stats.expon, st.expon, [], (-1, 10)),
    "uniform": (stats.uniform, st.uniform, [], (-2, 4)),
    "laplace": (stats.laplace, st.laplace, [], (-6, 6)),
    "logistic": (stats.logistic, st.logistic, [], (-8, 8)),
    "cauchy": (stats.cauchy, st.cauchy, [], (-20, 20)),
    "gamma": (stats.gamma, st.gamma, [(0.3, 6)], (-1, 15)),
    "chi2": (stats.chi2, st.chi2, [(0.5, 8)], (0.01, 20)),
    "beta": (stats.beta, st.beta, [(0.5, 4), (0.5, 4)], (-0.2, 1.2)),
    "t": (stats.t, st.t, [(0.5, 10)], (-8, 8)),
    "pareto": (stats.pareto, st.pareto, [(0.5, 4)], (0.5, 10)),
    "gumbel_r": (stats.gumbel_r, st.gumbel_r, [], (-4, 8)),
    "gumbel_l": (stats.gumbel_l, st.gumbel_l, [], (-8, 4)),
    "truncnorm": (stats.truncnorm, st.truncnorm, [(-3, -0.2), (0.2, 3)], (-4, 4)),
}
LOC_SCALE = {"norm", "expon", "uniform", "laplace", "logistic", "cauchy", "gamma", "chi2",
             "beta", "t", "pareto", "gumbel_r", "gumbel_l", "truncnorm"}
FUNCTIONS = ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf")
NO_LOC_SCALE = {
    "gennorm": (stats.gennorm, st.gennorm, [(0.5, 4)], (-4, 4)),
    "vonmises": (stats.vonmises, st.vonmises, [(0.1, 10)], (-3, 3)),
    "wrapcauchy": (stats.wrapcauchy, st.wrapcauchy, [(0.05, 0.95)], (0.01, 6.2)),
}


def _draw(rng, ranges, n):
    return [rng.uniform(lo, hi, n) for lo, hi in ranges]


def _compare(got, want, rtol):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert (np.isnan(got) == np.isnan(want)).all(), (got, want)
    inf = np.isinf(want)
    assert (got[inf] == want[inf]).all()
    fin = ~np.isnan(want) & ~inf
    np.testing.assert_allclose(got[fin], want[fin], rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CONTINUOUS) + sorted(NO_LOC_SCALE))
@settings(max_examples=2, deadline=None)
@given(seed=st_h.integers(0, 2 ** 16))
def test_against_scipy(name, seed):
    with config.override(jax_enable_x64=True):
        _check_against_scipy(name, seed)


def _check_against_scipy(name, seed):
    module, dist, ranges, (lo, hi) = {**CONTINUOUS, **NO_LOC_SCALE}[name]
    rng = np.random.default_rng(seed)
    params = _draw(rng, ranges, 12)
    x = rng.uniform(lo, hi, 12)
    q = rng.uniform(0, 1, 12)
    kw = {}
    if name in LOC_SCALE:
        kw = dict(loc=rng.uniform(-1, 1, 12), scale=rng.uniform(0.5, 2, 12))
    frozen = dist(*params, **kw)
    for fn in FUNCTIONS:
        if not hasattr(module, fn):
            continue
        arg = q if fn in ("ppf", "isf") else x
        got = getattr(module, fn)(arg, *params, *kw.values())
        rtol = 1e-6 if name in ("beta", "truncnorm", "gamma", "chi2") else 1e-9
        _compare(got, getattr(frozen, fn)(arg), rtol)


DISCRETE = {
    "poisson": (stats.poisson, st.poisson, [(0.5, 20)], (-1, 40)),
    "bernoulli": (stats.bernoulli, st.bernoulli, [(0.05, 0.95)], (-1, 2)),
    "binom": (stats.binom, st.binom, [("int", 1, 30), (0.05, 0.95)], (-1, 31)),
    "geom": (stats.geom, st.geom, [(0.05, 0.95)], (-1, 30)),
    "nbinom": (stats.nbinom, st.nbinom, [("int", 1, 10), (0.1, 0.9)], (-1, 40)),
    "betabinom": (stats.betabinom, st.betabinom, [("int", 1, 20), (0.5, 4), (0.5, 4)],
                  (-1, 21)),
}


@pytest.mark.parametrize("name", sorted(DISCRETE))
def test_discrete_against_scipy(name, x64):
    module, dist, ranges, (lo, hi) = DISCRETE[name]
    rng = np.random.default_rng(3)
    params = [rng.integers(r[1], r[2] + 1, 30).astype(np.float64) if r[0] == "int"
              else rng.uniform(*r, 30) for r in ranges]
    k = np.floor(rng.uniform(lo, hi, 30))
    for fn in ("logpmf", "pmf", "cdf"):
        if hasattr(module, fn):
            kwargs = {"loc": 0} if fn != "cdf" or name != "bernoulli" else {}
            # betaln (JAX's algorithm for a large argument) is good to ~5e-7
            _compare(getattr(module, fn)(k, *params, **kwargs), getattr(dist(*params), fn)(k),
                     1e-6 if name == "betabinom" else 1e-8)
    if hasattr(module, "ppf"):
        q = rng.uniform(0, 1, 30)
        _compare(module.ppf(q, *params), dist(*params).ppf(q), 1e-12)


def test_poisson_entropy(x64):
    mu = np.array([0.0, 0.3, 4.0, 35.0, 250.0])
    _compare(stats.poisson.entropy(mu), st.poisson(mu).entropy(), 1e-4)


def test_edge_values_and_dtypes():
    assert np.isnan(stats.norm.ppf(1.5)) and stats.norm.ppf(1.0) == np.inf
    assert stats.expon.logpdf(-1.0) == -np.inf and np.isnan(stats.expon.ppf(-0.1))
    assert np.isnan(stats.beta.logpdf(0.5, -1.0, 2.0))
    assert stats.beta.logpdf(1.5, 2.0, 2.0) == -np.inf
    assert np.isnan(stats.truncnorm.logpdf(0.0, 1.0, -1.0))
    assert np.isnan(stats.gumbel_r.logpdf(0.0, 0.0, -1.0))
    assert np.isnan(stats.vonmises.logpdf(0.0, -1.0))
    assert stats.poisson.logpmf(2.5, 3.0) == -np.inf
    x32 = np.linspace(-2, 2, 5).astype(np.float32)
    for f in (stats.norm.logpdf, stats.cauchy.cdf, stats.logistic.sf, stats.t.logpdf):
        args = (x32, np.float32(3.0)) if f is stats.t.logpdf else (x32,)
        assert f(*args).dtype == np.float32
    assert stats.norm.pdf(np.arange(3)).dtype == np.float32      # integers promote


def test_jit_and_vmap_agree_with_eager():
    x = np.linspace(0.1, 4, 7).astype(np.float32)
    for f, args in ((stats.gamma.cdf, (x, 2.5)), (stats.beta.sf, (x / 5, 2.0, 3.0)),
                    (stats.truncnorm.logcdf, (x - 2, -1.0, 1.5)),
                    (stats.poisson.cdf, (np.floor(x * 3), 4.0))):
        eager = np.asarray(f(*args))
        np.testing.assert_allclose(np.asarray(jax.jit(f)(*args)), eager, rtol=2e-5)
        np.testing.assert_allclose(np.asarray(jax.vmap(f, (0,) + (None,) * (len(args) - 1))(
            *args)), eager, rtol=1e-6)


@pytest.mark.parametrize("f,args", [
    (stats.norm.logpdf, (0.3, 0.1, 1.7)), (stats.gamma.logpdf, (1.3, 2.5, 0.1, 1.5)),
    (stats.beta.logpdf, (0.3, 2.0, 3.0)), (stats.t.logpdf, (0.4, 3.5, 0.2, 1.3)),
    (stats.truncnorm.logpdf, (0.3, -1.0, 1.5, 0.1, 1.2)), (stats.norm.logcdf, (-3.0,)),
    (stats.logistic.logpdf, (0.7, 0.2, 1.4)), (stats.pareto.logpdf, (3.0, 2.0, 0.5, 1.5)),
    (lambda mu: stats.poisson.logpmf(3.0, mu), (2.5,)), (stats.vonmises.logpdf, (0.4, 2.0)),
    # in x only: betainc has no derivative in its parameters, as in JAX
    (lambda x: stats.gamma.cdf(x, 2.5), (1.3,)),
    (lambda x: stats.beta.cdf(x, 2.0, 3.0), (0.3,)),
])
def test_derivatives(f, args, x64):
    check_grads(f, args, order=1, rtol=1e-5, eps=1e-6)
