"""The recursive algorithms on nodes (flatten, unflatten, compose, matching a tree against
a structure) and :class:`PyTreeDef`."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from tinyjax.tree_util.keys import DictKey, FlattenedIndexKey, GetAttrKey, SequenceKey, keystr
from tinyjax.tree_util.nodes import (_C_DATACLASS, _C_DICT, _C_LEAF, _C_LIST, _C_NAMEDTUPLE,
                                     _C_NONE, _C_TUPLE, _DICT_KIND, _LEAF, _LEAF_KIND,
                                     _LIST_KIND, _NONE_KIND, _NONE_NODE, _TUPLE_KIND, _classify,
                                     _custom_flatten, _custom_flatten_with_keys, _kind_get,
                                     _sorted_keys)


KindGet = Callable[[type], Any]  # a type's node kind in one view (None: not classified yet)

# ---------------------------------------------------------------------------
# Core recursive algorithms on nodes
# ---------------------------------------------------------------------------


def _flatten(x: Any, leaves: list, kind_get: KindGet = _kind_get) -> tuple:
    """Flattens ``x`` appending leaves to ``leaves``; returns its node.  ``kind_get`` is
    the view: the public one, or the physical one in which extended leaves are nodes."""
    kind = kind_get(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
        return _LEAF
    # Children that are leaves are handled inline (no recursive call): this is
    # the bulk of the work for typical argument trees.
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        nodes = []
        for c in x:
            if kind_get(type(c)) is _LEAF_KIND:
                leaves.append(c)
                nodes.append(_LEAF)
            else:
                nodes.append(_flatten(c, leaves, kind_get))
        return (kind, None, tuple(nodes))
    if kind is _DICT_KIND:
        keys = _sorted_keys(x)
        nodes = []
        for k in keys:
            c = x[k]
            if kind_get(type(c)) is _LEAF_KIND:
                leaves.append(c)
                nodes.append(_LEAF)
            else:
                nodes.append(_flatten(c, leaves, kind_get))
        return (kind, keys, tuple(nodes))
    if kind is _NONE_KIND:
        return _NONE_NODE
    if kind is None:
        kind = _classify(type(x))  # (extended leaf types are never left to classify)
        if kind is _LEAF_KIND:
            leaves.append(x)
            return _LEAF
    children, aux = _custom_flatten(kind, x)
    return (kind, aux, tuple([_flatten(c, leaves, kind_get) for c in children]))


def _flatten_pred(x: Any, leaves: list, is_leaf: Callable[[Any], Any],
                  kind_get: KindGet = _kind_get) -> tuple:
    """Like :func:`_flatten` but ``is_leaf(x)`` being true stops recursion."""
    if is_leaf(x):
        leaves.append(x)
        return _LEAF
    kind = kind_get(type(x)) or _classify(type(x))
    if kind is _LEAF_KIND:
        leaves.append(x)
        return _LEAF
    if kind is _TUPLE_KIND or kind is _LIST_KIND:
        return (kind, None, tuple([_flatten_pred(c, leaves, is_leaf, kind_get) for c in x]))
    if kind is _DICT_KIND:
        keys = _sorted_keys(x)
        return (kind, keys,
                tuple([_flatten_pred(x[k], leaves, is_leaf, kind_get) for k in keys]))
    if kind is _NONE_KIND:
        return _NONE_NODE
    children, aux = _custom_flatten(kind, x)
    return (kind, aux, tuple([_flatten_pred(c, leaves, is_leaf, kind_get) for c in children]))


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
        if type(x) is not kind.type:  # (registration is by exact type)
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
        leaves: list = []
        return str(PyTreeDef(_flatten(tree, leaves), len(leaves)))
    except Exception as e:  # error path only; never mask the real error
        return f"<could not compute structure: {type(e).__name__}: {e}>"


# ---------------------------------------------------------------------------
# PyTreeDef
# ---------------------------------------------------------------------------


def _shape_hash(node: tuple) -> int:
    """A hash of a node's kinds and arities, leaving out aux data (as JAX's treedef hash
    does, so that unhashable aux data -- a dict -- can key caches)."""
    kind, _, children = node
    return hash((id(kind), tuple(_shape_hash(c) for c in children)))


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
