"""Testing helpers: ``check_grads`` compares jvp and vjp against finite differences."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, tree_util

_GRAD_TOL = {np.dtype(np.float16): 1e-1, np.dtype(dtypes.bfloat16): 1e-1,
             np.dtype(np.float32): 2e-2, np.dtype(np.float64): 1e-5,
             np.dtype(np.complex64): 2e-2, np.dtype(np.complex128): 1e-5}
_EPS = {np.dtype(np.float16): 1e-2, np.dtype(dtypes.bfloat16): 1e-1,
        np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-5,
        np.dtype(np.complex64): 1e-3, np.dtype(np.complex128): 1e-5}


def _np(x: Any) -> np.ndarray:
    dt = np.asarray(x).dtype
    if dt == dtypes.float0:
        return np.zeros(np.shape(x))
    return np.asarray(x, dtype=np.complex128 if dtypes.is_complex(dt) else np.float64)


def _tol(values: Sequence[Any], given: float | None) -> float:
    if given is not None:
        return given
    found = [np.asarray(v).dtype for v in values if dtypes.is_inexact(np.asarray(v).dtype)]
    return max((_GRAD_TOL.get(d, 1e-5) for d in found), default=1e-5)


def _eps(values: Sequence[Any], given: float | None) -> float:
    if given is not None:
        return given
    found = [np.asarray(v).dtype for v in values if dtypes.is_inexact(np.asarray(v).dtype)]
    return max((_EPS.get(d, 1e-5) for d in found), default=1e-5)


def _random_like(rng: np.random.Generator, x: Any) -> Any:
    from tinyjax.numpy import asarray
    dt = np.asarray(x).dtype
    if not dtypes.is_inexact(dt):
        return np.zeros(np.shape(x), dtypes.float0)
    value = rng.standard_normal(np.shape(x))
    if dtypes.is_complex(dt):
        value = value + 1j * rng.standard_normal(np.shape(x))
    return asarray(value.astype(dt))


def _axpy(a: float, xs: Sequence[Any], ys: Sequence[Any]) -> list[Any]:
    from tinyjax.numpy import asarray
    out = []
    for x, y in zip(xs, ys):
        if not dtypes.is_inexact(np.asarray(x).dtype):
            out.append(x)
        else:
            out.append(asarray((_np(x) + a * _np(y)).astype(np.asarray(x).dtype)))
    return out


def _inner(xs: Sequence[Any], ys: Sequence[Any]) -> float:
    """The pairing tangents and cotangents are transposed for: ``re(sum(x * y))`` (no
    conjugation: JAX's convention for complex values, the dot product for real ones)."""
    return float(sum(np.real(np.sum(_np(x) * _np(y))) for x, y in zip(xs, ys)))


def _assert_close(what: str, actual: Sequence[Any], expected: Sequence[Any], tol: float):
    for i, (a, e) in enumerate(zip(actual, expected)):
        a, e = _np(a), _np(e)
        if not np.allclose(a, e, atol=tol, rtol=tol, equal_nan=True):
            err = np.max(np.abs(a - e)) if a.size else 0.0
            raise AssertionError(f"{what}: output {i} differs (max abs error {err:.3g}, "
                                 f"tolerance {tol:.1g}):\nactual   {a}\nexpected {e}")


def check_jvp(f: Callable, args: Sequence[Any], atol: float | None = None,
              rtol: float | None = None, eps: float | None = None, seed: int = 0) -> None:
    """jvp of the flat-output function ``f`` against central differences."""
    from tinyjax.api import jvp
    rng = np.random.default_rng(seed)
    tangents = [_random_like(rng, a) for a in args]
    out, tangent_out = jvp(f, tuple(args), tuple(tangents))
    eps = _eps(args, eps)
    f_plus = f(*_axpy(eps, args, tangents))
    f_minus = f(*_axpy(-eps, args, tangents))
    plus, minus = tree_util.tree_leaves(f_plus), tree_util.tree_leaves(f_minus)
    numeric = [(_np(p) - _np(m)) / (2 * eps) for p, m in zip(plus, minus)]
    tol = _tol(list(args) + tree_util.tree_leaves(out), atol if atol is not None else rtol)
    _assert_close("jvp vs finite differences", tree_util.tree_leaves(tangent_out), numeric,
                  tol)


def check_vjp(f: Callable, args: Sequence[Any], atol: float | None = None,
              rtol: float | None = None, eps: float | None = None, seed: int = 1) -> None:
    """vjp against jvp by the transposition identity <u, J v> == <J^T u, v>, and
    against central differences along a random direction."""
    from tinyjax.api import jvp, vjp
    rng = np.random.default_rng(seed)
    out, pullback = vjp(f, *args)
    out_leaves, out_tree = tree_util.tree_flatten(out)
    cot = [_random_like(rng, o) for o in out_leaves]
    cts_in = pullback(tree_util.tree_unflatten(out_tree, cot))
    tangents = [_random_like(rng, a) for a in args]
    _, tangent_out = jvp(f, tuple(args), tuple(tangents))
    lhs = _inner(tree_util.tree_leaves(tangent_out), cot)
    rhs = _inner(tree_util.tree_leaves(cts_in), tangents)
    eps_ = _eps(args, eps)
    plus = tree_util.tree_leaves(f(*_axpy(eps_, args, tangents)))
    minus = tree_util.tree_leaves(f(*_axpy(-eps_, args, tangents)))
    numeric = _inner([(_np(p) - _np(m)) / (2 * eps_) for p, m in zip(plus, minus)], cot)
    tol = _tol(list(args) + out_leaves, atol if atol is not None else rtol)
    scale = max(1.0, abs(lhs), abs(rhs))
    if not abs(lhs - rhs) <= tol * scale:
        raise AssertionError(f"vjp does not transpose jvp: <u, J v> = {lhs}, "
                             f"<J^T u, v> = {rhs}")
    if not abs(numeric - rhs) <= 10 * tol * scale:
        raise AssertionError(f"vjp vs finite differences: <J^T u, v> = {rhs}, numeric "
                             f"{numeric}")


def check_grads(f: Callable, args: Sequence[Any], order: int,
                modes: Sequence[str] = ("fwd", "rev"), atol: float | None = None,
                rtol: float | None = None, eps: float | None = None) -> None:
    """Check the derivatives of ``f`` at ``args`` up to ``order``, in forward mode
    (jvp vs central differences) and reverse mode (vjp vs jvp and differences).

    Higher orders check the derivative functions themselves, as JAX does.
    """
    from tinyjax.api import jvp, vjp
    leaves, tree = tree_util.tree_flatten(tuple(args))
    f_flat = lambda *flat: f(*tree_util.tree_unflatten(tree, flat))  # noqa: E731

    def check(fun: Callable, fargs: tuple, remaining: int, seed: int) -> None:
        if "fwd" in modes:
            check_jvp(fun, fargs, atol, rtol, eps, seed)
            if remaining > 1:
                rng = np.random.default_rng(seed + 100)
                tangents = tuple(_random_like(rng, a) for a in fargs)
                check(lambda *a: jvp(fun, a, tangents)[1], fargs, remaining - 1, seed + 1)
        if "rev" in modes:
            check_vjp(fun, fargs, atol, rtol, eps, seed)
            if remaining > 1:
                rng = np.random.default_rng(seed + 200)
                out = fun(*fargs)
                leaves, tree = tree_util.tree_flatten(out)
                cot = tree_util.tree_unflatten(tree, [_random_like(rng, o) for o in leaves])
                check(lambda *a: vjp(fun, *a)[1](cot), fargs, remaining - 1, seed + 2)

    check(f_flat, tuple(leaves), order, 0)
