"""``qdwh``: the polar decomposition ``x = u h`` by the QR-based dynamically weighted
Halley iteration (Nakatsukasa, Bai and Gygi, SIAM J. Matrix Anal. Appl. 31, 2010), with
the signature and results of JAX's ``jax.lax.linalg.qdwh``.

As in JAX it is a function of lax operations, not a primitive: QR and Cholesky
factorisations, triangular solves and a ``while_loop``, so it runs on every device and
under every transform those do.  The weights of each step depend only on the lower bound
``l`` of the smallest singular value, which starts at ``eps`` and evolves without looking
at ``x``: they are computed here in Python, once.  Ill-conditioned steps (weight
``c > 100``) use the QR form, the others the cheaper Cholesky form; plain Halley steps
follow until the iterate stops moving, then one Newton-Schulz step refines ``u``.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Tracer, get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.control_flow import while_loop
from tinyjax.lax.linalg._common import H, LAPACK_DTYPES, eye, matmul
from tinyjax.lax.linalg.factorizations import cholesky, qr
from tinyjax.lax.linalg.solves import triangular_solve
from tinyjax.lax.reductions import reduce_max, reduce_sum
from tinyjax.lax.shape import broadcasted_iota, full
from tinyjax.lax.slicing import (concatenate, dynamic_slice, dynamic_update_slice, pad,
                                 slice as lax_slice)

__all__ = ["qdwh"]

_QR_ABOVE = 100.0   # steps with a larger weight c use the (better conditioned) QR form
_HALLEY = (3.0, 1.0, 3.0)   # the weights once l has reached 1
Block = Optional[tuple[Any, Any]]   # the true (m, n) of a padded matrix, sizes maybe traced


def _weights(l: float) -> tuple[float, float, float, float]:
    """The step's weights ``(a, b, c)`` for the lower bound ``l``, and the next bound."""
    l2 = l * l
    d = (4.0 * (1.0 - l2) / (l2 * l2)) ** (1.0 / 3.0)
    root = math.sqrt(1.0 + d)
    a = root + 0.5 * math.sqrt(8.0 - 4.0 * d + 8.0 * (2.0 - l2) / (l2 * root))
    b = (a - 1.0) ** 2 / 4.0
    c = a + b - 1.0
    return a, b, c, l * (a + b * l2) / (1.0 + c * l2)


def _schedule(eps: float, max_iterations: int) -> list[tuple[float, float, float]]:
    """The weights of the steps taken while the bound ``l`` is short of 1."""
    steps, l = [], eps
    while l + 5.0 * eps < 1.0 and len(steps) < max_iterations:
        a, b, c, l = _weights(l)
        steps.append((a, b, c))
    return steps


def _scalar(v: float, like: Any) -> Any:
    return full((), v, get_aval(like).dtype)


def _mask(x: Any, dims: tuple[Any, ...]) -> Any:
    """``x`` with the entries outside its leading ``dims`` block (traced or not) zeroed."""
    shape = get_aval(x).shape
    inside: Any = None
    for axis, d in enumerate(dims):
        below = ew.lt(broadcasted_iota(np.int32, shape, axis),
                      ew.convert_element_type(as_operand(d), np.int32))
        inside = below if inside is None else ew.bitwise_and(inside, below)
    return ew.select(inside, x, full(shape, 0, get_aval(x).dtype))


def _qr_step(u: Any, a: float, b: float, c: float, block: Block) -> Any:
    """``u <- (b/c) u + (a - b/c)/sqrt(c) q1 q2^H`` with ``[sqrt(c) u; I] = [q1; q2] r``;
    for a padded ``u`` the identity goes below its ``m`` true rows and the factors are
    masked to the true block."""
    big_m, big_n = get_aval(u).shape
    scaled, ident = ew.mul(_scalar(math.sqrt(c), u), u), eye(big_n, get_aval(u).dtype)
    if block is None:
        q = qr(concatenate([scaled, ident], 0), full_matrices=False)[0]
        q1, q2 = lax_slice(q, (0, 0), (big_m, big_n)), lax_slice(q, (big_m, 0),
                                                                  (big_m + big_n, big_n))
    else:
        m, n = block
        zero = full((), 0, get_aval(u).dtype)
        stacked = dynamic_update_slice(pad(scaled, zero, [(0, big_n, 0), (0, 0, 0)]), ident,
                                       (m, 0))
        q = qr(stacked, full_matrices=False)[0]
        q1 = _mask(lax_slice(q, (0, 0), (big_m, big_n)), (m, n))
        q2 = _mask(dynamic_slice(q, (m, 0), (big_n, big_n)), (n, n))
    return ew.add(ew.mul(_scalar(b / c, u), u),
                  ew.mul(_scalar((a - b / c) / math.sqrt(c), u), matmul(q1, H(q2))))


def _cholesky_step(u: Any, a: Any, b: Any, c: Any) -> Any:
    """``u <- (b/c) u + (a - b/c) u (I + c u^H u)^-1``, the inverse applied through the
    Cholesky factor ``L`` of ``I + c u^H u`` (two triangular solves from the right)."""
    n = get_aval(u).shape[1]
    gram = ew.add(ew.mul(c, matmul(H(u), u)), eye(n, get_aval(u).dtype))
    low = cholesky(gram, symmetrize_input=False)
    y = triangular_solve(low, u, left_side=False, lower=True, transpose_a=True,
                         conjugate_a=True)
    x = triangular_solve(low, y, left_side=False, lower=True)
    e = ew.div(b, c)
    return ew.add(ew.mul(e, u), ew.mul(ew.sub(a, e), x))


def _frobenius(x: Any) -> Any:
    mag = ew.abs(x)
    return ew.sqrt(reduce_sum(ew.mul(mag, mag), (0, 1)))


def _moved(u: Any, previous: Any, tol: float) -> Any:
    """Whether the step moved the iterate by more than ``tol`` (not converged)."""
    diff = _frobenius(ew.sub(u, previous))
    return ew.gt(diff, full((), tol, get_aval(diff).dtype))


def _polar(x: Any, max_iterations: int, eps: float, block: Block
           ) -> tuple[Any, Any, Any, Any]:
    """QDWH on ``x``, or on its leading ``block = (m, n)`` with the rest masked to zero
    (zero columns stay zero through every step: the Cholesky form's Gram matrix is the
    identity there)."""
    dt = get_aval(x).dtype
    if block is not None:
        x = _mask(x, block)
    mag = ew.abs(x)
    one_norm = reduce_max(reduce_sum(mag, (0,)), (0,))
    inf_norm = reduce_max(reduce_sum(mag, (1,)), (0,))
    # 1 / sqrt(|x|_1 |x|_inf) <= 1 / |x|_2: the scaled x has singular values at most 1
    inverse = ew.mul(ew.rsqrt(one_norm), ew.rsqrt(inf_norm))
    inverse = ew.select(ew.eq(one_norm, full((), 0, get_aval(one_norm).dtype)),
                        full((), 1, get_aval(one_norm).dtype), inverse)
    u = ew.mul(x, ew.convert_element_type(inverse, dt))
    tol = (5.0 * eps) ** (1.0 / 3.0)

    moving: Any = full((), True, np.bool_)
    steps = _schedule(eps, max_iterations)
    for a, b, c in steps:
        if c > _QR_ABOVE:
            u = _qr_step(u, a, b, c, block)
        else:
            previous = u
            u = _cholesky_step(u, *(_scalar(w, u) for w in (a, b, c)))
            moving = _moved(u, previous, tol)

    def halley(state):
        k, u, _ = state
        new = _cholesky_step(u, *(_scalar(w, u) for w in _HALLEY))
        return ew.add(k, as_operand(1)), new, _moved(new, u, tol)

    def go_on(state):
        k, _, moving = state
        return ew.bitwise_and(moving, ew.lt(k, as_operand(max_iterations)))

    # the count starts as a Python int, so num_iters is weakly typed, as in JAX
    iters, u, moving = while_loop(go_on, halley, (len(steps), u, moving))
    # one Newton-Schulz step: u <- 1.5 u - 0.5 u u^H u
    u = ew.sub(ew.mul(_scalar(1.5, u), u), ew.mul(_scalar(0.5, u), matmul(u, matmul(H(u), u))))
    h = matmul(H(u), x)
    h = ew.mul(_scalar(0.5, h), ew.add(h, H(h)))
    return u, h, iters, ew.bitwise_not(moving)


def _static(value: Any, kind: type, what: str) -> Any:
    """``value`` as a Python ``kind``; a traced value raises as JAX's ``jit`` does for a
    static argument it cannot hash."""
    if isinstance(value, Tracer):
        raise ValueError(f"Non-hashable static arguments are not supported: qdwh's `{what}` "
                         f"must be a static Python {kind.__name__}, got {value!r}.")
    return kind(value)


def _check_dtype(dtype: np.dtype) -> None:
    """JAX's errors: integers fail as not inexact, the other unsupported floating types
    (float16, bfloat16, ...) as not implemented."""
    if dtype in LAPACK_DTYPES:
        return
    accepted = "Accepted dtypes are float32, float64, complex64, complex128."
    if not dtypes.issubdtype(dtype, np.inexact):
        raise ValueError(f"qdwh: data type {dtype.name} not inexact. {accepted}")
    raise NotImplementedError(f"qdwh: Unsupported dtype {dtype.name}. {accepted}")


def _block(dynamic_shape: Any, shape: tuple[int, int]) -> Block:
    """``dynamic_shape`` as ``(m, n)``: checked where its sizes are concrete, taken as they
    are where traced (JAX traces them too)."""
    if dynamic_shape is None:
        return None
    m, n = dynamic_shape
    if isinstance(m, Tracer) or isinstance(n, Tracer):   # nothing to check before run time
        return m, n
    sizes = (int(m), int(n))
    if not (0 < sizes[1] <= sizes[0] <= shape[0] and sizes[1] <= shape[1]):
        raise ValueError(f"qdwh: dynamic_shape {sizes} must be (m, n) with N >= n, "
                         f"M >= m >= n > 0 for x of shape {shape}.")
    return sizes


def qdwh(x: Any, *, is_hermitian: bool = False, max_iterations: int | None = None,
         eps: float | None = None, dynamic_shape: tuple[int, int] | None = None
         ) -> tuple[Any, Any, Any, Any]:
    """The polar decomposition ``x = u h`` of a full-rank ``M x N`` matrix (``M >= N``):
    ``(u, h, num_iters, is_converged)`` -- ``u`` with orthonormal columns, ``h``
    Hermitian positive semi-definite, the number of iterations (a weakly typed integer)
    and whether the iterate moved by less than ``(5 eps)^(1/3)`` within
    ``max_iterations`` (default 10).  ``is_hermitian`` is accepted and unused, as in
    JAX; it, ``max_iterations`` and ``eps`` must be static.  ``dynamic_shape=(m, n)``
    (sizes that may be traced) decomposes the leading ``m x n`` block of a padded ``x``,
    the results zero-padded."""
    x = as_operand(x)
    aval = get_aval(x)
    if aval.ndim != 2:
        raise ValueError(f"qdwh expects a matrix of shape M x N, got shape {aval.shape}.")
    _check_dtype(aval.dtype)
    if aval.shape[0] < aval.shape[1]:
        raise ValueError("The input matrix of shape M x N must have M >= N.")
    _static(is_hermitian, bool, "is_hermitian")   # unused, as in JAX
    max_iterations = 10 if max_iterations is None else \
        _static(max_iterations, int, "max_iterations")
    eps = float(dtypes.finfo(aval.dtype).eps) if eps is None else _static(eps, float, "eps")
    return _polar(x, max_iterations, eps, _block(dynamic_shape, aval.shape))
