"""jnp.ufunc and JAX's ufunc objects: every method against numpy's ufunc methods, the
generic loops against the specialised ones, jit against eager."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp

X = np.arange(1, 13, dtype=np.float32).reshape(3, 4) / 4


def _close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=1e-5, atol=1e-6)
    assert np.shape(a) == np.shape(b)


# numpy reduces a non-reorderable ufunc (subtract) over one axis only
REDUCE_CASES = [(n, a) for n in ["add", "multiply", "maximum", "minimum", "logaddexp",
                                 "logaddexp2"] for a in [0, 1, None, (0, 1)]] + \
    [("subtract", 0), ("subtract", 1)]


@pytest.mark.parametrize("name,axis", REDUCE_CASES)
def test_reduce_matches_numpy(name, axis):
    _close(getattr(jnp, name).reduce(X, axis=axis), getattr(np, name).reduce(X, axis=axis))
    _close(getattr(jnp, name).reduce(X, axis=axis, keepdims=True),
           getattr(np, name).reduce(X, axis=axis, keepdims=True))


@pytest.mark.parametrize("name", ["add", "multiply", "logaddexp", "subtract", "maximum"])
@pytest.mark.parametrize("axis", [0, 1])
def test_accumulate_matches_numpy(name, axis):
    _close(getattr(jnp, name).accumulate(X, axis=axis),
           getattr(np, name).accumulate(X, axis=axis))
    _close(jax.jit(lambda v: getattr(jnp, name).accumulate(v, axis=axis))(X),
           getattr(np, name).accumulate(X, axis=axis))


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "maximum", "minimum",
                                  "logaddexp"])
def test_at_matches_numpy(name):
    idx = np.array([0, 2, 2, 5])
    a = np.linspace(0.5, 2, 6).astype(np.float32)
    b = np.array([1.5, 2.0, 0.25, 3.0], np.float32)
    expect = a.copy()
    getattr(np, name).at(expect, idx, b)
    _close(getattr(jnp, name).at(a, idx, b, inplace=False), expect)
    with pytest.raises(NotImplementedError, match="inplace=False"):
        getattr(jnp, name).at(a, idx, b)


@pytest.mark.parametrize("name", ["add", "multiply", "maximum", "logaddexp"])
def test_reduceat_and_outer_match_numpy(name):
    a = np.arange(1, 9, dtype=np.float32) / 3
    idx = np.array([0, 4, 1, 5, 7])
    _close(getattr(jnp, name).reduceat(a, idx), getattr(np, name).reduceat(a, idx))
    _close(getattr(jnp, name).reduceat(X, np.array([0, 2]), axis=1),
           getattr(np, name).reduceat(X, [0, 2], axis=1))
    _close(getattr(jnp, name).outer(X[0], X[:, 1]), getattr(np, name).outer(X[0], X[:, 1]))


def test_generic_loops_agree_with_specialised_methods():
    generic = jnp.ufunc(lambda a, b: a + b, 2, 1, identity=0)
    _close(generic.reduce(X, axis=1), jnp.add.reduce(X, axis=1))
    _close(generic.reduce(X, axis=None, where=X > 1, initial=0.5),
           np.add.reduce(X, axis=None, where=X > 1, initial=0.5))
    _close(generic.accumulate(X, axis=0), jnp.add.accumulate(X, axis=0))
    _close(generic.at(np.zeros(4, np.float32), np.array([1, 1, 3]), 2.0, inplace=False),
           jnp.add.at(np.zeros(4, np.float32), np.array([1, 1, 3]), 2.0, inplace=False))
    _close(generic.reduceat(np.arange(6.), np.array([0, 3])), [3., 12.])
    assert generic.nin == 2 and generic.nout == 1 and generic.nargs == 3


def test_ufunc_errors_and_properties():
    assert jnp.add.identity == 0 and jnp.multiply.identity == 1 and jnp.add.nin == 2
    assert repr(jnp.add) == "<jnp.ufunc 'add'>" and jnp.negative.nin == 1
    with pytest.raises(ValueError, match="reduce only supported for binary"):
        jnp.negative.reduce(X)
    with pytest.raises(ValueError, match="does not have an identity"):
        jnp.maximum.reduce(X, where=X > 1)
    with pytest.raises(ValueError, match="zero-size array"):
        jnp.ufunc(lambda a, b: a * b, 2, 1).reduce(np.zeros((0,), np.float32))
    with pytest.raises(NotImplementedError, match="out argument"):
        jnp.add(X, X, out=X)
    assert bool(jnp.logical_and.reduce(np.array([True, True]))) is True
    np.testing.assert_array_equal(jnp.bitwise_or.reduce(np.array([1, 2, 8])), 11)


def test_frompyfunc_vectorises_a_scalar_function():
    f = jnp.frompyfunc(lambda a, b: a * b + 1, 2, 1)
    np.testing.assert_array_equal(f(np.arange(3), 2), [1, 3, 5])
    assert int(f.reduce(np.arange(1, 4))) == 10


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 9), min_size=1, max_size=6), st.integers(0, 1))
def test_add_reduceat_property(indices, axis):
    a = np.arange(40, dtype=np.float32).reshape(10, 4) if axis == 0 else \
        np.arange(40, dtype=np.float32).reshape(4, 10)
    idx = np.array(indices)
    _close(jnp.add.reduceat(a, idx, axis=axis), np.add.reduceat(a, idx, axis=axis))
    generic = jnp.ufunc(lambda p, q: p + q, 2, 1)
    _close(generic.reduceat(a, idx, axis=axis), np.add.reduceat(a, idx, axis=axis))
