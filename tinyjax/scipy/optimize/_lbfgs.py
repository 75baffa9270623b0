"""L-BFGS (Nocedal and Wright, *Numerical Optimization*, algorithm 7.5), for real and
complex variables (Sorber, Van Barel and De Lathauwer, 2012), as JAX runs it under the
method name ``"l-bfgs-experimental-do-not-rely-on-this"``."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import dtypes, lax
from tinyjax import numpy as jnp
from tinyjax.api import value_and_grad
from tinyjax.scipy.optimize._line_search import _count, _dot, line_search

__all__ = ["LBFGSResults", "minimize_lbfgs"]


class LBFGSResults(NamedTuple):
    """The state of L-BFGS: ``converged`` (gradient norm below ``gtol``), ``failed``
    (stopped otherwise); iterations ``k``; evaluations ``nfev``, ``ngev``; the iterate
    ``x_k``, ``f_k``, ``g_k``; the last ``maxcor`` steps and gradient changes with their
    ``rho``; the scale ``gamma``; ``status`` (0 converged, 1 ``maxiter``, 2 ``maxfun``,
    3 ``maxgrad``, 4 a decrease below ``ftol``, 5 the line search failed) and
    ``ls_status``, the last line search's."""
    converged: Any
    failed: Any
    k: Any
    nfev: Any
    ngev: Any
    x_k: Any
    f_k: Any
    g_k: Any
    s_history: Any
    y_history: Any
    rho_history: Any
    gamma: Any
    status: Any
    ls_status: Any


def minimize_lbfgs(fun: Callable, x0: Any, maxiter: float | None = None, norm: Any = np.inf,
                   maxcor: int = 10, ftol: float = 2.220446049250313e-09, gtol: float = 1e-05,
                   maxfun: float | None = None, maxgrad: float | None = None,
                   maxls: int = 20) -> LBFGSResults:
    """Minimise ``fun`` (a real scalar function of a vector, real or complex) from ``x0``
    keeping the last ``maxcor`` corrections; stops at a gradient ``norm``-norm below
    ``gtol``, a decrease below ``ftol``, after ``maxiter`` iterations (200 per variable
    when no limit is given), ``maxfun`` function or ``maxgrad`` gradient evaluations, or
    when a line search (at most ``maxls`` steps) fails."""
    n = len(x0)
    dtype = dtypes.dtype(x0)
    if maxiter is None and maxfun is None and maxgrad is None:
        maxiter = n * 200
    maxiter, maxfun, maxgrad = (np.inf if v is None else v for v in (maxiter, maxfun, maxgrad))
    f0, g0 = value_and_grad(fun)(x0)
    start = LBFGSResults(
        converged=jnp.asarray(False), failed=jnp.asarray(False), k=_count(0), nfev=_count(1),
        ngev=_count(1), x_k=x0, f_k=f0, g_k=g0, s_history=jnp.zeros((maxcor, n), dtype),
        y_history=jnp.zeros((maxcor, n), dtype), rho_history=jnp.zeros((maxcor,), dtype),
        gamma=jnp.ones((), g0.dtype), status=_count(0), ls_status=_count(0))

    def step(s: LBFGSResults) -> LBFGSResults:
        p = _direction(s)
        ls = line_search(fun, s.x_k, p, old_fval=s.f_k, gfk=s.g_k, maxiter=maxls)
        step_ = ls.a_k.astype(p.dtype) * p
        y = ls.g_k - s.g_k
        sy = jnp.real(_dot(y, step_))
        status = _count(0)
        status = jnp.where(s.f_k - ls.f_k < ftol, 4, status)
        status = jnp.where(s.ngev >= maxgrad, 3, status)
        status = jnp.where(s.nfev >= maxfun, 2, status)
        status = jnp.where(s.k >= maxiter, 1, status)
        status = jnp.where(ls.failed, 5, status)
        converged = jnp.linalg.norm(ls.g_k, ord=norm) < gtol
        return s._replace(
            converged=converged, failed=(status > 0) & ~converged, k=s.k + 1,
            nfev=s.nfev + ls.nfev, ngev=s.ngev + ls.ngev,
            x_k=(s.x_k + step_).astype(s.x_k.dtype), f_k=ls.f_k.astype(s.f_k.dtype),
            g_k=ls.g_k.astype(s.g_k.dtype), s_history=_push(s.s_history, step_),
            y_history=_push(s.y_history, y),
            rho_history=_push(s.rho_history, jnp.reciprocal(sy).astype(y.dtype)),
            gamma=(sy / jnp.real(_dot(jnp.conj(y), y))).astype(s.g_k.dtype),
            status=jnp.where(converged, 0, status).astype(_count(0).dtype),
            ls_status=ls.status.astype(_count(0).dtype))

    return lax.while_loop(lambda s: ~s.converged & ~s.failed, step, start)


def _push(history: Any, new: Any) -> Any:
    """The history with its oldest entry dropped and ``new`` last."""
    return jnp.concatenate([history[1:], new[None].astype(history.dtype)])


def _direction(s: LBFGSResults) -> Any:
    """The two-loop recursion: minus the inverse-Hessian estimate times the gradient,
    over the ``min(k, maxcor)`` most recent corrections (the last rows of the history)."""
    size = s.rho_history.shape[0]
    used = jnp.minimum(s.k, size)
    real = s.rho_history.dtype

    def newest_first(j, carry):
        q, alphas = carry
        i = size - 1 - j
        a = s.rho_history[i] * _dot(jnp.conj(s.s_history[i]), q).real.astype(real)
        return q - a * jnp.conj(s.y_history[i]), alphas.at[i].set(a)

    q, alphas = lax.fori_loop(0, used, newest_first,
                              (-jnp.conj(s.g_k), jnp.zeros_like(s.rho_history)))

    def oldest_first(j, q):
        i = size - used + j
        b = s.rho_history[i] * _dot(s.y_history[i], q).real.astype(real)
        return q + (alphas[i] - b) * s.s_history[i]

    return lax.fori_loop(0, used, oldest_first, s.gamma * q)
