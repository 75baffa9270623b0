"""Keys, bits, uniform, normal, randint, bernoulli and permutation against values recorded
with JAX (tests/data/jax_random.json), eagerly, with typed keys and under jit."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.random import _normal as random_normal

REFERENCE = Path(__file__).parent.parent / "data" / "jax_random.json"  # JAX's own outputs


def _ref_cases():
    return json.loads(REFERENCE.read_text())["cases"]


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
    traced = np.asarray(random_normal._erf_inv_f32(jnp.asarray(x)))
    np.testing.assert_array_equal(traced, random_normal._erf_inv_f32_np(x))
    # the fused multiply-add emulation also survives compilation
    rng = np.random.default_rng(4)
    a, b, c = (rng.uniform(-3, 3, 5000).astype(np.float32) for _ in range(3))
    fma = np.asarray(jax.jit(random_normal._fma_f32)(jnp.asarray(a), jnp.asarray(b), jnp.asarray(c)))
    np.testing.assert_array_equal(fma, (a.astype(np.float64) * b + c).astype(np.float32))
