"""jax.debug.inspect_array_sharding (concrete arrays, values typed over Explicit axes
under jit, and the error where tinyjax does not know the layout when tracing);
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


def test_inspect_under_jit_over_explicit_axes():
    mesh = jax.make_mesh((N,), ("i",), axis_types=(AxisType.Explicit,))
    x = jax.device_put(np.arange(N * 2.0), NamedSharding(mesh, P("i")))
    seen = []
    with jax.set_mesh(mesh):
        jax.jit(lambda v: jax.debug.inspect_array_sharding(v * 2, callback=seen.append))(x)
    assert seen == [NamedSharding(mesh, P("i"))]


def test_inspect_layout_chosen_when_compiling_raises():
    with pytest.raises(NotImplementedError, match="partitioner chooses it"):
        jax.jit(lambda v: jax.debug.inspect_array_sharding(v, callback=print))(jnp.ones(2))


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
