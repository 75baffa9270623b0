"""``jax.ref``: mutable array references (see :mod:`tinyjax.lax.refs` for how transforms
thread them)."""
from tinyjax.lax.refs import (AbstractRef, Ref, addupdate, empty_ref, free_ref, freeze, get,
                              new_ref, set, swap)

__all__ = ["AbstractRef", "Ref", "addupdate", "empty_ref", "free_ref", "freeze", "get",
           "new_ref", "set", "swap"]
