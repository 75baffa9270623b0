"""``rng_uniform``: XLA's stateful RngUniform, numbers uniform in ``[a, b)`` of a given shape.

Every draw takes a fresh seed from a process-wide counter: each eager call, and each
compiled program (the compiler gives every ``rng_uniform`` equation it lowers a seed of its
own).  A compiled program holds no generator state, so calling it again repeats its
numbers, where XLA's runtime advances its generator on every run: as JAX's documentation
says, the results of ``rng_uniform`` are implementation-defined; ``tinyjax.random`` is for
reproducible numbers.  The bits come from ``rng_bit_generator`` keyed by the seed.
"""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import batching
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.elementwise import (add, convert_element_type, mul, rem, shift_right_logical,
                                     sub)
from tinyjax.lax.platform import rng_bit_generator
from tinyjax.lax.shape import broadcast_in_dim, full
from tinyjax.lax.slicing import concatenate

__all__ = ["rng_uniform", "rng_uniform_p", "next_seed", "uniform_from_seed"]

_seeds = itertools.count()


def next_seed() -> int:
    """A seed no draw has used yet."""
    return next(_seeds)


def rng_uniform(a: Any, b: Any, shape: Sequence[int]) -> Any:
    """Numbers uniform in ``[a, b)`` (scalars of one float or integer dtype) of ``shape``,
    from a stateful generator: each call draws new ones (see the module's notes).  Use
    ``tinyjax.random`` for most purposes."""
    return rng_uniform_p.bind(as_operand(a), as_operand(b), shape=tuple(int(d) for d in shape))


def uniform_from_seed(a: Any, b: Any, *, shape: tuple[int, ...], seed: int) -> Any:
    """The draw of ``rng_uniform(a, b, shape)`` with the seed ``seed``; ``a`` and ``b`` may
    also have the leading axes of ``shape`` (one interval per leading index).  Written
    without array constants, so a compiled program can inline it."""
    words = [full((1,), np.uint32(w), np.uint32)
             for w in (seed & 0xFFFFFFFF, seed >> 32, 0x9E3779B9, 0)]
    _, bits = rng_bit_generator(concatenate(words, 0), shape, np.uint32)
    dt = get_aval(a).dtype
    lead = tuple(range(get_aval(a).ndim))
    a, b = broadcast_in_dim(a, shape, lead), broadcast_in_dim(b, shape, lead)
    if dtypes.is_float(dt):
        unit = mul(convert_element_type(shift_right_logical(
            bits, full((), np.uint32(8), np.uint32)), np.float32),
            full((), np.float32(2.0 ** -24), np.float32))
        return add(a, mul(convert_element_type(unit, dt), sub(b, a)))
    span = convert_element_type(sub(b, a), np.uint32)
    return add(a, convert_element_type(rem(bits, span), dt))


def _abstract_eval(a: ShapedArray, b: ShapedArray, *, shape: tuple[int, ...]) -> ShapedArray:
    if a.dtype != b.dtype:
        raise ValueError(f"Arguments to rng_uniform must have identical dtypes, got "
                         f"{a.dtype} and {b.dtype}.")
    if a.shape != () or b.shape != ():
        raise ValueError(f"Arguments to rng_uniform must be scalars; got shapes {a.shape} and "
                         f"{b.shape}.")
    if not (dtypes.is_float(a.dtype) or dtypes.is_int(a.dtype)):
        raise TypeError(f"rng_uniform: dtype {a.dtype.name} is not supported (floating or "
                        "integer dtypes only)")
    return ShapedArray(shape, a.dtype, a.weak_type and b.weak_type)


def _impl(a: np.ndarray, b: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    _abstract_eval(ShapedArray(a.shape, a.dtype), ShapedArray(b.shape, b.dtype), shape=shape)
    return np.asarray(uniform_from_seed(a, b, shape=shape, seed=next_seed()))


def _batch(vals: list, dims: list, *, shape: tuple[int, ...]) -> tuple[Any, int]:
    """Independent draws for every index of the batch: one draw of the batched shape, each
    row scaled to its own interval."""
    size = batching.batch_size(vals, dims)
    a, b = (batching.moveaxis(v, d, 0, size) for v, d in zip(vals, dims))
    _abstract_eval(ShapedArray((), get_aval(a).dtype), ShapedArray((), get_aval(b).dtype),
                   shape=shape)
    return uniform_from_seed(a, b, shape=(size, *shape), seed=next_seed()), 0


rng_uniform_p = Primitive("rng_uniform")
rng_uniform_p.effectful = True  # stateful: two identical draws are not one (no CSE)
rng_uniform_p.def_abstract_eval(_abstract_eval)
rng_uniform_p.def_impl(_impl)
rng_uniform_p.weak_type_rule = lambda weak, **params: weak[0] and weak[1]
batching.primitive_batchers[rng_uniform_p] = _batch
