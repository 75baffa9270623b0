"""The types of values as JAX describes them: :func:`typeof` (an abstract array: shape,
dtype, weak type) and :class:`ShapeDtypeStruct` (a stand-in for an array of a type, what
``eval_shape`` returns and ``jit(f).trace`` and callbacks take)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.api_util import register_abstractify, shaped_abstractify
from tinyjax.core import ShapedArray, get_aval

__all__ = ["ShapeDtypeStruct", "typeof"]


class ShapeDtypeStruct:
    """A shape, a dtype and a weak type flag: a stand-in for an array's type (what
    ``eval_shape`` returns and ``jit(f).trace`` / ``pure_callback`` take)."""

    __slots__ = ("shape", "dtype", "weak_type", "sharding")

    def __init__(self, shape: Sequence[int], dtype: Any, *, sharding: Any = None,
                 weak_type: bool = False):
        self.shape = tuple(shape)
        self.dtype = dtype if dtypes.is_extended(dtype) else np.dtype(dtype)
        self.weak_type = weak_type
        self.sharding = sharding

    ndim = property(lambda self: len(self.shape))

    @property
    def size(self) -> int:
        out = 1
        for d in self.shape:
            out *= d
        return out

    @classmethod
    def like(cls, x: Any) -> "ShapeDtypeStruct":
        """The shape, dtype and weak type of the array (or tracer, or scalar) ``x``."""
        aval = typeof(x)
        return cls(aval.shape, aval.dtype, weak_type=aval.weak_type)

    def update(self, **changes: Any) -> "ShapeDtypeStruct":
        """A copy with some of shape, dtype, weak_type, sharding replaced."""
        fields = dict(shape=self.shape, dtype=self.dtype, weak_type=self.weak_type,
                      sharding=self.sharding)
        fields.update(changes)
        return ShapeDtypeStruct(fields.pop("shape"), fields.pop("dtype"), **fields)

    def __eq__(self, other):
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self):
        sharding = "" if self.sharding is None else f", sharding={self.sharding}"
        weak = ", weak_type=True" if self.weak_type else ""
        return (f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{sharding}"
                f"{weak})")


register_abstractify(ShapeDtypeStruct, lambda x: ShapedArray(
    x.shape, dtypes.canonicalize_dtype(x.dtype, allow_extended_dtype=True), x.weak_type))


def typeof(x: Any) -> ShapedArray:
    """The type of the value ``x`` as JAX sees it: an abstract array of its shape, dtype
    and weak type (``float32[3]``, ``~float32[]`` for a Python float)."""
    if dtypes.is_extended(getattr(x, "dtype", None)):  # a key array
        return ShapedArray(x.shape, x.dtype)
    if isinstance(x, ShapeDtypeStruct):
        return shaped_abstractify(x)
    return get_aval(x)
