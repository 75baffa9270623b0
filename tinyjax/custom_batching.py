"""``jax.custom_batching``: functions with their own rule for ``vmap``.

``f = custom_vmap(fun)`` and ``@f.def_vmap`` a rule ``rule(axis_size, in_batched, *args)
-> (out, out_batched)``: under ``vmap`` the rule runs on the batched arguments (each with
its batch axis first; ``in_batched`` says which are batched, a pytree of bools like the
arguments) and says which outputs are batched (``out_batched``, a pytree of bools like
``out``).  Elsewhere ``fun`` runs.  A call is one ``custom_vmap_call`` equation holding
``fun``'s jaxpr and the rule; compiled, the jaxpr is inlined.  Differentiating a call
differentiates ``fun`` (the rule does not apply to the derivative).

``sequential_vmap(f)``: ``f`` batched by a loop over the batch (``lax.map``).
"""
from __future__ import annotations

from functools import update_wrapper
from typing import Any, Callable

from tinyjax import lax, tree_util
from tinyjax.tree_util import physical
from tinyjax.api_util import flatten_fun_nokwargs
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.core import Primitive, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import Jaxpr, eval_jaxpr
from tinyjax.lax._helpers import as_operand

__all__ = ["custom_vmap", "sequential_vmap"]

custom_vmap_call_p = Primitive("custom_vmap_call", multiple_results=True)


# operands: the values fun closes over (``num_consts``), then its flat arguments;
# ``call_jaxpr`` takes them all as invars.
def _impl(*args, call_jaxpr, **_):
    return eval_jaxpr(call_jaxpr, [], *args)


custom_vmap_call_p.def_impl(_impl)
custom_vmap_call_p.def_abstract_eval(
    lambda *avals, call_jaxpr, **_: [v.aval for v in call_jaxpr.outvars])


def _jvp(primals, tangents, *, call_jaxpr, **_):
    tangents = [ad.instantiate_zeros(t) for t in tangents]
    return ad.jvp_flat(lambda *xs: eval_jaxpr(call_jaxpr, [], *xs), primals, tangents)


def _batch(vals, dims, *, call_jaxpr, num_consts, rule, in_tree, out_tree):
    if any(d is not None for d in dims[:num_consts]):
        raise NotImplementedError("a custom_vmap function closes over a value batched by "
                                  "vmap: pass it as an argument")
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    vals, dims = vals[num_consts:], dims[num_consts:]
    moved = [v if d in (None, 0) else
             lax.transpose(v, (d,) + tuple(i for i in range(v.ndim) if i != d))
             for v, d in zip(vals, dims)]
    args = tree_util.tree_unflatten(in_tree, moved)
    in_batched = tree_util.tree_unflatten(in_tree, [d is not None for d in dims])
    result = rule(size, list(in_batched), *args)
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ValueError("the vmap rule of a custom_vmap function must return a pair "
                         f"(outputs, which outputs are batched), got {result!r}")
    out, out_batched = result
    leaves, tree = physical.tree_flatten(out)
    if tree != out_tree:
        raise ValueError(f"the vmap rule of a custom_vmap function returned outputs of "
                         f"structure {tree}, the function returns {out_tree}")
    flags = physical.tree_leaves(out_batched)
    if len(flags) != len(leaves):
        raise ValueError("the vmap rule's out_batched must be a pytree of bools like its "
                         f"outputs ({len(leaves)} leaves), got {out_batched!r}")
    for leaf, b, v in zip(leaves, flags, call_jaxpr.outvars):
        want = ((size,) if b else ()) + tuple(v.aval.shape)
        if tuple(get_aval(leaf).shape) != want:
            raise ValueError(f"the vmap rule of a custom_vmap function returned an output "
                             f"of shape {get_aval(leaf).shape} where {want} was expected "
                             f"(batched: {bool(b)})")
    return [as_operand(x) for x in leaves], [0 if b else None for b in flags]


ad.primitive_jvps[custom_vmap_call_p] = _jvp
batching.primitive_batchers[custom_vmap_call_p] = _batch
register_inlined_call(custom_vmap_call_p,
                      lambda eqn, operands: (eqn.params["call_jaxpr"], operands))


class custom_vmap:
    """A function with a custom batching rule (see the module)."""

    def __init__(self, fun: Callable):
        update_wrapper(self, fun)
        self.fun = fun
        self.vmap_rule: Callable | None = None

    def def_vmap(self, vmap_rule: Callable) -> Callable:
        """Set the rule ``vmap_rule(axis_size, in_batched, *args) -> (out,
        out_batched)``; returns it (usable as a decorator)."""
        self.vmap_rule = vmap_rule
        return vmap_rule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            raise TypeError("a custom_vmap function takes positional arguments only")
        if self.vmap_rule is None:
            name = getattr(self.fun, "__name__", "function")
            raise AttributeError(f"No batching rule defined for custom_vmap function "
                                 f"{name} using def_vmap.")
        flat, in_tree = physical.tree_flatten(args)
        flat = [as_operand(x) for x in flat]
        flat_fun, out_tree = flatten_fun_nokwargs(self.fun, in_tree)
        closed = trace_to_closed_jaxpr(
            lambda *xs: [as_operand(o) for o in flat_fun(*xs)], [get_aval(x) for x in flat])
        jaxpr = closed.jaxpr
        call = Jaxpr([], list(jaxpr.constvars) + list(jaxpr.invars), jaxpr.outvars,
                     jaxpr.eqns)
        outs = custom_vmap_call_p.bind(*closed.consts, *flat, call_jaxpr=call,
                                       num_consts=len(closed.consts), rule=self.vmap_rule,
                                       in_tree=in_tree, out_tree=out_tree[0])
        return tree_util.tree_unflatten(out_tree[0], outs)


def sequential_vmap(f: Callable) -> custom_vmap:
    """``f`` as a ``custom_vmap`` whose batching rule loops over the batch (``lax.map``
    over the batched arguments; the others are passed whole to each call)."""
    f = custom_vmap(f)

    @f.def_vmap
    def rule(axis_size, in_batched, *args):
        flat, tree = physical.tree_flatten(args)
        flags = physical.tree_leaves(in_batched)
        batched = [x for x, b in zip(flat, flags) if b]

        def one(xs):
            it = iter(xs)
            return f.fun(*tree_util.tree_unflatten(
                tree, [next(it) if b else x for x, b in zip(flat, flags)]))

        out = lax.map(one, batched)
        return out, physical.tree_map(lambda _: True, out)

    return f
