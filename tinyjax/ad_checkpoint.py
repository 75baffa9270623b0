"""``checkpoint`` / ``remat``: trade memory for recomputation in reverse mode.

A checkpointed function is staged as one ``checkpoint`` equation holding its
jaxpr.  Its partial-evaluation rule decides what reverse mode keeps: the
``policy`` says which intermediate results may be saved as residuals; everything
else the backward pass needs is recomputed from the checkpoint's inputs.  The
default policy saves nothing, so ``grad`` of a checkpointed function recomputes
its forward pass inside the backward pass (visible in ``make_jaxpr(grad(f))``).
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.api_util import argnums_partial, flatten_fun, normalize_argnums
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.core import Primitive, get_aval, set_current_trace
from tinyjax.jaxpr import Jaxpr, Literal, Var, dce_jaxpr, dce_rules, eval_jaxpr
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import custom_partial_eval_rules
from tinyjax.interpreters.staging import trace_to_closed_jaxpr

checkpoint_p = Primitive("checkpoint", multiple_results=True)
register_inlined_call(checkpoint_p)  # the compiler lowers its body in place


def _closed_to_open(closed) -> tuple[Jaxpr, list[Any]]:
    """Turn constvars into leading invars, so the consts become explicit arguments."""
    jaxpr = closed.jaxpr
    return Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.outvars, jaxpr.eqns), closed.consts


def _trace_open(fun: Callable, avals) -> tuple[Jaxpr, list[Any]]:
    return _closed_to_open(trace_to_closed_jaxpr(fun, avals))


def _impl(*args, jaxpr, prevent_cse, differentiated, policy):
    outs = eval_jaxpr(jaxpr, [], *[wrap_eager(np.asarray(a)) for a in args])
    return [o._value if type(o) is ArrayImpl else np.asarray(o) for o in outs]


checkpoint_p.def_impl(_impl)
checkpoint_p.def_abstract_eval(lambda *avals, jaxpr, **_: [v.aval for v in jaxpr.outvars])


def _jvp(primals, tangents, *, jaxpr, prevent_cse, differentiated, policy):
    diff = [type(t) is not ad.Zero for t in tangents]
    n = len(primals)

    def jvp_fun(*args):
        ps, ts = args[:n], iter(args[n:])
        full_t = [next(ts) if d else ad.Zero.from_primal(p) for p, d in zip(ps, diff)]
        outs, out_t = ad.jvp_flat(lambda *a: eval_jaxpr(jaxpr, [], *a), ps, full_t)
        return list(outs) + [ad.instantiate_zeros(t) for t in out_t]

    avals = [get_aval(p) for p in primals] + [get_aval(t) for t, d in zip(tangents, diff) if d]
    new_jaxpr, consts = _trace_open(jvp_fun, avals)
    outs = checkpoint_p.bind(*consts, *primals, *[t for t, d in zip(tangents, diff) if d],
                             jaxpr=new_jaxpr, prevent_cse=prevent_cse,
                             differentiated=differentiated, policy=policy)
    m = len(jaxpr.outvars)
    out_t = [ad.Zero(ad.tangent_aval(get_aval(p))) if get_aval(t).dtype == ad.dtypes.float0
             else t for p, t in zip(outs[:m], outs[m:])]
    return outs[:m], out_t


ad.primitive_jvps[checkpoint_p] = _jvp


def _partial_eval(trace, args, params):
    """Known equations run now; the unknown part recomputes whatever the policy does
    not let it save."""
    jaxpr, policy = params["jaxpr"], params["policy"]
    unknown: set[Var] = {v for v, a in zip(jaxpr.invars, args) if trace.is_unknown(a)}
    known_env: dict[Var, Any] = {v: a for v, a in zip(jaxpr.invars, args)
                                 if not trace.is_unknown(a)}
    saved: list[Var] = []

    def read(a):
        return a.val if isinstance(a, Literal) else known_env[a]

    with set_current_trace(trace.parent):
        for eqn in jaxpr.eqns:
            if any(isinstance(a, Var) and a in unknown for a in eqn.invars):
                unknown.update(eqn.outvars)
                continue
            out = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
            outs = out if eqn.primitive.multiple_results else [out]
            known_env.update(zip(eqn.outvars, outs))
            if policy is not None and policy(eqn.primitive, **eqn.params):
                saved.extend(eqn.outvars)
    unknown_outs = [isinstance(v, Var) and v in unknown for v in jaxpr.outvars]
    # The recomputing program: every equation not saved, reading inputs and residuals.
    saved_set = set(saved)
    eqns = [e for e in jaxpr.eqns if not all(v in saved_set for v in e.outvars)]
    staged = Jaxpr([], list(jaxpr.invars) + saved, [v for v, u in zip(jaxpr.outvars,
                                                                        unknown_outs) if u],
                   eqns)
    staged, used = dce_jaxpr(staged, prune_invars=True)
    inputs = list(args) + [known_env[v] for v in saved]
    inputs = [x for x, u in zip(inputs, used) if u]
    rec = trace.record(checkpoint_p, inputs, dict(params, jaxpr=staged, differentiated=True))
    it = iter(rec)
    return [next(it) if u else read(v) for v, u in zip(jaxpr.outvars, unknown_outs)]


custom_partial_eval_rules[checkpoint_p] = _partial_eval


def _transpose(cts, *args, jaxpr, prevent_cse, differentiated, policy):
    return ad.backward_pass(jaxpr, [], args, cts)


ad.primitive_transposes[checkpoint_p] = _transpose


def _batch(vals, dims, *, jaxpr, prevent_cse, differentiated, policy):
    size = batching.batch_size(vals, dims)
    axis = batching.rule_axis_data(size)
    m = len(jaxpr.outvars)

    def batched(*args):
        return batching.vmap_flat(lambda *a: eval_jaxpr(jaxpr, [], *a), axis, args, dims,
                                  [0] * m)

    avals = [get_aval(v) for v in vals]
    new_jaxpr, consts = _trace_open(batched, avals)
    outs = checkpoint_p.bind(*consts, *vals, jaxpr=new_jaxpr, prevent_cse=prevent_cse,
                             differentiated=differentiated, policy=policy)
    return outs, [0] * m


batching.primitive_batchers[checkpoint_p] = _batch


def _dce(eqn, used_outputs):
    jaxpr = eqn.params["jaxpr"]
    new, used_inputs = dce_jaxpr(jaxpr, used_outputs, prune_invars=True)
    if not any(used_outputs):
        return [False] * len(eqn.invars), None
    invars = [v for v, u in zip(eqn.invars, used_inputs) if u]
    outvars = [v for v, u in zip(eqn.outvars, used_outputs) if u]
    return used_inputs, eqn.replace(invars=invars, outvars=outvars,
                                    params=dict(eqn.params, jaxpr=new))


dce_rules[checkpoint_p] = _dce


class checkpoint_policies:
    """Which intermediate results a checkpointed function may save for reverse mode.

    A policy is called with a primitive and its params and returns True to save.
    """

    @staticmethod
    def nothing_saveable(prim: Primitive, **params) -> bool:
        return False

    @staticmethod
    def everything_saveable(prim: Primitive, **params) -> bool:
        return True

    @staticmethod
    def dots_saveable(prim: Primitive, **params) -> bool:
        return prim.name == "dot_general"

    checkpoint_dots = dots_saveable

    @staticmethod
    def dots_with_no_batch_dims_saveable(prim: Primitive, **params) -> bool:
        if prim.name != "dot_general":
            return False
        (_, (lhs_batch, _)) = params["dimension_numbers"]
        return not lhs_batch


def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
               static_argnums: int | Sequence[int] = ()) -> Callable:
    """Make ``fun`` recompute its intermediate values in reverse mode instead of saving
    them (``policy`` may allow some to be saved; see :class:`checkpoint_policies`).
    Arguments at ``static_argnums`` are Python values baked into the trace."""
    static = normalize_argnums(static_argnums)

    @wraps(fun)
    def wrapped(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        dyn_idx = [i for i in range(len(args)) if i not in static]
        f_dyn, dyn_args = argnums_partial(fun, dyn_idx, args)
        flat, in_tree = tree_util.tree_flatten((list(dyn_args), kwargs))
        flat = [as_operand(x) for x in flat]
        flat_fun, out_tree = flatten_fun(f_dyn, in_tree)

        jaxpr, consts = _trace_open(flat_fun, [get_aval(x) for x in flat])
        outs = checkpoint_p.bind(*consts, *flat, jaxpr=jaxpr, prevent_cse=prevent_cse,
                                 differentiated=False, policy=policy)
        return tree_util.tree_unflatten(out_tree[0], outs)

    return wrapped


remat = checkpoint
