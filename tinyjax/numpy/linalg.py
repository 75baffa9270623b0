"""``tinyjax.numpy.linalg``: numpy's linear algebra on the ``lax.linalg`` primitives,
with JAX's results (named tuples), dtypes (integers promote to float), errors and
derivative rules (custom ones for ``det``, ``slogdet`` and ``pinv``; ``solve`` through
``custom_linear_solve``)."""
from __future__ import annotations

import math
import operator
from functools import partial
from typing import Any, NamedTuple, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax.elementwise import real_dtype
from tinyjax.lax.linalg import _common as mat
from tinyjax.lax.linalg.general_solve import solve as _solve_square
from tinyjax.numpy._creation import asarray, diagonal as _diagonal_of, eye
from tinyjax.numpy._linalg import (cross as _cross, einsum, matmul, outer as _outer,  # noqa
                                   tensordot, trace as _trace, vecdot)
from tinyjax.numpy._reductions import any as _any, max as _max, min as _min, sum as _sum
from tinyjax.numpy._shape import moveaxis
from tinyjax.numpy._indexing import where
from tinyjax.numpy._ufuncs import (conj, divide, greater, greater_equal, isfinite, isnan,
                                   less, logical_and, logical_not, multiply, sqrt)
from tinyjax.numpy._util import check_arraylike, promote_dtypes_inexact
from tinyjax.numpy._vectorize import vectorize
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["cholesky", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals",
           "eigvalsh", "inv", "lstsq", "matmul", "matrix_norm", "matrix_power",
           "matrix_rank", "matrix_transpose", "multi_dot", "norm", "outer", "pinv", "qr",
           "slogdet", "solve", "svd", "svdvals", "tensordot", "tensorinv", "tensorsolve",
           "trace", "vecdot", "vector_norm", "EighResult", "EigResult", "QRResult",
           "SlogdetResult", "SVDResult"]


class EighResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class EigResult(NamedTuple):
    eigenvalues: Any
    eigenvectors: Any


class QRResult(NamedTuple):
    Q: Any
    R: Any


class SlogdetResult(NamedTuple):
    sign: Any
    logabsdet: Any


class SVDResult(NamedTuple):
    U: Any
    S: Any
    Vh: Any


def _inexact(name: str, *xs: Any) -> list[Any]:
    """The arguments as arrays of one inexact dtype (integers promote to float); their
    shapes are left alone."""
    check_arraylike(name, *xs)
    return promote_dtypes_inexact(*xs)


def _one(name: str, x: Any) -> Any:
    return _inexact(name, x)[0]


def _shape(x: Any) -> tuple[int, ...]:
    return get_aval(x).shape


def _square(name: str, x: Any) -> None:
    shape = _shape(x)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"Argument to {name} must have shape [..., n, n], got {shape}.")


def _at_least_2d(name: str, x: Any) -> None:
    if len(_shape(x)) < 2:
        raise ValueError(f"{name}: input array must be at least two-dimensional; got "
                         f"shape {_shape(x)}.")


def _scalar(x: Any, value: Any) -> Any:
    return lax.full((), value, get_aval(x).dtype)


def _element(x: Any, i: int, j: int) -> Any:
    """``x[..., i, j]``."""
    nd = len(_shape(x))
    return lax.squeeze(lax.slice(x, (0,) * (nd - 2) + (i, j), _shape(x)[:-2] + (i + 1, j + 1)),
                       (nd - 2, nd - 1))


# ---------------------------------------------------------------------------
# decompositions
# ---------------------------------------------------------------------------


def cholesky(a: Any, *, upper: bool = False, symmetrize_input: bool = True) -> Any:
    """The Cholesky factor of a Hermitian positive-definite ``a``: lower ``L`` with
    ``a = L L^H`` (upper ``U = L^H`` with ``upper``); NaNs where ``a`` is not positive
    definite."""
    a = _one("jnp.linalg.cholesky", a)
    _square("cholesky", a)
    chol = lax.linalg.cholesky(a, symmetrize_input=symmetrize_input)
    return mat.H(chol) if upper else chol


def qr(a: Any, mode: str = "reduced") -> Any:
    """QR decomposition: ``QRResult(Q, R)`` (``mode='reduced'`` or ``'complete'``), or
    ``R`` alone (``mode='r'``)."""
    a = _one("jnp.linalg.qr", a)
    _at_least_2d("jnp.linalg.qr", a)
    if mode in ("reduced", "r", "full"):
        full_matrices = False
    elif mode == "complete":
        full_matrices = True
    elif mode == "raw":
        raise NotImplementedError("jnp.linalg.qr(mode='raw') (LAPACK's Householder form) is "
                                  "not implemented in tinyjax")
    else:
        raise ValueError(f"Unsupported QR decomposition mode '{mode}'")
    q, r = lax.linalg.qr(a, full_matrices=full_matrices)
    return r if mode == "r" else QRResult(q, r)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        hermitian: bool = False, subset_by_index: tuple[int, int] | None = None) -> Any:
    """Singular value decomposition ``a = U diag(S) Vh``: ``SVDResult(U, S, Vh)``, or the
    singular values (descending) alone without ``compute_uv``.  ``hermitian`` uses the
    eigendecomposition of a Hermitian ``a``."""
    a = _one("jnp.linalg.svd", a)
    _at_least_2d("jnp.linalg.svd", a)
    if hermitian:
        return _hermitian_svd(a, compute_uv, subset_by_index)
    out = lax.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv,
                         subset_by_index=subset_by_index)
    return SVDResult(*out) if compute_uv else out


def _hermitian_svd(a: Any, compute_uv: bool, subset_by_index) -> Any:
    """Singular values |w| of the eigenvalues, sorted descending; U the eigenvectors in
    that order and Vh = (U sign(w))^H."""
    v, w = lax.linalg.eigh(a, subset_by_index=subset_by_index)
    s = lax.abs(w)
    axis = len(_shape(s)) - 1
    if not compute_uv:
        return lax.rev(lax.sort(s, dimension=axis), (axis,))
    idx = lax.broadcasted_iota(np.int32, _shape(s), axis)
    s, idx, sign = lax.sort((s, idx, lax.sign(w)), dimension=axis, num_keys=1)
    s, idx, sign = (lax.rev(t, (axis,)) for t in (s, idx, sign))
    pick = lax.linalg.solves.permutation_matrix(idx, get_aval(v).dtype)
    u = mat.matmul(v, mat.T(pick))                     # columns of v in the order idx
    signs = lax.broadcast_in_dim(lax.convert_element_type(sign, get_aval(u).dtype),
                                 _shape(u), tuple(range(axis)) + (axis + 1,))
    return SVDResult(u, s, mat.H(lax.mul(u, signs)))


def svdvals(x: Any, /) -> Any:
    """The singular values of ``x``, descending."""
    return svd(x, compute_uv=False)


def eig(a: Any) -> EigResult:
    """Eigenvalues and right eigenvectors of a general square ``a`` (complex; CPU)."""
    a = _one("jnp.linalg.eig", a)
    w, v = lax.linalg.eig(a, compute_left_eigenvectors=False)
    return EigResult(w, v)


def eigvals(a: Any) -> Any:
    """Eigenvalues of a general square ``a`` (complex; CPU)."""
    a = _one("jnp.linalg.eigvals", a)
    return lax.linalg.eig(a, compute_left_eigenvectors=False,
                          compute_right_eigenvectors=False)[0]


def _uplo(UPLO: str | None) -> bool:
    if UPLO is None or UPLO == "L":
        return True
    if UPLO == "U":
        return False
    raise ValueError(f"UPLO must be one of None, 'L', or 'U', got {UPLO}")


def eigh(a: Any, UPLO: str | None = None, symmetrize_input: bool = True) -> EighResult:
    """Eigenvalues (ascending, real) and eigenvectors (columns) of a Hermitian ``a``."""
    lower = _uplo(UPLO)
    a = _one("jnp.linalg.eigh", a)
    _square("eigh", a)
    v, w = lax.linalg.eigh(a, lower=lower, symmetrize_input=symmetrize_input)
    return EighResult(w, v)


def eigvalsh(a: Any, UPLO: str | None = "L", *, symmetrize_input: bool = True) -> Any:
    """Eigenvalues (ascending) of a Hermitian ``a``."""
    return eigh(a, UPLO, symmetrize_input=symmetrize_input).eigenvalues


# ---------------------------------------------------------------------------
# solves and inverses
# ---------------------------------------------------------------------------


def solve(a: Any, b: Any) -> Any:
    """``x`` with ``a @ x = b``: ``b`` a vector ``(m,)`` or matrices ``(..., m, n)``;
    batch dimensions broadcast.  Singular ``a`` gives infinities/NaNs, as in JAX."""
    a, b = _inexact("jnp.linalg.solve", a, b)
    a_shape, b_shape = _shape(a), _shape(b)
    if len(a_shape) < 2:
        raise ValueError(f"left hand array must be at least two dimensional; got "
                         f"a.shape={a_shape}")
    if len(b_shape) > 1 and len(a_shape) == len(b_shape) + 1 and \
            a_shape[-1] == b_shape[-1] and a_shape[-1] != b_shape[-2]:
        raise ValueError(f"Invalid shapes for solve: {a_shape}, {b_shape}. Prior to JAX "
                         "v0.5.0, this would have been treated as a batched 1-dimensional "
                         "solve. To recover this behavior, use solve(a, b[..., None])"
                         ".squeeze(-1).")
    if len(b_shape) == 1:
        return vectorize(_solve_vector, signature="(m,m),(m)->(m)")(a, b)
    return vectorize(_solve_square, signature="(m,m),(m,n)->(m,n)")(a, b)


def _solve_vector(a: Any, b: Any) -> Any:
    return lax.squeeze(_solve_square(a, lax.expand_dims(b, (1,))), (1,))


def inv(a: Any) -> Any:
    """The inverse of a square ``a`` (infinities where ``a`` is singular, as in JAX)."""
    check_arraylike("jnp.linalg.inv", a)
    a = asarray(a)
    _square("inv", a)
    shape = _shape(a)
    identity = lax.broadcast_in_dim(eye(shape[-1], dtype=get_aval(a).dtype), shape,
                                    (len(shape) - 2, len(shape) - 1))
    return solve(a, identity)


def lstsq(a: Any, b: Any, rcond: float | None = None, *,
          numpy_resid: bool = False) -> tuple[Any, Any, Any, Any]:
    """Least-squares solution of ``a x = b`` by the SVD: ``(x, residuals, rank, s)``."""
    a, b = _inexact("jnp.linalg.lstsq", a, b)
    if _shape(a)[0] != _shape(b)[0]:
        raise ValueError("Leading dimensions of input arrays must match")
    vector = len(_shape(b)) == 1
    if vector:
        b = lax.expand_dims(b, (1,))
    if len(_shape(a)) != 2:
        raise TypeError(f"{len(_shape(a))}-dimensional array given. Array must be "
                        "two-dimensional")
    if len(_shape(b)) != 2:
        raise TypeError(f"{len(_shape(b))}-dimensional array given. Array must be one or "
                        "two-dimensional")
    m, n = _shape(a)
    dt = get_aval(a).dtype
    if m * n == 0:
        s = lax.full((0,), 0, real_dtype(dt))
        rank = lax.full((), 0, dtypes.default_int_dtype())
        x = lax.full((n,) + _shape(b)[1:], 0, dt)
    else:
        eps = float(dtypes.finfo(real_dtype(dt)).eps)
        rcond = eps * max(n, m) if rcond is None else where(less(rcond, 0), eps, rcond)
        u, s, vt = svd(a, full_matrices=False)
        largest = lax.slice(s, (0,), (1,))
        mask = logical_and(greater(s, 0), greater_equal(s, multiply(rcond, largest)))
        rank = _sum(mask)
        safe_s = lax.convert_element_type(where(mask, s, 1), dt)
        s_inv = where(mask, divide(1, safe_s), 0)
        utb = matmul(mat.H(u), b, precision=lax.Precision.HIGHEST)
        x = matmul(mat.H(vt), multiply(lax.expand_dims(s_inv, (1,)), utb),
                   precision=lax.Precision.HIGHEST)
    if numpy_resid and (int(rank) < n or m <= n):
        resid = asarray(np.zeros((0,), real_dtype(dt)))
    else:
        resid = lax.square(norm(lax.sub(b, matmul(a, x, precision=lax.Precision.HIGHEST)),
                                axis=0))
    if vector:
        x = lax.reshape(x, (_shape(x)[0],))
    return x, resid, rank, s


@partial(custom_jvp, nondiff_argnums=(1, 2))
def _pinv(a: Any, rtol: Any, hermitian: bool) -> Any:
    m, n = _shape(a)[-2:]
    if m == 0 or n == 0:
        return lax.full(_shape(a)[:-2] + (n, m), 0, get_aval(a).dtype)
    a = conj(a)
    dt = get_aval(a).dtype
    if rtol is None:
        rtol = 10.0 * max(m, n) * float(dtypes.finfo(real_dtype(dt)).eps)
    u, s, vh = svd(a, full_matrices=False, hermitian=hermitian)
    rtol = asarray(rtol, dtype=get_aval(s).dtype)
    k = len(_shape(s)) - 1
    rtol = lax.broadcast_in_dim(rtol, _shape(s)[:-1] + (1,),
                                tuple(range(len(_shape(rtol)))))
    cutoff = lax.mul(rtol, lax.slice_in_dim(s, 0, 1, axis=k))
    cutoff = lax.broadcast_in_dim(cutoff, _shape(s), tuple(range(k + 1)))
    s = lax.convert_element_type(lax.select(lax.gt(s, cutoff), s,
                                            lax.full(_shape(s), np.inf, get_aval(s).dtype)),
                                 dt)
    scaled = lax.div(mat.T(u), lax.broadcast_in_dim(s, _shape(mat.T(u)), tuple(range(k)) +
                                                    (k,)))
    return mat.matmul(mat.T(vh), scaled)


@_pinv.defjvp
def _pinv_jvp(rtol, hermitian, primals, tangents):
    """The derivative of the Moore-Penrose inverse (Golub and Pereyra, 1973)."""
    (a,), (da,) = primals, tangents
    p = _pinv(a, rtol, hermitian)
    if hermitian:
        a, da = mat.symmetrize(a), mat.symmetrize(da)
    mm = mat.matmul
    m, n = _shape(a)[-2:]
    if m >= n:
        s = mm(mm(p, mat.H(p)), mat.H(da))
        t = mm(mm(mat.H(da), mat.H(p)), p)
        dp = lax.add(lax.sub(lax.add(lax.neg(mm(mm(p, da), p)), s), mm(mm(s, a), p)),
                     lax.sub(t, mm(mm(p, a), t)))
    else:
        s = mm(p, mm(mat.H(p), mat.H(da)))
        t = mm(mat.H(da), mm(mat.H(p), p))
        dp = lax.add(lax.sub(lax.add(lax.neg(mm(p, mm(da, p))), s), mm(s, mm(a, p))),
                     lax.sub(t, mm(p, mm(a, t))))
    return p, dp


def pinv(a: Any, rtol: Any = None, hermitian: bool = False, *, rcond: Any = None) -> Any:
    """The Moore-Penrose pseudo-inverse (singular values below ``rtol`` times the
    largest count as zero)."""
    if rcond is not None:
        if rtol is not None:
            raise ValueError("pinv: only one of rtol and rcond may be specified.")
        rtol = rcond
    a = _one("jnp.linalg.pinv", a)
    if len(_shape(a)) < 2:
        raise ValueError(f"jnp.linalg.pinv: input array must be at least two-dimensional; "
                         f"got shape {_shape(a)}.")
    return _pinv(a, rtol, bool(hermitian))


def tensorinv(a: Any, ind: int = 2) -> Any:
    """The inverse of ``a`` seen as a matrix with its first ``ind`` axes as rows."""
    check_arraylike("tensorinv", a)
    a = asarray(a)
    ind = operator.index(ind)
    if ind <= 0:
        raise ValueError(f"ind must be a positive integer; got ind={ind}")
    rows, cols = _shape(a)[:ind], _shape(a)[ind:]
    flat = (math.prod(rows), math.prod(cols))
    if flat[0] != flat[1]:
        raise ValueError("tensorinv is only possible when the product of the first `ind` "
                         "dimensions equals that of the remaining dimensions. got "
                         f"arr.shape={_shape(a)} with ind={ind}.")
    return lax.reshape(inv(lax.reshape(a, flat)), cols + rows)


def tensorsolve(a: Any, b: Any, axes: tuple[int, ...] | None = None) -> Any:
    """``x`` with ``tensordot(a, x, x.ndim) = b``."""
    check_arraylike("tensorsolve", a, b)
    a, b = asarray(a), asarray(b)
    if axes is not None:
        a = moveaxis(a, axes, len(axes) * (len(_shape(a)) - 1,))
    nb = len(_shape(b))
    out_shape = _shape(a)[nb:]
    if _shape(a)[:nb] != _shape(b):
        raise ValueError("After moving axes to end, leading shape of a must match shape of "
                         f"b. got a.shape={_shape(a)}, b.shape={_shape(b)}")
    size = math.prod(_shape(b))
    if size != math.prod(out_shape):
        raise ValueError("Input arrays must have prod(a.shape[:b.ndim]) == "
                         f"prod(a.shape[b.ndim:]); got a.shape={_shape(a)}, b.ndim={nb}.")
    x = solve(lax.reshape(a, (size, math.prod(out_shape))), lax.reshape(b, (size,)))
    return lax.reshape(x, out_shape)


def matrix_power(a: Any, n: int) -> Any:
    """``a`` to the integer power ``n`` by repeated squaring (``inv(a)`` for ``n < 0``)."""
    check_arraylike("jnp.linalg.matrix_power", a)
    a = asarray(a)
    shape = _shape(a)
    if len(shape) < 2:
        raise TypeError(f"{len(shape)}-dimensional array given. Array must be at least "
                        "two-dimensional")
    if shape[-2] != shape[-1]:
        raise TypeError("Last 2 dimensions of the array must be square")
    try:
        n = operator.index(n)
    except TypeError as err:
        raise TypeError(f"exponent must be an integer, got {n}") from err
    if n == 0:
        return lax.broadcast_in_dim(eye(shape[-1], dtype=get_aval(a).dtype), shape,
                                    (len(shape) - 2, len(shape) - 1))
    if n < 0:
        a, n = inv(a), -n
    result, power = None, None
    while n > 0:
        power = a if power is None else matmul(power, power)
        n, bit = divmod(n, 2)
        if bit:
            result = power if result is None else matmul(result, power)
    return result


# ---------------------------------------------------------------------------
# determinants
# ---------------------------------------------------------------------------


def _permutation_parity(pivots: Any, dt: Any) -> Any:
    """-1 for an odd number of row swaps in ``pivots``, else 1 (as ``dt``)."""
    iota = lax.broadcasted_iota(np.int32, _shape(pivots), len(_shape(pivots)) - 1)
    swaps = _sum(lax.ne(pivots, iota), axis=-1)
    return where(_odd(swaps), lax.full((), -1, dt), lax.full((), 1, dt))


def _odd(count: Any) -> Any:
    dt = get_aval(count).dtype
    return lax.ne(lax.rem(count, lax.full((), 2, dt)), lax.full((), 0, dt))


@custom_jvp
def _slogdet_lu(a: Any) -> tuple[Any, Any]:
    factors, pivots, _ = lax.linalg.lu(a)
    diag = mat.diagonal(factors)
    dt = get_aval(a).dtype
    parity = _permutation_parity(pivots, dt)
    is_zero = _any(lax.eq(diag, lax.full((), 0, dt)), axis=-1)
    absdiag = lax.abs(diag)
    if dtypes.is_complex(dt):
        unit = lax.div(diag, lax.convert_element_type(absdiag, dt))
        sign = lax.mul(_prod_last(unit), parity)
    else:
        negative = _odd(_sum(lax.lt(diag, lax.full((), 0, dt)), axis=-1))
        sign = where(negative, lax.neg(parity), parity)
    sign = where(is_zero, lax.full((), 0, dt), sign)
    logdet = where(is_zero, lax.full((), -np.inf, real_dtype(dt)),
                   _sum(lax.log(absdiag), axis=-1))
    return sign, logdet


def _prod_last(x: Any) -> Any:
    return lax.reduce_prod(x, (len(_shape(x)) - 1,))


def _slogdet_small(a: Any) -> tuple[Any, Any]:
    """1x1 and 2x2 determinants in closed form (as JAX: exact for these sizes)."""
    det = _det_closed_form(a)
    return lax.sign(det), _real(lax.log(lax.abs(det)))


def _real(x: Any) -> Any:
    return lax.real(x) if dtypes.is_complex(get_aval(x).dtype) else x


def _slogdet_jvp(primals, tangents):
    """d logabsdet = re(tr(a^-1 da)); d sign = i im(tr(a^-1 da)) sign."""
    (a,), (da,) = primals, tangents
    sign, logdet = slogdet(a)
    dt = get_aval(a).dtype
    dlog = mat.diagonal(_solve_square(a, da))
    dlog = _sum(dlog, axis=-1)
    if dtypes.is_complex(dt):
        dsign = lax.mul(lax.sub(dlog, lax.convert_element_type(lax.real(dlog), dt)), sign)
        dlog = lax.real(dlog)
    else:
        dsign = lax.full(_shape(sign), 0, dt)
    return (sign, logdet), (dsign, dlog)


_slogdet_lu.defjvp(_slogdet_jvp)


@custom_jvp
def _slogdet_closed(a: Any) -> tuple[Any, Any]:
    return _slogdet_small(a)


_slogdet_closed.defjvp(_slogdet_jvp)


def slogdet(a: Any, *, method: str | None = None) -> SlogdetResult:
    """``SlogdetResult(sign, logabsdet)`` with ``det(a) = sign * exp(logabsdet)``
    (``sign`` 0 and ``logabsdet`` -inf for a singular ``a``)."""
    a = _one("jnp.linalg.slogdet", a)
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"Argument to slogdet() must have shape [..., n, n], got {shape}")
    if method == "qr":
        raise NotImplementedError("slogdet(method='qr') is not implemented in tinyjax; use "
                                  "the default method='lu'")
    if method not in (None, "lu"):
        raise ValueError(f"Unknown slogdet method '{method}'. Supported methods are 'lu' "
                         "(`None`), and 'qr'.")
    if shape[-1] in (1, 2):
        return SlogdetResult(*_slogdet_closed(a))
    return SlogdetResult(*_slogdet_lu(a))


def _det_closed_form(a: Any) -> Any:
    """The determinant of a 1x1, 2x2 or 3x3 matrix by its cofactor expansion."""
    n = _shape(a)[-1]
    e = partial(_element, a)
    if n == 1:
        return e(0, 0)
    if n == 2:
        return lax.sub(lax.mul(e(0, 0), e(1, 1)), lax.mul(e(0, 1), e(1, 0)))
    terms = [((0, 0), (1, 1), (2, 2), 1), ((0, 1), (1, 2), (2, 0), 1),
             ((0, 2), (1, 0), (2, 1), 1), ((0, 2), (1, 1), (2, 0), -1),
             ((0, 0), (1, 2), (2, 1), -1), ((0, 1), (1, 0), (2, 2), -1)]
    total = None
    for p, q, r, sign in terms:
        t = lax.mul(lax.mul(e(*p), e(*q)), e(*r))
        total = t if total is None else (lax.add(total, t) if sign > 0 else lax.sub(total, t))
    return total


@custom_jvp
def _det_lu(a: Any) -> Any:
    sign, logdet = slogdet(a)
    return lax.mul(sign, lax.convert_element_type(lax.exp(logdet), get_aval(sign).dtype))


@_det_lu.defjvp
def _det_lu_jvp(primals, tangents):
    """d det = tr(adj(a) da), through a cofactor solve that stays finite when ``a`` is
    singular with one zero pivot (where ``det(a) a^-1`` is not defined)."""
    (a,), (da,) = primals, tangents
    det, adj_da = _cofactor_solve(a, da)
    return det, _sum(mat.diagonal(adj_da), axis=-1)


def _cofactor_solve(a: Any, b: Any) -> tuple[Any, Any]:
    """``(det(a), adj(a) @ b)`` from one LU factorisation.

    ``adj(a) b = det(a) a^-1 b``.  With ``P a = L U``, replace U's last pivot by ``1 /
    det`` of the leading block and scale all but the last row of ``L^-1 P b`` by
    ``det(a)``: back substitution then gives ``det(a) U^-1 ...``, which stays finite when
    only the last pivot is zero (rank n - 1).  With more zero pivots ``adj(a) = 0``,
    and so is the result."""
    n = _shape(a)[-1]
    if n == 1:
        return _element(a, 0, 0), b
    factors, pivots, perm = lax.linalg.lu(a)
    dt = get_aval(a).dtype
    diag = mat.diagonal(factors)
    nd = len(_shape(diag))
    parity = _permutation_parity(pivots, dt)
    partial_det = multiply(lax.cumprod(diag, axis=nd - 1), lax.expand_dims(parity, (nd - 1,)))
    leading, det = (lax.squeeze(lax.slice_in_dim(partial_det, i, i + 1, axis=nd - 1),
                                (nd - 1,)) for i in (n - 2, n - 1))
    last_pivot = lax.sub(lax.div(lax.full((), 1, dt), leading), _element(factors, n - 1, n - 1))
    bump = lax.concatenate([lax.full(_shape(diag)[:-1] + (n - 1,), 0, dt),
                            lax.expand_dims(last_pivot, (nd - 1,))], nd - 1)
    factors = lax.add(factors, mat.diag_matrix(bump))
    probe = lax.linalg.triangular_solve(factors, lax.full(_shape(b)[:-1], 1, dt),
                                        left_side=True, lower=False)
    degenerate = _any(lax.bitwise_not(isfinite(probe)), axis=-1)
    mask = lax.broadcast_in_dim(degenerate, _shape(b), tuple(range(nd - 1)))
    zero = lax.full(_shape(b), 0, dt)
    x = mat.matmul(lax.linalg.solves.permutation_matrix(perm, dt), lax.select(mask, zero, b))
    x = lax.linalg.triangular_solve(factors, x, left_side=True, lower=True,
                                    unit_diagonal=True)
    scale = lax.concatenate([lax.broadcast_in_dim(det, _shape(diag)[:-1] + (n - 1,),
                                                  tuple(range(nd - 1))),
                             lax.full(_shape(diag)[:-1] + (1,), 1, dt)], nd - 1)
    x = lax.mul(x, lax.broadcast_in_dim(scale, _shape(x), tuple(range(nd))))
    x = lax.linalg.triangular_solve(factors, x, left_side=True, lower=False)
    return det, lax.select(mask, zero, x)


def det(a: Any) -> Any:
    """The determinant of a square ``a`` (closed forms up to 3x3, else LU)."""
    a = _one("jnp.linalg.det", a)
    shape = _shape(a)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"Argument to _det() must have shape [..., n, n], got {shape}")
    if shape[-1] in (2, 3):
        return _det_closed_form(a)
    return _det_lu(a)


# ---------------------------------------------------------------------------
# norms, rank, condition number
# ---------------------------------------------------------------------------


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


def _abs_squared(x: Any) -> Any:
    if dtypes.is_complex(get_aval(x).dtype):
        return lax.add(lax.square(lax.real(x)), lax.square(lax.imag(x)))
    return lax.mul(x, x)


def vector_norm(x: Any, /, *, axis: Any = None, keepdims: bool = False,
                ord: Any = 2) -> Any:  # noqa: A002
    """The vector ``ord``-norm over ``axis`` (every axis for None); a real result."""
    x = _one("jnp.linalg.vector_norm", x)
    if ord is None or ord == 2:
        return sqrt(_sum(_abs_squared(x), axis=axis, keepdims=keepdims))
    if isinstance(ord, str):
        msg = f"Invalid order '{ord}' for vector norm."
        if ord in ("inf", "-inf"):
            msg += f"Use '{ord[:-3]}jax.numpy.inf' instead."
        raise ValueError(msg)
    ax = lax.abs(x)
    if ord == np.inf:
        return _max(ax, axis=axis, keepdims=keepdims, initial=0)
    if ord == -np.inf:
        return _min(ax, axis=axis, keepdims=keepdims)
    if ord == 0:
        return _sum(lax.ne(x, lax.full((), 0, get_aval(x).dtype)), axis=axis,
                    keepdims=keepdims, dtype=real_dtype(get_aval(x).dtype))
    if ord == 1:
        return _sum(ax, axis=axis, keepdims=keepdims)
    p = lax.full((), float(ord), get_aval(ax).dtype)
    total = _sum(lax.pow(ax, lax.broadcast_in_dim(p, _shape(ax), ())), axis=axis,
                 keepdims=keepdims)
    return lax.pow(total, lax.broadcast_in_dim(lax.div(lax.full((), 1, get_aval(p).dtype), p),
                                               _shape(total), ()))


def _matrix_norm(x: Any, ord: Any, axes: tuple[int, int], keepdims: bool) -> Any:  # noqa
    row, col = axes
    if ord is None or ord in ("f", "fro"):
        return sqrt(_sum(_abs_squared(x), axis=axes, keepdims=keepdims))
    if ord in (1, -1, np.inf, -np.inf):
        # 1: largest column sum of |x|; inf: largest row sum
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        if not keepdims and outer > inner:
            outer -= 1
        sums = _sum(lax.abs(x), axis=inner, keepdims=keepdims)
        if ord in (1, np.inf):
            return _max(sums, axis=outer, keepdims=keepdims, initial=0)
        return _min(sums, axis=outer, keepdims=keepdims)
    if ord in ("nuc", 2, -2):
        s = svd(moveaxis(x, axes, (-2, -1)), compute_uv=False)
        if ord == 2:
            y = _max(s, axis=-1, initial=0)
        elif ord == -2:
            y = _min(s, axis=-1)
        else:
            y = _sum(s, axis=-1)
        return lax.expand_dims(y, tuple(sorted(axes))) if keepdims else y
    raise ValueError(f"Invalid order '{ord}' for matrix norm.")


def norm(x: Any, ord: Any = None, axis: Any = None,  # noqa: A002
         keepdims: bool = False) -> Any:
    """Vector or matrix norm (numpy's ``ord`` conventions, all orders including 2, -2 and
    'nuc' through the SVD); the result is real."""
    x = _one("jnp.linalg.norm", x)
    ndim = len(_shape(x))
    if axis is None:
        if ord is None:
            return sqrt(_sum(_abs_squared(x), keepdims=keepdims))
        axes = tuple(range(ndim))
    else:
        axes = _canon_axes(axis, ndim)
    if len(axes) == 1:
        return vector_norm(x, ord=2 if ord is None else ord, axis=axes, keepdims=keepdims)
    if len(axes) == 2:
        return _matrix_norm(x, ord, axes, keepdims)
    raise ValueError(f"Improper number of axes for norm: axis={axis}. Pass one axis to "
                     "compute a vector-norm, or two axes to compute a matrix-norm.")


def matrix_norm(x: Any, /, *, keepdims: bool = False, ord: Any = "fro") -> Any:  # noqa: A002
    """The matrix norm over the last two axes."""
    check_arraylike("jnp.linalg.matrix_norm", x)
    return norm(x, ord=ord, axis=(-2, -1), keepdims=keepdims)


def matrix_rank(M: Any, rtol: Any = None, *, hermitian: bool = False,  # noqa: N803
                tol: Any = None) -> Any:
    """The number of singular values above ``rtol`` times the largest (default: the
    largest times ``max(m, n) * eps``)."""
    if tol is not None:
        if rtol is not None:
            raise ValueError("matrix_rank: only one of tol or rtol may be specified.")
        rtol = tol
    m_ = _one("jnp.linalg.matrix_rank", M)
    if len(_shape(m_)) < 2:
        nonzero = _any(lax.ne(m_, lax.full((), 0, get_aval(m_).dtype)))
        return lax.convert_element_type(nonzero, np.int32)
    s = svd(m_, full_matrices=False, compute_uv=False, hermitian=hermitian)
    if rtol is None:
        scale = max(_shape(m_)[-2:]) * float(dtypes.finfo(get_aval(s).dtype).eps)
        rtol = multiply(_max(s, axis=-1), scale)
    rtol = asarray(rtol)
    return _sum(greater(s, lax.expand_dims(rtol, (len(_shape(rtol)),))), axis=-1)


def cond(x: Any, p: Any = None) -> Any:
    """The condition number in the ``p`` norm (default 2: the ratio of the extreme
    singular values); inf for a singular matrix."""
    check_arraylike("cond", x)
    x = asarray(x)
    shape = _shape(x)
    if len(shape) < 2:
        raise ValueError(f"jnp.linalg.cond: input array must be at least 2D; got "
                         f"arr.shape={shape}")
    if shape[-1] == 0 or shape[-2] == 0:
        raise ValueError(f"jnp.linalg.cond: input array must not be empty; got "
                         f"arr.shape={shape}")
    if p is None or p in (2, -2):
        s = svdvals(x)
        k = len(_shape(s)) - 1
        first, last = (lax.squeeze(lax.slice_in_dim(s, i, i + 1, axis=k), (k,))
                       for i in (0, _shape(s)[-1] - 1))
        if p != -2:
            return lax.div(first, last)
        r = lax.div(last, first)
    else:
        if shape[-2] != shape[-1]:
            raise ValueError(f"jnp.linalg.cond: for p={p}, array must be square; got "
                             f"arr.shape={shape}")
        r = lax.mul(norm(x, ord=p, axis=(-2, -1)), norm(inv(x), ord=p, axis=(-2, -1)))
    singular = logical_and(isnan(r), logical_not(_any(isnan(x), axis=(-2, -1))))
    return where(singular, np.inf, r)


# ---------------------------------------------------------------------------
# products and views (the array API's linalg names)
# ---------------------------------------------------------------------------


def multi_dot(arrays: Sequence[Any], *, precision: Any = None) -> Any:
    """The chained product of ``arrays`` in the cheapest order (first and last may be
    vectors)."""
    check_arraylike("jnp.linalg.multi_dot", *arrays)
    arrs = [asarray(a) for a in arrays]
    if len(arrs) < 2:
        raise ValueError(f"multi_dot requires at least two arrays; got "
                         f"len(arrays)={len(arrs)}")
    nds = [len(_shape(a)) for a in arrs]
    if not (nds[0] in (1, 2) and nds[-1] in (1, 2) and all(n == 2 for n in nds[1:-1])):
        raise ValueError("multi_dot: input arrays must all be two-dimensional, except for "
                         "the first and last array which may be 1 or 2 dimensional. Got "
                         f"array shapes {[_shape(a) for a in arrs]}")
    if any(_shape(a)[-1] != _shape(b)[0] for a, b in zip(arrs[:-1], arrs[1:])):
        raise ValueError("multi_dot: last dimension of each array must match first "
                         "dimension of following array. Got array shapes "
                         f"{[_shape(a) for a in arrs]}")
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if len(arrs) + 1 > len(letters):
        raise ValueError("multi_dot: too many arrays")
    specs = [letters[i] + letters[i + 1] for i in range(len(arrs))]
    if nds[0] == 1:
        specs[0] = specs[0][1:]
    if nds[-1] == 1:
        specs[-1] = specs[-1][:1]
    out = (specs[0][0] if nds[0] == 2 else "") + (specs[-1][-1] if nds[-1] == 2 else "")
    return einsum(",".join(specs) + "->" + out, *arrs, optimize="auto", precision=precision)


def outer(x1: Any, x2: Any, /) -> Any:
    """The outer product of two vectors."""
    check_arraylike("jnp.linalg.outer", x1, x2)
    x1, x2 = asarray(x1), asarray(x2)
    if len(_shape(x1)) != 1 or len(_shape(x2)) != 1:
        raise ValueError(f"Input arrays must be one-dimensional, but they are "
                         f"x1.ndim={len(_shape(x1))} x2.ndim={len(_shape(x2))}")
    return _outer(x1, x2)


def cross(x1: Any, x2: Any, /, *, axis: int = -1) -> Any:
    """Cross product of 3-vectors along ``axis``."""
    check_arraylike("jnp.linalg.cross", x1, x2)
    x1, x2 = asarray(x1), asarray(x2)
    if _shape(x1)[axis] != 3 or _shape(x2)[axis] != 3:
        raise ValueError("Both input arrays must be (arrays of) 3-dimensional vectors, but "
                         f"they have x1.shape[axis]={_shape(x1)[axis]} and "
                         f"x2.shape[axis]={_shape(x2)[axis]}")
    return _cross(x1, x2, axis=axis)


def trace(x: Any, /, *, offset: int = 0, dtype: Any = None) -> Any:
    """Trace over the last two axes."""
    return _trace(x, offset=offset, axis1=-2, axis2=-1, dtype=dtype)


def diagonal(x: Any, /, *, offset: int = 0) -> Any:
    """Diagonal over the last two axes."""
    return _diagonal_of(x, offset=offset, axis1=-2, axis2=-1)


def matrix_transpose(x: Any, /) -> Any:
    """Swap the last two axes."""
    check_arraylike("jnp.linalg.matrix_transpose", x)
    x = asarray(x)
    nd = len(_shape(x))
    if nd < 2:
        raise ValueError(f"matrix_transpose requires at least 2 dimensions; got ndim={nd}")
    return mat.T(x)
