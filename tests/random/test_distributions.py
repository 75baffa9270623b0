"""Sampler shapes, bounds, dtypes and errors."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random


# ---------------------------------------------------------------------------
# distributions: shapes, bounds, errors
# ---------------------------------------------------------------------------


def test_uniform_bounds_and_dtypes():
    key = random.PRNGKey(0)
    for dt in (np.float32, np.float16, jnp.bfloat16):
        u = np.asarray(random.uniform(key, (1000,), dt, -2.0, 3.0)).astype(np.float32)
        assert random.uniform(key, (2,), dt).dtype == dt
        assert u.min() >= -2.0 and u.max() < 3.0
    lo = jnp.asarray(np.array([0.0, 100.0], np.float32))
    u = np.asarray(random.uniform(key, (3, 2), minval=lo, maxval=lo + 1))
    assert (u[:, 0] < 1).all() and (u[:, 1] >= 100).all()
    with pytest.raises(ValueError, match="broadcast-compatible"):
        random.uniform(key, (3,), minval=jnp.asarray(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="float dtype"):
        random.uniform(key, (3,), np.int32)


def test_randint_properties():
    key = random.PRNGKey(1)
    r = np.asarray(random.randint(key, (10000,), -5, 7))
    assert r.dtype == np.int32 and r.min() == -5 and r.max() == 6
    assert np.asarray(random.randint(key, (5,), 3, 3)).tolist() == [3] * 5
    r8 = np.asarray(random.randint(key, (5000,), 0, 256, np.uint8))
    assert r8.dtype == np.uint8 and r8.max() == 255
    lo = jnp.asarray(np.array([0, 100], np.int32))
    r = np.asarray(random.randint(key, (50, 2), lo, lo + 3))
    assert set(r[:, 0]) <= {0, 1, 2} and set(r[:, 1]) <= {100, 101, 102}
    with pytest.raises(TypeError, match="integer dtypes"):
        random.randint(key, (2,), 0, 3, np.float32)


def test_permutation_and_choice():
    key = random.PRNGKey(2)
    x = jnp.asarray(np.arange(12).reshape(3, 4).astype(np.float32))
    p = np.asarray(random.permutation(key, x, axis=1))
    assert sorted(p[0].tolist()) == [0, 1, 2, 3]
    assert (p - p[:, :1] == (p[0] - p[0, 0])).all()  # same column order in every row
    pi = np.asarray(random.permutation(key, x, axis=1, independent=True))
    assert all(sorted(r.tolist()) == list(np.arange(4) + 4 * i) for i, r in enumerate(pi))
    big = np.asarray(random.permutation(key, 100000))  # several sort rounds
    assert sorted(big.tolist()) == list(range(100000))
    with pytest.raises(TypeError, match="integer or at least 1-dimensional"):
        random.permutation(key, 3.0)

    c = np.asarray(random.choice(key, 5, (1000,)))
    assert c.min() == 0 and c.max() == 4
    c = np.asarray(random.choice(key, x, (2,), axis=1))
    assert c.shape == (3, 2)
    c = np.asarray(random.choice(key, 10, (10,), replace=False))
    assert sorted(c.tolist()) == list(range(10))
    probs = jnp.asarray(np.array([0.1, 0.0, 0.6, 0.3], np.float32))
    c = np.asarray(random.choice(key, 4, (20000,), p=probs))
    np.testing.assert_allclose(np.bincount(c, minlength=4) / 20000, [0.1, 0, 0.6, 0.3],
                               atol=0.015)
    c = np.asarray(random.choice(key, 4, (3,), replace=False, p=probs))
    assert len(set(c.tolist())) == 3 and 1 not in c.tolist()
    with pytest.raises(ValueError, match="Cannot take a larger sample"):
        random.choice(key, 3, (4,), replace=False)
    with pytest.raises(TypeError, match="must be a sequence"):
        random.choice(key, 3, 4)


def test_categorical_frequencies_and_shapes():
    key = random.PRNGKey(4)
    probs = np.array([0.2, 0.5, 0.3], np.float32)
    s = np.asarray(random.categorical(key, jnp.asarray(np.log(probs)), shape=(30000,)))
    np.testing.assert_allclose(np.bincount(s, minlength=3) / 30000, probs, atol=0.01)
    logits = jnp.asarray(np.log(np.array([[0.9, 0.1], [0.1, 0.9]], np.float32)))
    s = np.asarray(random.categorical(key, logits, axis=-1, shape=(5000, 2)))
    assert s.shape == (5000, 2)
    np.testing.assert_allclose(s.mean(0), [0.1, 0.9], atol=0.02)
    s = np.asarray(random.categorical(key, logits, axis=0))
    assert s.shape == (2,)


def test_truncated_normal_bounds():
    key = random.PRNGKey(5)
    t = np.asarray(random.truncated_normal(key, -0.5, 1.5, (20000,)))
    assert t.min() > -0.5 and t.max() < 1.5
    # mean of N(0,1) truncated to (a, b): (phi(a) - phi(b)) / (Phi(b) - Phi(a))
    phi = lambda v: math.exp(-v * v / 2) / math.sqrt(2 * math.pi)
    Phi = lambda v: 0.5 * (1 + math.erf(v / math.sqrt(2)))
    mean = (phi(-0.5) - phi(1.5)) / (Phi(1.5) - Phi(-0.5))
    assert abs(t.mean() - mean) < 0.02
    lo = jnp.asarray(np.array([0.0, 2.0], np.float32))
    t = np.asarray(random.truncated_normal(key, lo, lo + 0.1))
    assert t.shape == (2,) and (t > np.asarray(lo)).all()


def test_multivariate_normal_covariance():
    key = random.PRNGKey(6)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]], np.float32)
    mean = np.array([1.0, -2.0, 0.5], np.float32)
    s = np.asarray(random.multivariate_normal(key, jnp.asarray(mean), jnp.asarray(cov),
                                              (40000,)))
    assert s.shape == (40000, 3)
    np.testing.assert_allclose(s.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.05)
    with pytest.raises(ValueError, match="cov.shape"):
        random.multivariate_normal(key, jnp.asarray(mean), jnp.asarray(np.eye(2, dtype=np.float32)))


@pytest.mark.parametrize("method", ["svd", "eigh"])
def test_multivariate_normal_with_a_singular_covariance(method):
    key = random.PRNGKey(8)
    v = np.array([[1.0, 2.0, -1.0], [0.5, 0.0, 1.0]], np.float32)
    cov = v.T @ v                                   # rank 2: no Cholesky factor
    s = np.asarray(random.multivariate_normal(key, np.zeros(3, np.float32), cov, (40000,),
                                              method=method))
    assert np.isfinite(s).all()
    np.testing.assert_allclose(np.cov(s.T), cov, atol=0.1)
    null = np.cross(v[0], v[1])   # no variance along the null space (to float32 rounding)
    assert np.std(s @ null) < 1e-3 * np.std(s @ v[0])
    jitted = jax.jit(lambda k: random.multivariate_normal(k, np.zeros(3, np.float32), cov,
                                                          (5,), method=method))(key)
    eager = random.multivariate_normal(key, np.zeros(3, np.float32), cov, (5,), method=method)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="method must be one of"):
        random.multivariate_normal(key, np.zeros(3), cov, method="qr")


def test_orthogonal():
    key = random.PRNGKey(7)
    q = np.asarray(random.orthogonal(key, 5, (3,)))
    assert q.shape == (3, 5, 5)
    np.testing.assert_allclose(q @ np.swapaxes(q, -1, -2), np.broadcast_to(np.eye(5), q.shape),
                               atol=1e-5)
    r = np.asarray(random.orthogonal(key, 2, m=4))
    assert r.shape == (2, 4)
    np.testing.assert_allclose(r @ r.T, np.eye(2), atol=1e-5)
    # the Q factor of the Gaussian matrix, with R's diagonal made positive
    z = np.asarray(random.normal(key, (5, 5)), np.float64)
    qq, rr = np.linalg.qr(z)
    qq = qq * np.sign(np.diag(rr))
    np.testing.assert_allclose(np.asarray(random.orthogonal(key, 5)), qq, atol=1e-4)
