"""Triangular and tridiagonal solves (primitives), and the LU solve built on them.

Both primitives are linear in their right-hand side, so reverse mode transposes them
into another solve (with the transposed matrix) and never forms an inverse.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes
from tinyjax.core import get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.linalg import _lapack
from tinyjax.lax.linalg._common import T, linalg_primitive, matmul, tril, triu
from tinyjax.lax.shape import broadcast_in_dim, broadcasted_iota
from tinyjax.lax.slicing import concatenate, expand_dims, pad, slice_in_dim, squeeze
from tinyjax.interpreters import ad
from tinyjax.interpreters.ad import Zero, add_tangents, instantiate_zeros, is_undefined_primal

__all__ = ["triangular_solve", "triangular_solve_p", "tridiagonal_solve",
           "tridiagonal_solve_p", "lu_solve", "permutation_matrix"]

# ---------------------------------------------------------------------------
# triangular_solve
# ---------------------------------------------------------------------------


def _triangular_solve_shape(a_shape, b_shape, *, left_side=False, **_):
    if a_shape[0] != a_shape[1]:
        raise ValueError("The first input to triangular_solve must be a square matrix. Got "
                         f"shape {tuple(a_shape)}.")
    common = b_shape[-2] if left_side else b_shape[-1]
    if a_shape[-1] != common:
        raise ValueError(f"Incompatible shapes for arguments to triangular_solve: "
                         f"{tuple(a_shape)} and {tuple(b_shape)}.")
    return b_shape


def _triangular_solve_dtype(a_dtype, b_dtype, **_):
    if a_dtype != b_dtype:
        raise TypeError("lax.triangular_solve requires arguments to have the same dtypes, "
                        f"got {a_dtype.name}, {b_dtype.name}.")
    return b_dtype


triangular_solve_p = linalg_primitive(
    "triangular_solve", (2, 2), _triangular_solve_shape, _triangular_solve_dtype,
    _lapack.triangular_solve)


def triangular_solve(a: Any, b: Any, *, left_side: bool = False, lower: bool = False,
                     transpose_a: bool = False, conjugate_a: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """Solve ``op(a) x = b`` (``left_side``) or ``x op(a) = b`` for triangular ``a``
    (its ``lower`` or upper triangle; ``op`` transposes and/or conjugates); ``b`` may
    be one batch rank lower than ``a`` (a vector)."""
    a, b = as_operand(a), as_operand(b)
    conjugate_a = bool(conjugate_a) and dtypes.is_complex(get_aval(a).dtype)
    vector = get_aval(b).ndim == get_aval(a).ndim - 1
    if vector:
        b = expand_dims(b, (get_aval(b).ndim if left_side else get_aval(b).ndim - 1,))
    out = triangular_solve_p.bind(a, b, left_side=bool(left_side), lower=bool(lower),
                                  transpose_a=bool(transpose_a), conjugate_a=conjugate_a,
                                  unit_diagonal=bool(unit_diagonal))
    if vector:
        out = squeeze(out, (get_aval(out).ndim - 1 if left_side else get_aval(out).ndim - 2,))
    return out


def _triangular_solve_jvp_a(da, ans, a, b, *, left_side, lower, transpose_a, conjugate_a,
                            unit_diagonal):
    """d(op(a)^-1 b) = -op(a)^-1 op(da) x, over the triangle of ``a`` that is read."""
    k = 1 if unit_diagonal else 0
    da = tril(da, -k) if lower else triu(da, k)
    da = ew.neg(T(da) if transpose_a else da)
    da = ew.conj(da) if conjugate_a else da

    def solve(rhs):
        return triangular_solve_p.bind(a, rhs, left_side=left_side, lower=lower,
                                       transpose_a=transpose_a, conjugate_a=conjugate_a,
                                       unit_diagonal=unit_diagonal)
    m, n = get_aval(b).shape[-2:]
    if left_side:  # cheaper order first, as JAX does
        return solve(matmul(da, ans)) if m > n else matmul(solve(da), ans)
    return solve(matmul(ans, da)) if m < n else matmul(ans, solve(da))


def _triangular_solve_jvp(primals, tangents, **params):
    a, b = primals
    da, db = tangents
    ans = triangular_solve_p.bind(a, b, **params)
    out: Any = Zero.from_primal(ans)
    if type(da) is not Zero:
        out = add_tangents(out, _triangular_solve_jvp_a(da, ans, a, b, **params))
    if type(db) is not Zero:
        out = add_tangents(out, triangular_solve_p.bind(a, db, **params))
    return ans, out


def _triangular_solve_transpose(ct, a, b, *, left_side, lower, transpose_a, conjugate_a,
                                unit_diagonal):
    assert not is_undefined_primal(a) and is_undefined_primal(b)
    if type(ct) is Zero:
        return [None, Zero(b.aval)]
    return [None, triangular_solve_p.bind(a, ct, left_side=left_side, lower=lower,
                                          transpose_a=not transpose_a,
                                          conjugate_a=conjugate_a,
                                          unit_diagonal=unit_diagonal)]


ad.primitive_jvps[triangular_solve_p] = _triangular_solve_jvp
ad.primitive_transposes[triangular_solve_p] = _triangular_solve_transpose

# ---------------------------------------------------------------------------
# tridiagonal_solve
# ---------------------------------------------------------------------------


def _tridiagonal_solve_shape(dl_shape, d_shape, du_shape, b_shape, **_):
    if dl_shape != d_shape or dl_shape != du_shape:
        raise TypeError("tridiagonal_solve requires that all diagonal arguments have the "
                        "same shape.")
    if tuple(dl_shape) != tuple(b_shape[:-1]):
        raise TypeError("tridiagonal_solve requires that the leading ndim-1 dimensions of b "
                        "equal the dimensions of the diagonal arguments.")
    return b_shape


def _tridiagonal_solve_dtype(*dts, **_):
    if any(d != dts[-1] for d in dts):
        raise TypeError("tridiagonal_solve requires all arguments to have the same dtype, "
                        f"got {', '.join(d.name for d in dts)}.")
    return dts[-1]


tridiagonal_solve_p = linalg_primitive(
    "tridiagonal_solve", (1, 1, 1, 2), _tridiagonal_solve_shape, _tridiagonal_solve_dtype,
    _lapack.tridiagonal_solve)


def tridiagonal_solve(dl: Any, d: Any, du: Any, b: Any, *,
                      perturb_singular: bool = False) -> Any:
    """Solve the tridiagonal system with sub-, main and super-diagonals ``dl``
    (``dl[0]`` ignored), ``d`` and ``du`` (``du[-1]`` ignored); ``b`` is ``(..., m, n)``."""
    if perturb_singular:
        raise NotImplementedError("tridiagonal_solve(perturb_singular=True) is not "
                                  "implemented in tinyjax")
    return tridiagonal_solve_p.bind(*map(as_operand, (dl, d, du, b)), perturb_singular=False)


def _shift_diagonal(x: Any, up: bool) -> Any:
    """``x`` moved one place along its last axis (towards the start if ``up``), zero
    filled: turns the sub-diagonal of a matrix into the super-diagonal of its transpose."""
    n = get_aval(x).ndim - 1
    cfg = [(0, 0, 0)] * n + [(-1, 1, 0) if up else (1, -1, 0)]
    return pad(x, ew.full_like_aval(get_aval(x).update(shape=()), 0), cfg)


def _tridiagonal_matmul(dl, d, du, x):
    """The tridiagonal matrix times ``x`` (``(..., m, n)``)."""
    def col(v):  # v[..., i] at every (i, j) of x
        nv = get_aval(v).ndim
        return broadcast_in_dim(v, get_aval(x).shape, tuple(range(nv)))
    m = get_aval(x).shape[-2]
    nd = get_aval(x).ndim
    y = ew.mul(col(d), x)
    if m > 1:
        below = concatenate([ew.full_like_aval(get_aval(slice_in_dim(x, 0, 1, axis=nd - 2)), 0),
                             slice_in_dim(x, 0, m - 1, axis=nd - 2)], nd - 2)
        above = concatenate([slice_in_dim(x, 1, m, axis=nd - 2),
                             ew.full_like_aval(get_aval(slice_in_dim(x, 0, 1, axis=nd - 2)), 0)],
                            nd - 2)
        dl0 = _shift_diagonal(_shift_diagonal(dl, True), False)   # dl[0] ignored
        du0 = _shift_diagonal(_shift_diagonal(du, False), True)   # du[-1] ignored
        y = ew.add(y, ew.add(ew.mul(col(dl0), below), ew.mul(col(du0), above)))
    return y


def _tridiagonal_solve_jvp(primals, tangents, *, perturb_singular):
    *diags, b = primals
    *ddiags, db = tangents
    ans = tridiagonal_solve_p.bind(*diags, b, perturb_singular=perturb_singular)
    rhs = db
    if not all(type(t) is Zero for t in ddiags):
        change = _tridiagonal_matmul(*map(instantiate_zeros, ddiags), ans)
        rhs = add_tangents(db, ew.neg(change))
    if type(rhs) is Zero:
        return ans, Zero.from_primal(ans)
    return ans, tridiagonal_solve_p.bind(*diags, instantiate_zeros(rhs),
                                         perturb_singular=perturb_singular)


def _tridiagonal_solve_transpose(ct, dl, d, du, b, *, perturb_singular):
    assert is_undefined_primal(b) and not any(map(is_undefined_primal, (dl, d, du)))
    if type(ct) is Zero:
        return [None, None, None, Zero(b.aval)]
    # the transpose swaps the off-diagonals: dl'[i] = du[i-1], du'[i] = dl[i+1]
    dl_t, du_t = _shift_diagonal(du, False), _shift_diagonal(dl, True)
    return [None, None, None, tridiagonal_solve_p.bind(dl_t, d, du_t, ct,
                                                       perturb_singular=perturb_singular)]


ad.primitive_jvps[tridiagonal_solve_p] = _tridiagonal_solve_jvp
ad.primitive_transposes[tridiagonal_solve_p] = _tridiagonal_solve_transpose

# ---------------------------------------------------------------------------
# solving with LU factors
# ---------------------------------------------------------------------------


def permutation_matrix(perm: Any, dtype: Any) -> Any:
    """The (batched) matrix ``P`` with ``(P @ x)[i] = x[perm[i]]``."""
    shape = get_aval(perm).shape
    n = shape[-1]
    full_shape = shape + (n,)
    rows = broadcast_in_dim(perm, full_shape, tuple(range(len(shape))))
    cols = broadcasted_iota(np.int32, full_shape, len(shape))
    return ew.convert_element_type(ew.eq(ew.convert_element_type(rows, np.int32), cols), dtype)


def lu_solve(lu: Any, permutation: Any, b: Any, trans: int = 0) -> Any:
    """Solve ``a x = b`` (``trans=1``: ``a^T x = b``; ``2``: ``a^H x = b``) from the
    factors ``P a = L U`` of :func:`tinyjax.lax.linalg.lu`; ``b`` is ``(..., m, k)`` with
    the batch dimensions of ``lu``."""
    p = permutation_matrix(permutation, get_aval(lu).dtype)
    if trans == 0:
        x = triangular_solve(lu, matmul(p, b), left_side=True, lower=True, unit_diagonal=True)
        return triangular_solve(lu, x, left_side=True, lower=False)
    if trans not in (1, 2):
        raise ValueError(f"'trans' value must be 0, 1, or 2, got {trans}")
    conj = trans == 2
    x = triangular_solve(lu, b, left_side=True, lower=False, transpose_a=True,
                         conjugate_a=conj)
    x = triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True,
                         transpose_a=True, conjugate_a=conj)
    return matmul(T(p), x)
