"""``lax.reduce`` with any Python reducer: a recognised monoid (add, mul, max, min and the
bitwise ones, started from their identity) becomes the matching reduction primitive; any
other reducer folds the operands over the reduced axes in a ``fori_loop``."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.tree_util import physical
from tinyjax.core import Primitive, ShapedArray, Tracer, get_aval
from tinyjax.interpreters import batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, eval_jaxpr
from tinyjax.lax._helpers import as_operand, canonicalize_axis
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax import elementwise as ew
from tinyjax.lax import reductions as red
from tinyjax.lax.control_flow import fori_loop
from tinyjax.lax.control_flow.common import trace_open
from tinyjax.lax.shape import broadcast_in_dim, reshape, transpose
from tinyjax.lax.slicing import dynamic_index_in_dim

__all__ = ["reduce", "reduce_p", "computation_jaxpr", "fold_rows"]

# monoid primitive -> (reduction, identity of a dtype)
_MONOIDS: dict[Any, tuple[Callable, Callable[[np.dtype], Any]]] = {
    ew.add_p: (red.reduce_sum, lambda dt: 0),
    ew.mul_p: (red.reduce_prod, lambda dt: 1),
    ew.max_p: (red.reduce_max, lambda dt: -np.inf if dtypes.is_float(dt) else
               (False if dt == np.bool_ else np.iinfo(dt).min)),
    ew.min_p: (red.reduce_min, lambda dt: np.inf if dtypes.is_float(dt) else
               (True if dt == np.bool_ else np.iinfo(dt).max)),
    ew.and_p: (red.reduce_and, lambda dt: True if dt == np.bool_ else -1),
    ew.or_p: (red.reduce_or, lambda dt: False if dt == np.bool_ else 0),
    ew.xor_p: (red.reduce_xor, lambda dt: False if dt == np.bool_ else 0),
}


def _monoid(computation: Callable, x: Any, init: Any) -> Callable | None:
    """The reduction primitive ``computation`` amounts to from ``init``, if any."""
    if isinstance(init, Tracer):
        return None
    aval = ShapedArray((), get_aval(x).dtype)
    jaxpr, consts = trace_open(lambda a, b: [as_operand(computation(a, b))], [aval, aval])
    if consts or len(jaxpr.eqns) != 1:
        return None
    eqn = jaxpr.eqns[0]
    entry = _MONOIDS.get(eqn.primitive)
    if entry is None or set(eqn.invars) != set(jaxpr.invars) or \
            list(eqn.outvars) != list(jaxpr.outvars):
        return None
    reduction, identity = entry
    value = np.asarray(init._value if hasattr(init, "_value") else init)
    if value.shape or value != np.asarray(identity(aval.dtype)).astype(aval.dtype):
        return None
    return reduction


def reduce(operands: Any, init_values: Any, computation: Callable[[Any, Any], Any],
           dimensions: Sequence[int], out_sharding: Any = None) -> Any:
    """Reduce ``operands`` (an array or a pytree of arrays of one shape) over
    ``dimensions`` with ``computation(accumulated, element)`` (pytrees of scalars like
    ``init_values``), starting from ``init_values``."""
    flat, tree = physical.tree_flatten(operands)
    inits, init_tree = physical.tree_flatten(init_values)
    if tree != init_tree:
        raise ValueError("reduce: operands must have the same tree structure as "
                         f"init_values: {tree} vs. {init_tree}")
    if not flat:
        raise ValueError("reduce: at least one operand is required")
    flat = [as_operand(x) for x in flat]
    shape = get_aval(flat[0]).shape
    if any(get_aval(x).shape != shape for x in flat):
        raise ValueError("reduce: all operands must have the same shape, got "
                         f"{[get_aval(x).shape for x in flat]}")
    dims = tuple(sorted({canonicalize_axis(d, len(shape)) for d in dimensions}))
    if len(flat) == 1:
        reduction = _monoid(computation, flat[0], inits[0])
        if reduction is not None:
            out = reduction(flat[0], dims)
            return tree_util.tree_unflatten(tree, [out])
    inits = [as_operand(v, get_aval(x).dtype) if type(v) in (bool, int, float) else
             ew.convert_element_type(as_operand(v), get_aval(x).dtype)
             for v, x in zip(inits, flat)]
    jaxpr = computation_jaxpr(computation, tree, [get_aval(x).dtype for x in flat])
    params = dict(computation=computation, jaxpr=jaxpr, dimensions=dims)
    if any(isinstance(c, Tracer) for c in jaxpr.consts):
        # a computation closing over traced values: its fold is traced in place (a
        # primitive's parameters hold no tracers)
        outs = fold(*flat, *inits, **params)
    else:
        outs = reduce_p.bind(*flat, *inits, **params)
    return tree_util.tree_unflatten(tree, outs)


def computation_jaxpr(computation: Callable, tree: Any, dts: Sequence[np.dtype]
                       ) -> ClosedJaxpr:
    """``computation`` on scalars, flat: (accumulators..., elements...) -> accumulators
    (converted to the operands' dtypes)."""
    n = len(dts)

    def flat_computation(*args):
        out = computation(tree_util.tree_unflatten(tree, args[:n]),
                          tree_util.tree_unflatten(tree, args[n:]))
        out_flat, out_tree = physical.tree_flatten(out)
        if out_tree != tree:
            raise TypeError("reduce: the computation must return a pytree like its "
                            f"operands, got {out_tree}")
        return [ew.convert_element_type(as_operand(o), dt) for o, dt in zip(out_flat, dts)]
    avals = [ShapedArray((), dt) for dt in dts]
    return trace_to_closed_jaxpr(flat_computation, avals + avals)


def fold(*operands_and_inits: Any, computation: Callable, jaxpr: ClosedJaxpr,
            dimensions: tuple[int, ...]) -> list[Any]:
    """Fold the operands over ``dimensions`` with ``jaxpr``, one element at a time."""
    n = len(operands_and_inits) // 2
    flat, inits = operands_and_inits[:n], operands_and_inits[n:]
    shape = get_aval(flat[0]).shape
    if any(get_aval(x).shape != shape for x in flat) or \
            any(get_aval(v).shape or get_aval(v).dtype != get_aval(x).dtype
                for v, x in zip(inits, flat)):
        raise TypeError("reduce: operands must have one shape and init values must be "
                        "scalars of their dtypes, got operands "
                        f"{', '.join(get_aval(x).str_short() for x in flat)} and init values "
                        f"{', '.join(get_aval(v).str_short() for v in inits)}")
    dims = dimensions
    kept = tuple(d for d in range(len(shape)) if d not in dims)
    kept_shape = tuple(shape[d] for d in kept)
    count, width = math.prod(shape[d] for d in dims), math.prod(kept_shape)
    # one row of the kept elements per reduced position
    rows = [reshape(transpose(x, dims + kept), (count, width)) for x in flat]
    return [reshape(o, kept_shape) for o in fold_rows(rows, inits, jaxpr)]


def fold_rows(rows: Sequence[Any], inits: Sequence[Any], jaxpr: ClosedJaxpr,
              valid: Any = None) -> list[Any]:
    """Fold the rows of each (count, width) array in ``rows`` into one row, starting
    from the scalar ``inits``, with the scalar computation ``jaxpr`` run vectorised over
    a row; where the bool (count, width) ``valid`` is False an element is skipped."""
    n = len(rows)
    count, width = get_aval(rows[0]).shape
    start = [broadcast_in_dim(v, (width,), ()) for v in inits]
    axis = batching.AxisData(None, width)

    def combine(*args):
        return eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *args)

    def step(i, acc):
        element = [dynamic_index_in_dim(r, i, 0, keepdims=False) for r in rows]
        new = batching.vmap_flat(combine, axis, [*acc, *element], [0] * (2 * n), [0] * n)
        if valid is None:
            return new
        keep = dynamic_index_in_dim(valid, i, 0, keepdims=False)
        return [ew.select(keep, x, a) for x, a in zip(new, acc)]

    return list(fori_loop(0, count, step, start))


reduce_p = Primitive("reduce", multiple_results=True)
define_composite(reduce_p, fold)
derive_rules(reduce_p)
