"""``jax.interpreters.mlir`` under :func:`tinyjax.install_as_jax`: how a library's own
primitive compiles under ``jit``.

JAX lowers each primitive to MLIR; tinyjax lowers jaxprs to its own low-level ops.  The
lowering that libraries register in practice is ``lower_fun(fn, multiple_results)``: "the
primitive computes what ``fn`` computes".  :func:`register_lowering` makes ``fn`` the
primitive's composite definition (:mod:`tinyjax.lax.composite`): the compiler traces
``fn`` for each equation's operand types and lowers the result with tinyjax's own rules,
on every device.  A rule written against MLIR itself (``rule(ctx, *values)``) cannot run
here: such a primitive keeps no lowering, and a ``jit`` that contains it evaluates its
program op by op (``DEBUG=1`` says so), with the primitive's own eager implementation.
"""
from __future__ import annotations

from typing import Any, Callable

from tinyjax.core import Primitive
from tinyjax.lax.composite import define_composite

__all__ = ["LoweringFunction", "lower_fun", "register_lowering"]


class LoweringFunction:
    """What :func:`lower_fun` returns: ``fun`` as the definition of a primitive."""

    __slots__ = ("fun", "multiple_results")

    def __init__(self, fun: Callable[..., Any], multiple_results: bool):
        self.fun, self.multiple_results = fun, multiple_results

    def __repr__(self) -> str:
        return f"lower_fun({getattr(self.fun, '__name__', self.fun)!r})"


def lower_fun(fun: Callable[..., Any], multiple_results: bool = True) -> LoweringFunction:
    """The lowering "compute ``fun(*operands, **params)``" (a list of results when
    ``multiple_results``)."""
    return LoweringFunction(fun, multiple_results)


def register_lowering(prim: Primitive, rule: Any, platform: str | None = None,
                      **options: Any) -> None:
    """Compile ``prim`` as ``rule`` says, on every device (``platform`` is accepted for
    JAX's signature: tinyjax's definitions are not per platform).  Only rules made by
    :func:`lower_fun` can be used; any other rule is recorded as unusable (see the
    module's documentation)."""
    if not isinstance(rule, LoweringFunction):
        unusable_rules[prim] = rule
        return
    fun, many = rule.fun, rule.multiple_results

    def definition(*operands: Any, **params: Any) -> Any:
        out = fun(*operands, **params)
        if many == prim.multiple_results:
            return out
        return [out] if prim.multiple_results else out[0]

    define_composite(prim, definition, eager=False)


# primitive -> an MLIR-level rule registered for it (kept to say why it does not compile)
unusable_rules: dict[Primitive, Any] = {}
