"""Lowering rules of the slicing primitives (:mod:`tinyjax.lax.slicing`): static slices, pads
and concatenation as views; dynamic slices as data-dependent reads (DLOAD, the gather
kernel kind)."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.ops import LazyOp
from tinyjax.lax.slicing import (concatenate_p, dynamic_slice_p, dynamic_update_slice_p, pad_p,
                                 rev_p, slice_p, split_p, squeeze_p)


def _to_out_shape(avals_in, avals_out, x, **params):
    return ops.reshape(x, avals_out[0].shape)


register_lowering(squeeze_p, _to_out_shape)


def _rev(avals_in, avals_out, x, *, dimensions):
    return ops.flip(x, dimensions)


register_lowering(rev_p, _rev)


def _slice(avals_in, avals_out, x, *, start_indices, limit_indices, strides=None):
    x = ops.shrink(x, list(zip(start_indices, limit_indices)))
    return ops.stride(x, strides) if strides else x


register_lowering(slice_p, _slice)


def pad_with_value(x: LazyOp, padding_config, value: LazyOp) -> LazyOp:
    """lax.pad: low/high (possibly negative) and interior padding, as views of ``x`` and of a
    "valid" mask (a padded view of a constant true) selecting ``value`` elsewhere."""
    def views(y: LazyOp) -> LazyOp:
        for ax, (lo, hi, interior) in enumerate(padding_config):
            if interior:
                n = y.shape[ax]
                sh = list(y.shape)
                y = ops.reshape(y, sh[:ax + 1] + [1] + sh[ax + 1:])
                cfg = [(0, 0)] * y.ndim
                cfg[ax + 1] = (0, interior)
                y = ops.pad(y, cfg)
                y = ops.reshape(y, sh[:ax] + [n * (interior + 1)] + sh[ax + 1:])
                cut = [(0, s) for s in y.shape]
                cut[ax] = (0, n * (interior + 1) - interior) if n else (0, 0)
                y = ops.shrink(y, cut)
            padc = [(0, 0)] * y.ndim
            padc[ax] = (max(lo, 0), max(hi, 0))
            y = ops.pad(y, padc)
            cut = [(0, s) for s in y.shape]
            cut[ax] = (-min(lo, 0), y.shape[ax] + min(hi, 0))
            y = ops.shrink(y, cut)
        return y
    body = views(x)
    if value.op == "CONST" and value.arg == 0:
        return body
    mask = views(ops.const(True, np.bool_, x.shape))
    return ops.where(mask, body, ops.broadcast_to(value, body.shape))


def _pad(avals_in, avals_out, x, padding_value, *, padding_config):
    return pad_with_value(x, padding_config, padding_value)


register_lowering(pad_p, _pad)


def _concatenate(avals_in, avals_out, *xs, dimension):
    total = avals_out[0].shape[dimension]
    out, start = None, 0
    for x in xs:
        n = x.shape[dimension]
        cfg = [(0, 0)] * x.ndim
        cfg[dimension] = (start, total - start - n)
        start += n
        if n == 0:
            continue
        y = ops.pad(x, cfg)
        if x.dtype == np.bool_:
            out = y if out is None else ops.alu("or", out, y)
        else:
            out = y if out is None else ops.alu("add", out, y)
    return out if out is not None else ops.const(0, avals_out[0].dtype, avals_out[0].shape)


register_lowering(concatenate_p, _concatenate)


def _split(avals_in, avals_out, x, *, sizes, axis):
    outs, start = [], 0
    for n in sizes:
        cut = [(0, s) for s in x.shape]
        cut[axis] = (start, start + n)
        outs.append(ops.shrink(x, cut))
        start += n
    return outs


register_lowering(split_p, _split)


def iota_along(shape, k) -> LazyOp:
    n = shape[k]
    view = [1] * len(shape)
    view[k] = n
    return ops.expand(ops.reshape(ops.idx(n, np.int64), view), shape)


def scalar_clamped(s: LazyOp, hi: int, shape) -> LazyOp:
    s = ops.cast(s, np.int64)
    s = ops.alu("min", ops.alu("max", s, ops.const(0, np.int64)), ops.const(max(hi, 0), np.int64))
    return ops.broadcast_to(s, shape)


def c_strides(shape):
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


def _dynamic_slice(avals_in, avals_out, x, *starts, slice_sizes):
    shape = tuple(slice_sizes)
    if 0 in shape:
        return ops.const(0, x.dtype, shape)
    off = ops.const(0, np.int64, shape)
    for k, (s, d, n, st) in enumerate(zip(starts, x.shape, shape, c_strides(x.shape))):
        pos = ops.alu("add", scalar_clamped(s, d - n, shape), iota_along(shape, k))
        off = ops.alu("add", off, ops.alu("mul", pos, ops.const(st, np.int64, shape)))
    return ops.dload(x, off)


register_lowering(dynamic_slice_p, _dynamic_slice)


def _dynamic_update_slice(avals_in, avals_out, x, update, *starts):
    shape = x.shape
    if update.size == 0:
        return x
    inside = ops.const(True, np.bool_, shape)
    off = ops.const(0, np.int64, shape)
    for k, (s, d, n, st) in enumerate(zip(starts, shape, update.shape, c_strides(update.shape))):
        rel = ops.alu("sub", iota_along(shape, k), scalar_clamped(s, d - n, shape))
        ok = ops.alu("and", ops.alu("ge", rel, ops.const(0, np.int64, shape)),
                     ops.alu("lt", rel, ops.const(n, np.int64, shape)))
        inside = ops.alu("and", inside, ok)
        rel = ops.alu("min", ops.alu("max", rel, ops.const(0, np.int64, shape)),
                      ops.const(n - 1, np.int64, shape))
        off = ops.alu("add", off, ops.alu("mul", rel, ops.const(st, np.int64, shape)))
    return ops.where(inside, ops.dload(update, off), x)


register_lowering(dynamic_update_slice_p, _dynamic_update_slice)
