"""Statistics and calculus helpers: ``cov``/``corrcoef``, ``gradient``, ``trapezoid``,
``unwrap``, ``histogram2d``/``histogramdd``, the NaN-ignoring ``nanargmax``/``nanargmin``/
``nancumsum``/``nancumprod``, ``cumulative_prod``, ``geomspace`` and the bit packing
``packbits``/``unpackbits``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.numpy._creation import arange, array, asarray, full, linspace
from tinyjax.numpy._indexing import where
from tinyjax.numpy._linalg import dot
from tinyjax.numpy._misc import diff
from tinyjax.numpy._reductions import _reduction_axes, argmax, argmin, cumprod, cumsum
from tinyjax.numpy._reductions import all as _all
from tinyjax.numpy._reductions import sum as _sum
from tinyjax.numpy._shape import atleast_2d, concatenate, moveaxis, ravel, reshape
from tinyjax.numpy._sorting import bincount, histogram_bin_edges, searchsorted
from tinyjax.numpy._ufuncs import (absolute, bitwise_and, isnan, left_shift, log10, mod,
                                   power, right_shift, sign, sqrt)
from tinyjax.numpy._util import check_arraylike, promote_dtypes, promote_dtypes_inexact

__all__ = ["cov", "corrcoef", "gradient", "trapezoid", "unwrap", "histogram2d",
           "histogramdd", "nanargmax", "nanargmin", "nancumsum", "nancumprod",
           "cumulative_prod", "geomspace", "packbits", "unpackbits"]


def cov(m: Any, y: Any = None, rowvar: bool = True, bias: bool = False,
        ddof: int | None = None, fweights: Any = None, aweights: Any = None,
        dtype: Any = None) -> Any:
    """The covariance matrix of the variables in the rows (``rowvar``) of ``m`` (and
    ``y``), with optional frequency and analytic weights (numpy's estimator)."""
    check_arraylike("cov", m, *([] if y is None else [y]))
    if y is not None:
        m, y = promote_dtypes_inexact(asarray(m), asarray(y))
        if get_aval(y).ndim > 2:
            raise ValueError("y has more than 2 dimensions")
    else:
        (m,) = promote_dtypes_inexact(asarray(m))
    if get_aval(m).ndim > 2:
        raise ValueError("m has more than 2 dimensions")
    if dtype is not None and not dtypes.issubdtype(dtype, np.inexact):
        raise ValueError(f"cov: dtype must be a subclass of float or complex; got "
                         f"dtype={dtype}")
    X = atleast_2d(m)
    if not rowvar and get_aval(m).ndim != 1:
        X = X.T
    if get_aval(X).shape[0] == 0:
        return reshape(array([], get_aval(X).dtype), (0, 0))
    if y is not None:
        Y = atleast_2d(y)
        if not rowvar and get_aval(Y).shape[0] != 1:
            Y = Y.T
        X = concatenate([X, Y], axis=0)
    if dtype is not None:
        X = X.astype(dtype)
    nvars, nobs = get_aval(X).shape
    if nobs == 0:
        return full(() if nvars == 1 else (nvars, nvars), np.nan, get_aval(X).dtype)
    ddof = (0 if bias else 1) if ddof is None else ddof
    w = None
    if fweights is not None:
        fweights = asarray(fweights)
        if get_aval(fweights).ndim > 1:
            raise RuntimeError("cannot handle multidimensional fweights")
        if get_aval(fweights).shape[0] != nobs:
            raise RuntimeError("incompatible numbers of samples and fweights")
        if not dtypes.is_int(get_aval(fweights).dtype):
            raise TypeError("fweights must be integer.")
        w = absolute(fweights)
    if aweights is not None:
        aweights = asarray(aweights)
        if get_aval(aweights).ndim > 1:
            raise RuntimeError("cannot handle multidimensional aweights")
        if get_aval(aweights).shape[0] != nobs:
            raise RuntimeError("incompatible numbers of samples and aweights")
        aweights = absolute(aweights)
        w = aweights if w is None else w * aweights
    if w is None:
        avg = _sum(X, axis=1) / nobs
        w_sum = asarray(float(nobs), get_aval(X).dtype)
        fact = w_sum - ddof
        Xc = X - avg[:, None]
        c = dot(Xc, Xc.T) / fact
    else:
        w = w.astype(get_aval(X).dtype)
        w_sum = _sum(w)
        avg = _sum(X * w, axis=1) / w_sum
        fact = w_sum - ddof if aweights is None else \
            w_sum - ddof * _sum(w * aweights) / w_sum
        Xc = X - avg[:, None]
        c = dot(Xc * w, Xc.T) / fact
    return reshape(c, ()) if nvars == 1 else c


def corrcoef(x: Any, y: Any = None, rowvar: bool = True, dtype: Any = None) -> Any:
    """Pearson correlation coefficients (``cov`` normalised by the standard deviations,
    clipped to [-1, 1])."""
    check_arraylike("corrcoef", x)
    if dtype is not None and not dtypes.issubdtype(dtype, np.inexact):
        raise ValueError(f"corrcoef: dtype must be a subclass of float or complex; got "
                         f"dtype={dtype}")
    c = cov(x, y, rowvar, dtype=dtype)
    if get_aval(c).ndim == 0:
        return c / c
    d = lax.broadcast_in_dim(c, get_aval(c).shape, (0, 1))
    stddev = sqrt(d[arange(get_aval(c).shape[0]), arange(get_aval(c).shape[0])])
    c = c / stddev[:, None] / stddev[None, :]
    return lax.clamp(asarray(-1, get_aval(c).dtype), c, asarray(1, get_aval(c).dtype))


def gradient(f: Any, *varargs: Any, axis: int | Sequence[int] | None = None,
             edge_order: int | None = None) -> Any:
    """Second-order central differences inside, first-order differences at the ends,
    along each axis (spacing: scalars or coordinate arrays, one per axis)."""
    if edge_order is not None:
        raise NotImplementedError("The 'edge_order' argument to jnp.gradient is not "
                                  "supported.")
    check_arraylike("gradient", f, *varargs)
    a, *spacing = promote_dtypes_inexact(*(asarray(v) for v in (f, *varargs)))
    ndim = get_aval(a).ndim
    axes = tuple(range(ndim)) if axis is None else _reduction_axes(axis, ndim)
    if not axes:
        return []
    if min(get_aval(a).shape[i] for i in axes) < 2:
        raise ValueError("Shape of array too small to calculate a numerical gradient, at "
                         "least (edge_order + 1) elements are required.")
    if not spacing:
        spacing = [asarray(1.0, get_aval(a).dtype)] * len(axes)
    elif len(spacing) == 1:
        spacing = spacing * len(axes)
    if len(spacing) != len(axes):
        raise TypeError("Invalid number of spacing arguments.")
    out = [_gradient_along(a, h, ax) for h, ax in zip(spacing, axes)]
    return out[0] if len(axes) == 1 else out


def _gradient_along(a: Any, h: Any, axis: int) -> Any:
    def part(start, stop, x=a):
        return lax.slice_in_dim(x, start, stop, axis=axis)
    n = get_aval(a).shape[axis]
    first = part(1, 2) - part(0, 1)
    last = part(n - 1, n) - part(n - 2, n - 1)
    if get_aval(h).ndim == 0:
        inner = (part(2, n) - part(0, n - 2)) * 0.5 / h
        return concatenate([first / h, inner, last / h], axis=axis)
    if get_aval(h).ndim != 1:
        raise ValueError("Spacing arrays must be 1D arrays or scalars.")
    if get_aval(h).shape[0] != n:
        raise ValueError("Spacing arrays must have the same length as the dimension along "
                         "which the gradient is calculated.")
    h = reshape(h, tuple(n if i == axis else 1 for i in range(get_aval(a).ndim)))
    first = first / (part(1, 2, h) - part(0, 1, h))
    last = last / (part(n - 1, n, h) - part(n - 2, n - 1, h))
    dx1, dx2 = part(1, n - 1, h) - part(0, n - 2, h), part(2, n, h) - part(1, n - 1, h)
    inner = (-dx2 / (dx1 * (dx1 + dx2)) * part(0, n - 2) +
             (dx2 - dx1) / (dx1 * dx2) * part(1, n - 1) +
             dx1 / (dx2 * (dx1 + dx2)) * part(2, n))
    return concatenate([first, inner, last], axis=axis)


def trapezoid(y: Any, x: Any = None, dx: Any = 1.0, axis: int = -1) -> Any:
    """The integral of ``y`` along ``axis`` by the trapezoidal rule (sample points ``x``
    or uniform spacing ``dx``)."""
    check_arraylike("trapezoid", y, *([] if x is None else [x]))
    if x is None:
        (y,) = promote_dtypes_inexact(asarray(y))
        y = moveaxis(y, axis, -1)
        d = asarray(dx)
    else:
        y, x = promote_dtypes_inexact(asarray(y), asarray(x))
        y = moveaxis(y, axis, -1)
        if get_aval(x).ndim == 1:
            d = diff(x)
        else:
            d = diff(moveaxis(x, axis, -1), axis=-1)
    return 0.5 * _sum(d * (y[..., 1:] + y[..., :-1]), axis=-1)


def unwrap(p: Any, discont: Any = None, axis: int = -1, period: Any = 2 * np.pi) -> Any:
    """``p`` with jumps larger than ``discont`` along ``axis`` replaced by their
    ``period`` complement (numpy's phase unwrapping)."""
    check_arraylike("unwrap", p)
    p, period = promote_dtypes(asarray(p), period)
    if dtypes.is_complex(get_aval(p).dtype):
        raise ValueError("jnp.unwrap does not support complex inputs.")
    if get_aval(p).shape[axis] == 0:
        return p
    if discont is None:
        discont = period / 2
    interval = period // 2 if dtypes.is_int(get_aval(p).dtype) else period / 2
    dd = diff(p, axis=axis)
    ddmod = mod(dd + interval, period) - interval
    ddmod = where((ddmod == -interval) & (dd > 0), interval, ddmod)
    correct = where(absolute(dd) < discont, 0, ddmod - dd)
    n = get_aval(p).shape[axis]
    return concatenate([lax.slice_in_dim(p, 0, 1, axis=axis),
                        lax.slice_in_dim(p, 1, n, axis=axis) + cumsum(correct, axis=axis)],
                       axis=axis)


def histogramdd(sample: Any, bins: Any = 10, range: Any = None, weights: Any = None,
                density: bool | None = None) -> tuple[Any, list[Any]]:
    """The D-dimensional histogram of the ``(N, D)`` sample: counts (or densities) and
    the bin edges of each dimension."""
    check_arraylike("histogramdd", sample)
    sample = asarray(sample)
    n, d = get_aval(sample).shape
    if weights is not None and get_aval(asarray(weights)).shape != (n,):
        raise ValueError("should have one weight for each sample.")
    if range is not None and (len(range) != d or any(r is not None and len(r) != 2
                                                     for r in range)):
        raise ValueError(f"For sample.shape={(n, d)}, range must be a sequence of {d} "
                         f"pairs or Nones; got range={range}")
    try:
        num_bins = len(bins)
        if num_bins != d:
            raise ValueError("should be a bin for each dimension.")
    except TypeError:
        bins = d * [bins]
    edges, positions = [], []
    for i, (b, r) in enumerate(zip(bins, [None] * d if range is None else range)):
        e = histogram_bin_edges(sample[:, i], b, r, weights)
        idx = searchsorted(e, sample[:, i], side="right")
        idx = where(sample[:, i] == e[-1], idx - 1, idx)
        edges.append(e)
        positions.append(idx)
    dims = [get_aval(e).shape[0] + 1 for e in edges]
    flat = positions[0]
    for idx, size in zip(positions[1:], dims[1:]):
        flat = flat * size + idx
    counts = bincount(flat, weights, length=math.prod(dims))
    counts = reshape(counts, dims)
    counts = counts[tuple(slice(1, -1) for _ in dims)]
    if density:
        counts = counts / _sum(counts)
        for i, e in enumerate(edges):
            shape = [1] * d
            shape[i] = get_aval(e).shape[0] - 1
            counts = counts / reshape(diff(e), shape)
    return counts, edges


def histogram2d(x: Any, y: Any, bins: Any = 10, range: Any = None, weights: Any = None,
                density: bool | None = None) -> tuple[Any, Any, Any]:
    """The 2-D histogram of the points ``(x, y)``: counts, x edges, y edges."""
    check_arraylike("histogram2d", x, y)
    try:
        nbins = len(bins)
    except TypeError:
        nbins = 1
    if nbins not in (1, 2):
        bins = [bins, bins]
    sample = lax.concatenate([reshape(v, (-1, 1)) for v in
                              promote_dtypes(asarray(x), asarray(y))], 1)
    hist, edges = histogramdd(sample, bins, range, weights, density)
    return hist, edges[0], edges[1]


def _nan_arg(name: str, fn, a: Any, axis: int | None, out: None,
             keepdims: bool | None) -> Any:
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to jnp.{name} is not supported.")
    check_arraylike(name, a)
    a = asarray(a)
    if not dtypes.is_inexact(get_aval(a).dtype):
        return fn(a, axis=axis, keepdims=keepdims)
    nan_mask = isnan(a)
    fill = np.inf if name == "nanargmin" else -np.inf
    res = fn(where(nan_mask, fill, a), axis=axis, keepdims=keepdims)
    return where(_all(nan_mask, axis=axis, keepdims=keepdims), -1, res)


def nanargmax(a: Any, axis: int | None = None, out: None = None,
              keepdims: bool | None = None) -> Any:
    """The index of the maximum, ignoring NaNs (-1 where all are NaN)."""
    return _nan_arg("nanargmax", argmax, a, axis, out, keepdims)


def nanargmin(a: Any, axis: int | None = None, out: None = None,
              keepdims: bool | None = None) -> Any:
    """The index of the minimum, ignoring NaNs (-1 where all are NaN)."""
    return _nan_arg("nanargmin", argmin, a, axis, out, keepdims)


def _nan_cumulative(name: str, fn, identity: int, a: Any, axis: Any, dtype: Any,
                    out: None) -> Any:
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to jnp.{name} is not supported.")
    check_arraylike(name, a)
    a = asarray(a)
    if dtypes.is_inexact(get_aval(a).dtype):
        a = where(isnan(a), asarray(identity, get_aval(a).dtype), a)
    return fn(a, axis=axis, dtype=dtype)


def nancumsum(a: Any, axis: int | None = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative sum treating NaNs as zero."""
    return _nan_cumulative("nancumsum", cumsum, 0, a, axis, dtype, out)


def nancumprod(a: Any, axis: int | None = None, dtype: Any = None, out: None = None) -> Any:
    """Cumulative product treating NaNs as one."""
    return _nan_cumulative("nancumprod", cumprod, 1, a, axis, dtype, out)


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    include_initial: bool = False) -> Any:
    """The array API's cumulative product (``include_initial`` prepends a one)."""
    check_arraylike("cumulative_prod", x)
    x = asarray(x)
    if axis is None:
        if get_aval(x).ndim > 1:
            raise ValueError("The input array has rank > 1; axis must be specified")
        axis = 0
    out = cumprod(x, axis=axis, dtype=dtype)
    if include_initial:
        ax = _reduction_axes(axis, get_aval(out).ndim)[0]
        cfg = [(0, 0, 0)] * get_aval(out).ndim
        cfg[ax] = (1, 0, 0)
        out = lax.pad(out, asarray(1, get_aval(out).dtype), cfg)
    return out


def geomspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
              dtype: Any = None, axis: int = 0) -> Any:
    """``num`` numbers spaced evenly on a log scale from ``start`` to ``stop`` (signs
    kept; both must have the same sign)."""
    check_arraylike("geomspace", start, stop)
    start, stop = promote_dtypes_inexact(asarray(start), asarray(stop))
    s = sign(start)
    out = s * power(asarray(10.0, get_aval(start).dtype),
                    linspace(log10(start / s), log10(stop / s), num, endpoint=endpoint,
                             axis=axis))
    out = lax.convert_element_type(out, get_aval(start).dtype)
    return out if dtype is None else out.astype(dtype)


def _bit_order(bitorder: str) -> str:
    if bitorder not in ("little", "big"):
        raise ValueError("'order' must be either 'little' or 'big'")
    return bitorder


def packbits(a: Any, axis: int | None = None, bitorder: str = "big") -> Any:
    """Pack the truth values of ``a`` into the bits of uint8s along ``axis`` (the
    flattened array when None), padding the last byte with zeros."""
    check_arraylike("packbits", a)
    a = asarray(a)
    if not (dtypes.is_int(get_aval(a).dtype) or get_aval(a).dtype == np.bool_):
        raise TypeError("Expected an input array of integer or boolean data type")
    bitorder = _bit_order(bitorder)
    if axis is None:
        a, axis = ravel(a), 0
    a = moveaxis(a != 0, axis, -1).astype(np.uint8)
    n = get_aval(a).shape[-1]
    pad = (-n) % 8
    a = lax.pad(a, asarray(0, np.uint8), [(0, 0, 0)] * (get_aval(a).ndim - 1) + [(0, pad, 0)])
    a = reshape(a, get_aval(a).shape[:-1] + ((n + pad) // 8, 8))
    shifts = np.arange(8, dtype=np.uint8)
    shifts = shifts[::-1] if bitorder == "big" else shifts
    packed = _sum(left_shift(a, asarray(shifts)), axis=-1, dtype=np.uint8)
    return moveaxis(packed, -1, axis)


def unpackbits(a: Any, axis: int | None = None, count: int | None = None,
               bitorder: str = "big") -> Any:
    """The bits of the uint8 array ``a`` as 0/1 uint8s along ``axis`` (flattened when
    None); ``count`` keeps that many (negative: drops from the end)."""
    check_arraylike("unpackbits", a)
    a = asarray(a)
    if get_aval(a).dtype != np.uint8:
        raise TypeError("Expected an input array of unsigned byte data type")
    bitorder = _bit_order(bitorder)
    shifts = np.arange(8, dtype=np.uint8)
    shifts = shifts[::-1] if bitorder == "big" else shifts
    bits = bitwise_and(right_shift(a[..., None], asarray(shifts)), np.uint8(1))
    if axis is None:
        bits, axis = ravel(bits), 0
    else:
        ax = _reduction_axes(axis, get_aval(a).ndim)[0]
        bits = moveaxis(bits, ax, -2)
        bits = reshape(bits, get_aval(bits).shape[:-2] + (-1,))
        bits = moveaxis(bits, -1, ax)
        axis = ax
    if count is not None:
        n = get_aval(bits).shape[axis]
        stop = count if count >= 0 else n + count
        bits = lax.slice_in_dim(bits, 0, max(min(stop, n), 0), axis=axis)
        if count > n:
            cfg = [(0, 0, 0)] * get_aval(bits).ndim
            cfg[axis] = (0, count - n, 0)
            bits = lax.pad(bits, asarray(np.uint8(0)), cfg)
    return bits
