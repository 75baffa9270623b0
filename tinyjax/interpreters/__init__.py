"""The interpreters: each transform is a ``Trace``/``Tracer`` pair with its rule table --
jvp (``ad``), batching, partial evaluation and staging into a jaxpr.

The interpreters' own helpers (symbolic zeros made concrete, tangents added, batch axes
moved) build with a few lax operations; lax sits above the interpreters, so it registers
them here when it is imported (:func:`register_lax_ops`).  Rules of lax families whose
modules would otherwise import each other (a broadcast's transpose is a reduction, a
reduction's a broadcast) call the same late-bound operations."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Callable

lax_ops = SimpleNamespace()
"""``full``, ``add``, ``broadcast_in_dim``, ``transpose``, ``reduce_sum``, ``cumprod`` and
``shift``, as tinyjax.lax defines them."""


def register_lax_ops(**ops: Callable) -> None:
    """Give the interpreters the lax operations they build with (called by tinyjax.lax)."""
    vars(lax_ops).update(ops)
