"""The factorisations of ``tinyjax.scipy.linalg`` on the ``lax.linalg`` primitives, and what
is built on them (solves, matrix functions), with JAX's semantics (the ``overwrite_*`` and
``check_finite`` arguments are accepted and ignored, as in JAX)."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.api import jvp
from tinyjax.core import get_aval
from tinyjax.lax.control_flow.linear_solve import custom_linear_solve
from tinyjax.lax.elementwise import complex_dtype
from tinyjax.lax.linalg import _common as mat
from tinyjax.numpy.linalg import det, inv  # noqa: F401  (SciPy's names, same functions)
from tinyjax.numpy._util import promote_dtypes_inexact

__all__ = ["cho_factor", "cho_solve", "cholesky", "det", "eigh", "eigh_tridiagonal", "expm",
           "expm_frechet", "inv", "lu", "lu_factor", "lu_solve", "polar", "qr", "qr_multiply",
           "schur", "solve", "solve_triangular", "sqrtm", "svd"]


def _inexact(*xs: Any) -> list[Any]:
    return promote_dtypes_inexact(*[jnp.asarray(x) for x in xs])


def _square(name: str, a: Any) -> None:
    shape = get_aval(a).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"{name}: expected a (batched) square matrix, got shape {shape}.")


def _vector_signature(name: str, a: Any, b: Any, extra: str = "") -> str:
    """numpy.vectorize signature of a solve: ``b`` a vector or (batched) matrices."""
    na, nb = get_aval(a).ndim, get_aval(b).ndim
    if nb == 1 or (na == nb + 1 and get_aval(a).shape[-1] == get_aval(b).shape[-1]):
        return f"(n,n){extra},(n)->(n)"
    return f"(n,n){extra},(n,k)->(n,k)"


# ---------------------------------------------------------------------------
# Cholesky
# ---------------------------------------------------------------------------


def cholesky(a: Any, lower: bool = False, overwrite_a: bool = False,
             check_finite: bool = True) -> Any:
    """The Cholesky factor of ``a`` read from one triangle: upper ``U`` with ``a = U^H U``
    (lower ``L`` with ``a = L L^H`` if ``lower``); NaNs where ``a`` is not positive
    definite."""
    (a,) = _inexact(a)
    _square("cholesky", a)
    chol = lax.linalg.cholesky(a if lower else mat.H(a), symmetrize_input=False)
    return chol if lower else mat.H(chol)


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> tuple[Any, bool]:
    """``(c, lower)`` for :func:`cho_solve` (``c`` the triangular factor)."""
    return cholesky(a, lower=lower), lower


def cho_solve(c_and_lower: tuple[Any, bool], b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    """Solve ``a x = b`` from the Cholesky factor of ``a`` (two triangular solves)."""
    c, lower = c_and_lower
    c, b = _inexact(c, b)
    signature = _vector_signature("cho_solve", c, b)

    def solve(c, b):
        y = lax.linalg.triangular_solve(c, b, left_side=True, lower=lower,
                                        transpose_a=not lower, conjugate_a=not lower)
        return lax.linalg.triangular_solve(c, y, left_side=True, lower=lower,
                                           transpose_a=lower, conjugate_a=lower)
    return jnp.vectorize(solve, signature=signature)(c, b)


# ---------------------------------------------------------------------------
# LU
# ---------------------------------------------------------------------------


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True
              ) -> tuple[Any, Any]:
    """``(lu, piv)``: the packed factors and LAPACK's row swaps (0-based, int32)."""
    (a,) = _inexact(a)
    packed, pivots, _ = lax.linalg.lu(a)
    return packed, pivots


def lu_solve(lu_and_piv: tuple[Any, Any], b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    """Solve ``a x = b`` (``trans`` 1: ``a^T``, 2: ``a^H``) from :func:`lu_factor`."""
    packed, pivots = lu_and_piv
    packed, b = _inexact(packed, b)
    perm = lax.linalg.lu_pivots_to_permutation(jnp.asarray(pivots), get_aval(packed).shape[-2])
    signature = _vector_signature("lu_solve", packed, b, extra=",(n)")

    def solve(lu_, perm_, b_):
        vector = get_aval(b_).ndim == 1
        x = lax.linalg.lu_solve(lu_, perm_, b_[:, None] if vector else b_, trans=trans)
        return x[:, 0] if vector else x
    return jnp.vectorize(solve, signature=signature)(packed, perm, b)


def lu(a: Any, permute_l: bool = False, overwrite_a: bool = False,
       check_finite: bool = True) -> tuple:
    """``(p, l, u)`` with ``a = p @ l @ u`` (``(p @ l, u)`` with ``permute_l``)."""
    (a,) = _inexact(a)
    packed, _, perm = lax.linalg.lu(a)
    dt = get_aval(a).dtype
    m, n = get_aval(a).shape[-2:]
    k = min(m, n)
    p = mat.T(lax.linalg.solves.permutation_matrix(perm, dt))
    low = jnp.tril(packed, -1)[..., :, :k] + jnp.eye(m, k, dtype=dt)
    up = jnp.triu(packed)[..., :k, :]
    if permute_l:
        return jnp.matmul(p, low, precision=lax.Precision.HIGHEST), up
    return p, low, up


# ---------------------------------------------------------------------------
# other decompositions
# ---------------------------------------------------------------------------


def qr(a: Any, overwrite_a: bool = False, lwork: Any = None, mode: str = "full",
       pivoting: bool = False, check_finite: bool = True) -> tuple:
    """QR decomposition: ``(q, r)`` (``mode='full'`` or ``'economic'``), ``(r,)``
    (``mode='r'``), with the column permutation last if ``pivoting``."""
    if mode in ("full", "r"):
        full_matrices = True
    elif mode == "economic":
        full_matrices = False
    else:
        raise ValueError(f"Unsupported QR decomposition mode '{mode}'")
    (a,) = _inexact(a)
    q, r, *p = lax.linalg.qr(a, pivoting=pivoting, full_matrices=full_matrices)
    if mode == "r":
        return (r, *p)
    return (q, r, *p)


def svd(a: Any, full_matrices: bool = True, compute_uv: bool = True,
        overwrite_a: bool = False, check_finite: bool = True,
        lapack_driver: str = "gesdd") -> Any:
    """``(u, s, vh)`` with ``a = u diag(s) vh`` (``s`` alone without ``compute_uv``)."""
    (a,) = _inexact(a)
    return lax.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv)


def eigh(a: Any, b: Any = None, lower: bool = True, eigvals_only: bool = False,
         overwrite_a: bool = False, overwrite_b: bool = False, turbo: bool = True,
         eigvals: Any = None, type: int = 1, check_finite: bool = True) -> Any:  # noqa: A002
    """Eigenvalues (ascending) and eigenvectors of a Hermitian ``a`` read from its
    ``lower`` (or upper) triangle; the standard problem only (``b=None``), as in JAX."""
    if b is not None:
        raise NotImplementedError("Only the b=None case of eigh is implemented")
    if type != 1:
        raise NotImplementedError("Only the type=1 case of eigh is implemented.")
    if eigvals is not None:
        raise NotImplementedError("Only the eigvals=None case of eigh is implemented.")
    (a,) = _inexact(a)
    v, w = lax.linalg.eigh(a, lower=lower)
    return w if eigvals_only else (w, v)


def schur(a: Any, output: str = "real") -> tuple[Any, Any]:
    """The Schur decomposition ``a = z t z^H``: ``(t, z)``; ``output='complex'`` gives the
    triangular complex form of a real ``a``."""
    if output not in ("real", "complex"):
        raise ValueError(f"Expected 'output' to be either 'real' or 'complex', got "
                         f"output={output!r}.")
    (a,) = _inexact(a)
    if output == "complex":
        a = a.astype(complex_dtype(get_aval(a).dtype))
    return lax.linalg.schur(a)


def _polar_qdwh(a: Any, side: str, eps: float | None,
                max_iterations: int | None) -> tuple[Any, Any]:
    """One matrix's polar factors by ``lax.linalg.qdwh``, which takes ``m >= n``: a wide
    ``a`` decomposes from the left through its conjugate transpose."""
    m, n = get_aval(a).shape
    if (m >= n) != (side == "right"):
        # JAX's text, word for word
        raise NotImplementedError("method='qdwh' only supports mxn matrices where m < n "
                                  "where side='right' and m >= n side='left', got "
                                  f"{(m, n)} with side={side!r}")
    transposed = side == "left"
    unitary, posdef, _, _ = lax.linalg.qdwh(mat.H(a) if transposed else a, eps=eps,
                                            max_iterations=max_iterations)
    return (mat.H(unitary) if transposed else unitary), posdef


def _polar_svd(a: Any, side: str) -> tuple[Any, Any]:
    """The polar factors ``u vh`` and ``v s vh`` (right) or ``u s u^H`` (left)."""
    u, s, vh = lax.linalg.svd(a, full_matrices=False)
    s = s.astype(get_aval(u).dtype)
    unitary = jnp.matmul(u, vh, precision=lax.Precision.HIGHEST)
    if side == "right":
        pos = jnp.matmul(mat.H(vh) * s[..., None, :], vh, precision=lax.Precision.HIGHEST)
    else:
        pos = jnp.matmul(u * s[..., None, :], mat.H(u), precision=lax.Precision.HIGHEST)
    return unitary, pos


def polar(a: Any, side: str = "right", *, method: str = "qdwh", eps: float | None = None,
          max_iterations: int | None = None) -> tuple[Any, Any]:
    """The polar decomposition ``a = u p`` (``side='right'``) or ``a = p u`` with ``u``
    unitary and ``p`` positive semi-definite, over the leading (batch) axes of ``a``.

    ``method='qdwh'`` runs ``lax.linalg.qdwh`` (with ``eps`` and ``max_iterations``, which
    must be static) and, as in JAX, takes tall or square matrices with ``side='right'``
    and wide ones with ``side='left'`` (``NotImplementedError`` otherwise);
    ``method='svd'`` forms the factors from the SVD, for every shape and side."""
    arr = jnp.asarray(a)
    if arr.ndim < 2:
        raise ValueError("The input `a` must be at least a 2-D array.")
    if side not in ("right", "left"):
        raise ValueError("The argument `side` must be either 'right' or 'left'.")
    if method == "svd":
        return _polar_svd(arr, side)
    if method != "qdwh":
        raise ValueError(f"Unknown polar decomposition method {method}.")
    signature = "(m,n)->(m,n),(n,n)" if side == "right" else "(m,n)->(m,n),(m,m)"
    return jnp.vectorize(lambda x: _polar_qdwh(x, side, eps, max_iterations),
                         signature=signature)(arr)


# ---------------------------------------------------------------------------
# solves
# ---------------------------------------------------------------------------


def solve(a: Any, b: Any, lower: bool = False, overwrite_a: bool = False,
          overwrite_b: bool = False, debug: bool = False, check_finite: bool = True,
          assume_a: str = "gen") -> Any:
    """``x`` with ``a x = b``; ``assume_a='pos'`` solves through the Cholesky factor of
    the ``lower`` (or upper) triangle, differentiated as a symmetric linear solve."""
    valid = ["gen", "sym", "her", "pos"]
    if assume_a not in valid:
        raise ValueError(f"Expected assume_a to be one of {valid}; got {assume_a!r}")
    if assume_a != "pos":
        return jnp.linalg.solve(a, b)
    a, b = _inexact(a, b)
    na, nb = get_aval(a).ndim, get_aval(b).ndim
    if not (na >= 2 and nb in (na, na - 1) and get_aval(a).shape[-1] ==
            get_aval(a).shape[-2] == get_aval(b).shape[na - 2]):
        raise ValueError("The arguments to solve must have shapes a=[..., m, m] and "
                         f"b=[..., m, k] or b=[..., m]; got a={get_aval(a).shape} and "
                         f"b={get_aval(b).shape}")
    factors = cho_factor(lax.stop_gradient(a), lower=lower)
    vector = nb == na - 1
    bm = b[..., None] if vector else b
    x = custom_linear_solve(lambda x: jnp.matmul(a, x, precision=lax.Precision.HIGHEST), bm,
                            solve=lambda _, x: cho_solve(factors, x), symmetric=True)
    return x[..., 0] if vector else x


def solve_triangular(a: Any, b: Any, trans: int | str = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     debug: Any = None, check_finite: bool = True) -> Any:
    """``x`` with ``op(a) x = b`` for triangular ``a`` (``trans``: 0/'N', 1/'T', 2/'C')."""
    if trans in (0, "N"):
        transpose_a, conjugate_a = False, False
    elif trans in (1, "T"):
        transpose_a, conjugate_a = True, False
    elif trans in (2, "C"):
        transpose_a, conjugate_a = True, True
    else:
        raise ValueError(f"Invalid 'trans' value {trans}")
    a, b = _inexact(a, b)

    def solve(a_, b_):
        return lax.linalg.triangular_solve(a_, b_, left_side=True, lower=lower,
                                           transpose_a=transpose_a, conjugate_a=conjugate_a,
                                           unit_diagonal=unit_diagonal)
    return jnp.vectorize(solve, signature=_vector_signature("solve_triangular", a, b))(a, b)


# ---------------------------------------------------------------------------
# matrix functions
# ---------------------------------------------------------------------------

# Pade approximants of exp (Higham 2005): numerator coefficients b_0..b_m
_PADE = {
    3: (120., 60., 12., 1.),
    5: (30240., 15120., 3360., 420., 30., 1.),
    7: (17297280., 8648640., 1995840., 277200., 25200., 1512., 56., 1.),
    9: (17643225600., 8821612800., 2075673600., 302702400., 30270240., 2162160., 110880.,
        3960., 90., 1.),
    13: (64764752532480000., 32382376266240000., 7771770303897600., 1187353796428800.,
         129060195264000., 10559470521600., 670442572800., 33522128640., 1323241920.,
         40840800., 960960., 16380., 182., 1.),
}
# (max 1-norm theta_m per degree, in order) and the norm scaled into, per precision
_DEGREES = {64: ((3, 5, 7, 9, 13), (1.495585217958292e-2, 2.539398330063230e-1,
                                    9.504178996162932e-1, 2.097847961257068e0),
                 5.371920351148152),
            32: ((3, 5, 7), (4.258730016922831e-1, 1.880152677804762e0), 3.925724783138660)}


def _dot(x: Any, y: Any) -> Any:
    return jnp.matmul(x, y, precision=lax.Precision.HIGHEST)


def _pade(m: int, a: Any) -> tuple[Any, Any]:
    """``(u, v)``: the odd and even parts of the degree-``m`` Pade numerator at ``a``."""
    b = _PADE[m]
    n = get_aval(a).shape[-1]
    ident = jnp.eye(n, dtype=get_aval(a).dtype)
    a2 = _dot(a, a)
    if m == 13:
        a4 = _dot(a2, a2)
        a6 = _dot(a4, a2)
        u = _dot(a, _dot(a6, b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 +
                 b[3] * a2 + b[1] * ident)
        v = _dot(a6, b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + \
            b[2] * a2 + b[0] * ident
        return u, v
    powers = [ident, a2]
    while len(powers) <= m // 2:
        powers.append(_dot(powers[-1], a2))
    odd = sum(b[2 * k + 1] * powers[k] for k in range(m // 2 + 1))
    even = sum(b[2 * k] * powers[k] for k in range(m // 2 + 1))
    return _dot(a, odd), even


def _expm_2d(a: Any, upper_triangular: bool, max_squarings: int) -> Any:
    bits = 64 if get_aval(a).dtype in (np.float64, np.complex128) else 32
    degrees, thetas, maxnorm = _DEGREES[bits]
    norm1 = jnp.linalg.norm(a, 1)
    squarings = jnp.maximum(0, jnp.floor(jnp.log2(norm1 / maxnorm)))
    scaled = a / (2 ** squarings).astype(get_aval(a).dtype)
    which = jnp.digitize(norm1, jnp.asarray(thetas, dtype=get_aval(norm1).dtype))
    u, v = lax.switch(which, [lambda x, m=m: _pade(m, x) for m in degrees], scaled)
    p, q = u + v, v - u
    if upper_triangular:
        r = solve_triangular(q, p)
    else:
        r = jnp.linalg.solve(q, p)

    def square(i, r):
        return lax.cond(i < squarings, lambda r: _dot(r, r), lambda r: r, r)
    r = lax.fori_loop(0, max_squarings, square, r)
    return jnp.where(squarings > max_squarings, jnp.nan, r)


def expm(A: Any, *, upper_triangular: bool = False, max_squarings: int = 16) -> Any:  # noqa
    """The matrix exponential by scaling and squaring with Pade approximants (Higham,
    2005); NaN if more than ``max_squarings`` squarings are needed."""
    (a,) = promote_dtypes_inexact(jnp.asarray(A))
    shape = get_aval(a).shape
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"Expected A to be a (batched) square matrix, got A.shape={shape}.")
    fn = lambda x: _expm_2d(x, upper_triangular, max_squarings)  # noqa: E731
    return jnp.vectorize(fn, signature="(n,n)->(n,n)")(a) if len(shape) > 2 else fn(a)


def expm_frechet(A: Any, E: Any, *, method: str | None = None,  # noqa: N803
                 compute_expm: bool = True) -> Any:
    """The Frechet derivative of ``expm`` at ``A`` in the direction ``E`` (and ``expm(A)``
    first with ``compute_expm``), as the jvp of :func:`expm`."""
    a, e = jnp.asarray(A), jnp.asarray(E)
    for name, x in (("A", a), ("E", e)):
        if x.ndim < 2 or x.shape[-2] != x.shape[-1]:
            raise ValueError(f"expected {name} to be a (batched) square matrix, got "
                             f"{name}.shape={x.shape}")
    if a.shape != e.shape:
        raise ValueError(f"expected A and E to be the same shape, got A.shape={a.shape} "
                         f"E.shape={e.shape}")
    a, e = promote_dtypes_inexact(a, e)
    value, derivative = jvp(expm, (a,), (e,))
    return (value, derivative) if compute_expm else derivative


def _sqrtm_triangular(t: Any) -> Any:
    """The upper-triangular square root of an upper-triangular ``t``, one superdiagonal at
    a time: ``u_ij = (t_ij - sum_{i<k<j} u_ik u_kj) / (u_ii + u_jj)`` (0 where the
    numerator is 0, so a repeated zero eigenvalue gives no NaN)."""
    n = get_aval(t).shape[-1]
    diag = jnp.sqrt(jnp.diagonal(t))
    rows, cols = jnp.arange(n)[:, None], jnp.arange(n)[None, :]
    denom = diag[:, None] + diag[None, :]

    def next_diagonal(d, u):
        rest = t - _dot(u, u)   # the missing terms are zero in u still
        value = jnp.where(rest == 0, 0, rest / jnp.where(denom == 0, 1, denom))
        return jnp.where(cols - rows == d, value, u)
    return lax.fori_loop(1, n, next_diagonal, jnp.diag(diag))


def sqrtm(A: Any, blocksize: int = 1) -> Any:  # noqa: N803
    """The principal square root of ``A`` through its complex Schur form."""
    if blocksize > 1:
        raise NotImplementedError("Blocked version is not implemented yet.")
    t, z = schur(A, output="complex")
    return _dot(_dot(z, _sqrtm_triangular(t)), mat.H(z))


# ---------------------------------------------------------------------------
# eigenvalues of a tridiagonal matrix
# ---------------------------------------------------------------------------


def eigh_tridiagonal(d: Any, e: Any, *, eigvals_only: bool = False, select: str = "a",
                     select_range: tuple[float, float] | None = None,
                     tol: float | None = None, key: Any = None) -> Any:
    """Eigenvalues (ascending) and eigenvectors of the Hermitian tridiagonal matrix with
    diagonal ``d`` and off-diagonal ``e`` (``select='i'``: those with indices in
    ``select_range``, inclusive), from the dense matrix's Hermitian eigensolver."""
    alpha, beta = jnp.asarray(d), jnp.asarray(e)
    if get_aval(alpha).dtype != get_aval(beta).dtype:
        raise TypeError("diagonal and off-diagonal values must have same dtype, got "
                        f"{get_aval(alpha).dtype} and {get_aval(beta).dtype}")
    if get_aval(alpha).dtype not in mat.LAPACK_DTYPES:
        raise TypeError("Only float32 and float64 inputs are supported as inputs to "
                        "jax.scipy.linalg.eigh_tridiagonal, got "
                        f"{get_aval(alpha).dtype} and {get_aval(beta).dtype}")
    n = get_aval(alpha).shape[0]
    if select == "a":
        first, last = 0, n - 1
    elif select == "i":
        if select_range is None:
            raise ValueError("for select='i', select_range must be specified.")
        if select_range[0] > select_range[1]:
            raise ValueError("Got empty index range in select_range.")
        first, last = int(select_range[0]), int(select_range[1])
    elif select == "v":
        raise NotImplementedError("eigh_tridiagonal(..., select='v') is not implemented")
    else:
        raise ValueError("'select must have a value in {'a', 'i', 'v'}.")
    if n <= 1:
        values = jnp.real(alpha)
        return values if eigvals_only else (values, jnp.eye(n, dtype=get_aval(alpha).dtype))
    dense = jnp.diag(alpha) + jnp.diag(beta, 1) + jnp.diag(jnp.conj(beta), -1)
    v, w = lax.linalg.eigh(dense, symmetrize_input=False, lower=True)
    w, v = w[first:last + 1], v[:, first:last + 1]
    return w if eigvals_only else (w, v)


def qr_multiply(a: Any, c: Any, mode: str = "right", pivoting: bool = False,
                conjugate: bool = False, overwrite_a: bool = False, overwrite_c: bool = False
                ) -> tuple:
    """``(Q @ c, R)`` (``mode='left'``, ``c`` with ``min(M, N)`` rows) or
    ``(c @ Q, R)`` (``mode='right'``, ``c`` with ``M`` columns) for the QR decomposition
    of ``a``, with ``conj(Q)`` if ``conjugate`` and the column permutation last if
    ``pivoting``; a 1-D ``c`` is a column (left) or a row (right)."""
    if mode not in ("right", "left"):
        raise ValueError(f"mode must be 'right' or 'left', got {mode!r}")
    a, c = _inexact(a, c)
    if a.ndim < 2:
        raise ValueError(f"qr_multiply: a must be a (batched) matrix, got shape {a.shape}")
    onedim = c.ndim == 1
    if onedim:
        c = c[:, None] if mode == "left" else c[None, :]
    m, n = a.shape[-2:]
    k = min(m, n)
    if mode == "left" and c.shape[-2] != k:
        raise ValueError(f"Array shapes are not compatible for Q @ c operation: a has shape "
                         f"{tuple(a.shape)} so Q has {k} columns, but c has {c.shape[-2]} "
                         f"rows (expected {k}).")
    if mode == "right" and c.shape[-1] != m:
        raise ValueError(f"Array shapes are not compatible for c @ Q operation: a has shape "
                         f"{tuple(a.shape)} so Q has {m} rows, but c has {c.shape[-1]} "
                         f"columns (expected {m}).")
    q, r, *p = lax.linalg.qr(a, pivoting=pivoting, full_matrices=False)
    if conjugate:
        q = jnp.conj(q)
    hi = lax.Precision.HIGHEST
    out = jnp.matmul(q, c, precision=hi) if mode == "left" else jnp.matmul(c, q, precision=hi)
    if onedim:
        out = out.ravel()
    return (out, jnp.triu(r), *p)
