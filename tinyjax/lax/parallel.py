"""Collectives over named axes: psum, pmean, pmax, pmin, all_gather, axis_index.

A named axis is created by ``vmap(..., axis_name=name)``.  Under that vmap the
batching trace resolves a collective that names its axis (a reduction or gather
across the batch axis); collectives naming an outer axis pass through to the
enclosing trace.  Outside any such vmap the name is unbound, a NameError.
"""
from __future__ import annotations

from typing import Any, Sequence

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.interpreters import ad, batching

__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "axis_index", "axis_size", "psum_p",
           "pmax_p",
           "pmin_p", "all_gather_p", "axis_index_p"]


def _names(axis_name: Any) -> tuple:
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _unbound(*args, axis_name, **params):
    raise NameError(f"unbound axis name: {_names(axis_name)[0]}. The axis name must be "
                    "bound by an enclosing vmap(..., axis_name=...).")


def _collective(name: str, multiple_results: bool = False) -> Primitive:
    prim = Primitive(name, multiple_results)
    prim.def_impl(_unbound)
    return prim


psum_p = _collective("psum")
pmax_p = _collective("pmax")
pmin_p = _collective("pmin")
all_gather_p = _collective("all_gather")
axis_index_p = _collective("axis_index")


def _sizes(axis_name) -> list[int]:
    sizes = [batching.bound_axis_size(n) for n in _names(axis_name)]
    if None in sizes:
        _unbound(axis_name=_names(axis_name)[sizes.index(None)])
    return sizes


def _reduce_abstract_eval(x, *, axis_name):
    _sizes(axis_name)
    return x


def _all_gather_abstract_eval(x, *, axis_name, axis, tiled):
    (size,) = _sizes(axis_name)
    shape = list(x.shape)
    if tiled:
        shape[axis] *= size
    else:
        shape.insert(axis, size)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _axis_index_abstract_eval(*, axis_name):
    import numpy as np
    _sizes(axis_name)
    return ShapedArray((), np.int32)


for _p in (psum_p, pmax_p, pmin_p):
    _p.def_abstract_eval(_reduce_abstract_eval)
all_gather_p.def_abstract_eval(_all_gather_abstract_eval)
axis_index_p.def_abstract_eval(_axis_index_abstract_eval)


def _reduce_rule(prim: Primitive, reduction: str, scale_unbatched: bool):
    def rule(axis_data, vals, dims, *, axis_name):
        from tinyjax.lax import reductions
        names = _names(axis_name)
        (x,), (d,) = vals, dims
        if axis_data.name not in names:
            # Another vmap's axis: elementwise along this batch axis.
            return prim.bind(x, axis_name=axis_name), d
        if d is None:
            from tinyjax.lax.elementwise import mul
            out = mul(x, as_operand(axis_data.size, get_aval(x).dtype)) if scale_unbatched \
                else x
        else:
            out = getattr(reductions, reduction)(x, (d,))
        rest = tuple(n for n in names if n != axis_data.name)
        if rest:
            out = prim.bind(out, axis_name=rest)
        return out, None
    return rule


batching.axis_primitive_batchers[psum_p] = _reduce_rule(psum_p, "reduce_sum", True)
batching.axis_primitive_batchers[pmax_p] = _reduce_rule(pmax_p, "reduce_max", False)
batching.axis_primitive_batchers[pmin_p] = _reduce_rule(pmin_p, "reduce_min", False)


def _all_gather_rule(axis_data, vals, dims, *, axis_name, axis, tiled):
    from tinyjax.lax.shape import reshape
    (x,), (d,) = vals, dims
    if axis_data.name != axis_name:
        out = all_gather_p.bind(x, axis_name=axis_name, axis=axis, tiled=tiled)
        return out, None if d is None else (d if d < axis else d + 1)
    out = batching.moveaxis(x, d, axis, axis_data.size)
    if tiled:
        shape = get_aval(out).shape
        out = reshape(out, shape[:axis] + (shape[axis] * shape[axis + 1],) + shape[axis + 2:])
    return out, None


batching.axis_primitive_batchers[all_gather_p] = _all_gather_rule


def _axis_index_rule(axis_data, vals, dims, *, axis_name):
    from tinyjax.lax.shape import iota
    import numpy as np
    if axis_data.name != axis_name:
        return axis_index_p.bind(axis_name=axis_name), None
    return iota(np.int32, axis_data.size), 0


batching.axis_primitive_batchers[axis_index_p] = _axis_index_rule

# Differentiation: psum is linear (its own transpose); pmax/pmin pick the winner.
ad.deflinear(psum_p, lambda ct, x, *, axis_name: [psum(ct, axis_name)])


def _pminmax_jvp(prim):
    def rule(primals, tangents, *, axis_name):
        from tinyjax.lax.elementwise import convert_element_type, div, eq, mul
        (x,), (t,) = primals, tangents
        out = prim.bind(x, axis_name=axis_name)
        if type(t) is ad.Zero:
            return out, ad.Zero.from_primal(out)
        hit = convert_element_type(eq(x, out), get_aval(t).dtype)
        return out, div(psum(mul(t, hit), axis_name), psum(hit, axis_name))
    ad.primitive_jvps[prim] = rule


_pminmax_jvp(pmax_p)
_pminmax_jvp(pmin_p)


def _all_gather_transpose(ct, x, *, axis_name, axis, tiled):
    from tinyjax.lax.shape import reshape
    from tinyjax.lax.slicing import dynamic_slice_in_dim
    width = x.aval.shape[axis] if tiled else 1
    start = axis_index(axis_name) * width
    piece = dynamic_slice_in_dim(psum(ct, axis_name), start, width, axis)
    return [reshape(piece, x.aval.shape)]


ad.deflinear(all_gather_p, _all_gather_transpose)
ad.defjvp_zero(axis_index_p)

# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def _map_tree(fn, x):
    from tinyjax import tree_util
    return tree_util.tree_map(lambda leaf: fn(as_operand(leaf)), x)


def psum(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Sum ``x`` (a pytree) over the named vmapped axis."""
    if axis_index_groups is not None:
        raise NotImplementedError("psum: axis_index_groups is not supported")
    return _map_tree(lambda v: psum_p.bind(v, axis_name=axis_name), x)


def pmean(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Mean of ``x`` (a pytree) over the named vmapped axis."""
    from tinyjax import tree_util
    from tinyjax.lax.elementwise import convert_element_type, div
    total = psum(x, axis_name, axis_index_groups=axis_index_groups)
    count = psum(1, axis_name)
    return tree_util.tree_map(
        lambda v: div(v, convert_element_type(count, get_aval(v).dtype)), total)


def pmax(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Maximum of ``x`` (a pytree) over the named vmapped axis."""
    return _map_tree(lambda v: pmax_p.bind(v, axis_name=axis_name), x)


def pmin(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Minimum of ``x`` (a pytree) over the named vmapped axis."""
    return _map_tree(lambda v: pmin_p.bind(v, axis_name=axis_name), x)


def all_gather(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None,
               axis: int = 0, tiled: bool = False) -> Any:
    """Stack the values of ``x`` from every position of the named axis at ``axis``
    (concatenate along ``axis`` with ``tiled``)."""
    def gather(v):
        ndim = get_aval(v).ndim
        ax = axis % (ndim + 1) if not tiled else axis % max(ndim, 1)
        return all_gather_p.bind(v, axis_name=axis_name, axis=ax, tiled=tiled)
    return _map_tree(gather, x)


def axis_index(axis_name: Any) -> Any:
    """The position along the named vmapped axis (int32)."""
    return axis_index_p.bind(axis_name=axis_name)


def axis_size(axis_name: Any) -> int:
    """The size of the named vmapped axis (a tuple of names: the product)."""
    size = psum(1, axis_name)
    value = getattr(size, "_value", None)
    return int(value) if value is not None else size
