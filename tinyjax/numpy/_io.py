"""Conversions from and to the host: ``load``/``save``/``savez``, ``frombuffer``/
``fromstring``/``fromfunction``/``from_dlpack`` (``fromiter``/``fromfile`` refuse, as in
JAX), printing (``array_repr``/``array_str`` and numpy's print options)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinyjax import dtypes
from tinyjax.core import get_aval
from tinyjax.numpy._creation import _placing, _shape_tuple, arange, asarray
from tinyjax.api import vmap

__all__ = ["load", "save", "savez", "frombuffer", "fromstring", "fromiter", "fromfile",
           "fromfunction", "from_dlpack", "array_repr", "array_str", "printoptions",
           "get_printoptions", "set_printoptions"]

save = np.save
savez = np.savez
printoptions = np.printoptions
get_printoptions = np.get_printoptions
set_printoptions = np.set_printoptions


def load(file: Any, *args: Any, **kwargs: Any) -> Any:
    """``numpy.load``, with an array result converted to a tinyjax array."""
    out = np.load(file, *args, **kwargs)
    return asarray(out) if isinstance(out, np.ndarray) else out


def frombuffer(buffer: Any, dtype: Any = float, count: int = -1, offset: int = 0) -> Any:
    """A 1-D array interpreting the bytes of ``buffer`` as ``dtype``."""
    return asarray(np.frombuffer(buffer, dtypes.canonicalize_dtype(dtype), count, offset))


def fromstring(string: str, dtype: Any = float, count: int = -1, *, sep: str) -> Any:
    """A 1-D array of the numbers in ``string`` separated by ``sep``."""
    return asarray(np.fromstring(string, dtypes.canonicalize_dtype(dtype), count, sep=sep))


def _impure(name: str) -> NotImplementedError:
    return NotImplementedError(
        f"jnp.{name}() is not implemented because it may be non-pure and thus unsafe for "
        f"use with JIT and other transformations. Consider using "
        f"jnp.asarray(np.{name}(...)) instead.")


def fromiter(*args: Any, **kwargs: Any) -> Any:
    """Not available (reading an iterator is a side effect); use
    ``jnp.asarray(np.fromiter(...))``."""
    raise _impure("fromiter")


def fromfile(*args: Any, **kwargs: Any) -> Any:
    """Not available (reading a file is a side effect); use
    ``jnp.asarray(np.fromfile(...))``."""
    raise _impure("fromfile")


def fromfunction(function: Callable[..., Any], shape: Any, *, dtype: Any = float,
                 **kwargs: Any) -> Any:
    """``function`` evaluated at every index of ``shape`` (it is called once, on index
    arrays, vectorised over each axis)."""
    shape = _shape_tuple(shape, "fromfunction")
    dt = dtypes.canonicalize_dtype(dtype)
    fn = function
    for i in range(len(shape)):
        in_axes = tuple(0 if j == len(shape) - 1 - i else None for j in range(len(shape)))
        fn = vmap(fn, in_axes=in_axes)
    return fn(*(arange(s, dtype=dt) for s in shape), **kwargs)


@_placing
def from_dlpack(x: Any, /, *, device: Any = None, copy: bool | None = None) -> Any:
    """An array from an object implementing the DLPack protocol (a host copy)."""
    return asarray(np.from_dlpack(x))


def array_repr(arr: Any, max_line_width: int | None = None, precision: int | None = None,
               suppress_small: bool | None = None) -> str:
    """``repr``-style text of an array: ``Array([...], dtype=...)``."""
    value = np.asarray(arr)
    text = np.array_repr(value, max_line_width, precision, suppress_small)
    if not text.startswith("array("):
        return text
    body = text[len("array("):]
    if "dtype=" not in body:
        body = body[:-1] + f", dtype={get_aval(asarray(arr)).dtype.name})"
    return "Array(" + body


def array_str(a: Any, max_line_width: int | None = None, precision: int | None = None,
              suppress_small: bool | None = None) -> str:
    """``str``-style text of an array's values."""
    return np.array_str(np.asarray(a), max_line_width, precision, suppress_small)
