"""Seeding, raw and typed keys, key data, batched-key errors, split/fold_in/bits shapes."""
from __future__ import annotations

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.lax import random_bits


M32 = 0xFFFFFFFF


def _u32(*vals):
    return np.array(vals, np.uint32)


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


def test_key_dtype_is_an_extended_prng_key_dtype():
    k = random.key(0)
    assert k.dtype == random.key_dtype() == random.key_dtype("threefry2x32")
    assert str(k.dtype) == "key<fry>"
    assert jnp.issubdtype(k.dtype, jax.dtypes.prng_key)
    assert jnp.issubdtype(k.dtype, jax.dtypes.extended)
    assert jnp.issubdtype(k.dtype, np.generic)
    assert not jnp.issubdtype(k.dtype, np.floating)
    assert not jnp.issubdtype(np.float32, jax.dtypes.prng_key)
    assert jnp.issubdtype(jax.dtypes.prng_key, jax.dtypes.extended)
    with pytest.raises(ValueError, match="unrecognized PRNG implementation"):
        random.key_dtype("rbg")
    assert random.split(k, 3).dtype == random.key_dtype()


def test_key_arrays_copy_and_describe_their_shape_under_eval_shape():
    keys = random.split(random.key(0), 3)
    copied = keys.copy()
    assert copied.shape == (3,) and bool((copied == keys).all())
    out = jax.eval_shape(lambda k: random.split(k, 4), random.key(1))
    assert out.shape == (4,) and jax.dtypes.issubdtype(out.dtype, jax.dtypes.prng_key)


def _keys_equal(a, b):
    return a.shape == b.shape and np.array_equal(random.key_data(a), random.key_data(b))


def test_jnp_structural_functions_take_key_arrays():
    # as JAX's: the keys themselves are rearranged (their data along with them), not copied
    # into a uint32 array; a Python loop over the keys is the reference
    k = random.key(3)
    ks = random.split(k, 3)
    data = np.asarray(random.key_data(ks))
    assert jnp.asarray(ks) is ks and _keys_equal(jnp.array(ks), ks)
    assert jnp.shape(ks) == (3,) and jnp.ndim(k) == 0 and jnp.size(ks) == 3
    b = jnp.broadcast_to(k, (2, 3))
    assert b.dtype == k.dtype and all(_keys_equal(b[i, j], k) for i in range(2)
                                      for j in range(3))
    stacked = jnp.stack([ks, ks], axis=-1)
    assert stacked.shape == (3, 2) and _keys_equal(stacked[1, 0], ks[1])
    joined = jnp.concatenate([ks, ks[:1]])
    np.testing.assert_array_equal(random.key_data(joined), np.concatenate([data, data[:1]]))
    assert jnp.expand_dims(ks, -1).shape == (3, 1)
    assert jnp.squeeze(jnp.expand_dims(ks, 0)).shape == (3,)
    assert jnp.reshape(ks, (-1, 1)).shape == (3, 1)
    traced = jax.jit(lambda k: jnp.broadcast_to(k, (4,)))(k)
    assert _keys_equal(traced[3], k)
    with pytest.raises(TypeError, match="key<fry> to float32"):
        jnp.asarray(k, dtype=jnp.float32)


def test_jnp_comparisons_and_where_take_key_arrays():
    # key by key, as JAX's; the reference is a Python loop over the keys' data
    a = random.split(random.key(1), 4)
    b = jnp.stack([a[0], random.key(7), a[2], random.key(8)])
    da, db = np.asarray(random.key_data(a)), np.asarray(random.key_data(b))
    same = [bool(np.array_equal(da[i], db[i])) for i in range(4)]
    assert jnp.equal(a, b).tolist() == same and (a == b).tolist() == same
    assert jnp.not_equal(a, b).tolist() == [not s for s in same]
    assert jnp.equal(a, a[1]).tolist() == [i == 1 for i in range(4)]  # broadcast
    assert bool(jnp.array_equal(a, a)) and not bool(jnp.array_equal(a, b))
    assert not bool(jnp.array_equal(a, a[:2]))
    assert bool(jnp.array_equal(a, a, equal_nan=True))
    assert bool(jax.jit(jnp.array_equal)(a, a)) and not bool(jax.jit(jnp.array_equal)(a, b))
    assert bool(jnp.array_equiv(jnp.stack([a[0], a[0]]), a[0]))
    assert not bool(jnp.array_equiv(a, a[:2]))
    picked = jnp.where(np.array([True, False, True, False]), a, b)
    assert all(_keys_equal(picked[i], (a if i % 2 == 0 else b)[i]) for i in range(4))
    grid = jnp.where(np.array([[True], [False]]), a, random.key(9))  # (2, 1) with (4,)
    assert grid.shape == (2, 4) and _keys_equal(grid[0, 3], a[3])
    assert _keys_equal(grid[1, 0], random.key(9))
    with pytest.raises(TypeError, match="equal does not accept dtypes key<fry>, float32"):
        jnp.array_equal(a, jnp.ones(4))
    with pytest.raises(ValueError, match="dtype=key<fry> is not a valid dtype"):
        jnp.where(True, a, jnp.ones(4))


def test_key_arrays_update_functionally_with_at():
    ks = random.split(random.key(0), 3)
    new = random.split(random.key(1), 2)
    data, new_data = np.asarray(random.key_data(ks)), np.asarray(random.key_data(new))
    want = data.copy()
    want[1] = new_data[0]
    assert np.array_equal(random.key_data(ks.at[1].set(new[0])), want)
    want = data.copy()
    want[[0, 2]] = new_data
    assert np.array_equal(random.key_data(ks.at[np.array([0, 2])].set(new)), want)
    assert _keys_equal(ks.at[2].get(), ks[2])
    jitted = jax.jit(lambda k, i, v: k.at[i].set(v))(ks, 1, new[0])
    assert _keys_equal(jitted, ks.at[1].set(new[0]))
    with pytest.raises(TypeError, match="takes key arrays"):
        ks.at[1].set(np.uint32(3))
