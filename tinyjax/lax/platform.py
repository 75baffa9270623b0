"""Staging helpers: ``platform_dependent`` (pick an implementation by the platform the
program runs on), ``composite`` (a named operation defined by its decomposition) and
the random-bit operation ``rng_bit_generator``."""
from __future__ import annotations

import enum
import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax.core import Primitive, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.elementwise import (add, bitwise_or, bitwise_xor, convert_element_type,
                                     shift_left, shift_right_logical)
from tinyjax.lax.random_bits import threefry2x32
from tinyjax.lax.shape import full, iota, reshape
from tinyjax.lax.slicing import concatenate, index_in_dim, slice_in_dim

__all__ = ["platform_dependent", "register_platform", "composite", "RandomAlgorithm",
           "rng_bit_generator", "rng_bit_generator_p"]

# JAX's platform names of tinyjax's devices (the interpreter emulates a CPU)
_PLATFORM_OF = {"cpu": "cpu", "interp": "cpu", "cuda": "cuda", "gpu": "cuda"}
_current_backend: list[Callable[[], str]] = [lambda: "cpu"]


def register_platform(current_backend: Callable[[], str]) -> None:
    """Tell lax how to find the default backend's name (registered by tinyjax.dispatch,
    which sits above lax)."""
    _current_backend[0] = current_backend


def platform_dependent(*args: Any, default: Callable | None = None,
                       **per_platform: Callable) -> Any:
    """Call the implementation for the platform of the default device (``cpu``,
    ``cuda``/``gpu``, or ``rocm``/``tpu`` never here), else ``default``."""
    platform = _PLATFORM_OF.get(_current_backend[0](), "cpu")
    aliases = {"cuda": ("cuda", "gpu"), "cpu": ("cpu",)}[platform]
    for name in aliases:
        if name in per_platform:
            return per_platform[name](*args)
    if default is None:
        raise NotImplementedError(f"platform_dependent: no implementation for platform "
                                  f"{platform!r} and no default (given: {sorted(per_platform)})")
    return default(*args)


def composite(decomposition: Callable, name: str, version: int = 0) -> Callable:
    """A named composite operation: calling it runs ``decomposition`` (tinyjax compiles
    the decomposition; the name and version are kept as attributes)."""
    @functools.wraps(decomposition)
    def fn(*args: Any, **kwargs: Any) -> Any:
        return decomposition(*args, **kwargs)
    fn.composite_name, fn.composite_version = name, version
    return fn


class RandomAlgorithm(enum.IntEnum):
    """The bit generator of :func:`rng_bit_generator` (tinyjax runs Threefry for all)."""
    RNG_DEFAULT = 0
    RNG_THREE_FRY = 1
    RNG_PHILOX = 2

    def __str__(self) -> str:  # as JAX prints it in jaxprs
        return self.name


def _threefry_words(k0: Any, k1: Any, start: int, count: int) -> Any:
    """``count`` uint32 words of Threefry-2x32 in counter mode from ``start``."""
    half = (count + 1) // 2
    c = add(iota(np.uint32, half), full((), np.uint32(start), np.uint32))
    hi, lo = threefry2x32(k0, k1, c, add(c, full((), np.uint32(half), np.uint32)))
    return slice_in_dim(concatenate([hi, lo], 0), 0, count) if count else \
        full((0,), 0, np.uint32)


def rng_bit_generator(key: Any, shape: Sequence[int], dtype: Any = np.uint32,
                      algorithm: RandomAlgorithm = RandomAlgorithm.RNG_DEFAULT, *,
                      out_sharding: Any = None) -> tuple[Any, Any]:
    """``(new_key, bits)``: uniformly random unsigned bits of ``shape`` and ``dtype``
    (uint8/16/32/64) from the uint32 ``key`` of shape (4,), and the key to use next.
    The bits come from Threefry-2x32 (not bit-equal to XLA's generators)."""
    return tuple(rng_bit_generator_p.bind(
        as_operand(key), shape=tuple(int(d) for d in shape), dtype=np.dtype(dtype),
        algorithm=RandomAlgorithm(algorithm), out_sharding=out_sharding))


def _rng_bit_generator(key: Any, *, shape: tuple[int, ...], dtype: np.dtype,
                       algorithm: RandomAlgorithm, out_sharding: Any) -> list[Any]:
    if get_aval(key).dtype != np.uint32 or get_aval(key).shape != (4,):
        raise TypeError(f"rng_bit_generator: key must be uint32[4], got "
                        f"{get_aval(key).str_short()}")
    dt = dtype
    if dt not in (np.uint8, np.uint16, np.uint32, np.uint64):
        raise TypeError(f"rng_bit_generator: dtype must be an unsigned integer type, got "
                        f"{dt.name}")
    k0 = bitwise_xor(index_in_dim(key, 0, keepdims=False), index_in_dim(key, 2, keepdims=False))
    k1 = bitwise_xor(index_in_dim(key, 1, keepdims=False), index_in_dim(key, 3, keepdims=False))
    n = math.prod(shape)
    words_per = max(dt.itemsize // 4, 1)
    words = _threefry_words(k0, k1, 4, n * words_per)
    if dt == np.uint64:
        w = reshape(convert_element_type(words, np.uint64), (n, 2))
        bits = bitwise_or(shift_left(index_in_dim(w, 0, 1, keepdims=False),
                                     full((), np.uint64(32), np.uint64)),
                          index_in_dim(w, 1, 1, keepdims=False))
    else:
        bits = words if dt == np.uint32 else convert_element_type(
            shift_right_logical(words, full((), np.uint32(32 - 8 * dt.itemsize), np.uint32)),
            dt)
    new_key = _threefry_words(k0, k1, 0, 4)
    return [new_key, reshape(bits, shape)]


rng_bit_generator_p = Primitive("rng_bit_generator", multiple_results=True)
define_composite(rng_bit_generator_p, _rng_bit_generator)
derive_rules(rng_bit_generator_p)
