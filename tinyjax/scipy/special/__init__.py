"""``jax.scipy.special``: special functions written with tinyjax.numpy and lax.

Names, signatures and numerics follow JAX (``jax/_src/scipy/special.py``): the same
algorithms, branch points and custom derivative rules, so that values and gradients
agree with JAX's to rounding.  One module per family of functions.
"""
from tinyjax.scipy.special._bessel import bessel_jn, i0, i0e, i1, i1e
from tinyjax.scipy.special._entropy import boxcox, boxcox1p, entr, kl_div, rel_entr, xlog1py, xlogy
from tinyjax.scipy.special._gamma import (beta, betainc, betaln, comb, digamma, factorial, gamma,
                                          gammainc, gammaincc, gammaln, gammasgn, loggamma,
                                          multigammaln, poch, polygamma)
from tinyjax.scipy.special._harmonics import sph_harm_y
from tinyjax.scipy.special._hypergeometric import hyp1f1, hyp2f1
from tinyjax.scipy.special._integrals import exp1, expi, expn, sici, spence
from tinyjax.scipy.special._logsumexp import expit, log_softmax, logit, logsumexp, softmax
from tinyjax.scipy.special._normal import (dawsn, erf, erfc, erfcx, erfinv, fresnel, log_ndtr,
                                           ndtr, ndtri, wofz)
from tinyjax.scipy.special._owens_t import owens_t
from tinyjax.scipy.special._zeta import bernoulli, zeta

__all__ = [
    "bernoulli", "bessel_jn", "beta", "betainc", "betaln", "boxcox", "boxcox1p", "comb",
    "dawsn", "digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp1", "expi", "expit",
    "expn", "factorial", "fresnel", "gamma", "gammainc", "gammaincc", "gammaln", "gammasgn",
    "hyp1f1", "hyp2f1", "i0", "i0e", "i1", "i1e", "kl_div", "log_ndtr", "log_softmax",
    "loggamma", "logit", "logsumexp", "multigammaln", "ndtr", "ndtri", "owens_t", "poch",
    "polygamma", "rel_entr", "sici", "softmax", "spence", "sph_harm_y", "wofz", "xlog1py",
    "xlogy", "zeta",
]
