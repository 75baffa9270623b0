"""``solve``: a square linear system through one LU factorisation, differentiated by
:func:`~tinyjax.lax.custom_linear_solve` so that every derivative (forward or reverse,
any order) reuses the factors instead of differentiating LAPACK."""
from __future__ import annotations

from typing import Any

from tinyjax.core import get_aval
from tinyjax.lax.control_flow.linear_solve import custom_linear_solve
from tinyjax.lax.elementwise import stop_gradient
from tinyjax.lax.linalg._common import matmul
from tinyjax.lax.linalg.factorizations import lu
from tinyjax.lax.linalg.solves import lu_solve

__all__ = ["solve"]


def solve(a: Any, b: Any) -> Any:
    """``x`` with ``a @ x = b`` for ``a`` of shape ``(..., m, m)`` and ``b`` of shape
    ``(..., m, k)`` with the same batch dimensions."""
    a_shape, b_shape = get_aval(a).shape, get_aval(b).shape
    if len(a_shape) < 2 or a_shape[-1] != a_shape[-2] or b_shape[:-2] != a_shape[:-2] or \
            len(b_shape) != len(a_shape) or b_shape[-2] != a_shape[-1]:
        raise ValueError("The arguments to solve must have shapes a=[..., m, m] and "
                         f"b=[..., m, k]; got a={a_shape} and b={b_shape}")
    factors, _, perm = lu(stop_gradient(a))
    return custom_linear_solve(lambda x: matmul(a, x), b,
                               solve=lambda _, x: lu_solve(factors, perm, x, trans=0),
                               transpose_solve=lambda _, x: lu_solve(factors, perm, x, trans=1))
