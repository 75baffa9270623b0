"""jax.pmap on the devices of one process, against Python loops over the mapped axis."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax

N = jax.local_device_count()


def _rows(n=N, width=3, seed=0):
    return np.random.RandomState(seed).randn(n, width).astype(np.float32)


def test_pmap_is_a_map_over_the_leading_axis_with_named_collectives():
    x = _rows()
    out = jax.pmap(lambda v: v / lax.psum(v, "i") + lax.axis_index("i"), axis_name="i")(x)
    np.testing.assert_allclose(out, x / x.sum(0) + np.arange(N)[:, None], rtol=1e-6)


def test_pmap_in_axes_out_axes_and_static_arguments():
    x, y = _rows(), _rows(seed=1)[0]
    f = jax.pmap(lambda a, b, k: (a * b) ** k, in_axes=(0, None, None),
                 static_broadcasted_argnums=2, out_axes=1)
    np.testing.assert_allclose(f(x, y, 2), np.stack([(r * y) ** 2 for r in x], axis=1),
                               rtol=1e-6)
    g = jax.pmap(lambda a, k: a * k, static_broadcasted_argnums=(1,))
    np.testing.assert_allclose(g(x, 3.0), x * 3.0)


def test_pmap_of_a_pytree_and_under_grad():
    params = {"w": _rows(), "b": _rows(seed=2)[:, 0]}
    loss = lambda p: jnp.sum(jnp.tanh(p["w"]) * p["b"])
    grads = jax.pmap(jax.grad(loss))(params)
    for i in range(N):
        row = jax.grad(loss)({"w": params["w"][i], "b": params["b"][i]})
        np.testing.assert_allclose(grads["w"][i], row["w"], rtol=1e-6)
        np.testing.assert_allclose(grads["b"][i], row["b"], rtol=1e-6)


def test_pmap_over_more_elements_than_devices_raises_as_jax():
    with pytest.raises(ValueError, match=f"requires {N + 1} logical devices, but only {N}"):
        jax.pmap(lambda v: v)(np.ones((N + 1, 2), np.float32))
    with pytest.raises(ValueError, match="len\\(in_axes\\)=1, len\\(args\\)=2"):
        jax.pmap(lambda a, b: a, in_axes=(0,))(np.ones((N, 2)), np.ones((N, 2)))
