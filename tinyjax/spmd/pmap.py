"""``pmap``: map a function over the leading axis of its arguments, one device per element.

``pmap(f, axis_name='i')(x)`` with ``x`` of leading size ``n`` runs ``f`` on ``x[k]`` on
device ``k`` of the first ``n`` devices.  It is ``shard_map`` over a one-axis mesh of those
devices, compiled (as JAX's pmap always is): each mapped argument is split along its
mapped axis into blocks of one element, which the body drops before calling ``f``; each
result gets the axis back and is concatenated along ``out_axes``.  The results are arrays
laid out over the devices.
"""
from __future__ import annotations

import itertools
from functools import wraps
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.api import jit
from tinyjax.api_util import broadcast_prefix, hashable_static
from tinyjax.backends import devices as all_devices
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.shape import reshape
from tinyjax.interpreters import batching
from tinyjax.lax.control_flow.common import trace_open
from tinyjax.sharding import Mesh, PartitionSpec
from tinyjax.spmd.shard_map import bind_shard_map

__all__ = ["pmap"]

_fresh_names = itertools.count()


def _moveaxis(x: Any, src: int, dst: int) -> Any:
    from tinyjax.lax.shape import transpose
    ndim = get_aval(x).ndim
    if src == dst:
        return x
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst, src)
    return transpose(x, perm)


def pmap(fun: Callable, axis_name: Any = None, *, in_axes: Any = 0, out_axes: Any = 0,
         static_broadcasted_argnums: int | Sequence[int] = (), devices: Any = None,
         backend: Optional[str] = None, axis_size: Optional[int] = None,
         donate_argnums: int | Sequence[int] = ()) -> Callable:
    """Run ``fun`` on the devices in parallel, one per element of the mapped axis
    (``in_axes``, a pytree prefix of the positional arguments: an int or None per
    argument); the mapped axis of the results is placed at ``out_axes``.  ``axis_name``
    names the axis for collectives (``lax.psum`` ...); keyword arguments are mapped over
    their leading axis.  Arguments at
    ``static_broadcasted_argnums`` are static (hashable) and given whole to every device."""
    static = (static_broadcasted_argnums,) if isinstance(static_broadcasted_argnums, int) \
        else tuple(static_broadcasted_argnums)
    name = axis_name if axis_name is not None else f"_pmap_axis{next(_fresh_names)}"
    cache: dict = {}

    @wraps(fun)
    def mapped(*args, **kwargs):
        static_vals = tuple((i, hashable_static(args[i])) for i in static if i < len(args))
        dyn = [a for i, a in enumerate(args) if i not in static]
        dyn_in_axes = in_axes
        if isinstance(in_axes, (tuple, list)) and len(in_axes) == len(args):
            dyn_in_axes = tuple(a for i, a in enumerate(in_axes) if i not in static)
        # keyword arguments are mapped over their leading axis (in_axes is positional)
        flat, in_tree = physical.tree_flatten((tuple(dyn), kwargs))
        flat = [as_operand(x) for x in flat]
        axes = broadcast_prefix(dyn_in_axes, tuple(dyn), "pmap in_axes") + \
            [0] * len(physical.tree_leaves(kwargs))
        for a, x in zip(axes, flat):
            shape = get_aval(x).shape
            if a is not None and not -len(shape) <= a < len(shape):
                raise ValueError(f"pmap was requested to map its argument along axis {a}, "
                                 f"which implies that its rank should be at least "
                                 f"{a + 1 if a >= 0 else -a}, but is only {len(shape)} (its "
                                 f"shape is {shape})")
        axes = [None if a is None else a % get_aval(x).ndim for a, x in zip(axes, flat)]
        sizes = {get_aval(x).shape[a] for x, a in zip(flat, axes) if a is not None}
        if axis_size is not None:
            sizes.add(axis_size)
        if len(sizes) != 1:
            raise ValueError(f"pmap got inconsistent sizes for array axes to be mapped: "
                             f"{sorted(sizes)}" if sizes else
                             "pmap requires at least one argument with a mapped axis "
                             "(or axis_size=)")
        n = sizes.pop()
        devs = list(devices) if devices is not None else all_devices(backend)
        if n > len(devs):
            raise ValueError(f"compiling computation that requires {n} logical devices, but "
                             f"only {len(devs)} XLA devices are available (num_replicas={n})")
        key = (static_vals, in_tree, tuple(axes), n, tuple(devs[:n]))
        run = cache.get(key)
        if run is None:
            run = cache[key] = _compile(fun, name, args, static, in_tree, axes, out_axes,
                                        Mesh(np.array(devs[:n], dtype=object), (name,)))
        return run(*[_moveaxis(x, a, 0) if a is not None else x for x, a in zip(flat, axes)])

    return mapped


def _compile(fun, name, args, static, in_tree, axes, out_axes, mesh) -> Callable:
    static_map = {i: args[i] for i in static if i < len(args)}
    n = mesh.size
    store: list = []

    def per_device(*flat_blocks):
        leaves = [reshape(x, get_aval(x).shape[1:]) if a is not None else x
                  for x, a in zip(flat_blocks, axes)]
        dyn_args, kwargs = tree_util.tree_unflatten(in_tree, leaves)
        dyn = iter(dyn_args)
        out = fun(*[static_map[i] if i in static_map else next(dyn)
                    for i in range(len(args))], **kwargs)
        flat_out, out_tree = physical.tree_flatten(out)
        o_axes = broadcast_prefix(out_axes, out, "pmap out_axes")
        store[:] = [out_tree, o_axes]
        outs = [as_operand(o) for o in flat_out]
        return [o if a is None else reshape(o, (1,) + get_aval(o).shape)
                for o, a in zip(outs, o_axes)]

    in_specs = [PartitionSpec() if a is None else PartitionSpec(name) for a in axes]

    def flat_run(*flat):
        blocks = [get_aval(x).update(shape=(1,) + get_aval(x).shape[1:]) if a is not None
                  else get_aval(x) for x, a in zip(flat, axes)]
        with batching.extend_axis_env([(name, n)]):
            jaxpr, consts = trace_open(per_device, blocks)
        out_tree, o_axes = store
        out_specs = [PartitionSpec() if a is None else PartitionSpec(name) for a in o_axes]
        outs = bind_shard_map(jaxpr, consts, list(flat), in_specs, out_specs, mesh,
                              check_vma=False)
        return [o if a is None else _moveaxis(o, 0, a % get_aval(o).ndim)
                for o, a in zip(outs, o_axes)]

    compiled = jit(flat_run)

    def run(*flat):
        outs = compiled(*flat)
        return tree_util.tree_unflatten(store[0], outs)
    return run
