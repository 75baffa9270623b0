"""``dce_sink``: marks values as used, so that dead-code elimination keeps what computes them.

``dce_sink_p`` takes any number of operands and has no results; it is effectful, so
jaxpr DCE (``jit``'s, ``pe.dce_jaxpr``'s, the control-flow primitives') never removes it and
keeps the equations its operands come from.  Its eager evaluation does nothing; the compiler
expands it into nothing, so a compiled program computes only what its outputs and side
effects need (JAX's XLA likewise removes the computation unless ``prevent_mlir_dce``, which
tinyjax's compiler does not honour).
"""
from __future__ import annotations

from typing import Any

from tinyjax import tree_util
from tinyjax.core import Primitive
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite

__all__ = ["dce_sink", "dce_sink_p"]


def dce_sink(val: Any, *, prevent_mlir_dce: bool = False) -> None:
    """Mark every leaf of the pytree ``val`` as used (one ``dce_sink`` equation per leaf)."""
    tree_util.tree_map(lambda x: dce_sink_p.bind(as_operand(x),
                                                 prevent_mlir_dce=prevent_mlir_dce), val)


def _sink_rule(vals: list, *rest: Any, **params: Any) -> tuple[list, list]:
    """Sink the operands as they are at this level (primals; batched values); no results."""
    dce_sink_p.bind(*vals, **params)
    return [], []


def _transpose(cts: list, *operands: Any, **params: Any) -> list:
    # no results: nothing flows back to a linear operand
    return [ad.Zero(ad.tangent_aval(x.aval)) if ad.is_undefined_primal(x) else None
            for x in operands]


dce_sink_p = Primitive("dce_sink", multiple_results=True)
dce_sink_p.effectful = True
dce_sink_p.def_abstract_eval(lambda *avals, **params: [])
define_composite(dce_sink_p, lambda *operands, prevent_mlir_dce: [], eager=False)
dce_sink_p.def_impl(lambda *operands, **params: [])
ad.primitive_jvps[dce_sink_p] = _sink_rule
ad.primitive_transposes[dce_sink_p] = _transpose
batching.primitive_batchers[dce_sink_p] = _sink_rule
