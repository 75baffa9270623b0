"""``tinyjax.random``: JAX's random numbers on its default PRNG (Threefry-2x32).

Keys are either raw ``uint32[..., 2]`` arrays (``PRNGKey``) or typed key arrays
(``key``, dtype ``key<fry>``) that wrap such data.  Every sampler is written in lax
operations on the ``threefry2x32`` primitive, so it traces under ``jit``, batches under
``vmap`` (vmap over keys) and differentiates with respect to its parameters (the random
bits are constants).  The samplers follow JAX's algorithms step for step, so the bits,
and the draws that are exact functions of them (``uniform``, float32 ``normal`` with
XLA's fused erf_inv emulated, ``randint``, ``bernoulli``, ``categorical``, ...), agree
with JAX's bit for bit; draws through transcendental functions agree to their last few
bits, and rejection samplers (gamma, poisson, binomial) draw the same keys as JAX's.

One module per job: keys (``_keys``), the bit generator (``_bits``), uniform and
normal draws, the distributions by family, and the compiled path for large eager draws
(``_compiled``).
"""
from tinyjax.random._bits import bits, fold_in, split
from tinyjax.random._continuous import (cauchy, exponential, gumbel, laplace, logistic, pareto,
                                        rayleigh, triangular, weibull_min)
from tinyjax.random._discrete import (bernoulli, binomial, categorical, geometric, multinomial,
                                      poisson, rademacher, randint)
from tinyjax.random._gamma import (ball, beta, chisquare, dirichlet, f, gamma, generalized_normal,
                                   loggamma, random_gamma_p, t)
from tinyjax.random._keys import (KeyArray, PRNGKey, PRNGKeyArray, clone, key, key_data,
                                  key_dtype, key_impl, wrap_key_data)
from tinyjax.random._matrices import multivariate_normal, orthogonal
from tinyjax.random._normal import (double_sided_maxwell, lognormal, maxwell, normal,
                                    truncated_normal, wald)
from tinyjax.random._permutation import choice, permutation
from tinyjax.random._uniform import uniform
from tinyjax.lax.sharding_constraint import with_out_sharding as _with_out_sharding

__all__ = [
    "KeyArray", "PRNGKey", "PRNGKeyArray", "ball", "bernoulli", "beta", "binomial", "bits",
    "categorical", "cauchy", "chisquare", "choice", "clone", "dirichlet",
    "double_sided_maxwell", "exponential", "f", "fold_in", "gamma", "generalized_normal",
    "geometric", "gumbel", "key", "key_data", "key_dtype", "key_impl", "laplace", "loggamma",
    "logistic", "lognormal", "maxwell", "multinomial", "multivariate_normal", "normal",
    "orthogonal", "pareto", "permutation", "poisson", "rademacher", "randint",
    "random_gamma_p", "rayleigh", "split", "t", "triangular", "truncated_normal", "uniform",
    "wald", "weibull_min", "wrap_key_data",
]

# the samplers that take JAX's keyword out_sharding (the sharding of the draw)
_OUT_SHARDING = ("ball", "bernoulli", "beta", "bits", "categorical", "cauchy", "chisquare",
                 "dirichlet", "exponential", "f", "gamma", "generalized_normal", "geometric",
                 "gumbel", "laplace", "loggamma", "logistic", "lognormal", "maxwell",
                 "multivariate_normal", "normal", "orthogonal", "pareto", "permutation",
                 "poisson", "rademacher", "randint", "rayleigh", "t", "triangular",
                 "truncated_normal", "uniform", "wald")
globals().update({_name: _with_out_sharding(globals()[_name]) for _name in _OUT_SHARDING})
