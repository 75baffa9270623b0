"""User-defined derivative rules: ``custom_jvp`` and ``custom_vjp``.

A call of a decorated function goes to the current trace's
``process_custom_jvp_call`` / ``process_custom_vjp_call``.  Traces that do not
differentiate just call the function; the JVP trace calls the user's rule
instead.  ``custom_vjp``'s backward rule enters the linear program as the
``custom_lin`` primitive (:mod:`tinyjax.interpreters.ad`), whose transpose calls ``bwd``.
The batching trace vectorises the function and the rules together
(:mod:`tinyjax.interpreters.batching`).
"""
from __future__ import annotations

import inspect
from functools import partial, update_wrapper
from typing import Any, Callable, Sequence

from tinyjax import tree_util
from tinyjax.api_util import argnums_partial, dynamic_argnums, flatten_fun_nokwargs
from tinyjax.core import Primitive, current_trace, get_aval, is_eager
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.interpreters import ad
from tinyjax.jaxpr import Jaxpr, eval_jaxpr
from tinyjax.interpreters.ad import Zero

class _CustomJVPCall(Primitive):
    """A staged call of a custom_jvp function: binding it makes the current trace process
    the call (a JVP trace applies the rule, the others the function ``call_jaxpr``)."""

    def bind(self, *operands, call_jaxpr, jvp, num_consts, symbolic_zeros):
        return current_trace().process_custom_jvp_call(
            self, partial(_eval_call, call_jaxpr), jvp, operands,
            symbolic_zeros=symbolic_zeros, num_consts=num_consts)


class _CustomVJPCall(Primitive):
    """A staged call of a custom_vjp function (see :class:`_CustomJVPCall`)."""

    def bind(self, *operands, call_jaxpr, fwd, bwd, out_trees, num_consts, symbolic_zeros):
        return current_trace().process_custom_vjp_call(
            self, partial(_eval_call, call_jaxpr), fwd, bwd, operands, out_trees=out_trees,
            symbolic_zeros=symbolic_zeros, num_consts=num_consts)


def _eval_call(call_jaxpr: Jaxpr, *operands: Any) -> list[Any]:
    return eval_jaxpr(call_jaxpr, [], *operands)


custom_jvp_call_p = _CustomJVPCall("custom_jvp_call", multiple_results=True)
custom_vjp_call_p = _CustomVJPCall("custom_vjp_call", multiple_results=True)
for _p in (custom_jvp_call_p, custom_vjp_call_p):
    _p.def_abstract_eval(lambda *avals, call_jaxpr, **_: [v.aval for v in call_jaxpr.outvars])
    register_inlined_call(_p, "call_jaxpr")  # compiled: the function's body in place


def _as_operands(flat: Sequence[Any]) -> list[Any]:
    from tinyjax.lax._helpers import as_operand
    return [as_operand(x) for x in flat]


def resolve_kwargs(fun: Callable, args: tuple, kwargs: dict) -> tuple:
    """The call's arguments all positional, keyword ones placed through ``fun``'s
    signature (defaults filled in), as JAX passes them to the rules."""
    if not kwargs:
        return args
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise TypeError(f"The function {getattr(fun, '__name__', fun)} was called with "
                        f"keyword arguments that do not match its signature: {e}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(f"keyword-only arguments of a custom_jvp/custom_vjp function are "
                        f"not supported: {sorted(bound.kwargs)}")
    return bound.args


def _call_args(kind: str, fun: Callable, rule: Any, args: tuple,
               nondiff_argnums: tuple[int, ...]):
    """Check a call of a ``custom_jvp``/``custom_vjp`` function and split its arguments:
    (the non-differentiable ones in positional order, ``fun`` as a function of the others,
    their flat operands, their treedef)."""
    if rule is None:
        raise AttributeError(f"No {kind.upper()} defined for custom_{kind} function "
                             f"{getattr(fun, '__name__', fun)} using def{kind}.")
    nondiff = tuple(args[i] for i in sorted(nondiff_argnums))
    f_diff, diff = argnums_partial(fun, dynamic_argnums(nondiff_argnums, len(args)), args)
    flat_args, in_tree = tree_util.tree_flatten(diff)
    return nondiff, f_diff, _as_operands(flat_args), in_tree


class custom_jvp:
    """A function with a custom forward-mode derivative rule.

    ``f.defjvp(rule)`` with ``rule(primals, tangents) -> (primal_out, tangent_out)``,
    or ``f.defjvps(*per_argument_rules)`` with ``rule_i(g, ans, *primals)``.
    Reverse mode follows from the jvp rule (it must be linear in the tangents).
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        update_wrapper(self, fun, updated=())
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp: Callable | None = None
        self.symbolic_zeros = False

    def defjvp(self, jvp: Callable, symbolic_zeros: bool = False) -> Callable:
        self.jvp = jvp
        self.symbolic_zeros = symbolic_zeros
        return jvp

    def defjvps(self, *jvps: Callable | None) -> None:
        def jvp(primals, tangents):
            ans = self.fun(*primals)
            total = None
            for rule, t in zip(jvps, tangents):
                if rule is None:
                    continue
                part = rule(t, ans, *primals)
                total = part if total is None else tree_util.tree_map(
                    lambda a, b: a + b, total, part)
            if total is None:
                total = tree_util.tree_map(lambda a: a * 0, ans)
            return ans, total
        self.defjvp(jvp)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = resolve_kwargs(self.fun, args, kwargs)
        nondiff, f_diff, flat_args, in_tree = _call_args("jvp", self.fun, self.jvp, args,
                                                         self.nondiff_argnums)
        if is_eager():  # nothing differentiates: the function's own result, as JAX
            return self.fun(*args)
        fun_leaves, out_tree_store = flatten_fun_nokwargs(f_diff, in_tree)

        def flat_fun(*flat):
            return _as_operands(fun_leaves(*flat))

        def flat_jvp(*primals_and_tangents):
            n = len(primals_and_tangents) // 2
            primals = tree_util.tree_unflatten(in_tree, primals_and_tangents[:n])
            tangents = tree_util.tree_unflatten(in_tree, primals_and_tangents[n:])
            out = self.jvp(*nondiff, tuple(primals), tuple(tangents))  # as JAX
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("Custom JVP rule must produce a pair (list or tuple of length "
                                f"two) representing primal and tangent outputs, got {out!r}")
            primal_out, tangent_out = out
            p_leaves, p_tree = tree_util.tree_flatten(primal_out)
            t_leaves, t_tree = tree_util.tree_flatten(tangent_out)
            if p_tree != t_tree:
                raise TypeError("Custom JVP rule must produce primal and tangent outputs with "
                                f"equal container (pytree) structures, but got {p_tree} and "
                                f"{t_tree} respectively.")
            out_tree_store.append(p_tree)
            return _as_operands(p_leaves) + _as_operands(t_leaves)

        outs = current_trace().process_custom_jvp_call(
            custom_jvp_call_p, flat_fun, flat_jvp, flat_args,
            symbolic_zeros=self.symbolic_zeros)
        return tree_util.tree_unflatten(out_tree_store[-1], outs)


class custom_vjp:
    """A function with a custom reverse-mode derivative rule.

    ``f.defvjp(fwd, bwd)``: ``fwd(*args) -> (out, residuals)`` and
    ``bwd(residuals, out_cotangent) -> tuple of cotangents`` (one per argument;
    arguments at ``nondiff_argnums`` are passed to ``bwd`` first instead).
    """

    def __init__(self, fun: Callable, nondiff_argnums: Sequence[int] = ()):
        update_wrapper(self, fun, updated=())
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        self.symbolic_zeros = False

    def defvjp(self, fwd: Callable, bwd: Callable, symbolic_zeros: bool = False) -> None:
        self.fwd, self.bwd = fwd, bwd
        self.symbolic_zeros = symbolic_zeros

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = resolve_kwargs(self.fun, args, kwargs)
        nondiff, f_diff, flat_args, in_tree = _call_args("vjp", self.fun, self.fwd, args,
                                                         self.nondiff_argnums)
        if is_eager():  # nothing differentiates: the function's own result, as JAX
            return self.fun(*args)
        diff = tree_util.tree_unflatten(in_tree, flat_args)  # the differentiable arguments
        in_avals = [get_aval(a) for a in flat_args]
        fun_leaves, out_tree_store = flatten_fun_nokwargs(f_diff, in_tree)
        fwd_diff, _ = argnums_partial(self.fwd, dynamic_argnums(self.nondiff_argnums,
                                                                len(args)), args)
        res_tree_store: list = []

        def flat_fun(*flat):
            return _as_operands(fun_leaves(*flat))

        def flat_fwd(*flat):
            pair = fwd_diff(*tree_util.tree_unflatten(in_tree, flat))
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
                raise TypeError("Custom VJP fwd rule must produce a pair (list or tuple of "
                                f"length two) of primal outputs and residuals, got {pair!r}")
            out, res = pair
            out_leaves, out_tree = tree_util.tree_flatten(out)
            res_leaves, res_tree = tree_util.tree_flatten(res)
            out_tree_store.append(out_tree)
            res_tree_store.append(res_tree)
            return _as_operands(res_leaves), _as_operands(out_leaves)

        def flat_bwd(res_flat, cts_flat):
            res = tree_util.tree_unflatten(res_tree_store[-1], res_flat)
            cts = tree_util.tree_unflatten(out_tree_store[-1], cts_flat)
            grads = self.bwd(*nondiff, res, cts)  # in positional order, as JAX
            if not isinstance(grads, (tuple, list)) or len(grads) != len(diff):
                raise TypeError(
                    "Custom VJP bwd rule must produce an output with the same container "
                    "(pytree) structure as the args tuple of the primal function, and in "
                    "particular must produce a tuple of length equal to the number of "
                    "arguments to the primal function, but got bwd output structure "
                    f"{tree_util.tree_structure(grads)} for primal input structure "
                    f"{tree_util.tree_structure(tuple(diff))}.")
            flat_grads = []
            for g, d in zip(grads, diff):
                d_leaves, d_tree = tree_util.tree_flatten(d)
                if g is None:
                    flat_grads.extend([None] * len(d_leaves))
                    continue
                g_leaves, g_tree = tree_util.tree_flatten(g)
                if g_tree != d_tree:
                    raise TypeError(
                        "Custom VJP bwd rule must produce an output with the same container "
                        "(pytree) structure as the args tuple of the primal function, and "
                        f"in particular must produce a tuple of length equal to the number "
                        f"of arguments to the primal function, but got bwd output structure "
                        f"{tree_util.tree_structure(tuple(grads))} for primal input "
                        f"structure {tree_util.tree_structure(tuple(diff))}.")
                flat_grads.extend(g_leaves)
            out = []
            for g, aval in zip(flat_grads, in_avals):
                t_aval = ad.tangent_aval(aval)
                if g is None:
                    out.append(Zero(t_aval))
                    continue
                g = _as_operands([g])[0]
                if get_aval(g).shape != aval.shape:
                    raise ValueError(
                        f"Custom VJP bwd rule must produce an output with shapes/dtypes as "
                        f"expected by the primal inputs: expected {aval.str_short()}, got "
                        f"{get_aval(g).str_short()}.")
                out.append(g)
            return out

        outs = current_trace().process_custom_vjp_call(
            custom_vjp_call_p, flat_fun, flat_fwd, flat_bwd, flat_args,
            out_trees=lambda: out_tree_store[-1], symbolic_zeros=self.symbolic_zeros)
        return tree_util.tree_unflatten(out_tree_store[-1], outs)
