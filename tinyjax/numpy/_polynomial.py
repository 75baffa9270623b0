"""Polynomials as coefficient arrays, highest power first (numpy's ``poly*`` API)."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.numpy.linalg import eigvals, inv, lstsq
from tinyjax.numpy._creation import arange, asarray, concrete_value, diag, ones, zeros
from tinyjax.numpy._indexing import where
from tinyjax.numpy._linalg import dot, outer
from tinyjax.numpy._misc import convolve
from tinyjax.numpy._reductions import all as _all
from tinyjax.numpy._reductions import argmin, prod
from tinyjax.numpy._shape import atleast_1d, concatenate, roll
from tinyjax.numpy._ufuncs import power, sqrt
from tinyjax.numpy._util import check_arraylike, promote_dtypes, promote_dtypes_inexact

__all__ = ["poly", "polyadd", "polysub", "polymul", "polydiv", "polyder", "polyint",
           "polyval", "polyfit", "roots", "trim_zeros", "vander"]


def _inexact(name: str, *xs: Any) -> list[Any]:
    check_arraylike(name, *xs)
    return promote_dtypes_inexact(*(asarray(x) for x in xs))


def _static_int(x: Any, what: str) -> int:
    return operator.index(concrete_value(x, what))


def polyval(p: Any, x: Any, *, unroll: int = 16) -> Any:
    """The polynomial ``p`` at ``x`` (Horner's rule; ``p`` may carry trailing batch
    axes that broadcast against ``x``)."""
    check_arraylike("polyval", p, x)
    p, x = promote_dtypes(asarray(p), asarray(x))
    shape = np.broadcast_shapes(get_aval(p).shape[1:], get_aval(x).shape)
    y = lax.full(shape, 0, get_aval(x).dtype)
    y, _ = lax.scan(lambda acc, c: (acc * x + c, None), y, p, unroll=unroll)
    return y


def polyadd(a1: Any, a2: Any) -> Any:
    """The sum of two polynomials (the shorter one aligned to the end)."""
    check_arraylike("polyadd", a1, a2)
    a1, a2 = promote_dtypes(asarray(a1), asarray(a2))
    if get_aval(a2).shape[0] > get_aval(a1).shape[0]:
        a1, a2 = a2, a1
    return a1.at[get_aval(a1).shape[0] - get_aval(a2).shape[0]:].add(a2)


def polysub(a1: Any, a2: Any) -> Any:
    """The difference of two polynomials."""
    check_arraylike("polysub", a1, a2)
    a1, a2 = promote_dtypes(asarray(a1), asarray(a2))
    return polyadd(a1, -a2)


def trim_zeros(filt: Any, trim: str = "fb", axis: Any = None) -> Any:
    """``filt`` without its leading (``'f'``) and/or trailing (``'b'``) zeros along
    ``axis`` (all axes by default); needs a concrete ``filt``."""
    check_arraylike("trim_zeros", filt)
    value = np.asarray(concrete_value(asarray(filt), "trim_zeros filt"))
    if value.ndim == 0:
        raise ValueError("trim_zeros: filt must be at least 1-dimensional")
    axes = range(value.ndim) if axis is None else \
        [a % value.ndim for a in ((axis,) if np.ndim(axis) == 0 else axis)]
    index = [slice(None)] * value.ndim
    for ax in axes:
        nz = np.flatnonzero(value.any(axis=tuple(a for a in range(value.ndim) if a != ax)))
        if nz.size == 0:
            index[ax] = slice(0, 0)
            continue
        start = nz[0] if "f" in trim.lower() else 0
        stop = nz[-1] + 1 if "b" in trim.lower() else value.shape[ax]
        index[ax] = slice(int(start), int(stop))
    return asarray(filt)[tuple(index)]


def polymul(a1: Any, a2: Any, *, trim_leading_zeros: bool = False) -> Any:
    """The product of two polynomials (a full convolution)."""
    a1, a2 = (atleast_1d(a) for a in _inexact("polymul", a1, a2))
    if trim_leading_zeros and (get_aval(a1).shape[0] > 1 or get_aval(a2).shape[0] > 1):
        a1, a2 = trim_zeros(a1, trim="f"), trim_zeros(a2, trim="f")
    if get_aval(a1).shape[0] == 0:
        a1 = zeros(1, get_aval(a2).dtype)
    if get_aval(a2).shape[0] == 0:
        a2 = zeros(1, get_aval(a1).dtype)
    return convolve(a1, a2, mode="full")


def polydiv(u: Any, v: Any, *, trim_leading_zeros: bool = False) -> tuple[Any, Any]:
    """``(quotient, remainder)`` of polynomial long division of ``u`` by ``v``."""
    u, v = _inexact("polydiv", u, v)
    m, n = get_aval(u).shape[0] - 1, get_aval(v).shape[0] - 1
    scale = 1.0 / v[0]
    q = zeros(max(m - n + 1, 1), get_aval(u).dtype)
    for k in range(m - n + 1):
        d = scale * u[k]
        q = q.at[k].set(d)
        u = u.at[k:k + n + 1].add(-d * v)
    if trim_leading_zeros:
        tol = np.sqrt(dtypes.finfo(get_aval(u).dtype).eps)
        value = np.asarray(concrete_value(u, "polydiv remainder"))
        big = np.flatnonzero(np.abs(value) > tol)
        u = u[int(big[0]) if big.size else value.shape[0]:]
    return q, u


def polyder(p: Any, m: int = 1) -> Any:
    """The ``m``-th derivative of the polynomial ``p``."""
    m = _static_int(m, "'m' argument of jnp.polyder")
    (p,) = _inexact("polyder", p)
    if m < 0:
        raise ValueError("Order of derivative must be positive")
    if m == 0:
        return p
    n = get_aval(p).shape[0]
    dt = get_aval(p).dtype
    coeff = prod(arange(m, n, dtype=dt)[None] - arange(m, dtype=dt)[:, None], axis=0)
    return p[:-m] * coeff[::-1]


def polyint(p: Any, m: int = 1, k: Any = None) -> Any:
    """The ``m``-th antiderivative of ``p`` with integration constants ``k``."""
    m = _static_int(m, "'m' argument of jnp.polyint")
    p, k = _inexact("polyint", p, 0 if k is None else k)
    if m < 0:
        raise ValueError("Order of integral must be positive (see polyder)")
    k = atleast_1d(k)
    if get_aval(k).shape[0] == 1:
        k = lax.broadcast_in_dim(k[0], (m,), ())
    if get_aval(k).shape != (m,):
        raise ValueError("k must be a scalar or a rank-1 array of length 1 or m.")
    if m == 0:
        return p
    dt = get_aval(p).dtype
    grid = arange(get_aval(p).shape[0] + m, dtype=dt)[None] - arange(m, dtype=dt)[:, None]
    coeff = prod(lax.max(grid, lax.full(get_aval(grid).shape, 1, dt)), axis=0)[::-1]
    return concatenate([p, k]) / coeff


def vander(x: Any, N: int | None = None, increasing: bool = False) -> Any:
    """The Vandermonde matrix of the 1-D ``x``: columns ``x**(N-1), ..., x**0``."""
    check_arraylike("vander", x)
    x = asarray(x)
    if get_aval(x).ndim != 1:
        raise ValueError("x must be a one-dimensional array")
    n = get_aval(x).shape[0] if N is None else _static_int(N, "N argument of jnp.vander")
    if n < 0:
        raise ValueError("N must be nonnegative")
    powers = arange(n, dtype=np.int32)
    if not increasing:
        powers = powers[::-1]
    return power(x[:, None], powers)


def poly(seq_of_zeros: Any) -> Any:
    """The coefficients of the monic polynomial with the given roots (of a square
    matrix: its characteristic polynomial)."""
    (z,) = _inexact("poly", seq_of_zeros)
    z = atleast_1d(z)
    shape = get_aval(z).shape
    if len(shape) == 2 and shape[0] == shape[1] and shape[0] != 0:
        z = eigvals(z)
    if get_aval(z).ndim != 1:
        raise ValueError("input must be 1d or non-empty square 2d array.")
    dt = get_aval(z).dtype
    if get_aval(z).shape[0] == 0:
        return ones((), dt)
    a = ones((1,), dt)
    for k in range(get_aval(z).shape[0]):
        a = convolve(a, lax.concatenate([ones((1,), dt), lax.expand_dims(-z[k], (0,))], 0),
                     mode="full")
    return a


def roots(p: Any, *, strip_zeros: bool = True) -> Any:
    """The roots of the polynomial ``p``: the eigenvalues of its companion matrix
    (complex); leading zeros are stripped (concrete ``p``) or give NaN roots."""
    (p,) = _inexact("roots", p)
    p = atleast_1d(p)
    if get_aval(p).ndim != 1:
        raise ValueError("Input must be a rank-1 array.")
    n = get_aval(p).shape[0]
    if n < 2:
        return eigvals(zeros((0, 0), get_aval(p).dtype))
    is_zero = p == 0
    leading = where(_all(is_zero), n, argmin(is_zero))
    if strip_zeros:
        lead = int(concrete_value(leading, "jnp.roots with strip_zeros=True (pass "
                                  "strip_zeros=False under jit)"))
        return _companion_roots(p[lead:])
    safe = where(leading == n, lax.full((n,), 1, get_aval(p).dtype), p)
    found = _companion_roots(roll(safe, -leading))
    found = lax.sort((found == 0, found), num_keys=1)[1]
    keep = arange(get_aval(found).shape[0]) < get_aval(found).shape[0] - leading
    return where(keep, found, complex(np.nan, np.nan))


def _companion_roots(p: Any) -> Any:
    n = get_aval(p).shape[0]
    if n < 2:
        return eigvals(zeros((0, 0), get_aval(p).dtype))
    companion = diag(ones((n - 2,), get_aval(p).dtype), -1)
    companion = companion.at[0, :].set(-p[1:] / p[0])
    return eigvals(companion)


def polyfit(x: Any, y: Any, deg: int, rcond: float | None = None, full: bool = False,
            w: Any = None, cov: bool | str = False) -> Any:
    """Least-squares polynomial fit of degree ``deg`` (highest power first); ``full``
    adds ``(residuals, rank, singular_values, rcond)``, ``cov`` the covariance."""
    check_arraylike("polyfit", x, y, *([] if w is None else [w]))
    x, y = _inexact("polyfit", x, y)
    deg = _static_int(deg, "deg must be int")
    order = deg + 1
    if deg < 0:
        raise ValueError("expected deg >= 0")
    if get_aval(x).ndim != 1:
        raise TypeError("expected 1D vector for x")
    if get_aval(x).shape[0] == 0:
        raise TypeError("expected non-empty vector for x")
    if get_aval(y).ndim not in (1, 2):
        raise TypeError("expected 1D or 2D array for y")
    if get_aval(x).shape[0] != get_aval(y).shape[0]:
        raise TypeError("expected x and y to have same length")
    if rcond is None:
        rcond = get_aval(x).shape[0] * float(dtypes.finfo(get_aval(x).dtype).eps)
    lhs, rhs = vander(x, order), y
    if w is not None:
        (w,) = _inexact("polyfit", w)
        if get_aval(w).ndim != 1:
            raise TypeError("expected a 1-d array for weights")
        if get_aval(w).shape[0] != get_aval(y).shape[0]:
            raise TypeError("expected w and y to have the same length")
        lhs = lhs * w[:, None]
        rhs = rhs * (w[:, None] if get_aval(rhs).ndim == 2 else w)
    scale = sqrt((lhs * lhs).sum(axis=0))
    lhs = lhs / scale[None, :]
    c, resids, rank, s = lstsq(lhs, rhs, rcond)
    c = (c.T / scale[None, :]).T if get_aval(c).ndim > 1 else c / scale
    if full:
        return c, resids, rank, s, asarray(rcond)
    if cov:
        base = inv(dot(lhs.T, lhs)) / outer(scale, scale)
        if cov == "unscaled":
            fac = asarray(1.0)
        else:
            if get_aval(x).shape[0] <= order:
                raise ValueError("the number of data points must exceed order to scale "
                                 "the covariance matrix")
            fac = resids / (get_aval(x).shape[0] - order)
        if get_aval(y).ndim == 1:
            return c, base * atleast_1d(fac)[None]
        return c, base[:, :, None] * atleast_1d(fac)[None, None, :]
    return c
