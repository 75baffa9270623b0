"""Spectral analysis: ``detrend``, the short-time Fourier transform and its inverse
(``stft``, ``istft``) and Welch's estimates of (cross) power spectral densities
(``welch``, ``csd``), as ``jax.scipy.signal`` has them (scipy.signal's definitions with
JAX's defaults: a named window's segment length defaults to the whole signal).

Everything static -- segment lengths, windows by name (``scipy.signal.get_window``,
computed on the host), breakpoints -- is fixed at trace time; the data may be traced.
"""
from __future__ import annotations

import operator
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax import numpy as jnp
from tinyjax.lax._helpers import canonicalize_axis
from tinyjax.numpy._util import check_arraylike, promote_dtypes_inexact

__all__ = ["detrend", "stft", "istft", "csd", "welch"]


def _static_int(name: str, value: Any) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be a static integer, got {value!r}") from None


def _complex_dtype(dtype: Any) -> np.dtype:
    """The complex type of a float type's precision (complex64 below float64)."""
    dtype = np.dtype(dtype)
    if dtypes.is_complex(dtype):
        return dtype
    return np.dtype(np.complex128 if dtype == np.float64 else np.complex64)


def detrend(data: Any, axis: int = -1, type: str = "linear",
            bp: int | Sequence[int] | np.ndarray = 0, overwrite_data: None = None) -> Any:
    """``data`` less its least-squares linear trend along ``axis`` (piecewise between
    the breakpoints ``bp``), or less its mean (``type="constant"``)."""
    if overwrite_data is not None:
        raise NotImplementedError("detrend: the overwrite_data argument is not implemented.")
    if type not in ("constant", "linear"):
        raise ValueError("Trend type must be 'linear' or 'constant'.")
    check_arraylike("detrend", data)
    (x,) = promote_dtypes_inexact(jnp.asarray(data))
    if type == "constant":
        return x - x.mean(axis, keepdims=True)
    n = x.shape[axis]
    cuts = np.unique(np.r_[0, bp, n])
    if cuts[0] < 0 or cuts[-1] > n:
        raise ValueError("Breakpoints must be non-negative and less than length of data "
                         "along given axis.")
    moved = jnp.moveaxis(x, axis, 0)
    flat = moved.reshape(n, -1)
    pieces = []
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        m = int(hi - lo)
        ramp = jnp.arange(1, m + 1, dtype=flat.dtype) / jnp.asarray(m, flat.dtype)
        design = jnp.stack([jnp.ones(m, flat.dtype), ramp], axis=1)
        coef = jnp.linalg.lstsq(design, flat[lo:hi])[0]
        pieces.append(flat[lo:hi] - jnp.matmul(design, coef, precision=lax.Precision.HIGHEST))
    return jnp.moveaxis(jnp.concatenate(pieces).reshape(moved.shape), 0, axis)


def _window(window: Any, nperseg: int | None, length: int, dtype: Any) -> tuple[Any, int]:
    """The window as an array of ``dtype``, and the segment length: a named window
    (``get_window``'s periodic form) is ``nperseg`` long (the signal's length at most,
    and by default); an array window fixes the length."""
    if isinstance(window, (str, tuple)):
        n = length if nperseg is None else int(nperseg)
        if n > length:
            warnings.warn(f"nperseg={n} is greater than input_length={length}, using "
                          f"nperseg={length}")
            n = length
        return jnp.asarray(_named_window(window, n), dtype=dtype), n
    win = jnp.asarray(window, dtype=dtype)
    n = win.size if nperseg is None else int(nperseg)
    if win.ndim != 1:
        raise ValueError("window must be 1-D")
    if length < win.size:
        raise ValueError("window is longer than input signal")
    if n != win.size:
        raise ValueError("value specified for nperseg is different from length of window")
    return win, n


def _named_window(window: str | tuple, n: int) -> np.ndarray:
    if window == "hann":  # (as JAX: sin^2 rather than scipy's cosine form)
        return np.ones(1) if n == 1 else np.sin(np.linspace(0, np.pi, n, endpoint=False)) ** 2
    import scipy.signal   # (half a second to import: only for a window given by name)
    return scipy.signal.get_window(window, n)


def _odd_extension(x: Any, n: int) -> Any:
    """``x`` extended by ``n`` points at both ends of its last axis, odd about them."""
    if n < 1:
        return x
    if n > x.shape[-1] - 1:
        raise ValueError(f"The extension length n ({n}) is too big. It must not exceed "
                         f"x.shape[axis]-1, which is {x.shape[-1] - 1}.")
    left, right = x[..., :1], x[..., -1:]
    return jnp.concatenate([2 * left - jnp.flip(x[..., 1:n + 1], -1), x,
                            2 * right - jnp.flip(x[..., -(n + 1):-1], -1)], axis=-1)


def _extend(x: Any, boundary: str, n: int) -> Any:
    widths = [(0, 0)] * (x.ndim - 1) + [(n, n)]
    if boundary == "even":
        return jnp.pad(x, widths, "reflect")
    if boundary == "odd":
        return _odd_extension(x, n)
    if boundary == "constant":
        return jnp.pad(x, widths, "edge")
    return jnp.pad(x, widths)  # "zeros"


_BOUNDARIES = ("even", "odd", "constant", "zeros", None)


def _segments(x: Any, nperseg: int, step: int) -> Any:
    """The segments of the last axis: shape (..., number of segments, nperseg)."""
    starts = np.arange(0, x.shape[-1] - nperseg + 1, step)
    return x[..., starts[:, None] + np.arange(nperseg)]


def _detrender(detrend_type: Any) -> Callable[[Any], Any]:
    if isinstance(detrend_type, str):
        return lambda d: detrend(d, type=detrend_type, axis=-1)
    if callable(detrend_type):
        return detrend_type
    if not detrend_type:
        return lambda d: d
    raise ValueError(f"Unsupported detrend type: {detrend_type}")


def _windowed_ffts(x: Any, win: Any, detrend_func: Callable, nperseg: int, noverlap: int,
                   nfft: int, onesided: bool) -> Any:
    segs = detrend_func(_segments(x, nperseg, nperseg - noverlap))
    segs = win * segs
    return jnp.fft.rfft(segs.real, n=nfft) if onesided else jnp.fft.fft(segs, n=nfft)


def _spectral(x: Any, y: Any, fs: Any, window: Any, nperseg: int | None,
              noverlap: int | None, nfft: int | None, detrend_type: Any,
              return_onesided: bool, scaling: str, axis: int, mode: str,
              boundary: str | None = None, padded: bool = False) -> tuple[Any, Any, Any]:
    """(frequencies, segment times, the windowed FFTs: one-sided or two-sided products
    with the conjugate (``mode="psd"``) or the transforms themselves (``"stft"``)),
    the frequency axis where ``axis`` was and the segments last."""
    if mode not in ("psd", "stft"):
        raise ValueError(f"Unknown value for mode {mode}, must be one of: ('psd', 'stft')")
    if boundary not in _BOUNDARIES:
        raise ValueError(f"Unknown boundary option '{boundary}', must be one of: "
                         f"{list(_BOUNDARIES)}")
    if y is None:
        check_arraylike("spectral_helper", x)
        (x,) = promote_dtypes_inexact(jnp.asarray(x))
    else:
        if mode != "psd":
            raise ValueError("two-argument mode is available only when mode=='psd'")
        check_arraylike("spectral_helper", x, y)
        x, y = promote_dtypes_inexact(jnp.asarray(x), jnp.asarray(y))
        if x.ndim != y.ndim:
            raise ValueError(f"two-arguments must have the same rank ({x.ndim} vs {y.ndim}).")
    axis = canonicalize_axis(_static_int("axis", axis), x.ndim)
    outer = tuple(np.delete(x.shape, axis))
    if y is not None:
        try:
            outer = np.broadcast_shapes(outer, tuple(np.delete(y.shape, axis)))
        except ValueError as err:
            raise ValueError("x and y cannot be broadcast together.") from err
    complex_dtype = _complex_dtype(x.dtype)
    real_dtype = np.finfo(complex_dtype).dtype
    if nperseg is not None and _static_int("nperseg", nperseg) < 1:
        raise ValueError("nperseg must be a positive integer")
    win, nperseg = _window(window, nperseg, x.shape[axis], x.dtype)
    noverlap = nperseg // 2 if noverlap is None else _static_int("noverlap", noverlap)
    nfft = nperseg if nfft is None else _static_int("nfft", nfft)
    if x.size == 0 or (y is not None and y.size == 0):
        shape = x.shape if y is None else \
            tuple(np.insert(outer, axis, min(x.shape[axis], y.shape[axis])))
        return (jnp.zeros(shape, real_dtype), jnp.zeros(shape, real_dtype),
                jnp.zeros(shape, complex_dtype))
    x = jnp.moveaxis(x, axis, -1)
    if y is not None:
        y = jnp.moveaxis(y, axis, -1)
        longest = max(x.shape[-1], y.shape[-1])  # the shorter is zero-padded
        x, y = (jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, longest - v.shape[-1])])
                for v in (x, y))
    if nfft < nperseg:
        raise ValueError("nfft must be greater than or equal to nperseg.")
    if noverlap >= nperseg:
        raise ValueError("noverlap must be less than nperseg.")
    step = nperseg - noverlap
    signals = [x] if y is None else [x, y]
    if boundary is not None:
        signals = [_extend(v, boundary, nperseg // 2) for v in signals]
    if padded:  # a whole number of segments
        extra = (-(signals[0].shape[-1] - nperseg) % step) % nperseg
        signals = [jnp.pad(v, [(0, 0)] * (v.ndim - 1) + [(0, extra)]) for v in signals]
    if scaling == "density":
        scale = 1.0 / (fs * (win * win).sum())
    elif scaling == "spectrum":
        scale = 1.0 / win.sum() ** 2
    else:
        raise ValueError(f"Unknown scaling: {scaling}")
    if mode == "stft":
        scale = jnp.sqrt(scale)
    onesided = return_onesided
    if onesided and any(jnp.iscomplexobj(v) for v in signals):
        warnings.warn("Input data is complex, switching to return_onesided=False")
        onesided = False
    freqs = (jnp.fft.rfftfreq if onesided else jnp.fft.fftfreq)(nfft, 1 / fs, dtype=real_dtype)
    detrend_func = _detrender(detrend_type)
    ffts = [_windowed_ffts(v, win, detrend_func, nperseg, noverlap, nfft, onesided)
            for v in signals]
    if y is not None:
        result = jnp.conj(ffts[0]) * ffts[1]
    elif mode == "psd":
        result = jnp.conj(ffts[0]) * ffts[0]
    else:
        result = ffts[0]
    result = result * scale
    if onesided and mode == "psd":  # the negative frequencies' power, folded over
        end = None if nfft % 2 else -1
        result = result.at[..., 1:end].multiply(2)
    length = signals[0].shape[-1]
    times = jnp.asarray(np.arange(nperseg / 2, length - nperseg / 2 + 1, step), real_dtype) / fs
    if boundary is not None:
        times = times - (nperseg / 2) / fs
    result = result.astype(complex_dtype)
    if y is None and mode != "stft":
        result = result.real
    return freqs, times, jnp.moveaxis(result, -1, axis)


def stft(x: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int = 256,
         noverlap: int | None = None, nfft: int | None = None, detrend: Any = False,
         return_onesided: bool = True, boundary: str | None = "zeros", padded: bool = True,
         axis: int = -1) -> tuple[Any, Any, Any]:
    """The short-time Fourier transform ``(f, t, Zxx)`` of ``x`` along ``axis``:
    segments of ``nperseg`` points overlapping by ``noverlap`` (half by default),
    windowed, transformed with ``nfft`` points; ``boundary`` extends the signal at both
    ends, ``padded`` zero-pads it to whole segments. ``Zxx`` has the frequencies where
    ``axis`` was and the segments last."""
    return _spectral(x, None, fs, window, nperseg, noverlap, nfft, detrend,
                     return_onesided, "spectrum", axis, "stft", boundary, padded)


def csd(x: Any, y: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
        noverlap: int | None = None, nfft: int | None = None, detrend: Any = "constant",
        return_onesided: bool = True, scaling: str = "density", axis: int = -1,
        average: str = "mean") -> tuple[Any, Any]:
    """Welch's estimate ``(f, Pxy)`` of the cross power spectral density of ``x`` and
    ``y`` (``y=None``: the power spectral density of ``x``): windowed segments'
    periodograms, averaged (``average="mean"`` or ``"median"``, bias-corrected)."""
    freqs, _, pxy = _spectral(x, y, fs, window, nperseg, noverlap, nfft, detrend,
                              return_onesided, scaling, axis, "psd")
    if y is not None:
        pxy = pxy + 0j
    if pxy.ndim >= 2 and pxy.size > 0:
        if pxy.shape[-1] == 1:
            pxy = pxy.reshape(pxy.shape[:-1])
        elif average == "median":
            bias = jnp.asarray(_median_bias(pxy.shape[-1]), pxy.real.dtype)
            if jnp.iscomplexobj(pxy):
                pxy = jnp.median(pxy.real, axis=-1) + 1j * jnp.median(pxy.imag, axis=-1)
            else:
                pxy = jnp.median(pxy, axis=-1)
            pxy = pxy / bias
        elif average == "mean":
            pxy = pxy.mean(axis=-1)
        else:
            raise ValueError(f'average must be "median" or "mean", got {average}')
    return freqs, pxy


def _median_bias(n: int) -> float:
    """The median's bias relative to the mean of ``n`` periodograms (Allen et al., 2012,
    appendix B)."""
    even = np.arange(2.0, n, 2)
    return 1 + np.sum(1.0 / (even + 1) - 1.0 / even)


def welch(x: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
          noverlap: int | None = None, nfft: int | None = None, detrend: Any = "constant",
          return_onesided: bool = True, scaling: str = "density", axis: int = -1,
          average: str = "mean") -> tuple[Any, Any]:
    """Welch's estimate ``(f, Pxx)`` of the power spectral density of ``x`` (see
    :func:`csd`)."""
    freqs, pxx = csd(x, None, fs=fs, window=window, nperseg=nperseg, noverlap=noverlap,
                     nfft=nfft, detrend=detrend, return_onesided=return_onesided,
                     scaling=scaling, axis=axis, average=average)
    return freqs, pxx.real


def _overlap_add(frames: Any, step: int) -> Any:
    """Frames (..., count, length) summed into one signal, frame k starting at k * step."""
    *batch, count, length = frames.shape
    where = (np.arange(count)[:, None] * step + np.arange(length)).reshape(-1)
    out = jnp.zeros((*batch, step * (count - 1) + length), frames.dtype)
    return out.at[..., where].add(frames.reshape(*batch, count * length))


def istft(Zxx: Any, fs: Any = 1.0, window: Any = "hann", nperseg: int | None = None,
          noverlap: int | None = None, nfft: int | None = None, input_onesided: bool = True,
          boundary: bool = True, time_axis: int = -1, freq_axis: int = -2
          ) -> tuple[Any, Any]:
    """The inverse of :func:`stft`: ``(t, x)`` from the transforms of windowed
    segments, overlapped and added, divided by the window's squared overlap-add;
    ``boundary`` drops the extension ``stft`` made."""
    check_arraylike("istft", Zxx)
    Zxx = jnp.asarray(Zxx)
    if Zxx.ndim < 2:
        raise ValueError("Input stft must be at least 2d!")
    freq_axis = canonicalize_axis(freq_axis, Zxx.ndim)
    time_axis = canonicalize_axis(time_axis, Zxx.ndim)
    if freq_axis == time_axis:
        raise ValueError("Must specify differing time and frequency axes!")
    Zxx = Zxx.astype(_complex_dtype(Zxx.dtype))
    n_default = 2 * (Zxx.shape[freq_axis] - 1) if input_onesided else Zxx.shape[freq_axis]
    nperseg = _static_int("nperseg", nperseg or n_default)
    if nperseg < 1:
        raise ValueError("nperseg must be a positive integer")
    if nfft is None:
        nfft = n_default + (1 if input_onesided and nperseg == n_default + 1 else 0)
    else:
        nfft = _static_int("nfft", nfft)
    if nfft < nperseg:
        raise ValueError(f"FFT length ({nfft}) must be longer than nperseg ({nperseg}).")
    noverlap = _static_int("noverlap", noverlap or nperseg // 2)
    if noverlap >= nperseg:
        raise ValueError("noverlap must be less than nperseg.")
    step = nperseg - noverlap
    outer = tuple(i for i in range(Zxx.ndim) if i not in (time_axis, freq_axis))
    Zxx = jnp.transpose(Zxx, outer + (freq_axis, time_axis))
    inverse = jnp.fft.irfft if input_onesided else jnp.fft.ifft
    frames = inverse(Zxx, axis=-2, n=nfft)[..., :nperseg, :]  # (..., nperseg, count)
    if isinstance(window, (str, tuple)):
        win = jnp.asarray(_named_window(window, nperseg), frames.dtype)
    else:
        win = jnp.asarray(window)
        if win.ndim != 1:
            raise ValueError("window must be 1-D")
        if win.shape[0] != nperseg:
            raise ValueError(f"window must have length of {nperseg}")
    frames = frames * win.sum()  # (undoes the 'spectrum' scaling)
    frames = jnp.swapaxes(frames * win[:, None], -2, -1)
    x = _overlap_add(frames, step)
    count = frames.shape[-2]
    norm = _overlap_add(jnp.broadcast_to(win * win, (count, nperseg)), step)
    if boundary:
        x = x[..., nperseg // 2:-(nperseg // 2)]
        norm = norm[..., nperseg // 2:-(nperseg // 2)]
    x = x / jnp.where(norm > 1e-10, norm, 1.0)
    if x.ndim > 1 and time_axis != Zxx.ndim - 1:
        x = jnp.moveaxis(x, -1, time_axis - 1 if freq_axis < time_axis else time_axis)
    times = jnp.arange(x.shape[0], dtype=np.finfo(x.dtype).dtype) / fs
    return times, x
