"""``jax.scipy.optimize.minimize``: BFGS and (experimental) L-BFGS behind scipy's
interface, with gradients from autodiff; runs under ``jit``."""
from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

from tinyjax import numpy as jnp
from tinyjax.scipy.optimize._bfgs import minimize_bfgs
from tinyjax.scipy.optimize._lbfgs import minimize_lbfgs

__all__ = ["OptimizeResults", "minimize"]


class OptimizeResults(NamedTuple):
    """The result of :func:`minimize`.

    x: the solution; success: whether it converged; status: the solver's code (BFGS: 0
    converged, 1 ``maxiter`` reached, 3 the zoom failed, 4 a saddle point, 5 ``maxiter``
    line search steps; -1 undefined); fun, jac: the function and its gradient at ``x``;
    hess_inv: the inverse Hessian estimate (BFGS; None for L-BFGS); nfev, njev:
    evaluations of the function and its gradient; nit: iterations.
    """
    x: Any
    success: Any
    status: Any
    fun: Any
    jac: Any
    hess_inv: Any
    nfev: Any
    njev: Any
    nit: Any


_METHODS = {"bfgs": (minimize_bfgs, True),
            "l-bfgs-experimental-do-not-rely-on-this": (minimize_lbfgs, False)}


def minimize(fun: Callable, x0: Any, args: tuple = (), *, method: str,
             tol: float | None = None, options: Mapping[str, Any] | None = None
             ) -> OptimizeResults:
    """Minimise ``fun(x, *args)`` (a real scalar of a 1-D ``x``) from ``x0`` (scipy's
    ``minimize``, as JAX has it).

    ``method``: ``"BFGS"`` or ``"l-bfgs-experimental-do-not-rely-on-this"`` (either
    case); ``options`` are the solver's keywords (BFGS: ``maxiter``, ``norm``, ``gtol``,
    ``line_search_maxiter``; L-BFGS: also ``maxcor``, ``ftol``, ``maxfun``, ``maxgrad``,
    ``maxls``); ``tol`` is accepted and unused, as in JAX.  Gradients come from
    ``grad``.  Results may differ from scipy's, whose line search differs.
    """
    if not isinstance(args, tuple):
        raise TypeError(f"args argument to jax.scipy.optimize.minimize must be a tuple, "
                        f"got {args}")
    solver = _METHODS.get(method.lower())
    if solver is None:
        raise ValueError(f"Method {method} not recognized")
    x0 = jnp.asarray(x0)
    if x0.ndim != 1:
        raise ValueError(f"minimize: x0 must be a 1-D array, got shape {x0.shape}")
    run, has_hessian = solver
    r = run(lambda x: fun(x, *args), x0, **dict(options or {}))
    return OptimizeResults(x=r.x_k, success=r.converged & ~r.failed, status=r.status,
                           fun=r.f_k, jac=r.g_k, hess_inv=r.H_k if has_hessian else None,
                           nfev=r.nfev, njev=r.ngev, nit=r.k)
