"""Argument handling shared by the samplers: shapes, dtypes, parameters."""
from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand


def canonical_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    """``shape`` as a tuple of ints (an int is a 1-d shape)."""
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(int(operator.index(d)) for d in shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {shape!r}") from None


def check_shape(name: str, shape: tuple[int, ...], *param_shapes: Sequence[int]) -> None:
    """JAX's error when parameter shapes do not broadcast to the requested shape."""
    if param_shapes:
        try:
            shape_ = np.broadcast_shapes(shape, *param_shapes)
        except ValueError:
            shape_ = None
        if shape_ != tuple(shape):
            raise ValueError(f"{name} parameter shapes must be broadcast-compatible with "
                             "shape argument, and the result of broadcasting the shapes "
                             f"must equal the shape argument, but got result {shape_} for "
                             f"shape argument {shape}.")


def shape_of_params(name: str, shape: Any, *params: Any) -> tuple[int, ...]:
    """The sample shape: the broadcast of the parameters' shapes unless ``shape`` is
    given, in which case the parameters must broadcast to it."""
    shapes = [get_aval(p).shape for p in params]
    if shape is None:
        return tuple(np.broadcast_shapes(*shapes))
    shape = canonical_shape(shape)
    check_shape(name, shape, *shapes)
    return shape


def float_dtype(dtype: Any, name: str) -> np.dtype:
    """The sampler's float dtype (the default float when None); JAX's error otherwise."""
    dt = dtypes.canonicalize_dtype(np.float64 if dtype is None else dtype)
    if not dtypes.is_float(dt):
        raise ValueError(f"dtype argument to `{name}` must be a float dtype, got {dt}")
    return dt


def int_dtype(dtype: Any, name: str) -> np.dtype:
    """The sampler's integer dtype (the default int when None); JAX's error otherwise."""
    dt = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    if not dtypes.is_int(dt):
        raise ValueError(f"dtype argument to `{name}` must be an int dtype, got {dt}")
    return dt


def const(dtype: Any, value: Any) -> Any:
    """``value`` as a (strongly typed) scalar of ``dtype``."""
    return as_operand(np.asarray(value, dtype), weak=False)


def convert(x: Any, dtype: np.dtype) -> Any:
    """``x`` as a strongly typed array of ``dtype``."""
    x = as_operand(x)
    aval = get_aval(x)
    if aval.dtype == dtype and not aval.weak_type:
        return x
    return lax.convert_element_type(x, dtype)


def broadcast_to_rank(x: Any, rank: int) -> Any:
    """``x`` with leading axes of size 1 added up to ``rank``."""
    shape = get_aval(x).shape
    if len(shape) >= rank:
        return x
    return lax.broadcast_in_dim(x, (1,) * (rank - len(shape)) + shape,
                                tuple(range(rank - len(shape), rank)))


def bcast(x: Any, shape: tuple[int, ...]) -> Any:
    """``x`` (of rank ``len(shape)``, size-1 axes broadcasting) broadcast to ``shape``."""
    xs = get_aval(x).shape
    if xs == shape:
        return x
    keep = tuple(i for i, d in enumerate(xs) if d == shape[i])
    x = lax.reshape(x, tuple(xs[i] for i in keep)) if len(keep) != len(xs) else x
    return lax.broadcast_in_dim(x, shape, keep)


def param(x: Any, dtype: np.dtype, shape: tuple[int, ...]) -> Any:
    """A distribution parameter converted to ``dtype`` and broadcast to ``shape``."""
    return bcast(broadcast_to_rank(convert(x, dtype), len(shape)), shape)


def is_eager_scalar(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
