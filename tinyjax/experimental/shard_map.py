"""``jax.experimental.shard_map``: the older spelling of :func:`tinyjax.shard_map`
(``shard_map(f, mesh, in_specs, out_specs, check_rep=True)``)."""
from __future__ import annotations

from typing import Any, Callable

from tinyjax.spmd.shard_map import shard_map as _shard_map

__all__ = ["shard_map"]


def shard_map(f: Callable, mesh: Any = None, in_specs: Any = None, out_specs: Any = None,
              check_rep: bool = True, auto: Any = frozenset()) -> Callable:
    """Map ``f`` over the devices of ``mesh`` (see :func:`tinyjax.shard_map`)."""
    if out_specs is None:
        raise TypeError("shard_map() missing required argument: 'out_specs'")
    return _shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                      check_rep=check_rep, auto=auto)
