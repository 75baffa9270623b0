"""Convolution and cross-correlation of tinyjax.scipy.signal (N-dimensional, 2-D, by FFT)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import lax
from tinyjax import numpy as jnp
from tinyjax.numpy._util import check_arraylike, promote_dtypes_inexact

__all__ = ["convolve", "correlate", "convolve2d", "correlate2d", "fftconvolve"]

_MODES = ("full", "same", "valid")


def _check_mode(name: str, mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of {list(_MODES)}, got {mode!r}")


def _operands(name: str, in1: Any, in2: Any, ndim: int | None = None) -> tuple[Any, Any]:
    check_arraylike(name, in1, in2)
    in1, in2 = promote_dtypes_inexact(jnp.asarray(in1), jnp.asarray(in2))
    if in1.ndim != in2.ndim:
        raise ValueError(f"{name}: in1 and in2 should have the same dimensionality, got "
                         f"shapes {in1.shape} and {in2.shape}")
    if ndim is not None and in1.ndim != ndim:
        raise ValueError(f"{name}() only supports {ndim}-dimensional inputs, got shapes "
                         f"{in1.shape} and {in2.shape}")
    if in1.size == 0 or in2.size == 0:
        raise ValueError(f"{name}: inputs cannot be empty, got shapes {in1.shape} and "
                         f"{in2.shape}")
    return in1, in2


def _cut(full: Any, mode: str, s1: Sequence[int], s2: Sequence[int],
         axes: Sequence[int] | None = None) -> Any:
    """The part of the full result ``mode`` asks for along ``axes`` (all by default; s1
    and s2 are the inputs' sizes along them): 'same' is centred on in1's shape; 'valid'
    needs one input at least as large as the other along every axis."""
    if mode == "full":
        return full
    axes = range(full.ndim) if axes is None else axes
    if mode == "same":
        size = tuple(s1)
    else:
        if not (all(a >= b for a, b in zip(s1, s2)) or all(a <= b for a, b in zip(s1, s2))):
            raise ValueError("For 'valid' mode, one must be at least as large as the other "
                             f"in every dimension, got shapes {tuple(s1)} and {tuple(s2)}")
        size = tuple(abs(a - b) + 1 for a, b in zip(s1, s2))
    start, stop = [0] * full.ndim, list(full.shape)
    for a, n in zip(axes, size):
        start[a] = (full.shape[a] - n) // 2
        stop[a] = start[a] + n
    return lax.slice(full, tuple(start), tuple(stop))


def _full_convolution(in1: Any, in2: Any, precision: Any) -> Any:
    """The full N-d convolution: a correlation with the flipped kernel, padded by the
    kernel's size less one on each side."""
    kernel = lax.rev(in2, tuple(range(in2.ndim)))
    out = lax.conv_general_dilated(
        in1.reshape((1, 1) + in1.shape), kernel.reshape((1, 1) + kernel.shape),
        (1,) * in1.ndim, [(k - 1, k - 1) for k in in2.shape], precision=precision)
    return out.reshape(out.shape[2:])


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto",
             precision: Any = None) -> Any:
    """The N-dimensional convolution of ``in1`` and ``in2`` (arrays of one rank).

    ``mode``: 'full' (every overlap), 'same' (in1's shape, centred on the full result) or
    'valid' (complete overlaps only); ``method``: 'auto' or 'direct' (a convolution) or
    'fft' (:func:`fftconvolve`)."""
    _check_mode("convolve", mode)
    if method not in ("auto", "direct", "fft"):
        raise ValueError(f"convolve: method must be 'auto', 'direct' or 'fft', got "
                         f"{method!r}")
    if method == "fft":
        return fftconvolve(in1, in2, mode=mode)
    in1, in2 = _operands("convolve", in1, in2)
    if in1.ndim == 0:
        return in1 * in2
    return _cut(_full_convolution(in1, in2, precision), mode, in1.shape, in2.shape)


def _reversed_conjugate(x: Any) -> Any:
    x = lax.rev(x, tuple(range(x.ndim)))
    return jnp.conj(x) if jnp.iscomplexobj(x) else x


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto",
              precision: Any = None) -> Any:
    """The N-dimensional cross-correlation of ``in1`` and ``in2``: ``convolve(in1,
    in2`` reversed and conjugated ``)``, with :func:`convolve`'s modes and methods."""
    _check_mode("correlate", mode)
    in1, in2 = _operands("correlate", in1, in2)
    return convolve(in1, _reversed_conjugate(in2), mode, method, precision)


def _check_boundary(name: str, boundary: str, fillvalue: Any) -> None:
    if boundary != "fill" or fillvalue != 0:
        raise NotImplementedError(f"{name}: only boundary='fill' with fillvalue=0 is "
                                  f"supported (as in JAX), got boundary={boundary!r}, "
                                  f"fillvalue={fillvalue!r}")


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0, precision: Any = None) -> Any:
    """The convolution of two 2-D arrays (:func:`convolve`'s modes; the boundary is
    zero-filled, the only one JAX supports)."""
    _check_mode("convolve2d", mode)
    _check_boundary("convolve2d", boundary, fillvalue)
    in1, in2 = _operands("convolve2d", in1, in2, ndim=2)
    return convolve(in1, in2, mode, "direct", precision)


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0, precision: Any = None) -> Any:
    """The cross-correlation of two 2-D arrays (see :func:`convolve2d`). Its 'same' mode
    is centred as scipy's ``correlate2d`` (which differs from :func:`correlate`'s for
    kernels of even size): the reversed convolution of reversed in1 with conjugated
    in2."""
    _check_mode("correlate2d", mode)
    _check_boundary("correlate2d", boundary, fillvalue)
    in1, in2 = _operands("correlate2d", in1, in2, ndim=2)
    if mode == "same":
        conj2 = jnp.conj(in2) if jnp.iscomplexobj(in2) else in2
        return lax.rev(convolve(lax.rev(in1, (0, 1)), conj2, "same", "direct", precision),
                       (0, 1))
    return correlate(in1, in2, mode, "direct", precision)


def fftconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None) -> Any:
    """The convolution of ``in1`` and ``in2`` through the FFT along ``axes`` (all by
    default; along the others the two shapes must be equal, as in JAX)."""
    _check_mode("fftconvolve", mode)
    in1, in2 = _operands("fftconvolve", in1, in2)
    if in1.ndim == 0:
        return in1 * in2
    ndim = in1.ndim
    axes = tuple(range(ndim)) if axes is None else \
        tuple(sorted({a % ndim for a in np.atleast_1d(axes).tolist()}))
    if any(in1.shape[a] != in2.shape[a] for a in range(ndim) if a not in axes):
        raise ValueError(f"fftconvolve: the axes not convolved must have the same size, "
                         f"got shapes {in1.shape} and {in2.shape} with axes={axes}")
    full = [in1.shape[a] + in2.shape[a] - 1 for a in axes]
    if jnp.iscomplexobj(in1):
        out = jnp.fft.ifftn(jnp.fft.fftn(in1, full, axes) * jnp.fft.fftn(in2, full, axes),
                            full, axes)
    else:
        out = jnp.fft.irfftn(jnp.fft.rfftn(in1, full, axes) * jnp.fft.rfftn(in2, full, axes),
                             full, axes)
    out = out.astype(in1.dtype)
    return _cut(out, mode, [in1.shape[a] for a in axes], [in2.shape[a] for a in axes], axes)
