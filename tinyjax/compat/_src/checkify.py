"""``jax._src.checkify``: the names Flax's ``nnx.checkify`` takes from JAX's private
module, which are :mod:`tinyjax.experimental.checkify`'s."""
from typing import TypeVar

from tinyjax.experimental.checkify import Error, JaxException, checkify, user_checks

__all__ = ["Error", "JaxException", "Out", "checkify", "user_checks"]

Out = TypeVar("Out")
