"""exp on the C device where its result underflows: compiled programs flush results below
the smallest normal number to zero (as XLA's CPU backend does), and the C renderer's
``tj_exp``/``tj_expf`` clamp such arguments out of libmvec's slow path -- the values must
be those of exp with that flush, on both sides of the threshold, for NaN and infinities,
in every position a kernel puts exp (a masked softmax, a logistic)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp


def _flushed_exp(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        r = np.exp(x.astype(np.float64)).astype(x.dtype)
    return np.where(np.abs(r) < np.finfo(x.dtype).tiny, np.zeros((), x.dtype), r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_across_the_underflow_threshold(x64, dtype):
    lo = np.log(np.finfo(dtype).tiny)
    near = np.nextafter(np.full(9, lo, dtype), np.array(-np.inf, dtype)) + \
        np.arange(-4, 5, dtype=dtype) * np.spacing(dtype(lo))
    x = np.concatenate([near, np.array([-1e9, -np.inf, np.inf, np.nan, 0.0, -5.0, 80.0,
                                        lo - 1, lo - 20, lo + 1], dtype)]).astype(dtype)
    x = np.tile(x, 8)   # long enough for the vector loop
    got = np.asarray(jax.jit(jnp.exp)(x))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, _flushed_exp(x), rtol=4 * np.finfo(dtype).eps, atol=0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-200, 100, width=32), min_size=1, max_size=70))
def test_exp_matches_flushed_reference(values):
    x = np.array(values, np.float32)
    np.testing.assert_allclose(np.asarray(jax.jit(jnp.exp)(x)), _flushed_exp(x), rtol=4e-7,
                               atol=0)


def test_masked_softmax_and_logistic():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((6, 33, 33)).astype(np.float32)
    mask = np.tril(np.ones((33, 33), bool))

    def softmax(s):
        s = jnp.where(mask, s, -1e9)
        e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
        return e / jnp.sum(e, axis=-1, keepdims=True)

    ref = np.where(mask, s, -1e9)
    ref = np.exp(ref - ref.max(-1, keepdims=True))
    ref = ref / ref.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(jax.jit(softmax)(s)), ref, rtol=2e-6, atol=1e-7)
    z = np.array([-200, -90, -88, -1, 0, 1, 88, 90, 200, np.nan], np.float32)
    with np.errstate(over="ignore"):
        want = (1 / (1 + np.exp(-z.astype(np.float64)))).astype(np.float32)
    want = np.where(want < np.finfo(np.float32).tiny, np.float32(0), want)  # (flushed)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.nn.sigmoid)(z)), want, rtol=1e-6)
