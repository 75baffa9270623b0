"""jit over arrays laid out over several devices: the program is partitioned into one per
device (collectives where layouts disagree), runs on every device, and places its outputs
as out_shardings says; eager operations on such arrays give such arrays."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.sharding import NamedSharding, PartitionSpec as P, SingleDeviceSharding

from tests.spmd.mesh_support import DEVICES, N, mesh_1d, mesh_2d

RNG = np.random.default_rng(2)


def put(x, mesh, spec):
    return jax.device_put(x, NamedSharding(mesh, spec))


def test_device_put_and_shards():
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    x = np.arange(rows * 2 * cols * 3, dtype=np.float32).reshape(rows * 2, cols * 3)
    a = put(x, mesh, P("x", "y"))
    assert a.sharding == NamedSharding(mesh, P("x", "y"))
    assert a.is_fully_replicated == (rows * cols == 1)  # (one device holds it all)
    assert len(a.addressable_shards) == rows * cols and a.devices() == set(DEVICES[:rows * cols])
    for shard in a.addressable_shards:
        np.testing.assert_array_equal(np.asarray(shard.data), x[shard.index])
        assert shard.data.devices() == {shard.device}
    np.testing.assert_array_equal(np.asarray(a), x)
    r = put(x, mesh, P())
    assert r.is_fully_replicated and [s.replica_id for s in r.addressable_shards] == \
        list(range(rows * cols))
    one = jax.device_put(x, DEVICES[-1])
    assert one.sharding == SingleDeviceSharding(DEVICES[-1]) and (one + 1).devices() == \
        {DEVICES[-1]}
    c = jax.make_array_from_callback(x.shape, NamedSharding(mesh, P(None, "y")),
                                     lambda index: x[index])
    np.testing.assert_array_equal(np.asarray(c * 2), 2 * x)


def test_eager_operations_give_laid_out_results():
    mesh = mesh_1d()
    x = RNG.standard_normal((N * 2, 3)).astype(np.float32)
    a = put(x, mesh, P("i"))
    for got, want, spec in [(jnp.sin(a), np.sin(x), P("i")), (a * 2 + 1, x * 2 + 1, P("i")),
                            (a.sum(0), x.sum(0), P()), (a.T, x.T, P(None, "i"))]:
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
        assert got.sharding.spec == spec, (got.sharding.spec, spec)


def test_like_functions_lay_out_their_results_as_committed_arguments():
    # as JAX's: the result of full_like/zeros_like/... of a committed array of its shape
    # (or of a replicated one) is placed as that array is
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    x = np.ones((rows * 2, cols), np.float32)
    a = put(x, mesh, P("x", "y"))
    for got, value in [(jnp.zeros_like(a), 0.0), (jnp.ones_like(a), 1.0),
                       (jnp.full_like(a, 3.0), 3.0), (jnp.empty_like(a), 0.0),
                       (lax.full_like(a, 2.0), 2.0), (jnp.zeros_like(a, shape=x.shape), 0.0)]:
        assert got.sharding == a.sharding
        np.testing.assert_array_equal(np.asarray(got), np.full_like(x, value))
    assert lax.full_like(jnp.ones(2 * rows), 1.0, sharding=NamedSharding(mesh, P("x"))
                         ).sharding == NamedSharding(mesh, P("x"))
    replicated = put(np.ones(4, np.float32), mesh, P())
    assert jnp.zeros_like(replicated, shape=(2,)).sharding == replicated.sharding
    one = jax.device_put(np.ones(3, np.float32), DEVICES[-1])
    assert jnp.zeros_like(one).sharding == SingleDeviceSharding(DEVICES[-1])
    # other shapes, weakly typed values and uncommitted arrays: the default device
    default = SingleDeviceSharding(DEVICES[0])
    assert jnp.zeros_like(a, shape=(3,)).sharding == default
    assert jnp.zeros_like(jnp.ones(3)).sharding == default
    assert jnp.zeros_like(jax.device_put(1.0, DEVICES[-1])).sharding == default


def test_jit_places_outputs_as_out_shardings_says():
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    x = RNG.standard_normal((rows * cols * 2, 4)).astype(np.float32)
    for spec in (P("x", None), P(None, "y"), P(("x", "y")), P()):
        s = NamedSharding(mesh, spec)
        f = jax.jit(lambda v: jnp.tanh(v) * 2, out_shardings=s)
        out = f(x)
        assert out.sharding == s
        np.testing.assert_allclose(np.asarray(out), np.tanh(x) * 2, rtol=1e-6)
        blocks = s.devices_indices_map(x.shape)
        for shard in out.addressable_shards:
            assert shard.index == blocks[shard.device]
            np.testing.assert_allclose(np.asarray(shard.data), (np.tanh(x) * 2)[shard.index],
                                       rtol=1e-6)
    # a pytree of them, and in_shardings laying an uncommitted argument out first
    f = jax.jit(lambda a, b: (a + b, a - b), in_shardings=NamedSharding(mesh, P("x")),
                out_shardings=(NamedSharding(mesh, P("x")), NamedSharding(mesh, P())))
    s, d = f(x, x * 3)
    assert s.sharding.spec == P("x") and d.sharding.spec == P()
    np.testing.assert_allclose(np.asarray(d), -2 * x, rtol=1e-6)


def _program_text(f, *args) -> str:
    return f.lower(*args).compile().as_text()


def test_data_parallel_step_inserts_one_psum_per_gradient():
    mesh = mesh_1d()
    w = RNG.standard_normal((5, 3)).astype(np.float32)
    x = RNG.standard_normal((N * 4, 5)).astype(np.float32)
    loss = lambda w, x: jnp.mean(jnp.tanh(x @ w) ** 2)
    step = jax.jit(jax.value_and_grad(loss))
    wr, xs = put(w, mesh, P()), put(x, mesh, P("i"))
    (l, g) = step(wr, xs)
    (lr, gr) = jax.value_and_grad(loss)(w, x)
    np.testing.assert_allclose(float(l), float(lr), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(g), np.asarray(gr), rtol=1e-4, atol=1e-6)
    assert g.sharding.spec == P() and l.sharding.spec == P()
    local = step.lower(wr, xs).compile()._call.local.jaxpr
    assert any(e.primitive is lax.psum_p for e in local.eqns)
    assert not any(e.primitive is lax.all_gather_p for e in local.eqns)  # no data moved


def test_tensor_parallel_products():
    mesh = mesh_1d("model")
    x = RNG.standard_normal((6, N * 2)).astype(np.float32)
    w1 = RNG.standard_normal((N * 2, N * 4)).astype(np.float32)
    w2 = RNG.standard_normal((N * 4, 5)).astype(np.float32)
    mlp = jax.jit(lambda x, w1, w2: jnp.tanh(x @ w1) @ w2)
    # w1 split on its output dimension, w2 on its contracting one: no gather, one psum
    args = (put(x, mesh, P()), put(w1, mesh, P(None, "model")), put(w2, mesh, P("model")))
    out = mlp(*args)
    np.testing.assert_allclose(np.asarray(out), np.tanh(x @ w1) @ w2, rtol=1e-4, atol=1e-4)
    local = mlp.lower(*args).compile()._call.local.jaxpr
    prims = [e.primitive for e in local.eqns]
    assert prims.count(lax.psum_p) == 1 and lax.all_gather_p not in prims
    # x split on the contracting dimension too: a partial sum per device
    xs = put(x, mesh, P(None, "model"))
    h = jax.jit(lambda x, w: x @ w)(xs, put(w1, mesh, P("model")))
    np.testing.assert_allclose(np.asarray(h), x @ w1, rtol=1e-4, atol=1e-4)


def test_products_whose_layouts_would_name_an_axis_twice():
    mesh = mesh_1d()
    a = RNG.standard_normal((N * 2, N * 2)).astype(np.float32)
    b = RNG.standard_normal((N * 2, N)).astype(np.float32)
    for sa, sb in [(P("i", None), P("i", None)), (P(None, "i"), P("i", None)),
                   (P("i"), P(None, "i")), (P(None, "i"), P(None, "i"))]:
        out = put(a, mesh, sa) @ put(b, mesh, sb)
        np.testing.assert_allclose(np.asarray(out), a @ b, rtol=1e-4, atol=1e-4)


def test_with_sharding_constraint():
    mesh = mesh_2d()
    rows, cols = mesh.axis_sizes
    x = RNG.standard_normal((rows * cols, rows * cols)).astype(np.float32)

    @jax.jit
    def f(v):
        y = jnp.sin(v) @ v
        return jax.lax.with_sharding_constraint(y, NamedSharding(mesh, P("x", "y")))
    out = f(put(x, mesh, P()))
    assert out.sharding == NamedSharding(mesh, P("x", "y"))
    np.testing.assert_allclose(np.asarray(out), np.sin(x) @ x, rtol=1e-4, atol=1e-4)
    with jax.set_mesh(mesh):
        eager = jax.lax.with_sharding_constraint(jnp.asarray(x), P(None, "x"))
    assert eager.sharding.spec == P(None, "x")
    g = jax.grad(lambda v: jnp.sum(f(v) ** 2))(x)
    gr = jax.grad(lambda v: jnp.sum((jnp.sin(v) @ v) ** 2))(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(gr), rtol=1e-3, atol=1e-3)


def test_operations_outside_the_rules_run_replicated():
    mesh = mesh_1d()
    x = RNG.standard_normal((N * 2, 3)).astype(np.float32)
    a = put(x, mesh, P("i"))
    f = jax.jit(lambda v: (jnp.sort(v, axis=0), jnp.cumsum(v, 0), v[::2], jnp.argmax(v, 0),
                           lax.fori_loop(0, 3, lambda i, c: c * 2, v)))
    for got, want in zip(f(a), (np.sort(x, 0), np.cumsum(x, 0), x[::2], np.argmax(x, 0),
                                x * 8)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_incompatible_devices():
    mesh = mesh_1d()
    if N < 2:
        pytest.skip("needs 2 devices")
    a = put(np.ones((N, 2), np.float32), mesh, P("i"))
    b = jax.device_put(np.ones((N, 2), np.float32), DEVICES[1])
    with pytest.raises(ValueError, match="incompatible devices"):
        a + b


def test_types_name_the_explicit_axes_an_array_is_split_over():
    explicit = mesh_2d().update_axis_types({"x": jax.sharding.AxisType.Explicit,
                                            "y": jax.sharding.AxisType.Explicit})
    rows, cols = explicit.axis_sizes
    x = np.arange(rows * cols * 4, dtype=np.float32).reshape(rows * 2, cols * 2)
    a = put(x, explicit, P("x", "y"))
    assert str(jax.typeof(a)) == f"float32[{rows * 2}@x,{cols * 2}@y]"
    assert str(jax.typeof(jnp.sin(a).T)) == f"float32[{cols * 2}@y,{rows * 2}@x]"
    assert str(jax.typeof(put(x, explicit, P(("x", "y"))))) == \
        f"float32[{rows * 2}@(x,y),{cols * 2}]"
    # Auto axes are no part of the type; the layout is no part of the type's identity
    auto = put(x, mesh_2d(), P("x", "y"))
    assert str(jax.typeof(auto)) == f"float32[{rows * 2},{cols * 2}]"
    assert jax.typeof(auto) == jax.typeof(a)
    seen = []
    jax.jit(lambda v: seen.append(str(jax.typeof(v))) or v)(a)
    assert seen == [f"float32[{rows * 2}@x,{cols * 2}@y]"]
    # shard_map's results have its out_specs' explicit axes
    f = jax.shard_map(lambda v: v * 2, mesh=explicit, in_specs=P("x", "y"),
                      out_specs=P(None, "y"), check_vma=False)
    text = str(jax.make_jaxpr(f)(a))
    assert text.startswith(f"{{ lambda ; a:f32[{rows * 2}@x,{cols * 2}@y]. let\n"
                           f"    b:f32[2,{cols * 2}@y] = shard_map[")
    # over Explicit axes, in_specs must say what the arguments' types say
    g = jax.shard_map(lambda v: v * 2, mesh=explicit, in_specs=P("x"), out_specs=P("x"))
    with pytest.raises(ValueError, match=r"in_specs passed to shard_map: P\('x', None\) "
                       r"does not match the specs of the input: P\('x', 'y'\)"):
        g(a)


def test_buffer_pointers_of_arrays_on_one_device_only():
    x = jnp.arange(2 * N, dtype=jnp.float32)
    assert isinstance(x.unsafe_buffer_pointer(), int)  # on the host, uncommitted
    assert isinstance(jax.device_put(x, DEVICES[0]).unsafe_buffer_pointer(), int)
    if N > 1:
        with pytest.raises(ValueError, match=f"spans {N}"):
            put(np.arange(2 * N, dtype=np.float32), mesh_1d(), P("i")).unsafe_buffer_pointer()


def test_out_sharding_of_single_operations_lays_out_their_results():
    """JAX's out_sharding keyword (jax.random samplers, initializers, jnp.tensordot,
    lax.conv_general_dilated): the result laid out so, eagerly and under jit; the values
    are those without it."""
    s = NamedSharding(mesh_1d(), P("i"))
    key = jax.random.key(0)
    a, b = RNG.standard_normal((N * 2, 3)), RNG.standard_normal((3, 4))
    lhs = RNG.standard_normal((N, 2, 6)).astype(np.float32)
    rhs = RNG.standard_normal((3, 2, 3)).astype(np.float32)
    cases = [
        (lambda: jax.random.normal(key, (N * 2, 3), out_sharding=s),
         lambda: jax.random.normal(key, (N * 2, 3))),
        (lambda: jax.nn.initializers.lecun_normal()(key, (N, 4), out_sharding=s),
         lambda: jax.nn.initializers.lecun_normal()(key, (N, 4))),
        (lambda: jnp.tensordot(a, b, 1, out_sharding=s), lambda: jnp.tensordot(a, b, 1)),
        (lambda: lax.conv_general_dilated(lhs, rhs, (1,), "SAME", out_sharding=s),
         lambda: lax.conv_general_dilated(lhs, rhs, (1,), "SAME")),
    ]
    for sharded, plain in cases:
        for got in (sharded(), jax.jit(sharded)()):
            assert got.sharding == s
            np.testing.assert_allclose(np.asarray(got), np.asarray(plain()), rtol=1e-5,
                                       atol=1e-5)
