"""Set operations against numpy: concrete results, and jit with size= padding."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp

small_ints = st.lists(st.integers(-4, 6), min_size=0, max_size=9).map(np.array)


@settings(max_examples=30, deadline=None)
@given(small_ints, small_ints)
def test_set_operations_match_numpy(a, b):
    a, b = a.astype(np.int32), b.astype(np.int32)
    for name in ("union1d", "setdiff1d", "setxor1d", "intersect1d"):
        np.testing.assert_array_equal(getattr(jnp, name)(a, b), getattr(np, name)(a, b),
                                      err_msg=name)
    np.testing.assert_array_equal(jnp.isin(a, b), np.isin(a, b))
    np.testing.assert_array_equal(jnp.isin(a, b, invert=True, method="binary_search"),
                                  np.isin(a, b, invert=True))
    if a.size and b.size:
        got = jnp.intersect1d(a, b, return_indices=True)
        for g, e in zip(got, np.intersect1d(a, b, return_indices=True)):
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("name,fill", [("union1d", None), ("setdiff1d", 0),
                                       ("setxor1d", None), ("intersect1d", None)])
def test_size_pads_under_jit(name, fill):
    a = np.array([3, 1, 4, 1, 5, 9, 2, 6], np.int32)
    b = np.array([5, 3, 5, 8, 9, 7], np.int32)
    expect = getattr(np, name)(a, b)
    size = expect.size + 3
    out = jax.jit(lambda x, y: getattr(jnp, name)(x, y, size=size))(a, b)
    pad = expect.min() if fill is None else fill
    np.testing.assert_array_equal(out, np.concatenate([expect, np.full(3, pad)]))
    out = jax.jit(lambda x, y: getattr(jnp, name)(x, y, size=size, fill_value=-7))(a, b)
    np.testing.assert_array_equal(out[expect.size:], [-7] * 3)


def test_intersect1d_indices_with_size_and_errors():
    a = np.array([3, 1, 4, 1, 5], np.int32)
    b = np.array([5, 3, 8], np.int32)
    vals, i1, i2 = jax.jit(lambda x, y: jnp.intersect1d(x, y, return_indices=True,
                                                         size=4))(a, b)
    np.testing.assert_array_equal(vals, [3, 5, 3, 3])
    np.testing.assert_array_equal(i1, [0, 4, 5, 5])
    np.testing.assert_array_equal(i2, [1, 0, 3, 3])
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(jnp.setdiff1d)(a, b)
    with pytest.raises(ValueError, match="method"):
        jnp.isin(a, b, method="nope")
    np.testing.assert_array_equal(jnp.isin(a.reshape(5, 1), b), np.isin(a.reshape(5, 1), b))
