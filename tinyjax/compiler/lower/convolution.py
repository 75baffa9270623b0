"""Lowering rule of ``conv_general_dilated`` (:mod:`tinyjax.lax.convolution`): a padded,
dilated, windowed view of the input times an expanded view of the kernel, summed.

An input dilated by ``d`` along an axis (the gradient of a strided convolution with respect
to its input) is mostly zeros: of the window's taps only every ``d``-th meets an input value,
and which ones depends on the output position modulo ``d``.  Such an axis is split into its
``d`` phases -- the outputs at ``o0, o0 + d, ...`` are a convolution of the undilated input
with the taps ``t0, t0 + d, ...`` of the kernel -- and the phases interleaved again, so the
products multiply no zeros (half the work at stride 2)."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.dot import accumulation_dtype, allow_tf32
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.lower.slicing import pad_with_value
from tinyjax.compiler.lower.windowed import windows
from tinyjax.core import ShapedArray
from tinyjax.lax.convolution import conv_general_dilated_p


def _conv(avals_in, avals_out, lhs, rhs, *, window_strides, padding, lhs_dilation,
          rhs_dilation, dimension_numbers, feature_group_count, batch_group_count,
          precision=None, preferred_element_type=None):
    """Padded, dilated, windowed view of lhs times an expanded view of rhs, summed over
    (input channels, window): one reduce kernel."""
    if batch_group_count != 1:
        raise NotImplementedError("no lowering for primitive 'conv_general_dilated' with "
                                  "batch_group_count > 1")
    out = avals_out[0]
    dt = np.dtype(out.dtype)
    if dt == np.bool_:
        raise NotImplementedError("no lowering for primitive 'conv_general_dilated' on booleans")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                  feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                  precision=precision, preferred_element_type=preferred_element_type)
    phased = next((j for j, d in enumerate(lhs_dilation) if d > 1 and window_strides[j] == 1
                   and rhs_dilation[j] == 1 and 0 not in out.shape), None)
    if phased is not None:
        return _phases(out, lhs, rhs, phased, params)
    acc = accumulation_dtype(lhs.dtype, rhs.dtype, dt)
    x = ops.cast(ops.permute(lhs, lhs_spec), acc)      # N, C, *sp
    w = ops.cast(ops.permute(rhs, rhs_spec), acc)      # O, I, *k
    nsp = x.ndim - 2
    if 0 in out.shape:
        return ops.const(0, dt, out.shape)
    cfg = [(0, 0, 0), (0, 0, 0)] + [(lo, hi, d - 1) for (lo, hi), d in zip(padding, lhs_dilation)]
    x = pad_with_value(x, cfg, ops.const(0, acc, ()))
    ks = w.shape[2:]
    xw = windows(x, range(2, 2 + nsp), ks, window_strides, rhs_dilation)  # N, C, *o, *k
    N = xw.shape[0]
    osp = list(xw.shape[2:2 + nsp])
    G = feature_group_count
    O, Cg = w.shape[0], w.shape[1]
    Og = O // G
    # The product's loop space: the output's axes in the output's own order (its features
    # as groups x features per group), then the reduced input features and window; the
    # result is then laid out as the output is (NWC written as NWC, read without strides).
    out_dims = [int(d) for d in np.argsort(out_spec)]   # 0 batch, 1 features, 2+j spatial j
    # the reduced axes in the input's order: its features last where they are last in
    # memory (NWC), so that a window's innermost reduced axis reads consecutive elements
    chan_last = lhs_spec[1] > max(lhs_spec[2:]) if nsp else False
    red_x = (list(range(3 + nsp, 3 + 2 * nsp)) + [2] if chan_last
             else [2] + list(range(3 + nsp, 3 + 2 * nsp)))
    red_sizes = list(ks) + [Cg] if chan_last else [Cg] + list(ks)
    xw = ops.reshape(xw, [N, G, Cg] + osp + list(ks))   # N, G, Cg, *o, *k
    place = {0: [0], 1: [1], **{2 + j: [3 + j] for j in range(nsp)}}
    xw = ops.permute(xw, [a for d in out_dims for a in place[d]] + red_x)
    sizes = {0: [N], 1: [G, Og], **{2 + j: [osp[j]] for j in range(nsp)}}
    full = [n for d in out_dims for n in sizes[d]] + red_sizes
    ones = {0: [N], 1: [G, 1], **{2 + j: [osp[j]] for j in range(nsp)}}
    xw = ops.expand(ops.reshape(xw, [n for d in out_dims for n in ones[d]] + red_sizes), full)
    w = ops.reshape(w, [G, Og, Cg] + list(ks))
    if chan_last:
        w = ops.permute(w, [0, 1] + list(range(3, 3 + nsp)) + [2])
    wsizes = {0: [1], 1: [G, Og], **{2 + j: [1] for j in range(nsp)}}
    ww = ops.reshape(w, [n for d in out_dims for n in wsizes[d]] + red_sizes)
    ww = ops.expand(ww, full)
    nout = len(full) - 1 - nsp
    red = ops.reduce(ops.alu("mul", xw, ww), "sum", range(nout, len(full)),
                     allow_tf32=acc == np.float32 and allow_tf32(precision))
    return ops.cast(ops.reshape(red, list(out.shape)), dt)


def _phases(out, lhs, rhs, j: int, params: dict):
    """The convolution with spatial axis ``j``'s input dilation ``d`` split into its ``d``
    phases (see the module docstring); each phase is a convolution without that dilation,
    written into every ``d``-th output position."""
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    d = params["lhs_dilation"][j]
    lo = params["padding"][j][0]
    L = lhs.shape[lhs_spec[2 + j]]
    kax, oax = rhs_spec[2 + j], out_spec[2 + j]
    k, n_out = rhs.shape[kax], out.shape[oax]
    total = None
    for o0 in range(min(d, n_out)):
        t0 = (lo - o0) % d                # the first tap meeting an input value
        n_p = len(range(o0, n_out, d))
        taps = len(range(t0, k, d))
        if taps == 0:
            continue                      # these outputs see only the dilation's zeros
        c = (o0 + t0 - lo) // d           # input position of output o0's tap t0
        cut = [(0, n) for n in rhs.shape]
        cut[kax] = (t0, t0 + d * (taps - 1) + 1)
        steps = [1] * rhs.ndim
        steps[kax] = d
        w = ops.stride(ops.shrink(rhs, cut), steps)
        sub = dict(params, lhs_dilation=tuple(1 if i == j else x for i, x in
                                               enumerate(params["lhs_dilation"])),
                   padding=tuple((-c, n_p + taps - 1 - L + c) if i == j else pd
                                 for i, pd in enumerate(params["padding"])))
        shape = list(out.shape)
        shape[oax] = n_p
        y = _conv(None, [ShapedArray(tuple(shape), out.dtype)], lhs, w, **sub)
        cfg = [(0, 0, 0)] * y.ndim
        cfg[oax] = (o0, n_out - 1 - (o0 + d * (n_p - 1)), d - 1)
        y = pad_with_value(y, cfg, ops.const(0, y.dtype, ()))
        total = y if total is None else ops.alu("add", total, y)
    if total is None:                     # no output meets an input value
        return ops.const(0, out.dtype, out.shape)
    return total


register_lowering(conv_general_dilated_p, _conv)
