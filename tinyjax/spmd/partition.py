"""A program over whole arrays split into one program per device (SPMD partitioning).

Given a jaxpr over global arrays, a mesh and the layout of every input, :func:`partition`
walks the equations once, giving every value a *layout* -- per dimension, the mesh axes it
is split over -- and emitting the per-device computation: each equation runs on local
blocks, with collectives inserted where the operands' layouts disagree with what the
equation needs.  The rules, per primitive family (in the spirit of GSPMD's propagation):

* elementwise: the result takes the operands' layout (the first operand's, completed by
  the others'); operands laid out otherwise are resharded to it;
* ``broadcast_in_dim``, ``transpose``, ``reshape`` (where a split dimension maps to one
  output dimension starting at the same offset): the layout follows the dimensions;
* reductions over a split dimension: the local reduction, then ``psum``/``pmax``/``pmin``
  over its axes;
* ``dot_general``: the contracting (and batch) dimensions of both operands are split alike
  (the replicated operand is sliced locally, for free); a split contracting dimension ends
  in a ``psum``; free dimensions keep their layouts (data parallelism: a batch-split
  activation times replicated weights; tensor parallelism: weights split on the output
  or on the contracting dimension);
* slices, pads, concatenations, dynamic slices, cumulative ops, sorts and arg-reductions
  keep the layout of the dimensions they leave alone and gather the others;
* ``shard_map``: its operands are resharded to its ``in_specs`` and its body runs as it is
  (its collectives name the mesh axes); its results have its ``out_specs``;
* ``with_sharding_constraint``: a reshard;
* calls with a body (custom derivatives, checkpoint) are partitioned through;
* anything else runs replicated: its operands are gathered first.

Resharding a value gathers (``all_gather``) the dimensions whose axes must go and slices
(by ``axis_index``, no communication) the ones that must be split.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax.compiler.lower.registry import inlined_calls
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, Literal
from tinyjax.lax import cumulative, elementwise, reductions, shape, slicing, sorting
from tinyjax.lax.dot import dot_general_p
from tinyjax.lax.parallel import all_gather_p, axis_index, pmax_p, pmin_p, psum_p
from tinyjax.lax.sharding_constraint import sharding_constraint_p
from tinyjax.sharding import Mesh

__all__ = ["Layout", "partition", "register_partition_rule", "replicated", "local_shape"]

Layout = tuple  # per dimension, a tuple of mesh axis names

# prim -> rule(ctx, eqn, ins) -> outs; ins/outs are (local value, layout) pairs
_RULES: dict[Any, Callable] = {}


# primitives the partitioner always replaces (they never reach a per-device program)
partitioned_away: set = set()


def register_partition_rule(prim: Any, rule: Callable, replaces: bool = False) -> None:
    """``rule(ctx, eqn, ins) -> outs`` partitions equations of ``prim`` (see
    :class:`Context`); ``ins``/``outs`` are (local value, layout) pairs.  ``replaces``: the
    rule never emits ``prim`` itself (``shard_map``: its body is inlined)."""
    _RULES[prim] = rule
    if replaces:
        partitioned_away.add(prim)


def replicated(ndim: int) -> Layout:
    return ((),) * ndim


class Context:
    """What the rules work with: the mesh, and the emission of reshards."""

    def __init__(self, mesh: Mesh):
        self.mesh = mesh
        self.sizes = dict(mesh.shape)

    def splits(self, layout: Layout) -> list[int]:
        return [math.prod(self.sizes[a] for a in axes) for axes in layout]

    def local_shape(self, global_shape: Sequence[int], layout: Layout) -> tuple[int, ...]:
        return tuple(n // k for n, k in zip(global_shape, self.splits(layout)))

    def layout_of(self, sharding: Any, ndim: int) -> Layout:
        """The layout on this mesh that ``sharding`` asks for (see :meth:`translate`;
        replicated where its mesh is none of this mesh's shapes)."""
        mesh = getattr(sharding, "mesh", None)
        layout = None if mesh is None else self.translate(mesh, sharding.spec.normalized(ndim))
        return replicated(ndim) if layout is None else layout

    def translate(self, mesh: Any, layout: Layout) -> Optional[Layout]:
        """``layout`` over the axes of ``mesh`` as a layout over this mesh's axes: as it is
        where ``mesh`` has this mesh's axes (of any types); for another shape of as many
        devices (an abstract mesh that ``use_abstract_mesh`` sets inside ``jit``), each of
        its axes is the run of this mesh's axes (in order) whose sizes multiply to its size
        -- the same devices, in the same order.  None where neither holds."""
        if all(self.sizes.get(n) == k for n, k in mesh.shape_tuple):
            return layout
        groups = self._groups(mesh)
        if groups is None:
            return None
        return tuple(tuple(a for name in axes for a in groups[name]) for axes in layout)

    def _groups(self, mesh: Any) -> Optional[dict]:
        ours = list(self.mesh.shape_tuple)
        groups: dict = {}
        for name, size in mesh.shape_tuple:
            run, n = [], 1
            while n < size and ours:
                axis, k = ours.pop(0)
                run.append(axis)
                n *= k
            if n != size:
                return None
            groups[name] = tuple(run)
        return groups if not ours else None

    def can_split(self, global_shape: Sequence[int], layout: Layout) -> bool:
        return all(n % k == 0 for n, k in zip(global_shape, self.splits(layout)))

    def reshard(self, x: Any, src: Layout, dst: Layout) -> Any:
        """``x`` (a local block laid out as ``src``) as the block of layout ``dst``."""
        if src == dst:
            return x
        for d, (a, b) in enumerate(zip(src, dst)):
            if a and a != b:  # gather the whole dimension
                n = math.prod(self.sizes[name] for name in a)
                x = all_gather_p.bind(x, all_gather_dimension=d,
                                      axis_name=a if len(a) > 1 else a[0], axis_size=n,
                                      tiled=True, axis_index_groups=None)
        for d, (a, b) in enumerate(zip(src, dst)):
            if b and a != b:  # keep this device's block of it
                size = get_aval(x).shape[d] // math.prod(self.sizes[name] for name in b)
                start = elementwise.mul(axis_index(b if len(b) > 1 else b[0]),
                                        np.int32(size))
                x = slicing.dynamic_slice_in_dim(x, start, size, d)
        return x

    def replicate(self, value: tuple) -> Any:
        x, layout = value
        return self.reshard(x, layout, replicated(len(layout)))


def _replicate_all(ctx: Context, eqn, ins: list) -> list:
    """Run the equation on whole (gathered) operands: every result is replicated."""
    args = [ctx.replicate(v) for v in ins]
    out = eqn.primitive.bind(*args, **eqn.params)
    outs = out if eqn.primitive.multiple_results else [out]
    return [(o, replicated(v.aval.ndim)) for o, v in zip(outs, eqn.outvars)]


def _used(layout: Layout) -> set:
    return {a for axes in layout for a in axes}


def _merge(layouts: Sequence[Layout]) -> Layout:
    """One layout for operands of one shape: per dimension the first operand's axes,
    unless those axes are taken by another dimension already."""
    out: list = [()] * len(layouts[0])
    taken: set = set()
    for lay in layouts:
        for d, axes in enumerate(lay):
            if not out[d] and axes and not (set(axes) & taken):
                out[d] = axes
                taken |= set(axes)
    return tuple(out)


# ---- elementwise ---------------------------------------------------------------------------------

def _elementwise(ctx: Context, eqn, ins: list) -> list:
    ndim = eqn.outvars[0].aval.ndim
    full = [v for v, a in zip(ins, eqn.invars) if a.aval.ndim == ndim and ndim]
    layout = _merge([lay for _, lay in full]) if full else replicated(ndim)
    args = [ctx.reshard(x, lay, layout) if a.aval.ndim == ndim and ndim else x
            for (x, lay), a in zip(ins, eqn.invars)]
    return [(eqn.primitive.bind(*args, **eqn.params), layout)]


_ELEMENTWISE = [p for p in vars(elementwise).values()
                if isinstance(p, Primitive) and p.name != "bitcast_convert_type"]
for _p in _ELEMENTWISE:
    _RULES[_p] = _elementwise


# ---- shape ---------------------------------------------------------------------------------------

def _broadcast_in_dim(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    in_shape = eqn.invars[0].aval.shape
    out_shape, dims = eqn.params["shape"], eqn.params["broadcast_dimensions"]
    layout = [()] * len(out_shape)
    for i, j in enumerate(dims):
        if in_shape[i] == out_shape[j]:
            layout[j] = lay[i]
        elif lay[i]:
            x = ctx.reshard(x, lay, tuple(() if k == i else a for k, a in enumerate(lay)))
    layout = tuple(layout)
    params = dict(eqn.params, shape=ctx.local_shape(out_shape, layout))
    return [(shape.broadcast_in_dim_p.bind(x, **params), layout)]


def _transpose(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    perm = eqn.params["permutation"]
    return [(shape.transpose_p.bind(x, **eqn.params), tuple(lay[p] for p in perm))]


def _reshape(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    if eqn.params.get("dimensions") is not None:
        return _replicate_all(ctx, eqn, ins)
    in_shape, out_shape = eqn.invars[0].aval.shape, tuple(eqn.params["new_sizes"])
    out = [()] * len(out_shape)
    keep = list(lay)
    for i, axes in enumerate(lay):
        if not axes:
            continue
        j = _reshape_target(in_shape, out_shape, i, math.prod(ctx.sizes[a] for a in axes))
        if j is None or out[j]:
            keep[i] = ()
        else:
            out[j] = axes
    x = ctx.reshard(x, lay, tuple(keep))
    out = tuple(out)
    params = dict(eqn.params, new_sizes=ctx.local_shape(out_shape, out), sharding=None)
    return [(shape.reshape_p.bind(x, **params), out)]


def _reshape_target(in_shape, out_shape, i: int, k: int) -> Optional[int]:
    """The output dimension whose blocks the ``k`` blocks of input dimension ``i`` become:
    one starting at the same flat offset, of a size ``k`` divides."""
    before = math.prod(in_shape[:i])
    acc = 1
    for j, n in enumerate(out_shape):
        if acc == before and n % k == 0 and n > 1:
            return j
        acc *= n
        if acc > before:
            return None
    return None


def _squeeze(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    dims = set(eqn.params["dimensions"])
    return [(slicing.squeeze_p.bind(x, **eqn.params),
             tuple(a for d, a in enumerate(lay) if d not in dims))]


_RULES[shape.broadcast_in_dim_p] = _broadcast_in_dim
_RULES[shape.transpose_p] = _transpose
_RULES[shape.reshape_p] = _reshape
_RULES[slicing.squeeze_p] = _squeeze


# ---- reductions ----------------------------------------------------------------------------------

_COLLECTIVE_OF = {reductions.reduce_sum_p: psum_p, reductions.reduce_max_p: pmax_p,
                  reductions.reduce_min_p: pmin_p}


def _reduction(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    axes = set(eqn.params["axes"])
    combine = _COLLECTIVE_OF.get(eqn.primitive)
    if combine is None:  # gather the reduced dimensions first
        x = ctx.reshard(x, lay, tuple(() if d in axes else a for d, a in enumerate(lay)))
        lay = tuple(() if d in axes else a for d, a in enumerate(lay))
    out = eqn.primitive.bind(x, **eqn.params)
    split = tuple(a for d in sorted(axes) for a in lay[d])
    if split:
        out = combine.bind(out, axes=split, axis_index_groups=None)
    return [(out, tuple(a for d, a in enumerate(lay) if d not in axes))]


for _p in (reductions.reduce_sum_p, reductions.reduce_max_p, reductions.reduce_min_p,
           reductions.reduce_prod_p, reductions.reduce_and_p, reductions.reduce_or_p,
           reductions.reduce_xor_p, reductions.argmax_p, reductions.argmin_p):
    _RULES[_p] = _reduction


# ---- dot_general ---------------------------------------------------------------------------------

def _dot_general(ctx: Context, eqn, ins: list) -> list:
    (lhs, l_in), (rhs, r_in) = ins
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    ll, rl = list(l_in), list(r_in)

    def used_elsewhere(layout, dim) -> set:
        return {a for d, axes in enumerate(layout) if d != dim for a in axes}

    # contracting and batch dimensions: both operands split alike (the split one's layout
    # wins, the other is sliced locally); where that would name a mesh axis twice in an
    # operand, both are gathered
    for i, j in list(zip(lc, rc)) + list(zip(lb, rb)):
        if ll[i] == rl[j]:
            continue
        if ll[i] and not set(ll[i]) & used_elsewhere(rl, j):
            rl[j] = ll[i]
        elif rl[j] and not ll[i] and not set(rl[j]) & used_elsewhere(ll, i):
            ll[i] = rl[j]
        else:
            ll[i] = rl[j] = ()
    lhs_free = [d for d in range(len(ll)) if d not in lc and d not in lb]
    rhs_free = [d for d in range(len(rl)) if d not in rc and d not in rb]
    # the output names each mesh axis once, and none that is summed over
    taken = {a for d in list(lc) + list(lb) + lhs_free for a in ll[d]}
    for j in rhs_free:
        if set(rl[j]) & taken:
            rl[j] = ()
        taken |= set(rl[j])
    lhs = ctx.reshard(lhs, tuple(l_in), tuple(ll))
    rhs = ctx.reshard(rhs, tuple(r_in), tuple(rl))
    out = dot_general_p.bind(lhs, rhs, **dict(eqn.params, out_sharding=None))
    contracted = tuple(a for i in lc for a in ll[i])
    if contracted:
        out = psum_p.bind(out, axes=contracted, axis_index_groups=None)
    layout = tuple([ll[i] for i in lb] + [ll[d] for d in lhs_free] + [rl[d] for d in rhs_free])
    asked = eqn.params.get("out_sharding")
    if asked is not None:  # the layout the product is to have
        want = ctx.layout_of(asked, len(layout))
        return [(ctx.reshard(out, layout, want), want)]
    return [(out, layout)]


_RULES[dot_general_p] = _dot_general


# ---- operations that gather the dimensions they work along -----------------------------------

def _along(dims_of: Callable[[dict, Sequence[ShapedArray]], set],
           local_params: Callable[[Context, dict, Layout], dict] | None = None):
    """A rule for an operation that works along ``dims_of(params, in_avals)`` of its first
    operand (the others replicated): those dimensions are gathered, the others keep their
    layout."""
    def rule(ctx: Context, eqn, ins: list) -> list:
        (x, lay) = ins[0]
        dims = dims_of(eqn.params, [a.aval for a in eqn.invars])
        layout = tuple(() if d in dims else a for d, a in enumerate(lay))
        args = [ctx.reshard(x, lay, layout)] + [ctx.replicate(v) for v in ins[1:]]
        params = local_params(ctx, eqn.params, layout) if local_params else eqn.params
        out = eqn.primitive.bind(*args, **params)
        outs = out if eqn.primitive.multiple_results else [out]
        return [(o, layout if v.aval.ndim == len(layout) else replicated(v.aval.ndim))
                for o, v in zip(outs, eqn.outvars)]
    return rule


def _changed_by_slice(params, avals) -> set:
    shape_ = avals[0].shape
    strides = params["strides"] or (1,) * len(shape_)
    return {d for d, (s, e, st) in enumerate(zip(params["start_indices"],
                                                 params["limit_indices"], strides))
            if (s, e, st) != (0, shape_[d], 1)}


def _slice_params(ctx, params, layout):
    limits = [e if not axes else e // math.prod(ctx.sizes[a] for a in axes)
              for e, axes in zip(params["limit_indices"], layout)]
    return dict(params, limit_indices=tuple(limits))


def _dynamic_slice_params(ctx, params, layout):
    sizes = [n if not axes else n // math.prod(ctx.sizes[a] for a in axes)
             for n, axes in zip(params["slice_sizes"], layout)]
    return dict(params, slice_sizes=tuple(sizes))


_RULES[slicing.slice_p] = _along(_changed_by_slice, _slice_params)
_RULES[slicing.pad_p] = _along(lambda p, a: {d for d, c in enumerate(p["padding_config"])
                                             if tuple(c) != (0, 0, 0)})
_RULES[slicing.rev_p] = _along(lambda p, a: set(p["dimensions"]))
_RULES[slicing.dynamic_slice_p] = _along(
    lambda p, a: {d for d, n in enumerate(p["slice_sizes"]) if n != a[0].shape[d]},
    _dynamic_slice_params)
for _p in (cumulative.cumsum_p, cumulative.cumprod_p, cumulative.cummax_p,
           cumulative.cummin_p, cumulative.cumlogsumexp_p):
    _RULES[_p] = _along(lambda p, a: {p["axis"]})


def _same_layout_along(dim_param: str):
    """Operations of several operands of one shape that work along one dimension
    (concatenate, sort): the operands share the first one's layout, that dimension
    gathered."""
    def rule(ctx: Context, eqn, ins: list) -> list:
        d = eqn.params[dim_param]
        layout = tuple(() if k == d else a for k, a in enumerate(_merge([l for _, l in ins])))
        args = [ctx.reshard(x, lay, layout) for x, lay in ins]
        out = eqn.primitive.bind(*args, **eqn.params)
        outs = out if eqn.primitive.multiple_results else [out]
        return [(o, layout) for o in outs]
    return rule


_RULES[slicing.concatenate_p] = _same_layout_along("dimension")
_RULES[sorting.sort_p] = _same_layout_along("dimension")


def _dynamic_update_slice(ctx: Context, eqn, ins: list) -> list:
    (x, xl), (u, ul) = ins[0], ins[1]
    op_shape, up_shape = eqn.invars[0].aval.shape, eqn.invars[1].aval.shape
    layout = tuple(a if op_shape[d] == up_shape[d] else () for d, a in
                   enumerate(_merge([xl, ul])))
    args = [ctx.reshard(x, xl, layout), ctx.reshard(u, ul, layout)] + \
        [ctx.replicate(v) for v in ins[2:]]
    return [(eqn.primitive.bind(*args, **eqn.params), layout)]


_RULES[slicing.dynamic_update_slice_p] = _dynamic_update_slice


# ---- layouts asked for ---------------------------------------------------------------------------

def _sharding_constraint(ctx: Context, eqn, ins: list) -> list:
    (x, lay), = ins
    want = ctx.layout_of(eqn.params["sharding"], len(lay))
    return [(ctx.reshard(x, lay, want), want)]


_RULES[sharding_constraint_p] = _sharding_constraint


# ---- the walk ------------------------------------------------------------------------------------

def _inline(ctx: Context, eqn, ins: list) -> list:
    """A call with a body (custom derivatives, checkpoint): its equations partitioned in
    place."""
    body, ins = inlined_calls[eqn.primitive](eqn, list(ins))
    if isinstance(body, ClosedJaxpr):
        consts = [(c, replicated(get_aval(c).ndim)) for c in body.consts]
        body = body.jaxpr
    else:
        consts = []
    if len(body.constvars) + len(body.invars) != len(consts) + len(ins):
        return _replicate_all(ctx, eqn, ins)
    return run_jaxpr(ctx, Jaxpr([], list(body.constvars) + list(body.invars), body.outvars,
                                body.eqns), consts + list(ins))


def _as_typed(ctx: Context, aval: ShapedArray, value: tuple) -> tuple:
    """A (local value, layout) pair laid out as its type says where the type names a
    layout (arrays over Explicit mesh axes: JAX's sharding in types), else as it is."""
    x, lay = value
    want = None if not aval.spec or aval.mesh is None else ctx.translate(aval.mesh,
                                                                         tuple(aval.spec))
    if want is None or want == tuple(lay) or not ctx.can_split(aval.shape, want):
        return value
    return ctx.reshard(x, lay, want), want


def run_jaxpr(ctx: Context, jaxpr: Jaxpr, ins: list) -> list:
    """Partition ``jaxpr`` applied to ``ins`` ((local value, layout) pairs; constvars first)
    under the current (staging) trace; the (local value, layout) of every output."""
    env: dict = {}

    def read(a):
        if isinstance(a, Literal):
            return (a.val, replicated(a.aval.ndim))
        return env[a]

    for v, val in zip(list(jaxpr.constvars) + list(jaxpr.invars), ins):
        env[v] = val
    for eqn in jaxpr.eqns:
        rule = _RULES.get(eqn.primitive)
        if rule is None:
            rule = _inline if eqn.primitive in inlined_calls else _replicate_all
        outs = rule(ctx, eqn, [read(a) for a in eqn.invars])
        env.update(zip(eqn.outvars, [_as_typed(ctx, v.aval, o) for v, o in
                                     zip(eqn.outvars, outs)]))
    return [read(a) for a in jaxpr.outvars]


def partition(closed: ClosedJaxpr, mesh: Mesh, in_layouts: Sequence[Layout],
              out_layouts: Sequence[Optional[Layout]] | None = None
              ) -> tuple[ClosedJaxpr, list[Layout]]:
    """The per-device program of ``closed`` (over global arrays) on ``mesh`` when its
    inputs are laid out as ``in_layouts``, and the layouts of its outputs (those given in
    ``out_layouts`` -- None where any will do -- are resharded to)."""
    ctx = Context(mesh)
    jaxpr = closed.jaxpr
    result_layouts: list = []
    for v, lay in zip(jaxpr.invars, in_layouts):
        if not ctx.can_split(v.aval.shape, lay):
            raise ValueError(f"an input of shape {v.aval.shape} cannot be split as {lay} "
                             f"over {mesh}")

    def per_device(*local_inputs):
        consts = [(c, replicated(get_aval(c).ndim)) for c in closed.consts]
        outs = run_jaxpr(ctx, Jaxpr([], list(jaxpr.constvars) + list(jaxpr.invars),
                                    jaxpr.outvars, jaxpr.eqns),
                         consts + list(zip(local_inputs, in_layouts)))
        wanted = out_layouts or [None] * len(outs)
        final = []
        for (x, lay), want, v in zip(outs, wanted, jaxpr.outvars):
            if want is not None:
                x, lay = ctx.reshard(x, lay, want), want
            if not isinstance(v, Literal) and lay == replicated(len(lay)) and \
                    not hasattr(x, "aval"):
                x = np.asarray(x)
            final.append((x, lay))
        result_layouts[:] = [lay for _, lay in final]
        return [x for x, _ in final]

    local_avals = [v.aval.update(shape=ctx.local_shape(v.aval.shape, lay), spec=())
                   for v, lay in zip(jaxpr.invars, in_layouts)]
    with batching.extend_axis_env(mesh.shape_tuple):
        local = trace_to_closed_jaxpr(per_device, local_avals)
    return local, list(result_layouts)


def given_specs(jaxpr: Jaxpr) -> list:
    """Per output of ``jaxpr``, the PartitionSpec the program itself gives it (a
    ``shard_map``'s out_specs), or None."""
    made_by = {v: (e, k) for e in jaxpr.eqns for k, v in enumerate(e.outvars)}
    out = []
    for v in jaxpr.outvars:
        e, k = made_by.get(v, (None, 0)) if not isinstance(v, Literal) else (None, 0)
        out.append(e.params["out_specs"][k] if e is not None and "out_specs" in e.params
                   else None)
    return out


def local_shape(global_shape: Sequence[int], layout: Layout, mesh: Mesh) -> tuple[int, ...]:
    return Context(mesh).local_shape(global_shape, layout)
