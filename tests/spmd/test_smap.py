"""jax.smap: shard_map over one axis of the current mesh, with vmap-style axes, against
numpy on the blocks."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.sharding import AxisType, Mesh, PartitionSpec as P

from tests.spmd.mesh_support import DEVICES, N, needs_devices

X = np.arange(N * 2 * 3, dtype=np.float32).reshape(N * 2, 3)


def auto_mesh(shape, names):
    n = int(np.prod(shape))
    return Mesh(np.array(DEVICES[:n], dtype=object).reshape(shape), names,
                axis_types=(AxisType.Auto,) * len(names))


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_smap_splits_and_joins_along_the_axes(mode):
    def body(a, b):
        return a * 2 + b, lax.psum(jnp.sum(a, 0), "i")
    f = jax.smap(body, in_axes=(0, None), out_axes=(1, None), axis_name="i")
    with jax.set_mesh(auto_mesh((N,), ("i",))):
        out, total = (jax.jit(f) if mode == "jit" else f)(X, np.float32(1))
    want = np.concatenate([blk * 2 + 1 for blk in np.split(X, N)], axis=1)
    np.testing.assert_array_equal(np.asarray(out), want)
    np.testing.assert_allclose(np.asarray(total), X.sum(0), rtol=1e-6)


def test_smap_as_decorator_and_grad():
    @jax.smap(in_axes=0, out_axes=0, axis_name="i")
    def f(a):
        return jnp.sin(a) * lax.axis_index("i")
    with jax.set_mesh(auto_mesh((N,), ("i",))):
        g = jax.grad(lambda x: jnp.sum(f(x)))(X)
    index = np.repeat(np.arange(N), 2)[:, None]
    np.testing.assert_allclose(np.asarray(g), np.cos(X) * index, rtol=1e-5, atol=1e-6)


def test_smap_argument_errors():
    body = lambda a: a
    with pytest.raises(TypeError, match="axis_name should be a `str`"):
        jax.smap(body, in_axes=0, out_axes=0, axis_name=("i",))
    with pytest.raises(TypeError, match="in_axes must be an int"):
        jax.smap(body, in_axes=[0], out_axes=0, axis_name="i")
    with pytest.raises(TypeError, match="out_axes must be an int"):
        jax.smap(body, in_axes=0, out_axes="x", axis_name="i")
    with pytest.raises(ValueError, match="context mesh cannot be empty"):
        jax.smap(body, in_axes=0, out_axes=0, axis_name="i")(X)
    with jax.set_mesh(auto_mesh((N,), ("i",))):
        with pytest.raises(TypeError, match="in_axes was not specified"):
            jax.smap(body, out_axes=0, axis_name="i")(X)


def test_smap_infers_in_axes_over_explicit_axes():
    mesh = jax.make_mesh((N,), ("i",), axis_types=(AxisType.Explicit,))
    x = jax.device_put(X, jax.sharding.NamedSharding(mesh, P("i")))
    with jax.set_mesh(mesh):
        out = jax.smap(lambda a: a + lax.axis_index("i"), out_axes=0, axis_name="i")(x)
    np.testing.assert_array_equal(np.asarray(out), X + np.repeat(np.arange(N), 2)[:, None])


@needs_devices(4)
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_smap_over_one_of_two_axes(mode):
    """Manual over "i" only: the arguments stay whole along "j", whose name is unbound in
    the body."""
    x = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    with jax.set_mesh(auto_mesh((2, 2), ("i", "j"))):
        f = jax.smap(lambda a: (a * lax.axis_index("i"), lax.psum(jnp.sum(a, 0), "i")),
                     in_axes=0, out_axes=(0, None), axis_name="i")
        scaled, total = (jax.jit(f) if mode == "jit" else f)(x)
        with pytest.raises(NameError, match="unbound axis name: j"):
            jax.smap(lambda a: lax.psum(a, "j"), in_axes=0, out_axes=0, axis_name="i")(x)
        with pytest.raises(ValueError, match="subset of"):
            jax.shard_map(lambda a: a, in_specs=P(), out_specs=P(), axis_names={"k"})(x)
    np.testing.assert_array_equal(np.asarray(scaled), x * np.repeat([0, 1], 4)[:, None])
    np.testing.assert_allclose(np.asarray(total), x.sum(0), rtol=1e-6)


@needs_devices(4)
def test_nested_smap_eagerly():
    x = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    with jax.set_mesh(auto_mesh((2, 2), ("i", "j"))):
        inner = jax.smap(lambda a: a * lax.axis_index("j"), in_axes=1, out_axes=1,
                         axis_name="j")
        out = jax.smap(lambda a: inner(a) + lax.axis_index("i"), in_axes=0, out_axes=0,
                       axis_name="i")(x)
    want = x * np.repeat([0, 1], 2)[None, :] + np.repeat([0, 1], 4)[:, None]
    np.testing.assert_array_equal(np.asarray(out), want)


@needs_devices(4)
def test_shard_map_auto_is_the_complement_of_axis_names():
    x = np.arange(8 * 4, dtype=np.float32).reshape(8, 4)
    mesh = auto_mesh((2, 2), ("i", "j"))
    f = jax.shard_map(lambda a: a * lax.axis_index("i"), mesh=mesh, in_specs=P("i"),
                      out_specs=P("i"), auto=frozenset({"j"}))
    np.testing.assert_array_equal(np.asarray(f(x)), x * np.repeat([0, 1], 4)[:, None])
