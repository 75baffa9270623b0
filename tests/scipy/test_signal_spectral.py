"""tinyjax.scipy.signal's spectral analysis against scipy.signal: detrend, stft/istft,
welch and csd over windows, overlaps, boundaries, axes and averaging; jit against eager;
derivatives by finite differences; the errors."""
import warnings

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.scipy import signal
from tinyjax.test_util import check_grads

rng = np.random.default_rng(0)
X = rng.standard_normal(120).astype(np.float32)
Y = rng.standard_normal(120).astype(np.float32)


def assert_all_close(ours, theirs, tol=2e-4):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        a = np.asarray(a)
        assert a.shape == np.shape(b)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kwargs", [{}, {"type": "constant"}, {"bp": [30, 70]},
                                    {"bp": 50, "axis": 0}])
def test_detrend(kwargs):
    data = rng.standard_normal((120, 3)) if kwargs.get("axis") == 0 else X
    assert_all_close([signal.detrend(data, **kwargs)], [ss.detrend(data, **kwargs)])


@settings(max_examples=20, deadline=None)
@given(nperseg=st.integers(2, 24), overlap=st.floats(0, 0.9),
       window=st.sampled_from(["hann", "hamming", "blackman", ("tukey", 0.3), "boxcar"]),
       boundary=st.sampled_from(["zeros", "even", "odd", "constant", None]),
       padded=st.booleans(), extra_fft=st.integers(0, 5))
def test_stft_matches_scipy(nperseg, overlap, window, boundary, padded, extra_fft):
    noverlap = min(int(overlap * nperseg), nperseg - 1)
    kw = dict(nperseg=nperseg, noverlap=noverlap, window=window, boundary=boundary,
              padded=padded, nfft=nperseg + extra_fft)
    assert_all_close(signal.stft(X, **kw), ss.stft(X, **kw))


@pytest.mark.parametrize("shape, axis", [((3, 80), -1), ((80, 2), 0), ((2, 80, 2), 1)])
def test_stft_istft_round_trip_along_an_axis(shape, axis):
    x = rng.standard_normal(shape).astype(np.float32)
    ours, theirs = signal.stft(x, nperseg=16, axis=axis), ss.stft(x, nperseg=16, axis=axis)
    assert_all_close(ours, theirs)
    z = theirs[2]
    t_axis, f_axis = -1, (axis % x.ndim)
    assert_all_close(signal.istft(z, nperseg=16, time_axis=t_axis, freq_axis=f_axis),
                     ss.istft(z, nperseg=16, time_axis=t_axis, freq_axis=f_axis))
    _, back = signal.istft(ours[2], nperseg=16, time_axis=t_axis, freq_axis=f_axis)
    # (istft puts the time axis where the segments were: last unless the frequencies were)
    np.testing.assert_allclose(np.asarray(back), ss.istft(z, nperseg=16, time_axis=t_axis,
                                                          freq_axis=f_axis)[1], atol=1e-5)
    if axis in (-1, x.ndim - 1):
        np.testing.assert_allclose(np.asarray(back)[..., :x.shape[-1]], x, atol=1e-5)


@pytest.mark.parametrize("kwargs", [
    {"nperseg": 32}, {"nperseg": 32, "scaling": "spectrum"}, {"nperseg": 20, "noverlap": 15},
    {"nperseg": 32, "average": "median"}, {"nperseg": 32, "detrend": "linear"},
    {"nperseg": 32, "detrend": False, "return_onesided": False}, {"nperseg": 33, "nfft": 40},
    {"nperseg": 32, "window": "hamming", "fs": 10.0}])
def test_welch_and_csd_match_scipy(kwargs):
    assert_all_close(signal.welch(X, **kwargs), ss.welch(X, **kwargs))
    assert_all_close(signal.csd(X, Y, **kwargs), ss.csd(X, Y, **kwargs))


def test_welch_defaults_to_one_segment_of_the_whole_signal_as_jax():
    f, p = signal.welch(X)  # (scipy's default: 256 points, at most the signal)
    assert f.shape == (61,) and p.shape == (61,)
    assert_all_close(signal.welch(X), ss.welch(X, nperseg=X.size))


def test_complex_input_is_two_sided():
    z = (X + 1j * Y).astype(np.complex64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_all_close(signal.stft(z, nperseg=16), ss.stft(z, nperseg=16))
        assert_all_close(signal.csd(z, Y, nperseg=16), ss.csd(z, Y, nperseg=16))


def test_jit_and_grad():
    welch = jax.jit(lambda x: signal.welch(x, nperseg=32)[1])
    np.testing.assert_allclose(np.asarray(welch(X)), ss.welch(X, nperseg=32)[1], rtol=2e-4,
                               atol=1e-6)
    x64 = X[:40].astype(np.float64)
    with jax.enable_x64(True):
        check_grads(lambda x: signal.welch(x, nperseg=16)[1], (x64,), order=1,
                    modes=["rev"])
        check_grads(lambda x: jnp.abs(signal.stft(x, nperseg=8)[2]).sum(), (x64,), order=1,
                    modes=["rev"])


def test_errors():
    with pytest.raises(ValueError, match="Trend type must be"):
        signal.detrend(X, type="quadratic")
    with pytest.raises(ValueError, match="Breakpoints must be non-negative"):
        signal.detrend(X, bp=[200])
    with pytest.raises(ValueError, match="noverlap must be less than nperseg"):
        signal.stft(X, nperseg=8, noverlap=8)
    with pytest.raises(ValueError, match="nfft must be greater than or equal to nperseg"):
        signal.welch(X, nperseg=16, nfft=8)
    with pytest.raises(ValueError, match="Unknown boundary option 'wrap'"):
        signal.stft(X, boundary="wrap")
    with pytest.raises(ValueError, match="Unknown scaling"):
        signal.welch(X, scaling="power")
    with pytest.raises(ValueError, match='average must be "median" or "mean"'):
        signal.welch(X, nperseg=16, average="max")
    with pytest.raises(ValueError, match="window must be 1-D"):
        signal.welch(X, window=np.ones((2, 2)))
    with pytest.raises(ValueError, match="different from length of window"):
        signal.welch(X, window=np.ones(8), nperseg=16)
    with pytest.raises(ValueError, match="Input stft must be at least 2d"):
        signal.istft(jnp.ones(4))
    with pytest.raises(ValueError, match="differing time and frequency axes"):
        signal.istft(jnp.ones((4, 4)), time_axis=0, freq_axis=0)
