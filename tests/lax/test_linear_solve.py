"""lax.custom_linear_solve: values, derivatives through matvec only (forward, reverse, any
order), transposition with transpose_solve / symmetric, vmap, has_aux, errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.test_util import check_grads


def _solver(a, symmetric=False):
    """custom_linear_solve through LU factors of (stop_gradient) a."""
    packed, _, perm = lax.linalg.lu(lax.stop_gradient(a))
    mv = lambda x: a @ x  # noqa: E731
    solve = lambda _, x: lax.linalg.lu_solve(packed, perm, x[:, None])[:, 0]  # noqa: E731
    tsolve = lambda _, x: lax.linalg.lu_solve(packed, perm, x[:, None], 1)[:, 0]  # noqa
    return lambda b: lax.custom_linear_solve(mv, b, solve, None if symmetric else tsolve,
                                             symmetric=symmetric)


def test_values_and_derivatives(x64):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    b = rng.standard_normal(4)
    f = lambda a, b: _solver(a)(b)  # noqa: E731
    np.testing.assert_allclose(f(a, b), np.linalg.solve(a, b), rtol=1e-12)
    check_grads(f, (a, b), order=2)
    spd = a @ a.T
    check_grads(lambda a, b: _solver(a, symmetric=True)(b), (spd, b), order=2,
                modes=("fwd",))
    check_grads(lambda b: _solver(spd, symmetric=True)(b), (b,), order=2)


def test_the_solver_itself_is_not_differentiated(x64):
    # solve returns a wrong (scaled) answer on purpose: derivatives follow matvec's
    a = np.diag([2.0, 4.0])
    b = np.array([1.0, 1.0])
    out = lax.custom_linear_solve(lambda x: a @ x, b, lambda mv, r: r / np.diag(a))
    np.testing.assert_allclose(out, [0.5, 0.25])
    _, t = jax.jvp(lambda b: lax.custom_linear_solve(lambda x: a @ x, b,
                                                     lambda mv, r: r / np.diag(a)),
                   (b,), (np.ones(2),))
    np.testing.assert_allclose(t, [0.5, 0.25])


def test_pytrees_has_aux_and_vmap(x64):
    a = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = {"u": np.array([1.0, 2.0]), "v": np.array(3.0)}
    mv = lambda x: {"u": a @ x["u"], "v": 2.0 * x["v"]}  # noqa: E731

    def solve(_, r):
        return {"u": jnp.linalg.solve(a, r["u"]), "v": r["v"] / 2.0}, r["v"]
    x, aux = lax.custom_linear_solve(mv, b, solve, symmetric=True, has_aux=True)
    np.testing.assert_allclose(x["u"], np.linalg.solve(a, b["u"]))
    assert float(aux) == 3.0
    bs = np.random.default_rng(1).standard_normal((5, 4))
    aa = np.random.default_rng(2).standard_normal((5, 4, 4)) + 4 * np.eye(4)
    got = jax.vmap(lambda a, b: _solver(a)(b))(aa, bs)
    np.testing.assert_allclose(got, np.linalg.solve(aa, bs[..., None])[..., 0], rtol=1e-10)
    got = jax.vmap(lambda b: _solver(aa[0])(b))(bs)
    np.testing.assert_allclose(got, np.linalg.solve(aa[0], bs.T).T, rtol=1e-10)
    g = jax.vmap(jax.grad(lambda a, b: _solver(a)(b).sum()))(aa, bs)
    np.testing.assert_allclose(g[1], jax.grad(lambda a, b: _solver(a)(b).sum())(aa[1], bs[1]),
                               rtol=1e-10)


def test_reverse_mode_needs_transpose_solve():
    a = np.eye(2, dtype=np.float32)
    f = lambda b: lax.custom_linear_solve(lambda x: a @ x, b, lambda mv, r: r)  # noqa: E731
    with pytest.raises(TypeError, match="transpose_solve required"):
        jax.grad(lambda b: f(b).sum())(np.ones(2, np.float32))
    with pytest.raises(TypeError, match="matvec must return values of the types of b"):
        lax.custom_linear_solve(lambda x: x[:1], np.ones(2), lambda mv, r: r)


def test_closed_over_values_of_matvec_are_differentiated(x64):
    # matvec closes over s (a traced value under grad, jit and vmap); solve closes over a
    # factorisation of stop_gradient(s * a) and is not differentiated itself
    a = np.array([[3.0, 1.0], [0.5, 2.0]])
    b = np.array([1.0, -1.0])

    def f(s):
        m = s * a
        inv = jnp.linalg.inv(lax.stop_gradient(m))
        x = lax.custom_linear_solve(lambda x: m @ x, b, lambda _, r: inv @ r,
                                    lambda _, r: inv.T @ r)
        return jnp.sum(x * x)
    want = lambda s: np.sum(np.linalg.solve(s * a, b) ** 2)  # noqa: E731
    np.testing.assert_allclose(f(2.0), want(2.0))
    # d/ds |(s a)^-1 b|^2 = -2 |x|^2 / s
    np.testing.assert_allclose(jax.grad(f)(2.0), -2 * want(2.0) / 2.0, rtol=1e-12)
    np.testing.assert_allclose(jax.jit(jax.grad(f))(2.0), jax.grad(f)(2.0), rtol=1e-12)
    ss = np.array([0.5, 1.0, 3.0])
    np.testing.assert_allclose(jax.vmap(jax.grad(f))(ss), [jax.grad(f)(s) for s in ss],
                               rtol=1e-12)
    check_grads(f, (2.0,), order=2)
