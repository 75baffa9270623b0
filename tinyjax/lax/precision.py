"""``reduce_precision`` (round floats to fewer exponent and mantissa bits, as XLA's
ReducePrecision) and ``optimization_barrier`` (an identity the compiler may not see
through), each a primitive with its full rule set."""
from __future__ import annotations

import operator
from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, Tracer, _concretization_message
from tinyjax.errors import ConcretizationTypeError
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import instantiate_zeros
from tinyjax.lax._helpers import as_operand

__all__ = ["reduce_precision", "reduce_precision_p", "reduce_precision_bits",
           "optimization_barrier", "optimization_barrier_p"]


class BitOps(NamedTuple):
    """The integer operations :func:`reduce_precision_bits` is written in, so that the
    eager implementation (numpy) and the compiler's lowering (ALU ops) share it."""
    const: Callable[[int], Any]
    and_: Callable[[Any, Any], Any]
    or_: Callable[[Any, Any], Any]
    add: Callable[[Any, Any], Any]
    shr: Callable[[Any, int], Any]
    gt: Callable[[Any, Any], Any]
    le: Callable[[Any, Any], Any]
    where: Callable[[Any, Any, Any], Any]


def reduce_precision_bits(bits: Any, dt: np.dtype, exponent_bits: int, mantissa_bits: int,
                          ops: BitOps) -> Any:
    """XLA's ReducePrecision on the unsigned-integer view ``bits`` of floats of dtype
    ``dt``: round the mantissa to nearest even at ``mantissa_bits``, then send exponents
    beyond the reduced range to signed infinity or signed zero.  (NaNs are restored by
    the caller.)"""
    info = dtypes.finfo(dt)
    src_mant, src_exp, nbits = info.nmant, info.nexp, dt.itemsize * 8
    c = ops.const
    if mantissa_bits < src_mant:
        drop = src_mant - mantissa_bits
        last_bit = 1 << drop
        last = ops.shr(ops.and_(bits, c(last_bit)), drop)
        bias = ops.add(last, c((last_bit >> 1) - 1))
        bits = ops.and_(ops.add(bits, bias), c(~(last_bit - 1) & ((1 << nbits) - 1)))
    if exponent_bits < src_exp:
        sign_mask = 1 << (nbits - 1)
        exp_mask = ((1 << src_exp) - 1) << src_mant
        bias = (1 << (src_exp - 1)) - 1
        reduced = (1 << (exponent_bits - 1)) - 1
        exponent = ops.and_(bits, c(exp_mask))
        overflows = ops.gt(exponent, c((bias + reduced) << src_mant))
        underflows = ops.le(exponent, c((bias - reduced) << src_mant))
        signed_zero = ops.and_(bits, c(sign_mask))
        signed_inf = ops.or_(signed_zero, c(exp_mask))
        bits = ops.where(overflows, signed_inf, ops.where(underflows, signed_zero, bits))
    return bits


def _numpy_bit_ops(udt: np.dtype) -> BitOps:
    return BitOps(const=lambda v: udt.type(v), and_=np.bitwise_and, or_=np.bitwise_or,
                  add=lambda a, b: (a + b).astype(udt),
                  shr=lambda a, n: np.right_shift(a, udt.type(n)),
                  gt=np.greater, le=np.less_equal, where=np.where)


def _reduce_precision_impl(x, *, exponent_bits, mantissa_bits):
    x = np.asarray(x)
    udt = np.dtype(f"uint{x.dtype.itemsize * 8}")
    with np.errstate(over="ignore"):
        bits = reduce_precision_bits(x.view(udt), x.dtype, exponent_bits, mantissa_bits,
                                     _numpy_bit_ops(udt))
    out = np.asarray(bits, udt).view(x.dtype)
    return np.where(np.isnan(x), x, out)


def _reduce_precision_abstract_eval(x, *, exponent_bits, mantissa_bits):
    if not dtypes.is_float(x.dtype):
        raise TypeError(f"reduce_precision does not accept dtype "
                        f"{dtypes.short_dtype_name(x.dtype)}. Accepted dtypes are subtypes "
                        "of floating.")
    if exponent_bits < 1:
        raise ValueError(f"reduce_precision: exponent_bits must be positive; got "
                         f"{exponent_bits}")
    if mantissa_bits < 0:
        raise ValueError(f"reduce_precision: mantissa_bits must be non-negative; got "
                         f"{mantissa_bits}")
    return x


reduce_precision_p = Primitive("reduce_precision")
reduce_precision_p.def_impl(_reduce_precision_impl)
reduce_precision_p.def_abstract_eval(_reduce_precision_abstract_eval)
reduce_precision_p.weak_type_rule = lambda weak, **_: weak[0]
ad.deflinear(reduce_precision_p,
             lambda ct, x, **params: [reduce_precision_p.bind(instantiate_zeros(ct), **params)])
batching.defvectorized(reduce_precision_p)


def _static_int(x: Any, name: str) -> int:
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        if value is None:
            raise ConcretizationTypeError(
                _concretization_message(x, "a concrete value") +
                f"\nIt arose in the {name} argument of lax.reduce_precision.")
        x = value
    return operator.index(x)


def reduce_precision(operand: Any, exponent_bits: int, mantissa_bits: int) -> Any:
    """``operand`` rounded to a float format with ``exponent_bits`` exponent and
    ``mantissa_bits`` mantissa bits (round to nearest even; out-of-range values become
    signed infinities or zeros), in ``operand``'s dtype."""
    exponent_bits = _static_int(exponent_bits, "exponent_bits")
    mantissa_bits = _static_int(mantissa_bits, "mantissa_bits")
    return reduce_precision_p.bind(as_operand(operand), exponent_bits=exponent_bits,
                                   mantissa_bits=mantissa_bits)


# ---------------------------------------------------------------------------
# optimization_barrier
# ---------------------------------------------------------------------------

optimization_barrier_p = Primitive("optimization_barrier")
optimization_barrier_p.multiple_results = True
optimization_barrier_p.def_impl(lambda *args: list(args))
optimization_barrier_p.def_abstract_eval(lambda *avals: list(avals))
optimization_barrier_p.weak_type_rule = lambda weak, **_: list(weak)


def _barrier_jvp(primals, tangents):
    tangents = [instantiate_zeros(t) for t in tangents]
    return (optimization_barrier_p.bind(*primals),
            optimization_barrier_p.bind(*tangents))


def _barrier_transpose(cts, *primals):
    return optimization_barrier_p.bind(*[instantiate_zeros(ct) for ct in cts])


ad.primitive_jvps[optimization_barrier_p] = _barrier_jvp
ad.primitive_transposes[optimization_barrier_p] = _barrier_transpose
batching.primitive_batchers[optimization_barrier_p] = \
    lambda vals, dims, **params: (optimization_barrier_p.bind(*vals), list(dims))


def optimization_barrier(operand: Any, /) -> Any:
    """``operand`` (any pytree of arrays) unchanged; the compiler may not move
    computations across this point (e.g. fold a rematerialised value into its use)."""
    leaves, tree = physical.tree_flatten(operand)
    out = optimization_barrier_p.bind(*[as_operand(x) for x in leaves])
    return tree_util.tree_unflatten(tree, out)

