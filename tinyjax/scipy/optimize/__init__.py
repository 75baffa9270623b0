"""tinyjax.scipy.optimize: ``minimize`` with BFGS and L-BFGS, as ``jax.scipy.optimize``;
``line_search`` (the strong-Wolfe search they use) is exposed too."""
from tinyjax.scipy.optimize._line_search import line_search
from tinyjax.scipy.optimize._minimize import OptimizeResults, minimize

__all__ = ["OptimizeResults", "line_search", "minimize"]
