"""``jax.tree_util.default_registry``: the registry every tree function uses, as an object
(JAX's ``PyTreeRegistry``): flattening through it and registering node types on it."""
from __future__ import annotations

from typing import Any, Callable

from tinyjax.tree_util.functions import flatten_one_level, tree_flatten
from tinyjax.tree_util.registration import register_pytree_node

__all__ = ["PyTreeRegistry", "default_registry"]


class PyTreeRegistry:
    """The node types pytrees are made of (there is one: ``default_registry``)."""

    def flatten(self, tree: Any, leaf_predicate: Callable[[Any], bool] | None = None):
        """``(leaves, treedef)`` of ``tree`` (``tree_flatten``)."""
        return tree_flatten(tree, is_leaf=leaf_predicate)

    def flatten_one_level(self, tree: Any):
        """The children of the node ``tree`` and its auxiliary data."""
        return flatten_one_level(tree)

    def register_node(self, nodetype: type, to_iterable: Callable,
                      from_iterable: Callable, to_iterable_with_keys: Any = None) -> None:
        """Make ``nodetype`` a node type (``register_pytree_node``)."""
        register_pytree_node(nodetype, to_iterable, from_iterable)

    def __repr__(self) -> str:
        return "PyTreeRegistry(default)"


default_registry = PyTreeRegistry()
