"""``custom_linear_solve``: a linear solve with an implicitly defined derivative.

``x = solve(matvec, b)`` is only ever differentiated through the linear map
``matvec``: the tangent is ``solve(db - dmatvec(x))`` and the transpose (reverse mode)
is ``transpose_solve(vecmat, ct)``, so a factorisation made once serves the forward
solve and every derivative, and the solver itself (an iteration, LU factors) is never
differentiated.  The ``custom_linear_solve`` primitive holds four open jaxprs
(``matvec``, ``vecmat``, ``solve``, ``transpose_solve``; the last two may be missing),
each taking its closed-over constants first.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, get_aval
from tinyjax.jaxpr import Jaxpr
from tinyjax.lax.control_flow.common import (batch_jaxpr, flatten_operands, run, run_solve,
                                             split_consts, trace_open, type_str, typematch)
from tinyjax.lax.elementwise import neg
from tinyjax.interpreters import ad, batching

__all__ = ["custom_linear_solve", "linear_solve_p"]


class LinearSolveJaxprs(NamedTuple):
    """The four sub-programs of a ``custom_linear_solve`` (any may be None but solve)."""
    matvec: Jaxpr | None
    vecmat: Jaxpr | None
    solve: Jaxpr
    transpose_solve: Jaxpr | None


class ConstCounts(NamedTuple):
    matvec: int
    vecmat: int
    solve: int
    transpose_solve: int


linear_solve_p = Primitive("custom_linear_solve", multiple_results=True)


def _linear_solve_impl(*args, const_lengths, jaxprs):
    return run_solve(args, const_lengths, jaxprs)


def _linear_solve_abstract_eval(*avals, const_lengths, jaxprs):
    _, b = split_consts(avals, const_lengths)
    solved = jaxprs.solve.out_avals[:len(b)]
    if not all(map(typematch, solved, b)):
        raise TypeError("custom_linear_solve: solve must return values of the types of b, "
                        f"got ({', '.join(map(type_str, solved))}) for b of types "
                        f"({', '.join(map(type_str, b))})")
    return list(jaxprs.solve.out_avals)


linear_solve_p.def_impl(_linear_solve_impl)
linear_solve_p.def_abstract_eval(_linear_solve_abstract_eval)


def _trace(fun: Callable, avals) -> tuple[Jaxpr, list]:
    return trace_open(lambda *xs: list(fun(*xs)), avals)


def _flat_solver(solve: Callable, matvec: Callable, tree, has_aux: bool) -> Callable:
    """``solve(matvec, b)`` on the flat leaves of ``b`` (pytree ``tree``), returning the
    leaves of the solution and then of the auxiliary output."""
    def solve_flat(*xs):
        out = solve(matvec, tree_util.tree_unflatten(tree, list(xs)))
        x, aux = out if has_aux else (out, None)
        return physical.tree_leaves(x) + physical.tree_leaves(aux)
    return solve_flat


def custom_linear_solve(matvec: Callable, b: Any, solve: Callable,
                        transpose_solve: Callable | None = None, symmetric: bool = False,
                        has_aux: bool = False) -> Any:
    """``solve(matvec, b)``, differentiated implicitly through the linear ``matvec``.

    ``matvec(x)`` and the pytree ``b`` have one structure; ``solve(matvec, b)`` returns
    the ``x`` with ``matvec(x) == b`` (and ``aux`` with ``has_aux``);
    ``transpose_solve(vecmat, b)`` solves with the transpose of ``matvec`` (needed for
    reverse mode unless ``symmetric``, where ``solve`` serves both).
    """
    b_flat, tree = flatten_operands(b)
    b_avals = [get_aval(x) for x in b_flat]

    def unflat(fun: Callable) -> Callable:
        def flat(*xs):
            return physical.tree_leaves(fun(tree_util.tree_unflatten(tree, list(xs))))
        return flat

    def _check_matvec_types(jaxpr: Jaxpr, what: str) -> None:
        if len(jaxpr.outvars) != len(b_avals) or not all(map(typematch, jaxpr.out_avals,
                                                             b_avals)):
            raise TypeError(f"custom_linear_solve: {what} must return values of the types "
                            f"of b ({', '.join(map(type_str, b_avals))}), got "
                            f"({', '.join(map(type_str, jaxpr.out_avals))})")

    matvec_jaxpr, matvec_consts = _trace(unflat(matvec), b_avals)
    _check_matvec_types(matvec_jaxpr, "matvec")
    matvec_fn = _closure(matvec_jaxpr, matvec_consts, tree)

    solve_jaxpr, solve_consts = _trace(_flat_solver(solve, matvec_fn, tree, has_aux), b_avals)
    aux_tree = None
    if has_aux:
        aux_tree = physical.tree_structure(solve(matvec_fn, b)[1])
    if symmetric:
        vecmat_jaxpr, vecmat_consts = matvec_jaxpr, matvec_consts
        tsolve_jaxpr, tsolve_consts = solve_jaxpr, solve_consts
    elif transpose_solve is not None:
        vecmat_jaxpr, vecmat_consts = _transpose_linear(matvec_jaxpr, matvec_consts, b_avals)
        vecmat_fn = _closure(vecmat_jaxpr, vecmat_consts, tree)
        tsolve_jaxpr, tsolve_consts = _trace(
            _flat_solver(transpose_solve, vecmat_fn, tree, has_aux), b_avals)
    else:
        vecmat_jaxpr = tsolve_jaxpr = None
        vecmat_consts, tsolve_consts = [], []
    jaxprs = LinearSolveJaxprs(matvec_jaxpr, vecmat_jaxpr, solve_jaxpr, tsolve_jaxpr)
    counts = ConstCounts(len(matvec_consts), len(vecmat_consts), len(solve_consts),
                         len(tsolve_consts))
    outs = linear_solve_p.bind(*matvec_consts, *vecmat_consts, *solve_consts,
                               *tsolve_consts, *b_flat, const_lengths=counts, jaxprs=jaxprs)
    x = tree_util.tree_unflatten(tree, outs[:len(b_flat)])
    if has_aux:
        return x, tree_util.tree_unflatten(aux_tree, outs[len(b_flat):])
    return x


def _closure(jaxpr: Jaxpr, consts: list, tree) -> Callable:
    def fn(x):
        return tree_util.tree_unflatten(tree, run(jaxpr, *consts, *physical.tree_leaves(x)))
    return fn


def _transpose_linear(jaxpr: Jaxpr, consts: list, avals) -> tuple[Jaxpr, list]:
    """The transpose of the linear map ``x -> jaxpr(consts, x)``: an open jaxpr and the
    constants it takes first (its own, then ``consts``)."""
    n_consts = len(consts)

    def vecmat(*all_args):
        cs, ys = all_args[:n_consts], all_args[n_consts:]
        body = Jaxpr([], jaxpr.invars[n_consts:], jaxpr.outvars, jaxpr.eqns)
        closed = Jaxpr(jaxpr.invars[:n_consts], body.invars, body.outvars, body.eqns)
        cts = ad.backward_pass(closed, list(cs), [ad.UndefinedPrimal(a) for a in avals],
                               list(ys))
        return [ad.instantiate_zeros(ct) for ct in cts]
    transposed, own = trace_open(vecmat, [get_aval(c) for c in consts] + list(avals))
    return transposed, list(own) + list(consts)


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def _linear_solve_jvp(primals, tangents, *, const_lengths, jaxprs):
    """x = solve(b); dx = solve(db - dmatvec(x)), dmatvec the derivative of matvec in its
    constants (the solvers' constants are not differentiated)."""
    consts, b = split_consts(primals, const_lengths)
    dconsts, db = split_consts(tangents, const_lengths)
    outs = linear_solve_p.bind(*primals, const_lengths=const_lengths, jaxprs=jaxprs)
    nb = len(b)
    x = outs[:nb]
    rhs = list(db)
    if not all(type(t) is ad.Zero for t in dconsts.matvec):
        _, dmatvec_x = ad.jvp_flat(lambda *cs: run(jaxprs.matvec, *cs, *x), consts.matvec,
                                   dconsts.matvec)
        rhs = [ad.add_tangents(r, neg(d) if type(d) is not ad.Zero else d)
               for r, d in zip(rhs, dmatvec_x)]
    aux_zeros = [ad.Zero.from_primal(o) for o in outs[nb:]]
    if all(type(r) is ad.Zero for r in rhs):
        return outs, [ad.Zero.from_primal(v) for v in x] + aux_zeros
    flat_consts = [c for group in consts for c in group]
    dx = linear_solve_p.bind(*flat_consts, *map(ad.instantiate_zeros, rhs),
                             const_lengths=const_lengths, jaxprs=jaxprs)
    return outs, list(dx[:nb]) + aux_zeros


def _linear_solve_transpose(cts, *args, const_lengths, jaxprs):
    consts, b = split_consts(args, const_lengths)
    if any(ad.is_undefined_primal(c) for group in consts for c in group):
        raise NotImplementedError("custom_linear_solve is linear only in b: its constants "
                                  "cannot be transposed")
    if jaxprs.transpose_solve is None:
        raise TypeError("transpose_solve required for backwards mode automatic "
                        "differentiation of custom_linear_solve")
    nb = len(b)
    cts_b = cts[:nb]
    if all(type(c) is ad.Zero for c in cts_b):
        return [None] * sum(const_lengths) + [ad.Zero(v.aval) for v in b]
    swapped = LinearSolveJaxprs(jaxprs.vecmat, jaxprs.matvec, jaxprs.transpose_solve,
                                jaxprs.solve)
    counts = ConstCounts(const_lengths.vecmat, const_lengths.matvec,
                         const_lengths.transpose_solve, const_lengths.solve)
    outs = linear_solve_p.bind(*consts.vecmat, *consts.matvec, *consts.transpose_solve,
                               *consts.solve, *map(ad.instantiate_zeros, cts_b),
                               const_lengths=counts, jaxprs=swapped)
    return [None] * sum(const_lengths) + list(outs[:nb])


def _linear_solve_batch(vals, dims, *, const_lengths, jaxprs):
    """Every right-hand side is batched (broadcast if it was not); each sub-program is
    vectorised over its batched constants and the right-hand sides."""
    size = batching.batch_size(vals, dims)
    vals = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    consts, b = split_consts(vals, const_lengths)
    cdims, bdims = split_consts(dims, const_lengths)
    b = [v if d is not None else batching.moveaxis(v, None, 0, size) for v, d in zip(b, bdims)]
    new_jaxprs, new_consts = [], []
    for jaxpr, cs, ds in zip(jaxprs, consts, cdims):
        if jaxpr is None:
            new_jaxprs.append(None)
            new_consts.append([])
            continue
        flags = [d is not None for d in ds] + [True] * len(b)
        batched, extra, _ = batch_jaxpr(jaxpr, size, flags, [True] * len(jaxpr.outvars))
        new_jaxprs.append(batched)
        new_consts.append(list(extra) + list(cs))
    counts = ConstCounts(*map(len, new_consts))
    outs = linear_solve_p.bind(*[c for group in new_consts for c in group], *b,
                               const_lengths=counts, jaxprs=LinearSolveJaxprs(*new_jaxprs))
    return outs, [0] * len(outs)


ad.primitive_jvps[linear_solve_p] = _linear_solve_jvp
ad.primitive_transposes[linear_solve_p] = _linear_solve_transpose
batching.primitive_batchers[linear_solve_p] = _linear_solve_batch
