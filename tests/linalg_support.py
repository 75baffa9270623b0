"""Helpers shared by the linear-algebra and FFT tests: the dtypes they sweep, random
(complex) arrays and Hermitian positive-definite stacks, tolerances per dtype, and x64
switched on for the 64-bit dtypes."""
from __future__ import annotations

import numpy as np

from tinyjax.config import config

__all__ = ["DTYPES", "TOL", "rand", "hermitian_pd", "close", "x64_for"]

DTYPES = ["float32", "float64", "complex64", "complex128"]
TOL = {"float32": 2e-4, "complex64": 2e-4, "float64": 1e-9, "complex128": 1e-9}


def rand(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Standard normal values of ``dtype`` (complex: normal real and imaginary parts)."""
    x = rng.standard_normal(shape)
    if "complex" in str(dtype):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def hermitian_pd(rng: np.random.Generator, batch, n: int, dtype) -> np.ndarray:
    """A stack (``batch``) of well-conditioned Hermitian positive-definite n x n matrices."""
    a = rand(rng, tuple(batch) + (n, n), dtype)
    return (a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)).astype(dtype)


def close(actual, expected, dtype, scale: float = 1.0) -> None:
    """``actual`` equals ``expected`` (broadcast) within ``dtype``'s tolerance x ``scale``."""
    tol = TOL[str(dtype)] * scale
    actual = np.asarray(actual)
    np.testing.assert_allclose(actual, np.broadcast_to(expected, actual.shape), rtol=tol,
                               atol=tol)


def x64_for(dtype):
    """A context with ``jax_enable_x64`` on exactly for the 64-bit ``dtype``s."""
    return config.override(jax_enable_x64=str(dtype) in ("float64", "complex128"))
