"""``smap``: ``shard_map`` over one mesh axis of the current mesh, its blocks given by
axis numbers (as ``vmap``'s ``in_axes`` / ``out_axes``) instead of PartitionSpecs."""
from __future__ import annotations

from functools import partial, wraps
from typing import Any, Callable, Optional

from tinyjax import tree_util
from tinyjax.sharding import AxisType, PartitionSpec, get_mesh
from tinyjax.spmd.shard_map import Infer, shard_map

__all__ = ["smap"]


def _axis_spec(axis_name: Any, axis: Optional[int]) -> PartitionSpec:
    """The PartitionSpec that splits array axis ``axis`` over ``axis_name`` (None: none)."""
    if axis is None:
        return PartitionSpec()
    return PartitionSpec(*([None] * axis + [axis_name]))


def _is_axis_leaf(x: Any) -> bool:
    return x is None


def smap(f: Optional[Callable] = None, /, *, in_axes: Any = Infer, out_axes: Any,
         axis_name: Any) -> Any:
    """Map ``f`` over the mesh axis ``axis_name`` of the current mesh
    (``jax.set_mesh``): each argument is split along its ``in_axes`` entry (an int, None
    for unsplit, or a tuple with one entry per positional argument; left out, the
    arguments' own layouts over Explicit axes say), the results are put together along
    ``out_axes``.  Usable as a decorator with keyword arguments."""
    if isinstance(axis_name, (list, tuple)):
        raise TypeError(f"smap axis_name should be a `str` or a `Hashable`, but got "
                        f"{axis_name}")
    if in_axes is not None and in_axes is not Infer and not isinstance(in_axes, (int, tuple)):
        raise TypeError("smap in_axes must be an int, None, jax.sharding.Infer, or a tuple of "
                        "entries corresponding to the positional arguments passed to the "
                        f"function, but got {in_axes}.")
    leaves = lambda t: tree_util.tree_leaves(t, is_leaf=_is_axis_leaf)
    if in_axes is not Infer and not all(a is None or isinstance(a, int) for a in leaves(in_axes)):
        raise TypeError("smap in_axes must be an int, None, jax.sharding.Infer, or (nested) "
                        f"container with those types as leaves, but got {in_axes}.")
    if not all(a is None or isinstance(a, int) for a in leaves(out_axes)):
        raise TypeError("smap out_axes must be an int, None, or (nested) container with "
                        f"those types as leaves, but got {out_axes}.")
    to_spec = partial(_axis_spec, axis_name)
    in_specs = Infer if in_axes is Infer else \
        tree_util.tree_map(to_spec, in_axes, is_leaf=_is_axis_leaf)
    out_specs = tree_util.tree_map(to_spec, out_axes, is_leaf=_is_axis_leaf)
    def mapper(fun: Callable) -> Callable:
        mapped = shard_map(fun, in_specs=in_specs, out_specs=out_specs,
                           axis_names=frozenset({axis_name}), check_vma=True)
        if in_axes is not Infer:
            return mapped

        @wraps(fun)
        def inferred(*args: Any) -> Any:
            _check_explicit(axis_name)
            return mapped(*args)
        return inferred
    return mapper if f is None else mapper(f)


def _check_explicit(axis_name: Any) -> None:
    """Left out, ``in_axes`` come from the arguments' types: the axis must be Explicit."""
    mesh = get_mesh()
    if axis_name in mesh.axis_names:
        kind = dict(zip(mesh.axis_names, mesh.axis_types))[axis_name]
        if kind != AxisType.Explicit:
            raise TypeError(f"in_axes was not specified when "
                            f"axis_name={frozenset({axis_name})} was of type {kind}")
