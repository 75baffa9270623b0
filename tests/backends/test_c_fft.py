"""The CPU backend's FFT step (tinyjax/backends/c/fft.py): every transform against numpy's
(in double precision), through pocketfft directly and in four steps -- the real-length
untangling, the twiddles and the transposed rows -- on small lengths with the four-step
limits lowered (hypothesis) and on the lengths the limits choose; jit, eager and the
interpreter device agree."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.backends.c import fft as cfft

from tests.linalg_support import rand

SETTINGS = settings(max_examples=40, deadline=None)
REAL = {np.complex64: np.float32, np.complex128: np.float64}


def _tol(dtype) -> float:
    return 2e-6 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-13


def _run(kind, lengths, x, out_shape, out_dtype):
    out = np.full(out_shape, np.nan, out_dtype)
    cfft.fft_call(kind, lengths, x.shape, x.dtype, out_dtype)([x], [out])
    return out


def _check(kind, x, n):
    """One transform of the last axis of ``x`` (length ``n`` of the signal) against numpy."""
    cdt = x.dtype if x.dtype.kind == "c" else np.result_type(x.dtype, np.complex64)
    wide = x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)
    if kind == "FFT":
        got, want = _run(kind, (n,), x, x.shape, cdt), np.fft.fft(wide)
    elif kind == "IFFT":
        got, want = _run(kind, (n,), x, x.shape, cdt), np.fft.ifft(wide)
    elif kind == "RFFT":
        got = _run(kind, (n,), x, x.shape[:-1] + (n // 2 + 1,), cdt)
        want = np.fft.rfft(wide)
    else:
        got = _run(kind, (n,), x, x.shape[:-1] + (n,), REAL[x.dtype.type])
        want = np.fft.irfft(wide, n)
    scale = max(np.abs(want).max(), 1.0)
    np.testing.assert_allclose(got, want, rtol=0, atol=_tol(x.dtype) * scale * np.log2(n + 1))


@contextlib.contextmanager
def small_four_steps():
    """Four steps from 8 complex points on, with factors from 2 and rows of up to 8."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cfft, "FOUR_STEP_MIN", 8)
        mp.setattr(cfft, "FACTOR_MIN", 2)
        mp.setattr(cfft, "ROW_MAX", 8)
        yield


@given(kind=st.sampled_from(["FFT", "IFFT", "RFFT", "IRFFT"]),
       n=st.integers(1, 200), batch=st.sampled_from([(), (1,), (2,), (3,), (5,), (2, 3)]),
       double=st.booleans(), seed=st.integers(0, 2 ** 16))
@SETTINGS
def test_four_steps_on_small_lengths(kind, n, batch, double, seed):
    rng = np.random.default_rng(seed)
    if kind in ("FFT", "IFFT"):
        x = rand(rng, batch + (n,), np.complex128 if double else np.complex64)
    elif kind == "RFFT":
        x = rand(rng, batch + (n,), np.float64 if double else np.float32)
    else:
        x = rand(rng, batch + (n // 2 + 1,), np.complex128 if double else np.complex64)
    with small_four_steps():
        _check(kind, x, n)


@pytest.mark.parametrize("kind", ["FFT", "IFFT", "RFFT", "IRFFT"])
@pytest.mark.parametrize("n", [2 ** 16, 3 * 2 ** 15, 2 * 16411])   # 16411 is prime
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_long_transforms(kind, n, dtype):
    rng = np.random.default_rng(n)
    if kind == "RFFT":
        x = rand(rng, (n,), REAL[dtype])
    else:
        x = rand(rng, (2, n // 2 + 1) if kind == "IRFFT" else (n,), dtype)
    _check(kind, x, n)


@pytest.mark.parametrize("kind", ["FFT", "IFFT", "RFFT", "IRFFT"])
@pytest.mark.parametrize("four_steps", [False, True])
def test_public_scipy_fft_stands_in_for_the_private_binding(monkeypatch, kind, four_steps):
    """A SciPy without ``scipy.fft._pocketfft`` (the GPU machine's has none) gives the same
    transforms through its public ``scipy.fft``."""
    monkeypatch.setattr(cfft, "pocketfft", cfft._PublicPocketfft)
    rng = np.random.default_rng(3)
    n = 48
    shape = (2, n // 2 + 1) if kind == "IRFFT" else (3, n)
    x = rand(rng, shape, np.float64 if kind == "RFFT" else np.complex128)
    with small_four_steps() if four_steps else contextlib.nullcontext():
        _check(kind, x, n)


def test_lengths_split_into_long_rows():
    assert cfft.split_length(cfft.FOUR_STEP_MIN - 1) is None
    assert cfft.split_length(2 ** 19) == (128, 4096)
    assert cfft.split_length(2 ** 26) == (8192, 8192)
    assert cfft.split_length(16411) is None   # prime: no factors
    for n in [cfft.FOUR_STEP_MIN, 3 * 2 ** 15, 5 ** 7, 2 ** 14 * 7]:
        n1, n2 = cfft.split_length(n)
        assert n1 * n2 == n and min(n1, n2) >= cfft.FACTOR_MIN and n2 <= cfft.ROW_MAX


def test_irfft_takes_the_ends_of_the_half_spectrum_as_real():
    rng = np.random.default_rng(0)
    x = rand(rng, (33,), np.complex128)   # x[0] and x[32] with imaginary parts
    before = x.copy()
    with small_four_steps():
        got = _run("IRFFT", (64,), x, (64,), np.float64)
    np.testing.assert_allclose(got, np.fft.irfft(x, 64), atol=1e-13)
    np.testing.assert_array_equal(x, before)   # the input is left as it was


def test_many_threads_give_the_same_transform(monkeypatch):
    rng = np.random.default_rng(1)
    x = rand(rng, (2 ** 16,), np.float32)
    one = _run("RFFT", (2 ** 16,), x, (2 ** 15 + 1,), np.complex64)
    monkeypatch.setattr(cfft, "POINTS_PER_THREAD", 1)
    monkeypatch.setattr(cfft.os, "sched_getaffinity", lambda pid: set(range(4)))
    np.testing.assert_array_equal(_run("RFFT", (2 ** 16,), x, (2 ** 15 + 1,), np.complex64),
                                  one)


def test_jit_eager_and_interpreter_agree_on_a_long_rfft():
    x = np.random.default_rng(2).standard_normal(2 ** 16).astype(np.float32)
    want = np.fft.rfft(x.astype(np.float64))
    jitted = jax.jit(jnp.fft.rfft)(x)
    eager = jnp.fft.rfft(x)
    interp = jax.jit(jnp.fft.rfft, device="interp")(x)
    for got in (jitted, eager, interp):
        assert got.dtype == np.complex64
        np.testing.assert_allclose(np.asarray(got), want, atol=2e-6 * np.abs(want).max() * 16)
    back = jax.jit(lambda y: jnp.fft.irfft(y, 2 ** 16))(jitted)
    np.testing.assert_allclose(np.asarray(back), x, atol=1e-5)
