"""``cond`` and ``switch``: the ``cond`` primitive, which runs one of several branches.

``cond_p`` takes the branch index (an int32 scalar) first, then the operands; every
branch is an open jaxpr taking all the operands (the constants any branch closes
over are operands too; the other branches ignore them).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, get_aval, set_current_trace
from tinyjax.jaxpr import Var, dce_jaxpr, dce_rules
from tinyjax.lax.control_flow.common import (batch_jaxpr, flatten_operands, join_jaxprs,
                                             jvp_jaxpr, partial_eval_jaxpr, run,
                                             to_numpy, trace_open, type_str, typematch,
                                             with_invars, wrap_values)
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import custom_partial_eval_rules
from tinyjax.lax.control_flow.python_loops import known_int, python_control_flow
from tinyjax.lax import refs
from tinyjax.lax.control_flow.body_cache import trace_body
from tinyjax.lax.elementwise import clamp, convert_element_type, ne, select_n
from tinyjax.lax.shape import broadcast_in_dim, full

cond_p = Primitive("cond", multiple_results=True)

_NO_OPERAND = object()


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def _cond_impl(index, *ops, branches):
    i = int(np.clip(int(index), 0, len(branches) - 1))
    jaxpr = branches[i]
    outs = run(jaxpr, *wrap_values(ops, jaxpr.in_avals))
    return [to_numpy(o, v.aval) for o, v in zip(outs, jaxpr.outvars)]


def _cond_abstract_eval(index_aval, *op_avals, branches):
    if index_aval.shape != () or index_aval.dtype != np.int32:
        raise TypeError("cond: the branch index must be an int32 scalar, got "
                        f"{type_str(index_aval)}")
    for i, b in enumerate(branches):
        if len(b.invars) != len(op_avals) or not all(
                map(typematch, b.in_avals, op_avals)):
            raise TypeError(f"cond: branch {i} takes ({', '.join(map(type_str, b.in_avals))})"
                            f" but the operands are ({', '.join(map(type_str, op_avals))})")
        if len(b.outvars) != len(branches[0].outvars) or not all(
                map(typematch, b.out_avals, branches[0].out_avals)):
            raise TypeError(
                f"cond branches must have identical output types, got "
                f"({', '.join(map(type_str, branches[0].out_avals))}) for branch 0 and "
                f"({', '.join(map(type_str, b.out_avals))}) for branch {i}")
    return [a.update(weak_type=all(b.out_avals[k].weak_type for b in branches))
            for k, a in enumerate(branches[0].out_avals)]


def _cond_weak_type_rule(weak_flags, *, branches):
    return [all(b.out_avals[k].weak_type for b in branches)
            for k in range(len(branches[0].outvars))]


cond_p.def_impl(_cond_impl)
cond_p.def_abstract_eval(_cond_abstract_eval)
cond_p.weak_type_rule = _cond_weak_type_rule


def _cond_jvp(primals, tangents, *, branches):
    index, ops = primals[0], primals[1:]
    nz = [type(t) is not ad.Zero for t in tangents[1:]]
    n_out = len(branches[0].outvars)
    out_nz = [False] * n_out
    for b in branches:
        out_nz = [a or b_ for a, b_ in zip(out_nz, jvp_jaxpr(b, nz, [False] * n_out)[2])]
    traced = [jvp_jaxpr(b, nz, out_nz)[:2] for b in branches]
    jaxprs, consts = join_jaxprs(traced)
    op_tangents = [t for t, d in zip(tangents[1:], nz) if d]
    outs = cond_p.bind(index, *consts, *ops, *op_tangents, branches=tuple(jaxprs))
    primals_out, tans = outs[:n_out], iter(outs[n_out:])
    return primals_out, [next(tans) if d else ad.Zero.from_primal(p)
                         for p, d in zip(primals_out, out_nz)]


ad.primitive_jvps[cond_p] = _cond_jvp


def _cond_partial_eval(trace, args, params):
    """Known index: the known parts of the branches run now in one ``cond``, which
    also returns the residuals of every branch (zeros for the branches not taken);
    the unknown parts are recorded as a second ``cond`` reading those residuals."""
    branches = params["branches"]
    index, ops = args[0], args[1:]
    if trace.is_unknown(index):
        return trace.record(cond_p, args, params)
    ops_uk = [trace.is_unknown(a) for a in ops]
    n_out = len(branches[0].outvars)
    out_uk = [False] * n_out
    for b in branches:
        split = partial_eval_jaxpr(b, ops_uk, [False] * n_out)
        out_uk = [a or b_ for a, b_ in zip(out_uk, split.out_unknowns)]
    splits = [partial_eval_jaxpr(b, ops_uk, out_uk) for b in branches]
    all_res = [s.res_avals for s in splits]
    known_ops = [a for a, u in zip(ops, ops_uk) if not u]
    known_avals = [get_aval(a) for a in known_ops]

    def known_branch(i):
        from tinyjax.lax.shape import full
        s = splits[i]

        def fun(*args):
            outs = run(s.known, *args)
            nk = len(outs) - s.num_res
            res = []
            for j, avals in enumerate(all_res):
                res += outs[nk:] if j == i else [full(a.shape, 0, a.dtype) for a in avals]
            return outs[:nk] + res

        jaxpr, consts = trace_open(fun, [get_aval(c) for c in s.known_consts] + known_avals)
        return jaxpr, consts + s.known_consts

    jaxprs, consts = join_jaxprs([known_branch(i) for i in range(len(branches))])
    with set_current_trace(trace.parent):
        kouts = cond_p.bind(index, *consts, *known_ops, branches=tuple(jaxprs))
    nk = n_out - sum(out_uk)
    known_outs, res = kouts[:nk], kouts[nk:]
    uk_jaxprs = []
    for i, s in enumerate(splits):
        pre = [Var(a) for avals in all_res[:i] for a in avals]
        post = [Var(a) for avals in all_res[i + 1:] for a in avals]
        inv = s.unknown.invars
        uk_jaxprs.append(with_invars(s.unknown, pre + inv[:s.num_res] + post + inv[s.num_res:]))
    uk_ops = [a for a, u in zip(ops, ops_uk) if u]
    uk_outs = trace.record(cond_p, [index, *res, *uk_ops], dict(branches=tuple(uk_jaxprs)))
    kit, uit = iter(known_outs), iter(uk_outs)
    return [next(uit) if u else next(kit) for u in out_uk]


custom_partial_eval_rules[cond_p] = _cond_partial_eval


def _cond_transpose(cts, index, *ops, branches):
    lin = [ad.is_undefined_primal(a) for a in ops]
    res = [a for a, lin_ in zip(ops, lin) if not lin_]
    cts = [ad.instantiate_zeros(ct) for ct in cts]

    def transposed(branch):
        def fun(*args):
            r, c = iter(args[:len(res)]), args[len(res):]
            prim = [ad.UndefinedPrimal(a) if lin_ else next(r)
                    for a, lin_ in zip(branch.in_avals, lin)]
            cts_in = ad.backward_pass(branch, [], prim, c)
            return [ad.instantiate_zeros(ct) for ct, lin_ in zip(cts_in, lin) if lin_]
        return trace_open(fun, [get_aval(r) for r in res] + [get_aval(c) for c in cts])

    jaxprs, consts = join_jaxprs([transposed(b) for b in branches])
    outs = iter(cond_p.bind(index, *consts, *res, *cts, branches=tuple(jaxprs)))
    return [None] + [next(outs) if lin_ else None for lin_ in lin]


ad.primitive_transposes[cond_p] = _cond_transpose


def _cond_batch(vals, dims, *, branches):
    size = batching.batch_size(vals, dims)
    index, ops = vals[0], vals[1:]
    in_bat = [d is not None for d in dims[1:]]
    ops = [batching.bdim_at_front(v, d, size) if d is not None else v
           for v, d in zip(ops, dims[1:])]
    n_out = len(branches[0].outvars)
    if dims[0] is not None:
        # A batched predicate: every branch runs and each lane selects its result.
        idx = batching.bdim_at_front(index, dims[0], size)
        idx = clamp(np.int32(0), idx, np.int32(len(branches) - 1))
        axis = batching.rule_axis_data(size)
        outs = [batching.vmap_flat(lambda *a, b=b: run(b, *a), axis, ops,
                                   [0 if b_ else None for b_ in in_bat], [0] * n_out)
                for b in branches]
        results = []
        for k in range(n_out):
            shape = get_aval(outs[0][k]).shape
            which = broadcast_in_dim(idx, shape, (0,))
            if len(branches) == 2:
                which = ne(which, np.int32(0))
            results.append(select_n(which, *[o[k] for o in outs]))
        return results, [0] * n_out
    out_bat = [False] * n_out
    for b in branches:
        out_bat = [a or b_ for a, b_ in zip(out_bat, batch_jaxpr(b, size, in_bat,
                                                                 [False] * n_out)[2])]
    jaxprs, consts = join_jaxprs([batch_jaxpr(b, size, in_bat, out_bat)[:2]
                                  for b in branches])
    outs = cond_p.bind(index, *consts, *ops, branches=tuple(jaxprs))
    return outs, [0 if b else None for b in out_bat]


batching.primitive_batchers[cond_p] = _cond_batch


def _cond_dce(eqn, used_outputs):
    branches = eqn.params["branches"]
    pruned = [dce_jaxpr(b, used_outputs) for b in branches]
    used_in = [any(u[k] for _, u in pruned) for k in range(len(branches[0].invars))]
    new = tuple(with_invars(j, [v for v, u in zip(j.invars, used_in) if u])
                for j, _ in pruned)
    invars = [eqn.invars[0]] + [v for v, u in zip(eqn.invars[1:], used_in) if u]
    outvars = [v for v, u in zip(eqn.outvars, used_outputs) if u]
    return [True] + used_in, eqn.replace(invars=invars, outvars=outvars,
                                         params=dict(eqn.params, branches=new))


dce_rules[cond_p] = _cond_dce


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def _check_branch_outputs(what: Callable[[int], str], trees, out_avals) -> None:
    for i in range(1, len(trees)):
        if trees[i] != trees[0]:
            raise TypeError(f"{what(i)} must have same type structure, got {trees[0]} "
                            f"and {trees[i]}.")
        if not all(map(typematch, out_avals[0], out_avals[i])):
            diff = ", ".join(
                type_str(a) if typematch(a, b) else f"DIFFERENT {type_str(a)} vs. {type_str(b)}"
                for a, b in zip(out_avals[0], out_avals[i]))
            raise TypeError(f"{what(i)} must have identical types, got\n{diff}.")


def _bind_cond(index, funs: Sequence[Callable], operands: tuple,
               what: Callable[[int], str], display: Sequence[int] | None = None) -> Any:
    ops, in_tree = flatten_operands(operands)
    avals = [get_aval(x) for x in ops]
    trees: list[tree_util.PyTreeDef] = []
    traced = []
    first: dict[int, int] = {}  # id of a branch function -> where it was traced
    with refs.collect() as captured:
        for f in funs:
            if id(f) in first:  # the same function again: traced once, as in JAX
                traced.append(traced[first[id(f)]])
                trees.append(trees[first[id(f)]])
                continue
            first[id(f)] = len(traced)

            def flat_fun(*xs, f=f):
                from tinyjax.lax._helpers import as_operand
                leaves, tree = physical.tree_flatten(
                    f(*tree_util.tree_unflatten(in_tree, xs)))
                return [as_operand(x) for x in leaves], tree
            jaxpr, consts, tree = trace_body(f, ("cond branch", in_tree), flat_fun, avals)
            traced.append((jaxpr, consts))
            trees.append(tree)
    if captured.written:  # array references a branch writes: passed through every branch
        written = list(captured.written.values())

        def threaded(f):
            def g(vals, *ops):
                with refs.bind(written, vals):
                    out = f(*ops)
                    return out, [r._read() for r in written]
            return g
        out, finals = _bind_cond(index, [threaded(f) for f in funs],
                                 ([r._read() for r in written], *operands), what, display)
        for r, v in zip(written, finals):
            r._write(v)
        return out
    order = range(len(funs)) if display is None else display
    _check_branch_outputs(what, [trees[i] for i in order],
                          [traced[i][0].out_avals for i in order])
    jaxprs, consts = join_jaxprs(traced)
    outs = cond_p.bind(index, *consts, *ops, branches=tuple(jaxprs))
    return tree_util.tree_unflatten(trees[0], outs)


def _scalar(x: Any, fname: str, what: str) -> Any:
    from tinyjax.lax._helpers import as_operand
    x = as_operand(x)
    shape = get_aval(x).shape
    if shape != ():
        raise TypeError(f"{fname}: {what} must be scalar, got {x} of shape {shape}.")
    return x


def cond(pred: Any, true_fun: Callable, false_fun: Callable, *operands: Any,
         operand: Any = _NO_OPERAND) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, staged as one
    ``cond`` primitive.  ``pred`` is a boolean or integer scalar (nonzero is true);
    both branches must return the same pytree of the same types."""
    if not (callable(true_fun) and callable(false_fun)):
        # The deprecated form cond(pred, true_operand, true_fun, false_operand, false_fun).
        if callable(false_fun) and len(operands) == 2 and callable(operands[1]):
            x_true, f_true, x_false, f_false = true_fun, false_fun, *operands
            return cond(pred, lambda x, _: f_true(x), lambda _, x: f_false(x), x_true,
                        x_false)
        raise TypeError("lax.cond: true_fun and false_fun arguments should be callable.")
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("if 'operand' keyword is passed then no positional operands "
                            "can be passed.")
        operands = (operand,)
    pred = _scalar(pred, "lax.cond", "Pred")
    dt = get_aval(pred).dtype
    if dt != np.bool_:
        if dt.kind in "iu":
            pred = ne(pred, full((), 0, dt))
        else:
            raise TypeError(f"lax.cond: Pred type must be either boolean or number, got {dt} "
                            "(a float predicate is ambiguous: compare it explicitly).")
    if python_control_flow() and known_int(pred) is not None:
        return (true_fun if known_int(pred) else false_fun)(*operands)
    index = convert_element_type(pred, np.int32)
    return _bind_cond(index, (false_fun, true_fun), operands,
                      lambda i: "true_fun and false_fun output", display=(1, 0))


def switch(index: Any, branches: Sequence[Callable], *operands: Any,
           operand: Any = _NO_OPERAND) -> Any:
    """``branches[index](*operands)``, with ``index`` clamped to the valid range."""
    index = _scalar(index, "lax.switch", "Branch index")
    dt = get_aval(index).dtype
    if dt.kind not in "iu":
        raise TypeError(f"lax.switch: Index type must be an integer, got {dt}.")
    branches = tuple(branches)
    if not branches:
        raise ValueError("Empty branch sequence")
    if not all(callable(b) for b in branches):
        raise TypeError("lax.switch: branches must be a sequence of callables.")
    if operand is not _NO_OPERAND:
        if operands:
            raise TypeError("if 'operand' keyword is passed then no positional operands "
                            "can be passed.")
        operands = (operand,)
    if len(branches) == 1:
        return branches[0](*operands)
    if python_control_flow() and known_int(index) is not None:
        return branches[min(max(known_int(index), 0), len(branches) - 1)](*operands)
    index = convert_element_type(index, np.int32)
    index = clamp(np.int32(0), index, np.int32(len(branches) - 1))
    return _bind_cond(index, branches, operands, lambda i: f"branch 0 and {i} outputs")
