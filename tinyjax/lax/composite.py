"""Primitives defined by a composition of other lax operations.

A *composite* primitive appears in jaxprs under its own name and carries its own
transformation rules (JAX's derivative formulas, batching), but its value is defined by
a Python function written in other lax operations (it may contain ``while`` loops).
That one definition serves every evaluator: it is traced once per signature (operand
types and parameters) into a jaxpr, which eager evaluation interprets and the compiler
inlines in place of the primitive's equation before lowering (JAX's
``mlir.lower_fun``).  Nothing needs a lowering rule per backend.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, eval_jaxpr

__all__ = ["composite_definitions", "composite_jaxpr", "define_composite"]

# primitive -> definition(*operands, **params) in lax operations
composite_definitions: dict[Primitive, Callable[..., Any]] = {}


def define_composite(prim: Primitive, definition: Callable[..., Any]) -> None:
    """Make ``definition`` the meaning of ``prim``: its eager implementation, and what
    the compiler expands it into."""
    composite_definitions[prim] = definition

    def impl(*values: Any, **params: Any) -> Any:
        closed = composite_jaxpr(prim, tuple(get_aval(v) for v in values), **params)
        out = [np.asarray(o) for o in eval_jaxpr(closed.jaxpr, closed.consts, *values)]
        return out if prim.multiple_results else out[0]
    prim.def_impl(impl)


def composite_jaxpr(prim: Primitive, avals: tuple[ShapedArray, ...], **params: Any
                    ) -> ClosedJaxpr:
    """The jaxpr of ``prim``'s definition for operands of ``avals`` (cached)."""
    return _trace(prim, avals, tuple(sorted(params.items())))


@functools.lru_cache(maxsize=256)
def _trace(prim: Primitive, avals: tuple, params: tuple) -> ClosedJaxpr:
    definition = composite_definitions[prim]

    def flat(*args: Any) -> list:
        out = definition(*args, **dict(params))
        return list(out) if prim.multiple_results else [out]
    return trace_to_closed_jaxpr(flat, avals)
