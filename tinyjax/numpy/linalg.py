"""``tinyjax.numpy.linalg``: norms and the products of the array API's linalg.

Decompositions (svd, eigh, qr, cholesky, solve, inv, det) are not implemented yet,
so the norms that need singular values (``ord=2``, ``-2``, ``'nuc'`` of matrices)
raise NotImplementedError.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import lax
from tinyjax.core import get_aval
from tinyjax.numpy._linalg import (cross as _cross, matmul, outer, tensordot,  # noqa: F401
                                   trace as _trace, vecdot)
from tinyjax.numpy._creation import diagonal as _diagonal
from tinyjax.numpy._util import check_arraylike, promote_args_inexact

__all__ = ["norm", "vector_norm", "matrix_norm", "matmul", "outer", "tensordot", "vecdot",
           "cross", "trace", "diagonal", "matrix_transpose"]


def _full_like(x: Any, value: Any) -> Any:
    aval = get_aval(x)
    return lax.full(aval.shape, value, aval.dtype)


def _keepdims(x: Any, axes: Sequence[int], ndim: int, keepdims: bool) -> Any:
    if not keepdims:
        return x
    return lax.expand_dims(x, tuple(sorted(axes)))


def _canon_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError("Duplicate axes given.")
    return tuple(out)


def _vector_norm(x: Any, ord: Any, axes: tuple[int, ...]) -> Any:  # noqa: A002
    ax = lax.abs(x)
    if ord is None or ord == 2:
        return lax.sqrt(lax.reduce_sum(lax.mul(x, x), axes))
    if ord == np.inf:
        return lax.reduce_max(ax, axes)
    if ord == -np.inf:
        return lax.reduce_min(ax, axes)
    if ord == 0:
        nz = lax.convert_element_type(lax.ne(x, _full_like(x, 0)), get_aval(x).dtype)
        return lax.reduce_sum(nz, axes)
    if ord == 1:
        return lax.reduce_sum(ax, axes)
    if isinstance(ord, str):
        raise ValueError(f"Invalid order '{ord}' for vector norm.")
    p = float(ord)
    s = lax.reduce_sum(lax.pow(ax, _full_like(ax, p)), axes)
    return lax.pow(s, lax.full(get_aval(s).shape, 1.0 / p, get_aval(s).dtype))


def _matrix_norm(x: Any, ord: Any, row: int, col: int, keepdims: bool) -> Any:  # noqa: A002
    nd = get_aval(x).ndim
    if ord in (None, "fro", "f"):
        out = lax.sqrt(lax.reduce_sum(lax.mul(x, x), (row, col)))
        return _keepdims(out, (row, col), nd, keepdims)
    if ord in (1, -1, np.inf, -np.inf):
        ax = lax.abs(x)
        inner, outer_ax = (row, col) if ord in (1, -1) else (col, row)
        sums = lax.reduce_sum(ax, (inner,))
        outer_ax -= inner < outer_ax
        out = (lax.reduce_max if ord in (1, np.inf) else lax.reduce_min)(sums, (outer_ax,))
        return _keepdims(out, (row, col), nd, keepdims)
    if ord in (2, -2, "nuc"):
        raise NotImplementedError(
            f"jnp.linalg.norm with ord={ord!r} for matrices needs the singular value "
            "decomposition (jnp.linalg.svd), which tinyjax does not implement yet.")
    raise ValueError(f"Invalid order '{ord}' for matrix norm.")


def norm(x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
         keepdims: bool = False) -> Any:
    """Vector or matrix norm (numpy's ``ord`` conventions); the result is float."""
    check_arraylike("jnp.linalg.norm", x)
    (x,) = promote_args_inexact("jnp.linalg.norm", x)
    nd = get_aval(x).ndim
    if axis is None:
        if ord is None:
            out = lax.sqrt(lax.reduce_sum(lax.mul(x, x), tuple(range(nd))))
            return lax.reshape(out, (1,) * nd) if keepdims else out
        axes = tuple(range(nd))
    else:
        axes = _canon_axes(axis, nd)
    if len(axes) == 1:
        return _keepdims(_vector_norm(x, ord, axes), axes, nd, keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes[0], axes[1], keepdims)
    raise ValueError(f"Invalid axis values ({axis}) for jnp.linalg.norm.")


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False,
                ord: Any = 2) -> Any:  # noqa: A002
    """Vector norm over ``axis`` (all axes, flattened, for None)."""
    check_arraylike("jnp.linalg.vector_norm", x)
    (x,) = promote_args_inexact("jnp.linalg.vector_norm", x)
    nd = get_aval(x).ndim
    if axis is None:
        out = _vector_norm(lax.reshape(x, (int(np.prod(get_aval(x).shape)),)), ord, (0,))
        return lax.reshape(out, (1,) * nd) if keepdims else out
    axes = _canon_axes(axis, nd)
    return _keepdims(_vector_norm(x, ord, axes), axes, nd, keepdims)


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    """Matrix norm over the last two axes."""
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Cross product of 3-vectors along ``axis``."""
    return _cross(x1, x2, axis=axis)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """Trace over the last two axes."""
    return _trace(x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """Diagonal over the last two axes."""
    return _diagonal(x, offset=offset, axis1=-2, axis2=-1)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    nd = get_aval(x).ndim
    if nd < 2:
        raise ValueError(f"x must be at least two-dimensional for matrix_transpose; got "
                         f"ndim={nd}")
    return lax.transpose(x, tuple(range(nd - 2)) + (nd - 1, nd - 2))
