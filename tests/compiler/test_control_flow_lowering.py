"""Control flow under jit: loops stay loops (a body compiled once, run N times), cond runs
only the taken branch, checkpoint is inlined; compiled values equal eager ones, on every
device of the ``device`` fixture (cpu, interp, and cuda where present)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.dispatch import EagerExecutable

rng = np.random.default_rng(0)


def _close(got, want, rtol=1e-5, atol=1e-5):
    gl, wl = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(gl) == len(wl)
    for g, w in zip(gl, wl):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def _compiled(f, *args, device):
    """jit(f) on ``device``: checks it compiled (no eager fallback) and matches eager."""
    jf = jax.jit(f, device=device)
    c = jf.lower(*args).compile()
    assert not isinstance(c.executable, EagerExecutable), c.executable.reason
    _close(jf(*args), f(*args))
    return jf, c


def test_cond_both_branches(device):
    y = rng.standard_normal(4).astype(np.float32)

    def f(p, x):
        return lax.cond(p > 0, lambda x: jnp.sin(x) * y, lambda x: jnp.cos(x) + 1.0, x)

    x = rng.standard_normal(4).astype(np.float32)
    jf, c = _compiled(f, np.float32(1.0), x, device=device)
    assert c.executable.program.has_control_flow
    _close(jf(np.float32(-1.0), x), f(np.float32(-1.0), x))
    _close(jf(np.float32(1.0), x), np.sin(x) * y)
    _close(jf(np.float32(-1.0), x), np.cos(x) + 1.0)


def test_switch_clamps_index(device):
    branches = [lambda x: x * 2.0, lambda x: jnp.exp(x), lambda x: x - 3.0]
    f = lambda i, x: lax.switch(i, branches, x)  # noqa: E731
    x = rng.standard_normal((2, 3)).astype(np.float32)
    jf, _ = _compiled(f, np.int32(1), x, device=device)
    for i in (-4, 0, 1, 2, 7):
        _close(jf(np.int32(i), x), f(np.int32(i), x))


def test_while_data_dependent_trip_count(device):
    lim, step = np.float32(100.0), np.ones(2, np.float32)  # closed over: loop constants

    def f(x):
        return lax.while_loop(lambda c: c[0] < lim,
                              lambda c: (c[0] * 2.0 + jnp.sum(step) / 2.0, c[1] + 1),
                              (x, jnp.int32(0)))

    jf, c = _compiled(f, np.float32(1.0), device=device)
    for v in (0.5, 3.0, 50.0, 200.0):
        got = jf(np.float32(v))
        _close(got, f(np.float32(v)))
    assert int(jf(np.float32(200.0))[1]) == 0
    assert int(jf(np.float32(0.5))[1]) == 7  # 0.5, 2, 5, 11, 23, 47, 95, 191


@pytest.mark.parametrize("traced", [False, True])
def test_fori_loop(device, traced):
    def body(i, c):
        return c * 0.9 + jnp.sin(c) * i.astype(jnp.float32)

    if traced:
        def f(n, x):
            return lax.fori_loop(0, n, body, x)
        args = (np.int32(7), rng.standard_normal(5).astype(np.float32))
    else:
        def f(x):
            return lax.fori_loop(2, 9, body, x)
        args = (rng.standard_normal(5).astype(np.float32),)
    _compiled(f, *args, device=device)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_carry_xs_ys_pytrees(device, reverse):
    w = rng.standard_normal((3, 3)).astype(np.float32)

    def step(carry, x):
        h, n = carry
        h = jnp.tanh(h @ w + x["a"]) * x["b"]
        return (h, n + 1), {"h": h, "s": jnp.sum(h)}

    def f(h0, xs):
        return lax.scan(step, (h0, jnp.int32(0)), xs, reverse=reverse)

    xs = {"a": rng.standard_normal((6, 3)).astype(np.float32),
          "b": rng.standard_normal((6, 3)).astype(np.float32)}
    _compiled(f, rng.standard_normal(3).astype(np.float32), xs, device=device)


def _rnn(params, h0, xs):
    wx, wh, b = params

    def step(h, x):
        h = jnp.tanh(x @ wx + h @ wh + b)
        return h, jnp.sum(h * h)

    h, ys = lax.scan(step, h0, xs)
    return jnp.sum(ys) + jnp.sum(h)


def test_rnn_forward_and_grad_100_steps(device):
    d, t = 8, 100
    params = (rng.standard_normal((4, d)).astype(np.float32) * 0.3,
              rng.standard_normal((d, d)).astype(np.float32) * 0.3,
              rng.standard_normal(d).astype(np.float32) * 0.1)
    h0 = np.zeros(d, np.float32)
    xs = rng.standard_normal((t, 4)).astype(np.float32)
    _compiled(_rnn, params, h0, xs, device=device)
    g = jax.grad(_rnn)
    jg, c = _compiled(g, params, h0, xs, device=device)
    assert c.num_kernels > 0
    _close(jg(params, h0, xs), g(params, h0, xs), rtol=1e-4, atol=1e-5)


def test_scan_compiles_once_for_any_length(device):
    def make(n):
        def f(x):
            return lax.scan(lambda c, _: (jnp.sin(c) * 0.5 + c, jnp.sum(c)), x, None,
                            length=n)
        return f

    x = rng.standard_normal(16).astype(np.float32)
    small = jax.jit(make(10), device=device).lower(x).compile()
    big = jax.jit(make(1000), device=device).lower(x).compile()
    assert small.num_kernels == big.num_kernels > 0
    # the same kernels: only the trip count differs
    assert big.kernels() == small.kernels()
    _close(jax.jit(make(1000), device=device)(x), make(1000)(x), rtol=1e-4, atol=1e-4)


def test_nested_loops_and_cond_in_scan(device):
    def f(xs):
        def step(c, x):
            c = lax.cond(jnp.sum(x) > 0, lambda c: c + x, lambda c: c * 0.5, c)
            inner = lax.fori_loop(0, 3, lambda i, a: a + jnp.cos(a), c)
            return c, inner
        return lax.scan(step, jnp.zeros(3, jnp.float32), xs)

    _compiled(f, rng.standard_normal((5, 3)).astype(np.float32), device=device)


def test_grad_through_checkpoint_compiles(device):
    w = rng.standard_normal((4, 4)).astype(np.float32)

    @jax.checkpoint
    def block(x):
        return jnp.tanh(x @ w) * jnp.sin(x)

    def loss(x):
        return jnp.sum(block(block(x)))

    x = rng.standard_normal((2, 4)).astype(np.float32)
    for f in (loss, jax.grad(loss)):
        _, c = _compiled(f, x, device=device)
        assert c.num_kernels > 0


def test_debug_reports_body_kernels_once(device, monkeypatch, capsys):
    monkeypatch.setenv("DEBUG", "1")

    def f(x):
        return lax.scan(lambda c, x: (c + x, c * x), x[0], x)[1]

    x = rng.standard_normal((40, 3)).astype(np.float32)
    jax.jit(f, device=device)(x)
    out = capsys.readouterr().out
    assert "scan(length=40)" in out and "40 iterations" in out
