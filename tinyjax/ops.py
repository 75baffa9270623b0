"""``jax.ops``: reductions over segments -- ``out[s]`` combines the rows of ``data`` whose
``segment_ids`` entry is ``s`` (a scatter into ``num_segments`` rows; ids out of range
are dropped, and an empty segment holds the reduction's identity)."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.core import Tracer

__all__ = ["segment_sum", "segment_max", "segment_min", "segment_prod"]


def _identity(kind: str, dtype: np.dtype) -> Any:
    if kind in ("add",):
        return 0
    if kind == "multiply":
        return 1
    if dtypes.issubdtype(dtype, np.inexact):
        return -np.inf if kind == "max" else np.inf
    if dtype == np.bool_:
        return kind == "min"
    info = np.iinfo(dtype)
    return info.min if kind == "max" else info.max


def _segment(kind: str, name: str, data: Any, segment_ids: Any, num_segments: int | None,
             indices_are_sorted: bool, unique_indices: bool, bucket_size: int | None,
             mode: Any) -> Any:
    data, segment_ids = jnp.asarray(data), jnp.asarray(segment_ids)
    if not dtypes.issubdtype(segment_ids.dtype, np.integer):
        raise TypeError(f"{name}: segment_ids must be integers, got {segment_ids.dtype}")
    if segment_ids.ndim != 1 or segment_ids.shape[0] != (data.shape[0] if data.ndim else -1):
        raise ValueError(f"{name}: segment_ids must be a 1-D array with one id per row of "
                         f"data, got shapes {segment_ids.shape} and {data.shape}")
    if num_segments is None:
        if isinstance(segment_ids, Tracer) and segment_ids.to_concrete_value() is None:
            raise ValueError(f"{name}: num_segments must be given when segment_ids are "
                             "traced (jit); it fixes the output's shape")
        num_segments = int(np.max(np.asarray(segment_ids))) + 1 if segment_ids.size else 0
    num_segments = int(num_segments)
    init = jnp.full((num_segments,) + data.shape[1:], _identity(kind, data.dtype), data.dtype)
    mode = "drop" if mode is None else mode
    # a negative id is out of range too (an index would count it from the end)
    ref = init.at[jnp.where(segment_ids < 0, num_segments, segment_ids)]
    return getattr(ref, kind)(data, mode=mode, indices_are_sorted=indices_are_sorted,
                              unique_indices=unique_indices)


def segment_sum(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The sum of the rows of ``data`` in each segment."""
    return _segment("add", "segment_sum", data, segment_ids, num_segments,
                    indices_are_sorted, unique_indices, bucket_size, mode)


def segment_prod(data: Any, segment_ids: Any, num_segments: int | None = None,
                 indices_are_sorted: bool = False, unique_indices: bool = False,
                 bucket_size: int | None = None, mode: Any = None) -> Any:
    """The product of the rows of ``data`` in each segment."""
    return _segment("multiply", "segment_prod", data, segment_ids, num_segments,
                    indices_are_sorted, unique_indices, bucket_size, mode)


def segment_max(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The maximum of the rows of ``data`` in each segment (-inf, or the dtype's
    minimum, for an empty one)."""
    return _segment("max", "segment_max", data, segment_ids, num_segments,
                    indices_are_sorted, unique_indices, bucket_size, mode)


def segment_min(data: Any, segment_ids: Any, num_segments: int | None = None,
                indices_are_sorted: bool = False, unique_indices: bool = False,
                bucket_size: int | None = None, mode: Any = None) -> Any:
    """The minimum of the rows of ``data`` in each segment (inf, or the dtype's maximum,
    for an empty one)."""
    return _segment("min", "segment_min", data, segment_ids, num_segments,
                    indices_are_sorted, unique_indices, bucket_size, mode)
