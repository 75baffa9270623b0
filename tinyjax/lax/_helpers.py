"""Small helpers shared by the lax primitive families."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import ArrayImpl, to_array, wrap_eager
from tinyjax.core import ShapedArray, Tracer, get_aval

_PY_SCALARS = (bool, int, float, complex)


def is_array_like(x: Any) -> bool:
    return isinstance(x, (ArrayImpl, Tracer, np.ndarray, np.generic, bool, int, float, complex))


def as_operand(x: Any, dtype: Any = None, weak: bool | None = None) -> Any:
    """Turn a Python scalar or numpy value into something a primitive accepts.

    Arrays and tracers pass through; Python scalars become weakly typed 0-d Arrays
    (of ``dtype`` when given, else the default type); numpy values become Arrays of
    their canonical dtype.
    """
    if isinstance(x, (ArrayImpl, Tracer)):
        return x
    if isinstance(x, _PY_SCALARS):
        dt = dtypes.dtype(x) if dtype is None else dtypes.canonicalize_dtype(dtype)
        if dtypes.is_complex(dt) and not isinstance(x, complex):
            pass
        elif isinstance(x, complex) and not dtypes.is_complex(dt):
            raise TypeError(f"complex value {x} cannot be used with dtype {dt}")
        return wrap_eager(dtypes.python_scalar_array(x, dt), True if weak is None else weak)
    if isinstance(x, (np.ndarray, np.generic)):
        dt = dtypes.canonicalize_dtype(x.dtype if dtype is None else dtype)
        return wrap_eager(np.asarray(x, dt), False if weak is None else weak)
    if isinstance(x, (list, tuple)):
        return to_array(x)
    if hasattr(x, "__jax_array__"):
        return as_operand(x.__jax_array__())
    raise TypeError(f"Value {x!r} of type {type(x).__name__} is not a valid JAX type")


def aval_str(avals: Sequence[ShapedArray]) -> str:
    return ", ".join(a.str_short() for a in avals)


def canonicalize_axis(axis: int, ndim: int, name: str = "axis") -> int:
    if not -ndim <= axis < max(ndim, 1) or (ndim == 0 and axis not in (0, -1)):
        raise ValueError(f"{name} {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim if ndim else 0


def shape_of(x: Any) -> tuple[int, ...]:
    return get_aval(x).shape


def dtype_of(x: Any) -> np.dtype:
    return get_aval(x).dtype
