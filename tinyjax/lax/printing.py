"""How the lax primitives' equations print (``jaxpr.pp_eqn_rules``): as JAX prints them,
leaving out the parameters the result type implies (a ``sharding``, a broadcast's
``shape``), those at their trivial value, and those JAX's primitives do not have."""
from __future__ import annotations

from typing import Any

from tinyjax.jaxpr import pp_eqn_rules
from tinyjax.lax.control_flow.loops import scan_p
from tinyjax.lax.dot import dot_general_p
from tinyjax.lax.elementwise import convert_element_type_p
from tinyjax.lax.reductions import (reduce_and_p, reduce_max_p, reduce_min_p, reduce_or_p,
                                    reduce_prod_p, reduce_xor_p)
from tinyjax.lax.shape import broadcast_in_dim_p

__all__: list[str] = []


def _without(*names: str):
    def rule(params: dict) -> list[tuple[str, Any]]:
        return sorted((k, v) for k, v in params.items() if k not in names)
    return rule


def _broadcast_in_dim(params: dict) -> list[tuple[str, Any]]:
    drop = {"shape", "sharding"} | ({"broadcast_dimensions"}
                                    if not params.get("broadcast_dimensions") else set())
    return sorted((k, v) for k, v in params.items() if k not in drop)


def _dot_general(params: dict) -> list[tuple[str, Any]]:
    out = {k: v for k, v in params.items() if v is not None and k != "out_sharding"}
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    out["dimension_numbers"] = ((list(lc), list(rc)), (list(lb), list(rb)))
    return sorted(out.items())


pp_eqn_rules[broadcast_in_dim_p] = _broadcast_in_dim
pp_eqn_rules[convert_element_type_p] = _without("sharding")
pp_eqn_rules[dot_general_p] = _dot_general
pp_eqn_rules[scan_p] = _without("linear")
for _p in (reduce_and_p, reduce_max_p, reduce_min_p, reduce_or_p, reduce_prod_p,
           reduce_xor_p):
    pp_eqn_rules[_p] = _without("out_sharding")
