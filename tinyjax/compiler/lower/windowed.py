"""Lowering rules of the windowed reductions (:mod:`tinyjax.lax.windowed`): windows as views
(no im2col buffer), reduced; max-pool gradients as reductions over windowed views."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.lower.slicing import c_strides, iota_along, pad_with_value
from tinyjax.compiler.ops import LazyOp, reduce_identity
from tinyjax.lax.windowed import (reduce_window_max_p, reduce_window_min_p, reduce_window_sum_p,
                                  select_and_gather_add_p, select_and_scatter_add_p)


def windows(x: LazyOp, axes: Sequence[int], ks, strides, dils) -> LazyOp:
    """View of ``x`` with each of ``axes`` (size L) replaced by its output positions
    ``n_out`` and window offsets appended at the end: ``y[..., o, ..., w] = x[..., o*s + w*d,
    ...]``.  Built from repeat (expand + reshape), shrink, reshape and stride: the trick that
    row ``w`` of a length-(L+d) reshape of L-periodic data starts at offset ``w*d``."""
    axes = list(axes)
    for j, (ax, k, s, d) in enumerate(zip(axes, ks, strides, dils)):
        nd = x.ndim
        L = x.shape[ax]
        n_out = (L - (d * (k - 1) + 1)) // s + 1
        order = [i for i in range(nd) if i != ax] + [ax]
        x = ops.permute(x, order)
        pre = list(x.shape[:-1])
        e = -(-k * (L + d) // L)
        x = ops.expand(ops.reshape(x, pre + [1, L]), pre + [e, L])
        x = ops.reshape(x, pre + [e * L])
        x = ops.shrink(x, [(0, s_) for s_ in pre] + [(0, k * (L + d))])
        x = ops.reshape(x, pre + [k, L + d])
        x = ops.shrink(x, [(0, s_) for s_ in pre] + [(0, k), (0, (n_out - 1) * s + 1)])
        x = ops.stride(x, [1] * len(pre) + [1, s])
        # axes now: pre (nd-1 of them, original order without ax), k, n_out -> put n_out
        # back at ax and k at the end
        back = list(range(ax)) + [nd] + list(range(ax, nd - 1)) + [nd - 1]
        x = ops.permute(x, back)
    return x


def _reduce_window(op: str):
    def rule(avals_in, avals_out, x, *, window_dimensions, window_strides, padding,
             base_dilation, window_dilation):
        out = avals_out[0]
        if 0 in out.shape or x.size == 0:
            return ops.const(reduce_identity(op, x.dtype), x.dtype, out.shape)
        ident = ops.const(reduce_identity(op, x.dtype), x.dtype, ())
        cfg = [(lo, hi, bd - 1) for (lo, hi), bd in zip(padding, base_dilation)]
        xp = pad_with_value(x, cfg, ident)
        w = windows(xp, range(x.ndim), window_dimensions, window_strides, window_dilation)
        red = ops.reduce(w, op, range(x.ndim, 2 * x.ndim))
        return ops.reshape(red, out.shape)
    return rule


for _p, _o in ((reduce_window_sum_p, "sum"), (reduce_window_max_p, "max"),
               (reduce_window_min_p, "min")):
    register_lowering(_p, _reduce_window(_o))


def _selection(x: LazyOp, select_prim, window_dimensions, window_strides, padding,
               base_dilation, window_dilation):
    """(index, has, geometry): per window, the row-major in-window index of the first
    maximum (``ge``) / minimum (``le``) of ``x`` over the real (non-padding) elements (0
    when nothing matches, as numpy's argmax of all-False), and whether the window holds
    any real element; ``geometry(y, fill)`` windows another operand the same way."""
    is_max = getattr(select_prim, "name", str(select_prim)) == "ge"
    nd = x.ndim
    cfg = [(lo, hi, bd - 1) for (lo, hi), bd in zip(padding, base_dilation)]

    def geometry(y: LazyOp, fill) -> LazyOp:
        yp = pad_with_value(y, cfg, ops.const(fill, y.dtype, ()))
        return windows(yp, range(nd), window_dimensions, window_strides, window_dilation)
    fill = reduce_identity("max" if is_max else "min", x.dtype)
    vals = geometry(x, fill)
    valid = geometry(ops.const(True, np.bool_, x.shape), False)
    full = vals.shape
    wax = tuple(range(nd, 2 * nd))
    best = ops.expand(ops.reduce(vals, "max" if is_max else "min", wax), full)
    hit = ops.alu("and", valid, ops.alu("eq", vals, best))
    W = int(np.prod(window_dimensions))
    widx = ops.const(0, np.int64, full)
    for j, st in enumerate(c_strides(tuple(window_dimensions))):
        widx = ops.alu("add", widx, ops.alu("mul", iota_along(full, nd + j),
                                            ops.const(st, np.int64, full)))
    first = ops.reduce(ops.where(hit, widx, ops.const(W, np.int64, full)), "min", wax)
    index = ops.where(ops.alu("eq", first, ops.const(W, np.int64, first.shape)),
                      ops.const(0, np.int64, first.shape), first)       # out + (1,)*nd
    sel = ops.alu("eq", widx, ops.expand(index, full))
    has = ops.reduce(ops.alu("and", sel, valid), "or", wax)
    return index, has, geometry, widx, sel


def _select_and_gather_add(avals_in, avals_out, tangents, operand, *, select_prim,
                           window_dimensions, window_strides, padding, base_dilation,
                           window_dilation):
    out = avals_out[0]
    if 0 in out.shape or operand.size == 0:
        return ops.const(0, tangents.dtype, out.shape)
    index, has, geometry, widx, sel = _selection(operand, select_prim, window_dimensions,
                                                 window_strides, padding, base_dilation,
                                                 window_dilation)
    t = geometry(tangents, 0)
    picked = ops.where(sel, t, ops.const(0, t.dtype, t.shape))
    if t.dtype == np.bool_:
        red = ops.reduce(picked, "or", range(operand.ndim, 2 * operand.ndim))
    else:
        red = ops.reduce(picked, "sum", range(operand.ndim, 2 * operand.ndim))
    return ops.reshape(red, out.shape)


register_lowering(select_and_gather_add_p, _select_and_gather_add)


def _select_and_scatter_add(avals_in, avals_out, source, operand, *, select_prim,
                            window_dimensions, window_strides, padding, base_dilation,
                            window_dilation):
    """Each window adds its source value at its selected operand element: the scatter kernel
    kind over the windows, offsets from the selected in-window index."""
    out = avals_out[0]
    if 0 in out.shape:
        return ops.const(0, source.dtype, out.shape)
    zeros = ops.const(0, source.dtype, operand.shape)
    if source.size == 0:
        return zeros
    index, has, _, _, _ = _selection(operand, select_prim, window_dimensions, window_strides,
                                     padding, base_dilation, window_dilation)
    oshape = source.shape
    index = ops.reshape(index, oshape)
    has = ops.reshape(has, oshape)
    offset = ops.const(0, np.int64, oshape)
    rest = index
    wst = c_strides(tuple(window_dimensions))
    for d, (st, n) in enumerate(zip(c_strides(operand.shape), operand.shape)):
        w = ops.alu("div", rest, ops.const(wst[d], np.int64, oshape))
        rest = ops.alu("rem", rest, ops.const(wst[d], np.int64, oshape))
        lo = padding[d][0]
        pos = ops.alu("add", ops.alu("mul", iota_along(oshape, d),
                                     ops.const(window_strides[d], np.int64, oshape)),
                      ops.alu("mul", w, ops.const(window_dilation[d], np.int64, oshape)))
        pos = ops.alu("sub", pos, ops.const(lo, np.int64, oshape))
        coord = ops.alu("div", pos, ops.const(base_dilation[d], np.int64, oshape))
        offset = ops.alu("add", offset, ops.alu("mul", coord, ops.const(st, np.int64, oshape)))
    return ops.scatter(zeros, offset, source, has, "add")


register_lowering(select_and_scatter_add_p, _select_and_scatter_add)
