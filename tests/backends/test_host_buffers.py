"""Host buffers on a cache line: ``host_empty`` / ``host_copy`` (what arrays converted from
numpy and the outputs of compiled loops are made with) against numpy's own allocation and
casts."""
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends.base import ALIGNED_MIN_BYTES, host_copy, host_empty
from tinyjax.compiler.steps import ARENA_ALIGN

DTYPES = [np.bool_, np.int8, np.uint16, np.int32, np.int64, np.float16, np.float32,
          np.float64, np.complex64]


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=0, max_size=3),
       dtype=st.sampled_from(DTYPES))
def test_host_empty_shape_dtype_alignment(shape, dtype):
    a = host_empty(tuple(shape), dtype)
    assert a.shape == tuple(shape) and a.dtype == np.dtype(dtype)
    assert a.flags.c_contiguous and a.flags.writeable
    if a.nbytes >= ALIGNED_MIN_BYTES:
        assert _address(a) % ARENA_ALIGN == 0
    a[...] = 1  # the whole span is writable memory of its own
    assert (a == 1).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 600), src=st.sampled_from(DTYPES), dst=st.sampled_from(DTYPES),
       strided=st.booleans())
def test_host_copy_equals_numpy_cast(n, src, dst, strided):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(2 * n) * 300).astype(src)[::2 if strided else 1][:n]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (complex to real warns in numpy, on both sides)
        want = np.array(x, dtype=dst)
        got = host_copy(x, dst)
    assert got.dtype == want.dtype and got.shape == want.shape and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, x)
    if got.nbytes >= ALIGNED_MIN_BYTES:
        assert _address(got) % ARENA_ALIGN == 0


def test_converted_arrays_and_loop_outputs_start_on_a_cache_line():
    x = np.arange(4096, dtype=np.float32)[1:]   # a view 4 bytes past numpy's start
    a = jnp.asarray(x)
    assert _address(np.asarray(a)) % ARENA_ALIGN == 0
    np.testing.assert_array_equal(np.asarray(a), x)

    def f(w):
        return lax.fori_loop(0, 3, lambda i, w: w * 0.5 + 1.0, w), w @ w.T

    for out in jax.jit(f)(jnp.ones((64, 64))):
        assert _address(np.asarray(out)) % ARENA_ALIGN == 0
