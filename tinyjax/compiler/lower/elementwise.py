"""Lowering rules of the elementwise primitives (:mod:`tinyjax.lax.elementwise`): the ALU ops
named after a primitive lower to themselves; the rest are compositions of ALU ops."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import check_dtype, register_lowering
from tinyjax.compiler.ops import ALU, register_reference_impl
from tinyjax.core import Primitive
from tinyjax.lax import elementwise as lax_elementwise
from tinyjax.lax.elementwise import (bitcast_convert_type_p, clamp_p, convert_element_type_p,
                                     copy_p, integer_pow_p, round_p, select_n_p, square_p,
                                     stop_gradient_p)
from tinyjax.lax.sharding_constraint import sharding_constraint_p


def _elementwise(name: str):
    def rule(avals_in, avals_out, *xs, **params):
        out = avals_out[0]
        xs = [ops.broadcast_to(x, out.shape) for x in xs]
        return ops.alu(name, *xs, dtype=out.dtype)
    return rule


_PRIMITIVES = {p.name: p for p in vars(lax_elementwise).values() if isinstance(p, Primitive)}
for _name, _alu in ALU.items():
    if _alu.primitive:
        register_lowering(_PRIMITIVES[_name], _elementwise(_name))
        register_reference_impl(_name, _PRIMITIVES[_name].impl)
register_reference_impl("CAST", convert_element_type_p.impl)


def _square(avals_in, avals_out, x):
    return ops.alu("mul", x, x)


register_lowering(square_p, _square)


def _round(avals_in, avals_out, x, *, rounding_method):
    return ops.alu("round_even" if int(rounding_method) == 1 else "round_away", x)


register_lowering(round_p, _round)


def _integer_pow(avals_in, avals_out, x, *, y):
    if y == 0:
        return ops.const(1, x.dtype, x.shape)
    n, acc, base = abs(int(y)), None, x
    while n:  # square-and-multiply
        if n & 1:
            acc = base if acc is None else ops.alu("mul", acc, base)
        n >>= 1
        if n:
            base = ops.alu("mul", base, base)
    return ops.alu("recip", acc) if y < 0 else acc


register_lowering(integer_pow_p, _integer_pow)


def _identity(avals_in, avals_out, *xs, **params):
    return xs[0] if len(xs) == 1 else list(xs)


register_lowering(stop_gradient_p, _identity)
register_lowering(copy_p, _identity)
register_lowering(sharding_constraint_p, _identity)  # one device: nothing to lay out


def _convert(avals_in, avals_out, x, *, new_dtype, **params):
    return ops.cast(x, check_dtype(new_dtype))


register_lowering(convert_element_type_p, _convert)


def _bitcast_convert(avals_in, avals_out, x, *, new_dtype):
    new = check_dtype(new_dtype)
    if new.itemsize != x.dtype.itemsize or np.bool_ in (new, x.dtype) or \
            2 in (new.itemsize, x.dtype.itemsize) and "f" in (new.kind, x.dtype.kind) or \
            "bfloat16" in (new.name, x.dtype.name):
        raise NotImplementedError("no lowering for primitive 'bitcast_convert_type' between "
                                  f"{x.dtype.name} and {new.name}")
    return ops.bitcast(x, new)


register_lowering(bitcast_convert_type_p, _bitcast_convert)


def _select_n(avals_in, avals_out, which, *cases):
    shape = avals_out[0].shape
    which = ops.broadcast_to(which, shape)
    if len(cases) == 1:
        return cases[0]
    if which.dtype == np.bool_:
        return ops.where(which, cases[1], cases[0])
    out = cases[-1]
    for k in range(len(cases) - 2, -1, -1):  # np.choose(mode="clip")
        out = ops.where(ops.alu("le", which, ops.const(k, which.dtype, shape)), cases[k], out)
    return out


register_lowering(select_n_p, _select_n)


def _clamp(avals_in, avals_out, lo, x, hi):
    lo, hi = ops.broadcast_to(lo, x.shape), ops.broadcast_to(hi, x.shape)
    return ops.alu("min", ops.alu("max", x, lo), hi)


register_lowering(clamp_p, _clamp)
