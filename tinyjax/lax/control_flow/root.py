"""``custom_root``: a root of a function, differentiated by the implicit function theorem.

``x* = solve(f, guess)`` is a root of ``f`` (``f(x*) = 0``); the solver (an iteration,
typically a ``while_loop``) is never differentiated.  When ``f`` depends on values it
closes over (``m``), ``f(m, x*(m)) = 0`` gives the tangent
``dx* = -(d_x f)^{-1} [d_m f . dm]``: the derivative of ``f`` in its closed-over values
at the root, pushed through ``tangent_solve`` applied to ``f`` linearised at the root.

Every function is traced once to an open jaxpr whose closed-over values are explicit
leading operands (closure conversion, as for every control-flow primitive), so the
values ``f`` closes over are differentiated like arguments, while those of ``solve``
and ``tangent_solve`` are not.  The ``custom_root`` primitive holds the three jaxprs
(``f``, ``solve``, ``l_and_s`` -- linearise ``f`` at ``x`` and apply ``tangent_solve`` to
``b``), as JAX's ``lax.custom_root`` does.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, get_aval
from tinyjax.jaxpr import Jaxpr
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.control_flow.common import (batch_jaxpr, flatten_operands, run, run_solve,
                                             split_consts, trace_open)
from tinyjax.lax.elementwise import neg
from tinyjax.interpreters import ad, batching

__all__ = ["custom_root", "custom_root_p"]


class RootJaxprs(NamedTuple):
    """The three sub-programs of a ``custom_root`` (each takes its consts first): ``f(x)``,
    ``solve(guess)`` (the solution, then any auxiliary output) and ``l_and_s(x, b)``
    (``tangent_solve`` of ``f`` linearised at ``x``, applied to ``b``)."""
    f: Jaxpr
    solve: Jaxpr
    l_and_s: Jaxpr


class RootConstCounts(NamedTuple):
    f: int
    solve: int
    l_and_s: int


custom_root_p = Primitive("custom_root", multiple_results=True)


def _custom_root_impl(*args, const_lengths, jaxprs):
    return run_solve(args, const_lengths, jaxprs)


def _custom_root_abstract_eval(*avals, const_lengths, jaxprs):
    return list(jaxprs.solve.out_avals)


custom_root_p.def_impl(_custom_root_impl)
custom_root_p.def_abstract_eval(_custom_root_abstract_eval)


def _check_tree(func_name: str, expected_name: str, actual, expected,
                has_aux: bool = False) -> None:
    if has_aux:
        children = actual.children()
        if len(children) != 2:
            raise ValueError(f"{func_name}() produced a pytree with structure {actual}, but a "
                             "pytree tuple with auxiliary output was expected because "
                             "has_aux was set to True.")
        actual = children[0]
    if actual != expected:
        raise TypeError(f"{func_name}() output pytree structure must match {expected_name}, "
                        f"got {actual} and {expected}.")


def _trace_tree(fun: Callable, in_tree, n_args: int, avals) -> tuple[Jaxpr, list, Any]:
    """Trace ``fun`` of ``n_args`` pytrees of structure ``in_tree`` (flat ``avals``, all
    the leaves of all the arguments): (open jaxpr, its consts, the output structure)."""
    out_tree: list = []
    size = len(avals) // n_args

    def flat(*xs):
        args = [tree_util.tree_unflatten(in_tree, list(xs[i * size:(i + 1) * size]))
                for i in range(n_args)]
        leaves, tree = physical.tree_flatten(fun(*args))
        out_tree.append(tree)
        return [as_operand(x) for x in leaves]
    jaxpr, consts = trace_open(flat, avals)
    return jaxpr, consts, out_tree[0]


def _linearized(f: Callable, x: Any) -> Callable:
    """``t -> jvp of f at x along t`` (``f`` linearised at ``x``; pytree in, pytree out)."""
    x_flat, tree = physical.tree_flatten(x)

    def f_jvp(t: Any) -> Any:
        t_flat, t_tree = flatten_operands(t)
        if t_tree != tree:
            raise TypeError(f"custom_root: the linearised f takes tangents of structure "
                            f"{tree}, got {t_tree}")
        out_tree: list = []

        def flat_f(*xs):
            leaves, out = physical.tree_flatten(f(tree_util.tree_unflatten(tree, list(xs))))
            out_tree.append(out)
            return [as_operand(x) for x in leaves]
        _, out_t = ad.jvp_flat(flat_f, x_flat, t_flat)
        return tree_util.tree_unflatten(out_tree[0], [ad.instantiate_zeros(o) for o in out_t])
    return f_jvp


def custom_root(f: Callable, initial_guess: Any, solve: Callable[[Callable, Any], Any],
                tangent_solve: Callable[[Callable, Any], Any], has_aux: bool = False) -> Any:
    """``solve(f, initial_guess)``, a root of ``f``, differentiated implicitly.

    ``f`` maps a pytree to one of the same structure; ``solve(f, initial_guess)`` returns
    ``x`` with ``f(x) == 0`` (and auxiliary output with ``has_aux``);
    ``tangent_solve(g, y)`` returns ``x`` with ``g(x) == y`` for ``g``, ``f`` linearised at
    the root (a scalar: ``lambda g, y: y / g(1.0)``).  Derivatives are taken with respect
    to the values ``f`` closes over, by the implicit function theorem: the solver is
    not differentiated, the auxiliary output has zero derivative.
    """
    guess_flat, tree = flatten_operands(initial_guess)
    avals = [get_aval(x) for x in guess_flat]
    f_jaxpr, f_consts, f_tree = _trace_tree(f, tree, 1, avals)
    _check_tree("f", "initial_guess", f_tree, tree)
    solve_jaxpr, solve_consts, solution_tree = _trace_tree(lambda g: solve(f, g), tree, 1,
                                                           avals)
    _check_tree("solve", "initial_guess", solution_tree, tree, has_aux)

    def linearize_and_solve(x, b):
        return tangent_solve(_linearized(f, x), b)
    ls_jaxpr, ls_consts, ls_tree = _trace_tree(linearize_and_solve, tree, 2, avals * 2)
    _check_tree("tangent_solve", "x", ls_tree, tree)
    counts = RootConstCounts(len(f_consts), len(solve_consts), len(ls_consts))
    outs = custom_root_p.bind(*f_consts, *solve_consts, *ls_consts, *guess_flat,
                              const_lengths=counts,
                              jaxprs=RootJaxprs(f_jaxpr, solve_jaxpr, ls_jaxpr))
    return tree_util.tree_unflatten(solution_tree, outs)


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def _custom_root_jvp(primals, tangents, *, const_lengths, jaxprs):
    """``f(m, x*) = 0`` gives ``dx* = -tangent_solve(d_x f, d_m f . dm)``; the solver's
    and tangent solver's constants, and the initial guess, have no effect on ``x*``'s
    derivative."""
    consts, _ = split_consts(primals, const_lengths)
    dconsts, _ = split_consts(tangents, const_lengths)
    outs = custom_root_p.bind(*primals, const_lengths=const_lengths, jaxprs=jaxprs)
    n = len(jaxprs.f.outvars)
    solution, aux = outs[:n], outs[n:]
    aux_zeros = [ad.Zero.from_primal(a) for a in aux]
    if all(type(t) is ad.Zero for t in dconsts.f):
        return outs, [ad.Zero.from_primal(s) for s in solution] + aux_zeros
    _, rhs = ad.jvp_flat(lambda *cs: run(jaxprs.f, *cs, *solution), consts.f, dconsts.f)
    dx = run(jaxprs.l_and_s, *consts.l_and_s, *solution, *map(ad.instantiate_zeros, rhs))
    return outs, [neg(d) for d in dx] + aux_zeros


def _custom_root_batch(vals, dims, *, const_lengths, jaxprs):
    """The guess, the solution and every sub-program's arguments beyond its consts are
    batched (broadcast where they were not); each sub-program is vectorised over its
    batched consts."""
    size = batching.batch_size(vals, dims)
    vals = [v if d is None else batching.moveaxis(v, d, 0) for v, d in zip(vals, dims)]
    consts, guess = split_consts(vals, const_lengths)
    cdims, gdims = split_consts(dims, const_lengths)
    guess = [g if d is not None else batching.moveaxis(g, None, 0, size)
             for g, d in zip(guess, gdims)]
    new_jaxprs, new_consts = [], []
    for jaxpr, cs, ds in zip(jaxprs, consts, cdims):
        flags = [d is not None for d in ds] + [True] * (len(jaxpr.invars) - len(cs))
        batched, extra, _ = batch_jaxpr(jaxpr, size, flags, [True] * len(jaxpr.outvars))
        new_jaxprs.append(batched)
        new_consts.append(list(extra) + list(cs))
    outs = custom_root_p.bind(*[c for group in new_consts for c in group], *guess,
                              const_lengths=RootConstCounts(*map(len, new_consts)),
                              jaxprs=RootJaxprs(*new_jaxprs))
    return outs, [0] * len(outs)


ad.primitive_jvps[custom_root_p] = _custom_root_jvp
batching.primitive_batchers[custom_root_p] = _custom_root_batch
