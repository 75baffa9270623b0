"""tinyjax.scipy.signal: N-dimensional convolution and cross-correlation, detrending, the
short-time Fourier transform and Welch's spectral densities, as ``jax.scipy.signal``
(scipy.signal's semantics; integer inputs give float results)."""
from tinyjax.scipy.signal._convolution import (convolve, convolve2d, correlate, correlate2d,
                                               fftconvolve)
from tinyjax.scipy.signal._spectral import csd, detrend, istft, stft, welch

__all__ = ["convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve", "csd",
           "detrend", "istft", "stft", "welch"]
