"""Continuous distributions that are a fixed transformation of one uniform draw:
``exponential``, ``laplace``, ``logistic``, ``gumbel``, ``cauchy``, ``pareto``,
``rayleigh``, ``weibull_min``, ``triangular`` (JAX's formulas)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._bits import random_bits
from tinyjax.random._keys import key_data_of
from tinyjax.random._uniform import uniform_draws
from tinyjax.random._util import canonical_shape, const, float_dtype, param, shape_of_params

__all__ = ["cauchy", "exponential", "gumbel", "laplace", "logistic", "pareto", "rayleigh",
           "triangular", "weibull_min"]


@compiled_when_large(("shape", "dtype"))
def exponential(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Exponential(1) samples: ``-log1p(-u)``."""
    data, _ = key_data_of(key, "exponential")
    dtype = float_dtype(dtype, "exponential")
    u = uniform_draws(data, canonical_shape(shape), dtype, 0.0, 1.0)
    return lax.neg(lax.log1p(lax.neg(as_operand(u))))


@compiled_when_large(("shape", "dtype"))
def laplace(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Laplace(0, 1) samples: ``sign(u) * log1p(-|u|)`` for u uniform in (-1, 1)."""
    data, _ = key_data_of(key, "laplace")
    dtype = float_dtype(dtype, "laplace")
    u = as_operand(uniform_draws(data, canonical_shape(shape), dtype,
                            const(dtype, -1.0 + dtypes.finfo(dtype).epsneg), 1.0))
    return lax.mul(lax.sign(u), lax.log1p(lax.neg(lax.abs(u))))


@compiled_when_large(("shape", "dtype"))
def logistic(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard logistic samples: ``log(u) - log1p(-u)`` for ``u`` uniform in
    [tiny, 1)."""
    data, _ = key_data_of(key, "logistic")
    dtype = float_dtype(dtype, "logistic")
    x = as_operand(uniform_draws(data, canonical_shape(shape), dtype,
                                 const(dtype, dtypes.finfo(dtype).tiny), 1.0))
    return lax.sub(lax.log(x), lax.log1p(lax.neg(x)))


@compiled_when_large(("shape", "dtype", "mode"))
def gumbel(key: Any, shape: Sequence[int] = (), dtype: Any = None,
           mode: str | None = None) -> Any:
    """Standard Gumbel samples ``-log(-log(u))``.  ``mode`` trades speed for the
    resolution of the upper tail as JAX's does: "low" (the default) draws one uniform;
    "high" adds a second uniform's bits below the first's; "highest" (float32) builds
    the uniform from 64 random bits with full precision near 0 and 1."""
    data, _ = key_data_of(key, "gumbel")
    dtype = float_dtype(dtype, "gumbel")
    mode = "low" if mode is None else mode
    if mode not in ("highest", "high", "low"):
        raise ValueError(f"Must provide valid mode for gumbel got: {mode}")
    return gumbel_draws(data, canonical_shape(shape), dtype, mode)


def gumbel_draws(data: Any, shape: tuple[int, ...], dtype: np.dtype, mode: str = "low") -> Any:
    """Gumbel draws from raw key data (see :func:`gumbel` for ``mode``)."""
    info = dtypes.finfo(dtype)
    if mode == "highest" and dtype == np.float32:
        return _gumbel_highest(data, shape)
    if mode in ("high", "highest"):
        u = as_operand(uniform_draws(data, (2,) + shape, dtype, 0.0, 1.0))
        high, low = lax.index_in_dim(u, 0, 0, False), lax.index_in_dim(u, 1, 0, False)
        finer = lax.add(lax.add(high, lax.mul(const(dtype, 2.0 ** -info.nmant), low)),
                        const(dtype, info.tiny))
        x = lax.select(lax.ge(high, lax.full(shape, 0.5, dtype)), high, finer)
        return lax.neg(lax.log(lax.neg(lax.log1p(lax.neg(x)))))
    u = as_operand(uniform_draws(data, shape, dtype, const(dtype, info.tiny), 1.0))
    return lax.neg(lax.log(lax.neg(lax.log(u))))


def _count_leading_zeros(x: Any) -> Any:
    """Leading zero bits of each uint32 (32 for 0), by binary search with shifts."""
    n = lax.full(get_aval(x).shape, 0, np.uint32)
    for width in (16, 8, 4, 2, 1):
        top_empty = lax.eq(lax.shift_right_logical(x, const(np.uint32, 32 - width)),
                           const(np.uint32, 0))
        n = lax.select(top_empty, lax.add(n, const(np.uint32, width)), n)
        x = lax.select(top_empty, lax.shift_left(x, const(np.uint32, width)), x)
    return lax.select(lax.eq(x, const(np.uint32, 0)), lax.add(n, const(np.uint32, 1)), n)


def _unit_float_from_64_bits(hi: Any, lo: Any) -> Any:
    """The float32 nearest below the 64-bit fixed-point fraction 0.hi lo, in (0, 1):
    the exponent from the leading zeros, the mantissa from the next 23 bits."""
    info = dtypes.finfo(np.float32)
    hiclz, loclz = _count_leading_zeros(hi), _count_leading_zeros(lo)
    hi_empty = lax.eq(hiclz, const(np.uint32, 32))
    mantissa = lax.bitwise_or(
        lax.shift_left(hi, hiclz),
        lax.select(hi_empty, lax.shift_left(lo, loclz),
                   lax.shift_right_logical(lo, lax.sub(const(np.uint32, 32), hiclz))))
    mantissa = lax.bitwise_and(lax.shift_right_logical(mantissa, const(np.uint32, 8)),
                               const(np.uint32, (1 << info.nmant) - 1))
    zeros = lax.select(hi_empty, lax.add(loclz, const(np.uint32, 32)), hiclz)
    exponent = lax.shift_left(lax.sub(const(np.uint32, -info.minexp), zeros),
                              const(np.uint32, info.nmant))
    exponent = lax.bitwise_and(exponent, const(np.uint32, (1 << 30) - (1 << 22)))
    return lax.bitcast_convert_type(lax.bitwise_or(exponent, mantissa), np.float32)


def _gumbel_highest(data: Any, shape: tuple[int, ...]) -> Any:
    b = random_bits(data, 32, (2,) + shape)
    hi, lo = lax.index_in_dim(b, 0, 0, False), lax.index_in_dim(b, 1, 0, False)
    # 1 - bits in 64-bit fixed point: the complement plus one (carried into the high word)
    nlo = lax.bitwise_not(lo)
    nhi = lax.add(lax.bitwise_not(hi), lax.convert_element_type(
        lax.eq(nlo, const(np.uint32, 0xFFFFFFFF)), np.uint32))
    nlo = lax.add(nlo, const(np.uint32, 1))
    flip = lax.lt(hi, const(np.uint32, 1 << 31))
    x = _unit_float_from_64_bits(lax.select(flip, hi, nhi), lax.select(flip, lo, nlo))
    # log1p for draws in (0, 0.5), log for [0.5, 1)
    return lax.select(flip, lax.neg(lax.log(lax.neg(lax.log1p(lax.neg(x))))),
                      lax.neg(lax.log(lax.neg(lax.log(x)))))


@compiled_when_large(("shape", "dtype"))
def cauchy(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard Cauchy samples: ``tan(pi * (u - 1/2))``."""
    data, _ = key_data_of(key, "cauchy")
    dtype = float_dtype(dtype, "cauchy")
    u = as_operand(uniform_draws(data, canonical_shape(shape), dtype,
                            const(dtype, dtypes.finfo(dtype).eps), 1.0))
    pi = const(dtype, np.pi)
    return lax.tan(lax.mul(pi, lax.sub(u, const(dtype, 0.5))))



@compiled_when_large(("shape", "dtype"), ("b",))
def pareto(key: Any, b: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Pareto samples with shape parameter ``b`` (on [1, inf)): ``exp(e / b)`` for a
    standard exponential draw ``e``."""
    data, _ = key_data_of(key, "pareto")
    dtype = float_dtype(dtype, "pareto")
    shape = shape_of_params("pareto", shape, as_operand(b))
    e = lax.neg(lax.log1p(lax.neg(as_operand(uniform_draws(data, shape, dtype, 0.0, 1.0)))))
    return lax.exp(lax.div(e, param(b, dtype, shape)))


@compiled_when_large(("shape", "dtype"), ("scale",))
def rayleigh(key: Any, scale: Any, shape: Sequence[int] | None = None,
             dtype: Any = None) -> Any:
    """Rayleigh samples ``scale * sqrt(-2 log u)``."""
    data, _ = key_data_of(key, "rayleigh")
    dtype = float_dtype(dtype, "rayleigh")
    shape = shape_of_params("rayleigh", shape, as_operand(scale))
    u = as_operand(uniform_draws(data, shape, dtype, 0.0, 1.0))
    return lax.mul(param(scale, dtype, shape),
                   lax.sqrt(lax.mul(lax.log(u), const(dtype, -2.0))))


@compiled_when_large(("shape", "dtype"), ("scale", "concentration"))
def weibull_min(key: Any, scale: Any, concentration: Any, shape: Sequence[int] = (),
                dtype: Any = None) -> Any:
    """Weibull samples by the inverse CDF: ``scale * (-log1p(-u)) ** (1 / concentration)``."""
    data, _ = key_data_of(key, "weibull_min")
    dtype = float_dtype(dtype, "weibull_min")
    shape = canonical_shape(shape)
    u = as_operand(uniform_draws(data, shape, dtype, 0.0, 1.0))
    scale, concentration = as_operand(scale), as_operand(concentration)
    out_shape = tuple(np.broadcast_shapes(shape, get_aval(scale).shape,
                                          get_aval(concentration).shape))
    e = param(lax.neg(lax.log1p(lax.neg(u))), dtype, out_shape)
    power = lax.div(const(dtype, 1.0), param(concentration, dtype, out_shape))
    return lax.mul(lax.pow(e, power), param(scale, dtype, out_shape))


@compiled_when_large(("shape", "dtype"), ("left", "mode", "right"))
def triangular(key: Any, left: Any, mode: Any, right: Any,
               shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Triangular samples on [left, right] peaking at ``mode``, by the inverse CDF."""
    data, _ = key_data_of(key, "triangular")
    dtype = float_dtype(dtype, "triangular")
    shape = shape_of_params("triangular", shape, *map(as_operand, (left, mode, right)))
    left, mode, right = (param(v, dtype, shape) for v in (left, mode, right))
    width = lax.sub(right, left)
    fc = lax.div(lax.sub(mode, left), width)
    u = as_operand(uniform_draws(data, shape, dtype, 0.0, 1.0))
    below = lax.add(left, lax.sqrt(lax.mul(lax.mul(u, width), lax.sub(mode, left))))
    above = lax.sub(right, lax.sqrt(lax.mul(lax.mul(lax.sub(const(dtype, 1.0), u), width),
                                            lax.sub(right, mode))))
    return lax.select(lax.lt(u, fc), below, above)
