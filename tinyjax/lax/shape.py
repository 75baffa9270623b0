"""Shape primitives: broadcast_in_dim, reshape, transpose, and the constructors
(``full``, ``iota``) built on them.  On the compiler side all of these are
movement ops folded into views."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.array import on_default_device, wrap_eager
from tinyjax.core import Primitive, ShapedArray, get_aval, is_eager
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.sharding_constraint import type_sharding, with_sharding_constraint
from tinyjax.interpreters import ad, batching, lax_ops
from tinyjax.interpreters.ad import Zero

__all__ = [
    "broadcast",
    "broadcast_in_dim",
    "broadcast_in_dim_p",
    "broadcasted_iota",
    "full",
    "iota",
    "iota_p",
    "reshape",
    "reshape_p",
    "transpose",
    "transpose_p",
]

# ---------------------------------------------------------------------------
# broadcast_in_dim
# ---------------------------------------------------------------------------

broadcast_in_dim_p = Primitive("broadcast_in_dim")


def _broadcast_in_dim_check(operand: ShapedArray, shape, broadcast_dimensions):
    if operand.ndim != len(broadcast_dimensions):
        raise TypeError(
            "broadcast_in_dim broadcast_dimensions must have length equal to operand "
            f"ndim; got broadcast_dimensions {broadcast_dimensions} for operand ndim "
            f"{operand.ndim}.")
    if len(shape) < operand.ndim:
        raise TypeError(f"broadcast_in_dim target broadcast shape must have equal or higher "
                        f"rank to the operand shape; got operand ndim {operand.ndim} and "
                        f"target broadcast ndim {len(shape)}.")
    if any(d < 0 or d >= len(shape) for d in broadcast_dimensions) or \
            list(broadcast_dimensions) != sorted(set(broadcast_dimensions)):
        raise TypeError(f"broadcast_in_dim broadcast_dimensions must be strictly increasing "
                        f"and in range; got broadcast_dimensions {broadcast_dimensions} for "
                        f"shape {tuple(shape)}.")
    for i, d in enumerate(broadcast_dimensions):
        if operand.shape[i] not in (1, shape[d]):
            raise TypeError(
                "broadcast_in_dim operand dimension sizes must either be 1, or be equal to "
                "their corresponding dimensions in the target broadcast shape; got operand "
                f"of shape {operand.shape}, target broadcast shape {tuple(shape)}, "
                f"broadcast_dimensions {tuple(broadcast_dimensions)} ")


@broadcast_in_dim_p.def_impl
def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions, sharding=None):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(np.reshape(x, expanded), shape)


@broadcast_in_dim_p.def_abstract_eval
def _broadcast_in_dim_abstract_eval(x, *, shape, broadcast_dimensions, sharding=None):
    _broadcast_in_dim_check(x, shape, broadcast_dimensions)
    return ShapedArray(shape, x.dtype, x.weak_type)


broadcast_in_dim_p.weak_type_rule = lambda weak, **_: weak[0]


def broadcast_in_dim(operand, shape: Sequence[int], broadcast_dimensions: Sequence[int],
                     sharding=None):
    """Broadcast ``operand`` to ``shape``; its axis ``i`` becomes axis
    ``broadcast_dimensions[i]`` of the result."""
    x = as_operand(operand)
    shape = tuple(int(d) for d in shape)
    dims = tuple(int(d) for d in broadcast_dimensions)
    if get_aval(x).shape == shape and dims == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=dims, sharding=None)


def broadcast(operand, sizes: Sequence[int]):
    """Add leading dimensions of ``sizes``."""
    x = as_operand(operand)
    shape = tuple(sizes) + get_aval(x).shape
    return broadcast_in_dim(x, shape, tuple(range(len(sizes), len(shape))))


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions, sharding=None):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    in_shape = x.aval.shape
    summed = tuple(i for i in range(len(shape)) if i not in broadcast_dimensions)
    # operand axes of size 1 broadcast to a larger size are summed too (kept as size 1)
    unit = tuple(d for i, d in enumerate(broadcast_dimensions)
                 if in_shape[i] == 1 and shape[d] != 1)
    out = lax_ops.reduce_sum(ct, summed + unit) if summed or unit else ct
    return [reshape(out, in_shape) if unit else out]


ad.deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)


def _broadcast_in_dim_batch(vals, dims, *, shape, broadcast_dimensions, sharding=None):
    (x,), (d,) = vals, dims
    x = batching.moveaxis(x, d, 0)
    size = get_aval(x).shape[0]
    new_shape = (size,) + tuple(shape)
    new_dims = (0,) + tuple(b + 1 for b in broadcast_dimensions)
    return broadcast_in_dim_p.bind(x, shape=new_shape, broadcast_dimensions=new_dims,
                                   sharding=None), 0


batching.primitive_batchers[broadcast_in_dim_p] = _broadcast_in_dim_batch

# ---------------------------------------------------------------------------
# reshape
# ---------------------------------------------------------------------------

reshape_p = Primitive("reshape")


@reshape_p.def_impl
def _reshape_impl(x, *, new_sizes, dimensions=None, sharding=None):
    return np.reshape(x, new_sizes)


@reshape_p.def_abstract_eval
def _reshape_abstract_eval(x, *, new_sizes, dimensions=None, sharding=None):
    if any(d < 0 for d in new_sizes):
        raise TypeError(f"reshape new_sizes must all be non-negative, got {new_sizes}.")
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise TypeError(f"reshape total size must be unchanged, got new_sizes {new_sizes} "
                        f"(of total size {int(np.prod(new_sizes, dtype=np.int64))}) for "
                        f"shape {x.shape} (of total size {x.size}).")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


reshape_p.weak_type_rule = lambda weak, **_: weak[0]


def reshape(operand, new_sizes: Sequence[int], dimensions: Sequence[int] | None = None,
            sharding=None, *, out_sharding=None):
    """Reshape (after transposing by ``dimensions`` if given) to ``new_sizes``;
    ``out_sharding`` (or ``sharding``): the layout of the result, where the operand's
    layout does not say it (explicit sharding)."""
    x = as_operand(operand)
    new_sizes = tuple(int(d) for d in new_sizes)
    out_sharding = sharding if out_sharding is None else out_sharding
    if dimensions is not None and tuple(dimensions) != tuple(range(len(dimensions))):
        x = transpose(x, dimensions)
    if get_aval(x).shape == new_sizes and out_sharding is None:
        return x
    out = reshape_p.bind(x, new_sizes=new_sizes, dimensions=None, sharding=None if
                         out_sharding is None else type_sharding(out_sharding, len(new_sizes)))
    # as for products: the type names the layout, a constraint also places it there
    return out if out_sharding is None else with_sharding_constraint(out, out_sharding)


def _reshape_transpose(ct, x, *, new_sizes, dimensions=None, sharding=None):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    return [reshape(ct, x.aval.shape)]


ad.deflinear(reshape_p, _reshape_transpose)


def _reshape_batch(vals, dims, *, new_sizes, dimensions=None, sharding=None):
    (x,), (d,) = vals, dims
    x = batching.moveaxis(x, d, 0)
    size = get_aval(x).shape[0]
    return reshape_p.bind(x, new_sizes=(size,) + tuple(new_sizes), dimensions=None,
                          sharding=None), 0


batching.primitive_batchers[reshape_p] = _reshape_batch

# ---------------------------------------------------------------------------
# transpose
# ---------------------------------------------------------------------------

transpose_p = Primitive("transpose")


@transpose_p.def_impl
def _transpose_impl(x, *, permutation):
    return np.transpose(x, permutation)


@transpose_p.def_abstract_eval
def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise TypeError(f"transpose permutation isn't a permutation of operand dimensions, "
                        f"got permutation {tuple(permutation)} for operand shape {x.shape}.")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype, x.weak_type)


transpose_p.weak_type_rule = lambda weak, **_: weak[0]


def transpose(operand, permutation: Sequence[int]):
    """Permute the axes: result axis ``i`` is operand axis ``permutation[i]``."""
    x = as_operand(operand)
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))) and len(permutation) == get_aval(x).ndim:
        return x
    return transpose_p.bind(x, permutation=permutation)


def _transpose_transpose(ct, x, *, permutation):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    return [transpose(ct, tuple(np.argsort(permutation)))]


ad.deflinear(transpose_p, _transpose_transpose)


def _transpose_batch(vals, dims, *, permutation):
    (x,), (d,) = vals, dims
    perm = [d] + [p + (p >= d) for p in permutation]
    return transpose_p.bind(x, permutation=tuple(perm)), 0


batching.primitive_batchers[transpose_p] = _transpose_batch

# ---------------------------------------------------------------------------
# iota and full
# ---------------------------------------------------------------------------

iota_p = Primitive("iota")


@iota_p.def_impl
def _iota_impl(*, dtype, shape, dimension, sharding=None):
    ramp = np.arange(shape[dimension], dtype=dtype)
    view = [1] * len(shape)
    view[dimension] = shape[dimension]
    return np.broadcast_to(ramp.reshape(view), shape)


@iota_p.def_abstract_eval
def _iota_abstract_eval(*, dtype, shape, dimension, sharding=None):
    if not 0 <= dimension < len(shape):
        raise ValueError(f"iota dimension must be between 0 and len(shape), got "
                         f"dimension={dimension} for shape {tuple(shape)}")
    if not (dtypes.is_int(dtype) or dtypes.is_float(dtype)):
        raise TypeError(f"iota does not accept dtype {np.dtype(dtype).name}")
    return ShapedArray(shape, dtype)


ad.defjvp_zero(iota_p)


def iota(dtype, size: int):
    """``[0, 1, …, size-1]`` of ``dtype``."""
    return broadcasted_iota(dtype, (int(size),), 0)


def broadcasted_iota(dtype, shape: Sequence[int], dimension: int, sharding=None):
    """An array of ``shape`` whose values count along ``dimension``."""
    return iota_p.bind(dtype=dtypes.canonicalize_dtype(dtype),
                       shape=tuple(int(d) for d in shape), dimension=int(dimension),
                       sharding=None)


def full(shape: Sequence[int], fill_value: Any, dtype: Any = None, sharding=None):
    """An array of ``shape`` filled with ``fill_value`` (a broadcast scalar, no copy)."""
    from tinyjax.lax.elementwise import convert_element_type
    if type(shape) is not tuple:
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    if isinstance(fill_value, (bool, int, float)) and dtype is not None:
        if is_eager():  # no tracing needed: build it directly
            return on_default_device(wrap_eager(np.full(shape, fill_value,
                                                        dtypes.canonicalize_dtype(dtype))))
        return broadcast_in_dim(as_operand(fill_value, dtype, weak=False), shape, ())
    value = as_operand(fill_value)
    if get_aval(value).shape:
        raise TypeError(f"full must be called with scalar fill_value, got fill_value.shape "
                        f"{get_aval(value).shape}.")
    dt = get_aval(value).dtype if dtype is None else dtypes.canonicalize_dtype(dtype)
    weak = dtype is None and get_aval(value).weak_type
    from tinyjax.lax.elementwise import _convert_weak
    value = _convert_weak(value, dt, weak) if dtype is None else \
        convert_element_type(value, dt)
    return broadcast_in_dim(value, shape, ())
