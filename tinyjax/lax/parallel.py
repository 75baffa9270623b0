"""Collectives over named axes: psum, pmean, pmax, pmin, all_gather, psum_scatter,
ppermute, all_to_all, pswapaxes, axis_index, axis_size, pvary.

A named axis is bound by ``vmap(..., axis_name=name)``, by ``shard_map`` (a mesh axis) or
by ``pmap``.  Under a vmap of that name the batching trace resolves a collective naming it
(the batching rules below, e.g. a sum over the batch dimension); under ``shard_map`` and
``pmap`` the collective is staged and each device's program runs it over its communicator
(or the eager per-device trace evaluates it).  Outside any of them the name is unbound,
a NameError.

Every value is per device (or per vmap instance).  The transposes follow from that: psum
is its own transpose, all_gather and psum_scatter transpose into each other, ppermute into
the inverse permutation, all_to_all into the one with split and concatenation axes
swapped; pvary (a value marked as varying over axes) is the identity.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand, canonicalize_axis

__all__ = ["psum", "pmean", "pmax", "pmin", "all_gather", "psum_scatter", "ppermute",
           "pshuffle", "all_to_all", "pswapaxes", "axis_index", "axis_size", "pvary", "pcast",
           "psum_p", "pmax_p", "pmin_p", "all_gather_p", "reduce_scatter_p", "ppermute_p",
           "all_to_all_p", "axis_index_p", "pvary_p"]


def axis_names(axis_name: Any) -> tuple:
    """A collective's axis name(s) as a tuple."""
    return tuple(axis_name) if isinstance(axis_name, (tuple, list)) else (axis_name,)


def _unbound(name: Any):
    return NameError(f"unbound axis name: {name}. The axis name must be bound by an "
                     "enclosing vmap(..., axis_name=...), shard_map or pmap.")


def axis_size(axis_name: Any) -> int:
    """The number of positions along the named axis (the product, for several names)."""
    size = 1
    for name in axis_names(axis_name):
        n = batching.bound_axis_size(name)
        if n is None:
            raise _unbound(name)
        size *= n
    return size


_size_of = axis_size  # (for rules whose parameter is called axis_size)


def _collective(name: str) -> Primitive:
    prim = Primitive(name)

    def impl(*args, **params):
        raise _unbound(axis_names(params.get("axes", params.get("axis_name")))[0])
    prim.def_impl(impl)
    return prim


psum_p = _collective("psum")
pmax_p = _collective("pmax")
pmin_p = _collective("pmin")
all_gather_p = _collective("all_gather")
reduce_scatter_p = _collective("reduce_scatter")
ppermute_p = _collective("ppermute")
all_to_all_p = _collective("all_to_all")
axis_index_p = _collective("axis_index")
pvary_p = _collective("pvary")
REDUCTIONS = {psum_p: "sum", pmax_p: "max", pmin_p: "min"}
# every collective primitive (a step of a compiled per-device program)
COLLECTIVES = frozenset({psum_p, pmax_p, pmin_p, all_gather_p, reduce_scatter_p,
                         ppermute_p, all_to_all_p, axis_index_p, pvary_p})


# ---- abstract evaluation -------------------------------------------------------------------

def _reduce_abstract_eval(x, *, axes, axis_index_groups=None):
    axis_size(axes)
    return x


def _all_gather_abstract_eval(x, *, all_gather_dimension, axis_name, axis_size, tiled,
                              axis_index_groups=None):
    n = _checked_size(axis_name, axis_size, "all_gather")
    shape = list(x.shape)
    if tiled:
        shape[all_gather_dimension] *= n
    else:
        shape.insert(all_gather_dimension, n)
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _reduce_scatter_abstract_eval(x, *, scatter_dimension, axis_name, axis_size, tiled,
                                  axis_index_groups=None):
    n = _checked_size(axis_name, axis_size, "psum_scatter")
    return _reduce_scatter_shape(x, scatter_dimension, axis_name, n, tiled)


def _reduce_scatter_shape(x: ShapedArray, scatter_dimension: int, axis_name: Any, n: int,
                          tiled: bool) -> ShapedArray:
    shape = list(x.shape)
    d = scatter_dimension
    if tiled:
        if shape[d] % n:
            raise ValueError(f"psum_scatter: the size of dimension {d} of the operand "
                             f"{x.str_short()} ({shape[d]}) must be divisible by the size of "
                             f"axis {axis_name} ({n})")
        shape[d] //= n
    else:
        if shape[d] != n:
            raise ValueError(f"psum_scatter: the size of dimension {d} of the operand "
                             f"{x.str_short()} must equal the size of axis {axis_name} ({n}) "
                             "when tiled=False")
        del shape[d]
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _ppermute_abstract_eval(x, *, axis_name, perm):
    _check_perm(axis_name, perm)
    return x


def _check_perm(axis_name: Any, perm: Sequence[tuple[int, int]]) -> None:
    n = axis_size(axis_name)
    srcs, dsts = [s for s, _ in perm], [d for _, d in perm]
    if len(set(srcs)) != len(srcs) or len(set(dsts)) != len(dsts):
        raise ValueError(f"ppermute sources and destinations must be unique, got {perm}.")
    for s, d in perm:
        if not (0 <= s < n and 0 <= d < n):
            raise ValueError(f"ppermute: every index in perm={perm} must be in [0, {n}) "
                             f"(the size of axis {axis_name})")


def _all_to_all_abstract_eval(x, *, split_axis, concat_axis, axis_name, tiled,
                              axis_index_groups=None):
    n = axis_size(axis_name)
    shape = list(x.shape)
    if shape[split_axis] % n:
        raise ValueError(f"The size of all_to_all split_axis ({shape[split_axis]}) has to be "
                         f"divisible by the size of the named axis {axis_name} ({n})")
    shape[split_axis] //= n
    shape[concat_axis] *= n
    return ShapedArray(tuple(shape), x.dtype, x.weak_type)


def _checked_size(axis_name, size, what) -> int:
    n = axis_size(axis_name)
    if size is not None and size != n:
        raise ValueError(f"{what}: axis_size={size} does not match the size of axis "
                         f"{axis_name} ({n})")
    return n


for _p in REDUCTIONS:
    _p.def_abstract_eval(_reduce_abstract_eval)
all_gather_p.def_abstract_eval(_all_gather_abstract_eval)
reduce_scatter_p.def_abstract_eval(_reduce_scatter_abstract_eval)
ppermute_p.def_abstract_eval(_ppermute_abstract_eval)
all_to_all_p.def_abstract_eval(_all_to_all_abstract_eval)
axis_index_p.def_abstract_eval(lambda *, axis_name: (axis_size(axis_name),
                                                     ShapedArray((), np.int32))[1])
pvary_p.def_abstract_eval(lambda x, *, axes: (axis_size(axes), x)[1])
for _p in COLLECTIVES:
    _p.weak_type_rule = lambda weak, **params: bool(weak and weak[0])


# ---- differentiation -----------------------------------------------------------------------

ad.deflinear(psum_p, lambda ct, x, *, axes, axis_index_groups=None:
             [psum_p.bind(ad.instantiate_zeros(ct), axes=axes,
                          axis_index_groups=axis_index_groups)])
ad.deflinear(pvary_p, lambda ct, x, *, axes: [ct])


def _pminmax_jvp(prim):
    def rule(primals, tangents, *, axes, axis_index_groups=None):
        from tinyjax.lax.elementwise import convert_element_type, div, eq, mul
        (x,), (t,) = primals, tangents
        out = prim.bind(x, axes=axes, axis_index_groups=axis_index_groups)
        if type(t) is ad.Zero:
            return out, ad.Zero.from_primal(out)
        hit = convert_element_type(eq(x, out), get_aval(t).dtype)
        return out, div(psum(mul(t, hit), axes), psum(hit, axes))
    ad.primitive_jvps[prim] = rule


_pminmax_jvp(pmax_p)
_pminmax_jvp(pmin_p)


def _all_gather_transpose(ct, x, *, all_gather_dimension, axis_name, axis_size, tiled,
                          axis_index_groups=None):
    return [reduce_scatter_p.bind(ad.instantiate_zeros(ct),
                                  scatter_dimension=all_gather_dimension, axis_name=axis_name,
                                  axis_size=axis_size, tiled=tiled,
                                  axis_index_groups=axis_index_groups)]


def _reduce_scatter_transpose(ct, x, *, scatter_dimension, axis_name, axis_size, tiled,
                              axis_index_groups=None):
    return [all_gather_p.bind(ad.instantiate_zeros(ct), all_gather_dimension=scatter_dimension,
                              axis_name=axis_name, axis_size=axis_size, tiled=tiled,
                              axis_index_groups=axis_index_groups)]


def _ppermute_transpose(ct, x, *, axis_name, perm):
    inverse = tuple((d, s) for s, d in perm)
    return [ppermute_p.bind(ad.instantiate_zeros(ct), axis_name=axis_name, perm=inverse)]


def _all_to_all_transpose(ct, x, *, split_axis, concat_axis, axis_name, tiled,
                          axis_index_groups=None):
    return [all_to_all_p.bind(ad.instantiate_zeros(ct), split_axis=concat_axis,
                              concat_axis=split_axis, axis_name=axis_name, tiled=tiled,
                              axis_index_groups=axis_index_groups)]


ad.deflinear(all_gather_p, _all_gather_transpose)
ad.deflinear(reduce_scatter_p, _reduce_scatter_transpose)
ad.deflinear(ppermute_p, _ppermute_transpose)
ad.deflinear(all_to_all_p, _all_to_all_transpose)
ad.defjvp_zero(axis_index_p)


# ---- batching: a collective over a vmapped axis ----------------------------------------------
# ``rule(axis_data, vals, dims, **params)``: when the collective names the vmapped axis, it
# is computed over the batch dimension here; when it names other axes it is bound again
# (for the enclosing trace) on the batched operand, its dimensions shifted.

def _lax():
    from tinyjax.lax import reductions, shape, slicing
    return reductions, shape, slicing


def _split_names(axis_data, names: tuple) -> tuple[bool, tuple]:
    """(whether the vmapped axis is among ``names``, the other names)."""
    return axis_data.name in names, tuple(n for n in names if n != axis_data.name)


def _reduce_rule(prim: Primitive, reduction: str, scale_unbatched: bool):
    def rule(axis_data, vals, dims, *, axes, axis_index_groups=None):
        reductions, _, _ = _lax()
        (x,), (d,) = vals, dims
        here, rest = _split_names(axis_data, axis_names(axes))
        if not here:  # another axis: elementwise along this batch axis
            return prim.bind(x, axes=axes, axis_index_groups=axis_index_groups), d
        if d is None:
            from tinyjax.lax.elementwise import mul
            out = mul(x, as_operand(axis_data.size, get_aval(x).dtype)) if scale_unbatched \
                else x
        else:
            out = getattr(reductions, reduction)(x, (d,))
        if rest:
            out = prim.bind(out, axes=rest, axis_index_groups=axis_index_groups)
        return out, None
    return rule


batching.fancy_primitive_batchers[psum_p] = _reduce_rule(psum_p, "reduce_sum", True)
batching.fancy_primitive_batchers[pmax_p] = _reduce_rule(pmax_p, "reduce_max", False)
batching.fancy_primitive_batchers[pmin_p] = _reduce_rule(pmin_p, "reduce_min", False)


def _only_this_axis(axis_data, axis_name, what: str) -> bool:
    here, rest = _split_names(axis_data, axis_names(axis_name))
    if here and rest:
        raise NotImplementedError(f"{what} over the axes {axis_name}, of which only "
                                  f"{axis_data.name!r} is a vmapped axis")
    return here


def _all_gather_rule(axis_data, vals, dims, *, all_gather_dimension, axis_name, axis_size,
                     tiled, axis_index_groups=None):
    (x,), (d,) = vals, dims
    axis, names = all_gather_dimension, axis_names(axis_name)
    here, rest = _split_names(axis_data, names)
    if not here:
        return _bind_gather(x, d, axis, axis_name, axis_size, tiled)
    if not rest:
        return _gather_here(axis_data, x, d, axis, tiled), None
    # several axes, this one among them: gather one axis at a time, the last named first
    # (the linear order is row-major over the names); untiled is tiled over a new dimension
    if not tiled:
        from tinyjax.lax.slicing import expand_dims
        x = expand_dims(x, (axis + (1 if d is not None and d <= axis else 0),))
        d = d if d is None or d < axis else d + 1
    for name in reversed(names):
        if name == axis_data.name:
            x, d = _gather_here(axis_data, x, d, axis, True), None
        else:
            x, d = _bind_gather(x, d, axis, name, _size_of(name), True)
    return x, d


def _bind_gather(x, d, axis, axis_name, size, tiled):
    """all_gather over axes other than the vmapped one, of a value batched at ``d``."""
    if d is not None and d <= axis:
        axis_b, d_out = axis + 1, d
    else:
        axis_b, d_out = axis, d if d is None else (d + 1 if not tiled else d)
    out = all_gather_p.bind(x, all_gather_dimension=axis_b, axis_name=axis_name,
                            axis_size=size, tiled=tiled, axis_index_groups=None)
    return out, d_out


def _gather_here(axis_data, x, d, axis, tiled):
    """all_gather over the vmapped axis: the batch dimension moved to ``axis``."""
    _, shape, _ = _lax()
    out = batching.moveaxis(x, d, axis, axis_data.size)
    if tiled:
        s = get_aval(out).shape
        out = shape.reshape(out, s[:axis] + (s[axis] * s[axis + 1],) + s[axis + 2:])
    return out


batching.fancy_primitive_batchers[all_gather_p] = _all_gather_rule


def _reduce_scatter_rule(axis_data, vals, dims, *, scatter_dimension, axis_name, axis_size,
                         tiled, axis_index_groups=None):
    (x,), (d,) = vals, dims
    sd, names = scatter_dimension, axis_names(axis_name)
    here, rest = _split_names(axis_data, names)
    if not here:
        return _bind_scatter(x, d, sd, axis_name, axis_size, tiled)
    if not rest:
        return _scatter_here(axis_data, x, d, sd, tiled)
    # several axes: one at a time, the first named first (block index row-major over them)
    for name in names:
        if name == axis_data.name:
            x, d = _scatter_here(axis_data, x, d, sd, True)
        else:
            x, d = _bind_scatter(x, d, sd, name, _size_of(name), True)
    if not tiled:  # the scattered dimension had the total size: its block of 1 goes
        _, shape, _ = _lax()
        s = get_aval(x).shape
        at = sd + (1 if d is not None and d <= sd else 0)
        x = shape.reshape(x, s[:at] + s[at + 1:])
        d = d if d is None or d < at else d - 1
    return x, d


def _bind_scatter(x, d, sd, axis_name, size, tiled):
    if d is not None and d <= sd:
        sd_b, d_out = sd + 1, d
    else:
        sd_b = sd
        d_out = d if d is None or tiled else d - 1
    out = reduce_scatter_p.bind(x, scatter_dimension=sd_b, axis_name=axis_name,
                                axis_size=size, tiled=tiled, axis_index_groups=None)
    return out, d_out


def _scatter_here(axis_data, x, d, sd, tiled):
    """psum_scatter over the vmapped axis: the sum over the batch, whose scatter dimension
    splits into (instance, block) with the instance batched."""
    reductions, shape, _ = _lax()
    n = axis_data.size
    if d is None:
        from tinyjax.lax.elementwise import mul
        total = mul(x, as_operand(n, get_aval(x).dtype))
    else:
        total = reductions.reduce_sum(x, (d,))
    s = get_aval(total).shape
    if tiled:
        total = shape.reshape(total, s[:sd] + (n, s[sd] // n) + s[sd + 1:])
    return total, sd


batching.fancy_primitive_batchers[reduce_scatter_p] = _reduce_scatter_rule


def _ppermute_rule(axis_data, vals, dims, *, axis_name, perm):
    _, shape, slicing = _lax()
    (x,), (d,) = vals, dims
    if not _only_this_axis(axis_data, axis_name, "ppermute"):
        return ppermute_p.bind(x, axis_name=axis_name, perm=perm), d
    n = axis_data.size
    x = batching.moveaxis(x, d, 0, n)
    source = {dst: src for src, dst in perm}
    rows = []
    from tinyjax.lax.elementwise import mul
    for i in range(n):
        row = slicing.index_in_dim(x, source.get(i, 0), 0, keepdims=True)
        rows.append(row if i in source else mul(row, as_operand(0, get_aval(x).dtype)))
    return slicing.concatenate(rows, 0), 0


batching.fancy_primitive_batchers[ppermute_p] = _ppermute_rule


def _all_to_all_rule(axis_data, vals, dims, *, split_axis, concat_axis, axis_name, tiled,
                     axis_index_groups=None):
    _, shape, _ = _lax()
    (x,), (d,) = vals, dims
    if not _only_this_axis(axis_data, axis_name, "all_to_all"):
        if d is None:
            return all_to_all_p.bind(x, split_axis=split_axis, concat_axis=concat_axis,
                                     axis_name=axis_name, tiled=tiled,
                                     axis_index_groups=axis_index_groups), None
        x = batching.moveaxis(x, d, 0)
        return all_to_all_p.bind(x, split_axis=split_axis + 1, concat_axis=concat_axis + 1,
                                 axis_name=axis_name, tiled=tiled,
                                 axis_index_groups=axis_index_groups), 0
    n, sa, ca = axis_data.size, split_axis, concat_axis
    x = batching.moveaxis(x, d, 0, n)  # instance j first, then the local dimensions
    s = get_aval(x).shape[1:]
    c = s[sa] // n
    # the split dimension becomes (destination i, block c)
    x = shape.reshape(x, (n,) + s[:sa] + (n, c) + s[sa + 1:])
    local = list(range(1, sa + 1)) + [sa + 2] + list(range(sa + 3, len(s) + 2))
    # out_i: the blocks from every source j, j major within the concatenated dimension
    y = shape.transpose(x, [sa + 1] + local[:ca] + [0] + local[ca:])
    ys = get_aval(y).shape
    return shape.reshape(y, ys[:1 + ca] + (ys[1 + ca] * ys[2 + ca],) + ys[3 + ca:]), 0


batching.fancy_primitive_batchers[all_to_all_p] = _all_to_all_rule


def _axis_index_rule(axis_data, vals, dims, *, axis_name):
    """The position along the vmapped axis is an iota; over several names the linear
    index sums each name's coordinate times the sizes of the names after it."""
    from tinyjax.lax.elementwise import add, mul
    _, shape, _ = _lax()
    names = axis_names(axis_name)
    if axis_data.name not in names:
        return axis_index_p.bind(axis_name=axis_name), None
    total = None
    for k, name in enumerate(names):
        coord = shape.iota(np.int32, axis_data.size) if name == axis_data.name else \
            axis_index_p.bind(axis_name=name)
        stride = math.prod(axis_size(m) for m in names[k + 1:])
        term = coord if stride == 1 else mul(coord, as_operand(stride, np.int32))
        total = term if total is None else add(total, term)
    return total, 0


batching.fancy_primitive_batchers[axis_index_p] = _axis_index_rule


def _pvary_rule(axis_data, vals, dims, *, axes):
    (x,), (d,) = vals, dims
    here, rest = _split_names(axis_data, axis_names(axes))
    if rest:
        return pvary_p.bind(x, axes=rest), d
    return x, d


batching.fancy_primitive_batchers[pvary_p] = _pvary_rule


# ---- public functions ----------------------------------------------------------------------

def _map_tree(fn, x):
    from tinyjax.tree_util import physical
    return physical.tree_map(lambda leaf: fn(as_operand(leaf)), x)


def _groups(axis_index_groups, what: str) -> None:
    if axis_index_groups is not None:
        raise NotImplementedError(f"{what}: axis_index_groups is not supported")


def psum(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Sum ``x`` (a pytree) over the named axis (or axes)."""
    _groups(axis_index_groups, "psum")
    return _map_tree(lambda v: psum_p.bind(v, axes=axis_names(axis_name)), x)


def pmean(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Mean of ``x`` (a pytree) over the named axis (or axes)."""
    from tinyjax.lax.elementwise import div
    n = axis_size(axis_name)
    return _map_tree(lambda v: div(psum_p.bind(v, axes=axis_names(axis_name)),
                                   as_operand(n, get_aval(v).dtype)), x) \
        if axis_index_groups is None else _groups(axis_index_groups, "pmean")


def pmax(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Maximum of ``x`` (a pytree) over the named axis (or axes)."""
    _groups(axis_index_groups, "pmax")
    return _map_tree(lambda v: pmax_p.bind(v, axes=axis_names(axis_name)), x)


def pmin(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None) -> Any:
    """Minimum of ``x`` (a pytree) over the named axis (or axes)."""
    _groups(axis_index_groups, "pmin")
    return _map_tree(lambda v: pmin_p.bind(v, axes=axis_names(axis_name)), x)


def _one_name(axis_name: Any) -> Any:
    names = axis_names(axis_name)
    return names[0] if len(names) == 1 else names


def all_gather(x: Any, axis_name: Any, *, axis_index_groups: Sequence | None = None,
               axis: int = 0, tiled: bool = False) -> Any:
    """The values of ``x`` from every position of the named axis, stacked along a new
    dimension ``axis`` (concatenated along ``axis`` with ``tiled``)."""
    _groups(axis_index_groups, "all_gather")
    n = axis_size(axis_name)

    def gather(v):
        ndim = get_aval(v).ndim
        if tiled and ndim == 0:
            raise ValueError("all_gather with tiled=True needs an operand of rank >= 1")
        ax = canonicalize_axis(axis, ndim if tiled else ndim + 1, "axis")
        return all_gather_p.bind(v, all_gather_dimension=ax, axis_name=_one_name(axis_name),
                                 axis_size=n, tiled=tiled, axis_index_groups=None)
    return _map_tree(gather, x)


def psum_scatter(x: Any, axis_name: Any, *, scatter_dimension: int = 0,
                 axis_index_groups: Sequence | None = None, tiled: bool = False) -> Any:
    """The sum of ``x`` over the named axis, of which each position keeps only its block
    along ``scatter_dimension`` (with ``tiled=False`` that dimension's size must be the
    axis size, and it is removed)."""
    _groups(axis_index_groups, "psum_scatter")
    n = axis_size(axis_name)

    def scatter(v):
        d = canonicalize_axis(scatter_dimension, get_aval(v).ndim, "scatter_dimension")
        _reduce_scatter_shape(get_aval(v), d, axis_name, n, tiled)
        return reduce_scatter_p.bind(v, scatter_dimension=d, axis_name=_one_name(axis_name),
                                     axis_size=n, tiled=tiled, axis_index_groups=None)
    return _map_tree(scatter, x)


def ppermute(x: Any, axis_name: Any, perm: Sequence[tuple[int, int]]) -> Any:
    """Send each position's ``x`` to another: ``perm`` lists (source, destination) index
    pairs along the named axis; a position that receives nothing gets zeros."""
    perm = tuple((int(s), int(d)) for s, d in perm)
    _check_perm(axis_name, perm)
    return _map_tree(lambda v: ppermute_p.bind(v, axis_name=_one_name(axis_name), perm=perm),
                     x)


def pshuffle(x: Any, axis_name: Any, perm: Sequence[int]) -> Any:
    """``ppermute`` where position ``i`` receives from ``perm[i]``."""
    if set(perm) != set(range(len(perm))):
        raise ValueError(f"`perm` does not represent a permutation: {perm}")
    return ppermute(x, axis_name, [(src, dst) for dst, src in enumerate(perm)])


def all_to_all(x: Any, axis_name: Any, split_axis: int, concat_axis: int, *,
               axis_index_groups: Sequence | None = None, tiled: bool = False) -> Any:
    """Split ``x`` along ``split_axis`` into one block per position of the named axis, send
    block ``i`` to position ``i`` and concatenate the blocks received along
    ``concat_axis``.  With ``tiled=False`` the split axis has the axis size and is removed,
    and the received values are stacked along a new dimension ``concat_axis``."""
    _groups(axis_index_groups, "all_to_all")
    n = axis_size(axis_name)

    def a2a(v):
        from tinyjax.lax.slicing import expand_dims, squeeze
        ndim = get_aval(v).ndim
        sa = canonicalize_axis(split_axis, ndim, "split_axis")
        ca = canonicalize_axis(concat_axis, ndim, "concat_axis")
        size = get_aval(v).shape[sa]
        if tiled and size % n:
            raise ValueError(f"The size of all_to_all split_axis ({size}) has to be "
                             f"divisible by the size of the named axis {axis_name} ({n})")
        if not tiled:
            if size != n:
                raise ValueError(f"all_to_all requires the size of the mapped axis "
                                 f"axis_name to equal x.shape[split_axis], but they are {n} "
                                 f"and {size} respectively.")
            if sa < ca:
                ca += 1  # a position after the split axis is removed
                v = expand_dims(v, (ca,))
            elif ca < sa:
                v = expand_dims(v, (ca,))
                sa += 1
        out = all_to_all_p.bind(v, split_axis=sa, concat_axis=ca,
                                axis_name=_one_name(axis_name), tiled=tiled,
                                axis_index_groups=None)
        return out if tiled or sa == ca else squeeze(out, (sa,))
    return _map_tree(a2a, x)


def axis_index(axis_name: Any) -> Any:
    """The position along the named axis (int32; a linear index for several names)."""
    return axis_index_p.bind(axis_name=_one_name(axis_name))


def pswapaxes(x: Any, axis_name: Any, axis: int, *,
              axis_index_groups: Sequence | None = None) -> Any:
    """Swap the named axis with ``axis`` of ``x`` (``all_to_all`` with ``axis`` as both
    the split and the concatenation axis, tiled)."""
    return all_to_all(x, axis_name, axis, axis, axis_index_groups=axis_index_groups,
                      tiled=True)


def pvary(x: Any, axis_name: Any) -> Any:
    """``x`` marked as varying over the named axes (the values are unchanged)."""
    return _map_tree(lambda v: pvary_p.bind(v, axes=axis_names(axis_name)), x)


def pcast(x: Any, axis_name: Any, *, to: str) -> Any:
    """Change how ``x`` varies over the named axes: ``to='varying'`` is :func:`pvary`."""
    if to != "varying":
        raise NotImplementedError(f"pcast(to={to!r}): only to='varying' is supported")
    return pvary(x, axis_name)
