"""jax.flatten_util.ravel_pytree."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.flatten_util import ravel_pytree


def test_round_trip_keeps_shapes_and_dtypes():
    tree = {"w": jnp.ones((2, 3)), "b": (jnp.arange(2, dtype=np.int32), 4.0)}
    flat, unravel = ravel_pytree(tree)
    assert flat.shape == (9,) and flat.dtype == np.float32
    back = unravel(flat * 2)
    assert back["w"].shape == (2, 3) and back["b"][0].dtype == np.int32
    assert np.asarray(back["b"][0]).tolist() == [0, 2] and float(back["b"][1]) == 8.0


def test_empty_tree_and_errors():
    flat, unravel = ravel_pytree([])
    assert flat.shape == (0,) and unravel(flat) == []
    flat, unravel = ravel_pytree([jnp.ones(2)])
    with pytest.raises(ValueError, match=r"expected an array of shape \(2,\)"):
        unravel(jnp.ones(3))


def test_under_jit_and_grad():
    params = {"a": jnp.ones(2), "b": jnp.full((2, 2), 2.0)}

    def loss(flat):
        p = unravel(flat)
        return (p["a"] ** 2).sum() + p["b"].sum()

    flat, unravel = ravel_pytree(params)
    g = jax.jit(jax.grad(loss))(flat)
    assert np.asarray(g).tolist() == [2.0, 2.0, 1.0, 1.0, 1.0, 1.0]
