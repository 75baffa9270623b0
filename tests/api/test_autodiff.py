"""jvp, linearize, vjp, grad and the Jacobian family against independent references."""
import math

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.array import ArrayImpl
from tinyjax.test_util import check_grads


def mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = lax.tanh(lax.dot_general(x, w1, (((1,), (0,)), ((), ()))) + b1)
    out = lax.dot_general(h, w2, (((1,), (0,)), ((), ()))) + b2
    err = out - y
    return lax.reduce_sum(err * err, (0, 1)) / err.size


def test_triple_grad_of_tanh_matches_closed_form():
    x = 0.5
    t = math.tanh(x)
    expected = -2 * (1 - t * t) ** 2 + 4 * t * t * (1 - t * t)
    np.testing.assert_allclose(jax.grad(jax.grad(jax.grad(jnp.tanh)))(x), expected,
                               rtol=1e-5)


def test_jvp_and_linearize_agree(x64):
    f = lambda x: lax.sin(x) * lax.exp(x)
    x = np.linspace(-1, 1, 5)
    t = np.ones(5)
    y, yt = jax.jvp(f, (x,), (t,))
    y2, f_jvp = jax.linearize(f, x)
    np.testing.assert_allclose(y, y2)
    np.testing.assert_allclose(f_jvp(t), yt, rtol=1e-12)
    np.testing.assert_allclose(yt, np.exp(x) * (np.cos(x) + np.sin(x)), rtol=1e-12)


def test_grad_over_pytrees_and_argnums(x64):
    def f(p, x):
        return lax.reduce_sum(p["w"] * x + p["b"], (0,))
    p = {"w": np.array([1.0, 2.0]), "b": np.array([0.5, 0.5])}
    x = np.array([3.0, 4.0])
    g = jax.grad(f)(p, x)
    np.testing.assert_allclose(g["w"], x)
    np.testing.assert_allclose(g["b"], [1.0, 1.0])
    gp, gx = jax.grad(f, argnums=(0, 1))(p, x)
    np.testing.assert_allclose(gx, p["w"])
    (v, aux), g2 = jax.value_and_grad(lambda p, x: (f(p, x), "aux"), has_aux=True)(p, x)
    assert aux == "aux" and float(v) == float(f(p, x))


def test_check_grads_mlp_order2(x64):
    rng = np.random.default_rng(0)
    params = ((rng.standard_normal((3, 4)), rng.standard_normal(4)),
              (rng.standard_normal((4, 2)), rng.standard_normal(2)))
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    check_grads(lambda p: mlp_loss(p, x, y), (params,), order=2)


def test_grad_jaxpr_of_mlp_is_one_jaxpr():
    rng = np.random.default_rng(0)
    params = ((rng.standard_normal((3, 4)).astype(np.float32), np.zeros(4, np.float32)),
              (rng.standard_normal((4, 2)).astype(np.float32), np.zeros(2, np.float32)))
    x = rng.standard_normal((5, 3)).astype(np.float32)
    y = rng.standard_normal((5, 2)).astype(np.float32)
    closed = jax.make_jaxpr(jax.grad(mlp_loss))(params, x, y)
    names = {e.primitive.name for e in closed.eqns}
    assert "dot_general" in names and "transpose" in names or "dot_general" in names
    assert len(closed.out_avals) == 4
    assert all(isinstance(e.primitive.name, str) for e in closed.eqns)


def test_jacfwd_equals_jacrev_over_pytrees(x64):
    def f(p):
        return {"a": lax.sin(p[0]) * p[1], "b": lax.reduce_sum(p[0] * p[0], (0,))}
    p = (np.array([0.1, 0.2, 0.3]), np.array([1.0, 2.0, 3.0]))
    jf, jr = jax.jacfwd(f)(p), jax.jacrev(f)(p)
    for k in ("a", "b"):
        for i in range(2):
            np.testing.assert_allclose(jf[k][i], jr[k][i], rtol=1e-12)
    np.testing.assert_allclose(jf["a"][0], np.diag(np.cos(p[0]) * p[1]), rtol=1e-12)


def test_hessian_of_quadratic_form(x64):
    a = np.random.default_rng(1).standard_normal((4, 4))
    f = lambda x: lax.reduce_sum(x * lax.dot_general(a, x, (((1,), (0,)), ((), ()))), (0,))
    np.testing.assert_allclose(jax.hessian(f)(np.ones(4)), a + a.T, rtol=1e-12)


def test_vjp_has_aux_and_cotangent_checks():
    y, pullback, aux = jax.vjp(lambda x: (lax.sin(x), 7), 1.0, has_aux=True)
    assert aux == 7
    (g,) = pullback(1.0)
    np.testing.assert_allclose(g, math.cos(1.0), rtol=1e-6)
    _, pb = jax.vjp(lambda x: x * 2.0, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="Shape of cotangent"):
        pb(np.ones(4, np.float32))


def test_grad_of_nonscalar_output_error():
    with pytest.raises(TypeError, match="Gradient only defined for scalar-output functions"):
        jax.grad(lambda x: x * 2.0)(np.ones(3, np.float32))


def test_grad_of_integer_input_error():
    with pytest.raises(TypeError, match="grad requires real- or complex-valued inputs"):
        jax.grad(lambda x: x * 2)(3)


def test_integer_inputs_get_float0_cotangents_with_allow_int():
    g = jax.grad(lambda x, n: x * n, argnums=(0, 1), allow_int=True)(2.0, 3)
    assert float(g[0]) == 3.0
    assert np.asarray(g[1]).dtype == jax.dtypes.float0


def test_stop_gradient():
    f = lambda x: x * lax.stop_gradient(x)
    assert float(jax.grad(f)(3.0)) == 3.0


def test_symbolic_zeros_do_not_materialise():
    # the unused input contributes no equations to the linear program
    closed = jax.make_jaxpr(lambda x, y: jax.jvp(lambda a, b: lax.sin(a), (x, y),
                                                 (x, y))[1])(1.0, 2.0)
    assert [e.primitive.name for e in closed.eqns] == ["sin", "cos", "mul"]


def test_jvp_argument_errors():
    with pytest.raises(TypeError, match="must be tuples or lists"):
        jax.jvp(lax.sin, 1.0, 1.0)
    with pytest.raises(TypeError, match="dtypes must be equal"):
        jax.jvp(lax.sin, (np.float32(1.0),), (np.int32(1),))


def test_python_control_flow_under_grad_and_jvp():
    def f(x):
        return lax.sin(x) if x > 0 else x * x
    assert abs(float(jax.grad(f)(0.3)) - math.cos(0.3)) < 1e-6
    assert float(jax.jvp(f, (-2.0,), (1.0,))[1]) == -4.0


def test_has_aux_values_are_concrete_not_tracers():
    g, aux = jax.grad(lambda x: (lax.exp(x) * 2.0, lax.exp(x)), has_aux=True)(0.0)
    assert type(aux) is ArrayImpl and float(aux) == 1.0
    _, tangent, aux = jax.jvp(lambda x: (x * 2.0, {"v": x + 1.0, "s": "s"}), (1.0,), (1.0,),
                              has_aux=True)
    assert type(aux["v"]) is ArrayImpl and aux["s"] == "s" and float(tangent) == 2.0


def test_linearize_accepts_python_scalars():
    np.testing.assert_allclose(jax.linearize(lax.sin, 1.0)[1](1.0), math.cos(1.0), rtol=1e-6)


def test_eager_math_is_silent_like_jax():
    # numpy warns about inf * 0 in eager mode; JAX computes the IEEE result silently.
    import subprocess
    import sys
    code = ("import tinyjax as jax; from tinyjax import lax; "
            "print(jax.grad(lambda x: lax.log(1.0 + lax.exp(x)))(100.0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "nan"
    assert "Warning" not in out.stderr


def test_linearized_function_is_a_pytree_of_its_residuals():
    # it can be returned from jit and vmap, and applied per example afterwards
    f = lambda x: lax.sin(x) * x
    xs = np.array([0.5, 1.0, 2.0], np.float32)
    out, f_jvp = jax.jit(jax.vmap(lambda x: jax.linearize(f, x)))(xs)
    np.testing.assert_allclose(out, np.sin(xs) * xs, rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(lambda fj, t: fj(t))(f_jvp, np.ones(3, np.float32)),
                               np.cos(xs) * xs + np.sin(xs), rtol=1e-5)
    assert len(jax.tree_util.tree_leaves(f_jvp)) > 0
    with pytest.raises(ValueError, match="Got tangent aval float32\\[3\\] for primal aval"):
        f_jvp(np.ones(3, np.float32))


def test_float0_results_of_jit_are_numpy_arrays():
    g = jax.jit(jax.grad(lambda x, n: (x * n).sum(), argnums=(0, 1), allow_int=True))
    for n in (3, np.arange(3)):
        _, gn = g(2.0, n)
        assert type(gn) is np.ndarray and gn.dtype == jax.dtypes.float0
        assert gn.shape == np.shape(n)
    assert "float0" in str(jax.make_jaxpr(
        lambda n: jax.grad(lambda x, n: x * n, argnums=1, allow_int=True)(2.0, n))(3))
