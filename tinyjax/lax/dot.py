"""Tensor contraction: the ``dot_general`` primitive and ``dot`` / ``batch_matmul``.

``dot_general(lhs, rhs, ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch)))``
contracts the named axes pairwise and maps over the batch axes; the result's axes
are the batch axes, then lhs's free axes, then rhs's free axes (each in order).
"""
from __future__ import annotations

import enum
from typing import Any, NamedTuple, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.sharding_constraint import type_sharding, with_sharding_constraint
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, is_undefined_primal

__all__ = ["Precision", "PrecisionLike", "DotAlgorithm", "DotAlgorithmPreset",
           "DotDimensionNumbers", "canonicalize_precision", "dot_general_p", "dot_general",
           "dot", "batch_matmul"]

DotDimensionNumbers = tuple[tuple[tuple[int, ...], tuple[int, ...]],
                            tuple[tuple[int, ...], tuple[int, ...]]]

# ---------------------------------------------------------------------------
# Precision
# ---------------------------------------------------------------------------


class Precision(enum.Enum):
    """Precision of the matrix units; the numpy backend always computes exactly."""

    DEFAULT = 0
    HIGH = 1
    HIGHEST = 2

    @classmethod
    def _missing_(cls, value: object) -> "Precision | None":
        return _PRECISION_NAMES.get(value.lower() if isinstance(value, str) else value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    def __str__(self) -> str:
        return self.name


_PRECISION_NAMES = {"bfloat16": Precision.DEFAULT, "fastest": Precision.DEFAULT,
                    "default": Precision.DEFAULT, "tensorfloat32": Precision.HIGH,
                    "high": Precision.HIGH, "float32": Precision.HIGHEST,
                    "highest": Precision.HIGHEST}


class DotAlgorithm(NamedTuple):
    """A dot algorithm by the types it computes in (JAX's ``lax.DotAlgorithm``); tinyjax
    maps it to the :class:`Precision` its input types ask for."""
    lhs_precision_type: Any
    rhs_precision_type: Any
    accumulation_type: Any
    lhs_component_count: int = 1
    rhs_component_count: int = 1
    num_primitive_operations: int = 1
    allow_imprecise_accumulation: bool = False


class DotAlgorithmPreset(enum.Enum):
    """JAX's named dot algorithms (input, input, accumulation types; ``_Xn``: n passes
    emulating float32); tinyjax maps each to the :class:`Precision` it amounts to."""

    DEFAULT = enum.auto()
    ANY_F8_ANY_F8_F32 = enum.auto()
    ANY_F8_ANY_F8_F32_FAST_ACCUM = enum.auto()
    ANY_F8_ANY_F8_ANY = enum.auto()
    ANY_F8_ANY_F8_ANY_FAST_ACCUM = enum.auto()
    F16_F16_F16 = enum.auto()
    F16_F16_F32 = enum.auto()
    BF16_BF16_BF16 = enum.auto()
    BF16_BF16_F32 = enum.auto()
    BF16_BF16_F32_X3 = enum.auto()
    BF16_BF16_F32_X6 = enum.auto()
    BF16_BF16_F32_X9 = enum.auto()
    TF32_TF32_F32 = enum.auto()
    TF32_TF32_F32_X3 = enum.auto()
    F32_F32_F32 = enum.auto()
    F64_F64_F64 = enum.auto()

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


PrecisionLike = Any  # None, str, Precision, a pair of them, DotAlgorithm or DotAlgorithmPreset

_HIGHEST_PRESETS = {"F32_F32_F32", "F64_F64_F64", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
                    "TF32_TF32_F32_X3"}
_HIGH_PRESETS = {"TF32_TF32_F32", "BF16_BF16_F32_X3"}


def _algorithm_precision(algorithm: Any) -> Precision | None:
    if isinstance(algorithm, DotAlgorithmPreset):
        if algorithm is DotAlgorithmPreset.DEFAULT:
            return None
        return Precision.HIGHEST if algorithm.name in _HIGHEST_PRESETS else \
            Precision.HIGH if algorithm.name in _HIGH_PRESETS else Precision.DEFAULT
    wide = {np.dtype(np.float32), np.dtype(np.float64)}
    return Precision.HIGHEST if np.dtype(algorithm.lhs_precision_type) in wide and \
        np.dtype(algorithm.rhs_precision_type) in wide else Precision.DEFAULT


def canonicalize_precision(precision: Any) -> tuple[Precision, Precision] | None:
    """None, or a (lhs, rhs) pair of :class:`Precision` (hashable, for jaxpr params)."""
    if precision is None:
        return None
    if isinstance(precision, (DotAlgorithm, DotAlgorithmPreset)):
        p = _algorithm_precision(precision)
        return None if p is None else (p, p)
    try:
        if isinstance(precision, (str, Precision)):
            p = Precision(precision)
            return (p, p)
        if isinstance(precision, (list, tuple)) and len(precision) == 2:
            return (Precision(precision[0]), Precision(precision[1]))
    except ValueError:
        pass
    raise ValueError(
        "Precision argument must be one of: None; one of the strings "
        f"{sorted(_PRECISION_NAMES)}; a lax.Precision value; or a tuple of two "
        f"lax.Precision values or strings; got {precision}.")


# ---------------------------------------------------------------------------
# Shapes and dtypes
# ---------------------------------------------------------------------------

dot_general_p = Primitive("dot_general")


def _free_dims(ndim: int, contracting: Sequence[int], batch: Sequence[int]) -> list[int]:
    return [d for d in range(ndim) if d not in contracting and d not in batch]


def _check_dims(side: str, aval: ShapedArray, contracting, batch) -> None:
    for what, dims in (("batch", batch), ("contracting", contracting)):
        if any(not 0 <= d < aval.ndim for d in dims):
            raise TypeError(f"dot_general requires {side} {what} dimensions to be in range "
                            f"[0, {aval.ndim}) for {side} of shape {aval.shape}, got "
                            f"{side}_{what}_dimensions {tuple(dims)}.")
    if len(set(contracting) | set(batch)) != len(contracting) + len(batch):
        raise TypeError(f"dot_general requires {side} batch dimensions and {side} "
                        "contracting dimensions to be distinct and not repeated, got "
                        f"{side}_batch {tuple(batch)} and {side}_contracting "
                        f"{tuple(contracting)}.")


def _dot_general_shape(lhs: ShapedArray, rhs: ShapedArray, dimension_numbers) -> tuple:
    (lc, rc), (lb, rb) = dimension_numbers
    if len(lb) != len(rb):
        raise TypeError("dot_general requires equal numbers of lhs_batch and rhs_batch "
                        f"dimensions, got lhs_batch {tuple(lb)} and rhs_batch {tuple(rb)}.")
    if len(lc) != len(rc):
        raise TypeError("dot_general requires equal numbers of lhs_contracting and "
                        f"rhs_contracting dimensions, got {tuple(lc)} and {tuple(rc)}.")
    _check_dims("lhs", lhs, lc, lb)
    _check_dims("rhs", rhs, rc, rb)
    lbs, rbs = tuple(lhs.shape[d] for d in lb), tuple(rhs.shape[d] for d in rb)
    if lbs != rbs:
        raise TypeError("dot_general requires lhs batch dimensions and rhs batch dimensions "
                        f"to have the same shape, got {lbs} and {rbs} (lhs shape "
                        f"{lhs.shape}, rhs shape {rhs.shape}).")
    lcs, rcs = tuple(lhs.shape[d] for d in lc), tuple(rhs.shape[d] for d in rc)
    if lcs != rcs:
        raise TypeError("dot_general requires contracting dimensions to have the same "
                        f"shape, got {lcs} and {rcs} (lhs shape {lhs.shape}, rhs shape "
                        f"{rhs.shape}).")
    return (lbs + tuple(lhs.shape[d] for d in _free_dims(lhs.ndim, lc, lb))
            + tuple(rhs.shape[d] for d in _free_dims(rhs.ndim, rc, rb)))


def _accepted(dt: np.dtype) -> bool:
    return dtypes.is_float(dt) or dtypes.is_int(dt) or dtypes.is_complex(dt) or dt == np.bool_


def dot_output_dtype(name: str, lhs: ShapedArray, rhs: ShapedArray,
                     preferred_element_type) -> np.dtype:
    """The result dtype of a dot/conv: the operands' dtype, or the preferred one."""
    for side, aval in (("lhs", lhs), ("rhs", rhs)):
        if not _accepted(aval.dtype):
            raise TypeError(f"{name} does not accept dtype {aval.dtype.name} ({side}).")
    if preferred_element_type is None:
        if lhs.dtype != rhs.dtype:
            raise TypeError(f"{name} requires arguments to have the same dtypes, got "
                            f"{lhs.dtype.name}, {rhs.dtype.name} (lhs shape {lhs.shape}, "
                            f"rhs shape {rhs.shape}).")
        return lhs.dtype
    pref = np.dtype(preferred_element_type)
    if lhs.dtype == rhs.dtype and not dtypes.is_float(lhs.dtype) and \
            not dtypes.is_complex(lhs.dtype) and pref.itemsize < lhs.dtype.itemsize:
        raise TypeError("`preferred_element_type` must not be narrower than the original "
                        f"type, got preferred_element_type of {pref.name} for result type "
                        f"of {lhs.dtype.name}.")
    return pref


@dot_general_p.def_abstract_eval
def _dot_general_abstract_eval(lhs, rhs, *, dimension_numbers, precision=None,
                               preferred_element_type=None, out_sharding=None):
    dt = dot_output_dtype("dot_general", lhs, rhs, preferred_element_type)
    shape = _dot_general_shape(lhs, rhs, dimension_numbers)
    weak = lhs.weak_type and rhs.weak_type and preferred_element_type is None
    return ShapedArray(shape, dt, weak)


dot_general_p.weak_type_rule = (
    lambda weak, *, preferred_element_type=None, **_: all(weak)
    and preferred_element_type is None)

# ---------------------------------------------------------------------------
# Eager implementation
# ---------------------------------------------------------------------------

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(dtypes.bfloat16))


def accumulation_dtype(*dts: Any) -> np.dtype:
    """The dtype numpy computes a contraction in: float16/bfloat16 accumulate in
    float32 (as XLA does), bool in int32 (numpy has no boolean BLAS)."""
    def widen(d):
        d = np.dtype(d)
        if d in _LOW_PRECISION:
            return np.dtype(np.float32)
        return np.dtype(np.int32) if d == np.bool_ else d
    return np.result_type(*[widen(d) for d in dts if d is not None])


def cast_result(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    x = np.asarray(x)
    if dtype == np.bool_:
        return x != 0
    return x if x.dtype == dtype else x.astype(dtype)


@dot_general_p.def_impl
def _dot_general_impl(lhs, rhs, *, dimension_numbers, precision=None,
                      preferred_element_type=None, out_sharding=None):
    (lc, rc), (lb, rb) = dimension_numbers
    out_dtype = _dot_general_abstract_eval(
        get_aval(lhs), get_aval(rhs), dimension_numbers=dimension_numbers,
        preferred_element_type=preferred_element_type).dtype
    acc = accumulation_dtype(lhs.dtype, rhs.dtype, preferred_element_type)
    lf, rf = _free_dims(lhs.ndim, lc, lb), _free_dims(rhs.ndim, rc, rb)
    batch = [lhs.shape[d] for d in lb]
    m = int(np.prod([lhs.shape[d] for d in lf], dtype=np.int64))
    n = int(np.prod([rhs.shape[d] for d in rf], dtype=np.int64))
    k = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))
    b = int(np.prod(batch, dtype=np.int64))
    # (batch, free, contracting) @ (batch, contracting, free): one batched BLAS call.
    a = np.transpose(lhs, list(lb) + lf + list(lc)).astype(acc, copy=False).reshape(b, m, k)
    c = np.transpose(rhs, list(rb) + list(rc) + rf).astype(acc, copy=False).reshape(b, k, n)
    out = np.matmul(a, c)
    shape = batch + [lhs.shape[d] for d in lf] + [rhs.shape[d] for d in rf]
    return cast_result(out.reshape(shape), out_dtype)


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def _canonical_dims(dimension_numbers) -> DotDimensionNumbers:
    try:
        (lc, rc), (lb, rb) = dimension_numbers
        return ((tuple(int(d) for d in lc), tuple(int(d) for d in rc)),
                (tuple(int(d) for d in lb), tuple(int(d) for d in rb)))
    except (TypeError, ValueError) as e:
        raise TypeError("dot_general dimension_numbers must be ((lhs_contracting, "
                        "rhs_contracting), (lhs_batch, rhs_batch)), got "
                        f"{dimension_numbers!r}.") from e


def canonical_preferred(preferred_element_type) -> np.dtype | None:
    return None if preferred_element_type is None else \
        dtypes.canonicalize_dtype(preferred_element_type)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                out_sharding=None):
    """General tensor contraction.

    ``dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch))``;
    the result's axes are the batch axes, then lhs's free axes, then rhs's free axes.
    """
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    dims = _canonical_dims(dimension_numbers)
    out = dot_general_p.bind(
        lhs, rhs, dimension_numbers=dims, precision=canonicalize_precision(precision),
        preferred_element_type=canonical_preferred(preferred_element_type),
        out_sharding=None if out_sharding is None else type_sharding(
            out_sharding, len(_dot_general_shape(get_aval(lhs), get_aval(rhs), dims))))
    # the product's type names the layout; a constraint also places it there (eagerly, or
    # under jit where no operand is laid out over the mesh yet)
    return out if out_sharding is None else with_sharding_constraint(out, out_sharding)


def dot(lhs, rhs, precision=None, preferred_element_type=None, out_sharding=None):
    """Vector/matrix product: contracts lhs's last axis with rhs's first (ranks 1 or 2)."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    ls, rs = get_aval(lhs).shape, get_aval(rhs).shape
    if 1 <= len(ls) <= 2 and 1 <= len(rs) <= 2 and ls[-1] == rs[0]:
        return dot_general(lhs, rhs, (((len(ls) - 1,), (0,)), ((), ())), precision,
                           preferred_element_type, out_sharding)
    raise TypeError(f"Incompatible shapes for dot: got {ls} and {rs}.")


def batch_matmul(lhs, rhs, precision=None):
    """Matrix product over the last two axes, mapped over the leading ones."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    ln, rn = get_aval(lhs).ndim, get_aval(rhs).ndim
    if min(ln, rn) < 2:
        raise ValueError(f"Arguments to batch_matmul must be at least 2D, got {ln}, {rn}")
    if ln != rn:
        raise ValueError(f"Arguments to batch_matmul must have same ndim, got {ln}, {rn}")
    batch = tuple(range(ln - 2))
    return dot_general(lhs, rhs, (((ln - 1,), (rn - 2,)), (batch, batch)), precision)


# ---------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------


def _transpose_operand(ct, other, aval: ShapedArray, this_dims, other_dims,
                       this_ct_axes, other_ct_axes, precision):
    """Cotangent of one operand of ``dot_general``.

    ``this_dims``/``other_dims`` are (contracting, batch) of the operand being
    transposed and of the other one; ``this_ct_axes``/``other_ct_axes`` are the
    positions of their free axes in the cotangent.  The cotangent is contracted
    with the other operand over the other's free axes; what remains is this
    operand's batch axes, its free axes and (from ``other``) its contracting axes,
    which a transpose puts back in place.
    """
    from tinyjax.lax.elementwise import convert_element_type
    from tinyjax.lax.shape import transpose
    (tc, tb), (oc, ob) = this_dims, other_dims
    other_aval = get_aval(other)
    other_free = _free_dims(other_aval.ndim, oc, ob)
    nb = len(tb)
    dims = ((tuple(other_ct_axes), tuple(other_free)), (tuple(range(nb)), tuple(ob)))
    ct_dtype = get_aval(ct).dtype
    pref = None if ct_dtype == other_aval.dtype else aval.dtype
    # which axis of this operand each axis of ``res`` is
    source = list(tb) + _free_dims(aval.ndim, tc, tb) + [tc[oc.index(a)] for a in sorted(oc)]
    # where the operand's type names a layout, the cotangent takes it (the product alone
    # may be ambiguous: both factors split on the summed batch, say)
    out_sharding = None if not aval.has_explicit_layout else aval.sharding.update(
        spec=[aval.sharding.spec[d] for d in source])
    res = dot_general_p.bind(ct, other, dimension_numbers=dims, precision=precision,
                             preferred_element_type=pref, out_sharding=out_sharding)
    res = transpose(res, tuple(int(i) for i in np.argsort(source)))
    if get_aval(res).dtype != aval.dtype:
        res = convert_element_type(res, aval.dtype)
    return res


def _dot_general_transpose(ct, lhs, rhs, *, dimension_numbers, precision=None,
                           preferred_element_type=None, out_sharding=None):
    (lc, rc), (lb, rb) = dimension_numbers
    lhs_undef, rhs_undef = is_undefined_primal(lhs), is_undefined_primal(rhs)
    l_aval = lhs.aval if lhs_undef else get_aval(lhs)
    r_aval = rhs.aval if rhs_undef else get_aval(rhs)
    nb = len(lb)
    n_lf = len(_free_dims(l_aval.ndim, lc, lb))
    n_rf = len(_free_dims(r_aval.ndim, rc, rb))
    l_axes = tuple(range(nb, nb + n_lf))
    r_axes = tuple(range(nb + n_lf, nb + n_lf + n_rf))
    ct_l = ct_r = None
    if lhs_undef:
        ct_l = Zero(ad.tangent_aval(l_aval)) if type(ct) is Zero else _transpose_operand(
            ct, rhs, l_aval, (lc, lb), (rc, rb), l_axes, r_axes, precision)
    if rhs_undef:
        ct_r = Zero(ad.tangent_aval(r_aval)) if type(ct) is Zero else _transpose_operand(
            ct, lhs, r_aval, (rc, rb), (lc, lb), r_axes, l_axes, precision)
    return [ct_l, ct_r]


ad.defbilinear(dot_general_p)
ad.primitive_transposes[dot_general_p] = _dot_general_transpose

# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------


def _shift(dims: Sequence[int], at: int) -> tuple[int, ...]:
    """Renumber axes after inserting a new axis at position ``at``."""
    return tuple(d + (d >= at) for d in dims)


def _dot_general_batch(vals, dims, *, dimension_numbers, out_sharding=None, **params):
    (lhs, rhs), (ld, rd) = vals, dims
    (lc, rc), (lb, rb) = dimension_numbers
    if ld is not None and rd is not None:
        # the mapped axis becomes a new leading batch axis of the dot
        lhs, rhs = batching.moveaxis(lhs, ld, 0), batching.moveaxis(rhs, rd, 0)
        new = ((_shift(lc, 0), _shift(rc, 0)), ((0,) + _shift(lb, 0), (0,) + _shift(rb, 0)))
        out_dim = 0
    elif ld is not None:
        # the mapped axis is a free axis of lhs: it appears among lhs's free output axes
        new = ((_shift(lc, ld), rc), (_shift(lb, ld), rb))
        free = _free_dims(get_aval(lhs).ndim, new[0][0], new[1][0])
        out_dim = len(lb) + free.index(ld)
    else:
        new = ((lc, _shift(rc, rd)), (lb, _shift(rb, rd)))
        n_lf = len(_free_dims(get_aval(lhs).ndim, lc, lb))
        free = _free_dims(get_aval(rhs).ndim, new[0][1], new[1][1])
        out_dim = len(lb) + n_lf + free.index(rd)
    if out_sharding is not None:  # the mapped axis is not split
        parts = list(out_sharding.spec)
        out_sharding = out_sharding.update(spec=parts[:out_dim] + [None] + parts[out_dim:])
    return dot_general_p.bind(lhs, rhs, dimension_numbers=new, out_sharding=out_sharding,
                              **params), out_dim


batching.primitive_batchers[dot_general_p] = _dot_general_batch

