"""Assorted ``tinyjax.numpy`` functions: diff, interp, convolve/correlate, clip,
nan_to_num and the comparisons isclose/allclose/array_equal/array_equiv."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.lax.elementwise import real_dtype
from tinyjax.numpy import _extended
from tinyjax.numpy._creation import asarray
from tinyjax.numpy._extended import is_extended
from tinyjax.numpy._sorting import _ravel, _take1d, searchsorted
from tinyjax.numpy._ufuncs import maximum, minimum, remainder
from tinyjax.numpy._util import (broadcast_shapes, broadcast_to_shape, check_arraylike,
                                 promote_args, promote_dtypes)

__all__ = ["diff", "ediff1d", "interp", "convolve", "correlate", "clip", "nan_to_num",
           "isclose", "allclose", "array_equal", "array_equiv"]

from tinyjax.numpy._util import dtype_of as _dtype
from tinyjax.numpy._util import full_like_value as _full_like
from tinyjax.numpy._util import ndim_of as _ndim
from tinyjax.numpy._util import shape_of as _shape


def _canon_axis(axis: int, ndim: int) -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


# ---------------------------------------------------------------------------
# diff, interp
# ---------------------------------------------------------------------------


def diff(a: Any, n: int = 1, axis: int = -1, prepend: Any = None, append: Any = None) -> Any:
    """The ``n``-th discrete difference along ``axis`` (``!=`` for booleans)."""
    check_arraylike("diff", a)
    (a,) = promote_dtypes(a)
    n = int(n)
    if n < 0:
        raise ValueError(f"order must be non-negative but got {n}")
    if _ndim(a) == 0:
        raise ValueError(f"diff requires input that is at least one dimensional; got {a}")
    if n == 0:
        return a
    axis = _canon_axis(axis, _ndim(a))
    parts = []
    for extra in (prepend, append):
        if extra is None:
            parts.append(None)
            continue
        check_arraylike("diff", extra)
        (extra,) = promote_dtypes(extra)
        if _ndim(extra) == 0:
            shape = list(_shape(a))
            shape[axis] = 1
            extra = broadcast_to_shape(extra, tuple(shape))
        parts.append(extra)
    if parts[0] is not None or parts[1] is not None:
        ops = promote_dtypes(*[p for p in (parts[0], a, parts[1]) if p is not None])
        a = lax.concatenate(ops, axis)
    for _ in range(n):
        size = _shape(a)[axis]
        hi = lax.slice_in_dim(a, min(1, size), size, axis=axis)
        lo = lax.slice_in_dim(a, 0, max(size - 1, 0), axis=axis)
        a = lax.ne(hi, lo) if _dtype(a) == np.bool_ else lax.sub(hi, lo)
    return a


def ediff1d(ary: Any, to_end: Any = None, to_begin: Any = None) -> Any:
    """Differences of consecutive elements of the flattened array."""
    check_arraylike("ediff1d", ary)
    (x,) = promote_dtypes(ary)
    x = _ravel(x)
    out = diff(x) if _shape(x)[0] else x
    parts = [out]
    if to_begin is not None:
        parts.insert(0, lax.convert_element_type(_ravel(promote_dtypes(to_begin)[0]),
                                                 _dtype(out)))
    if to_end is not None:
        parts.append(lax.convert_element_type(_ravel(promote_dtypes(to_end)[0]),
                                              _dtype(out)))
    return lax.concatenate(parts, 0) if len(parts) > 1 else out


def interp(x: Any, xp: Any, fp: Any, left: Any = None, right: Any = None,
           period: Any = None) -> Any:
    """Piecewise-linear interpolation of ``(xp, fp)`` (``xp`` increasing) at ``x``."""
    check_arraylike("interp", x, xp, fp)
    x, xp, fp = _inexact3(x, xp, fp)
    if _ndim(xp) != 1 or _ndim(fp) != 1:
        raise ValueError("xp and fp must be one-dimensional arrays")
    if _shape(xp)[0] != _shape(fp)[0]:
        raise ValueError("xp and fp must be the same length")
    if _shape(xp)[0] == 0:
        raise ValueError("xp and fp must have at least one element")
    if period is not None:
        p = lax.abs(lax.convert_element_type(promote_dtypes(period)[0], _dtype(x)))
        x = remainder(x, p)
        xp = remainder(xp, lax.broadcast_in_dim(p, _shape(xp), ()))
        xp, fp = lax.sort((xp, fp), is_stable=True, num_keys=1)
        n = _shape(xp)[0]
        pb = lax.broadcast_in_dim(p, (1,), ())
        xp = lax.concatenate([lax.sub(lax.slice_in_dim(xp, n - 1, n), pb), xp,
                              lax.add(lax.slice_in_dim(xp, 0, 1), pb)], 0)
        fp = lax.concatenate([lax.slice_in_dim(fp, n - 1, n), fp,
                              lax.slice_in_dim(fp, 0, 1)], 0)
        left = right = None  # numpy ignores them with a period
    n = _shape(xp)[0]
    i = searchsorted(xp, x, side="right")
    i = lax.clamp(lax.full((), 1, _dtype(i)), i, lax.full((), max(n - 1, 1), _dtype(i)))
    if n == 1:
        f = lax.broadcast_in_dim(lax.reshape(fp, ()), _shape(x), ())
    else:
        im1 = lax.sub(i, _full_like(i, 1))
        fp_i, fp_im1 = _take1d(fp, i), _take1d(fp, im1)
        xp_i, xp_im1 = _take1d(xp, i), _take1d(xp, im1)
        df, dx, delta = lax.sub(fp_i, fp_im1), lax.sub(xp_i, xp_im1), lax.sub(x, xp_im1)
        eps = np.spacing(dtypes.finfo(_dtype(xp)).eps)
        dx0 = lax.le(lax.abs(dx), _full_like(dx, eps))  # no NaN gradients for tiny dx
        safe_dx = lax.select(dx0, _full_like(dx, 1), dx)
        f = lax.select(dx0, fp_im1, lax.add(fp_im1, lax.mul(lax.div(delta, safe_dx), df)))
    first = lax.broadcast_in_dim(lax.index_in_dim(xp, 0, 0, False), _shape(x), ())
    last = lax.broadcast_in_dim(lax.index_in_dim(xp, n - 1, 0, False), _shape(x), ())
    left_v = lax.index_in_dim(fp, 0, 0, False) if left is None else \
        lax.convert_element_type(promote_dtypes(left)[0], _dtype(f))
    right_v = lax.index_in_dim(fp, n - 1, 0, False) if right is None else \
        lax.convert_element_type(promote_dtypes(right)[0], _dtype(f))
    f = lax.select(lax.lt(x, first), broadcast_to_shape(left_v, _shape(x)), f)
    f = lax.select(lax.gt(x, last), broadcast_to_shape(right_v, _shape(x)), f)
    return f


def _inexact3(x: Any, xp: Any, fp: Any) -> list[Any]:
    """x, xp, fp in their common inexact dtype, keeping their shapes."""
    ops = promote_dtypes(x, xp, fp)
    if not dtypes.is_inexact(_dtype(ops[0])):
        dt = dtypes.default_float_dtype()
        ops = [lax.convert_element_type(o, dt) for o in ops]
    return ops


# ---------------------------------------------------------------------------
# convolve, correlate
# ---------------------------------------------------------------------------


def _conv1d(x: Any, y: Any, padding: tuple[int, int], precision: Any,
            preferred_element_type: Any) -> Any:
    """``out[i] = sum_k xpad[i + k] * y[k]``: a valid cross-correlation of the padded x."""
    conv = getattr(lax, "conv_general_dilated", None)
    if conv is not None:
        out = conv(lax.reshape(x, (1, 1) + _shape(x)), lax.reshape(y, (1, 1) + _shape(y)),
                   (1,), [padding], precision=precision,
                   preferred_element_type=preferred_element_type)
        return lax.reshape(out, _shape(out)[2:])
    # without lax.conv: gather the windows and contract them with y
    xpad = lax.pad(x, lax.full((), 0, _dtype(x)), ((padding[0], padding[1], 0),))
    k = _shape(y)[0]
    n_out = _shape(xpad)[0] - k + 1
    idx = lax.add(lax.broadcasted_iota(np.int32, (n_out, k), 0),
                  lax.broadcasted_iota(np.int32, (n_out, k), 1))
    windows = _take1d(xpad, idx)
    return lax.dot_general(windows, y, (((1,), (0,)), ((), ())), precision=precision,
                           preferred_element_type=preferred_element_type)


def _conv(name: str, x: Any, y: Any, mode: str, precision: Any,
          preferred_element_type: Any) -> Any:
    check_arraylike(name, x, y)
    if np.ndim(x) != 1 or np.ndim(y) != 1:
        raise ValueError(f"{name}() only support 1-dimensional inputs.")
    x, y = promote_dtypes(x, y)
    if preferred_element_type is None and not dtypes.is_inexact(_dtype(x)):
        dt = dtypes.default_float_dtype()
        x, y = lax.convert_element_type(x, dt), lax.convert_element_type(y, dt)
    if _shape(x)[0] == 0 or _shape(y)[0] == 0:
        raise ValueError(f"{name}: inputs cannot be empty, got shapes {_shape(x)} and "
                         f"{_shape(y)}.")
    reverse_out = False
    if name == "correlate":
        if _shape(x)[0] < _shape(y)[0]:
            x, y, reverse_out = y, x, True
    else:
        if _shape(x)[0] < _shape(y)[0]:
            x, y = y, x
        y = lax.rev(y, (0,))
    k = _shape(y)[0]
    if mode == "valid":
        padding = (0, 0)
    elif mode == "same":
        padding = (k // 2, k - k // 2 - 1)
    elif mode == "full":
        padding = (k - 1, k - 1)
    else:
        raise ValueError("mode must be one of ['full', 'same', 'valid']")
    out = _conv1d(x, y, padding, precision, preferred_element_type)
    return lax.rev(out, (0,)) if reverse_out else out


def convolve(a: Any, v: Any, mode: str = "full", *, precision: Any = None,
             preferred_element_type: Any = None) -> Any:
    """1-D discrete convolution (``mode``: 'full', 'same' or 'valid')."""
    return _conv("convolve", a, v, mode, precision, preferred_element_type)


def correlate(a: Any, v: Any, mode: str = "valid", *, precision: Any = None,
              preferred_element_type: Any = None) -> Any:
    """1-D cross-correlation (``mode``: 'full', 'same' or 'valid')."""
    return _conv("correlate", a, v, mode, precision, preferred_element_type)


# ---------------------------------------------------------------------------
# clip, nan_to_num
# ---------------------------------------------------------------------------

_UNSET = object()


def clip(arr: Any = None, /, min: Any = None, max: Any = None, *,  # noqa: A002
         a: Any = _UNSET, a_min: Any = _UNSET, a_max: Any = _UNSET) -> Any:
    """Limit ``arr`` to ``[min, max]`` (either bound may be None); the deprecated
    ``a``/``a_min``/``a_max`` keywords are accepted too."""
    if a is not _UNSET:
        if arr is not None:
            raise ValueError("Only one of `arr` and `a` may be specified.")
        arr = a
    if a_min is not _UNSET:
        if min is not None:
            raise ValueError("Only one of `min` and `a_min` may be specified.")
        min = a_min  # noqa: A001
    if a_max is not _UNSET:
        if max is not None:
            raise ValueError("Only one of `max` and `a_max` may be specified.")
        max = a_max  # noqa: A001
    if arr is None:
        raise TypeError("clip() missing required argument 'arr'")
    check_arraylike("clip", arr)
    if min is not None:
        arr = maximum(min, arr)
    if max is not None:
        arr = minimum(max, arr)
    return promote_dtypes(arr)[0]


def nan_to_num(x: Any, copy: bool = True, nan: Any = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """Replace NaN by ``nan``, +/-inf by ``posinf``/``neginf`` (default: the dtype's
    largest and smallest finite values); integers are returned unchanged."""
    check_arraylike("nan_to_num", x)
    (x,) = promote_dtypes(x)
    dt = _dtype(x)
    if not dtypes.is_inexact(dt):
        return x
    info = dtypes.finfo(dt)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    x = lax.select(lax.ne(x, x), _full_like(x, nan), x)
    x = lax.select(lax.eq(x, _full_like(x, np.inf)), _full_like(x, posinf), x)
    return lax.select(lax.eq(x, _full_like(x, -np.inf)), _full_like(x, neginf), x)


# ---------------------------------------------------------------------------
# isclose, allclose, array_equal, array_equiv
# ---------------------------------------------------------------------------


def isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
            equal_nan: bool = False) -> Any:
    """``|a - b| <= atol + rtol * |b|`` elementwise, exact for infinities; integers
    compare exactly (as JAX)."""
    a, b = promote_args("isclose", a, b)
    dt = _dtype(a)
    if not dtypes.is_inexact(dt):
        return lax.convert_element_type(lax.eq(a, b), np.bool_)   # strong, as in JAX
    tol_dt = real_dtype(dt)  # tolerances compare with magnitudes: real even for complex
    rtol_ = lax.convert_element_type(promote_dtypes(rtol)[0], tol_dt)
    atol_ = lax.convert_element_type(promote_dtypes(atol)[0], tol_dt)
    shape = _shape(a)
    rtol_, atol_ = broadcast_to_shape(rtol_, shape), broadcast_to_shape(atol_, shape)
    inf = _full_like(rtol_, np.inf)
    a_inf, b_inf = lax.eq(lax.abs(a), inf), lax.eq(lax.abs(b), inf)
    # infinities are compared below; zeroing them first keeps inf - inf out
    zero = _full_like(a, 0)
    a0, b0 = lax.select(a_inf, zero, a), lax.select(b_inf, zero, b)
    out = lax.le(lax.abs(lax.sub(a0, b0)), lax.add(atol_, lax.mul(rtol_, lax.abs(b0))))
    out = lax.bitwise_and(out, lax.bitwise_not(lax.bitwise_or(a_inf, b_inf)))
    out = lax.bitwise_or(out, lax.bitwise_and(lax.bitwise_and(a_inf, b_inf), lax.eq(a, b)))
    a_nan, b_nan = lax.ne(a, a), lax.ne(b, b)
    out = lax.bitwise_and(out, lax.bitwise_not(lax.bitwise_or(a_nan, b_nan)))
    if equal_nan:
        out = lax.bitwise_or(out, lax.bitwise_and(a_nan, b_nan))
    return out


def _all(x: Any) -> Any:
    return lax.reduce_and(x, tuple(range(_ndim(x))))


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
             equal_nan: bool = False) -> Any:
    """Whether every element of ``a`` and ``b`` is close (see :func:`isclose`)."""
    return _all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> Any:
    """Whether ``a1`` and ``a2`` have one shape and equal elements (a bool array)."""
    if is_extended(a1) or is_extended(a2):  # key arrays: key by key
        if np.shape(a1) != np.shape(a2):
            return lax.full((), False, np.bool_)
        return _all(_extended.equal(a1, a2))
    try:
        a1, a2 = promote_dtypes(asarray(a1), asarray(a2))
    except (TypeError, ValueError):
        return lax.full((), False, np.bool_)
    if _shape(a1) != _shape(a2):
        return lax.full((), False, np.bool_)
    eq = lax.eq(a1, a2)
    if equal_nan and dtypes.is_inexact(_dtype(a1)):
        eq = lax.bitwise_or(eq, lax.bitwise_and(lax.ne(a1, a1), lax.ne(a2, a2)))
    return _all(eq)


def array_equiv(a1: Any, a2: Any) -> Any:
    """Whether ``a1`` and ``a2`` broadcast together and are equal everywhere."""
    if is_extended(a1) or is_extended(a2):  # key arrays: key by key
        try:
            return _all(_extended.equal(a1, a2))
        except ValueError:  # (shapes that do not broadcast)
            return lax.full((), False, np.bool_)
    a1, a2 = promote_dtypes(asarray(a1), asarray(a2))
    try:
        shape = broadcast_shapes(_shape(a1), _shape(a2))
    except ValueError:
        return lax.full((), False, np.bool_)
    return _all(lax.eq(broadcast_to_shape(a1, shape), broadcast_to_shape(a2, shape)))
