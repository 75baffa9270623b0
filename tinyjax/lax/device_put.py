"""``device_put_p``: the primitive ``jax.device_put`` binds on traced values.

Eager ``tinyjax.device_put`` moves arrays itself (:mod:`tinyjax.dispatch`); on tracers it
binds ``device_put_p``, as JAX does, so the placement shows in jaxprs.  Within one compiled
program every value lives on the program's device: the primitive is the identity there (the
compiler expands it into nothing), in eager evaluation of a jaxpr too, under vmap, and in
differentiation (linear: its tangents and cotangents are put as well).
"""
from __future__ import annotations

import enum
from typing import Any

from tinyjax.core import Primitive, ShapedArray
from tinyjax.interpreters import ad, batching
from tinyjax.lax.composite import define_composite

__all__ = ["ArrayCopySemantics", "copy_semantics_for", "device_put_p"]


class ArrayCopySemantics(enum.Enum):
    """Whether ``device_put``'s result may share its operand's buffer (JAX's names)."""
    ALWAYS_COPY = 0
    REUSE_INPUT = 1
    DONATE_INPUT = 2

    def __repr__(self) -> str:
        return f"ArrayCopySemantics.{self.name}"


def copy_semantics_for(donate: bool, may_alias: bool | None) -> ArrayCopySemantics:
    """The copy semantics of ``device_put(..., donate=donate, may_alias=may_alias)``."""
    if donate and may_alias:
        raise ValueError("may_alias and donate cannot be True at the same time.")
    alias = not donate if may_alias is None else may_alias
    if alias:
        return ArrayCopySemantics.REUSE_INPUT
    return ArrayCopySemantics.DONATE_INPUT if donate else ArrayCopySemantics.ALWAYS_COPY


def _abstract_eval(*avals: ShapedArray, devices: tuple, srcs: tuple,
                   copy_semantics: tuple) -> list[ShapedArray]:
    if not len(avals) == len(devices) == len(srcs) == len(copy_semantics):
        raise TypeError(f"device_put takes one device, src and copy semantics per operand, "
                        f"got {len(avals)} operands, {len(devices)} devices, {len(srcs)} srcs "
                        f"and {len(copy_semantics)} copy semantics")
    return list(avals)


def _transpose(cts: list, *operands: Any, devices: tuple, srcs: tuple,
               copy_semantics: tuple) -> list:
    """The cotangents, put back where the operands came from (a fresh copy each)."""
    out: list[Any] = [None] * len(operands)
    moved = [i for i, (ct, x) in enumerate(zip(cts, operands))
             if ad.is_undefined_primal(x) and type(ct) is not ad.Zero]
    for i, (ct, x) in enumerate(zip(cts, operands)):
        if ad.is_undefined_primal(x) and type(ct) is ad.Zero:
            out[i] = ad.Zero(ad.tangent_aval(x.aval))
    if moved:
        back = device_put_p.bind(*[cts[i] for i in moved], devices=tuple(srcs[i] for i in moved),
                                 srcs=tuple(devices[i] for i in moved),
                                 copy_semantics=(ArrayCopySemantics.ALWAYS_COPY,) * len(moved))
        for i, ct in zip(moved, back):
            out[i] = ct
    return out


def _batch(vals: list, dims: list, **params: Any) -> tuple[list, list]:
    return device_put_p.bind(*vals, **params), list(dims)


device_put_p = Primitive("device_put", multiple_results=True)
device_put_p.def_abstract_eval(_abstract_eval)
device_put_p.def_impl(lambda *values, **params: list(values))
device_put_p.weak_type_rule = lambda weak, **params: list(weak)
define_composite(device_put_p, lambda *xs, **params: list(xs), eager=False)
ad.deflinear(device_put_p, _transpose)
batching.primitive_batchers[device_put_p] = _batch
