"""The special matrices of ``tinyjax.scipy.linalg`` (SciPy's constructors, as JAX has them):
built from vectors (block_diag, toeplitz, hankel, circulant, companion, fiedler,
fiedler_companion, leslie, convolution_matrix; leading dimensions batch) or from an order
``n`` (hilbert, invhilbert, pascal, invpascal, helmert, hadamard, dft)."""
from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.numpy._util import check_arraylike, promote_dtypes, promote_dtypes_inexact
from tinyjax.scipy.special import comb

__all__ = ["block_diag", "circulant", "companion", "convolution_matrix", "dft", "fiedler",
           "fiedler_companion", "hadamard", "hankel", "helmert", "hilbert", "invhilbert",
           "invpascal", "leslie", "pascal", "toeplitz"]

def block_diag(*arrs: Any) -> Any:
    """The block-diagonal matrix with the (at most 2-D) ``arrs`` on its diagonal."""
    if not arrs:
        arrs = (jnp.zeros((1, 0)),)
    check_arraylike("block_diag", *arrs)
    arrs = promote_dtypes(*[jnp.asarray(a) for a in arrs])
    bad = [i for i, a in enumerate(arrs) if get_aval(a).ndim > 2]
    if bad:
        raise ValueError("Arguments to jax.scipy.linalg.block_diag must have at most 2 "
                         f"dimensions, got {arrs[bad[0]]} at argument {bad[0]}.")
    blocks = [jnp.atleast_2d(a) for a in arrs]
    total = sum(get_aval(b).shape[1] for b in blocks)
    rows, col = [], 0
    for b in blocks:
        cols = get_aval(b).shape[1]
        rows.append(jnp.pad(b, ((0, 0), (col, total - cols - col))))
        col += cols
    return jnp.concatenate(rows, axis=0)


def toeplitz(c: Any, r: Any = None) -> Any:
    """The Toeplitz matrix with first column ``c`` and first row ``r`` (``conj(c)`` by
    default; ``r[0]`` is ignored); leading dimensions batch."""
    check_arraylike("toeplitz", c, *(() if r is None else (r,)))
    c = jnp.atleast_1d(jnp.asarray(c))
    r = jnp.conjugate(c) if r is None else jnp.atleast_1d(jnp.asarray(r))
    return jnp.vectorize(_toeplitz, signature="(m),(n)->(m,n)")(c, r)


def _toeplitz(c: Any, r: Any) -> Any:
    m, n = get_aval(c).shape[0], get_aval(r).shape[0]
    if m == 0 or n == 0:
        return jnp.zeros((m, n), dtype=jnp.promote_types(get_aval(c).dtype,
                                                          get_aval(r).dtype))
    values = jnp.concatenate([c[::-1], r[1:]])
    index = (m - 1) - np.arange(m)[:, None] + np.arange(n)[None, :]
    return values[index]


def hankel(c: Any, r: Any = None) -> Any:
    """The Hankel matrix with first column ``c`` and last row ``r`` (zeros by default;
    ``r[0]`` is ignored); leading dimensions batch."""
    check_arraylike("hankel", c, *(() if r is None else (r,)))
    c = jnp.asarray(c)
    r = jnp.zeros_like(c) if r is None else jnp.asarray(r)
    if c.ndim == 0:
        raise ValueError("hankel: c must be at least 1-dimensional, got a scalar.")
    if r.ndim == 0:
        raise ValueError("hankel: r must be at least 1-dimensional, got a scalar.")
    return jnp.vectorize(_hankel, signature="(m),(n)->(m,n)")(c, r)


def _hankel(c: Any, r: Any) -> Any:
    m, n = get_aval(c).shape[0], get_aval(r).shape[0]
    if m == 0 or n == 0:
        return jnp.zeros((m, n), dtype=jnp.result_type(c, r))
    values = jnp.concatenate([c, r[1:]])
    return values[np.arange(m)[:, None] + np.arange(n)[None, :]]


def circulant(c: Any) -> Any:
    """The circulant matrix whose first column is ``c``; leading dimensions batch."""
    check_arraylike("circulant", c)
    c = jnp.atleast_1d(jnp.asarray(c))
    n = get_aval(c).shape[-1]
    index = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n
    return jnp.vectorize(lambda v: v[index], signature="(n)->(n,n)")(c)


def companion(a: Any) -> Any:
    """The companion matrix of the polynomial with coefficients ``a`` (highest degree
    first); leading dimensions batch."""
    check_arraylike("companion", a)
    a = jnp.atleast_1d(jnp.asarray(a))
    n = get_aval(a).shape[-1]
    if n < 2:
        raise ValueError("The length of `a` along the last axis must be at least 2.")
    (a,) = promote_dtypes_inexact(a)

    def one(v):
        first_row = -v[1:] / v[0]
        return jnp.concatenate([first_row[None, :], jnp.eye(n - 2, n - 1, dtype=v.dtype)],
                               axis=0)
    return jnp.vectorize(one, signature="(n)->(m,k)")(a)


def hilbert(n: int) -> Any:
    """The Hilbert matrix ``1 / (i + j + 1)`` of order ``n``."""
    i = lax.iota(dtypes.default_float_dtype(), int(n))
    return 1.0 / (i[:, None] + i[None, :] + 1)


def _order(name: str, n: Any) -> int:
    try:
        return operator.index(n)
    except TypeError:
        raise TypeError(f"{name}: n must be a static integer, got {n!r}") from None


def fiedler(a: Any) -> Any:
    """The symmetric Fiedler matrix ``|a_i - a_j|``; leading dimensions batch."""
    check_arraylike("fiedler", a)
    a = jnp.atleast_1d(jnp.asarray(a))
    return jnp.abs(a[..., :, None] - a[..., None, :])


def fiedler_companion(a: Any) -> Any:
    """The Fiedler companion matrix of the polynomial with coefficients ``a`` (highest
    degree first): pentadiagonal, with the polynomial's roots as eigenvalues; leading
    dimensions batch."""
    check_arraylike("fiedler_companion", a)
    (a,) = promote_dtypes_inexact(jnp.atleast_1d(jnp.asarray(a)))
    if a.shape[-1] == 0:
        raise ValueError("fiedler_companion requires the last axis of 'a' to have nonzero "
                         f"length, but got an array of shape {a.shape}.")
    return jnp.vectorize(_fiedler_companion, signature="(n)->(m,m)")(a)


def _fiedler_companion(a: Any) -> Any:
    n = a.shape[0] - 1
    if n == 0:
        return jnp.zeros((0, 0), a.dtype)
    a = a / a[0]
    out = jnp.zeros((n, n), a.dtype).at[0, 0].set(-a[1])
    if n == 1:
        return out
    out = out.at[1, 0].set(1)
    even = np.arange(0, n, 2)  # rows 0, 2, ...: -a[i+2] right of the diagonal, 1 beyond
    up = even[even + 1 < n]
    out = out.at[up, up + 1].set(-a[up + 2])
    up2 = even[even + 2 < n]
    out = out.at[up2, up2 + 2].set(1)
    down = even[even >= 2]  # and -a[i+1] left of it
    out = out.at[down, down - 1].set(-a[down + 1])
    odd = np.arange(3, n, 2)  # rows 3, 5, ...: 1 two left of the diagonal
    return out.at[odd, odd - 2].set(1)


def leslie(f: Any, s: Any) -> Any:
    """The Leslie matrix: fecundities ``f`` (length N >= 2) as the first row, survival
    rates ``s`` (length N - 1) on the subdiagonal; leading dimensions batch."""
    check_arraylike("leslie", f, s)
    f, s = jnp.atleast_1d(jnp.asarray(f)), jnp.atleast_1d(jnp.asarray(s))
    if f.shape[-1] < 2:
        raise ValueError("The length of f along the last axis must be at least 2; got "
                         f"shape {f.shape}.")
    if s.shape[-1] != f.shape[-1] - 1:
        raise ValueError("Incorrect lengths for f and s. The length of s along the last "
                         "axis must be one less than the length of f; got f shape "
                         f"{f.shape} and s shape {s.shape}.")
    f, s = promote_dtypes(f, s)
    return jnp.vectorize(lambda f, s: jnp.diag(s, k=-1).at[0].set(f),
                         signature="(n),(m)->(n,n)")(f, s)


def convolution_matrix(a: Any, n: int, mode: str = "full") -> Any:
    """The Toeplitz matrix ``A`` with ``n`` columns such that ``A @ v`` is
    ``jnp.convolve(a, v, mode)``; leading dimensions of ``a`` batch."""
    n = _order("convolution_matrix", n)
    if n <= 0:
        raise ValueError(f"n must be a positive integer; got {n}.")
    check_arraylike("convolution_matrix", a)
    a = jnp.asarray(a)
    if a.ndim == 0:
        raise ValueError("convolution_matrix: a must be at least 1-dimensional, got a "
                         "scalar.")
    m = a.shape[-1]
    if m < 1:
        raise ValueError(f"len(a) must be at least 1; got shape {a.shape}.")
    if mode not in ("full", "valid", "same"):
        raise ValueError(f"mode must be one of 'full', 'valid', 'same'; got {mode!r}.")
    widths = [(0, 0)] * (a.ndim - 1) + [(0, n - 1)]
    column = jnp.pad(a, widths)
    row = jnp.pad(jnp.flip(a, axis=-1), widths)
    length = m + n - 1
    trim = min(n, m) - 1
    first = {"full": 0, "same": trim // 2, "valid": trim}[mode]
    last = {"full": 0, "same": trim - trim // 2, "valid": trim}[mode]
    return toeplitz(column[..., first:length - last],
                    row[..., length - n - first:length - first])


def invhilbert(n: int) -> Any:
    """The inverse of the Hilbert matrix of order ``n``, from its closed form in
    binomial coefficients (in floating point: it overflows for large ``n``)."""
    n = _order("invhilbert", n)
    a = jnp.arange(n, dtype=dtypes.default_float_dtype())
    i, j = a[:, None], a[None, :]
    s = i + j
    return ((-1.0) ** s * (s + 1.0) * comb(n + i, n - j - 1) * comb(n + j, n - i - 1)
            * comb(s, i) ** 2)


def _binomial(n: Any, k: Any) -> Any:
    return jnp.exp(lax.lgamma(n + 1.0) - lax.lgamma(n - k + 1.0) - lax.lgamma(k + 1.0))


def _pascal_kind(kind: str | None) -> str:
    kind = "symmetric" if kind is None else kind
    if kind not in ("symmetric", "lower", "upper"):
        raise ValueError(f"Expected kind to be one of: ['symmetric', 'lower', 'upper']; "
                         f"got {kind}")
    return kind


def pascal(n: int, kind: str | None = None) -> Any:
    """The Pascal matrix of order ``n`` (``kind``: ``'symmetric'`` by default,
    ``'lower'`` or ``'upper'``), its binomial coefficients from ``lgamma`` in float32
    (JAX's approximation)."""
    kind = _pascal_kind(kind)
    a = jnp.arange(_order("pascal", n), dtype=np.float32)
    lower = _binomial(a[:, None], a[None, :])
    if kind == "lower":
        return lower
    return lower.T if kind == "upper" else jnp.dot(lower, lower.T)


def invpascal(n: int, kind: str | None = None) -> Any:
    """The inverse of :func:`pascal`: ``(-1)^(i-j) C(i, j)`` below the diagonal
    (``'lower'``), its transpose (``'upper'``), their product ``U^-1 L^-1``
    (``'symmetric'``)."""
    kind = _pascal_kind(kind)
    a = jnp.arange(_order("invpascal", n), dtype=dtypes.default_float_dtype())
    i, j = a[:, None], a[None, :]
    lower = (-1.0) ** (i - j) * _binomial(i, j)
    if kind == "lower":
        return lower
    return lower.T if kind == "upper" else jnp.dot(lower.T, lower)


def helmert(n: int, full: bool = False) -> Any:
    """The Helmert matrix of order ``n``: its ``n - 1`` orthonormal contrasts, below
    the row ``1 / sqrt(n)`` if ``full``."""
    n = _order("helmert", n)
    if n < 1:
        raise ValueError(f"n must be a positive integer; got {n}.")
    k = jnp.arange(1, n, dtype=dtypes.default_float_dtype())[:, None]
    j = np.arange(n)[None, :]
    scale = 1.0 / jnp.sqrt(k * (k + 1))
    out = jnp.where(j < k, scale, jnp.where(j == k, -k * scale, 0.0))
    if full:
        out = jnp.concatenate([jnp.full((1, n), 1.0 / np.sqrt(n), out.dtype), out])
    return out


def hadamard(n: int, dtype: Any = int) -> Any:
    """The Hadamard matrix of order ``n`` (a power of 2), Sylvester's construction."""
    n = _order("hadamard", n)
    if n < 1 or not math.log2(n).is_integer():
        raise ValueError(f"n must be a positive power of 2; got {n}.")
    out = jnp.ones((1, 1), dtype=dtype)
    for _ in range(int(math.log2(n))):
        out = jnp.block([[out, out], [out, -out]])
    return out


def dft(n: int, scale: str | None = None, *, dtype: Any = None) -> Any:
    """The discrete Fourier transform matrix ``exp(-2 pi i j k / n)``, unscaled or
    divided by ``sqrt(n)`` (``scale='sqrtn'``) or ``n`` (``scale='n'``)."""
    n = _order("dft", n)
    if scale is not None and scale not in ("sqrtn", "n"):
        raise ValueError(f"scale must be None, 'sqrtn', or 'n'; got {scale!r}.")
    dtype = dtypes.default_complex_dtype() if dtype is None else \
        dtypes.canonicalize_dtype(dtype)
    if not dtypes.is_complex(dtype):
        raise ValueError(f"dtype must be a complex floating-point type; got {dtype}.")
    a = jnp.arange(n, dtype=dtype)
    out = jnp.exp(-2j * np.pi * a[:, None] * a[None, :] / n)
    if scale == "sqrtn":
        return out / np.sqrt(n)
    return out / n if scale == "n" else out
