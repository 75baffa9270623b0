"""Node kinds and the registry: how each type flattens (built-in containers, namedtuples,
registered classes), classified once per type."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tinyjax.tree_util.keys import FlattenedIndexKey, GetAttrKey


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

# The same cache as the transforms see pytrees (the physical view): an extended leaf type
# (typed PRNG key arrays) is a leaf in ``_kind_of`` and a node over its data here.
_physical_kind_of: dict[type, _NodeKind] = dict(_registry)
_physical_kind_get = _physical_kind_of.get
_extended_types: set[type] = set()


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
    _physical_kind_of[t] = kind
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
    if t in _registry or t in _extended_types:
        raise ValueError(f"Duplicate {what} PyTreeDef type registration for {t!r}.")
    _registry[t] = kind
    _kind_of[t] = kind  # overrides a cached leaf/namedtuple classification
    _physical_kind_of[t] = kind


def _register_extended_leaf(kind: _NodeKind) -> None:
    t = kind.type
    if t in _registry or t in _extended_types:
        raise ValueError(f"Duplicate extended leaf type registration for {t!r}.")
    _extended_types.add(t)
    _kind_of[t] = _LEAF_KIND
    _physical_kind_of[t] = kind


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
