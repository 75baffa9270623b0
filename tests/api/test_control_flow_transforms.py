"""Every control-flow primitive under jit(grad), jit(vmap(grad)) and grad(grad), with
closed-over constants, carried matrices and custom rules inside: against central finite
differences (in float64), eager grad and a Python loop over the batch."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax

rng = np.random.default_rng(7)
N = 3
M = rng.standard_normal((N, N)) * 0.4  # closed over by every case
B = rng.standard_normal(N) * 0.3


@jax.custom_jvp
def softplus(x):
    return jnp.log1p(jnp.exp(x))


softplus.defjvp(lambda p, t: (softplus(p[0]), t[0] * jax.nn.sigmoid(p[0])))


@jax.custom_vjp
def stable_tanh(x):
    return jnp.tanh(x)


stable_tanh.defvjp(lambda x: (jnp.tanh(x), jnp.tanh(x)), lambda t, g: (g * (1 - t * t),))


def _m(x):
    return jnp.asarray(M, x.dtype)


def cond_case(x):
    m = _m(x)
    y = lax.cond(x.sum() > 0, lambda v: jnp.sin(v) @ m, lambda v: softplus(v) @ m.T, x)
    return (y * y).sum()


def switch_case(x):
    m = _m(x)
    branches = [lambda v: jnp.tanh(v @ m), lambda v: softplus(v) * 2.0, lambda v: v ** 3]
    i = jnp.clip(jnp.floor(jnp.abs(x[0]) * 2).astype(jnp.int32), 0, 2)
    return lax.switch(i, branches, x).sum()


def fori_case(x):
    m = _m(x)

    def body(i, carry):
        a, v = carry  # a carried matrix and a vector
        a = jnp.tanh(a @ m + jnp.outer(v, v) * 0.1)
        return a, softplus(a @ v) * 0.5

    a, v = lax.fori_loop(0, 3, body, (jnp.eye(N, dtype=x.dtype), x))
    return (a.sum() + v.sum()) * 0.5


def scan_case(x):
    m, b = _m(x), jnp.asarray(B, x.dtype)

    def step(h, inp):
        h = jnp.tanh(h @ m + inp * x + b)
        return h, stable_tanh(h).sum()

    h, ys = lax.scan(step, x, jnp.arange(4, dtype=x.dtype) / 4)
    return h.sum() + ys.sum()


def associative_scan_case(x):
    m = _m(x)
    prods = lax.associative_scan(jnp.multiply, jnp.tanh(x) + 1.5)
    sums = lax.associative_scan(jnp.add, x @ m, reverse=True)
    return (prods * sums).sum()


def map_case(x):
    m = _m(x)
    rows = lax.map(lambda r: softplus(r @ x) * r, m)
    return rows.sum()


def while_fixed_point_case(x):
    """A while_loop hidden by a custom_vjp (its gradient by the implicit function rule)."""
    return _solve(x).sum()


@jax.custom_vjp
def _solve(x):
    # y = 0.5 * tanh(y @ M) + x, iterated to convergence
    m = _m(x)
    y = lax.while_loop(lambda c: c[1] < 50, lambda c: (0.5 * jnp.tanh(c[0] @ m) + x, c[1] + 1),
                       (x, 0))[0]
    return y


def _solve_fwd(x):
    y = _solve(x)
    return y, y


def _solve_bwd(y, g):
    m = _m(y)
    d = 1 - jnp.tanh(y @ m) ** 2
    # dy = J dy + dx with J = 0.5 diag(d) M^T, so the pullback solves (I - J)^T u = g:
    # u = sum_k (J^T)^k g (J is a contraction here)
    jt = 0.5 * m * d[None, :]
    u, term = g, g
    for _ in range(60):
        term = jt @ term
        u = u + term
    return (u,)


_solve.defvjp(_solve_fwd, _solve_bwd)

CASES = [cond_case, switch_case, fori_case, scan_case, associative_scan_case, map_case,
         while_fixed_point_case]
X0 = np.array([0.3, -0.2, 0.4])


def finite_difference(f, x, eps=1e-6):
    """Central differences of the scalar f at x, in float64."""
    with jax.enable_x64(True):
        x = np.asarray(x, np.float64)
        out = np.zeros_like(x)
        for i in range(x.size):
            e = np.zeros_like(x)
            e[i] = eps
            out[i] = (float(f(jnp.asarray(x + e))) - float(f(jnp.asarray(x - e)))) / (2 * eps)
    return out


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_grad_and_jit_grad_match_finite_differences(f):
    x = X0.astype(np.float32)
    want = finite_difference(f, X0)
    eager = np.asarray(jax.grad(f)(x))
    np.testing.assert_allclose(eager, want, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(f))(x)), eager, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_jit_vmap_grad_matches_a_loop(f):
    xs = (X0 + rng.standard_normal((3, N)) * 0.2).astype(np.float32)
    got = np.asarray(jax.jit(jax.vmap(jax.grad(f)))(xs))
    loop = np.stack([np.asarray(jax.grad(f)(x)) for x in xs])
    np.testing.assert_allclose(got, loop, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("f", CASES, ids=lambda f: f.__name__)
def test_grad_of_grad_matches_finite_differences(f):
    direction = np.array([1.0, -0.5, 0.25])

    def along(s):  # f on a line through X0: a scalar function of a scalar
        return f(jnp.asarray(X0, jnp.asarray(s).dtype) + s * direction.astype(
            jnp.asarray(s).dtype))

    first = jax.grad(along)
    want = finite_difference(lambda s: first(s[0]), np.zeros(1), eps=1e-4)[0]
    got = float(jax.grad(first)(np.float32(0.0)))
    assert abs(got - want) <= 5e-3 * max(1.0, abs(want)), (got, want)
    assert abs(float(jax.jit(jax.grad(first))(np.float32(0.0))) - got) <= 1e-5 * max(
        1.0, abs(got))


def test_while_loop_forward_mode_matches_finite_differences():
    """A plain while_loop has no reverse mode (as in JAX); forward mode goes through it."""
    def f(x):
        m = _m(x)
        return lax.while_loop(lambda c: c[1] < 4, lambda c: (jnp.tanh(c[0] @ m) + x, c[1] + 1),
                              (x, 0))[0].sum()

    x = X0.astype(np.float32)
    want = finite_difference(f, X0)
    np.testing.assert_allclose(np.asarray(jax.jacfwd(f)(x)), want, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.jacfwd(f))(x)), want, rtol=2e-3,
                               atol=2e-4)
    with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
        jax.grad(f)(x)
