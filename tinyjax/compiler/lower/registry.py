"""The lowering rules, registered per primitive.

``register_lowering(prim, rule)``: ``rule(avals_in, avals_out, *operands, **params)`` returns
the low-level op (:class:`~tinyjax.compiler.ops.LazyOp`) of the primitive's result, or a list
of them for a primitive with several results.  An equation whose primitive has no rule makes
:func:`~tinyjax.compiler.lower.lower_jaxpr` raise ``NotImplementedError("no lowering for
primitive '<name>'")`` (``jit`` then evaluates the program op by op).

Call primitives whose body the compiler lowers in place (``checkpoint``) are registered with
``register_inlined_call`` by the module that defines them; primitives computed by a library
routine (linear algebra, FFT) with ``register_library_call``: each is a step of its own in
the compiled program, the routine given by the backend; host callbacks (``pure_callback``,
``io_callback``, ``debug_callback``: a host step of the compiled program) with
``register_host_callback``.
"""
from __future__ import annotations

from typing import Callable, Union

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive


__all__ = ["LoweringRule", "lowering_rules", "register_lowering", "inlined_calls",
           "register_inlined_call", "library_calls", "register_library_call",
           "host_callbacks", "register_host_callback",
           "SUPPORTED_DTYPES", "check_dtype"]

LoweringRule = Callable[..., Union["LazyOp", list["LazyOp"]]]  # noqa: F821 - compiler.ops
lowering_rules: dict[Primitive, LoweringRule] = {}
# call primitive -> body(eqn, operands) -> (the jaxpr lowered in its place, its operands)
inlined_calls: dict[Primitive, Callable] = {}
library_calls: set[Primitive] = set()
host_callbacks: set[Primitive] = set()

SUPPORTED_DTYPES = frozenset(np.dtype(d) for d in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, dtypes.bfloat16, np.float32, np.float64))


def register_lowering(primitive: Primitive, rule: LoweringRule) -> None:
    """Lower equations of ``primitive`` with ``rule``."""
    lowering_rules[primitive] = rule


def _jaxpr_param(eqn, operands):
    return eqn.params["jaxpr"], operands


def register_inlined_call(primitive: Primitive, body: Callable = _jaxpr_param) -> None:
    """Lower equations of the call primitive ``primitive`` by lowering a jaxpr in place:
    ``body(eqn, operands)`` gives it and its operands (default: the param ``jaxpr``, on
    all the operands)."""
    inlined_calls[primitive] = body


def register_library_call(primitive: Primitive) -> None:
    """Compute equations of ``primitive`` by a library routine the backend provides
    (``backend.library_call``), as a step of the compiled program."""
    library_calls.add(primitive)


def register_host_callback(primitive: Primitive) -> None:
    """Compile equations of ``primitive`` as a call back into Python: its param ``callback``
    takes the operands as host arrays and returns the results as host arrays."""
    host_callbacks.add(primitive)


def check_dtype(dt) -> np.dtype:
    dt = np.dtype(dt)
    if dt not in SUPPORTED_DTYPES:
        raise NotImplementedError(f"no lowering for dtype '{dt.name}'")
    return dt
