"""The public flatten / unflatten / map / reduce / transpose functions, treedef helpers and
their key-path forms."""
from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

from tinyjax.tree_util.keys import KeyEntry, KeyPath, keystr
from tinyjax.tree_util.nodes import (_DICT_KIND, _LEAF, _LEAF_KIND, _LIST_KIND, _NONE_KIND,
                                     _TUPLE_KIND, _classify, _custom_flatten, _kind_get,
                                     _sorted_keys)
from tinyjax.tree_util.treedef import (PyTreeDef, _describe_structure, _flatten, _flatten_pred,
                                       _flatten_with_path, _Mismatch, _up_to)

T = TypeVar("T")
Leaf = Any


# ---------------------------------------------------------------------------
# Public flatten / unflatten API
# ---------------------------------------------------------------------------


def tree_flatten(
    tree: Any, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Leaf], PyTreeDef]:
    """Flattens a pytree into its leaves and structure.

    Args:
      tree: the pytree.
      is_leaf: optional predicate called on every subtree (the root included);
        when it returns true the subtree is treated as a leaf.

    Returns:
      ``(leaves, treedef)``: the leaves in traversal order and the structure.
    """
    leaves: list = []
    if is_leaf is None:
        node = _flatten(tree, leaves)
    else:
        node = _flatten_pred(tree, leaves, is_leaf)
    return leaves, PyTreeDef(node, len(leaves))


def tree_unflatten(treedef: PyTreeDef, leaves: Iterable[Leaf]) -> Any:
    """Rebuilds a pytree of structure ``treedef`` from ``leaves``.

    Raises:
      ValueError: if the number of leaves differs from ``treedef.num_leaves``.
    """
    return treedef.unflatten(leaves)


def tree_leaves(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> list[Leaf]:
    """Returns the leaves of ``tree`` in traversal order (``None`` is not a leaf)."""
    leaves: list = []
    if is_leaf is None:
        _flatten(tree, leaves)
    else:
        _flatten_pred(tree, leaves, is_leaf)
    return leaves


def tree_structure(tree: Any, is_leaf: Callable[[Any], bool] | None = None) -> PyTreeDef:
    """Returns the :class:`PyTreeDef` of ``tree``."""
    return tree_flatten(tree, is_leaf)[1]


def _map_error(e: _Mismatch, i: int, treedef: PyTreeDef, other: Any, fname: str) -> ValueError:
    return ValueError(
        f"{fname}: tree argument {i} does not match the structure of tree "
        f"argument 0 (which must be a prefix of it): {e.msg}\n"
        f"  at key path: {keystr(e.path) or '(root)'}\n"
        f"  tree 0 structure: {treedef}\n"
        f"  tree {i} structure: {_describe_structure(other)}"
    )


def _flatten_rest(treedef: PyTreeDef, rest: tuple, fname: str) -> list[list]:
    node = treedef._node
    if node is _LEAF:
        return [[r] for r in rest]
    all_rest = []
    for i, r in enumerate(rest, 1):
        out: list = []
        try:
            _up_to(node, r, out)
        except _Mismatch as e:
            raise _map_error(e, i, treedef, r, fname) from None
        all_rest.append(out)
    return all_rest


def tree_map(
    f: Callable[..., Any],
    tree: Any,
    *rest: Any,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Maps ``f`` over the leaves of ``tree`` (and of ``rest``).

    Each tree in ``rest`` must have the same structure as ``tree`` or have
    ``tree`` as a prefix: at each leaf position of ``tree`` the whole
    corresponding subtree of the other tree is passed to ``f``.

    Returns:
      A tree of ``tree``'s structure with leaves ``f(x, *xs)``.

    Raises:
      ValueError: if a tree in ``rest`` does not match, naming both structures.
    """
    leaves, treedef = tree_flatten(tree, is_leaf)
    if not rest:
        return treedef.unflatten([f(x) for x in leaves])
    all_rest = _flatten_rest(treedef, rest, "tree_map")
    return treedef.unflatten(list(map(f, leaves, *all_rest)))


_no_initializer = object()


def tree_reduce(
    function: Callable[[T, Any], T],
    tree: Any,
    initializer: Any = _no_initializer,
    is_leaf: Callable[[Any], bool] | None = None,
) -> T:
    """``functools.reduce(function, tree_leaves(tree), [initializer])``.

    Without an initializer, reducing a tree with no leaves raises TypeError.
    """
    leaves = tree_leaves(tree, is_leaf)
    if initializer is _no_initializer:
        return functools.reduce(function, leaves)
    return functools.reduce(function, leaves, initializer)


def tree_reduce_associative(
    operation: Callable[[T, T], T],
    tree: Any,
    *,
    identity: Any = _no_initializer,
    is_leaf: Callable[[Any], bool] | None = None,
) -> T:
    """Reduce the leaves with an associative ``operation`` as a balanced tree of calls
    (depth log2 of the number of leaves).  A tree without leaves gives ``identity``;
    without one it is a TypeError."""
    leaves = tree_leaves(tree, is_leaf)
    if not leaves:
        if identity is _no_initializer:
            raise TypeError("Must specify identity for parallel reduction of empty "
                            "sequence.")
        return identity

    def reduce(xs: list) -> Any:
        if len(xs) == 1:
            return xs[0]
        mid = len(xs) // 2
        return operation(reduce(xs[:mid]), reduce(xs[mid:]))
    return reduce(leaves)


def tree_broadcast(prefix_tree: Any, full_tree: Any,
                   is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """``prefix_tree`` with each of its leaves repeated over the matching subtree of
    ``full_tree`` (the result has ``full_tree``'s structure)."""
    prefix_def = tree_structure(prefix_tree, is_leaf)
    subtrees = prefix_def.flatten_up_to(full_tree)
    leaves = tree_leaves(prefix_tree, is_leaf)
    return prefix_def.unflatten([
        tree_map(lambda _: leaf, sub, is_leaf=is_leaf) for leaf, sub in zip(leaves, subtrees)])


def tree_all(tree: Any, *, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """True iff every leaf of ``tree`` is truthy (True for a tree with no leaves)."""
    return all(tree_leaves(tree, is_leaf))


def tree_transpose(
    outer_treedef: PyTreeDef, inner_treedef: PyTreeDef | None, pytree_to_transpose: Any
) -> Any:
    """Transposes a tree of structure ``outer(inner)`` into one of ``inner(outer)``.

    Args:
      outer_treedef: the outer structure.
      inner_treedef: the inner structure; if None it is inferred from the
        first subtree of ``pytree_to_transpose`` at a leaf of ``outer_treedef``.
      pytree_to_transpose: a tree of structure ``outer_treedef.compose(inner_treedef)``.

    Raises:
      TypeError: if the number of leaves is not
        ``outer_treedef.num_leaves * inner_treedef.num_leaves``.
    """
    flat, treedef = tree_flatten(pytree_to_transpose)
    if inner_treedef is None:
        inner_treedef = tree_structure(outer_treedef.flatten_up_to(pytree_to_transpose)[0])
    inner_size = inner_treedef.num_leaves
    outer_size = outer_treedef.num_leaves
    if treedef.num_leaves != inner_size * outer_size:
        expected = outer_treedef.compose(inner_treedef)
        raise TypeError(f"Mismatch\n{treedef}\n != \n{expected}")
    rows = [flat[i * inner_size:(i + 1) * inner_size] for i in range(outer_size)]
    subtrees = [outer_treedef.unflatten(col) for col in zip(*rows)] if rows else [
        outer_treedef.unflatten([]) for _ in range(inner_size)
    ]
    return inner_treedef.unflatten(subtrees)


def build_tree(treedef: PyTreeDef, xs: Any) -> Any:
    """Builds a tree of structure ``treedef`` from nested iterables ``xs``.

    Example: for ``treedef = tree_structure([(1, 2), {'a': 3, 'b': 4}])``,
    ``build_tree(treedef, [[10, 11], [12, 13]])`` is
    ``[(10, 11), {'a': 12, 'b': 13}]``.
    """
    return treedef.from_iterable_tree(xs)


# ---------------------------------------------------------------------------
# Treedef helpers
# ---------------------------------------------------------------------------


def treedef_is_leaf(treedef: PyTreeDef) -> bool:
    """True if ``treedef`` has a single node (a leaf, or -- as in JAX -- ``None``)."""
    return treedef.num_nodes == 1


def treedef_is_strict_leaf(treedef: PyTreeDef) -> bool:
    """True if ``treedef`` is exactly one leaf (``None`` is excluded)."""
    return treedef._node is _LEAF


def treedef_children(treedef: PyTreeDef) -> list[PyTreeDef]:
    """Treedefs of the immediate children of ``treedef``."""
    return treedef.children()


def treedef_tuple(treedefs: Iterable[PyTreeDef]) -> PyTreeDef:
    """The treedef of a tuple whose children have the given structures."""
    return PyTreeDef((_TUPLE_KIND, None, tuple([td._node for td in treedefs])))


def all_leaves(iterable: Iterable[Any], is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """True iff every element of ``iterable`` is a leaf (``None`` is not a leaf)."""
    if is_leaf is None:
        for x in iterable:
            if (_kind_get(type(x)) or _classify(type(x))) is not _LEAF_KIND:
                return False
        return True
    lst = list(iterable)
    return lst == tree_leaves(lst, is_leaf)


# ---------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------


def tree_flatten_with_path(
    tree: Any, is_leaf: Callable[..., bool] | None = None, is_leaf_takes_path: bool = False
) -> tuple[list[tuple[KeyPath, Leaf]], PyTreeDef]:
    """Like :func:`tree_flatten` but each leaf comes with its key path.

    Returns:
      ``([(key_path, leaf), ...], treedef)``. Tuple/list children get
      :class:`SequenceKey`, dict-like children :class:`DictKey`, namedtuple and
      dataclass fields :class:`GetAttrKey`, children of custom nodes
      registered without keys :class:`FlattenedIndexKey`.  With
      ``is_leaf_takes_path`` the predicate is called as ``is_leaf(key_path, x)``.
    """
    out: list = []
    node = _flatten_with_path(tree, (), out, is_leaf, is_leaf_takes_path)
    return out, PyTreeDef(node, len(out))


def tree_leaves_with_path(
    tree: Any, is_leaf: Callable[..., bool] | None = None, is_leaf_takes_path: bool = False
) -> list[tuple[KeyPath, Leaf]]:
    """The ``(key_path, leaf)`` pairs of ``tree`` in traversal order."""
    out: list = []
    _flatten_with_path(tree, (), out, is_leaf, is_leaf_takes_path)
    return out


def tree_map_with_path(
    f: Callable[..., Any],
    tree: Any,
    *rest: Any,
    is_leaf: Callable[..., bool] | None = None,
    is_leaf_takes_path: bool = False,
) -> Any:
    """Like :func:`tree_map` but ``f`` receives the key path first:
    the result has leaves ``f(key_path, x, *xs)``."""
    pairs, treedef = tree_flatten_with_path(tree, is_leaf, is_leaf_takes_path)
    if not rest:
        return treedef.unflatten([f(p, x) for p, x in pairs])
    all_rest = _flatten_rest(treedef, rest, "tree_map_with_path")
    paths = [p for p, _ in pairs]
    leaves = [x for _, x in pairs]
    return treedef.unflatten(list(map(f, paths, leaves, *all_rest)))


# ---------------------------------------------------------------------------
# One level of a tree
# ---------------------------------------------------------------------------


def is_tree_node(typ: type) -> bool:
    """Whether values of type ``typ`` are pytree nodes (containers), not leaves."""
    return (_kind_get(typ) or _classify(typ)) is not _LEAF_KIND


def flatten_one_level(tree: Any) -> tuple[Iterable[Any], Hashable]:
    """The children and the aux data of the root node of ``tree``; ValueError for a
    leaf."""
    kind = _kind_get(type(tree)) or _classify(type(tree))
    if kind is _LEAF_KIND:
        raise ValueError(f"can't tree-flatten type: {type(tree)}")
    if kind is _NONE_KIND:
        return (), None
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        return tuple(tree), None
    if kind is _DICT_KIND:
        keys = _sorted_keys(tree)
        return tuple(tree[k] for k in keys), keys
    children, aux = _custom_flatten(kind, tree)
    return tuple(children), aux


def flatten_one_level_with_keys(tree: Any) -> tuple[Iterable[tuple[KeyEntry, Any]], Hashable]:
    """Like :func:`flatten_one_level`, each child paired with its key."""
    pairs, treedef = tree_flatten_with_path(tree, is_leaf=lambda p, x: len(p) == 1,
                                            is_leaf_takes_path=True)
    if treedef_is_strict_leaf(treedef) and not pairs[0][0]:
        raise ValueError(f"can't tree-flatten type: {type(tree)}")
    _, aux = flatten_one_level(tree)
    return tuple((p[0], x) for p, x in pairs), aux
