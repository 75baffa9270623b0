"""``jax.ref``: mutable array references (``jax.new_ref``).

tinyjax's arrays are immutable values and its jaxprs have no state effects, so it has no
references: :func:`new_ref` raises ``NotImplementedError``.  :class:`Ref` and
:class:`AbstractRef` exist as the types such values would have (no value is ever one),
so that code which only asks ``isinstance(x, jax.Ref)`` runs.
"""
from __future__ import annotations

from typing import Any

from tinyjax.core import AbstractValue

__all__ = ["AbstractRef", "Ref", "new_ref"]


class AbstractRef(AbstractValue):
    """The abstract value of a mutable reference to an array."""

    __slots__ = ()


class Ref:
    """A mutable reference to an array (none can be made in tinyjax: see :func:`new_ref`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        new_ref(*args, **kwargs)


def new_ref(init_val: Any, *, memory_space: Any = None, kind: Any = None) -> Ref:
    """JAX makes a mutable reference holding ``init_val``; tinyjax has no mutable state
    and raises NotImplementedError."""
    raise NotImplementedError(
        "jax.new_ref: tinyjax has no mutable array references (its jaxprs carry no state "
        "effects); pass arrays as values instead. (Flax: leave flax_array_ref off.)")
