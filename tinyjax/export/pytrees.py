"""Serializing the calling convention's pytree structures (``Exported.in_tree`` and
``out_tree``, physical treedefs: see :mod:`tinyjax.tree_util.physical`): the built-in
nodes (None, tuple, list, dict with string keys) by kind, an extended leaf's node (a typed
PRNG key array's) by its type's name, every other node type by the name it was
registered under here, its auxiliary data by the functions registered with it.  A
structure is encoded as nested JSON-able lists and rebuilt as an example pytree whose
physical structure is taken."""
from __future__ import annotations

import collections
import json
from typing import Any, Callable, Sequence, TypeVar

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.tree_util.nodes import _extended_types, _physical_kind_get
from tinyjax.tree_util.nodes import _registry as _pytree_node_kinds

__all__ = ["register_pytree_node_serialization", "register_namedtuple_serialization",
           "encode_treedef", "decode_treedef"]

T = TypeVar("T")

# type -> (serialized name, serialize_auxdata)
_serializers: dict[type, tuple[str, Callable[[Any], bytes]]] = {}
# serialized name -> (type, deserialize_auxdata, from_children)
_deserializers: dict[str, tuple[type, Callable[[bytes], Any], Callable]] = {}


def register_pytree_node_serialization(
        nodetype: type[T], *, serialized_name: str,
        serialize_auxdata: Callable[[Any], bytes],
        deserialize_auxdata: Callable[[bytes], Any],
        from_children: Callable[[Any, Sequence[Any]], Any] | None = None) -> type[T]:
    """Make pytree nodes of ``nodetype`` serializable in an Exported's ``in_tree`` and
    ``out_tree``: written as ``serialized_name`` with ``serialize_auxdata(aux)`` (bytes),
    rebuilt by ``from_children(deserialize_auxdata(bytes), children)`` (default: the
    unflatten function ``nodetype`` was registered with by
    :func:`tinyjax.tree_util.register_pytree_node`, which must come first).  Returns
    ``nodetype`` (usable as a class decorator)."""
    if nodetype in _serializers:
        raise ValueError(f"Duplicate serialization registration for type `{nodetype}`. "
                         "Previous registration was with serialized_name "
                         f"`{_serializers[nodetype][0]}`.")
    if serialized_name in _deserializers:
        raise ValueError("Duplicate serialization registration for serialized_name "
                         f"`{serialized_name}`. Previous registration was for type "
                         f"`{_deserializers[serialized_name][0]}`.")
    if from_children is None:
        kind = _pytree_node_kinds.get(nodetype)
        if kind is None:
            raise ValueError("If `from_children` is not present, you must call first"
                             f"`jax.tree_util.register_pytree_node` for `{nodetype}`")
        from_children = kind.unflatten
    _serializers[nodetype] = (serialized_name, serialize_auxdata)
    _deserializers[serialized_name] = (nodetype, deserialize_auxdata, from_children)
    return nodetype


def _is_namedtuple(nodetype: Any) -> bool:
    fields = getattr(nodetype, "_fields", None)
    return (isinstance(nodetype, type) and issubclass(nodetype, tuple)
            and isinstance(fields, Sequence) and all(isinstance(f, str) for f in fields))


def register_namedtuple_serialization(nodetype: type[T], *, serialized_name: str) -> type[T]:
    """Make the ``collections.namedtuple`` type ``nodetype`` serializable under
    ``serialized_name`` (its field names are stored, and must match when read back)."""
    if not _is_namedtuple(nodetype):
        raise ValueError("Use `jax.export.register_pytree_node_serialization` for "
                         "types other than `collections.namedtuple`.")

    def from_children(fields: Any, children: Sequence[Any]) -> Any:
        if list(fields) != list(nodetype._fields):
            raise ValueError(f"Cannot deserialize the namedtuple `{serialized_name}`: it was "
                             f"serialized with the fields {list(fields)}, but {nodetype} "
                             f"has the fields {list(nodetype._fields)}")
        return nodetype(**dict(zip(fields, children)))

    return register_pytree_node_serialization(
        nodetype, serialized_name=serialized_name,
        serialize_auxdata=lambda _: json.dumps(list(nodetype._fields)).encode("utf-8"),
        deserialize_auxdata=lambda b: json.loads(b.decode("utf-8")),
        from_children=from_children)


def _ordered_dict_keys(keys: Any) -> bytes:
    if all(isinstance(k, str) for k in keys):
        return json.dumps(list(keys)).encode("utf-8")
    raise NotImplementedError("Serialization of collections.OrderedDict is supported only "
                              f"when the keys are strings. Found keys: {keys}.")


register_pytree_node_serialization(
    collections.OrderedDict, serialized_name="collections.OrderedDict",
    serialize_auxdata=_ordered_dict_keys,
    deserialize_auxdata=lambda b: json.loads(b.decode("utf-8")),
    from_children=lambda keys, children: collections.OrderedDict(zip(keys, children)))


# ---- encoding ------------------------------------------------------------------------------

def encode_treedef(treedef: tree_util.PyTreeDef) -> list:
    """``treedef`` as nested lists: ``[kind, extra, children]``."""
    data = treedef.node_data()
    children = [encode_treedef(c) for c in treedef.children()]
    if data is None:
        return ["leaf", None, []]
    nodetype, aux = data
    if nodetype is type(None):
        return ["none", None, []]
    if nodetype in (tuple, list):
        return [nodetype.__name__, None, children]
    if nodetype in _extended_types:
        return ["extended", _type_name(nodetype), children]
    if nodetype is dict:
        for k in aux:
            if not isinstance(k, str):
                raise TypeError("Serialization is supported only for dictionaries with "
                                f"string keys. Found key {k} of type {type(k)}.")
        return ["dict", list(aux), children]
    if nodetype not in _serializers:
        raise ValueError(f"Cannot serialize PyTreeDef containing an unregistered type "
                         f"`{nodetype}`. Use `export.register_pytree_node_serialization` or "
                         "`export.register_namedtuple_serialization`.")
    name, serialize_auxdata = _serializers[nodetype]
    blob = serialize_auxdata(aux)
    if not isinstance(blob, (bytes, bytearray)):
        raise ValueError("The custom serialization function for `node_type` must return a "
                         f"`bytes` object. It returned a {type(blob)}.")
    return ["custom", [name, bytes(blob).hex()], children]


def _type_name(nodetype: type) -> str:
    return f"{nodetype.__module__}.{nodetype.__qualname__}"


class _Leaf:
    """A placeholder leaf of the example pytree a structure is read back from."""


def _example(node: Any) -> Any:
    if not (isinstance(node, list) and len(node) == 3 and isinstance(node[2], list)):
        raise ValueError(f"deserialize: malformed pytree node {node!r}")
    kind, extra, children = node
    built = [_example(c) for c in children]
    if kind == "leaf" and not built:
        return _Leaf()
    if kind == "none" and not built:
        return None
    if kind == "tuple":
        return tuple(built)
    if kind == "list":
        return built
    if kind == "dict" and isinstance(extra, list) and len(extra) == len(built):
        return dict(zip(extra, built))
    if kind == "extended" and len(built) == 1:
        nodetype = next((t for t in _extended_types if _type_name(t) == extra), None)
        if nodetype is None:
            raise ValueError(f"deserialize: unknown extended leaf type {extra!r} (import the "
                             "module that defines it first)")
        return _physical_kind_get(nodetype).unflatten(None, built)
    if kind == "custom" and isinstance(extra, list) and len(extra) == 2:
        name, hex_aux = extra
        if name not in _deserializers:
            raise ValueError("Cannot deserialize a PyTreeDef containing an unregistered type "
                             f"`{name}`. Use `export.register_pytree_node_serialization` or "
                             "`export.register_namedtuple_serialization`.")
        _, deserialize_auxdata, from_children = _deserializers[name]
        return from_children(deserialize_auxdata(bytes.fromhex(hex_aux)), built)
    raise ValueError(f"deserialize: malformed pytree node of kind {kind!r}")


def decode_treedef(node: Any) -> tree_util.PyTreeDef:
    """The structure :func:`encode_treedef` wrote."""
    return physical.tree_structure(_example(node))
