"""The draws compared with JAX's: ``name -> draw(random_module, key)``, the same calls
for jax.random (data/make_jax_draws.py records them) and tinyjax.random
(test_jax_draws.py compares)."""
import numpy as np

P3 = np.array([0.2, 0.3, 0.5], np.float32)
MEAN3 = np.array([1.0, -2.0, 0.5], np.float32)
COV3 = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]], np.float32)

CASES = {
    "uniform": lambda R, k: R.uniform(k, (6,)),
    "normal": lambda R, k: R.normal(k, (6,)),
    "exponential": lambda R, k: R.exponential(k, (6,)),
    "laplace": lambda R, k: R.laplace(k, (6,)),
    "logistic": lambda R, k: R.logistic(k, (6,)),
    "gumbel": lambda R, k: R.gumbel(k, (6,)),
    "gumbel_high": lambda R, k: R.gumbel(k, (6,), mode="high"),
    "gumbel_highest": lambda R, k: R.gumbel(k, (6,), mode="highest"),
    "cauchy": lambda R, k: R.cauchy(k, (6,)),
    "pareto_2.5": lambda R, k: R.pareto(k, 2.5, (6,)),
    "rayleigh_1.5": lambda R, k: R.rayleigh(k, 1.5, (6,)),
    "weibull_min_2_1.5": lambda R, k: R.weibull_min(k, 2.0, 1.5, (6,)),
    "triangular_0_1_3": lambda R, k: R.triangular(k, 0.0, 1.0, 3.0, (6,)),
    "lognormal_0.5": lambda R, k: R.lognormal(k, 0.5, (6,)),
    "maxwell": lambda R, k: R.maxwell(k, (6,)),
    "double_sided_maxwell_1_2": lambda R, k: R.double_sided_maxwell(k, 1.0, 2.0, (6,)),
    "wald_1.5": lambda R, k: R.wald(k, 1.5, (6,)),
    "geometric_0.3": lambda R, k: R.geometric(k, 0.3, (6,)),
    "truncated_normal_-1_2": lambda R, k: R.truncated_normal(k, -1.0, 2.0, (6,)),
    "bernoulli_0.3": lambda R, k: R.bernoulli(k, 0.3, (6,)),
    "bernoulli_high": lambda R, k: R.bernoulli(k, 0.3, (6,), mode="high"),
    "choice_weighted": lambda R, k: R.choice(k, 5, (3,), replace=False,
                                             p=np.array([.1, .2, .3, .2, .2], np.float32)),
    "choice_weighted_high": lambda R, k: R.choice(k, 5, (3,), replace=False, mode="high",
                                                  p=np.array([.1, .2, .3, .2, .2],
                                                             np.float32)),
    "rademacher": lambda R, k: R.rademacher(k, (6,)),
    "randint_0_10": lambda R, k: R.randint(k, (6,), 0, 10),
    "gamma_2.5": lambda R, k: R.gamma(k, 2.5, (6,)),
    "gamma_0.3": lambda R, k: R.gamma(k, 0.3, (6,)),
    "loggamma_0.3": lambda R, k: R.loggamma(k, 0.3, (6,)),
    "beta_2_3": lambda R, k: R.beta(k, 2.0, 3.0, (6,)),
    "chisquare_3": lambda R, k: R.chisquare(k, 3.0, (6,)),
    "f_3_5": lambda R, k: R.f(k, 3.0, 5.0, (6,)),
    "t_4": lambda R, k: R.t(k, 4.0, (6,)),
    "poisson_3": lambda R, k: R.poisson(k, 3.0, (6,)),
    "poisson_30": lambda R, k: R.poisson(k, 30.0, (6,)),
    "binomial_10_0.3": lambda R, k: R.binomial(k, 10.0, 0.3, (6,)),
    "binomial_100_0.6": lambda R, k: R.binomial(k, 100.0, 0.6, (6,)),
    "generalized_normal_1.5": lambda R, k: R.generalized_normal(k, 1.5, (6,)),
    "ball_3_2": lambda R, k: R.ball(k, 3, 2.0, (2,)),
    "dirichlet": lambda R, k: R.dirichlet(k, np.array([1.0, 2.0, 3.0], np.float32), (2,)),
    "multinomial_10": lambda R, k: R.multinomial(k, 10.0, P3),
    "categorical": lambda R, k: R.categorical(k, np.log(P3), shape=(6,)),
    "categorical_no_replace": lambda R, k: R.categorical(k, np.log(P3), shape=(2,),
                                                         replace=False),
    "multivariate_normal": lambda R, k: R.multivariate_normal(k, MEAN3, COV3, (2,)),
    "multivariate_normal_svd": lambda R, k: R.multivariate_normal(k, MEAN3, COV3, (2,),
                                                                  method="svd"),
    "multivariate_normal_eigh": lambda R, k: R.multivariate_normal(k, MEAN3, COV3, (2,),
                                                                   method="eigh"),
    "orthogonal_3": lambda R, k: R.orthogonal(k, 3, (2,)),
    "orthogonal_2_4": lambda R, k: R.orthogonal(k, 2, m=4),
}

# draws that are exact functions of the random bits (comparisons and correctly rounded
# arithmetic only): equal to JAX's bit for bit; the others pass through transcendental
# functions, whose last bits differ between XLA's and the C library's implementations
BIT_EXACT = {"uniform", "normal", "triangular_0_1_3", "geometric_0.3", "bernoulli_0.3",
             "bernoulli_high", "choice_weighted", "choice_weighted_high", "rademacher",
             "randint_0_10", "poisson_3", "poisson_30", "binomial_10_0.3",
             "binomial_100_0.6", "multinomial_10", "categorical", "categorical_no_replace"}
