"""Thread safety: one compiled function called from many threads at once gives every thread
its own correct result (buffers belong to a call, not to the function), compiling and
tracing from several threads at once is safe, and the trace state is per thread."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends.c.native import NativeProgram, launcher_usable
from tinyjax.array import ArrayImpl
from tests.cuda_support import CUDA_PARAM

DEVICES = ["cpu", "interp", CUDA_PARAM]


def same_result(device: str, a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` is the result ``b`` again: the same bits on the CPU (its determinism
    guarantee); on CUDA, which promises no bits run to run, equal to rounding."""
    if device == "cuda":
        return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6)
    return np.array_equal(a, b)


def run_threads(n: int, work) -> None:
    """Run ``work(i)`` in ``n`` threads started together; re-raise the first failure."""
    errors: list = []
    barrier = threading.Barrier(n)

    def target(i):
        try:
            barrier.wait()
            work(i)
        except BaseException as e:  # noqa: BLE001 - reported in the main thread
            errors.append(e)
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def mlp_block(x, w):
    """A 128x256 tanh/exp/matmul program: large enough that the launcher releases the GIL."""
    h = jnp.tanh(x @ w)
    return jnp.exp(-h * h) @ w.T + x


def mlp_block_reference(x, w):
    h = np.tanh(x @ w)
    return np.exp(-h * h) @ w.T + x


def test_the_threaded_program_runs_without_the_gil_on_the_c_device():
    """The program of the 8-thread test is large enough that its C calls release the GIL
    (so the threads really run it at the same time); a tiny program keeps the GIL."""
    def program_of(f, *args):
        f(*args)
        (compiled,) = f.cache._entries.values()
        return compiled.executable._run
    w = np.ones((256, 256), np.float32)
    big = program_of(jax.jit(mlp_block, device="cpu"), np.ones((128, 256), np.float32), w)
    assert isinstance(big, NativeProgram) and big.releases_gil
    if launcher_usable():
        small = program_of(jax.jit(lambda x: x + 1, device="cpu"), np.ones(3, np.float32))
        assert isinstance(small, NativeProgram) and not small.releases_gil


@pytest.mark.parametrize("device", DEVICES)
def test_one_jitted_function_from_8_threads(device):
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((256, 256)) / 16).astype(np.float32)
    xs = [rng.standard_normal((128, 256)).astype(np.float32) for _ in range(8)]
    f = jax.jit(mlp_block, device=device)
    calls = 200 if device != "interp" else 2  # (the interpreter: numpy, slow)
    # the same program run alone: every concurrent call must give these bits exactly (CPU)
    alone = [np.asarray(f(x, w)) for x in xs]
    for x, r in zip(xs, alone):
        np.testing.assert_allclose(r, mlp_block_reference(x, w), rtol=2e-4, atol=2e-4)
    wrong = [0] * 8

    def work(i):
        x, ww = jax.device_put(xs[i], device), jax.device_put(w, device)
        for _ in range(calls):
            if not same_result(device, np.asarray(f(x, ww)), alone[i]):
                wrong[i] += 1
    run_threads(8, work)
    assert wrong == [0] * 8


@pytest.mark.parametrize("device", DEVICES)
def test_first_calls_from_threads_compile_once_correctly(device):
    """Eight threads call a fresh jitted function at the same moment (each traces and
    compiles, or waits for the compile): every result is right."""
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((64, 33)).astype(np.float32) for _ in range(8)]
    f = jax.jit(lambda x: jax.nn.softmax(jnp.sin(x) * 3.0, axis=-1).sum(0), device=device)
    results = [None] * 8
    run_threads(8, lambda i: results.__setitem__(i, np.asarray(f(xs[i]))))
    for x, r in zip(xs, results):
        e = np.exp(np.sin(x) * 3.0 - np.max(np.sin(x) * 3.0, -1, keepdims=True))
        np.testing.assert_allclose(r, (e / e.sum(-1, keepdims=True)).sum(0), rtol=1e-5)


def test_tracing_in_one_thread_leaves_eager_code_in_another_alone():
    """The current trace is per thread: while threads trace (jit, grad, vmap), another
    runs eager operations that stay eager and correct."""
    rng = np.random.default_rng(2)
    stop = threading.Event()
    eager_errors: list = []

    def eager_loop():
        a = jnp.asarray(rng.standard_normal((5,)).astype(np.float32))
        expected = np.asarray(a) * 2 + 1
        while not stop.is_set():
            r = a * 2 + 1
            if type(r) is not ArrayImpl or not np.array_equal(np.asarray(r), expected):
                eager_errors.append(r)

    def trace_work(i):
        for j in range(15):
            f = jax.jit(jax.grad(lambda x: jnp.sum(jnp.sin(x * (i + 1)) ** 2)))
            x = jnp.full((3 + j % 4,), 0.1 * i, jnp.float32)
            g = np.asarray(f(x))
            xv = np.asarray(x, np.float64) * (i + 1)
            np.testing.assert_allclose(g, 2 * np.sin(xv) * np.cos(xv) * (i + 1), rtol=1e-4,
                                       atol=1e-6)
            v = jax.vmap(lambda r: r @ r)(jnp.ones((4, 3)) * i)
            np.testing.assert_allclose(np.asarray(v), np.full(4, 3.0 * i * i))

    t = threading.Thread(target=eager_loop)
    t.start()
    try:
        run_threads(4, trace_work)
    finally:
        stop.set()
        t.join()
    assert not eager_errors


@pytest.mark.parametrize("device", DEVICES)
def test_program_with_a_loop_from_threads(device):
    """A compiled program with control flow (a scan) runs its sub-programs per call too."""
    def f(x):
        def step(c, _):
            c = jnp.tanh(c @ c.T @ c * 0.1 + 0.5)
            return c, c.sum()
        return lax.scan(step, x, None, length=5)

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((64, 64)).astype(np.float32) * 0.1 for _ in range(4)]
    g = jax.jit(f, device=device)
    alone = [[np.asarray(o) for o in g(x)] for x in xs]

    def work(i):
        for _ in range(25):
            outs = g(xs[i])
            for o, a in zip(outs, alone[i]):
                assert same_result(device, np.asarray(o), a)
    run_threads(4, work)
