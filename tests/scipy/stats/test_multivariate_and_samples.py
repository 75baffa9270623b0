"""The multivariate distributions (multivariate_normal, dirichlet, multinomial), the
Gaussian kernel density estimate, and the sample statistics (mode, rankdata, sem)
against scipy.stats."""
import numpy as np
import pytest
import scipy.stats as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.scipy import stats
from tinyjax.test_util import check_grads

rng = np.random.default_rng(0)
COV = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]])


def test_multivariate_normal(x64):
    mean = np.array([0.1, -0.2, 0.3])
    x = rng.normal(size=(5, 3))
    np.testing.assert_allclose(stats.multivariate_normal.logpdf(x, mean, COV),
                               st.multivariate_normal(mean, COV).logpdf(x), rtol=1e-12)
    np.testing.assert_allclose(stats.multivariate_normal.pdf(x, mean, 2.0),
                               st.multivariate_normal(mean, 2.0 * np.eye(3)).pdf(x),
                               rtol=1e-12)
    np.testing.assert_allclose(stats.multivariate_normal.logpdf(0.3, 0.1, 2.0),
                               st.norm(0.1, np.sqrt(2.0)).logpdf(0.3), rtol=1e-12)
    # batches of covariances broadcast against the points
    covs = np.stack([COV, 2 * COV])
    got = stats.multivariate_normal.logpdf(x[:2], mean, covs)
    want = [st.multivariate_normal(mean, c).logpdf(xi) for xi, c in zip(x[:2], covs)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    with pytest.raises(ValueError, match="incompatible shapes"):
        stats.multivariate_normal.logpdf(x, mean, np.eye(2))


def test_multivariate_normal_transforms(x64):
    mean = np.array([0.1, -0.2, 0.3])
    x = rng.normal(size=(4, 3))
    logpdf = stats.multivariate_normal.logpdf
    # through the Cholesky factor and a triangular solve: derivatives in every argument
    check_grads(logpdf, (x, mean, COV), order=2)
    np.testing.assert_allclose(jax.jit(logpdf)(x, mean, COV), logpdf(x, mean, COV),
                               rtol=1e-12)
    covs = np.stack([COV, 2 * COV, COV + np.eye(3)])
    np.testing.assert_allclose(jax.vmap(logpdf, in_axes=(None, None, 0))(x, mean, covs),
                               [st.multivariate_normal(mean, c).logpdf(x) for c in covs],
                               rtol=1e-12)
    # a covariance that is not positive definite gives NaN, as JAX's Cholesky does
    assert np.isnan(logpdf(x[0], mean, -COV))


def test_dirichlet_and_multinomial(x64):
    alpha = np.array([1.5, 2.0, 3.0])
    x = np.array([[0.2, 0.3], [0.3, 0.1], [0.5, 0.6]])
    np.testing.assert_allclose(stats.dirichlet.logpdf(x, alpha),
                               [st.dirichlet(alpha).logpdf(x[:, i]) for i in range(2)],
                               rtol=1e-12)
    assert stats.dirichlet.logpdf(np.array([0.5, 0.6, -0.1]), alpha) == -np.inf
    np.testing.assert_allclose(stats.dirichlet.pdf(x[:2, 0], alpha),
                               st.dirichlet(alpha).pdf(x[:, 0]), rtol=1e-12)
    counts = np.array([1, 2, 3])
    p = np.array([0.2, 0.3, 0.5])
    np.testing.assert_allclose(stats.multinomial.logpmf(counts, 6, p),
                               st.multinomial(6, p).logpmf(counts), rtol=1e-12)
    assert stats.multinomial.logpmf(counts, 7, p) == -np.inf
    with pytest.raises(ValueError, match="must be of integer type"):
        stats.multinomial.logpmf(counts.astype(float), 6, p)


def test_gaussian_kde(x64):
    data = rng.normal(size=(2, 40))
    weights = rng.uniform(0.5, 2, 40)
    kde, ref = stats.gaussian_kde(data, weights=weights), st.gaussian_kde(data, weights=weights)
    points = rng.normal(size=(2, 6))
    np.testing.assert_allclose(kde.covariance, ref.covariance, rtol=1e-12)
    np.testing.assert_allclose(kde(points), ref(points), rtol=1e-10)
    np.testing.assert_allclose(kde.logpdf(points), ref.logpdf(points), rtol=1e-10)
    np.testing.assert_allclose(kde.integrate_gaussian(np.array([0.1, 0.2]), np.eye(2)),
                               ref.integrate_gaussian(np.array([0.1, 0.2]), np.eye(2)),
                               rtol=1e-10)
    one_d = rng.normal(size=50)
    kde1, ref1 = (stats.gaussian_kde(one_d, bw_method="silverman"),
                  st.gaussian_kde(one_d, bw_method="silverman"))
    np.testing.assert_allclose(kde1.integrate_box_1d(-0.5, 1.0),
                               ref1.integrate_box_1d(-0.5, 1.0), rtol=1e-10)
    other = rng.normal(size=30)
    np.testing.assert_allclose(kde1.integrate_kde(stats.gaussian_kde(other, bw_method=0.4)),
                               ref1.integrate_kde(st.gaussian_kde(other, bw_method=0.4)),
                               rtol=1e-10)
    mean, cov = np.array([0.2, -0.1]), np.array([[0.5, 0.1], [0.1, 0.3]])
    np.testing.assert_allclose(kde.integrate_gaussian(mean, cov),
                               ref.integrate_gaussian(mean, cov), rtol=1e-10)
    np.testing.assert_allclose(kde.logpdf(points), ref.logpdf(points), rtol=1e-10)
    check_grads(lambda p: kde.logpdf(p), (points,), order=1)
    # a pytree: through jit
    np.testing.assert_allclose(jax.jit(lambda k, p: k.evaluate(p))(kde, points), kde(points),
                               rtol=1e-12)
    draws = kde1.resample(random.key(0), (4000,))
    assert draws.shape == (1, 4000)
    assert abs(float(jnp.mean(draws)) - one_d.mean()) < 0.1
    with pytest.raises(NotImplementedError, match="integrate_box_1d"):
        kde.integrate_box([0, 0], [1, 1])


def test_mode_rankdata_sem(x64):
    a = np.array([[1, 2, 2, 3], [3, 3, 1, 1], [4, 5, 6, 6]])
    for axis in (0, 1, None):
        got, want = stats.mode(a, axis=axis), st.mode(a, axis=axis)
        np.testing.assert_array_equal(got.mode, want.mode)
        np.testing.assert_array_equal(got.count, want.count)
    assert stats.mode(a, axis=1, keepdims=True).mode.shape == (3, 1)
    b = np.array([[3.0, 1.0, 3.0, 2.0], [2.0, 2.0, 5.0, 5.0]])
    for method in ("average", "min", "max", "dense", "ordinal"):
        np.testing.assert_array_equal(stats.rankdata(b, method),
                                      st.rankdata(b, method))
        np.testing.assert_array_equal(stats.rankdata(b, method, axis=1),
                                      st.rankdata(b, method, axis=1))
    assert np.isnan(stats.rankdata(np.array([1.0, np.nan]))).all()
    with pytest.raises(ValueError, match="unknown method"):
        stats.rankdata(b, "median")
    c = rng.normal(size=(5, 4))
    np.testing.assert_allclose(stats.sem(c), st.sem(c), rtol=1e-12)
    np.testing.assert_allclose(stats.sem(c, axis=None, ddof=0), st.sem(c, axis=None, ddof=0),
                               rtol=1e-12)
    d = np.array([1.0, np.nan, 3.0, 4.5])
    np.testing.assert_allclose(stats.sem(d, nan_policy="omit"), st.sem(d, nan_policy="omit"),
                               rtol=1e-12)
