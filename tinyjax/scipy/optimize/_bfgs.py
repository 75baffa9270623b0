"""BFGS (Nocedal and Wright, *Numerical Optimization*, algorithm 6.1) as JAX runs it:
a ``lax.while_loop`` of strong-Wolfe line searches and inverse-Hessian updates."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import dtypes, lax
from tinyjax import numpy as jnp
from tinyjax.api import value_and_grad
from tinyjax.scipy.optimize._line_search import _count, _dot, line_search

__all__ = ["BFGSResults", "minimize_bfgs"]


class BFGSResults(NamedTuple):
    """The state of BFGS: whether it converged (gradient norm below ``gtol``) or a line
    search failed; iterations ``k``; evaluations ``nfev``, ``ngev``, ``nhev``; the iterate
    ``x_k``, ``f_k``, ``g_k`` and the inverse Hessian estimate ``H_k``; ``status`` (0
    converged, 1 ``maxiter`` reached, 2 + the line search's status when it failed)."""
    converged: Any
    failed: Any
    k: Any
    nfev: Any
    ngev: Any
    nhev: Any
    x_k: Any
    f_k: Any
    g_k: Any
    H_k: Any
    old_old_fval: Any
    status: Any
    line_search_status: Any


def minimize_bfgs(fun: Callable, x0: Any, maxiter: int | None = None, norm: Any = np.inf,
                  gtol: float = 1e-5, line_search_maxiter: int = 10) -> BFGSResults:
    """Minimise ``fun`` (a real scalar function of a vector) from ``x0`` with BFGS; stop
    when the ``norm``-norm of the gradient is below ``gtol`` or after ``maxiter``
    iterations (default 200 per variable)."""
    if maxiter is None:
        maxiter = np.size(x0) * 200
    n = x0.shape[0]
    f0, g0 = value_and_grad(fun)(x0)
    state = BFGSResults(
        converged=jnp.linalg.norm(g0, ord=norm) < gtol, failed=jnp.asarray(False),
        k=_count(0), nfev=_count(1), ngev=_count(1), nhev=_count(0), x_k=x0, f_k=f0, g_k=g0,
        H_k=jnp.eye(n, dtype=x0.dtype), old_old_fval=f0 + jnp.linalg.norm(g0) / 2,
        status=_count(0), line_search_status=_count(0))

    def step(s: BFGSResults) -> BFGSResults:
        p = -_dot(s.H_k, s.g_k)
        ls = line_search(fun, s.x_k, p, old_fval=s.f_k, old_old_fval=s.old_old_fval,
                         gfk=s.g_k, maxiter=line_search_maxiter)
        step_ = ls.a_k.astype(p.dtype) * p
        y = ls.g_k - s.g_k
        rho = jnp.reciprocal(_dot(y, step_))
        w = jnp.eye(n, dtype=rho.dtype) - rho * jnp.outer(step_, y)
        h = _dot(_dot(w, s.H_k), w.T) + rho * jnp.outer(step_, step_)
        return s._replace(
            converged=jnp.linalg.norm(ls.g_k, ord=norm) < gtol, failed=ls.failed,
            k=s.k + 1, nfev=s.nfev + ls.nfev, ngev=s.ngev + ls.ngev, x_k=s.x_k + step_,
            f_k=ls.f_k, g_k=ls.g_k, H_k=jnp.where(jnp.isfinite(rho), h, s.H_k),
            old_old_fval=s.f_k, line_search_status=ls.status)

    state = lax.while_loop(lambda s: ~s.converged & ~s.failed & (s.k < maxiter), step, state)
    status = jnp.where(state.converged, 0, jnp.where(
        state.k == maxiter, 1, jnp.where(state.failed, 2 + state.line_search_status, -1)))
    return state._replace(status=status.astype(_count(0).dtype))
