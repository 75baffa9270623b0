"""Random vectors and matrices: ``multivariate_normal`` (through a Cholesky, SVD or
eigendecomposition factor of the covariance) and ``orthogonal`` (Haar-distributed,
through a QR factorisation), with JAX's algorithms on ``jnp.linalg``."""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax.core import get_aval
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._keys import key_data_of
from tinyjax.random._normal import normal_draws
from tinyjax.random._util import canonical_shape, check_shape, convert, float_dtype

__all__ = ["multivariate_normal", "orthogonal"]


@compiled_when_large(("shape", "dtype", "method"), ("mean", "cov"))
def multivariate_normal(key: Any, mean: Any, cov: Any, shape: Sequence[int] | None = None,
                        dtype: Any = None, method: str = "cholesky") -> Any:
    """Multivariate normal samples ``mean + factor @ z`` with ``factor factor^T = cov``:
    the Cholesky factor, or ``u sqrt(s)`` of the SVD (``method='svd'``) or ``v sqrt(w)``
    of the eigendecomposition (``method='eigh'``), which also serve a positive
    semi-definite ``cov``."""
    data, _ = key_data_of(key, "multivariate_normal")
    if method not in {"svd", "eigh", "cholesky"}:
        raise ValueError("method must be one of {'svd', 'eigh', 'cholesky'}")
    dtype = float_dtype(dtype, "multivariate_normal")
    mean, cov = convert(mean, dtype), convert(cov, dtype)
    mshape, cshape = get_aval(mean).shape, get_aval(cov).shape
    if not len(mshape) >= 1:
        raise ValueError(f"multivariate_normal requires mean.ndim >= 1, got mean.ndim == "
                         f"{len(mshape)}")
    if not len(cshape) >= 2:
        raise ValueError(f"multivariate_normal requires cov.ndim >= 2, got cov.ndim == "
                         f"{len(cshape)}")
    n = mshape[-1]
    if cshape[-2:] != (n, n):
        raise ValueError(f"multivariate_normal requires cov.shape == (..., n, n) for "
                         f"n={n}, but got cov.shape == {cshape}.")
    if shape is None:
        shape = np.broadcast_shapes(mshape[:-1], cshape[:-2])
    else:
        shape = canonical_shape(shape)
        check_shape("normal", shape, mshape[:-1], cshape[:-2])
    if method == "svd":
        u, s, _ = jnp.linalg.svd(cov)
        factor = u * jnp.sqrt(s[..., None, :])
    elif method == "eigh":
        w, v = jnp.linalg.eigh(cov)
        factor = v * jnp.sqrt(w[..., None, :])
    else:
        factor = jnp.linalg.cholesky(cov)
    z = normal_draws(data, tuple(shape) + (n,), dtype)
    return mean + jnp.einsum("...ij,...j->...i", factor, z)


@compiled_when_large(("n", "shape", "dtype", "m"))
def orthogonal(key: Any, n: int, shape: Sequence[int] = (), dtype: Any = None,
               m: int | None = None) -> Any:
    """Uniformly (Haar) distributed ``n x m`` matrices with orthonormal columns (or rows
    when ``n < m``): the Q factor of a Gaussian matrix, its columns' signs set so that R
    has a positive diagonal (JAX's algorithm)."""
    data, _ = key_data_of(key, "orthogonal")
    dtype = float_dtype(dtype, "orthogonal")
    shape = canonical_shape(shape)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    z = normal_draws(data, (*shape, max(n, m), min(n, m)), dtype)
    q, r = jnp.linalg.qr(z)
    q = q * jnp.expand_dims(jnp.sign(jnp.linalg.diagonal(r)), -2)
    return jnp.matrix_transpose(q) if n < m else q
