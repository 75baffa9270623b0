"""``jax.debug.inspect_array_sharding``: call back with the sharding of a value, as soon as
it is known -- at once for a concrete array; inside ``jit``, when the program is compiled.

Inside ``jit`` it is the ``inspect_sharding`` primitive (no results; kept by dead-code
elimination as an effect): the partitioner, which gives every value of a program over a
mesh its layout, calls back with the value's layout as a NamedSharding and emits nothing;
a program for one device is compiled with the call inlined as nothing, calling back with
the device's SingleDeviceSharding.  Once compiled and cached, a program calls back no more
(as in JAX).
"""
from __future__ import annotations

from typing import Any, Callable

from tinyjax import tree_util
from tinyjax.array import ArrayImpl
from tinyjax.backends import get_device
from tinyjax.compiler.lower.registry import register_inlined_call
from tinyjax.core import Primitive
from tinyjax.interpreters import ad, batching
from tinyjax.jaxpr import Jaxpr, Var
from tinyjax.lax._helpers import as_operand
from tinyjax.sharding import NamedSharding, Sharding, SingleDeviceSharding, sharding_of, \
    spec_of_axes
from tinyjax.spmd.partition import register_partition_rule

__all__ = ["inspect_array_sharding", "inspect_sharding_p"]

inspect_sharding_p = Primitive("inspect_sharding")
inspect_sharding_p.multiple_results = True
inspect_sharding_p.effectful = True


def _impl(x, *, callback):
    callback(sharding_of(x) if isinstance(x, ArrayImpl) else
             SingleDeviceSharding(get_device()))
    return []


def _jvp(primals, tangents, *, callback):
    inspect_sharding_p.bind(primals[0], callback=callback)
    return [], []


def _batch(vals, dims, *, callback):
    inspect_sharding_p.bind(vals[0], callback=callback)
    return [], []


def _partition(ctx, eqn, ins):
    (_, layout), = ins
    eqn.params["callback"](NamedSharding(ctx.mesh, spec_of_axes(layout)))
    return []


def _on_one_device(eqn, operands):
    eqn.params["callback"](SingleDeviceSharding(get_device()))
    return Jaxpr([], [Var(v.aval) for v in eqn.invars], [], []), operands


inspect_sharding_p.def_impl(_impl)
inspect_sharding_p.def_abstract_eval(lambda x, *, callback: [])
ad.primitive_jvps[inspect_sharding_p] = _jvp
batching.primitive_batchers[inspect_sharding_p] = _batch
register_partition_rule(inspect_sharding_p, _partition, replaces=True)
register_inlined_call(inspect_sharding_p, _on_one_device)


def inspect_array_sharding(value: Any, *, callback: Callable[[Sharding], None]) -> None:
    """Call ``callback`` with the sharding of each array of the pytree ``value``: at once
    for a concrete array; inside ``jit``, when the program is compiled (the sharding the
    partitioner gives the value; a program for one device calls back with its device's)."""
    if not callable(callback):
        raise TypeError(f"inspect_array_sharding: callback must be callable, got {callback!r}")
    for leaf in tree_util.tree_leaves(value):
        if isinstance(leaf, ArrayImpl):
            callback(sharding_of(leaf))
        else:
            inspect_sharding_p.bind(as_operand(leaf), callback=callback)
