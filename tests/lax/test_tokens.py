"""Tokens (create_token, after_all): eager, under jit on every device, grad, vmap, scan and
cond carries, make_jaxpr; a token lowers to nothing; JAX's errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.schedule import schedule
from tinyjax.lax.tokens import Token
from tests.cuda_support import CUDA_PARAM

DEVICES = ["cpu", "interp", CUDA_PARAM]


def _is_token(t):
    return isinstance(t, Token)


def test_create_token_and_after_all_eagerly():
    t = lax.create_token()
    assert _is_token(t) and _is_token(lax.create_token(np.ones(3)))  # the argument is ignored
    assert _is_token(lax.after_all(t, lax.create_token())) and _is_token(lax.after_all())
    assert jax.tree_util.tree_leaves(t) == [t]  # one leaf, as in JAX
    assert t.block_until_ready() is None


@pytest.mark.parametrize("bad", [1.0, np.zeros(0, bool), jnp.ones(2)])
def test_after_all_takes_tokens_only(bad):
    with pytest.raises(TypeError, match="Arguments to after_all must be tokens"):
        lax.after_all(lax.create_token(), bad)
    with pytest.raises(TypeError, match="Arguments to after_all must be tokens"):
        jax.make_jaxpr(lambda t: lax.after_all(t, bad))(lax.create_token())


def test_make_jaxpr_stages_the_primitives():
    jaxpr = jax.make_jaxpr(lambda t: lax.after_all(t, lax.create_token()))(lax.create_token())
    assert [e.primitive for e in jaxpr.eqns] == [lax.create_token_p, lax.after_all_p]
    assert str(jaxpr.in_avals[0]) == "bool[0]" and jaxpr.out_avals[0].shape == (0,)


@pytest.mark.parametrize("device", DEVICES)
def test_jit_carries_tokens_and_compiles_them_to_nothing(device):
    dev = jax.devices(device)[0]
    x = jax.device_put(np.float32(2.0), dev)
    t, y = jax.jit(lambda t, x: (lax.after_all(t, lax.create_token()), x * 3))(
        lax.create_token(), x)
    assert _is_token(t) and float(y) == 6.0
    assert _is_token(jax.jit(lambda: lax.create_token(), device=dev)())
    jaxpr = jax.make_jaxpr(lambda t: lax.after_all(t, lax.create_token()))(lax.create_token())
    assert not schedule(*lower_jaxpr(inline_calls(jaxpr.jaxpr))).kernels


def test_grad_and_vmap_pass_tokens_through():
    def f(x, t):
        t = lax.after_all(t)
        return x * x, t
    t = lax.create_token()
    assert float(jax.grad(lambda x, t: f(x, t)[0])(3.0, t)) == 6.0
    ys, t2 = jax.vmap(f, in_axes=(0, None))(jnp.arange(3.0), t)
    np.testing.assert_array_equal(ys, [0.0, 1.0, 4.0])
    assert _is_token(t2)
    made = jax.vmap(lambda x: (lax.create_token(), x + 1))(jnp.ones(2))
    assert _is_token(made[0])
    with pytest.raises(ValueError, match="rank"):
        jax.vmap(f)(jnp.arange(3.0), t)  # a token has no axis to map over


@pytest.mark.parametrize("jit", [False, True])
def test_tokens_as_scan_and_cond_carries(jit):
    def run(t, xs):
        (t, total), ys = lax.scan(lambda c, x: ((lax.after_all(c[0]), c[1] + x), 2 * x),
                                  (t, 0.0), xs)
        t = lax.cond(total > 1, lambda t: lax.after_all(t), lambda t: t, t)
        return t, total, ys
    run = jax.jit(run) if jit else run
    t, total, ys = run(lax.create_token(), jnp.arange(4.0))
    assert _is_token(t) and float(total) == 6.0
    np.testing.assert_array_equal(ys, 2 * np.arange(4.0))
    loop = jax.make_jaxpr(run)(lax.create_token(), jnp.arange(4.0))
    assert "after_all" in str(loop)
