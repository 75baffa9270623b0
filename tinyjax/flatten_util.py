"""``jax.flatten_util.ravel_pytree``: a pytree of arrays as one flat vector and back."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax, tree_util

__all__ = ["ravel_pytree"]


def ravel_pytree(pytree: Any) -> tuple[Any, Callable[[Any], Any]]:
    """``(flat, unravel)``: the leaves of ``pytree`` raveled and concatenated into one 1-D
    array of their common dtype, and the function rebuilding the pytree (each leaf with
    its own shape and dtype) from such an array."""
    leaves, treedef = tree_util.tree_flatten(pytree)
    arrays = [jnp.asarray(x) for x in leaves]
    if not arrays:
        return jnp.zeros((0,), dtypes.default_float_dtype()), _Unravel(treedef, [], None)
    dtype = dtypes.result_type(*arrays)
    flat = jnp.concatenate([jnp.ravel(a).astype(dtype) for a in arrays])
    return flat, _Unravel(treedef, [(a.shape, a.dtype) for a in arrays], dtype)


class _Unravel:
    """The inverse of one ravel: a flat vector back into the pytree."""

    def __init__(self, treedef, specs, dtype):
        self.treedef, self.specs, self.dtype = treedef, specs, dtype
        self.size = sum(int(np.prod(s, dtype=np.int64)) for s, _ in specs)

    def __call__(self, flat: Any) -> Any:
        flat = jnp.asarray(flat)
        if flat.shape != (self.size,):
            raise ValueError(f"The unravel function expected an array of shape "
                             f"{(self.size,)}, got shape {flat.shape}.")
        if self.dtype is not None and flat.dtype != self.dtype:
            raise TypeError(f"The unravel function expected an array of dtype {self.dtype}, "
                            f"got dtype {flat.dtype}.")
        out, start = [], 0
        for shape, dt in self.specs:
            n = int(np.prod(shape, dtype=np.int64))
            piece = lax.reshape(lax.slice(flat, (start,), (start + n,)), shape)
            out.append(piece if piece.dtype == dt else lax.convert_element_type(piece, dt))
            start += n
        return self.treedef.unflatten(out)
