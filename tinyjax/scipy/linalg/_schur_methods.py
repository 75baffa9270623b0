"""Algorithms of ``tinyjax.scipy.linalg`` on Hessenberg and Schur forms: ``hessenberg``
(Householder reduction, LAPACK's reflector conventions), ``rsf2csf`` (real to complex
Schur form by Givens rotations), ``funm`` (Parlett's recurrence, Golub and Van Loan's
algorithm 11.1.1) and ``solve_sylvester`` (Bartels and Stewart's method, or
eigendecompositions).  They are compositions of lax operations and the Schur
decomposition, so they run under ``jit`` and ``vmap`` and differentiate."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax.elementwise import complex_dtype
from tinyjax.numpy._util import check_arraylike, promote_dtypes_inexact
from tinyjax.scipy.linalg._factorizations import schur, solve

__all__ = ["funm", "hessenberg", "rsf2csf", "solve_sylvester"]

_HI = lax.Precision.HIGHEST


def _sign(x: Any) -> Any:
    """LAPACK's SIGN(1, x): +1 for x >= 0 (zero included), -1 below."""
    return jnp.where(x >= 0, 1.0, -1.0).astype(x.dtype)


def _hessenberg_2d(a: Any) -> tuple[Any, Any]:
    n = a.shape[0]
    rows = np.arange(n)

    def reflect(k, carry):
        """The reflector I - tau v v^H zeroing column k below row k + 1 (xLARFG), applied
        on both sides; accumulated into q."""
        a, q = carry
        col = a[:, k]
        alpha = col[k + 1]
        tail = jnp.where(rows > k + 1, col, 0)
        tail_norm2 = jnp.sum(jnp.abs(tail) ** 2)
        beta = -_sign(jnp.real(alpha)) * jnp.sqrt(jnp.abs(alpha) ** 2 + tail_norm2)
        trivial = (tail_norm2 == 0) & (jnp.imag(alpha) == 0)
        beta = jnp.where(trivial, 1, beta).astype(jnp.real(alpha).dtype)
        tau = jnp.where(trivial, 0, (beta - alpha) / beta).astype(a.dtype)
        denom = jnp.where(trivial, 1, alpha - beta)
        v = jnp.where(rows > k + 1, col / denom, 0).astype(a.dtype)
        v = v + (rows == k + 1).astype(a.dtype)
        vh = jnp.conj(v)
        a = a - jnp.conj(tau) * jnp.outer(v, jnp.matmul(vh, a, precision=_HI))
        a = a - tau * jnp.outer(jnp.matmul(a, v, precision=_HI), vh)
        q = q - tau * jnp.outer(jnp.matmul(q, v, precision=_HI), vh)
        return a, q

    # (n - 1 reflectors: the last only makes a complex subdiagonal entry real)
    a, q = lax.fori_loop(0, max(n - 1, 0), reflect, (a, jnp.eye(n, dtype=a.dtype)))
    return jnp.triu(a, -1), q


def hessenberg(a: Any, *, calc_q: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> Any:
    """The Hessenberg form ``H`` of ``a`` (zero below the first subdiagonal) with
    ``a = Q H Q^H``: ``H``, or ``(H, Q)`` if ``calc_q``; leading dimensions batch."""
    check_arraylike("hessenberg", a)
    (a,) = promote_dtypes_inexact(jnp.asarray(a))
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"hessenberg: expected a (batched) square matrix, got shape "
                         f"{a.shape}.")
    h, q = jnp.vectorize(_hessenberg_2d, signature="(n,n)->(n,n),(n,n)")(a)
    return (h, q) if calc_q else h


def _rsf2csf_2d(t: Any, z: Any) -> tuple[Any, Any]:
    n = t.shape[0]
    eps = np.finfo(t.dtype).eps
    index = np.arange(n)

    def rotate(m, tz):
        """A Givens rotation of rows/columns m-1, m triangularising the 2x2 block there,
        whose shifted eigenvalue of positive imaginary part it takes (SciPy's choice)."""
        t, z = tz
        p, q, r, s = t[m - 1, m - 1], t[m - 1, m], t[m, m - 1], t[m, m]
        half = (p - s) / 2
        root = jnp.sqrt(half * half + q * r)
        mu = half + root  # the block's eigenvalue less t[m, m]
        mu = jnp.where(jnp.imag(mu) < 0, half - root, mu)
        norm = jnp.sqrt(jnp.abs(mu) ** 2 + jnp.abs(r) ** 2).astype(t.dtype)
        c, sn = mu / norm, r / norm
        g = jnp.array([[jnp.conj(c), sn], [-sn, c]], dtype=t.dtype)
        pair = lax.dynamic_slice_in_dim(t, m - 1, 2, axis=0)
        pair = jnp.where(index >= m - 1, jnp.matmul(g, pair, precision=_HI), pair)
        t = lax.dynamic_update_slice_in_dim(t, pair, m - 1, axis=0)
        cols = lax.dynamic_slice_in_dim(t, m - 1, 2, axis=1)
        cols = jnp.where(index[:, None] < m + 1,
                         jnp.matmul(cols, jnp.conj(g).T, precision=_HI), cols)
        t = lax.dynamic_update_slice_in_dim(t, cols, m - 1, axis=1)
        zc = lax.dynamic_slice_in_dim(z, m - 1, 2, axis=1)
        z = lax.dynamic_update_slice_in_dim(z, jnp.matmul(zc, jnp.conj(g).T, precision=_HI),
                                            m - 1, axis=1)
        return t, z

    def step(i, tz):
        m = n - i
        t, z = tz
        coupled = jnp.abs(t[m, m - 1]) > eps * (jnp.abs(t[m - 1, m - 1]) + jnp.abs(t[m, m]))
        t, z = lax.cond(coupled, rotate, lambda m, tz: tz, m, (t, z))
        return t.at[m, m - 1].set(0), z

    if n == 1:
        return t, z
    return lax.fori_loop(1, n, step, (t, z))


def rsf2csf(T: Any, Z: Any, check_finite: bool = True) -> tuple[Any, Any]:  # noqa: N803
    """The complex Schur form ``(T, Z)`` (``T`` upper triangular) from a real one
    (``T`` quasi-triangular with 2x2 blocks, as ``schur`` gives); leading dimensions
    batch (broadcast)."""
    check_arraylike("rsf2csf", T, Z)
    t, z = jnp.asarray(T), jnp.asarray(Z)
    if t.ndim < 2 or t.shape[-1] != t.shape[-2]:
        raise ValueError("Input 'T' must be square.")
    if z.ndim < 2 or z.shape[-1] != z.shape[-2]:
        raise ValueError("Input 'Z' must be square.")
    if t.shape[-1] != z.shape[-1]:
        raise ValueError(f"Input array shapes must match: Z: {z.shape} vs. T: {t.shape}")
    t, z = promote_dtypes_inexact(t, z)
    dt = complex_dtype(get_aval(t).dtype)
    return jnp.vectorize(_rsf2csf_2d, signature="(n,n),(n,n)->(n,n),(n,n)")(
        t.astype(dt), z.astype(dt))


def _parlett(f: Any, t: Any) -> tuple[Any, Any]:
    """Fill the strictly upper triangle of ``f = func(t)`` (``f``'s diagonal given)
    superdiagonal by superdiagonal; also the smallest eigenvalue gap divided by."""
    n = t.shape[0]
    index = jnp.arange(n)

    def entry(i, carry):
        p, f, gap = carry
        j = i + p
        inner = (index >= i) & (index < j - 1)
        s = t[i - 1, j - 1] * (f[j - 1, j - 1] - f[i - 1, i - 1])
        s = s + (jnp.where(inner, t[i - 1], 0) @ jnp.where(inner, f[:, j - 1], 0)
                 - jnp.where(inner, f[i - 1], 0) @ jnp.where(inner, t[:, j - 1], 0))
        den = t[j - 1, j - 1] - t[i - 1, i - 1]
        f = f.at[i - 1, j - 1].set(jnp.where(den != 0, s / den, s))
        return p, f, jnp.minimum(gap, jnp.abs(den))

    def diagonal(p, carry):
        _, f, gap = lax.fori_loop(1, n - p + 1, entry, (p, *carry))
        return f, gap

    return lax.fori_loop(1, n, diagonal, (f, jnp.abs(t[0, 0])))


def funm(A: Any, func: Callable[[Any], Any], disp: bool = True) -> Any:  # noqa: N803
    """The matrix function ``func(A)`` of a square matrix, ``func`` applied to the
    eigenvalues of ``A``'s complex Schur form and extended by Parlett's recurrence
    (complex result); with ``disp=False`` also SciPy's estimate of its relative error."""
    a = jnp.asarray(A)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError("expected square array_like input")
    t, z = rsf2csf(*schur(a))
    f = jnp.diag(func(jnp.diag(t))).astype(t.dtype)
    f, gap = _parlett(f, t)
    f = jnp.matmul(jnp.matmul(z, f, precision=_HI), jnp.conj(z).T, precision=_HI)
    if disp:
        return f
    tol = np.finfo(jnp.real(f).dtype).eps
    gap = jnp.where(gap == 0.0, tol, gap)
    offdiag = jnp.max(jnp.sum(jnp.abs(jnp.triu(t, 1)), axis=0))
    err = jnp.where(jnp.any(jnp.isinf(f)), np.inf,
                    jnp.minimum(1, jnp.maximum(tol, (tol / gap) * offdiag)))
    return f, err


def _triangular_sylvester(r: Any, s: Any, f: Any) -> Any:
    """``Y`` with ``R Y + Y S^T = F`` for upper triangular ``R`` and lower triangular
    ``S^T``, entry by entry from the bottom-right corner."""
    m, n = f.shape
    rows, cols = np.arange(m), np.arange(n)

    def entry(y, at):
        i, j = at // n, at % n
        later_rows = jnp.sum(jnp.where(rows > i, r[i, :] * y[:, j], 0))
        later_cols = jnp.sum(jnp.where(cols > j, y[i, :] * s[:, j], 0))
        value = (f[i, j] - later_rows - later_cols) / (r[i, i] + s[j, j])
        return y.at[i, j].set(value), None

    y, _ = lax.scan(entry, jnp.zeros_like(f), jnp.arange(m * n - 1, -1, -1))
    return y


def _sylvester_2d(a: Any, b: Any, c: Any, method: str, tol: float) -> Any:
    m, n = c.shape
    if method == "schur":
        r, u = schur(a, output="complex")
        s, v = schur(jnp.conj(b).T, output="complex")
        f = jnp.matmul(jnp.matmul(jnp.conj(u).T, c.astype(r.dtype), precision=_HI), v,
                       precision=_HI)
        y = _triangular_sylvester(r, jnp.conj(s).T, f)
        x = jnp.matmul(jnp.matmul(u, y, precision=_HI), jnp.conj(v).T, precision=_HI)
    elif method == "eigen":
        wa, ua = jnp.linalg.eig(a)
        wb, ub = jnp.linalg.eig(b)
        f = solve(ua, jnp.matmul(c.astype(wa.dtype), ub, precision=_HI))
        y = f / (wa[:, None] + wb[None, :])
        x = jnp.matmul(jnp.matmul(ua, y, precision=_HI), jnp.linalg.inv(ub), precision=_HI)
    else:
        raise ValueError(f'Unrecognized method {method}. The two valid methods are either '
                         f'"schur" or "eigen".')
    if not dtypes.is_complex(c.dtype):
        x = jnp.real(x)
    close = jnp.any(jnp.abs(jnp.linalg.eigvals(a)[:, None]
                            + jnp.linalg.eigvals(b)[None, :]) < tol)
    return jnp.where(close, jnp.nan, x).astype(x.dtype)


def solve_sylvester(A: Any, B: Any, C: Any, *, method: str = "schur",  # noqa: N803
                    tol: float = 1e-8) -> Any:
    """``X`` with ``A X + X B = C`` (``A`` m x m, ``B`` n x n, ``C`` m x n; leading
    dimensions batch), by Bartels and Stewart's method on the Schur forms
    (``method='schur'``) or from eigendecompositions (``'eigen'``); NaN where an
    eigenvalue of ``A`` plus one of ``B`` is within ``tol`` of zero (no unique
    solution)."""
    check_arraylike("solve_sylvester", A, B, C)
    a, b, c = promote_dtypes_inexact(jnp.asarray(A), jnp.asarray(B), jnp.asarray(C))
    if c.ndim < 2:
        raise ValueError(f"Incompatible shapes for Sylvester equation:\nA: {a.shape}\n"
                         f"B: {b.shape}\nC: {c.shape}")
    m, n = c.shape[-2:]
    if a.shape[-2:] != (m, m) or b.shape[-2:] != (n, n):
        raise ValueError(f"Incompatible shapes for Sylvester equation:\nA: {a.shape}\n"
                         f"B: {b.shape}\nC: {c.shape}")
    if method not in ("schur", "eigen"):
        raise ValueError(f'Unrecognized method {method}. The two valid methods are either '
                         f'"schur" or "eigen".')
    return jnp.vectorize(lambda a, b, c: _sylvester_2d(a, b, c, method, tol),
                         signature="(m,m),(n,n),(m,n)->(m,n)")(a, b, c)
