"""Loop carries updated in place: where one launch of a loop body writes a carry, loading
its current value only where it stores the next and nothing after it reads the current
value, the carry gets one buffer instead of two (compiler.memory.updates_in_place).
Compiled values are checked against eager ones on every device of the ``device``
fixture; which carries share a buffer is read off the compiled program."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.compiler.steps import Loop, walk_steps
from tinyjax.dispatch import EagerExecutable

rng = np.random.default_rng(0)


def _compile(f, *args, device):
    jf = jax.jit(f, device=device)
    c = jf.lower(*args).compile()
    assert not isinstance(c.executable, EagerExecutable), c.executable.reason
    for got, want in zip(jax.tree_util.tree_leaves(jf(*args)),
                         jax.tree_util.tree_leaves(f(*args))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=2e-5, atol=2e-5)
    return c.executable.program


def _in_place(program) -> list[bool]:
    """For every carry of every loop of ``program``: whether it has one buffer."""
    return [c.bufs[0] is c.bufs[1] for s in walk_steps(program.steps) if isinstance(s, Loop)
            for c in s.carries]


def test_elementwise_update_is_in_place(device):
    xs = rng.standard_normal((50, 16)).astype(np.float32)

    def f(xs):
        return lax.scan(lambda c, x: (c * 0.9 + jnp.sin(x), None), jnp.zeros(16), xs)[0]

    assert _in_place(_compile(f, xs, device=device)) == [True]


@pytest.mark.parametrize("body", ["roll", "reverse", "matvec", "sum"])
def test_update_reading_other_points_keeps_two_buffers(device, body):
    w = (rng.standard_normal((16, 16)) / 4).astype(np.float32)
    xs = rng.standard_normal((30, 16)).astype(np.float32)
    update = {"roll": lambda c: jnp.roll(c, 1), "reverse": lambda c: c[::-1],
              "matvec": lambda c: jnp.tanh(c @ w), "sum": lambda c: c - jnp.mean(c)}[body]

    def f(xs):
        return lax.scan(lambda c, x: (update(c) + x, None), jnp.ones(16), xs)[0]

    assert _in_place(_compile(f, xs, device=device)) == [False]


def test_rnn_gradient_sums_in_place(device):
    """The backward scan of an RNN adds an outer product into each weight's gradient sum
    every step: those carries are updated in place (the hidden state's is not: it is a
    matrix-vector product of the previous one)."""
    wh = (rng.standard_normal((8, 8)) / 3).astype(np.float32)
    wx = (rng.standard_normal((8, 8)) / 3).astype(np.float32)
    xs = rng.standard_normal((40, 8)).astype(np.float32)

    def loss(wh, wx, xs):
        def cell(h, x):
            h = jnp.tanh(h @ wh + x @ wx)
            return h, jnp.sum(h * h)
        h, ys = lax.scan(cell, jnp.zeros(8), xs)
        return jnp.mean(ys) + jnp.sum(h)

    shared = _in_place(_compile(jax.grad(loss, argnums=(0, 1)), wh, wx, xs, device=device))
    assert shared.count(True) >= 2 and False in shared


def test_while_loop_carry_in_place(device):
    def f(x):
        return lax.while_loop(lambda c: c[1] < 20, lambda c: (c[0] * 1.01 + 0.5, c[1] + 1),
                              (x, 0))

    program = _compile(f, rng.standard_normal(64).astype(np.float32), device=device)
    assert True in _in_place(program)


def test_carry_read_after_its_update_keeps_two_buffers(device):
    """``y`` reads the old carry; whichever order the kernels run in, the values must be the
    old ones (in place or not)."""
    xs = rng.standard_normal((20, 32)).astype(np.float32)

    def f(xs):
        def body(c, x):
            new = c + x
            return new, jnp.cumsum(c)  # a different kernel reading the old carry
        return lax.scan(body, jnp.zeros(32), xs)

    _compile(f, xs, device=device)


def test_zero_iterations_leave_the_initial_value(device):
    x0 = rng.standard_normal(16).astype(np.float32)
    f = lambda x: lax.fori_loop(0, 0, lambda i, c: c * 2.0 + 1.0, x)  # noqa: E731
    _compile(f, x0, device=device)


_UPDATES = {
    "axpy": lambda c, x: c * 0.5 + x,
    "roll": lambda c, x: jnp.roll(c, 2) + x,
    "flip": lambda c, x: jnp.flip(c) - x,
    "norm": lambda c, x: c / (1.0 + jnp.sum(c * c)) + x,
    "cumsum": lambda c, x: jnp.cumsum(c) * 0.1 + x,
    "where": lambda c, x: jnp.where(x > 0, c, -c),
}


@settings(max_examples=12, deadline=None)
@given(updates=st.lists(st.sampled_from(sorted(_UPDATES)), min_size=1, max_size=3),
       length=st.integers(0, 7), size=st.sampled_from([1, 5, 64]), reverse=st.booleans(),
       emit_old=st.booleans())
def test_scan_bodies_match_eager(updates, length, size, reverse, emit_old):
    """Random chains of updates of several carries, some emitting their old value as ``ys``
    (a read after the update), compiled on the C device against eager."""
    xs = rng.standard_normal((length, size)).astype(np.float32)

    def f(xs):
        def body(cs, x):
            new = [_UPDATES[u](c, x) for u, c in zip(updates, cs)]
            return new, (cs[0] if emit_old else None)
        return lax.scan(body, [jnp.full(size, 0.5 + j) for j in range(len(updates))], xs,
                        reverse=reverse)

    _compile(f, xs, device="cpu")
