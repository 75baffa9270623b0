"""The primitives the compiler leaves to numerical libraries: the linear-algebra
factorisations and solves (:mod:`tinyjax.lax.linalg`) and the FFT (:mod:`tinyjax.lax.fft`)
are library steps of a compiled program (LAPACK or cuSOLVER, pocketfft or cuFFT), not
fused kernels; ``custom_linear_solve`` and ``custom_root`` are lowered as their ``solve``
jaxprs (their derivative rules have run before the compiler sees them)."""
from __future__ import annotations

from tinyjax.compiler.lower.registry import (library_calls, register_inlined_call,
                                             register_library_call)
from tinyjax.lax import linalg
from tinyjax.lax.control_flow.linear_solve import linear_solve_p
from tinyjax.lax.control_flow.root import custom_root_p
from tinyjax.lax.fft import fft_p

for _p in (linalg.cholesky_p, linalg.lu_p, linalg.lu_pivots_to_permutation_p, linalg.qr_p,
           linalg.svd_p, linalg.eigh_p, linalg.eig_p, linalg.schur_p,
           linalg.triangular_solve_p, linalg.tridiagonal_solve_p, linalg.hessenberg_p,
           linalg.householder_product_p, linalg.ormqr_p, linalg.tridiagonal_p, fft_p):
    register_library_call(_p)


def _solve_body(eqn, operands):
    """The ``solve`` jaxpr of a custom_linear_solve and its operands (its consts, then b)."""
    counts = eqn.params["const_lengths"]
    start = counts.matvec + counts.vecmat
    n_b = len(operands) - sum(counts)
    return eqn.params["jaxprs"].solve, \
        operands[start:start + counts.solve] + operands[len(operands) - n_b:]


register_inlined_call(linear_solve_p, _solve_body)


def _root_body(eqn, operands):
    """The ``solve`` jaxpr of a custom_root and its operands (its consts, then the guess)."""
    counts = eqn.params["const_lengths"]
    n_guess = len(operands) - sum(counts)
    return eqn.params["jaxprs"].solve, \
        operands[counts.f:counts.f + counts.solve] + operands[len(operands) - n_guess:]


register_inlined_call(custom_root_p, _root_body)

__all__ = ["library_calls"]
