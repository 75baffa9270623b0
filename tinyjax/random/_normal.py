"""Normal draws and what is built directly on them: ``normal`` (``sqrt(2) *
erf_inv(u)``, float32 bit for bit with XLA's fused erf_inv polynomial), ``truncated_normal``,
``lognormal``, ``maxwell``, ``double_sided_maxwell``, ``wald``."""
from __future__ import annotations

import math
import sys
from array import array
from typing import Any, Sequence

import numpy as np

from tinyjax import lax
from tinyjax.array import wrap_eager
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax import random_bits as _rb
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._bits import _iota_lanes, bits_np, split_n
from tinyjax.random._discrete import rademacher_draws
from tinyjax.random._keys import eager_key, key_data_of
from tinyjax.random._uniform import uniform_draws
from tinyjax.random._util import (bcast, broadcast_to_rank, canonical_shape, const, convert,
                                  float_dtype, param, shape_of_params)

__all__ = ["double_sided_maxwell", "lognormal", "maxwell", "normal", "truncated_normal", "wald"]


# XLA's single-precision erf_inv (M. Giles, "Approximating the erfinv function").
_ERFINV_SMALL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)


_ERFINV_LARGE = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


_ERFINV_SMALL_F32 = tuple(float(np.float32(c)) for c in _ERFINV_SMALL)


_F32 = np.dtype(np.float32)


def _erf_inv_f32_np(x: np.ndarray) -> np.ndarray:
    """XLA's float32 erf_inv on numpy values.  Its Horner steps are fused
    multiply-adds (one rounding each): for float32 operands the float64 product is
    exact, so float64 arithmetic rounded to float32 after each step reproduces them."""
    f32 = np.float32
    edges = np.abs(x) == f32(1)
    if edges.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(edges, x * np.finfo(f32).max,
                            _erf_inv_f32_np(np.where(edges, f32(0), x)))
    w = -np.log1p(-x * x)
    ws = (w - f32(2.5)).ravel().tolist() if x.size <= 64 else None
    if ws is not None and (not ws or max(ws) < 2.5):
        # few elements: Python floats, rounded to float32 by array('f') each step
        coefs = _ERFINV_SMALL_F32
        p = [coefs[0]] * len(ws)
        for c in coefs[1:]:
            p = array("f", [pi * wi + c for pi, wi in zip(p, ws)]).tolist()
        return np.array(p, f32).reshape(x.shape) * x
    lt = w < f32(5.0)
    with np.errstate(invalid="ignore"):
        w = np.where(lt, w - f32(2.5), np.sqrt(w) - f32(3.0)).astype(np.float64)
    p = np.where(lt, f32(_ERFINV_SMALL[0]), f32(_ERFINV_LARGE[0]))
    for cs, cl in zip(_ERFINV_SMALL[1:], _ERFINV_LARGE[1:]):
        c = np.where(lt, f32(cs), f32(cl)).astype(np.float64)
        p = (p * w + c).astype(f32)
    return p * x


def _fma_f32(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once, in float32 lax operations (Dekker's exact product
    and Knuth's exact sum, then one final rounding)."""
    mul, add, sub = lax.mul, lax.add, lax.sub
    p = mul(a, b)
    split = const(_F32, 4097.0)

    def halves(v):
        t = mul(split, v)
        hi = sub(t, sub(t, v))
        return hi, sub(v, hi)
    ah, al = halves(a)
    bh, bl = halves(b)
    e = add(add(add(sub(mul(ah, bh), p), mul(ah, bl)), mul(al, bh)), mul(al, bl))
    s = add(p, c)
    bb = sub(s, p)
    t = add(sub(p, sub(s, bb)), sub(c, bb))
    return add(s, add(t, e))


def _erf_inv_f32(x: Any) -> Any:
    """XLA's float32 erf_inv in lax operations (same bits as :func:`_erf_inv_f32_np`)."""
    shape = get_aval(x).shape
    w = lax.neg(lax.log1p(lax.neg(lax.mul(x, x))))
    lt = lax.lt(w, const(_F32, 5.0))
    w = lax.select(lt, lax.sub(w, const(_F32, 2.5)),
                   lax.sub(lax.sqrt(w), const(_F32, 3.0)))

    def coef(i):
        return lax.select(lt, lax.full(shape, _ERFINV_SMALL[i], _F32),
                          lax.full(shape, _ERFINV_LARGE[i], _F32))
    p = coef(0)
    for i in range(1, len(_ERFINV_SMALL)):
        p = _fma_f32(p, w, coef(i))
    out = lax.mul(p, x)
    edge = lax.eq(lax.abs(x), const(_F32, 1.0))
    return lax.select(edge, lax.mul(x, const(_F32, np.finfo(np.float32).max)), out)


def _erf_inv(u: Any, dtype: np.dtype) -> Any:
    """erf_inv as XLA computes it: float32 (and the 16-bit floats, through float32)
    with XLA's polynomial; float64 with tinyjax's accurate erf_inv."""
    if dtype == np.float64:
        return lax.erf_inv(u)
    if dtype == _F32:
        return _erf_inv_f32(u)
    return lax.convert_element_type(_erf_inv_f32(lax.convert_element_type(u, _F32)), dtype)


_LO_F32 = np.nextafter(np.float32(-1.0), np.float32(0.0))


_SPAN_F32 = float(np.float32(1.0) - _LO_F32)


def _open_uniform_f32_small(k: np.ndarray, n: int) -> list[float]:
    """Uniform float32 draws in (-1, 1), exactly as :func:`_uniform` makes them, for a
    few elements: Python arithmetic with float32 rounding by ``array('f')`` (numpy's
    per-call overhead dominates at this size)."""
    rep = _rb._lane_ones(n)
    k0, k1 = k.tolist()
    y0, y1 = _rb._threefry_lanes(k0 * rep, k1 * rep, 0, _iota_lanes(n), rep)
    words = array("Q", (y0 ^ y1).to_bytes(8 * n, "little")).tolist()
    mantissas = array("I", [(w >> 9) | 0x3F800000 for w in words]).tobytes()
    ones_to_twos = array("f", mantissas).tolist()                      # in [1, 2)
    scaled = array("f", [(v - 1.0) * _SPAN_F32 for v in ones_to_twos]).tolist()
    lo = float(_LO_F32)
    shifted = array("f", [v + lo for v in scaled]).tolist()
    return [v if v > lo else lo for v in shifted]


_SQRT2_F32 = np.float32(np.sqrt(2))


def normal_draws(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    k = eager_key(data)
    if k is not None and dtype == _F32:
        n = math.prod(shape)
        if 0 < n <= 64 and sys.byteorder == "little":
            u = np.array(_open_uniform_f32_small(k, n), np.float32).reshape(shape)
        else:
            b = bits_np(k, 32, shape)
            floats = ((b >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) \
                - np.float32(1)
            u = np.maximum(_LO_F32, floats * (np.float32(1) - _LO_F32) + _LO_F32)
        return wrap_eager(_SQRT2_F32 * _erf_inv_f32_np(u))
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = uniform_draws(data, shape, dtype, const(dtype, lo), const(dtype, 1.0))
    return lax.mul(const(dtype, np.sqrt(2)), _erf_inv(u, dtype))


@compiled_when_large(("shape", "dtype"))
def normal(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard normal samples: ``sqrt(2) * erf_inv(u)`` for ``u`` uniform in (-1, 1)."""
    data, _ = key_data_of(key, "normal")
    return normal_draws(data, canonical_shape(shape), float_dtype(dtype, "normal"))


@compiled_when_large(("shape", "dtype"), ("lower", "upper"))
def truncated_normal(key: Any, lower: Any, upper: Any, shape: Sequence[int] | None = None,
                     dtype: Any = None) -> Any:
    """Standard normal samples truncated to ``(lower, upper)`` (inverse-CDF method)."""
    data, _ = key_data_of(key, "truncated_normal")
    dtype = float_dtype(dtype, "truncated_normal")
    lower, upper = convert(lower, dtype), convert(upper, dtype)
    shape = shape_of_params("truncated_normal", shape, lower, upper)
    sqrt2 = const(dtype, np.sqrt(2))
    a = _erf(lax.div(lower, sqrt2))
    b = _erf(lax.div(upper, sqrt2))
    u = uniform_draws(data, shape, dtype, a, b)
    out = lax.mul(sqrt2, _erf_inv(u, dtype))
    lo = lax.nextafter(lax.stop_gradient(lower), lax.full(get_aval(lower).shape, np.inf, dtype))
    hi = lax.nextafter(lax.stop_gradient(upper), lax.full(get_aval(upper).shape, -np.inf, dtype))
    return lax.clamp(bcast(broadcast_to_rank(lo, len(shape)), shape), out,
                     bcast(broadcast_to_rank(hi, len(shape)), shape))


def _erf(x: Any) -> Any:
    # lax.erf's eager implementation mishandles 0-d arrays: apply it to a 1-vector
    shape = get_aval(x).shape
    if shape:
        return lax.erf(x)
    return lax.reshape(lax.erf(lax.reshape(x, (1,))), ())



@compiled_when_large(("shape", "dtype"), ("sigma",))
def lognormal(key: Any, sigma: Any = np.float32(1), shape: Sequence[int] | None = None,
              dtype: Any = None) -> Any:
    """Log-normal samples ``exp(sigma * n)`` for a standard normal draw ``n``."""
    data, _ = key_data_of(key, "lognormal")
    dtype = float_dtype(dtype, "lognormal")
    shape = shape_of_params("lognormal", shape, as_operand(sigma))
    return lax.exp(lax.mul(as_operand(normal_draws(data, shape, dtype)),
                           param(sigma, dtype, shape)))


def _maxwell_draws(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    z = as_operand(normal_draws(data, shape + (3,), dtype))
    return lax.sqrt(lax.reduce_sum(lax.mul(z, z), (len(shape),)))


@compiled_when_large(("shape", "dtype"))
def maxwell(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Maxwell samples: the length of a standard normal vector in three dimensions."""
    data, _ = key_data_of(key, "maxwell")
    return _maxwell_draws(data, canonical_shape(shape), float_dtype(dtype, "maxwell"))


@compiled_when_large(("shape", "dtype"), ("loc", "scale"))
def double_sided_maxwell(key: Any, loc: Any, scale: Any, shape: Sequence[int] = (),
                         dtype: Any = None) -> Any:
    """Double-sided Maxwell samples ``loc + scale * s * m`` (``m`` Maxwell, ``s`` a random
    sign).  As in JAX, the parameters' broadcast shape is appended to ``shape``."""
    data, _ = key_data_of(key, "double_sided_maxwell")
    dtype = float_dtype(dtype, "double_sided_maxwell")
    loc, scale = as_operand(loc), as_operand(scale)
    param_shape = tuple(np.broadcast_shapes(get_aval(loc).shape, get_aval(scale).shape))
    shape = canonical_shape(shape) or param_shape
    shape = shape + param_shape
    k_maxwell, k_sign = split_n(data, 2)
    magnitude = _maxwell_draws(k_maxwell, shape, dtype)
    sign = rademacher_draws(k_sign, shape, dtype)
    return lax.add(lax.mul(lax.mul(sign, magnitude), param(scale, dtype, shape)),
                   param(loc, dtype, shape))


@compiled_when_large(("shape", "dtype"), ("mean",))
def wald(key: Any, mean: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Wald (inverse Gaussian, unit shape) samples by Michael, Schucany and Haas's
    transformation of a normal and a uniform draw."""
    data, _ = key_data_of(key, "wald")
    dtype = float_dtype(dtype, "wald")
    shape = shape_of_params("wald", shape, as_operand(mean))
    k_normal, k_uniform = split_n(data, 2)
    mean = param(mean, dtype, shape)
    v = as_operand(normal_draws(k_normal, shape, dtype))
    z = as_operand(uniform_draws(k_uniform, shape, dtype, 0.0, 1.0))
    y = lax.mul(v, v)
    mean_sq = lax.mul(mean, mean)
    root = lax.sqrt(lax.add(lax.mul(lax.mul(const(dtype, 4.0), mean), y),
                            lax.mul(mean_sq, lax.mul(y, y))))
    x = lax.sub(lax.add(mean, lax.div(lax.mul(mean_sq, y), const(dtype, 2.0))),
                lax.mul(lax.div(mean, const(dtype, 2.0)), root))
    return lax.select(lax.le(z, lax.div(mean, lax.add(mean, x))), x, lax.div(mean_sq, x))
