"""Index helpers: ``mgrid``/``ogrid``/``r_``/``c_``/``s_``/``index_exp``, ``ix_``, the
``*_indices`` families, ``ravel_multi_index``/``unravel_index`` and ``fill_diagonal``."""
from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.numpy._creation import (arange, array, asarray, concrete_value, linspace,
                                     meshgrid, ones)
from tinyjax.numpy._indexing import where
from tinyjax.numpy._shape import concatenate, expand_dims, reshape
from tinyjax.numpy._sorting import nonzero
from tinyjax.numpy._util import check_arraylike, promote_dtypes

__all__ = ["mgrid", "ogrid", "r_", "c_", "s_", "index_exp", "ix_", "diag_indices",
           "diag_indices_from", "tril_indices", "triu_indices", "tril_indices_from",
           "triu_indices_from", "mask_indices", "ravel_multi_index", "unravel_index",
           "fill_diagonal"]

s_ = np.s_
index_exp = np.index_exp


def _int(x: Any, what: str) -> int:
    return operator.index(concrete_value(x, what))


def _slice_points(s: slice, what: str) -> Any:
    """The points of one ``mgrid`` slice: ``start:stop:step`` (an arange) or
    ``start:stop:Nj`` (N points, stop included)."""
    start = 0 if s.start is None else concrete_value(s.start, what)
    stop = concrete_value(s.stop, what)
    step = 1 if s.step is None else concrete_value(s.step, what)
    if isinstance(step, complex) or np.iscomplexobj(step):
        return linspace(start, stop, int(abs(step)), endpoint=True)
    return arange(start, stop, step)


class _Grid:
    """``mgrid[...]`` (dense) and ``ogrid[...]`` (open): coordinate arrays of slices."""

    def __init__(self, sparse: bool, name: str):
        self.sparse, self.name = sparse, name

    def __getitem__(self, key: slice | tuple[slice, ...]) -> Any:
        if isinstance(key, slice):
            return _slice_points(key, self.name)
        points = [_slice_points(k, self.name) for k in key]
        points = promote_dtypes(*points)
        if not points:
            return array([], np.int32)
        grids = meshgrid(*points, indexing="ij", sparse=self.sparse)
        return grids if self.sparse else lax.concatenate(
            [expand_dims(g, 0) for g in grids], 0)


mgrid = _Grid(sparse=False, name="mgrid")
ogrid = _Grid(sparse=True, name="ogrid")


class _Concatenator:
    """``r_[...]`` and ``c_[...]``: concatenation of arrays, scalars and slices along an
    axis, with numpy's string directives (``'axis'``, ``'axis,ndmin,trans1d'``,
    ``'r'``/``'c'`` for a row or column matrix)."""

    def __init__(self, axis: int, ndmin: int, trans1d: int, name: str):
        self.axis, self.ndmin, self.trans1d, self.name = axis, ndmin, trans1d, name

    def __getitem__(self, key: Any) -> Any:
        items = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d, matrix = self.axis, self.ndmin, self.trans1d, None
        if items and isinstance(items[0], str):
            directive, items = items[0], items[1:]
            if directive in ("r", "c"):
                matrix = directive
            else:
                parts = [int(p) for p in directive.split(",")]
                axis = parts[0]
                if len(parts) > 1:
                    ndmin = parts[1]
                if len(parts) > 2:
                    trans1d = parts[2]
                if len(parts) > 3:
                    raise ValueError(f"{self.name}: too many directives in {directive!r}")
        arrays = []
        for item in items:
            if isinstance(item, slice):
                value = _slice_points(item, self.name)
            elif isinstance(item, str):
                raise ValueError(f"{self.name}: string directive {item!r} must be first")
            else:
                value = asarray(item)
            arrays.append(self._lift(value, ndmin, trans1d))
        if not arrays:
            return array([])
        out = concatenate(promote_dtypes(*arrays), axis=axis)
        if matrix is not None and get_aval(out).ndim < 2:
            out = reshape(out, (1, -1))
        return out.T if matrix == "c" else out

    @staticmethod
    def _lift(x: Any, ndmin: int, trans1d: int) -> Any:
        nd = get_aval(x).ndim
        if nd >= ndmin:
            return x
        shape = get_aval(x).shape
        new = [1] * ndmin
        # numpy: the original axes go where trans1d says (-1: at the end)
        start = ndmin - nd if trans1d == -1 else trans1d
        new[start:start + nd] = shape
        return reshape(x, tuple(new))


r_ = _Concatenator(axis=0, ndmin=1, trans1d=-1, name="r_")
c_ = _Concatenator(axis=-1, ndmin=2, trans1d=0, name="c_")


def ix_(*args: Any) -> tuple[Any, ...]:
    """An open mesh from 1-D index arrays: ``a[ix_(rows, cols)]`` picks a sub-grid."""
    check_arraylike("ix_", *args)
    n = len(args)
    out = []
    for i, a in enumerate(args):
        a = asarray(a)
        if get_aval(a).ndim != 1:
            raise ValueError(f"Cross index must be 1 dimensional, got {get_aval(a).ndim}")
        if get_aval(a).dtype == np.bool_:
            a = nonzero(a)[0]
        shape = [1] * n
        shape[i] = get_aval(a).shape[0]
        out.append(reshape(a, tuple(shape)))
    return tuple(out)


def diag_indices(n: int, ndim: int = 2) -> tuple[Any, ...]:
    """Indices of the main diagonal of an ``n x n x ...`` array of ``ndim`` axes."""
    n = _int(n, "n argument of jnp.diag_indices")
    ndim = _int(ndim, "ndim argument of jnp.diag_indices")
    if n < 0:
        raise ValueError(f"n argument to diag_indices must be nonnegative, got {n}")
    if ndim < 0:
        raise ValueError(f"ndim argument to diag_indices must be nonnegative, got {ndim}")
    return (arange(n),) * ndim


def diag_indices_from(arr: Any) -> tuple[Any, ...]:
    """:func:`diag_indices` for an array whose axes all have the same length."""
    check_arraylike("diag_indices_from", arr)
    shape = get_aval(asarray(arr)).shape
    if len(shape) < 2:
        raise ValueError("input array must be at least 2-d")
    if len(set(shape)) != 1:
        raise ValueError("All dimensions of input must be of equal length")
    return diag_indices(shape[0], len(shape))


def _tri_indices(name: str, mask_fn: Callable, n: Any, k: Any, m: Any) -> tuple[Any, Any]:
    n = _int(n, f"n argument of jnp.{name}")
    k = _int(k, f"k argument of jnp.{name}")
    m = n if m is None else _int(m, f"m argument of jnp.{name}")
    rows, cols = np.nonzero(mask_fn(np.ones((n, m), bool), k))
    return asarray(rows.astype(np.int32)), asarray(cols.astype(np.int32))


def tril_indices(n: int, k: int = 0, m: int | None = None) -> tuple[Any, Any]:
    """Row and column indices of the lower triangle (diagonal ``k`` and below)."""
    return _tri_indices("tril_indices", np.tril, n, k, m)


def triu_indices(n: int, k: int = 0, m: int | None = None) -> tuple[Any, Any]:
    """Row and column indices of the upper triangle (diagonal ``k`` and above)."""
    return _tri_indices("triu_indices", np.triu, n, k, m)


def _shape2(name: str, arr: Any) -> tuple[int, int]:
    shape = arr.shape if hasattr(arr, "shape") else get_aval(asarray(arr)).shape
    if len(shape) != 2:
        raise ValueError(f"{name} requires a 2-dimensional array, got shape {shape}")
    return shape


def tril_indices_from(arr: Any, k: int = 0) -> tuple[Any, Any]:
    """:func:`tril_indices` for the shape of the 2-D ``arr``."""
    n, m = _shape2("tril_indices_from", arr)
    return tril_indices(n, k, m)


def triu_indices_from(arr: Any, k: int = 0) -> tuple[Any, Any]:
    """:func:`triu_indices` for the shape of the 2-D ``arr``."""
    n, m = _shape2("triu_indices_from", arr)
    return triu_indices(n, k, m)


def mask_indices(n: int, mask_func: Callable, k: int = 0, *,
                 size: int | None = None) -> tuple[Any, Any]:
    """Indices where ``mask_func(ones((n, n)), k)`` is nonzero (e.g. ``jnp.triu``)."""
    n = _int(n, "n argument of jnp.mask_indices")
    mask = mask_func(ones((n, n), np.int32), k)
    return nonzero(mask, size=size)


def index_in_range(name: str, index: Any, size: int, mode: str, entries: str) -> Any:
    """``index`` brought into ``[0, size)`` by ``mode``: 'wrap' (modulo), 'clip', or
    'raise' (concrete indices only; ValueError "invalid entry in <entries> array")."""
    if mode == "wrap":
        return index % size
    if mode == "clip":
        return lax.clamp(np.array(0, get_aval(index).dtype), index,
                         np.array(size - 1, get_aval(index).dtype))
    if mode != "raise":
        raise ValueError(f"{name}: invalid mode={mode!r}. Expected 'raise', 'wrap', or "
                         "'clip'")
    value = np.asarray(concrete_value(index, f"{name} with mode='raise' (use mode='wrap' "
                                             "or 'clip' under jit)"))
    if np.any((value < 0) | (value >= size)):
        raise ValueError(f"invalid entry in {entries} array")
    return index


def ravel_multi_index(multi_index: Any, dims: Any, mode: str = "raise",
                      order: str = "C", *, dtype: Any = None) -> Any:
    """Flat indices into an array of shape ``dims`` from per-axis index arrays."""
    if order not in ("C", "F"):
        raise ValueError("only 'C' or 'F' order is permitted")
    dims = tuple(_int(d, "dims argument of jnp.ravel_multi_index") for d in dims)
    if len(multi_index) != len(dims):
        raise ValueError(f"parameter multi_index must be a sequence of length {len(dims)}")
    check_arraylike("ravel_multi_index", *multi_index)
    index = [asarray(i) for i in multi_index]
    for i in index:
        if not (dtypes.is_int(get_aval(i).dtype)):
            raise TypeError("only int indices permitted")
    index = promote_dtypes(*index)
    index = [index_in_range("ravel_multi_index", i, d, mode, "coordinates")
             for i, d in zip(index, dims)]
    strides = np.cumprod((1,) + (dims[::-1] if order == "C" else dims)[:-1])
    strides = strides[::-1] if order == "C" else strides
    dt = dtypes.default_int_dtype() if dtype is None else dtypes.canonicalize_dtype(dtype)
    out = None
    for i, s in zip(index, strides):
        term = i.astype(dt) * int(s)
        out = term if out is None else out + term
    return out if out is not None else asarray(0, dt)


def unravel_index(indices: Any, shape: Any) -> tuple[Any, ...]:
    """Per-axis indices of the flat ``indices`` into an array of ``shape`` (indices out of
    range are clipped, as in JAX)."""
    check_arraylike("unravel_index", indices)
    indices = asarray(indices)
    if not (dtypes.is_int(get_aval(indices).dtype)):
        raise TypeError("only int indices permitted")
    shape = tuple(_int(d, "shape argument of jnp.unravel_index") for d in
                  (shape if np.ndim(shape) else (shape,)))
    total = int(np.prod(shape))
    dt = get_aval(indices).dtype
    if total == 0 and get_aval(indices).size:
        raise ValueError("cannot unravel index into an array of size 0")
    clipped = lax.clamp(np.array(-total, dt), indices, np.array(max(total - 1, 0), dt))
    flat = where(clipped < 0, clipped + total, clipped)
    out = []
    for d in reversed(shape):
        out.append(flat % d)
        flat = flat // d
    return tuple(reversed(out))


def fill_diagonal(a: Any, val: Any, wrap: bool = False, *, inplace: bool = True) -> Any:
    """``a`` with its main diagonal set to ``val`` (repeated cyclically); ``inplace=False``
    is required, as in JAX (arrays are immutable)."""
    if inplace:
        raise NotImplementedError("JAX arrays are immutable, must use inplace=False")
    check_arraylike("fill_diagonal", a, val)
    a = asarray(a)
    shape = get_aval(a).shape
    if len(shape) < 2:
        raise ValueError("array must be at least 2-d")
    if len(shape) > 2 and len(set(shape)) != 1:
        raise ValueError("All dimensions of input must be of equal length")
    n = min(shape)
    if len(shape) == 2 and wrap:
        # numpy's wrap: the diagonal restarts every n+1 rows of a tall matrix
        flat_len = shape[0] * shape[1]
        positions = np.arange(0, flat_len, shape[1] + 1)
    else:
        positions = np.ravel_multi_index((np.arange(n),) * len(shape), shape)
    values = asarray(val).astype(get_aval(a).dtype)
    if get_aval(values).ndim:
        values = reshape(values, (-1,))
    if get_aval(values).ndim:
        reps = -(-len(positions) // max(get_aval(values).shape[0], 1))
        values = concatenate([values] * reps)[:len(positions)]
    flat = lax.reshape(a, (int(np.prod(shape)),))
    flat = flat.at[asarray(positions.astype(np.int32))].set(values)
    return lax.reshape(flat, shape)
