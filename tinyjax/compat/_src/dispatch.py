"""``jax._src.dispatch``: waiting for the side effects of computations issued so far."""
from tinyjax.dispatch import effects_barrier as wait_for_tokens

__all__ = ["wait_for_tokens"]
