"""The public differentiation API: jvp, linearize, vjp, grad, value_and_grad,
jacfwd, jacrev, hessian.

Reverse mode is jvp + partial evaluation + transposition: :func:`linearize_flat`
runs the jvp with known primals and unknown tangents, giving the primal outputs
at once and the tangent map as a linear jaxpr; :func:`vjp` transposes that jaxpr.
Under ``jit`` both halves are staged into the one jaxpr being built.
"""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.core import current_trace, get_aval, new_trace
from tinyjax.transforms.ad import (UndefinedPrimal, Zero, backward_pass, instantiate_zeros,
                                   jvp_flat, tangent_aval, zeros_like_aval)
from tinyjax.transforms.partial_eval import PartialEvalTrace


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
    flat_p, tree_p = tree_util.tree_flatten(tuple(primals))
    flat_t, tree_t = tree_util.tree_flatten(tuple(tangents))
    if tree_p != tree_t:
        raise TypeError("primal and tangent arguments to jax.jvp must have the same tree "
                        f"structure; primals have tree structure {tree_p} whereas tangents "
                        f"have tree structure {tree_t}.")
    from tinyjax.lax._helpers import as_operand
    flat_p = [as_operand(p) for p in flat_p]
    flat_t = [as_operand(t) if not ad_is_float0(t) else t for t in flat_t]
    for p, t in zip(flat_p, flat_t):
        _check_tangent(p, t)
    flat_t = [Zero(tangent_aval(get_aval(p))) if ad_is_float0(t) else t
              for p, t in zip(flat_p, flat_t)]
    flat_fun, trees = _flat_fun_with_aux(fun, tree_p, has_aux)
    out_p, out_t = jvp_flat(flat_fun, flat_p, flat_t)
    out_tree, aux_tree = trees[0]
    n = out_tree.num_leaves
    primal_out = tree_util.tree_unflatten(out_tree, out_p[:n])
    tangent_out = tree_util.tree_unflatten(out_tree, [instantiate_zeros(t) for t in out_t[:n]])
    if has_aux:
        return primal_out, tangent_out, aux_tree.unflatten(out_p[n:])
    return primal_out, tangent_out


def _flat_fun_with_aux(fun: Callable, in_tree, has_aux: bool) -> tuple[Callable, list]:
    """A flat function whose outputs are the output leaves, then the aux leaves (so aux
    values leave the transform as plain primal values, never as tracers)."""
    trees: list = []

    def flat_fun(*flat_args):
        out = fun(*tree_util.tree_unflatten(in_tree, flat_args))
        aux = None
        if has_aux:
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError("has_aux=True requires the function to return a pair "
                                f"(output, aux); got {type(out).__name__}.")
            out, aux = out
        from tinyjax.lax._helpers import as_operand, is_array_like
        out_leaves, out_tree = tree_util.tree_flatten(out)
        aux_leaves, aux_tree = tree_util.tree_flatten(aux)
        arrays = [as_operand(a) for a in aux_leaves if is_array_like(a)]
        others = [None if is_array_like(a) else a for a in aux_leaves]
        trees.append((out_tree, _AuxTree(aux_tree, others)))
        return out_leaves + arrays
    return flat_fun, trees


class _AuxTree:
    """Rebuilds aux from its array leaves (which went through the transform as
    outputs) and its other leaves (kept aside)."""

    def __init__(self, tree, others: list):
        self.tree, self.others = tree, others

    def unflatten(self, arrays: Sequence[Any]) -> Any:
        it = iter(arrays)
        return self.tree.unflatten([next(it) if o is None else o for o in self.others])


def ad_is_float0(x: Any) -> bool:
    return getattr(x, "dtype", None) == dtypes.float0


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
        from tinyjax.jaxpr import eval_jaxpr
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
    from tinyjax.lax._helpers import as_operand
    flat_p, in_tree = tree_util.tree_flatten(primals)
    flat_p = [as_operand(p) for p in flat_p]
    flat_fun, out_tree = _flat_fun_positional(fun, in_tree)
    out, lin = linearize_flat(flat_fun, flat_p)

    def f_jvp(*tangents):
        flat_t, t_tree = tree_util.tree_flatten(tangents)
        if t_tree != in_tree:
            raise TypeError(f"linearized function called on tangent values inconsistent "
                            f"with the original primal values: expected tree {in_tree}, "
                            f"got {t_tree}")
        from tinyjax.lax._helpers import as_operand
        out_t = lin.apply([as_operand(t) for t in flat_t])
        return tree_util.tree_unflatten(out_tree[0], out_t)
    return tree_util.tree_unflatten(out_tree[0], out), f_jvp


def _flat_fun_positional(fun: Callable, in_tree) -> tuple[Callable, list]:
    store: list = []

    def flat_fun(*flat_args):
        out = fun(*tree_util.tree_unflatten(in_tree, flat_args))
        flat_out, out_tree = tree_util.tree_flatten(out)
        store.append(out_tree)
        return flat_out
    return flat_fun, store


def vjp(fun: Callable, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """``(fun(*primals), vjp_fun)``; ``vjp_fun(cotangent)`` pulls a cotangent of the
    output back to a tuple of cotangents of the primals.  With ``has_aux`` ``fun``
    returns ``(out, aux)`` and so does ``vjp`` (plus ``aux`` last)."""
    from tinyjax.lax._helpers import as_operand
    flat_p, in_tree = tree_util.tree_flatten(primals)
    flat_p = [as_operand(p) for p in flat_p]
    flat_fun, trees = _flat_fun_with_aux(fun, in_tree, has_aux)
    all_out, lin = linearize_flat(flat_fun, flat_p)
    tree, aux_tree = trees[0]
    out_tree = [tree]
    n = tree.num_leaves
    out, aux_out = all_out[:n], all_out[n:]
    out_avals = [get_aval(o) for o in out]
    aux_zeros = [Zero(tangent_aval(get_aval(a))) for a in aux_out]

    def vjp_fun(cotangent):
        flat_ct, ct_tree = tree_util.tree_flatten(cotangent)
        if ct_tree != out_tree[0]:
            raise TypeError(
                "Tree structure of cotangent input "
                f"{ct_tree}, does not match structure of primal output {out_tree[0]}.")
        cts = []
        for ct, aval in zip(flat_ct, out_avals):
            ct = as_operand(ct) if not ad_is_float0(ct) else ct
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
        cts_in = lin.transpose(cts + aux_zeros)
        return tree_util.tree_unflatten(in_tree, cts_in)

    primal_out = tree_util.tree_unflatten(out_tree[0], out)
    if has_aux:
        return primal_out, vjp_fun, aux_tree.unflatten(aux_out)
    return primal_out, vjp_fun


# ---------------------------------------------------------------------------
# grad and value_and_grad
# ---------------------------------------------------------------------------


def _check_argnums(argnums, nargs: int, fname: str) -> tuple[int, ...]:
    many = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if many else (argnums,)
    for n in nums:
        if not isinstance(n, (int, np.integer)):
            raise TypeError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
        if not -nargs <= n < nargs:
            raise TypeError(f"differentiating with respect to argnums={argnums} requires at "
                            f"least {max(nums) + 1} positional arguments to be passed by the "
                            f"caller, but got only {nargs} positional arguments.")
    return tuple(int(n) % nargs for n in nums)


def _check_input_dtype(x: Any, allow_int: bool, fname: str) -> None:
    dt = get_aval(x).dtype
    if dtypes.is_float(dt) or dtypes.is_complex(dt):
        return
    if allow_int and (dtypes.is_int(dt) or dt == np.bool_ or dt == dtypes.float0):
        return
    raise TypeError(f"{fname} requires real- or complex-valued inputs (input dtype that is a "
                    f"sub-dtype of np.inexact), but got {dt.name}. If you want to use "
                    "Boolean- or integer-valued inputs, use vjp or set allow_int to True.")


def _check_scalar_output(out: Any, fname: str) -> None:
    aval = get_aval(out)
    if aval.shape != ():
        raise TypeError(f"Gradient only defined for scalar-output functions. Output had "
                        f"shape: {aval.shape}.")
    if not (dtypes.is_float(aval.dtype) or dtypes.is_complex(aval.dtype)):
        raise TypeError(f"{fname} requires real- or complex-valued outputs (output dtype "
                        f"that is a sub-dtype of np.inexact), but got {aval.dtype.name}.")


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
        nums = _check_argnums(argnums, len(args), fname)
        diff_args = tuple(args[i] for i in nums)

        def f_diff(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            return fun(*full, **kwargs)

        for leaf in tree_util.tree_leaves(diff_args):
            _check_input_dtype(as_operand(leaf), allow_int, "grad")
        if has_aux:
            out, pullback, aux = vjp(f_diff, *diff_args, has_aux=True)
        else:
            out, pullback = vjp(f_diff, *diff_args)
        _check_scalar_output(out, "grad")
        from tinyjax.lax.shape import full as lax_full
        ct = lax_full((), 1, get_aval(out).dtype)
        grads = pullback(ct)
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
    from tinyjax.numpy import asarray
    sizes = [int(np.prod(a.shape, dtype=np.int64)) for a in flat_avals]
    total = sum(sizes)
    eye = np.eye(total, dtype=np.float64)
    out, start = [], 0
    for aval, size in zip(flat_avals, sizes):
        block = eye[:, start:start + size].reshape((total,) + aval.shape)
        out.append(asarray(block.astype(aval.dtype)))
        start += size
    return out, sizes


def jacfwd(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
           holomorphic: bool = False) -> Callable:
    """The Jacobian by forward mode: one jvp per input element, vectorised by vmap."""
    from tinyjax.transforms.vmap import vmap

    def jacfun(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        nums = _check_argnums(argnums, len(args), "jacfwd")
        diff_args = tuple(args[i] for i in nums)
        flat_in, in_tree = tree_util.tree_flatten(diff_args)
        flat_in = [as_operand(x) for x in flat_in]
        for x in flat_in:
            _check_input_dtype(x, False, "jacfwd")
        in_avals = [get_aval(x) for x in flat_in]

        def f_flat(*flat):
            full = list(args)
            for i, a in zip(nums, tree_util.tree_unflatten(in_tree, flat)):
                full[i] = a
            return fun(*full, **kwargs)

        basis, sizes = _std_basis(in_avals)

        def push(*tangent):
            return jvp(f_flat, flat_in, list(tangent), has_aux=has_aux)

        outs = vmap(push, in_axes=0, out_axes=(None, -1, None) if has_aux else (None, -1))(
            *basis)
        jac = outs[1]
        jac = tree_util.tree_map(lambda j: _unravel_last(j, in_avals, sizes, in_tree,
                                                         isinstance(argnums, (tuple, list))),
                                 jac)
        return (jac, outs[2]) if has_aux else jac
    return jacfun


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
    from tinyjax.transforms.vmap import vmap

    def jacfun(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        nums = _check_argnums(argnums, len(args), "jacrev")
        diff_args = tuple(args[i] for i in nums)
        for leaf in tree_util.tree_leaves(diff_args):
            _check_input_dtype(as_operand(leaf), allow_int, "jacrev")

        def f_diff(*dargs):
            full = list(args)
            for i, a in zip(nums, dargs):
                full[i] = a
            return fun(*full, **kwargs)

        if has_aux:
            y, pullback, aux = vjp(f_diff, *diff_args, has_aux=True)
        else:
            y, pullback = vjp(f_diff, *diff_args)
        flat_y, y_tree = tree_util.tree_flatten(y)
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
        flat_ct, ct_tree = tree_util.tree_flatten(per_input)
        split = [split_out(leaf) for leaf in flat_ct]   # [in_leaf][out_leaf]
        by_out = [tree_util.tree_unflatten(ct_tree, [split[i][k] for i in range(len(split))])
                  for k in range(len(y_avals))]
        jac = tree_util.tree_unflatten(y_tree, by_out)
        return (jac, aux) if has_aux else jac
    return jacfun


def hessian(fun: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
            holomorphic: bool = False) -> Callable:
    """The Hessian: ``jacfwd(jacrev(fun))``."""
    return jacfwd(jacrev(fun, argnums, has_aux=has_aux), argnums, has_aux=has_aux)
