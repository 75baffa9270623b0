"""``jax._src.core``: the core names libraries import from JAX's private module."""
from tinyjax.core import ShapedArray

__all__ = ["ShapedArray"]
