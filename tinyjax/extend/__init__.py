"""``jax.extend``: the interfaces that libraries extending JAX build on -- new primitives
and jaxpr passes (:mod:`~tinyjax.extend.core`), wrapped functions for the transform
plumbing (:mod:`~tinyjax.extend.linear_util`) and source information
(:mod:`~tinyjax.extend.source_info_util`)."""
from tinyjax.extend import core, linear_util, source_info_util

__all__ = ["core", "linear_util", "source_info_util"]
