"""checkpoint / remat: same derivatives, recomputation instead of residuals."""
import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
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


def test_nested_checkpoints_differentiate():
    f = jax.checkpoint(lambda x: jnp.sin(jax.checkpoint(jnp.sin)(x)))
    want = np.cos(np.sin(3.0)) * np.cos(3.0)
    assert abs(float(jax.grad(f)(3.0)) - want) < 1e-6
    assert abs(float(jax.jit(jax.grad(f))(3.0)) - want) < 1e-6


def test_checkpoint_names_and_policies():
    from tinyjax.ad_checkpoint import checkpoint_name, saved_residuals

    def f(x):
        a = checkpoint_name(jnp.sin(x), "a")
        return jnp.sin(a)

    where = [w for _, w in saved_residuals(f, 1.0)]
    assert [w.split(" from ")[0] for w in where] == ["output of cos", "output of cos"]
    assert where[0].endswith("(test_checkpoint_names_and_policies.<locals>.f)")
    policies = jax.checkpoint_policies
    only_a = jax.checkpoint(f, policy=policies.save_only_these_names("a"))
    where = [w for _, w in saved_residuals(only_a, 1.0)]
    assert where[0] == "from the argument x" and where[1].startswith("named 'a' from ")
    want = np.cos(np.sin(1.0)) * np.cos(1.0)
    for policy in (policies.save_only_these_names("a"), policies.save_any_names_but_these("a"),
                   policies.save_anything_except_these_names("a"),
                   policies.save_from_both_policies(policies.dots_saveable,
                                                    policies.nothing_saveable)):
        g = jax.grad(jax.checkpoint(f, policy=policy))(1.0)
        assert abs(float(g) - want) < 1e-6
    nothing = [w for _, w in saved_residuals(jax.checkpoint(f), 1.0)]
    assert nothing == ["from the argument x"]


def test_print_saved_residuals_names_arguments_by_path(capsys):
    from tinyjax.ad_checkpoint import print_saved_residuals

    def loss(params, x):
        return jnp.tanh(params["w"] @ x).sum()

    print_saved_residuals(loss, {"w": jnp.ones((2, 3))}, jnp.ones(3))
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == ["f32[2,3] from the argument params['w']",
                         "f32[3] from the argument x"]
    assert any("output of" in line and "(test_print_saved_residuals" in line
               for line in lines[2:])
