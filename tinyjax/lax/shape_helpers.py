"""Shape-level helpers of ``jax.lax`` written with the shape primitives: ``stack``,
``unstack``, ``tile``, ``collapse``, ``broadcast_shapes``, ``broadcast_to_rank``,
``broadcast_like``, ``full_like``, ``empty``, ``dtype``, ``reciprocal``, ``stage`` and
``shape_as_value``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import ArrayImpl
from tinyjax.core import Primitive, ShapedArray, Tracer, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.elementwise import _convert_weak, div
from tinyjax.lax.shape import broadcast_in_dim, full, reshape
from tinyjax.lax.sharding_constraint import placed_like, with_sharding_constraint
from tinyjax.lax.slicing import concatenate, index_in_dim

__all__ = ["stack", "unstack", "tile", "collapse", "broadcast_shapes", "broadcast_to_rank",
           "broadcast_like", "full_like", "empty", "dtype", "reciprocal", "stage",
           "shape_as_value", "stack_p", "stage_p", "tile_p", "unstack_p"]


def _axis(axis: int, ndim: int, name: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of bounds for an array of rank {ndim}")
    return axis % ndim


def stack(operands: Sequence[Any], axis: int = 0) -> Any:
    """The operands (all of one shape and dtype) joined along a new ``axis``."""
    operands = [as_operand(o) for o in operands]
    if not operands:
        raise ValueError("stack requires at least one operand")
    axis = _axis(axis, get_aval(operands[0]).ndim + 1, "stack")
    return stack_p.bind(*operands, axis=axis)


def _stack(*operands: Any, axis: int) -> Any:
    shapes = {(get_aval(o).shape, get_aval(o).dtype) for o in operands}
    if len(shapes) > 1:
        raise TypeError("stack requires operands of one shape and dtype, got "
                        f"{', '.join(get_aval(o).str_short() for o in operands)}")
    shape = get_aval(operands[0]).shape
    _axis(axis, len(shape) + 1, "stack")
    new_shape = shape[:axis] + (1,) + shape[axis:]
    return concatenate([reshape(o, new_shape) for o in operands], axis)


def unstack(x: Any, axis: int = 0) -> tuple[Any, ...]:
    """The slices of ``x`` along ``axis`` (the inverse of :func:`stack`)."""
    x = as_operand(x)
    if not get_aval(x).shape:
        raise ValueError("unstack requires an operand of rank at least 1")
    return tuple(unstack_p.bind(x, axis=_axis(axis, get_aval(x).ndim, "unstack")))


def _unstack(x: Any, *, axis: int) -> list[Any]:
    shape = get_aval(x).shape
    if not shape:
        raise ValueError("unstack requires an operand of rank at least 1")
    axis = _axis(axis, len(shape), "unstack")
    return [index_in_dim(x, i, axis, keepdims=False) for i in range(shape[axis])]


def tile(operand: Any, reps: Sequence[int]) -> Any:
    """``operand`` repeated ``reps[i]`` times along axis ``i`` (``len(reps)`` must equal
    its rank)."""
    return tile_p.bind(as_operand(operand), reps=tuple(int(r) for r in reps))


def _tile(x: Any, *, reps: tuple[int, ...]) -> Any:
    shape = get_aval(x).shape
    if len(reps) != len(shape):
        raise ValueError(f"tile: reps {reps} must have one entry per axis of the operand "
                         f"of shape {shape}")
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {reps}")
    # broadcast to (r0, d0, r1, d1, ...) and merge each pair
    wide = tuple(v for r, d in zip(reps, shape) for v in (r, d))
    x = broadcast_in_dim(x, wide, tuple(range(1, 2 * len(shape), 2)))
    return reshape(x, tuple(r * d for r, d in zip(reps, shape)))


stack_p = Primitive("stack")
unstack_p = Primitive("unstack", multiple_results=True)
tile_p = Primitive("tile")
for _prim, _definition in ((stack_p, _stack), (unstack_p, _unstack), (tile_p, _tile)):
    define_composite(_prim, _definition)
    derive_rules(_prim, linear=True)
_weak = lambda weak, **params: all(weak)  # noqa: E731
stack_p.weak_type_rule = tile_p.weak_type_rule = _weak
unstack_p.weak_type_rule = lambda weak, **params: weak[0]


def collapse(operand: Any, start_dimension: int, stop_dimension: int | None = None) -> Any:
    """``operand`` with the axes ``start_dimension:stop_dimension`` merged into one."""
    x = as_operand(operand)
    shape = get_aval(x).shape
    lo, hi, _ = slice(start_dimension, stop_dimension).indices(len(shape))
    if hi < lo:
        raise ValueError(f"collapse: start_dimension {start_dimension} must not come after "
                         f"stop_dimension {stop_dimension}")
    return reshape(x, shape[:lo] + (math.prod(shape[lo:hi]),) + shape[hi:])


def broadcast_shapes(*shapes: Sequence[int]) -> tuple[int, ...]:
    """The shape that numpy-style broadcasting of ``shapes`` gives (JAX's error text
    otherwise)."""
    shapes = [tuple(int(d) for d in s) for s in shapes]
    if not shapes:
        return ()
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + s for s in shapes]
    out = []
    for sizes in zip(*padded):
        big = {d for d in sizes if d != 1}
        if len(big) > 1:
            raise ValueError("Incompatible shapes for broadcasting: shapes="
                             f"{[tuple(s) for s in shapes]}")
        out.append(big.pop() if big else 1)
    return tuple(out)


def broadcast_to_rank(x: Any, rank: int) -> Any:
    """``x`` with leading axes of size 1 added up to ``rank``."""
    x = as_operand(x)
    nd = get_aval(x).ndim
    if nd > rank:
        raise ValueError(f"broadcast_to_rank: operand of rank {nd} is above rank {rank}")
    return reshape(x, (1,) * (rank - nd) + get_aval(x).shape) if nd < rank else x


def broadcast_like(arr: Any, like_arr: Any) -> Any:
    """``arr`` broadcast (numpy's rules) to the shape of ``like_arr``."""
    x = as_operand(arr)
    shape = tuple(get_aval(as_operand(like_arr)).shape)
    xs = get_aval(x).shape
    if xs == shape:
        return x
    if broadcast_shapes(xs, shape) != shape:
        raise ValueError(f"broadcast_like: cannot broadcast shape {xs} to {shape}")
    lead = len(shape) - len(xs)
    keep = [i for i, d in enumerate(xs) if d == shape[lead + i]]
    x = reshape(x, tuple(xs[i] for i in keep)) if len(keep) != len(xs) else x
    return broadcast_in_dim(x, shape, tuple(lead + i for i in keep))


def full_like(x: Any, fill_value: Any, dtype: Any = None, shape: Any = None,
              sharding: Any = None) -> Any:
    """An array like ``x`` (its shape, dtype and weak type unless given) filled with
    ``fill_value``; laid out as ``sharding`` says, else as ``x`` is where ``x`` is
    committed to its devices (see :func:`~tinyjax.lax.sharding_constraint.placed_like`)."""
    aval = _aval_of(x)
    shape = aval.shape if shape is None else tuple(int(d) for d in shape)
    dt = aval.dtype if dtype is None else dtypes.canonicalize_dtype(dtype)
    out = full(shape, fill_value, dt)
    if dtype is None and aval.weak_type:
        return _convert_weak(out, dt, True)
    if sharding is not None:
        return with_sharding_constraint(out, sharding)
    return placed_like(out, x)


def _aval_of(x: Any) -> ShapedArray:
    """The aval of an array, or of a duck-typed one (``shape`` and ``dtype``, e.g. a
    ShapeDtypeStruct)."""
    if isinstance(x, (ArrayImpl, Tracer, np.ndarray, bool, int, float, complex, np.generic)):
        return get_aval(as_operand(x))
    return ShapedArray(tuple(x.shape), np.dtype(x.dtype), bool(getattr(x, "weak_type",
                                                                        False)))


def empty(shape: Sequence[int], dtype: Any, *, out_sharding: Any = None) -> Any:
    """An array of ``shape`` and ``dtype`` whose contents do not matter (zeros here)."""
    return full(tuple(int(d) for d in shape), 0, dtype)


def dtype(x: Any) -> np.dtype:
    """The dtype of ``x`` as tinyjax sees it (Python scalars: the default types)."""
    return dtypes.dtype(x)


def reciprocal(x: Any) -> Any:
    """Elementwise ``1 / x``."""
    x = as_operand(x)
    return div(as_operand(1, get_aval(x).dtype, get_aval(x).weak_type), x)


def stage(x: Any, /) -> Any:
    """``x`` as a JAX value of the active trace: the identity on Arrays and tracers; a
    Python scalar or numpy value becomes an Array (a constant of the program being
    traced).  Binds ``stage_p``."""
    return stage_p.bind(x)


class _StagePrimitive(Primitive):
    """The identity that lifts a value into the current trace.  As JAX's ``stage_p``, binding
    it stages no equation: the value itself is what the trace is given (tinyjax's traces
    take Arrays as their constants)."""

    def bind(self, *args: Any, **params: Any) -> Any:
        x, = args
        try:
            return as_operand(x)
        except TypeError:
            raise TypeError(f"Error interpreting argument to stage as a JAX value. The "
                            f"problematic value is of type {type(x)} and was passed to "
                            "stage at position 0.") from None


# (its rules serve a jaxpr that holds a stage equation all the same: the identity)
stage_p = _StagePrimitive("stage")
define_composite(stage_p, lambda x: x)
derive_rules(stage_p, linear=True)
stage_p.weak_type_rule = lambda weak: weak[0]


def shape_as_value(shape: Sequence[int]) -> Any:
    """``shape`` as an int32 Array of its sizes (tinyjax's shapes are static)."""
    return as_operand(np.asarray(shape, np.int32).reshape(len(shape)))
