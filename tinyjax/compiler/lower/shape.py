"""Lowering rules of the shape primitives (:mod:`tinyjax.lax.shape`): movement ops, which
fold into views, and iota."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import check_dtype, register_lowering
from tinyjax.lax.shape import broadcast_in_dim_p, iota_p, reshape_p, transpose_p


def _broadcast_in_dim(avals_in, avals_out, x, *, shape, broadcast_dimensions, **params):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return ops.expand(ops.reshape(x, expanded), shape)


register_lowering(broadcast_in_dim_p, _broadcast_in_dim)


def _reshape(avals_in, avals_out, x, *, new_sizes, dimensions=None, **params):
    if dimensions is not None:
        x = ops.permute(x, dimensions)
    return ops.reshape(x, new_sizes)


register_lowering(reshape_p, _reshape)


def _transpose(avals_in, avals_out, x, *, permutation):
    return ops.permute(x, permutation)


register_lowering(transpose_p, _transpose)


def _iota(avals_in, avals_out, *, dtype, shape, dimension, **params):
    n = shape[dimension]
    ramp = ops.cast(ops.idx(n, np.int64 if n > 2**31 - 1 else np.int32), check_dtype(dtype))
    view = [1] * len(shape)
    view[dimension] = n
    return ops.expand(ops.reshape(ramp, view), shape)


register_lowering(iota_p, _iota)
