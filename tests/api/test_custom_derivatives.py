"""custom_jvp and custom_vjp: the classic examples and their errors."""
import functools
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


@jax.custom_jvp
def log1pexp(x):
    return lax.log(1.0 + lax.exp(x))


@log1pexp.defjvp
def log1pexp_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return log1pexp(x), x_dot * (1 - 1 / (1 + lax.exp(x)))


@jax.custom_vjp
def clip_gradient(lo, hi, x):
    return x


def clip_gradient_fwd(lo, hi, x):
    return x, (lo, hi)


def clip_gradient_bwd(res, g):
    lo, hi = res
    return (None, None, lax.clamp(lo, g, hi))


clip_gradient.defvjp(clip_gradient_fwd, clip_gradient_bwd)


def test_log1pexp_gradient_is_finite_at_100():
    naive = jax.grad(lambda x: lax.log(1.0 + lax.exp(x)))(100.0)
    assert np.isnan(naive)
    assert float(jax.grad(log1pexp)(100.0)) == 1.0
    assert float(jax.jit(jax.grad(log1pexp))(100.0)) == 1.0
    np.testing.assert_allclose(jax.vmap(jax.grad(log1pexp))(np.array([0.0, 100.0],
                                                                      np.float32)),
                               [0.5, 1.0])


def test_custom_jvp_second_order():
    s = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(jax.grad(jax.grad(log1pexp))(1.0), s * (1 - s), rtol=1e-5)


def test_defjvps():
    @jax.custom_jvp
    def f(x, y):
        return lax.sin(x) * y
    f.defjvps(lambda g, ans, x, y: lax.cos(x) * g * y, lambda g, ans, x, y: lax.sin(x) * g)
    gx, gy = jax.grad(f, argnums=(0, 1))(0.5, 2.0)
    np.testing.assert_allclose([gx, gy], [np.cos(0.5) * 2, np.sin(0.5)], rtol=1e-6)


def test_clip_gradient():
    f = lambda x: clip_gradient(-0.75, 0.75, lax.sin(x) * 3.0)
    expected = 0.75 * 3.0 * np.cos(0.1)  # the clipped cotangent times the chain rule
    np.testing.assert_allclose(jax.grad(f)(0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(0.1), expected, rtol=1e-6)
    np.testing.assert_allclose(jax.grad(lambda x: clip_gradient(-1.0, 1.0, x * 0.1))(0.0),
                               0.1, rtol=1e-6)
    xs = np.array([0.1, 0.2], np.float32)
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(xs), 0.75 * 3.0 * np.cos(xs),
                               rtol=1e-6)


def test_grad_of_vmapped_custom_vjp():
    xs = np.array([0.1, 0.2], np.float32)
    g = jax.grad(lambda x: lax.reduce_sum(jax.vmap(
        lambda y: clip_gradient(-0.75, 0.75, y * 3.0))(x), (0,)))(xs)
    np.testing.assert_allclose(g, [2.25, 2.25])


def test_custom_vjp_bwd_wrong_structure_error():
    @jax.custom_vjp
    def f(x):
        return x
    f.defvjp(lambda x: (x, None), lambda res, g: (g, g))
    with pytest.raises(TypeError, match="Custom VJP bwd rule must produce an output with the "
                                        "same container"):
        jax.grad(f)(1.0)


def test_custom_vjp_under_forward_mode_errors():
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        jax.jvp(lambda x: clip_gradient(-1.0, 1.0, x), (1.0,), (1.0,))


def test_nondiff_argnums():
    from functools import partial

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def scale(k, x):
        return x * k

    scale.defvjp(lambda k, x: (x * k, None), lambda k, res, g: (g * k * 10,))
    np.testing.assert_allclose(jax.grad(lambda x: scale(2.0, x))(1.0), 20.0)


def test_grad_of_vmapped_custom_jvp():
    g = jax.grad(lambda x: lax.reduce_sum(jax.vmap(log1pexp)(x), (0,)))(
        np.array([0.0, 100.0], np.float32))
    np.testing.assert_allclose(g, [0.5, 1.0])


def test_unsorted_nondiff_argnums_keep_argument_positions():
    @functools.partial(jax.custom_vjp, nondiff_argnums=(2, 1))
    def f(x, n, shift):
        return x * n - shift

    def fwd(x, n, shift):
        return f(x, n, shift), None

    def bwd(n, shift, res, g):  # non-differentiable arguments first, in positional order
        return (g * n,)

    f.defvjp(fwd, bwd)
    assert float(f(2.0, 3.0, 5.0)) == 1.0
    assert float(jax.grad(f)(2.0, 3.0, 5.0)) == 3.0  # JAX 0.10 gives the same

    @functools.partial(jax.custom_jvp, nondiff_argnums=(2, 1))
    def h(x, n, shift):
        return x * n - shift

    @h.defjvp
    def h_jvp(n, shift, primals, tangents):
        return h(primals[0], n, shift), tangents[0] * n

    assert jax.jvp(lambda x: h(x, 3.0, 5.0), (2.0,), (1.0,)) == (1.0, 3.0)


def test_jit_of_custom_vjp_differentiated_again_runs_its_rules_once():
    # JAX 0.10.2 counts one trace of each rule for this script (grad twice, then a new
    # value of the same type); the result must still follow the new input
    traces = {"fwd": 0, "bwd": 0}

    @jax.custom_vjp
    def f(x):
        return jnp.sin(x)

    def f_fwd(x):
        traces["fwd"] += 1
        return jnp.sin(x), jnp.cos(x)

    def f_bwd(cos_x, g):
        traces["bwd"] += 1
        return (cos_x * g + 2.0,)

    f.defvjp(f_fwd, f_bwd)
    jitted = jax.jit(f)
    for x in (1.0, 1.0, 2.5):
        np.testing.assert_allclose(float(jax.grad(jitted)(jnp.float32(x))),
                                   np.cos(x) + 2.0, rtol=1e-6)
    assert traces == {"fwd": 1, "bwd": 1}
    # rules closing over a tracer of an enclosing jit are traced for that trace only
    def outer(s):
        @jax.custom_vjp
        def g(y):
            return y * s

        g.defvjp(lambda y: (y * s, None), lambda _, ct: (ct * s,))
        return jax.grad(jax.jit(g))(1.0)
    for s in (2.0, 3.0):
        assert float(jax.jit(outer)(s)) == s
        assert float(outer(s)) == s
