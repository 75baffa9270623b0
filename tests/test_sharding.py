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
        jax.make_mesh((len(jax.devices()) + 1,), ("x",))


def test_named_sharding_blocks_over_a_larger_mesh():
    # a mesh that names one device twice exercises the block arithmetic of several
    mesh = Mesh(np.array([[DEV, DEV], [DEV, DEV]], dtype=object), ("a", "b"))
    s = NamedSharding(mesh, P(("a", "b"), None))
    assert s.shard_shape((8, 3)) == (2, 3) and not s.is_fully_replicated
    with pytest.raises(ValueError, match="should be divisible by 2"):
        NamedSharding(mesh, P("a")).shard_shape((3,))


def test_partition_spec():
    # as JAX: a spec is its entries (trailing Nones count), one-name tuples are the name
    assert P("x", None) != P("x") and P(("x",)) == P("x") and P("x") != P("y")
    assert repr(P("x", None, ("a", "b"))) == "P('x', None, ('a', 'b'))"
    assert repr(P("x")) == "P('x',)" and len(P("x", None)) == 2 and list(P("x")) == ["x"]
    with pytest.raises(TypeError):
        P(3)
    assert AbstractMesh((2, 3), ("x", "y")).size == 6


def test_reshard_places_on_the_one_device_and_is_the_value_under_jit():
    from tinyjax.sharding import reshard
    x = jnp.arange(4.0)
    s = SingleDeviceSharding(jax.devices()[0])
    out = reshard({"a": x, "b": [x]}, s)
    assert out["a"].sharding == s and out["b"][0].sharding == s
    np.testing.assert_array_equal(out["a"], np.arange(4.0))
    np.testing.assert_array_equal(jax.jit(lambda v: reshard(v, s) + 1)(x), np.arange(4.0) + 1)
    both = reshard((x, x), (s, s))
    np.testing.assert_array_equal(both[1], np.arange(4.0))


def test_mesh_utils_shapes_the_devices():
    from tinyjax.backends import Device
    from tinyjax.experimental import mesh_utils
    devices = jax.devices()
    n = len(devices)
    mesh = mesh_utils.create_device_mesh((1, n))
    assert mesh.shape == (1, n) and list(mesh[0]) == devices
    assert Mesh(mesh, ("x", "y")).shape == {"x": 1, "y": n}
    with pytest.raises(ValueError, match=rf"Number of devices {n} must equal the product of "
                                         rf"mesh_shape \({n + 1},\)"):
        mesh_utils.create_device_mesh((n + 1,))
    assert mesh_utils.create_hybrid_device_mesh((n,), (1,)).shape == (n,)
    with pytest.raises(ValueError, match="Number of slices/granules 1 must equal the product "
                                         r"of dcn_mesh_shape \(2,\)"):
        mesh_utils.create_hybrid_device_mesh((n,), (2,))
    # four processes of two devices each: each process's devices are a (1, 2) block, the
    # processes laid out (2, 2)
    fake = [Device("cpu", i, process_index=i // 2) for i in range(8)]
    hybrid = mesh_utils.create_hybrid_device_mesh((1, 2), (2, 2), fake)
    assert [[d.id for d in row] for row in hybrid] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert [[d.process_index for d in row] for row in hybrid] == [[0, 0, 1, 1], [2, 2, 3, 3]]


def test_mesh_axis_type_queries():
    mesh = AbstractMesh((1, 1), ("a", "b"), axis_types=(AxisType.Explicit, AxisType.Auto))
    assert mesh.explicit_axes == ("a",) and mesh.auto_axes == ("b",) and mesh.manual_axes == ()
    assert not mesh.are_all_axes_explicit and not mesh.are_all_axes_auto
    auto = AbstractMesh((2,), ("x",))
    assert auto.are_all_axes_auto and not auto.are_all_axes_manual


def test_make_array_from_process_local_data_in_one_process():
    n = len(jax.devices())
    mesh = Mesh(np.array(jax.devices()).reshape(n, 1), ("x", "y"))
    data = np.arange(4 * n * 3, dtype=np.float32).reshape(4 * n, 3)
    for spec in (PartitionSpec("x"), PartitionSpec(None, "y"), PartitionSpec()):
        sharding = NamedSharding(mesh, spec)
        a = jax.make_array_from_process_local_data(sharding, data)   # one process: all of it
        assert a.shape == data.shape and a.sharding == sharding
        np.testing.assert_array_equal(np.asarray(a), data)
        for s in a.addressable_shards:
            np.testing.assert_array_equal(np.asarray(s.data), data[s.index])
    tree = jax.make_array_from_process_local_data(
        {"w": NamedSharding(mesh, PartitionSpec("x"))}, {"w": data}, {"w": data.shape})
    np.testing.assert_array_equal(np.asarray(tree["w"]), data)
    with pytest.raises(ValueError, match="differ in rank"):
        jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec()), data,
                                               (4 * n,))


def test_the_sharding_of_an_arrays_type_lays_out_a_new_value():
    # optax draws random values with out_sharding=jax.typeof(x).sharding: a NamedSharding
    # over an AbstractMesh of no axes, which places the value as it is (as JAX)
    x = jnp.ones((2, 3))
    s = jax.typeof(x).sharding
    np.testing.assert_array_equal(jax.lax.with_sharding_constraint(x, s), np.ones((2, 3)))
    key = jax.random.key(0)
    np.testing.assert_array_equal(jax.random.normal(key, (2, 3), out_sharding=s),
                                  jax.random.normal(key, (2, 3)))
    np.testing.assert_array_equal(
        jax.jit(lambda k: jax.random.normal(k, (2, 3), out_sharding=s))(key),
        jax.random.normal(key, (2, 3)))


def test_partition_spec_sequence_methods():
    # as JAX's: tuple-like index/count over the entries, concatenation, update
    spec = P("a", None, ("b", "c"))
    assert spec.index(None) == 1 and spec.index(("b", "c")) == 2 and spec.index(["a"]) == 0
    assert spec.count(None) == 1 and spec.count("z") == 0
    with pytest.raises(ValueError):
        spec.index("z")
    assert spec + P("d") == P("a", None, ("b", "c"), "d")
    assert spec + ("d",) == P("a", None, ("b", "c"), "d") and ("d",) + spec == \
        P("d", "a", None, ("b", "c"))
    assert P("a", unreduced={"u"}) + P("b") == P("a", "b", unreduced={"u"})
    with pytest.raises(TypeError, match="has unreduced in `__add__`"):
        P("a", unreduced={"u"}) + ("b",)
    with pytest.raises(NotImplementedError):
        spec + ["d"]
    assert spec.update(partitions=("x",)) == P("x")
    assert P("a").update(unreduced={"u"}) == P("a", unreduced={"u"})
