"""Matrix factorisations as primitives: cholesky, lu (with lu_pivots_to_permutation),
qr and schur, with JAX's semantics and derivative rules."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes
from tinyjax.core import ShapedArray, get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.linalg import _lapack
from tinyjax.lax.linalg._common import (H, T, check_square, diag_matrix, diagonal, eye,
                                        linalg_primitive, matmul, symmetrize, tril, triu)
from tinyjax.lax.linalg.solves import lu_solve, permutation_matrix, triangular_solve
from tinyjax.lax.shape import full
from tinyjax.lax.slicing import concatenate, pad, slice_in_dim
from tinyjax.interpreters import ad
from tinyjax.interpreters.ad import Zero

__all__ = ["cholesky", "cholesky_p", "lu", "lu_p", "lu_pivots_to_permutation",
           "lu_pivots_to_permutation_p", "qr", "qr_p", "schur", "schur_p"]


def _same(dt, **_):
    return dt


def _zero_pad(x: Any, axis: int, before: int, after: int) -> Any:
    cfg = [(0, 0, 0)] * get_aval(x).ndim
    cfg[axis] = (before, after, 0)
    return pad(x, full((), 0, get_aval(x).dtype), cfg)


def _columns(x: Any, start: int, stop: int) -> Any:
    return slice_in_dim(x, start, stop, axis=get_aval(x).ndim - 1)


def _rows(x: Any, start: int, stop: int) -> Any:
    return slice_in_dim(x, start, stop, axis=get_aval(x).ndim - 2)


# ---------------------------------------------------------------------------
# cholesky
# ---------------------------------------------------------------------------


def _cholesky_shape(shape):
    check_square("cholesky", shape)
    return shape


cholesky_p = linalg_primitive("cholesky", (2,), _cholesky_shape, _same, _lapack.cholesky)


def cholesky(x: Any, *, symmetrize_input: bool = True) -> Any:
    """The lower Cholesky factor ``L`` of ``x = L L^H`` (NaNs where ``x`` is not
    positive definite).  With ``symmetrize_input`` ``(x + x^H) / 2`` is factored,
    else only the lower triangle of ``x`` is read."""
    x = as_operand(x)
    check_square("cholesky", get_aval(x).shape)
    return cholesky_p.bind(symmetrize(x) if symmetrize_input else x)


def _cholesky_jvp(primals, tangents):
    """dL = L phi(L^-1 dA L^-H), phi keeping the lower triangle with the diagonal halved
    (Murray, 2016)."""
    (x,), (dx,) = primals, tangents
    chol = cholesky_p.bind(x)
    tmp = triangular_solve(chol, dx, left_side=False, transpose_a=True, conjugate_a=True,
                           lower=True)
    inner = triangular_solve(chol, tmp, left_side=True, lower=True)
    low = tril(inner)
    half_diag = diag_matrix(ew.mul(diagonal(low), full((), 0.5, get_aval(low).dtype)))
    return chol, matmul(chol, ew.sub(low, half_diag))


ad.primitive_jvps[cholesky_p] = _cholesky_jvp

# ---------------------------------------------------------------------------
# lu and lu_pivots_to_permutation
# ---------------------------------------------------------------------------

_I32 = np.dtype(np.int32)


def _lu_shape(shape):
    m, n = shape
    return shape, (min(m, n),), (m,)


lu_p = linalg_primitive("lu", (2,), _lu_shape, lambda dt: (dt, _I32, _I32), _lapack.lu,
                        multiple_results=True)


def lu(x: Any) -> tuple[Any, Any, Any]:
    """LU decomposition with partial pivoting, ``P x = L U``: ``(lu, pivots,
    permutation)`` -- L (unit diagonal, implicit) and U packed in one matrix, the
    row swaps (int32) and the permutation they make (int32)."""
    return tuple(lu_p.bind(as_operand(x)))


def _lu_jvp(primals, tangents):
    """L' = L tril(L^-1 P A' U^-1, -1), U' = triu(L^-1 P A' U^-1) U (de Hoog,
    Anderssen and Lukas), with L and U made square."""
    (a,), (da,) = primals, tangents
    packed, pivots, perm = lu_p.bind(a)
    m, n = get_aval(a).shape[-2:]
    k = min(m, n)
    batch = get_aval(a).shape[:-2]
    dt = get_aval(a).dtype
    lower = ew.add(_zero_pad(tril(_columns(packed, 0, k), -1), -1, 0, m - k),
                   eye(m, dt, batch + (m, m)))
    upper = _zero_pad(triu(_rows(packed, 0, k)), -2, 0, n - k)
    if n > k:
        corner = _zero_pad(_zero_pad(eye(n - k, dt, batch + (n - k, n - k)), -2, k, 0),
                           -1, k, 0)
        upper = ew.add(upper, corner)
    la = triangular_solve(lower, matmul(permutation_matrix(perm, dt), da), left_side=True,
                          lower=True, unit_diagonal=True)
    lau = triangular_solve(upper, la, left_side=False, lower=False)
    d_packed = ew.add(matmul(lower, tril(lau, -1)), matmul(triu(lau), upper))
    return (packed, pivots, perm), (d_packed, Zero.from_primal(pivots),
                                    Zero.from_primal(perm))


ad.primitive_jvps[lu_p] = _lu_jvp


def _check_pivots(i: int, aval: ShapedArray) -> None:
    if aval.dtype != _I32:
        raise TypeError("lu_pivots_to_permutation does not accept dtype "
                        f"{aval.dtype.name}. Accepted dtypes are int32.")


def _permutation_shape(shape, *, permutation_size):
    if permutation_size < shape[0]:
        raise ValueError(f"Output permutation size {permutation_size} has to exceed the "
                         f"trailing dimension of the pivots. Got pivots size {shape[0]}")
    return (permutation_size,)


lu_pivots_to_permutation_p = linalg_primitive(
    "lu_pivots_to_permutation", (1,), _permutation_shape, lambda dt, **_: _I32,
    lambda piv, *, permutation_size: _lapack.pivots_to_permutation(piv, permutation_size),
    accepts=_check_pivots)
ad.defjvp_zero(lu_pivots_to_permutation_p)


def lu_pivots_to_permutation(pivots: Any, permutation_size: int) -> Any:
    """The permutation of ``range(permutation_size)`` made by the row swaps ``pivots``."""
    return lu_pivots_to_permutation_p.bind(as_operand(pivots),
                                           permutation_size=int(permutation_size))


# ---------------------------------------------------------------------------
# qr
# ---------------------------------------------------------------------------


def _qr_shape(shape, *, pivoting, full_matrices, use_magma=None):
    m, n = shape
    k = m if full_matrices else min(m, n)
    return ((m, k), (k, n), (n,)) if pivoting else ((m, k), (k, n))


def _qr_dtype(dt, *, pivoting, **_):
    return (dt, dt, _I32) if pivoting else (dt, dt)


qr_p = linalg_primitive("qr", (2,), _qr_shape, _qr_dtype, _lapack.qr, multiple_results=True)


def qr(x: Any, *, pivoting: bool = False, full_matrices: bool = True,
       use_magma: bool | None = None) -> tuple:
    """``x = Q R`` (``x[:, P] = Q R`` with ``pivoting``): ``(q, r)`` or ``(q, r, p)``;
    ``q`` is ``m x m`` and ``r`` ``m x n`` with ``full_matrices``, else ``m x k`` and
    ``k x n`` (``k = min(m, n)``)."""
    return tuple(qr_p.bind(as_operand(x), pivoting=bool(pivoting),
                           full_matrices=bool(full_matrices), use_magma=use_magma))


def _thin_qr_jvp(q, r, dx):
    """dQ, dR of ``x = Q R`` for ``m >= n`` with ``Q`` ``m x n`` (Townsend's derivation)."""
    dx_rinv = triangular_solve(r, dx)  # right-side solve: dx R^-1
    qt_dx_rinv = matmul(H(q), dx_rinv)
    low = tril(qt_dx_rinv, -1)
    skew = ew.sub(low, H(low))
    if dtypes.is_complex(get_aval(q).dtype):  # the imaginary part of the diagonal
        im_diag = diagonal(ew.sub(qt_dx_rinv, ew.convert_element_type(
            ew.real(qt_dx_rinv), get_aval(qt_dx_rinv).dtype)))
        skew = ew.add(skew, diag_matrix(im_diag))
    dq = ew.add(matmul(q, ew.sub(skew, qt_dx_rinv)), dx_rinv)
    dr = matmul(ew.sub(qt_dx_rinv, skew), r)
    return dq, dr


def _qr_jvp(primals, tangents, *, pivoting, full_matrices, use_magma=None):
    (x,), (dx,) = primals, tangents
    outs = qr_p.bind(x, pivoting=pivoting, full_matrices=full_matrices, use_magma=use_magma)
    q, r = outs[0], outs[1]
    m, n = get_aval(x).shape[-2:]
    if pivoting:  # differentiate x[:, p]
        dx = matmul(dx, T(permutation_matrix(outs[2], get_aval(dx).dtype)))
        x = matmul(x, T(permutation_matrix(outs[2], get_aval(x).dtype)))
    if m < n:  # x = [x1 x2]: x1 = Q R1 (square), R2 = Q^H x2
        dq, dr1 = _thin_qr_jvp(q, _columns(r, 0, m), _columns(dx, 0, m))
        dr2 = ew.add(matmul(H(dq), _columns(x, m, n)), matmul(H(q), _columns(dx, m, n)))
        dq_dr = (dq, concatenate([dr1, dr2], get_aval(dr1).ndim - 1))
    else:
        q_mn = _columns(q, 0, n) if full_matrices else q
        r_nn = _rows(r, 0, n) if full_matrices else r
        dq_mn, dr_nn = _thin_qr_jvp(q_mn, r_nn, dx)
        if not full_matrices or m == n:
            dq_dr = (dq_mn, dr_nn)
        else:
            dq_dr = _full_qr_tangents(q, q_mn, dq_mn, dr_nn, m, n)
    tangents_out = list(dq_dr) + ([Zero.from_primal(outs[2])] if pivoting else [])
    return outs, tangents_out


def _full_qr_tangents(q, q_mn, dq_mn, dr_nn, m, n):
    """The last ``m - n`` columns of dQ for a tall full QR (Roberts and Roberts, 2024,
    eqs. 32-33), solving with ``Q_nn - I`` instead of inverting it."""
    dt = get_aval(q).dtype
    batch = get_aval(q).shape[:-2]
    q_nn, q_pn = _rows(q_mn, 0, n), _rows(q_mn, n, m)
    q_mp = _columns(q, n, m)
    dq_nn, dq_pn = _rows(dq_mn, 0, n), _rows(dq_mn, n, m)
    factors, _, perm = lu(ew.sub(q_nn, eye(n, dt, batch + (n, n))))
    z_pn_h = lu_solve(factors, perm, H(q_pn), trans=2)
    z_pn = H(z_pn_h)
    dq_mp = ew.sub(matmul(dq_mn, z_pn_h),
                   matmul(ew.add(q_mn, matmul(q_mp, z_pn)),
                          H(ew.sub(dq_pn, matmul(z_pn, dq_nn)))))
    nd = len(batch) + 2
    dq = concatenate([dq_mn, dq_mp], nd - 1)
    dr = concatenate([dr_nn, full(batch + (m - n, n), 0, dt)], nd - 2)
    return dq, dr


ad.primitive_jvps[qr_p] = _qr_jvp

# ---------------------------------------------------------------------------
# schur
# ---------------------------------------------------------------------------


def _schur_shape(shape, *, compute_schur_vectors, **_):
    check_square("schur", shape)
    return (shape, shape) if compute_schur_vectors else (shape,)


def _schur_dtype(dt, *, compute_schur_vectors, **_):
    return (dt, dt) if compute_schur_vectors else (dt,)


schur_p = linalg_primitive("schur", (2,), _schur_shape, _schur_dtype, _lapack.schur,
                           multiple_results=True)


def schur(x: Any, *, compute_schur_vectors: bool = True, sort_eig_vals: bool = False,
          select_callable: Any = None) -> Any:
    """The Schur decomposition ``x = Q U Q^H`` (CPU only, as in JAX): ``(U, Q)``, or
    ``U`` alone without ``compute_schur_vectors``.  Real ``x`` gives the real
    (quasi-triangular) form."""
    if sort_eig_vals:
        raise NotImplementedError("The sort feature of LAPACK's gees routine is not "
                                  "implemented.")
    out = schur_p.bind(as_operand(x), compute_schur_vectors=bool(compute_schur_vectors),
                       sort_eig_vals=False, select_callable=None)
    return tuple(out) if compute_schur_vectors else out[0]
