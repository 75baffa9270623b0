"""lax.custom_root: values, implicit derivatives in the values f closes over (forward,
reverse, second order, against finite differences), the solver and the initial guess
not differentiated, pytrees and has_aux, vmap against loops, jit against eager (compiled,
not evaluated op by op), and JAX's errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.test_util import check_grads


def _newton(f, x0, steps=30):
    """A solver that runs a fixed number of scalar Newton steps (a loop the derivative
    must not go through)."""
    def body(_, x):
        return x - f(x) / jax.grad(f)(x)
    return lax.fori_loop(0, steps, body, x0)


def _scalar_tangent_solve(g, y):
    return y / g(1.0)


def cube_root(a):
    """The real root of x**3 + x - a (closes over a)."""
    return lax.custom_root(lambda x: x ** 3 + x - a, jnp.ones_like(a), _newton,
                           _scalar_tangent_solve)


def test_scalar_root_value_and_derivatives(x64):
    a = 3.0
    root = cube_root(a)
    np.testing.assert_allclose(root ** 3 + root, a, rtol=1e-12)
    # implicit function theorem: dx/da = 1 / (3 x^2 + 1)
    np.testing.assert_allclose(jax.grad(cube_root)(a), 1 / (3 * root ** 2 + 1), rtol=1e-12)
    check_grads(cube_root, (a,), order=2)


def test_the_solver_and_the_guess_are_not_differentiated(x64):
    def root(a, scale, guess):
        f = lambda x: x * x - a  # noqa: E731

        def solve(f, x0):  # depends on scale and the guess: derivatives must not see it
            return x0 * scale * jnp.sqrt(a) / lax.stop_gradient(x0 * scale)
        return lax.custom_root(f, guess, solve, _scalar_tangent_solve)
    g = jax.grad(root, argnums=(0, 1, 2))(4.0, 3.0, 1.0)
    np.testing.assert_allclose(g, [0.25, 0.0, 0.0])


def _vector_root(m, c):
    """x with m @ x + tanh(x) = c: Newton with the Jacobian, tangent_solve through the
    Jacobian of the linearised f (both close over m and c)."""
    def f(x):
        return m @ x + jnp.tanh(x) - c

    def solve(f, x0):
        def body(_, x):
            return x - jnp.linalg.solve(jax.jacobian(f)(x), f(x))
        return lax.fori_loop(0, 20, body, x0)

    def tangent_solve(g, y):
        return jnp.linalg.solve(jax.jacobian(g)(y), y)
    return lax.custom_root(f, jnp.zeros_like(c), solve, tangent_solve)


M = np.array([[3.0, 0.5, 0.2], [0.1, 2.0, -0.3], [0.4, 0.0, 4.0]])
C = np.array([1.0, -2.0, 0.5])


def test_vector_root_derivatives_in_closed_over_values(x64):
    x = _vector_root(M, C)
    np.testing.assert_allclose(M @ x + np.tanh(x), C, atol=1e-12)
    check_grads(_vector_root, (M, C), order=2, modes=("fwd", "rev"))
    # dx/dc = (m + diag(1 - tanh(x)^2))^-1
    want = np.linalg.inv(M + np.diag(1 - np.tanh(np.asarray(x)) ** 2))
    np.testing.assert_allclose(jax.jacrev(_vector_root, argnums=1)(M, C), want, rtol=1e-10)
    np.testing.assert_allclose(jax.jacfwd(_vector_root, argnums=1)(M, C), want, rtol=1e-10)


def test_tangent_solve_with_custom_linear_solve(x64):
    def root(m, c):
        def tangent_solve(g, y):
            jac = jax.jacobian(g)(y)
            return lax.custom_linear_solve(g, y, lambda _, r: jnp.linalg.solve(jac, r),
                                           lambda _, r: jnp.linalg.solve(jac.T, r))
        f = lambda x: m @ x + jnp.tanh(x) - c  # noqa: E731
        solve = lambda f, x0: _vector_root(m, c)  # noqa: E731
        return lax.custom_root(f, jnp.zeros_like(c), solve, tangent_solve)
    np.testing.assert_allclose(jax.jacrev(root, argnums=1)(M, C),
                               jax.jacrev(_vector_root, argnums=1)(M, C), rtol=1e-10)
    check_grads(root, (M, C), order=1)


def test_pytrees_and_has_aux(x64):
    def root(p):
        f = lambda x: {"u": x["u"] ** 2 - p, "v": 2.0 * x["v"] - p}  # noqa: E731

        def solve(f, x0):
            return {"u": jnp.sqrt(p), "v": p / 2.0}, jnp.asarray(7, jnp.int32)

        def tangent_solve(g, y):
            scale = g({"u": 1.0, "v": 1.0})
            return {"u": y["u"] / scale["u"], "v": y["v"] / scale["v"]}
        return lax.custom_root(f, {"u": 1.0, "v": 1.0}, solve, tangent_solve, has_aux=True)
    sol, aux = root(4.0)
    assert int(aux) == 7 and aux.dtype == np.int32
    np.testing.assert_allclose([sol["u"], sol["v"]], [2.0, 2.0])
    g = jax.grad(lambda p: root(p)[0]["u"] + 3 * root(p)[0]["v"])(4.0)
    np.testing.assert_allclose(g, 0.25 + 1.5)
    check_grads(lambda p: root(p)[0], (4.0,), order=2)


def test_vmap_matches_a_loop():
    a = np.array([0.5, 2.0, 10.0], np.float32)
    got = jax.vmap(cube_root)(a)
    np.testing.assert_allclose(got, [cube_root(x) for x in a], rtol=1e-6)
    got = jax.vmap(jax.grad(cube_root))(a)
    np.testing.assert_allclose(got, [jax.grad(cube_root)(x) for x in a], rtol=1e-6)
    # batched only in the matrix f closes over (the guess is not batched)
    ms = np.stack([M, 2 * M, M.T]).astype(np.float32)
    got = jax.vmap(_vector_root, in_axes=(0, None))(ms, C.astype(np.float32))
    np.testing.assert_allclose(got, [_vector_root(m, C.astype(np.float32)) for m in ms],
                               rtol=1e-5)


def test_jit_compiles_and_matches_eager():
    a = np.float32(3.0)
    for fn in (cube_root, jax.grad(cube_root), jax.grad(jax.grad(cube_root))):
        closed = jax.make_jaxpr(fn)(a)
        compiled = compile_jaxpr(closed, get_backend("cpu"))   # raises if not lowerable
        np.testing.assert_allclose(compiled(a)[0], fn(a), rtol=1e-5)
        np.testing.assert_allclose(jax.jit(fn)(a), fn(a), rtol=1e-5)
    m, c = M.astype(np.float32), C.astype(np.float32)
    np.testing.assert_allclose(jax.jit(jax.jacrev(_vector_root))(m, c),
                               jax.jacrev(_vector_root)(m, c), rtol=1e-4, atol=1e-6)


def test_errors():
    solve = lambda f, x0: x0  # noqa: E731
    with pytest.raises(TypeError, match=r"f\(\) output pytree structure must match "
                                        "initial_guess"):
        lax.custom_root(lambda x: (x, x), 1.0, solve, _scalar_tangent_solve)
    with pytest.raises(TypeError, match=r"solve\(\) output pytree structure must match"):
        lax.custom_root(lambda x: x, 1.0, lambda f, x0: [x0], _scalar_tangent_solve)
    with pytest.raises(ValueError, match="auxiliary output was expected because has_aux"):
        lax.custom_root(lambda x: x, 1.0, solve, _scalar_tangent_solve, has_aux=True)
    with pytest.raises(TypeError, match=r"tangent_solve\(\) output pytree structure must "
                                        "match x"):
        lax.custom_root(lambda x: x, 1.0, solve, lambda g, y: (y, y))
