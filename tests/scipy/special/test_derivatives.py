"""Derivatives of the special functions (JAX's custom rules) against finite differences,
in float64, at points inside each function's domain; and the derivatives JAX does not
define raise as JAX's do."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.scipy import special
from tinyjax.test_util import check_grads

CASES = {
    "gammainc": (special.gammainc, (2.5, 1.7)),
    "gammainc_cf": (special.gammainc, (1.5, 6.0)),     # the continued-fraction side
    "gammaincc": (special.gammaincc, (3.0, 4.5)),
    "betainc_x": (lambda x: special.betainc(2.0, 3.5, x), (0.3,)),
    "i0e": (special.i0e, (1.3,)),
    "i0e_large": (special.i0e, (-11.0,)),
    "i1e": (special.i1e, (2.2,)),
    "i1e_large": (special.i1e, (-9.5,)),
    "i0": (special.i0, (0.7,)),
    "i1": (special.i1, (3.1,)),
    "erfcx": (special.erfcx, (0.8,)),
    "erfcx_large": (special.erfcx, (30.0,)),
    "dawsn": (special.dawsn, (1.2,)),
    "expi": (special.expi, (2.5,)),
    "expi_negative": (special.expi, (-1.5,)),
    "exp1": (special.exp1, (0.7,)),
    "expn_x": (lambda x: special.expn(3, x), (1.4,)),
    "sici": (lambda x: special.sici(x), (3.0,)),
    "fresnel": (lambda x: special.fresnel(x), (1.3,)),
    "spence": (special.spence, (0.7,)),
    "poch": (special.poch, (2.2, 1.3)),
    "zeta": (special.zeta, (2.5, 1.5)),
    "hyp1f1": (special.hyp1f1, (0.7, 1.9, 0.6)),
    "hyp2f1": (special.hyp2f1, (0.6, 0.8, 1.7, 0.3)),
    "owens_t": (special.owens_t, (0.7, 0.4)),
    "owens_t_reciprocal": (special.owens_t, (0.6, 2.5)),
    "gamma": (special.gamma, (2.3,)),
    "loggamma": (special.loggamma, (2.3,)),
    "betaln": (special.betaln, (1.5, 9.5)),
    "beta": (special.beta, (1.5, 2.5)),
    "multigammaln": (lambda a: special.multigammaln(a, 3), (2.6,)),
    "kl_div": (special.kl_div, (0.7, 1.3)),
    "rel_entr": (special.rel_entr, (0.7, 1.3)),
    "boxcox": (special.boxcox, (1.7, 0.4)),
    "boxcox1p": (special.boxcox1p, (0.7, -0.3)),
    "comb": (special.comb, (7.0, 3.0)),
    "factorial": (special.factorial, (4.5,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_first_derivatives(name, x64):
    fn, args = CASES[name]
    check_grads(fn, args, order=1, modes=("fwd", "rev"), rtol=1e-5, atol=1e-7, eps=1e-6)


def test_random_gamma_grad_forward_mode(x64):
    # a composition with while loops and no custom rule, as in JAX: forward mode only
    check_grads(lax.random_gamma_grad, (2.5, 1.9), order=1, modes=("fwd",), rtol=1e-5,
                eps=1e-6)


def test_second_derivatives(x64):
    check_grads(lambda x: special.gammainc(2.5, x), (1.7,), order=2, rtol=1e-4, eps=1e-4)
    check_grads(special.i1e, (1.5,), order=2, rtol=1e-4, eps=1e-4)
    check_grads(lambda x: special.zeta(3.0, x), (2.0,), order=2, rtol=1e-4, eps=1e-4)


def test_derivatives_jax_does_not_define(x64):
    with pytest.raises(ValueError, match="Betainc gradient with respect to a and b"):
        jax.grad(special.betainc)(2.0, 3.0, 0.4)
    with pytest.raises(NotImplementedError, match="zeta"):
        jax.grad(lax.zeta)(2.5, 1.5)
    with pytest.raises(ValueError, match="must be of integer type"):
        special.polygamma(1.0, 2.0)
    with pytest.raises(NotImplementedError, match="exact=True"):
        special.factorial(3, exact=True)
    with pytest.raises(NotImplementedError, match="Riemann zeta"):
        special.zeta(2.0)


def test_igamma_derivative_in_a_is_igamma_grad_a(x64):
    a, x = 3.2, 2.1
    h = 1e-6
    fd = (special.gammainc(a + h, x) - special.gammainc(a - h, x)) / (2 * h)
    np.testing.assert_allclose(float(lax.igamma_grad_a(a, x)), float(fd), rtol=1e-6)
    np.testing.assert_allclose(float(jax.grad(special.gammainc)(a, x)), float(fd), rtol=1e-6)
