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

from tinyjax import dtypes, tree_util
from tinyjax.api_util import (argnums_partial, dynamic_argnums, flatten_fun_nokwargs,
                              physical_tangents)
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.core import Primitive, Tracer, current_trace, get_aval, is_eager
from tinyjax.extend.linear_util import wrap_init
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, dce_jaxpr, dce_rules, eval_jaxpr, has_effects
from tinyjax.tree_util import physical
from tinyjax.interpreters.ad import SymbolicZero, Zero

__all__ = ["closure_convert", "custom_gradient", "custom_jvp", "custom_jvp_call_p",
           "custom_vjp", "custom_vjp_call_p", "SymbolicZero", "zero_from_primal",
           "CustomVJPPrimal", "custom_vjp_primal_tree_values", "linear_call", "remat_opt_p"]


class _CustomJVPCall(Primitive):
    """A staged call of a custom_jvp function: binding it makes the current trace process
    the call (a JVP trace applies the rule, the others the function ``call_jaxpr``).
    ``get_bind_params`` gives the function and the rule as ``subfuns``, as JAX's does (a
    bind with them needs no ``call_jaxpr``)."""

    def bind(self, *operands, num_consts, symbolic_zeros, call_jaxpr=None, jvp=None,
             subfuns=None):
        fun, jvp = subfuns or (partial(_eval_call, call_jaxpr), jvp)
        return current_trace().process_custom_jvp_call(
            self, fun, jvp, operands, symbolic_zeros=symbolic_zeros, num_consts=num_consts)

    def get_bind_params(self, params: dict) -> dict:
        params = dict(params)
        fun = partial(_eval_call, params.pop("call_jaxpr"))
        params["subfuns"] = (wrap_init(fun), wrap_init(params.pop("jvp")))
        return params


class _CustomVJPCall(Primitive):
    """A staged call of a custom_vjp function (see :class:`_CustomJVPCall`)."""

    def bind(self, *operands, out_trees, num_consts, symbolic_zeros, call_jaxpr=None,
             fwd=None, bwd=None, subfuns=None):
        fun, fwd, bwd = subfuns or (partial(_eval_call, call_jaxpr), fwd, bwd)
        return current_trace().process_custom_vjp_call(
            self, fun, fwd, bwd, operands, out_trees=out_trees,
            symbolic_zeros=symbolic_zeros, num_consts=num_consts)

    def get_bind_params(self, params: dict) -> dict:
        params = dict(params)
        fun = partial(_eval_call, params.pop("call_jaxpr"))
        params["subfuns"] = (wrap_init(fun), wrap_init(params.pop("fwd")),
                             wrap_init(params.pop("bwd")))
        return params


def _eval_call(call_jaxpr: Jaxpr, *operands: Any) -> list[Any]:
    return eval_jaxpr(call_jaxpr, [], *operands)


custom_jvp_call_p = _CustomJVPCall("custom_jvp_call", multiple_results=True)
custom_vjp_call_p = _CustomVJPCall("custom_vjp_call", multiple_results=True)
for _p in (custom_jvp_call_p, custom_vjp_call_p):
    _p.def_abstract_eval(lambda *avals, call_jaxpr, **_: [v.aval for v in call_jaxpr.outvars])
    register_inlined_call(_p, "call_jaxpr")  # compiled: the function's body in place


def _as_operands(flat: Sequence[Any]) -> list[Any]:
    """Operands of a call; mutable array references pass as they are."""
    from tinyjax.lax._helpers import as_operand
    from tinyjax.lax.refs import Ref
    return [x if isinstance(x, Ref) else as_operand(x) for x in flat]


def _tangent_operands(flat: Sequence[Any]) -> list[Any]:
    """(Co)tangents a rule returned, as operands; symbolic zeros stay as they are."""
    return [t if type(t) is SymbolicZero else _as_operands([t])[0] for t in flat]


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
    flat_args, in_tree = physical.tree_flatten(diff)
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
                total = part if total is None else physical.tree_map(
                    lambda a, b: a + b, total, part)
            if total is None:
                total = physical.tree_map(lambda a: a * 0, ans)
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
            p_leaves, p_tree = physical.tree_flatten(primal_out)
            t_leaves, t_tree = physical_tangents(tangent_out, p_tree,
                                                 [get_aval(p).shape for p in
                                                  _as_operands(p_leaves)])
            if p_tree != t_tree:
                raise TypeError("Custom JVP rule must produce primal and tangent outputs with "
                                f"equal container (pytree) structures, but got {p_tree} and "
                                f"{t_tree} respectively.")
            out_tree_store.append(p_tree)
            return _as_operands(p_leaves) + _tangent_operands(t_leaves)

        outs = current_trace().process_custom_jvp_call(
            custom_jvp_call_p, flat_fun, flat_jvp, flat_args,
            symbolic_zeros=self.symbolic_zeros)
        return tree_util.tree_unflatten(out_tree_store[-1], outs)


class _Residuals:
    """The structure of a ``custom_vjp`` fwd rule's residuals.  Leaves that are Python
    scalars are constants of the trace, not operands: ``bwd`` gets them back as they were
    (as JAX keeps them, literals; libraries store flags such as ``perturbed`` this way)."""

    def __init__(self, tree: Any, leaves: Sequence[Any]):
        self.tree = tree
        self.constants = {i: x for i, x in enumerate(leaves) if _is_python_scalar(x)}

    def operands(self, leaves: Sequence[Any]) -> list[Any]:
        return [x for i, x in enumerate(leaves) if i not in self.constants]

    def unflatten(self, operands: Sequence[Any]) -> Any:
        it = iter(operands)
        leaves = [self.constants[i] if i in self.constants else next(it)
                  for i in range(self.tree.num_leaves)]
        return tree_util.tree_unflatten(self.tree, leaves)


def _fwd_pair(pair: Any) -> tuple[Any, Any]:
    """A fwd rule's result, checked to be (primal outputs, residuals)."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError("Custom VJP fwd rule must produce a pair (list or tuple of "
                        f"length two) of primal outputs and residuals, got {pair!r}")
    return pair[0], pair[1]


def _is_python_scalar(x: Any) -> bool:
    return type(x) in (bool, int, float, complex)


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
        self.optimize_remat = False

    def defvjp(self, fwd: Callable, bwd: Callable, symbolic_zeros: bool = False,
               optimize_remat: bool = False) -> None:
        """Set the rules.  With ``optimize_remat``, ``fwd`` runs as one ``remat_opt``
        equation that becomes a call of the function itself where its residuals go unused
        (as under ``jax.checkpoint``): worth it where ``fwd`` is an opaque call."""
        if symbolic_zeros and optimize_remat:
            raise NotImplementedError(
                "remat optimization for custom_vjp does not support symbolic zeros")
        self.fwd, self.bwd = fwd, bwd
        self.symbolic_zeros = symbolic_zeros
        self.optimize_remat = optimize_remat

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        args = resolve_kwargs(self.fun, args, kwargs)
        nondiff, f_diff, flat_args, in_tree = _call_args("vjp", self.fun, self.fwd, args,
                                                         self.nondiff_argnums)
        if is_eager():  # nothing differentiates: the function's own result, as JAX
            return self.fun(*args)
        diff = tree_util.tree_unflatten(in_tree, flat_args)  # the differentiable arguments
        public_tree = tree_util.tree_structure(diff)  # (a key array one leaf)
        in_avals = [get_aval(a) for a in flat_args]
        fun_leaves, out_tree_store = flatten_fun_nokwargs(f_diff, in_tree)
        fwd_diff, _ = argnums_partial(self.fwd, dynamic_argnums(self.nondiff_argnums,
                                                                len(args)), args)
        if self.optimize_remat:
            fwd_diff = _optimize_remat_fwd(f_diff, fwd_diff)
        res_tree_store: list = []

        def flat_fun(*flat):
            return _as_operands(fun_leaves(*flat))

        def flat_fwd(perturbed, *flat):
            primals = tree_util.tree_unflatten(in_tree, flat)
            if self.symbolic_zeros:  # JAX's records of each value and its perturbation
                primals = tree_util.tree_unflatten(public_tree, [
                    CustomVJPPrimal(x, p)
                    for x, p in zip(tree_util.tree_leaves(primals), perturbed)])
            out, res = _fwd_pair(fwd_diff(*primals))
            out_leaves, out_tree = physical.tree_flatten(out)
            res_leaves, res_tree = physical.tree_flatten(res)
            out_tree_store.append(out_tree)
            res_tree_store.append(_Residuals(res_tree, res_leaves))
            return _as_operands(res_tree_store[-1].operands(res_leaves)), \
                _as_operands(out_leaves)

        def flat_bwd(res_flat, cts_flat):
            res = res_tree_store[-1].unflatten(res_flat)
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
                d_leaves, d_tree = physical.tree_flatten(d)
                if g is None:
                    flat_grads.extend([None] * len(d_leaves))
                    continue
                g_leaves, g_tree = physical_tangents(
                    g, d_tree, [get_aval(x).shape for x in _as_operands(d_leaves)])
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
                g = _tangent_operands([g])[0]
                g_aval = g.aval if type(g) is SymbolicZero else get_aval(g)
                if g_aval.shape != aval.shape:
                    raise ValueError(
                        f"Custom VJP bwd rule must produce an output with shapes/dtypes as "
                        f"expected by the primal inputs: expected {aval.str_short()}, got "
                        f"{g_aval.str_short()}.")
                out.append(g)
            return out

        outs = current_trace().process_custom_vjp_call(
            custom_vjp_call_p, flat_fun, flat_fwd, flat_bwd, flat_args,
            out_trees=lambda: out_tree_store[-1], symbolic_zeros=self.symbolic_zeros)
        return tree_util.tree_unflatten(out_tree_store[-1], outs)


# ---------------------------------------------------------------------------
# closure_convert and custom_gradient
# ---------------------------------------------------------------------------


def closure_convert(fun: Callable, *example_args: Any) -> tuple[Callable, list[Any]]:
    """``(converted, hoisted)``: ``converted(*args, *hoisted)`` computes ``fun(*args)``
    for arguments of the types of ``example_args``, with the traced floating-point
    values ``fun`` closes over (values a transform may differentiate) passed explicitly
    as ``hoisted`` -- so that they can cross a ``custom_vjp`` boundary as arguments."""
    flat, in_tree = physical.tree_flatten(example_args)
    avals = [get_aval(x) for x in _as_operands(flat)]
    out_tree: list = []

    def flat_fun(*xs):
        leaves, tree = physical.tree_flatten(fun(*tree_util.tree_unflatten(in_tree, xs)))
        out_tree.append(tree)
        return _as_operands(leaves)

    closed = trace_to_closed_jaxpr(flat_fun, avals)
    hoist = [isinstance(c, Tracer) and dtypes.is_inexact(get_aval(c).dtype)
             for c in closed.consts]
    kept = [c for c, h in zip(closed.consts, hoist) if not h]
    hoisted = [c for c, h in zip(closed.consts, hoist) if h]

    def converted(*args_and_hoisted: Any) -> Any:
        n = len(args_and_hoisted) - len(hoisted)
        args, extra = args_and_hoisted[:n], list(args_and_hoisted[n:])
        leaves, tree = physical.tree_flatten(args)
        if tree != in_tree:
            raise TypeError("The inputs to the closure produced by closure_convert must have "
                            "the same Pytree structure as the example arguments passed when "
                            f"closure_convert was called. Expected {in_tree}, but got {tree}")
        k, h = iter(kept), iter(extra)
        consts = [next(h) if is_hoisted else next(k) for is_hoisted in hoist]
        return tree_util.tree_unflatten(out_tree[0], eval_jaxpr(closed.jaxpr, consts,
                                                                *_as_operands(leaves)))

    return converted, hoisted


class _GradientRule:
    """The backward function ``custom_gradient``'s function returned, traced: a pytree
    whose leaves are the values it closes over (the residuals)."""

    def __init__(self, jaxpr: Jaxpr, consts: list, ct_tree, grad_tree):
        self.jaxpr, self.consts, self.ct_tree, self.grad_tree = jaxpr, consts, ct_tree, grad_tree


tree_util.register_pytree_node(
    _GradientRule, lambda r: (r.consts, (r.jaxpr, r.ct_tree, r.grad_tree)),
    lambda aux, consts: _GradientRule(aux[0], list(consts), aux[1], aux[2]))


def custom_gradient(fun: Callable) -> Callable:
    """A function with a custom gradient, written as TensorFlow's: ``fun(*args)`` returns
    ``(value, vjp)`` where ``vjp(cotangent)`` gives the cotangents of the arguments (a
    tuple, or one value for one argument); ``vjp`` may close over values of the forward
    pass."""

    @custom_vjp
    def wrapped(*args: Any) -> Any:
        return fun(*args)[0]

    def fwd(*args: Any):
        ans, rule = fun(*args)
        leaves, ct_tree = physical.tree_flatten(ans)
        grad_tree: list = []

        def flat_rule(*cts):
            grads = rule(tree_util.tree_unflatten(ct_tree, cts))
            g_leaves, g_tree = physical.tree_flatten(grads)
            grad_tree.append(g_tree)
            return _as_operands(g_leaves)

        closed = trace_to_closed_jaxpr(flat_rule, [ad.tangent_aval(get_aval(x)) for x in
                                                   _as_operands(leaves)])
        return ans, _GradientRule(closed.jaxpr, list(closed.consts), ct_tree, grad_tree[0])

    def bwd(res: _GradientRule, cts: Any):
        leaves, tree = physical.tree_flatten(cts)
        if tree != res.ct_tree:
            raise TypeError(f"{tree}\n!=\n{res.ct_tree}")
        grads = tree_util.tree_unflatten(res.grad_tree, eval_jaxpr(res.jaxpr, res.consts,
                                                                   *leaves))
        return grads if isinstance(grads, tuple) else (grads,)

    wrapped.defvjp(fwd, bwd)
    return update_wrapper(wrapped, fun, updated=())


# ---------------------------------------------------------------------------
# Symbolic zeros, custom_vjp primal records, linear_call
# ---------------------------------------------------------------------------


def zero_from_primal(val: Any, symbolic_zeros: bool = False) -> Any:
    """Zero tangents for the pytree ``val``: ``SymbolicZero`` leaves, or arrays of zeros."""
    def zero(x):
        z = SymbolicZero.from_primal_value(x)
        return z if symbolic_zeros else z.instantiate()
    return physical.tree_map(zero, val)


class CustomVJPPrimal:
    """A primal argument of a ``custom_vjp`` forward rule in ``symbolic_zeros`` mode: its
    ``value`` and whether it is ``perturbed`` (differentiated)."""

    __slots__ = ("value", "perturbed")

    def __init__(self, value: Any, perturbed: bool):
        self.value, self.perturbed = value, perturbed

    def __repr__(self) -> str:
        return f"CustomVJPPrimal(value={self.value!r}, perturbed={self.perturbed})"


def custom_vjp_primal_tree_values(tree: Any) -> Any:
    """``tree`` with each ``CustomVJPPrimal`` leaf replaced by its value."""
    return tree_util.tree_map(lambda x: x.value if isinstance(x, CustomVJPPrimal) else x,
                              tree, is_leaf=lambda x: isinstance(x, CustomVJPPrimal))


# linear_call: operands = the residuals' leaves, then the linear inputs' leaves; the body
# ``callee`` (an open jaxpr over them; the compiler inlines it) is ``fun``; transposing
# gives a linear_call of ``fun_transpose`` (whose own transpose is ``fun``).
linear_call_p = Primitive("linear_call", multiple_results=True)
linear_call_p.def_impl(lambda *args, callee, **_: eval_jaxpr(callee, [], *args))
linear_call_p.def_abstract_eval(lambda *avals, callee, **_: [v.aval for v in callee.outvars])
register_inlined_call(linear_call_p, lambda eqn, operands: (eqn.params["callee"], operands))


def linear_call(fun: Callable, fun_transpose: Callable, residual_args: Any,
                linear_args: Any) -> Any:
    """``fun(residual_args, linear_args)``, a function linear in ``linear_args``, whose
    transpose (``jax.linear_transpose``, reverse mode) is
    ``fun_transpose(residual_args, cotangent)`` instead of ``fun``'s own."""
    from tinyjax.lax._helpers import as_operand
    res_flat, res_tree = physical.tree_flatten(residual_args)
    lin_flat, lin_tree = physical.tree_flatten(linear_args)
    res_flat = [as_operand(x) for x in res_flat]
    lin_flat = [as_operand(x) for x in lin_flat]
    out_tree: list = []

    def flat_fun(*xs):
        res = tree_util.tree_unflatten(res_tree, xs[:len(res_flat)])
        lin = tree_util.tree_unflatten(lin_tree, xs[len(res_flat):])
        leaves, tree = physical.tree_flatten(fun(res, lin))
        out_tree.append(tree)
        return [as_operand(x) for x in leaves]

    closed = trace_to_closed_jaxpr(flat_fun, [get_aval(x) for x in res_flat + lin_flat])
    j = closed.jaxpr
    callee = Jaxpr([], j.constvars + j.invars, j.outvars, j.eqns)
    outs = linear_call_p.bind(*closed.consts, *res_flat, *lin_flat, callee=callee,
                              fun=fun, fun_transpose=fun_transpose,
                              num_res=len(closed.consts) + len(res_flat),
                              num_consts=len(closed.consts), res_tree=res_tree,
                              lin_tree=lin_tree, out_tree=out_tree[-1])
    return tree_util.tree_unflatten(out_tree[-1], outs)


def _linear_call_jvp(primals, tangents, *, num_res, num_consts, fun, fun_transpose,
                     res_tree, lin_tree, out_tree, callee):
    if any(type(t) is not Zero for t in tangents[:num_res]):
        raise NotImplementedError("linear_call: differentiating with respect to a residual "
                                  "argument is not supported")
    out = linear_call_p.bind(*primals, callee=callee, fun=fun, fun_transpose=fun_transpose,
                             num_res=num_res, num_consts=num_consts, res_tree=res_tree,
                             lin_tree=lin_tree, out_tree=out_tree)
    res = tree_util.tree_unflatten(res_tree, primals[num_consts:num_res])
    lin_t = tree_util.tree_unflatten(lin_tree, [ad.instantiate_zeros(t)
                                                for t in tangents[num_res:]])
    out_t = physical.tree_leaves(linear_call(fun, fun_transpose, res, lin_t))
    return out, out_t


def _linear_call_transpose(cts, *args, num_res, num_consts, fun, fun_transpose, res_tree,
                           lin_tree, out_tree, callee):
    if any(isinstance(a, ad.UndefinedPrimal) for a in args[:num_res]):
        raise ValueError("linear_call: the residual arguments must be known when "
                         "transposing")
    res = tree_util.tree_unflatten(res_tree, args[num_consts:num_res])
    cts = tree_util.tree_unflatten(out_tree, [ad.instantiate_zeros(c) for c in cts])
    lin_cts = physical.tree_leaves(linear_call(fun_transpose, fun, res, cts))
    return [None] * num_res + list(lin_cts)


def _linear_call_batch(vals, dims, *, callee, **_):
    """Vectorised in place (under vmap the body's own transpose applies)."""
    axis = batching.rule_axis_data(batching.batch_size(vals, dims))
    outs = batching.vmap_flat(lambda *a: eval_jaxpr(callee, [], *a), axis, vals, dims,
                              [0] * len(callee.outvars))
    return outs, [0] * len(outs)


ad.primitive_jvps[linear_call_p] = _linear_call_jvp
ad.primitive_transposes[linear_call_p] = _linear_call_transpose
batching.primitive_batchers[linear_call_p] = _linear_call_batch


# ---------------------------------------------------------------------------
# remat_opt: a custom_vjp fwd rule as one equation (``defvjp(..., optimize_remat=True)``)
# ---------------------------------------------------------------------------
# Operands: the constants both rules close over (``num_consts``), then the differentiable
# arguments' leaves.  Results: fwd's residuals (``num_res``), then its primal outputs.
# ``fwd_jaxpr`` (closed, no constants) computes them from the operands;
# ``fun_jaxpr_thunk()`` gives the open jaxpr of the function itself over the same operands,
# which dead-code elimination puts in fwd's place where no residual is used (JAX's
# ``fun_jaxpr_thunk`` gives the jaxpr and its constants: here they are operands already).
# Differentiated or batched, it is the fwd jaxpr's own derivative or batching, inline.

remat_opt_p = Primitive("remat_opt", multiple_results=True)


def _optimize_remat_fwd(fun: Callable, fwd: Callable) -> Callable:
    """``fwd`` (a function of the same arguments as ``fun``) binding ``remat_opt_p``."""
    def wrapped(*args: Any) -> tuple[Any, Any]:
        flat, in_tree = physical.tree_flatten(args)
        flat = _as_operands(flat)
        store: list = []

        def both(*xs):
            out, res = _fwd_pair(fwd(*tree_util.tree_unflatten(in_tree, xs)))
            res_leaves, res_tree = physical.tree_flatten(res)
            out_leaves, out_tree = physical.tree_flatten(out)
            fun_leaves = physical.tree_leaves(fun(*tree_util.tree_unflatten(in_tree, xs)))
            if len(fun_leaves) != len(out_leaves):
                raise TypeError(f"Custom VJP fwd rule must produce primal outputs like the "
                                f"function's: {len(out_leaves)} leaves against "
                                f"{len(fun_leaves)}")
            residuals = _Residuals(res_tree, res_leaves)
            store.append((residuals, out_tree))
            return _as_operands([*residuals.operands(res_leaves), *out_leaves, *fun_leaves])

        closed = trace_to_closed_jaxpr(both, [get_aval(x) for x in flat])
        residuals, out_tree = store[-1]
        j = closed.jaxpr
        invars = [*j.constvars, *j.invars]
        num_fwd = len(j.outvars) - out_tree.num_leaves
        fwd_body, _ = dce_jaxpr(Jaxpr([], invars, j.outvars[:num_fwd], j.eqns))
        fun_body, _ = dce_jaxpr(Jaxpr([], invars, j.outvars[num_fwd:], j.eqns))
        num_res = num_fwd - out_tree.num_leaves
        outs = remat_opt_p.bind(*closed.consts, *flat, num_consts=len(closed.consts),
                                num_res=num_res, fwd_jaxpr=ClosedJaxpr(fwd_body, []),
                                fun_jaxpr_thunk=lambda: fun_body)
        return (tree_util.tree_unflatten(out_tree, outs[num_res:]),
                residuals.unflatten(outs[:num_res]))
    return wrapped


def _remat_opt_run(fwd_jaxpr: ClosedJaxpr) -> Callable:
    return lambda *args: eval_jaxpr(fwd_jaxpr.jaxpr, fwd_jaxpr.consts, *args)


def _remat_opt_jvp(primals, tangents, *, fwd_jaxpr, **_):
    return ad.jvp_flat(_remat_opt_run(fwd_jaxpr), primals, tangents)


def _remat_opt_batch(vals, dims, *, fwd_jaxpr, **_):
    axis = batching.rule_axis_data(batching.batch_size(vals, dims))
    outs = batching.vmap_flat(_remat_opt_run(fwd_jaxpr), axis, vals, dims,
                              [0] * len(fwd_jaxpr.out_avals))
    return outs, [0] * len(outs)


def _remat_opt_dce(eqn, used_outputs):
    """Unused residuals: the function's own jaxpr replaces fwd's; else fwd's, pruned."""
    params = eqn.params
    num_res, num_consts = params["num_res"], params["num_consts"]
    if any(used_outputs[:num_res]):  # fwd runs; its inputs stay (fun may need them later)
        body, _ = dce_jaxpr(params["fwd_jaxpr"].jaxpr, used_outputs)
        return [True] * len(eqn.invars), eqn.replace(
            outvars=[v for v, u in zip(eqn.outvars, used_outputs) if u],
            params=dict(params, fwd_jaxpr=ClosedJaxpr(body, []),
                        num_res=sum(used_outputs[:num_res])))
    fun_body = params["fun_jaxpr_thunk"]()
    if not any(used_outputs) and not has_effects(fun_body):
        return [False] * len(eqn.invars), None
    body, used_inputs = dce_jaxpr(fun_body, used_outputs[num_res:], prune_invars=True)
    return used_inputs, eqn.replace(
        invars=[v for v, u in zip(eqn.invars, used_inputs) if u],
        outvars=[v for v, u in zip(eqn.outvars, used_outputs) if u],
        params=dict(params, fwd_jaxpr=ClosedJaxpr(body, []), num_res=0,
                    num_consts=sum(used_inputs[:num_consts]), fun_jaxpr_thunk=lambda: body))


remat_opt_p.def_impl(lambda *args, fwd_jaxpr, **_: _remat_opt_run(fwd_jaxpr)(*args))
remat_opt_p.def_abstract_eval(lambda *avals, fwd_jaxpr, **_: list(fwd_jaxpr.out_avals))
register_inlined_call(remat_opt_p, lambda eqn, operands: (eqn.params["fwd_jaxpr"].jaxpr,
                                                          operands))
ad.primitive_jvps[remat_opt_p] = _remat_opt_jvp
batching.primitive_batchers[remat_opt_p] = _remat_opt_batch
dce_rules[remat_opt_p] = _remat_opt_dce
