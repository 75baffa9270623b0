"""jax.tree (the short names over tree_util) and the tree_util functions added with it."""
import dataclasses
import operator

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import tree_util


def test_short_names_are_the_tree_util_functions():
    tree = {"w": [1.0, 2.0], "b": (3.0, None)}
    assert jax.tree.leaves(tree) == tree_util.tree_leaves(tree) == [3.0, 1.0, 2.0]
    assert jax.tree.map(lambda x: x * 2, tree) == {"w": [2.0, 4.0], "b": (6.0, None)}
    leaves, treedef = jax.tree.flatten(tree)
    assert jax.tree.structure(tree) == treedef
    assert jax.tree.unflatten(treedef, leaves) == tree
    assert jax.tree.reduce(operator.add, tree) == 6.0
    assert jax.tree.all([True, (1, 2)]) and not jax.tree.all([True, 0])
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree.leaves_with_path(tree)]
    assert paths == ["['b'][0]", "['w'][0]", "['w'][1]"]
    assert jax.tree.map_with_path(lambda p, x: len(p), tree) == {"w": [2, 2], "b": (2, None)}
    assert len(jax.tree.flatten_with_path(tree)[0]) == 3
    outer = jax.tree.structure([0, 0])
    inner = jax.tree.structure((0, 0, 0))
    assert jax.tree.transpose(outer, inner, [(1, 2, 3), (4, 5, 6)]) == ([1, 4], [2, 5], [3, 6])


def test_broadcast_repeats_prefix_leaves_over_subtrees():
    assert jax.tree.broadcast([1, 2], [(3, 4), {"a": 5}]) == [(1, 1), {"a": 2}]
    assert jax.tree.broadcast(7, {"x": [1, 2]}) == {"x": [7, 7]}
    with pytest.raises(ValueError):
        jax.tree.broadcast([1, 2, 3], [1, 2])


def test_reduce_associative_is_balanced():
    assert jax.tree.reduce_associative(lambda a, b: f"({a}+{b})", [1, 2, 3, 4]) == \
        "((1+2)+(3+4))"
    assert jax.tree.reduce_associative(operator.add, list(range(10))) == 45
    assert jax.tree.reduce_associative(operator.add, [], identity=0) == 0
    with pytest.raises(TypeError, match="identity"):
        jax.tree.reduce_associative(operator.add, [])


def test_is_leaf_takes_path():
    tree = {"a": [1, 2], "b": [3]}
    pairs = jax.tree.leaves_with_path(tree, is_leaf=lambda p, x: len(p) == 1,
                                      is_leaf_takes_path=True)
    assert [x for _, x in pairs] == [[1, 2], [3]]
    out = jax.tree.map_with_path(lambda p, x: sum(x), tree, is_leaf=lambda p, x: len(p) == 1,
                                 is_leaf_takes_path=True)
    assert out == {"a": 3, "b": 3}


def test_flatten_one_level():
    assert tree_util.flatten_one_level({"b": 1, "a": [2]}) == (([2], 1), ("a", "b"))
    assert tree_util.flatten_one_level((1, 2)) == ((1, 2), None)
    children, aux = tree_util.flatten_one_level_with_keys([5, 6])
    assert [k.idx for k, _ in children] == [0, 1] and [c for _, c in children] == [5, 6]
    with pytest.raises(ValueError, match="can't tree-flatten"):
        tree_util.flatten_one_level(3.0)
    assert tree_util.is_tree_node(dict) and not tree_util.is_tree_node(float)


def test_static_dataclass_field_is_aux_data():
    @tree_util.register_dataclass
    @dataclasses.dataclass
    class Op:
        x: object
        kind: str = jax.tree.static(default="add")

    leaves, treedef = jax.tree.flatten(Op(np.float32(1.0)))
    assert len(leaves) == 1 and jax.tree.unflatten(treedef, leaves).kind == "add"


class _Node:
    """A custom node whose aux data is a dict (unhashable)."""

    def __init__(self, x, meta):
        self.x, self.meta = x, meta


tree_util.register_pytree_node(_Node, lambda n: ((n.x,), n.meta),
                               lambda meta, ch: _Node(ch[0], meta))


def test_unhashable_aux_data_keys_jit_cache():
    t1 = jax.tree.structure(_Node(1, {"scale": 2}))
    t2 = jax.tree.structure(_Node(1, {"scale": 2}))
    assert t1 == t2 and hash(t1) == hash(t2)
    assert t1 != jax.tree.structure(_Node(1, {"scale": 3}))
    calls = []

    @jax.jit
    def f(node):
        calls.append(1)
        return node.x * node.meta["scale"]

    assert float(f(_Node(jnp.float32(1.5), {"scale": 2}))) == 3.0
    assert float(f(_Node(jnp.float32(2.5), {"scale": 2}))) == 5.0
    assert len(calls) == 1  # equal aux data: the trace is reused
    assert float(f(_Node(jnp.float32(1.0), {"scale": 3}))) == 3.0
    assert len(calls) == 2
