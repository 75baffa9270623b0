"""Sharding in types (JAX's explicit mode) on the suite's 8 CPU devices: the layouts that
types name follow through operations by each primitive's rule, ambiguous and illegal
layouts raise ShardingTypeError, ``out_sharding`` settles them, the values lie as their
types say, and the values are numpy's."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.core import ShardingTypeError
from tinyjax.sharding import AxisType, NamedSharding, PartitionSpec as P, auto_axes, \
    explicit_axes

from tests.spmd.mesh_support import DEVICES, needs_devices

pytestmark = needs_devices(8)
RNG = np.random.default_rng(0)


@pytest.fixture
def mesh():
    """A 4x2 mesh of Explicit axes X, Y, current for the test."""
    m = jax.make_mesh((4, 2), ("X", "Y"), devices=DEVICES[:8])
    with jax.set_mesh(m):
        yield m


def put(x, *spec):
    return jax.device_put(np.asarray(x), P(*spec))


def typed(x) -> str:
    return str(jax.typeof(x))


def test_placed_arrays_and_traced_values_name_their_layout(mesh):
    x = put(RNG.standard_normal((8, 4)).astype(np.float32), "X", "Y")
    assert typed(x) == "float32[8@X,4@Y]"
    s = jax.typeof(x).sharding
    assert s.spec == P("X", "Y") and s.mesh == mesh.abstract_mesh and s.memory_kind is None
    seen = []
    jax.jit(lambda v: seen.append(jax.typeof(v).sharding))(x)
    assert seen[0].spec == P("X", "Y")
    # replicated: one spec entry per dimension, none split
    assert jax.typeof(put(np.ones((8, 4)))).sharding.spec == P(None, None)


def test_eval_shape_gives_the_layout_types_name(mesh):
    x = put(np.ones((8, 4), np.float32), "X", "Y")
    out = jax.eval_shape(lambda a: (a * 2, a.sum(1)), x)
    assert out[0].sharding == jax.typeof(x).sharding and out[0].sharding.spec == P("X", "Y")
    assert out[1].sharding.spec == P("X")
    assert "sharding=NamedSharding" in repr(out[0])
    plain = jax.eval_shape(lambda a: a, np.ones(3, np.float32))
    assert plain.sharding is None
    _, shapes = jax.make_jaxpr(lambda a: a + 1, return_shape=True)(x)
    assert shapes.sharding.spec == P("X", "Y")


def test_rules_of_shape_operations_and_reductions(mesh):
    v = RNG.standard_normal((8, 4)).astype(np.float32)
    x = put(v, "X", "Y")
    cases = [
        (lambda a: jnp.sin(a).T, "float32[4@Y,8@X]", np.sin(v).T),
        (lambda a: a.sum(0), "float32[4@Y]", v.sum(0)),
        (lambda a: a.max(1), "float32[8@X]", v.max(1)),
        (lambda a: a.reshape(4, 2, 4), "float32[4@X,2,4@Y]", v.reshape(4, 2, 4)),
        (lambda a: a.reshape(32), "float32[32@(X,Y)]", v.reshape(32)),
        (lambda a: a[None], "float32[1,8@X,4@Y]", v[None]),
        (lambda a: jnp.cumsum(a, 1), "float32[8@X,4@Y]", np.cumsum(v, 1)),
        (lambda a: a[:4], "float32[4@X,4@Y]", v[:4]),
        (lambda a: a + 1.0, "float32[8@X,4@Y]", v + 1),
    ]
    for f, want, ref in cases:
        for g in (f, jax.jit(f)):
            out = g(x)
            assert typed(out) == want, (want, typed(out))
            np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-6)
            # the value lies as its type says
            assert out.sharding.spec == jax.typeof(out).sharding.spec


def test_broadcasting_combines_layouts(mesh):
    a, b = np.arange(4).reshape(4, 1), np.arange(8).reshape(1, 8)
    out = put(a, "X", None) + put(b, None, "Y")
    assert typed(out) == "int32[4@X,8@Y]"
    np.testing.assert_array_equal(np.asarray(out), a + b)


def test_a_result_naming_an_axis_twice_is_an_error(mesh):
    x, y = put(np.ones((4, 4), np.int32), "X", None), put(np.ones((4, 4), np.int32), None, "X")
    msg = ("add operation with inputs: i32[4@X,4], i32[4,4@X] produces an illegally sharded "
           "result: i32[4@X,4@X]")
    for f in (lambda a, b: a + b, jax.jit(lambda a, b: a + b)):
        with pytest.raises(ShardingTypeError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            f(x, y)


def test_incompatible_layouts_are_an_error(mesh):
    x, y = put(np.ones((8, 4)), "X", None), put(np.ones((8, 4)), "Y", None)
    with pytest.raises(ShardingTypeError, match="incompatible shardings for broadcasting"):
        x + y


def test_products_with_split_contracting_dimensions_need_out_sharding(mesh):
    u = RNG.standard_normal((8, 4)).astype(np.float32)
    w = RNG.standard_normal((4, 16)).astype(np.float32)
    x, y = put(u, None, "X"), put(w, "X", None)
    with pytest.raises(ShardingTypeError, match="Contracting dimensions are sharded"):
        jnp.dot(x, y)
    products = [
        lambda a, b: jnp.dot(a, b, out_sharding=P("X", None)),
        lambda a, b: jnp.matmul(a, b, out_sharding=P("X")),
        lambda a, b: jnp.einsum("ik,kj->ij", a, b, out_sharding=P("X", None)),
        lambda a, b: jnp.einsum("ik,kj->ji", a, b, out_sharding=P(None, "X")),
        lambda a, b: jnp.tensordot(a, b, 1, out_sharding=P("X", None)),
        lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ())),
                                     out_sharding=P("X", None)),
    ]
    for f in products:
        for g in (f, jax.jit(f)):
            out = g(x, y)
            want = u @ w
            if out.shape != want.shape:
                want = want.T
            assert jax.typeof(out).sharding.spec in (P("X", None), P(None, "X"))
            assert out.sharding.spec == jax.typeof(out).sharding.spec
            np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-5)
    # one operand split on the contracting dimension: not ambiguous, the sum is replicated
    out = jnp.dot(x, put(w))
    assert typed(out) == "float32[8,16]"
    np.testing.assert_allclose(np.asarray(out), u @ w, rtol=1e-5, atol=1e-5)


def test_batch_dimensions_must_be_split_alike(mesh):
    a, b = put(np.ones((8, 2, 4)), "X"), put(np.ones((8, 4, 2)))
    with pytest.raises(ShardingTypeError, match="same sharding"):
        jnp.matmul(a, b)


def test_gradients_of_a_data_parallel_loss(mesh):
    """The cotangent of replicated weights contracts over the split batch: it takes the
    weights' layout (no ambiguity) and equals the unsharded gradient."""
    w = RNG.standard_normal((16, 4)).astype(np.float32)
    xb = RNG.standard_normal((32, 16)).astype(np.float32)
    loss = lambda w, x: jnp.sum(jnp.tanh(x @ w) ** 2)
    ref = jax.grad(loss)(w, xb)
    big = jax.make_mesh((8,), ("batch",), devices=DEVICES[:8])
    with jax.set_mesh(big):
        g = jax.jit(jax.grad(loss))(jax.device_put(w, P()), jax.device_put(xb, P("batch")))
    assert typed(g) == "float32[16,4]"
    np.testing.assert_allclose(np.asarray(g), np.asarray(ref), rtol=1e-4, atol=1e-5)


def test_reshape_that_moves_a_split_needs_out_sharding(mesh):
    v = np.arange(32.0, dtype=np.float32).reshape(8, 4)
    for x, shape_ in ((put(v, None, "X"), (32,)), (put(v, "X", "Y"), (2, 4, 4)),
                      (put(v, "X", "Y"), (2, 2, 2, 4))):
        with pytest.raises(ShardingTypeError, match="This reshape is not supported"):
            x.reshape(shape_)
    x = put(v, "X", "Y")
    for f in (lambda a: a.reshape(2, 4, 4, out_sharding=P(None, "X")),
              jax.jit(lambda a: lax.reshape(a, (2, 4, 4), out_sharding=P(None, "X")))):
        out = f(x)
        assert typed(out) == "float32[2,4@X,4]"
        np.testing.assert_array_equal(np.asarray(out), v.reshape(2, 4, 4))


def test_auto_axes_lets_the_compiler_decide_inside(mesh):
    a, b = np.arange(16).reshape(4, 4), np.arange(16).reshape(4, 4) * 3
    x, y = put(a, "X", None), put(b, None, "X")
    seen = []

    @auto_axes
    def add(u, v):
        seen.append(jax.sharding.get_abstract_mesh().axis_types)
        return u + v

    inside_jit = jax.jit(lambda u, v: add(u, v, out_sharding=P("X", None)))
    for f in (lambda u, v: add(u, v, out_sharding=P("X", None)), inside_jit):
        out = f(x, y)
        assert typed(out) == "int32[4@X,4]"
        np.testing.assert_array_equal(np.asarray(out), a + b)
    assert seen[0] == (AxisType.Auto, AxisType.Auto)
    with pytest.raises(TypeError, match="out_sharding"):
        add(x, y)


def test_explicit_axes_types_values_inside_an_auto_mesh():
    auto = jax.make_mesh((4, 2), ("X", "Y"), (AxisType.Auto,) * 2, devices=DEVICES[:8])
    v = np.arange(16.0, dtype=np.float32).reshape(4, 4)
    seen = []

    @explicit_axes
    def double(y):
        seen.append(typed(y))
        return y * 2

    with jax.set_mesh(auto):
        x = put(v, "X", "Y")
        assert typed(x) == "float32[4,4]"  # Auto axes are not in types
        out = jax.jit(lambda a: double(jnp.sin(a), in_sharding=P("X", "Y")) + 1)(x)
    assert seen == ["float32[4@X,4@Y]"]
    assert typed(out) == "float32[4,4]"
    np.testing.assert_allclose(np.asarray(out), np.sin(v) * 2 + 1, rtol=1e-5, atol=1e-6)


def test_reshard_types_and_places(mesh):
    v = np.arange(32.0, dtype=np.float32).reshape(8, 4)
    x = put(v, "X", "Y")
    for f in (lambda a: jax.reshard(a, P("Y", "X")), jax.jit(lambda a: jax.reshard(a, P("Y")))):
        out = f(x)
        assert out.sharding.spec == jax.typeof(out).sharding.spec
        assert jax.typeof(out).sharding.spec[0] == "Y"
        np.testing.assert_array_equal(np.asarray(out), v)
    assert isinstance(jax.typeof(x).sharding, NamedSharding)


def test_unreduced_placement_holds_terms_that_sum_to_the_array(mesh):
    """device_put with unreduced axes: the devices along them hold terms whose sum is their
    block (the others along replicated axes copies); reshard sums them; other operations
    refuse them clearly."""
    v = RNG.standard_normal((8, 6)).astype(np.float32)
    for spec in (P("X", None, unreduced={"Y"}), P(None, None, unreduced={"X"})):
        y = jax.device_put(v, spec)
        assert y.sharding.spec == spec and "sharding=" in repr(y)
        sums: dict = {}
        for s in y.addressable_shards:
            key = tuple((i.start, i.stop) for i in s.index)
            coords = mesh.coords(s.device)
            if all(coords[n] == 0 for n in mesh.axis_names
                   if n not in set(spec.mesh_axes()) | spec.unreduced):
                sums[key] = sums.get(key, 0) + np.asarray(s.data)
        for s in y.addressable_shards:  # each block is the sum of its terms
            key = tuple((i.start, i.stop) for i in s.index)
            np.testing.assert_allclose(sums[key], v[s.index], rtol=1e-6)
        assert any(not np.array_equal(np.asarray(s.data), v[s.index])
                   for s in y.addressable_shards)
        np.testing.assert_allclose(np.asarray(y), v, rtol=1e-6)
        z = jax.reshard(y, P("X"))
        np.testing.assert_allclose(np.asarray(z), v, rtol=1e-6)
        with pytest.raises(NotImplementedError, match="unreduced"):
            y + 1


def test_an_abstract_mesh_of_another_shape_inside_jit(mesh):
    """use_abstract_mesh inside jit: a reshard over an 8-device mesh of another shape lays
    the value out over the same devices reshaped; the result lies on that mesh."""
    v = np.arange(32.0, dtype=np.float32).reshape(8, 4)
    x = put(v, "X", "Y")
    flat = jax.sharding.AbstractMesh((8,), ("A",), (AxisType.Explicit,))

    @jax.jit
    def f(a):
        with jax.sharding.use_abstract_mesh(flat):
            y = jax.reshard(a, P("A", None))
            assert typed(y) == "float32[8@A,4]"
            return y * 2

    z = f(x)
    assert typed(z) == "float32[8@A,4]" and z.sharding.mesh.axis_names == ("A",)
    for s in z.addressable_shards:  # device k holds row k
        np.testing.assert_array_equal(np.asarray(s.data), 2 * v[s.index])
        assert s.index[0] == slice(s.device.id, s.device.id + 1)
    np.testing.assert_array_equal(np.asarray(z), 2 * v)


def test_data_and_tensor_parallel_training_step_under_explicit_types(mesh):
    """An MLP with layer norm and a cross-entropy (jnp's gathers and concatenations of
    index arithmetic inside): batch split over X; weights replicated, or split Megatron's
    way over Y with the one ambiguous product given its out_sharding.  Loss and gradients
    equal the unsharded ones; gradients have the weights' layouts."""
    p = {"w1": RNG.standard_normal((16, 32)).astype(np.float32) * 0.1,
         "b1": RNG.standard_normal(32).astype(np.float32) * 0.1,
         "w2": RNG.standard_normal((32, 10)).astype(np.float32) * 0.1}
    xb = RNG.standard_normal((64, 16)).astype(np.float32)
    yb = RNG.integers(0, 10, 64).astype(np.int32)

    def loss(p, x, y, out_sharding=None):
        h = jax.nn.gelu(x @ p["w1"] + p["b1"])
        h = (h - h.mean(-1, keepdims=True)) / jnp.sqrt(h.var(-1, keepdims=True) + 1e-5)
        logits = jnp.dot(h, p["w2"], out_sharding=out_sharding)
        lp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(lp, y[:, None], 1))

    ref_loss, ref_grads = jax.value_and_grad(loss)(p, xb, yb)
    x, y = put(xb, "X"), put(yb, "X")
    layouts = [({k: P() for k in p}, None, ["float32[16,32]", "float32[32]", "float32[32,10]"]),
               ({"w1": P(None, "Y"), "b1": P("Y"), "w2": P("Y", None)}, P("X", None),
                ["float32[16,32@Y]", "float32[32@Y]", "float32[32@Y,10]"])]
    for specs, out_sharding, want in layouts:
        placed = {k: jax.device_put(v, specs[k]) for k, v in p.items()}
        step = jax.jit(jax.value_and_grad(lambda q, a, b: loss(q, a, b, out_sharding)))
        value, grads = step(placed, x, y)
        np.testing.assert_allclose(float(value), float(ref_loss), rtol=1e-5)
        assert [typed(grads[k]) for k in ("w1", "b1", "w2")] == want
        for k in p:
            np.testing.assert_allclose(np.asarray(grads[k]), np.asarray(ref_grads[k]),
                                       rtol=1e-4, atol=1e-6)
    split = {"w1": jax.device_put(p["w1"], P(None, "Y")), "b1": jax.device_put(p["b1"], P("Y")),
             "w2": jax.device_put(p["w2"], P("Y", None))}
    with pytest.raises(ShardingTypeError, match="Contracting dimensions are sharded"):
        jax.jit(loss)(split, x, y)
