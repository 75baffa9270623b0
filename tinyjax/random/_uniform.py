"""Uniform floats: random mantissa bits under the exponent of 1.0 give a float in
[1, 2); subtract 1, scale and shift (JAX's construction, bit for bit)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.array import wrap_eager
from tinyjax.core import get_aval
from tinyjax.lax import random_bits as _rb
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._bits import bits_np
from tinyjax.random._keys import eager_key, key_data_of
from tinyjax.random._util import (bcast, broadcast_to_rank, canonical_shape, check_shape, const,
                                  convert, float_dtype, is_eager_scalar)

__all__ = ["uniform"]


def _bits_to_unit_float_np(b: np.ndarray, dtype: np.dtype, nbits: int, nmant: int,
                           rng_bits: int) -> np.ndarray:
    udt = np.dtype(f"uint{nbits}")
    b = b.astype(udt, copy=False)
    one = np.array(1.0, dtype).view(udt)
    fb = (b >> udt.type(rng_bits - nmant)) | one
    return fb.view(dtype) - dtype.type(1.0)


def uniform_draws(data: Any, shape: tuple[int, ...], dtype: np.dtype, minval: Any,
             maxval: Any) -> Any:
    finfo = dtypes.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    if nbits not in (8, 16, 32, 64):
        raise TypeError(f"uniform only accepts 8-, 16-, 32-, or 64-bit dtypes, got {dtype}.")
    rng_bits = 8 if nmant < 8 else nbits
    k = eager_key(data)
    if (k is not None and dtype.itemsize >= 4 and is_eager_scalar(minval)
            and is_eager_scalar(maxval)):
        floats = _bits_to_unit_float_np(bits_np(k, rng_bits, shape), dtype, nbits, nmant,
                                        rng_bits)
        lo, hi = dtype.type(minval), dtype.type(maxval)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.maximum(lo, floats * (hi - lo) + lo)
        return wrap_eager(np.asarray(out, dtype))
    minval = broadcast_to_rank(convert(minval, dtype), len(shape))
    maxval = broadcast_to_rank(convert(maxval, dtype), len(shape))
    check_shape("uniform", shape, get_aval(minval).shape, get_aval(maxval).shape)
    udt = np.dtype(f"uint{nbits}")
    b = _rb.threefry_random_bits(data, rng_bits, shape)
    if rng_bits != nbits:
        b = lax.convert_element_type(b, udt)
    float_bits = lax.bitwise_or(lax.shift_right_logical(b, const(udt, rng_bits - nmant)),
                                const(udt, np.array(1.0, dtype).view(udt)))
    floats = lax.sub(lax.bitcast_convert_type(float_bits, dtype), const(dtype, 1.0))
    scaled = lax.add(lax.mul(floats, bcast(lax.sub(maxval, minval), shape)),
                     bcast(minval, shape))
    return lax.max(bcast(minval, shape), scaled)


@compiled_when_large(("shape", "dtype"), ("minval", "maxval"))
def uniform(key: Any, shape: Sequence[int] = (), dtype: Any = None, minval: Any = 0.,
            maxval: Any = 1.) -> Any:
    """Uniform floats in ``[minval, maxval)``: random mantissa bits under the exponent
    of 1.0 give a float in [1, 2); subtract 1, scale and shift."""
    data, _ = key_data_of(key, "uniform")
    return uniform_draws(data, canonical_shape(shape), float_dtype(dtype, "uniform"),
                    minval, maxval)

