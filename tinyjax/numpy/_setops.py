"""Set operations on 1-D arrays: ``isin``, ``union1d``, ``intersect1d``, ``setdiff1d``,
``setxor1d``.

Results have a data-dependent length: without ``size`` the inputs must be concrete (as in
JAX); with ``size`` the result has exactly that length, padded with ``fill_value``.
Internally each works on a sorted copy with a mask of the entries it keeps, so the traced
program has static shapes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import lax
from tinyjax.core import get_aval
from tinyjax.numpy._creation import asarray, concrete_value
from tinyjax.numpy._indexing import where
from tinyjax.numpy._reductions import sum as _sum
from tinyjax.numpy._shape import ravel
from tinyjax.numpy._sorting import argsort, nonzero, searchsorted, sort, unique
from tinyjax.numpy._util import check_arraylike, promote_dtypes

__all__ = ["isin", "union1d", "intersect1d", "setdiff1d", "setxor1d"]

_METHODS = ("auto", "compare_all", "binary_search", "sort")


def _flat_pair(name: str, ar1: Any, ar2: Any) -> tuple[Any, Any]:
    check_arraylike(name, ar1, ar2)
    a, b = promote_dtypes(asarray(ar1), asarray(ar2))
    return ravel(a), ravel(b)


def _static_size(name: str, size: Any) -> int | None:
    if size is None:
        return None
    return int(concrete_value(size, f"{name} size"))


def _contains(values: Any, test: Any, method: str) -> Any:
    """For each of the 1-D ``values``: whether it occurs in the 1-D ``test``."""
    n, m = get_aval(values).shape[0], get_aval(test).shape[0]
    if n == 0 or m == 0:
        return lax.full((n,), False, np.bool_)
    if method in ("auto", "compare_all"):
        eq = lax.eq(lax.broadcast_in_dim(values, (n, m), (0,)),
                    lax.broadcast_in_dim(test, (n, m), (1,)))
        return lax.reduce_or(eq, (1,))
    ordered = sort(test)
    pos = lax.clamp(np.int32(0), searchsorted(ordered, values).astype(np.int32),
                    np.int32(m - 1))
    return lax.eq(ordered[pos], values)


def isin(element: Any, test_elements: Any, assume_unique: bool = False,
         invert: bool = False, *, method: str = "auto") -> Any:
    """Whether each element of ``element`` occurs in ``test_elements`` (``element``'s
    shape); ``method`` picks an all-pairs comparison or a sorted binary search."""
    if method not in _METHODS:
        raise ValueError(f"isin: method={method!r} not recognized; expected one of "
                         f"{_METHODS}")
    check_arraylike("isin", element, test_elements)
    el, te = promote_dtypes(asarray(element), asarray(test_elements))
    shape = get_aval(el).shape
    found = _contains(ravel(el), ravel(te), method)
    if invert:
        found = lax.bitwise_not(found)
    return lax.reshape(found, shape)


def _sorted_firsts(x: Any) -> tuple[Any, Any]:
    """``x`` sorted, and a mask of the first occurrence of each value."""
    s = sort(x)
    n = get_aval(s).shape[0]
    if n == 0:
        return s, lax.full((0,), True, np.bool_)
    differs = lax.ne(s[1:], s[:-1])
    return s, lax.concatenate([lax.full((1,), True, np.bool_), differs], 0)


def _compact(name: str, values: Any, keep: Any, size: int | None,
             fill_value: Any) -> tuple[Any, Any]:
    """The entries of ``values`` where ``keep`` holds, in order: all of them (concrete
    inputs only) or exactly ``size``, padded with ``fill_value`` (default: the first
    kept value, the smallest for sorted ``values``).  Also returns the positions."""
    n = get_aval(values).shape[0]
    if size is None and n == 0:
        return values, lax.full((0,), 0, np.int32)
    if size is None:
        mask = np.asarray(concrete_value(keep, f"{name} (without size=)"))
        pos = asarray(np.flatnonzero(mask).astype(np.int32))
        return values[pos], pos
    pos = nonzero(keep, size=size, fill_value=max(n - 1, 0))[0]
    if n == 0:
        fill = 0 if fill_value is None else fill_value
        return lax.full((size,), fill, get_aval(values).dtype), pos
    vals = values[pos]
    count = _sum(keep)
    valid = lax.lt(lax.iota(np.int32, size), lax.convert_element_type(count, np.int32))
    fill = vals[0] if fill_value is None else asarray(fill_value).astype(vals.dtype)
    return where(valid, vals, fill), pos


def union1d(ar1: Any, ar2: Any, *, size: int | None = None,
            fill_value: Any = None) -> Any:
    """The sorted unique values found in either array."""
    a, b = _flat_pair("union1d", ar1, ar2)
    size = _static_size("union1d", size)
    if size is None:
        concrete_value(a, "union1d ar1"), concrete_value(b, "union1d ar2")
    return unique(lax.concatenate([a, b], 0), size=size, fill_value=fill_value)


def setdiff1d(ar1: Any, ar2: Any, assume_unique: bool = False, *,
              size: int | None = None, fill_value: Any = None) -> Any:
    """The unique values of ``ar1`` that are not in ``ar2`` (sorted unless
    ``assume_unique``); padding defaults to 0."""
    a, b = _flat_pair("setdiff1d", ar1, ar2)
    size = _static_size("setdiff1d", size)
    if assume_unique:
        vals, firsts = a, lax.full(get_aval(a).shape, True, np.bool_)
    else:
        vals, firsts = _sorted_firsts(a)
    keep = lax.bitwise_and(firsts, lax.bitwise_not(_contains(vals, b, "auto")))
    return _compact("setdiff1d", vals, keep, size, 0 if fill_value is None else fill_value)[0]


def setxor1d(ar1: Any, ar2: Any, assume_unique: bool = False, *,
             size: int | None = None, fill_value: Any = None) -> Any:
    """The sorted unique values found in exactly one of the arrays."""
    a, b = _flat_pair("setxor1d", ar1, ar2)
    size = _static_size("setxor1d", size)
    s1, f1 = _sorted_firsts(a)
    s2, f2 = _sorted_firsts(b)
    k1 = lax.bitwise_and(f1, lax.bitwise_not(_contains(s1, b, "auto")))
    k2 = lax.bitwise_and(f2, lax.bitwise_not(_contains(s2, a, "auto")))
    vals = lax.concatenate([s1, s2], 0)
    keep = lax.concatenate([k1, k2], 0)
    # kept values first, each group sorted
    drop_key, vals = lax.sort((lax.bitwise_not(keep), vals), num_keys=2)
    return _compact("setxor1d", vals, lax.bitwise_not(drop_key), size, fill_value)[0]


def intersect1d(ar1: Any, ar2: Any, assume_unique: bool = False,
                return_indices: bool = False, *, size: int | None = None,
                fill_value: Any = None) -> Any:
    """The sorted unique values found in both arrays; with ``return_indices``, also the
    index of each one's first occurrence in ``ar1`` and in ``ar2`` (padding: the
    arrays' sizes)."""
    a, b = _flat_pair("intersect1d", ar1, ar2)
    size = _static_size("intersect1d", size)
    order1 = argsort(a, stable=True)
    s1, f1 = _sorted_firsts(a)
    keep = lax.bitwise_and(f1, _contains(s1, b, "auto"))
    vals, pos = _compact("intersect1d", s1, keep, size, fill_value)
    if not return_indices:
        return vals
    n1, n2 = get_aval(a).shape[0], get_aval(b).shape[0]
    order2 = argsort(b, stable=True)
    s2 = b[order2]
    idx1 = order1[pos] if n1 else lax.full(get_aval(pos).shape, 0, np.int32)
    at2 = lax.clamp(np.int32(0), searchsorted(s2, vals).astype(np.int32),
                    np.int32(max(n2 - 1, 0)))
    idx2 = order2[at2] if n2 else lax.full(get_aval(pos).shape, 0, np.int32)
    if size is not None:
        valid = lax.lt(lax.iota(np.int32, size),
                       lax.convert_element_type(_sum(keep), np.int32))
        idx1 = where(valid, idx1, n1)
        idx2 = where(valid, idx2, n2)
    return vals, idx1.astype(np.int32), idx2.astype(np.int32)
