"""tinyjax.random: bit-exact agreement with JAX's threefry PRNG and the Random123
known-answer vectors, transformations (jit, vmap, grad), and statistics."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax, random
from tinyjax.lax import random_bits

REFERENCE = Path(__file__).parent / "data" / "jax_random.json"  # JAX's own outputs
M32 = 0xFFFFFFFF

# Random123 kat_vectors for threefry2x32_20: (key, counter) -> output
KAT = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((M32, M32), (M32, M32), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


def _ref_cases():
    return json.loads(REFERENCE.read_text())["cases"]


def _u32(*vals):
    return np.array(vals, np.uint32)


# ---------------------------------------------------------------------------
# the threefry2x32 primitive
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("key,count,expected", KAT)
def test_known_answer_vectors_all_paths(key, count, expected):
    k0, k1, x0, x1 = (_u32(v) for v in (*key, *count))
    # big-integer lanes (small sizes) and numpy uint32 arithmetic (large sizes)
    assert [int(v[0]) for v in random_bits.threefry2x32_np(k0, k1, x0, x1)] == list(expected)
    big = [np.full(1000, v, np.uint32) for v in (*key, *count)]
    for out, e in zip(random_bits.threefry2x32_np(*big), expected):
        assert (out == e).all()
    # the primitive, eagerly and under jit
    ops = [jnp.asarray(v) for v in (k0, k1, x0, x1)]
    assert [int(v[0]) for v in lax.threefry2x32(*ops)] == list(expected)
    jitted = jax.jit(lambda *a: lax.threefry2x32(*a))(*ops)
    assert [int(v[0]) for v in jitted] == list(expected)
    # JAX's threefry_2x32(keypair, count): count split into halves
    out = lax.threefry_2x32(jnp.asarray(_u32(*key)), jnp.asarray(_u32(*count)))
    assert np.asarray(out).tolist() == list(expected)


def test_lane_and_numpy_paths_agree_with_broadcasting():
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 2 ** 32, size=(700,), dtype=np.uint32) for _ in range(4)]
    for n in (1, 2, 7, 512, 513, 700):
        lanes = random_bits.threefry2x32_np(*[v[:n] for v in a])
        ref = random_bits._threefry_numpy(*[v[:n] for v in a])
        assert all((p == q).all() for p, q in zip(lanes, ref))
    out = random_bits.threefry2x32_np(a[0][0], a[1][:1], a[2][:5, None], a[3][:3])
    ref = random_bits._threefry_numpy(a[0][0], a[1][:1], a[2][:5, None], a[3][:3])
    assert out[0].shape == (5, 3) and (out[0] == ref[0]).all() and (out[1] == ref[1]).all()


def test_threefry_2x32_odd_count():
    key = jnp.asarray(_u32(3, 4))
    count = jnp.asarray(np.arange(5, dtype=np.uint32))
    out = np.asarray(lax.threefry_2x32(key, count))
    padded = np.concatenate([np.arange(5, dtype=np.uint32), _u32(0)])
    y0, y1 = random_bits.threefry2x32_np(_u32(3), _u32(4), padded[:3], padded[3:])
    assert out.tolist() == np.concatenate([y0, y1])[:5].tolist()


def test_threefry_abstract_eval_errors():
    u = jnp.asarray(_u32(1, 2))
    with pytest.raises(TypeError, match="threefry2x32 requires uint32"):
        random_bits.threefry2x32_p.bind(u, u, u, jnp.asarray(np.array([1, 2], np.int32)))
    with pytest.raises(ValueError, match="threefry2x32 requires all arguments to have the same"):
        random_bits.threefry2x32_p.bind(u, u, u, jnp.asarray(_u32(1, 2, 3)))
    with pytest.raises(TypeError, match="threefry2x32 requires uint32"):
        jax.make_jaxpr(lambda x: lax.threefry2x32(x, x, x, x))(np.float32(1))


def test_threefry_vmap_matches_loop():
    rng = np.random.default_rng(1)
    k = rng.integers(0, 2 ** 32, size=(4, 2), dtype=np.uint32)
    x = rng.integers(0, 2 ** 32, size=(3,), dtype=np.uint32)
    f = lambda kk: lax.threefry2x32(kk[0], kk[1], x, x[::-1].copy())
    out = jax.vmap(f)(jnp.asarray(k))
    for i in range(4):
        ref = f(jnp.asarray(k[i]))
        assert (np.asarray(out[0][i]) == np.asarray(ref[0])).all()
        assert (np.asarray(out[1][i]) == np.asarray(ref[1])).all()


def test_threefry_in_jaxpr():
    text = str(jax.make_jaxpr(lambda k: random.split(k))(random.PRNGKey(0)))
    assert "threefry2x32" in text


# ---------------------------------------------------------------------------
# JAX reference values
# ---------------------------------------------------------------------------


def _check_case(c, key, *, typed=False):
    data = random.key_data if typed else (lambda k: k)
    assert np.asarray(data(key)).tolist() == c["PRNGKey"]
    assert np.asarray(data(random.split(key))).tolist() == c["split2"]
    assert np.asarray(data(random.split(key, 3))).tolist() == c["split3"]
    assert np.asarray(data(random.fold_in(key, 7))).tolist() == c["fold_in_7"]
    assert np.asarray(random.bits(key, (5,))).tolist() == c["bits_u32_5"]
    np.testing.assert_array_equal(np.asarray(random.uniform(key, (5,))),
                                  np.float32(c["uniform_f32_5"]))
    np.testing.assert_array_equal(np.asarray(random.normal(key, (5,))),
                                  np.float32(c["normal_f32_5"]))
    assert np.asarray(random.randint(key, (5,), 0, 10)).tolist() == c["randint_0_10_5"]
    assert np.asarray(random.bernoulli(key, 0.3, (8,))).tolist() == c["bernoulli_0.3_8"]
    assert np.asarray(random.permutation(key, 8)).tolist() == c["permutation_8"]
    np.testing.assert_array_equal(np.asarray(random.uniform(random.split(key)[0], (2, 3))),
                                  np.float32(c["uniform_f32_2x3_of_split0"]))


def test_reference_values_eager():
    for c in _ref_cases():
        _check_case(c, random.PRNGKey(c["seed"]))


def test_reference_values_typed_keys():
    for c in _ref_cases():
        _check_case(c, random.key(c["seed"]), typed=True)


def test_reference_values_under_jit():
    for c in _ref_cases():
        key = random.PRNGKey(c["seed"])
        f = jax.jit(lambda k: (random.split(k, 3), random.fold_in(k, 7), random.bits(k, (5,)),
                               random.uniform(k, (5,)), random.normal(k, (5,)),
                               random.randint(k, (5,), 0, 10), random.bernoulli(k, 0.3, (8,)),
                               random.permutation(k, 8)))
        s3, f7, b, u, n, ri, be, p = f(key)
        assert np.asarray(s3).tolist() == c["split3"]
        assert np.asarray(f7).tolist() == c["fold_in_7"]
        assert np.asarray(b).tolist() == c["bits_u32_5"]
        np.testing.assert_array_equal(np.asarray(u), np.float32(c["uniform_f32_5"]))
        np.testing.assert_array_equal(np.asarray(n), np.float32(c["normal_f32_5"]))
        assert np.asarray(ri).tolist() == c["randint_0_10_5"]
        assert np.asarray(be).tolist() == c["bernoulli_0.3_8"]
        assert np.asarray(p).tolist() == c["permutation_8"]


def test_traced_parameters_take_the_lax_path():
    # a traced seed and traced minval/maxval go through lax, not the numpy fast path
    for c in _ref_cases():
        key = jax.jit(random.PRNGKey)(c["seed"])
        assert np.asarray(key).tolist() == c["PRNGKey"]
        u = jax.jit(lambda k, lo: random.uniform(k, (5,), minval=lo))(key, np.float32(0.0))
        np.testing.assert_array_equal(np.asarray(u), np.float32(c["uniform_f32_5"]))


def test_normal_eager_equals_jit_at_scale():
    key = random.PRNGKey(123)
    for n in (10, 20000):
        eager = np.asarray(random.normal(key, (n,)))
        jitted = np.asarray(jax.jit(lambda k: random.normal(k, (n,)))(key))
        np.testing.assert_array_equal(eager, jitted)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # x = 1 selects past NaNs
def test_erf_inv_emulation_matches_fma_reference():
    # XLA fuses the Horner steps of erf_inv into FMAs: the float32 lax emulation
    # (exact product and sum) and the float64 numpy version must give the same bits
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, size=5000).astype(np.float32)
    x[:4] = [np.float32(0.999999), np.float32(-0.9999999), 0.0, 1.0]
    traced = np.asarray(random._erf_inv_f32(jnp.asarray(x)))
    np.testing.assert_array_equal(traced, random._erf_inv_f32_np(x))
    # the fused multiply-add emulation also survives compilation
    rng = np.random.default_rng(4)
    a, b, c = (rng.uniform(-3, 3, 5000).astype(np.float32) for _ in range(3))
    fma = np.asarray(jax.jit(random._fma_f32)(jnp.asarray(a), jnp.asarray(b), jnp.asarray(c)))
    np.testing.assert_array_equal(fma, (a.astype(np.float64) * b + c).astype(np.float32))


# ---------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------


def test_prngkey_seeds():
    assert np.asarray(random.PRNGKey(-1)).tolist() == [0, M32]
    assert np.asarray(random.PRNGKey(np.int32(-2))).tolist() == [0, M32 - 1]
    assert np.asarray(random.PRNGKey(2 ** 32 + 5)).tolist() == [0, 5]  # x32: low word
    assert random.PRNGKey(0).dtype == np.uint32 and random.PRNGKey(0).shape == (2,)
    with pytest.raises(TypeError, match="seed must be a scalar"):
        random.PRNGKey(np.array([1, 2], np.int32))
    with pytest.raises(TypeError, match="seed must be an integer"):
        random.PRNGKey(1.5)


def test_prngkey_seeds_x64(x64):
    assert np.asarray(random.PRNGKey(-1)).tolist() == [M32, M32]
    assert np.asarray(random.PRNGKey(2 ** 32 + 5)).tolist() == [1, 5]
    traced = jax.jit(random.PRNGKey)(np.int64(2 ** 33 + 7))
    assert np.asarray(traced).tolist() == [2, 7]


def test_typed_keys():
    k = random.key(42)
    assert k.shape == () and str(k.dtype) == "key<fry>"
    assert "key<fry>" in repr(k)
    assert np.asarray(random.key_data(k)).tolist() == [0, 42]
    ks = random.split(k, 4)
    assert isinstance(ks, random.PRNGKeyArray) and ks.shape == (4,)
    assert random.key_data(ks).shape == (4, 2)
    back = random.wrap_key_data(random.key_data(ks))
    assert np.asarray(random.key_data(back[2])).tolist() == \
        np.asarray(random.key_data(ks))[2].tolist()
    assert len(list(ks)) == 4
    assert random.key_impl(k) == "threefry2x32"
    with pytest.raises(TypeError, match="expected key_data.shape to end with"):
        random.wrap_key_data(jnp.asarray(_u32(1, 2, 3)))
    # typed keys go through jit and vmap as pytrees
    out = jax.jit(lambda kk: random.split(kk))(k)
    assert isinstance(out, random.PRNGKeyArray) and out.shape == (2,)
    draws = jax.vmap(lambda kk: random.uniform(kk, (2,)))(ks)
    assert draws.shape == (4, 2)


def test_batched_key_errors():
    keys = random.split(random.PRNGKey(0), 3)
    with pytest.raises(ValueError, match="accepts a single key.*vmap"):
        random.normal(keys, (2,))
    with pytest.raises(ValueError, match="accepts a single key.*vmap"):
        random.split(random.split(random.key(0), 3))
    with pytest.raises(TypeError, match="invalid PRNG key data"):
        random.normal(jnp.asarray(_u32(1, 2, 3)))
    with pytest.raises(TypeError, match="requires a PRNG key"):
        random.normal(0)


def test_split_fold_in_bits_shapes_and_dtypes(x64):
    key = random.PRNGKey(0)
    assert random.split(key, (2, 3)).shape == (2, 3, 2)
    assert np.asarray(random.split(key, (2, 3))).reshape(6, 2).tolist() == \
        np.asarray(random.split(key, 6)).tolist()
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        b = random.bits(key, (3, 4), dt)
        assert b.dtype == dt and b.shape == (3, 4)
        jb = jax.jit(lambda k: random.bits(k, (3, 4), dt))(key)
        assert np.asarray(jb).tolist() == np.asarray(b).tolist()
    b32 = np.asarray(random.bits(key, (12,)))
    assert np.asarray(random.bits(key, (12,), np.uint8)).tolist() == (b32 & 0xFF).tolist()
    y0, y1 = random_bits.threefry2x32_np(0, 0, np.zeros(12, np.uint32), np.arange(12,
                                                                                  dtype=np.uint32))
    b64 = (y0.astype(np.uint64) << np.uint64(32)) | y1
    assert np.asarray(random.bits(key, (12,), np.uint64)).tolist() == b64.tolist()
    with pytest.raises(ValueError, match="unsigned int dtype"):
        random.bits(key, (2,), np.int32)
    assert random.normal(key, (3,), np.float64).dtype == np.float64
    assert random.uniform(key, (3,)).dtype == np.float64


def test_fold_in_traced_data():
    key = random.PRNGKey(5)
    eager = [np.asarray(random.fold_in(key, i)).tolist() for i in range(4)]
    traced = jax.vmap(lambda i: random.fold_in(key, i))(jnp.asarray(np.arange(4, dtype=np.int32)))
    assert np.asarray(traced).tolist() == eager


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


def test_gamma_grad_not_silently_zero():
    key = random.PRNGKey(0)
    with pytest.raises(NotImplementedError, match="gamma"):
        jax.grad(lambda a: random.gamma(key, a, (3,)).sum())(2.0)


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
    np.testing.assert_allclose(np.asarray(random._cholesky(jnp.asarray(cov))),
                               np.linalg.cholesky(cov), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="cov.shape"):
        random.multivariate_normal(key, jnp.asarray(mean), jnp.asarray(np.eye(2, dtype=np.float32)))


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


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------

N = 100000
KS_CRIT = 1.95 / math.sqrt(N)  # 0.1% level


def _ks(samples: np.ndarray, cdf) -> float:
    x = np.sort(np.asarray(samples, np.float64))
    f = cdf(x)
    n = len(x)
    i = np.arange(1, n + 1)
    return float(max((i / n - f).max(), (f - (i - 1) / n).max()))


_erf = np.vectorize(math.erf, otypes=[np.float64])


def test_ks_uniform_normal_exponential_gamma():
    keys = random.split(random.PRNGKey(2024), 5)
    assert _ks(random.uniform(keys[0], (N,)), lambda x: np.clip(x, 0, 1)) < KS_CRIT
    assert _ks(random.normal(keys[1], (N,)), lambda x: 0.5 * (1 + _erf(x / math.sqrt(2)))) \
        < KS_CRIT
    assert _ks(random.exponential(keys[2], (N,)), lambda x: 1 - np.exp(-x)) < KS_CRIT
    # Gamma(3): 1 - e^-x (1 + x + x^2/2);  Gamma(1/2): erf(sqrt(x))
    assert _ks(random.gamma(keys[3], 3.0, (N,)),
               lambda x: 1 - np.exp(-x) * (1 + x + x * x / 2)) < KS_CRIT
    assert _ks(random.gamma(keys[4], 0.5, (N,)), lambda x: _erf(np.sqrt(x))) < KS_CRIT


def test_ks_detects_a_wrong_distribution():
    u = random.uniform(random.PRNGKey(0), (N,))
    assert _ks(np.asarray(u) ** 1.05, lambda x: np.clip(x, 0, 1)) > KS_CRIT


@pytest.mark.parametrize("name,draw,mean,var", [
    ("uniform", lambda k: random.uniform(k, (N,), minval=-1.0, maxval=3.0), 1.0, 16 / 12),
    ("normal", lambda k: random.normal(k, (N,)), 0.0, 1.0),
    ("exponential", lambda k: random.exponential(k, (N,)), 1.0, 1.0),
    ("laplace", lambda k: random.laplace(k, (N,)), 0.0, 2.0),
    ("logistic", lambda k: random.logistic(k, (N,)), 0.0, math.pi ** 2 / 3),
    ("gumbel", lambda k: random.gumbel(k, (N,)), 0.5772156649, math.pi ** 2 / 6),
    ("bernoulli", lambda k: random.bernoulli(k, 0.3, (N,)), 0.3, 0.21),
    ("randint", lambda k: random.randint(k, (N,), 0, 10), 4.5, 8.25),
    ("rademacher", lambda k: random.rademacher(k, (N,)), 0.0, 1.0),
    ("truncated_normal", lambda k: random.truncated_normal(k, -1.0, 1.0, (N,)), 0.0,
     0.2911),
    ("gamma_2.5", lambda k: random.gamma(k, 2.5, (N,)), 2.5, 2.5),
    ("gamma_0.3", lambda k: random.gamma(k, 0.3, (N,)), 0.3, 0.3),
    ("beta_2_5", lambda k: random.beta(k, 2.0, 5.0, (N,)), 2 / 7, 10 / (49 * 8)),
    ("dirichlet", lambda k: random.dirichlet(k, jnp.asarray(np.array([1.0, 2.0, 3.0],
                                                                     np.float32)), (N,))[:, 2],
     0.5, 0.5 * 0.5 / 7),
])
def test_mean_and_variance(name, draw, mean, var):
    x = np.asarray(draw(random.PRNGKey(11)), np.float64)
    assert x.shape == (N,)
    se_mean = math.sqrt(var / N)
    assert abs(x.mean() - mean) < 5 * se_mean + 1e-3, name
    assert abs(x.var() / var - 1) < 0.05, name


def test_loggamma_consistent_with_gamma():
    key = random.PRNGKey(3)
    lg = np.asarray(random.loggamma(key, 1e-3, (N,)), np.float64)
    assert np.isfinite(lg).all()  # gamma(1e-3) underflows; its log does not
    g = np.exp(np.asarray(random.loggamma(key, 4.0, (N,)), np.float64))
    assert abs(g.mean() - 4.0) < 0.05 and abs(g.var() / 4.0 - 1) < 0.05


def test_streams_deterministic_and_uncorrelated():
    key = random.PRNGKey(99)
    a1, b1 = random.split(key)
    a2, b2 = random.split(key)
    assert np.asarray(a1).tolist() == np.asarray(a2).tolist()
    # JAX's (partitionable) split: split(key, n)[i] is fold_in(key, i)
    assert np.asarray(random.split(key, 4)[2]).tolist() == \
        np.asarray(random.fold_in(key, 2)).tolist()
    streams = [random.normal(k, (N // 10,)) for k in random.split(key, 4)]
    streams += [random.normal(random.fold_in(key, i), (N // 10,)) for i in range(100, 104)]
    streams.append(random.normal(key, (N // 10,)))
    m = np.corrcoef(np.stack([np.asarray(s, np.float64) for s in streams]))
    off = m[~np.eye(len(streams), dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(N // 10)
    # consecutive elements of one stream are uncorrelated too
    s = np.asarray(streams[0], np.float64)
    assert abs(np.corrcoef(s[:-1], s[1:])[0, 1]) < 5 / math.sqrt(len(s))
    # fold_in is deterministic and distinct across data
    f = {tuple(np.asarray(random.fold_in(key, i)).tolist()) for i in range(50)}
    assert len(f) == 50


def test_small_eager_normal_path_is_bit_identical_to_the_array_path():
    from tinyjax import random as R
    for seed in range(200):
        key = random.PRNGKey(seed)
        for n in (1, 3, 64):
            fast = np.asarray(random.normal(key, (n,)))
            b = R._bits_np(key._value, 32, (n,))
            floats = ((b >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - 1
            u = np.maximum(R._LO_F32, floats * (np.float32(1) - R._LO_F32) + R._LO_F32)
            ref = np.float32(np.sqrt(2)) * R._erf_inv_f32_np(u)
            np.testing.assert_array_equal(fast.view(np.uint32), ref.view(np.uint32))
