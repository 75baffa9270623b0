"""``tinyjax.lax.linalg``: JAX's linear-algebra primitives.

Each is a primitive over the trailing matrix (or vector) dimensions of its operands,
mapped over the leading ones, with JAX's abstract evaluation, derivative rules and
batching.  Eagerly they call SciPy's LAPACK (the library jaxlib calls on the CPU);
under ``jit`` they are library calls of the compiled program.  ``symmetric_product`` and
``cholesky_update`` are composites of other lax operations (as JAX lowers them on the
CPU), and ``qdwh`` a function of them, as in JAX.
"""
from tinyjax.lax.linalg.factorizations import (cholesky, cholesky_p, lu, lu_p,  # noqa: F401
                                               lu_pivots_to_permutation,
                                               lu_pivots_to_permutation_p, qr, qr_p, schur,
                                               schur_p)
from tinyjax.lax.linalg.householder import (hessenberg, hessenberg_p,  # noqa: F401
                                            householder_product, householder_product_p,
                                            ormqr, ormqr_p, tridiagonal, tridiagonal_p)
from tinyjax.lax.linalg.low_rank import (cholesky_update, cholesky_update_p,  # noqa: F401
                                         symmetric_product, symmetric_product_p)
from tinyjax.lax.linalg.polar import qdwh  # noqa: F401
from tinyjax.lax.linalg.solves import (lu_solve, triangular_solve,  # noqa: F401
                                       triangular_solve_p, tridiagonal_solve,
                                       tridiagonal_solve_p)
from tinyjax.lax.linalg.spectral import (EigImplementation, EighImplementation,  # noqa: F401
                                         SvdAlgorithm, eig, eig_p, eigh, eigh_p, svd, svd_p)

__all__ = ["cholesky", "cholesky_p", "cholesky_update", "cholesky_update_p", "eig", "eig_p",
           "eigh", "eigh_p", "hessenberg", "hessenberg_p", "householder_product",
           "householder_product_p", "lu", "lu_p", "lu_pivots_to_permutation",
           "lu_pivots_to_permutation_p", "ormqr", "ormqr_p", "qdwh", "qr", "qr_p", "schur",
           "schur_p", "svd", "svd_p", "symmetric_product", "symmetric_product_p",
           "triangular_solve", "triangular_solve_p", "tridiagonal", "tridiagonal_p",
           "tridiagonal_solve", "tridiagonal_solve_p", "SvdAlgorithm", "EighImplementation",
           "EigImplementation"]
