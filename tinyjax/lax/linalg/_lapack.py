"""The eager implementations of the linear-algebra primitives: one matrix at a time,
with the LAPACK routines JAX's CPU backend calls (SciPy's LAPACK -- the same library
jaxlib calls -- so signs and orderings of eigenvectors and singular vectors agree).

Where LAPACK reports a failure (no convergence, a matrix that is not positive
definite) the results are NaN, as in JAX; no LAPACK error escapes.  Empty matrices
never reach LAPACK.
"""
from __future__ import annotations

import numpy as np

from tinyjax import dtypes
from tinyjax.lax.linalg._common import nan_like

__all__ = ["cholesky", "lu", "qr", "svd", "eigh", "eig", "schur", "triangular_solve",
           "tridiagonal_solve", "pivots_to_permutation", "hessenberg", "householder_product",
           "ormqr", "tridiagonal"]

_FAILURES = (np.linalg.LinAlgError, ValueError)


def _scipy_linalg():
    """scipy.linalg, imported at the first eager call (a fifth of a second)."""
    import scipy.linalg
    return scipy.linalg


def _routine(name: str, a: np.ndarray):
    return _scipy_linalg().lapack.get_lapack_funcs((name,), (a,))[0]


def cholesky(a: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor (upper triangle zero), read from the lower triangle;
    NaN in the lower triangle if ``a`` is not positive definite."""
    if a.size == 0:
        return a.copy()
    c, info = _routine("potrf", a)(a, lower=1, clean=1)
    return np.tril(nan_like(a.shape, a.dtype)) if info != 0 else c


def pivots_to_permutation(pivots: np.ndarray, size: int) -> np.ndarray:
    """The permutation the row swaps ``pivots`` (in order) apply to ``range(size)``;
    batched over the leading dimensions."""
    perm = np.broadcast_to(np.arange(size, dtype=np.int32), pivots.shape[:-1] + (size,)).copy()
    rows = np.arange(int(np.prod(pivots.shape[:-1], dtype=np.int64)))
    flat_perm = perm.reshape(-1, size)
    flat_piv = pivots.reshape(-1, pivots.shape[-1])
    for i in range(pivots.shape[-1]):
        j = flat_piv[:, i]
        a, b = flat_perm[rows, i].copy(), flat_perm[rows, j].copy()
        flat_perm[rows, i], flat_perm[rows, j] = b, a
    return perm


def lu(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``getrf``: the packed L\\U factors, the pivots and the row permutation (int32).
    A singular matrix is factored all the same (zeros on U's diagonal), as in JAX."""
    m, n = a.shape
    if a.size == 0:
        return a.copy(), np.zeros(min(m, n), np.int32), np.arange(m, dtype=np.int32)
    factors, piv, _ = _routine("getrf", a)(a)
    piv = piv.astype(np.int32)
    return factors, piv, pivots_to_permutation(piv, m)


def qr(a: np.ndarray, *, pivoting: bool, full_matrices: bool, use_magma=None):
    """``geqrf`` (``geqp3`` with pivoting) and ``orgqr``/``ungqr``."""
    m, n = a.shape
    k = m if full_matrices else min(m, n)
    if a.size == 0:
        q, r = np.eye(m, k, dtype=a.dtype), np.zeros((k, n), a.dtype)
        return (q, r, np.zeros(n, np.int32)) if pivoting else (q, r)
    mode = "full" if full_matrices else "economic"
    out = _scipy_linalg().qr(a, mode=mode, pivoting=pivoting, check_finite=False)
    if pivoting:
        q, r, p = out
        return q, r, p.astype(np.int32)
    return out


def svd(a: np.ndarray, *, full_matrices: bool, compute_uv: bool, subset_by_index=None,
        algorithm=None):
    """``gesdd`` (``gesvd`` for SvdAlgorithm.QR): singular values, descending."""
    m, n = a.shape
    real = a.real.dtype
    if a.size == 0:
        s = np.zeros(0, real)
        if not compute_uv:
            return (s,)
        if full_matrices:
            return s, np.eye(m, dtype=a.dtype), np.eye(n, dtype=a.dtype)
        return s, np.zeros((m, 0), a.dtype), np.zeros((0, n), a.dtype)
    driver = "gesvd" if getattr(algorithm, "name", algorithm) == "QR" else "gesdd"
    k = min(m, n)
    try:
        out = _scipy_linalg().svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                               lapack_driver=driver, check_finite=False)
    except _FAILURES:
        u_shape = (m, m if full_matrices else k)
        vt_shape = (n if full_matrices else k, n)
        out = (nan_like(u_shape, a.dtype), nan_like((k,), real), nan_like(vt_shape, a.dtype))
        out = out if compute_uv else out[1]
    if not compute_uv:
        return (out,)
    u, s, vt = out
    return s, u, vt


def eigh(a: np.ndarray, *, lower: bool, sort_eigenvalues: bool, subset_by_index=None,
         algorithm=None):
    """``syevd``/``heevd`` on the ``lower`` (or upper) triangle: eigenvectors as columns
    and eigenvalues in ascending order."""
    n = a.shape[0]
    if n == 0:
        return a.copy(), np.zeros(0, a.real.dtype)
    try:
        w, v = _scipy_linalg().eigh(a, lower=lower, driver="evd", check_finite=False)
    except _FAILURES:
        return nan_like(a.shape, a.dtype), nan_like((n,), a.real.dtype)
    return v, w


def eig(a: np.ndarray, *, compute_left_eigenvectors: bool, compute_right_eigenvectors: bool,
        enable_eigvec_derivs: bool = False, implementation=None):
    """``geev``: complex eigenvalues, and the left and right eigenvectors asked for
    (unit 2-norm, largest component real, as LAPACK normalises them)."""
    n = a.shape[0]
    cdt = np.dtype(np.complex64 if a.dtype in (np.float32, np.complex64) else np.complex128)
    left, right = compute_left_eigenvectors, compute_right_eigenvectors
    if n == 0:
        w, vl, vr = np.zeros(0, cdt), np.zeros((0, 0), cdt), np.zeros((0, 0), cdt)
    else:
        try:
            out = _scipy_linalg().eig(a, left=left, right=right, check_finite=False)
        except _FAILURES:
            out = (nan_like((n,), cdt),) + (nan_like((n, n), cdt),) * (left + right)
        w, *vecs = out if isinstance(out, tuple) else (out,)
        vl = vecs.pop(0) if left else None
        vr = vecs.pop(0) if right else None
    results = [w] + ([vl] if left else []) + ([vr] if right else [])
    return tuple(np.asarray(r, cdt) for r in results)


def schur(a: np.ndarray, *, compute_schur_vectors: bool, sort_eig_vals: bool = False,
          select_callable=None):
    """``gees``: the (real quasi-) triangular Schur form and the Schur vectors."""
    n = a.shape[0]
    if n == 0:
        return (a.copy(), a.copy()) if compute_schur_vectors else (a.copy(),)
    output = "complex" if dtypes.is_complex(a.dtype) else "real"
    try:
        t, z = _scipy_linalg().schur(a, output=output, check_finite=False)
    except _FAILURES:
        t, z = nan_like(a.shape, a.dtype), nan_like(a.shape, a.dtype)
    return (t, z) if compute_schur_vectors else (t,)


def triangular_solve(a: np.ndarray, b: np.ndarray, *, left_side: bool, lower: bool,
                     transpose_a: bool, conjugate_a: bool, unit_diagonal: bool
                     ) -> np.ndarray:
    """``trsm``: ``op(a) x = b`` (``x op(a) = b`` unless ``left_side``); a zero on the
    diagonal gives infinities, as in JAX."""
    if b.size == 0:
        return b.copy()
    if conjugate_a and not transpose_a:
        a, conjugate_a = np.conj(a), False
    trans = 2 if (transpose_a and conjugate_a) else 1 if transpose_a else 0
    trsm = _scipy_linalg().blas.get_blas_funcs("trsm", (a, b))
    with np.errstate(all="ignore"):
        return trsm(1.0, a, b, side=0 if left_side else 1, lower=int(lower), trans_a=trans,
                    diag=int(unit_diagonal))


def tridiagonal_solve(dl: np.ndarray, d: np.ndarray, du: np.ndarray, b: np.ndarray, *,
                      perturb_singular: bool = False) -> np.ndarray:
    """``gtsv`` (partial pivoting); NaN for a singular system, as in JAX."""
    if b.size == 0:
        return b.copy()
    sub, sup = (dl[1:], du[:-1]) if d.shape[0] > 1 else (dl, du)  # SciPy wants length >= 1
    *_, x, info = _routine("gtsv", b)(sub, d, sup, b)
    return nan_like(b.shape, b.dtype) if info != 0 else x


def _orthogonal_name(stem: str, a: np.ndarray) -> str:
    """LAPACK's name for an orthogonal (real) or unitary (complex) routine: ``or``/``un``."""
    return ("un" if dtypes.is_complex(a.dtype) else "or") + stem


def hessenberg(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``gehrd`` over the whole matrix: the upper Hessenberg form in the upper triangle and
    first subdiagonal, the reflectors below it, and their ``n - 1`` scalar factors."""
    n = a.shape[0]
    if n == 0:
        return a.copy(), np.zeros(0, a.dtype)
    h, taus, _ = _routine("gehrd", a)(a)
    return h, taus


def householder_product(a: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """``orgqr``/``ungqr``: the first ``n`` columns of the product of the ``k`` reflectors
    stored below ``a``'s diagonal."""
    m, n = a.shape
    if a.size == 0 or taus.shape[0] == 0:
        return np.eye(m, n, dtype=a.dtype)
    q, _, _ = _routine(_orthogonal_name("gqr", a), a)(a, taus)
    return q


def ormqr(a: np.ndarray, taus: np.ndarray, c: np.ndarray, *, left: bool,
          transpose: bool) -> np.ndarray:
    """``ormqr``/``unmqr``: ``c`` multiplied by ``Q`` (the ``k`` reflectors below ``a``'s
    diagonal) or its (conjugate) transpose, on the left or the right."""
    k = taus.shape[0]
    if c.size == 0 or k == 0:
        return c.copy()
    trans = ("C" if dtypes.is_complex(a.dtype) else "T") if transpose else "N"
    lwork = max(1, c.shape[1] if left else c.shape[0]) * 64
    out, _, _ = _routine(_orthogonal_name("mqr", a), a)(
        "L" if left else "R", trans, np.ascontiguousarray(a[:, :k]), taus, c, lwork)
    return out


def tridiagonal(a: np.ndarray, *, lower: bool) -> tuple:
    """``sytrd``/``hetrd`` on the ``lower`` (or upper) triangle: the reduced matrix with the
    reflectors, the diagonal, the off-diagonal (both real) and the reflectors' factors."""
    name = "hetrd" if dtypes.is_complex(a.dtype) else "sytrd"
    out, d, e, taus, _ = _routine(name, a)(a, lower=int(lower))
    return out, d, e, taus
