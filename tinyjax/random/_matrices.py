"""Random vectors and matrices: ``multivariate_normal`` (through a Cholesky factor)
and ``orthogonal`` (Haar-distributed, through a QR factorisation)."""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from tinyjax import lax
from tinyjax.core import get_aval
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._keys import key_data_of
from tinyjax.random._normal import normal_draws
from tinyjax.random._util import (bcast, broadcast_to_rank, canonical_shape, check_shape, convert,
                                  float_dtype)

__all__ = ["cholesky_lower", "multivariate_normal", "orthogonal", "solve_lower"]


def _matvec(m: Any, v: Any) -> Any:
    """``m @ v`` over leading batch axes: ``[..., n, k] x [..., k] -> [..., n]``."""
    nb = get_aval(m).ndim - 2
    return lax.reduce_sum(lax.mul(m, lax.broadcast_in_dim(
        v, get_aval(m).shape, tuple(range(nb)) + (nb + 1,))), (nb + 1,))


def _column(m: Any, j: int) -> Any:
    return lax.index_in_dim(m, j, get_aval(m).ndim - 1, False)


def _stack_last(cols: list) -> Any:
    shape = get_aval(cols[0]).shape
    nd = len(shape)
    return lax.concatenate([lax.broadcast_in_dim(c, shape + (1,), tuple(range(nd)))
                            for c in cols], nd)


def cholesky_lower(a: Any) -> Any:
    """The lower Cholesky factor of ``[..., n, n]`` symmetric positive definite matrices,
    column by column in lax ops (unrolled over ``n``: for the small matrices of
    covariances; ``scipy.stats`` uses it too)."""
    shape = get_aval(a).shape
    n = shape[-1]
    rows = lax.broadcasted_iota(np.int32, shape[:-1], len(shape) - 2)
    cols: list = []
    for j in range(n):
        c = _column(a, j)
        for ck in cols:
            c = lax.sub(c, lax.mul(ck, bcast(lax.index_in_dim(ck, j, len(shape) - 2, True),
                                              shape[:-1])))
        d = lax.sqrt(lax.index_in_dim(c, j, len(shape) - 2, True))
        c = lax.div(c, bcast(d, shape[:-1]))
        c = lax.select(lax.ge(rows, lax.full(shape[:-1], j, np.int32)), c,
                       lax.full(shape[:-1], 0, get_aval(c).dtype))
        cols.append(c)
    return _stack_last(cols)


def solve_lower(factor: Any, b: Any) -> Any:
    """``y`` with ``factor @ y = b`` for lower-triangular ``[..., n, n]`` factors and
    ``[..., n]`` right-hand sides (forward substitution, unrolled over ``n``)."""
    shape = get_aval(factor).shape
    n, nd = shape[-1], len(shape)
    ys: list = []
    for i in range(n):
        row = lax.index_in_dim(factor, i, nd - 2, False)
        acc = lax.index_in_dim(b, i, nd - 2, False)
        for j, yj in enumerate(ys):
            acc = lax.sub(acc, lax.mul(lax.index_in_dim(row, j, nd - 2, False), yj))
        ys.append(lax.div(acc, lax.index_in_dim(row, i, nd - 2, False)))
    return _stack_last(ys)


@compiled_when_large(("shape", "dtype", "method"), ("mean", "cov"))
def multivariate_normal(key: Any, mean: Any, cov: Any, shape: Sequence[int] | None = None,
                        dtype: Any = None, method: str = "cholesky") -> Any:
    """Multivariate normal samples ``mean + factor @ z`` with ``factor factor^T = cov``
    (Cholesky factor; ``method`` 'svd' and 'eigh' are not available)."""
    data, _ = key_data_of(key, "multivariate_normal")
    if method not in {"svd", "eigh", "cholesky"}:
        raise ValueError("method must be one of {'svd', 'eigh', 'cholesky'}")
    if method != "cholesky":
        raise NotImplementedError(f"multivariate_normal method={method!r}: tinyjax has "
                                  "only 'cholesky'")
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
    factor = cholesky_lower(cov)
    z = normal_draws(data, tuple(shape) + (n,), dtype)
    full = tuple(shape) + (n, n)
    factor = bcast(broadcast_to_rank(factor, len(full)), full)
    out = _matvec(factor, z)
    return lax.add(bcast(broadcast_to_rank(mean, len(shape) + 1), tuple(shape) + (n,)), out)


@compiled_when_large(("n", "shape", "dtype", "m"))
def orthogonal(key: Any, n: int, shape: Sequence[int] = (), dtype: Any = None,
               m: int | None = None) -> Any:
    """Uniformly (Haar) distributed ``n x m`` matrices with orthonormal columns (or rows
    when ``n < m``): the Q factor, with positive diagonal R, of a Gaussian matrix.
    QR by modified Gram-Schmidt in lax ops (JAX's Householder QR with the sign fix
    gives the same factor up to rounding)."""
    data, _ = key_data_of(key, "orthogonal")
    dtype = float_dtype(dtype, "orthogonal")
    shape = canonical_shape(shape)
    n = operator.index(n)
    m = n if m is None else operator.index(m)
    rows, ncols = max(n, m), min(n, m)
    z = normal_draws(data, (*shape, rows, ncols), dtype)
    nd = len(shape) + 2
    qs: list = []
    for j in range(ncols):
        v = _column(z, j)
        for q in qs:
            proj = lax.reduce_sum(lax.mul(q, v), (nd - 2,))
            v = lax.sub(v, lax.mul(q, lax.broadcast_in_dim(proj, get_aval(v).shape,
                                                           tuple(range(nd - 2)))))
        norm = lax.sqrt(lax.reduce_sum(lax.mul(v, v), (nd - 2,)))
        qs.append(lax.div(v, lax.broadcast_in_dim(norm, get_aval(v).shape,
                                                  tuple(range(nd - 2)))))
    q = _stack_last(qs)
    if n < m:
        perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
        q = lax.transpose(q, perm)
    return q

