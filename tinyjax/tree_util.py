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

This module is a leaf module of tinyjax: it imports nothing from tinyjax.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, Union

__all__ = [
    "PyTreeDef",
    "Partial",
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

T = TypeVar("T")
Typ = TypeVar("Typ", bound=type)
Leaf = Any


# ---------------------------------------------------------------------------
# Key path entries
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class SequenceKey:
    """Key of a child of a tuple or list: ``str`` gives ``[idx]``."""

    idx: int

    def __str__(self) -> str:
        return f"[{self.idx!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class DictKey:
    """Key of a child of a dict-like node: ``str`` gives ``[repr(key)]``."""

    key: Hashable

    def __str__(self) -> str:
        return f"[{self.key!r}]"


@dataclasses.dataclass(frozen=True, slots=True)
class GetAttrKey:
    """Key of an attribute child (namedtuple field, dataclass field): ``.name``."""

    name: str

    def __str__(self) -> str:
        return f".{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class FlattenedIndexKey:
    """Positional key of a child of a custom node registered without keys.

    ``str`` gives ``[<flat index i>]``, as in JAX.
    """

    key: int

    def __str__(self) -> str:
        return f"[<flat index {self.key}>]"


BuiltInKeyEntry = Union[SequenceKey, DictKey, GetAttrKey, FlattenedIndexKey]
KeyEntry = Any  # any hashable object; normally one of the BuiltInKeyEntry types
KeyPath = tuple  # tuple[KeyEntry, ...]


def _simple_key_str(key: Any) -> str:
    if isinstance(key, SequenceKey):
        return str(key.idx)
    if isinstance(key, DictKey):
        return str(key.key)
    if isinstance(key, GetAttrKey):
        return str(key.name)
    if isinstance(key, FlattenedIndexKey):
        return str(key.key)
    return str(key)


def keystr(keys: KeyPath, *, simple: bool = False, separator: str = "") -> str:
    """Pretty-prints a key path.

    Args:
      keys: a tuple of key entries (``SequenceKey``, ``DictKey``, ...), or any
        objects convertible with ``str``.
      simple: if True, use the bare form of each key (``0``, ``a``, ``name``)
        instead of the bracketed form (``[0]``, ``['a']``, ``.name``).
      separator: string placed between the keys.

    Returns:
      The joined string, e.g. ``"['a'][1][0]"`` for the path to ``2`` in
      ``{'a': [1, (2, 3)]}``.
    """
    if simple:
        return separator.join([_simple_key_str(k) for k in keys])
    return separator.join([str(k) for k in keys])


# ---------------------------------------------------------------------------
# Node kinds and the registry
# ---------------------------------------------------------------------------

# Categories of node kinds (used for error messages, repr and dispatch).
_C_LEAF = "leaf"
_C_NONE = "none"
_C_TUPLE = "tuple"
_C_LIST = "list"
_C_DICT = "dict"
_C_NAMEDTUPLE = "namedtuple"
_C_CUSTOM = "custom"
_C_DATACLASS = "dataclass"


class _NodeKind:
    """How to take apart and rebuild one node type. Compared by identity."""

    __slots__ = ("type", "category", "flatten", "unflatten", "flatten_with_keys")

    def __init__(
        self,
        type_: type | None,
        category: str,
        flatten: Callable[[Any], tuple[Iterable[Any], Any]] | None = None,
        unflatten: Callable[[Any, tuple], Any] | None = None,
        flatten_with_keys: Callable[[Any], tuple[Iterable[tuple[Any, Any]], Any]]
        | None = None,
    ) -> None:
        self.type = type_
        self.category = category
        self.flatten = flatten
        self.unflatten = unflatten
        self.flatten_with_keys = flatten_with_keys

    def __repr__(self) -> str:  # debugging aid only
        name = getattr(self.type, "__name__", self.type)
        return f"<_NodeKind {self.category} {name}>"


_LEAF_KIND = _NodeKind(None, _C_LEAF)
_NONE_KIND = _NodeKind(type(None), _C_NONE)
_TUPLE_KIND = _NodeKind(tuple, _C_TUPLE)
_LIST_KIND = _NodeKind(list, _C_LIST)
_DICT_KIND = _NodeKind(dict, _C_DICT)

# The shared leaf node and the (childless) None node.
_LEAF: tuple = (_LEAF_KIND, None, ())
_NONE_NODE: tuple = (_NONE_KIND, None, ())

# Explicitly registered node types (the built-in containers included).
_registry: dict[type, _NodeKind] = {
    type(None): _NONE_KIND,
    tuple: _TUPLE_KIND,
    list: _LIST_KIND,
    dict: _DICT_KIND,
}

# Classification cache: every type seen so far -> its kind (registered kind,
# namedtuple kind or _LEAF_KIND). A superset of _registry.
_kind_of: dict[type, _NodeKind] = dict(_registry)
_kind_get = _kind_of.get


def _classify(t: type) -> _NodeKind:
    """Classifies a type not yet in the cache (leaf or namedtuple)."""
    kind = _kind_of.get(t)
    if kind is not None:
        return kind
    if issubclass(t, tuple) and hasattr(t, "_fields"):
        kind = _make_namedtuple_kind(t)
    else:
        kind = _LEAF_KIND
    _kind_of[t] = kind
    return kind


def _make_namedtuple_kind(t: type) -> _NodeKind:
    def flatten(x):
        return x, None

    def unflatten(_aux, children):
        return t(*children)

    def flatten_with_keys(x):
        return [(GetAttrKey(f), v) for f, v in zip(x._fields, x)], None

    return _NodeKind(t, _C_NAMEDTUPLE, flatten, unflatten, flatten_with_keys)


def _register(kind: _NodeKind, what: str = "custom") -> None:
    t = kind.type
    if t in _registry:
        raise ValueError(f"Duplicate {what} PyTreeDef type registration for {t!r}.")
    _registry[t] = kind
    _kind_of[t] = kind  # overrides a cached leaf/namedtuple classification


def _sorted_keys(d: dict) -> tuple:
    try:
        return tuple(sorted(d))
    except Exception as e:
        raise ValueError(
            "Comparator raised exception while sorting pytree dictionary keys."
        ) from e


def _custom_flatten(kind: _NodeKind, x: Any) -> tuple[Any, Any]:
    out = kind.flatten(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            "The flatten function for a custom PyTree node of type "
            f"{kind.type!r} should return a (children, aux_data) tuple, "
            f"got {out!r}"
        )
    return out


def _custom_flatten_with_keys(kind: _NodeKind, x: Any) -> tuple[list, Any]:
    """(list of (key, child), aux) for any non-builtin node kind."""
    if kind.flatten_with_keys is None:
        children, aux = _custom_flatten(kind, x)
        return [(FlattenedIndexKey(i), c) for i, c in enumerate(children)], aux
    out = kind.flatten_with_keys(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError(
            "The flatten_with_keys function for a custom PyTree node of type "
            f"{kind.type!r} should return a (key_child_pairs, aux_data) tuple, "
            f"got {out!r}"
        )
    key_children, aux = out
    pairs = []
    for kc in key_children:
        if not (isinstance(kc, tuple) and len(kc) == 2):
            raise ValueError(
                "The flatten_with_keys function for a custom PyTree node of type "
                f"{kind.type!r} should yield (key, child) pairs, got {kc!r}"
            )
        pairs.append(kc)
    return pairs, aux


# ---------------------------------------------------------------------------
# Core recursive algorithms on nodes
# ---------------------------------------------------------------------------


def _flatten(x: Any, leaves: list) -> tuple:
    """Flattens ``x`` appending leaves to ``leaves``; returns its node."""
    kind = _kind_get(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
        return _LEAF
    # Children that are leaves are handled inline (no recursive call): this is
    # the bulk of the work for typical argument trees.
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        nodes = []
        for c in x:
            if _kind_get(type(c)) is _LEAF_KIND:
                leaves.append(c)
                nodes.append(_LEAF)
            else:
                nodes.append(_flatten(c, leaves))
        return (kind, None, tuple(nodes))
    if kind is _DICT_KIND:
        keys = _sorted_keys(x)
        nodes = []
        for k in keys:
            c = x[k]
            if _kind_get(type(c)) is _LEAF_KIND:
                leaves.append(c)
                nodes.append(_LEAF)
            else:
                nodes.append(_flatten(c, leaves))
        return (kind, keys, tuple(nodes))
    if kind is _NONE_KIND:
        return _NONE_NODE
    if kind is None:
        kind = _classify(type(x))
        if kind is _LEAF_KIND:
            leaves.append(x)
            return _LEAF
    children, aux = _custom_flatten(kind, x)
    return (kind, aux, tuple([_flatten(c, leaves) for c in children]))


def _flatten_pred(x: Any, leaves: list, is_leaf: Callable[[Any], Any]) -> tuple:
    """Like :func:`_flatten` but ``is_leaf(x)`` being true stops recursion."""
    if is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind = _kind_get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
        return _LEAF
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        return (kind, None, tuple([_flatten_pred(c, leaves, is_leaf) for c in x]))
    if kind is _DICT_KIND:
        keys = _sorted_keys(x)
        return (kind, keys, tuple([_flatten_pred(x[k], leaves, is_leaf) for k in keys]))
    if kind is _NONE_KIND:
        return _NONE_NODE
    children, aux = _custom_flatten(kind, x)
    return (kind, aux, tuple([_flatten_pred(c, leaves, is_leaf) for c in children]))


def _flatten_with_path(
    x: Any, path: tuple, out: list, is_leaf: Callable[..., Any] | None,
    takes_path: bool = False,
) -> tuple:
    """Flattens ``x`` appending ``(key_path, leaf)`` pairs to ``out``.

    ``is_leaf(x)`` decides leaves, or ``is_leaf(path, x)`` with ``takes_path``."""
    if is_leaf is not None and (is_leaf(path, x) if takes_path else is_leaf(x)):
        out.append((path, x))
        return _LEAF
    kind = _kind_get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        out.append((path, x))
        return _LEAF
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        return (
            kind,
            None,
            tuple(
                [
                    _flatten_with_path(c, path + (SequenceKey(i),), out, is_leaf,
                                       takes_path)
                    for i, c in enumerate(x)
                ]
            ),
        )
    if kind is _DICT_KIND:
        keys = _sorted_keys(x)
        return (
            kind,
            keys,
            tuple(
                [
                    _flatten_with_path(x[k], path + (DictKey(k),), out, is_leaf,
                                       takes_path)
                    for k in keys
                ]
            ),
        )
    if kind is _NONE_KIND:
        return _NONE_NODE
    key_children, aux = _custom_flatten_with_keys(kind, x)
    return (
        kind,
        aux,
        tuple(
            [_flatten_with_path(c, path + (k,), out, is_leaf, takes_path)
             for k, c in key_children]
        ),
    )


def _unflatten(node: tuple, nxt: Callable[[], Any]) -> Any:
    """Rebuilds a (non-leaf) node; ``nxt()`` returns the next leaf."""
    kind, aux, children = node
    if kind is _TUPLE_KIND:
        return tuple([nxt() if c is _LEAF else _unflatten(c, nxt) for c in children])
    if kind is _LIST_KIND:
        return [nxt() if c is _LEAF else _unflatten(c, nxt) for c in children]
    if kind is _DICT_KIND:
        return dict(
            zip(aux, [nxt() if c is _LEAF else _unflatten(c, nxt) for c in children])
        )
    if kind is _NONE_KIND:
        return None
    if kind is _LEAF_KIND:
        return nxt()
    return kind.unflatten(
        aux, tuple([nxt() if c is _LEAF else _unflatten(c, nxt) for c in children])
    )


def _count(node: tuple) -> tuple[int, int]:
    """(num_leaves, num_nodes) of a node."""
    if node is _LEAF:
        return 1, 1
    leaves, nodes = 0, 1
    for c in node[2]:
        if c is _LEAF:
            leaves += 1
            nodes += 1
        else:
            cl, cn = _count(c)
            leaves += cl
            nodes += cn
    return leaves, nodes


def _compose(node: tuple, inner: tuple) -> tuple:
    if node is _LEAF:
        return inner
    kind, aux, children = node
    if not children:
        return node
    return (kind, aux, tuple([_compose(c, inner) for c in children]))


def _node_str(node: tuple) -> str:
    kind, aux, children = node
    cat = kind.category
    if cat == _C_LEAF:
        return "*"
    if cat == _C_NONE:
        return "None"
    parts = [_node_str(c) for c in children]
    if cat == _C_TUPLE:
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
    if cat == _C_LIST:
        return "[" + ", ".join(parts) + "]"
    if cat == _C_DICT:
        return "{" + ", ".join(f"{k!r}: {p}" for k, p in zip(aux, parts)) + "}"
    if cat == _C_NAMEDTUPLE:
        head = f"namedtuple[{kind.type.__name__}]"
    else:
        head = f"{kind.type.__name__}[{aux}]"
    return f"CustomNode({head}, [{', '.join(parts)}])"


def _from_iterable_tree(node: tuple, xs: Any) -> Any:
    if node is _LEAF:
        return xs
    kind, aux, children = node
    ys = list(xs)
    if len(ys) != len(children):
        raise ValueError(
            f"Arity mismatch between trees: expected {len(children)} children, "
            f"got {len(ys)} in {xs!r}."
        )
    built = [_from_iterable_tree(c, y) for c, y in zip(children, ys)]
    return _make_node(node, built)


def _make_node(node: tuple, built: list) -> Any:
    """Builds one node from already-built children."""
    kind, aux, _ = node
    if kind is _TUPLE_KIND:
        return tuple(built)
    if kind is _LIST_KIND:
        return list(built)
    if kind is _DICT_KIND:
        return dict(zip(aux, built))
    if kind is _NONE_KIND:
        return None
    return kind.unflatten(aux, tuple(built))


# ---------------------------------------------------------------------------
# flatten_up_to (used by tree_map with several trees)
# ---------------------------------------------------------------------------


class _Mismatch(Exception):
    """Internal: structure mismatch found by flatten_up_to; carries the path."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg
        self.rpath: list = []  # key path, innermost first

    @property
    def path(self) -> tuple:
        return tuple(reversed(self.rpath))


def _up_to_children(children: tuple, values: Sequence, out: list, key_of) -> None:
    for i, c in enumerate(children):
        if c is _LEAF:
            out.append(values[i])
        else:
            try:
                _up_to(c, values[i], out)
            except _Mismatch as e:
                e.rpath.append(key_of(i))
                raise


def _up_to(node: tuple, x: Any, out: list) -> None:
    """Appends to ``out`` the subtrees of ``x`` at the leaves of ``node``."""
    kind, aux, children = node
    if kind is _TUPLE_KIND:
        if type(x) is not tuple:
            raise _Mismatch(f"Expected tuple, got {x!r}.")
        if len(x) != len(children):
            raise _Mismatch(
                f"Tuple arity mismatch: {len(x)} != {len(children)}; tuple: {x!r}."
            )
        _up_to_children(children, x, out, SequenceKey)
    elif kind is _LIST_KIND:
        if type(x) is not list:
            raise _Mismatch(f"Expected list, got {x!r}.")
        if len(x) != len(children):
            raise _Mismatch(
                f"List arity mismatch: {len(x)} != {len(children)}; list: {x!r}."
            )
        _up_to_children(children, x, out, SequenceKey)
    elif kind is _DICT_KIND:
        if type(x) is not dict:
            raise _Mismatch(f"Expected dict, got {x!r}.")
        keys = _sorted_keys(x)
        if keys != aux:
            raise _Mismatch(
                f"Dict key mismatch; expected keys: {list(aux)!r}; "
                f"present keys: {list(keys)!r}."
            )
        _up_to_children(children, [x[k] for k in keys], out, lambda i: DictKey(aux[i]))
    elif kind is _NONE_KIND:
        if x is not None:
            raise _Mismatch(
                f"Expected None, got {x!r}. (None is an empty pytree node, not "
                "a leaf; to treat None as a leaf pass is_leaf=lambda x: x is None "
                "to the first tree.)"
            )
    elif kind is _LEAF_KIND:
        out.append(x)
    elif kind.category == _C_NAMEDTUPLE:
        if not (isinstance(x, tuple) and hasattr(x, "_fields")):
            raise _Mismatch(f"Expected named tuple, got {x!r}.")
        if len(x) != len(children):
            raise _Mismatch(
                f"Named tuple arity mismatch: {len(x)} != {len(children)}; "
                f"tuple: {x!r}."
            )
        if type(x) is not kind.type:
            raise _Mismatch(
                f"Named tuple type mismatch: expected type: {kind.type!r}, "
                f"tuple: {x!r}."
            )
        fields = kind.type._fields
        _up_to_children(children, x, out, lambda i: GetAttrKey(fields[i]))
    else:
        what = "dataclass node" if kind.category == _C_DATACLASS else "node"
        if (_kind_get(type(x)) or _classify(type(x))) is not kind:
            raise _Mismatch(
                f"Custom {what} type mismatch: expected type: {kind.type!r}, "
                f"value: {x!r}."
            )
        xchildren, xaux = _custom_flatten(kind, x)
        try:
            same = bool(xaux == aux)
        except Exception:
            same = False
        if not same:
            raise _Mismatch(
                f"Mismatch custom {what} data: {aux!r} != {xaux!r}; value: {x!r}."
            )
        xchildren = list(xchildren)
        if len(xchildren) != len(children):
            raise _Mismatch(
                f"Custom type arity mismatch: {len(xchildren)} != {len(children)}; "
                f"value: {x!r}."
            )

        def key_of(i, x=x, kind=kind):
            try:
                return _custom_flatten_with_keys(kind, x)[0][i][0]
            except Exception:
                return FlattenedIndexKey(i)

        _up_to_children(children, xchildren, out, key_of)


def _describe_structure(tree: Any) -> str:
    try:
        return str(tree_structure(tree))
    except Exception as e:  # error path only; never mask the real error
        return f"<could not compute structure: {type(e).__name__}: {e}>"


# ---------------------------------------------------------------------------
# PyTreeDef
# ---------------------------------------------------------------------------


class PyTreeDef:
    """The structure of a pytree: everything except the leaves.

    Instances are immutable, hashable (hash computed once, lazily) and
    compared structurally with ``==``. Obtain them from :func:`tree_flatten`
    or :func:`tree_structure`; the constructor is private.
    """

    __slots__ = ("_node", "_num_leaves", "_num_nodes", "_hash", "__weakref__")

    def __init__(self, node: tuple, num_leaves: int = -1) -> None:
        self._node = node
        self._num_leaves = num_leaves
        self._num_nodes = -1
        self._hash = None

    # -- sizes -------------------------------------------------------------
    def _compute_counts(self) -> None:
        self._num_leaves, self._num_nodes = _count(self._node)

    @property
    def num_leaves(self) -> int:
        """Number of leaves in the structure."""
        if self._num_leaves < 0:
            self._compute_counts()
        return self._num_leaves

    @property
    def num_nodes(self) -> int:
        """Number of nodes, counting leaves and ``None`` nodes."""
        if self._num_nodes < 0:
            self._compute_counts()
        return self._num_nodes

    # -- structure ---------------------------------------------------------
    def children(self) -> list[PyTreeDef]:
        """Treedefs of the immediate children (empty for leaves and None)."""
        return [PyTreeDef(c) for c in self._node[2]]

    def node_data(self) -> tuple[type, Any] | None:
        """``None`` for a leaf, else ``(node_type, aux_data)`` of the root.

        For a dict the aux data is the list of sorted keys; tuples, lists,
        ``None`` and namedtuples have ``None`` aux data.
        """
        kind, aux, _ = self._node
        if kind is _LEAF_KIND:
            return None
        if kind is _DICT_KIND:
            return dict, list(aux)
        return kind.type, aux

    def compose(self, inner: PyTreeDef) -> PyTreeDef:
        """The treedef obtained by replacing every leaf of ``self`` by ``inner``."""
        if not isinstance(inner, PyTreeDef):
            raise TypeError(f"compose() expects a PyTreeDef, got {inner!r}")
        return PyTreeDef(_compose(self._node, inner._node))

    # -- (un)flattening ----------------------------------------------------
    def unflatten(self, leaves: Iterable[Any]) -> Any:
        """Builds a pytree of this structure from an iterable of leaves.

        Raises:
          ValueError: if the number of leaves differs from ``num_leaves``.
        """
        if type(leaves) is not list and type(leaves) is not tuple:
            leaves = list(leaves)
        n = len(leaves)
        expected = self._num_leaves if self._num_leaves >= 0 else self.num_leaves
        if n != expected:
            kind = "few" if n < expected else "many"
            raise ValueError(f"Too {kind} leaves for PyTreeDef; expected {expected}, got {n}")
        node = self._node
        if node is _LEAF:
            return leaves[0]
        return _unflatten(node, iter(leaves).__next__)

    def flatten_up_to(self, xs: Any) -> list[Any]:
        """Flattens ``xs`` down to the leaves of this (prefix) structure.

        ``xs`` must have this treedef as a prefix: every node of ``self`` must
        match the corresponding node of ``xs``, and the subtrees of ``xs`` found
        at the leaves of ``self`` are returned whole, in leaf order.

        Raises:
          ValueError: on a mismatch, naming both structures and the key path.
        """
        node = self._node
        if node is _LEAF:
            return [xs]
        out: list = []
        try:
            _up_to(node, xs, out)
        except _Mismatch as e:
            raise ValueError(
                f"{e.msg}\n"
                f"  at key path: {keystr(e.path) or '(root)'}\n"
                f"  expected (prefix) structure: {self}\n"
                f"  structure of the value:      {_describe_structure(xs)}"
            ) from None
        return out

    def from_iterable_tree(self, xs: Any) -> Any:
        """Builds a tree of this structure from nested iterables (see build_tree)."""
        return _from_iterable_tree(self._node, xs)

    def walk(self, f_node: Callable[[tuple, Any], Any], f_leaf: Callable[[Any], Any] | None,
             leaves: Iterable[Any]) -> Any:
        """Folds over the structure: leaves through ``f_leaf`` (identity if
        None), each node through ``f_node(children_tuple, node_aux)``."""
        it = iter(leaves)

        def go(node):
            if node is _LEAF:
                leaf = next(it)
                return leaf if f_leaf is None else f_leaf(leaf)
            kind, aux, children = node
            return f_node(tuple([go(c) for c in children]),
                          list(aux) if kind is _DICT_KIND else aux)

        try:
            result = go(self._node)
        except StopIteration:
            raise ValueError("Too few leaves for PyTreeDef") from None
        for _ in it:
            raise ValueError("Too many leaves for PyTreeDef")
        return result

    # -- comparisons -------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, PyTreeDef):
            return NotImplemented
        h1, h2 = self._hash, other._hash
        if h1 is not None and h2 is not None and h1 != h2:
            return False
        try:
            return self._node == other._node
        except Exception as e:
            raise ValueError(
                "Exception raised while checking equality of metadata fields of "
                "pytree. Make sure that metadata fields are hashable and have "
                "simple equality semantics. (Note: arrays cannot be passed as "
                "metadata fields!)"
            ) from e

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    def __hash__(self) -> int:
        h = self._hash
        if h is None:
            try:
                h = hash(self._node)
            except TypeError:  # unhashable aux data (a dict, say): hash the shape only,
                h = _shape_hash(self._node)  # equality still compares the aux data
            self._hash = h
        return h

    def __repr__(self) -> str:
        return f"PyTreeDef({_node_str(self._node)})"

    __str__ = __repr__

    # Treedefs are immutable: copies are the object itself.
    def __copy__(self) -> PyTreeDef:
        return self

    def __deepcopy__(self, memo: dict) -> PyTreeDef:
        return self

    def __reduce__(self):
        # Custom node types are pickled by reference and looked up in the
        # registry when unpickling (they must be registered by then).
        return _unpickle_treedef, (_encode_node(self._node),)


_BUILTIN_BY_CATEGORY = {
    _C_NONE: _NONE_KIND,
    _C_TUPLE: _TUPLE_KIND,
    _C_LIST: _LIST_KIND,
    _C_DICT: _DICT_KIND,
}


def _shape_hash(node: tuple) -> int:
    """A hash of a node's kinds and arities, leaving out aux data (as JAX's treedef hash
    does, so that unhashable aux data -- a dict -- can key caches)."""
    kind, _, children = node
    return hash((id(kind), tuple(_shape_hash(c) for c in children)))


def _encode_node(node: tuple) -> Any:
    if node is _LEAF:
        return None
    kind, aux, children = node
    ref = kind.category if kind.category in _BUILTIN_BY_CATEGORY else kind.type
    return (ref, aux, tuple([_encode_node(c) for c in children]))


def _decode_node(enc: Any) -> tuple:
    if enc is None:
        return _LEAF
    ref, aux, children = enc
    if isinstance(ref, str):
        kind = _BUILTIN_BY_CATEGORY[ref]
        if kind is _NONE_KIND:
            return _NONE_NODE
    else:
        kind = _kind_get(ref) or _classify(ref)
        if kind is _LEAF_KIND:
            raise ValueError(f"Unknown custom type in pickled PyTreeDef: {ref!r}")
    return (kind, aux, tuple([_decode_node(c) for c in children]))


def _unpickle_treedef(enc: Any) -> PyTreeDef:
    return PyTreeDef(_decode_node(enc))


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


def tree_all(tree: Any, *, is_leaf: Callable[[Any], bool] | None = None) -> bool:
    """True iff every leaf of ``tree`` is truthy (True for a tree with no leaves)."""
    return all(tree_leaves(tree, is_leaf))


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
# Registration
# ---------------------------------------------------------------------------


def register_pytree_node(
    nodetype: type[T],
    flatten_func: Callable[[T], tuple[Iterable[Any], Hashable]],
    unflatten_func: Callable[[Hashable, Iterable[Any]], T],
) -> None:
    """Registers ``nodetype`` as a pytree node type.

    Args:
      nodetype: the type (matched exactly; subclasses are not covered).
      flatten_func: ``x -> (children, aux_data)``; ``children`` is an iterable
        flattened recursively, ``aux_data`` is hashable static data stored in
        the treedef.
      unflatten_func: ``(aux_data, children_tuple) -> x``.

    Raises:
      ValueError: if ``nodetype`` is already registered (built-ins included).
    """
    _register(_NodeKind(nodetype, _C_CUSTOM, flatten_func, unflatten_func))


def register_pytree_with_keys(
    nodetype: type[T],
    flatten_with_keys: Callable[[T], tuple[Iterable[tuple[KeyEntry, Any]], Hashable]],
    unflatten_func: Callable[[Hashable, Iterable[Any]], T],
    flatten_func: Callable[[T], tuple[Iterable[Any], Hashable]] | None = None,
) -> None:
    """Registers ``nodetype`` as a pytree node whose children have key paths.

    Args:
      nodetype: the type to register.
      flatten_with_keys: ``x -> (iterable of (key, child), aux_data)``.
      unflatten_func: ``(aux_data, children_tuple) -> x``.
      flatten_func: optional faster ``x -> (children, aux_data)``; must agree
        with ``flatten_with_keys``. Derived from it when omitted.
    """
    if flatten_func is None:

        def flatten_func(x):
            key_children, aux = flatten_with_keys(x)
            return [c for _, c in key_children], aux

    _register(
        _NodeKind(nodetype, _C_CUSTOM, flatten_func, unflatten_func, flatten_with_keys)
    )


def register_pytree_node_class(cls: Typ) -> Typ:
    """Class decorator: registers ``cls`` using its ``tree_flatten`` method and
    ``tree_unflatten(aux_data, children)`` classmethod. Returns ``cls``."""
    register_pytree_node(cls, operator.methodcaller("tree_flatten"), cls.tree_unflatten)
    return cls


def register_pytree_with_keys_class(cls: Typ) -> Typ:
    """Class decorator: like :func:`register_pytree_node_class` but uses the
    ``tree_flatten_with_keys`` method (and ``tree_flatten`` if defined)."""
    flatten_func = (
        operator.methodcaller("tree_flatten") if hasattr(cls, "tree_flatten") else None
    )
    register_pytree_with_keys(
        cls, operator.methodcaller("tree_flatten_with_keys"), cls.tree_unflatten,
        flatten_func,
    )
    return cls


def register_dataclass(
    nodetype: Typ,
    data_fields: Sequence[str] | None = None,
    meta_fields: Sequence[str] | None = None,
    drop_fields: Sequence[str] = (),
) -> Typ:
    """Registers a dataclass-like type as a pytree node. Usable as a decorator.

    ``data_fields`` become children (with :class:`GetAttrKey` paths);
    ``meta_fields`` become the (hashable) aux data, a tuple of their values.
    Unflattening calls ``nodetype(**fields)``.

    If both field lists are omitted, ``nodetype`` must be a dataclass and the
    fields are inferred: init fields whose ``metadata`` has ``static=True``
    (e.g. ``field(metadata=dict(static=True))``) are meta fields, the other
    init fields are data fields.

    Raises:
      TypeError: if only one field list is given, or fields are to be
        inferred but ``nodetype`` is not a dataclass.
      ValueError: for a dataclass, if the fields do not cover exactly the
        ``init=True`` fields minus ``drop_fields``.
    """
    drop = set(drop_fields)
    if data_fields is None or meta_fields is None:
        if (data_fields is None) != (meta_fields is None):
            raise TypeError(
                "register_dataclass: data_fields and meta_fields must both be "
                "specified when either is specified. Got "
                f"data_fields={data_fields!r} meta_fields={meta_fields!r}."
            )
        if not dataclasses.is_dataclass(nodetype):
            raise TypeError(
                "register_dataclass: data_fields and meta_fields are required "
                f"when nodetype is not a dataclass. Got nodetype={nodetype!r}."
            )
        data_fields, meta_fields = [], []
        for fld in dataclasses.fields(nodetype):
            if not fld.init or fld.name in drop:
                continue
            if fld.metadata.get("static", False):
                meta_fields.append(fld.name)
            else:
                data_fields.append(fld.name)
    meta_fields = tuple(meta_fields)
    data_fields = tuple(data_fields)

    if dataclasses.is_dataclass(nodetype):
        init_fields = {f.name for f in dataclasses.fields(nodetype) if f.init} - drop
        given = {*meta_fields, *data_fields}
        if given != init_fields:
            msg = (
                "data_fields and meta_fields must include all dataclass fields "
                "with ``init=True`` and only them."
            )
            if missing := init_fields - given:
                msg += (
                    f" Missing fields: {sorted(missing)}. Add them to drop_fields "
                    "to suppress this error."
                )
            if unexpected := given - init_fields:
                msg += f" Unexpected fields: {sorted(unexpected)}."
            raise ValueError(msg)

    def flatten(x):
        return (
            tuple([getattr(x, n) for n in data_fields]),
            tuple([getattr(x, n) for n in meta_fields]),
        )

    def flatten_with_keys(x):
        return (
            [(GetAttrKey(n), getattr(x, n)) for n in data_fields],
            tuple([getattr(x, n) for n in meta_fields]),
        )

    def unflatten(meta, data):
        kwargs = dict(zip(meta_fields, meta))
        kwargs.update(zip(data_fields, data))
        return nodetype(**kwargs)

    _register(
        _NodeKind(nodetype, _C_DATACLASS, flatten, unflatten, flatten_with_keys),
        "custom dataclass",
    )
    return nodetype


def register_static(cls: Typ) -> Typ:
    """Registers ``cls`` as a node with no children whose instances are the aux
    data (so they are static under jit). Instances must be hashable."""
    register_pytree_with_keys(cls, lambda obj: ((), obj), lambda obj, _children: obj)
    return cls


# Built-in custom registrations (same behaviour as JAX).
register_pytree_with_keys(
    collections.OrderedDict,
    lambda x: ([(DictKey(k), v) for k, v in x.items()], tuple(x.keys())),
    lambda keys, values: collections.OrderedDict(zip(keys, values)),
    lambda x: (tuple(x.values()), tuple(x.keys())),
)


def _defaultdict_flatten(d):
    keys = _sorted_keys(d)
    return tuple([d[k] for k in keys]), (d.default_factory, keys)


def _defaultdict_flatten_with_keys(d):
    keys = _sorted_keys(d)
    return [(DictKey(k), d[k]) for k in keys], (d.default_factory, keys)


register_pytree_with_keys(
    collections.defaultdict,
    _defaultdict_flatten_with_keys,
    lambda aux, values: collections.defaultdict(aux[0], zip(aux[1], values)),
    _defaultdict_flatten,
)


# ---------------------------------------------------------------------------
# Partial
# ---------------------------------------------------------------------------


class _HashableCallableShim:
    """Wraps a functools.partial so Partial does not merge its arguments.

    Delegates calling, hashing and equality to the wrapped callable.
    """

    def __init__(self, fun: Callable) -> None:
        self.fun = fun

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self.fun)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _HashableCallableShim):
            return self.fun == other.fun
        return self.fun == other

    def __repr__(self) -> str:
        return f"_HashableCallableShim({self.fun!r})"


class Partial(functools.partial):
    """A ``functools.partial`` that is a pytree.

    The wrapped function is static aux data; the bound positional arguments
    (a tuple) and keyword arguments (a dict) are the children, so
    ``tree_leaves(Partial(f, x, y=z)) == [x, z]``. If ``func`` is itself a
    ``functools.partial`` it is kept opaque (its arguments are part of the
    static function, not children).
    """

    def __new__(klass, func: Callable, *args: Any, **kwargs: Any) -> Partial:
        if isinstance(func, functools.partial):
            # functools.partial would merge the inner partial's arguments into
            # ours (making them pytree children); hide it behind a shim.
            original = func
            func = _HashableCallableShim(original)
            out = super().__new__(klass, func, *args, **kwargs)
            func.func = original.func
            func.args = original.args
            func.keywords = original.keywords
            return out
        return super().__new__(klass, func, *args, **kwargs)


register_pytree_node(
    Partial,
    lambda p: ((p.args, p.keywords), p.func),
    lambda func, xs: Partial(func, *xs[0], **xs[1]),
)
