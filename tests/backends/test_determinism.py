"""The same program gives the same bits run to run on the CPU, whichever threads ran its
parts: a product split over K (each thread's copy of the result summed in thread order) and
a long reduction spread over threads (per-block partials combined in block order), alone
and from several threads at once."""
from __future__ import annotations

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tests.test_threads import run_threads


def bits(x) -> bytes:
    return np.asarray(x).tobytes()


def check_same_bits_alone_and_concurrently(f, *args) -> None:
    first = bits(f(*args))
    assert all(bits(f(*args)) == first for _ in range(5))
    differing = []
    run_threads(4, lambda i: differing.extend(
        j for j in range(5) if bits(f(*args)) != first))
    assert not differing


def test_split_k_product():
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((1 << 15, 24)).astype(np.float32))
    b = jnp.asarray(rng.standard_normal((1 << 15, 40)).astype(np.float32))
    f = jax.jit(lambda a, b: a.T @ b)  # a long K, a small result: K split over threads
    assert "TJ_SPLITK" in f.lower(a, b).source()
    np.testing.assert_allclose(np.asarray(f(a, b)),
                               np.asarray(a, np.float64).T @ np.asarray(b, np.float64),
                               rtol=1e-3, atol=1e-2)
    check_same_bits_alone_and_concurrently(f, a, b)


def test_long_reduction_over_threads():
    x = jnp.asarray(np.random.default_rng(1).standard_normal(1 << 21).astype(np.float32))
    f = jax.jit(lambda x: jnp.sum(jnp.tanh(x) * x))
    src = f.lower(x).source()
    assert "_parts[" in src and "parallel for reduction" not in src
    check_same_bits_alone_and_concurrently(f, x)
