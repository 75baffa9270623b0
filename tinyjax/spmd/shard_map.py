"""``shard_map``: a function written for one device's blocks, mapped over a mesh.

``shard_map(f, mesh=..., in_specs=..., out_specs=...)(*args)`` splits every argument into
blocks as its ``in_specs`` entry says, runs ``f`` on each device's blocks (its collectives
name mesh axes) and puts the results together as ``out_specs`` says: the dimensions it
names are concatenated, the mesh axes it does not name must hold copies (``check_vma``
checks this from the program: a value varies over the axes of the inputs it depends on,
less those a ``psum``-like collective reduced).

Inside ``jit`` it is the ``shard_map`` primitive, whose body the partitioner
(:mod:`tinyjax.spmd.partition`) runs as the per-device program itself.  Called at the top
level it runs eagerly, as JAX does, on every device's blocks at once: the values are held
stacked over the mesh (:class:`ShardMapTrace`), each operation runs vectorised over the mesh
axes with the collectives resolved over them, and a value prints per device.

Derivatives: the jvp of the body is mapped the same way; partial evaluation splits the body
into a known and an unknown ``shard_map`` joined by per-device residuals; the transpose runs
the body's transpose, summing (``psum``) the cotangents of inputs replicated over some axes
and averaging those of outputs replicated over some.  Under ``vmap`` the body is
vectorised with the batch dimension unsplit.
"""
from __future__ import annotations

import copy
import inspect
import itertools
import math
from functools import wraps
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.tree_util import physical
from tinyjax.api_util import broadcast_prefix
from tinyjax.array import ArrayImpl, to_array
from tinyjax.core import (Primitive, ShapedArray, Trace, Tracer, check_foreign_tracer,
                          current_trace, get_aval, is_eager, new_trace, register_vma_rule,
                          set_current_trace, vma_sources)
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.partial_eval import custom_partial_eval_rules
from tinyjax.jaxpr import Jaxpr, Literal, pp_eqn_rules
from tinyjax.lax import parallel
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.control_flow.common import (batch_jaxpr, jvp_jaxpr, partial_eval_jaxpr, run,
                                             trace_open)
from tinyjax.lax.elementwise import div
from tinyjax.lax.pbroadcast import pbroadcast_p
from tinyjax.lax.ragged_all_to_all import ragged_all_to_all_p
from tinyjax.lax.shape import reshape
from tinyjax.sharding import (AbstractMesh, Mesh, NamedSharding, PartitionSpec, get_mesh,
                              layout_of, put_sharded, spec_of_axes)
from tinyjax.spmd.partition import register_partition_rule

__all__ = ["shard_map", "shard_map_p", "ShardMapTrace", "bind_shard_map", "map_blocks"]

shard_map_p = Primitive("shard_map", multiple_results=True)


class _Infer:
    def __repr__(self) -> str:
        return "Infer"


Infer = _Infer()


# ---- specs, meshes and blocks ----------------------------------------------------------------

def _block_shape(shape: Sequence[int], spec: PartitionSpec, mesh: AbstractMesh) -> tuple:
    sizes = mesh.shape
    return tuple(n // math.prod(sizes[a] for a in spec.axes_of(d)) for d, n in enumerate(shape))


def _global_shape(shape: Sequence[int], spec: PartitionSpec, mesh: AbstractMesh) -> tuple:
    sizes = mesh.shape
    return tuple(n * math.prod(sizes[a] for a in spec.axes_of(d)) for d, n in enumerate(shape))


def _unmentioned(mesh: AbstractMesh, spec: PartitionSpec) -> list:
    named = set(spec.mesh_axes())
    return [n for n in mesh.axis_names if n not in named]


def _resolve_mesh(mesh: Any) -> Mesh:
    if mesh is None:
        mesh = get_mesh()
        if mesh.empty:
            raise ValueError("The context mesh cannot be empty. Use `jax.set_mesh(mesh)` to "
                             "enter into a mesh context, or pass mesh= to shard_map")
        mesh = copy.copy(mesh)
        mesh.from_context = True  # its equations name its abstract mesh, as JAX's
    if not isinstance(mesh, Mesh):
        raise NotImplementedError(f"shard_map over an AbstractMesh ({mesh}): pass a Mesh")
    return mesh


def _check_specs(specs: Sequence[PartitionSpec], mesh: AbstractMesh, what: str) -> None:
    for spec in specs:
        if not isinstance(spec, PartitionSpec):
            raise TypeError(f"shard_map {what} must be PartitionSpecs, got {spec!r}")
        for name in spec.mesh_axes():
            if name not in mesh.axis_names:
                raise ValueError(f"shard_map {what} refer to axis name {name!r} which is not "
                                 f"in the mesh {mesh.axis_names}")


def _divisibility_error(f: Callable, mesh: Mesh, args: tuple, flat_specs: list,
                        flat_avals: list) -> Optional[str]:
    fun_name = getattr(f, "__name__", str(f))
    paths = [p for p, _ in tree_util.tree_flatten_with_path(args)[0]]
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    msgs = []
    for path, spec, aval in zip(paths, flat_specs, flat_avals):
        for d in range(len(spec)):
            names = spec.axes_of(d)
            size = math.prod(mesh.shape[n] for n in names)
            if not names or aval.shape[d] % size == 0:
                continue
            where = tree_util.keystr(path)
            extra = ""
            idx = getattr(path[0], "idx", None)
            if idx is not None and idx < len(params) and \
                    params[idx].kind != inspect.Parameter.VAR_POSITIONAL:
                extra = f", where args{where} is bound to {fun_name}'s parameter " \
                        f"'{params[idx].name}',"
            axis = f"axes {names}" if len(names) > 1 else f"axis '{names[0]}'"
            total = "total " if len(names) > 1 else ""
            msgs.append(f"* the passed args{where} of shape {aval.str_short()}{extra} "
                        f"corresponds to in_specs of value {spec}, which maps array axis {d} "
                        f"(of size {aval.shape[d]}) to mesh {axis} (of {total}size {size}), "
                        f"but {size} does not evenly divide {aval.shape[d]}")
    return _message(fun_name, "argument arrays with axis sizes that are not evenly divisible "
                    "by the corresponding mesh axis sizes", mesh, msgs,
                    "Array arguments' axis sizes must be evenly divisible by the mesh axis or "
                    "axes indicated by the corresponding elements of the argument's in_specs "
                    "entry. Consider checking that in_specs are correct, and if so consider "
                    "changing the mesh axis sizes or else padding the input and adapting "
                    f"'{fun_name}' appropriately.")


def _message(fun_name: str, what: str, mesh: AbstractMesh, msgs: list[str],
             advice: str) -> Optional[str]:
    """JAX's shard_map error text: what was given, the mesh, one bullet per problem (no
    bullet for a single one), the advice; None without problems."""
    if not msgs:
        return None
    if len(msgs) == 1:
        msgs = [msgs[0][2:]]
    return (f"shard_map applied to the function '{fun_name}' was given {what}:\n\n"
            f"The mesh given has shape {mesh.axis_sizes} with corresponding axis names "
            f"{mesh.axis_names}.\n\n" + "\n\n".join(msgs) + "\n\n" + advice)


def _replication_error(f: Callable, mesh: AbstractMesh, out_specs: Sequence[PartitionSpec],
                       vmas: Sequence[frozenset]) -> Optional[str]:
    fun_name = getattr(f, "__name__", str(f))
    msgs = []
    for spec, vma in zip(out_specs, vmas):
        unmentioned = _unmentioned(mesh, spec)
        bad = [n for n in unmentioned if n in vma]
        if not bad:
            continue
        if len(unmentioned) > 1:
            need = ",".join(n for n in mesh.axis_names if n in spec.mesh_axes())
            got = ",".join(n for n in mesh.axis_names if n in vma)
            msgs.append(f"* out_specs is {spec} which implies that the corresponding output "
                        f"value is only varying across mesh axes {{{need}}} and not "
                        f"{{{','.join(bad)}}}, but it was inferred to be possibly varying "
                        f"over {{{got}}}")
        else:
            msgs.append(f"* out_specs is {spec} which implies that the corresponding output "
                        f"value is replicated across mesh axis '{unmentioned[0]}', but could "
                        "not infer replication over any axes")
    return _message(fun_name, "out_specs which require replication which can't be statically "
                    "inferred given the mesh", mesh, msgs,
                    "Check if these output values are meant to be replicated over those mesh "
                    "axes. If not, consider revising the corresponding out_specs entries. If "
                    "so, consider disabling the check by passing the check_vma=False argument "
                    "to `jax.shard_map`.")


# ---- varying manual axes (what check_vma checks) -----------------------------------------------

def vma_rule(prim: Primitive, params: dict, in_vmas: Sequence[frozenset]) -> list[frozenset]:
    """The mesh axes each result of ``prim`` varies over, given its operands'."""
    union = frozenset().union(*in_vmas) if in_vmas else frozenset()
    n_out = None
    if prim in parallel.REDUCTIONS:
        return [union - frozenset(params["axes"])]
    if prim is pbroadcast_p:
        return [union - frozenset(params["axis_name"])]
    if prim is ragged_all_to_all_p:
        return [union | frozenset(params["axis_name"])]
    if prim is parallel.all_gather_p:
        return [union - frozenset(parallel.axis_names(params["axis_name"]))]
    if prim in (parallel.reduce_scatter_p, parallel.ppermute_p, parallel.all_to_all_p):
        return [union | frozenset(parallel.axis_names(params["axis_name"]))]
    if prim is parallel.axis_index_p:
        return [frozenset(parallel.axis_names(params["axis_name"]))]
    if prim is parallel.pvary_p:
        return [union | frozenset(params["axes"])]
    inner = _sub_jaxprs(params)
    if inner:  # a body: what its results depend on, through it
        return _vma_through(prim, params, inner, in_vmas)
    return [union] * (n_out or 1)


def _sub_jaxprs(params: dict) -> list:
    out = []
    for v in params.values():
        for j in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(j, Jaxpr) or hasattr(j, "jaxpr") and isinstance(j.jaxpr, Jaxpr):
                out.append(j)
    return out


def _vma_through(prim, params, inner, in_vmas) -> list[frozenset]:
    union = frozenset().union(*in_vmas) if in_vmas else frozenset()
    outs = None
    for j in inner:
        jaxpr = j if isinstance(j, Jaxpr) else j.jaxpr
        n_in = len(jaxpr.constvars) + len(jaxpr.invars)
        if n_in != len(in_vmas):  # operands in another order (loops): be conservative
            return [union] * _n_results(prim, params, inner)
        got = jaxpr_vmas(jaxpr, list(in_vmas))
        outs = got if outs is None else [a | b for a, b in zip(outs, got)]
    if len(outs) != _n_results(prim, params, inner):
        return [union] * _n_results(prim, params, inner)
    return outs


def _n_results(prim, params, inner) -> int:
    j = inner[0]
    return len((j if isinstance(j, Jaxpr) else j.jaxpr).outvars)


def jaxpr_vmas(jaxpr: Jaxpr, in_vmas: Sequence[frozenset]) -> list[frozenset]:
    """The mesh axes each output of ``jaxpr`` varies over, given its inputs' (constvars
    first)."""
    env: dict = {}

    def read(a):
        return frozenset() if isinstance(a, Literal) else env.get(a, frozenset())

    for v, m in zip(list(jaxpr.constvars) + list(jaxpr.invars), in_vmas):
        env[v] = m
    for eqn in jaxpr.eqns:
        outs = vma_rule(eqn.primitive, eqn.params, [read(a) for a in eqn.invars])
        if len(outs) != len(eqn.outvars):
            outs = [frozenset().union(*outs)] * len(eqn.outvars)
        env.update(zip(eqn.outvars, outs))
    return [read(a) for a in jaxpr.outvars]


def _staged_vma(prim: Primitive, params: dict, in_avals: Sequence[ShapedArray],
                out_avals: list) -> list:
    """The results of an equation staged in a ``shard_map`` body, typed with the mesh
    axes they vary over (in the order of the bound axes: the mesh's)."""
    vmas = vma_rule(prim, params, [a.vma for a in in_avals])
    if len(vmas) != len(out_avals):
        vmas = [frozenset().union(*vmas)] * len(out_avals)
    order = [a.name for a in batching._axis_env]
    return [a.update(vma=tuple(n for n in order if n in m)) for a, m in zip(out_avals, vmas)]


def _pvary_operands(prim: Primitive, params: dict, args: Sequence[Any]) -> list:
    """The operands of an ordinary primitive, each marked (``pvary``) varying over the
    axes the others vary over (JAX's rule; collectives and calls take theirs as they
    are)."""
    if prim in parallel.COLLECTIVES or _sub_jaxprs(params):
        return list(args)
    orders = [get_aval(a).vma_order for a in args]
    union = set().union(*orders)
    order = [a.name for a in batching._axis_env if a.name in union]
    out = []
    for a, o in zip(args, orders):
        missing = tuple(n for n in order if n not in o)
        out.append(parallel.pvary_p.bind(as_operand(a), axes=missing) if missing else a)
    return out


register_vma_rule(_staged_vma, _pvary_operands)
vma_sources.update({parallel.axis_index_p, parallel.pvary_p})


# ---- the primitive -------------------------------------------------------------------------

def _abstract_eval(*args, jaxpr, mesh, in_specs, out_specs, check_vma, newly_manual_axes):
    return [ShapedArray(_global_shape(v.aval.shape, spec, mesh), v.aval.dtype,
                        v.aval.weak_type, sharding=NamedSharding(mesh, spec))
            for v, spec in zip(jaxpr.outvars, out_specs)]


shard_map_p.def_abstract_eval(_abstract_eval)


def _impl(*args, jaxpr, mesh, in_specs, out_specs, check_vma, newly_manual_axes):
    return _run_eagerly(lambda *xs: run(jaxpr, *xs), mesh, list(args), list(in_specs),
                        lambda: list(out_specs))


shard_map_p.def_impl(_impl)


def _pp_params(params: dict) -> list:
    """A ``shard_map`` equation's parameters as JAX prints them: the context mesh as an
    abstract mesh."""
    mesh = params["mesh"]
    shown = mesh.abstract_mesh if getattr(mesh, "from_context", False) else mesh
    return sorted(dict(params, mesh=shown).items())


pp_eqn_rules[shard_map_p] = _pp_params


def _mesh_axes(mesh: AbstractMesh):
    return batching.extend_axis_env(mesh.shape_tuple)


def bind_shard_map(jaxpr: Jaxpr, consts: list, args: list, in_specs: list, out_specs: list,
                   mesh, check_vma: bool) -> list:
    """``shard_map`` of the open ``jaxpr`` (its first inputs are ``consts``, replicated)."""
    specs = tuple([PartitionSpec()] * len(consts) + list(in_specs))
    return shard_map_p.bind(*consts, *args, jaxpr=jaxpr, mesh=mesh, in_specs=specs,
                            out_specs=tuple(out_specs), check_vma=check_vma,
                            newly_manual_axes=frozenset(mesh.axis_names))


def map_blocks(fun: Callable, args: list, in_specs: Sequence[PartitionSpec],
               out_specs: Sequence[PartitionSpec], mesh, check_vma: bool) -> list:
    """``shard_map`` of ``fun`` (flat operands in, a list of results out) over ``args``
    laid out as ``in_specs``: what the rules of other transforms bind when they rewrite a
    ``shard_map``'s body (``checkify`` adds the error state to its results)."""
    with _mesh_axes(mesh):
        jaxpr, consts = trace_open(fun, [_local_aval(a, s, mesh)
                                         for a, s in zip(args, in_specs)])
    return bind_shard_map(jaxpr, consts, list(args), list(in_specs), list(out_specs), mesh,
                          check_vma)


# jvp: the body's jvp, mapped alike (tangents laid out as their primals)

def _jvp(primals, tangents, *, jaxpr, mesh, in_specs, out_specs, check_vma,
         newly_manual_axes):
    nonzeros = [type(t) is not ad.Zero for t in tangents]
    with _mesh_axes(mesh):
        new, consts, out_nz = jvp_jaxpr(jaxpr, nonzeros, [False] * len(jaxpr.outvars))
    tans = [t for t in tangents if type(t) is not ad.Zero]
    t_specs = [s for s, nz in zip(in_specs, nonzeros) if nz]
    t_out_specs = [s for s, nz in zip(out_specs, out_nz) if nz]
    outs = bind_shard_map(new, consts, list(primals) + tans, list(in_specs) + t_specs,
                 list(out_specs) + t_out_specs, mesh, check_vma)
    n = len(jaxpr.outvars)
    primal_out, it = outs[:n], iter(outs[n:])
    tangent_out = [next(it) if nz else ad.Zero.from_primal(p)
                   for p, nz in zip(primal_out, out_nz)]
    return primal_out, tangent_out


ad.primitive_jvps[shard_map_p] = _jvp


# partial evaluation: a known shard_map giving per-device residuals (stacked along a new
# leading dimension split over every mesh axis) to an unknown one

def _partial_eval(trace, args, params):
    jaxpr, mesh = params["jaxpr"], params["mesh"]
    in_specs, out_specs = params["in_specs"], params["out_specs"]
    unknown = [trace.is_unknown(a) for a in args]
    with _mesh_axes(mesh):
        split = partial_eval_jaxpr(jaxpr, unknown, [False] * len(jaxpr.outvars))
    all_axes = tuple(mesh.axis_names)
    res_spec = PartitionSpec(all_axes)
    nk_out = len(jaxpr.outvars) - sum(split.out_unknowns)

    def known_body(*xs):
        outs = run(split.known, *xs)
        return outs[:nk_out] + [reshape(r, (1,) + get_aval(r).shape) for r in outs[nk_out:]]

    known_in = [a for a, u in zip(args, unknown) if not u]
    known_specs = [s for s, u in zip(in_specs, unknown) if not u]
    with _mesh_axes(mesh):
        kj, kconsts = trace_open(known_body, [get_aval(c) for c in split.known_consts]
                                 + [_local_aval(a, s, mesh) for a, s in
                                    zip(known_in, known_specs)])
    known_out_specs = [s for s, u in zip(out_specs, split.out_unknowns) if not u]
    with set_current_trace(trace.parent):
        outs = bind_shard_map(kj, kconsts + list(split.known_consts), known_in, known_specs,
                     known_out_specs + [res_spec] * split.num_res, mesh, params["check_vma"])
    known_outs, res = outs[:nk_out], outs[nk_out:]

    def unknown_body(*xs):
        res_, rest = xs[:split.num_res], xs[split.num_res:]
        res_ = [reshape(r, get_aval(r).shape[1:]) for r in res_]
        return run(split.unknown, *res_, *rest)

    uk_in = [a for a, u in zip(args, unknown) if u]
    uk_specs = [s for s, u in zip(in_specs, unknown) if u]
    with _mesh_axes(mesh):
        uj, uconsts = trace_open(unknown_body, [a.update(shape=(1,) + a.shape)
                                                for a in split.res_avals]
                                 + [_local_aval(a, s, mesh) for a, s in zip(uk_in, uk_specs)])
    uk_out_specs = [s for s, u in zip(out_specs, split.out_unknowns) if u]
    specs = tuple([PartitionSpec()] * len(uconsts) + [res_spec] * split.num_res + uk_specs)
    uk_outs = trace.record(shard_map_p, list(uconsts) + list(res) + uk_in, dict(
        params, jaxpr=uj, in_specs=specs, out_specs=tuple(uk_out_specs)))
    kit, uit = iter(known_outs), iter(uk_outs)
    return [next(uit) if u else next(kit) for u in split.out_unknowns]


def _local_aval(x: Any, spec: PartitionSpec, mesh) -> ShapedArray:
    """The type of one device's block of ``x``: varying over the mesh axes ``spec``
    splits it along (and split over none: inside, the axes are manual)."""
    a = get_aval(x)
    named = set(spec.mesh_axes())
    return a.update(shape=_block_shape(a.shape, spec, mesh),
                    vma=tuple(n for n in mesh.axis_names if n in named), spec=())


custom_partial_eval_rules[shard_map_p] = _partial_eval


# transposition: the body's transpose; cotangents of outputs replicated over some axes are
# shared out between their copies, those of inputs replicated over some axes summed

def _transpose(cts, *args, jaxpr, mesh, in_specs, out_specs, check_vma, newly_manual_axes):
    linear = [ad.is_undefined_primal(a) for a in args]
    res = [a for a, lin in zip(args, linear) if not lin]
    cts = [ad.instantiate_zeros(ct) for ct in cts]
    res_specs = [s for s, lin in zip(in_specs, linear) if not lin]
    lin_specs = [s for s, lin in zip(in_specs, linear) if lin]
    lin_avals = [v.aval for v, lin in zip(jaxpr.invars, linear) if lin]

    def body(*xs):
        r, c = xs[:len(res)], xs[len(res):]
        c = [_share(ct, spec, mesh) for ct, spec in zip(c, out_specs)]
        it = iter(r)
        primals = [ad.UndefinedPrimal(v.aval) if lin else next(it)
                   for v, lin in zip(jaxpr.invars, linear)]
        cts_in = ad.backward_pass(jaxpr, [], primals, c)
        out = []
        for ct, spec, aval in zip([c_ for c_, lin in zip(cts_in, linear) if lin], lin_specs,
                                  lin_avals):
            ct = ad.instantiate_zeros(ct) if type(ct) is not ad.Zero else \
                ad.zeros_like_aval(aval)
            summed = tuple(_unmentioned(mesh, spec))
            out.append(parallel.psum_p.bind(ct, axes=summed) if summed else ct)
        return out

    with _mesh_axes(mesh):
        tj, tconsts = trace_open(body, [_local_aval(r, s, mesh) for r, s in
                                        zip(res, res_specs)] +
                                 [_local_aval(c, s, mesh) for c, s in zip(cts, out_specs)])
    outs = iter(bind_shard_map(tj, tconsts, res + cts, res_specs + list(out_specs), lin_specs, mesh,
                      check_vma))
    return [next(outs) if lin else None for lin in linear]


def _share(ct: Any, spec: PartitionSpec, mesh) -> Any:
    n = math.prod(mesh.shape[a] for a in _unmentioned(mesh, spec))
    return ct if n == 1 else div(ct, as_operand(n, get_aval(ct).dtype))


ad.primitive_transposes[shard_map_p] = _transpose


# batching: the body vectorised; the batch dimension (first) is not split

def _batch(vals, dims, *, jaxpr, mesh, in_specs, out_specs, check_vma, newly_manual_axes):
    size = batching.batch_size(vals, dims)
    batched = [d is not None for d in dims]
    vals = [batching.moveaxis(v, d, 0, size) if d is not None else v
            for v, d in zip(vals, dims)]
    with _mesh_axes(mesh):
        new, consts, out_b = batch_jaxpr(jaxpr, size, batched, [True] * len(jaxpr.outvars))
    specs = [PartitionSpec(None, *s) if b else s for s, b in zip(in_specs, batched)]
    outs = bind_shard_map(new, consts, vals, specs, [PartitionSpec(None, *s) for s in out_specs], mesh,
                 check_vma)
    return outs, [0] * len(outs)


batching.primitive_batchers[shard_map_p] = _batch


# under jit: the body is the per-device program

def _partition(ctx, eqn, ins):
    p = eqn.params
    if p["mesh"] != ctx.mesh:
        raise NotImplementedError(f"a shard_map over {p['mesh']} inside a computation over "
                                  f"{ctx.mesh}: one mesh per computation")
    local = [ctx.reshard(x, lay, spec.normalized(len(lay)))
             for (x, lay), spec in zip(ins, p["in_specs"])]
    outs = run(p["jaxpr"], *local)
    return [(o, spec.normalized(v.aval.ndim)) for o, spec, v in
            zip(outs, p["out_specs"], eqn.outvars)]


register_partition_rule(shard_map_p, _partition, replaces=True)


# ---- eager evaluation: every device's blocks at once ------------------------------------------

class ShardMapTracer(Tracer):
    """A value of every device: ``val`` stacks the blocks over the mesh axes (leading
    dimensions, in the mesh's order); ``vma``: the axes it may vary over."""

    __slots__ = ("val", "vma")

    def __init__(self, trace: "ShardMapTrace", val: Any, vma: frozenset):
        self._trace, self.val, self.vma = trace, val, vma

    @property
    def aval(self) -> ShapedArray:
        a = get_aval(self.val)
        names = self._trace.mesh.axis_names
        return a.update(shape=a.shape[len(names):],
                        vma=tuple(n for n in names if n in self.vma))

    def to_concrete_value(self) -> Any:
        return None

    def __str__(self) -> str:
        mesh = self._trace.mesh
        names = f"({', '.join(map(str, mesh.axis_names))},)"
        blocks = np.asarray(self.val).reshape((-1,) + self.aval.shape)
        return "\n".join(f"On {device} at mesh coordinates {names} = {idx}:\n{block}\n"
                         for (idx, device), block in zip(np.ndenumerate(mesh.devices),
                                                         blocks))

    def __repr__(self) -> str:
        return f"ShardMapTracer({self.aval})"


class ShardMapTrace(Trace):
    """Eager evaluation of a per-device function on every device of ``mesh`` at once."""

    def __init__(self, parent: Trace, mesh: Mesh, check_vma: bool):
        self.parent, self.mesh, self.check_vma = parent, mesh, check_vma

    def process_primitive(self, primitive, args, params):
        tracers = [a if isinstance(a, ShardMapTracer) and a._trace is self else None
                   for a in args]
        for a, t in zip(args, tracers):
            if t is None:
                check_foreign_tracer(a)
        vals = [t.val if t is not None else a for a, t in zip(args, tracers)]
        vmas = [t.vma if t is not None else frozenset() for t in tracers]
        with set_current_trace(self.parent):
            outs = self._vectorised(lambda *xs: _as_list(primitive.bind(*xs, **params),
                                                         primitive),
                                    vals, [t is not None for t in tracers])
        out_vmas = vma_rule(primitive, params, vmas)
        if len(out_vmas) != len(outs):
            out_vmas = [frozenset().union(*out_vmas)] * len(outs)
        wrapped = [ShardMapTracer(self, o, m) for o, m in zip(outs, out_vmas)]
        return wrapped if primitive.multiple_results else wrapped[0]

    def _vectorised(self, fn: Callable, vals: list, stacked: list) -> list:
        """``fn`` applied per device: vmapped over each mesh axis in turn (named after it,
        so that the collectives reduce over it)."""
        names, sizes = self.mesh.axis_names, self.mesh.axis_sizes

        def level(k, vs, mapped):
            if k == len(names):
                return fn(*vs)
            return batching.vmap_flat(lambda *inner: level(k + 1, inner, mapped),
                                      batching.AxisData(names[k], sizes[k]), vs,
                                      [0 if m else None for m in mapped],
                                      itertools.repeat(0))
        return level(0, vals, stacked)


def _as_list(out: Any, primitive: Primitive) -> list:
    return list(out) if primitive.multiple_results else [out]


def _stack_blocks(x: Any, spec: PartitionSpec, mesh: Mesh) -> Any:
    """``x``'s blocks under ``spec``, stacked over the mesh axes."""
    value = np.asarray(x)
    sharding = NamedSharding(mesh, spec)
    blocks = [value[sharding.block_of(dict(zip(mesh.axis_names, c)), value.shape)]
              for c in np.ndindex(*mesh.axis_sizes)]
    stacked = np.stack(blocks).reshape(mesh.axis_sizes + blocks[0].shape)
    return as_operand(stacked, weak=getattr(x, "weak_type", False))


def _unstack(val: Any, spec: PartitionSpec, mesh: Mesh, weak: bool) -> ArrayImpl:
    """The global array whose blocks ``val`` stacks (the first device's copy where
    ``spec`` replicates), laid out over the mesh as ``spec`` says."""
    stacked = np.asarray(val)
    k = len(mesh.axis_names)
    local = stacked.shape[k:]
    named = spec.mesh_axes()
    # the copy of the first device along the unnamed axes
    index = tuple(slice(None) if n in named else 0 for n in mesh.axis_names)
    kept = [n for n in mesh.axis_names if n in named]
    blocks = stacked[index]  # (kept axes..., local...)
    order, shape = [], []
    for d in range(len(local)):
        axes = spec.axes_of(d) if d < len(spec) else ()
        order += [kept.index(a) for a in axes] + [len(kept) + d]
        shape.append(local[d] * math.prod(mesh.shape[a] for a in axes))
    value = np.ascontiguousarray(np.transpose(blocks, order)).reshape(shape)
    return put_sharded(to_array(value) if not weak else as_operand(value, weak=True),
                       NamedSharding(mesh, spec))


def _run_eagerly(fun: Callable, mesh: Mesh, args: list, in_specs: list,
                 out_specs_for: Callable[[], list], check_vma: bool = False,
                 f: Any = None) -> list:
    """The flat function ``fun`` run on every device's blocks of ``args`` at once; its
    results put together as ``out_specs_for()`` (called once ``fun`` has run) says."""
    trace = ShardMapTrace(current_trace(), mesh, check_vma)
    with new_trace(trace), _mesh_axes(mesh):
        tracers = [ShardMapTracer(trace, _stack_blocks(a, s, mesh), frozenset(s.mesh_axes()))
                   for a, s in zip(args, in_specs)]
        outs = list(fun(*tracers))
    specs = out_specs_for()
    mine = [isinstance(o, ShardMapTracer) and o._trace is trace for o in outs]
    if check_vma:
        msg = _replication_error(f, mesh, specs, [o.vma if m else frozenset()
                                                  for o, m in zip(outs, mine)])
        if msg:
            raise ValueError(msg)
    results = []
    for o, spec, m in zip(outs, specs, mine):
        if m:
            val = o.val
        else:  # a value computed from no input: the same on every device
            o = as_operand(o)
            val = np.broadcast_to(np.asarray(o), mesh.axis_sizes + np.shape(o))
        results.append(_unstack(val, spec, mesh, bool(getattr(o, "weak_type", False))))
    return results


# ---- the public function -------------------------------------------------------------------

def shard_map(f: Optional[Callable] = None, /, *, out_specs: Any, in_specs: Any = Infer,
              mesh: Any = None, axis_names: Any = frozenset(), check_vma: bool = True,
              check_rep: Optional[bool] = None, auto: Any = frozenset()) -> Any:
    """Map ``f``, written for one device's blocks, over the devices of ``mesh`` (default:
    the current mesh).  ``in_specs`` / ``out_specs``: PartitionSpecs (pytree prefixes of the
    arguments / results) saying how the arguments are split into blocks and how the blocks
    of the results are put together; ``in_specs`` may be left out when the arguments are
    laid out over the mesh already.  ``check_vma`` (``check_rep`` in the older API) checks
    that results the ``out_specs`` declare replicated over a mesh axis do not vary over it.
    ``axis_names``: the mesh axes the body is manual over (default: all); over some of
    them the body runs on the sub-mesh of those (see :func:`_manual_mesh`).  Usable as a
    decorator with keyword arguments."""
    if check_rep is not None:
        check_vma = check_rep
    if not isinstance(axis_names, (frozenset, set)):
        raise TypeError("`axis_names` argument of shard_map should be of type `frozenset` or"
                        f" `set`. Got type: {type(axis_names)}")
    if f is None:
        return lambda g: shard_map(g, out_specs=out_specs, in_specs=in_specs, mesh=mesh,
                                   axis_names=axis_names, check_vma=check_vma, auto=auto)
    if not callable(f):
        raise TypeError(f"shard_map requires a callable for its first argument, got {f!r}")

    @wraps(f)
    def mapped(*args):
        m = _resolve_mesh(mesh)
        # (``auto``, the older spelling: the axes the body is not manual over)
        m = _manual_mesh(m, frozenset(m.axis_names) - frozenset(auto) if auto else axis_names)
        flat, in_tree = physical.tree_flatten(args)
        flat = [as_operand(x) for x in flat]
        specs = _flat_in_specs(in_specs, args, flat, m)
        _check_specs(specs, m, "in_specs")
        if in_specs is not Infer and m.are_all_axes_explicit:
            _check_specs_match_types(specs, flat)
        msg = _divisibility_error(f, m, args, specs, [get_aval(x) for x in flat])
        if msg:
            raise ValueError(msg)

        store: list = []

        def flat_body(*xs):
            out = f(*tree_util.tree_unflatten(in_tree, list(xs)))
            leaves, tree = physical.tree_flatten(out)
            store.append(tree)
            return [as_operand(leaf) if not isinstance(leaf, Tracer) else leaf
                    for leaf in leaves]

        def out_specs_for():
            out_tree = store[-1]
            dummy = tree_util.tree_unflatten(out_tree, [0] * out_tree.num_leaves)
            got = broadcast_prefix(out_specs, dummy, "shard_map out_specs")
            _check_specs(got, m, "out_specs")
            return got

        if is_eager():
            outs = _run_eagerly(flat_body, m, flat, specs, out_specs_for, check_vma, f)
            return tree_util.tree_unflatten(store[-1], outs)
        with _mesh_axes(m):
            jaxpr, consts = trace_open(flat_body, [_local_aval(x, s, m)
                                                   for x, s in zip(flat, specs)])
        o_specs = out_specs_for()
        if check_vma:
            vmas = jaxpr_vmas(jaxpr, [frozenset()] * len(consts)
                              + [frozenset(s.mesh_axes()) for s in specs])
            msg = _replication_error(f, m, o_specs, vmas)
            if msg:
                raise ValueError(msg)
        outs = bind_shard_map(jaxpr, consts, flat, specs, o_specs, m, check_vma)
        return tree_util.tree_unflatten(store[-1], outs)

    return mapped


def _manual_mesh(mesh: Mesh, axis_names: frozenset) -> Mesh:
    """The mesh the body is manual over: ``mesh``, or where ``axis_names`` names some of
    its axes only, the sub-mesh of those axes at the first position along the others.
    (JAX leaves the other axes to the compiler, which may split the body's work over them;
    the values are the same when the body runs once per manual position, with the
    arguments whole along the other axes -- which is what the specs, naming manual axes
    only, give.)"""
    names = frozenset(axis_names)
    if not names.issubset(mesh.axis_names):
        raise ValueError(f"jax.shard_map requires axis_names={names} to be a subset of "
                         f"mesh.axis_names={frozenset(mesh.axis_names)}")
    if not names or names == frozenset(mesh.axis_names):
        return mesh
    index = tuple(slice(None) if n in names else 0 for n in mesh.axis_names)
    kept = [k for k, n in enumerate(mesh.axis_names) if n in names]
    sub = Mesh(mesh.devices[index], tuple(mesh.axis_names[k] for k in kept),
               tuple(mesh.axis_types[k] for k in kept))
    sub.from_context = getattr(mesh, "from_context", False)
    return sub


def _check_specs_match_types(specs: list, flat: list) -> None:
    """Over a mesh of Explicit axes, arguments' types say how they are laid out: the
    in_specs must say the same (JAX's rule: reshard first, or leave in_specs out)."""
    for spec, x in zip(specs, flat):
        aval = get_aval(x)
        want = PartitionSpec(*spec_of_axes(spec.normalized(aval.ndim), full_rank=True))
        have = aval.sharding.spec
        if tuple(have) != tuple(want):
            raise ValueError(
                f"in_specs passed to shard_map: {want} does not match the specs of the input: "
                f"{have} for arg: {aval}. `in_specs` is an optional "
                "argument so you can omit specifying it and shard_map will infer the in_specs "
                "from the arguments. If you want to reshard your inputs, you can use "
                "`jax.reshard` on the arguments and then pass those args to shard_map.")


def _flat_in_specs(in_specs: Any, args: tuple, flat: list, mesh: Mesh) -> list:
    if in_specs is Infer:  # from how the arguments are laid out (jit's too)
        out = []
        for x in flat:
            s = layout_of(x)
            out.append(s.spec if isinstance(s, NamedSharding) and s.mesh == mesh
                       else PartitionSpec())
        return out
    return broadcast_prefix(tuple(in_specs) if isinstance(in_specs, list) else in_specs,
                            args, "shard_map in_specs")
