"""The threefry2x32 primitive: the Random123 known-answer vectors on every path (big-integer
lanes, numpy, lax, jit), broadcasting, batching and its place in jaxprs."""
from __future__ import annotations

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax, random
from tinyjax.lax import random_bits


M32 = 0xFFFFFFFF

# Random123 kat_vectors for threefry2x32_20: (key, counter) -> output
KAT = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((M32, M32), (M32, M32), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


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
