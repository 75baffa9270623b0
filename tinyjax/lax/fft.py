"""``lax.fft``: discrete Fourier transforms over the 1-3 innermost axes (the ``fft``
primitive), with JAX's types, errors and rules.

FFT and IFFT are complex to complex; RFFT takes real input to the non-negative half
of the spectrum (last axis ``n // 2 + 1``), IRFFT back.  The transform is linear, so
its jvp is itself and reverse mode needs only its transpose (for the pairing
``re(u v)`` JAX uses): the DFT matrix is symmetric, so FFT and IFFT transpose to
themselves; RFFT and IRFFT transpose to scaled IRFFT and RFFT with the halved
spectrum's multiplicities.  Eagerly it is SciPy's pocketfft (``scipy.fft``).
"""
from __future__ import annotations

import enum
import math
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.shape import broadcast_in_dim

__all__ = ["FftType", "fft", "fft_p"]


class FftType(enum.IntEnum):
    """Which transform ``lax.fft`` computes."""
    FFT = 0
    IFFT = 1
    RFFT = 2
    IRFFT = 3


_NAMES = {"fft": FftType.FFT, "ifft": FftType.IFFT, "rfft": FftType.RFFT,
          "irfft": FftType.IRFFT}

fft_p = Primitive("fft")


def _fft_abstract_eval(x: ShapedArray, *, fft_type: FftType, fft_lengths: tuple[int, ...]):
    k = len(fft_lengths)
    if k > x.ndim:
        raise ValueError(f"FFT input shape {x.shape} must have at least as many input "
                         f"dimensions as fft_lengths {fft_lengths}.")
    if not 1 <= k <= 3:
        raise ValueError(f"FFT over {k} axes: fft_lengths must have 1 to 3 entries, got "
                         f"{fft_lengths}")
    minor = x.shape[x.ndim - k:]
    if fft_type == FftType.RFFT:
        if x.dtype not in (np.float32, np.float64):
            raise ValueError(f"RFFT input must be float32 or float64, got {x.dtype}")
        if minor != fft_lengths:
            raise ValueError(f"RFFT input shape {x.shape} minor dimensions must be equal to "
                             f"fft_lengths {fft_lengths}")
        shape = x.shape[:x.ndim - k] + fft_lengths[:-1] + (fft_lengths[-1] // 2 + 1,)
        return ShapedArray(shape, ew.complex_dtype(x.dtype))
    if not dtypes.is_complex(x.dtype):
        raise ValueError(f"{fft_type.name} input must be complex64 or complex128, got "
                         f"{x.dtype}")
    if fft_type == FftType.IRFFT:
        if minor[:-1] != fft_lengths[:-1]:
            raise ValueError(f"IRFFT input shape {x.shape} minor dimensions must be equal to "
                             f"all except the last fft_length, got fft_lengths="
                             f"{fft_lengths}")
        return ShapedArray(x.shape[:x.ndim - k] + fft_lengths, ew.real_dtype(x.dtype))
    if minor != fft_lengths:
        raise ValueError(f"FFT input shape {x.shape} minor dimensions must be equal to "
                         f"fft_lengths {fft_lengths}")
    return ShapedArray(x.shape, x.dtype)


def _fft_impl(x: np.ndarray, *, fft_type: FftType, fft_lengths: tuple[int, ...]):
    """SciPy's pocketfft (float32 stays float32), over the last axes at once (for every
    leading index in one call)."""
    out = _fft_abstract_eval(ShapedArray(x.shape, x.dtype), fft_type=fft_type,
                             fft_lengths=fft_lengths)
    axes = tuple(range(x.ndim - len(fft_lengths), x.ndim))
    if 0 in x.shape or 0 in out.shape:
        return np.zeros(out.shape, out.dtype)
    import scipy.fft   # (a fifth of a second to import: at the first transform)
    if fft_type == FftType.FFT:
        y = scipy.fft.fftn(x, axes=axes)
    elif fft_type == FftType.IFFT:
        y = scipy.fft.ifftn(x, axes=axes)
    elif fft_type == FftType.RFFT:
        y = scipy.fft.rfftn(x, axes=axes)
    else:
        y = scipy.fft.irfftn(x, s=fft_lengths, axes=axes)
    return np.asarray(y, out.dtype)


fft_p.def_impl(_fft_impl)
fft_p.def_abstract_eval(_fft_abstract_eval)


def _complex_of(dt: np.dtype) -> np.dtype:
    """JAX's ``to_complex_dtype``: the complex type whose parts hold ``dt``."""
    if dtypes.is_float(dt):
        return ew.complex_dtype(np.float64 if dt == np.float64 else np.float32)
    return dtypes.default_complex_dtype()


def fft(x: Any, fft_type: FftType | str, fft_lengths: Sequence[int]) -> Any:
    """The ``fft_type`` transform over the last ``len(fft_lengths)`` (1 to 3) axes.
    Real input is made complex for FFT/IFFT/IRFFT; RFFT takes real input only."""
    if isinstance(fft_type, str):
        if fft_type.lower() not in _NAMES:
            raise ValueError(f"Unknown FFT type '{fft_type}'")
        typ = _NAMES[fft_type.lower()]
    elif isinstance(fft_type, FftType):
        typ = fft_type
    else:
        raise TypeError(f"Unknown FFT type value '{fft_type}'")
    x = as_operand(x)
    dt = get_aval(x).dtype
    if typ == FftType.RFFT:
        if dtypes.is_complex(dt):
            raise ValueError("only real valued inputs supported for rfft")
        if not dtypes.is_float(dt):
            x = ew.convert_element_type(x, dtypes.default_float_dtype())
    elif not dtypes.is_complex(dt):
        x = ew.convert_element_type(x, _complex_of(dt))
    fft_lengths = tuple(int(n) for n in fft_lengths)
    if not fft_lengths:
        return x
    return fft_p.bind(x, fft_type=typ, fft_lengths=fft_lengths)


# ---------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------


def _half_spectrum_weights(t: Any, n: int, dtype: Any) -> Any:
    """1 for the DC term (and the Nyquist term of an even ``n``), 2 for the others: the
    multiplicity of each kept frequency in the full spectrum; broadcast like ``t``."""
    m = get_aval(t).shape[-1]
    w = np.full(m, 2.0)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return broadcast_in_dim(as_operand(w.astype(dtype)), get_aval(t).shape,
                            (get_aval(t).ndim - 1,))


def _fft_transpose(ct, x, *, fft_type, fft_lengths):
    if type(ct) is ad.Zero:
        return [ad.Zero(x.aval)]
    n = math.prod(fft_lengths)
    if fft_type == FftType.RFFT:
        real = ew.real_dtype(get_aval(ct).dtype)
        scaled = ew.div(ew.conj(ct), ew.convert_element_type(
            _half_spectrum_weights(ct, fft_lengths[-1], real), get_aval(ct).dtype))
        out = fft_p.bind(scaled, fft_type=FftType.IRFFT, fft_lengths=fft_lengths)
        return [ew.mul(out, ew.full_like_aval(get_aval(out), n))]
    if fft_type == FftType.IRFFT:
        spec = fft_p.bind(ct, fft_type=FftType.RFFT, fft_lengths=fft_lengths)
        weights = ew.convert_element_type(
            _half_spectrum_weights(spec, fft_lengths[-1], get_aval(ct).dtype),
            get_aval(spec).dtype)
        out = ew.mul(ew.mul(weights, spec), ew.full_like_aval(get_aval(spec), 1 / n))
        return [ew.conj(out)]
    return [fft_p.bind(ct, fft_type=fft_type, fft_lengths=fft_lengths)]


def _fft_batch(vals, dims, *, fft_type, fft_lengths):
    (x,), (d,) = vals, dims
    return fft_p.bind(batching.moveaxis(x, d, 0), fft_type=fft_type,
                      fft_lengths=fft_lengths), 0


ad.deflinear(fft_p, _fft_transpose)
batching.primitive_batchers[fft_p] = _fft_batch
