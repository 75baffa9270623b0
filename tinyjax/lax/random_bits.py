"""Random bits: the Threefry-2x32 block cipher (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC 2011) as the primitive ``threefry2x32``, and the
key derivations of JAX's default PRNG built on it (seeding, split, fold_in, bits).

``threefry2x32(k0, k1, x0, x1)`` encrypts each counter pair ``(x0, x1)`` under the
key pair ``(k0, k1)`` with 20 rounds; all four operands are uint32 arrays of one
shape and the two results have that shape too.  The primitive is elementwise, so it
batches by broadcasting, and its outputs are integers, so its jvp is zero.

The eager implementation has two equivalent paths: numpy uint32 arithmetic for
large arrays, and for small ones (where numpy's per-call cost dominates) Python
integers holding every element at once, one 32-bit value per 64-bit lane: each
lane's sum stays below 2**33 and each rotation's spill lands in bits that the
32-bit lane mask clears, so one big-integer operation does the work of a whole
numpy ufunc call at a fraction of its overhead.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand, aval_str
from tinyjax.interpreters import ad, batching

__all__ = [
    "threefry2x32_p",
    "threefry2x32",
    "threefry_2x32",
    "threefry_seed",
    "threefry_split",
    "threefry_fold_in",
    "threefry_random_bits",
]

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
PARITY = 0x1BD11BDA
_MASK32 = 0xFFFFFFFF
# Above this many elements numpy's vectorised loop beats big-integer lanes.
_BIGINT_MAX_SIZE = 512


# ---------------------------------------------------------------------------
# numpy implementations (same bits)
# ---------------------------------------------------------------------------


def _threefry_numpy(k0: np.ndarray, k1: np.ndarray, x0: np.ndarray, x1: np.ndarray):
    """Threefry-2x32-20 on broadcastable uint32 arrays, in numpy uint32 arithmetic."""
    shape = np.broadcast_shapes(k0.shape, k1.shape, x0.shape, x1.shape)
    k2 = k0 ^ k1 ^ np.uint32(PARITY)
    ks = (k0, k1, k2)
    x0 = np.broadcast_to(np.add(x0, k0, dtype=np.uint32), shape).copy()
    x1 = np.broadcast_to(np.add(x1, k1, dtype=np.uint32), shape).copy()
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            x0 += x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 ^= x0
        x0 += ks[(i + 1) % 3]
        x1 += ks[(i + 2) % 3]
        x1 += np.uint32(i + 1)
    return x0, x1


def _pack(values: np.ndarray) -> int:
    """uint32 values as one integer with one value per 64-bit lane (lane 0 lowest)."""
    return int.from_bytes(values.astype("<u8").tobytes(), "little")


def _unpack(packed: int, n: int) -> np.ndarray:
    return np.frombuffer(packed.to_bytes(8 * n, "little"), "<u8").astype(np.uint32)


def _threefry_lanes(k0: int, k1: int, x0: int, x1: int, rep: int) -> tuple[int, int]:
    """Threefry-2x32-20 on packed lanes; ``rep`` has a 1 at the bottom of each lane."""
    mask = _MASK32 * rep
    k2 = k0 ^ k1 ^ (PARITY * rep)
    ks = (k0, k1, k2)
    x0 = (x0 + k0) & mask
    x1 = (x1 + k1) & mask
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            x0 = (x0 + x1) & mask
            x1 = (((x1 << r) | (x1 >> (32 - r))) & mask) ^ x0
        x0 = (x0 + ks[(i + 1) % 3]) & mask
        x1 = (x1 + ks[(i + 2) % 3] + (i + 1) * rep) & mask
    return x0, x1


def threefry2x32_np(k0: Any, k1: Any, x0: Any, x1: Any) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32-20 on numpy values (broadcast against each other), as uint32."""
    ops = [v if type(v) is np.ndarray and v.dtype == np.uint32 else np.asarray(v, np.uint32)
           for v in (k0, k1, x0, x1)]
    shapes = {v.shape for v in ops}
    shape = shapes.pop() if len(shapes) == 1 else np.broadcast_shapes(*shapes, *shapes)
    n = math.prod(shape)
    if n == 0:
        return np.zeros(shape, np.uint32), np.zeros(shape, np.uint32)
    if n > _BIGINT_MAX_SIZE:
        y0, y1 = _threefry_numpy(*ops)
        return y0, y1
    rep = _lane_ones(n)
    packed = [int(v.reshape(())) * rep if v.size == 1 else
              _pack(v if v.shape == shape else np.broadcast_to(v, shape)) for v in ops]
    y0, y1 = _threefry_lanes(*packed, rep)
    return _unpack(y0, n).reshape(shape), _unpack(y1, n).reshape(shape)


@functools.lru_cache(maxsize=None)
def _lane_ones(n: int) -> int:
    """An integer with a 1 at the bottom of each of its ``n`` 64-bit lanes."""
    return (1 << (64 * n)) // ((1 << 64) - 1)


# ---------------------------------------------------------------------------
# the primitive
# ---------------------------------------------------------------------------

threefry2x32_p = Primitive("threefry2x32", multiple_results=True)


@threefry2x32_p.def_abstract_eval
def _threefry2x32_abstract_eval(k0, k1, x0, x1):
    avals = (k0, k1, x0, x1)
    if any(a.dtype != np.uint32 for a in avals):
        raise TypeError("threefry2x32 requires uint32 arguments, got "
                        f"{aval_str(avals)}")
    if len({a.shape for a in avals}) != 1:
        raise ValueError("threefry2x32 requires all arguments to have the same shape, "
                         f"got {aval_str(avals)}")
    out = ShapedArray(x0.shape, np.uint32)
    return [out, out]


@threefry2x32_p.def_impl
def _threefry2x32_impl(k0, k1, x0, x1):
    _threefry2x32_abstract_eval(*[ShapedArray(np.shape(v), np.asarray(v).dtype)
                                  for v in (k0, k1, x0, x1)])
    return list(threefry2x32_np(k0, k1, x0, x1))


ad.defjvp_zero(threefry2x32_p)


def _threefry2x32_batch(vals, dims):
    """Elementwise: give every operand the batch axis in front, then apply."""
    size = batching.batch_size(vals, dims)
    vals = [batching.bdim_at_front(v, d, size) for v, d in zip(vals, dims)]
    return threefry2x32_p.bind(*vals), [0, 0]


batching.primitive_batchers[threefry2x32_p] = _threefry2x32_batch


def threefry2x32(k0: Any, k1: Any, x0: Any, x1: Any) -> tuple[Any, Any]:
    """Apply Threefry-2x32-20 elementwise; operands broadcast to a common shape."""
    from tinyjax.lax.elementwise import convert_element_type
    from tinyjax.lax.shape import broadcast_in_dim
    ops = [as_operand(v) for v in (k0, k1, x0, x1)]
    for v in ops:
        if get_aval(v).dtype != np.uint32:
            raise TypeError("threefry2x32 requires uint32 arguments, got "
                            f"{aval_str([get_aval(o) for o in ops])}")
    shape = np.broadcast_shapes(*[get_aval(v).shape for v in ops])
    out = []
    for v in ops:
        vshape = get_aval(v).shape
        if vshape != shape:
            nd = len(shape) - len(vshape)
            v = broadcast_in_dim(v, shape, tuple(range(nd, len(shape))))
        out.append(convert_element_type(v, np.uint32) if get_aval(v).weak_type else v)
    y0, y1 = threefry2x32_p.bind(*out)
    return y0, y1


def threefry_2x32(keypair: Any, count: Any) -> Any:
    """JAX's ``threefry_2x32``: encrypt the uint32 array ``count`` under ``keypair``.

    The flattened count is split into two halves that are encrypted as pairs
    (padding with a zero when its length is odd); the result has count's shape.
    """
    from tinyjax.lax.shape import reshape
    from tinyjax.lax.slicing import concatenate, slice as lax_slice
    k0, k1 = _key_words(keypair)
    count = as_operand(count)
    aval = get_aval(count)
    if aval.dtype != np.uint32:
        raise TypeError(f"threefry_2x32 requires uint32 arguments, got {aval.str_short()}")
    flat = reshape(count, (aval.size,))
    odd = aval.size % 2
    if odd:
        flat = concatenate([flat, as_operand(np.zeros((1,), np.uint32))], 0)
    half = (aval.size + odd) // 2
    y0, y1 = threefry2x32(k0, k1, lax_slice(flat, (0,), (half,)),
                          lax_slice(flat, (half,), (2 * half,)))
    out = concatenate([y0, y1], 0)
    if odd:
        out = lax_slice(out, (0,), (aval.size,))
    return reshape(out, aval.shape)


# ---------------------------------------------------------------------------
# key derivation (JAX's threefry PRNG implementation)
# ---------------------------------------------------------------------------


def _key_words(key: Any) -> tuple[Any, Any]:
    """The two uint32 scalars of a uint32[2] key."""
    from tinyjax.lax.slicing import index_in_dim
    key = as_operand(key)
    if get_aval(key).shape != (2,):
        raise TypeError(f"threefry keys are uint32[2], got {get_aval(key).str_short()}")
    return index_in_dim(key, 0, 0, False), index_in_dim(key, 1, 0, False)


def iota_2x32_shape(shape: Sequence[int]) -> tuple[Any, Any]:
    """The row-major index of every element of ``shape`` as a 64-bit count, in two
    uint32 words ``(hi, lo)``."""
    from tinyjax.lax.shape import broadcasted_iota, full, reshape
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(shape, dtype=np.int64))
    if size > 2 ** 32:
        raise NotImplementedError("random bits array of size exceeding 2 ** 32")
    lo = reshape(broadcasted_iota(np.uint32, (size,), 0), shape)
    hi = full(shape, 0, np.uint32)
    return hi, lo


def threefry_seed(seed: Any) -> Any:
    """uint32[2] key from an integer scalar seed: ``[seed >> 32, seed & 0xFFFFFFFF]``
    (the high word is zero for 32-bit seeds)."""
    from tinyjax import dtypes
    from tinyjax.lax.elementwise import (bitwise_and, convert_element_type,
                                         shift_right_logical)
    from tinyjax.lax.shape import broadcast_in_dim
    from tinyjax.lax.slicing import concatenate
    seed = as_operand(seed)
    aval = get_aval(seed)
    if aval.shape:
        raise TypeError(f"PRNG key seed must be a scalar; got {seed!r}.")
    if not dtypes.is_int(aval.dtype):
        raise TypeError(f"PRNG key seed must be an integer; got {seed!r}")

    def word(v):
        return broadcast_in_dim(convert_element_type(v, np.uint32), (1,), ())
    if aval.dtype.itemsize == 8:
        hi = shift_right_logical(seed, as_operand(np.asarray(32, aval.dtype)))
        lo = bitwise_and(seed, as_operand(np.asarray(_MASK32, aval.dtype)))
    else:
        hi = as_operand(np.zeros((), aval.dtype))
        lo = seed
    return concatenate([word(hi), word(lo)], 0)


def threefry_split(key: Any, shape: Sequence[int]) -> Any:
    """``shape + (2,)`` new keys: the key encrypts the counts of an iota over shape."""
    from tinyjax.lax.shape import broadcast_in_dim
    from tinyjax.lax.slicing import concatenate
    shape = tuple(int(d) for d in shape)
    hi, lo = iota_2x32_shape(shape)
    y0, y1 = threefry2x32(*_key_words(key), hi, lo)
    dims = tuple(range(len(shape)))
    return concatenate([broadcast_in_dim(y, shape + (1,), dims) for y in (y0, y1)],
                       len(shape))


def threefry_fold_in(key: Any, data: Any) -> Any:
    """A new key from ``key`` and the integer ``data`` (taken modulo 2**32)."""
    from tinyjax.lax.elementwise import convert_element_type
    data = as_operand(data)
    if get_aval(data).shape:
        raise TypeError(f"fold_in data must be a scalar; got shape {get_aval(data).shape}")
    return threefry_2x32(key, threefry_seed(convert_element_type(data, np.uint32)))


def threefry_random_bits(key: Any, bit_width: int, shape: Sequence[int]) -> Any:
    """Random unsigned integers of ``bit_width`` bits: the key encrypts an iota of
    counts over ``shape``; 32-bit draws xor the two words, 64-bit ones join them."""
    from tinyjax.lax.elementwise import (bitwise_or, bitwise_xor, convert_element_type,
                                         shift_left)
    dtype = np.dtype(f"uint{bit_width}")
    hi, lo = iota_2x32_shape(shape)
    y0, y1 = threefry2x32(*_key_words(key), hi, lo)
    if bit_width == 64:
        y0 = convert_element_type(y0, dtype)
        y1 = convert_element_type(y1, dtype)
        return bitwise_or(shift_left(y0, as_operand(np.asarray(32, dtype))), y1)
    bits = bitwise_xor(y0, y1)
    return bits if bit_width == 32 else convert_element_type(bits, dtype)
