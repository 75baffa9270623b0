"""jax.sharding with one device: the classes' arithmetic, and the sharding of arrays."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.sharding import (AbstractMesh, AxisType, Mesh, NamedSharding, PartitionSpec,
                              SingleDeviceSharding)

P = PartitionSpec
DEV = jax.devices()[0]


def test_array_sharding_is_its_one_device():
    x = jnp.arange(6.0).reshape(2, 3)
    assert x.sharding == SingleDeviceSharding(DEV)
    assert x.devices() == {DEV} and x.device == DEV and str(x.device) == "cpu:0"
    assert x.is_fully_replicated and x.sharding.is_fully_replicated
    (shard,) = x.addressable_shards
    assert shard.device == DEV and shard.index == (slice(None), slice(None))
    np.testing.assert_array_equal(np.asarray(shard.data), np.asarray(x))
    assert x.global_shards[0].replica_id == 0
    np.testing.assert_array_equal(np.asarray(x.addressable_data(0)), np.asarray(x))


def test_mesh_and_named_sharding():
    mesh = jax.make_mesh((1,), ("data",))
    assert mesh.shape == {"data": 1} and mesh.size == 1 and mesh.axis_names == ("data",)
    assert mesh.axis_types == (AxisType.Explicit,)
    assert Mesh(np.array([DEV]), "data").axis_types == (AxisType.Auto,)
    s = NamedSharding(mesh, P("data", None))
    assert s.device_set == {DEV} and s.num_devices == 1 and s.is_fully_replicated
    assert s.shard_shape((4, 3)) == (4, 3)
    assert s.is_equivalent_to(SingleDeviceSharding(DEV), 2)
    x = jax.device_put(jnp.ones((4, 3)), s)
    np.testing.assert_array_equal(np.asarray(x), np.ones((4, 3)))
    with pytest.raises(ValueError, match="not found in mesh"):
        NamedSharding(mesh, P("model"))
    with pytest.raises(ValueError, match="too many leaves|more than one|at most one"):
        NamedSharding(Mesh(np.array([[DEV]]), ("a", "b")), P("a", "a"))
    with mesh:
        assert jax.sharding.get_abstract_mesh() == mesh.abstract_mesh
    assert jax.sharding.get_abstract_mesh().empty
    with pytest.raises(ValueError, match="product of mesh_shape"):
        jax.make_mesh((2,), ("x",))


def test_named_sharding_blocks_over_a_larger_mesh():
    # a mesh that names one device twice exercises the block arithmetic of several
    mesh = Mesh(np.array([[DEV, DEV], [DEV, DEV]], dtype=object), ("a", "b"))
    s = NamedSharding(mesh, P(("a", "b"), None))
    assert s.shard_shape((8, 3)) == (2, 3) and not s.is_fully_replicated
    with pytest.raises(ValueError, match="partitioned 2 times"):
        NamedSharding(mesh, P("a")).shard_shape((3,))


def test_partition_spec():
    assert P("x", None) == P("x") and P(("x",)) == P("x") and P("x") != P("y")
    assert repr(P("x", None, ("a", "b"))) == "P('x', None, ('a', 'b'))"
    assert repr(P("x")) == "P('x',)" and len(P("x", None)) == 2 and list(P("x")) == ["x"]
    with pytest.raises(TypeError):
        P(3)
    assert AbstractMesh((2, 3), ("x", "y")).size == 6
