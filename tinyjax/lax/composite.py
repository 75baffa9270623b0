"""Primitives defined by a composition of other lax operations.

A *composite* primitive appears in jaxprs under its own name and carries its own
transformation rules (JAX's derivative formulas, batching), but its value is defined by
a Python function written in other lax operations (it may contain ``while`` loops).
That one definition serves every evaluator: eager evaluation runs it op by op, and the
compiler replaces the primitive's equations by the definition's jaxpr before lowering
(JAX's ``mlir.lower_fun``).  Nothing needs a lowering rule per backend.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from tinyjax.core import Primitive

__all__ = ["composite_definitions", "define_composite"]

# primitive -> definition(*operands, **params) in lax operations
composite_definitions: dict[Primitive, Callable[..., Any]] = {}


def define_composite(prim: Primitive, definition: Callable[..., Any]) -> None:
    """Make ``definition`` the meaning of ``prim``: its eager implementation, and what
    the compiler expands it into."""
    composite_definitions[prim] = definition

    def impl(*values: Any, **params: Any) -> Any:
        out = definition(*values, **params)
        if prim.multiple_results:
            return [np.asarray(o) for o in out]
        return np.asarray(out)
    prim.def_impl(impl)
