"""Registering node types: custom pytree nodes (with or without keys), classes,
dataclasses, static types; and the built-in ones registered the same way (OrderedDict,
defaultdict)."""
from __future__ import annotations

import collections
import dataclasses
import operator
from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar

from tinyjax.tree_util.keys import DictKey, GetAttrKey, KeyEntry
from tinyjax.tree_util.nodes import (_C_CUSTOM, _C_DATACLASS, _NodeKind, _register,
                                     _register_extended_leaf, _sorted_keys)

T = TypeVar("T")
Typ = TypeVar("Typ", bound=type)


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


def register_extended_leaf(leaftype: type[T], data: Callable[[T], Any],
                           from_data: Callable[[Any], T]) -> None:
    """Make ``leaftype``, an array type of an extended dtype (typed PRNG keys), a pytree
    leaf that the transforms open into its data.

    The public tree functions see one leaf, as JAX's (``tree_leaves(keys) == [keys]``);
    :mod:`tinyjax.tree_util.physical`, the view of the transforms, sees a node whose one
    child is ``data(x)`` (a plain array) and rebuilds it with ``from_data``, so the
    transforms trace, batch and differentiate the data and give back arrays of
    ``leaftype``.  Not part of JAX's API (JAX's abstract values carry extended dtypes)."""
    _register_extended_leaf(_NodeKind(leaftype, _C_CUSTOM, lambda x: ((data(x),), None),
                                      lambda _, children: from_data(children[0])))


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
