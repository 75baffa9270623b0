"""The bit generator: ``split``, ``fold_in`` and ``bits`` on Threefry-2x32 (JAX's
default PRNG), with numpy fast paths that compute the same bits for concrete keys."""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import wrap_eager
from tinyjax.lax import random_bits as _rb
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._keys import eager_key, key_data_of, rewrap
from tinyjax.random._util import canonical_shape

__all__ = ["bits", "fold_in", "split"]


@functools.lru_cache(maxsize=64)
def _iota_lanes(n: int) -> int:
    """The counts 0..n-1 packed one per 64-bit lane (for the eager threefry)."""
    return _rb._pack(np.arange(n, dtype=np.uint32))


def threefry_iota_np(k: np.ndarray, n: int, xor: bool = False):
    """Threefry of counts (0, i) for i < n under the key ``k``: two uint32[n], or their
    xor when ``xor``."""
    if n == 0 or n > _rb._BIGINT_MAX_SIZE:
        y0, y1 = _rb.threefry2x32_np(k[0], k[1], np.zeros(n, np.uint32),
                                     np.arange(n, dtype=np.uint32))
        return y0 ^ y1 if xor else (y0, y1)
    rep = _rb._lane_ones(n)
    k0, k1 = k.tolist()
    y0, y1 = _rb._threefry_lanes(k0 * rep, k1 * rep, 0, _iota_lanes(n), rep)
    if xor:
        return _rb._unpack(y0 ^ y1, n)
    return _rb._unpack(y0, n), _rb._unpack(y1, n)


def split_data(data: Any, shape: tuple[int, ...]) -> Any:
    """Raw key data split into new keys of ``shape``."""
    k = eager_key(data)
    if k is not None:
        y0, y1 = threefry_iota_np(k, math.prod(shape))
        return wrap_eager(np.stack([y0, y1], -1).reshape(shape + (2,)))
    return _rb.threefry_split(data, shape)


def split_n(data: Any, n: int) -> list:
    """``n`` raw subkeys of ``data``, as a list."""
    keys = split_data(data, (n,))
    return [keys[i] for i in range(n)]


def split(key: Any, num: int | Sequence[int] = 2) -> Any:
    """``num`` new keys from ``key`` (shape ``(num, 2)`` raw, ``(num,)`` typed)."""
    data, typed = key_data_of(key, "split")
    return rewrap(split_data(data, canonical_shape(num, "num")), typed)


def fold_in(key: Any, data: Any) -> Any:
    """A new key from ``key`` and an integer (taken modulo 2**32)."""
    kdata, typed = key_data_of(key, "fold_in")
    k = eager_key(kdata)
    if k is not None and isinstance(data, (int, np.integer)):
        y0, y1 = _rb.threefry2x32_np(k[0], k[1], np.uint32(0), np.uint32(int(data) % 2**32))
        return rewrap(wrap_eager(np.stack([y0, y1])), typed)
    return rewrap(_rb.threefry_fold_in(kdata, data), typed)


def bits_np(k: np.ndarray, bit_width: int, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`random_bits` for a concrete key, in numpy."""
    n = math.prod(shape)
    if bit_width == 64:
        y0, y1 = threefry_iota_np(k, n)
        out = (y0.astype(np.uint64) << np.uint64(32)) | y1
    else:
        out = threefry_iota_np(k, n, xor=True)
        if bit_width != 32:
            out = out.astype(f"uint{bit_width}")
    return out.reshape(shape)


def random_bits(data: Any, bit_width: int, shape: tuple[int, ...]) -> Any:
    """Unsigned integers of ``bit_width`` bits and ``shape`` from raw key data."""
    k = eager_key(data)
    if k is not None:
        return wrap_eager(bits_np(k, bit_width, shape))
    return _rb.threefry_random_bits(data, bit_width, shape)


@compiled_when_large(("shape", "dtype"))
def bits(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Uniformly random unsigned integers of ``dtype`` (default uint32)."""
    data, _ = key_data_of(key, "bits")
    dtype = dtypes.canonicalize_dtype(np.uint32 if dtype is None else dtype)
    if not dtypes.is_unsigned(dtype):
        raise ValueError(f"dtype argument to `bits` must be an unsigned int dtype, got {dtype}")
    return random_bits(data, dtype.itemsize * 8, canonical_shape(shape))
