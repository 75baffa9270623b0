"""``jax.scipy.stats``: probability distributions (one module per distribution, with
JAX's functions, argument conventions -- ``loc``/``scale`` -- and edge values) and sample
statistics."""
from tinyjax.scipy.stats import (bernoulli, beta, betabinom, binom, cauchy, chi2, dirichlet,
                                 expon, gamma, gennorm, geom, gumbel_l, gumbel_r, laplace,
                                 logistic, multinomial, multivariate_normal, nbinom, norm,
                                 pareto, poisson, t, truncnorm, uniform, vonmises, wrapcauchy)
from tinyjax.scipy.stats._core import ModeResult, mode, rankdata, sem
from tinyjax.scipy.stats.kde import gaussian_kde

__all__ = [
    "ModeResult", "bernoulli", "beta", "betabinom", "binom", "cauchy", "chi2", "dirichlet",
    "expon", "gamma", "gaussian_kde", "gennorm", "geom", "gumbel_l", "gumbel_r", "laplace",
    "logistic", "mode", "multinomial", "multivariate_normal", "nbinom", "norm", "pareto",
    "poisson", "rankdata", "sem", "t", "truncnorm", "uniform", "vonmises", "wrapcauchy",
]
