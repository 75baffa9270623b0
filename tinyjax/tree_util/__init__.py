"""Pytree utilities: a pure-Python re-implementation of ``jax.tree_util``.

A *pytree* is a nested structure of containers ("nodes") whose non-container
elements are *leaves*. The built-in node types are:

* ``tuple`` and ``list`` (children in order),
* ``dict`` (children in **sorted key order**; unflattening rebuilds a dict in
  sorted key order, exactly like JAX),
* ``None`` (a node with no children, i.e. an empty subtree -- *not* a leaf),
* namedtuples (any ``tuple`` subclass with a ``_fields`` attribute; rebuilt
  as the same namedtuple type),
* ``collections.OrderedDict`` (insertion order) and
  ``collections.defaultdict`` (sorted keys, keeps ``default_factory``),
* :class:`Partial`.

Anything else is a leaf unless registered with :func:`register_pytree_node`,
:func:`register_pytree_with_keys`, :func:`register_pytree_node_class`,
:func:`register_dataclass` or :func:`register_static`. Registration is by
exact type: subclasses of registered types are leaves unless registered too.

Implementation notes
--------------------
A :class:`PyTreeDef` wraps an immutable nested-tuple description of the tree.
Each node is a triple ``(kind, aux, children)`` where ``kind`` is a
``_NodeKind`` (compared by identity), ``aux`` is the node's static data (the
sorted keys of a dict, the aux data returned by a custom flatten function,
...) and ``children`` is a tuple of child nodes. Every leaf is represented by
the single shared object ``_LEAF`` so "is this child a leaf" is an identity
test. Using plain tuples makes structural equality and hashing run in C; the
hash is computed at most once per treedef and cached.

Flattening dispatches with one dict lookup (``type -> _NodeKind``) followed by
identity tests against the built-in kinds, so leaves, tuples, lists, dicts and
``None`` never touch the slower custom-node machinery. The lookup table also
caches the classification of every type seen so far (leaf or namedtuple), so
the namedtuple heuristic runs only once per type.

The package imports nothing else from tinyjax.  Its modules, by job: ``keys`` (key path
entries, :func:`keystr`), ``nodes`` (node kinds and the registry), ``treedef`` (the
recursive algorithms and :class:`PyTreeDef`), ``functions`` (the public tree functions),
``registration`` (registering node types), ``partial`` (:class:`Partial`), ``physical``
(pytrees as the transforms see them: extended leaves -- typed key arrays -- opened into
their data).
"""
from __future__ import annotations

from tinyjax.tree_util.functions import (all_leaves, build_tree, flatten_one_level,
                                         flatten_one_level_with_keys, is_tree_node, tree_all,
                                         tree_broadcast, tree_flatten, tree_flatten_with_path,
                                         tree_leaves, tree_leaves_with_path, tree_map,
                                         tree_map_with_path, tree_reduce,
                                         tree_reduce_associative, tree_structure,
                                         tree_transpose, tree_unflatten, treedef_children,
                                         treedef_is_leaf, treedef_is_strict_leaf, treedef_tuple)
from tinyjax.tree_util.keys import (DictKey, FlattenedIndexKey, GetAttrKey, KeyEntry, KeyPath,
                                    SequenceKey, keystr)
from tinyjax.tree_util.partial import Partial
from tinyjax.tree_util.registration import (register_dataclass, register_pytree_node,
                                            register_pytree_node_class,
                                            register_pytree_with_keys,
                                            register_pytree_with_keys_class, register_static)
from tinyjax.tree_util.treedef import PyTreeDef
from tinyjax.tree_util.default_registry import default_registry

__all__ = [
    "PyTreeDef",
    "Partial",
    "default_registry",
    "SequenceKey",
    "DictKey",
    "GetAttrKey",
    "FlattenedIndexKey",
    "KeyEntry",
    "KeyPath",
    "all_leaves",
    "build_tree",
    "flatten_one_level",
    "flatten_one_level_with_keys",
    "is_tree_node",
    "keystr",
    "register_dataclass",
    "register_pytree_node",
    "register_pytree_node_class",
    "register_pytree_with_keys",
    "register_pytree_with_keys_class",
    "register_static",
    "tree_all",
    "tree_broadcast",
    "tree_flatten",
    "tree_flatten_with_path",
    "tree_leaves",
    "tree_leaves_with_path",
    "tree_map",
    "tree_map_with_path",
    "tree_reduce",
    "tree_reduce_associative",
    "tree_structure",
    "tree_transpose",
    "tree_unflatten",
    "treedef_children",
    "treedef_is_leaf",
    "treedef_is_strict_leaf",
    "treedef_tuple",
]
