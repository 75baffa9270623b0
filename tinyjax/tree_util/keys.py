"""Key paths: the entries that name a child of a node (sequence index, dict key, attribute,
flattened index) and :func:`keystr`."""
from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any, Union


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
