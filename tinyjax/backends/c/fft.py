"""The CPU backend's FFT step: SciPy's pocketfft (its binding
``scipy.fft._pocketfft.pypocketfft``, which writes into the step's output buffer; where a
SciPy lacks that private module, its public ``scipy.fft`` and a copy), on threads where
there are many points.

pocketfft transforms one long line with scalar arithmetic, and many lines a SIMD vector's
width at a time.  So a long 1-D transform of ``n = n1 * n2`` points is split in four steps
(Bailey's): the points as an ``n1 x n2`` matrix, ``n2`` transforms of length ``n1`` down
its columns, a twiddle factor per element, ``n1`` transforms of length ``n2`` along its
rows written transposed into the output.  A real transform of even length ``n`` is the
complex transform of its ``n / 2`` (even, odd) pairs -- the real buffer seen as complex,
no copy -- untangled into the half spectrum by one pass of C (:data:`FFT_SOURCE`); the
inverse tangles the half spectrum first.  Multi-axis transforms, short or odd lengths go
to pocketfft as they are.
"""
from __future__ import annotations

import ctypes
import math
import os
from functools import lru_cache
from typing import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from tinyjax.backends.c.compiler import compile_source

__all__ = ["fft_call", "FFT_SOURCE", "FOUR_STEP_MIN", "split_length"]

# complex lengths from which a 1-D transform runs in four steps; both factors at least
# FACTOR_MIN (a SIMD vector's width of lines, and lines long enough to be worth a pass);
# rows of up to ROW_MAX points (32 KiB of complex64: pocketfft transforms one in the L1 or
# L2 cache; the pass down the columns, which pocketfft gathers from strided rows, is the
# dearer one per point, so the rows are made long and the columns short)
FOUR_STEP_MIN = 1 << 14
FACTOR_MIN = 16
ROW_MAX = 4096
# from this many lines on, pocketfft runs them a SIMD vector's width at a time: faster than
# four steps for each
SIMD_LINES = 4
# points per thread below which pocketfft keeps to one thread
POINTS_PER_THREAD = 1 << 16
# the twiddles' block: w^k = w^(k0) * w^(k - k0) for the k of a block starting at k0
BLOCK = 256

FFT_SOURCE = r"""
#include <math.h>

/* A block of the twiddles w^(k0 + j) = exp(-2 pi i (k0 + j) / n), j < count: the product of
   w^k0 and lo[j] = w^j, in double */
static void tj_fft_twiddles(const double *lr, const double *li, long k0, long n, long count,
                            double *wr, double *wi) {
  double t = -2.0 * M_PI * (double)k0 / (double)n, br = cos(t), bi = sin(t);
  for (long j = 0; j < count; j++) {
    wr[j] = br * lr[j] - bi * li[j];
    wi[j] = br * li[j] + bi * lr[j];
  }
}

/* The real transform of n = 2m points and the complex transform Z of its m (even, odd)
   pairs are tied by X[k] = E[k] + w^k O[k] (w = exp(-2 pi i / n)) with
   E[k] = (Z[k] + conj Z[m-k]) / 2 and O[k] = -i (Z[k] - conj Z[m-k]) / 2; the pair k, m-k
   gives X[k] and X[m-k] = conj(E[k] - w^k O[k]) (untangle), and Z[k] = E[k] + i O[k],
   Z[m-k] = conj E[k] + i conj O[k] with E[k] = (X[k] + conj X[m-k]) / 2,
   O[k] = conj(w^k) (X[k] - conj X[m-k]) / 2 (tangle).  Each block of pairs goes through
   arrays of real and imaginary parts, every loop a forward one the compiler vectorises.

   tj_rfft_untangle: x, `batch` rows `stride` complex apart of m + 1 complex, the first m
   Z on entry, X on return.  tj_irfft_tangle: from the half spectra X in x (rows as there)
   the Z of each into out (rows of m); X[0] and X[m] are taken as real. */
#define TJ_PAIRS(SUF, R)                                                                    \
static void tj_pairs_##SUF(const R *a, const R *c, R *a_out, R *c_out, long count,         \
                           long first, const double *wr64, const double *wi64, int tangle) {\
  R wr[TJ_BLOCK], wi[TJ_BLOCK], ar[TJ_BLOCK], ai[TJ_BLOCK], cr[TJ_BLOCK], ci[TJ_BLOCK];     \
  for (long j = 0; j < count; j++) { wr[j] = (R)wr64[j]; wi[j] = (R)wi64[j]; }           \
  for (long j = 0; j < count; j++) { ar[j] = a[2 * j]; ai[j] = a[2 * j + 1]; }            \
  for (long j = 0; j < count; j++) { cr[j] = c[-2 * j]; ci[j] = -c[1 - 2 * j]; }          \
  if (tangle) {                                                                           \
    for (long j = 0; j < count; j++) {                                                    \
      R er = (ar[j] + cr[j]) * (R)0.5, ei = (ai[j] + ci[j]) * (R)0.5;                     \
      R dr = (ar[j] - cr[j]) * (R)0.5, di = (ai[j] - ci[j]) * (R)0.5;                     \
      R or_ = wr[j] * dr + wi[j] * di, oi = wr[j] * di - wi[j] * dr;                      \
      ar[j] = er - oi; ai[j] = ei + or_; cr[j] = er + oi; ci[j] = or_ - ei;               \
    }                                                                                     \
  } else {                                                                                \
    for (long j = 0; j < count; j++) {                                                    \
      R er = (ar[j] + cr[j]) * (R)0.5, ei = (ai[j] + ci[j]) * (R)0.5;                     \
      R or_ = (ai[j] - ci[j]) * (R)0.5, oi = (cr[j] - ar[j]) * (R)0.5;                    \
      R pr = wr[j] * or_ - wi[j] * oi, pi = wr[j] * oi + wi[j] * or_;                     \
      ar[j] = er + pr; ai[j] = ei + pi; cr[j] = er - pr; ci[j] = pi - ei;                 \
    }                                                                                     \
  }                                                                                       \
  /* the pair m/2, m/2 of an even m is one element: both writes agree */                  \
  for (long j = first; j < count; j++) { c_out[-2 * j] = cr[j]; c_out[1 - 2 * j] = ci[j]; } \
  for (long j = first; j < count; j++) { a_out[2 * j] = ar[j]; a_out[2 * j + 1] = ai[j]; } \
}                                                                                         \
static void tj_pair_rows_##SUF(const R *x, R *out, long m, long batch, long stride,        \
                               long out_stride, int tangle) {                             \
  double lr[TJ_BLOCK], li[TJ_BLOCK], wr[TJ_BLOCK], wi[TJ_BLOCK];                          \
  for (long r = 0; r < TJ_BLOCK; r++) {                                                   \
    double t = -2.0 * M_PI * (double)r / (double)(2 * m); lr[r] = cos(t); li[r] = sin(t); \
  }                                                                                       \
  long half = m / 2;                                                                      \
  for (long b = 0; b < batch; b++) {                                                      \
    const R *s = x + 2 * b * stride;                                                      \
    R *z = out + 2 * b * out_stride;                                                      \
    R r0 = s[0], i0 = s[1], rm = s[2 * m];                                                \
    for (long k0 = 0; k0 <= half; k0 += TJ_BLOCK) {                                       \
      long count = k0 + TJ_BLOCK < half + 1 ? TJ_BLOCK : half + 1 - k0;                   \
      tj_fft_twiddles(lr, li, k0, 2 * m, count, wr, wi);                                  \
      tj_pairs_##SUF(s + 2 * k0, s + 2 * (m - k0), z + 2 * k0, z + 2 * (m - k0), count,    \
                     k0 ? 0 : 1, wr, wi, tangle);                                         \
    }                                                                                     \
    if (tangle) { z[0] = (r0 + rm) * (R)0.5; z[1] = (r0 - rm) * (R)0.5; }                 \
    else { z[0] = r0 + i0; z[1] = 0; z[2 * m] = r0 - i0; z[2 * m + 1] = 0; }              \
  }                                                                                       \
}                                                                                         \
void tj_rfft_untangle_##SUF(R *x, long m, long batch, long stride) {                      \
  tj_pair_rows_##SUF(x, x, m, batch, stride, stride, 0);                                  \
}                                                                                         \
void tj_irfft_tangle_##SUF(const R *x, R *out, long m, long batch, long stride) {         \
  tj_pair_rows_##SUF(x, out, m, batch, stride, m, 1);                                     \
}

TJ_PAIRS(s, float)
TJ_PAIRS(d, double)
""".replace("TJ_BLOCK", str(BLOCK))


@lru_cache(maxsize=None)
def _kernels() -> dict:
    lib = compile_source(FFT_SOURCE)
    long_t, ptr = ctypes.c_long, ctypes.c_void_p
    return {(name, p): lib.function(f"tj_{name}_{p}", args)
            for p in "sd"
            for name, args in (("rfft_untangle", [ptr, long_t, long_t, long_t]),
                               ("irfft_tangle", [ptr, ptr, long_t, long_t, long_t]))}


def split_length(n: int) -> tuple[int, int] | None:
    """``(n1, n2)`` with ``n1 * n2 == n`` for a transform of ``n`` complex points long
    enough to run in four steps (:data:`FOUR_STEP_MIN`): rows of ``n2`` points, the longest
    divisor up to :data:`ROW_MAX` (or ``sqrt(n)`` beyond ``ROW_MAX**2``), ``n1`` of them,
    at least :data:`FACTOR_MIN` of each; None for a shorter ``n`` or one without such
    factors."""
    if n < FOUR_STEP_MIN:
        return None
    for n2 in range(min(max(ROW_MAX, math.isqrt(n)), n // FACTOR_MIN), FACTOR_MIN - 1, -1):
        if n % n2 == 0:
            return n // n2, n2
    return None


@lru_cache(maxsize=4)   # (each as large as the transform)
def _twiddles(n1: int, n2: int, dtype: np.dtype, inverse: bool) -> np.ndarray:
    """``exp(-+2 pi i j k / n)`` at ``[k, j]`` (``k < n1``, ``j < n2``), rounded from double."""
    angle = (np.outer(np.arange(n1), np.arange(n2)) % (n1 * n2)) * (2 * np.pi / (n1 * n2))
    return np.exp((1j if inverse else -1j) * angle).astype(dtype)


def _scipy_fft():
    import scipy.fft  # (at first use: its import takes a quarter second)
    return scipy.fft


class _PublicPocketfft:
    """pypocketfft's ``c2c``/``r2c``/``c2r`` through the public ``scipy.fft`` (the result
    copied into ``out``).  ``norm`` as pypocketfft's: 0 unscaled, 2 scaled by 1 / length."""

    @staticmethod
    def _scaled(forward: bool, norm: int) -> str:
        return "backward" if (norm == 0) == forward else "forward"

    @staticmethod
    def _into(result: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        if out is None:
            return result
        np.copyto(out, result, casting="unsafe")
        return out

    def c2c(self, x, axes, forward, norm, out, threads):
        fn = _scipy_fft().fftn if forward else _scipy_fft().ifftn
        return self._into(fn(x, axes=axes, norm=self._scaled(forward, norm), workers=threads),
                          out)

    def r2c(self, x, axes, forward, norm, out, threads):
        return self._into(_scipy_fft().rfftn(x, axes=axes, norm=self._scaled(forward, norm),
                                             workers=threads), out)

    def c2r(self, x, axes, lastsize, forward, norm, out, threads):
        lengths = [x.shape[a] for a in axes[:-1]] + [lastsize]
        return self._into(_scipy_fft().irfftn(x, s=lengths, axes=axes,
                                              norm=self._scaled(forward, norm),
                                              workers=threads), out)


@lru_cache(maxsize=None)
def pocketfft():
    """SciPy's pocketfft binding, or the public API's stand-in where a SciPy lacks it
    (imported at the first transform)."""
    try:
        from scipy.fft._pocketfft import pypocketfft
        return pypocketfft
    except ImportError:
        return _PublicPocketfft()


def _threads(points: int) -> int:
    return max(1, min(len(os.sched_getaffinity(0)), points // POINTS_PER_THREAD))


def _four_step(src: np.ndarray, dst: np.ndarray, n1: int, n2: int, inverse: bool) -> None:
    """The complex DFT (inverse: scaled by ``1 / n``) of each row of ``src`` (rows of
    ``n = n1 * n2`` contiguous points) into the rows of ``dst`` (the same, rows may be
    further apart), through a scratch matrix per row."""
    batch, item = src.shape[0], src.itemsize
    threads = _threads(src.size)
    norm = 2 if inverse else 0   # pocketfft's 1 / length on each pass: 1 / n in all
    cols = as_strided(src, (batch, n1, n2), (src.strides[0], n2 * item, item))
    scratch = pocketfft().c2c(cols, (1,), not inverse, norm, None, threads)
    np.multiply(scratch, _twiddles(n1, n2, src.dtype, inverse), out=scratch)
    # the row of k1 (k2 along it) is output k1 + n1 * k2
    rows_t = as_strided(dst, (batch, n1, n2), (dst.strides[0], item, n1 * item))
    pocketfft().c2c(scratch, (2,), not inverse, norm, rows_t, threads)


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` (C-contiguous) as a 2-D array of its rows, without copying."""
    return a.reshape(-1, a.shape[-1])


def fft_call(kind: str, lengths: tuple[int, ...], in_shape: tuple[int, ...], in_dtype,
             out_dtype) -> Callable[[list, list], None]:
    """``impl(ins, outs)`` of the FFT step ``kind`` ("FFT", "IFFT", "RFFT", "IRFFT") over
    the last ``len(lengths)`` axes of an operand of ``in_shape``: the transform of
    ``ins[0]`` written into ``outs[0]`` (inverse transforms scaled by
    ``1 / prod(lengths)``, as numpy's)."""
    inverse = kind in ("IFFT", "IRFFT")
    n = lengths[-1]
    axes = tuple(range(len(in_shape) - len(lengths), len(in_shape)))
    real = np.dtype(out_dtype if kind == "IRFFT" else in_dtype)
    prefix = "s" if real in (np.float32, np.complex64) else "d"
    cdtype = np.dtype(np.complex64 if prefix == "s" else np.complex128)
    halved = kind in ("RFFT", "IRFFT")
    split = None
    if len(lengths) == 1 and math.prod(in_shape[:-1]) < SIMD_LINES and \
            not (halved and n % 2) and not (kind == "IRFFT" and in_shape[-1] != n // 2 + 1):
        split = split_length(n // 2 if halved else n)
    m = n // 2

    if kind in ("FFT", "IFFT"):
        def impl(ins, outs):
            x, out = np.ascontiguousarray(ins[0], cdtype), outs[0]
            if split is not None:
                _four_step(_rows(x), _rows(out), *split, inverse)
            else:
                pocketfft().c2c(x, axes, not inverse, 2 if inverse else 0, out,
                                _threads(x.size))
    elif kind == "RFFT":
        untangle = _kernels()["rfft_untangle", prefix] if split is not None else None

        def impl(ins, outs):
            x, out = np.ascontiguousarray(ins[0], real), outs[0]
            if split is None:
                pocketfft().r2c(x, axes, True, 0, out, _threads(x.size))
                return
            spectrum = _rows(out)
            _four_step(_rows(x).view(cdtype), spectrum[:, :m], *split, False)
            untangle(spectrum.ctypes.data, m, spectrum.shape[0], m + 1)
    else:
        tangle = _kernels()["irfft_tangle", prefix] if split is not None else None

        def impl(ins, outs):
            x, out = np.ascontiguousarray(ins[0], cdtype), outs[0]
            if x.shape[-1] != m + 1:   # a longer or shorter half spectrum: cut or padded
                np.copyto(out, _scipy_fft().irfftn(x, s=lengths, axes=axes), casting="unsafe")
            elif split is None:
                pocketfft().c2r(x, axes, n, False, 2, out, _threads(out.size))
            else:
                spectrum, signal = _rows(x), _rows(out).view(cdtype)
                tangle(spectrum.ctypes.data, signal.ctypes.data, m, spectrum.shape[0], m + 1)
                _four_step(signal, signal, *split, True)
    return impl
