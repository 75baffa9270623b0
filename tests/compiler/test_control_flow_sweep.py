"""The control-flow sweep: every control-flow primitive (cond, switch, while_loop, fori_loop
with static and traced bounds, scan forward and reversed, map) under jit, grad, vmap and
their compositions, with closed-over constants and carried matrices, compiled on every
device of the ``device`` fixture (cpu, interp, cuda where present) against eager
evaluation of the same transformed function."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.dispatch import EagerExecutable

rng = np.random.default_rng(7)
W = rng.standard_normal((3, 3)).astype(np.float32) * 0.4   # closed over by every body
B = rng.standard_normal(3).astype(np.float32) * 0.1


def cond_case(m, x):
    y = lax.cond(jnp.sum(x) > 0, lambda m, x: jnp.tanh(m @ x + B),
                 lambda m, x: jnp.sin(x) * W[0] + jnp.sum(m), m, x)
    return jnp.sum(y * y)


def switch_case(m, x):
    i = jnp.clip(jnp.floor(jnp.sum(x) * 2.0), -1, 3).astype(jnp.int32)
    y = lax.switch(i, [lambda m, x: m @ x, lambda m, x: jnp.cos(W @ x) * m[0],
                       lambda m, x: x * jnp.sum(m * m)], m, x)
    return jnp.sum(y ** 2)


def _step(c):
    a, v = c
    return a @ W * 0.5 + jnp.cos(a), jnp.tanh(a @ v + B)


def fori_case(m, x):
    a, v = lax.fori_loop(0, 5, lambda i, c: _step(c), (m, x))
    return jnp.sum(a * a) + jnp.sum(v)


def fori_traced_case(m, x):
    n = 3 + (jnp.sum(x) > 0).astype(jnp.int32)   # a traced trip count: a while loop
    a, v = lax.fori_loop(0, n, lambda i, c: _step(c), (m, x))
    return jnp.sum(a * a) + jnp.sum(v)


def while_case(m, x):
    def cond(c):
        a, v, i = c
        return (i < 8) & (jnp.sum(v * v) < 2.5)   # data-dependent, bounded
    def body(c):
        a, v, i = c
        return (*_step((a + m * 0.1, v + 0.3)), i + 1)
    a, v, _ = lax.while_loop(cond, body, (m, x, 0))
    return jnp.sum(a) + jnp.sum(v * v)


def _scan(m, xs, reverse):
    def step(c, x):
        a, v = c
        v = jnp.tanh(a @ v + x + B)
        a = a * 0.9 + jnp.outer(v, x) * 0.1 + W * 0.01
        return (a, v), v * W[1]
    (a, v), ys = lax.scan(step, (m, xs[0]), xs, reverse=reverse)
    return jnp.sum(ys * ys) + jnp.sum(a) + jnp.sum(v)


def scan_case(m, xs):
    return _scan(m, xs, False)


def scan_reverse_case(m, xs):
    return _scan(m, xs, True)


def map_case(m, xs):
    return jnp.sum(lax.map(lambda x: jnp.tanh(m @ x + B) * W[2], xs))


# name -> (function, its data argument's shape, whether reverse mode applies)
CASES = {
    "cond": (cond_case, (3,), True),
    "switch": (switch_case, (3,), True),
    "fori_loop": (fori_case, (3,), True),
    "fori_loop_traced": (fori_traced_case, (3,), False),
    "while_loop": (while_case, (3,), False),
    "scan": (scan_case, (5, 3), True),
    "scan_reverse": (scan_reverse_case, (5, 3), True),
    "map": (map_case, (4, 3), True),
}


def _transforms(f, reverse_mode: bool) -> dict:
    both = (0, 1)
    out = {"plain": f, "vmap": jax.vmap(f, in_axes=(None, 0)),
           "jacfwd": jax.jacfwd(f, argnums=both)}
    if reverse_mode:
        out["grad"] = jax.grad(f, argnums=both)
        out["vmap_grad"] = jax.vmap(jax.grad(f, argnums=both), in_axes=(None, 0))
        out["grad_vmap"] = jax.grad(lambda m, x: jnp.sum(jax.vmap(f, in_axes=(None, 0))(m, x)),
                                    argnums=both)
    return out


def _args(shape, batched: bool):
    m = rng.standard_normal((3, 3)).astype(np.float32) * 0.5
    x = rng.standard_normal(((2,) if batched else ()) + shape).astype(np.float32)
    return m, x


def _close(got, want):
    gl, wl = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(gl) == len(wl)
    for g, w in zip(gl, wl):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("case", sorted(CASES))
def test_control_flow_under_transforms(case, device):
    f, shape, reverse_mode = CASES[case]
    for name, g in _transforms(f, reverse_mode).items():
        args = _args(shape, batched=name in ("vmap", "vmap_grad", "grad_vmap"))
        jg = jax.jit(g, device=device)
        compiled = jg.lower(*args).compile()
        assert not isinstance(compiled.executable, EagerExecutable), \
            f"{case}/{name}: {compiled.executable.reason}"
        _close(jg(*args), g(*args))
