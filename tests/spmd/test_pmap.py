"""pmap against vmap (the same function with the same axis name), its arguments, and the
layout of its results."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax

from tests.spmd.mesh_support import DEVICES, N

RNG = np.random.default_rng(3)
X = RNG.standard_normal((N, 5)).astype(np.float32)


@pytest.mark.parametrize("f", [
    lambda v: v / lax.psum(v, "i"),
    lambda v: v - lax.pmean(v, "i") + lax.pmax(v, "i") * lax.pmin(v, "i"),
    lambda v: lax.all_gather(v, "i") * 2,
    lambda v: v * lax.axis_index("i"),
    lambda v: lax.ppermute(v, "i", [(k, (k + 1) % N) for k in range(N)]),
    lambda v: jnp.tanh(v @ v.T) + jnp.sum(v),
], ids=["psum", "pmean_pmax_pmin", "all_gather", "axis_index", "ppermute", "local"])
def test_pmap_matches_vmap(f):
    got = jax.pmap(f, axis_name="i")(X)
    want = jax.vmap(f, axis_name="i")(X)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-5)
    assert got.sharding.device_set == set(DEVICES[:N])
    blocks = [slice(k, k + 1) for k in range(N)] if N > 1 else [slice(None)]  # (JAX's)
    assert [s.index[0] for s in got.addressable_shards] == blocks


def test_in_axes_out_axes_static_arguments():
    w = RNG.standard_normal((5, 2)).astype(np.float32)

    def f(x, w, scale, offset):
        return (x @ w) * scale + offset, lax.psum(x, "j")

    g = jax.pmap(f, axis_name="j", in_axes=(1, None, None, 0), out_axes=(1, None),
                 static_broadcasted_argnums=(2,))
    offsets = np.arange(N, dtype=np.float32)
    out, total = g(X.T, w, 3.0, offsets)
    want, want_total = jax.vmap(f, in_axes=(1, None, None, 0), out_axes=(1, None),
                                axis_name="j")(X.T, w, 3.0, offsets)
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(total), X.sum(0), rtol=1e-5)
    # a new static value compiles anew
    out2, _ = g(X.T, w, 5.0, offsets)
    np.testing.assert_allclose(np.asarray(out2), (X @ w).T * 5 + offsets, rtol=1e-5)


def test_keyword_arguments_are_mapped_over_their_leading_axis():
    w = RNG.standard_normal((N, 5)).astype(np.float32)
    f = jax.pmap(lambda x, *, w, scale=2.0: (x * w * scale, lax.psum(w, "i")), axis_name="i",
                 in_axes=(1,))
    out, total = f(X.T, w=w)
    np.testing.assert_allclose(np.asarray(out), X * w * 2.0, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(total), np.broadcast_to(w.sum(0), (N, 5)), rtol=1e-5)
    with pytest.raises(ValueError, match="inconsistent sizes"):
        f(X.T, w=np.ones((N + 1, 5), np.float32))


def test_grad_of_pmap_and_pmap_of_grad():
    loss = lambda v: jnp.sum(jnp.sin(v) * lax.psum(v, "i"))
    got = jax.pmap(jax.grad(loss), axis_name="i")(X)
    want = jax.vmap(jax.grad(loss), axis_name="i")(X)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    outer = jax.grad(lambda x: jnp.sum(jax.pmap(lambda v: jnp.sin(v) * 2, "i")(x)))(X)
    np.testing.assert_allclose(np.asarray(outer), 2 * np.cos(X), rtol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="inconsistent sizes"):
        jax.pmap(lambda a, b: a + b)(X, X[:, :N - 1 if N > 1 else 2].T)
    with pytest.raises(ValueError, match="requires .* logical devices"):
        jax.pmap(lambda v: v)(np.ones((len(DEVICES) + 1, 2), np.float32))
    with pytest.raises(ValueError, match="rank should be at least 1, but is only 0"):
        jax.pmap(lambda a, b: a * b)(X, 3.0)           # a Python scalar mapped over axis 0
    with pytest.raises(ValueError, match="along axis 2, .* at least 3, but is only 2"):
        jax.pmap(lambda a: a, in_axes=2)(X)


def _rows(width=3, seed=0):
    return np.random.RandomState(seed).randn(N, width).astype(np.float32)


def test_pmap_against_python_loops_over_the_mapped_axis():
    x = _rows()
    out = jax.pmap(lambda v: v / lax.psum(v, "i") + lax.axis_index("i"), axis_name="i")(x)
    np.testing.assert_allclose(np.asarray(out), x / x.sum(0) + np.arange(N)[:, None],
                               rtol=1e-5)
    y = _rows(seed=1)[0]
    f = jax.pmap(lambda a, b, k: (a * b) ** k, in_axes=(0, None, None),
                 static_broadcasted_argnums=2, out_axes=1)
    np.testing.assert_allclose(np.asarray(f(x, y, 2)),
                               np.stack([(r * y) ** 2 for r in x], axis=1), rtol=1e-5)
    g = jax.pmap(lambda a, k: a * k, static_broadcasted_argnums=(1,))
    np.testing.assert_allclose(np.asarray(g(x, 3.0)), x * 3.0, rtol=1e-6)


def test_pmap_of_grad_of_a_pytree_against_a_loop():
    params = {"w": _rows(), "b": _rows(seed=2)[:, 0]}
    loss = lambda p: jnp.sum(jnp.tanh(p["w"]) * p["b"])
    grads = jax.pmap(jax.grad(loss))(params)
    for i in range(N):  # (compiled per device against eager: float32 rounding)
        row = jax.grad(loss)({"w": params["w"][i], "b": params["b"][i]})
        np.testing.assert_allclose(np.asarray(grads["w"][i]), row["w"], rtol=1e-5)
        np.testing.assert_allclose(np.asarray(grads["b"][i]), row["b"], rtol=1e-5)


def test_pmap_errors_as_jax():
    n = len(DEVICES)
    with pytest.raises(ValueError, match=f"requires {n + 1} logical devices, but only {n}"):
        jax.pmap(lambda v: v)(np.ones((n + 1, 2), np.float32))
    with pytest.raises(ValueError, match="pmap in_axes specification must be a tree prefix"):
        jax.pmap(lambda a, b: a, in_axes=(0,))(np.ones((N, 2)), np.ones((N, 2)))
