"""Statistics of samples: ``mode``, ``rankdata``, ``sem``."""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.api import vmap
from tinyjax.lax._helpers import canonicalize_axis
from tinyjax.numpy._util import check_arraylike, promote_args_inexact

__all__ = ["ModeResult", "mode", "rankdata", "sem"]


class ModeResult(NamedTuple):
    """The most common values and how often they occur."""
    mode: Any
    count: Any


def _check_nan_policy(name: str, nan_policy: str) -> None:
    if nan_policy not in ("propagate", "omit", "raise"):
        raise ValueError(f"Illegal nan_policy value {nan_policy!r}; expected one of "
                         "{'propagate', 'omit', 'raise'}")
    if nan_policy == "omit":
        raise NotImplementedError(f"Logic for `nan_policy` of {nan_policy} is not implemented")
    if nan_policy == "raise":
        raise NotImplementedError(
            f"In order to best JIT compile `{name}`, we cannot know whether `x` contains "
            f"nans. Please check if nans exist in `x` outside of the `{name}` function.")


def mode(a: Any, axis: int | None = 0, nan_policy: str = "propagate",
         keepdims: bool = False) -> ModeResult:
    """The most common value along ``axis`` (the smallest of ties) and its count."""
    check_arraylike("mode", a)
    x = jnp.atleast_1d(a)
    _check_nan_policy("mode", nan_policy)
    if axis is not None:
        axis = canonicalize_axis(axis, x.ndim)
    shape = x.shape
    if keepdims:
        out_shape = tuple(1 for _ in shape) if axis is None else \
            tuple(1 if i == axis else s for i, s in enumerate(shape))
    else:
        out_shape = () if axis is None else tuple(s for i, s in enumerate(shape) if i != axis)
    if axis is None:
        axis, x = 0, x.ravel()

    def most_common(v):
        if v.size == 0:
            nan = jnp.array(np.nan, dtype=dtypes.default_float_dtype())
            return nan, jnp.array(0, dtype=dtypes.default_float_dtype())
        values, counts = jnp.unique(v, return_counts=True, size=v.size)
        return values[jnp.argmax(counts)], counts.max()
    x = jnp.moveaxis(x, axis, 0)
    x = x.reshape(x.shape[0], math.prod(x.shape[1:]))
    values, counts = vmap(most_common, in_axes=1)(x)
    return ModeResult(values.reshape(out_shape), counts.reshape(out_shape))


def _rank_vector(a: Any, method: str) -> Any:
    out_dtype = dtypes.default_float_dtype()
    order = jnp.arange(a.size)
    sorted_a, sorter = lax.sort_key_val(a, order)
    inverse = jnp.zeros_like(sorter).at[sorter].set(order)
    if method == "ordinal":
        return (inverse + 1).astype(out_dtype)
    new_value = jnp.concatenate([jnp.array([True]), sorted_a[1:] != sorted_a[:-1]])
    dense = jnp.cumsum(new_value)[inverse]
    if method == "dense":
        return dense.astype(out_dtype)
    starts = jnp.nonzero(new_value, size=a.size + 1, fill_value=a.size)[0].astype(out_dtype)
    if method == "max":
        return starts[dense]
    if method == "min":
        return starts[dense - 1] + 1
    return .5 * (starts[dense] + starts[dense - 1] + 1)


def rankdata(a: Any, method: str = "average", *, axis: int | None = None,
             nan_policy: str = "propagate") -> Any:
    """Ranks (from 1) of the data, ties resolved by ``method`` ("average", "min",
    "max", "dense" or "ordinal"); all NaN where the data has a NaN."""
    check_arraylike("rankdata", a)
    _check_nan_policy("rankdata", nan_policy)
    if method not in ("average", "min", "max", "dense", "ordinal"):
        raise ValueError(f"unknown method '{method}'")
    a = jnp.asarray(a)
    if axis is not None:
        axis = canonicalize_axis(axis, a.ndim)
        moved = jnp.moveaxis(a, axis, -1)
        flat = moved.reshape(-1, moved.shape[-1])
        ranks = vmap(lambda v: rankdata(v, method))(flat)
        return jnp.moveaxis(ranks.reshape(moved.shape), -1, axis)
    flat = jnp.ravel(a)
    ranks = _rank_vector(flat, method)
    return jnp.where(jnp.any(jnp.isnan(flat)), jnp.full_like(ranks, np.nan), ranks)


def sem(a: Any, axis: int | None = 0, ddof: int = 1, nan_policy: str = "propagate", *,
        keepdims: bool = False) -> Any:
    """The standard error of the mean, ``std(a, ddof) / sqrt(n)`` along ``axis``
    (``nan_policy="omit"`` leaves NaNs out)."""
    (b,) = promote_args_inexact("sem", a)
    if nan_policy == "propagate":
        size = b.size if axis is None else b.shape[axis]
        return b.std(axis, ddof=ddof, keepdims=keepdims) / jnp.sqrt(size).astype(b.dtype)
    if nan_policy == "omit":
        count = (~jnp.isnan(b)).sum(axis, keepdims=keepdims)
        return jnp.nanstd(b, axis, ddof=ddof, keepdims=keepdims) / \
            jnp.sqrt(count).astype(b.dtype)
    raise ValueError(f"{nan_policy} is not supported")
