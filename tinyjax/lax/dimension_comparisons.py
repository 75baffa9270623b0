"""The comparisons of dimension sizes, ``eq_to``, ``le_to`` and ``lt_to``.

JAX binds them where shape polymorphism compares symbolic dimension sizes (a symbolic
size's ``<`` and ``==``); tinyjax's shapes are always concrete, so they are the
elementwise comparisons ``eq``, ``le`` and ``lt`` under their own names: the same
operands, dtypes and errors, a bool result, zero derivatives, and the compiler expands
them into the plain comparisons.
"""
from __future__ import annotations

import numpy as np

from tinyjax.core import Primitive
from tinyjax.interpreters.ad import defjvp_zero
from tinyjax.lax import elementwise as ew
from tinyjax.lax.composite import define_composite

__all__ = ["eq_to_p", "le_to_p", "lt_to_p"]


def _comparison(name: str, np_fn, accepted, plain: Primitive) -> Primitive:
    prim = ew.binop(name, np_fn, accepted, out_dtype=np.bool_)
    defjvp_zero(prim)
    define_composite(prim, plain.bind, eager=False)  # (the numpy implementation stays)
    return prim


eq_to_p = _comparison("eq_to", np.equal, ew._ANY, ew.eq_p)
le_to_p = _comparison("le_to", np.less_equal, ew._ORDERED, ew.le_p)
lt_to_p = _comparison("lt_to", np.less, ew._ORDERED, ew.lt_p)
