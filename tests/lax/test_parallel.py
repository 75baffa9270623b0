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
