"""Control flow run as Python under ``jax.disable_jit()`` (``jax_disable_jit``), as JAX
runs it: ``cond``/``switch`` call the taken branch when the predicate is known,
``while_loop`` iterates in Python (falling back to the primitive if the predicate is
abstract), ``scan`` loops over the leading axis and stacks the ``ys``.  The functions
then see concrete values, so ``print`` and breakpoints inside them work.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.config import config
from tinyjax.core import Tracer
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.shape import broadcast_in_dim
from tinyjax.lax.slicing import concatenate, index_in_dim

__all__ = ["python_control_flow", "known_int", "python_while", "python_scan"]


def python_control_flow() -> bool:
    """Whether control flow runs as Python (``jax_disable_jit`` is set)."""
    return config.jax_disable_jit


def known_int(x: Any) -> int | None:
    """``int(x)`` when the value of the scalar ``x`` is known, else None."""
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        return None if value is None else int(value)
    return int(x)


def python_while(cond_fun: Callable, body_fun: Callable, init_val: Any) -> Any:
    """The loop in Python; ConcretizationTypeError when the predicate is abstract (the
    caller then stages the primitive)."""
    val = init_val
    while cond_fun(val):
        val = body_fun(val)
    return val


def python_scan(f: Callable, init: Any, xs: Any, length: int, reverse: bool
                ) -> tuple[Any, Any]:
    """The scan as a Python loop over ``length`` slices; ``ys`` stacked on a new axis."""
    xs_flat, xs_tree = physical.tree_flatten(xs)
    carry, ys = init, []
    order = range(length - 1, -1, -1) if reverse else range(length)
    for i in order:
        x = tree_util.tree_unflatten(xs_tree, [index_in_dim(v, i, 0, keepdims=False)
                                               for v in xs_flat])
        carry, y = f(carry, x)
        ys.append(y)
    if reverse:
        ys.reverse()
    if not ys:
        raise ValueError("zero-length scan is not supported in disable_jit() mode because "
                         "the output type is unknown.")
    y_leaves = [physical.tree_leaves(y) for y in ys]
    y_tree = physical.tree_structure(ys[0])
    stacked = [_stack(list(col)) for col in zip(*y_leaves)]
    return carry, tree_util.tree_unflatten(y_tree, stacked)


def _stack(xs: Sequence[Any]) -> Any:
    xs = [as_operand(x) for x in xs]
    return concatenate([broadcast_in_dim(x, (1,) + tuple(x.shape), tuple(range(1, x.ndim + 1)))
                        for x in xs], 0)

