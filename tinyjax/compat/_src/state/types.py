"""``jax._src.state.types``: the abstract value of a mutable reference."""
from tinyjax.ref import AbstractRef

__all__ = ["AbstractRef"]
