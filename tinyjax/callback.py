"""Host callbacks: Python functions called from inside traced and compiled code.

Three primitives share one shape: a ``callback`` parameter (a :class:`FlatCallback`:
host numpy arrays in, host numpy arrays out, checked against ``result_avals``) and the
operands.  Eagerly they call the function at once; under ``jit`` they become a host
step of the compiled program (:mod:`tinyjax.compiler.program`), which hands the operands
to the host, calls back and hands the results to the device.

* ``pure_callback`` -- a pure function of its operands: dropped when its results are
  unused, differentiated never (wrap it in ``custom_jvp``), vectorised by ``vmap_method``;
* ``io_callback`` -- a function with side effects: always run, in program order;
  vectorised by a sequential loop unless ``ordered``;
* ``debug_callback`` -- no results; under ``vmap`` it runs once per batch element, under
  ``grad`` it sees the primal values (what ``jax.debug.print`` and
  ``jax.debug.callback`` bind).
"""
from __future__ import annotations

import traceback
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, lax, tree_util
from tinyjax.tree_util import physical
from tinyjax.array import Array, wrap_eager
from tinyjax.compiler.lower.registry import register_host_callback
from tinyjax.core import Primitive, ShapedArray
from tinyjax.errors import JaxRuntimeError
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand

__all__ = ["pure_callback", "io_callback", "debug_callback", "FlatCallback", "vmap_method_rule",
           "pure_callback_p", "io_callback_p", "debug_callback_p"]

VMAP_METHODS = ("sequential", "sequential_unrolled", "expand_dims", "broadcast_all",
                "legacy_vectorized")


class FlatCallback:
    """The host function of a callback equation: ``fun`` called with the operands
    rebuilt into ``in_tree`` (as tinyjax Arrays), its results flattened and checked
    against ``result_avals``.  Compared by identity (it is a jaxpr parameter)."""

    def __init__(self, fun: Callable, in_tree: tree_util.PyTreeDef,
                 result_avals: Sequence[ShapedArray], out_tree: tree_util.PyTreeDef | None):
        self.fun, self.in_tree = fun, in_tree
        self.result_avals, self.out_tree = tuple(result_avals), out_tree

    def __call__(self, *values: np.ndarray) -> list[np.ndarray]:
        args, kwargs = self.in_tree.unflatten([wrap_eager(np.asarray(v)) for v in values])
        try:
            out = self.fun(*args, **kwargs)
        except Exception as e:  # as JAX reports it: the traceback in a runtime error
            raise JaxRuntimeError("INTERNAL: CpuCallback error calling callback: " +
                                  "".join(traceback.format_exception(e))) from e
        if self.out_tree is None:  # a debug callback: its result is ignored
            return []
        leaves, tree = physical.tree_flatten(out)
        if tree != self.out_tree:
            raise TypeError(f"Callback {_name(self.fun)} returned a result of structure "
                            f"{tree}, but result_shape_dtypes has structure {self.out_tree}")
        results = []
        for i, (leaf, aval) in enumerate(zip(leaves, self.result_avals)):
            value = np.asarray(leaf)
            if value.shape != aval.shape:
                raise RuntimeError(f"Incorrect output shape for return value #{i}: "
                                   f"Expected: {aval.shape}, Actual: {value.shape}")
            results.append(value.astype(aval.dtype, copy=False))
        return results

    def batched(self, size: int) -> "FlatCallback":
        """The same host function, its results with a leading batch axis of ``size``."""
        avals = [ShapedArray((size,) + a.shape, a.dtype) for a in self.result_avals]
        return FlatCallback(self.fun, self.in_tree, avals, self.out_tree)

    def __repr__(self) -> str:
        return f"FlatCallback({_name(self.fun)}, in_tree={self.in_tree})"


def _name(fun: Any) -> str:
    return getattr(fun, "__name__", repr(fun))


def _flatten_operands(args: tuple, kwargs: dict) -> tuple[list[Any], tree_util.PyTreeDef]:
    flat, in_tree = physical.tree_flatten((args, kwargs))
    return [as_operand(x) for x in flat], in_tree


def _result_avals(result_shape_dtypes: Any) -> tuple[list[ShapedArray], Any]:
    leaves, tree = physical.tree_flatten(result_shape_dtypes)
    avals = []
    for leaf in leaves:
        if not (hasattr(leaf, "shape") and hasattr(leaf, "dtype")):
            raise TypeError(f"result_shape_dtypes must be a pytree of objects with shape and "
                            f"dtype (jax.ShapeDtypeStruct), got {leaf!r}")
        avals.append(ShapedArray(leaf.shape, dtypes.canonicalize_dtype(leaf.dtype)))
    return avals, tree


# ---- the primitives ------------------------------------------------------------------------

def _callback_impl(*values, callback, **_):
    return callback(*values)


def _abstract_eval_rule(name: str) -> Callable:
    def rule(*avals, callback, **_):
        n = callback.in_tree.num_leaves
        if len(avals) != n:
            raise TypeError(f"{name}: the callback {_name(callback.fun)} takes {n} operands, "
                            f"got {len(avals)}")
        return list(callback.result_avals)
    return rule


pure_callback_p = Primitive("pure_callback", multiple_results=True)
io_callback_p = Primitive("io_callback", multiple_results=True)
io_callback_p.effectful = True
debug_callback_p = Primitive("debug_callback", multiple_results=True)
debug_callback_p.effectful = True
for _p in (pure_callback_p, io_callback_p, debug_callback_p):
    _p.def_impl(_callback_impl)
    _p.def_abstract_eval(_abstract_eval_rule(_p.name))
    register_host_callback(_p)


def _no_jvp(message: str) -> Callable:
    def rule(primals, tangents, **params):
        raise ValueError(message)
    return rule


ad.primitive_jvps[pure_callback_p] = _no_jvp(
    "Pure callbacks do not support JVP. Please use `jax.custom_jvp` to use callbacks "
    "while taking gradients.")
ad.primitive_jvps[io_callback_p] = _no_jvp("IO callbacks do not support JVP.")


def _debug_callback_jvp(primals, tangents, **params):
    return debug_callback_p.bind(*primals, **params), []  # it sees the primal values


ad.primitive_jvps[debug_callback_p] = _debug_callback_jvp


# ---- batching ------------------------------------------------------------------------------

def _axis_size(vals, dims) -> int:
    return next(v.shape[d] for v, d in zip(vals, dims) if d is not None)


def _to_front(x: Any, d: int) -> Any:
    """``x`` with its axis ``d`` moved first."""
    if d == 0:
        return x
    return lax.transpose(x, (d,) + tuple(i for i in range(x.ndim) if i != d))


def _sequential(prim: Primitive, vals, dims, params, unrolled: bool):
    """Call once per batch element: a loop (lax.map) or a Python loop (``unrolled``)."""
    size = _axis_size(vals, dims)
    moved = [_to_front(v, d) if d is not None else v for v, d in zip(vals, dims)]
    batched = [v for v, d in zip(moved, dims) if d is not None]

    def one(xs):
        it = iter(xs)
        return prim.bind(*[next(it) if d is not None else v for v, d in zip(moved, dims)],
                         **params)

    if unrolled and size:
        rows = [one([lax.index_in_dim(x, i, 0, keepdims=False) for x in batched])
                for i in range(size)]
        outs = [lax.concatenate([lax.expand_dims(r, (0,)) for r in col], 0)
                for col in zip(*rows)]
    else:
        outs = lax.map(one, batched)
    return list(outs), [0] * len(outs)


def vmap_method_rule(prim: Primitive) -> Callable:
    """The batching rule of a callback primitive vectorised as its param ``vmap_method``
    says; its ``callback`` param must have ``batched(size)`` (the same host function, its
    results with a leading batch axis)."""
    def rule(vals, dims, *, callback, vmap_method, **params):
        full = dict(params, callback=callback, vmap_method=vmap_method)
        if vmap_method not in VMAP_METHODS:
            raise NotImplementedError(
                f"vmap is only supported for the {prim.name} primitive when vmap_method is "
                "one of 'sequential', 'sequential_unrolled', 'expand_dims', 'broadcast_all', "
                f"or 'legacy_vectorized'. Got vmap_method={vmap_method!r}.")
        if vmap_method in ("sequential", "sequential_unrolled"):
            return _sequential(prim, vals, dims, full,
                               unrolled=vmap_method == "sequential_unrolled")
        size = _axis_size(vals, dims)
        args = []
        for v, d in zip(vals, dims):
            if d is not None:
                args.append(_to_front(v, d))
            elif vmap_method == "broadcast_all":
                args.append(lax.broadcast(v, (size,)))
            else:  # expand_dims (and legacy_vectorized): a leading axis of size 1
                args.append(lax.expand_dims(v, (0,)))
        outs = prim.bind(*args, callback=callback.batched(size), vmap_method=vmap_method,
                         **params)
        return outs, [0] * len(outs)
    return rule


def _io_callback_batch(vals, dims, *, ordered, **params):
    if ordered:
        raise ValueError("Cannot `vmap` ordered IO callback.")
    return _sequential(io_callback_p, vals, dims, dict(params, ordered=ordered),
                       unrolled=False)


def _debug_callback_batch(vals, dims, **params):
    """One call per batch element, in order (as JAX unrolls it)."""
    for i in range(_axis_size(vals, dims)):
        debug_callback_p.bind(*[v if d is None else lax.index_in_dim(v, i, d, keepdims=False)
                                for v, d in zip(vals, dims)], **params)
    return [], []


batching.primitive_batchers[pure_callback_p] = vmap_method_rule(pure_callback_p)
batching.primitive_batchers[io_callback_p] = _io_callback_batch
batching.primitive_batchers[debug_callback_p] = _debug_callback_batch


# ---- the public functions ------------------------------------------------------------------

def pure_callback(callback: Callable[..., Any], result_shape_dtypes: Any, *args: Any,
                  sharding: Any = None, vmap_method: str | None = None, **kwargs: Any) -> Any:
    """Call the pure host function ``callback(*args, **kwargs)`` from traced code; it
    returns arrays of the shapes and dtypes of ``result_shape_dtypes`` (a pytree of
    :class:`~tinyjax.ShapeDtypeStruct`).  Unused results may be dropped (so may the
    call); under ``vmap`` it is called as ``vmap_method`` says: 'sequential' (once per
    element, in a loop), 'sequential_unrolled', 'expand_dims' (once, unbatched operands
    with a leading axis of size 1), 'broadcast_all' (once, every operand batched)."""
    if vmap_method is not None and vmap_method not in VMAP_METHODS:
        raise ValueError(f"pure_callback: vmap_method must be one of {VMAP_METHODS} or None, "
                         f"got {vmap_method!r}")
    flat, in_tree = _flatten_operands(args, kwargs)
    avals, out_tree = _result_avals(result_shape_dtypes)
    fn = FlatCallback(callback, in_tree, avals, out_tree)
    outs = pure_callback_p.bind(*flat, callback=fn, vmap_method=vmap_method)
    return out_tree.unflatten(outs)


def io_callback(callback: Callable[..., Any], result_shape_dtypes: Any, *args: Any,
                sharding: Any = None, ordered: bool = False, **kwargs: Any) -> Any:
    """Call the host function ``callback(*args, **kwargs)``, which may have side effects,
    from traced code: it runs even when its results are unused, in program order; with
    ``ordered`` it cannot be vmapped.  Not differentiable."""
    flat, in_tree = _flatten_operands(args, kwargs)
    avals, out_tree = _result_avals(result_shape_dtypes)
    fn = FlatCallback(callback, in_tree, avals, out_tree)
    outs = io_callback_p.bind(*flat, callback=fn, ordered=bool(ordered))
    return out_tree.unflatten(outs)


def _is_array_value(x: Any) -> bool:
    return isinstance(x, (Array, np.ndarray, np.generic, bool, int, float, complex))


def debug_callback(callback: Callable[..., None], *args: Any, ordered: bool = False,
                   **kwargs: Any) -> None:
    """Call ``callback(*args, **kwargs)`` for its side effect (printing, logging) from
    traced code: once per batch element under ``vmap``, with the primal values under
    ``grad``; its result is ignored.  Array (and number) leaves of the arguments are
    operands, passed back as Arrays; other leaves (strings, dtypes, ...) are passed as
    they are."""
    leaves, tree = physical.tree_flatten((args, kwargs))
    dynamic = [i for i, x in enumerate(leaves) if _is_array_value(x)]

    def host(*values):
        full = list(leaves)
        for i, v in zip(dynamic, values):
            full[i] = v
        call_args, call_kwargs = tree.unflatten(full)
        callback(*call_args, **call_kwargs)

    operands = [as_operand(leaves[i]) for i in dynamic]
    flat_tree = physical.tree_structure((tuple(operands), {}))
    debug_callback_p.bind(*operands, callback=FlatCallback(host, flat_tree, [], None),
                          ordered=bool(ordered))
