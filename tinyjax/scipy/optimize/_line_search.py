"""A line search satisfying the strong Wolfe conditions (Nocedal and Wright, *Numerical
Optimization*, algorithms 3.5 and 3.6), as JAX's BFGS and L-BFGS use it.

The search runs under ``jit``: both phases are ``lax.while_loop``s, and each step's
decisions are ``jnp.where`` selections.  Its rules are JAX's (the first trial step from
the previous decrease, doubling while bracketing, cubic then quadratic then bisection
interpolation in the zoom, at most 30 zoom steps, a zoom failing once its interval is
shorter than 1e-5 (1e-10 in float64), a floor of 1e-8 on the step in 32-bit types).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import dtypes, lax
from tinyjax import numpy as jnp
from tinyjax.api import value_and_grad
from tinyjax.numpy._util import promote_dtypes_inexact

__all__ = ["LineSearchResults", "line_search"]


class LineSearchResults(NamedTuple):
    """The outcome of :func:`line_search`.

    failed: the strong Wolfe conditions were not met; nit: bracketing iterations;
    nfev/ngev: evaluations of the function and of its gradient; k: nit + 1; a_k: the
    step; f_k, g_k: the function and gradient there; status: 0 done, 1 the zoom failed,
    3 ``maxiter`` bracketing iterations.
    """
    failed: Any
    nit: Any
    nfev: Any
    ngev: Any
    k: Any
    a_k: Any
    f_k: Any
    g_k: Any
    status: Any


class _Point(NamedTuple):
    """A trial step and the function, its slope along the direction, and its gradient."""
    a: Any
    phi: Any
    dphi: Any
    g: Any


def _where(pred: Any, x: NamedTuple, y: NamedTuple) -> NamedTuple:
    return type(x)(*(jnp.where(pred, u, v) for u, v in zip(x, y)))


def _cubic_minimum(a, fa, fpa, b, fb, c, fc):
    """The minimiser of the cubic through (a, fa) with slope fpa, (b, fb) and (c, fc)."""
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    rb, rc = fb - fa - fpa * db, fc - fa - fpa * dc
    A = (dc ** 2 * rb - db ** 2 * rc) / denom
    B = (-dc ** 3 * rb + db ** 3 * rc) / denom
    return a + (-B + jnp.sqrt(B * B - 3.0 * A * fpa)) / (3.0 * A)


def _quadratic_minimum(a, fa, fpa, b, fb):
    """The minimiser of the parabola through (a, fa) with slope fpa and (b, fb)."""
    db = b - a
    curvature = (fb - fa - fpa * db) / db ** 2
    return a - fpa / (2.0 * curvature)


def _dot(a: Any, b: Any) -> Any:
    """A vector product in full precision (the BFGS and L-BFGS updates use it too)."""
    return jnp.dot(a, b, precision=lax.Precision.HIGHEST)


def _count(n: int) -> Any:
    """A counter or status code: an integer of the default type."""
    return jnp.asarray(n, dtypes.default_int_dtype())


class _Zoom(NamedTuple):
    done: Any
    failed: Any
    j: Any
    lo: _Point
    hi: _Point
    rec_a: Any    # the previous end replaced (for the cubic's third point)
    rec_phi: Any
    star: _Point
    evals: Any


def _zoom(evaluate: Callable, sufficient: Callable, curvature: Callable, lo: _Point,
          hi: _Point, g0: Any, skip: Any) -> _Zoom:
    """Algorithm 3.6: shrink [lo, hi] (lo the end with the lower value) until a point
    satisfies both conditions; nothing when ``skip``.  Failing, it reports step 1 with
    lo's value and the gradient ``g0`` at the start (as JAX's does)."""
    tiny = 1e-5 if np.finfo(lo.a.dtype).bits < 64 else 1e-10

    def step(s: _Zoom) -> _Zoom:
        width = s.hi.a - s.lo.a
        left, right = jnp.minimum(s.hi.a, s.lo.a), jnp.maximum(s.hi.a, s.lo.a)
        failed = s.failed | (width <= tiny)
        cubic = _cubic_minimum(s.lo.a, s.lo.phi, s.lo.dphi, s.hi.a, s.hi.phi,
                               s.rec_a, s.rec_phi)
        use_cubic = (s.j > 0) & (cubic > left + 0.2 * width) & (cubic < right - 0.2 * width)
        quad = _quadratic_minimum(s.lo.a, s.lo.phi, s.lo.dphi, s.hi.a, s.hi.phi)
        use_quad = ~use_cubic & (quad > left + 0.1 * width) & (quad < right - 0.1 * width)
        a = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (s.lo.a + s.hi.a) / 2.0))
        p = evaluate(a)
        to_hi = sufficient(p.a, p.phi) | (p.phi >= s.lo.phi)
        found = curvature(p.dphi) & ~to_hi
        flip = (p.dphi * (s.hi.a - s.lo.a) >= 0.0) & ~to_hi & ~found
        to_lo = ~to_hi & ~found
        # the end dropped becomes the cubic's third point
        rec_a = jnp.where(to_hi | flip, s.hi.a, jnp.where(to_lo, s.lo.a, s.rec_a))
        rec_phi = jnp.where(to_hi | flip, s.hi.phi, jnp.where(to_lo, s.lo.phi, s.rec_phi))
        hi = _where(to_hi, p, _where(flip, s.lo, s.hi))
        lo = _where(to_lo, p, s.lo)
        j = s.j + 1
        return _Zoom(s.done | found, failed | (j >= 30), j, lo, hi, rec_a, rec_phi,
                     _where(found, p, s.star), s.evals + 1)

    zero = _count(0)
    start = _Zoom(jnp.asarray(False), jnp.asarray(False), zero, lo, hi, (lo.a + hi.a) / 2.0,
                  (lo.phi + hi.phi) / 2.0, _Point(jnp.ones_like(lo.a), lo.phi, lo.dphi, g0),
                  zero)
    return lax.while_loop(lambda s: ~s.done & ~skip & ~s.failed, step, start)


class _Search(NamedTuple):
    done: Any
    failed: Any
    i: Any
    prev: _Point
    star: _Point
    evals: Any


def line_search(f: Callable, xk: Any, pk: Any, old_fval: Any = None, old_old_fval: Any = None,
                gfk: Any = None, c1: float = 1e-4, c2: float = 0.9,
                maxiter: int = 20) -> LineSearchResults:
    """A step along the descent direction ``pk`` from ``xk`` satisfying the strong Wolfe
    conditions (algorithm 3.5 of Nocedal and Wright), as JAX's minimizers search.

    ``f(x)`` must be differentiable; ``old_fval`` and ``gfk`` (f and its gradient at
    ``xk``) save an evaluation; ``old_old_fval`` (f at the previous iterate) sets the
    first trial step (else 1); ``c1``, ``c2`` are the Wolfe constants; ``maxiter``
    bounds the bracketing steps.  Returns :class:`LineSearchResults`.
    """
    xk, pk = promote_dtypes_inexact(jnp.asarray(xk), jnp.asarray(pk))
    if xk.ndim != 1 or xk.shape != pk.shape:
        raise ValueError(f"line_search: xk and pk must be vectors of one shape, got "
                         f"shapes {xk.shape} and {pk.shape}")
    real = jnp.real(pk).dtype

    def evaluate(a: Any) -> _Point:
        a = jnp.asarray(a, real)
        phi, g = value_and_grad(f)(xk + a.astype(pk.dtype) * pk)
        return _Point(a, phi, jnp.real(jnp.dot(g, pk)), g)

    evaluated_first = old_fval is None or gfk is None
    if evaluated_first:
        p0 = evaluate(0.0)
    else:
        p0 = _Point(jnp.zeros((), real), jnp.asarray(old_fval),
                    jnp.real(jnp.dot(gfk, pk)), jnp.asarray(gfk))
    phi0, dphi0 = p0.phi, p0.dphi
    if old_old_fval is not None:
        guess = 1.01 * 2 * (phi0 - old_old_fval) / dphi0
        first = jnp.where(guess > 1, 1.0, guess).astype(real)
    else:
        first = jnp.ones((), real)

    def sufficient(a, phi):  # (the negation of the sufficient-decrease condition)
        return phi > phi0 + c1 * a * dphi0

    def curvature(dphi):
        return jnp.abs(dphi) <= -c2 * dphi0

    def step(s: _Search) -> _Search:
        p = evaluate(jnp.where(s.i == 1, first, s.prev.a * 2.0))
        zoom_up = sufficient(p.a, p.phi) | ((p.phi >= s.prev.phi) & (s.i > 1))
        found = curvature(p.dphi) & ~zoom_up
        zoom_down = (p.dphi >= 0.0) & ~zoom_up & ~found
        lo = _where(zoom_up, s.prev, p)
        hi = _where(zoom_up, p, s.prev)
        z = _zoom(evaluate, sufficient, curvature, lo, hi, p0.g, ~(zoom_up | zoom_down))
        zoomed = zoom_up | zoom_down
        star = _where(found, p, _where(zoomed, z.star, s.star))
        return _Search(s.done | zoomed | found, s.failed | (zoomed & z.failed), s.i + 1, p,
                       star, s.evals + 1 + z.evals)

    start = _Search(jnp.asarray(False), jnp.asarray(False), _count(1), p0, p0,
                    _count(int(evaluated_first)))
    s = lax.while_loop(lambda s: ~s.done & (s.i <= maxiter) & ~s.failed, step, start)
    status = jnp.where(s.failed, 1, jnp.where(s.i > maxiter, 3, 0)).astype(s.i.dtype)
    a = s.star.a
    if np.finfo(a.dtype).bits != 64:  # a vanishing step would stall the minimizer
        a = jnp.where(jnp.abs(a) < 1e-8, jnp.sign(a) * 1e-8, a)
    return LineSearchResults(failed=s.failed | ~s.done, nit=s.i - 1, nfev=s.evals,
                             ngev=s.evals, k=s.i, a_k=a, f_k=s.star.phi, g_k=s.star.g,
                             status=status)
