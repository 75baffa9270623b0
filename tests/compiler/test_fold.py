"""Reductions over broadcast axes are folded at lowering: the reduction of a broadcast
constant (or of elementwise operations of broadcasts) along an axis of extent n combines its
value n times instead of looping (XLA folds them too)."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax

DEVICES = ["cpu", "interp"]


@pytest.mark.parametrize("device", DEVICES)
def test_sum_of_a_trillion_ones_is_folded(device):
    f = jax.jit(lambda: jnp.sum(jnp.ones((10**6, 10**6))), device=device)
    start = time.perf_counter()
    assert float(f()) == np.float32(1e12)
    assert time.perf_counter() - start < 60  # (looping would take hours)
    assert "1000000" not in f.lower().source()  # no loop over the broadcast axes


@pytest.mark.parametrize("device", DEVICES)
def test_folds_through_elementwise_ops_and_keeps_varying_axes(device):
    x = np.arange(12, dtype=np.float32).reshape(3, 4)

    def f(x):
        b = jnp.broadcast_to(x, (1000, 3, 4))
        return jnp.sum(b * 2 + jnp.ones((1000, 3, 4)), axis=(0, 2))
    src = jax.jit(f, device=device).lower(x).source()
    assert "1000" not in src.replace("1000.0", "")
    np.testing.assert_allclose(np.asarray(jax.jit(f, device=device)(x)),
                               np.sum(np.broadcast_to(x, (1000, 3, 4)) * 2 + 1, axis=(0, 2)),
                               rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_integer_sums_wrap_as_the_additions_would(device):
    f = jax.jit(lambda: jnp.sum(jnp.full((3 * 10**9,), 1, jnp.int32)), device=device)
    assert int(f()) == 3 * 10**9 - 2**32


REDUCERS = {
    "sum": (lax.reduce_sum_p, np.sum), "prod": (lax.reduce_prod_p, np.prod),
    "max": (lax.reduce_max_p, np.max), "min": (lax.reduce_min_p, np.min),
    "and": (lax.reduce_and_p, np.bitwise_and.reduce), "or": (lax.reduce_or_p, np.bitwise_or.reduce),
    "xor": (lax.reduce_xor_p, np.bitwise_xor.reduce),
}


@st.composite
def broadcast_reductions(draw):
    op = draw(st.sampled_from(sorted(REDUCERS)))
    dtype = draw(st.sampled_from(
        ["int32", "uint8", "bool"] if op in ("and", "or", "xor") else
        ["float32", "int32"] + (["bool"] if op in ("max", "min") else [])))
    src_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    extra = tuple(draw(st.lists(st.integers(2, 5), min_size=1, max_size=2)))
    shape = extra + src_shape
    axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    return op, np.dtype(dtype), src_shape, shape, axes


@settings(max_examples=20, deadline=None)
@given(broadcast_reductions(), st.sampled_from(DEVICES))
def test_folded_reductions_match_numpy(case, device):
    op, dtype, src_shape, shape, axes = case
    prim, ref = REDUCERS[op]
    rng = np.random.default_rng(len(shape) * 7 + len(axes))
    if dtype == np.bool_:
        x = rng.random(src_shape) < 0.5
    elif dtype.kind == "f":
        x = rng.uniform(0.8, 1.25, src_shape).astype(dtype)
    else:
        x = rng.integers(-3 if dtype.kind == "i" else 0, 4, src_shape).astype(dtype)

    dims = tuple(range(len(shape) - len(src_shape), len(shape)))

    def f(x):  # (an elementwise op under the broadcast: not just a view of the input)
        y = x + x - x if dtype != np.bool_ else ~x
        return prim.bind(lax.broadcast_in_dim(y, shape, dims), axes=axes)
    y = ~x if dtype == np.bool_ else x
    expected = ref(np.broadcast_to(y, shape), axis=axes).astype(dtype)
    out = np.asarray(jax.jit(f, device=device)(x))
    assert out.dtype == dtype
    if dtype.kind == "f":
        np.testing.assert_allclose(out, expected, rtol=1e-5)
    else:
        np.testing.assert_array_equal(out, expected)
