"""Extended leaves (tinyjax.tree_util.registration.register_extended_leaf) and the physical
view of pytrees (tinyjax.tree_util.physical): one leaf to the public functions, a node
over its data to the transforms, the two views' leaves in one-to-one correspondence."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyjax import tree_util as tu
from tinyjax.tree_util import physical
from tinyjax.tree_util.registration import register_extended_leaf


class Wrapped:
    """A stand-in for an array of an extended dtype: a wrapper of some data."""

    def __init__(self, data):
        self.data = data

    def __eq__(self, other):
        return type(other) is Wrapped and other.data == self.data

    def __repr__(self):
        return f"Wrapped({self.data!r})"


register_extended_leaf(Wrapped, lambda w: w.data, Wrapped)


def test_an_extended_leaf_is_one_leaf_to_the_public_functions():
    w = Wrapped(3)
    tree = {"a": 1, "w": w, "b": [w, None]}
    assert tu.tree_leaves(tree) == [1, w, w]
    assert tu.tree_leaves(w)[0] is w
    assert tu.treedef_is_strict_leaf(tu.tree_structure(w))
    assert not tu.is_tree_node(Wrapped) and tu.all_leaves([w, 1])
    with pytest.raises(ValueError, match="can't tree-flatten"):
        tu.flatten_one_level(w)
    # f sees the extended leaf itself, and whatever it returns stands in its place
    seen = []
    out = tu.tree_map(lambda x: seen.append(x) or None, {"w": w, "x": 2})
    assert out == {"w": None, "x": None} and seen[0] is w
    assert tu.tree_map(lambda x, y: (x, y), [w], [5]) == [(w, 5)]
    paths = [tu.keystr(p) for p, _ in tu.tree_leaves_with_path(tree)]
    assert paths == ["['a']", "['b'][0]", "['w']"]


def test_the_physical_view_opens_extended_leaves_into_their_data():
    w = Wrapped(3)
    leaves, treedef = physical.tree_flatten({"w": w, "x": 2})
    assert leaves == [3, 2]
    assert tu.tree_unflatten(treedef, [30, 20]) == {"w": Wrapped(30), "x": 20}
    assert physical.tree_leaves([w, (w,)]) == [3, 3]
    assert physical.tree_map(lambda d: d * 10, {"w": w, "x": 2}) == {"w": Wrapped(30), "x": 20}
    assert physical.tree_map(lambda d, e: d + e, [w, 1], [w, 2]) == [Wrapped(6), 3]
    assert physical.tree_structure(w) != tu.tree_structure(w)
    leaves, _ = physical.tree_flatten([w, [1]], is_leaf=lambda x: isinstance(x, list) and
                                      x == [1])
    assert leaves == [3, [1]]


def test_public_structure_of_a_physical_treedef():
    w = Wrapped(0)
    tree = ({"a": w, "b": 1.0}, [w], None)
    public, opened = physical.public_structure(physical.tree_structure(tree))
    assert public == tu.tree_structure(tree)
    assert opened == [True, False, True]
    plain = {"x": (1, 2)}
    assert physical.public_structure(physical.tree_structure(plain)) == \
        (tu.tree_structure(plain), [False, False])


def test_registering_a_type_twice_or_a_node_type_as_extended_fails():
    with pytest.raises(ValueError, match="Duplicate"):
        register_extended_leaf(Wrapped, lambda w: w.data, Wrapped)
    with pytest.raises(ValueError, match="Duplicate"):
        register_extended_leaf(tu.Partial, lambda p: p.func, tu.Partial)


_values = st.one_of(st.integers(0, 9), st.builds(Wrapped, st.integers(10, 99)))
_trees = st.recursive(_values, lambda kids: st.one_of(
    st.lists(kids, max_size=3), st.tuples(kids, kids),
    st.dictionaries(st.sampled_from("abc"), kids, max_size=3)), max_leaves=8)


@settings(max_examples=60, deadline=None)
@given(_trees)
def test_the_leaves_of_the_two_views_correspond_one_to_one(tree):
    public = tu.tree_leaves(tree)
    phys, treedef = physical.tree_flatten(tree)
    assert len(public) == len(phys) == treedef.num_leaves
    assert phys == [x.data if type(x) is Wrapped else x for x in public]
    assert tu.tree_unflatten(treedef, phys) == tree
    assert physical.public_structure(treedef) == (
        tu.tree_structure(tree), [type(x) is Wrapped for x in public])
