"""The edges where tinyjax differed from JAX (issue 21), one test each."""
from functools import partial

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.array import ArrayImpl
from tinyjax.test_util import check_grads

rng = np.random.default_rng(21)


def rnn_loss(W, h0, xs):
    """An RNN whose scan body closes over the differentiated weights."""
    def step(h, x):
        h = jnp.tanh(h @ W + x)
        return h, h
    return lax.scan(step, h0, xs)[0].sum()


def test_jit_grad_of_rnn_scan_closing_over_the_weights():
    W = rng.standard_normal((3, 3)).astype(np.float32) * 0.5
    h0, xs = np.ones(3, np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    got = jax.jit(jax.grad(rnn_loss))(W, h0, xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(jax.grad(rnn_loss)(W, h0, xs)),
                               rtol=1e-5, atol=1e-6)
    check_grads(lambda w: rnn_loss(w, h0, xs), (W,), order=1, modes=["rev"])


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def fixed_point(f, a, x0):
    def cond(carry):
        prev, x = carry
        return jnp.abs(prev - x) > 1e-6
    return lax.while_loop(cond, lambda c: (c[1], f(a, c[1])), (x0, f(a, x0)))[1]


def _fixed_point_fwd(f, a, x0):
    x = fixed_point(f, a, x0)
    return x, (a, x)


def _fixed_point_bwd(f, res, x_bar):
    a, x = res
    _, vjp_a = jax.vjp(lambda a: f(a, x), a)
    # u = x_bar + u @ df/dx, solved by iteration (the values it needs passed as the
    # differentiable argument, not closed over), then pulled back through df/da
    u = fixed_point(partial(_adjoint_step, f), (a, x, x_bar), x_bar)
    return vjp_a(u)[0], jnp.zeros_like(x)


def _adjoint_step(f, packed, u):
    a, x, x_bar = packed
    return x_bar + jax.vjp(lambda x: f(a, x), x)[1](u)[0]


fixed_point.defvjp(_fixed_point_fwd, _fixed_point_bwd)


def newton_sqrt(a):
    return fixed_point(lambda a, x: 0.5 * (x + a / x), a, a)


def test_grad_of_grad_of_custom_vjp_around_a_while_loop():
    a = 2.0
    assert abs(float(newton_sqrt(a)) - np.sqrt(a)) < 1e-6
    assert abs(float(jax.grad(newton_sqrt)(a)) - 0.5 / np.sqrt(a)) < 1e-5
    second = float(jax.grad(jax.grad(newton_sqrt))(a))
    assert abs(second - (-0.25 * a ** -1.5)) < 1e-4
    assert abs(float(jax.jit(jax.grad(jax.grad(newton_sqrt)))(a)) - second) < 1e-6


def test_vjp_function_is_a_pytree_of_residuals():
    x = np.array([0.5, 1.5], np.float32)
    out, pullback = jax.vjp(lambda v: jnp.sin(v) * v, x)
    assert isinstance(pullback, jax.tree_util.Partial)
    leaves = jax.tree_util.tree_leaves(pullback)
    assert leaves and all(isinstance(leaf, jax.Array) for leaf in leaves)
    ct = np.ones(2, np.float32)
    want = np.cos(x) * x + np.sin(x)
    np.testing.assert_allclose(np.asarray(pullback(ct)[0]), want, rtol=1e-6)
    # it crosses jit as an argument, its residuals as arrays
    through = jax.jit(lambda pb, c: pb(c))(pullback, ct)
    np.testing.assert_allclose(np.asarray(through[0]), want, rtol=1e-6)
    assert "mul" in str(jax.make_jaxpr(pullback)(ct))


def test_custom_functions_return_their_own_result_eagerly():
    @jax.custom_jvp
    def square(x):
        return x ** 2

    square.defjvp(lambda p, t: (square(p[0]), 2 * p[0] * t[0]))

    @jax.custom_vjp
    def ident(x):
        return {"a": x, "b": x * 2}

    ident.defvjp(lambda x: (ident(x), None), lambda r, g: (g["a"] + 2 * g["b"],))
    assert square(3.0) == 9.0 and type(square(3.0)) is float
    assert ident(1.5) == {"a": 1.5, "b": 3.0}
    assert float(jax.grad(square)(3.0)) == 6.0
    assert float(jax.grad(lambda x: ident(x)["b"])(1.0)) == 2.0
    g = jax.grad(square)(3.0)
    assert type(g) is ArrayImpl and g.weak_type  # a weak input gives a weak gradient
    # keyword arguments go through the signature
    assert float(jax.grad(lambda x: square(x=x))(2.0)) == 4.0


def test_custom_rule_inside_a_loop_body_is_used():
    @jax.custom_jvp
    def softplus(x):
        return jnp.log1p(jnp.exp(x))  # its own derivative is nan at large x

    softplus.defjvp(lambda p, t: (softplus(p[0]), t[0] * jax.nn.sigmoid(p[0])))

    def f(x):
        return lax.scan(lambda c, _: (softplus(c), None), x, None, length=2)[0]

    for g in (jax.grad(f), jax.jit(jax.grad(f))):
        assert float(g(100.0)) == 1.0
    assert "custom_jvp_call" in str(jax.make_jaxpr(f)(1.0))


def test_differentiating_a_closed_over_value_of_a_custom_function_raises():
    def f(x):
        @jax.custom_jvp
        def g(y):
            return y * x

        g.defjvp(lambda p, t: (g(p[0]), t[0] * x))
        return lax.scan(lambda c, _: (g(c), None), 1.0, None, length=2)[0]

    with pytest.raises(TypeError, match="closed-over value"):
        jax.grad(f)(2.0)


def test_conversion_errors_are_jaxs():
    with pytest.raises(jax.errors.ConcretizationTypeError, match="`int` function"):
        jax.jit(lambda x: int(x))(1.0)
    with pytest.raises(jax.errors.TracerIntegerConversionError):
        jax.jit(lambda i: [1, 2][i])(1)
    with pytest.raises(jax.errors.TracerArrayConversionError):
        jax.jit(lambda x: np.asarray(x))(jnp.ones(2))
    with pytest.raises(TypeError, match="Shapes must be 1D sequences of concrete values"):
        jax.jit(lambda n: jnp.zeros(n))(3)
    with pytest.raises(TypeError, match="Shapes must be 1D sequences of concrete values"):
        jax.jit(lambda x: jnp.reshape(x, (x.shape[0], x[0])))(jnp.ones(2, np.int32))
    assert not issubclass(jax.errors.TracerIntegerConversionError,
                          jax.errors.ConcretizationTypeError)
    assert issubclass(jax.errors.UnexpectedTracerError, TypeError)


def test_pytree_and_array_value_errors():
    class Node:
        def __init__(self, a):
            self.a = jnp.asarray(a)

    jax.tree_util.register_pytree_node(Node, lambda n: ((n.a,), None),
                                       lambda _, ch: Node(*ch))
    with pytest.raises(ValueError, match="Duplicate"):
        jax.tree_util.register_pytree_node(Node, lambda n: ((n.a,), None),
                                           lambda _, ch: Node(*ch))
    # the input check rebuilds the node with None leaves, as JAX's does
    with pytest.raises(ValueError, match="None is not a valid value for jnp.array"):
        jax.jacobian(lambda n: n.a)(Node(jnp.arange(3.0)))
    with pytest.raises(ValueError, match="Too few leaves for PyTreeDef; expected 2, got 1"):
        jax.tree_util.tree_unflatten(jax.tree_util.tree_structure([1, 2]), [1])


@pytest.mark.parametrize("out_axes", [2, -3])
def test_vmap_out_axes_out_of_range_raises(out_axes):
    with pytest.raises(ValueError, match=f"axis {out_axes} is out of bounds for array of "
                                         "dimension 1"):
        jax.vmap(lambda x: x, out_axes=out_axes)(jnp.ones(3))
    out = jax.vmap(lambda x: x * 2, out_axes=-1)(jnp.ones((3, 2)))
    assert out.shape == (2, 3)
