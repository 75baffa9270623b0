"""Convolution: the ``conv_general_dilated`` primitive and its wrappers.

A convolution slides the (dilated) kernel over the padded, dilated input: with
``lhs_dilation`` it is a transposed convolution, with ``rhs_dilation`` an atrous
one.  ``feature_group_count`` splits the input features into independent groups
(depthwise convolutions); ``batch_group_count`` splits the batch the same way (it
arises as the kernel gradient of a grouped convolution).
"""
from __future__ import annotations

import enum
import operator
from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.dot import (accumulation_dtype, canonical_preferred, canonicalize_precision,
                             cast_result, dot_output_dtype)
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, is_undefined_primal

__all__ = ["ConvDimensionNumbers", "PaddingType", "conv_dimension_numbers",
           "conv_general_permutations", "conv_general_dilated_p", "conv_general_dilated",
           "conv", "conv_with_general_padding", "padtype_to_pads", "conv_shape_tuple"]


class ConvDimensionNumbers(NamedTuple):
    """Axis layout of a convolution: each spec is ``(batch, feature, *spatial)`` for lhs
    and out, ``(out feature, in feature, *spatial)`` for rhs."""

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]


class PaddingType(enum.Enum):
    VALID = 1
    SAME = 2
    SAME_LOWER = 3


# ---------------------------------------------------------------------------
# Parameter normalisation
# ---------------------------------------------------------------------------


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding) -> list[tuple[int, int]]:
    """(low, high) padding per spatial axis for 'VALID', 'SAME' or 'SAME_LOWER'."""
    if isinstance(padding, str):
        try:
            padding = PaddingType[padding.upper()]
        except KeyError as err:
            raise RuntimeError("Unrecognized padding type: expected 'VALID' or 'SAME', got "
                               f"{padding}.") from err
    if padding == PaddingType.VALID:
        return [(0, 0)] * len(in_shape)
    if padding in (PaddingType.SAME, PaddingType.SAME_LOWER):
        pads = []
        for d, w, s in zip(in_shape, window_shape, window_strides):
            total = max((-(-d // s) - 1) * s + w - d, 0)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if padding == PaddingType.SAME else (big, small))
        return pads
    raise TypeError(f"Unknown padding type: {padding}.")


def conv_general_permutations(dimension_numbers) -> tuple[tuple[int, ...], ...]:
    """Specs of the string form, e.g. ('NHWC', 'HWIO', 'NHWC'); spatial axes are
    ordered as in the rhs string."""
    lhs_s, rhs_s, out_s = dimension_numbers
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, (a, b) in enumerate(pairs):
        if not dimension_numbers[i].count(a) == dimension_numbers[i].count(b) == 1:
            raise TypeError(f"convolution dimension_numbers[{i}] must contain the characters "
                            f"'{a}' and '{b}' exactly once, got {dimension_numbers[i]}.")
        if len(dimension_numbers[i]) != len(set(dimension_numbers[i])):
            raise TypeError(f"convolution dimension_numbers[{i}] cannot have duplicate "
                            f"characters, got {dimension_numbers[i]}.")
    if not (set(lhs_s) - {"N", "C"} == set(rhs_s) - {"O", "I"} == set(out_s) - {"N", "C"}):
        raise TypeError("convolution dimension_numbers elements must each have the same set "
                        f"of spatial characters, got {dimension_numbers}.")

    def perm(spec: str, pair) -> tuple[int, ...]:
        spatial = sorted((i for i, c in enumerate(spec) if c not in pair),
                         key=lambda i: rhs_s.index(spec[i]))
        return (spec.index(pair[0]), spec.index(pair[1])) + tuple(spatial)
    return tuple(perm(s, p) for s, p in zip(dimension_numbers, pairs))


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers) -> ConvDimensionNumbers:
    """Canonical :class:`ConvDimensionNumbers` from None, strings or specs."""
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return ConvDimensionNumbers(*(tuple(int(d) for d in s) for s in dimension_numbers))
    if len(lhs_shape) != len(rhs_shape):
        raise TypeError("convolution requires lhs and rhs ndim to be equal, got "
                        f"{len(lhs_shape)} and {len(rhs_shape)}.")
    if dimension_numbers is None:
        iota = tuple(range(len(lhs_shape)))
        return ConvDimensionNumbers(iota, iota, iota)
    if not isinstance(dimension_numbers, (list, tuple)):
        raise TypeError("convolution dimension_numbers must be tuple/list or None, got "
                        f"{type(dimension_numbers)}.")
    if len(dimension_numbers) != 3:
        raise TypeError("convolution dimension_numbers list/tuple must be length 3, got "
                        f"{len(dimension_numbers)}.")
    if all(isinstance(s, str) for s in dimension_numbers):
        for i, s in enumerate(dimension_numbers):
            if len(s) != len(lhs_shape):
                raise TypeError(
                    f"convolution dimension_numbers[{i}] must have len equal to the ndim of "
                    f"lhs and rhs, got {len(s)} for lhs and rhs shapes {tuple(lhs_shape)} "
                    f"and {tuple(rhs_shape)}.")
        return ConvDimensionNumbers(*conv_general_permutations(dimension_numbers))
    if all(isinstance(s, (list, tuple)) for s in dimension_numbers):
        return ConvDimensionNumbers(*(tuple(int(d) for d in s) for s in dimension_numbers))
    raise TypeError("convolution dimension_numbers elements must be strings, got "
                    f"{tuple(map(type, dimension_numbers))}.")


def _dilate_dim(d: int, r: int) -> int:
    return 0 if d == 0 else 1 + r * (d - 1)


def conv_shape_tuple(lhs_shape, rhs_shape, strides, pads, batch_group_count=1):
    """Output shape in ``(N, O, *spatial)`` order for inputs in ``(N, C, ...)`` /
    ``(O, I, ...)``."""
    out_space = [max(0, (d + lo + hi - k) // s + 1) if d + lo + hi >= k else 0
                 for d, k, s, (lo, hi) in zip(lhs_shape[2:], rhs_shape[2:], strides, pads)]
    return (lhs_shape[0] // batch_group_count, rhs_shape[0]) + tuple(out_space)


# ---------------------------------------------------------------------------
# Abstract evaluation
# ---------------------------------------------------------------------------

conv_general_dilated_p = Primitive("conv_general_dilated")


def _check_conv(lhs: ShapedArray, rhs: ShapedArray, window_strides, padding, lhs_dilation,
                rhs_dilation, dnums: ConvDimensionNumbers, fgc: int, bgc: int) -> None:
    name = "conv_general_dilated"
    if lhs.ndim != rhs.ndim:
        raise ValueError(f"{name} lhs and rhs must have the same number of dimensions, but "
                         f"got {lhs.shape} and {rhs.shape}.")
    if lhs.ndim < 2:
        raise ValueError(f"{name} lhs and rhs must have rank at least 2, got lhs shape "
                         f"{lhs.shape} and rhs shape {rhs.shape}.")
    for which, spec in zip(("lhs_spec", "rhs_spec", "out_spec"), dnums):
        if sorted(spec) != list(range(lhs.ndim)):
            raise TypeError(f"{name} dimension_numbers.{which} must be a permutation of "
                            f"range({lhs.ndim}), got {spec} (lhs shape {lhs.shape}).")
    nsp = lhs.ndim - 2
    for what, v in (("window_strides", window_strides), ("padding", padding),
                    ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(v) != nsp:
            raise ValueError(f"{name} {what} must have one entry per spatial dimension "
                             f"({nsp} for lhs shape {lhs.shape}), got {what}={v}.")
    for what, v in (("window_strides", window_strides), ("lhs_dilation", lhs_dilation),
                    ("rhs_dilation", rhs_dilation)):
        if any(s < 1 for s in v):
            raise ValueError(f"{name} {what} must be positive, got {v}.")
    if fgc < 1:
        raise ValueError(f"{name} feature_group_count must be a positive integer, got {fgc}.")
    if bgc < 1:
        raise ValueError(f"{name} batch_group_count must be a positive integer, got {bgc}.")
    if fgc > 1 and bgc > 1:
        raise ValueError("At most one of batch_group_count and feature_group_count may be "
                         f"> 1, got batch_group_count={bgc} and feature_group_count={fgc}")
    lhs_features = lhs.shape[dnums.lhs_spec[1]]
    in_features = rhs.shape[dnums.rhs_spec[1]]
    out_features = rhs.shape[dnums.rhs_spec[0]]
    if lhs_features % fgc:
        raise ValueError(f"{name} feature_group_count must divide lhs feature dimension size, "
                         f"but {fgc} does not divide {lhs_features} (lhs shape {lhs.shape}).")
    if lhs_features // fgc != in_features:
        raise ValueError(f"{name} lhs feature dimension size divided by feature_group_count "
                         "must equal the rhs input feature dimension size, but "
                         f"{lhs_features} // {fgc} != {in_features} (lhs shape {lhs.shape}, "
                         f"rhs shape {rhs.shape}).")
    if out_features % fgc:
        raise ValueError(f"{name} rhs output feature dimension size must be a multiple of "
                         f"feature_group_count, but {out_features} is not a multiple of "
                         f"{fgc} (rhs shape {rhs.shape}).")
    if lhs.shape[dnums.lhs_spec[0]] % bgc:
        raise ValueError(f"{name} batch_group_count must divide lhs batch dimension size, "
                         f"but {bgc} does not divide {lhs.shape[dnums.lhs_spec[0]]} "
                         f"(lhs shape {lhs.shape}).")
    if out_features % bgc:
        raise ValueError(f"{name} rhs output feature dimension size must be a multiple of "
                         f"batch_group_count, but {out_features} is not a multiple of {bgc} "
                         f"(rhs shape {rhs.shape}).")


def _conv_out_shape(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dnums,
                    bgc) -> tuple[int, ...]:
    lhs_c = [lhs.shape[d] for d in dnums.lhs_spec]
    rhs_c = [rhs.shape[d] for d in dnums.rhs_spec]
    lhs_c = lhs_c[:2] + [_dilate_dim(d, r) for d, r in zip(lhs_c[2:], lhs_dilation)]
    rhs_c = rhs_c[:2] + [_dilate_dim(d, r) for d, r in zip(rhs_c[2:], rhs_dilation)]
    canon = conv_shape_tuple(lhs_c, rhs_c, window_strides, padding, bgc)
    out = [0] * len(canon)
    for i, d in enumerate(dnums.out_spec):
        out[d] = canon[i]
    return tuple(out)


@conv_general_dilated_p.def_abstract_eval
def _conv_abstract_eval(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        dimension_numbers, feature_group_count, batch_group_count,
                        precision=None, preferred_element_type=None):
    _check_conv(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                dimension_numbers, feature_group_count, batch_group_count)
    dt = dot_output_dtype("conv_general_dilated", lhs, rhs, preferred_element_type)
    shape = _conv_out_shape(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                            dimension_numbers, batch_group_count)
    return ShapedArray(shape, dt, lhs.weak_type and rhs.weak_type
                       and preferred_element_type is None)


conv_general_dilated_p.weak_type_rule = (
    lambda weak, *, preferred_element_type=None, **_: all(weak)
    and preferred_element_type is None)

# ---------------------------------------------------------------------------
# Eager implementation
# ---------------------------------------------------------------------------


def pad_dilate_np(x: np.ndarray, pads: Sequence[tuple[int, int]], dilation: Sequence[int],
                  fill: Any) -> np.ndarray:
    """Interior-dilate ``x`` by ``dilation`` and pad by ``pads`` (negative pads crop),
    filling new positions with ``fill``; like ``lax.pad`` with interior padding."""
    if all(r == 1 for r in dilation) and all(p == (0, 0) for p in pads):
        return x
    dil = [_dilate_dim(d, r) for d, r in zip(x.shape, dilation)]
    grown = [max(lo, 0) + d + max(hi, 0) for d, (lo, hi) in zip(dil, pads)]
    out = np.full(grown, fill, x.dtype)
    out[tuple(slice(max(lo, 0), max(lo, 0) + d, r)
              for d, r, (lo, _) in zip(dil, dilation, pads))] = x
    crop = tuple(slice(max(-lo, 0), g - max(-hi, 0)) for g, (lo, hi) in zip(grown, pads))
    return out[crop]


def windows_np(x: np.ndarray, axes: Sequence[int], window: Sequence[int],
               strides: Sequence[int], window_dilation: Sequence[int]) -> np.ndarray:
    """A strided view of every window of ``x`` along ``axes``: the window axes are
    appended at the end, the window positions replace ``axes``."""
    dil = [_dilate_dim(k, r) for k, r in zip(window, window_dilation)]
    if any(x.shape[a] < k for a, k in zip(axes, dil)):
        shape = list(x.shape)
        for a in axes:
            shape[a] = 0
        return np.zeros(shape + list(window), x.dtype)
    view = sliding_window_view(x, dil, axis=tuple(axes))
    index = [slice(None)] * x.ndim + [slice(None, None, r) for r in window_dilation]
    for a, s in zip(axes, strides):
        index[a] = slice(None, None, s)
    return view[tuple(index)]


@conv_general_dilated_p.def_impl
def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               dimension_numbers, feature_group_count, batch_group_count, precision=None,
               preferred_element_type=None):
    out_aval = _conv_abstract_eval(
        get_aval(lhs), get_aval(rhs), window_strides=window_strides, padding=padding,
        lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, preferred_element_type=preferred_element_type)
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    acc = accumulation_dtype(lhs.dtype, rhs.dtype, preferred_element_type)
    x = np.transpose(lhs, lhs_spec).astype(acc, copy=False)   # N, C, *spatial
    w = np.transpose(rhs, rhs_spec).astype(acc, copy=False)   # O, I, *spatial
    nsp = x.ndim - 2
    x = pad_dilate_np(x, [(0, 0)] * 2 + list(padding), (1, 1) + tuple(lhs_dilation), 0)
    sp = tuple(range(2, 2 + nsp))
    win = windows_np(x, sp, w.shape[2:], window_strides, rhs_dilation)  # N, C, *out, *k
    groups = max(feature_group_count, batch_group_count)
    n, c = win.shape[0] // batch_group_count, win.shape[1] // feature_group_count
    og = w.shape[0] // groups
    contract_x = (1,) + tuple(range(2 + nsp, 2 + 2 * nsp))
    contract_w = (1,) + tuple(range(2, 2 + nsp))
    parts = []
    for g in range(groups):  # at most a few groups; each is one BLAS contraction
        xg = win[g * n:(g + 1) * n] if batch_group_count > 1 else win
        xg = xg[:, g * c:(g + 1) * c] if feature_group_count > 1 else xg
        parts.append(np.tensordot(xg, w[g * og:(g + 1) * og], (contract_x, contract_w)))
    out = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]  # N, *out, O
    out = np.moveaxis(out, -1, 1)
    out = np.transpose(out, np.argsort(out_spec))
    return cast_result(np.ascontiguousarray(out), out_aval.dtype).reshape(out_aval.shape)


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def _ints(v, n: int, default: int = 1) -> tuple[int, ...]:
    return (default,) * n if v is None else tuple(operator.index(int(d)) for d in v)


def conv_general_dilated(lhs, rhs, window_strides: Sequence[int], padding,
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision=None,
                         preferred_element_type=None):
    """General n-d convolution with padding, strides, dilations and groups.

    ``padding`` is 'VALID', 'SAME', 'SAME_LOWER' or a (low, high) pair per spatial
    axis; ``dimension_numbers`` is None (NC…/OI…/NC…), a :class:`ConvDimensionNumbers`
    or strings such as ('NHWC', 'HWIO', 'NHWC').
    """
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    lshape, rshape = get_aval(lhs).shape, get_aval(rhs).shape
    dnums = conv_dimension_numbers(lshape, rshape, dimension_numbers)
    nsp = len(lshape) - 2
    window_strides = _ints(window_strides, nsp)
    if lhs_dilation is not None and isinstance(padding, str) and \
            any(d != 1 for d in lhs_dilation):
        raise ValueError("String padding is not implemented for transposed convolution "
                         "using this op. Please either exactly specify the required padding "
                         "or use conv_transpose.")
    lhs_dilation, rhs_dilation = _ints(lhs_dilation, nsp), _ints(rhs_dilation, nsp)
    if isinstance(padding, str):
        k = [_dilate_dim(rshape[d], r) for d, r in zip(dnums.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads([lshape[d] for d in dnums.lhs_spec[2:]], k,
                                  window_strides, padding)
    try:
        padding = tuple((operator.index(lo), operator.index(hi)) for lo, hi in padding)
    except (ValueError, TypeError) as e:
        raise ValueError("padding argument to conv_general_dilated should be a string or a "
                         f"sequence of (low, high) pairs, got {padding}") from e
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dnums,
        feature_group_count=operator.index(feature_group_count),
        batch_group_count=operator.index(batch_group_count),
        precision=canonicalize_precision(precision),
        preferred_element_type=canonical_preferred(preferred_element_type))


def conv(lhs, rhs, window_strides: Sequence[int], padding, precision=None,
         preferred_element_type=None):
    """Convolution in the default NC…/OI… layout, no dilation."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs, rhs, window_strides: Sequence[int], padding,
                              lhs_dilation, rhs_dilation, precision=None,
                              preferred_element_type=None):
    """Convolution in the default layout with explicit padding and dilations."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                rhs_dilation=rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


# ---------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------


def _swap01(spec: Sequence[int]) -> tuple[int, ...]:
    return (spec[1], spec[0]) + tuple(spec[2:])


def reshape_axis_out_of(src: int, size1: int, x):
    """Split axis ``src`` into (size1, rest), size1 major."""
    from tinyjax.lax.shape import reshape
    shape = list(get_aval(x).shape)
    shape[src:src + 1] = [size1, shape[src] // size1]
    return reshape(x, shape)


def reshape_axis_into(src: int, dst: int, x):
    """Merge axis ``src`` into axis ``dst`` (numbered with ``src`` removed), src major."""
    from tinyjax.lax.shape import reshape
    shape = get_aval(x).shape
    perm = [i for i in range(len(shape)) if i != src]
    perm.insert(dst, src)
    new_shape = [shape[i] for i in range(len(shape)) if i != src]
    new_shape[dst] *= shape[src]
    return reshape(x, new_shape, perm)


def _lhs_transpose_padding(in_sp, k_sp, strides, out_sp, padding, lhs_dil, rhs_dil):
    pads = []
    for d, k, s, o, (lo, _), ld, rd in zip(in_sp, k_sp, strides, out_sp, padding,
                                           lhs_dil, rhs_dil):
        kd = _dilate_dim(k, rd)
        before = kd - lo - 1
        after = _dilate_dim(d, ld) + kd - 1 - _dilate_dim(o, s) - before
        pads.append((before, after))
    return tuple(pads)


def _rhs_transpose_padding(in_sp, k_sp, strides, out_sp, padding, lhs_dil, rhs_dil):
    pads = []
    for d, k, s, o, (lo, _), ld, rd in zip(in_sp, k_sp, strides, out_sp, padding,
                                           lhs_dil, rhs_dil):
        hi = (k - 1) * rd + _dilate_dim(o, s) - lo - _dilate_dim(d, ld)
        pads.append((lo, hi))
    return tuple(pads)


def _conv_transpose_lhs(ct, rhs, lhs_aval, *, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, precision, preferred_element_type):
    # d lhs = conv(ct, flipped kernel) with the roles of stride and lhs dilation swapped
    # and the kernel's in/out features exchanged (groups move into the new out axis).
    from tinyjax.lax.slicing import rev
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    groups = max(feature_group_count, batch_group_count)
    if groups > 1:
        rhs = reshape_axis_out_of(rhs_spec[0], groups, rhs)
        rhs = reshape_axis_into(rhs_spec[0], rhs_spec[1], rhs)
    r_shape = get_aval(rhs).shape
    pads = _lhs_transpose_padding(
        [lhs_aval.shape[d] for d in lhs_spec[2:]], [r_shape[d] for d in rhs_spec[2:]],
        window_strides, [get_aval(ct).shape[d] for d in out_spec[2:]], padding,
        lhs_dilation, rhs_dilation)
    out = conv_general_dilated_p.bind(
        ct, rev(rhs, tuple(rhs_spec[2:])), window_strides=lhs_dilation, padding=pads,
        lhs_dilation=window_strides, rhs_dilation=rhs_dilation,
        dimension_numbers=ConvDimensionNumbers(out_spec, _swap01(rhs_spec), lhs_spec),
        feature_group_count=groups, batch_group_count=1, precision=precision,
        preferred_element_type=_transpose_preferred(ct, rhs, lhs_aval))
    if batch_group_count > 1:
        out = reshape_axis_out_of(lhs_spec[1], batch_group_count, out)
        out = reshape_axis_into(lhs_spec[1], lhs_spec[0], out)
    return _cast(out, lhs_aval)


def _conv_transpose_rhs(ct, lhs, rhs_aval, *, window_strides, padding, lhs_dilation,
                        rhs_dilation, dimension_numbers, feature_group_count,
                        batch_group_count, precision, preferred_element_type):
    # d rhs = conv(lhs, ct) with the batch axis contracted as the feature axis; a
    # feature-grouped conv's kernel gradient is batch-grouped and vice versa.
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    l_shape = get_aval(lhs).shape
    pads = _rhs_transpose_padding(
        [l_shape[d] for d in lhs_spec[2:]], [rhs_aval.shape[d] for d in rhs_spec[2:]],
        window_strides, [get_aval(ct).shape[d] for d in out_spec[2:]], padding,
        lhs_dilation, rhs_dilation)
    out = conv_general_dilated_p.bind(
        lhs, ct, window_strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=window_strides,
        dimension_numbers=ConvDimensionNumbers(_swap01(lhs_spec), _swap01(out_spec),
                                               _swap01(rhs_spec)),
        feature_group_count=batch_group_count, batch_group_count=feature_group_count,
        precision=precision, preferred_element_type=_transpose_preferred(ct, lhs, rhs_aval))
    return _cast(out, rhs_aval)


def _transpose_preferred(ct, other, aval: ShapedArray):
    return None if get_aval(ct).dtype == get_aval(other).dtype else aval.dtype


def _cast(x, aval: ShapedArray):
    from tinyjax.lax.elementwise import convert_element_type
    return x if get_aval(x).dtype == aval.dtype else convert_element_type(x, aval.dtype)


def _conv_transpose(ct, lhs, rhs, **params):
    lhs_undef, rhs_undef = is_undefined_primal(lhs), is_undefined_primal(rhs)
    ct_l = ct_r = None
    if lhs_undef:
        ct_l = Zero(ad.tangent_aval(lhs.aval)) if type(ct) is Zero or not get_aval(ct).size \
            else _conv_transpose_lhs(ct, rhs, lhs.aval, **params)
    if rhs_undef:
        ct_r = Zero(ad.tangent_aval(rhs.aval)) if type(ct) is Zero or not get_aval(ct).size \
            else _conv_transpose_rhs(ct, lhs, rhs.aval, **params)
    return [ct_l, ct_r]


ad.defbilinear(conv_general_dilated_p)
ad.primitive_transposes[conv_general_dilated_p] = _conv_transpose

# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------


def _conv_batch(vals, dims, *, dimension_numbers, feature_group_count, batch_group_count,
                **params):
    (lhs, rhs), (ld, rd) = vals, dims
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    fgc, bgc = feature_group_count, batch_group_count
    groups = max(fgc, bgc)

    def bind(x, w, fgc, bgc):
        return conv_general_dilated_p.bind(x, w, dimension_numbers=dimension_numbers,
                                           feature_group_count=fgc, batch_group_count=bgc,
                                           **params)

    if ld is not None and rd is not None:
        size = get_aval(lhs).shape[ld]
        # the vmapped axis becomes extra groups: of the batch if already batch-grouped,
        # else of the features
        if bgc > 1:
            x = reshape_axis_into(ld, lhs_spec[0], lhs)
            fgc2, bgc2 = fgc, bgc * size
        else:
            x = reshape_axis_into(ld, lhs_spec[1], lhs)
            fgc2, bgc2 = fgc * size, bgc
        out = bind(x, reshape_axis_into(rd, rhs_spec[0], rhs), fgc2, bgc2)
        return reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    if ld is not None:
        size = get_aval(lhs).shape[ld]
        if bgc == 1:  # fold the vmapped axis into the batch
            out = bind(reshape_axis_into(ld, lhs_spec[0], lhs), rhs, fgc, bgc)
            return reshape_axis_out_of(out_spec[0], size, out), out_spec[0]
        # keep batch groups outermost: N = (groups, vmapped, n)
        x = reshape_axis_out_of(lhs_spec[0] + (ld <= lhs_spec[0]), bgc, lhs)
        x = reshape_axis_into(ld + (lhs_spec[0] < ld), lhs_spec[0] + 1, x)
        x = reshape_axis_into(lhs_spec[0], lhs_spec[0], x)
        out = bind(x, rhs, fgc, bgc)
        return reshape_axis_out_of(out_spec[0], size, out), out_spec[0]
    size = get_aval(rhs).shape[rd]
    if groups == 1:  # fold the vmapped axis into the output features
        out = bind(lhs, reshape_axis_into(rd, rhs_spec[0], rhs), fgc, bgc)
        return reshape_axis_out_of(out_spec[1], size, out), out_spec[1]
    # keep feature groups outermost: O = (groups, vmapped, o)
    w = reshape_axis_out_of(rhs_spec[0] + (rd <= rhs_spec[0]), groups, rhs)
    w = reshape_axis_into(rd + (rhs_spec[0] < rd), rhs_spec[0] + 1, w)
    w = reshape_axis_into(rhs_spec[0], rhs_spec[0], w)
    out = bind(lhs, w, fgc, bgc)
    out = reshape_axis_out_of(out_spec[1], groups, out)
    out = reshape_axis_out_of(out_spec[1] + 1, size, out)
    out = reshape_axis_into(out_spec[1], out_spec[1] + 1, out)
    return out, out_spec[1]


batching.primitive_batchers[conv_general_dilated_p] = _conv_batch
