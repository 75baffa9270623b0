"""``checkpoint`` / ``remat``: trade memory for recomputation in reverse mode.

A checkpointed function is staged as one ``checkpoint`` equation holding its
jaxpr.  Its partial-evaluation rule decides what reverse mode keeps: the
``policy`` says which intermediate results may be saved as residuals; everything
else the backward pass needs is recomputed from the checkpoint's inputs.  The
default policy saves nothing, so ``grad`` of a checkpointed function recomputes
its forward pass inside the backward pass (visible in ``make_jaxpr(grad(f))``).
"""
from __future__ import annotations

import inspect
import weakref
from functools import wraps
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.api import linearize_flat, register_cache
from tinyjax.api_util import (argnums_partial, flatten_fun, hashable_static, normalize_argnums,
                              shaped_abstractify)
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.compiler.lower.registry import register_inlined_call, register_lowering
from tinyjax.core import (Primitive, ShapedArray, Tracer, current_trace, get_aval, new_trace,
                          set_current_trace, source_info_of)
from tinyjax.jaxpr import Jaxpr, JaxprEqn, Literal, Var, dce_jaxpr, dce_rules, eval_jaxpr
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import custom_partial_eval_rules
from tinyjax.interpreters.staging import StagingTrace, trace_to_closed_jaxpr

__all__ = ["checkpoint", "checkpoint_name", "checkpoint_policies", "print_saved_residuals",
           "remat", "saved_residuals", "Saveable", "Recompute", "Offloadable"]


# What a policy may answer for a value, besides True (save) and False (recompute).
class SaveableType:
    """The answer "save this value" (``jax.ad_checkpoint.Saveable``)."""

    def __repr__(self) -> str:
        return "Saveable"


class RecomputeType:
    """The answer "recompute this value" (``jax.ad_checkpoint.Recompute``)."""

    def __repr__(self) -> str:
        return "Recompute"


Saveable = SaveableType()
Recompute = RecomputeType()


class Offloadable(NamedTuple):
    """The answer "save this value in the memory ``dst`` (moved from ``src``)"; with one
    device's memory, offloading is saving."""
    src: str
    dst: str


def _saves(answer: Any) -> bool:
    if answer is Recompute:
        return False
    return answer is Saveable or isinstance(answer, Offloadable) or bool(answer)

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
    """Two checkpoints: the primal one, and one computing the tangents (recomputing what
    it needs of the primal), so that partial evaluation finds the primal outputs known
    even when this checkpoint sits inside another one."""
    diff = [type(t) is not ad.Zero for t in tangents]
    n = len(primals)
    params = dict(prevent_cse=prevent_cse, differentiated=differentiated, policy=policy)
    primal_outs = checkpoint_p.bind(*primals, jaxpr=jaxpr, **params)

    def tangent_fun(*args):
        ps, ts = args[:n], iter(args[n:])
        full_t = [next(ts) if d else ad.Zero.from_primal(p) for p, d in zip(ps, diff)]
        _, out_t = ad.jvp_flat(lambda *a: eval_jaxpr(jaxpr, [], *a), ps, full_t)
        return [ad.instantiate_zeros(t) for t in out_t]

    avals = [get_aval(p) for p in primals] + [get_aval(t) for t, d in zip(tangents, diff) if d]
    t_jaxpr, consts = _trace_open(tangent_fun, avals)
    out_t = checkpoint_p.bind(*consts, *primals, *[t for t, d in zip(tangents, diff) if d],
                              jaxpr=t_jaxpr, **params)
    out_t = [ad.Zero(ad.tangent_aval(get_aval(p))) if get_aval(t).dtype == ad.dtypes.float0
             else t for p, t in zip(primal_outs, out_t)]
    return primal_outs, out_t


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
            with source_info_of(eqn.source_info):
                out = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
            outs = out if eqn.primitive.multiple_results else [out]
            known_env.update(zip(eqn.outvars, outs))
            if policy is not None and _saves(policy(eqn.primitive,
                                                    *[getattr(a, "aval", None)
                                                      for a in eqn.invars], **eqn.params)):
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


# ---------------------------------------------------------------------------
# checkpoint_name: a name on a value, for the policies to refer to
# ---------------------------------------------------------------------------

name_p = Primitive("name")
name_p.def_impl(lambda x, *, name: x)
def _name_abstract_eval(aval, *, name):
    if not isinstance(name, str):
        raise TypeError(f"checkpoint_name: the name must be a string, got {name!r}")
    return aval


name_p.def_abstract_eval(_name_abstract_eval)
name_p.weak_type_rule = lambda weak, **_: weak[0]
ad.primitive_jvps[name_p] = lambda primals, tangents, *, name: (
    name_p.bind(primals[0], name=name), tangents[0])
batching.primitive_batchers[name_p] = lambda vals, dims, *, name: (
    name_p.bind(vals[0], name=name), dims[0])
register_lowering(name_p, lambda avals_in, avals_out, x, **_: x)


def checkpoint_name(x: Any, name: str) -> Any:
    """``x`` (a pytree) tagged with ``name``: a checkpoint policy such as
    ``save_only_these_names(name)`` may then save it for reverse mode."""
    from tinyjax.lax._helpers import as_operand
    return physical.tree_map(lambda leaf: name_p.bind(as_operand(leaf), name=name), x)


class checkpoint_policies:
    """Which intermediate results a checkpointed function may save for reverse mode.

    A policy is called with a primitive, its operands' avals and its params and returns
    True to save the result.
    """

    @staticmethod
    def nothing_saveable(prim: Primitive, *_: Any, **params: Any) -> bool:
        return False

    @staticmethod
    def everything_saveable(prim: Primitive, *_: Any, **params: Any) -> bool:
        return True

    @staticmethod
    def dots_saveable(prim: Primitive, *_: Any, **params: Any) -> bool:
        return prim.name == "dot_general"

    checkpoint_dots = dots_saveable

    @staticmethod
    def dots_with_no_batch_dims_saveable(prim: Primitive, *_: Any, **params: Any) -> bool:
        if prim.name != "dot_general":
            return False
        (_, (lhs_batch, _)) = params["dimension_numbers"]
        return not lhs_batch

    checkpoint_dots_with_no_batch_dims = dots_with_no_batch_dims_saveable

    @staticmethod
    def save_only_these_names(*names: str) -> Callable:
        """Save only values tagged (``checkpoint_name``) with one of ``names``."""
        wanted = frozenset(names)
        return lambda prim, *_, **params: prim is name_p and params["name"] in wanted

    @staticmethod
    def save_any_names_but_these(*names: str) -> Callable:
        """Save the named values whose name is not among ``names``."""
        unwanted = frozenset(names)
        return lambda prim, *_, **params: prim is name_p and params["name"] not in unwanted

    @staticmethod
    def save_anything_except_these_names(*names: str) -> Callable:
        """Save everything except the values named one of ``names``."""
        unwanted = frozenset(names)
        return lambda prim, *_, **params: not (prim is name_p and params["name"] in unwanted)

    @staticmethod
    def save_from_both_policies(policy_1: Callable, policy_2: Callable) -> Callable:
        """Save what either policy saves."""
        return lambda prim, *avals, **params: (policy_1(prim, *avals, **params)
                                               or policy_2(prim, *avals, **params))

    @staticmethod
    def save_and_offload_only_these_names(*, names_which_can_be_saved: Sequence[str],
                                          names_which_can_be_offloaded: Sequence[str],
                                          offload_src: str = "device",
                                          offload_dst: str = "pinned_host") -> Callable:
        """Save the values of both lists (one device's memory: offloading is saving)."""
        return checkpoint_policies.save_only_these_names(*names_which_can_be_saved,
                                                         *names_which_can_be_offloaded)

    @staticmethod
    def offload_dot_with_no_batch_dims(offload_src: str = "device",
                                       offload_dst: str = "pinned_host") -> Callable:
        """Save dots without batch dimensions (offloading is saving on one device)."""
        return checkpoint_policies.dots_with_no_batch_dims_saveable


# ---------------------------------------------------------------------------
# print_saved_residuals: what reverse mode keeps, and where each value came from
# ---------------------------------------------------------------------------

class _ProvenanceTrace(StagingTrace):
    """A staging trace that remembers which equation made each value."""

    def __init__(self, parent):
        super().__init__(parent)
        self.made_by: dict[Var, tuple[int, JaxprEqn]] = {}

    def process_primitive(self, primitive, args, params):
        out = super().process_primitive(primitive, args, params)
        eqn = self.eqns[-1]
        for v in eqn.outvars:
            self.made_by[v] = (len(self.eqns), eqn)
        return out


def saved_residuals(fun: Callable, *args: Any, **kwargs: Any) -> list[tuple[ShapedArray, str]]:
    """(type, where it came from) of every value reverse mode saves for ``fun`` at these
    arguments: the arguments first, then values in the order the program makes them."""
    from tinyjax.lax._helpers import as_operand
    flat, in_tree = physical.tree_flatten((args, kwargs))
    flat_fun, _ = flatten_fun(fun, in_tree)
    names = _argument_paths(fun, args, kwargs)
    trace = _ProvenanceTrace(current_trace())
    with new_trace(trace):
        tracers = [trace.new_arg(shaped_abstractify(as_operand(x))) for x in flat]
        _, lin = linearize_flat(flat_fun, tracers)
    arg_index = {t._var: i for i, t in enumerate(tracers)}
    found: dict = {}
    for c in lin.consts:
        var = getattr(c, "_var", None)
        if var in arg_index:
            found.setdefault((0, arg_index[var]), (get_aval(c), f"from the argument "
                                                               f"{names[arg_index[var]]}"))
        elif var in trace.made_by:
            order, eqn = trace.made_by[var]
            found.setdefault((1, order), (get_aval(c), _made_by_str(eqn, var)))
        else:
            found.setdefault((2, len(found)), (get_aval(c), "from a constant"))
    return [found[k] for k in sorted(found)]


def _made_by_str(eqn: JaxprEqn, var: Var) -> str:
    if eqn.primitive is checkpoint_p:  # the equation of its body that made the value
        body = eqn.params["jaxpr"]
        inner = body.outvars[eqn.outvars.index(var)]
        for e in body.eqns:
            if inner in e.outvars:
                return _made_by_str(e, inner)
    info = eqn.source_info
    col = getattr(info, "column", None)
    where = f"{info}:{col}" if col is not None else str(info)
    fn = getattr(info, "function", "")
    where += f" ({fn})" if fn else ""
    if eqn.primitive is name_p:
        return f"named '{eqn.params['name']}' from {where}"
    return f"output of {eqn.primitive.name} from {where}"


def _argument_paths(fun: Callable, args: tuple, kwargs: dict) -> list[str]:
    """``x``, ``params[0]``, ``cfg['lr']``: each flat argument by name and pytree path."""
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
        named = list(bound.arguments.items())
    except (TypeError, ValueError):
        named = [(f"args[{i}]", a) for i, a in enumerate(args)] + list(kwargs.items())
    out = []
    for name, value in named:
        for path, _ in tree_util.tree_flatten_with_path(value)[0]:
            out.append(name + tree_util.keystr(path))
    return out


def print_saved_residuals(fun: Callable, *args: Any, **kwargs: Any) -> None:
    """Print what reverse mode of ``fun`` saves at these arguments, one value a line:
    its type and where it came from (an argument, or the primitive and source line)."""
    for aval, where in saved_residuals(fun, *args, **kwargs):
        print(f"{aval.str_short()} {where}")


def checkpoint(fun: Callable, *, prevent_cse: bool = True, policy: Callable | None = None,
               static_argnums: int | Sequence[int] = ()) -> Callable:
    """Make ``fun`` recompute its intermediate values in reverse mode instead of saving
    them (``policy`` may allow some to be saved; see :class:`checkpoint_policies`).
    Arguments at ``static_argnums`` are Python values baked into the trace."""
    static = normalize_argnums(static_argnums)
    # traces by argument types, kept per function as JAX keeps them (a second checkpoint
    # of the same function reuses them, whatever its policy: that applies later)
    traces = _traces_of(fun, static)

    @wraps(fun)
    def wrapped(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        dyn_idx = [i for i in range(len(args)) if i not in static]
        f_dyn, dyn_args = argnums_partial(fun, dyn_idx, args)
        flat, in_tree = physical.tree_flatten((list(dyn_args), kwargs))
        flat = [as_operand(x) for x in flat]
        flat_fun, out_tree = flatten_fun(f_dyn, in_tree)

        avals = [get_aval(x) for x in flat]
        key = (in_tree, tuple(avals), tuple(hashable_static(args[i]) for i in static))
        cached = traces.get(key)
        if cached is None:
            jaxpr, consts = _trace_open(flat_fun, avals)
            cached = (jaxpr, consts, out_tree[0])
            if not any(isinstance(c, Tracer) for c in consts):
                traces[key] = cached  # (a trace closing over a tracer is not kept)
        jaxpr, consts, tree = cached
        outs = checkpoint_p.bind(*consts, *flat, jaxpr=jaxpr, prevent_cse=prevent_cse,
                                 differentiated=False, policy=policy)
        return tree_util.tree_unflatten(tree, outs)

    return wrapped


remat = checkpoint

_traces: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
register_cache(_traces.clear)


def _traces_of(fun: Callable, options: tuple) -> dict:
    try:
        return _traces.setdefault(fun, {}).setdefault(options, {})
    except TypeError:  # not weakly referenceable, or unhashable options: not shared
        return {}
