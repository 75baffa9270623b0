"""Reductions to condensed forms by Householder reflectors, and products with them, as
primitives (LAPACK on the CPU, as in JAX): ``hessenberg`` (``gehrd``), ``tridiagonal``
(``sytrd``/``hetrd``), ``householder_product`` (``orgqr``/``ungqr``) and ``ormqr``
(``ormqr``/``unmqr``).

Like JAX's, they have no derivative rules; they batch over leading dimensions.  A
reduction leaves the reflectors ``v_i`` (unit first component, implicit) in the part of
the matrix it does not return, with their factors ``tau_i``: ``H_i = I - tau_i v_i v_i^H``.
"""
from __future__ import annotations

from typing import Any

from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.linalg import _lapack
from tinyjax.lax.linalg._common import check_same_dtypes, linalg_primitive

__all__ = ["hessenberg", "hessenberg_p", "householder_product", "householder_product_p",
           "ormqr", "ormqr_p", "tridiagonal", "tridiagonal_p"]


# ---------------------------------------------------------------------------
# hessenberg
# ---------------------------------------------------------------------------


def _hessenberg_shape(shape):
    if shape[0] != shape[1]:
        raise ValueError("Argument to Hessenberg reduction must have shape [..., n, n], "
                         f"got shape {tuple(shape)}")
    return tuple(shape), (max(shape[0] - 1, 0),)


hessenberg_p = linalg_primitive("hessenberg", (2,), _hessenberg_shape,
                                lambda dt: (dt, dt), _lapack.hessenberg,
                                multiple_results=True)


def hessenberg(a: Any) -> tuple[Any, Any]:
    """Reduce square ``a`` (``[..., n, n]``) to upper Hessenberg form ``Q^H a Q``:
    ``(h, taus)``, the Hessenberg matrix in ``h``'s upper triangle and first
    subdiagonal, the reflectors below it, and their ``n - 1`` factors ``taus``."""
    return tuple(hessenberg_p.bind(as_operand(a)))


# ---------------------------------------------------------------------------
# householder_product
# ---------------------------------------------------------------------------


def _householder_product_shape(a_shape, taus_shape):
    m, n = a_shape
    if m < n:
        raise ValueError("The first argument to householder_product must have at least as "
                         f"many rows as columns, got shape {tuple(a_shape)}")
    if taus_shape[0] > min(m, n):
        raise ValueError("The second argument to householder_product must not have more "
                         "rows than the minimum of the first argument's rows and columns; "
                         f"got shapes {tuple(a_shape)} and {tuple(taus_shape)}.")
    return tuple(a_shape)


householder_product_p = linalg_primitive(
    "householder_product", (2, 1), _householder_product_shape,
    lambda *dts: check_same_dtypes("householder_product", *dts), _lapack.householder_product)


def householder_product(a: Any, taus: Any) -> Any:
    """The first ``n`` columns of ``H_1 ... H_k``, the reflectors stored below the
    diagonal of ``a`` (``[..., m, n]``, ``m >= n``) with factors ``taus`` (``[..., k]``,
    ``k <= n``): the orthogonal (unitary) ``Q`` of a QR factorisation."""
    return householder_product_p.bind(as_operand(a), as_operand(taus))


# ---------------------------------------------------------------------------
# ormqr
# ---------------------------------------------------------------------------


def _ormqr_shape(a_shape, taus_shape, c_shape, *, left, transpose):
    m, n = a_shape
    if left and c_shape[0] != m:
        raise ValueError("ormqr with left=True expects c to have the same number of rows as "
                         f"the Householder matrix a. Got a shape {tuple(a_shape)} and c "
                         f"shape {tuple(c_shape)}.")
    if not left and c_shape[1] != m:
        raise ValueError("ormqr with left=False expects c to have the same number of "
                         "columns as the Householder matrix a has rows. Got a shape "
                         f"{tuple(a_shape)} and c shape {tuple(c_shape)}.")
    if taus_shape[0] > min(m, n):
        raise ValueError("ormqr expects at most min(m, n) Householder factors taus for a "
                         f"of shape {tuple(a_shape)}; got taus shape {tuple(taus_shape)}.")
    return tuple(c_shape)


ormqr_p = linalg_primitive("ormqr", (2, 1, 2), _ormqr_shape,
                           lambda *dts, **_: check_same_dtypes("ormqr", *dts), _lapack.ormqr)


def ormqr(a: Any, taus: Any, c: Any, *, left: bool = True, transpose: bool = False) -> Any:
    """``c`` multiplied by ``Q = H_1 ... H_k`` (the reflectors below the diagonal of ``a``,
    ``[..., m, n]``, with factors ``taus``, ``[..., k]``) without forming ``Q``:
    ``Q c`` (``left``) or ``c Q``; with ``transpose`` ``Q^T`` (``Q^H`` for complex)."""
    return ormqr_p.bind(as_operand(a), as_operand(taus), as_operand(c), left=bool(left),
                        transpose=bool(transpose))


# ---------------------------------------------------------------------------
# tridiagonal
# ---------------------------------------------------------------------------


def _tridiagonal_shape(shape, *, lower):
    if shape[0] != shape[1] or shape[1] == 0:
        raise ValueError("The input to tridiagonal must be a square matrix. Got shape "
                         f"{tuple(shape)}.")
    n = shape[0]
    return tuple(shape), (n,), (n - 1,), (n - 1,)


def _tridiagonal_dtype(dt, *, lower):
    real = ew.real_dtype(dt)
    return dt, real, real, dt


tridiagonal_p = linalg_primitive("tridiagonal", (2,), _tridiagonal_shape, _tridiagonal_dtype,
                                 _lapack.tridiagonal, multiple_results=True)


def tridiagonal(a: Any, *, lower: bool = True) -> tuple[Any, Any, Any, Any]:
    """Reduce Hermitian ``a`` (``[..., n, n]``; only its ``lower`` or upper triangle is
    read) to real symmetric tridiagonal form ``Q^H a Q``: ``(a, d, e, taus)`` -- the
    reduced matrix (diagonal and first sub- or superdiagonal, the reflectors beyond), its
    diagonal ``d`` and off-diagonal ``e`` (real) and the reflectors' factors ``taus``."""
    return tuple(tridiagonal_p.bind(as_operand(a), lower=bool(lower)))
