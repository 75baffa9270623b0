"""Operators and methods of :class:`tinyjax.Array` and of every tracer.

Both classes get the same methods, each a thin call into ``tinyjax.numpy``, so an
expression means the same thing eagerly and under any transform.
"""
from __future__ import annotations

from typing import Any, Callable

from types import ModuleType

from tinyjax.array import ArrayImpl
from tinyjax.core import Tracer
from tinyjax.numpy import _ufuncs

_numpy: list[ModuleType] = []  # tinyjax.numpy, given to install()


def _jnp() -> ModuleType:
    return _numpy[0]


def _forward(name: str) -> Callable:
    """``x.name(...)`` → ``jnp.name(x, ...)``."""
    def method(self, *args, **kwargs):
        return getattr(_jnp(), name)(self, *args, **kwargs)
    method.__name__ = name
    method.__doc__ = f"``tinyjax.numpy.{name}`` of this array."
    return method


def _binary(name: str, reflected: bool = False) -> Callable:
    def op(self, other):
        if not _is_operand(other):
            return NotImplemented
        fn = getattr(_jnp(), name)
        return fn(other, self) if reflected else fn(self, other)
    op.__name__ = name
    return op


def _is_operand(x: Any) -> bool:
    import numpy as np
    return isinstance(x, (ArrayImpl, Tracer, int, float, bool, complex, np.ndarray, np.generic)) \
        or hasattr(x, "__jax_array__")


def _fast_binary(ufunc: Callable, reflected: bool = False) -> Callable:
    """The hot operators call the ufunc object directly (no getattr per call)."""
    if reflected:
        def op(self, other):
            if not _is_operand(other):
                return NotImplemented
            return ufunc(other, self)
    else:
        def op(self, other):
            return ufunc(self, other) if _is_operand(other) else NotImplemented
    return op


_BINARY_OPS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "power",
    "matmul": "matmul", "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor",
    "lshift": "left_shift", "rshift": "right_shift", "divmod": "divmod",
}
_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                "gt": "greater", "ge": "greater_equal"}
_METHODS = (
    "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "conj", "conjugate",
    "cumprod", "cumsum", "diagonal", "dot", "flatten", "max", "mean", "min", "nonzero",
    "prod", "ptp", "ravel", "repeat", "reshape", "round", "searchsorted", "sort",
    "squeeze", "std", "sum", "swapaxes", "take", "trace", "transpose", "var",
)


def _reshape(self, *shape, order="C", out_sharding=None):
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = shape[0]
    return _jnp().reshape(self, shape, order=order, out_sharding=out_sharding)


def _transpose(self, *axes):
    if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], int)):
        axes = axes[0]
    return _jnp().transpose(self, axes if axes else None)


def _astype(self, dtype, copy=False, device=None):
    return _jnp().astype(self, dtype, device=device)


def _flatten(self, order="C"):
    return _jnp().ravel(self, order=order)


def _getitem(self, index):
    from tinyjax.numpy._indexing import getitem
    return getitem(self, index)


def _setitem(self, index, value):
    raise TypeError(
        "JAX arrays are immutable and do not support in-place item assignment. Instead of "
        "x[idx] = y, use x = x.at[idx].set(y) or another .at[] method: "
        "https://docs.jax.dev/en/latest/_autosummary/jax.numpy.ndarray.at.html")


def _at(self):
    from tinyjax.numpy._indexing import _IndexUpdateHelper
    return _IndexUpdateHelper(self)


def _install(cls: type) -> None:
    for dunder, name in _BINARY_OPS.items():
        fn = getattr(_ufuncs, name, None)
        if fn is not None and name in ("add", "subtract", "multiply", "true_divide"):
            setattr(cls, f"__{dunder}__", _fast_binary(fn))
            setattr(cls, f"__r{dunder}__", _fast_binary(fn, reflected=True))
        else:
            setattr(cls, f"__{dunder}__", _binary(name))
            setattr(cls, f"__r{dunder}__", _binary(name, reflected=True))
    for dunder, name in _COMPARISONS.items():
        setattr(cls, f"__{dunder}__", _fast_binary(getattr(_ufuncs, name)))
    cls.__neg__ = lambda self: _jnp().negative(self)
    cls.__pos__ = lambda self: _jnp().positive(self)
    cls.__abs__ = lambda self: _jnp().absolute(self)
    cls.__invert__ = lambda self: _jnp().invert(self)
    cls.__round__ = lambda self, ndigits=None: _jnp().round(self, ndigits or 0)
    cls.__getitem__ = _getitem
    cls.__setitem__ = _setitem
    for name in _METHODS:
        setattr(cls, name, _forward(name))
    cls.reshape = _reshape
    cls.transpose = _transpose
    cls.astype = _astype
    cls.flatten = _flatten
    if "copy" not in vars(cls):  # (eager arrays copy their buffers themselves)
        cls.copy = lambda self: _jnp().copy(self)
    cls.at = property(_at)
    cls.T = property(lambda self: _jnp().transpose(self))
    cls.mT = property(lambda self: _jnp().swapaxes(self, -1, -2))
    cls.real = property(lambda self: _jnp().real(self))
    cls.imag = property(lambda self: _jnp().imag(self))


def install(numpy: ModuleType) -> None:
    """Give Array and every tracer the operators and methods of ``numpy`` (tinyjax.numpy,
    which calls this once it has defined its functions)."""
    _numpy[:] = [numpy]
    _install(ArrayImpl)
    _install(Tracer)
