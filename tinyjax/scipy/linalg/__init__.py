"""``tinyjax.scipy.linalg``: SciPy's linear algebra with JAX's semantics -- factorisations
and solves on the ``lax.linalg`` primitives, matrix functions, algorithms on Schur and
Hessenberg forms, and the special matrices.  The ``overwrite_*`` and ``check_finite``
arguments are accepted and ignored, as in JAX."""
from tinyjax.scipy.linalg._factorizations import (cho_factor, cho_solve, cholesky, det, eigh,
                                                  eigh_tridiagonal, expm, expm_frechet, inv,
                                                  lu, lu_factor, lu_solve, polar, qr,
                                                  qr_multiply, schur, solve, solve_triangular,
                                                  sqrtm, svd)
from tinyjax.scipy.linalg._schur_methods import funm, hessenberg, rsf2csf, solve_sylvester
from tinyjax.scipy.linalg._special_matrices import (block_diag, circulant, companion,
                                                    convolution_matrix, dft, fiedler,
                                                    fiedler_companion, hadamard, hankel,
                                                    helmert, hilbert, invhilbert, invpascal,
                                                    leslie, pascal, toeplitz)

__all__ = ["block_diag", "cho_factor", "cho_solve", "cholesky", "circulant", "companion",
           "convolution_matrix", "det", "dft", "eigh", "eigh_tridiagonal", "expm",
           "expm_frechet", "fiedler", "fiedler_companion", "funm", "hadamard", "hankel",
           "helmert", "hessenberg", "hilbert", "inv", "invhilbert", "invpascal", "leslie", "lu",
           "lu_factor", "lu_solve", "pascal", "polar", "qr", "qr_multiply", "rsf2csf", "schur",
           "solve", "solve_sylvester", "solve_triangular", "sqrtm", "svd", "toeplitz"]
