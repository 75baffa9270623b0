"""Spectral decompositions as primitives: eigh (Hermitian), eig (general, CPU) and svd,
with JAX's semantics and derivative rules (non-degenerate perturbation theory)."""
from __future__ import annotations

import enum
from typing import Any

import numpy as np

from tinyjax import dtypes
from tinyjax.core import get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.linalg import _lapack
from tinyjax.lax.linalg._common import (H, T, check_square, diag_matrix, diagonal, eye,
                                        linalg_primitive, matmul, symmetrize)
from tinyjax.lax.linalg.factorizations import lu
from tinyjax.lax.linalg.solves import lu_solve
from tinyjax.lax.reductions import argmax, reduce_sum
from tinyjax.lax.shape import broadcast_in_dim, broadcasted_iota, full
from tinyjax.interpreters import ad

__all__ = ["eigh", "eigh_p", "eig", "eig_p", "svd", "svd_p", "SvdAlgorithm",
           "EighImplementation", "EigImplementation"]


class SvdAlgorithm(enum.Enum):
    """The SVD algorithm: DEFAULT and DIVIDE_AND_CONQUER use LAPACK's gesdd, QR gesvd."""
    DEFAULT = "default"
    QR = "QR"
    JACOBI = "Jacobi"
    POLAR = "polar"
    DIVIDE_AND_CONQUER = "divide_and_conquer"


class EighImplementation(enum.Enum):
    """The Hermitian eigensolver (QR: LAPACK's syevd/heevd on the CPU)."""
    QR = "qr"
    JACOBI = "jacobi"
    QDWH = "qdwh"


class EigImplementation(enum.Enum):
    """The general eigensolver (LAPACK's geev on the CPU)."""
    CUSOLVER = "cusolver"
    MAGMA = "magma"
    LAPACK = "lapack"


def _as_dtype(x: Any, dt: Any) -> Any:
    return ew.convert_element_type(x, dt)


def _reciprocal_gaps(w: Any) -> Any:
    """``F[i, j] = 1 / (w[j] - w[i])`` off the diagonal, 0 on it (without NaNs there)."""
    n = get_aval(w).shape[-1]
    shape = get_aval(w).shape + (n,)
    nd = len(shape)
    wi = broadcast_in_dim(w, shape, tuple(range(nd - 2)) + (nd - 2,))
    wj = broadcast_in_dim(w, shape, tuple(range(nd - 2)) + (nd - 1,))
    one = eye(n, get_aval(w).dtype, shape)
    return ew.sub(ew.integer_pow(ew.add(one, ew.sub(wj, wi)), -1), one)


# ---------------------------------------------------------------------------
# eigh
# ---------------------------------------------------------------------------


def _check_eigh_shape(shape) -> None:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError("Argument to symmetric eigendecomposition must have shape [..., n, "
                         f"n], got shape {tuple(shape)}")


def _eigh_shape(shape, *, subset_by_index, **_):
    _check_eigh_shape(shape)
    n = shape[0]
    d = n if subset_by_index is None else subset_by_index[1] - subset_by_index[0]
    return (n, d), (d,)


def _eigh_impl(a, *, lower, sort_eigenvalues, subset_by_index, algorithm):
    n = a.shape[-1]
    if subset_by_index is not None and tuple(subset_by_index) != (0, n):
        raise NotImplementedError("subset_by_index not supported on CPU and GPU")
    return _lapack.eigh(a, lower=lower, sort_eigenvalues=sort_eigenvalues)


eigh_p = linalg_primitive("eigh", (2,), _eigh_shape,
                          lambda dt, **_: (dt, ew.real_dtype(dt)), _eigh_impl,
                          multiple_results=True)


def eigh(x: Any, *, lower: bool = True, symmetrize_input: bool = True,
         sort_eigenvalues: bool = True, subset_by_index: tuple[int, int] | None = None,
         implementation: EighImplementation | None = None) -> tuple[Any, Any]:
    """Eigenvectors (columns) and eigenvalues (ascending) of a Hermitian ``x``:
    ``(v, w)``.  With ``symmetrize_input`` ``(x + x^H) / 2`` is decomposed, else only
    the ``lower`` (or upper) triangle of ``x`` is read."""
    x = as_operand(x)
    _check_eigh_shape(get_aval(x).shape)
    if symmetrize_input:
        x = symmetrize(x)
    v, w = eigh_p.bind(x, lower=bool(lower), sort_eigenvalues=bool(sort_eigenvalues),
                       subset_by_index=None if subset_by_index is None else
                       tuple(int(i) for i in subset_by_index), algorithm=implementation)
    return v, w


def _eigh_jvp(primals, tangents, *, lower, sort_eigenvalues, subset_by_index, algorithm):
    """dw = re(diag(V^H dA V)), dV = V (F o V^H dA V), F the reciprocal eigenvalue gaps.
    Exact for distinct eigenvalues; where eigenvalues repeat, the eigenvectors are not
    unique and their derivative is not defined (the gaps are infinite), as in JAX."""
    (a,), (da,) = primals, tangents
    n = get_aval(a).shape[-1]
    if subset_by_index is not None and tuple(subset_by_index) != (0, n):
        raise NotImplementedError("Derivatives not defined for partial eigen decomposition.")
    v, w_real = eigh_p.bind(symmetrize(a), lower=lower, sort_eigenvalues=sort_eigenvalues,
                            subset_by_index=subset_by_index, algorithm=algorithm)
    dt = get_aval(a).dtype
    vh_da_v = matmul(matmul(H(v), da), v)
    dv = matmul(v, ew.mul(_reciprocal_gaps(_as_dtype(w_real, dt)), vh_da_v))
    dw = diagonal(ew.real(vh_da_v) if dtypes.is_complex(dt) else vh_da_v)
    return (v, w_real), (dv, dw)


ad.primitive_jvps[eigh_p] = _eigh_jvp

# ---------------------------------------------------------------------------
# eig
# ---------------------------------------------------------------------------


def _eig_shape(shape, *, compute_left_eigenvectors, compute_right_eigenvectors, **_):
    check_square("eig", shape)
    return ((shape[0],),) + ((tuple(shape),) * (compute_left_eigenvectors +
                                                compute_right_eigenvectors))


def _eig_dtype(dt, *, compute_left_eigenvectors, compute_right_eigenvectors, **_):
    return (ew.complex_dtype(dt),) * (1 + compute_left_eigenvectors +
                                      compute_right_eigenvectors)


eig_p = linalg_primitive("eig", (2,), _eig_shape, _eig_dtype, _lapack.eig,
                         multiple_results=True)


def eig(x: Any, *, compute_left_eigenvectors: bool = True,
        compute_right_eigenvectors: bool = True, enable_eigvec_derivs: bool = False,
        implementation: EigImplementation | None = None, use_magma: bool | None = None
        ) -> list[Any]:
    """Eigenvalues and the left/right eigenvectors of a general square ``x`` (LAPACK's
    geev, on the CPU): ``[w, vl, vr]`` with the eigenvectors asked for."""
    return list(eig_p.bind(as_operand(x),
                           compute_left_eigenvectors=bool(compute_left_eigenvectors),
                           compute_right_eigenvectors=bool(compute_right_eigenvectors),
                           enable_eigvec_derivs=bool(enable_eigvec_derivs),
                           implementation=implementation))


def _solve(a: Any, b: Any) -> Any:
    factors, _, perm = lu(a)
    return lu_solve(factors, perm, b)


def _eig_vectors_jvp(w, v, da):
    """(dw, dv) under LAPACK's normalisation of each eigenvector (unit norm, largest
    component real): dv_j = u_j + c_j v_j, c_j fixed by the two constraints."""
    p = matmul(_solve(v, da), v)
    dw = diagonal(p)
    u = matmul(v, ew.mul(_reciprocal_gaps(w), p))
    nd = get_aval(v).ndim
    k = argmax(ew.abs(v), nd - 2, np.int32)   # the row of each column's largest entry
    shape = get_aval(v).shape
    rows_of_k = broadcast_in_dim(k, shape, tuple(range(nd - 2)) + (nd - 1,))
    mask = ew.convert_element_type(ew.eq(broadcasted_iota(np.int32, shape, nd - 2),
                                         rows_of_k), get_aval(v).dtype)
    column_sum = lambda x: reduce_sum(x, (nd - 2,))  # noqa: E731
    c = ew.complex(ew.neg(ew.real(column_sum(ew.mul(ew.conj(v), u)))),
                   ew.div(ew.neg(ew.imag(column_sum(ew.mul(mask, u)))),
                          ew.real(column_sum(ew.mul(mask, v)))))
    return dw, ew.add(u, ew.mul(v, broadcast_in_dim(c, shape, tuple(range(nd - 2)) +
                                                    (nd - 1,))))


def _eig_jvp(primals, tangents, *, compute_left_eigenvectors, compute_right_eigenvectors,
             enable_eigvec_derivs, implementation):
    (a,), (da,) = primals, tangents
    if (compute_left_eigenvectors or compute_right_eigenvectors) and not enable_eigvec_derivs:
        raise NotImplementedError(
            "Derivatives of non-symmetric eigenvectors are only valid under assumptions on "
            "the input that JAX cannot check (see the enable_eigvec_derivs argument to "
            "jax.lax.linalg.eig). Pass enable_eigvec_derivs=True to jax.lax.linalg.eig to "
            "opt in. See https://github.com/jax-ml/jax/issues/2748 for discussion.")
    outs = eig_p.bind(a, compute_left_eigenvectors=compute_left_eigenvectors,
                      compute_right_eigenvectors=True,
                      enable_eigvec_derivs=enable_eigvec_derivs,
                      implementation=implementation)
    w, vr = outs[0], outs[-1]
    da = _as_dtype(da, get_aval(vr).dtype)
    if not (compute_left_eigenvectors or compute_right_eigenvectors):
        # dw_j = (V^-1 dA V)_jj
        return [w], [reduce_sum(ew.mul(_solve(vr, da), T(vr)), (get_aval(vr).ndim - 1,))]
    dw, dvr = _eig_vectors_jvp(w, vr, da)
    primal_out, tangent_out = [w], [dw]
    if compute_left_eigenvectors:
        _, dvl = _eig_vectors_jvp(ew.conj(w), outs[1], H(da))
        primal_out.append(outs[1])
        tangent_out.append(dvl)
    if compute_right_eigenvectors:
        primal_out.append(vr)
        tangent_out.append(dvr)
    return primal_out, tangent_out


ad.primitive_jvps[eig_p] = _eig_jvp

# ---------------------------------------------------------------------------
# svd
# ---------------------------------------------------------------------------


def _svd_shape(shape, *, full_matrices, compute_uv, subset_by_index, **_):
    m, n = shape
    rank = min(m, n)
    if subset_by_index is not None:
        if full_matrices and tuple(subset_by_index) != (0, rank):
            raise ValueError("full_matrices and subset_by_index cannot both be set")
        rank = min(rank, subset_by_index[1] - subset_by_index[0])
    if not compute_uv:
        return ((rank,),)
    return (rank,), (m, m if full_matrices else rank), (n if full_matrices else rank, n)


def _svd_dtype(dt, *, compute_uv, **_):
    return (ew.real_dtype(dt), dt, dt) if compute_uv else (ew.real_dtype(dt),)


def _svd_impl(a, *, full_matrices, compute_uv, subset_by_index, algorithm):
    k = min(a.shape)
    if subset_by_index is not None and tuple(subset_by_index) != (0, k):
        raise NotImplementedError("subset_by_index not implemented for CPU and GPU")
    if algorithm in (SvdAlgorithm.JACOBI, SvdAlgorithm.POLAR):
        raise NotImplementedError("The SVD Jacobi and Polar algorithms are not implemented "
                                  "on CPU.")
    return _lapack.svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                       algorithm=algorithm)


svd_p = linalg_primitive("svd", (2,), _svd_shape, _svd_dtype, _svd_impl,
                         multiple_results=True)


def svd(x: Any, *, full_matrices: bool = True, compute_uv: bool = True,
        subset_by_index: tuple[int, int] | None = None,
        algorithm: SvdAlgorithm | None = None) -> Any:
    """Singular values (descending) and, with ``compute_uv``, ``(u, s, vh)`` with
    ``x = u diag(s) vh``."""
    out = svd_p.bind(as_operand(x), full_matrices=bool(full_matrices),
                     compute_uv=bool(compute_uv),
                     subset_by_index=None if subset_by_index is None else
                     tuple(int(i) for i in subset_by_index), algorithm=algorithm)
    if compute_uv:
        s, u, vh = out
        return u, s, vh
    return out[0]


def _svd_jvp(primals, tangents, *, full_matrices, compute_uv, subset_by_index, algorithm):
    (a,), (da,) = primals, tangents
    s, u, vt = svd_p.bind(a, full_matrices=False, compute_uv=True,
                          subset_by_index=subset_by_index, algorithm=algorithm)
    m, n = get_aval(a).shape[-2:]
    if compute_uv and full_matrices and m != n:
        raise NotImplementedError(
            "Singular value decomposition JVP not implemented for full matrices")
    dt = get_aval(a).dtype
    ut, v = H(u), H(vt)
    ds_mat = matmul(matmul(ut, da), v)
    ds = diagonal(ew.real(ds_mat) if dtypes.is_complex(dt) else ds_mat)
    if not compute_uv:
        return [s], [ds]
    k = get_aval(s).shape[-1]
    nd = get_aval(s).ndim + 1
    shape = get_aval(s).shape + (k,)
    s_row = broadcast_in_dim(s, shape, tuple(range(nd - 2)) + (nd - 1,))   # s[j]
    s_col = broadcast_in_dim(s, shape, tuple(range(nd - 2)) + (nd - 2,))   # s[i]
    gaps = ew.mul(ew.add(s_row, s_col), ew.sub(s_row, s_col))
    one = eye(k, get_aval(s).dtype, shape)
    f = ew.sub(ew.div(full((), 1, get_aval(s).dtype), ew.add(gaps, one)), one)
    ds_s = ew.mul(_as_dtype(s_row, dt), ds_mat)   # dS diag(s)
    s_ds = ew.mul(_as_dtype(s_col, dt), ds_mat)   # diag(s) dS
    zero_s = ew.convert_element_type(ew.eq(s, full((), 0, get_aval(s).dtype)),
                                     get_aval(s).dtype)
    s_inv = ew.sub(ew.div(full((), 1, get_aval(s).dtype), ew.add(s, zero_s)), zero_s)
    half = full((), 0.5, dt)
    uv_diag = ew.mul(ew.mul(half, ew.sub(ds_mat, H(ds_mat))), _as_dtype(diag_matrix(s_inv), dt))
    f_c = _as_dtype(f, dt)
    du = matmul(u, ew.add(ew.mul(f_c, ew.add(ds_s, H(ds_s))), uv_diag))
    dv = matmul(v, ew.mul(f_c, ew.add(s_ds, H(s_ds))))
    if m > n:
        da_v = matmul(da, v)
        du = ew.add(du, ew.div(ew.sub(da_v, matmul(u, matmul(ut, da_v))),
                               _over_columns(s, m, dt)))
    if n > m:
        dah_u = matmul(H(da), u)
        dv = ew.add(dv, ew.div(ew.sub(dah_u, matmul(v, matmul(vt, dah_u))),
                               _over_columns(s, n, dt)))
    return [s, u, vt], [ds, du, H(dv)]


def _over_columns(s: Any, rows: int, dt: Any) -> Any:
    """``s[j]`` at every ``(i, j)`` of a ``rows x k`` matrix (dividing column j by s_j)."""
    aval = get_aval(s)
    shape = aval.shape[:-1] + (rows, aval.shape[-1])
    return _as_dtype(broadcast_in_dim(s, shape, tuple(range(aval.ndim - 1)) + (aval.ndim,)),
                     dt)


ad.primitive_jvps[svd_p] = _svd_jvp
