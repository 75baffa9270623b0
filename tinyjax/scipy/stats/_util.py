"""Helpers shared by the distributions."""
from __future__ import annotations

from typing import Any

import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.numpy._util import promote_dtypes


def promote_dtypes_inexact(*args: Any) -> list:
    """The arguments converted to their common inexact dtype (shapes unchanged)."""
    ops = [jnp.asarray(o) for o in promote_dtypes(*args)]
    if ops and not jnp.issubdtype(ops[0].dtype, jnp.inexact):
        ops = [o.astype(dtypes.default_float_dtype()) for o in ops]
    return ops
