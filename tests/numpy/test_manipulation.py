"""append/insert/delete/resize/block/choose/select/piecewise/compress/place/put and
partition against numpy; apply_along_axis against a loop; jit against eager."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

X = np.arange(12).reshape(3, 4)


def _same(a, b):
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6)


def test_append():
    _same(jnp.append(X, np.array([[1, 2, 3, 4]]), axis=0), np.append(X, [[1, 2, 3, 4]], 0))
    _same(jnp.append(X, 5), np.append(X, 5))


@pytest.mark.parametrize("obj,values,axis", [
    (1, 99, None), (1, 99, 1), ([1, 3], [7, 8], 1), (slice(0, 2), 0, 0),
    (2, np.array([[5], [6], [7]]), 1), (4, [1, 2, 3], 1), (1, [1, 2, 3, 4], 0), (-1, 9, 0)],
    ids=str)
def test_insert_matches_numpy(obj, values, axis):
    _same(jnp.insert(X, obj, np.asarray(values), axis=axis),
          np.insert(X, obj, values, axis=axis))


@pytest.mark.parametrize("obj,axis", [(1, None), (1, 1), ([0, 2], 1), (slice(0, 2), 0),
                                      (-1, 0), (np.array([True, False, True]), 0)], ids=str)
def test_delete_matches_numpy(obj, axis):
    _same(jnp.delete(X, obj, axis=axis), np.delete(X, obj, axis=axis))


def test_delete_traced_unique_indices_and_errors():
    out = jax.jit(lambda i: jnp.delete(X, i, axis=1, assume_unique_indices=True))(
        jnp.array([0, 2]))
    _same(out, np.delete(X, [0, 2], axis=1))
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda i: jnp.delete(X, i))(jnp.array([0]))
    with pytest.raises(IndexError):
        jnp.delete(X, 7, axis=1)


def test_resize_rollaxis_unstack_block():
    _same(jnp.resize(X, (5, 3)), np.resize(X, (5, 3)))
    _same(jnp.resize(X, 2), np.resize(X, 2))
    y = np.ones((2, 3, 4, 5))
    for axis, start in [(3, 1), (1, 4), (-1, 0), (0, -1)]:
        _same(jnp.rollaxis(y, axis, start), np.rollaxis(y, axis, start))
    parts = jnp.unstack(X, axis=1)
    assert len(parts) == 4
    _same(jnp.stack(parts, axis=1), X)
    a, b, c = np.ones((2, 2)), np.zeros((2, 3)), np.full((1, 5), 2.0)
    _same(jnp.block([[a, b], [c]]), np.block([[a, b], [c]]))
    _same(jnp.block([1, 2, np.array([3, 4])]), np.block([1, 2, np.array([3, 4])]))
    _same(jnp.block([[[a]], [[a]]]), np.block([[[a]], [[a]]]))
    with pytest.raises(ValueError, match="depths"):
        jnp.block([[a], b])


def test_apply_along_and_over_axes():
    for axis in (0, 1):
        _same(jnp.apply_along_axis(lambda v: v.sum() * v[0], axis, X),
              np.apply_along_axis(lambda v: v.sum() * v[0], axis, X))
        _same(jnp.apply_along_axis(lambda v: v[::-1] * 2, axis, X),
              np.apply_along_axis(lambda v: v[::-1] * 2, axis, X))
    y = np.arange(24.0).reshape(2, 3, 4)
    _same(jnp.apply_over_axes(jnp.sum, y, [0, 2]), np.apply_over_axes(np.sum, y, [0, 2]))


def test_choose_select_piecewise():
    choices = [np.array([1, 2, 3, 4]), 99, np.array([[10], [20], [30]])]
    a = np.array([[0, 1, 2, 0], [1, 2, 0, 1], [2, 0, 1, 2]])
    _same(jnp.choose(a, choices), np.choose(a, choices))
    for mode in ("wrap", "clip"):
        _same(jnp.choose(np.array([2, 0, 1, 4]), [np.arange(4) * i for i in range(3)], mode=mode),
              np.choose([2, 0, 1, 4], [np.arange(4) * i for i in range(3)], mode=mode))
    with pytest.raises(ValueError, match="invalid entry"):
        jnp.choose(np.array([3]), [np.arange(1)] * 2)
    v = np.arange(6.0)
    _same(jnp.select([v < 2, v > 4], [v, v ** 2], -1), np.select([v < 2, v > 4], [v, v ** 2], -1))
    fns = [lambda t: -t, lambda t: t * 2, 7.0]
    _same(jnp.piecewise(v - 3, [v < 2, v > 4], fns), np.piecewise(v - 3, [v < 2, v > 4], fns))
    check_grads(lambda t: jnp.piecewise(t, [t < 0.5], [jnp.sin, jnp.cos]),
                (np.array([0.1, 0.9, 1.3], np.float32),), order=1)


def test_compress_extract_place_put():
    _same(jnp.compress(np.array([True, False, True]), X, axis=0),
          np.compress([True, False, True], X, axis=0))
    _same(jnp.compress(np.array([False, True]), X), np.compress([False, True], X))
    out = jax.jit(lambda c: jnp.compress(c, X, axis=1, size=3, fill_value=-1))(
        np.array([True, False, True, False]))
    _same(out, [[0, 2, -1], [4, 6, -1], [8, 10, -1]])
    _same(jnp.extract(X % 3 == 0, X), np.extract(X % 3 == 0, X))
    expect = X.copy()
    np.place(expect, expect % 2 == 1, [-1, -2])
    _same(jnp.place(X, X % 2 == 1, np.array([-1, -2]), inplace=False), expect)
    for mode in ("clip", "wrap"):
        expect = X.copy()
        np.put(expect, [1, 5, 30], [-1, -2, -3], mode=mode)
        _same(jnp.put(X, np.array([1, 5, 30]), np.array([-1, -2, -3]), mode=mode,
                      inplace=False), expect)
    expect = X.copy()
    np.put_along_axis(expect, np.array([[1], [0], [3]]), 77, axis=1)
    _same(jnp.put_along_axis(X, np.array([[1], [0], [3]]), 77, axis=1, inplace=False), expect)
    with pytest.raises(ValueError, match="inplace=False"):
        jnp.put(X, np.array([0]), 1)
    _same(jnp.diagflat(np.array([[1, 2], [3, 4]]), 1), np.diagflat([[1, 2], [3, 4]], 1))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.data())
def test_partition_property(n, rows, data):
    axis = data.draw(st.sampled_from([0, 1, -1]))
    x = np.random.default_rng(n * 10 + rows).normal(size=(rows, n)).astype(np.float32)
    size = x.shape[axis]
    kth = data.draw(st.integers(-size, size - 1))
    p = np.asarray(jnp.partition(x, kth, axis=axis))
    k = kth % x.shape[axis]
    ref = np.sort(x, axis=axis)
    np.testing.assert_array_equal(np.sort(p, axis=axis), ref)
    np.testing.assert_array_equal(np.take(p, k, axis=axis), np.take(ref, k, axis=axis))
    idx = np.asarray(jnp.argpartition(x, kth, axis=axis))
    np.testing.assert_array_equal(np.take_along_axis(x, idx, axis=axis), p)
