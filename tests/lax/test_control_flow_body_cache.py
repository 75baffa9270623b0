"""Control-flow bodies traced once per function object and argument types (as JAX's
cache of traced bodies; Flax's ``nnx.scan`` counts traces), never with a stale closure."""
import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


class Counted:
    """A body function that counts how often its Python runs."""

    def __init__(self, fun):
        self.fun, self.calls = fun, 0

    def __call__(self, *args):
        self.calls += 1
        return self.fun(*args)


def _loops(body):
    """Each control-flow primitive calling ``body`` (x -> x of the same type) on ``x``,
    with the same function objects at each call."""
    def scan_body(c, _):
        return body(c), None

    def while_cond(c):
        return c[0] < 3

    def while_body(c):
        return c[0] + 1, body(c[1])

    def fori_body(i, c):
        return body(c)
    return {
        "scan": lambda x: lax.scan(scan_body, x, None, length=3)[0],
        "while_loop": lambda x: lax.while_loop(while_cond, while_body, (0, x))[1],
        "fori_loop": lambda x: lax.fori_loop(0, 3, fori_body, x),
        "cond": lambda x: lax.cond(x.sum() > 0, body, body, x),
        "switch": lambda x: lax.switch(1, [body, body], x),
    }


def _expected(name, x):
    return x * 2.0 ** (1 if name in ("cond", "switch") else 3)


def test_the_same_function_is_traced_once_eagerly_and_under_one_jit():
    x = np.arange(3.0, dtype=np.float32)
    for name in _loops(None):
        body = Counted(lambda c: c * 2.0)
        loop = _loops(body)[name]
        for _ in range(2):
            np.testing.assert_allclose(np.asarray(loop(jnp.asarray(x))), _expected(name, x))
        assert body.calls == 1, name
        # other values of the same types find the trace too; other types trace again
        np.testing.assert_allclose(np.asarray(loop(jnp.asarray(x + 1))),
                                   _expected(name, x + 1))
        assert body.calls == 1, name
        np.testing.assert_allclose(np.asarray(loop(jnp.ones((2, 2)))),
                                   _expected(name, np.ones((2, 2))))
        assert body.calls == 2, name

        body2 = Counted(lambda c: c * 2.0)
        loop2 = _loops(body2)[name]
        twice = jax.jit(lambda x: (loop2(x), loop2(x + 1)))
        a, b = twice(x)
        np.testing.assert_allclose(np.asarray(a), _expected(name, x))
        np.testing.assert_allclose(np.asarray(b), _expected(name, x + 1))
        assert body2.calls == 1, name


def test_a_body_closing_over_a_tracer_is_traced_for_each_trace():
    # the body reads a value of the enclosing jit, set anew by each jitted function
    scale = {}
    body = Counted(lambda c: c * scale["s"])
    x = np.arange(3.0, dtype=np.float32)
    for name in _loops(None):
        loop = _loops(body)[name]

        def times(factor, loop=loop):
            def run(x, s):
                scale["s"] = s * factor
                return loop(x)
            return jax.jit(run)
        for factor in (1.0, 3.0):
            got = times(factor)(x, 2.0)
            want = _expected(name, x) * (factor ** (1 if name in ("cond", "switch") else 3))
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
        # and differentiated with respect to the closed-over value (s ** n summed)
        def total(s):
            scale["s"] = s
            return loop(jnp.ones(3)).sum()
        n = 1 if name in ("cond", "switch") else 3
        for s in (2.0, 0.5):
            _, derivative = jax.jvp(total, (s,), (1.0,))
            np.testing.assert_allclose(float(derivative), 3 * n * s ** (n - 1), rtol=1e-6)
