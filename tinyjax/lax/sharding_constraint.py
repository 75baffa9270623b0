"""``with_sharding_constraint``: how a value of a computation over several devices is laid
out at that point.

The ``sharding_constraint`` primitive is the identity on values.  Under ``jit`` over a
mesh the partitioner lays the value out as its ``sharding`` says (a reshard); evaluated
eagerly it places the array so (``device_put``); on one device it is nothing.  A
PartitionSpec given instead of a Sharding is resolved against the current mesh by the
function that :func:`register_sharding_resolver` installs (``tinyjax.sharding`` does, at
import).
"""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

from tinyjax.array import ArrayImpl
from tinyjax.core import Primitive, get_aval, is_eager
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand

__all__ = ["with_sharding_constraint", "sharding_constraint_p"]

sharding_constraint_p = Primitive("sharding_constraint")
sharding_constraint_p.def_abstract_eval(lambda x, *, sharding: x)
sharding_constraint_p.weak_type_rule = lambda weak, **params: weak[0]

# (resolve(sharding or spec) -> Sharding, place(array, sharding) -> array)
_resolvers: list[tuple[Callable, Callable]] = []


def register_sharding_resolver(resolve: Callable[[Any], Any],
                               place: Callable[[Any, Any], Any]) -> None:
    """``resolve(s)``: a Sharding for a Sharding or a PartitionSpec (over the current
    mesh); ``place(x, sharding)``: a concrete array laid out so."""
    _resolvers[:] = [(resolve, place)]


def placed_like(out: Any, x: Any) -> Any:
    """``out`` (a new array, such as ``full_like(x, ...)``) laid out as ``x`` is where
    ``x`` is a concrete array committed to its devices (a sharded one, say) and ``out`` has
    its shape (or ``x`` is replicated), as JAX's ``*_like`` functions place their results;
    otherwise ``out``."""
    if type(x) is not ArrayImpl or not x.committed or not is_eager():
        return out
    sharding = x.sharding
    if get_aval(out).shape != x.shape and not sharding.is_fully_replicated:
        return out
    return _resolvers[0][1](out, sharding)


def _impl(x, *, sharding):
    return _resolvers[0][1](x, sharding)


sharding_constraint_p.def_impl(_impl)
ad.deflinear(sharding_constraint_p, lambda ct, x, *, sharding: [
    sharding_constraint_p.bind(ad.instantiate_zeros(ct), sharding=sharding)])


def _batch(vals, dims, *, sharding):
    (x,), (d,) = vals, dims
    spec = sharding.spec
    parts = list(spec) + [None] * (x.ndim - 1 - len(spec))
    parts.insert(d, None)  # the batch dimension is not split
    return sharding_constraint_p.bind(x, sharding=sharding.with_spec(type(spec)(*parts))), d


batching.primitive_batchers[sharding_constraint_p] = _batch


def type_sharding(sharding: Any, ndim: int) -> Any:
    """``sharding`` (a Sharding, or a PartitionSpec over the current mesh) as a parameter
    that names a result's layout (``dot_general``'s ``out_sharding``): a NamedSharding
    over the mesh's abstract shape whose spec has one entry per dimension."""
    s = _resolvers[0][0](sharding)
    spec = s.spec
    parts = list(spec) + [None] * (ndim - len(spec))
    return s.update(mesh=s.mesh.abstract_mesh, spec=type(spec)(
        *parts, unreduced=spec.unreduced, reduced=spec.reduced))


def with_sharding_constraint(x: Any, shardings: Any) -> Any:
    """``x`` (a pytree) laid out as ``shardings`` (a Sharding or PartitionSpec, or a pytree
    prefix of ``x`` of them) says, inside a computation over several devices."""
    from tinyjax import tree_util
    from tinyjax.tree_util import physical
    resolve = _resolvers[0][0]
    leaves, tree = physical.tree_flatten(x)
    # (attributes of the class: a container that forwards attribute lookups to its value,
    # as Flax's Variable does, is a node)
    is_spec = lambda s: s is None or hasattr(type(s), "device_set") or \
        hasattr(type(s), "axes_of")
    spec_leaves, spec_tree = tree_util.tree_flatten(shardings, is_leaf=is_spec)
    if spec_tree.num_leaves == 1 and spec_tree != tree:
        spec_leaves = spec_leaves * len(leaves)
    elif len(spec_leaves) != len(leaves):
        subtrees = spec_tree.flatten_up_to(x)
        spec_leaves = [s for s, sub in zip(spec_leaves, subtrees)
                       for _ in physical.tree_leaves(sub)]
    place = _resolvers[0][1]
    for v, s in zip(leaves, spec_leaves):
        if s is not None:  # the layout fits the value (ValueError naming both otherwise)
            resolve(s).shard_shape(get_aval(as_operand(v)).shape)
    if is_eager():  # a concrete array: placed so at once
        out = [v if s is None else place(as_operand(v), resolve(s))
               for v, s in zip(leaves, spec_leaves)]
    else:
        out = [v if s is None else sharding_constraint_p.bind(as_operand(v),
                                                               sharding=resolve(s))
               for v, s in zip(leaves, spec_leaves)]
    return tree_util.tree_unflatten(tree, out)


def with_out_sharding(fun: Callable) -> Callable:
    """``fun`` taking JAX's keyword ``out_sharding`` too: the sharding its result is to
    have (a Sharding or a PartitionSpec over the current mesh), applied to the result with
    :func:`with_sharding_constraint`."""
    signature = inspect.signature(fun)
    params = list(signature.parameters.values())
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    params.insert(at, inspect.Parameter("out_sharding", inspect.Parameter.KEYWORD_ONLY,
                                        default=None))

    @functools.wraps(fun)
    def wrapped(*args: Any, out_sharding: Any = None, **kwargs: Any) -> Any:
        out = fun(*args, **kwargs)
        return out if out_sharding is None else with_sharding_constraint(out, out_sharding)
    wrapped.__signature__ = signature.replace(parameters=params)
    return wrapped
