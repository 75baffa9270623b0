"""Tests for tinyjax.tree_util (behaviour follows jax.tree_util)."""

from __future__ import annotations

import collections
import dataclasses
import functools
import operator
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyjax import tree_util as tu
from tinyjax.tree_util import (
    DictKey,
    FlattenedIndexKey,
    GetAttrKey,
    Partial,
    PyTreeDef,
    SequenceKey,
)

# ---------------------------------------------------------------------------
# Test types
# ---------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])


class Triple(NamedTuple):
    a: Any
    b: Any
    c: Any


class Box:
    """Custom node registered with register_pytree_node (no keys)."""

    def __init__(self, value, label):
        self.value = value
        self.label = label

    def __eq__(self, other):
        return type(other) is Box and (self.value, self.label) == (other.value, other.label)

    def __repr__(self):
        return f"Box({self.value!r}, {self.label!r})"


tu.register_pytree_node(
    Box, lambda b: ((b.value,), b.label), lambda label, children: Box(children[0], label)
)


class OtherBox(Box):
    """Subclass of a registered type: NOT registered, hence a leaf."""


@tu.register_pytree_node_class
class Pair:
    def __init__(self, first, second, tag="t"):
        self.first = first
        self.second = second
        self.tag = tag

    def tree_flatten(self):
        return (self.first, self.second), self.tag

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, tag=aux)

    def __eq__(self, other):
        return (
            type(other) is Pair
            and (self.first, self.second, self.tag) == (other.first, other.second, other.tag)
        )


class Keyed:
    """Registered with register_pytree_with_keys: custom key entries."""

    def __init__(self, a, b):
        self.a = a
        self.b = b


tu.register_pytree_with_keys(
    Keyed,
    lambda k: (((GetAttrKey("a"), k.a), (DictKey("bee"), k.b)), None),
    lambda _aux, ch: Keyed(*ch),
)


@tu.register_dataclass
@dataclasses.dataclass
class Params:
    w: Any
    b: Any
    name: str = dataclasses.field(default="p", metadata=dict(static=True))


@functools.partial(tu.register_dataclass, data_fields=["x"], meta_fields=["mode"])
@dataclasses.dataclass
class Explicit:
    x: Any
    mode: str


# ---------------------------------------------------------------------------
# Helpers and strategies
# ---------------------------------------------------------------------------


def is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def ref_leaves(t):
    """Independent reference implementation of leaf order."""
    if t is None:
        return []
    if type(t) is dict:
        return [leaf for k in sorted(t) for leaf in ref_leaves(t[k])]
    if type(t) in (list, tuple) or is_namedtuple(t):
        return [leaf for c in t for leaf in ref_leaves(c)]
    return [t]


def skeleton(t):
    """Hashable description of a tree's structure (leaves erased)."""
    if t is None:
        return ("none",)
    if type(t) is dict:
        return ("dict", tuple(sorted(t)), tuple(skeleton(t[k]) for k in sorted(t)))
    if type(t) in (list, tuple) or is_namedtuple(t):
        return (type(t), tuple(skeleton(c) for c in t))
    return ("leaf",)


def assert_same(a, b):
    """Type-strict recursive equality (namedtuple != tuple, list != tuple)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            assert_same(a[k], b[k])
    else:
        assert a == b


def assert_dicts_sorted(t):
    if type(t) is dict:
        assert list(t) == sorted(t)
        for v in t.values():
            assert_dicts_sorted(v)
    elif isinstance(t, (list, tuple)):
        for v in t:
            assert_dicts_sorted(v)


def follow(tree, path):
    for k in path:
        if isinstance(k, SequenceKey):
            tree = tree[k.idx]
        elif isinstance(k, DictKey):
            tree = tree[k.key]
        elif isinstance(k, GetAttrKey):
            tree = getattr(tree, k.name)
        else:
            raise AssertionError(f"unexpected key {k!r}")
    return tree


leaf_st = st.one_of(
    st.integers(-5, 5), st.text(max_size=3), st.floats(allow_nan=False, width=32)
)
key_st = st.text(alphabet="abcdxyz", max_size=3)
tree_st = st.recursive(
    st.one_of(leaf_st, st.none()),
    lambda ch: st.one_of(
        st.lists(ch, max_size=4),
        st.lists(ch, max_size=4).map(tuple),
        st.dictionaries(key_st, ch, max_size=4),
        st.builds(Point, ch, ch),
        st.builds(Triple, ch, ch, ch),
    ),
    max_leaves=16,
)


# ---------------------------------------------------------------------------
# Property-based tests
# ---------------------------------------------------------------------------


@given(tree_st)
def test_roundtrip_flatten_unflatten(tree):
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == ref_leaves(tree)
    assert all(type(a) is type(b) for a, b in zip(leaves, ref_leaves(tree)))
    assert treedef.num_leaves == len(leaves)
    rebuilt = tu.tree_unflatten(treedef, leaves)
    assert_same(rebuilt, tree)
    assert_dicts_sorted(rebuilt)
    assert tu.tree_structure(rebuilt) == treedef
    assert hash(tu.tree_structure(rebuilt)) == hash(treedef)
    assert tu.tree_leaves(tree) == leaves


@given(tree_st)
def test_unflatten_with_new_leaves_places_them_in_order(tree):
    treedef = tu.tree_structure(tree)
    # (tuples would be nodes, so the markers are strings)
    markers = [f"leaf{i}" for i in range(treedef.num_leaves)]
    rebuilt = treedef.unflatten(iter(markers))  # any iterable is accepted
    leaves2, treedef2 = tu.tree_flatten(rebuilt)
    assert leaves2 == markers
    assert treedef2 == treedef


@given(tree_st, tree_st)
def test_treedef_equality_matches_skeleton_equality(t1, t2):
    d1, d2 = tu.tree_structure(t1), tu.tree_structure(t2)
    assert (d1 == d2) == (skeleton(t1) == skeleton(t2))
    assert (d1 != d2) == (skeleton(t1) != skeleton(t2))
    if d1 == d2:
        assert hash(d1) == hash(d2)
    # A tree always has the same structure as itself with different leaves.
    assert tu.tree_structure(tu.tree_map(lambda _: 0, t1)) == d1


@given(tree_st)
def test_tree_map_properties(tree):
    leaves = tu.tree_leaves(tree)
    mapped = tu.tree_map(repr, tree)
    assert tu.tree_structure(mapped) == tu.tree_structure(tree)
    assert tu.tree_leaves(mapped) == [repr(x) for x in leaves]
    paired = tu.tree_map(lambda a, b, c: f"{a!r}|{b!r}|{c!r}", tree, tree, tree)
    assert tu.tree_leaves(paired) == [f"{x!r}|{x!r}|{x!r}" for x in leaves]
    assert tu.tree_structure(tree).flatten_up_to(tree) == leaves


@given(tree_st)
def test_key_paths_lead_to_leaves(tree):
    pairs, treedef = tu.tree_flatten_with_path(tree)
    assert [leaf for _, leaf in pairs] == tu.tree_leaves(tree)
    assert treedef == tu.tree_structure(tree)
    assert tu.tree_leaves_with_path(tree) == pairs
    for path, leaf in pairs:
        assert follow(tree, path) is leaf
    paths = [p for p, _ in pairs]
    assert len(set(paths)) == len(paths)
    mapped = tu.tree_map_with_path(lambda p, x: tu.keystr(p), tree)
    assert tu.tree_leaves(mapped) == [tu.keystr(p) for p in paths]


@given(tree_st)
def test_num_nodes_and_children(tree):
    treedef = tu.tree_structure(tree)

    def count_nodes(t):
        if t is None:
            return 1
        if type(t) is dict:
            return 1 + sum(count_nodes(v) for v in t.values())
        if type(t) in (list, tuple) or is_namedtuple(t):
            return 1 + sum(count_nodes(c) for c in t)
        return 1

    assert treedef.num_nodes == count_nodes(tree)
    kids = treedef.children()
    if skeleton(tree)[0] in ("leaf", "none"):
        assert kids == []
    else:
        assert sum(k.num_leaves for k in kids) == treedef.num_leaves
        if type(tree) is dict:
            assert kids == [tu.tree_structure(tree[k]) for k in sorted(tree)]
        else:
            assert kids == [tu.tree_structure(c) for c in tree]


# ---------------------------------------------------------------------------
# Built-in node semantics
# ---------------------------------------------------------------------------


def test_dict_sorted_order_and_rebuild_order():
    d = {"b": 1, "a": 2, "c": {"z": 3, "y": 4}}
    leaves, treedef = tu.tree_flatten(d)
    assert leaves == [2, 1, 4, 3]
    rebuilt = treedef.unflatten(leaves)
    assert list(rebuilt) == ["a", "b", "c"]
    assert list(rebuilt["c"]) == ["y", "z"]
    assert rebuilt == d
    assert tu.tree_structure({"a": 0, "b": 0}) == tu.tree_structure({"b": 1, "a": 1})
    assert repr(treedef) == "PyTreeDef({'a': *, 'b': *, 'c': {'y': *, 'z': *}})"


def test_unsortable_dict_keys_raise_value_error():
    with pytest.raises(ValueError, match="sorting pytree dictionary keys"):
        tu.tree_flatten({1: "a", "x": "b"})


def test_none_is_an_empty_node_not_a_leaf():
    assert tu.tree_leaves([None, 1]) == [1]
    assert tu.tree_leaves(None) == []
    treedef = tu.tree_structure(None)
    assert treedef.num_leaves == 0
    assert treedef.num_nodes == 1
    assert repr(treedef) == "PyTreeDef(None)"
    assert treedef.unflatten([]) is None
    assert tu.tree_map(lambda x: x + 1, [None, 1, (None,)]) == [None, 2, (None,)]
    assert tu.tree_structure([None]) != tu.tree_structure([1])
    # JAX: treedef_is_leaf is "single node", which includes None.
    assert tu.treedef_is_leaf(treedef)
    assert not tu.treedef_is_strict_leaf(treedef)
    assert tu.treedef_is_strict_leaf(tu.tree_structure(1))


def test_tuple_list_and_namedtuple_treedefs_differ():
    t = tu.tree_structure((1, 2))
    lst = tu.tree_structure([1, 2])
    nt = tu.tree_structure(Point(1, 2))
    assert t != lst and t != nt and lst != nt
    assert repr(t) == "PyTreeDef((*, *))"
    assert repr(lst) == "PyTreeDef([*, *])"
    assert repr(nt) == "PyTreeDef(CustomNode(namedtuple[Point], [*, *]))"
    assert repr(tu.tree_structure((1,))) == "PyTreeDef((*,))"
    assert repr(tu.tree_structure(())) == "PyTreeDef(())"
    assert repr(tu.tree_structure(7)) == "PyTreeDef(*)"
    assert repr(tu.tree_structure((1, {"a": 2}))) == "PyTreeDef((*, {'a': *}))"


def test_namedtuple_rebuilt_as_same_type():
    tree = Triple(Point(1, 2), [3], None)
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1, 2, 3]
    out = treedef.unflatten([10, 20, 30])
    assert type(out) is Triple and type(out.a) is Point
    assert out == Triple(Point(10, 20), [30], None)


def test_leaf_types():
    class MyDict(dict):
        pass

    class MyTuple(tuple):  # tuple subclass without _fields: a leaf
        pass

    for leaf in ["abc", b"xy", 1.5, MyDict(a=1), MyTuple((1, 2)), {1, 2}, OtherBox(1, "l")]:
        leaves, treedef = tu.tree_flatten(leaf)
        assert leaves == [leaf]
        assert treedef == tu.tree_structure(0)
    assert tu.all_leaves([1, "a", MyDict()])
    assert not tu.all_leaves([1, (2,)])
    assert not tu.all_leaves([None])
    assert tu.all_leaves([None, (1,)], is_leaf=lambda x: x is None or isinstance(x, tuple))


def test_ordered_dict_and_defaultdict():
    od = collections.OrderedDict([("b", 1), ("a", 2)])
    leaves, treedef = tu.tree_flatten(od)
    assert leaves == [1, 2]  # insertion order
    out = treedef.unflatten([10, 20])
    assert type(out) is collections.OrderedDict and list(out.items()) == [("b", 10), ("a", 20)]
    assert repr(treedef) == "PyTreeDef(CustomNode(OrderedDict[('b', 'a')], [*, *]))"
    assert treedef != tu.tree_structure(collections.OrderedDict([("a", 2), ("b", 1)]))
    assert treedef != tu.tree_structure({"b": 1, "a": 2})

    dd = collections.defaultdict(list, {"b": 1, "a": 2})
    leaves, treedef = tu.tree_flatten(dd)
    assert leaves == [2, 1]  # sorted keys
    out = treedef.unflatten([20, 10])
    assert type(out) is collections.defaultdict and out.default_factory is list
    assert dict(out) == {"a": 20, "b": 10}
    out["new"].append(1)  # default factory still works
    assert tu.tree_structure(collections.defaultdict(set, {"a": 1, "b": 2})) != tu.tree_structure(dd)
    paths = [tu.keystr(p) for p, _ in tu.tree_leaves_with_path({"od": od, "dd": dd})]
    assert paths == ["['dd']['a']", "['dd']['b']", "['od']['b']", "['od']['a']"]


def test_is_leaf():
    tree = [None, 1, (2, 3), {"a": (4,)}]
    assert tu.tree_leaves(tree, is_leaf=lambda x: x is None) == [None, 1, 2, 3, 4]
    is_tuple = lambda x: isinstance(x, tuple)  # noqa: E731
    leaves, treedef = tu.tree_flatten(tree, is_leaf=is_tuple)
    assert leaves == [1, (2, 3), (4,)]
    assert repr(treedef) == "PyTreeDef([None, *, *, {'a': *}])"
    assert treedef.unflatten(["x", "y", "z"]) == [None, "x", "y", {"a": "z"}]
    # The predicate sees the root too.
    assert tu.tree_leaves((1, 2), is_leaf=is_tuple) == [(1, 2)]
    size = lambda x: len(x) if isinstance(x, tuple) else -x  # noqa: E731
    assert tu.tree_map(size, tree, is_leaf=is_tuple) == [None, -1, 2, {"a": 1}]
    assert tu.tree_structure([1, 2], is_leaf=lambda x: False) == tu.tree_structure([1, 2])


def test_is_leaf_with_paths():
    pairs = tu.tree_leaves_with_path({"a": (1, 2), "b": [3]}, is_leaf=lambda x: isinstance(x, tuple))
    assert [(tu.keystr(p), x) for p, x in pairs] == [("['a']", (1, 2)), ("['b'][0]", 3)]


# ---------------------------------------------------------------------------
# PyTreeDef API
# ---------------------------------------------------------------------------


def test_treedef_hash_and_eq_usable_as_cache_key():
    cache = {}
    cache[tu.tree_structure(((1, 2), {"k": 3}))] = "hit"
    assert cache[tu.tree_structure((("a", "b"), {"k": "c"}))] == "hit"
    assert tu.tree_structure(((1, 2), {"j": 3})) not in cache
    assert tu.tree_structure(((1, 2), [3])) not in cache
    td = tu.tree_structure([1, 2])
    assert td == td and not (td != td)
    assert td != [1, 2] and (td == "x") is False
    assert hash(td) == hash(td)  # cached, stable


def test_treedef_hash_computed_once():
    class CountingAux:
        calls = 0

        def __hash__(self):
            CountingAux.calls += 1
            return 1

        def __eq__(self, other):
            return isinstance(other, CountingAux)

    aux = CountingAux()
    treedef = tu.tree_structure([Box(1, aux), 2])
    assert CountingAux.calls == 0  # flattening does not hash
    h = hash(treedef)
    assert hash(treedef) == h and {treedef: 1}[treedef] == 1
    assert CountingAux.calls == 1


def test_unhashable_aux_hashes_by_structure():
    # as JAX: the hash leaves aux data out, equality compares it
    treedef = tu.tree_structure(Box(1, ["unhashable"]))
    assert treedef.unflatten([2]) == Box(2, ["unhashable"])
    assert treedef == tu.tree_structure(Box(3, ["unhashable"]))
    assert hash(treedef) == hash(tu.tree_structure(Box(3, ["unhashable"])))
    assert treedef != tu.tree_structure(Box(3, ["other"]))


def test_treedef_copy_and_pickle():
    import copy
    import pickle

    tree = [(1, None), {"b": Point(2, 3), "a": Box(4, "L")}, Params(w=5, b=6), Partial(_f, 7)]
    treedef = tu.tree_structure(tree)
    assert copy.copy(treedef) is treedef and copy.deepcopy(treedef) is treedef
    loaded = pickle.loads(pickle.dumps(treedef))
    assert loaded == treedef and hash(loaded) == hash(treedef)
    rebuilt = loaded.unflatten(range(7))
    assert tu.tree_flatten(rebuilt) == (list(range(7)), treedef)
    assert rebuilt[1]["b"] == Point(2, 3) and rebuilt[1]["a"] == Box(1, "L")
    assert repr(loaded) == repr(treedef)


def test_unflatten_wrong_number_of_leaves():
    treedef = tu.tree_structure((1, [2, 3]))
    with pytest.raises(ValueError, match=r"expected 3, got 2"):
        treedef.unflatten([1, 2])
    with pytest.raises(ValueError, match=r"expected 3, got 4"):
        tu.tree_unflatten(treedef, [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"expected 1, got 0"):
        tu.tree_structure(5).unflatten([])


def test_children_tuple_compose():
    x = [(1, 2), 3, {"a": 4}]
    treedef = tu.tree_structure(x)
    kids = tu.treedef_children(treedef)
    assert [repr(k) for k in kids] == ["PyTreeDef((*, *))", "PyTreeDef(*)", "PyTreeDef({'a': *})"]
    assert kids == [tu.tree_structure(v) for v in x]
    tup = tu.treedef_tuple([tu.tree_structure([1, 2]), tu.tree_structure({"a": 4, "b": 5})])
    assert tup == tu.tree_structure(([1, 2], {"a": 4, "b": 5}))
    assert tup.num_leaves == 4
    outer = tu.tree_structure([0, 0])
    inner = tu.tree_structure((0, None, 0))
    composed = outer.compose(inner)
    assert composed == tu.tree_structure([(1, None, 2), (3, None, 4)])
    assert composed.num_leaves == 4 and composed.num_nodes == 9


def test_node_data_and_build_tree():
    assert tu.tree_structure(1).node_data() is None
    assert tu.tree_structure({"b": 1, "a": 2}).node_data() == (dict, ["a", "b"])
    assert tu.tree_structure((1,)).node_data() == (tuple, None)
    assert tu.tree_structure(Point(1, 2)).node_data() == (Point, None)
    assert tu.tree_structure(Box(1, "L")).node_data() == (Box, "L")
    treedef = tu.tree_structure([(1, 2), {"a": 3, "b": 4}])
    assert tu.build_tree(treedef, [[10, 11], [12, 13]]) == [(10, 11), {"a": 12, "b": 13}]


def test_walk():
    treedef = tu.tree_structure((1, [2, 3]))
    total = treedef.walk(lambda children, _aux: sum(children), lambda x: x * 10, [1, 2, 3])
    assert total == 60


# ---------------------------------------------------------------------------
# tree_map, mismatches, reductions
# ---------------------------------------------------------------------------


def test_tree_map_several_trees_and_prefix_semantics():
    a = {"x": 1, "y": (2, 3)}
    b = {"x": 10, "y": (20, 30)}
    c = {"x": 100, "y": (200, 300)}
    assert tu.tree_map(lambda p, q, r: p + q + r, a, b, c) == {"x": 111, "y": (222, 333)}
    # The first tree is a prefix of the second: whole subtrees are passed.
    out = tu.tree_map(lambda x, sub: (x, sub), [1, 2], [(3, 4), {"k": 5}])
    assert out == [(1, (3, 4)), (2, {"k": 5})]
    # A leaf first tree receives the whole second tree.
    assert tu.tree_map(lambda x, y: (x, y), 1, [2, 3]) == (1, [2, 3])
    # A None subtree in the second tree at a leaf position of the first.
    assert tu.tree_map(lambda x, y: y, [1, 2], [None, 3]) == [None, 3]


def test_tree_map_mismatch_messages_show_both_structures():
    with pytest.raises(ValueError) as info:
        tu.tree_map(lambda x, y: x, [1, (2, 3)], [1, (2, 3, 4)])
    msg = str(info.value)
    assert "Tuple arity mismatch: 3 != 2" in msg
    assert "PyTreeDef([*, (*, *)])" in msg
    assert "PyTreeDef([*, (*, *, *)])" in msg
    assert "at key path: [1]" in msg

    with pytest.raises(ValueError, match=r"Expected tuple, got \[1, 2\]") as info:
        tu.tree_map(lambda x, y: x, (1, 2), [1, 2])
    assert "PyTreeDef((*, *))" in str(info.value) and "PyTreeDef([*, *])" in str(info.value)

    with pytest.raises(ValueError, match=r"List arity mismatch: 1 != 2"):
        tu.tree_map(lambda x, y: x, [1, 2], [1])

    with pytest.raises(ValueError) as info:
        tu.tree_map(lambda x, y: x, {"a": {"b": 1}}, {"a": {"c": 1}})
    msg = str(info.value)
    assert "Dict key mismatch; expected keys: ['b']; present keys: ['c']" in msg
    assert "at key path: ['a']" in msg
    assert "PyTreeDef({'a': {'b': *}})" in msg and "PyTreeDef({'a': {'c': *}})" in msg

    with pytest.raises(ValueError, match=r"Expected None, got 1"):
        tu.tree_map(lambda x, y: x, [None], [1])

    with pytest.raises(ValueError, match=r"Custom node type mismatch") as info:
        tu.tree_map(lambda x, y: x, Box(1, "l"), Pair(1, 2))
    assert "CustomNode(Box[l], [*])" in str(info.value)

    with pytest.raises(ValueError, match=r"Mismatch custom node data: 'l' != 'm'"):
        tu.tree_map(lambda x, y: x, [Box(1, "l")], [Box(1, "m")])

    with pytest.raises(ValueError, match=r"Named tuple type mismatch"):
        tu.tree_map(lambda x, y: x, Point(1, 2), Point2(1, 2))

    # The failing tree is identified when there are several.
    with pytest.raises(ValueError, match=r"tree argument 2"):
        tu.tree_map(lambda *xs: 0, [1], [2], (3,))


Point2 = collections.namedtuple("Point2", ["x", "y"])


def test_flatten_up_to_direct_error():
    treedef = tu.tree_structure({"a": (1, 2)})
    assert treedef.flatten_up_to({"a": ([1], {"q": 2})}) == [[1], {"q": 2}]
    with pytest.raises(ValueError) as info:
        treedef.flatten_up_to({"a": [1, 2]})
    msg = str(info.value)
    assert "Expected tuple, got [1, 2]." in msg
    assert "at key path: ['a']" in msg
    assert "PyTreeDef({'a': (*, *)})" in msg and "PyTreeDef({'a': [*, *]})" in msg


def test_tree_map_with_path_and_rest():
    tree = {"a": [1, 2], "b": Point(3, 4)}
    out = tu.tree_map_with_path(lambda p, x, y: f"{tu.keystr(p)}={x + y}", tree, tree)
    assert out == {"a": ["['a'][0]=2", "['a'][1]=4"], "b": Point("['b'].x=6", "['b'].y=8")}
    with pytest.raises(ValueError, match="tree_map_with_path"):
        tu.tree_map_with_path(lambda p, x, y: x, [1], (1,))


def test_tree_reduce_and_tree_all():
    tree = [1, (2, None), {"a": 3}]
    assert tu.tree_reduce(operator.add, tree) == 6
    assert tu.tree_reduce(operator.add, tree, 10) == 16
    assert tu.tree_reduce(lambda acc, x: acc + [x], tree, []) == [1, 2, 3]
    assert tu.tree_reduce(operator.add, [], 5) == 5
    with pytest.raises(TypeError):
        tu.tree_reduce(operator.add, [None, ()])
    assert tu.tree_reduce(
        lambda acc, x: acc + len(x), [(1, 2), (3,)], 0, is_leaf=lambda x: isinstance(x, tuple)
    ) == 3
    assert tu.tree_all([True, (1, "x")])
    assert not tu.tree_all([True, (0,)])
    assert tu.tree_all([None, ()])  # no leaves
    assert not tu.tree_all([None], is_leaf=lambda x: x is None)


def test_tree_transpose():
    outer = tu.tree_structure([0, 0, 0])
    inner = tu.tree_structure({"a": 0, "b": (0, 0)})
    tree = [{"a": i, "b": (10 * i, 100 * i)} for i in range(3)]
    out = tu.tree_transpose(outer, inner, tree)
    assert out == {"a": [0, 1, 2], "b": ([0, 10, 20], [0, 100, 200])}
    assert tu.tree_transpose(outer, None, tree) == out  # inner inferred
    back = tu.tree_transpose(inner, outer, out)
    assert back == tree
    with pytest.raises(TypeError, match="Mismatch"):
        tu.tree_transpose(outer, inner, tree[:2])


# ---------------------------------------------------------------------------
# Custom nodes
# ---------------------------------------------------------------------------


def test_register_pytree_node_custom_class():
    tree = [Box((1, 2), "lbl"), Box(None, "empty")]
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1, 2]
    assert repr(treedef) == "PyTreeDef([CustomNode(Box[lbl], [(*, *)]), CustomNode(Box[empty], [None])])"
    assert treedef.unflatten([5, 6]) == [Box((5, 6), "lbl"), Box(None, "empty")]
    assert tu.tree_map(lambda x: x * 2, Box([1, 2], "q")) == Box([2, 4], "q")
    assert tu.tree_structure(Box(1, "a")) != tu.tree_structure(Box(1, "b"))
    assert tu.tree_structure(Box(1, "a")) == tu.tree_structure(Box(9, "a"))
    # A subclass of a registered type is a leaf.
    ob = OtherBox(1, "l")
    assert tu.tree_leaves([ob]) == [ob]
    # Without keys, children get FlattenedIndexKey.
    (path, leaf), = tu.tree_leaves_with_path(Box(7, "l"))
    assert path == (FlattenedIndexKey(0),) and leaf == 7
    assert tu.keystr(path) == "[<flat index 0>]"


def test_duplicate_registration_raises():
    class Fresh:
        pass

    tu.register_pytree_node(Fresh, lambda f: ((), None), lambda aux, ch: Fresh())
    with pytest.raises(ValueError, match="Duplicate custom PyTreeDef type registration"):
        tu.register_pytree_node(Fresh, lambda f: ((), None), lambda aux, ch: Fresh())
    with pytest.raises(ValueError, match="Duplicate"):
        tu.register_pytree_node(tuple, lambda t: (t, None), lambda aux, ch: tuple(ch))


def test_registration_after_type_was_seen_as_leaf():
    class Late:
        def __init__(self, v):
            self.v = v

    obj = Late(3)
    assert tu.tree_leaves(obj) == [obj]
    tu.register_pytree_node(Late, lambda o: ((o.v,), None), lambda aux, ch: Late(*ch))
    assert tu.tree_leaves(obj) == [3]
    assert tu.tree_map(lambda x: x + 1, obj).v == 4


def test_bad_flatten_function_output():
    class Bad:
        pass

    tu.register_pytree_node(Bad, lambda b: [1, 2, 3], lambda aux, ch: Bad())
    with pytest.raises(ValueError, match=r"\(children, aux_data\)"):
        tu.tree_flatten(Bad())


def test_register_pytree_node_class_decorator():
    p = Pair(1, [2, 3], tag="z")
    leaves, treedef = tu.tree_flatten(p)
    assert leaves == [1, 2, 3]
    assert repr(treedef) == "PyTreeDef(CustomNode(Pair[z], [*, [*, *]]))"
    assert treedef.unflatten(["a", "b", "c"]) == Pair("a", ["b", "c"], tag="z")


def test_register_pytree_with_keys():
    k = Keyed(1, [2])
    pairs = tu.tree_leaves_with_path(k)
    assert [(tu.keystr(p), x) for p, x in pairs] == [(".a", 1), ("['bee'][0]", 2)]
    assert tu.tree_leaves(k) == [1, 2]  # flatten_func derived from flatten_with_keys
    out = tu.tree_map(lambda x: -x, k)
    assert (out.a, out.b) == (-1, [-2])


def test_register_pytree_with_keys_class_and_static():
    @tu.register_pytree_with_keys_class
    class KC:
        def __init__(self, v):
            self.v = v

        def tree_flatten_with_keys(self):
            return ((GetAttrKey("v"), self.v),), None

        @classmethod
        def tree_unflatten(cls, aux, children):
            return cls(*children)

    (path, leaf), = tu.tree_leaves_with_path(KC(5))
    assert tu.keystr(path) == ".v" and leaf == 5

    @tu.register_static
    class Mode(str):
        pass

    tree = [Mode("train"), 1]
    leaves, treedef = tu.tree_flatten(tree)
    assert leaves == [1]
    assert treedef.unflatten([2]) == ["train", 2]
    assert treedef != tu.tree_structure([Mode("eval"), 1])


def test_register_dataclass_inferred_fields():
    p = Params(w=[1, 2], b=3, name="layer")
    leaves, treedef = tu.tree_flatten(p)
    assert leaves == [1, 2, 3]
    assert repr(treedef) == "PyTreeDef(CustomNode(Params[('layer',)], [[*, *], *]))"
    out = treedef.unflatten([10, 20, 30])
    assert out == Params(w=[10, 20], b=30, name="layer")
    # static field is aux data: different values give different treedefs
    assert treedef != tu.tree_structure(Params(w=[1, 2], b=3, name="other"))
    pairs = tu.tree_leaves_with_path(p)
    assert [tu.keystr(path) for path, _ in pairs] == [".w[0]", ".w[1]", ".b"]
    with pytest.raises(ValueError, match="Mismatch custom dataclass node data"):
        tu.tree_map(lambda x, y: x, p, Params(w=[1, 2], b=3, name="zzz"))


def test_register_dataclass_explicit_and_errors():
    e = Explicit(x=(1, 2), mode="fast")
    assert tu.tree_leaves(e) == [1, 2]
    assert tu.tree_map(lambda v: v + 1, e) == Explicit(x=(2, 3), mode="fast")

    @dataclasses.dataclass
    class Incomplete:
        a: int
        b: int

    with pytest.raises(ValueError, match="Missing fields"):
        tu.register_dataclass(Incomplete, data_fields=["a"], meta_fields=[])
    with pytest.raises(TypeError, match="both be specified"):
        tu.register_dataclass(Incomplete, data_fields=["a", "b"])

    class NotADataclass:
        pass

    with pytest.raises(TypeError, match="not a dataclass"):
        tu.register_dataclass(NotADataclass)

    @dataclasses.dataclass
    class WithDerived:
        a: Any
        derived: int = dataclasses.field(init=False, default=0)

    tu.register_dataclass(WithDerived)  # init=False fields are not included
    assert tu.tree_leaves(WithDerived(a=[4])) == [4]


# ---------------------------------------------------------------------------
# Key paths
# ---------------------------------------------------------------------------


def test_keystr_exact_strings():
    pairs = tu.tree_leaves_with_path({"a": [1, (2, 3)]})
    assert [(tu.keystr(p), x) for p, x in pairs] == [
        ("['a'][0]", 1),
        ("['a'][1][0]", 2),
        ("['a'][1][1]", 3),
    ]
    path = pairs[1][0]
    assert path == (DictKey("a"), SequenceKey(1), SequenceKey(0))
    assert tu.keystr(path, simple=True, separator="/") == "a/1/0"
    assert str(SequenceKey(0)) == "[0]"
    assert str(DictKey("a")) == "['a']"
    assert str(DictKey(1)) == "[1]"
    assert str(GetAttrKey("name")) == ".name"
    assert str(FlattenedIndexKey(2)) == "[<flat index 2>]"
    assert repr(SequenceKey(0)) == "SequenceKey(idx=0)"
    assert repr(DictKey("a")) == "DictKey(key='a')"
    assert tu.keystr(()) == ""
    nt_pairs = tu.tree_leaves_with_path(Point(1, [2]))
    assert [tu.keystr(p) for p, _ in nt_pairs] == [".x", ".y[0]"]


def test_key_entries_hash_and_eq():
    assert SequenceKey(0) == SequenceKey(0)
    assert SequenceKey(0) != FlattenedIndexKey(0)
    assert len({DictKey("a"), DictKey("a"), GetAttrKey("a")}) == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        SequenceKey(0).idx = 1  # type: ignore[misc]


def test_flatten_with_path_treedef_matches_flatten():
    tree = [Box(1, "x"), Params(w=2, b=(3,)), Partial(max, 4)]
    pairs, treedef = tu.tree_flatten_with_path(tree)
    assert treedef == tu.tree_structure(tree)
    assert [x for _, x in pairs] == [1, 2, 3, 4]
    assert [tu.keystr(p) for p, _ in pairs] == [
        "[0][<flat index 0>]",
        "[1].w",
        "[1].b[0]",
        "[2][<flat index 0>][0]",
    ]


# ---------------------------------------------------------------------------
# Partial
# ---------------------------------------------------------------------------


def _f(a, b, c=0):
    return a * 100 + b * 10 + c


def test_partial_is_pytree():
    p = Partial(_f, 1, c=3)
    assert p(2) == 123
    leaves, treedef = tu.tree_flatten(p)
    assert leaves == [1, 3]
    assert repr(treedef).startswith("PyTreeDef(CustomNode(Partial[<function _f")
    assert repr(treedef).endswith("[(*,), {'c': *}]))")
    q = tu.tree_map(lambda x: x + 1, p)
    assert isinstance(q, Partial) and q.func is _f
    assert q(2) == 224
    assert treedef == tu.tree_structure(Partial(_f, 7, c=8))
    assert treedef != tu.tree_structure(Partial(max, 7, c=8))  # func is static
    assert treedef != tu.tree_structure(Partial(_f, 7))
    assert tu.tree_leaves(Partial(_f)) == []


def test_partial_of_partial_keeps_inner_args_static():
    inner = functools.partial(_f, 1)
    p = Partial(inner, 2)
    assert p(3) == 123
    assert tu.tree_leaves(p) == [2]
    assert p.func.func is _f and p.func.args == (1,)
    rebuilt = tu.tree_map(lambda x: x * 2, p)
    assert rebuilt(3) == 143
    assert tu.tree_structure(p) == tu.tree_structure(Partial(inner, 9))
