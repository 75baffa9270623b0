"""``jax.tree``: the short names of the pytree functions of :mod:`tinyjax.tree_util`.

``jax.tree.map(f, tree)`` is ``tree_util.tree_map(f, tree)``, and so on for every name
here; :func:`static` declares a dataclass field that ``register_dataclass`` keeps as
aux data instead of a child.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from tinyjax.tree_util import tree_all as all  # noqa: A001
from tinyjax.tree_util import tree_broadcast as broadcast
from tinyjax.tree_util import tree_flatten as flatten
from tinyjax.tree_util import tree_flatten_with_path as flatten_with_path
from tinyjax.tree_util import tree_leaves as leaves
from tinyjax.tree_util import tree_leaves_with_path as leaves_with_path
from tinyjax.tree_util import tree_map as map  # noqa: A001
from tinyjax.tree_util import tree_map_with_path as map_with_path
from tinyjax.tree_util import tree_reduce as reduce
from tinyjax.tree_util import tree_reduce_associative as reduce_associative
from tinyjax.tree_util import tree_structure as structure
from tinyjax.tree_util import tree_transpose as transpose
from tinyjax.tree_util import tree_unflatten as unflatten

__all__ = ["all", "broadcast", "flatten", "flatten_with_path", "leaves", "leaves_with_path",
           "map", "map_with_path", "reduce", "reduce_associative", "static", "structure",
           "transpose", "unflatten"]


def static(**kwargs: Any) -> Any:
    """A :func:`dataclasses.field` marked ``static``: a dataclass registered with
    ``tree_util.register_dataclass`` keeps such a field as aux data, not as a leaf.
    The keyword arguments are those of :func:`dataclasses.field`."""
    metadata = dict(kwargs.pop("metadata", None) or {})
    metadata["static"] = True
    return dataclasses.field(metadata=metadata, **kwargs)
