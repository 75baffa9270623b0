"""``jax.nn.initializers``: functions ``init(key, shape, dtype=float) -> Array``.

Same constructors, defaults and formulas as ``jax/_src/nn/initializers.py``, so that
with tinyjax.random's bit-exact threefry they draw the same numbers as JAX.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.lax.sharding_constraint import with_out_sharding

__all__ = ["constant", "delta_orthogonal", "glorot_normal", "glorot_uniform", "he_normal",
           "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal",
           "lecun_uniform", "normal", "ones", "orthogonal", "truncated_normal", "uniform",
           "variance_scaling", "xavier_normal", "xavier_uniform", "zeros"]

Initializer = Callable[..., Any]

# JAX's default ``dtype=jnp.float_`` (float64), canonicalised when called: float32,
# or float64 under jax_enable_x64.
_float = np.float64


def _canon_shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(d) for d in shape)


def _random():
    from tinyjax import random
    return random


@with_out_sharding
def zeros(key: Any, shape: Sequence[int], dtype: Any = _float) -> Any:
    """An initializer that returns an array of zeros."""
    return jnp.zeros(_canon_shape(shape), dtypes.canonicalize_dtype(dtype))


@with_out_sharding
def ones(key: Any, shape: Sequence[int], dtype: Any = _float) -> Any:
    """An initializer that returns an array of ones."""
    return jnp.ones(_canon_shape(shape), dtypes.canonicalize_dtype(dtype))


def constant(value: Any, dtype: Any = _float) -> Initializer:
    """An initializer that fills the array with ``value``."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        return jnp.full(_canon_shape(shape), value, dtype=dtypes.canonicalize_dtype(dtype))
    return init


def uniform(scale: Any = 1e-2, dtype: Any = _float) -> Initializer:
    """Samples uniformly from ``[0, scale)``."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        dtype = dtypes.canonicalize_dtype(dtype)
        return _random().uniform(key, _canon_shape(shape), dtype) * jnp.array(scale, dtype)
    return init


def normal(stddev: Any = 1e-2, dtype: Any = _float) -> Initializer:
    """Samples from a centred normal with standard deviation ``stddev``."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        dtype = dtypes.canonicalize_dtype(dtype)
        return _random().normal(key, _canon_shape(shape), dtype) * jnp.array(stddev, dtype)
    return init


def truncated_normal(stddev: Any = 1e-2, dtype: Any = _float, lower: Any = -2.0,
                     upper: Any = 2.0) -> Initializer:
    """Samples a standard normal truncated to ``(lower, upper)``, times ``stddev``
    (so the result's standard deviation is below ``stddev``, as in JAX)."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        dtype = dtypes.canonicalize_dtype(dtype)
        return _random().truncated_normal(key, lower, upper, _canon_shape(shape),
                                          dtype) * jnp.array(stddev, dtype)
    return init


def _axis_size(shape: tuple[int, ...], axis: int | Sequence[int]) -> int:
    if isinstance(axis, int):
        return shape[axis]
    return math.prod(shape[i] for i in axis)


def _compute_fans(shape: tuple[int, ...], in_axis: int | Sequence[int] = -2,
                  out_axis: int | Sequence[int] = -1,
                  batch_axis: int | Sequence[int] = ()) -> tuple[float, float]:
    """(fan_in, fan_out): the in/out axis sizes times the receptive field size (the
    product of the dimensions that are neither in, out nor batch axes)."""
    if len(shape) <= 1:
        raise ValueError(f"Can't compute input and output sizes of a {len(shape)}"
                         "-dimensional weights tensor. Must be at least 2D.")
    in_size = _axis_size(shape, in_axis)
    out_size = _axis_size(shape, out_axis)
    batch_size = _axis_size(shape, batch_axis)
    receptive_field_size = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive_field_size, out_size * receptive_field_size


# The standard deviation of a standard normal truncated to (-2, 2).
_TRUNCATED_NORMAL_STDDEV = .87962566103423978


def variance_scaling(scale: Any, mode: str, distribution: str,
                     in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                     batch_axis: int | Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """Samples with variance ``scale / n``, ``n`` the fan in, fan out or their mean
    (``mode`` "fan_in", "fan_out", "fan_avg"), from a "truncated_normal", "normal" or
    "uniform" ``distribution``."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        shape = _canon_shape(shape)
        dtype = dtypes.canonicalize_dtype(dtype)
        fan_in, fan_out = _compute_fans(shape, in_axis, out_axis, batch_axis)
        if mode == "fan_in":
            denominator = fan_in
        elif mode == "fan_out":
            denominator = fan_out
        elif mode == "fan_avg":
            denominator = (fan_in + fan_out) / 2
        else:
            raise ValueError(f"invalid mode for variance scaling initializer: {mode}")
        variance = jnp.array(scale / denominator, dtype=dtype)
        random = _random()
        if distribution == "truncated_normal":
            stddev = jnp.sqrt(variance) / jnp.array(_TRUNCATED_NORMAL_STDDEV, dtype)
            return random.truncated_normal(key, -2, 2, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * jnp.sqrt(variance)
        if distribution == "uniform":
            return random.uniform(key, shape, dtype, -1) * jnp.sqrt(3 * variance)
        raise ValueError("invalid distribution for variance scaling initializer: "
                         f"{distribution}")
    return init


def glorot_uniform(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                   batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """Glorot (Xavier) uniform: ``variance_scaling(1.0, "fan_avg", "uniform")``."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis=in_axis, out_axis=out_axis,
                            batch_axis=batch_axis, dtype=dtype)


def glorot_normal(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                  batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """Glorot (Xavier) normal: ``variance_scaling(1.0, "fan_avg", "truncated_normal")``."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis=in_axis,
                            out_axis=out_axis, batch_axis=batch_axis, dtype=dtype)


def lecun_uniform(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                  batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """LeCun uniform: ``variance_scaling(1.0, "fan_in", "uniform")``."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis=in_axis, out_axis=out_axis,
                            batch_axis=batch_axis, dtype=dtype)


def lecun_normal(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
                 batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """LeCun normal: ``variance_scaling(1.0, "fan_in", "truncated_normal")``."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=in_axis,
                            out_axis=out_axis, batch_axis=batch_axis, dtype=dtype)


def he_uniform(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
               batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """He (Kaiming) uniform: ``variance_scaling(2.0, "fan_in", "uniform")``."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis=in_axis, out_axis=out_axis,
                            batch_axis=batch_axis, dtype=dtype)


def he_normal(in_axis: int | Sequence[int] = -2, out_axis: int | Sequence[int] = -1,
              batch_axis: Sequence[int] = (), dtype: Any = _float) -> Initializer:
    """He (Kaiming) normal: ``variance_scaling(2.0, "fan_in", "truncated_normal")``."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis=in_axis,
                            out_axis=out_axis, batch_axis=batch_axis, dtype=dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


def orthogonal(scale: Any = 1.0, column_axis: int = -1, dtype: Any = _float) -> Initializer:
    """A uniformly random orthogonal matrix (orthonormal columns, or rows when there
    are fewer rows than columns) reshaped to ``shape``, times ``scale``.

    The matrix is ``shape[column_axis]`` columns by the product of the other
    dimensions rows; JAX's Q factor with positive-diagonal R of one normal draw,
    which is what ``random.orthogonal`` computes.
    """
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        shape = _canon_shape(shape)
        dtype = dtypes.canonicalize_dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        n_rows, n_cols = math.prod(shape) // shape[column_axis], shape[column_axis]
        q = _random().orthogonal(key, n_rows, (), dtype, m=n_cols)
        q = jnp.reshape(q, tuple(np.delete(shape, column_axis)) + (shape[column_axis],))
        q = jnp.moveaxis(q, -1, column_axis)
        return jnp.array(scale, dtype) * q
    return init


def delta_orthogonal(scale: Any = 1.0, column_axis: int = -1,
                     dtype: Any = _float) -> Initializer:
    """Delta-orthogonal convolution kernels (Xiao et al., 2018): zero except for an
    orthogonal matrix at the spatial centre. Shapes are 3D, 4D or 5D with the two
    channel dimensions last and ``shape[-2] <= shape[-1]``."""
    @with_out_sharding
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype) -> Any:
        shape = _canon_shape(shape)
        dtype = dtypes.canonicalize_dtype(dtype)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
        if shape[-1] < shape[-2]:
            raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
        ortho_matrix = orthogonal(scale=scale, column_axis=column_axis,
                                  dtype=dtype)(key, shape[-2:])
        w = jnp.zeros(shape, dtype=dtype)
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return w.at[centre].set(ortho_matrix)
    return init
