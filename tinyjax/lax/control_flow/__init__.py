"""Structured control flow: ``cond``, ``switch``, ``while_loop``, ``fori_loop``,
``scan``, ``map``, ``associative_scan``, ``custom_linear_solve`` and ``custom_root`` (JAX's
``jax.lax`` control flow).

Each primitive holds its sub-programs as open jaxprs (closed-over values are
explicit leading operands) and has rules for every transform: jvp, partial
evaluation and transposition (reverse mode of ``cond`` and ``scan``), batching
and dead-code elimination.  Eagerly the loops run in Python over the sub-jaxprs.
"""
from tinyjax.lax.control_flow.associative_scan import associative_scan
from tinyjax.lax.control_flow.conditionals import cond, cond_p, switch
from tinyjax.lax.control_flow.linear_solve import custom_linear_solve, linear_solve_p
from tinyjax.lax.control_flow.root import custom_root, custom_root_p
from tinyjax.lax.control_flow.loops import fori_loop, map, scan, scan_p, while_loop, while_p

__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map", "associative_scan",
           "cond_p", "while_p", "scan_p", "custom_linear_solve", "linear_solve_p",
           "custom_root", "custom_root_p"]
