"""The function jax.vjp returns: a pytree, and with_refs with jax.ad's markers
(cotangents returned, accumulated into references, or not wanted)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp

X = np.float32(0.7)
Y = np.arange(3, dtype=np.float32)
CT = np.array([1.0, -2.0, 0.5], np.float32)


def f(x, y):
    return jnp.sin(x) * y


def expected():
    return np.cos(X) * np.sum(Y * CT), np.sin(X) * CT


def test_with_refs_values_refs_and_unwanted():
    _, pull = jax.vjp(f, X, Y)
    gx, gy = expected()
    got = pull.with_refs(jax.ad.GradValue(), jax.ad.GradValue())(CT)
    np.testing.assert_allclose(np.asarray(got[0]), gx, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got[1]), gy, rtol=1e-6)
    ref = jax.new_ref(jnp.full((3,), 1.0))
    got = pull.with_refs(jax.ad.DontWant(), ref)(CT)
    assert got == (jax.ad.DidntWant(), jax.ad.GradRef())
    np.testing.assert_allclose(np.asarray(ref[...]), 1.0 + gy, rtol=1e-6)


def test_with_refs_accumulates_under_jit():
    _, pull = jax.vjp(f, X, Y)

    def twice(ct):
        ref = jax.new_ref(jnp.zeros(()))
        pull.with_refs(ref, jax.ad.DontWant())(ct)
        pull.with_refs(ref, jax.ad.DontWant())(ct)
        return ref[...]
    np.testing.assert_allclose(np.asarray(jax.jit(twice)(CT)), 2 * expected()[0], rtol=1e-6)


def test_markers_are_pytrees_as_in_jax():
    assert jax.tree.leaves(jax.ad.GradRef()) == []
    assert jax.tree.leaves(jax.ad.DidntWant()) == []
    assert jax.tree.leaves(jax.ad.DontWant()) == [jax.ad.DontWant()]
    assert jax.tree.leaves(jax.ad.GradValue()) == [jax.ad.GradValue()]
    _, pull = jax.vjp(f, X, Y)
    same = jax.tree.map(lambda r: r, pull)
    np.testing.assert_allclose(np.asarray(same(CT)[1]), expected()[1], rtol=1e-6)


def test_with_refs_errors():
    _, pull = jax.vjp(f, X, Y)
    with pytest.raises(ValueError, match="Invalid shape for `addupdate`"):
        pull.with_refs(jax.new_ref(jnp.zeros(2)), jax.ad.DontWant())(CT)
    with pytest.raises(ValueError, match="structure"):
        pull.with_refs(jax.ad.GradValue())(CT)
    with pytest.raises(TypeError, match="GradValue"):
        pull.with_refs(1.0, jax.ad.DontWant())
