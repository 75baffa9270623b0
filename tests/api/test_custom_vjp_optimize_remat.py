"""custom_vjp.defvjp(..., optimize_remat=True) and remat_opt_p: the fwd rule as one
equation; dead-code elimination puts the function's own jaxpr in its place where no residual
is used; derivatives against analytic values and finite differences, vmap against loops,
compiled on every device against eager."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.custom_derivatives import _optimize_remat_fwd, remat_opt_p
from tinyjax.jaxpr import dce_jaxpr, eval_jaxpr
from tests.cuda_support import CUDA_PARAM


def _f():
    @jax.custom_vjp
    def f(x, y):
        return jnp.sin(x) * y

    def fwd(x, y):
        return f(x, y), (jnp.cos(x), y, 2)  # a Python scalar residual passes as it is

    def bwd(res, g):
        cos_x, y, two = res
        assert two == 2
        return cos_x * y * g, jnp.sin(jnp.arccos(cos_x)) * g

    f.defvjp(fwd, bwd, optimize_remat=True)
    return f


X = np.linspace(0.1, 1.2, 4).astype(np.float32)
Y = np.linspace(-1.0, 2.0, 4).astype(np.float32)


def test_values_and_gradients():
    f = _f()
    np.testing.assert_allclose(f(X, Y), np.sin(X) * Y, rtol=1e-6)
    gx, gy = jax.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gx, np.cos(X) * Y, rtol=1e-5)
    np.testing.assert_allclose(gy, np.sin(X), rtol=1e-5)
    jaxpr = jax.make_jaxpr(jax.grad(lambda x: f(x, Y).sum()))(X)
    eqn = next(e for e in jaxpr.eqns if e.primitive is remat_opt_p)
    assert eqn.params["num_res"] == 2 and len(eqn.outvars) == 3
    second = jax.grad(jax.grad(lambda x: f(x, 2.0)))(np.float32(0.7))
    eps = 1e-2
    first = lambda x: float(jax.grad(lambda v: f(v, 2.0))(np.float32(x)))  # noqa: E731
    np.testing.assert_allclose(second, (first(0.7 + eps) - first(0.7 - eps)) / (2 * eps),
                               rtol=1e-3)


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_under_checkpoint_and_jit(device):
    f = _f()
    g = jax.grad(jax.checkpoint(lambda x: (f(x, Y) * x).sum()))
    xd = jax.device_put(X, jax.devices(device)[0])
    np.testing.assert_allclose(jax.jit(g)(xd), g(X), rtol=1e-5)
    np.testing.assert_allclose(g(X), np.cos(X) * Y * X + np.sin(X) * Y, rtol=1e-5)


def test_vmap_against_a_loop():
    f = _f()
    g = jax.grad(lambda x, y: f(x, y))
    np.testing.assert_allclose(jax.vmap(g)(X, Y), [g(x, y) for x, y in zip(X, Y)], rtol=1e-6)


def _fwd_jaxpr():
    w = jnp.arange(3.0)
    fun = lambda x: jnp.sin(x) * w  # noqa: E731
    fwd = lambda x: (fun(x), jnp.cos(x) * w)  # noqa: E731
    return jax.make_jaxpr(_optimize_remat_fwd(fun, fwd))(jnp.ones(3))


def test_dce_runs_the_function_where_residuals_are_unused():
    closed = _fwd_jaxpr()  # outputs: primal out, residual
    only_out, used = dce_jaxpr(closed.jaxpr, [True, False])
    eqn, = only_out.eqns
    assert eqn.params["num_res"] == 0
    assert [e.primitive.name for e in eqn.params["fwd_jaxpr"].eqns] == ["sin", "mul"]
    x = np.linspace(0, 1, 3).astype(np.float32)
    np.testing.assert_allclose(eval_jaxpr(only_out, closed.consts, x)[0],
                               np.sin(x) * np.arange(3), rtol=1e-6)
    only_res, _ = dce_jaxpr(closed.jaxpr, [False, True])
    eqn, = only_res.eqns
    assert eqn.params["num_res"] == 1
    assert [e.primitive.name for e in eqn.params["fwd_jaxpr"].eqns] == ["cos", "mul"]
    assert not dce_jaxpr(closed.jaxpr, [False, False])[0].eqns


def test_symbolic_zeros_are_not_supported():
    @jax.custom_vjp
    def f(x):
        return x
    with pytest.raises(NotImplementedError, match="does not support symbolic zeros"):
        f.defvjp(lambda x: (x, None), lambda r, g: (g,), symbolic_zeros=True,
                 optimize_remat=True)
