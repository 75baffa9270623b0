"""Typed key arrays in pytrees: one leaf each (as JAX's), carried through jit, vmap, grad,
the loops and conditionals, custom derivatives, checkpoint and device_put as key arrays.
References: the same computation eagerly, Python loops for vmap and the loops."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax, random

float0 = jax.dtypes.float0


def _data(keys):
    return np.asarray(random.key_data(keys))


def _same_keys(a, b) -> bool:
    return isinstance(a, random.KeyArray) and isinstance(b, random.KeyArray) and \
        a.shape == b.shape and np.array_equal(_data(a), _data(b))


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class State:
    key: jax.Array
    total: jax.Array


def test_a_key_array_is_one_leaf_of_the_tree_functions():
    k = random.key(0)
    keys = random.split(k, 3)
    tree = {"a": jnp.ones(2), "key": keys}
    leaves = jax.tree.leaves(tree)
    assert len(leaves) == 2 and leaves[1] is keys
    assert jax.tree.leaves(k)[0] is k
    assert jax.tree_util.treedef_is_strict_leaf(jax.tree.structure(keys))
    assert jax.tree.map(lambda x: x.shape, tree) == {"a": (2,), "key": (3,)}
    assert jax.tree.map(lambda x: None, {"k": k, "x": 1.0}) == {"k": None, "x": None}
    seen = []
    jax.tree.map(seen.append, [keys])
    assert seen[0] is keys
    # leaf by leaf comparison (chex's assert_trees_all_equal): the key arrays themselves
    other = {"a": jnp.ones(2), "key": random.split(random.key(1), 3)}
    same = jax.tree.map(lambda x, y: bool(jnp.all(x == y)), tree, other)
    assert same == {"a": True, "key": False}
    path, _ = jax.tree_util.tree_flatten_with_path(tree)[0][1]
    assert jax.tree_util.keystr(path) == "['key']"


def test_jit_takes_and_gives_key_arrays_in_pytrees():
    def f(state, x):
        key, sub = random.split(state.key)
        return State(key, state.total + random.normal(sub, (3,)) * x), {"sub": sub}

    state = State(random.key(5), jnp.zeros(3))
    eager_state, eager_aux = f(state, 2.0)
    jit_state, jit_aux = jax.jit(f)(state, 2.0)
    assert _same_keys(jit_state.key, eager_state.key)
    assert _same_keys(jit_aux["sub"], eager_aux["sub"])
    np.testing.assert_allclose(jit_state.total, eager_state.total, rtol=1e-6)
    again, _ = jax.jit(f)(jit_state, 2.0)  # the compiled call again, fed its own output
    assert _same_keys(again.key, f(eager_state, 2.0)[0].key)


def test_vmap_maps_key_arrays_over_their_own_axes():
    keys = random.split(random.key(2), 4)
    draws = jax.vmap(lambda k, s: random.uniform(k) * s, in_axes=(0, None))(keys, 3.0)
    loop = [random.uniform(keys[i]) * 3.0 for i in range(4)]
    np.testing.assert_allclose(draws, loop, rtol=1e-6)
    # in_axes and out_axes count a key array's axes, not its data's
    grid = random.split(random.key(3), 6).reshape(2, 3)
    firsts = jax.vmap(lambda ks: ks[0], in_axes=-1)(grid)
    assert _same_keys(firsts, grid[0])
    split = jax.vmap(lambda k: random.split(k, 2), out_axes=-1)(keys)
    assert split.shape == (2, 4)
    for i in range(4):
        assert _same_keys(split[:, i], random.split(keys[i], 2))
    with pytest.raises(ValueError, match="rank should be at least 1, but is only 0"):
        jax.vmap(lambda k: k)(random.key(0))


def test_scan_while_and_fori_carry_key_arrays():
    def body(carry, _):
        key, total = carry
        key, sub = random.split(key)
        return (key, total + random.normal(sub)), sub

    key, total, subs = random.key(7), 0.0, []
    for _ in range(4):
        key, sub = random.split(key)
        total, _ = total + random.normal(sub), subs.append(sub)
    (out_key, out_total), out_subs = lax.scan(body, (random.key(7), 0.0), None, length=4)
    assert _same_keys(out_key, key) and out_subs.shape == (4,)
    assert all(_same_keys(out_subs[i], subs[i]) for i in range(4))
    np.testing.assert_allclose(out_total, total, rtol=1e-5)

    fori_key = lax.fori_loop(0, 4, lambda i, k: random.split(k)[0], random.key(7))
    assert _same_keys(fori_key, key)
    n, while_key = lax.while_loop(lambda c: c[0] < 4,
                                  lambda c: (c[0] + 1, random.split(c[1])[0]),
                                  (0, random.key(7)))
    assert int(n) == 4 and _same_keys(while_key, key)


def test_cond_and_switch_take_and_give_key_arrays():
    k = random.key(1)
    a, b = random.split(k)
    pick = jax.jit(lambda p, k: lax.cond(p, lambda k: random.split(k)[0],
                                         lambda k: random.split(k)[1], k))
    assert _same_keys(pick(True, k), a) and _same_keys(pick(False, k), b)
    out = lax.switch(1, [lambda k: k, lambda k: random.fold_in(k, 3)], k)
    assert _same_keys(out, random.fold_in(k, 3))


def test_grad_passes_key_arguments_and_rejects_differentiating_them():
    k = random.key(4)
    z = random.normal(k, (3,))

    def loss(w, key):
        return jnp.sum(w * random.normal(key, (3,)))

    np.testing.assert_allclose(jax.grad(loss)(jnp.ones(3), k), z, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(jnp.ones(3), k), z, rtol=1e-6)
    with pytest.raises(TypeError, match="but got key<fry>"):
        jax.grad(loss, argnums=1)(jnp.ones(3), k)
    # with allow_int, the gradient of a key array is float0 of its shape (as in JAX)
    g = jax.grad(loss, argnums=1, allow_int=True)(jnp.ones(3), random.split(k, 2)[0])
    assert g.dtype == float0 and g.shape == ()
    (value, new_key), g = jax.value_and_grad(
        lambda w, k: (loss(w, k), random.split(k)[0]), has_aux=True)(jnp.ones(3), k)
    assert _same_keys(new_key, random.split(k)[0])


def test_jvp_and_vjp_take_float0_tangents_of_key_arrays():
    k = random.key(0)
    f = lambda x, key: (x * random.normal(key), random.split(key)[0])
    (y, key_out), (ty, tkey) = jax.jvp(f, (2.0, k), (1.0, np.zeros((), float0)))
    np.testing.assert_allclose(ty, random.normal(k), rtol=1e-6)
    assert _same_keys(key_out, random.split(k)[0])
    assert tkey.dtype == float0 and tkey.shape == ()
    _, pullback = jax.vjp(f, 2.0, k)
    gx, gk = pullback((1.0, np.zeros((), float0)))
    np.testing.assert_allclose(gx, random.normal(k), rtol=1e-6)
    assert gk.dtype == float0 and gk.shape == ()


def test_custom_derivatives_and_checkpoint_take_key_arrays():
    @jax.custom_jvp
    def noisy(x, key):
        return x + random.normal(key)

    noisy.defjvp(lambda primals, tangents: (noisy(*primals), 2.0 * tangents[0]))

    @jax.custom_vjp
    def scaled(x, key):
        return x * random.uniform(key)

    scaled.defvjp(lambda x, key: (scaled(x, key), key),
                  lambda key, ct: (ct * 3.0, None))

    k = random.key(9)
    assert float(jax.grad(noisy)(1.0, k)) == 2.0
    assert float(jax.grad(scaled)(1.0, k)) == 3.0
    remat = jax.checkpoint(lambda x, key: jnp.sin(x) * random.normal(key))
    np.testing.assert_allclose(jax.grad(remat)(0.5, k),
                               np.cos(0.5) * float(random.normal(k)), rtol=1e-6)


def test_device_put_and_eval_shape_keep_key_arrays():
    keys = random.split(random.key(3), 2)
    put = jax.device_put({"k": keys, "x": 1.0}, jax.devices()[0])
    assert _same_keys(put["k"], keys)
    assert _same_keys(jax.block_until_ready(keys), keys)
    out = jax.eval_shape(lambda s: s, State(keys, jnp.zeros(2)))
    assert out.key.shape == (2,) and jax.dtypes.issubdtype(out.key.dtype,
                                                           jax.dtypes.prng_key)


def test_key_types_are_traced_as_key_arrays_over_their_data():
    keys = random.split(random.key(3), 3)
    assert jnp.result_type(keys) == keys.dtype == jax.dtypes.result_type(keys, keys)
    with pytest.raises(ValueError, match="dtype=key<fry> is not a valid dtype"):
        jnp.result_type(keys, jnp.float32)
    spec = jax.ShapeDtypeStruct((3,), keys.dtype)
    assert jax.eval_shape(lambda ks: random.uniform(ks[0]), spec).shape == ()
    out = jax.eval_shape(lambda ks: random.split(ks[1]), spec)
    assert out.shape == (2,) and out.dtype == keys.dtype
    traced = jax.jit(lambda ks: random.normal(ks[2])).trace(spec)
    assert [str(a) for a in traced.jaxpr.in_avals] == ["uint32[3,2]"]
    np.testing.assert_allclose(traced.lower().compile()(keys), random.normal(keys[2]),
                               rtol=1e-6)
