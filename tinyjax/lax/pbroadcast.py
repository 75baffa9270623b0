"""One position's value sent to every position of a named axis (``pbroadcast``), and the
one-sided ``psend`` / ``precv``.

``pbroadcast(x, axis_name, source)`` is ``psum(where(axis_index(axis_name) == source, x,
0), axis_name)``; that is its definition (a composite primitive, :mod:`tinyjax.lax.composite`),
which the compiler expands into the ``psum`` its communicator runs.  Under a vmap of the
named axis (and so in an eager ``shard_map``) the rule below takes the source's slice of
the batch.  Its transpose sums the cotangents over the axis into the source position.

``psend``/``precv`` exist in JAX for GPUs only (its CPU lowering raises); tinyjax has no
compiler token to order one-sided transfers by, so both raise NotImplementedError
(``ppermute`` is the two-sided exchange).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax.core import Primitive, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite
from tinyjax.lax.parallel import _map_tree, _unbound, axis_index, axis_names, axis_size, psum

__all__ = ["pbroadcast", "pbroadcast_p", "psend", "precv"]

pbroadcast_p = Primitive("pbroadcast")


def _is_source(x: Any, axis_name: tuple, source: int) -> Any:
    """A mask of ``x``'s shape: True at the source position of the axis."""
    from tinyjax.lax.elementwise import eq
    from tinyjax.lax.shape import broadcast_in_dim
    here = eq(axis_index(axis_name), as_operand(source, np.int32))
    return broadcast_in_dim(here, get_aval(x).shape, ())


def _only_at_source(x: Any, axis_name: tuple, source: int) -> Any:
    from tinyjax.lax.elementwise import select_n
    from tinyjax.lax.shape_helpers import full_like
    return select_n(_is_source(x, axis_name, source), full_like(x, 0), x)


def _definition(x, *, axis_name, source):
    return psum(_only_at_source(x, axis_name, source), axis_name)


def _check_source(source: int, n: int, axis_name: tuple) -> None:
    if not 0 <= source < n:
        raise ValueError(f"pbroadcast: source={source} must be in [0, {n}) (the size of "
                         f"axis {axis_name})")


def _abstract_eval(x, *, axis_name, source):
    _check_source(source, axis_size(axis_name), axis_name)
    return x


def _transpose(ct, x, *, axis_name, source):
    return [_only_at_source(psum(ad.instantiate_zeros(ct), axis_name), axis_name, source)]


def _batch(axis_data, vals, dims, *, axis_name, source):
    """Over the vmapped axis named here: every instance takes the source's slice (its
    coordinate of ``source``, a linear index row-major over the names); the other names
    are broadcast over by a pbroadcast of the remaining coordinates."""
    from tinyjax.lax.slicing import index_in_dim
    (x,), (d,) = vals, dims
    names = axis_names(axis_name)
    if axis_data.name not in names:
        return pbroadcast_p.bind(x, axis_name=axis_name, source=source), d
    sizes = [axis_data.size if n == axis_data.name else axis_size(n) for n in names]
    _check_source(source, int(np.prod(sizes)), axis_name)
    coords = np.unravel_index(source, sizes)
    k = names.index(axis_data.name)
    rest = tuple(n for n in names if n != axis_data.name)
    if d is not None:
        x = index_in_dim(x, int(coords[k]), d, keepdims=False)
    if rest:
        rest_coords = [c for i, c in enumerate(coords) if i != k]
        rest_source = int(np.ravel_multi_index(rest_coords, [s for i, s in enumerate(sizes)
                                                             if i != k]))
        x = pbroadcast_p.bind(x, axis_name=rest, source=rest_source)
    return x, None


pbroadcast_p.def_abstract_eval(_abstract_eval)
pbroadcast_p.weak_type_rule = lambda weak, **params: bool(weak and weak[0])
ad.deflinear(pbroadcast_p, _transpose)
batching.fancy_primitive_batchers[pbroadcast_p] = _batch
define_composite(pbroadcast_p, _definition, eager=False)


def _unbound_impl(x, *, axis_name, source):
    raise _unbound(axis_names(axis_name)[0])


pbroadcast_p.def_impl(_unbound_impl)


def pbroadcast(x: Any, axis_name: Any, source: int) -> Any:
    """Every position along the named axis (or axes) gets the value of ``x`` at position
    ``source`` (an index into the axis; a linear index, row-major, over several names).
    ``x`` may be a pytree."""
    names = axis_names(axis_name)
    return _map_tree(lambda v: pbroadcast_p.bind(v, axis_name=names, source=int(source)), x)


_ONE_SIDED = ("tinyjax has no compiler tokens to order one-sided transfers by, and JAX "
              "lowers them on GPUs only; use lax.ppermute, the two-sided exchange")


def psend(x: Any, axis_name: Any, perm: Sequence[tuple[int, int]]) -> Any:
    """JAX's one-sided send (GPU only in JAX): raises NotImplementedError in tinyjax."""
    raise NotImplementedError(f"lax.psend: {_ONE_SIDED}")


def precv(token: Any, out_shape: Any, axis_name: Any, perm: Sequence[tuple[int, int]]) -> Any:
    """JAX's one-sided receive (GPU only in JAX): raises NotImplementedError in tinyjax."""
    raise NotImplementedError(f"lax.precv: {_ONE_SIDED}")
