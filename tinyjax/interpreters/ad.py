"""Forward-mode differentiation (jvp) and transposition of linear programs.

Reverse mode is built as JAX builds it (see :mod:`tinyjax.api`):
jvp, then partial evaluation splits the linear tangent program from the primal
one, then :func:`backward_pass` transposes the linear program.

Rules are registered by the primitives' own modules in ``tinyjax.lax``:

* ``primitive_jvps[prim](primals, tangents, **params) -> (primal_out, tangent_out)``,
  where a tangent may be a symbolic :class:`Zero`;
* ``primitive_transposes[prim](cotangent, *args, **params) -> cotangents``, where the
  linear arguments are :class:`UndefinedPrimal` and the result has one entry per
  argument (``None`` for the non-linear ones, or a :class:`Zero`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import wrap_eager
from tinyjax.core import (Primitive, ShapedArray, Trace, Tracer, check_foreign_tracer,
                          get_aval, set_current_trace)
from tinyjax.interpreters import lax_ops
from tinyjax.jaxpr import Jaxpr, Literal, Var

primitive_jvps: dict[Primitive, Callable] = {}
primitive_transposes: dict[Primitive, Callable] = {}


# ---------------------------------------------------------------------------
# Symbolic zeros and tangent types
# ---------------------------------------------------------------------------


tangent_dtype = dtypes.tangent_dtype


def tangent_aval(aval: ShapedArray) -> ShapedArray:
    return ShapedArray(aval.shape, tangent_dtype(aval.dtype), aval.weak_type,
                       spec=aval.spec, mesh=aval.mesh)  # laid out as the primal


class Zero:
    """A symbolic zero tangent or cotangent: never materialised unless needed."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    @staticmethod
    def from_primal(x: Any) -> "Zero":
        return Zero(tangent_aval(get_aval(x)))

    def __repr__(self) -> str:
        return f"Zero({self.aval.str_short()})"


def zeros_like_aval(aval: ShapedArray) -> Any:
    if aval.dtype == dtypes.float0:
        return np.zeros(aval.shape, dtypes.float0)
    if aval.weak_type:  # a weakly typed zero (the tangent of a weak primal), as JAX's
        zero = wrap_eager(np.zeros((), aval.dtype), True)
        return zero if not aval.shape else lax_ops.broadcast_in_dim(zero, aval.shape, ())
    return lax_ops.full(aval.shape, 0, aval.dtype)


def instantiate_zeros(t: Any) -> Any:
    return zeros_like_aval(t.aval) if type(t) is Zero else t


def add_tangents(x: Any, y: Any) -> Any:
    """Sum of two (co)tangents, either of which may be a symbolic Zero."""
    if type(x) is Zero:
        return y
    if type(y) is Zero:
        return x
    if get_aval(x).dtype == dtypes.float0:
        return x
    return lax_ops.add(x, y)


def is_float0(x: Any) -> bool:
    return getattr(x, "dtype", None) == dtypes.float0


class SymbolicZero:
    """A zero (co)tangent of type ``aval``, as user rules see it: what a ``custom_jvp`` or
    ``custom_vjp`` rule defined with ``symbolic_zeros=True`` is given for an input that is
    not differentiated (or an output whose cotangent is zero), and may return for one.
    (:class:`Zero` is the interpreters' own form; the two convert at the rule's boundary.)
    """

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))
    size = property(lambda self: self.aval.size)
    weak_type = property(lambda self: self.aval.weak_type)

    def __repr__(self) -> str:
        return f"SymbolicZero({self.aval.str_short()})"

    def instantiate(self) -> Any:
        """The zeros it stands for, as an array."""
        return zeros_like_aval(self.aval)

    @staticmethod
    def from_primal_value(val: Any) -> "SymbolicZero":
        return SymbolicZero(tangent_aval(get_aval(val)))


def zeros_for_rule(ts: Sequence[Any], symbolic_zeros: bool) -> list[Any]:
    """(Co)tangents as a user rule receives them: each :class:`Zero` a
    :class:`SymbolicZero` if the rule asked for symbolic zeros, else an array of zeros."""
    if symbolic_zeros:
        return [SymbolicZero(t.aval) if type(t) is Zero else t for t in ts]
    return [instantiate_zeros(t) for t in ts]


def zeros_from_rule(ts: Sequence[Any]) -> list[Any]:
    """A user rule's (co)tangents with each :class:`SymbolicZero` it returned a
    :class:`Zero`."""
    return [Zero(t.aval) if type(t) is SymbolicZero else t for t in ts]


# ---------------------------------------------------------------------------
# The JVP interpreter
# ---------------------------------------------------------------------------


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace: "JVPTrace", primal: Any, tangent: Any):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self) -> ShapedArray:
        return get_aval(self.primal)

    def to_concrete_value(self):
        p = self.primal
        return p.to_concrete_value() if hasattr(p, "to_concrete_value") else p

    def _origin(self) -> str:
        p = self.primal
        return p._origin() if isinstance(p, Tracer) else "a jvp tracer"

    def __repr__(self) -> str:
        t = self.tangent
        if isinstance(t, Tracer) and not isinstance(t, JVPTracer):  # reverse mode (grad)
            return f"GradTracer(primal={self.primal}, typeof(tangent)={t.aval.str_short()})"
        return f"JVPTracer(primal={self.primal}, tangent={t})"


class JVPTrace(Trace):
    def __init__(self, parent: Trace):
        self.parent = parent

    def to_primal_tangent(self, x: Any) -> tuple[Any, Any]:
        if isinstance(x, JVPTracer) and x._trace is self:
            return x.primal, x.tangent
        check_foreign_tracer(x)
        return x, Zero.from_primal(x)

    def wrap(self, primal: Any, tangent: Any) -> Any:
        return primal if type(tangent) is Zero else JVPTracer(self, primal, tangent)

    def process_primitive(self, primitive, args, params):
        primals, tangents = zip(*map(self.to_primal_tangent, args)) if args else ((), ())
        if all(type(t) is Zero for t in tangents):
            with set_current_trace(self.parent):
                return primitive.bind(*primals, **params)
        rule = primitive_jvps.get(primitive)
        if rule is None:
            raise NotImplementedError(
                f"Differentiation rule for '{primitive.name}' not implemented")
        with set_current_trace(self.parent):
            primal_out, tangent_out = rule(list(primals), list(tangents), **params)
        if primitive.multiple_results:
            return [self.wrap(p, t) for p, t in zip(primal_out, tangent_out)]
        return self.wrap(primal_out, tangent_out)

    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros,
                                num_consts=0):
        primals, tangents = zip(*map(self.to_primal_tangent, args)) if args else ((), ())
        if all(type(t) is Zero for t in tangents):
            return self.parent.process_custom_jvp_call(primitive, fun, jvp, primals,
                                                       symbolic_zeros=symbolic_zeros,
                                                       num_consts=num_consts)
        _check_closure_not_differentiated(tangents[:num_consts], "custom_jvp", "JVP")
        with set_current_trace(self.parent):
            outs = jvp(*primals, *zeros_for_rule(tangents, symbolic_zeros))
        n = len(outs) // 2
        return [self.wrap(p, t) for p, t in zip(outs[:n], zeros_from_rule(outs[n:]))]

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros, num_consts=0):
        primals, tangents = zip(*map(self.to_primal_tangent, args)) if args else ((), ())
        if all(type(t) is Zero for t in tangents):
            return self.parent.process_custom_vjp_call(primitive, fun, fwd, bwd, primals,
                                                       out_trees=out_trees,
                                                       symbolic_zeros=symbolic_zeros,
                                                       num_consts=num_consts)
        _check_closure_not_differentiated(tangents[:num_consts], "custom_vjp", "VJP")
        perturbed = tuple(type(t) is not Zero for t in tangents)
        with set_current_trace(self.parent):
            res, primals_out = fwd(perturbed, *primals)  # (called first, as JAX does)
            if any(type(t) is not Zero and not isinstance(t, Tracer) for t in tangents):
                # forward mode with concrete tangents; under reverse mode they are traced
                raise TypeError("can't apply forward-mode autodiff (jvp) to a custom_vjp "
                                "function.")
            tangents_out = custom_lin(res, tangents, bwd=bwd, out_avals=[
                tangent_aval(get_aval(p)) for p in primals_out], symbolic_zeros=symbolic_zeros)
        return [self.wrap(p, t) for p, t in zip(primals_out, tangents_out)]


def _check_closure_not_differentiated(const_tangents: Sequence[Any], kind: str,
                                      rule: str) -> None:
    if any(type(t) is not Zero for t in const_tangents):
        raise TypeError(
            f"Detected differentiation of a {kind} function with respect to a closed-over "
            f"value. That isn't supported because the custom {rule} rule only specifies how "
            f"to differentiate the {kind} function with respect to explicit input "
            "parameters. Pass the value as an argument instead (or use "
            "jax.closure_convert).")


def jvp_flat(fun: Callable[..., Sequence[Any]], primals: Sequence[Any],
             tangents: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """Push ``tangents`` forward through the flat function ``fun`` at ``primals``."""
    from tinyjax.core import current_trace, new_trace
    trace = JVPTrace(current_trace())
    with new_trace(trace):
        outs = fun(*[trace.wrap(p, t) for p, t in zip(primals, tangents)])
        pairs = [trace.to_primal_tangent(o) for o in outs]
    return [p for p, _ in pairs], [t for _, t in pairs]


# ---------------------------------------------------------------------------
# Rule helpers used by tinyjax.lax
# ---------------------------------------------------------------------------


def defjvp(primitive: Primitive, *jvp_fns: Callable | None) -> None:
    """Define a jvp rule as a sum of per-argument contributions.

    ``jvp_fns[i](tangent_i, *primals, **params)`` gives the output tangent's part
    due to argument ``i`` (``None``: that argument has no derivative).
    """
    def rule(primals, tangents, **params):
        out = primitive.bind(*primals, **params)
        total: Any = Zero(tangent_aval(get_aval(out)))
        for fn, t in zip(jvp_fns, tangents):
            if fn is not None and type(t) is not Zero:
                total = add_tangents(total, _to_shape(fn(t, *primals, **params), out))
        return out, total
    primitive_jvps[primitive] = rule


def defjvp2(primitive: Primitive, *jvp_fns: Callable | None) -> None:
    """Like :func:`defjvp`, with the primal output passed first: ``fn(t, ans, *primals)``."""
    def rule(primals, tangents, **params):
        out = primitive.bind(*primals, **params)
        total: Any = Zero(tangent_aval(get_aval(out)))
        for fn, t in zip(jvp_fns, tangents):
            if fn is not None and type(t) is not Zero:
                total = add_tangents(total, _to_shape(fn(t, out, *primals, **params), out))
        return out, total
    primitive_jvps[primitive] = rule


def _to_shape(t: Any, out: Any) -> Any:
    """Broadcast a scalar tangent contribution to the output's shape."""
    if type(t) is Zero:
        return t
    shape = get_aval(out).shape
    if get_aval(t).shape == shape:
        return t
    return lax_ops.broadcast_in_dim(t, shape, ())


def defjvp_zero(primitive: Primitive) -> None:
    """Outputs do not depend differentiably on the inputs (integer, bool, rounding ops)."""
    def rule(primals, tangents, **params):
        out = primitive.bind(*primals, **params)
        if primitive.multiple_results:
            return out, [Zero.from_primal(o) for o in out]
        return out, Zero.from_primal(out)
    primitive_jvps[primitive] = rule


def defbilinear(primitive: Primitive) -> None:
    """A primitive linear in each of its two operands (dot, conv): d(a*b) = da*b + a*db."""
    def rule(primals, tangents, **params):
        lhs, rhs = primals
        tl, tr = tangents
        out = primitive.bind(lhs, rhs, **params)
        t: Any = Zero.from_primal(out)
        if type(tl) is not Zero:
            t = add_tangents(t, primitive.bind(tl, rhs, **params))
        if type(tr) is not Zero:
            t = add_tangents(t, primitive.bind(lhs, tr, **params))
        return out, t
    primitive_jvps[primitive] = rule


def deflinear(primitive: Primitive, transpose_rule: Callable) -> None:
    """A primitive linear in all its arguments: its jvp applies it to the tangents."""
    def rule(primals, tangents, **params):
        out = primitive.bind(*primals, **params)
        if all(type(t) is Zero for t in tangents):
            zero = [Zero.from_primal(o) for o in out] if primitive.multiple_results \
                else Zero.from_primal(out)
            return out, zero
        return out, primitive.bind(*map(instantiate_zeros, tangents), **params)
    primitive_jvps[primitive] = rule
    primitive_transposes[primitive] = transpose_rule


# ---------------------------------------------------------------------------
# Transposition
# ---------------------------------------------------------------------------


class UndefinedPrimal:
    """Marks a linear input of a program being transposed."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined_primal(x: Any) -> bool:
    return type(x) is UndefinedPrimal


def backward_pass(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any],
                  cotangents_out: Sequence[Any]) -> list[Any]:
    """Transpose the linear ``jaxpr``: the inputs given as :class:`UndefinedPrimal` are
    the linear ones.  Returns one cotangent per input (Zero where none flows)."""
    primal_env: dict[Var, Any] = {}
    linear: set[Var] = set()

    def read_primal(a):
        if type(a) is Literal:  # an array, with its type, as other primals are
            return a.val if isinstance(a.val, Tracer) or hasattr(a.val, "aval") else \
                wrap_eager(np.asarray(a.val, a.aval.dtype), a.aval.weak_type)
        return UndefinedPrimal(a.aval) if a in linear else primal_env[a]

    primal_env.update(zip(jaxpr.constvars, consts))
    for v, x in zip(jaxpr.invars, args):
        if is_undefined_primal(x):
            linear.add(v)
        else:
            primal_env[v] = x

    linear_eqns = []
    for eqn in jaxpr.eqns:
        if any(type(a) is Var and a in linear for a in eqn.invars):
            linear.update(eqn.outvars)
            linear_eqns.append(eqn)
        else:  # a non-linear equation (only residuals in): evaluate it forward
            out = eqn.primitive.bind(*map(read_primal, eqn.invars), **eqn.params)
            outs = out if eqn.primitive.multiple_results else [out]
            primal_env.update(zip(eqn.outvars, outs))

    ct_env: dict[Var, Any] = {}

    def write_ct(v, ct):
        if type(v) is Var and v in linear and ct is not None:
            ct_env[v] = add_tangents(ct_env[v], ct) if v in ct_env else ct

    for v, ct in zip(jaxpr.outvars, cotangents_out):
        write_ct(v, ct)
    for eqn in reversed(linear_eqns):
        cts_out = [ct_env.pop(v, Zero(tangent_aval(v.aval))) for v in eqn.outvars]
        if all(type(ct) is Zero for ct in cts_out):
            continue
        rule = primitive_transposes.get(eqn.primitive)
        if rule is None:
            raise NotImplementedError(
                f"Transpose rule (for reverse-mode differentiation) for "
                f"'{eqn.primitive.name}' not implemented")
        ct = cts_out if eqn.primitive.multiple_results else cts_out[0]
        cts_in = rule(ct, *map(read_primal, eqn.invars), **eqn.params)
        for v, ct_in in zip(eqn.invars, cts_in):
            write_ct(v, ct_in)
    return [ct_env.pop(v, Zero(tangent_aval(v.aval))) if v in linear else None
            for v in jaxpr.invars]


# ---------------------------------------------------------------------------
# custom_lin: the backward rule of a custom_vjp inside a linear program
# ---------------------------------------------------------------------------

custom_lin_p = Primitive("custom_lin", multiple_results=True)


def _custom_lin_impl(*args, num_res, bwd, out_avals, symbolic_zeros):
    raise TypeError("can't apply forward-mode autodiff (jvp) to a custom_vjp function.")


custom_lin_p.def_impl(_custom_lin_impl)
custom_lin_p.def_abstract_eval(lambda *args, num_res, bwd, out_avals, symbolic_zeros:
                               list(out_avals))


def _custom_lin_transpose(cts, *args, num_res, bwd, out_avals, symbolic_zeros):
    grads = bwd(list(args[:num_res]), zeros_for_rule(cts, symbolic_zeros))
    return [None] * num_res + zeros_from_rule(grads)


primitive_transposes[custom_lin_p] = _custom_lin_transpose


def custom_lin(res: Sequence[Any], tangents: Sequence[Any], *, bwd: Callable,
               out_avals: Sequence[ShapedArray], symbolic_zeros: bool) -> list[Any]:
    """Record the linear map whose transpose is ``bwd`` (called by the JVP trace)."""
    tangents = [instantiate_zeros(t) for t in tangents]
    return custom_lin_p.bind(*res, *tangents, num_res=len(res), bwd=bwd,
                             out_avals=tuple(out_avals), symbolic_zeros=symbolic_zeros)
