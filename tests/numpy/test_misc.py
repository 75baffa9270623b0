"""jnp.diff, interp, convolve/correlate, clip, nan_to_num, isclose and friends."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=40, deadline=None)


def close(actual, want, dtype=None, tol=1e-5):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(want), (actual.shape, np.shape(want))
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(want, np.float64),
                               rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# diff
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), st.integers(0, 3),
       st.sampled_from([np.float32, np.int32, np.bool_]), st.booleans(), st.booleans(),
       st.integers(0, 99), st.data())
def test_diff_matches_numpy(shape, n, dt, pre, app, seed, data):
    rng = np.random.default_rng(seed)
    x = (rng.integers(-5, 5, size=shape) > 0 if dt == np.bool_ else
         rng.integers(-5, 5, size=shape)).astype(dt)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    kw = {}
    if pre:
        kw["prepend"] = dt(1)
    if app:
        eshape = list(shape)
        eshape[axis] = 2
        kw["append"] = np.ones(eshape, dt)
    want = np.diff(x, n, axis, **kw)
    close(jnp.diff(x, n, axis, **kw), want, want.dtype)


def test_diff_errors_and_ediff1d():
    with pytest.raises(ValueError, match="order must be non-negative"):
        jnp.diff(np.ones(3), -1)
    with pytest.raises(ValueError, match="at least one dimensional"):
        jnp.diff(1.0)
    x = np.array([[1, 4], [9, 16]])
    close(jnp.ediff1d(x, to_end=[0], to_begin=-1), np.ediff1d(x, to_end=[0], to_begin=-1))


# ---------------------------------------------------------------------------
# interp
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 8), st.booleans(), st.integers(0, 99))
def test_interp_matches_numpy(n, lr, seed):
    rng = np.random.default_rng(seed)
    xp = np.sort(rng.choice(np.arange(-10, 10), size=n, replace=False)).astype(np.float32)
    fp = rng.normal(size=n).astype(np.float32)
    x = rng.uniform(-12, 12, size=(3, 4)).astype(np.float32)
    x[0, :n] = xp[:4]
    kw = dict(left=-100.0, right=100.0) if lr else {}
    close(jnp.interp(x, xp, fp, **kw), np.interp(x, xp, fp, **kw), np.float32, tol=1e-4)


def test_interp_period_and_dtypes():
    xp = np.array([190, -190, 350, -350], np.float32)
    fp = np.array([5, 10, 3, 4], np.float32)
    x = np.array([-180, -170, -185, 185, -10, -5, 0, 365], np.float32)
    close(jnp.interp(x, xp, fp, period=360), np.interp(x, xp, fp, period=360), tol=1e-4)
    assert jnp.interp(np.arange(3), np.arange(3), np.arange(3)).dtype == np.float32
    with pytest.raises(ValueError, match="one-dimensional"):
        jnp.interp(1.0, np.ones((2, 2)), np.ones(4))
    with pytest.raises(ValueError, match="same length"):
        jnp.interp(1.0, np.arange(3.0), np.ones(4))


def test_interp_grads_and_vmap(x64):
    xp = np.array([0.0, 1.0, 2.0, 4.0])
    fp = np.array([1.0, -1.0, 3.0, 0.5])
    check_grads(lambda x, f: jnp.interp(x, xp, f), (np.array([0.3, 1.6, 3.1]), fp), 1,
                modes=("fwd", "rev"))
    x = np.array([0.5, 2.5, 3.5])
    out = jax.vmap(lambda f: jnp.interp(x, xp, f))(np.stack([fp, 2 * fp]))
    close(out, np.stack([np.interp(x, xp, fp), np.interp(x, xp, 2 * fp)]))


# ---------------------------------------------------------------------------
# convolve, correlate
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.integers(1, 7), st.integers(1, 7), st.sampled_from(["full", "same", "valid"]),
       st.sampled_from([np.float32, np.int32]), st.integers(0, 99))
def test_convolve_correlate_match_numpy(n, m, mode, dt, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, size=n).astype(dt)
    v = rng.integers(-3, 4, size=m).astype(dt)
    close(jnp.convolve(a, v, mode), np.convolve(a, v, mode), np.float32, tol=1e-4)
    close(jnp.correlate(a, v, mode), np.correlate(a, v, mode), np.float32, tol=1e-4)


def test_convolve_errors_and_grads(x64):
    with pytest.raises(ValueError, match="only support 1-dimensional"):
        jnp.convolve(np.ones((2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="cannot be empty"):
        jnp.correlate(np.ones(0), np.ones(2))
    with pytest.raises(ValueError, match="mode must be one of"):
        jnp.convolve(np.ones(3), np.ones(2), mode="middle")
    rng = np.random.default_rng(0)
    check_grads(lambda a, v: jnp.convolve(a, v, "same"), (rng.normal(size=5),
                                                         rng.normal(size=3)), 1,
                modes=("fwd", "rev"))


# ---------------------------------------------------------------------------
# clip, nan_to_num
# ---------------------------------------------------------------------------

def test_clip_forms():
    x = np.arange(-3, 4, dtype=np.int32)
    close(jnp.clip(x, -1, 2), np.clip(x, -1, 2), np.int32)
    close(jnp.clip(x, max=1), np.clip(x, None, 1), np.int32)
    close(jnp.clip(x, a_min=0), np.clip(x, 0, None), np.int32)
    close(jnp.clip(a=x, a_min=0, a_max=1), np.clip(x, 0, 1), np.int32)
    close(jnp.clip(x, 0.5, 1.5), np.clip(x, 0.5, 1.5), np.float32)
    close(jnp.clip(x), x, np.int32)
    close(jnp.asarray(x).clip(0, 1), np.clip(x, 0, 1))
    with pytest.raises(ValueError, match="Only one of"):
        jnp.clip(x, 0, a_min=1)


def test_nan_to_num():
    for dt in (np.float32, np.float16):
        x = np.array([np.nan, np.inf, -np.inf, 1.5], dt)
        close(jnp.nan_to_num(x), np.nan_to_num(x), dt)
        close(jnp.nan_to_num(x, nan=1, posinf=2, neginf=-2),
              np.nan_to_num(x, nan=1, posinf=2, neginf=-2), dt)
    close(jnp.nan_to_num(np.arange(3)), np.arange(3), np.int32)


# ---------------------------------------------------------------------------
# isclose, allclose, array_equal, array_equiv
# ---------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, 1.0, 1.000001, 1.1, np.inf, -np.inf, np.nan, 1e-9, -1e-9]


@SETTINGS
@given(st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=6), st.data(),
       st.booleans())
def test_isclose_allclose_match_numpy(xs, data, equal_nan):
    ys = data.draw(st.lists(st.sampled_from(SPECIAL), min_size=len(xs), max_size=len(xs)))
    a, b = np.array(xs, np.float32), np.array(ys, np.float32)
    out = jnp.isclose(a, b, equal_nan=equal_nan)
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, np.isclose(a, b, equal_nan=equal_nan))
    assert bool(jnp.allclose(a, b, equal_nan=equal_nan)) == np.allclose(a, b,
                                                                        equal_nan=equal_nan)
    np.testing.assert_array_equal(jnp.isclose(a, b, rtol=0.2, atol=0.0),
                                  np.isclose(a, b, rtol=0.2, atol=0.0))


def test_isclose_integers_are_exact_as_jax():
    np.testing.assert_array_equal(jnp.isclose(np.array([1, 2]), np.array([1, 3]), atol=5),
                                  [True, False])


def test_array_equal_and_equiv():
    a = np.array([1.0, np.nan], np.float32)
    assert not bool(jnp.array_equal(a, a))
    assert bool(jnp.array_equal(a, a, equal_nan=True))
    assert bool(jnp.array_equal([1, 2], np.array([1, 2])))
    assert not bool(jnp.array_equal(np.ones(2), np.ones(3)))
    assert bool(jnp.array_equiv([1, 2], [[1, 2], [1, 2]]))
    assert not bool(jnp.array_equiv([1, 2], [[1, 2], [1, 3]]))
    assert not bool(jnp.array_equiv(np.ones(2), np.ones(3)))
    assert jax.jit(jnp.array_equal)(np.ones(2), np.ones(2)).dtype == np.bool_


def test_convolve_without_lax_conv(monkeypatch):
    """The gather + dot_general fallback used when lax has no conv_general_dilated."""
    from tinyjax import lax
    monkeypatch.delattr(lax, "conv_general_dilated", raising=False)
    rng = np.random.default_rng(3)
    a, v = rng.normal(size=6).astype(np.float32), rng.normal(size=3).astype(np.float32)
    for mode in ("full", "same", "valid"):
        close(jnp.convolve(a, v, mode), np.convolve(a, v, mode), tol=1e-4)
        close(jnp.correlate(v, a, mode), np.correlate(v, a, mode), tol=1e-4)
