"""``jnp`` reductions against numpy: values, shapes and JAX's result dtypes, plus
errors, grads against finite differences and vmap against loops."""
import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.int32, np.uint32, np.float16,
          np.float32]


@st.composite
def array_and_axis(draw, dtypes_=DTYPES, min_size=0, allow_tuple=True):
    shape = tuple(draw(st.lists(st.integers(min_size, 4), max_size=3)))
    nd = len(shape)
    if nd and allow_tuple:
        axis = draw(st.one_of(
            st.none(), st.integers(-nd, nd - 1),
            st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple)))
    elif nd:
        axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
    else:
        axis = None
    dt = np.dtype(draw(st.sampled_from(dtypes_)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    if dt == np.bool_:
        x = rng.integers(0, 2, shape).astype(bool)
    elif dtypes.is_int(dt):
        x = rng.integers(0 if dtypes.is_unsigned(dt) else -3, 4, shape).astype(dt)
    else:
        x = rng.standard_normal(shape).astype(dt)
    return x, axis, draw(st.booleans())


def _sum_dtype(dt):
    dt = np.dtype(dt)
    if dt == np.bool_ or (dtypes.is_signed(dt) and dt.itemsize < 4):
        return np.dtype(np.int32)
    if dtypes.is_unsigned(dt) and dt.itemsize < 4:
        return np.dtype(np.uint32)
    return dt


def _float_dtype(dt):
    return np.dtype(dt) if dtypes.is_float(dt) else np.dtype(np.float32)


def _close(actual, expected, dtype, rtol=None):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    tol = 1e-2 if np.dtype(dtype) == np.float16 else 1e-5
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64),
                               rtol=rtol or tol, atol=rtol or tol)


@SETTINGS
@given(array_and_axis())
def test_sum_prod_dtype_rules(case):
    x, axis, keepdims = case
    dt = _sum_dtype(x.dtype)
    _close(jnp.sum(x, axis, keepdims=keepdims),
           np.sum(x.astype(dt), axis, keepdims=keepdims), dt)
    _close(jnp.prod(x, axis, keepdims=keepdims),
           np.prod(x.astype(np.float64), axis, keepdims=keepdims).astype(dt), dt)
    if x.dtype != np.bool_:
        _close(jnp.sum(x, axis, dtype=jnp.float32), np.sum(x, axis, dtype=np.float32),
               np.float32)


def test_sum_examples_and_promote_integers():
    assert jnp.sum(np.ones(3, np.int8)).dtype == np.int32
    assert jnp.sum(np.ones(3, np.uint8)).dtype == np.uint32
    assert jnp.sum(np.ones(3, np.int8), promote_integers=False).dtype == np.int8
    assert jnp.sum(np.ones(3, bool)).dtype == np.int32
    assert jnp.sum(np.ones(3, np.float16)).dtype == np.float16
    assert jnp.sum(jnp.asarray(1.0)).aval.weak_type  # a weak input stays weak
    assert int(jnp.sum(np.arange(5, dtype=np.int32), initial=10)) == 20
    w = np.array([True, False, True])
    assert float(jnp.sum(np.array([1.0, 2.0, 4.0]), where=w)) == 5.0
    assert float(jnp.prod(np.array([1.0, 2.0, 4.0]), where=w)) == 4.0


@SETTINGS
@given(array_and_axis(min_size=1))
def test_max_min_ptp_argmax(case):
    x, axis, keepdims = case
    _close(jnp.max(x, axis, keepdims=keepdims), np.max(x, axis, keepdims=keepdims), x.dtype)
    _close(jnp.amin(x, axis, keepdims=keepdims), np.min(x, axis, keepdims=keepdims),
           x.dtype)
    if x.dtype != np.bool_:
        _close(jnp.ptp(x, axis, keepdims=keepdims), np.ptp(x, axis, keepdims=keepdims),
               x.dtype)
    if axis is None or isinstance(axis, int):
        if x.size:
            for f in ("argmax", "argmin"):
                _close(getattr(jnp, f)(x, axis, keepdims=keepdims),
                       getattr(np, f)(x, axis, keepdims=keepdims), np.int32)


@SETTINGS
@given(array_and_axis())
def test_all_any_count_nonzero(case):
    x, axis, keepdims = case
    _close(jnp.all(x, axis, keepdims=keepdims), np.all(x, axis, keepdims=keepdims), bool)
    _close(jnp.any(x, axis, keepdims=keepdims), np.any(x, axis, keepdims=keepdims), bool)
    _close(jnp.count_nonzero(x, axis, keepdims=keepdims),
           np.count_nonzero(x, axis, keepdims=keepdims), np.int32)


@SETTINGS
@given(array_and_axis(min_size=1), st.integers(0, 1))
def test_mean_var_std(case, ddof):
    x, axis, keepdims = case
    dt = _float_dtype(x.dtype)
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        _close(jnp.mean(x, axis, keepdims=keepdims), np.mean(x64, axis, keepdims=keepdims),
               dt)
        n = x.size if axis is None else np.prod([x.shape[a] for a in np.atleast_1d(axis)])
        if n > ddof:
            _close(jnp.var(x, axis, ddof=ddof, keepdims=keepdims),
                   np.var(x64, axis, ddof=ddof, keepdims=keepdims), dt)
            _close(jnp.std(x, axis, ddof=ddof, keepdims=keepdims),
                   np.std(x64, axis, ddof=ddof, keepdims=keepdims), dt)


def test_mean_var_dtypes_and_where():
    assert jnp.mean(jnp.arange(5)).dtype == np.float32
    assert jnp.mean(np.ones(3, np.float16)).dtype == np.float16
    assert jnp.mean(np.ones(3, bool)).dtype == np.float32
    assert jnp.var(np.arange(4)).dtype == np.float32
    assert jnp.mean(jnp.arange(4), dtype=jnp.float16).dtype == np.float16
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    w = x % 3 != 0
    np.testing.assert_allclose(jnp.mean(x, 1, where=w), np.mean(x, 1, where=w))
    np.testing.assert_allclose(jnp.var(x, 0, where=w), np.var(x, 0, where=w), rtol=1e-6)
    np.testing.assert_allclose(jnp.std(x, correction=1), np.std(x, ddof=1), rtol=1e-6)
    with pytest.raises(ValueError, match="simultaneously"):
        jnp.var(x, ddof=1, correction=1)


@SETTINGS
@given(array_and_axis(dtypes_=[np.bool_, np.int8, np.uint16, np.int32, np.float32],
                      allow_tuple=False))
def test_cumsum_cumprod(case):
    x, axis, _ = case
    dt = _sum_dtype(x.dtype)
    _close(jnp.cumsum(x, axis), np.cumsum(x.astype(dt), axis), dt, rtol=1e-4)
    _close(jnp.cumprod(x, axis), np.cumprod(x.astype(dt), axis), dt, rtol=1e-4)
    _close(jnp.cumsum(x, axis, dtype=jnp.float32), np.cumsum(x, axis, dtype=np.float32),
           np.float32, rtol=1e-4)


def test_cumulative_sum_include_initial():
    x = np.array([[1, 2], [3, 4]], np.int32)
    np.testing.assert_array_equal(jnp.cumulative_sum(x, axis=1, include_initial=True),
                                  [[0, 1, 3], [0, 3, 7]])


@SETTINGS
@given(array_and_axis(dtypes_=[np.float32], min_size=1))
def test_nan_reductions(case):
    x, axis, keepdims = case
    x = x.copy()
    if x.size:
        x.flat[::3] = np.nan
    kw = dict(axis=axis, keepdims=keepdims)
    with np.errstate(all="ignore"), _no_warn():
        _close(jnp.nansum(x, **kw), np.nansum(x, **kw), np.float32)
        _close(jnp.nanprod(x, **kw), np.nanprod(x, **kw), np.float32)
        _close(jnp.nanmean(x, **kw), np.nanmean(x, **kw), np.float32)
        _close(jnp.nanmax(x, **kw), np.nanmax(x, **kw), np.float32)
        _close(jnp.nanmin(x, **kw), np.nanmin(x, **kw), np.float32)
        _close(jnp.nanvar(x, **kw), np.nanvar(x, **kw), np.float32)
        _close(jnp.sum(x, **kw), np.sum(x, **kw), np.float32)


class _no_warn:
    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


METHODS = ["linear", "lower", "higher", "nearest", "midpoint"]


@SETTINGS
@given(array_and_axis(dtypes_=[np.int8, np.float32], min_size=1),
       st.sampled_from(METHODS),
       st.one_of(st.floats(0, 1), st.lists(st.floats(0, 1), min_size=1, max_size=3)))
def test_quantile_percentile_median(case, method, q):
    x, axis, keepdims = case
    if x.size == 0:
        return
    q = np.asarray(q, np.float32)
    axes = range(x.ndim) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    n = int(np.prod([x.shape[a] for a in axes]))
    pos32, pos64 = q * np.float32(n - 1), q.astype(np.float64) * (n - 1)
    # the discrete methods jump at (half-)integer positions q * (n - 1): skip the q where
    # float32 arithmetic (JAX's and ours) and the float64 reference land on two sides
    assume(method == "linear" or all(np.array_equal(f(pos32), f(pos64))
                                     for f in (np.floor, np.ceil, np.round)))
    dt = _float_dtype(x.dtype)
    x64 = x.astype(np.float64)
    _close(jnp.quantile(x, q, axis, method=method, keepdims=keepdims),
           np.quantile(x64, q.astype(np.float64), axis, method=method, keepdims=keepdims),
           dt, rtol=1e-4)
    _close(jnp.percentile(x, q * 100, axis, method=method, keepdims=keepdims),
           np.percentile(x64, q.astype(np.float64) * 100, axis, method=method,
                         keepdims=keepdims), dt, rtol=1e-4)
    _close(jnp.median(x, axis, keepdims=keepdims), np.median(x64, axis, keepdims=keepdims),
           dt)


def test_quantile_nan_and_errors():
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]], np.float32)
    out = np.asarray(jnp.median(x, axis=1))
    assert np.isnan(out[0]) and out[1] == 5.0
    np.testing.assert_allclose(jnp.nanmedian(x, axis=1), np.nanmedian(x, axis=1))
    np.testing.assert_allclose(jnp.nanquantile(x, 0.3, axis=1), np.nanquantile(x, 0.3, axis=1),
                               rtol=1e-6)
    # 'nearest' rounds half to even, as numpy does
    v = np.arange(4.0, dtype=np.float32)
    for q in (0.5, 1 / 6, 5 / 6):
        for m in METHODS:
            np.testing.assert_allclose(jnp.quantile(v, q, method=m),
                                       np.quantile(v, q, method=m), rtol=1e-6)
    with pytest.raises(ValueError, match="range"):
        jnp.quantile(x, 1.5)
    with pytest.raises(ValueError, match="method"):
        jnp.quantile(x, 0.5, method="bogus")


def test_average():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    w = rng.random((3, 4)).astype(np.float32)
    np.testing.assert_allclose(jnp.average(x), np.average(x), rtol=1e-5)
    np.testing.assert_allclose(jnp.average(x, 1, w), np.average(x, 1, w), rtol=1e-5)
    np.testing.assert_allclose(jnp.average(x, 0, w[:, 0]), np.average(x, 0, w[:, 0]),
                               rtol=1e-5)
    avg, sw = jnp.average(x, 1, w, returned=True)
    eavg, esw = np.average(x, 1, w, returned=True)
    np.testing.assert_allclose(avg, eavg, rtol=1e-5)
    np.testing.assert_allclose(sw, esw, rtol=1e-5)
    avg, sw = jnp.average(np.arange(6).reshape(2, 3), 1, returned=True)
    assert avg.dtype == np.float32 and sw.tolist() == [3.0, 3.0]
    assert jnp.average(np.arange(4), keepdims=True).shape == (1,)
    with pytest.raises(ValueError, match="Axis must be specified"):
        jnp.average(x, weights=w[0])
    with pytest.raises(ValueError, match="Length of weights"):
        jnp.average(x, 1, w[:, 0])


def test_reduction_errors():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.sum(x, axis=2)
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.mean(x, axis=(0, -3))
    with pytest.raises(ValueError, match="duplicate"):
        jnp.sum(x, axis=(0, 0))
    with pytest.raises(ValueError, match="zero-size array to reduction operation max"):
        jnp.max(np.ones((0, 2)), axis=0)
    with pytest.raises(ValueError, match="does not have an identity"):
        jnp.min(x, where=x > 0)
    with pytest.raises(ValueError, match="empty sequence"):
        jnp.argmax(np.ones((0,)))
    with pytest.raises(TypeError, match="requires ndarray or scalar"):
        jnp.sum([1, 2])
    assert float(jnp.max(np.ones((0,)), initial=3.0)) == 3.0
    np.testing.assert_array_equal(jnp.max(x, axis=1, where=x > 2, initial=-1), [-1, -1])


def test_reduction_grads(x64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    for f in [lambda x: jnp.sum(x ** 2, axis=1), lambda x: jnp.mean(x, axis=(0, 1)),
              lambda x: jnp.var(x, axis=0, ddof=1), lambda x: jnp.std(x, axis=1),
              lambda x: jnp.max(x, axis=0), lambda x: jnp.prod(x, axis=1),
              lambda x: jnp.cumsum(x, axis=1), lambda x: jnp.cumprod(x, axis=0),
              lambda x: jnp.quantile(x, 0.3, axis=1),
              lambda x: jnp.average(x, 1, jnp.arange(1.0, 5.0)),
              lambda x: jnp.nansum(x), lambda x: jnp.sum(x, where=x > 0)]:
        check_grads(f, (x,), order=1, modes=("fwd", "rev"))


def test_reduction_vmap_matches_loop():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((3, 4, 5)).astype(np.float32)
    for f in [lambda x: jnp.sum(x, axis=0), lambda x: jnp.var(x, axis=1, keepdims=True),
              lambda x: jnp.argmax(x, axis=1), lambda x: jnp.median(x, axis=0),
              lambda x: jnp.cumsum(x), lambda x: jnp.quantile(x, np.array([0.2, 0.9]))]:
        out = jax.vmap(f)(xs)
        np.testing.assert_allclose(out, np.stack([np.asarray(f(x)) for x in xs]), rtol=1e-5)


def test_reductions_under_jit():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    f = jax.jit(lambda x: (jnp.sum(x, 1), jnp.mean(x), jnp.argmin(x, 0), jnp.median(x, 1)))
    for a, e in zip(f(x), (x.sum(1), x.mean(), x.argmin(0), np.median(x, 1))):
        np.testing.assert_allclose(a, e)
