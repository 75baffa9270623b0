"""The special-function primitives (igamma, igammac, igamma_grad_a, betainc, zeta,
bessel_i0e, bessel_i1e; random_gamma_grad): JAX's values at the edges of their domains
(recorded with JAX 0.10 on the CPU), dtypes, weak types, broadcasting of scalars,
batching, and the compiled program against eager evaluation."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax

inf, nan = np.inf, np.nan
A = np.array([0., 0., 1., -1., 1., nan, 2., 0.5, inf, 3., 1e-30, 100.])
X = np.array([0., 1., 0., 1., -1., 1., inf, inf, 2., nan, 1e-30, 100.])
# JAX's lax.<name>(A, X) in float64
EDGES = {
    "igamma": [nan, 1.0, 0.0, nan, nan, nan, 1.0, 1.0, nan, nan, 1.0000000000000022,
               0.5132987982791604],
    "igammac": [nan, 0.0, 1.0, nan, nan, nan, 0.0, 0.0, nan, nan, -2.220446049250313e-15,
                0.48670120172086273],
    "igamma_grad_a": [nan, nan, 0.0, nan, nan, nan, nan, nan, nan, nan, -68.50033712492,
                      -0.039927497857786994],
    "random_gamma_grad": [nan, nan, 0.0, nan, nan, nan, nan, nan, nan, nan,
                          68.50033712491984, 1.0016683237741728],
    "zeta": [inf, nan, inf, nan, inf, nan, nan, nan, nan, nan, nan, 1.592039016504942e-200],
}
ZETA_X = np.array([0.5, 1., 2., 2., 2., 2.5, 3., 2., -1., inf, 2.])
ZETA_Q = np.array([1., 1., 0., -1., -1.5, -1.5, -2.5, inf, 1., 1., -20.5])
ZETA = [nan, inf, inf, inf, 9.379246644989122, nan, 0.05410202582086408, nan, nan, nan,
        -0.04761005643947914]
BETA_A = np.array([1., 0., 0., 2., 1., inf, 2., -1, 1., 1e-30, 3.])
BETA_B = np.array([1., 1., 0., inf, 0., 1., 3., 1, 2., 1e-30, 3.])
BETA_X = np.array([0.5, 0.5, 0.5, 0.5, 0., 0.3, 1., 0.5, 2., 0.5, 0.999])
BETAINC = [0.5, 1.0, nan, 1.0, 0.0, 0.0, 1.0, nan, nan, 0.5, 0.999999990014994]
BESSEL_X = np.array([0., 1e-30, -3., 3., 10., -10., inf, -inf, nan])
I0E = [1.0, 1.0, 0.24300035416182536, 0.24300035416182536, 0.1278333371634286,
       0.1278333371634286, 0.0, 0.0, nan]
I1E = [0.0, 5.000000000000001e-31, -0.19682671329730084, 0.19682671329730084,
       0.12126268138445552, -0.12126268138445552, 0.0, -0.0, nan]


def _assert_like_jax(got, want, rtol=1e-11):
    np.testing.assert_allclose(np.asarray(got), np.array(want), rtol=rtol, atol=1e-300)


@pytest.mark.parametrize("name", sorted(EDGES))
def test_edge_values_are_jax_s(name, x64):
    _assert_like_jax(getattr(lax, name)(A, X), EDGES[name])


def test_zeta_betainc_and_bessel_edge_values(x64):
    _assert_like_jax(lax.zeta(ZETA_X, ZETA_Q), ZETA)
    _assert_like_jax(lax.betainc(BETA_A, BETA_B, BETA_X), BETAINC)
    _assert_like_jax(lax.bessel_i0e(BESSEL_X), I0E, rtol=1e-15)
    _assert_like_jax(lax.bessel_i1e(BESSEL_X), I1E, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float16, jax.numpy.bfloat16, np.float32])
def test_dtypes_and_16_bit_floats(dtype):
    a = np.array([0.5, 2.0, 7.0], dtype)
    for f in (lax.igamma, lax.igammac, lax.zeta):
        out = f(a + np.array(1, dtype), a)
        assert out.dtype == dtype
        want = f((a + np.array(1, dtype)).astype(np.float32), a.astype(np.float32))
        np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(want),
                                   rtol=1e-2, atol=1e-7)  # float16 subnormals
    assert lax.bessel_i1e(a).dtype == dtype and lax.betainc(a, a, a / 8).dtype == dtype


def test_scalars_weak_types_and_shapes():
    x = np.ones((2, 3), np.float32)
    assert lax.igamma(x, 2.0).shape == (2, 3) and lax.igamma(2.0, x).dtype == np.float32
    assert lax.igamma(2.0, 3.0).weak_type
    assert not lax.igamma(np.float32(2.0), 3.0).weak_type
    jaxpr = jax.make_jaxpr(lambda a, x: lax.igamma(a, x))(np.float32(1), np.float32(2))
    assert "igamma" in str(jaxpr)


def test_vmap_matches_loop():
    a = np.array([[0.5, 1.5], [3.0, 9.0]], np.float32)
    x = np.array([0.7, 4.0], np.float32)
    got = jax.vmap(lax.igamma, (0, None))(a, x)
    want = np.stack([np.asarray(lax.igamma(row, x)) for row in a])
    np.testing.assert_array_equal(np.asarray(got), want)
    got = jax.vmap(lambda b: lax.betainc(b, 2.0, 0.3))(a[0])
    np.testing.assert_array_equal(np.asarray(got),
                                  [np.asarray(lax.betainc(b, np.float32(2), np.float32(0.3)))
                                   for b in a[0]])


def test_compiled_program_matches_eager(x64):
    rng = np.random.default_rng(0)
    a, x = rng.uniform(0.1, 20, 50), rng.uniform(0, 30, 50)
    for f, args in ((lax.igamma, (a, x)), (lax.igammac, (a, x)), (lax.igamma_grad_a, (a, x)),
                    (lax.betainc, (a / 4, x / 6 + 0.1, x / 31)), (lax.zeta, (a + 1.1, x)),
                    (lax.bessel_i0e, (x - 15,)), (lax.bessel_i1e, (x - 15,))):
        np.testing.assert_allclose(np.asarray(jax.jit(f)(*args)), np.asarray(f(*args)),
                                   rtol=1e-11, atol=1e-300)
