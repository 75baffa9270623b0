"""``jax.experimental.hijax``: JAX's experimental "high-level" types (mutable, pytree-like
abstract values with their own primitives).

tinyjax does not implement them: a :class:`HiPrimitive` raises ``NotImplementedError``
when bound, so code that only *declares* high-level types (Flax's ``nnx`` does, for its
optional hijax Variables) imports and runs its ordinary paths.  The names that are not
specific to high-level types are tinyjax's own.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

from tinyjax.core import AbstractValue, Primitive, ShapedArray
from tinyjax.interpreters.ad import Zero, instantiate_zeros, is_undefined_primal

__all__ = ["AbstractValue", "AvalMutableQDD", "AvalQDD", "HiPrimitive", "HiType",
           "MutableHiType", "ShapedArray", "Zero", "aval_method", "aval_property",
           "control_flow_allowed_effects", "cur_qdd", "instantiate_zeros", "is_undefined_primal",
           "register_hitype"]

# markers on a high-level type: a method or property its tracers expose (as JAX's)
aval_method = namedtuple("aval_method", ["fun"])
aval_property = namedtuple("aval_property", ["fget"])
AvalQDD = namedtuple("AvalQDD", ["aval", "qdd"])
AvalMutableQDD = namedtuple("AvalMutableQDD", ["aval", "mutable_qdd"])


def cur_qdd(x: Any) -> Any:
    """The quasi-dynamic data (the part of a mutable high-level type that may change as the
    program runs) that ``x`` has now.  Only values of mutable high-level types have any:
    for any other value (an array, a reference) it is an AttributeError, as in JAX."""
    return x.cur_qdd()


class EffectTypeSet:
    """A set of effect types (JAX's ``effects.EffectTypeSet``)."""

    def __init__(self):
        self._types: set[type] = set()

    def add_type(self, effect_type: type) -> None:
        self._types.add(effect_type)

    def contains(self, effect: Any) -> bool:
        return any(isinstance(effect, t) for t in self._types)


control_flow_allowed_effects = EffectTypeSet()


class HiType(AbstractValue):
    """The abstract value of a high-level type."""

    __slots__ = ()


class MutableHiType(HiType):
    """The abstract value of a mutable high-level type."""

    __slots__ = ()


# Python type -> the function giving its high-level abstract value
hitypes: dict[type, Callable[[Any], HiType]] = {}


def register_hitype(cls: type, to_aval: Callable[[Any], HiType]) -> None:
    """Declare ``cls`` a high-level type (recorded; tinyjax does not trace such values)."""
    hitypes[cls] = to_aval


class HiPrimitive(Primitive):
    """A primitive on high-level types, its rules written as methods
    (``abstract_eval``, ``to_lojax``, ...).  Binding one raises NotImplementedError."""

    def __init__(self, name: str):
        self.name = name
        self.multiple_results = False
        self.effectful = True

    def bind(self, *args: Any, **params: Any) -> Any:
        raise NotImplementedError(
            f"'{self.name}' is a primitive on JAX's experimental high-level types "
            "(jax.experimental.hijax), which tinyjax does not implement. (Flax: leave "
            "flax_hijax_variable off.)")
