"""``jax.typing``: the annotations JAX code uses for its inputs.

``ArrayLike`` is anything a tinyjax function accepts as an array operand (an Array or
tracer, a numpy array or scalar, a Python scalar); ``DTypeLike`` anything that names a
dtype (a numpy dtype or scalar type, a string such as ``'float32'``, a Python scalar
type, an object with a ``dtype`` attribute).
"""
from __future__ import annotations

from typing import Any, Protocol, Union

import numpy as np

from tinyjax.array import Array

__all__ = ["ArrayLike", "DTypeLike"]


class SupportsDType(Protocol):
    @property
    def dtype(self) -> np.dtype: ...


ArrayLike = Union[Array, np.ndarray, np.bool_, np.number, bool, int, float, complex]
DTypeLike = Union[str, type[Any], np.dtype, SupportsDType]
