"""Sharding in types: how the layouts that values' types name follow through operations.

An array laid out over the *Explicit* axes of a mesh carries that layout in its type
(``float32[8@X,4]``: an aval's ``spec``, per dimension the Explicit mesh axes it is split
over, and ``mesh``).  When an equation is staged, the rule of its primitive gives its
results' layouts from its operands', as JAX's do:

* elementwise operations: per dimension, the operands' common axes (an operand of size 1
  there, unsplit, does not count); different axes are an error, and so is a result that
  names one mesh axis on two dimensions;
* ``broadcast_in_dim``, ``transpose``, ``squeeze``, ``reshape`` (a dimension split into
  several passes its axes to the leading ones; several merged into one pass theirs if
  only the leading ones are split): the layout follows the dimensions;
* reductions drop the reduced dimensions' axes;
* ``dot_general``: batch dimensions split alike, the free dimensions keep their layouts;
  contracting dimensions split in both operands are ambiguous (which layout the sum
  should have) unless ``out_sharding`` says;
* slices, pads, reversals, cumulative operations, sorts keep the operand's layout (a
  changed dimension must still divide by its axes); concatenated operands must not
  conflict;
* ``sharding_constraint`` (``jax.reshard``, ``out_sharding=``) sets the layout it names.

Operations without a rule give results whose type names no layout.  Nothing here runs
unless some operand's type names a layout (or the operation sets one): programs over no
mesh, or over Auto axes only, are untouched.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from tinyjax.core import Primitive, ShapedArray, ShardingTypeError, register_spec_rule
from tinyjax.lax import cumulative, elementwise, reductions, shape, slicing, sorting
from tinyjax.lax.dot import dot_general_p
from tinyjax.lax.sharding_constraint import sharding_constraint_p

__all__ = ["ELEMENTWISE", "spec_rule", "register_type_rule"]

Spec = tuple  # per dimension, a tuple of mesh axis names

# prim -> rule(params, in_avals, out_avals, sizes) -> one Spec per result (None: keep)
_TYPE_RULES: dict[Any, Callable] = {}

# primitives whose result type names a layout even when no operand's does
_SOURCES: set = {sharding_constraint_p}

ELEMENTWISE = [p for p in vars(elementwise).values()
               if isinstance(p, Primitive) and p.name != "bitcast_convert_type"]


def register_type_rule(prim: Any, rule: Callable, source: bool = False) -> None:
    """``rule(params, in_avals, out_avals, sizes)`` gives the layouts of ``prim``'s results
    (``sizes``: mesh axis name -> size); ``source``: it may set one from its parameters."""
    _TYPE_RULES[prim] = rule
    if source:
        _SOURCES.add(prim)


def _spec_of(aval: ShapedArray) -> Spec:
    return aval.spec or ((),) * aval.ndim


def _pspec_entry(axes: tuple) -> Any:
    return None if not axes else axes[0] if len(axes) == 1 else axes


def _common_mesh(avals: Sequence[ShapedArray]) -> Any:
    mesh = None
    for a in avals:
        if a.spec and a.mesh is not None:
            if mesh is not None and _shape_of(mesh) != _shape_of(a.mesh):
                raise ShardingTypeError(f"Mesh for all inputs should be equal. Got one "
                                        f"mesh: {mesh} and another mesh: {a.mesh}")
            mesh = mesh or a.mesh
    return mesh


def _shape_of(mesh: Any) -> tuple:
    return (mesh.shape_tuple, mesh.axis_types)


def _sized(sizes: dict, axes: tuple) -> int:
    return math.prod(sizes.get(a, 1) for a in axes)


def _short(shape_: Sequence[int], dtype: Any, spec: Spec) -> str:
    return ShapedArray(shape_, dtype, spec=spec).str_short()


# ---- per primitive family ------------------------------------------------------------------

def _broadcasting(name: str, avals: Sequence[ShapedArray]) -> Spec:
    """The elementwise rule: per dimension, the axes the operands agree on."""
    ranked = [a for a in avals if a.ndim]
    if not ranked:
        return ()
    specs = [_spec_of(a) for a in ranked]
    out = []
    for d in range(ranked[0].ndim):
        named = {s[d] for s, a in zip(specs, ranked) if not (a.shape[d] == 1 and not s[d])}
        named.discard(())
        if len(named) > 1:
            raise ShardingTypeError(
                f"{name} got incompatible shardings for broadcasting: "
                + ", ".join(str(tuple(_pspec_entry(x) for x in s)) for s in specs) + ".")
        out.append(next(iter(named), ()))
    return tuple(out)


def _elementwise(prim):
    def rule(params, avals, outs, sizes):
        spec = _broadcasting(prim.name, avals)
        return [spec if o.ndim == len(spec) else None for o in outs]
    return rule


def _broadcast_in_dim(params, avals, outs, sizes):
    (x,) = avals[:1]
    out = [()] * len(params["shape"])
    for i, d in enumerate(params["broadcast_dimensions"]):
        out[d] = _spec_of(x)[i]
    return [tuple(out)]


def _transpose(params, avals, outs, sizes):
    spec = _spec_of(avals[0])
    return [tuple(spec[p] for p in params["permutation"])]


def _squeeze(params, avals, outs, sizes):
    dims = set(params["dimensions"])
    return [tuple(a for d, a in enumerate(_spec_of(avals[0])) if d not in dims)]


def _reshape_error(x: ShapedArray, new_sizes: Sequence[int]) -> ShardingTypeError:
    return ShardingTypeError(
        "This reshape is not supported. Please specify the sharding of the output via the "
        "`out_sharding` argument of jax.lax.reshape. Got operand type: "
        f"{x}, new sizes: {tuple(new_sizes)}")


def _reshape_groups(src: Sequence[int], dst: Sequence[int]) -> list:
    """``src`` and ``dst`` cut into runs of dimensions of equal products: (source dims,
    target dims) pairs (size-1 dimensions each a run of their own, paired with nothing)."""
    groups, i, j = [], 0, 0
    while i < len(src) or j < len(dst):
        if i < len(src) and src[i] == 1:
            groups.append(([i], []))
            i += 1
            continue
        if j < len(dst) and dst[j] == 1:
            groups.append(([], [j]))
            j += 1
            continue
        gi, gj = [i], [j]
        a, b = src[i], dst[j]
        i, j = i + 1, j + 1
        while a != b:
            if a < b:
                gi.append(i)
                a *= src[i]
                i += 1
            else:
                gj.append(j)
                b *= dst[j]
                j += 1
        groups.append((gi, gj))
    return groups


def _reshape(params, avals, outs, sizes):
    """A dimension split into several passes its axes to the leading ones (each takes
    axes until its size is used up); several merged into one pass theirs if no unsplit
    dimension comes before a split one; anything else that moves a split is an error."""
    x = avals[0]
    new_sizes = tuple(params["new_sizes"])
    if params.get("sharding") is not None:
        return [_set_by(params["sharding"], len(new_sizes))]
    spec, out = _spec_of(x), [()] * len(new_sizes)
    for gi, gj in _reshape_groups(x.shape, new_sizes):
        split = [spec[d] for d in gi]
        if not any(split) or not gj:
            continue
        if params.get("dimensions") is not None or (len(gi) > 1 and len(gj) > 1) or \
                any(not s and any(split[k + 1:]) for k, s in enumerate(split)):
            raise _reshape_error(x, new_sizes)
        pending = [a for axes in split for a in axes]
        for d in gj:
            n, mine = new_sizes[d], []
            while n > 1 and pending:
                k = sizes.get(pending[0], 1)
                if n % k:
                    raise _reshape_error(x, new_sizes)
                n //= k
                mine.append(pending.pop(0))
            out[d] = tuple(mine)
        if pending:
            raise _reshape_error(x, new_sizes)
    return [tuple(out)]


def _reduction(params, avals, outs, sizes):
    axes = set(params["axes"])
    return [tuple(a for d, a in enumerate(_spec_of(avals[0])) if d not in axes)]


def _dot_general(params, avals, outs, sizes):
    lhs, rhs = avals
    if params.get("out_sharding") is not None:
        return [_set_by(params["out_sharding"], outs[0].ndim)]
    (lc, rc), (lb, rb) = params["dimension_numbers"]
    ls, rs = _spec_of(lhs), _spec_of(rhs)
    lbs = tuple(_pspec_entry(ls[d]) for d in lb)
    rbs = tuple(_pspec_entry(rs[d]) for d in rb)
    if lbs != rbs:
        raise ShardingTypeError(
            "dot_general requires lhs batch dimensions and rhs batch dimensions to have "
            f"the same sharding, got {lbs} and {rbs}.")
    lcs = tuple(_pspec_entry(ls[d]) for d in lc)
    rcs = tuple(_pspec_entry(rs[d]) for d in rc)
    if any(a is not None and b is not None for a, b in zip(lcs, rcs)):
        raise ShardingTypeError(
            "Contracting dimensions are sharded and it is ambiguous how the output should "
            "be sharded. Please specify the output sharding via the `out_sharding` "
            f"parameter. Got lhs_contracting_spec={lcs} and rhs_contracting_spec={rcs}")
    lfree = [ls[d] for d in range(lhs.ndim) if d not in lc and d not in lb]
    rfree = [rs[d] for d in range(rhs.ndim) if d not in rc and d not in rb]
    return [tuple([ls[d] for d in lb] + lfree + rfree)]


def _varying_shape(name: str):
    """Slices, pads: the operand's layout, where each changed dimension still divides."""
    def rule(params, avals, outs, sizes):
        x, out = avals[0], outs[0]
        spec = _spec_of(x)
        for n, m, axes in zip(x.shape, out.shape, spec):
            k = _sized(sizes, axes)
            if n != m and axes and m % k:
                raise ShardingTypeError(
                    f"{name} on sharded dims where out dim ({m}) is not divisible by mesh "
                    f"axes ({k}) with spec ({_pspec_entry(axes)}) is not implemented. Got "
                    f"input type={x.str_short()} and output shape={out.shape}")
        return [spec if o.ndim == len(spec) else None for o in outs]
    return rule


def _same_as_operand(params, avals, outs, sizes):
    spec = _spec_of(avals[0])
    return [spec if o.ndim == len(spec) else None for o in outs]


def _concatenate(params, avals, outs, sizes):
    """The operands' common layout, the concatenated dimension unsplit unless all agree.
    (JAX asks the operands to agree outright; tinyjax's own compositions -- jnp's index
    arithmetic -- concatenate unsplit values with split ones, so only a conflict counts.)"""
    d = params["dimension"]
    specs = [_spec_of(a) for a in avals]
    out = []
    for k in range(len(specs[0])):
        named = {s[k] for s in specs} - {()}
        if k != d and len(named) > 1:
            raise ShardingTypeError(
                "All operands should have the same sharding. Got shardings "
                + ", ".join(str(tuple(_pspec_entry(x) for x in s)) for s in specs))
        out.append(specs[0][k] if k == d and len({s[k] for s in specs}) == 1 else
                   () if k == d else next(iter(named), ()))
    return [tuple(out)]


def _set_by(sharding: Any, ndim: int) -> Spec:
    """The layout (Explicit axes) a NamedSharding names."""
    explicit = set(getattr(sharding.mesh, "explicit_axes", ()))
    return tuple(tuple(a for a in sharding.spec.axes_of(d) if a in explicit)
                 for d in range(ndim))


def _sharding_constraint(params, avals, outs, sizes):
    return [_set_by(params["sharding"], outs[0].ndim)]


for _p in ELEMENTWISE:
    register_type_rule(_p, _elementwise(_p))
register_type_rule(shape.broadcast_in_dim_p, _broadcast_in_dim)
register_type_rule(shape.transpose_p, _transpose)
register_type_rule(shape.reshape_p, _reshape, source=True)
register_type_rule(slicing.squeeze_p, _squeeze)
for _p in (reductions.reduce_sum_p, reductions.reduce_max_p, reductions.reduce_min_p,
           reductions.reduce_prod_p, reductions.reduce_and_p, reductions.reduce_or_p,
           reductions.reduce_xor_p, reductions.argmax_p, reductions.argmin_p):
    register_type_rule(_p, _reduction)
register_type_rule(dot_general_p, _dot_general, source=True)
register_type_rule(slicing.slice_p, _varying_shape("slicing"))
register_type_rule(slicing.pad_p, _varying_shape("padding"))
register_type_rule(slicing.dynamic_slice_p, _varying_shape("dynamic_slice"))
for _p in (slicing.rev_p, slicing.dynamic_update_slice_p, sorting.sort_p,
           cumulative.cumsum_p, cumulative.cumprod_p, cumulative.cummax_p,
           cumulative.cummin_p, cumulative.cumlogsumexp_p):
    register_type_rule(_p, _same_as_operand)
register_type_rule(slicing.concatenate_p, _concatenate)
register_type_rule(sharding_constraint_p, _sharding_constraint, source=True)


# ---- the hook the staging trace calls ------------------------------------------------------

def spec_rule(prim: Any, params: dict, in_avals: Sequence[ShapedArray],
              out_avals: list) -> list:
    """``out_avals`` typed with their layouts (see the module docstring)."""
    given = (params.get("sharding") or params.get("out_sharding")) if prim in _SOURCES \
        else None
    if given is None and not any(a.spec for a in in_avals):
        return out_avals
    rule = _TYPE_RULES.get(prim)
    if rule is None:
        return out_avals  # a call's results are typed by its body; others name no layout
    if given is not None and not hasattr(given, "mesh"):
        return [a.update(spec=()) for a in out_avals]  # one device: no layout
    mesh = given.mesh.abstract_mesh if given is not None else _common_mesh(in_avals)
    sizes = dict(mesh.shape_tuple) if mesh is not None else {}
    specs = rule(params, in_avals, out_avals, sizes)
    out = []
    for aval, spec in zip(out_avals, specs):
        if spec is None:
            out.append(aval)
            continue
        named = [a for axes in spec for a in axes]
        if len(set(named)) != len(named):
            raise ShardingTypeError(
                f"{prim.name} operation with inputs: "
                f"{', '.join(a.str_short() for a in in_avals)} produces an illegally sharded "
                f"result: {_short(aval.shape, aval.dtype, spec)}")
        typed = ShapedArray(aval.shape, aval.dtype, aval.weak_type, aval.vma_order, spec,
                            mesh=mesh)
        out.append(typed)
    return out


register_spec_rule(spec_rule)
