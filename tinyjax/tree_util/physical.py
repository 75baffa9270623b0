"""Pytrees as the transforms see them: every extended leaf (a typed PRNG key array; see
:func:`~tinyjax.tree_util.registration.register_extended_leaf`) opened into its data.

To users a key array is one leaf, as in JAX.  tinyjax's abstract values have no extended
dtypes, so ``jit``, ``vmap``, ``grad``, the control-flow primitives and ``device_put``
flatten their operands here instead: a key array is a node whose one leaf is its
``uint32[..., 2]`` data, and unflattening the treedef got here rebuilds the key array
around what the transform made of that data.  Each extended leaf stands for exactly one
physical leaf, so the leaves of the two views correspond one to one, in the same order
(axis specs and argument names broadcast over the public view fit the physical one).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tinyjax.tree_util.functions import _flatten_rest
from tinyjax.tree_util.nodes import _LEAF, _extended_types, _physical_kind_get
from tinyjax.tree_util.treedef import PyTreeDef, _flatten, _flatten_pred

__all__ = ["leaf_data", "public_structure", "tree_flatten", "tree_leaves", "tree_map",
           "tree_structure"]


def tree_flatten(tree: Any, is_leaf: Callable[[Any], bool] | None = None
                 ) -> tuple[list[Any], PyTreeDef]:
    """``tree_util.tree_flatten`` with extended leaves opened into their data."""
    leaves: list = []
    if is_leaf is None:
        node = _flatten(tree, leaves, _physical_kind_get)
    else:
        node = _flatten_pred(tree, leaves, is_leaf, _physical_kind_get)
    return leaves, PyTreeDef(node, len(leaves))


def tree_leaves(tree: Any) -> list[Any]:
    """The physical leaves of ``tree`` (a key array's data where it has a key array)."""
    leaves: list = []
    _flatten(tree, leaves, _physical_kind_get)
    return leaves


def tree_structure(tree: Any) -> PyTreeDef:
    """The physical treedef of ``tree`` (it rebuilds key arrays around their data)."""
    return tree_flatten(tree)[1]


def tree_map(f: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``tree_util.tree_map`` over physical leaves: ``f`` gets a key array's data, and
    what it returns is wrapped back into a key array."""
    leaves, treedef = tree_flatten(tree)
    if not rest:
        return treedef.unflatten([f(x) for x in leaves])
    return treedef.unflatten(list(map(f, leaves, *_flatten_rest(treedef, rest, "tree_map"))))


def public_structure(treedef: PyTreeDef) -> tuple[PyTreeDef, list[bool]]:
    """The public treedef of values of the physical treedef ``treedef`` (each extended
    leaf one leaf again) and, per leaf, whether it is an extended leaf's data."""
    opened: list[bool] = []

    def public(node: tuple) -> tuple:
        if node is _LEAF:
            opened.append(False)
            return node
        kind, aux, children = node
        if kind.type in _extended_types:
            opened.append(True)
            return _LEAF
        return (kind, aux, tuple([public(c) for c in children]))

    node = public(treedef._node)
    return PyTreeDef(node, len(opened)), opened


def leaf_data(x: Any) -> Any:
    """The data of ``x`` where it is an extended leaf (a key array), else ``x``."""
    if type(x) not in _extended_types:
        return x
    (data,), _ = _physical_kind_get(type(x)).flatten(x)
    return data
