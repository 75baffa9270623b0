"""Loops: ``while_loop`` and ``fori_loop`` (the ``while`` primitive), ``scan`` and
``map`` (the ``scan`` primitive).

``while_p`` operands: ``[cond_consts, body_consts, carry]``; ``cond_jaxpr`` maps
``[cond_consts, carry]`` to a boolean scalar and ``body_jaxpr`` maps
``[body_consts, carry]`` to the new carry.

``scan_p`` operands: ``[consts, init carry, xs]``; ``jaxpr`` maps
``[consts, carry, x slices]`` to ``[carry, y slices]``; the ``ys`` are stacked along a
new leading axis of size ``length``.

Reverse mode of ``scan`` is JAX's: partial evaluation splits the body into a known
scan, run at once, which also stacks the residuals the tangent computation needs as
extra ``ys``, and an unknown (linear) scan recorded over those residuals; the
transpose of that linear scan is a scan in the opposite direction of the transposed
body, which carries the cotangents of the carry and accumulates those of the consts.
"""
from __future__ import annotations

import builtins
import inspect
import weakref
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, Tracer, get_aval, set_current_trace
from tinyjax.jaxpr import Jaxpr, Var, dce_jaxpr, dce_rules, eqn_effectful
from tinyjax.lax.control_flow.common import (batch_jaxpr, differentiable,
                                             fixed_point, flatten_operands, jvp_jaxpr,
                                             partial_eval_jaxpr, permute, run, split_list,
                                             to_numpy, trace_open, type_str, typematch,
                                             with_invars, wrap_values)
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import custom_partial_eval_rules
from tinyjax.errors import ConcretizationTypeError
from tinyjax.lax.control_flow.python_loops import python_control_flow, python_scan, python_while
from tinyjax.lax import refs
from tinyjax.lax.control_flow.body_cache import trace_body
from tinyjax.lax.elementwise import add, convert_element_type, lt, select_n
from tinyjax.lax.reductions import reduce_or
from tinyjax.lax.shape import broadcast_in_dim, full, reshape
from tinyjax.lax.slicing import concatenate, slice_in_dim

while_p = Primitive("while", multiple_results=True)
scan_p = Primitive("scan", multiple_results=True)

_bmap = builtins.map

_REVERSE_MODE_WHILE = (
    "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop with "
    "dynamic start/stop values. Try using lax.scan, or using fori_loop with static "
    "start/stop.")


def _ranges(*sizes: int) -> list[list[int]]:
    out, start = [], 0
    for n in sizes:
        out.append(list(range(start, start + n)))
        start += n
    return out


# ===========================================================================
# while
# ===========================================================================


def _while_impl(*args, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cc, bc, carry = split_list(args, [cond_nconsts, body_nconsts])
    cc = wrap_values(cc, cond_jaxpr.in_avals[:cond_nconsts])
    bc = wrap_values(bc, body_jaxpr.in_avals[:body_nconsts])
    carry_avals = body_jaxpr.in_avals[body_nconsts:]
    carry = wrap_values(carry, carry_avals)
    while bool(to_numpy(run(cond_jaxpr, *cc, *carry)[0], cond_jaxpr.out_avals[0])):
        carry = wrap_values(run(body_jaxpr, *bc, *carry), carry_avals)
    return [to_numpy(c, a) for c, a in zip(carry, carry_avals)]


def _while_abstract_eval(*avals, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    cc, bc, carry = split_list(avals, [cond_nconsts, body_nconsts])
    if not all(_bmap(typematch, body_jaxpr.in_avals, bc + carry)) or \
            len(body_jaxpr.invars) != len(bc + carry):
        raise TypeError("while: body_jaxpr takes "
                        f"({', '.join(_bmap(type_str, body_jaxpr.in_avals))}), got operands "
                        f"({', '.join(_bmap(type_str, bc + carry))})")
    if not all(_bmap(typematch, body_jaxpr.out_avals, carry)) or \
            len(body_jaxpr.outvars) != len(carry):
        raise TypeError("body_fun output and input must have identical types, got\n"
                        f"({', '.join(_bmap(type_str, body_jaxpr.out_avals))}) and "
                        f"({', '.join(_bmap(type_str, carry))})")
    out = cond_jaxpr.out_avals
    if len(out) != 1 or out[0].shape != () or out[0].dtype != np.bool_:
        raise TypeError("cond_fun must return a boolean scalar, but got output type(s) "
                        f"[{', '.join(_bmap(type_str, out))}].")
    return [a.update(weak_type=o.weak_type) for a, o in zip(carry, body_jaxpr.out_avals)]


while_p.def_impl(_while_impl)
while_p.def_abstract_eval(_while_abstract_eval)
while_p.weak_type_rule = lambda weak, *, body_jaxpr, **_: [a.weak_type for a in
                                                           body_jaxpr.out_avals]


def _while_jvp(primals, tangents, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    nz = [type(t) is not ad.Zero for t in tangents]
    _, bc_nz, init_nz = split_list(nz, [cond_nconsts, body_nconsts])
    n_carry = len(init_nz)
    init_nz = [d and differentiable(a) for d, a in zip(init_nz, body_jaxpr.out_avals)]
    carry_nz = fixed_point(init_nz, lambda c: jvp_jaxpr(body_jaxpr, bc_nz + c, c)[2])
    body, jconsts, _ = jvp_jaxpr(body_jaxpr, bc_nz + carry_nz, carry_nz)
    nj, nb, nbt, nct = len(jconsts), body_nconsts, sum(bc_nz), sum(carry_nz)
    # body invars [jconsts, bconsts, carry, bconst tangents, carry tangents]
    j, b, c, bt, ct = _ranges(nj, nb, n_carry, nbt, nct)
    body = with_invars(body, permute(body.invars, [j, b, bt, c, ct]))
    cond = with_invars(cond_jaxpr, list(cond_jaxpr.invars) + [
        _fresh(a) for a, d in zip(body_jaxpr.out_avals, carry_nz) if d])
    cc, bc, init = split_list(primals, [cond_nconsts, body_nconsts])
    _, bct, initt = split_list(tangents, [cond_nconsts, body_nconsts])
    bct = [t for t, d in zip(bct, bc_nz) if d]
    initt = [ad.instantiate_zeros(t) for t, d in zip(initt, carry_nz) if d]
    outs = while_p.bind(*cc, *jconsts, *bc, *bct, *init, *initt, cond_jaxpr=cond,
                        body_jaxpr=body, cond_nconsts=cond_nconsts,
                        body_nconsts=nj + nb + nbt)
    primal_out, tans = outs[:n_carry], iter(outs[n_carry:])
    return primal_out, [next(tans) if d else ad.Zero.from_primal(p)
                        for p, d in zip(primal_out, carry_nz)]


def _fresh(aval):
    return Var(aval)


ad.primitive_jvps[while_p] = _while_jvp


def _while_partial_eval(trace, args, params):
    """The known carries are computed by a known ``while`` now; the unknown ones by
    the whole loop, recorded (reverse mode then stops at its transpose)."""
    cond_jaxpr, body_jaxpr = params["cond_jaxpr"], params["body_jaxpr"]
    nc, nb = params["cond_nconsts"], params["body_nconsts"]
    uk = [trace.is_unknown(a) for a in args]
    cc_uk, bc_uk, init_uk = split_list(uk, [nc, nb])
    n_carry = len(init_uk)
    carry_uk = fixed_point(init_uk, lambda c: partial_eval_jaxpr(
        body_jaxpr, bc_uk + c, [False] * n_carry).out_unknowns)
    _, cond_used = dce_jaxpr(cond_jaxpr)
    if not any(carry_uk) or any(u and used for u, used in zip(cc_uk + carry_uk, cond_used)):
        return trace.record(while_p, args, params)
    split = partial_eval_jaxpr(body_jaxpr, bc_uk + carry_uk, carry_uk)
    nk = n_carry - sum(carry_uk)
    body_known, _ = dce_jaxpr(with_invars(split.known, split.known.invars,
                                          split.known.outvars[:nk]))
    n_kc = len(split.known_consts)
    cond_known = with_invars(cond_jaxpr, [v for v, u in zip(cond_jaxpr.invars, cc_uk + carry_uk)
                                          if not u])
    cc, bc, init = split_list(args, [nc, nb])
    known = lambda xs, flags: [x for x, u in zip(xs, flags) if not u]  # noqa: E731
    with set_current_trace(trace.parent):
        kouts = while_p.bind(*known(cc, cc_uk), *split.known_consts, *known(bc, bc_uk),
                             *known(init, carry_uk), cond_jaxpr=cond_known,
                             body_jaxpr=body_known, cond_nconsts=nc - sum(cc_uk),
                             body_nconsts=n_kc + nb - sum(bc_uk))
    uouts = trace.record(while_p, args, params)
    kit = iter(kouts)
    return [u_out if u else next(kit) for u, u_out in zip(carry_uk, uouts)]


custom_partial_eval_rules[while_p] = _while_partial_eval


def _while_transpose(cts, *args, **params):
    raise ValueError(_REVERSE_MODE_WHILE)


ad.primitive_transposes[while_p] = _while_transpose


def _while_batch(vals, dims, *, cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts):
    size = batching.batch_size(vals, dims)
    bat = [d is not None for d in dims]
    cc_bat, bc_bat, init_bat = split_list(bat, [cond_nconsts, body_nconsts])
    n_carry = len(init_bat)
    carry_bat = fixed_point(init_bat, lambda c: batch_jaxpr(body_jaxpr, size, bc_bat + c,
                                                            c)[2])
    pred_bat = batch_jaxpr(cond_jaxpr, size, cc_bat + carry_bat, [False])[2][0]
    if pred_bat:
        carry_bat = [True] * n_carry
    body, body_consts, _ = batch_jaxpr(body_jaxpr, size, bc_bat + carry_bat, carry_bat)
    cond, cond_consts, _ = batch_jaxpr(cond_jaxpr, size, cc_bat + carry_bat, [pred_bat])
    vals = [batching.bdim_at_front(v, d, size) if d is not None or b else v
            for v, d, b in zip(vals, dims, cc_bat + bc_bat + carry_bat)]
    cc, bc, init = split_list(vals, [cond_nconsts, body_nconsts])
    ncc, nbc = len(cond_consts) + cond_nconsts, len(body_consts) + body_nconsts
    if pred_bat:
        # Run until every lane is done; finished lanes keep their carry (select).
        cc_all = list(cond_consts) + cc

        def new_cond(*args):
            return [reduce_or(run(cond, *args)[0], (0,))]

        def new_body(*args):
            c_args, b_args, carry = split_list(args, [ncc, nbc])
            pred = run(cond, *c_args, *carry)[0]
            new = run(body, *b_args, *carry)
            return [select_n(broadcast_in_dim(pred, get_aval(o).shape, (0,)), o, n)
                    for o, n in zip(carry, new)]

        carry_avals = [get_aval(x) for x in init]
        cj, cconsts = trace_open(new_cond, [get_aval(x) for x in cc_all] + carry_avals)
        all_consts = cc_all + list(body_consts) + bc
        bj, bconsts = trace_open(new_body, [get_aval(x) for x in all_consts] + carry_avals)
        outs = while_p.bind(*cconsts, *cc_all, *bconsts, *all_consts, *init, cond_jaxpr=cj,
                            body_jaxpr=bj, cond_nconsts=len(cconsts) + ncc,
                            body_nconsts=len(bconsts) + len(all_consts))
        return outs, [0] * n_carry
    outs = while_p.bind(*cond_consts, *cc, *body_consts, *bc, *init, cond_jaxpr=cond,
                        body_jaxpr=body, cond_nconsts=ncc, body_nconsts=nbc)
    return outs, [0 if b else None for b in carry_bat]


batching.primitive_batchers[while_p] = _while_batch


# ===========================================================================
# scan
# ===========================================================================


def _scan_impl(*args, jaxpr, length, reverse, num_consts, num_carry, linear, unroll):
    consts, carry, xs = split_list(args, [num_consts, num_carry])
    in_avals = jaxpr.in_avals
    consts = wrap_values(consts, in_avals[:num_consts])
    carry_avals = in_avals[num_consts:num_consts + num_carry]
    x_avals = in_avals[num_consts + num_carry:]
    y_avals = jaxpr.out_avals[num_carry:]
    carry = wrap_values(carry, carry_avals)
    xs = [np.asarray(x) for x in xs]
    ys: list[list[np.ndarray]] = [[] for _ in y_avals]
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = run(jaxpr, *consts, *carry, *wrap_values([x[i] for x in xs], x_avals))
        carry = wrap_values(outs[:num_carry], carry_avals)
        for acc, y, a in zip(ys, outs[num_carry:], y_avals):
            acc.append(to_numpy(y, a))
    if reverse:
        for acc in ys:
            acc.reverse()
    stacked = [np.stack(acc) if acc else np.zeros((0,) + a.shape, a.dtype)
               for acc, a in zip(ys, y_avals)]
    return [to_numpy(c, a) for c, a in zip(carry, carry_avals)] + stacked


def _scan_abstract_eval(*avals, jaxpr, length, reverse, num_consts, num_carry, linear,
                        unroll):
    consts, carry, xs = split_list(avals, [num_consts, num_carry])
    for x in xs:
        if not x.shape or x.shape[0] != length:
            raise TypeError(f"scan: every xs must have a leading axis of size {length}, got "
                            f"{type_str(x)}")
    want = consts + carry + [x.update(shape=x.shape[1:]) for x in xs]
    if len(jaxpr.invars) != len(want) or not all(_bmap(typematch, jaxpr.in_avals, want)):
        raise TypeError(f"scan: the body takes ({', '.join(_bmap(type_str, jaxpr.in_avals))})"
                        f" but got operands ({', '.join(_bmap(type_str, want))})")
    out = jaxpr.out_avals
    if not all(_bmap(typematch, out[:num_carry], carry)):
        raise TypeError("scan body function carry input and carry output must have equal "
                        f"types, got ({', '.join(_bmap(type_str, carry))}) and "
                        f"({', '.join(_bmap(type_str, out[:num_carry]))})")
    return [a.update(weak_type=o.weak_type) for a, o in zip(carry, out)] + \
        [y.update(shape=(length,) + y.shape) for y in out[num_carry:]]


scan_p.def_impl(_scan_impl)
scan_p.def_abstract_eval(_scan_abstract_eval)
scan_p.weak_type_rule = lambda weak, *, jaxpr, **_: [a.weak_type for a in jaxpr.out_avals]


def _scan_bind(consts, init, xs, jaxpr, *, length, reverse, unroll, linear=None):
    n = len(consts) + len(init) + len(xs)
    return scan_p.bind(*consts, *init, *xs, jaxpr=jaxpr, length=int(length),
                       reverse=bool(reverse), num_consts=len(consts), num_carry=len(init),
                       linear=tuple(linear) if linear is not None else (False,) * n,
                       unroll=unroll)


def _scan_jvp(primals, tangents, *, jaxpr, length, reverse, num_consts, num_carry, linear,
              unroll):
    nz = [type(t) is not ad.Zero for t in tangents]
    c_nz, init_nz, x_nz = split_list(nz, [num_consts, num_carry])
    n_ys = len(jaxpr.outvars) - num_carry
    carry_avals = jaxpr.out_avals[:num_carry]
    init_nz = [d and differentiable(a) for d, a in zip(init_nz, carry_avals)]
    carry_nz = fixed_point(init_nz, lambda c: jvp_jaxpr(
        jaxpr, c_nz + c + x_nz, c + [False] * n_ys)[2][:num_carry])
    body, jconsts, out_nz = jvp_jaxpr(jaxpr, c_nz + carry_nz + x_nz, carry_nz + [False] * n_ys)
    ys_nz = out_nz[num_carry:]
    nx = len(x_nz)
    j, c, car, x, ct, cart, xt = _ranges(len(jconsts), num_consts, num_carry, nx, sum(c_nz),
                                         sum(carry_nz), sum(x_nz))
    oc, oy, oct, oyt = _ranges(num_carry, n_ys, sum(carry_nz), sum(ys_nz))
    body = with_invars(body, permute(body.invars, [j, c, ct, car, cart, x, xt]),
                       permute(body.outvars, [oc, oct, oy, oyt]))
    consts, init, xs = split_list(primals, [num_consts, num_carry])
    t_consts, t_init, t_xs = split_list(tangents, [num_consts, num_carry])
    t_consts = [t for t, d in zip(t_consts, c_nz) if d]
    t_init = [ad.instantiate_zeros(t) for t, d in zip(t_init, carry_nz) if d]
    t_xs = [t for t, d in zip(t_xs, x_nz) if d]
    lin = [False] * (len(jconsts) + num_consts) + [True] * len(t_consts) + \
        [False] * num_carry + [True] * len(t_init) + [False] * nx + [True] * len(t_xs)
    outs = _scan_bind(list(jconsts) + list(consts) + t_consts, list(init) + t_init,
                      list(xs) + t_xs, body, length=length, reverse=reverse, unroll=unroll,
                      linear=lin)
    carry_out, carry_t, ys, ys_t = split_list(outs, [num_carry, sum(carry_nz), n_ys])
    ct_it, yt_it = iter(carry_t), iter(ys_t)
    tans = [next(ct_it) if d else ad.Zero.from_primal(p) for p, d in zip(carry_out, carry_nz)]
    tans += [next(yt_it) if d else ad.Zero.from_primal(p) for p, d in zip(ys, ys_nz)]
    return carry_out + ys, tans


ad.primitive_jvps[scan_p] = _scan_jvp


def _scan_partial_eval(trace, args, params):
    jaxpr, nc, ncar = params["jaxpr"], params["num_consts"], params["num_carry"]
    length, reverse, unroll = params["length"], params["reverse"], params["unroll"]
    n_ys = len(jaxpr.outvars) - ncar
    uk = [trace.is_unknown(a) for a in args]
    c_uk, init_uk, x_uk = split_list(uk, [nc, ncar])
    carry_uk = fixed_point(init_uk, lambda c: partial_eval_jaxpr(
        jaxpr, c_uk + c + x_uk, c + [False] * n_ys).out_unknowns[:ncar])
    in_uk = c_uk + carry_uk + x_uk
    split = partial_eval_jaxpr(jaxpr, in_uk, carry_uk + [False] * n_ys)
    ys_uk = split.out_unknowns[ncar:]
    # Loop-invariant residuals (those that depend only on the consts: the consts
    # themselves, transposed weights, constant zeros) are computed once, outside the
    # loop, and become consts of the unknown scan; the others are stacked by the known
    # scan as extra ys.
    consts, init, xs = split_list(args, [nc, ncar])
    keep = lambda vs, flags: [v for v, u in zip(vs, flags) if not u]  # noqa: E731
    kj = split.known
    n_inv = len(split.known_consts) + nc - sum(c_uk)
    n_kout = len(kj.outvars) - split.num_res
    res_vars = kj.outvars[n_kout:]
    varying = set(kj.invars[n_inv:])
    for eqn in kj.eqns:
        if any(isinstance(a, Var) and a in varying for a in eqn.invars):
            varying.update(eqn.outvars)
    res_inv = [k for k, v in enumerate(res_vars) if not (isinstance(v, Var) and v in varying)]
    res_stk = [k for k, v in enumerate(res_vars) if isinstance(v, Var) and v in varying]
    # A residual that is a known x slice itself is not stacked again: the unknown scan
    # reads the known xs (JAX forwards these too).
    n_kcarry = ncar - sum(carry_uk)
    x_invars = {v: j for j, v in enumerate(kj.invars[n_inv + n_kcarry:])}
    res_fwd = {k: x_invars[res_vars[k]] for k in res_stk if res_vars[k] in x_invars}
    res_new = [k for k in res_stk if k not in res_fwd]
    known_const_vals = list(split.known_consts) + keep(consts, c_uk)
    # (side effects -- a debug print -- stay in the loop: every iteration has them)
    pure_eqns = [e for e in kj.eqns if not eqn_effectful(e)]
    hoisted, used = dce_jaxpr(Jaxpr([], kj.invars[:n_inv], [res_vars[k] for k in res_inv],
                                    pure_eqns), prune_invars=True)
    known_jaxpr, _ = dce_jaxpr(with_invars(kj, kj.invars, kj.outvars[:n_kout] + [
        res_vars[k] for k in res_new]))
    with set_current_trace(trace.parent):
        inv_vals = run(hoisted, *[v for v, u in zip(known_const_vals, used) if u])
        kouts = _scan_bind(known_const_vals, keep(init, carry_uk), keep(xs, x_uk), known_jaxpr,
                           length=length, reverse=reverse, unroll=unroll)
    n_kys = n_ys - sum(ys_uk)
    k_carry, k_ys, new_stacked = split_list(kouts, [n_kcarry, n_kys])
    fresh, known_xs = iter(new_stacked), keep(xs, x_uk)
    stacked = [known_xs[res_fwd[k]] if k in res_fwd else next(fresh) for k in res_stk]
    # Unknown scan: invars [residuals, uk consts, uk carry, uk xs] reordered to
    # [invariant residuals, uk consts, uk carry, uk xs, stacked residuals].
    uc, ucar, ux = _ranges(split.num_res, sum(c_uk), sum(carry_uk), sum(x_uk))[1:]
    unknown = with_invars(split.unknown, permute(split.unknown.invars,
                                                 [res_inv, uc, ucar, ux, res_stk]))
    u_consts = list(inv_vals) + [a for a, u in zip(consts, c_uk) if u]
    u_init = [a for a, u in zip(init, carry_uk) if u]
    u_xs = [a for a, u in zip(xs, x_uk) if u] + stacked
    n = len(u_consts) + len(u_init) + len(u_xs)
    u_outs = trace.record(scan_p, u_consts + u_init + u_xs, dict(
        params, jaxpr=unknown, num_consts=len(u_consts), num_carry=len(u_init),
        linear=(False,) * n))
    u_it, k_it = iter(u_outs), iter(k_carry + k_ys)
    return [next(u_it) if u else next(k_it) for u in carry_uk + ys_uk]


custom_partial_eval_rules[scan_p] = _scan_partial_eval


def _scan_transpose(cts, *args, jaxpr, length, reverse, num_consts, num_carry, linear,
                    unroll):
    """A scan in the opposite direction of the transposed body: it carries the
    cotangents of the carry and of the linear consts (accumulated)."""
    consts, init, xs = split_list(args, [num_consts, num_carry])
    c_lin = [ad.is_undefined_primal(a) for a in consts]
    x_lin = [ad.is_undefined_primal(a) for a in xs]
    res_c = [a for a, lin in zip(consts, c_lin) if not lin]
    res_x = [a for a, lin in zip(xs, x_lin) if not lin]
    in_avals = jaxpr.in_avals
    c_avals, carry_avals, x_avals = split_list(in_avals, [num_consts, num_carry])
    ct_carry = [ad.instantiate_zeros(ct) for ct in cts[:num_carry]]
    ct_ys = cts[num_carry:]
    y_nz = [type(ct) is not ad.Zero for ct in ct_ys]
    y_avals = jaxpr.out_avals[num_carry:]
    ct_consts = [ad.zeros_like_aval(ad.tangent_aval(a)) for a, lin in zip(c_avals, c_lin) if lin]
    n_rc, n_cc = len(res_c), len(ct_consts)

    def body(*args):
        rc, acc, ct_car, ct_y, rx = split_list(args, [n_rc, n_cc, num_carry, sum(y_nz)])
        rc_it, rx_it, y_it = iter(rc), iter(rx), iter(ct_y)
        prim = [ad.UndefinedPrimal(a) if lin else next(rc_it) for a, lin in zip(c_avals, c_lin)]
        prim += [ad.UndefinedPrimal(a) for a in carry_avals]
        prim += [ad.UndefinedPrimal(a) if lin else next(rx_it) for a, lin in zip(x_avals, x_lin)]
        cts_out = list(ct_car) + [next(y_it) if d else ad.Zero(ad.tangent_aval(a))
                                  for a, d in zip(y_avals, y_nz)]
        cts_in = ad.backward_pass(jaxpr, [], prim, cts_out)
        ct_c, ct_init, ct_x = split_list(cts_in, [num_consts, num_carry])
        ct_c = [ad.add_tangents(a, ct) for a, ct in
                zip(acc, [ct for ct, lin in zip(ct_c, c_lin) if lin])]
        ct_x = [ct for ct, lin in zip(ct_x, x_lin) if lin]
        return [ad.instantiate_zeros(ct) for ct in ct_c + ct_init + ct_x]

    ct_ys_stacked = [ct for ct, d in zip(ct_ys, y_nz) if d]
    avals = [get_aval(a) for a in res_c + ct_consts + ct_carry] + \
        [a.update(shape=a.shape[1:]) for a in _bmap(get_aval, ct_ys_stacked + res_x)]
    t_jaxpr, t_consts = trace_open(body, avals)
    outs = _scan_bind(list(t_consts) + res_c, ct_consts + ct_carry, ct_ys_stacked + res_x,
                      t_jaxpr, length=length, reverse=not reverse, unroll=unroll)
    ct_c, ct_init, ct_x = split_list(outs, [n_cc, num_carry])
    c_it, x_it = iter(ct_c), iter(ct_x)
    return ([next(c_it) if lin else None for lin in c_lin] + ct_init +
            [next(x_it) if lin else None for lin in x_lin])


ad.primitive_transposes[scan_p] = _scan_transpose


def _scan_batch(vals, dims, *, jaxpr, length, reverse, num_consts, num_carry, linear, unroll):
    size = batching.batch_size(vals, dims)
    bat = [d is not None for d in dims]
    c_bat, init_bat, x_bat = split_list(bat, [num_consts, num_carry])
    n_ys = len(jaxpr.outvars) - num_carry
    carry_bat = fixed_point(init_bat, lambda c: batch_jaxpr(
        jaxpr, size, c_bat + c + x_bat, c + [False] * n_ys)[2][:num_carry])
    body, bconsts, out_bat = batch_jaxpr(jaxpr, size, c_bat + carry_bat + x_bat,
                                         carry_bat + [False] * n_ys)
    consts, init, xs = split_list(vals, [num_consts, num_carry])
    c_dims, init_dims, x_dims = split_list(dims, [num_consts, num_carry])
    consts = [batching.bdim_at_front(v, d, size) if d is not None else v
              for v, d in zip(consts, c_dims)]
    init = [batching.bdim_at_front(v, d, size) if b else v
            for v, d, b in zip(init, init_dims, carry_bat)]
    xs = [batching.moveaxis(v, d, 1) if d is not None else v for v, d in zip(xs, x_dims)]
    outs = _scan_bind(list(bconsts) + consts, init, xs, body, length=length,
                      reverse=reverse, unroll=unroll)
    return outs, [0 if b else None for b in carry_bat] + \
        [1 if b else None for b in out_bat[num_carry:]]


batching.primitive_batchers[scan_p] = _scan_batch


def _scan_dce(eqn, used_outputs):
    jaxpr, nc, ncar = eqn.params["jaxpr"], eqn.params["num_consts"], eqn.params["num_carry"]
    used_ys = list(used_outputs[ncar:])
    used_carry = fixed_point(list(used_outputs[:ncar]), lambda c: dce_jaxpr(
        jaxpr, c + used_ys)[1][nc:nc + ncar])
    new, used_in = dce_jaxpr(jaxpr, used_carry + used_ys)
    keep = used_in[:nc] + used_carry + used_in[nc + ncar:]
    new = with_invars(new, [v for v, k in zip(new.invars, keep) if k])
    invars = [v for v, k in zip(eqn.invars, keep) if k]
    outvars = [v for v, k in zip(eqn.outvars, used_carry + used_ys) if k]
    params = dict(eqn.params, jaxpr=new, num_consts=sum(keep[:nc]), num_carry=sum(used_carry),
                  linear=tuple(lin for lin, k in zip(eqn.params["linear"], keep) if k))
    return keep, eqn.replace(invars=invars, outvars=outvars, params=params)


dce_rules[scan_p] = _scan_dce


# ===========================================================================
# Public API
# ===========================================================================


def _carry_diffs(body_fun: Callable, in_tree, in_avals, out_avals, paths) -> list[str]:
    try:
        carry_name = list(inspect.signature(body_fun).parameters)[0]
    except (ValueError, TypeError, IndexError):
        carry_name = None
    diffs = []
    for path, a, b in zip(paths, in_avals, out_avals):
        if typematch(a, b):
            continue
        where = tree_util.keystr(path)
        comp = (f"the input carry component {carry_name}{where}" if carry_name and where else
                f"the input carry {carry_name}" if carry_name else
                f"the input carry at path {where}" if where else "the input carry")
        why = "the shapes do not match" if a.shape != b.shape else "the dtypes do not match"
        diffs.append(f"{comp} has type {type_str(a)} but the corresponding output carry "
                     f"component has type {type_str(b)}, so {why}")
    return diffs


def _format_diffs(diffs: list[str]) -> str:
    if len(diffs) == 1:
        return diffs[0][0].upper() + diffs[0][1:] + ".\n"
    return "\n".join(f"  * {d};" for d in diffs[:-1]) + f"\n  * {diffs[-1]}.\n"


def _check_carry(name: str, body_fun, init, in_tree, out_tree, in_avals, out_avals) -> None:
    if in_tree != out_tree:
        raise TypeError(
            f"{name} function carry input and carry output must have the same pytree "
            f"structure, but they differ:\n\nthe input tree structure is:\n{in_tree}\n"
            f"the output tree structure is:\n{out_tree}\n\nRevise the function so that "
            "the carry output has the same pytree structure as the carry input.")
    if all(_bmap(typematch, in_avals, out_avals)):
        return
    paths = [p for p, _ in tree_util.tree_flatten_with_path(init)[0]]
    diffs = _format_diffs(_carry_diffs(body_fun, in_tree, in_avals, out_avals, paths))
    if name == "while_loop body":
        raise TypeError(f"body_fun output and input must have identical types, got\n{diffs}")
    raise TypeError(
        f"{name} function carry input and carry output must have equal types (e.g. shapes "
        f"and dtypes of arrays), but they differ:\n\n{diffs}\nRevise the function so that "
        "all output types (e.g. shapes and dtypes) match the corresponding input types.")


def _promote_weak(carry: list[Any], out_avals) -> tuple[list[Any], bool]:
    """A weakly typed initial carry takes the type the body gives it (as in JAX)."""
    changed = False
    for i, (c, o) in enumerate(zip(carry, out_avals)):
        a = get_aval(c)
        if a.weak_type and a.shape == o.shape and a.dtype != o.dtype:
            carry[i] = convert_element_type(c, dtypes.result_type(c, o.dtype))
            changed = True
    return carry, changed


def _trace_carry_fun(name, fun, init, extra_avals, extra_tree, make_args, split_out):
    """Trace a loop body ``[extra, carry] -> carry (+ more)``, promoting weak carries.
    ``name`` says how ``make_args`` and ``split_out`` wrap ``fun`` (a key of its kept
    traces)."""
    carry, in_tree = flatten_operands(init)
    for _ in range(2):
        def flat(*args):
            from tinyjax.lax._helpers import as_operand
            n = len(extra_avals)
            c = tree_util.tree_unflatten(in_tree, args[n:])
            e = tree_util.tree_unflatten(extra_tree, args[:n]) if extra_tree is not None \
                else None
            out = fun(*make_args(c, e))
            out_carry, rest = split_out(out)
            leaves, tree = physical.tree_flatten(out_carry)
            rest_leaves, rest_tree = physical.tree_flatten(rest)
            return ([as_operand(x) for x in leaves + rest_leaves],
                    (tree, len(leaves), rest_tree))

        jaxpr, consts, (out_tree, n_carry, rest_tree) = trace_body(
            fun, (name, in_tree, extra_tree), flat,
            list(extra_avals) + [get_aval(c) for c in carry])
        carry_out_avals = jaxpr.out_avals[:n_carry]
        if out_tree == in_tree:
            carry, changed = _promote_weak(carry, carry_out_avals)
            if changed:
                continue
        break
    _check_carry(name, fun, init, in_tree, out_tree, [get_aval(c) for c in carry],
                 carry_out_avals)
    return jaxpr, consts, carry, in_tree, rest_tree


def while_loop(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """``while cond_fun(val): val = body_fun(val)``, staged as one ``while`` primitive.
    Differentiable in forward mode only (reverse mode needs a ``scan``)."""
    if not callable(cond_fun) or not callable(body_fun):
        raise TypeError("lax.while_loop: cond_fun and body_fun arguments should be callable.")
    if python_control_flow():
        try:
            return python_while(cond_fun, body_fun, init_val)
        except ConcretizationTypeError:  # an abstract predicate: stage the loop
            pass
    with refs.collect() as captured:
        body, bconsts, init, in_tree, _ = _trace_carry_fun(
            "while_loop body", body_fun, init_val, [], None, lambda c, e: (c,),
            lambda out: (out, None))
    if captured.written:  # array references the body writes: carried
        return _while_with_refs(cond_fun, body_fun, init_val, list(captured.written.values()))
    carry_avals = [get_aval(c) for c in init]

    def cond_flat(*args):
        from tinyjax.lax._helpers import as_operand
        out = cond_fun(tree_util.tree_unflatten(in_tree, args))
        leaves = physical.tree_leaves(out)
        return [as_operand(x) for x in leaves], None

    with refs.collect() as captured:
        cond, cconsts, _ = trace_body(cond_fun, ("while_loop cond", in_tree), cond_flat,
                                      carry_avals)
    if captured.written:
        raise NotImplementedError("lax.while_loop: cond_fun writes a mutable array reference")
    out = cond.out_avals
    if len(out) != 1 or out[0].shape != () or out[0].dtype != np.bool_:
        raise TypeError("lax.while_loop: cond_fun must return a boolean scalar, but got "
                        f"output type(s) [{', '.join(_bmap(type_str, out))}].")
    outs = while_p.bind(*cconsts, *bconsts, *init, cond_jaxpr=cond, body_jaxpr=body,
                        cond_nconsts=len(cconsts), body_nconsts=len(bconsts))
    return tree_util.tree_unflatten(in_tree, outs)


def _while_with_refs(cond_fun: Callable, body_fun: Callable, init_val: Any,
                     written: list) -> Any:
    """``while_loop`` with the array references ``written`` by the body carried: the body
    and the predicate see the carried values, the final ones are written back."""
    def cond2(carry):
        vals, c = carry
        with refs.bind(written, vals):
            return cond_fun(c)

    def body2(carry):
        vals, c = carry
        with refs.bind(written, vals):
            c = body_fun(c)
            return [r._read() for r in written], c

    finals, out = while_loop(cond2, body2, ([r._read() for r in written], init_val))
    for r, v in zip(written, finals):
        r._write(v)
    return out


def _scan_with_refs(f: Callable, init: Any, xs: Any, written: list, **params) -> Any:
    """``scan`` with the array references ``written`` by the body carried."""
    def f2(carry, x):
        vals, c = carry
        with refs.bind(written, vals):
            c, y = f(c, x)
            return ([r._read() for r in written], c), y

    (finals, out), ys = scan(f2, ([r._read() for r in written], init), xs, **params)
    for r, v in zip(written, finals):
        r._write(v)
    return out, ys


def _static_int(x: Any) -> int | None:
    if isinstance(x, (bool, int, np.integer)):
        return int(x)
    if isinstance(x, Tracer):
        x = x.to_concrete_value()
        if x is None:
            return None
    try:
        arr = np.asarray(x)
    except Exception:
        return None
    if arr.shape == () and arr.dtype.kind in "iu":
        return int(arr)
    return None


def fori_loop(lower: Any, upper: Any, body_fun: Callable, init_val: Any, *,
              unroll: int | bool | None = None) -> Any:
    """``for i in range(lower, upper): val = body_fun(i, val)``.  Static (concrete)
    bounds give a ``scan`` (reverse-differentiable); traced bounds a ``while_loop``."""
    from tinyjax.lax._helpers import as_operand
    lo, hi = as_operand(lower), as_operand(upper)
    for name, v in (("lower", lo), ("upper", hi)):
        a = get_aval(v)
        if a.shape != () or a.dtype.kind not in "iu":
            raise TypeError(f"lax.fori_loop: {name} must be an integer scalar, got "
                            f"{type_str(a)}.")
    dt, weak = dtypes.result_type(lo, hi, return_weak_type_flag=True)
    lo_s, hi_s = _static_int(lower), _static_int(upper)
    from tinyjax.lax.elementwise import _convert_weak
    scan_body, while_body = _fori_bodies(body_fun, dt)
    if lo_s is not None and hi_s is not None:
        start = _convert_weak(lo, dt, weak)  # (no equation when it already is)
        (_, result), _ = scan(scan_body, (start, init_val), None, length=max(hi_s - lo_s, 0),
                              unroll=1 if unroll is None else unroll)
        return result
    if unroll not in (None, 1, False):
        raise ValueError("Can only use `unroll` in `fori_loop` if the loop bounds are "
                         "statically known.")
    lo, hi = (x if get_aval(x).dtype == dt else convert_element_type(x, dt) for x in (lo, hi))
    _, _, result = while_loop(_below_upper, while_body, (lo, hi, init_val))
    return result


def _below_upper(carry):
    return lt(carry[0], carry[1])


_fori_bodies_of: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def _fori_bodies(body_fun: Callable, dt: np.dtype) -> tuple[Callable, Callable]:
    """The scan body and the while_loop body ``fori_loop`` runs ``body_fun`` in: the same
    function objects for the same ``body_fun`` and index dtype, so that the loop finds its
    kept traces again.  (They reach ``body_fun`` through a weak reference: they are kept
    only as long as it lives.)"""
    try:
        per_dtype = _fori_bodies_of.setdefault(body_fun, {})
    except TypeError:  # not weakly referenceable or not hashable: made for this call
        return _make_fori_bodies(lambda: body_fun, dt)
    if dt not in per_dtype:
        per_dtype[dt] = _make_fori_bodies(weakref.ref(body_fun), dt)
    return per_dtype[dt]


def _make_fori_bodies(get_body: Callable[[], Callable], dt: np.dtype
                      ) -> tuple[Callable, Callable]:
    def scan_body(carry, _):
        i, x = carry
        return (add(i, full((), 1, dt)), get_body()(i, x)), None

    def while_body(carry):
        i, u, x = carry
        return add(i, full((), 1, dt)), u, get_body()(i, x)
    return scan_body, while_body


def scan(f: Callable, init: Any, xs: Any = None, length: int | None = None,
         reverse: bool = False, unroll: int | bool = 1, _split_transpose: bool = False
         ) -> tuple[Any, Any]:
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs``; returns the final
    carry and the stacked ``ys`` — one ``scan`` primitive whatever the length."""
    if not callable(f):
        raise TypeError("lax.scan: f argument should be callable.")
    xs_flat, xs_tree = flatten_operands(xs)
    lengths = []
    for x in xs_flat:
        shape = get_aval(x).shape
        if not shape:
            raise ValueError(f"scan got value with no leading axis to scan over: "
                             f"{type_str(get_aval(x))}.")
        lengths.append(shape[0])
    if length is not None:
        length = int(length)
        if any(n != length for n in lengths):
            raise ValueError(f"scan got `length` argument of {length} which disagrees with "
                             f"leading axis sizes {lengths}.")
    elif not lengths:
        raise ValueError("scan got no values to scan over and `length` not provided.")
    elif len(set(lengths)) > 1:
        raise ValueError("scan got values with different leading axis sizes: "
                         f"{', '.join(str(n) for n in lengths)}.")
    else:
        length = lengths[0]
    if python_control_flow():
        return python_scan(f, init, xs, length, reverse)
    x_avals = [get_aval(x).update(shape=get_aval(x).shape[1:]) for x in xs_flat]

    def split_out(out):
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(f"scan body output must be a pair, got {out}.")
        return out[0], out[1]

    with refs.collect() as captured:
        jaxpr, consts, init_flat, in_tree, ys_tree = _trace_carry_fun(
            "scan body", f, init, x_avals, xs_tree, lambda c, x: (c, x), split_out)
    if captured.written:  # array references the body writes: carried
        return _scan_with_refs(f, init, xs, list(captured.written.values()), length=length,
                               reverse=reverse, unroll=unroll)
    # trace_open put the xs first; the scan body takes [consts, carry, xs].
    nk, nx, nc = len(consts), len(x_avals), len(init_flat)
    k, x, c = _ranges(nk, nx, nc)
    jaxpr = with_invars(jaxpr, permute(jaxpr.invars, [k, c, x]))
    outs = _scan_bind(list(consts), init_flat, xs_flat, jaxpr, length=length,
                      reverse=reverse, unroll=int(unroll) if not isinstance(unroll, bool)
                      else unroll)
    return (tree_util.tree_unflatten(in_tree, outs[:nc]),
            tree_util.tree_unflatten(ys_tree, outs[nc:]))


def map(f: Callable, xs: Any, *, batch_size: int | None = None) -> Any:  # noqa: A001
    """``f`` applied to each slice of ``xs`` along its leading axis, stacked: a scan
    (with ``batch_size``, a scan over a vmap of ``batch_size`` slices at a time)."""
    if batch_size is not None:
        return _batched_map(f, xs, int(batch_size))
    _, ys = scan(lambda _, x: ((), f(x)), (), xs)
    return ys


def _vmap_leading(f: Callable) -> Callable:
    """``vmap(f)`` for ``f`` of one pytree, mapped along the leading axis of every leaf."""
    def batched(xs):
        leaves, tree = physical.tree_flatten(xs)
        n_out: list[int] = []
        out_tree: list = []

        def flat(*mapped):
            out_leaves, t = physical.tree_flatten(f(tree_util.tree_unflatten(tree, mapped)))
            n_out[:], out_tree[:] = [len(out_leaves)], [t]
            return out_leaves
        axis = batching.AxisData(None, get_aval(leaves[0]).shape[0])
        outs = batching.vmap_flat(flat, axis, leaves, [0] * len(leaves),
                                  batching.ZeroDims(n_out))
        return tree_util.tree_unflatten(out_tree[0], outs)
    return batched


def _batched_map(f, xs, batch_size):
    leaves, tree = flatten_operands(xs)
    n = get_aval(leaves[0]).shape[0]
    num, rem = divmod(n, batch_size)
    main = [reshape(slice_in_dim(x, 0, num * batch_size),
                    (num, batch_size) + get_aval(x).shape[1:]) for x in leaves]
    out = map(_vmap_leading(f), tree_util.tree_unflatten(tree, main)) if num else None
    out_leaves, out_tree = physical.tree_flatten(out) if num else ([], None)
    out_leaves = [reshape(y, (num * batch_size,) + get_aval(y).shape[2:])
                  for y in out_leaves]
    if rem:
        tail = [slice_in_dim(x, num * batch_size, n) for x in leaves]
        r = _vmap_leading(f)(tree_util.tree_unflatten(tree, tail))
        r_leaves, r_tree = physical.tree_flatten(r)
        if not num:
            return r
        out_leaves = [concatenate([a, b], 0) for a, b in zip(out_leaves, r_leaves)]
    return tree_util.tree_unflatten(out_tree, out_leaves)
