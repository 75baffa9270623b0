"""``lax.scaled_dot``: a contraction of block-scaled operands (microscaling formats such
as float8 values with one scale per block of the contracting axis).

Each operand is multiplied by its scale, repeated along the contracting axes to the
operand's size, both in bfloat16, and the products contracted by ``dot_general`` in
``preferred_element_type`` (bfloat16 by default), as JAX's reference decomposition does.
"""
from __future__ import annotations

from typing import Any, Sequence

from tinyjax import dtypes
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.dot import dot_general
from tinyjax.lax.elementwise import convert_element_type, mul
from tinyjax.lax.shape import broadcast_in_dim, reshape

__all__ = ["scaled_dot"]


def scaled_dot(lhs: Any, rhs: Any, *, lhs_scale: Any = None, rhs_scale: Any = None,
               dimension_numbers: Any = None, preferred_element_type: Any = None) -> Any:
    """``(lhs * lhs_scale) @ (rhs * rhs_scale)`` contracted by ``dot_general`` with
    ``dimension_numbers`` (default: the last axis of ``lhs`` with the second-to-last of
    ``rhs``, leading axes batched). A scale has its operand's rank and shape except along
    contracting axes, where the operand's size is a multiple (at least 2) of the scale's;
    a missing scale is 1."""
    lhs, rhs = as_operand(lhs), as_operand(rhs)
    lhs_aval, rhs_aval = get_aval(lhs), get_aval(rhs)
    if dimension_numbers is None:
        n = lhs_aval.ndim
        if n < 2:
            raise TypeError("scaled_dot does not support 0-rank and 1-rank operands.")
        dimension_numbers = (((n - 1,), (n - 2,)), (tuple(range(n - 2)), tuple(range(n - 2))))
    (lhs_contracting, rhs_contracting), (lhs_batch, rhs_batch) = dimension_numbers
    out_dtype = dtypes.bfloat16 if preferred_element_type is None else \
        dtypes.canonicalize_dtype(preferred_element_type)
    scales = [None if s is None else as_operand(s) for s in (lhs_scale, rhs_scale)]
    ranks = [lhs_aval.ndim, rhs_aval.ndim] + [get_aval(s).ndim for s in scales if s is not None]
    if len(set(ranks)) > 1:
        raise TypeError(f"scaled_dot: all operands and scales must have one rank, got ranks "
                        f"{ranks} (lhs, rhs, then the scales given).")
    if len(lhs_batch) != len(rhs_batch) or len(lhs_contracting) != len(rhs_contracting):
        raise TypeError(f"scaled_dot: lhs and rhs need as many batch and as many contracting "
                        f"dimensions, got {dimension_numbers}.")
    for i, j in zip(lhs_contracting, rhs_contracting):
        if lhs_aval.shape[i] != rhs_aval.shape[j]:
            raise TypeError(f"scaled_dot: LHS contracting dim {i} of size {lhs_aval.shape[i]} "
                            f"does not match RHS contracting dim {j} of size "
                            f"{rhs_aval.shape[j]}.")
    lhs = _scaled("LHS", lhs, scales[0], lhs_contracting)
    rhs = _scaled("RHS", rhs, scales[1], rhs_contracting)
    return dot_general(lhs, rhs, dimension_numbers, preferred_element_type=out_dtype)


def _scaled(side: str, operand: Any, scale: Any, contracting: Sequence[int]) -> Any:
    """``operand * scale`` in bfloat16, the scale repeated along the contracting axes."""
    operand = convert_element_type(operand, dtypes.bfloat16)
    if scale is None:
        return operand
    shape, scale_shape = get_aval(operand).shape, get_aval(scale).shape
    for i, (size, scale_size) in enumerate(zip(shape, scale_shape)):
        if i not in contracting:
            if size != scale_size:
                raise TypeError(f"scaled_dot: {side} dim {i} of size {size} does not match "
                                f"scale dim size {scale_size}.")
        elif size % scale_size or size // scale_size < 2:
            raise TypeError(f"scaled_dot: {side} contracting dim {i} of size {size} must be "
                            f"a multiple (at least 2) of its scale's dim size {scale_size}.")
    scale = convert_element_type(scale, dtypes.bfloat16)
    # each scale entry repeated over its block: a new axis after every axis, then merged
    blocks = [(s, n // s) for s, n in zip(scale_shape, shape)]
    expanded = broadcast_in_dim(scale, tuple(d for b in blocks for d in b),
                                tuple(range(0, 2 * len(shape), 2)))
    return mul(operand, reshape(expanded, shape))
