"""``select_and_scatter_p``: XLA's SelectAndScatter, the general form of max-pool's transpose.

``select_and_scatter(operand, select, window_dimensions, window_strides, padding, source,
init_value, scatter)``: the result has ``operand``'s shape and starts as ``init_value``
everywhere.  In each window of the padded ``operand`` one element is selected -- scanning
the window in row-major order, the current choice ``c`` gives way to the next element ``e``
where ``select(c, e)`` is False (``lax.ge`` picks the first maximum); the padding is never
selected -- and that window's ``source`` value is combined into the result at the selected
position with ``scatter(result, value)`` (``lax.add`` sums where windows overlap).

``select_and_scatter_p`` (operands: operand, source, init_value; parameters: the two scalar
computations as jaxprs with their constants, and the geometry) is a composite primitive
(:mod:`tinyjax.lax.composite`): defined below in lax operations -- the windows as strided
slices, the selection as a loop over the window's positions, the scatter as one masked
combine per window position -- which gives its eager evaluation, its compilation and
(where JAX has none) its derivatives and batching.  Values scattered to one element combine
grouped by window position, then in window order (XLA: in window order); for an
associative, commutative ``scatter`` such as ``add`` that is the same up to rounding.
tinyjax's max-pool derivative binds the specialised ``select_and_scatter_add_p``, as JAX's.
"""
from __future__ import annotations

import math
from itertools import product
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax.core import Primitive, ShapedArray, Tracer, get_aval
from tinyjax.interpreters import batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import Jaxpr, eval_jaxpr
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.control_flow import fori_loop
from tinyjax.lax.shape import broadcast_in_dim, full, reshape
from tinyjax.lax.slicing import dynamic_index_in_dim, pad
from tinyjax.lax.windowed import _window_shape, window_rows

__all__ = ["select_and_scatter", "select_and_scatter_p"]

_NAME = "select_and_scatter"


def select_and_scatter(operand: Any, select: Callable, window_dimensions: Sequence[int],
                       window_strides: Sequence[int], padding: Sequence[tuple[int, int]],
                       source: Any, init_value: Any, scatter: Callable) -> Any:
    """Scatter each window's ``source`` value onto the element of ``operand`` that
    ``select`` picks in the window (see the module's notes); JAX's private
    ``lax.windowed_reductions._select_and_scatter``."""
    operand, source = as_operand(operand), as_operand(source)
    dt = get_aval(operand).dtype
    init_value = as_operand(init_value, dt) if type(init_value) in (bool, int, float) \
        else as_operand(init_value)
    scalar = ShapedArray((), get_aval(init_value).dtype)
    select_closed = trace_to_closed_jaxpr(lambda a, b: [select(a, b)], [scalar, scalar])
    scatter_closed = trace_to_closed_jaxpr(lambda a, b: [scatter(a, b)], [scalar, scalar])
    params = dict(select_jaxpr=select_closed.jaxpr, select_consts=tuple(select_closed.consts),
                  scatter_jaxpr=scatter_closed.jaxpr,
                  scatter_consts=tuple(scatter_closed.consts),
                  window_dimensions=tuple(int(d) for d in window_dimensions),
                  window_strides=tuple(int(s) for s in window_strides),
                  padding=tuple((int(lo), int(hi)) for lo, hi in padding))
    if any(isinstance(c, Tracer) for c in (*params["select_consts"],
                                           *params["scatter_consts"])):
        # computations closing over traced values: expanded in place (a primitive's
        # parameters hold no tracers)
        return _select_and_scatter(operand, source, init_value, **params)
    return select_and_scatter_p.bind(operand, source, init_value, **params)


def _check_shapelike(what: str, value: Sequence[int]) -> None:
    if any(not isinstance(d, (int, np.integer)) or d < 0 for d in value):
        raise TypeError(f"{_NAME} {what} must have every element be nonnegative, got "
                        f"{what}={tuple(value)}.")


def _abstract_eval(operand: ShapedArray, source: ShapedArray, init_value: ShapedArray, *,
                   select_jaxpr: Jaxpr, select_consts: tuple, scatter_jaxpr: Jaxpr,
                   scatter_consts: tuple, window_dimensions: tuple, window_strides: tuple,
                   padding: tuple) -> ShapedArray:
    _check_shapelike("window_dimensions", window_dimensions)
    _check_shapelike("window_strides", window_strides)
    if len(window_dimensions) != len(window_strides):
        raise TypeError(f"{_NAME} got inconsistent window_strides and window_dimensions: got "
                        f"window_strides {window_strides} and window_dimensions "
                        f"{window_dimensions}.")
    ones = (1,) * operand.ndim
    windows = _window_shape(_NAME, operand, window_dimensions, window_strides, padding, ones,
                            ones)
    if source.shape != windows:
        raise TypeError(f"{_NAME}: source shape {source.shape} must equal the windowed shape "
                        f"{windows} of operand {operand.str_short()}.")
    if init_value.shape != () or not operand.dtype == source.dtype == init_value.dtype:
        raise TypeError(f"{_NAME}: init_value must be a scalar and operand, source and "
                        f"init_value must have one dtype, got {operand.str_short()}, "
                        f"{source.str_short()} and {init_value.str_short()}.")
    selected = [v.aval for v in select_jaxpr.outvars]
    if [(a.shape, a.dtype) for a in selected] != [((), np.dtype(np.bool_))]:
        raise TypeError(f"{_NAME}: select must return a bool scalar, got "
                        f"{', '.join(a.str_short() for a in selected)}.")
    return ShapedArray(operand.shape, operand.dtype)


def _scalar_fn(jaxpr: Jaxpr, consts: tuple, size: int) -> Callable[[Any, Any], Any]:
    """The scalar computation ``jaxpr`` run elementwise over two vectors of ``size``."""
    axis = batching.AxisData(None, size)

    def call(a: Any, b: Any) -> Any:
        one = lambda *args: eval_jaxpr(jaxpr, list(consts), *args)  # noqa: E731
        return batching.vmap_flat(one, axis, [a, b], [0, 0], [0])[0]
    return call


def _place(x: Any, fill: Any, offset: Sequence[int], shape: Sequence[int],
           window_strides: Sequence[int], padding: Sequence[tuple[int, int]]) -> Any:
    """``x`` (one value per window) laid over an operand of ``shape``: the value of window
    ``n`` at the position ``n * stride + offset - low padding`` of each axis, ``fill``
    elsewhere (windows whose position falls in the padding are cropped)."""
    config = []
    for d, o, off, s, (lo, _) in zip(shape, get_aval(x).shape, offset, window_strides,
                                     padding):
        low = off - lo
        config.append((low, d - low - ((o - 1) * s + 1), s - 1))
    return pad(x, fill, config)


def _select_and_scatter(operand: Any, source: Any, init_value: Any, *, select_jaxpr: Jaxpr,
                        select_consts: tuple, scatter_jaxpr: Jaxpr, scatter_consts: tuple,
                        window_dimensions: tuple, window_strides: tuple,
                        padding: tuple) -> Any:
    aval = _abstract_eval(get_aval(operand), get_aval(source), get_aval(init_value),
                          select_jaxpr=select_jaxpr, select_consts=select_consts,
                          scatter_jaxpr=scatter_jaxpr, scatter_consts=scatter_consts,
                          window_dimensions=window_dimensions, window_strides=window_strides,
                          padding=padding)
    shape, out_shape = aval.shape, get_aval(source).shape
    result = broadcast_in_dim(init_value, shape, ())
    count = math.prod(out_shape)
    if count == 0 or math.prod(shape) == 0:
        return result
    ones = (1,) * len(shape)
    geometry = (out_shape, window_dimensions, window_strides, padding, ones, ones)
    no = as_operand(np.bool_(False))
    rows = window_rows(operand, init_value, *geometry)
    valid = window_rows(full(shape, True, np.bool_), no, *geometry)
    select = _scalar_fn(select_jaxpr, select_consts, count)

    def choose(i: Any, carry: list) -> list:
        chosen, index, found = carry
        element = dynamic_index_in_dim(rows, i, 0, keepdims=False)
        inside = dynamic_index_in_dim(valid, i, 0, keepdims=False)
        kept = ew.bitwise_and(found, select(chosen, element))
        take = ew.bitwise_and(inside, ew.bitwise_not(kept))
        return [ew.select(take, element, chosen),
                ew.select(take, broadcast_in_dim(i, (count,), ()), index),
                ew.bitwise_or(found, inside)]

    start = [broadcast_in_dim(init_value, (count,), ()), full((count,), 0, np.int32),
             full((count,), False, np.bool_)]
    _, index, found = fori_loop(0, rows.shape[0], choose, start)
    # windows with nothing to select (all padding) scatter nothing
    size = math.prod(shape)
    combine = _scalar_fn(scatter_jaxpr, scatter_consts, size)
    values = reshape(source, out_shape)
    for k, offset in enumerate(product(*(range(w) for w in window_dimensions))):
        here = ew.bitwise_and(found, ew.eq(index, full((count,), k, np.int32)))
        mask = _place(reshape(here, out_shape), no, offset, shape, window_strides, padding)
        placed = _place(values, init_value, offset, shape, window_strides, padding)
        flat = reshape(result, (size,))
        combined = reshape(combine(flat, reshape(placed, (size,))), shape)
        result = ew.select(mask, combined, result)
    return result


select_and_scatter_p = Primitive(_NAME)
select_and_scatter_p.def_abstract_eval(_abstract_eval)
define_composite(select_and_scatter_p, _select_and_scatter)
derive_rules(select_and_scatter_p)
