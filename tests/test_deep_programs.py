"""Programs of any length: tracing, transforms, lowering, scheduling and rendering walk a
program with explicit stacks, never recursing once per equation.  Each test runs its
program with only a small stack of Python frames to spare (far fewer than the program has
equations), so a recursive walk anywhere fails it with RecursionError."""
from __future__ import annotations

import contextlib
import copy
import inspect
import sys

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends import get_backend
from tinyjax.compiler.codegen import prepare_kernels
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.schedule import schedule

from tests.cuda_support import cuda_source

SPARE_FRAMES = 150  # frames a test may use beyond its caller's: far fewer than its equations


@contextlib.contextmanager
def shallow_stack():
    """Allow only SPARE_FRAMES more Python frames than the caller has."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + SPARE_FRAMES)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def sin_chain(n: int):
    def f(x):
        for _ in range(n):
            x = jnp.sin(x) + 0.001
        return x
    return f


def sin_chain_reference(x: np.ndarray, n: int) -> np.ndarray:
    x = x.astype(np.float32)
    for _ in range(n):
        x = (np.sin(x) + np.float32(0.001)).astype(np.float32)
    return x


def sin_chain_grad_reference(x: np.ndarray, n: int) -> np.ndarray:
    x, g = x.astype(np.float64), np.ones_like(x, np.float64)
    for _ in range(n):
        g = g * np.cos(x)
        x = np.sin(x) + 0.001
    return g


def check_chain(n: int, device: str) -> None:
    f = sin_chain(n)
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    xs = np.stack([x, x * 0.5, -x])
    with shallow_stack():
        y = jax.jit(f, device=device)(x)
        g = jax.jit(jax.grad(lambda x: f(x).sum()), device=device)(x)
        v = jax.jit(jax.vmap(f), device=device)(xs)
    np.testing.assert_allclose(np.asarray(y), sin_chain_reference(x, n), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(g), sin_chain_grad_reference(x, n), rtol=2e-3,
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(v), sin_chain_reference(xs, n), rtol=1e-4, atol=1e-5)


def test_chain_of_2000_ops_under_jit_grad_vmap():
    check_chain(2000, "interp")


def test_the_chain_is_one_fused_kernel_rendered_for_c_and_cuda():
    closed = jax.make_jaxpr(sin_chain(2000))(jnp.ones((4,)))
    with shallow_stack():
        leaves, outs = lower_jaxpr(closed.jaxpr)
        kernels = schedule(leaves, outs).kernels
        gpu_kernels = [copy.copy(k) for k in kernels]
        prepare_kernels(kernels, get_backend("cpu"))  # (the loop IR of the C renderer)
        c_source = get_backend("cpu").render(kernels)
        cuda = cuda_source(gpu_kernels)  # (with the GPU's loop IR)
    assert len(kernels) == 1
    assert c_source.count("sin") >= 2000 and cuda.count("sin") >= 2000


def test_chain_of_pads_and_slices_keeps_index_expressions_bounded():
    """Each pad-then-slice stacks a masked view; the views of one kernel are bounded (the
    source of a deep stack is realized), so expressions stay small and shallow."""
    def f(x):
        for _ in range(300):
            x = jnp.pad(x, 1)[1:-1, 1:-1] * 1.001
        return x
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    with shallow_stack():
        out = jax.jit(f, device="interp")(x)
    np.testing.assert_allclose(np.asarray(out), x * np.float32(1.001) ** 300, rtol=1e-4)


@pytest.mark.slow
def test_chain_of_10000_ops_under_jit_grad_vmap():
    check_chain(10000, "interp")


@pytest.mark.slow
def test_chain_of_10000_ops_compiled_to_c():
    """One fused kernel of 20,000 operations through the C compiler."""
    f, x = sin_chain(10000), np.linspace(-1, 1, 4, dtype=np.float32)
    with shallow_stack():
        y = jax.jit(f, device="cpu")(x)
    np.testing.assert_allclose(np.asarray(y), sin_chain_reference(x, 10000), rtol=1e-4,
                               atol=1e-5)
