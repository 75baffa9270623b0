"""Buffer donation with JAX's semantics: a donated Array that an output of its shape and
dtype can take is deleted by the call (using it again raises JAX's errors), and on the CPU
that output is written into the donated buffer when no one else holds it and the kernels
allow; the other donations are kept, with JAX's warning when the function compiles."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tests.cuda_support import CUDA_PARAM

DEVICES = ["cpu", "interp", CUDA_PARAM]


def address(x) -> int:
    return np.asarray(x).ctypes.data


@pytest.mark.parametrize("device", DEVICES)
def test_a_donated_input_is_deleted_and_raises_on_reuse(device):
    f = jax.jit(lambda p, g: p - 0.5 * g, donate_argnums=0, device=device)
    p, g = jax.device_put(jnp.arange(4.0), device), jax.device_put(jnp.ones(4), device)
    out = f(p, g)
    np.testing.assert_allclose(np.asarray(out), np.arange(4.0) - 0.5)
    assert p.is_deleted() and not g.is_deleted()
    assert p.shape == (4,) and p.dtype == np.float32  # still known
    message = r"Array has been deleted with shape=float32\[4\]\."
    with pytest.raises(RuntimeError, match=message):
        p + 1
    with pytest.raises(RuntimeError, match=message):
        np.asarray(p)
    with pytest.raises(ValueError, match="Buffer has been deleted or donated"):
        f(p, g)  # the compiled program exists: its argument check, as JAX 0.10
    with pytest.raises(RuntimeError, match=message):
        print(p)


def test_the_output_reuses_the_donated_buffer():
    update = jax.jit(lambda p, g: p - 0.1 * g, donate_argnums=0)
    g = jnp.ones(1000)
    p = update(jnp.zeros(1000), g)
    expected = np.float32(0) - np.float32(0.1)
    for _ in range(5):  # a training loop: every step writes into the previous parameters
        before = address(p)
        p = update(p, g)
        assert address(p) == before
        expected = np.float32(expected - np.float32(0.1))
    np.testing.assert_allclose(np.asarray(p), np.full(1000, expected), rtol=1e-6)


def test_a_buffer_someone_else_holds_is_not_written():
    f = jax.jit(lambda x: x * 2, donate_argnums=0)
    x = f(jnp.arange(6.0))       # an output: its buffer is the array's own
    view = x.reshape(2, 3)       # an eager view of the same memory
    kept = np.asarray(view).copy()
    y = f(x)
    assert x.is_deleted()
    np.testing.assert_array_equal(np.asarray(view), kept)  # untouched
    np.testing.assert_array_equal(np.asarray(y), kept.reshape(-1) * 2)
    host = np.arange(3, dtype=np.float32)
    z = f(host)                  # a numpy argument: nothing to delete, never written
    np.testing.assert_array_equal(host, np.arange(3))
    np.testing.assert_array_equal(np.asarray(z), np.arange(3) * 2)


@pytest.mark.parametrize("fn", [
    lambda x: x[::-1] * 2,                       # reads where another point is written
    lambda x: x.T @ x + x,                       # a product reads every element
    lambda x: jnp.cumsum(x, axis=0),             # each output reads earlier inputs
    lambda x: x - jnp.mean(x, axis=0),           # a reduction, then the elementwise part
])
def test_in_place_only_where_the_kernels_allow(fn):
    x = np.random.default_rng(0).standard_normal((5, 5)).astype(np.float32)
    expected = np.asarray(jax.jit(fn)(x))
    f = jax.jit(fn, donate_argnums=0)
    for _ in range(3):
        a = jnp.asarray(x) + 0  # a fresh array only this test holds
        np.testing.assert_allclose(np.asarray(f(a)), expected, rtol=1e-5, atol=1e-6)
        assert a.is_deleted()


def test_donate_argnames_by_keyword_and_by_position():
    f = jax.jit(lambda x, state: (x + state, state * 2), donate_argnames="state")
    s = jnp.ones(3)
    f(jnp.ones(3), state=s)
    assert s.is_deleted()
    s, x = jnp.ones(3), jnp.ones(3)
    f(x, s)                      # the name found the position through the signature
    assert s.is_deleted() and not x.is_deleted()
    assert f.donate_argnums == (1,)
    g = jax.jit(lambda a, b: a + b, donate_argnums=1)
    assert g.donate_argnames == ("b",)


def test_every_leaf_of_a_donated_pytree_is_deleted():
    f = jax.jit(lambda params, lr: jax.tree_util.tree_map(lambda p: p * lr, params),
                donate_argnums=0)
    params = {"w": jnp.ones((2, 2)), "b": jnp.zeros(2)}
    out = f(params, 0.5)
    assert params["w"].is_deleted() and params["b"].is_deleted()
    np.testing.assert_array_equal(np.asarray(out["w"]), np.full((2, 2), 0.5))


def test_unusable_donations_warn_as_jax_does():
    f = jax.jit(lambda a, b: a.sum() + b.sum(), donate_argnums=(0, 1))
    a = jnp.ones(3)
    with pytest.warns(UserWarning, match=r"Some donated buffers were not usable: "
                                         r"float32\[3\], float32\[2,2\]\.\nSee an explanation"):
        f(a, jnp.ones((2, 2)))
    assert not a.is_deleted()  # no output could take it: kept, as JAX
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned when compiled, not at every call
        f(a, jnp.ones((2, 2)))


def test_donation_under_transforms_and_with_control_flow():
    f = jax.jit(lambda x: jnp.sin(x) * x, donate_argnums=0)
    x = jnp.linspace(0.0, 1.0, 5)
    g = jax.grad(lambda x: f(x).sum())(x)  # traced inline: nothing is donated
    assert not x.is_deleted()
    np.testing.assert_allclose(np.asarray(g), np.cos(np.asarray(x)) * np.asarray(x)
                               + np.sin(np.asarray(x)), rtol=1e-6)
    loop = jax.jit(lambda x: lax.fori_loop(0, 3, lambda i, c: c * 2, x), donate_argnums=0)
    y = jnp.ones(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the output has the input's shape: no warning
        np.testing.assert_array_equal(np.asarray(loop(y)), np.full(4, 8.0))
    assert y.is_deleted()
