"""Convolutions written with ``conv_general_dilated``: ``conv_transpose`` (the gradient of
a strided convolution as a forward op), ``conv_general_dilated_patches`` (the receptive
fields as channels), ``conv_general_dilated_local`` (a convolution with a separate
kernel per output position), and the shape helpers of JAX's lax."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.convolution import (ConvDimensionNumbers, conv_dimension_numbers,
                                     conv_general_dilated, conv_shape_tuple, padtype_to_pads)
from tinyjax.lax.dot import dot_general
from tinyjax.lax.shape import transpose
from tinyjax.lax.slicing import rev

__all__ = ["ConvGeneralDilatedDimensionNumbers", "conv_transpose",
           "conv_general_dilated_patches", "conv_general_dilated_local",
           "conv_general_shape_tuple", "conv_transpose_shape_tuple"]

ConvGeneralDilatedDimensionNumbers = Any  # (str, str, str), ConvDimensionNumbers or None


def _transpose_padding(k: int, s: int, padding: str) -> tuple[int, int]:
    """The padding of the dilated-input convolution that transposes a strided one."""
    if padding == "SAME":
        pad_len = k + s - 2
        pad_a = k - 1 if s > k - 1 else int(np.ceil(pad_len / 2))
    elif padding == "VALID":
        pad_len = k + s - 2 + max(k - s, 0)
        pad_a = k - 1
    else:
        raise ValueError("Padding mode must be `SAME` or `VALID`.")
    return pad_a, pad_len - pad_a


def conv_transpose(lhs: Any, rhs: Any, strides: Sequence[int], padding: Any,
                   rhs_dilation: Sequence[int] | None = None, dimension_numbers: Any = None,
                   transpose_kernel: bool = False, precision: Any = None,
                   preferred_element_type: Any = None) -> Any:
    """The transpose of a strided convolution: ``lhs`` dilated by ``strides`` and
    convolved with ``rhs`` (flipped and with its feature axes swapped when
    ``transpose_kernel``, making it the exact gradient of ``conv_general_dilated``)."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    lshape, rshape = get_aval(lhs).shape, get_aval(rhs).shape
    nd = len(lshape)
    if dimension_numbers is None:
        dimension_numbers = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"),
                             5: ("NHWDC", "HWDIO", "NHWDC")}.get(nd)
        if dimension_numbers is None:
            raise ValueError("No 4+ dimensional dimension_number defaults.")
    dn = conv_dimension_numbers(lshape, rshape, dimension_numbers)
    spatial = [rshape[i] for i in dn.rhs_spec[2:]]
    rhs_dilation = (1,) * len(spatial) if rhs_dilation is None else tuple(rhs_dilation)
    effective = [(k - 1) * d + 1 for k, d in zip(spatial, rhs_dilation)]
    if isinstance(padding, str):
        pads = [_transpose_padding(k, s, padding) for k, s in zip(effective, strides)]
    else:
        pads = [tuple(p) for p in padding]
    if transpose_kernel:
        rhs = rev(rhs, tuple(dn.rhs_spec[2:]))
        perm = list(range(len(rshape)))
        perm[dn.rhs_spec[0]], perm[dn.rhs_spec[1]] = perm[dn.rhs_spec[1]], perm[dn.rhs_spec[0]]
        rhs = transpose(rhs, perm)
    return conv_general_dilated(lhs, rhs, (1,) * len(spatial), pads, tuple(strides),
                                rhs_dilation, dimension_numbers=dn, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_general_dilated_patches(lhs: Any, filter_shape: Sequence[int],
                                 window_strides: Sequence[int], padding: Any,
                                 lhs_dilation: Sequence[int] | None = None,
                                 rhs_dilation: Sequence[int] | None = None,
                                 dimension_numbers: Any = None, precision: Any = None,
                                 preferred_element_type: Any = None) -> Any:
    """The patches a convolution with a ``filter_shape`` window would see, as the
    feature axis of the output: ``C * prod(filter_shape)`` features ordered
    (channel, *window position)."""
    lhs = as_operand(lhs)
    lshape = get_aval(lhs).shape
    dt = get_aval(lhs).dtype
    n_spatial = len(lshape) - 2
    if len(filter_shape) != n_spatial:
        raise ValueError(f"filter_shape {tuple(filter_shape)} must have one entry per spatial "
                         f"axis of lhs ({n_spatial})")
    dn = conv_dimension_numbers(lshape, (1, 1) + tuple(filter_shape), dimension_numbers)
    channels = lshape[dn.lhs_spec[1]]
    window = int(np.prod(filter_shape))
    # an identity kernel (OIHW layout): output feature c*window + w reads channel c at w
    eye = np.eye(channels * window, dtype=dt).reshape((channels * window, channels) +
                                                      tuple(filter_shape))
    rhs_spec = tuple(range(n_spatial + 2))
    out_dn = ConvDimensionNumbers(dn.lhs_spec, rhs_spec, dn.out_spec)
    return conv_general_dilated(lhs, eye, window_strides, padding, lhs_dilation, rhs_dilation,
                                dimension_numbers=out_dn, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_general_dilated_local(lhs: Any, rhs: Any, window_strides: Sequence[int],
                               padding: Any, filter_shape: Sequence[int],
                               lhs_dilation: Sequence[int] | None = None,
                               rhs_dilation: Sequence[int] | None = None,
                               dimension_numbers: Any = None, precision: Any = None) -> Any:
    """A locally connected layer: like ``conv_general_dilated`` but ``rhs`` holds a
    separate kernel for every output position, with ``rhs``'s spatial axes the output's
    and its input-feature axis the flattened patch (``C * prod(filter_shape)``)."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    patches = conv_general_dilated_patches(lhs, filter_shape, window_strides, padding,
                                           lhs_dilation, rhs_dilation, dimension_numbers,
                                           precision)
    lshape = get_aval(lhs).shape
    dn = conv_dimension_numbers(lshape, get_aval(rhs).shape, dimension_numbers)
    pshape = get_aval(patches).shape
    n_spatial = len(lshape) - 2
    out_spatial = [pshape[i] for i in dn.out_spec[2:]]
    rshape = get_aval(rhs).shape
    if [rshape[i] for i in dn.rhs_spec[2:]] != out_spatial:
        raise ValueError(f"conv_general_dilated_local: rhs spatial shape "
                         f"{[rshape[i] for i in dn.rhs_spec[2:]]} must equal the output "
                         f"spatial shape {out_spatial}")
    # patches -> (spatial..., N, P); rhs -> (spatial..., P, O); batched matmul
    p = transpose(patches, tuple(dn.out_spec[2:]) + (dn.out_spec[0], dn.out_spec[1]))
    r = transpose(rhs, tuple(dn.rhs_spec[2:]) + (dn.rhs_spec[1], dn.rhs_spec[0]))
    batch = tuple(range(n_spatial))
    out = dot_general(p, r, (((n_spatial + 1,), (n_spatial,)), (batch, batch)),
                      precision=precision)
    # out: (spatial..., N, O) -> the output layout
    order = [0] * (n_spatial + 2)
    order[dn.out_spec[0]] = n_spatial
    order[dn.out_spec[1]] = n_spatial + 1
    for i, ax in enumerate(dn.out_spec[2:]):
        order[ax] = i
    return transpose(out, tuple(order))


def conv_general_shape_tuple(lhs_shape, rhs_shape, window_strides, padding,
                             dimension_numbers) -> tuple[int, ...]:
    """The output shape of ``conv_general_dilated`` (no dilation) in the output layout."""
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    lhs_t = tuple(lhs_shape[i] for i in dn.lhs_spec)
    rhs_t = tuple(rhs_shape[i] for i in dn.rhs_spec)
    if isinstance(padding, str):
        padding = padtype_to_pads(lhs_t[2:], rhs_t[2:], window_strides, padding)
    out = conv_shape_tuple(lhs_t, rhs_t, window_strides, padding)
    return tuple(np.take(out, np.argsort(dn.out_spec)))


def conv_transpose_shape_tuple(lhs_shape, rhs_shape, window_strides, padding,
                               dimension_numbers) -> tuple[int, ...]:
    """The output shape of :func:`conv_transpose` in the output layout."""
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    lhs_sdims = [lhs_shape[i] for i in dn.lhs_spec[2:]]
    rhs_sdims = [rhs_shape[i] for i in dn.rhs_spec[2:]]
    if isinstance(padding, str):
        padding = [_transpose_padding(k, s, padding) for k, s in zip(rhs_sdims, window_strides)]
    spatial = [(n - 1) * s + 1 + lo + hi - k + 1 for n, s, (lo, hi), k in
               zip(lhs_sdims, window_strides, padding, rhs_sdims)]
    out = (lhs_shape[dn.lhs_spec[0]], rhs_shape[dn.rhs_spec[0]]) + tuple(spatial)
    return tuple(np.take(out, np.argsort(dn.out_spec)))

