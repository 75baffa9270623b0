"""The public transforms: jvp, linearize, vjp, grad, value_and_grad, jacfwd, jacrev,
hessian; vmap; make_jaxpr and eval_shape; jit.

Reverse mode is jvp + partial evaluation + transposition: :func:`linearize_flat`
runs the jvp with known primals and unknown tangents, giving the primal outputs
at once and the tangent map as a linear jaxpr; :func:`vjp` transposes that jaxpr.
Under ``jit`` both halves are staged into the one jaxpr being built.

``jit`` traces a function to a jaxpr once per (pytree structure, static arguments,
input avals, device), compiles it (:mod:`tinyjax.dispatch` keeps the compiled call),
and caches it; later calls with the same signature take the fast path: flatten, one
dict lookup, launch, wrap the outputs.  Called inside another transform (grad, vmap,
an outer jit), a jitted function is traced through inline, so the enclosing transform
sees -- and the compiler fuses -- the whole program.
"""
from __future__ import annotations

import inspect
import logging
import sys
import time
import weakref
from contextlib import contextmanager
from functools import partial, update_wrapper, wraps
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from tinyjax import core, dtypes, monitoring, stages, tree_util
from tinyjax.abstract import ShapeDtypeStruct
from tinyjax.api_util import (argnums_partial, argument_origins, broadcast_prefix,
                              check_argnums, dynamic_argnums, flatten_fun,
                              flatten_fun_nokwargs, flatten_fun_with_aux, hashable_static,
                              normalize_argnums, physical_tangents, shaped_abstractify)
from tinyjax.array import ArrayImpl, to_array, wrap_eager
from tinyjax.config import config, debug_level
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.core import Primitive, ShapedArray, current_trace, get_aval, new_trace
from tinyjax.dispatch import (Compiled, CompiledCache, MeshCompiled, computation_device,
                              device_key, invalid_values, leaf_signature, leaf_value,
                              runs_on_mesh)
from tinyjax.dispatch import _tick as _mark_use
from tinyjax.dispatch import clear_caches as _release_compiled
from tinyjax.tree_util import physical
from tinyjax.sharding import (PartitionSpec, Sharding, SingleDeviceSharding, as_sharding,
                              traced_layouts)
from tinyjax.interpreters.ad import (UndefinedPrimal, Zero, backward_pass, instantiate_zeros,
                                     is_float0, jvp_flat, tangent_aval, zeros_like_aval)
from tinyjax.interpreters.batching import AxisData, vmap_flat
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import PartialEvalTrace, custom_partial_eval_rules
from tinyjax.interpreters.staging import StagingTrace, trace_to_closed_jaxpr
from tinyjax.jaxpr import (ClosedJaxpr, Jaxpr, check_jaxpr, cse_jaxpr, dce_closed_jaxpr,
                           dce_jaxpr, dce_rules, eval_jaxpr, has_effects, pp_eqn_rules,
                           pp_shared_names)
from tinyjax.lax import refs as _refs
from tinyjax.lax.control_flow.body_cache import traces as _body_traces
from tinyjax.lax._helpers import as_operand
from tinyjax.vjp_function import VJP


def _is_float(x: Any) -> bool:
    dt = get_aval(x).dtype
    return dtypes.is_float(dt) or dtypes.is_complex(dt)


def _check_tangent(primal: Any, tangent: Any) -> None:
    p_aval, t_aval = get_aval(primal), get_aval(tangent)
    expected = tangent_aval(p_aval).dtype
    if t_aval.dtype != expected:
        raise TypeError(
            "primal and tangent arguments to jax.jvp do not match; dtypes must be equal, "
            "or in case of int/bool primal dtype the tangent dtype must be float0."
            f"Got primal dtype {p_aval.dtype.name} and so expected tangent dtype "
            f"{expected.name}, but got tangent dtype {t_aval.dtype.name} instead.")
    if t_aval.shape != p_aval.shape:
        raise ValueError("jvp called with different primal and tangent shapes;"
                         f"Got primal shape {p_aval.shape} and tangent shape as "
                         f"{t_aval.shape}")


def jvp(fun: Callable, primals: Sequence[Any], tangents: Sequence[Any],
        has_aux: bool = False) -> tuple[Any, ...]:
    """Forward-mode: ``(fun(*primals), d fun(primals) · tangents)``."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("primal and tangent arguments to jax.jvp must be tuples or lists; "
                        f"found {type(primals).__name__} and {type(tangents).__name__}.")
    flat_p, tree_p = physical.tree_flatten(tuple(primals))
    flat_p = [as_operand(p) for p in flat_p]
    flat_t, tree_t = physical_tangents(tuple(tangents), tree_p,
                                        [get_aval(p).shape for p in flat_p])
    if tree_p != tree_t:
        raise TypeError("primal and tangent arguments to jax.jvp must have the same tree "
                        f"structure; primals have tree structure {tree_p} whereas tangents "
                        f"have tree structure {tree_t}.")
    flat_t = [as_operand(t) if not is_float0(t) else t for t in flat_t]
    for p, t in zip(flat_p, flat_t):
        _check_tangent(p, t)
    flat_t = [Zero(tangent_aval(get_aval(p))) if is_float0(t) else t
              for p, t in zip(flat_p, flat_t)]
    flat_fun, trees = flatten_fun_with_aux(fun, tree_p, has_aux)
    out_p, out_t = jvp_flat(flat_fun, flat_p, flat_t)
    out_tree, aux_tree = trees[0]
    n = out_tree.num_leaves
    primal_out = tree_util.tree_unflatten(out_tree, out_p[:n])
    tangent_out = tree_util.tree_unflatten(out_tree, [instantiate_zeros(t) for t in out_t[:n]])
    if has_aux:
        return primal_out, tangent_out, aux_tree.unflatten(out_p[n:])
    return primal_out, tangent_out


# ---------------------------------------------------------------------------
# Linearize and vjp
# ---------------------------------------------------------------------------


class LinearFunction:
    """The linear tangent map of a linearized function, as a jaxpr with residuals."""

    def __init__(self, jaxpr, consts, in_avals, diff_mask):
        self.jaxpr = jaxpr
        self.consts = consts
        self.in_avals = in_avals        # tangent avals of every primal input
        self.diff_mask = diff_mask      # which inputs have (non-float0) tangents

    def apply(self, tangents: Sequence[Any]) -> list[Any]:
        args = [t for t, d in zip(tangents, self.diff_mask) if d]
        return eval_jaxpr(self.jaxpr, self.consts, *args)

    def transpose(self, cotangents: Sequence[Any]) -> list[Any]:
        args = [UndefinedPrimal(v.aval) for v in self.jaxpr.invars]
        cts = backward_pass(self.jaxpr, self.consts, args, cotangents)
        it = iter(cts)
        out = []
        for aval, d in zip(self.in_avals, self.diff_mask):
            ct = next(it) if d else Zero(aval)
            out.append(zeros_like_aval(aval) if type(ct) is Zero else ct)
        return out


def linearize_flat(fun: Callable, primals: Sequence[Any]) -> tuple[list[Any], LinearFunction]:
    """Evaluate ``fun`` at ``primals`` and record its linear tangent map."""
    trace = PartialEvalTrace(current_trace())
    diff_mask = [_is_float(p) for p in primals]
    in_avals = [tangent_aval(get_aval(p)) for p in primals]
    with new_trace(trace):
        unknowns = [trace.new_unknown(a) for a, d in zip(in_avals, diff_mask) if d]
        it = iter(unknowns)
        tangents = [next(it) if d else Zero(a) for a, d in zip(in_avals, diff_mask)]
        primals_out, tangents_out = jvp_flat(fun, primals, tangents)
        tangents_out = [instantiate_zeros(t) for t in tangents_out]
        jaxpr, consts = trace.to_jaxpr(unknowns, tangents_out)
    return primals_out, LinearFunction(jaxpr, consts, in_avals, diff_mask)


def linearize(fun: Callable, *primals: Any) -> tuple[Any, Callable]:
    """``(fun(*primals), f_jvp)`` where ``f_jvp(*tangents)`` is the linear map."""
    flat_p, in_tree = physical.tree_flatten(primals)
    flat_p = [as_operand(p) for p in flat_p]
    flat_fun, out_tree = flatten_fun_nokwargs(fun, in_tree)
    out, lin = linearize_flat(flat_fun, flat_p)
    # a pytree whose leaves are the residuals (as JAX's), so it can cross jit and vmap
    f_jvp = tree_util.Partial(_PushForward(lin, in_tree, out_tree[0]), list(lin.consts))
    return tree_util.tree_unflatten(out_tree[0], out), f_jvp


class _PushForward:
    """The function ``linearize`` returns, less its residuals: ``push(residuals,
    *tangents)`` applies the linear map with the residuals given."""

    def __init__(self, lin: LinearFunction, in_tree, out_tree):
        self.jaxpr, self.in_avals, self.diff_mask = lin.jaxpr, lin.in_avals, lin.diff_mask
        self.in_tree, self.out_tree = in_tree, out_tree

    def __call__(self, residuals: list, *tangents: Any) -> Any:
        flat_t, t_tree = physical_tangents(tangents, self.in_tree,
                                            [a.shape for a in self.in_avals])
        if t_tree != self.in_tree:
            raise TypeError(f"linearized function called on tangent values inconsistent "
                            f"with the original primal values: expected tree "
                            f"{self.in_tree}, got {t_tree}")
        flat_t = [as_operand(t) for t in flat_t]
        for t, want in zip(flat_t, self.in_avals):
            got = get_aval(t)
            if got.shape != want.shape or got.dtype != want.dtype:
                raise ValueError(
                    "linearized function called on tangent values inconsistent with the "
                    f"original primal values:\nGot tangent aval {got} for primal aval "
                    f"{want} but expected {want}.")
        lin = LinearFunction(self.jaxpr, residuals, self.in_avals, self.diff_mask)
        return tree_util.tree_unflatten(self.out_tree, lin.apply(flat_t))

    def __repr__(self) -> str:
        return f"<linearized jvp: {self.in_tree} -> {self.out_tree}>"


class _Pullback:
    """The function ``vjp`` returns, less its residuals: ``pullback(residuals, ct)``
    transposes the linear map with the residuals given."""

    def __init__(self, lin: LinearFunction, out_tree, in_tree, out_avals, aux_zeros):
        self.jaxpr, self.in_avals, self.diff_mask = lin.jaxpr, lin.in_avals, lin.diff_mask
        self.out_tree, self.in_tree = out_tree, in_tree
        self.out_avals, self.aux_zeros = out_avals, aux_zeros

    def __call__(self, residuals: list, cotangent: Any) -> Any:
        flat_ct, ct_tree = physical_tangents(cotangent, self.out_tree,
                                              [a.shape for a in self.out_avals])
        if ct_tree != self.out_tree:
            raise TypeError(
                "Tree structure of cotangent input "
                f"{ct_tree}, does not match structure of primal output {self.out_tree}.")
        cts = []
        for ct, aval in zip(flat_ct, self.out_avals):
            ct = as_operand(ct) if not is_float0(ct) else ct
            ct_aval = get_aval(ct)
            want = tangent_aval(aval)
            if ct_aval.shape != want.shape:
                raise ValueError(f"Shape of cotangent input to vjp pullback function "
                                 f"{ct_aval.shape} must be the same as the shape of "
                                 f"corresponding primal input {want.shape}.")
            if ct_aval.dtype != want.dtype and want.dtype != dtypes.float0:
                raise ValueError(f"Type of cotangent input to vjp pullback function "
                                 f"({ct_aval.dtype.name}) is not the expected tangent type "
                                 f"({want.dtype.name}) of corresponding primal output with "
                                 f"dtype {aval.dtype.name}.")
            cts.append(Zero(want) if want.dtype == dtypes.float0 else ct)
        lin = LinearFunction(self.jaxpr, residuals, self.in_avals, self.diff_mask)
        return tree_util.tree_unflatten(self.in_tree, lin.transpose(cts + self.aux_zeros))

    def __repr__(self) -> str:
        return f"<vjp pullback: {self.out_tree} -> {self.in_tree}>"


def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(fun(*primals), vjp_fun)``; ``vjp_fun(cotangent)`` pulls a cotangent of the
    output back to a tuple of cotangents of the primals.  With ``has_aux`` ``fun``
    returns ``(out, aux)`` and so does ``vjp`` (plus ``aux`` last)."""
    flat_p, in_tree = physical.tree_flatten(primals)
    flat_p = [as_operand(p) for p in flat_p]
    flat_fun, trees = flatten_fun_with_aux(fun, in_tree, has_aux)
    all_out, lin = linearize_flat(flat_fun, flat_p)
    tree, aux_tree = trees[0]
    n = tree.num_leaves
    out, aux_out = all_out[:n], all_out[n:]
    pullback = _Pullback(lin, tree, in_tree, [get_aval(o) for o in out],
                         [Zero(tangent_aval(get_aval(a))) for a in aux_out])
    # a pytree whose leaves are the residuals (as JAX's), so it can cross jit
    vjp_fun = VJP(pullback, list(lin.consts))
    primal_out = tree_util.tree_unflatten(tree, out)
    if has_aux:
        return primal_out, vjp_fun, aux_tree.unflatten(aux_out)
    return primal_out, vjp_fun


@contextmanager
def named_scope(name: str) -> Iterator[None]:
    """Name the operations traced inside the block (nested scopes join with ``/``): the
    names are kept with the equations (``eqn.source_info.name_stack``) for profiles and
    debugging, and do not change what is computed."""
    if not isinstance(name, str):
        raise TypeError("named_scope name argument must be a string.")
    core.name_stack.append(name)
    try:
        yield
    finally:
        core.name_stack.pop()


def named_call(fun: Callable, *, name: str | None = None) -> Callable:
    """``fun`` with its operations traced inside ``named_scope(name)`` (default: the
    function's name)."""
    scope = name if name is not None else getattr(fun, "__name__", "fun")

    @wraps(fun)
    def named(*args: Any, **kwargs: Any) -> Any:
        with named_scope(scope):
            return fun(*args, **kwargs)
    return named


def linear_transpose(fun: Callable, *primals: Any, reduce_axes: Sequence[Any] = ()
                     ) -> Callable:
    """The transpose of the linear function ``fun`` (at arguments of the types of
    ``primals``; their values are not used): ``transpose(cotangent)`` gives the tuple of
    cotangents of the arguments."""
    flat, in_tree = physical.tree_flatten(primals)
    in_avals = [shaped_abstractify(x) for x in flat]
    for aval in in_avals:
        if not (dtypes.is_float(aval.dtype) or dtypes.is_complex(aval.dtype)):
            raise TypeError(f"linear_transpose only supports [float or complex] -> [float or "
                            f"complex], and integer -> integer functions, but got "
                            f"{aval.dtype.name} input.")
    flat_fun, out_tree = flatten_fun_nokwargs(fun, in_tree)
    closed = trace_to_closed_jaxpr(flat_fun, in_avals)
    out_avals = closed.out_avals

    def transposed(cotangent: Any) -> tuple:
        cts, ct_tree = physical.tree_flatten(cotangent)
        cts = [as_operand(c) for c in cts]
        if ct_tree != out_tree[0] or any(
                (get_aval(c).shape, get_aval(c).dtype) != (a.shape, a.dtype)
                for c, a in zip(cts, out_avals)):
            raise TypeError("cotangent type does not match function output, expected "
                            f"{tuple(out_avals)} but got {[get_aval(c) for c in cts]}")
        out = backward_pass(closed.jaxpr, closed.consts,
                            [UndefinedPrimal(a) for a in in_avals], cts)
        return tree_util.tree_unflatten(in_tree, [
            zeros_like_aval(tangent_aval(a)) if type(ct) is Zero else ct
            for ct, a in zip(out, in_avals)])

    return transposed


# ---------------------------------------------------------------------------
# grad and value_and_grad
# ---------------------------------------------------------------------------


def _check_input_dtype(x: Any, allow_int: bool, fname: str, holomorphic: bool = False
                       ) -> None:
    """JAX's input check of the reverse-mode functions (grad, jacrev): ``x`` is a leaf of
    the arguments (a key array is allowed with ``allow_int``, as integers are)."""
    extended = dtypes.is_extended(getattr(x, "dtype", None))
    dt = x.dtype if extended else get_aval(as_operand(x)).dtype
    if holomorphic and (extended or not dtypes.is_complex(dt)):
        raise TypeError(f"{fname} with holomorphic=True requires inputs with complex dtype, "
                        f"but got {dt.name}.")
    if extended:
        if allow_int:
            return
    elif dtypes.is_float(dt) or dtypes.is_complex(dt):
        return
    elif allow_int and (dtypes.is_int(dt) or dt == np.bool_ or dt == dtypes.float0):
        return
    raise TypeError(f"{fname} requires real- or complex-valued inputs (input dtype that is a "
                    f"sub-dtype of np.inexact), but got {dt.name}. If you want to use "
                    "Boolean- or integer-valued inputs, use vjp or set allow_int to True.")


def _check_output_dtype(out: Any, fname: str, holomorphic: bool) -> None:
    """JAX's output check of the reverse-mode functions: real outputs, or complex ones
    with ``holomorphic=True``."""
    dt = get_aval(out).dtype
    if holomorphic:
        if not dtypes.is_complex(dt):
            raise TypeError(f"{fname} with holomorphic=True requires outputs with complex "
                            f"dtype, but got {dt.name}.")
    elif dtypes.is_complex(dt):
        raise TypeError(f"{fname} requires real-valued outputs (output dtype that is a "
                        f"sub-dtype of np.floating), but got {dt.name}. For holomorphic "
                        "differentiation, pass holomorphic=True. For differentiation of "
                        "non-holomorphic functions involving complex outputs, use jax.vjp "
                        "directly.")
    elif not dtypes.is_float(dt):
        raise TypeError(f"{fname} requires real-valued outputs (output dtype that is a "
                        f"sub-dtype of np.floating), but got {dt.name}. For differentiation "
                        "of functions with integer outputs, use jax.vjp directly.")


def _check_scalar_output(out: Any, fname: str, holomorphic: bool = False) -> None:
    aval = get_aval(out)
    if aval.shape != ():
        raise TypeError(f"Gradient only defined for scalar-output functions. Output had "
                        f"shape: {aval.shape}.")
    _check_output_dtype(out, fname, holomorphic)


def _vjp_at_argnums(fun: Callable, argnums, args: tuple, kwargs: dict, has_aux: bool,
                    allow_int: bool, fname: str, dtype_fname: str,
                    holomorphic: bool = False) -> tuple[Any, Callable, Any]:
    """``vjp`` of ``fun`` with respect to its arguments at ``argnums`` (checked, each input
    of an inexact dtype unless ``allow_int``, complex with ``holomorphic``): (output,
    pullback, aux or None)."""
    nums = check_argnums(argnums, len(args), fname)
    f_diff, diff_args = argnums_partial(partial(fun, **kwargs), nums, args)
    # a tree_map, as JAX's check: custom nodes are rebuilt (with None leaves)
    tree_util.tree_map(lambda x: _check_input_dtype(x, allow_int, dtype_fname, holomorphic),
                       diff_args)
    if has_aux:
        return vjp(f_diff, *diff_args, has_aux=True)
    return (*vjp(f_diff, *diff_args), None)


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
                   holomorphic: bool = False, allow_int: bool = False,
                   reduce_axes: Sequence[Any] = ()) -> Callable:
    """A function returning ``(fun(*args), gradient)`` (and ``aux`` with ``has_aux``:
    ``((value, aux), gradient)``).  The gradient is with respect to the arguments at
    ``argnums`` (a tuple of gradients when ``argnums`` is a tuple)."""
    fname = "value_and_grad"

    @wraps(fun)
    def value_and_grad_f(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        out, pullback, aux = _vjp_at_argnums(fun, argnums, args, kwargs, has_aux, allow_int,
                                             fname, "grad", holomorphic)
        _check_scalar_output(out, "grad", holomorphic)
        out_aval = get_aval(out)  # the seed 1 has the output's type, weak type included
        grads = pullback(as_operand(1, out_aval.dtype, weak=out_aval.weak_type))
        g = grads if isinstance(argnums, (tuple, list)) else grads[0]
        if has_aux:
            return (out, aux), g
        return out, g

    return value_and_grad_f


def grad(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         holomorphic: bool = False, allow_int: bool = False,
         reduce_axes: Sequence[Any] = ()) -> Callable:
    """The gradient of a scalar-valued ``fun`` with respect to the arguments at
    ``argnums``.  With ``has_aux`` ``fun`` returns ``(value, aux)`` and the result is
    ``(gradient, aux)``."""
    vg = value_and_grad(fun, argnums, has_aux=has_aux, holomorphic=holomorphic,
                        allow_int=allow_int)

    @wraps(fun)
    def grad_f(*args, **kwargs):
        if has_aux:
            (_, aux), g = vg(*args, **kwargs)
            return g, aux
        return vg(*args, **kwargs)[1]

    return grad_f


# ---------------------------------------------------------------------------
# Jacobians and the Hessian
# ---------------------------------------------------------------------------


def _std_basis(flat_avals) -> tuple[Any, list[int]]:
    """One-hot tangents for every scalar input: a list (per leaf) of arrays of shape
    ``(total, *leaf.shape)``."""
    sizes = [int(np.prod(a.shape, dtype=np.int64)) for a in flat_avals]
    total = sum(sizes)
    eye = np.eye(total, dtype=np.float64)
    out, start = [], 0
    for aval, size in zip(flat_avals, sizes):
        block = eye[:, start:start + size].reshape((total,) + aval.shape)
        out.append(to_array(block.astype(aval.dtype)))
        start += size
    return out, sizes


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian by forward mode: one jvp per input element, vectorised by vmap."""

    def jacfun(*args, **kwargs):
        nums = check_argnums(argnums, len(args), "jacfwd")
        f_diff, diff_args = argnums_partial(partial(fun, **kwargs), nums, args)
        flat_in, in_tree = physical.tree_flatten(diff_args)
        flat_in = [as_operand(x) for x in flat_in]
        for x in flat_in:
            _check_jacfwd_input(x, holomorphic)
        in_avals = [get_aval(x) for x in flat_in]

        def f_flat(*flat):
            return f_diff(*tree_util.tree_unflatten(in_tree, flat))

        basis, sizes = _std_basis(in_avals)

        def push(*tangent):
            return jvp(f_flat, flat_in, list(tangent), has_aux=has_aux)

        outs = vmap(push, in_axes=0, out_axes=(None, -1, None) if has_aux else (None, -1))(
            *basis)
        if holomorphic:
            for y in physical.tree_leaves(outs[0]):
                if not dtypes.is_complex(get_aval(y).dtype):
                    raise TypeError("jacfwd with holomorphic=True requires outputs with "
                                    f"complex dtype, but got {get_aval(y).dtype.name}.")
        jac = outs[1]
        jac = physical.tree_map(lambda j: _unravel_last(j, in_avals, sizes, in_tree,
                                                         isinstance(argnums, (tuple, list))),
                                 jac)
        return (jac, outs[2]) if has_aux else jac
    return jacfun


def _check_jacfwd_input(x: Any, holomorphic: bool) -> None:
    dt = get_aval(x).dtype
    if holomorphic:
        if not dtypes.is_complex(dt):
            raise TypeError("jacfwd with holomorphic=True requires inputs with complex "
                            f"dtype, but got {dt.name}.")
    elif not dtypes.is_float(dt):
        raise TypeError("jacfwd requires real-valued inputs (input dtype that is a sub-dtype "
                        f"of np.floating), but got {dt.name}. For holomorphic "
                        "differentiation, pass holomorphic=True. For differentiation of "
                        "non-holomorphic functions involving complex inputs or integer "
                        "inputs, use jax.jvp directly.")


def _unravel_last(j, in_avals, sizes, in_tree, many: bool):
    """Split the last axis (all input elements) into the inputs' pytree of shapes."""
    from tinyjax import lax
    out_shape = get_aval(j).shape[:-1]
    parts, start = [], 0
    for aval, size in zip(in_avals, sizes):
        piece = lax.slice_in_dim(j, start, start + size, axis=get_aval(j).ndim - 1)
        parts.append(lax.reshape(piece, out_shape + aval.shape))
        start += size
    tree = tree_util.tree_unflatten(in_tree, parts)
    return tree if many else tree[0]


def jacrev(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False, allow_int: bool = False) -> Callable:
    """The Jacobian by reverse mode: one vjp per output element, vectorised by vmap."""

    def jacfun(*args, **kwargs):
        y, pullback, aux = _vjp_at_argnums(fun, argnums, args, kwargs, has_aux, allow_int,
                                           "jacrev", "jacrev", holomorphic)
        flat_y, y_tree = physical.tree_flatten(y)
        for v in flat_y:
            _check_output_dtype(v, "jacrev", holomorphic)
        y_avals = [get_aval(v) for v in flat_y]
        basis, sizes = _std_basis(y_avals)
        cts = vmap(lambda *b: pullback(tree_util.tree_unflatten(y_tree, list(b))))(*basis)
        # cts: tuple over diff args of pytrees, each leaf (total_out, *in_shape)
        from tinyjax import lax

        def split_out(leaf):
            in_shape = get_aval(leaf).shape[1:]
            parts, start = [], 0
            for aval, size in zip(y_avals, sizes):
                piece = lax.slice_in_dim(leaf, start, start + size, axis=0)
                parts.append(lax.reshape(piece, aval.shape + in_shape))
                start += size
            return parts

        many = isinstance(argnums, (tuple, list))
        per_input = cts if many else cts[0]
        flat_ct, ct_tree = physical.tree_flatten(per_input)
        split = [split_out(leaf) for leaf in flat_ct]   # [in_leaf][out_leaf]
        by_out = [tree_util.tree_unflatten(ct_tree, [split[i][k] for i in range(len(split))])
                  for k in range(len(y_avals))]
        jac = tree_util.tree_unflatten(y_tree, by_out)
        return (jac, aux) if has_aux else jac
    return jacfun


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian: ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux, holomorphic=holomorphic), argnums,
                  has_aux=has_aux, holomorphic=holomorphic)


# ---------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------


def _check_axis_spec(spec: Any, name: str) -> None:
    for leaf in tree_util.tree_leaves(spec, is_leaf=lambda x: x is None):
        if leaf is not None and not isinstance(leaf, int):
            raise TypeError(f"vmap {name} must be an int, None, or (nested) container with "
                            f"those types as leaves, but got {spec}.")


def _public_ranks(public_leaves: Sequence[Any], physical_leaves: Sequence[Any]
                  ) -> list[Optional[int]]:
    """Per physical leaf, the rank of the key array whose data it is (a key array maps
    over its own axes, not its data's trailing one), None for other leaves."""
    return [None if p is a else p.ndim for p, a in zip(public_leaves, physical_leaves)]


def _out_axis(axis: int, ndim: int) -> int:
    """``out_axes`` entry ``axis`` of an output of rank ``ndim`` (batch axis included)."""
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: int | None = None, spmd_axis_name: Any = None) -> Callable:
    """Vectorise ``fun`` over the axes ``in_axes`` of its positional arguments; the
    mapped axis of each output is placed at ``out_axes``.  ``axis_name`` names the
    axis for collectives (``lax.psum`` …)."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if not (in_axes is None or isinstance(in_axes, (int, tuple, dict))) and \
            not tree_util.all_leaves([in_axes]):
        raise TypeError("vmap in_axes must be an int, None, or a tuple of entries "
                        "corresponding to the positional arguments passed to the function, "
                        f"but got in_axes={in_axes}.")
    _check_axis_spec(in_axes, "in_axes")
    _check_axis_spec(out_axes, "out_axes")

    @wraps(fun)
    def vmap_f(*args, **kwargs):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError("vmap in_axes must be an int, None, or a tuple of entries "
                             "corresponding to the positional arguments passed to the "
                             f"function, but got len(in_axes)={len(in_axes)}, "
                             f"len(args)={len(args)}")
        axes_per_arg = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        flat_axes = broadcast_prefix(axes_per_arg, args, "vmap in_axes")
        # arguments given by keyword are mapped over their leading axis (as JAX's)
        flat_args, in_tree = physical.tree_flatten((args, kwargs))
        flat_axes += [0] * (len(flat_args) - len(flat_axes))
        ranks = _public_ranks(tree_util.tree_leaves((args, kwargs)), flat_args)
        # mutable array references mapped over: their values go in, a reference per
        # element stands for each inside, and the final values are written back
        refs = [(i, a) for i, (a, ax) in enumerate(zip(flat_args, flat_axes))
                if ax is not None and isinstance(a, _refs.Ref)]
        flat_args = [(a._read() if isinstance(a, _refs.Ref) else as_operand(a))
                     if ax is not None else a for a, ax in zip(flat_args, flat_axes)]
        dims, sizes = [], []
        for i, (a, ax) in enumerate(zip(flat_args, flat_axes)):
            if ax is None:
                dims.append(None)
                continue
            aval = get_aval(a)
            ndim = aval.ndim if ranks[i] is None else ranks[i]
            if not -ndim <= ax < ndim:
                raise ValueError(f"vmap was requested to map its argument along axis {ax}, "
                                 f"which implies that its rank should be at least "
                                 f"{(ax + 1) if ax >= 0 else -ax}, but is only {ndim} "
                                 f"(its shape is {aval.shape[:ndim]})")
            d = ax % ndim
            dims.append(d)
            sizes.append((aval.shape[d], d, i, aval))
        size_set = {s for s, *_ in sizes}
        if axis_size is not None:
            size_set.add(axis_size)
        if not size_set:
            raise ValueError("vmap must have at least one non-None value in in_axes")
        if len(size_set) > 1:
            lines = [f"  * one axis had size {s}: axis {d} of argument {i} of type "
                     f"{aval.str_short()}" for s, d, i, aval in sizes]
            if axis_size is not None:
                lines.append(f"  * axis_size={axis_size} was given")
            raise ValueError("vmap got inconsistent sizes for array axes to be mapped:\n"
                             + ";\n".join(lines))
        size = size_set.pop()
        flat_fun, out_tree = flatten_fun(fun, in_tree)
        out_leaves: list[Any] = []

        def recorded_fun(*flat):
            if not refs:
                out_leaves[:] = flat_fun(*flat)
                return out_leaves
            flat = list(flat)
            holders = []
            for i, r in refs:
                flat[i] = _refs.placeholder(flat[i], r)
                holders.append(flat[i])
            out_leaves[:] = flat_fun(*flat)
            return list(out_leaves) + [h._read() for h in holders]

        # out_axes depend on the output tree, known only after tracing: resolve lazily.
        class LazyOutDims:
            def __iter__(self):
                out = tree_util.tree_unflatten(out_tree[0], out_leaves)
                flat_out_axes = broadcast_prefix(out_axes, out, "vmap out_axes")
                out_ranks = _public_ranks(tree_util.tree_leaves(out), out_leaves)
                return iter([None if d is None else
                             _out_axis(d, (get_aval(o).ndim if r is None else r) + 1)
                             for d, o, r in zip(flat_out_axes, out_leaves, out_ranks)] +
                            [dims[i] for i, _ in refs])

        try:
            flat_out = vmap_flat(recorded_fun, AxisData(axis_name, size, spmd_axis_name),
                                 flat_args, dims, LazyOutDims())
        except batching.SpecMatchError as e:  # (JAX's message: the output's path)
            out = tree_util.tree_unflatten(out_tree[0], out_leaves)
            path, _ = tree_util.tree_flatten_with_path(out)[0][e.leaf_idx]
            raise ValueError(f"at vmap out_axes{tree_util.keystr(path)}, got axis spec "
                             f"{e.dst} but output was batched on axis {e.src}") from None
        if refs:
            n = len(flat_out) - len(refs)
            for (_, r), v in zip(refs, flat_out[n:]):
                r._write(v)
            flat_out = flat_out[:n]
        return tree_util.tree_unflatten(out_tree[0], flat_out)

    return vmap_f


# ---------------------------------------------------------------------------
# Staging: make_jaxpr, eval_shape
# ---------------------------------------------------------------------------


def _shape_struct(aval: ShapedArray) -> ShapeDtypeStruct:
    """The ShapeDtypeStruct of a result of type ``aval``: with its sharding where the
    type gives its layout (explicit mesh axes), as JAX's."""
    return ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type,
                            sharding=aval.sharding if aval.has_explicit_layout else None)


def make_jaxpr(fun: Callable, static_argnums: int | Sequence[int] = (),
               axis_env: Sequence[tuple[Any, int]] | None = None,
               return_shape: bool = False) -> Callable[..., Any]:
    """Return a function that traces ``fun`` and gives its ClosedJaxpr (JAX's format
    when printed).  ``axis_env`` names axes ``(name, size)`` that collectives in ``fun``
    may use (they are staged as equations).  With ``return_shape`` it also returns the
    output's :class:`ShapeDtypeStruct` pytree."""

    def make_jaxpr_f(*args, **kwargs):
        f, dyn_args = argnums_partial(fun, dynamic_argnums(static_argnums, len(args)), args)
        flat_args, in_tree = physical.tree_flatten((dyn_args, kwargs))
        flat_fun, out_tree = flatten_fun(f, in_tree)
        origins = argument_origins(fun, args, kwargs)
        with batching.extend_axis_env(axis_env or ()):
            closed = trace_to_closed_jaxpr(flat_fun,
                                           [shaped_abstractify(x) for x in flat_args], origins)
        if return_shape:
            shapes = [_shape_struct(a) for a in closed.out_avals]
            return closed, tree_util.tree_unflatten(out_tree[0], shapes)
        return closed

    make_jaxpr_f.__name__ = f"make_jaxpr({getattr(fun, '__name__', 'fun')})"
    return make_jaxpr_f


def eval_shape(fun: Callable, *args: Any, **kwargs: Any) -> Any:
    """The output shapes and dtypes of ``fun(*args, **kwargs)`` without computing it."""
    flat_args, in_tree = physical.tree_flatten((args, kwargs))
    flat_fun, out_tree = flatten_fun(fun, in_tree)
    closed = trace_to_closed_jaxpr(flat_fun, [shaped_abstractify(x) for x in flat_args])
    shapes = [_shape_struct(a) for a in closed.out_avals]
    return tree_util.tree_unflatten(out_tree[0], shapes)


# ---------------------------------------------------------------------------
# jit
# ---------------------------------------------------------------------------


_state = core._state
_eval_trace = core.eval_trace
_new_array = object.__new__


_log = logging.getLogger("tinyjax")
# Compiled calls of every jitted function, shared by the wrappers of one function with
# the same options (``jit(f)`` twice reuses the first trace, as JAX's cache does):
# fun -> {options: (compiled cache, fast-path runners)}.
_shared: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_wrappers: "weakref.WeakSet[PjitFunction]" = weakref.WeakSet()


def _shared_cache(fun: Callable, options: tuple) -> CompiledCache:
    """The compiled calls of ``fun`` jitted with ``options``, shared by its wrappers."""
    try:
        per_fun = _shared.setdefault(fun, {})
    except TypeError:  # not weakly referenceable: this wrapper's own cache
        return CompiledCache()
    cache = per_fun.get(options)
    if cache is None:
        cache = per_fun[options] = CompiledCache()
    return cache


def _signature_argnums(fun: Callable, argnums: Any, argnames: Any,
                       what: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Complete ``argnums`` and ``argnames`` (as given: None, one or several) from each
    other through ``fun``'s signature (a static argument may be passed by position or by
    name), checking both.  Where both are given they are taken as they are, as JAX's (a
    wrapper's signature may not be its arguments')."""
    complete = argnums is None or argnames is None
    argnums, argnames = normalize_argnums(argnums), _names(argnames)
    try:
        params = list(inspect.signature(fun).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: as given
        return argnums, argnames
    kinds = inspect.Parameter
    positional = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY,
                                                   kinds.POSITIONAL_OR_KEYWORD)]
    if not any(p.kind == kinds.VAR_POSITIONAL for p in params):
        for i in argnums:
            if not -len(positional) <= i < len(positional):
                raise ValueError(f"Jitted function has {what}_argnums={argnums}, but only "
                                 f"accepts {len(positional)} positional arguments.")
        argnums = tuple(i % len(positional) for i in argnums)
    if not any(p.kind == kinds.VAR_KEYWORD for p in params):
        named = {p.name for p in params if p.kind in (kinds.POSITIONAL_OR_KEYWORD,
                                                      kinds.KEYWORD_ONLY)}
        bad = set(argnames) - named
        if bad:
            raise ValueError(f"Jitted function has invalid argnames {bad} in {what}_argnames. "
                             "Function does not take these args.")
    if not complete:
        return argnums, argnames
    by_name = {p.name: i for i, p in enumerate(positional)
               if p.kind == kinds.POSITIONAL_OR_KEYWORD}
    nums = set(argnums) | {by_name[n] for n in argnames if n in by_name}
    names = list(argnames) + [p.name for i, p in enumerate(positional)
                              if i in nums and p.kind == kinds.POSITIONAL_OR_KEYWORD
                              and p.name not in argnames]
    return tuple(sorted(nums)), tuple(names)


# ---------------------------------------------------------------------------
# The jit equation: a jitted function called while another function is being staged
# (jit inside jit, make_jaxpr, a loop body) is one ``jit`` equation holding its jaxpr,
# as in JAX.  Every other interpreter evaluates the body in place (jvp, partial
# evaluation) or re-binds the equation over a transformed body (vmap); the compiler
# lowers the body in place.
# ---------------------------------------------------------------------------

jit_p = Primitive("jit", multiple_results=True)
# (operands written as Python-scalar literals become the weak arrays the body was traced with)
jit_p.def_impl(lambda *args, jaxpr, name: eval_jaxpr(jaxpr, [], *map(as_operand, args)))
jit_p.def_abstract_eval(lambda *avals, jaxpr, name: [v.aval for v in jaxpr.outvars])
register_inlined_call(jit_p)  # (its body, the param jaxpr, on all the operands)


def _jit_jvp(primals, tangents, *, jaxpr, name):
    return jvp_flat(lambda *a: eval_jaxpr(jaxpr, [], *a), primals, tangents)


def _jit_partial_eval(trace, args, params):
    with core.set_current_trace(trace):
        return eval_jaxpr(params["jaxpr"], [], *args)


def _jit_batch(vals, dims, *, jaxpr, name):
    axis = batching.rule_axis_data(batching.batch_size(vals, dims))
    m = len(jaxpr.outvars)
    closed = trace_to_closed_jaxpr(
        lambda *a: batching.vmap_flat(lambda *b: eval_jaxpr(jaxpr, [], *b), axis, a, dims,
                                      [0] * m), [get_aval(v) for v in vals])
    body = closed.jaxpr
    body = Jaxpr([], body.constvars + body.invars, body.outvars, body.eqns)
    return jit_p.bind(*closed.consts, *vals, jaxpr=body, name=name), [0] * m


def _jit_dce(eqn, used_outputs):
    if not any(used_outputs) and not has_effects(eqn.params["jaxpr"]):
        return [False] * len(eqn.invars), None
    new, used_inputs = dce_jaxpr(eqn.params["jaxpr"], used_outputs, prune_invars=True)
    return used_inputs, eqn.replace(
        invars=[v for v, u in zip(eqn.invars, used_inputs) if u],
        outvars=[v for v, u in zip(eqn.outvars, used_outputs) if u],
        params=dict(eqn.params, jaxpr=new))


ad.primitive_jvps[jit_p] = _jit_jvp
ad.primitive_transposes[jit_p] = lambda cts, *args, jaxpr, name: ad.backward_pass(
    jaxpr, [], args, cts)
custom_partial_eval_rules[jit_p] = _jit_partial_eval
batching.primitive_batchers[jit_p] = _jit_batch
dce_rules[jit_p] = _jit_dce
pp_shared_names[jit_p] = "jaxpr"  # its body printed with the equation's names (as JAX)
pp_eqn_rules[jit_p] = lambda params: [("name", params["name"]), ("jaxpr", params["jaxpr"])]


def _array_key(a: ArrayImpl) -> tuple:
    """An eager Array's part of jit's fast-path key; a committed Array's device chooses
    where the program runs, so it is part of the key."""
    if a._device is None:
        v = a._value
        return (v.shape, v.dtype, a.weak_type)
    b = a._buf
    return (b.shape, b.dtype, a.weak_type, a._device)


class PjitFunction(stages.Wrapped):
    """A jit-compiled function (``tinyjax.jit(f)``); JAX's class of the same name."""

    def __init__(self, fun: Callable, static_argnums, static_argnames, donate_argnums,
                 donate_argnames, device, in_shardings=None, out_shardings=None):
        update_wrapper(self, fun, updated=())  # first: it copies attributes of fun
        self.fun = fun
        self.static_argnums, self.static_argnames = _signature_argnums(
            fun, static_argnums, static_argnames, "static")
        self.donate_argnums, self.donate_argnames = _signature_argnums(
            fun, donate_argnums, donate_argnames, "donate")
        self.device = device
        self.in_shardings, self.out_shardings = in_shardings, out_shardings
        options = (self.static_argnums, self.static_argnames, self.donate_argnums,
                   self.donate_argnames, device, _hashable_tree(in_shardings),
                   _hashable_tree(out_shardings))
        # compiled calls by input signature, bounded (least recently called out); its
        # runners are the fast path: calls whose arguments are all positional Arrays, keyed
        # by (device, flags, *(shape, dtype, weak_type) per argument) -> a prepared runner
        self.cache = _shared_cache(fun, options)
        self._fast = self.cache.runners
        self._staged: dict = {}  # key -> (body, consts, out tree) of calls while staging
        self._traced: dict = {}  # key -> (closed jaxpr, out tree) of calls under transforms
        _wrappers.add(self)

    def _split(self, args: tuple, kwargs: dict):
        n = len(args)
        static_nums = tuple(i % n if i < 0 else i for i in self.static_argnums
                            if -n <= i < n)  # (a missing one takes its default)
        static = tuple((i, hashable_static(args[i])) for i in static_nums)
        static_kw = tuple(sorted((k, hashable_static(v)) for k, v in kwargs.items()
                                 if k in self.static_argnames))
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static_nums)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        return static, static_kw, dyn_args, dyn_kwargs

    def _device_name(self, flat: Sequence[Any]) -> Any:
        """Where to run: ``jit(device=)``, else where the committed arguments are (a
        sharding, when they are laid out over several devices), else the default
        device."""
        from tinyjax.backends import backend_name
        if self.device is not None:
            return backend_name(self.device)
        name = getattr(self.fun, "__name__", "fun")
        return computation_device(flat, f"jit({name})") or backend_name(None)

    def _flat_in_shardings(self, dyn_args: tuple, n_flat: int) -> Optional[list]:
        """``in_shardings`` per flat argument (None where it gives none)."""
        if self.in_shardings is None:
            return None
        prefix = self.in_shardings
        if not isinstance(prefix, (tuple, list)) or len(dyn_args) == 1 and \
                not isinstance(dyn_args[0], (tuple, list)):
            prefix = tuple(prefix) if isinstance(prefix, list) else prefix
        flat = broadcast_prefix(_as_shardings(prefix), tuple(dyn_args), "jit in_shardings")
        return flat + [None] * (n_flat - len(flat))

    def _flat_out_shardings(self, out_tree) -> Optional[list]:
        if self.out_shardings is None:
            return None
        dummy = tree_util.tree_unflatten(out_tree, [0] * out_tree.num_leaves)
        return broadcast_prefix(_as_shardings(self.out_shardings), dummy, "jit out_shardings")

    def _key(self, args: tuple, kwargs: dict):
        static, static_kw, dyn_args, dyn_kwargs = self._split(args, kwargs)
        flat, in_tree = physical.tree_flatten((dyn_args, dyn_kwargs))
        device = self._device_name([x for x in flat if type(x) is not ArrayImpl
                                    or not x.is_deleted()])
        # the flags read while tracing and lowering: part of what a compile depends on
        key = (in_tree, static, static_kw, device, config.jax_default_matmul_precision,
               config.jax_enable_x64, tuple(_leaf_signature(x) for x in flat),
               tuple(c.value for c in _user_contexts))
        return key, static, flat, in_tree, device

    def _get_compiled(self, args: tuple, kwargs: dict):
        key, static, flat, in_tree, device = self._key(args, kwargs)
        compiled = self.cache.get(key)
        for i, x in enumerate(flat):
            if type(x) is ArrayImpl and x.is_deleted():
                if compiled is not None:  # (JAX's message from its executable)
                    raise ValueError(
                        f"INVALID_ARGUMENT: Invalid buffer passed to Execute() as argument "
                        f"{i} to replica 0: INVALID_ARGUMENT: Buffer has been deleted or "
                        "donated.")
                x._value  # RuntimeError: Array has been deleted
        if compiled is None:
            from tinyjax.backends import devices
            if not isinstance(device, Sharding):
                devices(device)  # RuntimeError naming the platforms present if it has none
            closed, out_tree, ref_info = self._trace(args, kwargs, static, flat, in_tree)
            compiled = self._compile(closed, out_tree, device,
                                     self._placements(args, kwargs, flat), ref_info,
                                     self._donated_flags(args, kwargs, static))
            self.cache[key] = compiled
        return compiled, flat

    def _placements(self, args: tuple, kwargs: dict, flat: list) -> list:
        """Per flat argument, where ``in_shardings`` puts it, else the argument itself."""
        _, _, dyn_args, _ = self._split(args, kwargs)
        given = self._flat_in_shardings(dyn_args, len(flat))
        if given is None:
            return list(flat)
        return [x if s is None else s for x, s in zip(flat, given)]

    def _donated_flags(self, args: tuple, kwargs: dict, static) -> list[bool]:
        """Per flat argument (leaves of the dynamic positional arguments, then of the keyword
        ones in sorted order, as flattened): whether it is donated."""
        static_nums = {i for i, _ in static}
        flags = [i in self.donate_argnums for i, a in enumerate(args) if i not in static_nums
                 for _ in physical.tree_leaves(a)]
        flags += [k in self.donate_argnames for k in sorted(kwargs)
                  if k not in self.static_argnames for _ in physical.tree_leaves(kwargs[k])]
        return flags

    def _trace(self, args, kwargs, static, flat, in_tree):
        """The jaxpr of the function for these arguments (after CSE and DCE) and its
        output tree."""
        if config.jax_no_tracing:
            raise RuntimeError(f"re-tracing function {self._where()} for `jit`, but "
                               "'no_tracing' is set")
        start = time.perf_counter()
        static_map = dict(static)
        out_store: list = []

        def flat_fun(*flat_args):
            full, full_kwargs = self._full_args(args, kwargs, static, in_tree, flat_args)
            with traced_layouts(flat_args, flat):
                out = self.fun(*full, **full_kwargs)
            flat_out, out_tree = physical.tree_flatten(out)
            out_store.append(out_tree)
            return flat_out

        origins = argument_origins(self.fun, tuple(a for i, a in enumerate(args)
                                                   if i not in static_map), {})
        ref_info = None
        if _refs.refs_exist():
            closed, ref_info = self._trace_with_refs(flat_fun, flat, origins)
        else:
            in_avals = [shaped_abstractify(x) for x in flat]
            closed = trace_to_closed_jaxpr(flat_fun, in_avals, origins)
        closed = dce_closed_jaxpr(ClosedJaxpr(cse_jaxpr(closed.jaxpr), closed.consts))
        if config.jax_enable_checks:
            check_jaxpr(closed.jaxpr)
        monitoring.record_event_duration_secs("/jax/core/compile/jaxpr_trace_duration",
                                              time.perf_counter() - start,
                                              fun_name=self._name)
        if config.jax_log_compiles:
            _log.warning("Finished tracing + transforming %s for jit in %.9f sec",
                         self._name, time.perf_counter() - start)
        return closed, out_store[-1], ref_info

    def _where(self) -> str:
        code = getattr(self.fun, "__code__", None)
        if code is None:
            return self._name
        return f"{self._name} at {code.co_filename}:{code.co_firstlineno}"

    def _trace_with_refs(self, flat_fun, flat, origins):
        """Trace with the mutable array references among the arguments and those the
        function closes over made explicit: the jaxpr takes the closed-over references'
        values, then the arguments (a reference's value in its place), and returns the
        outputs, then the final values of the argument references and of the closed-over
        ones.  Returns (jaxpr, (argument positions of references, closed-over references,
        number of outputs)), or None for the latter when no reference is involved."""
        Ref = _refs.Ref
        ref_pos = [i for i, x in enumerate(flat) if isinstance(x, Ref)]
        names = [_argument_name(o) for o in origins] + [""] * len(flat)
        first: dict[int, int] = {}
        for i in ref_pos:
            j = first.setdefault(id(flat[i]), i)
            if j != i:
                raise ValueError(
                    "only one reference to a mutable array may be passed as an argument to "
                    f"a function, but when tracing {self._where()} for jit the mutable array "
                    f"reference of type {flat[i].aval} appeared at both {names[j]} and "
                    f"{names[i]}.")
        in_avals = [get_aval(x._read()) if isinstance(x, Ref) else shaped_abstractify(x)
                    for x in flat]
        closed_refs: list = []
        n_out: list = []
        while True:
            k = len(closed_refs)

            def fun(*ins, k=k, closed_refs=tuple(closed_refs)):
                with _refs.bind(closed_refs, ins[:k]):
                    flat_args = list(ins[k:])
                    holders = []
                    for i in ref_pos:
                        flat_args[i] = _refs.placeholder(flat_args[i], flat[i])
                        holders.append(flat_args[i])
                    outs = list(flat_fun(*flat_args))
                    for o in outs:
                        if isinstance(o, Ref):
                            where = next((f"passed in as the argument {names[i]}"
                                          for i, h in zip(ref_pos, holders) if h is o),
                                         f"created on line {o._origin}")
                            raise ValueError(
                                f"function {self._where()} traced for jit returned a mutable "
                                f"array reference of type {o.aval}, but mutable array "
                                "references cannot be returned.\n\nThe returned mutable "
                                f"array was {where}.")
                    n_out[:] = [len(outs)]
                    return outs + [h._read() for h in holders] + \
                        [r._read() for r in closed_refs]

            with _refs.collect() as captured:
                closed = trace_to_closed_jaxpr(
                    fun, [get_aval(r._read()) for r in closed_refs] + in_avals,
                    [""] * k + list(origins))
            arg_refs = {id(flat[i]): i for i in ref_pos}
            for r in captured.refs:
                if id(r) in arg_refs:
                    raise ValueError(
                        f"when tracing {self._where()} for jit, a mutable array reference of "
                        f"type {r.aval} was both closed over and passed as the argument "
                        f"{names[arg_refs[id(r)]]}")
            new = [r for r in captured.refs if not any(r is c for c in closed_refs)]
            if not new:
                break
            closed_refs += new
        if not ref_pos and not closed_refs:
            return closed, None
        return closed, (tuple(ref_pos), tuple(closed_refs), n_out[0])

    _name = property(lambda self: getattr(self.fun, "__name__", "fun"))

    def _full_args(self, args, kwargs, static, in_tree, flat_args) -> tuple[list, dict]:
        """The call's positional and keyword arguments: the static ones as given, the
        dynamic ones from ``flat_args``."""
        static_map = dict(static)
        dyn_args, dyn_kwargs = tree_util.tree_unflatten(in_tree, flat_args)
        it = iter(dyn_args)
        full = [static_map[i] if i in static_map else next(it) for i in range(len(args))]
        full_kwargs = dict(dyn_kwargs)
        full_kwargs.update({k: kwargs[k] for k in kwargs if k in self.static_argnames})
        return full, full_kwargs

    def _compile(self, closed: ClosedJaxpr, out_tree, device: Any,
                 placements: Sequence[Any], ref_info, donated: Sequence[bool]) -> Any:
        """Compile ``closed`` -- partitioned over a mesh where an argument (as placed by
        ``placements``) or a wanted result is laid out over several devices; ``donated``:
        per flat argument, whether it is donated (with array references involved nothing
        is: their values are read and written back)."""
        if config.jax_log_compiles:
            _log.warning("Compiling %s with global shapes and types %s.", self._name,
                         list(closed.in_avals))
        out_shardings = self._flat_out_shardings(out_tree)
        if isinstance(device, Sharding) or runs_on_mesh(closed, placements, out_shardings):
            compiled = MeshCompiled(closed, out_tree, placements, out_shardings)
        else:
            single = [p for p in placements if isinstance(p, SingleDeviceSharding)]
            donated_leaves = () if ref_info is not None else \
                tuple(i for i, d in enumerate(donated) if d)
            compiled = Compiled(closed, out_tree,
                                single[0]._device.key if single else device, donated_leaves)
        compiled.ref_info = ref_info
        monitoring.record_event_duration_secs("/jax/core/compile/backend_compile_duration",
                                              compiled.compile_time, fun_name=self._name)
        if config.jax_log_compiles:
            _log.warning("Finished compilation of jit(%s) in %.9f sec", self._name,
                         compiled.compile_time)
        if debug_level():
            print(f"jit({self._name}): {compiled.num_kernels} kernels, compiled in "
                  f"{compiled.compile_time * 1e3:.1f} ms")
        return compiled

    def __call__(self, *args, **kwargs):
        if config.jax_disable_jit:
            return self.fun(*args, **kwargs)
        if _state.trace is not _eval_trace:
            if type(_state.trace) is StagingTrace:
                return self._call_staged(args, kwargs)
            return self._call_traced(args, kwargs)
        if config.jax_debug_nans or config.jax_debug_infs:
            return self._call_checked(args, kwargs)
        if not kwargs and not self.static_argnums:
            key = self._context_key()
            for a in args:
                if type(a) is not ArrayImpl:
                    break
                key.append(_array_key(a))
            else:
                runner = self._fast.get(tuple(key))
                if runner is None:
                    compiled, _ = self._get_compiled(args, {})
                    runner = self.cache.add_runner(tuple(key), self._make_runner(compiled),
                                                   compiled)
                return runner(args)
            out = self._call_pytree(args)
            if out is not _NOT_FAST:
                return out
        compiled, flat = self._get_compiled(args, kwargs)
        return tree_util.tree_unflatten(compiled.out_tree, _run_flat(compiled, flat))

    def _context_key(self) -> list:
        """The fast paths' key prefix: what besides the arguments decides the program."""
        return [self.device or device_key(), config.jax_default_matmul_precision,
                config.jax_enable_x64, *[c.value for c in _user_contexts]]

    def _call_pytree(self, args: tuple) -> Any:
        """The fast path for positional pytrees of Arrays and Python scalars (a training
        step's ``(step, params, opt_state, batch)``): keyed by the tree structure and each
        leaf's type as the path above keys Arrays, or ``_NOT_FAST`` for other leaves."""
        leaves, tree = physical.tree_flatten(args)
        key = [tree, *self._context_key()]
        scalars = False
        for a in leaves:
            t = type(a)
            if t is ArrayImpl:
                key.append(_array_key(a))
            elif t is float or t is bool or t is int and -2 ** 31 <= a < 2 ** 31:
                key.append(t)   # a weakly typed scalar: its type decides its dtype
                scalars = True
            else:
                return _NOT_FAST
        key = tuple(key)
        runner = self._fast.get(key)
        if runner is None:
            compiled, _ = self._get_compiled(args, {})
            runner = self.cache.add_runner(key, self._make_runner(compiled), compiled)
        if scalars:
            leaves = [a if type(a) is ArrayImpl else wrap_eager(np.asarray(
                a, dtypes.canonicalize_dtype(dtypes.python_scalar_dtypes[type(a)])), True)
                for a in leaves]
        return runner(leaves)

    def _call_staged(self, args: tuple, kwargs: dict):
        """A call while a function is being staged: one ``jit`` equation."""
        key, static, flat, in_tree, _ = self._key(args, kwargs)
        entry = self._staged.get(key)
        if entry is None:
            closed, out_tree, ref_info = self._trace(args, kwargs, static, flat, in_tree)
            if ref_info is not None:  # array references: traced inline instead
                return self.fun(*args, **kwargs)
            jaxpr = closed.jaxpr
            body = Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.outvars, jaxpr.eqns)
            entry = self._staged[key] = (body, list(closed.consts), out_tree)
        body, consts, out_tree = entry
        outs = jit_p.bind(*consts, *flat, jaxpr=body, name=self._name)
        return tree_util.tree_unflatten(out_tree, outs)

    def _call_traced(self, args, kwargs):
        """A call under an enclosing transform: the function's jaxpr for these argument
        types, traced once (as JAX traces a jit inside a transform once per signature)
        and evaluated by the enclosing trace.  A function that closes over values of the
        enclosing trace is traced again each call (its jaxpr holds them)."""
        key, static, flat, in_tree, _ = self._key(args, kwargs)
        traced = self._traced.get(key)
        if traced is None:
            closed, out_tree, ref_info = self._trace(args, kwargs, static, flat, in_tree)
            if ref_info is not None:  # array references: traced inline instead
                return self.fun(*args, **kwargs)
            traced = (closed, out_tree)
            if not any(isinstance(c, core.Tracer) for c in closed.consts):
                self._traced[key] = traced
        closed, out_tree = traced
        return tree_util.tree_unflatten(out_tree, eval_jaxpr(closed.jaxpr, closed.consts,
                                                             *flat))

    def _call_checked(self, args, kwargs):
        """A call under jax_debug_nans / jax_debug_infs: invalid values in the outputs
        re-run the function op by op, where the first primitive producing one raises."""
        _, static, _, in_tree, _ = self._key(args, kwargs)
        compiled, flat = self._get_compiled(args, kwargs)
        outs = _run_flat(compiled, flat, donate=False)  # (the arguments may run again)
        bad = invalid_values(outs)
        if bad is None:
            return tree_util.tree_unflatten(compiled.out_tree, outs)
        print(f"Invalid {bad} value encountered in the output of a jax.jit function. "
              "Calling the de-optimized version.")
        full, full_kwargs = self._full_args(args, kwargs, static, in_tree,
                                            [to_array(x) for x in flat])
        with config.override(jax_disable_jit=True):
            self.fun(*full, **full_kwargs)
        raise FloatingPointError(
            f"invalid value ({bad}) encountered in jit({self._name}). Because "
            "jax_debug_nans and/or jax_debug_infs is set, the de-optimized function (the "
            "function without jit) was called to get a more precise error message, but it "
            "produced no invalid value: the difference comes from the compiled program's "
            "arithmetic, or from a value read from outside the function.")

    def _make_runner(self, compiled: Compiled) -> Callable:
        """A runner for positional Array arguments: no flattening, no signature building.
        Each call marks ``compiled`` used (its cache keeps the most recently used)."""
        if isinstance(compiled, MeshCompiled):
            def run_mesh(args):
                compiled.last_used = _mark_use()
                return tree_util.tree_unflatten(compiled.out_tree,
                                                compiled.run_flat(list(args)))
            return run_mesh
        exe, out_tree, weak = compiled.executable, compiled.out_tree, compiled.out_weak
        if compiled.ref_info is not None or not compiled.on_host or compiled.donated or \
                any(compiled.out_float0):
            # closed-over references (read and written back), device buffers, donations,
            # float0 outputs (numpy arrays)

            def run_general(args):
                compiled.last_used = _mark_use()
                return tree_util.tree_unflatten(out_tree, _run_flat(compiled, args))
            return run_general
        if tree_util.treedef_is_strict_leaf(out_tree):
            w0 = weak[0]

            def run_single(args):
                compiled.last_used = _mark_use()
                out = exe(*[a._value for a in args])[0]
                out.flags.writeable = False
                r = _new_array(ArrayImpl)
                r._value, r.weak_type, r._device = out, w0, None
                return r
            return run_single

        def run(args):
            compiled.last_used = _mark_use()
            outs = exe(*[a._value for a in args])
            return tree_util.tree_unflatten(out_tree,
                                            [wrap_eager(o, w) for o, w in zip(outs, weak)])
        return run

    def trace(self, *args, **kwargs) -> stages.Traced:
        """Trace for these arguments (static ones included): the jaxpr and the output
        types, without compiling."""
        key, static, flat, in_tree, device = self._key(args, kwargs)
        closed, out_tree, ref_info = self._trace(args, kwargs, static, flat, in_tree)

        donated = self._donated_flags(args, kwargs, static)

        def compile_once() -> Compiled:
            compiled = self.cache.get(key)
            if compiled is None:
                compiled = self._compile(closed, out_tree, device,
                                         self._placements(args, kwargs, flat), ref_info,
                                         donated)
                self.cache[key] = compiled
            return compiled

        return stages.Traced(self._name, closed, in_tree, out_tree, donated, device,
                             compile_once)

    def lower(self, *args, **kwargs) -> stages.Lowered:
        """Trace and lower for these arguments; ``.compile()`` compiles."""
        return self.trace(*args, **kwargs).lower()

    def eval_shape(self, *args, **kwargs):
        return eval_shape(self.fun, *args, **kwargs)

    def clear_cache(self) -> None:
        """Drop this function's compiled calls (their executables are released)."""
        self.cache.clear()
        self._staged.clear()
        self._traced.clear()

    def _cache_size(self) -> int:
        """How many compiled calls this function keeps (JAX's ``_cache_size``)."""
        return len(self.cache)

    def __get__(self, instance, owner):
        if instance is None:
            return self
        return partial(self, instance)

    def __repr__(self) -> str:
        return f"<PjitFunction of {self.fun!r}>"

    @property
    def __signature__(self) -> Optional[inspect.Signature]:
        """The wrapped function's signature (``inspect.signature(jit(f),
        follow_wrapped=False)`` works, as in JAX)."""
        try:
            return inspect.signature(self.fun)
        except (TypeError, ValueError):
            return None


_NOT_FAST = object()  # (a call the fast paths do not take)


def _leaf_signature(x: Any) -> tuple:
    if isinstance(x, _refs.Ref):
        return ("Ref",) + leaf_signature(x._read())
    return leaf_signature(x)


def _argument_name(origin: str) -> str:
    """``x`` from ``argument 'x' of f``."""
    if origin.startswith("argument '"):
        return origin[len("argument '"):].split("'", 1)[0]
    return origin


def _run_flat(compiled: Compiled, flat: Sequence[Any], donate: bool = True) -> list:
    """Run ``compiled`` on the flat arguments, donating as it was compiled to (unless
    ``donate`` is False); with mutable array references (arguments or closed over), their
    values go in and their final values are written back."""
    info = compiled.ref_info
    if info is None:
        if donate:
            return compiled.run_leaves(flat)
        return compiled.run_flat([leaf_value(x, compiled.device) for x in flat])
    ref_pos, closed_refs, n_out = info
    values = [r._read() for r in closed_refs] + \
        [x._read() if isinstance(x, _refs.Ref) else x for x in flat]
    # (reference, its value's input number, its final value's output number)
    k = len(closed_refs)
    refs = [(flat[i], k + i, n_out + m) for m, i in enumerate(ref_pos)] + \
        [(r, j, n_out + len(ref_pos) + j) for j, r in enumerate(closed_refs)]
    jaxpr = compiled.closed.jaxpr
    written = [(r, i, o) for r, i, o in refs if jaxpr.outvars[o] is not jaxpr.invars[i]]
    # a value only its reference holds is updated in place (JAX writes into the buffer)
    updates = {i: o for r, i, o in written
               if type(values[i]) is ArrayImpl and sys.getrefcount(values[i]) == 3}
    outs = compiled.run_updating(values, updates)
    del values
    for r, _, o in written:
        r._write(outs[o])
    return outs[:n_out]


def _names(argnames: str | Sequence[str] | None) -> tuple[str, ...]:
    return (argnames,) if isinstance(argnames, str) else tuple(argnames or ())


_other_caches: list[Callable[[], None]] = []


def register_cache(clear: Callable[[], None]) -> None:
    """Have :func:`clear_caches` call ``clear`` (a cache of traces kept elsewhere)."""
    _other_caches.append(clear)


register_cache(_body_traces.clear)  # (the control-flow primitives' kept bodies)


def clear_caches() -> None:
    """Drop every cached trace and compiled program (JAX's ``jax.clear_caches``): jit's,
    checkpoint's, the control-flow bodies', and the eager operations' on devices.  The
    executables are released (once calls running them return) and the compiled libraries
    no longer used are unloaded; the disk cache is kept (a later call recompiles nothing
    that is there)."""
    for wrapped in list(_wrappers):
        wrapped.clear_cache()
    _shared.clear()
    for clear in _other_caches:
        clear()
    _release_compiled()


def jit(fun: Callable | None = None, *, in_shardings: Any = None, out_shardings: Any = None,
        static_argnums: int | Sequence[int] | None = None,
        static_argnames: str | Sequence[str] | None = None,
        donate_argnums: int | Sequence[int] | None = None,
        donate_argnames: str | Sequence[str] | None = None, device: Any = None,
        **unsupported: Any) -> Any:
    """Compile ``fun``: traced once per input signature, fused into a few kernels.

    ``static_argnums``/``static_argnames`` mark arguments that are Python values
    baked into the trace (they must be hashable; a new value retraces).
    A static argument may be passed by position or by name whichever way it was marked
    (``static_argnums`` and ``static_argnames`` are completed from each other through the
    signature).  ``donate_argnums``/``donate_argnames`` donate arguments' storage, as JAX
    does: a donated array that an output of the same shape and dtype can take is deleted by
    the call (using it afterwards raises; on the CPU the output is written into its buffer
    when no one else holds it and the kernels allow), the others are kept, with JAX's
    warning when the function is compiled.  Wrappers of one function with the same options share
    their compiled programs.

    ``in_shardings`` / ``out_shardings`` (Shardings, or PartitionSpecs over the current
    mesh; a pytree prefix of the positional arguments / of the outputs) lay the arguments
    and results out over several devices: the function is then partitioned into one program
    per device (as it is when its arguments are laid out so already).
    Usable as a decorator, with or without arguments.
    """
    for name in unsupported:
        if name not in ("inline", "keep_unused", "backend", "abstracted_axes",
                        "compiler_options"):
            raise TypeError(f"jit() got an unexpected keyword argument '{name}'")
    if fun is None:
        return lambda f: jit(f, in_shardings=in_shardings, out_shardings=out_shardings,
                             static_argnums=static_argnums, static_argnames=static_argnames,
                             donate_argnums=donate_argnums, donate_argnames=donate_argnames,
                             device=device)
    if not callable(fun):
        raise TypeError(f"Expected a callable value, got {fun!r}")
    return PjitFunction(fun, static_argnums, static_argnames, donate_argnums, donate_argnames,
                      device, in_shardings, out_shardings)


def _hashable_tree(tree: Any) -> Any:
    if tree is None:
        return None
    leaves, treedef = tree_util.tree_flatten(tree, is_leaf=_is_sharding_leaf)
    return treedef, tuple(leaves)


def _is_sharding_leaf(x: Any) -> bool:
    return isinstance(x, (Sharding, PartitionSpec))


def _as_shardings(tree: Any) -> Any:
    """A pytree of shardings (PartitionSpecs over the current mesh made NamedShardings)
    whose leaves are shardings (PartitionSpecs are pytree nodes of nothing otherwise)."""
    return tree_util.tree_map(lambda s: as_sharding(s) if s is not None else None, tree,
                              is_leaf=_is_sharding_leaf)


# ---------------------------------------------------------------------------
# fwd_and_bwd, make_user_context, copy_to_host_async
# ---------------------------------------------------------------------------


def fwd_and_bwd(fun: Callable, argnums: int | Sequence[int], has_aux: bool = False,
                jitted: bool = True) -> tuple[Callable, Callable]:
    """The forward and backward passes of ``fun`` as two functions: ``fwd(*args)`` gives
    ``(fun(*args), residuals)`` (``(out, residuals, aux)`` with ``has_aux``), and
    ``bwd(residuals, cotangent)`` the cotangents of the arguments at ``argnums`` (one
    for an int).  The residuals are a pytree, so both may be jitted (the default)."""
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

    def fwd(*args):
        f_dyn, dyn = argnums_partial(fun, nums, args)
        return vjp(f_dyn, *dyn, has_aux=has_aux)

    def bwd(residuals, cotangent):
        cts = residuals(cotangent)
        return cts[0] if isinstance(argnums, int) else cts

    return (jit(fwd), jit(bwd)) if jitted else (fwd, bwd)


class _UserContext:
    """A value ``jit`` keys its caches on (``jax.make_user_context``): ``.value``, and
    ``with ctx(v): ...`` to set it for a block."""

    def __init__(self, default_value: Any):
        self.value = default_value

    @contextmanager
    def __call__(self, new_val: Any) -> Iterator[None]:
        old, self.value = self.value, new_val
        try:
            yield
        finally:
            self.value = old

    def __repr__(self) -> str:
        return f"UserContext(value={self.value!r})"


_user_contexts: list[_UserContext] = []


def make_user_context(default_value: Any = None) -> _UserContext:
    """A context whose value is part of every ``jit`` cache key: functions re-trace when
    it changes."""
    ctx = _UserContext(default_value)
    _user_contexts.append(ctx)
    return ctx


def copy_to_host_async(x: Any) -> Any:
    """Start copying the arrays among ``x``'s leaves to the host; returns ``x``."""
    for leaf in physical.tree_leaves(x):
        copy = getattr(leaf, "copy_to_host_async", None)
        if copy is not None:
            copy()
    return x
