"""tinyjax.scipy.optimize against scipy.optimize: BFGS and L-BFGS minima of smooth
problems, the strong Wolfe line search's step, jit against eager, the errors."""
import numpy as np
import pytest
import scipy.optimize as so

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.scipy.optimize import OptimizeResults, line_search, minimize

METHODS = ["BFGS", "l-bfgs-experimental-do-not-rely-on-this"]


def rosenbrock(x):
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def quadratic(x, a, b):
    return 0.5 * x @ a @ x - b @ x


def test_bfgs_rosenbrock_minimum_matches_scipy(x64):
    x0 = np.array([-1.2, 1.0, -0.5, 0.8])
    expected = so.minimize(so.rosen, x0, jac=so.rosen_der, method="BFGS",
                           options={"gtol": 1e-10}).x
    r = minimize(rosenbrock, jnp.asarray(x0), method="BFGS", options={"gtol": 1e-8})
    assert isinstance(r, OptimizeResults) and bool(r.success) and int(r.status) == 0
    np.testing.assert_allclose(np.asarray(r.x), expected, rtol=1e-6, atol=1e-6)
    # f at the minimum is ~1e-20: its few last bits depend on the device's rounding
    # (CUDA contracts a*b+c into one fused multiply-add)
    np.testing.assert_allclose(float(r.fun), so.rosen(np.asarray(r.x)), rtol=1e-9,
                               atol=1e-18)
    np.testing.assert_allclose(np.asarray(r.jac), so.rosen_der(np.asarray(r.x)), rtol=1e-6,
                               atol=1e-12)
    assert int(r.nit) > 0 and int(r.nfev) == int(r.njev) >= int(r.nit)


def test_lbfgs_minimum_matches_scipy(x64):
    rng = np.random.default_rng(1)
    c = rng.standard_normal(6)

    def f(x):  # smooth and strictly convex
        return jnp.sum((x - c) ** 2) + 0.1 * jnp.sum(x ** 4) + jnp.log(jnp.sum(jnp.exp(x)))

    def f_np(x):
        return np.sum((x - c) ** 2) + 0.1 * np.sum(x ** 4) + np.log(np.sum(np.exp(x)))

    expected = so.minimize(f_np, np.zeros(6), method="L-BFGS-B",
                           jac=lambda x: np.asarray(jax.grad(f)(jnp.asarray(x))),
                           options={"gtol": 1e-12, "ftol": 1e-15}).x
    r = minimize(f, jnp.zeros(6), method="l-bfgs-experimental-do-not-rely-on-this",
                 options={"gtol": 1e-9, "ftol": 0.0})
    assert bool(r.success) and int(r.status) == 0 and r.hess_inv is None
    np.testing.assert_allclose(np.asarray(r.x), expected, rtol=1e-6, atol=1e-7)
    assert int(r.nfev) == int(r.njev) > int(r.nit) > 0


@pytest.mark.parametrize("method", METHODS)
def test_quadratic_with_args_float32_and_jit(method):
    rng = np.random.default_rng(0)
    m = rng.standard_normal((5, 5)).astype(np.float32)
    a = m @ m.T + 5 * np.eye(5, dtype=np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    solve = lambda x0: minimize(quadratic, x0, (a, b), method=method)  # noqa: E731
    eager = solve(jnp.zeros(5))
    compiled = jax.jit(solve)(jnp.zeros(5))
    assert eager.x.dtype == np.float32
    np.testing.assert_allclose(np.asarray(eager.x), np.linalg.solve(a, b), atol=2e-4)
    np.testing.assert_allclose(np.asarray(compiled.x), np.asarray(eager.x), atol=2e-4)
    if method == "BFGS":  # the inverse Hessian estimate approaches the inverse of a
        np.testing.assert_allclose(np.asarray(eager.hess_inv) @ a, np.eye(5), atol=0.05)


def test_bfgs_status_and_iteration_limit(x64):
    r = minimize(rosenbrock, jnp.array([-1.2, 1.0]), method="BFGS", options={"maxiter": 3})
    assert int(r.nit) == 3 and int(r.status) == 1 and not bool(r.success)
    r = minimize(rosenbrock, jnp.array([1.0, 1.0]), method="BFGS")  # starts at the minimum
    assert int(r.nit) == 0 and int(r.status) == 0 and bool(r.success)


def test_lbfgs_complex_variables(x64):
    target = np.array([1 + 2j, -0.5j, 3.0])

    def f(z):
        return jnp.sum(jnp.abs(z - target) ** 2)

    r = minimize(f, jnp.zeros(3, jnp.complex128),
                 method="l-bfgs-experimental-do-not-rely-on-this")
    np.testing.assert_allclose(np.asarray(r.x), target, atol=1e-6)


@pytest.mark.parametrize("start", [[1.5, 2.0], [-1.2, 1.0], [0.3, -0.4, 2.0]])
def test_line_search_meets_strong_wolfe_conditions_as_scipy(x64, start):
    x = np.array(start)
    g = so.rosen_der(x)
    p = -g
    c1, c2 = 1e-4, 0.9
    r = line_search(rosenbrock, jnp.asarray(x), jnp.asarray(p), c1=c1, c2=c2)
    a = float(r.a_k)
    assert not bool(r.failed) and int(r.status) == 0 and a > 0
    f0, slope0 = so.rosen(x), g @ p
    x1 = x + a * p
    assert so.rosen(x1) <= f0 + c1 * a * slope0
    assert abs(so.rosen_der(x1) @ p) <= c2 * abs(slope0)
    np.testing.assert_allclose(float(r.f_k), so.rosen(x1), rtol=1e-10)
    scipy_step = so.line_search(so.rosen, so.rosen_der, x, p, c1=c1, c2=c2)[0]
    assert scipy_step is not None  # both find an acceptable step (not necessarily one)
    assert int(r.nfev) == int(r.ngev) >= 2


def test_errors():
    with pytest.raises(ValueError, match="Method nelder-mead not recognized"):
        minimize(rosenbrock, jnp.zeros(2), method="nelder-mead")
    with pytest.raises(TypeError, match="args argument .* must be a tuple"):
        minimize(quadratic, jnp.zeros(2), args=[1, 2], method="BFGS")
    with pytest.raises(ValueError, match="x0 must be a 1-D array"):
        minimize(rosenbrock, jnp.zeros((2, 2)), method="BFGS")
    with pytest.raises(ValueError, match="line_search: xk and pk"):
        line_search(rosenbrock, jnp.zeros(2), jnp.zeros(3))
