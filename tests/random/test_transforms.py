"""Samplers under vmap (over keys and parameters), jit and grad."""
from __future__ import annotations

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random


# ---------------------------------------------------------------------------
# transformations
# ---------------------------------------------------------------------------


def test_vmap_over_keys_matches_loop():
    keys = random.split(random.PRNGKey(7), 5)
    for fn in (lambda k: random.normal(k, (3,)), lambda k: random.uniform(k, (2, 2)),
               lambda k: random.randint(k, (4,), 0, 100), lambda k: random.split(k),
               lambda k: random.permutation(k, 6), lambda k: random.gamma(k, 2.0, (3,)),
               lambda k: random.categorical(k, jnp.asarray(np.zeros(4, np.float32)), shape=(3,))):
        batched = np.asarray(jax.vmap(fn)(keys))
        looped = np.stack([np.asarray(fn(keys[i])) for i in range(5)])
        np.testing.assert_array_equal(batched, looped)
    out = jax.vmap(random.normal, in_axes=(0, None))(keys, (3,))
    assert out.shape == (5, 3)


def test_vmap_over_parameters():
    key = random.PRNGKey(1)
    lo = jnp.asarray(np.array([0.0, 10.0, 20.0], np.float32))
    out = jax.vmap(lambda m: random.uniform(key, (4,), minval=m, maxval=m + 1))(lo)
    for i, m in enumerate([0.0, 10.0, 20.0]):
        ref = np.asarray(random.uniform(key, (4,), minval=m, maxval=m + 1))
        np.testing.assert_allclose(np.asarray(out[i]), ref, rtol=1e-6)


def test_grad_with_respect_to_parameters():
    key = random.PRNGKey(3)
    u = np.asarray(random.uniform(key, (5,)))
    g_lo, g_hi = jax.grad(lambda lo, hi: random.uniform(key, (5,), minval=lo,
                                                        maxval=hi).sum(), (0, 1))(2.0, 5.0)
    np.testing.assert_allclose(float(g_hi), u.sum(), rtol=1e-5)
    np.testing.assert_allclose(float(g_lo), 5 - u.sum(), rtol=1e-5)
    # location-scale: d/dsigma sum(mu + sigma z) = sum(z)
    z = np.asarray(random.normal(key, (6,)))
    g = jax.grad(lambda s: (1.0 + s * random.normal(key, (6,))).sum())(2.0)
    np.testing.assert_allclose(float(g), z.sum(), rtol=1e-5)
    # the truncation bounds are not differentiated through the clamp's limits
    g = jax.grad(lambda lo: random.truncated_normal(key, lo, 2.0, (4,)).sum())(-1.0)
    assert np.isfinite(float(g))
    # the key itself has no tangent
    jax.jit(jax.grad(lambda m: random.normal(random.fold_in(key, 1), (2,)).sum() * m))(1.0)


def test_gamma_grad_is_the_implicit_reparameterisation():
    # d sample / d a = -(dP/da)(a, x) / (dP/dx)(a, x) at the sample x, P = igamma
    key = random.PRNGKey(0)
    x = random.gamma(key, 2.0, (3,))
    g = jax.grad(lambda a: random.gamma(key, a, (3,)).sum())(2.0)
    from scipy import special as sps
    h = 1e-6
    dp_da = (sps.gammainc(2.0 + h, np.float64(x)) - sps.gammainc(2.0 - h, np.float64(x))) / (2 * h)
    dp_dx = np.exp(-x) * x / sps.gamma(2.0)
    np.testing.assert_allclose(float(g), float(np.sum(-dp_da / dp_dx)), rtol=1e-3)


def test_gamma_family_under_vmap_jit_and_grad(x64):
    keys = random.split(random.key(4), 3)
    a = jnp.array([0.4, 1.5, 7.0])
    batched = np.asarray(jax.vmap(lambda k, a: random.gamma(k, a, (2,)))(keys, a))
    looped = np.stack([np.asarray(random.gamma(k, a_, (2,))) for k, a_ in zip(keys, a)])
    np.testing.assert_array_equal(batched, looped)
    # compiled pow/log may differ from numpy's in the last bit
    np.testing.assert_allclose(np.asarray(jax.jit(random.gamma)(keys[0], a)),
                               np.asarray(random.gamma(keys[0], a)), rtol=1e-13)
    # the derivatives of the draws are unbiased: their mean is the derivative of the mean
    many = random.split(random.key(5), 4000)

    def mean_grad(draw):
        return float(jnp.mean(jax.vmap(jax.grad(draw, argnums=1), (0, None))(many, 3.0)))
    for name, draw, dmean in (
            ("gamma", lambda k, a_: random.gamma(k, a_), 1.0),
            ("loggamma", lambda k, a_: jnp.exp(random.loggamma(k, a_)), 1.0),
            ("beta", lambda k, a_: random.beta(k, a_, 2.0), 2.0 / 25.0),
            ("dirichlet", lambda k, a_: random.dirichlet(k, jnp.stack([a_, 2.0]))[0],
             2.0 / 25.0),
            ("chisquare", lambda k, a_: random.chisquare(k, a_), 1.0),
    ):
        assert abs(mean_grad(draw) - dmean) < 0.05 * max(1.0, abs(dmean)) + 0.02, name
