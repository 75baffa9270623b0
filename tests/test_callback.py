"""Host callbacks: pure_callback, io_callback, debug.callback -- eagerly, under jit (a host
step of the compiled program), in loops and branches, under vmap and grad."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.array import ArrayImpl
from tinyjax.compiler.executable import Executable
from tinyjax.compiler.steps import Call
from tinyjax.experimental import io_callback
from tests.cuda_support import CUDA_PARAM

F32 = jax.ShapeDtypeStruct((3,), np.float32)


def host_sin(x):
    assert type(x) is ArrayImpl  # callbacks see concrete Arrays
    return np.sin(np.asarray(x))


@pytest.mark.parametrize("wrap", [lambda f: f, jax.jit], ids=["eager", "jit"])
def test_pure_callback_values(wrap):
    x = np.array([0.1, 0.2, 0.3], np.float32)
    out = wrap(lambda x: jax.pure_callback(host_sin, F32, x) * 2)(x)
    np.testing.assert_allclose(np.asarray(out), 2 * np.sin(x), rtol=1e-6)


def test_callback_is_a_host_step_of_the_compiled_program():
    f = jax.jit(lambda x: jnp.cos(jax.pure_callback(host_sin, F32, x + 1)))
    exe = f.lower(jnp.ones(3)).compile().executable
    assert isinstance(exe, Executable)
    assert [s.name for s in exe.program.steps if isinstance(s, Call)] == ["pure_callback"]
    np.testing.assert_allclose(np.asarray(f(jnp.ones(3))), np.cos(np.sin(2.0)) * np.ones(3),
                               rtol=1e-6)


class _HostError(Exception):
    pass


def _failing(x):
    raise _HostError("the host says no")


@pytest.mark.parametrize("wrap", [lambda f: f, jax.jit], ids=["eager", "jit"])
@pytest.mark.parametrize("call", [
    lambda x: jax.pure_callback(_failing, F32, x),
    lambda x: io_callback(_failing, F32, x),
    lambda x: jax.debug.callback(_failing, x),
], ids=["pure", "io", "debug"])
def test_an_exception_in_the_callback_is_a_runtime_error_naming_it(wrap, call):
    # as JAX: a JaxRuntimeError whose message holds the callback's traceback
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match="(?s)CpuCallback error calling callback.*_HostError: the host "
                             "says no") as info:
        jax.block_until_ready(wrap(call)(np.ones(3, np.float32)))
    assert isinstance(info.value.__cause__, _HostError)


def test_results_pytree_and_checks():
    def host(x, y):
        return {"s": np.asarray(x) + np.asarray(y), "p": (np.asarray(x) * np.asarray(y))}
    shapes = {"s": jax.ShapeDtypeStruct((), np.float32),
              "p": jax.ShapeDtypeStruct((), np.float32)}
    out = jax.jit(lambda a, b: jax.pure_callback(host, shapes, a, y=b))(2.0, 3.0)
    assert float(out["s"]) == 5.0 and float(out["p"]) == 6.0
    with pytest.raises(RuntimeError, match="Incorrect output shape"):
        jax.pure_callback(lambda x: np.ones(4, np.float32), F32, jnp.ones(3))
    # a result of another dtype is cast to the declared one
    out = jax.pure_callback(lambda x: np.ones(3, np.float64), F32, jnp.ones(3))
    assert out.dtype == np.float32


def test_unused_pure_callback_is_dropped_io_callback_is_not():
    calls = []

    def record(x):
        calls.append(float(np.asarray(x)))
        return np.asarray(x)

    s = jax.ShapeDtypeStruct((), np.float32)
    jax.jit(lambda x: (jax.pure_callback(record, s, x), x)[1])(1.0)
    assert calls == []
    jax.jit(lambda x: (io_callback(record, s, x), x)[1])(2.0)
    assert calls == [2.0]


def test_io_callback_in_a_loop_runs_in_order():
    seen = []

    def log(i, c):
        seen.append((int(np.asarray(i)), float(np.asarray(c))))
        return np.asarray(c, np.float32)

    def body(i, c):
        c = io_callback(log, jax.ShapeDtypeStruct((), np.float32), i, c, ordered=True)
        return c * 2

    out = jax.jit(lambda c: lax.fori_loop(0, 3, body, c))(1.0)
    assert float(out) == 8.0 and seen == [(0, 1.0), (1, 2.0), (2, 4.0)]


@pytest.mark.parametrize("method", ["sequential", "sequential_unrolled", "expand_dims",
                                    "broadcast_all"])
def test_vmap_methods_agree_with_a_loop(method):
    shapes_seen = []

    def host(x, y):
        shapes_seen.append((np.shape(x), np.shape(y)))
        return np.asarray(x) * np.asarray(y)

    def f(x, y):
        return jax.pure_callback(host, jax.ShapeDtypeStruct(x.shape, np.float32), x, y,
                                 vmap_method=method)

    xs = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([10.0, 20.0], np.float32)
    out = jax.jit(jax.vmap(f, in_axes=(0, None)))(xs, y)
    np.testing.assert_allclose(np.asarray(out), xs * y)
    expected = {"sequential": [((2,), (2,))] * 3, "sequential_unrolled": [((2,), (2,))] * 3,
                "expand_dims": [((3, 2), (1, 2))], "broadcast_all": [((3, 2), (3, 2))]}
    assert shapes_seen == expected[method]


def test_transform_errors():
    s = jax.ShapeDtypeStruct((), np.float32)
    with pytest.raises(NotImplementedError, match="vmap_method=None"):
        jax.vmap(lambda x: jax.pure_callback(host_sin, s, x))(jnp.ones(3))
    with pytest.raises(ValueError, match="do not support JVP"):
        jax.grad(lambda x: jax.pure_callback(host_sin, s, x))(1.0)
    with pytest.raises(ValueError, match="IO callbacks do not support JVP"):
        jax.grad(lambda x: io_callback(host_sin, s, x))(1.0)
    with pytest.raises(ValueError, match="ordered IO callback"):
        jax.vmap(lambda x: io_callback(host_sin, s, x, ordered=True))(jnp.ones(3))
    with pytest.raises(ValueError, match="vmap_method"):
        jax.pure_callback(host_sin, s, 1.0, vmap_method="bogus")


def test_pure_callback_with_custom_jvp_differentiates():
    @jax.custom_jvp
    def f(x):
        return jax.pure_callback(lambda v: np.sin(np.asarray(v)),
                                 jax.ShapeDtypeStruct((), np.float32), x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), jnp.cos(x) * t

    g = jax.jit(jax.grad(f))(0.5)
    np.testing.assert_allclose(float(g), np.cos(0.5), rtol=1e-6)


def test_debug_callback_under_transforms():
    seen = []
    log = lambda x: seen.append(np.asarray(x).tolist())  # noqa: E731

    def f(x):
        jax.debug.callback(log, x)
        return x * x

    jax.jit(jax.grad(f))(3.0)
    jax.vmap(f)(jnp.arange(3.0))
    jax.jit(jax.vmap(jax.grad(f)))(jnp.array([5.0, 6.0]))
    assert seen == [3.0, 0.0, 1.0, 2.0, 5.0, 6.0]
    assert jax.debug.callback(log, 1.0) is None


def test_callbacks_in_branches_and_while():
    seen = []

    def f(x):
        def loud(v):
            jax.debug.callback(lambda a: seen.append(("loud", float(np.asarray(a)))), v)
            return v

        y = lax.cond(x > 0, loud, lambda v: -v, x)

        def body(c):
            jax.debug.callback(lambda a: seen.append(("w", int(np.asarray(a)))), c)
            return c + 1
        return y, lax.while_loop(lambda c: c < 2, body, 0)

    jax.jit(f)(2.0)
    jax.jit(f)(-1.0)
    assert seen == [("loud", 2.0), ("w", 0), ("w", 1), ("w", 0), ("w", 1)]


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_callback_step_in_a_loop_on_every_device(device):
    """The callback is a step of the device's program: operands brought to the host, its
    results written back into the program's buffers, once per iteration."""
    seen = []

    def double(x):
        seen.append(np.asarray(x).copy())
        return np.asarray(x) * 2

    def f(x):
        return lax.fori_loop(0, 3, lambda i, x: jax.pure_callback(double, F32, x + 1.0), x)

    x = np.array([0.5, 1.0, -2.0], np.float32)
    got = jax.jit(f, device=device)(jax.device_put(x, device))
    want = x
    for i in range(3):
        np.testing.assert_allclose(seen[i], want + 1, rtol=1e-6)
        want = (want + 1) * 2
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
