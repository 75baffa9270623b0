"""Vectorisation: the batching interpreter behind ``vmap``.

A :class:`BatchTracer` holds a value with one extra (batch) axis at ``batch_dim``,
or ``not_mapped`` (None) for values that do not vary over the batch.  Batch axes
move lazily: a rule moves one only where it has to.

Rules are registered by the primitives' own modules in ``tinyjax.lax``:
``primitive_batchers[prim](args, dims, **params) -> (out, out_dim)`` (lists of both for
primitives with several results); at least one dim is not None.  Rules that need the
axis being vectorised over (collectives) go into ``fancy_primitive_batchers`` as JAX names
it: ``rule(axis_data, args, dims, **params)`` (see :class:`AxisData`), called even when
no argument is batched.  ``axis_primitive_batchers`` takes JAX's older form of such a
rule, ``rule(axis_size, axis_name, trace_type, args, dims, **params)``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

from tinyjax.core import (Primitive, ShapedArray, Trace, Tracer, check_foreign_tracer,
                          get_aval, set_current_trace)
from tinyjax.interpreters import lax_ops
from tinyjax.interpreters.ad import SymbolicZero, Zero, zeros_like_aval

not_mapped = None
primitive_batchers: dict[Primitive, Callable] = {}
# Collective primitives (psum, axis_index, …) need to know which vmap they belong to.
fancy_primitive_batchers: dict[Primitive, Callable] = {}


class AxisPrimitiveBatchers:
    """``axis_primitive_batchers[prim] = rule``: JAX's older form of an axis-aware rule,
    ``rule(axis_size, axis_name, trace_type, args, dims, **params)``, stored in
    :data:`fancy_primitive_batchers`."""

    def __setitem__(self, primitive: Primitive, rule: Callable) -> None:
        def fancy_rule(axis_data, vals, dims, **params):
            return rule(axis_data.size, axis_data.name, None, vals, dims, **params)
        fancy_primitive_batchers[primitive] = fancy_rule

    def __delitem__(self, primitive: Primitive) -> None:
        del fancy_primitive_batchers[primitive]


axis_primitive_batchers = AxisPrimitiveBatchers()


class AxisData:
    """The name and size of one vmapped axis."""

    __slots__ = ("name", "size", "spmd_name")

    def __init__(self, name: Any, size: int, spmd_name: Any = None):
        self.name = name
        self.size = size
        self.spmd_name = spmd_name


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim")

    def __init__(self, trace: "BatchTrace", val: Any, batch_dim: int | None):
        self._trace = trace
        self.val = val
        self.batch_dim = batch_dim

    @property
    def aval(self) -> ShapedArray:
        aval = get_aval(self.val)
        if self.batch_dim is None:
            return aval
        shape = aval.shape[:self.batch_dim] + aval.shape[self.batch_dim + 1:]
        return ShapedArray(shape, aval.dtype, aval.weak_type)

    def _origin(self) -> str:
        return "a value batched by vmap (it differs across the mapped axis)"

    def __repr__(self) -> str:
        if self.batch_dim is None:
            return f"VmapTracer(aval={self.aval}, val={self.val})"
        return f"VmapTracer(aval={self.aval}, batched={get_aval(self.val)})"


class BatchTrace(Trace):
    def __init__(self, parent: Trace, axis_data: AxisData):
        self.parent = parent
        self.axis_data = axis_data

    def to_val_dim(self, x: Any) -> tuple[Any, int | None]:
        if isinstance(x, BatchTracer) and x._trace is self:
            return x.val, x.batch_dim
        check_foreign_tracer(x)
        return x, not_mapped

    def wrap(self, val: Any, dim: int | None) -> Any:
        return val if dim is None else BatchTracer(self, val, dim)

    def process_primitive(self, primitive, args, params):
        vals, dims = zip(*map(self.to_val_dim, args)) if args else ((), ())
        collective = fancy_primitive_batchers.get(primitive)
        if collective is not None:
            with set_current_trace(self.parent):
                out, out_dim = collective(self.axis_data, list(vals), list(dims), **params)
                if out is NotImplemented:  # the collective names another vmap's axis
                    return primitive.bind(*[self.wrap(v, d) for v, d in zip(vals, dims)],
                                          **params)
            if primitive.multiple_results:
                return [self.wrap(o, d) for o, d in zip(out, out_dim)]
            return self.wrap(out, out_dim)
        if all(d is None for d in dims):
            with set_current_trace(self.parent):
                return primitive.bind(*vals, **params)
        rule = primitive_batchers.get(primitive)
        if rule is None:
            raise NotImplementedError(f"Batching rule for '{primitive.name}' not implemented")
        _rule_axes.append(self.axis_data)
        try:
            with set_current_trace(self.parent):
                out, out_dim = rule(list(vals), list(dims), **params)
        finally:
            _rule_axes.pop()
        if primitive.multiple_results:
            return [self.wrap(o, d) for o, d in zip(out, out_dim)]
        return self.wrap(out, out_dim)

    def process_custom_jvp_call(self, primitive, fun, jvp, args, *, symbolic_zeros,
                                num_consts=0):
        return batch_custom_jvp_call(self, primitive, fun, jvp, args,
                                     symbolic_zeros=symbolic_zeros, num_consts=num_consts)

    def process_custom_vjp_call(self, primitive, fun, fwd, bwd, args, *, out_trees,
                                symbolic_zeros, num_consts=0):
        return batch_custom_vjp_call(self, primitive, fun, fwd, bwd, args,
                                     out_trees=out_trees, symbolic_zeros=symbolic_zeros,
                                     num_consts=num_consts)


# The named axes of the vmaps being traced (innermost last): collectives staged
# inside them (e.g. in a loop body) type-check against this environment.
_axis_env: list[AxisData] = []


@contextmanager
def extend_axis_env(axes: Sequence[tuple[Any, int]]) -> Iterator[None]:
    """Bind the named axes ``(name, size)`` for the collectives traced inside, with no vmap
    around them (``make_jaxpr(axis_env=...)``: they are staged as equations)."""
    depth = len(_axis_env)
    _axis_env.extend(AxisData(name, int(size)) for name, size in axes)
    try:
        yield
    finally:
        del _axis_env[depth:]


def bound_axis_size(name: Any) -> int | None:
    """The size of the enclosing named axis called ``name`` (of a vmap, or of the mesh of
    a ``shard_map`` / ``pmap``), or None if unbound."""
    for axis in reversed(_axis_env):
        if axis.name == name:
            return axis.size
    return None


@contextmanager
def extend_axis_env(axes: Sequence[tuple[Any, int]]) -> Iterator[None]:
    """Bind the named ``axes`` ((name, size) pairs: a mesh's) while a program over them is
    traced, so that its collectives type-check."""
    n = len(_axis_env)
    _axis_env.extend(AxisData(name, size) for name, size in axes)
    try:
        yield
    finally:
        del _axis_env[n:]


# The axes of the batch traces whose rules are running (innermost last).
_rule_axes: list[AxisData] = []


def rule_axis_data(size: int) -> AxisData:
    """The axis a batching rule is vectorising over, for rules that re-trace a
    sub-program with vmap: keeping its name lets collectives inside resolve."""
    if _rule_axes and _rule_axes[-1].size == size:
        return _rule_axes[-1]
    return AxisData(None, size)


# ---------------------------------------------------------------------------
# Helpers for rules
# ---------------------------------------------------------------------------


def moveaxis(x: Any, src: int | None, dst: int, size: int | None = None) -> Any:
    """Move the batch axis of ``x`` from ``src`` to ``dst``; broadcast if unmapped."""
    if src is None:
        if size is None:
            raise ValueError("moveaxis of an unmapped value needs the axis size")
        shape = list(get_aval(x).shape)
        shape.insert(dst, size)
        dims = tuple(i for i in range(len(shape)) if i != dst)
        return lax_ops.broadcast_in_dim(x, tuple(shape), dims)
    if src == dst:
        return x
    ndim = get_aval(x).ndim
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst, src)
    return lax_ops.transpose(x, tuple(perm))


def bdim_at_front(x: Any, dim: int | None, size: int) -> Any:
    return moveaxis(x, dim, 0, size)


def batch_size(vals: Sequence[Any], dims: Sequence[int | None]) -> int:
    for v, d in zip(vals, dims):
        if d is not None:
            return get_aval(v).shape[d]
    raise ValueError("no batched argument")


def broadcast_batcher(primitive: Primitive) -> Callable:
    """Batching rule for elementwise primitives: operands of one shape, or scalars
    (rank 0) that broadcast inside the primitive."""
    def rule(vals, dims, **params):
        shapes = [_unbatched_shape(v, d) for v, d in zip(vals, dims)]
        out_shape = next((s for s in shapes if s), ())
        batched = {d for d in dims if d is not None}
        if len(batched) == 1 and all((d is not None and s == out_shape) or
                                     (d is None and not s) for s, d in zip(shapes, dims)):
            return primitive.bind(*vals, **params), batched.pop()
        size = batch_size(vals, dims)
        new_vals = []
        for v, d, s in zip(vals, dims, shapes):
            if d is None and not s:
                new_vals.append(v)  # an unbatched scalar still broadcasts by itself
                continue
            v = moveaxis(v, d, 0, size)
            if s != out_shape:  # a batched scalar next to arrays
                v = lax_ops.broadcast_in_dim(v, (size,) + out_shape, (0,))
            new_vals.append(v)
        return primitive.bind(*new_vals, **params), 0
    return rule


def _unbatched_shape(x: Any, dim: int | None) -> tuple[int, ...]:
    shape = get_aval(x).shape
    return shape if dim is None else shape[:dim] + shape[dim + 1:]


def defbroadcasting(primitive: Primitive) -> None:
    primitive_batchers[primitive] = broadcast_batcher(primitive)


def defvectorized(primitive: Primitive) -> None:
    """Unary primitives that act on every element independently."""
    def rule(vals, dims, **params):
        return primitive.bind(*vals, **params), dims[0]
    primitive_batchers[primitive] = rule


def _vmap_pairs(fun: Callable[..., Sequence[Any]], axis_data: AxisData,
                args: Sequence[Any], in_dims: Sequence[int | None]) -> list[tuple[Any, Any]]:
    """``fun`` run over batched ``args``: (value, batch dim or None) per output."""
    from tinyjax.core import current_trace, new_trace
    trace = BatchTrace(current_trace(), axis_data)
    _axis_env.append(axis_data)
    try:
        with new_trace(trace):
            outs = fun(*[trace.wrap(a, d) for a, d in zip(args, in_dims)])
            return [trace.to_val_dim(o) for o in outs]
    finally:
        _axis_env.pop()


class SpecMatchError(ValueError):
    """Output ``leaf_idx`` is batched on axis ``src`` but its out_axes entry ``dst`` is
    None (an output that varies over the mapped axis cannot be unmapped); ``vmap`` names
    the output's path in its message, as JAX's."""

    def __init__(self, leaf_idx: int, src: int, dst: Any):
        super().__init__(f"got axis spec {dst} but output was batched on axis {src}")
        self.leaf_idx, self.src, self.dst = leaf_idx, src, dst


def vmap_flat(fun: Callable[..., Sequence[Any]], axis_data: AxisData,
              args: Sequence[Any], in_dims: Sequence[int | None],
              out_dims: Sequence[int | None]) -> list[Any]:
    """Run the flat ``fun`` over batched ``args`` and place each output's batch axis
    at the requested ``out_dims`` (None: the output must not vary over the batch)."""
    pairs = _vmap_pairs(fun, axis_data, args, in_dims)
    results = []
    for i, ((val, dim), out_dim) in enumerate(zip(pairs, out_dims)):
        if out_dim is None:
            if dim is not None:
                if axis_data.name is not None:
                    raise ValueError(f"vmap has mapped output (axis_name={axis_data.name}) "
                                     "but out_axes is None")
                raise SpecMatchError(i, dim, out_dim)
            results.append(val)
        else:
            results.append(moveaxis(val, dim, out_dim, axis_data.size))
    return results


def vmap_flat_natural(fun: Callable[..., Sequence[Any]], axis_data: AxisData,
                      args: Sequence[Any], in_dims: Sequence[int | None]
                      ) -> tuple[list[Any], list[int | None]]:
    """Like :func:`vmap_flat`, each output batched at axis 0 only if it varies over the
    batch: (outputs, their batch dims, 0 or None)."""
    pairs = _vmap_pairs(fun, axis_data, args, in_dims)
    outs = [val if dim is None else moveaxis(val, dim, 0, axis_data.size)
            for val, dim in pairs]
    return outs, [None if dim is None else 0 for _, dim in pairs]


# ---------------------------------------------------------------------------
# custom_jvp / custom_vjp calls: the function and its rules vectorised together
# ---------------------------------------------------------------------------


def batch_custom_jvp_call(trace, primitive, fun, jvp, args, *, symbolic_zeros, num_consts=0):
    vals, dims = zip(*map(trace.to_val_dim, args)) if args else ((), ())
    if all(d is None for d in dims):  # nothing batched: the call is the trace below's
        return trace.parent.process_custom_jvp_call(primitive, fun, jvp, vals,
                                                    symbolic_zeros=symbolic_zeros,
                                                    num_consts=num_consts)
    axis = trace.axis_data
    out_dims: list = []  # the batch dims of what the call returns (fun's or jvp's)

    def batched_fun(*vs):
        outs, out_dims[:] = vmap_flat_natural(fun, axis, vs, dims)
        return outs

    def batched_jvp(*primals_and_tangents):
        args, arg_dims = _unbatched_zeros(primals_and_tangents, list(dims) * 2)
        outs, both = vmap_flat_natural(jvp, axis, args, arg_dims)
        n = len(outs) // 2
        # a primal output and its tangent are batched together if either varies
        out_dims[:] = [None if p is None and t is None else 0
                       for p, t in zip(both[:n], both[n:])]
        return [o if d is not None or b is None else _broadcast_batched(o, axis.size)
                for o, d, b in zip(outs, both, out_dims * 2)]

    outs = trace.parent.process_custom_jvp_call(primitive, batched_fun, batched_jvp, vals,
                                                symbolic_zeros=symbolic_zeros,
                                                num_consts=num_consts)
    return [trace.wrap(o, d) for o, d in zip(outs, out_dims)]


def batch_custom_vjp_call(trace, primitive, fun, fwd, bwd, args, *, out_trees,
                          symbolic_zeros, num_consts=0):
    vals, dims = zip(*map(trace.to_val_dim, args)) if args else ((), ())
    if all(d is None for d in dims):  # nothing batched: the call is the trace below's
        return trace.parent.process_custom_vjp_call(primitive, fun, fwd, bwd, vals,
                                                    out_trees=out_trees,
                                                    symbolic_zeros=symbolic_zeros,
                                                    num_consts=num_consts)
    axis = trace.axis_data
    n_out: list[int] = []
    n_res: list[int] = []

    def batched_fun(*vs):
        return vmap_flat(lambda *a: _record(n_out, fun(*a)), axis, vs, dims, ZeroDims(n_out))

    def batched_fwd(perturbed, *vs):
        def flat_fwd(*a):
            res, out = fwd(perturbed, *a)
            n_res[:] = [len(res)]
            n_out[:] = [len(out)]
            return list(res) + list(out)
        outs = vmap_flat(flat_fwd, axis, vs, dims, ZeroDims(n_out, extra=n_res))
        return outs[:n_res[0]], outs[n_res[0]:]

    def batched_bwd(res, cts):
        def flat_bwd(*a):
            grads = bwd(list(a[:n_res[0]]), list(a[n_res[0]:]))
            return [zeros_like_aval(g.aval) if type(g) in (Zero, SymbolicZero) else g
                    for g in grads]
        args, arg_dims = _unbatched_zeros(list(res) + list(cts), [0] * (len(res) + len(cts)))
        return vmap_flat(flat_bwd, axis, args, arg_dims, [0] * len(vals))

    outs = trace.parent.process_custom_vjp_call(primitive, batched_fun, batched_fwd,
                                                batched_bwd, vals, out_trees=out_trees,
                                                symbolic_zeros=symbolic_zeros,
                                                num_consts=num_consts)
    return [trace.wrap(o, 0) for o in outs]


def _unbatched_zeros(args: Sequence[Any], dims: Sequence[int | None]
                     ) -> tuple[list[Any], list[int | None]]:
    """A rule's operands with each :class:`SymbolicZero` (a zero of the batched type, at
    batch dim ``dim``) made the zero of one example's type, not batched: a rule vectorised
    by vmap sees the symbolic zeros it would see unbatched."""
    out_args, out_dims = [], []
    for a, d in zip(args, dims):
        if type(a) is SymbolicZero and d is not None:
            shape = a.aval.shape[:d] + a.aval.shape[d + 1:]
            a, d = SymbolicZero(ShapedArray(shape, a.aval.dtype, a.aval.weak_type)), None
        out_args.append(a)
        out_dims.append(d)
    return out_args, out_dims


def _broadcast_batched(x: Any, size: int) -> Any:
    """An unbatched value (or symbolic zero) given a leading batch axis of ``size``."""
    if type(x) is SymbolicZero:
        return SymbolicZero(ShapedArray((size,) + x.aval.shape, x.aval.dtype,
                                        x.aval.weak_type))
    return moveaxis(x, None, 0, size)


def _record(store: list, outs: Sequence[Any]) -> Sequence[Any]:
    store[:] = [len(outs)]
    return outs


class ZeroDims:
    """Output batch dims (all 0), sized lazily once the traced function has run."""

    def __init__(self, count: list, times: int = 1, extra: list | None = None):
        self.count, self.times, self.extra = count, times, extra

    def __iter__(self):
        n = self.count[0] * self.times + (self.extra[0] if self.extra else 0)
        return iter([0] * n)
