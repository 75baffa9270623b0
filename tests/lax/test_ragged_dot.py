"""lax.ragged_dot_general in JAX's three modes against numpy loops over the groups."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.test_util import check_grads

RNG = np.random.default_rng(0)


def normal(*shape):
    return RNG.normal(size=shape).astype(np.float32)


def bounds(sizes):
    ends = np.cumsum(sizes)
    return list(zip(ends - sizes, ends))


def test_ragged_rows_each_group_with_its_own_rhs():
    # [b, m, k] x [g, b, k, n], ragged m with per-batch group sizes [b, g] -> [b, m, n]
    lhs, rhs = normal(2, 7, 3), normal(4, 2, 3, 5)
    sizes = np.array([[2, 0, 3, 1], [1, 4, 0, 2]], np.int32)
    dims = lax.RaggedDotDimensionNumbers((([2], [2]), ([0], [1])), [1], [0])
    expect = np.zeros((2, 7, 5), np.float32)
    for b in range(2):
        for g, (s, e) in enumerate(bounds(sizes[b])):
            expect[b, s:e] = lhs[b, s:e] @ rhs[g, b]
    out = lax.ragged_dot_general(lhs, rhs, sizes, dims)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
    f = jax.jit(lambda a, b: lax.ragged_dot_general(a, b, sizes, dims))
    np.testing.assert_allclose(f(lhs, rhs), expect, rtol=1e-5, atol=1e-5)
    check_grads(lambda a, b: lax.ragged_dot_general(a, b, sizes, dims), (lhs, rhs), order=2)


def test_ragged_contracting_dimension_gives_one_product_per_group():
    # [m, k] x [k, n], ragged k -> [g, m, n]
    lhs, rhs = normal(3, 8), normal(8, 4)
    sizes = np.array([3, 0, 4], np.int32)
    dims = lax.RaggedDotDimensionNumbers((([1], [0]), ([], [])), [1], [])
    expect = np.stack([lhs[:, s:e] @ rhs[s:e] for s, e in bounds(sizes)])
    out = lax.ragged_dot_general(lhs, rhs, sizes, dims)
    assert out.shape == (3, 3, 4)
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
    check_grads(lambda a, b: lax.ragged_dot_general(a, b, sizes, dims), (lhs, rhs), order=1)


def test_ragged_batch_dimension_is_dot_general():
    lhs, rhs = normal(4, 2, 3), normal(4, 3, 5)
    dims = lax.RaggedDotDimensionNumbers((([2], [1]), ([0], [0])), [0], [])
    out = lax.ragged_dot_general(lhs, rhs, np.array([1, 3], np.int32), dims)
    np.testing.assert_allclose(out, np.einsum("bmk,bkn->bmn", lhs, rhs), rtol=1e-5, atol=1e-5)


def test_ragged_dot_vmaps_as_a_loop_and_takes_int_dtypes():
    lhs, rhs = normal(3, 6, 2), normal(3, 2, 2, 4)
    sizes = np.array([[2, 4], [6, 0], [1, 1]], np.int32)
    out = jax.vmap(lax.ragged_dot)(lhs, rhs, sizes)
    for i in range(3):
        np.testing.assert_allclose(out[i], lax.ragged_dot(lhs[i], rhs[i], sizes[i]),
                                   rtol=1e-6, atol=1e-6)
    ints = lax.ragged_dot(np.ones((2, 2), np.int32), np.ones((1, 2, 2), np.int32),
                          np.array([2], np.int32))
    assert ints.dtype == np.int32 and ints.tolist() == [[2, 2], [2, 2]]


def test_ragged_dot_general_errors_name_the_problem():
    lhs, rhs = normal(4, 3), normal(2, 3, 5)
    with pytest.raises(TypeError, match="exactly one lhs ragged dimension"):
        lax.ragged_dot_general(lhs, rhs, np.array([2, 2]),
                               lax.RaggedDotDimensionNumbers((([1], [1]), ([], [])), [], [0]))
    with pytest.raises(TypeError, match="got 5 for lhs of rank 2"):
        lax.ragged_dot_general(lhs, rhs, np.array([2, 2]),
                               lax.RaggedDotDimensionNumbers((([1], [1]), ([], [])), [5], [0]))
    with pytest.raises(TypeError, match="group_sizes must be integers"):
        lax.ragged_dot(lhs, rhs, np.array([2.0, 2.0]))
    with pytest.raises(TypeError, match="has size 2, group_sizes has 3 groups"):
        lax.ragged_dot_general(lhs, rhs, np.array([1, 1, 2]),
                               lax.RaggedDotDimensionNumbers((([1], [1]), ([], [])), [0], [0]))
    with pytest.raises(TypeError, match=r"expected lhs \(m, k\)"):
        lax.ragged_dot(lhs, normal(3, 5), np.array([4]))


def test_group_sizes_follow_the_batch_then_outer_dimensions():
    # lhs [m1, b, m2, k], batch b, ragged m2: group_sizes is [b, m1, g] (batch dims first)
    lhs, rhs = normal(2, 3, 5, 4), normal(2, 3, 4, 6)     # rhs [g, b, k, n]
    sizes = RNG.integers(0, 3, size=(3, 2, 2)).astype(np.int32)
    dims = lax.RaggedDotDimensionNumbers((([3], [2]), ([1], [1])), [2], [0])
    out = lax.ragged_dot_general(lhs, rhs, sizes, dims)   # [b, m1, m2, n]
    expect = np.zeros((3, 2, 5, 6), np.float32)
    for b in range(3):
        for m1 in range(2):
            for g, (s, e) in enumerate(bounds(sizes[b, m1])):
                expect[b, m1, s:e] = lhs[m1, b, s:e] @ rhs[g, b]
    np.testing.assert_allclose(out, expect, rtol=1e-5, atol=1e-5)
