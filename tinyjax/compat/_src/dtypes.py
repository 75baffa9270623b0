"""``jax._src.dtypes``: the dtype names libraries import from JAX's private module."""
import numpy as np

from tinyjax.dtypes import ExtendedDType, TypePromotionError, extended, finfo

__all__ = ["DType", "ExtendedDType", "TypePromotionError", "extended", "finfo",
           "supports_inf"]

DType = np.dtype


def supports_inf(dtype) -> bool:
    """Whether floating ``dtype`` can represent infinity (not the float8 ``fn`` types)."""
    return bool(np.isinf(np.asarray(np.inf, np.float32).astype(dtype)))
