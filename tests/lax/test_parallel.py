"""Collectives under vmap against numpy references."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax

X = np.arange(12.0, dtype=np.float32).reshape(4, 3)


def test_psum_pmean_pmax_pmin():
    vm = lambda f: jax.vmap(f, axis_name="i")
    np.testing.assert_allclose(vm(lambda x: lax.psum(x, "i"))(X), np.broadcast_to(
        X.sum(0), X.shape))
    np.testing.assert_allclose(vm(lambda x: x / lax.psum(x, "i"))(X), X / X.sum(0))
    np.testing.assert_allclose(vm(lambda x: lax.pmean(x, "i"))(X),
                               np.broadcast_to(X.mean(0), X.shape))
    np.testing.assert_allclose(vm(lambda x: lax.pmax(x, "i"))(X),
                               np.broadcast_to(X.max(0), X.shape))
    np.testing.assert_allclose(vm(lambda x: lax.pmin(x, "i"))(X),
                               np.broadcast_to(X.min(0), X.shape))


def test_psum_of_unbatched_value_scales_by_axis_size():
    out = jax.vmap(lambda x: lax.psum(2.0, "i") + x * 0, axis_name="i")(X[:, 0])
    np.testing.assert_allclose(out, np.full(4, 8.0))


def test_axis_index_and_all_gather():
    idx = jax.vmap(lambda x: lax.axis_index("i"), axis_name="i")(X)
    np.testing.assert_array_equal(idx, np.arange(4))
    gathered = jax.vmap(lambda x: lax.all_gather(x, "i"), axis_name="i")(X)
    np.testing.assert_allclose(gathered, np.broadcast_to(X, (4, 4, 3)))
    tiled = jax.vmap(lambda x: lax.all_gather(x, "i", tiled=True), axis_name="i")(X)
    np.testing.assert_allclose(tiled[0], X.reshape(-1))


def test_nested_named_axes():
    y = np.arange(24.0, dtype=np.float32).reshape(2, 4, 3)
    out = jax.vmap(jax.vmap(lambda x: lax.psum(x, "outer"), axis_name="inner"),
                   axis_name="outer")(y)
    np.testing.assert_allclose(out, np.broadcast_to(y.sum(0), y.shape))
    out = jax.vmap(jax.vmap(lambda x: lax.psum(x, ("outer", "inner")), axis_name="inner"),
                   axis_name="outer")(y)
    np.testing.assert_allclose(out, np.broadcast_to(y.sum((0, 1)), y.shape))


def test_grad_through_psum():
    g = jax.grad(lambda x: lax.reduce_sum(jax.vmap(
        lambda v: v * lax.psum(v, "i"), axis_name="i")(x), (0,)))(X[:, 0])
    # d/dx_k sum_j x_j * S = S + sum_j x_j = 2 S
    np.testing.assert_allclose(g, np.full(4, 2 * X[:, 0].sum()))


def test_unbound_axis_name():
    with pytest.raises(NameError, match="unbound axis name: i"):
        lax.psum(np.ones(3, np.float32), "i")


def test_collectives_inside_control_flow_and_checkpoint_under_vmap():
    def body(c, x):
        return c + lax.psum(x, "i"), c
    out = jax.vmap(lambda xs: lax.scan(body, 0.0, xs)[0], in_axes=1, axis_name="i")(X)
    np.testing.assert_allclose(out, np.full(3, X.sum()))
    out = jax.vmap(lambda x: lax.cond(x > 100.0, lambda v: v, lambda v: lax.psum(v, "i"), x),
                   axis_name="i")(X[:, 0])
    np.testing.assert_allclose(out, np.full(4, X[:, 0].sum()))
    out = jax.vmap(jax.checkpoint(lambda x: lax.pmax(x, "i")), axis_name="i")(X[:, 1])
    np.testing.assert_allclose(out, np.full(4, X[:, 1].max()))


def _all_to_all_reference(xs, split, concat, tiled):
    """Position i receives chunk i of ``split`` from every position j, in order of j."""
    n = len(xs)
    chunks = [np.split(x, n, axis=split) if tiled else
              [np.take(x, i, axis=split) for i in range(n)] for x in xs]
    if tiled:
        return np.stack([np.concatenate([chunks[j][i] for j in range(n)], axis=concat)
                         for i in range(n)])
    return np.stack([np.stack([chunks[j][i] for j in range(n)], axis=concat)
                     for i in range(n)])


@pytest.mark.parametrize("split,concat", [(0, 0), (0, 2), (1, 0), (2, 1), (-1, -2)])
@pytest.mark.parametrize("jit", [False, True])
def test_all_to_all_untiled(split, concat, jit):
    n = 3
    shape = [4, 2, 5]
    shape[split] = n
    xs = np.random.RandomState(0).randn(n, *shape).astype(np.float32)
    f = jax.vmap(lambda x: lax.all_to_all(x, "i", split, concat), axis_name="i")
    out = (jax.jit(f) if jit else f)(xs)
    np.testing.assert_array_equal(out, _all_to_all_reference(xs, split % 3, concat % 3,
                                                              False))


@pytest.mark.parametrize("split,concat", [(0, 0), (0, 1), (1, 0)])
def test_all_to_all_tiled_and_pswapaxes(split, concat):
    n = 2
    xs = np.arange(n * 4 * 6, dtype=np.float32).reshape(n, 4, 6)
    out = jax.vmap(lambda x: lax.all_to_all(x, "i", split, concat, tiled=True),
                   axis_name="i")(xs)
    np.testing.assert_array_equal(out, _all_to_all_reference(xs, split, concat, True))
    swapped = jax.vmap(lambda x: lax.pswapaxes(x, "i", 1), axis_name="i")(xs)
    np.testing.assert_array_equal(swapped, _all_to_all_reference(xs, 1, 1, True))


def test_all_to_all_gradient_is_the_inverse_exchange():
    xs = np.random.RandomState(1).randn(3, 3, 2).astype(np.float32)
    w = np.random.RandomState(2).randn(3, 2, 3).astype(np.float32)
    f = lambda x: (jax.vmap(lambda v: lax.all_to_all(v, "i", 0, 1), axis_name="i")(x)
                   * w).sum()
    # the exchange is a permutation of the elements: its gradient is w sent back
    expected = _all_to_all_reference(w, 1, 0, False)
    np.testing.assert_allclose(jax.grad(f)(xs), expected, rtol=1e-6)


def test_all_to_all_checks_the_split_axis():
    with pytest.raises(ValueError, match=r"all_to_all requires the size of the mapped axis "
                                         r"axis_name to equal x.shape\[split_axis\], but "
                                         r"they are 3 and 2"):
        jax.vmap(lambda x: lax.all_to_all(x, "i", 0, 0), axis_name="i")(np.ones((3, 2)))
    with pytest.raises(ValueError, match="has to be divisible by the size of the named axis"):
        jax.vmap(lambda x: lax.all_to_all(x, "i", 0, 0, tiled=True),
                 axis_name="i")(np.ones((3, 4)))


def test_with_sharding_constraint_on_one_device_and_of_a_pytree():
    from tinyjax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding
    s = SingleDeviceSharding(jax.devices()[0])
    x = np.arange(4.0, dtype=np.float32)
    np.testing.assert_array_equal(jax.jit(lambda v: lax.with_sharding_constraint(v * 2, s))(x),
                                  x * 2)
    one = NamedSharding(Mesh(np.array(jax.devices()[:1], dtype=object), ("x",)),
                        PartitionSpec())
    out = lax.with_sharding_constraint({"a": x, "b": (x, x)}, one)
    assert all(leaf.sharding == one for leaf in jax.tree_util.tree_leaves(out))
    np.testing.assert_array_equal(out["b"][1], x)
    with pytest.raises(ValueError, match="requires a mesh"):
        lax.with_sharding_constraint(x, PartitionSpec())


class _Boxed:
    """A pytree node that forwards attribute lookups to what it holds (as Flax's
    Variable does): a node of the shardings' tree, not a sharding."""

    def __init__(self, value):
        self.value = value

    def __getattr__(self, name):
        return getattr(self.__dict__["value"], name)


jax.tree_util.register_pytree_node(_Boxed, lambda b: ((b.value,), None),
                                   lambda _, children: _Boxed(children[0]))


def test_with_sharding_constraint_of_shardings_in_forwarding_nodes():
    from tinyjax.sharding import Mesh, NamedSharding, PartitionSpec
    mesh = Mesh(np.array(jax.devices()[:1], dtype=object), ("x",))
    x = np.arange(4.0, dtype=np.float32)
    with jax.set_mesh(mesh):
        out = lax.with_sharding_constraint({"w": _Boxed(x)}, {"w": _Boxed(PartitionSpec("x"))})
    assert isinstance(out["w"], _Boxed)
    assert out["w"].value.sharding == NamedSharding(mesh, PartitionSpec("x"))
    np.testing.assert_array_equal(out["w"].value, x)


def test_make_jaxpr_axis_env_stages_collectives_as_equations():
    f = lambda x: lax.psum(x, "i") * lax.all_gather(x, "i").sum() + lax.axis_index("i")
    closed = jax.make_jaxpr(f, axis_env=[("i", 4)])(np.float32(1.0))
    prims = [e.primitive.name for e in closed.jaxpr.eqns]
    assert {"psum", "all_gather", "axis_index"} <= set(prims)
    gather = next(e for e in closed.jaxpr.eqns if e.primitive.name == "all_gather")
    assert gather.outvars[0].aval.shape == (4,)
    # the environment ends with the trace
    with pytest.raises(NameError, match="unbound axis name: i"):
        jax.make_jaxpr(f)(np.float32(1.0))
