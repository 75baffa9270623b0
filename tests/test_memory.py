"""jax.memory.Space: JAX's memory spaces; device_put accepts one (the array keeps its
device, whose one memory it is in)."""
import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp


def test_spaces():
    assert [s.name for s in jax.memory.Space] == ["Device", "Host", "Any"]
    assert repr(jax.memory.Space.Host) == "MemorySpace.Host"
    assert len({jax.memory.Space.Device, jax.memory.Space.Host}) == 2


def test_device_put_to_a_space_keeps_values_and_device():
    x = jnp.arange(4.0)
    for space in (jax.memory.Space.Host, jax.memory.Space.Device):
        y = jax.device_put(x, space)
        np.testing.assert_array_equal(np.asarray(y), np.arange(4.0))
        assert y.devices() == x.devices()
    y = jax.jit(lambda v: jax.device_put(v, jax.memory.Space.Host) * 2)(x)
    np.testing.assert_array_equal(np.asarray(y), 2 * np.arange(4.0))
    tree = jax.device_put({"a": np.ones(2)}, jax.memory.Space.Host)
    np.testing.assert_array_equal(np.asarray(tree["a"]), np.ones(2))
