"""``jax.ad``: what a VJP function's ``with_refs`` takes and gives, per argument.

``f_vjp.with_refs(*wants)(cotangent)``, where ``f_vjp`` comes from ``jax.vjp`` and
``wants`` has the structure of the primal arguments, with at each leaf:

* :class:`GradValue` -- return that argument's cotangent (what ``f_vjp(cotangent)``
  returns);
* a reference (``jax.new_ref``) -- add the cotangent into it; :class:`GradRef` is
  returned in its place;
* :class:`DontWant` -- the cotangent is not wanted; :class:`DidntWant` is returned in its
  place.

:class:`GradRef` and :class:`DidntWant` are pytrees with no leaves, :class:`GradValue` and
:class:`DontWant` are leaves.
"""
from __future__ import annotations

import dataclasses

from tinyjax.tree_util import register_dataclass

__all__ = ["DidntWant", "DontWant", "GradRef", "GradValue"]


@dataclasses.dataclass(frozen=True)
class GradValue:
    """Ask ``with_refs`` for this argument's cotangent as a value."""


@register_dataclass
@dataclasses.dataclass(frozen=True)
class GradRef:
    """In ``with_refs``' result: this argument's cotangent went into its reference."""


@dataclasses.dataclass(frozen=True)
class DontWant:
    """Tell ``with_refs`` that this argument's cotangent is not wanted."""


@register_dataclass
@dataclasses.dataclass(frozen=True)
class DidntWant:
    """In ``with_refs``' result: this argument's cotangent was not wanted."""
