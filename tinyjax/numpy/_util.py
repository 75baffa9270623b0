"""Type promotion and broadcasting for ``tinyjax.numpy`` functions."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.array import ArrayImpl
from tinyjax.api import jit
from tinyjax.core import Tracer, get_aval, is_eager
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.elementwise import _convert_weak


def check_arraylike(fun_name: str, *args: Any) -> None:
    """Raise a TypeError naming ``fun_name`` if an argument is not array-like."""
    for i, a in enumerate(args):
        if not isinstance(a, (ArrayImpl, Tracer, np.ndarray, np.generic, bool, int, float,
                              complex)) and not hasattr(a, "__jax_array__"):
            msg = (f"{fun_name} requires ndarray or scalar arguments, got "
                   f"{type(a).__name__} at position {i}.")
            raise TypeError(msg)


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """numpy's broadcasting of shapes, with JAX's error text."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(ndim):
        sizes = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        sizes.discard(1)
        if len(sizes) > 1:
            raise ValueError("Incompatible shapes for broadcasting: shapes="
                             f"{[tuple(s) for s in shapes]}")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_to_shape(x: Any, shape: Sequence[int]) -> Any:
    """Broadcast ``x`` to ``shape`` with numpy's rules (a free view when compiled)."""
    shape = tuple(shape)
    xshape = get_aval(x).shape
    if xshape == shape:
        return x
    nlead = len(shape) - len(xshape)
    if nlead < 0 or any(d not in (1, shape[nlead + i]) for i, d in enumerate(xshape)):
        raise ValueError(f"Incompatible shapes for broadcasting: {xshape} and requested "
                         f"shape {shape}")
    # drop size-1 axes that get broadcast, then broadcast_in_dim the rest
    keep = [i for i, d in enumerate(xshape) if d == shape[nlead + i]]
    if len(keep) != len(xshape):
        x = lax.reshape(x, tuple(xshape[i] for i in keep))
    return lax.broadcast_in_dim(x, shape, tuple(nlead + i for i in keep))


def promote_dtypes(*args: Any) -> list[Any]:
    """Convert the arguments to their common dtype (JAX's weak-type aware rule)."""
    ops = [as_operand(a) if not isinstance(a, (bool, int, float, complex)) else a
           for a in args]
    dt, weak = dtypes.lattice_result_type(*ops)
    # Python scalars are made directly in the result dtype (a literal, no conversion).
    return [as_operand(o, dt, weak) if isinstance(o, (bool, int, float, complex))
            else _convert_weak(o, dt, weak) for o in ops]


def promote_args(fun_name: str, *args: Any) -> list[Any]:
    """Promote to a common dtype and broadcast to a common shape."""
    check_arraylike(fun_name, *args)
    ops = promote_dtypes(*args)
    if len(ops) < 2:
        return ops
    shape = broadcast_shapes(*(get_aval(o).shape for o in ops))
    # scalars broadcast inside elementwise primitives, as in JAX's jaxprs
    return [o if not get_aval(o).shape else broadcast_to_shape(o, shape) for o in ops]


def promote_args_numeric(fun_name: str, *args: Any) -> list[Any]:
    """Like :func:`promote_args`, but a bool result becomes the default integer type
    (JAX's ``promote_args_numeric``: shifts, ``fmod``, ``floor_divide``, ``power``…)."""
    ops = promote_args(fun_name, *args)
    if ops and get_aval(ops[0]).dtype == np.bool_:
        dt = dtypes.default_int_dtype()
        ops = [_convert_weak(o, dt, False) for o in ops]
    return ops


def promote_dtypes_inexact(*args: Any) -> list[Any]:
    """Like :func:`promote_dtypes`, but integer and bool results become float (no
    broadcasting)."""
    ops = promote_dtypes(*args)
    aval = get_aval(ops[0]) if ops else None
    if aval is not None and not dtypes.is_inexact(aval.dtype):
        dt = dtypes.default_float_dtype()
        ops = [_convert_weak(o, dt, get_aval(o).weak_type) for o in ops]
    return ops


def promote_args_inexact(fun_name: str, *args: Any) -> list[Any]:
    """Like :func:`promote_args`, but integer and bool results become float."""
    return promote_dtypes_inexact(*promote_args(fun_name, *args))


def promote_dtypes_inexact(*args: Any) -> list[Any]:
    """Convert the arguments to their common dtype, float if that is integer or bool (no
    broadcasting)."""
    ops = promote_dtypes(*args)
    aval = get_aval(ops[0]) if ops else None
    if aval is not None and not dtypes.is_float(aval.dtype) and \
            not dtypes.is_complex(aval.dtype):
        dt = dtypes.default_float_dtype()
        ops = [_convert_weak(o, dt, get_aval(o).weak_type) for o in ops]
    return ops


def shape_of(x: Any) -> tuple[int, ...]:
    return get_aval(x).shape


def ndim_of(x: Any) -> int:
    return get_aval(x).ndim


def dtype_of(x: Any) -> np.dtype:
    return get_aval(x).dtype


def full_like_value(x: Any, value: Any, dtype: Any = None) -> Any:
    """An array of ``x``'s shape filled with ``value`` (``x``'s dtype unless given)."""
    aval = get_aval(x)
    return lax.full(aval.shape, value, aval.dtype if dtype is None else dtype)


def select_broadcast(pred: Any, on_true: Any, on_false: Any) -> Any:
    """``lax.select`` whose operands may differ in shape by numpy's broadcasting (a
    Python-scalar operand of an elementwise function stays rank 0 until here)."""
    ops = (pred, on_true, on_false)
    shape = broadcast_shapes(*(get_aval(o).shape for o in ops))
    return lax.select(*(broadcast_to_shape(o, shape) for o in ops))


def staged_as_jit(fun: Callable) -> Callable:
    """``fun`` (a helper JAX's ``jax.numpy`` decorates with ``jit``) as JAX stages it: one
    ``jit`` equation named after it in a staged jaxpr, the body inline under the other
    transforms; an eager call runs ``fun`` directly (nothing is compiled for it)."""
    jitted = jit(fun)

    @wraps(fun)
    def call(*args: Any) -> Any:
        return fun(*args) if is_eager() else jitted(*args)
    return call
