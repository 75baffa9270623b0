"""checkpoint / remat: same derivatives, recomputation instead of residuals."""
import numpy as np

import tinyjax as jax
from tinyjax import lax


def f(x):
    return lax.sin(lax.sin(x)) * x


def _count(closed, name):
    return sum(e.primitive.name == name for e in closed.eqns)


def test_checkpoint_same_values_and_derivatives():
    g = jax.checkpoint(f)
    for fn in (jax.grad, lambda h: jax.jit(jax.grad(h)), lambda h: jax.grad(jax.grad(h))):
        np.testing.assert_allclose(fn(g)(0.7), fn(f)(0.7), rtol=1e-5)
    xs = np.array([0.1, 0.2, 0.3], np.float32)
    np.testing.assert_allclose(jax.vmap(jax.grad(g))(xs), jax.vmap(jax.grad(f))(xs),
                               rtol=1e-6)


def test_checkpoint_is_one_equation_and_grad_recomputes():
    g = jax.checkpoint(f)
    closed = jax.make_jaxpr(g)(1.0)
    assert [e.primitive.name for e in closed.eqns] == ["checkpoint"]
    # Without remat, grad reads sin(x) saved by the forward pass; with remat it
    # recomputes it in the backward pass: more sin equations.
    assert _count(jax.make_jaxpr(jax.grad(g))(1.0), "sin") > \
        _count(jax.make_jaxpr(jax.grad(f))(1.0), "sin")


def test_policy_everything_saveable_recomputes_nothing():
    g = jax.checkpoint(f, policy=jax.checkpoint_policies.everything_saveable)
    assert _count(jax.make_jaxpr(jax.grad(g))(1.0), "sin") == \
        _count(jax.make_jaxpr(jax.grad(f))(1.0), "sin")
    np.testing.assert_allclose(jax.grad(g)(0.3), jax.grad(f)(0.3), rtol=1e-6)


def test_static_argnums():
    g = jax.checkpoint(lambda x, n: x ** n, static_argnums=(1,))
    np.testing.assert_allclose(jax.grad(g)(2.0, 3), 12.0)
