"""Questions about types and values: ``can_cast``, ``isdtype``, ``isscalar``,
``iterable``, ``isreal``/``isrealobj``/``iscomplex``/``iscomplexobj``, and
``sort_complex``."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.array import ArrayImpl
from tinyjax.core import Tracer, get_aval
from tinyjax.numpy._creation import asarray
from tinyjax.numpy._sorting import sort
from tinyjax.numpy._util import check_arraylike

__all__ = ["can_cast", "isdtype", "isscalar", "iterable", "isreal", "isrealobj",
           "iscomplex", "iscomplexobj", "sort_complex"]

iterable = np.iterable

_KINDS = {
    "bool": lambda d: d == np.bool_,
    "signed integer": dtypes.is_signed,
    "unsigned integer": dtypes.is_unsigned,
    "integral": dtypes.is_int,
    "real floating": dtypes.is_float,
    "complex floating": dtypes.is_complex,
    "numeric": lambda d: dtypes.is_int(d) or dtypes.is_inexact(d),
}


def _dtype_of(x: Any) -> np.dtype:
    if isinstance(x, (ArrayImpl, Tracer)):
        return get_aval(x).dtype
    return np.dtype(getattr(x, "dtype", x)) if not isinstance(x, (bool, int, float,
                                                                    complex)) \
        else dtypes.dtype(x)


def can_cast(from_: Any, to: Any, casting: str = "safe") -> bool:
    """numpy's ``can_cast`` on tinyjax dtypes, arrays and scalar types."""
    return bool(np.can_cast(_dtype_of(from_), np.dtype(to), casting))


def isdtype(dtype: Any, kind: Any) -> bool:
    """The array API's dtype test: ``kind`` is a dtype, one of ``'bool'``, ``'signed
    integer'``, ``'unsigned integer'``, ``'integral'``, ``'real floating'``, ``'complex
    floating'``, ``'numeric'``, or a tuple of them."""
    dt = np.dtype(dtype)
    for k in (kind if isinstance(kind, tuple) else (kind,)):
        if isinstance(k, str):
            if k not in _KINDS:
                raise ValueError(f"Unrecognized dtype kind {k!r}; expected one of "
                                 f"{list(_KINDS)}")
            if _KINDS[k](dt):
                return True
        elif dt == np.dtype(k):
            return True
    return False


def isscalar(element: Any) -> bool:
    """True for Python and numpy scalars and zero-dimensional arrays."""
    if hasattr(element, "__jax_array__"):
        element = element.__jax_array__()
    if isinstance(element, (ArrayImpl, Tracer, np.ndarray)):
        return get_aval(asarray(element)).ndim == 0 if not isinstance(element, np.ndarray) \
            else element.ndim == 0
    return bool(np.isscalar(element))


def iscomplexobj(x: Any) -> bool:
    """Whether ``x`` has a complex dtype (whatever its values)."""
    if x is None:
        return False
    try:
        return dtypes.is_complex(_dtype_of(x))
    except TypeError:
        return bool(np.iscomplexobj(x))


def isrealobj(x: Any) -> bool:
    """Whether ``x`` has a non-complex dtype."""
    return not iscomplexobj(x)


def _imaginary_test(name: str, x: Any, compare: Any, real_answer: bool) -> Any:
    check_arraylike(name, x)
    x = asarray(x)
    if not dtypes.is_complex(get_aval(x).dtype):
        return lax.full(get_aval(x).shape, real_answer, np.bool_)
    imag = lax.imag(x)
    return compare(imag, lax.full((), 0, get_aval(imag).dtype))


def iscomplex(x: Any) -> Any:
    """Elementwise: a nonzero imaginary part (all False for real dtypes)."""
    return _imaginary_test("iscomplex", x, lax.ne, False)


def isreal(x: Any) -> Any:
    """Elementwise: a zero imaginary part (all True for real dtypes)."""
    return _imaginary_test("isreal", x, lax.eq, True)


def sort_complex(a: Any) -> Any:
    """``a`` sorted (by real part, then imaginary part) and made complex."""
    check_arraylike("sort_complex", a)
    out = sort(asarray(a))
    dt = get_aval(out).dtype
    target = dt if dtypes.is_complex(dt) else (
        np.dtype(np.complex128) if dt == np.float64 else np.dtype(np.complex64))
    return lax.convert_element_type(out, target)
