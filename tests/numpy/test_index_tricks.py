"""Index helpers against numpy."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp


def _same(a, b):
    if isinstance(b, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6)


def test_grids():
    _same(jnp.mgrid[0:3, 0:2], np.mgrid[0:3, 0:2])
    _same(jnp.mgrid[-1:1:5j], np.mgrid[-1:1:5j])
    _same(jnp.mgrid[0:1:0.25, 1:3], np.mgrid[0:1:0.25, 1:3])
    _same(jnp.ogrid[0:3, 0:2], np.ogrid[0:3, 0:2])


@pytest.mark.parametrize("key", [
    (1, 2, np.array([3, 4]), slice(0, 3)), ("0,2", [1, 2, 3], [4, 5, 6]),
    ("r", [1, 2, 3], [4, 5, 6]), ("c", [1, 2, 3], [4, 5, 6]),
    ("0,2,0", [1, 2, 3], [4, 5, 6]), ("1,3", np.ones((2, 2))), (slice(-1, 1, 5j), 7)],
    ids=str)
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # numpy makes a matrix
def test_r_matches_numpy(key):
    _same(jnp.r_[key], np.r_[key])


def test_c_s_index_exp():
    a, b = np.array([1, 2, 3]), np.array([4, 5, 6])
    _same(jnp.c_[a, b], np.c_[a, b])
    _same(jnp.c_[np.ones((2, 2)), np.zeros((2, 1))], np.c_[np.ones((2, 2)), np.zeros((2, 1))])
    assert jnp.s_[1:3, ::2] == np.s_[1:3, ::2] and jnp.index_exp[1] == np.index_exp[1]


def test_ix_and_triangle_indices():
    x = np.arange(20).reshape(4, 5)
    rows, cols = np.array([0, 3]), np.array([True, False, True, False, True])
    _same(jnp.asarray(x)[jnp.ix_(rows, cols)], x[np.ix_(rows, cols)])
    for k in (-1, 0, 2):
        _same(jnp.tril_indices(4, k, 5), np.tril_indices(4, k, 5))
        _same(jnp.triu_indices(4, k), np.triu_indices(4, k))
        _same(jnp.tril_indices_from(x, k), np.tril_indices_from(x, k))
        _same(jnp.triu_indices_from(x, k), np.triu_indices_from(x, k))
        _same(jnp.mask_indices(4, jnp.triu, k), np.mask_indices(4, np.triu, k))
    _same(jnp.diag_indices(3, 3), np.diag_indices(3, 3))
    _same(jnp.diag_indices_from(np.ones((2, 2, 2))), np.diag_indices_from(np.ones((2, 2, 2))))
    with pytest.raises(ValueError):
        jnp.diag_indices_from(np.ones((2, 3)))


def test_ravel_and_unravel_indices():
    idx = (np.array([1, 2, 0]), np.array([3, 0, 4]))
    for order in ("C", "F"):
        _same(jnp.ravel_multi_index(idx, (3, 5), order=order),
              np.ravel_multi_index(idx, (3, 5), order=order))
    _same(jnp.ravel_multi_index((np.array([4, -1]), np.array([7, 2])), (3, 5), mode="wrap"),
          np.ravel_multi_index(([4, -1], [7, 2]), (3, 5), mode="wrap"))
    _same(jnp.ravel_multi_index((np.array([4, -1]), np.array([7, 2])), (3, 5), mode="clip"),
          np.ravel_multi_index(([4, -1], [7, 2]), (3, 5), mode="clip"))
    with pytest.raises(ValueError, match="invalid entry"):
        jnp.ravel_multi_index((np.array([4]), np.array([0])), (3, 5))
    flat = np.array([0, 7, 14, 3])
    _same(jnp.unravel_index(flat, (3, 5)), np.unravel_index(flat, (3, 5)))
    _same(jax.jit(lambda f: jnp.unravel_index(f, (3, 5)))(flat), np.unravel_index(flat, (3, 5)))


@pytest.mark.parametrize("shape,val,wrap", [((3, 3), 5.0, False), ((5, 3), [1.0, 2.0], True),
                                            ((5, 3), 7.0, False), ((3, 3, 3), 4.0, False)])
def test_fill_diagonal(shape, val, wrap):
    expect = np.zeros(shape)
    np.fill_diagonal(expect, val, wrap=wrap)
    _same(jnp.fill_diagonal(jnp.zeros(shape), jnp.asarray(val), wrap=wrap, inplace=False),
          expect)
    with pytest.raises(NotImplementedError, match="inplace=False"):
        jnp.fill_diagonal(jnp.zeros(shape), 1.0)
