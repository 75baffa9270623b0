"""Traced bodies of ``scan``, ``while_loop``, ``fori_loop`` and ``cond``/``switch``, kept.

As JAX does, a control-flow primitive called again with the same function object on
arguments of the same types (under the same tracing flags) reuses the function's earlier
jaxpr instead of running its Python again (Flax's ``nnx.scan`` counts traces).  A trace
that closes over tracers of an enclosing transform, or captures mutable array
references, is not kept: its jaxpr belongs to that one call.
"""
from __future__ import annotations

import weakref
from typing import Any, Callable, Sequence

from tinyjax import config
from tinyjax.core import ShapedArray, Tracer
from tinyjax.jaxpr import Jaxpr
from tinyjax.lax import refs
from tinyjax.lax.control_flow.common import trace_open

# the flags a trace can depend on (types, promotion, precision of the staged equations)
_TRACE_FLAGS = ("jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
                "jax_debug_nans", "jax_debug_infs", "jax_softmax_custom_jvp")

traces: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def trace_body(fun: Callable, key: Any, flat: Callable[..., tuple[list, Any]],
               avals: Sequence[ShapedArray]) -> tuple[Jaxpr, list[Any], Any]:
    """``trace_open`` of ``flat``, a flat function around the user's ``fun`` that returns
    (outputs, anything else it learnt: output trees, say): (jaxpr, consts, that other
    thing), from an earlier trace with the same ``key`` (how ``flat`` wraps ``fun``),
    ``avals`` and flags where there is one."""
    try:
        table = traces.setdefault(fun, {})
        full_key = (key, tuple(avals), tuple(getattr(config, f) for f in _TRACE_FLAGS))
        cached = table.get(full_key)
    except TypeError:  # a function that is not weakly referenceable or not hashable
        table = full_key = cached = None
    if cached is not None:
        return cached
    found: list = []

    def outputs(*args: Any) -> list:
        outs, learnt = flat(*args)
        found.append(learnt)
        return outs

    with refs.collect() as captured:
        jaxpr, consts = trace_open(outputs, avals)
    traced = (jaxpr, consts, found[0])
    if table is not None and not captured.refs and \
            not any(isinstance(c, Tracer) for c in consts):
        table[full_key] = traced
    return traced
