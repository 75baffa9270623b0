"""Random orders and selections: ``permutation`` and ``choice``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.random._bits import random_bits, split_data
from tinyjax.random._continuous import gumbel_draws
from tinyjax.random._discrete import randint
from tinyjax.random._keys import key_data_of
from tinyjax.random._uniform import uniform_draws
from tinyjax.random._util import bcast, canonical_shape, const

__all__ = ["choice", "permutation"]


def _shuffle(data: Any, x: Any, axis: int) -> Any:
    """Shuffle along ``axis`` by sorting on random 32-bit keys, repeated enough times
    that ties (which would bias the order) are improbable."""
    size = get_aval(x).size
    num_rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(num_rounds):
        k = split_data(data, (2,))
        data, sub = lax.index_in_dim(k, 0, 0, False), lax.index_in_dim(k, 1, 0, False)
        sort_keys = random_bits(sub, 32, get_aval(x).shape)
        _, x = lax.sort_key_val(sort_keys, x, axis)
    return x


def permutation(key: Any, x: Any, axis: int = 0, independent: bool = False) -> Any:
    """A random permutation of ``range(x)`` (integer ``x``) or of ``x`` along ``axis``
    (every slice independently when ``independent``)."""
    data, _ = key_data_of(key, "permutation")
    if isinstance(x, (int, np.integer)) or (hasattr(x, "shape") and not np.shape(x)):
        x_op = as_operand(x)
        if not dtypes.is_int(get_aval(x_op).dtype):
            raise TypeError("x must be an integer or at least 1-dimensional")
        return _shuffle(data, lax.iota(dtypes.canonicalize_dtype(np.int64), int(x_op)), 0)
    x = jnp.asarray(x)
    ndim = get_aval(x).ndim
    if ndim == 0:
        raise TypeError("x must be an integer or at least 1-dimensional")
    axis = axis + ndim if axis < 0 else axis
    if not 0 <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    if independent or ndim == 1:
        return _shuffle(data, x, axis)
    n = get_aval(x).shape[axis]
    ind = _shuffle(data, lax.iota(dtypes.canonicalize_dtype(np.int64), n), 0)
    return jnp.take(x, ind, axis, unique_indices=True)


def choice(key: Any, a: Any, shape: Sequence[int] = (), replace: bool = True,
           p: Any = None, axis: int = 0, mode: str | None = None) -> Any:
    """Random draws from ``a`` (an array, or ``range(a)`` for an integer), with or
    without replacement, uniformly or with probabilities ``p`` (``mode`` is
    :func:`gumbel`'s, for weighted draws without replacement)."""
    data, _ = key_data_of(key, "choice")
    if not isinstance(shape, Sequence):
        raise TypeError("shape argument of jax.random.choice must be a sequence, "
                        f"got {shape}")
    shape = canonical_shape(shape)
    arr = jnp.asarray(a)
    if get_aval(arr).ndim == 0:
        n_inputs = int(a)
    else:
        axis = axis + get_aval(arr).ndim if axis < 0 else axis
        n_inputs = get_aval(arr).shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return jnp.zeros(shape, dtype=get_aval(arr).dtype)
    if n_inputs <= 0:
        raise ValueError("a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"Cannot take a larger sample (size {n_draws}) than population "
                         f"(size {n_inputs}) when 'replace=False'")
    int_dt = dtypes.canonicalize_dtype(np.int64)
    scalar = get_aval(arr).ndim == 0
    if p is None:
        if replace:
            ind = randint(data, shape, 0, n_inputs)
            result = ind if scalar else jnp.take(arr, ind, axis)
        else:
            perm = permutation(data, n_inputs if scalar else arr, axis)
            result = lax.slice_in_dim(perm, 0, n_draws, 1, 0 if scalar else axis)
    else:
        p_arr = as_operand(p)
        if not dtypes.is_float(get_aval(p_arr).dtype):
            p_arr = lax.convert_element_type(p_arr, dtypes.canonicalize_dtype(np.float64))
        if get_aval(p_arr).shape != (n_inputs,):
            raise ValueError("p must be None or match the shape of a")
        pdt = get_aval(p_arr).dtype
        if replace:
            p_cuml = lax.cumsum(p_arr, 0)
            total = lax.index_in_dim(p_cuml, n_inputs - 1, 0, False)
            u = as_operand(uniform_draws(data, shape, pdt, 0.0, 1.0))
            r = lax.mul(bcast(total, shape), lax.sub(const(pdt, 1.0), u))
            # searchsorted (side='left'): the number of cumulative sums below r
            below = lax.lt(lax.broadcast_in_dim(p_cuml, shape + (n_inputs,), (len(shape),)),
                           lax.broadcast_in_dim(r, shape + (n_inputs,),
                                                tuple(range(len(shape)))))
            ind = lax.reduce_sum(lax.convert_element_type(below, int_dt), (len(shape),))
        else:
            g = lax.add(gumbel_draws(data, (n_inputs,), pdt, mode or "low"), lax.log(p_arr))
            ind = lax.convert_element_type(lax.top_k(g, n_draws)[1], int_dt)
        result = ind if scalar else jnp.take(arr, ind, axis)
    ashape = get_aval(arr).shape
    return lax.reshape(result, shape if scalar else
                       ashape[:axis] + tuple(shape) + ashape[axis + 1:])

