"""The plumbing of the public transforms, one copy each (as JAX's ``api_util``):

* pytree functions as flat ones: :func:`flatten_fun` (arguments ``(args, kwargs)``),
  :func:`flatten_fun_nokwargs` (positional arguments), :func:`flatten_fun_with_aux`
  (``has_aux`` outputs); each records the output treedef in the list it returns.  The
  treedefs are physical ones (:mod:`tinyjax.tree_util.physical`: a key array's data is
  the leaf, and unflattening rebuilds the key array);
* arguments split off and spliced back: :func:`argnums_partial` (a function of some
  positional arguments, the others fixed), :func:`dynamic_argnums` (the positions that
  are not static), :func:`normalize_argnums`, :func:`check_argnums`, :func:`hashable_static`;
* (co)tangents given for key arrays in the physical form the transforms use
  (:func:`physical_tangents`);
* in/out axis specs broadcast over pytrees (:func:`broadcast_prefix`), the aval an argument
  is traced with (:func:`shaped_abstractify`) and the names of arguments in errors
  (:func:`argument_origins`)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.core import ShapedArray, get_aval
from tinyjax.tree_util import physical


class OutTrees(list):
    """The output treedefs of a flattened function's calls, one per call; calling it gives
    the last (JAX's ``out_tree`` thunk)."""

    def __call__(self) -> tree_util.PyTreeDef:
        if not self:
            raise ValueError("the flattened function has not been called yet")
        return self[-1]


def flatten_fun(fun: Callable, in_tree: tree_util.PyTreeDef
                ) -> tuple[Callable, OutTrees]:
    """``fun(*args, **kwargs)`` as a function of the leaves of ``(args, kwargs)`` (whose
    treedef is ``in_tree``) returning its output's leaves; the output treedef of every call
    is appended to the returned list."""
    store = OutTrees()

    def flat_fun(*flat_args):
        args, kwargs = tree_util.tree_unflatten(in_tree, flat_args)
        flat_out, out_tree = physical.tree_flatten(fun(*args, **kwargs))
        store.append(out_tree)
        return flat_out

    return flat_fun, store


def flatten_fun_nokwargs(fun: Callable, in_tree: tree_util.PyTreeDef
                         ) -> tuple[Callable, OutTrees]:
    """:func:`flatten_fun` for ``fun(*args)``: ``in_tree`` is the treedef of ``args``."""
    return flatten_fun(fun, tree_util.treedef_tuple([in_tree, tree_util.tree_structure({})]))


_abstractify_handlers: dict[type, Callable[[Any], ShapedArray]] = {}


def register_abstractify(cls: type, handler: Callable[[Any], ShapedArray]) -> None:
    """Trace arguments of type ``cls`` with the aval ``handler(arg)`` (a stand-in for an
    array's type, such as ``ShapeDtypeStruct``, registered where it is defined)."""
    _abstractify_handlers[cls] = handler


def shaped_abstractify(x: Any) -> ShapedArray:
    """The aval with which an argument is traced (ShapeDtypeStruct and arrays alike; an
    aval stands for itself, as in JAX)."""
    if isinstance(x, ShapedArray):
        return x
    for cls, handler in _abstractify_handlers.items():
        if isinstance(x, cls):
            return handler(x)
    return get_aval(x)


def argument_origins(fun: Callable, args: tuple, kwargs: dict) -> list[str]:
    """Human names for each flat argument, e.g. ``argument 'x' of f``."""
    name = getattr(fun, "__name__", "the function")
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
        names = list(bound.arguments)
        values = list(bound.arguments.values())
    except (TypeError, ValueError):
        names = [f"#{i}" for i in range(len(args))] + list(kwargs)
        values = list(args) + list(kwargs.values())
    origins = []
    for arg_name, value in zip(names, values):
        n = len(tree_util.tree_leaves(value))
        label = f"argument '{arg_name}' of {name}"
        origins += [label] * n
    return origins


class DebugInfo(NamedTuple):
    """What a traced function is, for messages: what traced it (``"jit"``), the function's
    name and source, and the names of its flat arguments."""
    traced_for: str
    func_src_info: str
    arg_names: tuple[str, ...]
    result_paths: Any = None


def debug_info(traced_for: str, fun: Callable, args: Sequence[Any], kwargs: dict, *,
               static_argnums: Sequence[int] = (), static_argnames: Sequence[str] = (),
               result_paths_thunk: Any = None, sourceinfo: str | None = None,
               signature: Any = None) -> DebugInfo:
    """The :class:`DebugInfo` of ``fun`` traced by ``traced_for`` on ``args``/``kwargs``."""
    name = getattr(fun, "__name__", type(fun).__name__)
    code = getattr(fun, "__code__", None)
    where = sourceinfo or (f"{name} at {code.co_filename}:{code.co_firstlineno}" if code
                           else name)
    try:
        params = list((signature or inspect.signature(fun)).parameters)
    except (TypeError, ValueError):
        params = []
    arg_names = tuple(params[i] if i < len(params) else f"args[{i}]"
                      for i in range(len(args)) if i not in static_argnums)
    arg_names += tuple(k for k in kwargs if k not in static_argnames)
    return DebugInfo(traced_for, where, arg_names, result_paths_thunk)


def argnums_partial(fun: Callable, dyn_argnums: Sequence[int], args: Sequence[Any]
                    ) -> tuple[Callable, tuple]:
    """``fun`` as a function of the positional arguments at ``dyn_argnums`` (in that
    order), the others fixed at their values in ``args``; and those arguments.  Keyword
    arguments pass through."""
    dyn_argnums = tuple(dyn_argnums)

    def fun_dyn(*dyn_args, **kwargs):
        full = list(args)
        for i, a in zip(dyn_argnums, dyn_args):
            full[i] = a
        return fun(*full, **kwargs)

    return fun_dyn, tuple(args[i] for i in dyn_argnums)


def dynamic_argnums(static_argnums: int | Sequence[int], nargs: int) -> tuple[int, ...]:
    """The positions of ``nargs`` positional arguments that are not in ``static_argnums``
    (an int or a sequence; negative positions count from the end)."""
    static = {i % nargs if i < 0 else i for i in normalize_argnums(static_argnums)}
    return tuple(i for i in range(nargs) if i not in static)


def flatten_fun_with_aux(fun: Callable, in_tree, has_aux: bool) -> tuple[Callable, list]:
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
        out_leaves, out_tree = physical.tree_flatten(out)
        aux_leaves, aux_tree = physical.tree_flatten(aux)
        arrays = [as_operand(a) for a in aux_leaves if is_array_like(a)]
        others = [None if is_array_like(a) else a for a in aux_leaves]
        trees.append((out_tree, AuxTree(aux_tree, others)))
        return out_leaves + arrays
    return flat_fun, trees


class AuxTree:
    """Rebuilds aux from its array leaves (which went through the transform as
    outputs) and its other leaves (kept aside)."""

    def __init__(self, tree, others: list):
        self.tree, self.others = tree, others

    def unflatten(self, arrays: Sequence[Any]) -> Any:
        it = iter(arrays)
        return self.tree.unflatten([next(it) if o is None else o for o in self.others])


def physical_tangents(tangents: Any, primal_tree: tree_util.PyTreeDef,
                      data_shapes: Sequence[tuple]) -> tuple[list, tree_util.PyTreeDef]:
    """The leaves and treedef of (co)tangents given for values of the physical treedef
    ``primal_tree`` (whose leaves have the shapes ``data_shapes``), in its physical form.
    The tangent of a key array is float0 of its shape (as in JAX): it stands for float0
    of its data's shape.  Trees that do not match come back as they are (for the caller's
    error)."""
    flat, tree = tree_util.tree_flatten(tangents)
    if tree == primal_tree:  # (no key arrays: both views agree, no need to walk the tree)
        return flat, tree
    public, opened = physical.public_structure(primal_tree)
    if tree != public or not any(opened):
        return flat, tree
    return [np.zeros(shape, dtypes.float0)
            if o and getattr(t, "dtype", None) == dtypes.float0 and
            np.shape(t) == shape[:np.ndim(t)] else t
            for t, o, shape in zip(flat, opened, data_shapes)], primal_tree


def check_argnums(argnums, nargs: int, fname: str) -> tuple[int, ...]:
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


def _one_level(x: Any):
    return tree_util.tree_flatten(x, is_leaf=lambda y: y is not x)


def broadcast_prefix(prefix: Any, tree: Any, what: str) -> list[Any]:
    """One entry of ``prefix`` per leaf of ``tree``, where ``prefix`` is a tree prefix
    of ``tree`` whose leaves are ints, None, or other values that are not pytree nodes
    (shardings, partition specs)."""
    out: list[Any] = []

    def rec(p, t):
        if p is None or isinstance(p, int) or not tree_util.is_tree_node(type(p)):
            out.extend([p] * len(tree_util.tree_leaves(t)))
            return
        p_children, p_def = _one_level(p)
        t_children, t_def = _one_level(t)
        if p_def != t_def:
            raise ValueError(f"{what} specification must be a tree prefix of the "
                             f"corresponding value, got specification {prefix} for value "
                             f"tree {tree_util.tree_structure(tree)}.")
        for pc, tc in zip(p_children, t_children):
            rec(pc, tc)

    rec(prefix, tree)
    return out


def normalize_argnums(argnums: int | Sequence[int] | None) -> tuple[int, ...]:
    """``argnums`` (None, an int or a sequence of ints) as a tuple."""
    if argnums is None:
        return ()
    if isinstance(argnums, int):
        return (argnums,)
    return tuple(int(a) for a in argnums)


def hashable_static(value: Any) -> Any:
    try:
        hash(value)
    except TypeError as e:
        raise ValueError(
            "Non-hashable static arguments are not supported. An error occurred while "
            f"trying to hash an object of type {type(value)}, {value!r}. The error "
            f"was:\nTypeError: {e}") from None
    return value
