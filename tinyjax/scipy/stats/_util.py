"""Helpers shared by the distributions."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.numpy._util import promote_dtypes


def log1mexp(x: Any) -> Any:
    """``log(1 - exp(-x))`` for ``x >= 0``, accurate for small and large ``x``
    (``log(-expm1(-x))`` below log 2, ``log1p(-exp(-x))`` above)."""
    small = x < np.log(2)
    return jnp.where(small, lax.log(-lax.expm1(-jnp.where(small, x, 1.0))),
                     lax.log1p(-lax.exp(-jnp.where(small, 1.0, x))))


def promote_dtypes_inexact(*args: Any) -> list:
    """The arguments converted to their common inexact dtype (shapes unchanged)."""
    ops = [jnp.asarray(o) for o in promote_dtypes(*args)]
    if ops and not jnp.issubdtype(ops[0].dtype, jnp.inexact):
        ops = [o.astype(dtypes.default_float_dtype()) for o in ops]
    return ops
