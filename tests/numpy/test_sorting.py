"""jnp sorting, searching and counting."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.errors import ConcretizationTypeError

SETTINGS = settings(max_examples=40, deadline=None)


def arrays(rng, shape, dtype, nan=True):
    """Small values with many ties (and NaNs/infs for floats)."""
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    x = rng.integers(-3, 4, size=shape)
    if np.issubdtype(dtype, np.floating):
        x = x.astype(dtype)
        if nan and x.size:
            flat = x.reshape(-1)
            flat[rng.random(flat.size) < 0.15] = np.nan
            flat[rng.random(flat.size) < 0.1] = np.inf
            flat[rng.random(flat.size) < 0.1] = -0.0
    return x.astype(dtype)


shapes = st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple)
dtypes_ = st.sampled_from([np.float32, np.int32, np.uint8, np.bool_, np.float16])


def same(actual, want, dtype=None):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(want), (actual.shape, np.shape(want))
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    np.testing.assert_array_equal(actual, want)


@SETTINGS
@given(shapes, dtypes_, st.integers(0, 99), st.data())
def test_sort_argsort_match_numpy(shape, dt, seed, data):
    x = arrays(np.random.default_rng(seed), shape, dt)
    axis = data.draw(st.sampled_from([None] + list(range(-len(shape), len(shape)))))
    same(jnp.sort(x, axis=axis), np.sort(x, axis=axis), dt)
    same(jnp.argsort(x, axis=axis), np.argsort(x, axis=axis, stable=True), np.int32)
    same(jnp.argsort(x, axis=axis, stable=True), np.argsort(x, axis=axis, stable=True))


def _descending_reference(x):
    """Stable descending order with NaNs first (JAX's rule)."""
    key = [(0 if np.isnan(v) else 1, -float(v), i) if x.dtype.kind == "f" else
           (1, -int(v), i) for i, v in enumerate(x)]
    return np.array([k[2] for k in sorted(key)], np.int32)


@SETTINGS
@given(st.integers(0, 8), st.sampled_from([np.float32, np.int32]), st.integers(0, 99))
def test_argsort_descending_is_stable(n, dt, seed):
    x = arrays(np.random.default_rng(seed), (n,), dt)
    perm = _descending_reference(x)
    same(jnp.argsort(x, descending=True), perm)
    same(jnp.sort(x, descending=True).astype(np.float64), x[perm].astype(np.float64))


def test_sort_nan_and_signed_zero_order():
    x = np.array([np.nan, 1.0, -np.inf, -0.0, 0.0, np.nan, np.inf], np.float32)
    same(jnp.sort(x), np.sort(x))
    same(jnp.argsort(x), np.argsort(x, stable=True))


def test_sort_vmap_matches_loop():
    x = arrays(np.random.default_rng(1), (4, 6), np.float32)
    same(jax.vmap(jnp.sort)(x), np.stack([np.sort(r) for r in x]))
    same(jax.vmap(jnp.argsort, in_axes=1)(x), np.stack([np.argsort(x[:, i], stable=True)
                                                         for i in range(6)]))


def test_sort_errors():
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.sort(np.ones(3), axis=1)
    with pytest.raises(ValueError, match="order"):
        jnp.sort(np.ones(3), order="x")


@SETTINGS
@given(st.integers(1, 4), st.integers(0, 10), st.integers(0, 99))
def test_lexsort(nkeys, n, seed):
    rng = np.random.default_rng(seed)
    keys = [rng.integers(0, 3, size=n) for _ in range(nkeys)]
    same(jnp.lexsort(keys), np.lexsort(keys))


# ---------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 9), st.sampled_from(["left", "right"]),
       st.sampled_from(["scan", "scan_unrolled", "compare_all", "sort"]),
       st.sampled_from([np.float32, np.int32]), st.booleans(), st.integers(0, 99))
def test_searchsorted_matches_numpy(n, side, method, dt, use_sorter, seed):
    rng = np.random.default_rng(seed)
    a = arrays(rng, (n,), dt)
    v = arrays(rng, (3, 2), dt)
    if use_sorter:
        sorter = np.argsort(a, stable=True)
        out = jnp.searchsorted(a, v, side=side, sorter=sorter, method=method)
        want = np.searchsorted(a, v, side=side, sorter=sorter)
    else:
        a = np.sort(a)
        out = jnp.searchsorted(a, v, side=side, method=method)
        want = np.searchsorted(a, v, side=side)
    same(out, want, np.int32)


def test_searchsorted_errors_and_jit():
    with pytest.raises(ValueError, match="'middle' is an invalid value for keyword 'side'"):
        jnp.searchsorted(np.arange(3), 1, side="middle")
    with pytest.raises(ValueError, match="invalid value for keyword 'method'"):
        jnp.searchsorted(np.arange(3), 1, method="magic")
    with pytest.raises(ValueError, match="1-dimensional"):
        jnp.searchsorted(np.ones((2, 2)), 1)
    a = np.array([1.0, 2.0, 2.0, 5.0], np.float32)
    same(jax.jit(jnp.searchsorted)(a, np.array([2.0, 0.0, 9.0], np.float32)),
         np.searchsorted(a, [2.0, 0.0, 9.0]))


def test_digitize():
    bins = np.array([0.0, 1.0, 2.5, 4.0])
    x = np.array([-1.0, 0.0, 1.0, 3.0, 4.0, 7.0])
    same(jnp.digitize(x, bins), np.digitize(x, bins))
    same(jnp.digitize(x, bins, right=True), np.digitize(x, bins, right=True))
    same(jnp.digitize(x, bins[::-1]), np.digitize(x, bins[::-1]))


# ---------------------------------------------------------------------------
# nonzero, argwhere, flatnonzero
# ---------------------------------------------------------------------------

@SETTINGS
@given(shapes.filter(lambda s: len(s) >= 1), dtypes_, st.integers(0, 99))
def test_nonzero_matches_numpy(shape, dt, seed):
    x = arrays(np.random.default_rng(seed), shape, dt, nan=False)
    for got, want in zip(jnp.nonzero(x), np.nonzero(x)):
        same(got, want, np.int32)
    same(jnp.argwhere(x), np.argwhere(x), np.int32)
    same(jnp.flatnonzero(x), np.flatnonzero(x), np.int32)


@SETTINGS
@given(st.integers(1, 6), st.integers(0, 8), st.sampled_from([None, -1, 7]),
       st.integers(0, 99))
def test_nonzero_with_size(n, size, fill, seed):
    x = np.random.default_rng(seed).integers(0, 2, size=(n, 2))
    want = np.nonzero(x)
    got = jax.jit(lambda v: jnp.nonzero(v, size=size, fill_value=fill))(x)
    f = 0 if fill is None else fill
    for g, w in zip(got, want):
        w = np.concatenate([w, np.full(max(size - len(w), 0), f)])[:size]
        same(g, w)
    aw = np.argwhere(x)
    aw = np.concatenate([aw, np.full((max(size - len(aw), 0), 2), f)])[:size]
    same(jnp.argwhere(x, size=size, fill_value=fill), aw)


def test_nonzero_errors_and_per_axis_fill():
    with pytest.raises(ValueError, match="Calling nonzero on 0d arrays"):
        jnp.nonzero(1)
    with pytest.raises(ConcretizationTypeError, match="size"):
        jax.jit(jnp.nonzero)(np.ones(3))
    r, c = jnp.nonzero(np.eye(2), size=3, fill_value=(-1, -2))
    same(r, [0, 1, -1])
    same(c, [0, 1, -2])
    same(jnp.argwhere(np.float32(3.0)), np.argwhere(np.float32(3.0)))


# ---------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------

@SETTINGS
@given(shapes, st.sampled_from([np.float32, np.int32, np.bool_]), st.integers(0, 99))
def test_unique_matches_numpy(shape, dt, seed):
    x = arrays(np.random.default_rng(seed), shape, dt)
    got = jnp.unique(x, return_index=True, return_inverse=True, return_counts=True)
    want = np.unique(x, return_index=True, return_inverse=True, return_counts=True)
    for g, w in zip(got, want):
        same(g, w)
    same(jnp.unique(x), np.unique(x))


def test_unique_nan_handling():
    x = np.array([np.nan, 1.0, np.nan, 1.0], np.float32)
    same(jnp.unique(x), np.unique(x))
    same(jnp.unique(x, equal_nan=False), np.unique(x, equal_nan=False))


@SETTINGS
@given(st.integers(0, 8), st.integers(1, 8), st.sampled_from([None, -5]), st.integers(0, 99))
def test_unique_with_size(n, size, fill, seed):
    x = np.random.default_rng(seed).integers(0, 5, size=n).astype(np.int32)
    vals, idx, inv, counts = jax.jit(lambda v: jnp.unique(
        v, return_index=True, return_inverse=True, return_counts=True, size=size,
        fill_value=fill))(x)
    wv, wi, winv, wc = np.unique(x, return_index=True, return_inverse=True,
                                 return_counts=True)
    k = min(size, len(wv))
    same(vals[:k], wv[:k])
    same(idx[:k], wi[:k])
    same(counts[:k], wc[:k])
    if len(wv) <= size:
        same(inv, winv)
    if n and size > len(wv):
        pad = wv[0] if fill is None else fill
        same(vals[k:], np.full(size - k, pad))
        same(counts[k:], np.zeros(size - k))


def test_unique_errors():
    with pytest.raises(ConcretizationTypeError, match="size"):
        jax.jit(jnp.unique)(np.arange(3))
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.unique(np.ones((2, 2)), axis=2)


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3).map(tuple), st.integers(0, 99),
       st.data())
def test_unique_along_axis_matches_numpy(shape, seed, data):
    x = np.random.default_rng(seed).integers(0, 2, size=shape).astype(np.int32)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    if x.size == 0:
        return  # numpy cannot take unique slices of empty arrays along an axis
    got = jnp.unique(x, return_index=True, return_inverse=True, return_counts=True,
                     axis=axis)
    want = np.unique(x, return_index=True, return_inverse=True, return_counts=True,
                     axis=axis)
    for g, w in zip(got, want):
        same(g, w)


def test_unique_along_axis_with_size():
    x = np.array([[1, 2], [0, 5], [1, 2]], np.int32)
    vals, counts = jax.jit(lambda v: jnp.unique(v, axis=0, size=3, fill_value=-1,
                                                return_counts=True))(x)
    same(vals, [[0, 5], [1, 2], [-1, -1]])
    same(counts, [1, 2, 0])


# ---------------------------------------------------------------------------
# bincount, histogram
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 10), st.integers(0, 8), st.booleans(), st.integers(0, 99))
def test_bincount_matches_numpy(n, minlength, weighted, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, size=n).astype(np.int32)
    w = rng.normal(size=n).astype(np.float32) if weighted else None
    want = np.bincount(x, w, minlength)
    out = jnp.bincount(x, w, minlength)
    assert out.dtype == (np.float32 if weighted else np.int32)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    out = jax.jit(lambda v: jnp.bincount(v, length=4))(x)
    same(out, np.bincount(x[x < 4], minlength=4)[:4])


def test_bincount_errors():
    with pytest.raises(TypeError, match="integer type"):
        jnp.bincount(np.ones(3))
    with pytest.raises(ValueError, match="1-dimensional"):
        jnp.bincount(np.ones((2, 2), np.int32))
    with pytest.raises(ConcretizationTypeError, match="length"):
        jax.jit(jnp.bincount)(np.arange(3))


@SETTINGS
@given(st.integers(1, 20), st.sampled_from([1, 3, 10]), st.booleans(), st.booleans(),
       st.booleans(), st.integers(0, 99))
def test_histogram_matches_numpy(n, bins, use_range, weighted, density, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n).astype(np.float32)
    w = rng.random(n).astype(np.float32) if weighted else None
    rng_ = (-1.0, 1.0) if use_range else None
    counts, edges = jnp.histogram(a, bins, rng_, w, density)
    wc, we = np.histogram(a.astype(np.float64), bins, rng_, weights=w, density=density)
    # a value on a bin edge may round into either bin in float32
    assume(np.min(np.abs(a[:, None] - we[None, 1:-1]), initial=1.0) > 1e-4)
    assert counts.dtype == np.float32
    np.testing.assert_allclose(edges, we, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(counts, wc, rtol=1e-4, atol=1e-5)


def test_histogram_array_bins_and_constant_data():
    a = np.array([0.0, 0.5, 1.0, 2.0, 3.0], np.float32)
    bins = np.array([0.0, 1.0, 3.0], np.float32)
    c, e = jnp.histogram(a, bins)
    same(c, np.histogram(a, bins)[0].astype(np.float32))
    c, e = jnp.histogram(np.full(4, 2.0, np.float32), 2)
    np.testing.assert_allclose(e, np.histogram(np.full(4, 2.0), 2)[1])
    same(c, np.histogram(np.full(4, 2.0), 2)[0].astype(np.float32))
    c, e = jax.jit(lambda v: jnp.histogram(v, 4))(a)
    np.testing.assert_allclose(c, np.histogram(a, 4)[0])
