"""``tinyjax.lax.linalg``: JAX's linear-algebra primitives.

Each is a primitive over the trailing matrix (or vector) dimensions of its operands,
mapped over the leading ones, with JAX's abstract evaluation, derivative rules and
batching.  Eagerly they call SciPy's LAPACK (the library jaxlib calls on the CPU);
under ``jit`` they are library calls of the compiled program.
"""
from tinyjax.lax.linalg.factorizations import (cholesky, cholesky_p, lu, lu_p,  # noqa: F401
                                               lu_pivots_to_permutation,
                                               lu_pivots_to_permutation_p, qr, qr_p, schur,
                                               schur_p)
from tinyjax.lax.linalg.solves import (lu_solve, triangular_solve,  # noqa: F401
                                       triangular_solve_p, tridiagonal_solve,
                                       tridiagonal_solve_p)
from tinyjax.lax.linalg.spectral import (EigImplementation, EighImplementation,  # noqa: F401
                                         SvdAlgorithm, eig, eig_p, eigh, eigh_p, svd, svd_p)

__all__ = ["cholesky", "cholesky_p", "eig", "eig_p", "eigh", "eigh_p", "lu", "lu_p",
           "lu_pivots_to_permutation", "lu_pivots_to_permutation_p", "qr", "qr_p", "schur",
           "schur_p", "svd", "svd_p", "triangular_solve", "triangular_solve_p",
           "tridiagonal_solve", "tridiagonal_solve_p", "SvdAlgorithm", "EighImplementation",
           "EigImplementation"]
