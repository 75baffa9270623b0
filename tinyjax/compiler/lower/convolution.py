"""Lowering rule of ``conv_general_dilated`` (:mod:`tinyjax.lax.convolution`): a padded,
dilated, windowed view of the input times an expanded view of the kernel, summed."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.dot import accumulation_dtype, allow_tf32
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.compiler.lower.slicing import pad_with_value
from tinyjax.compiler.lower.windowed import windows
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
    # full: N, G, Og, *o, Cg, *k
    xw = ops.reshape(xw, [N, G, Cg] + osp + list(ks))
    xw = ops.permute(xw, [0, 1] + list(range(3, 3 + nsp)) + [2] + list(range(3 + nsp, 3 + 2 * nsp)))
    full = [N, G, Og] + osp + [Cg] + list(ks)
    xw = ops.expand(ops.reshape(xw, [N, G, 1] + osp + [Cg] + list(ks)), full)
    ww = ops.reshape(w, [1, G, Og] + [1] * nsp + [Cg] + list(ks))
    ww = ops.expand(ww, full)
    red = ops.reduce(ops.alu("mul", xw, ww), "sum", range(3 + nsp, len(full)),
                     allow_tf32=acc == np.float32 and allow_tf32(precision))
    y = ops.cast(ops.reshape(red, [N, O] + osp), dt)    # N, O, *o (logical)
    return ops.permute(y, list(np.argsort(out_spec)))


register_lowering(conv_general_dilated_p, _conv)
