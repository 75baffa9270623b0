"""jax.debug.inspect_array_sharding (concrete arrays; under jit, the layouts the
partitioner gives, once per compilation);
jax.sharding.AbstractDevice and ManualAxisType."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.sharding import (AbstractDevice, AxisType, ManualAxisType, NamedSharding,
                              PartitionSpec as P)

from tests.spmd.mesh_support import DEVICES, N, mesh_1d


def test_inspect_concrete_arrays():
    seen = []
    x = jax.device_put(np.arange(N * 2.0), NamedSharding(mesh_1d(), P("i")))
    jax.debug.inspect_array_sharding({"a": jnp.ones(2), "b": x}, callback=seen.append)
    assert seen == [jnp.ones(2).sharding, x.sharding]


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
def test_inspect_under_jit_reports_the_partitioners_layouts(axis_type):
    mesh = jax.make_mesh((N,), ("i",), axis_types=(axis_type,))
    x = jax.device_put(np.arange(N * 2.0), NamedSharding(mesh, P("i")))
    seen = []

    def f(v):
        jax.debug.inspect_array_sharding(jnp.sin(v), callback=seen.append)
        jax.debug.inspect_array_sharding(jnp.sum(v), callback=seen.append)
        return v * 2
    with jax.set_mesh(mesh):
        compiled = jax.jit(f)
        np.testing.assert_array_equal(np.asarray(compiled(x)), 2 * np.arange(N * 2.0))
        compiled(x)  # cached: no more calls
    assert seen == [NamedSharding(mesh, P("i")), NamedSharding(mesh, P())]


def test_inspect_on_one_device_and_under_transforms():
    seen = []
    out = jax.jit(lambda v: (jax.debug.inspect_array_sharding(v, callback=seen.append),
                             v + 1)[1])(jnp.ones(2))
    np.testing.assert_array_equal(np.asarray(out), [2.0, 2.0])
    jax.grad(lambda v: (jax.debug.inspect_array_sharding(v, callback=seen.append),
                        jnp.sum(v))[1])(jnp.ones(2))
    jax.vmap(lambda v: jax.debug.inspect_array_sharding(v, callback=seen.append))(jnp.ones(2))
    assert seen == [jnp.ones(2).sharding] * 3


def test_abstract_device_of_a_mesh():
    d = jax.make_mesh((1,), ("i",)).abstract_mesh.abstract_device
    assert d == AbstractDevice(DEVICES[0].device_kind, None, DEVICES[0].platform)
    assert repr(d) == (f"AbstractDevice(device_kind={DEVICES[0].device_kind}, num_cores=None, "
                       f"platform={DEVICES[0].platform})")


def test_manual_axis_type():
    t = ManualAxisType(varying={"i"})
    assert t.varying == frozenset({"i"}) and not t.empty and ManualAxisType().empty
    assert t.update(reduced={"j"}).to_ct_mat() == ManualAxisType(varying={"i"},
                                                                   unreduced={"j"})
    assert repr(ManualAxisType()) == ("ManualAxisType(varying=frozenset(), "
                                      "unreduced=frozenset(), reduced=frozenset())")
    with pytest.raises(ValueError, match="varying and unreduced cannot have common"):
        ManualAxisType(varying={"i"}, unreduced={"i"})
