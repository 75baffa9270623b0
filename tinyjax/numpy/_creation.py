"""Array creation: ``array``/``asarray`` and friends."""
from __future__ import annotations

from typing import Any

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.array import Array, wrap_eager
from tinyjax.core import Tracer, get_aval


def _leaves_of_nested(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        out = []
        for o in obj:
            out.extend(_leaves_of_nested(o))
        return out
    return [obj]


def array(object: Any, dtype: Any = None, copy: bool = True, order: str | None = None,
          ndmin: int = 0) -> Any:
    """Create an array from an array, a (nested) sequence or a scalar.

    A Python scalar gives a weakly typed array (its dtype yields to the other
    operand's in binary operations), as in JAX.
    """
    if isinstance(object, (Array, Tracer)):
        out = object
        if dtype is not None:
            out = lax.convert_element_type(out, dtype)
    elif isinstance(object, (list, tuple)) and any(
            isinstance(leaf, (Array, Tracer)) for leaf in _leaves_of_nested(object)):
        from tinyjax.numpy import stack
        items = [array(o) for o in object]
        if dtype is None:
            dt = dtypes.result_type(*items) if items else dtypes.default_float_dtype()
        else:
            dt = dtypes.canonicalize_dtype(dtype)
        out = stack([lax.convert_element_type(i, dt) for i in items]) if items else \
            wrap_eager(np.zeros((0,), dt))
    else:
        if hasattr(object, "__jax_array__"):
            return array(object.__jax_array__(), dtype=dtype)
        if dtype is None:
            np_value = np.asarray(object)
            if np_value.dtype.kind in "USOV":
                raise TypeError(f"array: cannot convert {object!r} to a tinyjax array "
                                f"(numpy dtype {np_value.dtype})")
            if isinstance(object, (np.ndarray, np.generic)):
                dt = dtypes.canonicalize_dtype(np_value.dtype)
            else:
                dt = dtypes.dtype(object) if not isinstance(object, (list, tuple)) else \
                    _python_sequence_dtype(object, np_value)
        else:
            dt = dtypes.canonicalize_dtype(dtype)
            if dtypes.is_complex(dt):
                raise NotImplementedError("tinyjax does not support complex dtypes yet")
            np_value = np.asarray(object)
        if dtypes.is_complex(np_value.dtype):
            raise NotImplementedError("tinyjax does not support complex dtypes yet")
        weak = dtype is None and type(object) in (int, float, complex)
        out = wrap_eager(np.array(np_value, dtype=dt, copy=True), weak)
    if ndmin > get_aval(out).ndim:
        shape = (1,) * (ndmin - get_aval(out).ndim) + get_aval(out).shape
        out = lax.reshape(out, shape)
    return out


def _python_sequence_dtype(obj, np_value: np.ndarray) -> np.dtype:
    """JAX's rule for lists of Python scalars: the weak-type join, canonicalised."""
    leaves = _leaves_of_nested(obj)
    if not leaves:
        return dtypes.default_float_dtype()
    if all(isinstance(v, (bool, int, float, complex)) for v in leaves):
        return dtypes.result_type(*leaves) if not all(isinstance(v, bool) for v in leaves) \
            else np.dtype(np.bool_)
    return dtypes.canonicalize_dtype(np_value.dtype)


def asarray(a: Any, dtype: Any = None, order: str | None = None, *,
            copy: bool | None = None) -> Any:
    """Convert ``a`` to an array without copying when it already is one."""
    if dtype is None and isinstance(a, (Array, Tracer)):
        return a
    return array(a, dtype=dtype, copy=False)
