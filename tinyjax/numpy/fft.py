"""``tinyjax.numpy.fft``: numpy's FFT functions on :func:`tinyjax.lax.fft`, with JAX's
results: any axes (moved innermost for the transform), sizes ``n``/``s`` (cropping or
zero padding), the ``norm`` modes ``"backward"``, ``"ortho"`` and ``"forward"``, and
transforms over more than three axes done three (or two) at a time."""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax.elementwise import real_dtype
from tinyjax.lax.fft import FftType
from tinyjax.numpy._creation import arange, asarray
from tinyjax.numpy._shape import moveaxis, pad, roll
from tinyjax.numpy._ufuncs import conj
from tinyjax.numpy._util import check_arraylike

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2",
           "irfft2", "rfftn", "irfftn", "hfft", "ihfft", "fftfreq", "rfftfreq", "fftshift",
           "ifftshift"]


def _norm_factor(sizes: Sequence[int], inverse: bool, norm: str | None) -> float | None:
    """The factor numpy's ``norm`` applies on top of the unnormalised forward and the
    1/n-normalised inverse transform (None: nothing to apply)."""
    if norm is None or norm == "backward":
        return None
    n = float(math.prod(sizes))
    if norm == "ortho":
        return math.sqrt(n) if inverse else 1 / math.sqrt(n)
    if norm == "forward":
        return n if inverse else 1 / n
    raise ValueError(f'Invalid norm value {norm}; should be "backward","ortho" or "forward".')


def _transform(x: Any, fft_type: FftType, sizes: Sequence[int]) -> Any:
    """``lax.fft`` over the last ``len(sizes)`` axes, any number of them: more than three
    are done as the innermost two or three, then the rest (complex) by recursion."""
    k = len(sizes)
    if k <= 3:
        return lax.fft(x, fft_type, tuple(sizes))
    inner = 2 if k == 4 else 3
    nd = get_aval(x).ndim
    outer = tuple(range(nd - k, nd - inner))
    moved = tuple(range(nd - k + inner, nd))
    if fft_type in (FftType.FFT, FftType.RFFT):
        x = lax.fft(x, fft_type, tuple(sizes[-inner:]))
        x = moveaxis(_transform(moveaxis(x, outer, moved), FftType.FFT, sizes[:-inner]),
                     moved, outer)
        return x
    x = moveaxis(_transform(moveaxis(x, outer, moved), FftType.IFFT, sizes[:-inner]),
                 moved, outer)
    return lax.fft(x, fft_type, tuple(sizes[-inner:]))


def _fft_core(name: str, fft_type: FftType, a: Any, s: Sequence[int] | None,
              axes: Sequence[int] | None, norm: str | None) -> Any:
    full_name = f"jax.numpy.fft.{name}"
    check_arraylike(full_name, a)
    arr = asarray(a)
    nd = get_aval(arr).ndim
    if s is not None:
        s = tuple(operator.index(n) for n in s)
        if any(n <= 0 for n in s):
            raise ValueError("Shape should be positive.")
    if s is not None and axes is not None and len(s) != len(axes):
        raise ValueError("Shape and axes have different lengths.")
    given_axes = axes
    if axes is None:
        axes = tuple(range(nd)) if s is None else tuple(range(nd - len(s), nd))
    axes = tuple(operator.index(ax) for ax in axes)
    if len(set(a % max(nd, 1) for a in axes)) != len(axes):
        raise ValueError(f"{full_name} does not support repeated axes. Got axes {axes}.")
    inner = tuple(range(nd - len(axes), nd))
    if given_axes is not None:
        arr = moveaxis(arr, axes, inner)
    shape = get_aval(arr).shape
    if s is not None:
        want = list(shape)
        for ax, n in zip(inner, s):
            want[ax] = n
        if fft_type == FftType.IRFFT:
            want[-1] = want[-1] // 2 + 1
        arr = arr[tuple(slice(0, n) for n in want)]
        arr = pad(arr, [(0, w - h) for w, h in zip(want, get_aval(arr).shape)])
        sizes = list(s)
    elif fft_type == FftType.IRFFT:
        sizes = [shape[ax] for ax in inner[:-1]] + \
            ([max(0, 2 * (shape[inner[-1]] - 1))] if inner else [])
    else:
        sizes = [shape[ax] for ax in inner]
    out = _transform(arr, fft_type, sizes) if sizes else arr
    # hfft is an IRFFT and ihfft an RFFT, but they are normalised by their own direction
    factor = _norm_factor(sizes, name.startswith("i"), norm)
    if factor is not None:
        out = out * lax.full((), factor, get_aval(out).dtype)
    if given_axes is not None:
        out = moveaxis(out, inner, axes)
    return out


def _one_axis(name: str, axis: Any) -> None:
    if isinstance(axis, (list, tuple)):
        full = f"jax.numpy.fft.{name}"
        raise ValueError(f"{full} does not support multiple axes. Please use {full}n. Got "
                         f"axis = {axis!r}.")


def _fft_1d(name: str, fft_type: FftType, a: Any, n: int | None, axis: int,
            norm: str | None) -> Any:
    _one_axis(name, axis)
    return _fft_core(name, fft_type, a, None if n is None else [n],
                     None if axis is None else [axis], norm)


def _two_axes(name: str, axes: Sequence[int]) -> None:
    if len(axes) != 2:
        raise ValueError(f"jax.numpy.fft.{name} only supports 2 axes. Got axes = {axes!r}.")


def fft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The 1-D discrete Fourier transform along ``axis``."""
    return _fft_1d("fft", FftType.FFT, a, n, axis, norm)


def ifft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The 1-D inverse discrete Fourier transform along ``axis``."""
    return _fft_1d("ifft", FftType.IFFT, a, n, axis, norm)


def rfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The 1-D transform of real input: the ``n // 2 + 1`` non-negative frequencies."""
    return _fft_1d("rfft", FftType.RFFT, a, n, axis, norm)


def irfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The inverse of :func:`rfft`: ``n`` real values (``2 (m - 1)`` by default)."""
    return _fft_1d("irfft", FftType.IRFFT, a, n, axis, norm)


def hfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The transform of a Hermitian-symmetric signal given by its first half: real."""
    _one_axis("hfft", axis)
    a = asarray(a)
    count = (get_aval(a).shape[axis] - 1) * 2 if n is None else n
    out = _fft_1d("hfft", FftType.IRFFT, conj(a), n, axis, norm)
    return out * lax.full((), count, get_aval(out).dtype)


def ihfft(a: Any, n: int | None = None, axis: int = -1, norm: str | None = None) -> Any:
    """The inverse of :func:`hfft`."""
    _one_axis("ihfft", axis)
    a = asarray(a)
    count = get_aval(a).shape[axis] if n is None else n
    out = conj(_fft_1d("ihfft", FftType.RFFT, a, n, axis, norm))
    return out * lax.full((), 1 / count, get_aval(out).dtype)


def fftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
         norm: str | None = None) -> Any:
    """The n-D discrete Fourier transform over ``axes`` (all by default)."""
    return _fft_core("fftn", FftType.FFT, a, s, axes, norm)


def ifftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """The n-D inverse discrete Fourier transform."""
    return _fft_core("ifftn", FftType.IFFT, a, s, axes, norm)


def rfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
          norm: str | None = None) -> Any:
    """The n-D transform of real input (the last axis halved)."""
    return _fft_core("rfftn", FftType.RFFT, a, s, axes, norm)


def irfftn(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] | None = None,
           norm: str | None = None) -> Any:
    """The inverse of :func:`rfftn`."""
    return _fft_core("irfftn", FftType.IRFFT, a, s, axes, norm)


def fft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
         norm: str | None = None) -> Any:
    """The 2-D discrete Fourier transform."""
    _two_axes("fft2", axes)
    return _fft_core("fft2", FftType.FFT, a, s, axes, norm)


def ifft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """The 2-D inverse discrete Fourier transform."""
    _two_axes("ifft2", axes)
    return _fft_core("ifft2", FftType.IFFT, a, s, axes, norm)


def rfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
          norm: str | None = None) -> Any:
    """The 2-D transform of real input."""
    _two_axes("rfft2", axes)
    return _fft_core("rfft2", FftType.RFFT, a, s, axes, norm)


def irfft2(a: Any, s: Sequence[int] | None = None, axes: Sequence[int] = (-2, -1),
           norm: str | None = None) -> Any:
    """The inverse of :func:`rfft2`."""
    _two_axes("irfft2", axes)
    return _fft_core("irfft2", FftType.IRFFT, a, s, axes, norm)


def _check_freq_args(name: str, n: Any, d: Any) -> None:
    if isinstance(n, (list, tuple)):
        raise ValueError(f"The n argument of jax.numpy.fft.{name} only takes an int. Got "
                         f"n = {list(n)}.")
    if isinstance(d, (list, tuple)):
        raise ValueError(f"The d argument of jax.numpy.fft.{name} only takes a single "
                         f"value. Got d = {list(d)}.")


def fftfreq(n: int, d: Any = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of an ``n``-point FFT with sample spacing ``d``."""
    _check_freq_args("fftfreq", n, d)
    out_dtype = dtypes.canonicalize_dtype(dtype) if dtype is not None else \
        dtypes.default_float_dtype()
    work = real_dtype(out_dtype if dtypes.is_inexact(out_dtype) else
                      dtypes.default_float_dtype())
    i = arange(n, dtype=work)
    k = (i + n // 2) % n - n // 2
    return (k / asarray(d * n, dtype=work)).astype(out_dtype)


def rfftfreq(n: int, d: Any = 1.0, *, dtype: Any = None, device: Any = None) -> Any:
    """The sample frequencies of an ``n``-point real FFT (non-negative ones only)."""
    _check_freq_args("rfftfreq", n, d)
    dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else \
        dtypes.default_float_dtype()
    k = arange(0, n // 2 + 1, dtype=dt)
    return k / asarray(d * n, dtype=dt)


def _shifts(x: Any, axes: Any, sign: int) -> tuple[Any, Any]:
    shape = get_aval(x).shape
    if axes is None:
        axes = tuple(range(len(shape)))
        return [sign * (n // 2) for n in shape], axes
    if isinstance(axes, int):
        return sign * (shape[axes] // 2), axes
    return [sign * (shape[ax] // 2) for ax in axes], axes


def fftshift(x: Any, axes: Any = None) -> Any:
    """Move the zero frequency to the centre of the spectrum."""
    check_arraylike("fftshift", x)
    x = asarray(x)
    shift, axes = _shifts(x, axes, 1)
    return roll(x, shift, axes)


def ifftshift(x: Any, axes: Any = None) -> Any:
    """The inverse of :func:`fftshift`."""
    check_arraylike("ifftshift", x)
    x = asarray(x)
    shift, axes = _shifts(x, axes, -1)
    return roll(x, shift, axes)
