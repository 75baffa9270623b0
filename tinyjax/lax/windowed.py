"""Windowed reductions (pooling): ``reduce_window_{sum,max,min}`` and the max-pool
derivative pair ``select_and_gather_add`` / ``select_and_scatter_add``.

Every primitive here takes the same window geometry: ``window_dimensions``,
``window_strides``, ``padding`` ((low, high) per axis, negative crops),
``base_dilation`` (holes between operand elements) and ``window_dilation``
(holes between window elements).  ``select_and_gather_add(t, x)`` picks, for each
window, the element of ``t`` where ``x`` is selected (first maximum for ``ge``,
first minimum for ``le``); ``select_and_scatter_add(s, x)`` is its transpose: it
adds each ``s`` value at the position selected in its window.
"""
from __future__ import annotations

import math
from itertools import product
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.jaxpr import ClosedJaxpr
from tinyjax.lax import elementwise as lax_elementwise
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.reduce_general import computation_jaxpr, fold_rows
from tinyjax.lax.shape import full, reshape
from tinyjax.lax.shape_helpers import stack
from tinyjax.lax.slicing import pad
from tinyjax.lax.slicing import slice as lax_slice
from tinyjax.lax.convolution import padtype_to_pads, pad_dilate_np, windows_np
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.ad import Zero, is_undefined_primal

__all__ = ["reduce_window", "reduce_window_shape_tuple", "reduce_window_sum_p", "reduce_window_max_p",
           "reduce_window_min_p", "reduce_window_p", "select_and_gather_add_p", "select_and_scatter_add_p",
           "select_and_scatter_add", "select_and_gather_add"]


def _dilate_dim(d: int, r: int) -> int:
    return 0 if d == 0 else 1 + r * (d - 1)


def reduce_window_shape_tuple(operand_shape, window_dimensions, window_strides, padding,
                              base_dilation=None, window_dilation=None) -> tuple[int, ...]:
    """The output shape of ``reduce_window`` with this geometry (padding: (low, high)
    pairs)."""
    n = len(operand_shape)
    return _window_shape("reduce_window_shape_tuple", ShapedArray(tuple(operand_shape),
                                                                  np.float32),
                         window_dimensions, window_strides, [tuple(p) for p in padding],
                         base_dilation or (1,) * n, window_dilation or (1,) * n)


def _window_shape(name: str, operand: ShapedArray, window_dimensions, window_strides,
                  padding, base_dilation, window_dilation) -> tuple[int, ...]:
    """Output shape of a windowed op, validating the geometry."""
    n = operand.ndim
    for what, v in (("window_dimensions", window_dimensions),
                    ("window_strides", window_strides), ("padding", padding),
                    ("base_dilation", base_dilation), ("window_dilation", window_dilation)):
        if len(v) != n:
            raise TypeError(f"{name}: {what} must have one entry per operand dimension, got "
                            f"{what}={tuple(v)} for operand shape {operand.shape}.")
    for what, v in (("window_dimensions", window_dimensions),
                    ("window_strides", window_strides), ("base_dilation", base_dilation),
                    ("window_dilation", window_dilation)):
        if any(d < 1 for d in v):
            raise TypeError(f"{name}: {what} must be positive, got {tuple(v)}.")
    out = []
    for i, (d, k, s, (lo, hi), bd, wd) in enumerate(zip(
            operand.shape, window_dimensions, window_strides, padding, base_dilation,
            window_dilation)):
        padded, dk = _dilate_dim(d, bd) + lo + hi, _dilate_dim(k, wd)
        if padded < 0 or (padded < dk and d > 0):
            raise TypeError(f"{name}: the window (of dilated size {dk}) does not fit in "
                            f"dimension {i} of the padded operand (of size {padded}); "
                            f"operand shape {operand.shape}, window_dimensions "
                            f"{tuple(window_dimensions)}, padding {tuple(padding)}.")
        out.append((padded - dk) // s + 1 if padded >= dk else 0)
    return tuple(out)


def _lowest(dt: np.dtype):
    if dt == np.bool_:
        return False
    return -np.inf if dtypes.is_float(dt) else np.iinfo(dt).min


def _highest(dt: np.dtype):
    if dt == np.bool_:
        return True
    return np.inf if dtypes.is_float(dt) else np.iinfo(dt).max


def _window_axes(ndim: int) -> tuple[int, ...]:
    return tuple(range(ndim, 2 * ndim))


_LOW_PRECISION = (np.dtype(np.float16), np.dtype(dtypes.bfloat16))

# ---------------------------------------------------------------------------
# reduce_window_{sum,max,min}
# ---------------------------------------------------------------------------


def _reduce_window_prim(name: str, np_reduce: Callable, identity: Callable,
                        accepted: Callable) -> Primitive:
    prim = Primitive(name)

    def abstract_eval(x, *, window_dimensions, window_strides, padding, base_dilation,
                      window_dilation):
        if not accepted(x.dtype):
            raise TypeError(f"{name} does not accept dtype {x.dtype.name}.")
        shape = _window_shape(name, x, window_dimensions, window_strides, padding,
                              base_dilation, window_dilation)
        return ShapedArray(shape, x.dtype, x.weak_type)

    def impl(x, *, window_dimensions, window_strides, padding, base_dilation,
             window_dilation):
        out_aval = abstract_eval(get_aval(x), window_dimensions=window_dimensions,
                                 window_strides=window_strides, padding=padding,
                                 base_dilation=base_dilation, window_dilation=window_dilation)
        work = x.astype(np.float32) if x.dtype in _LOW_PRECISION else x
        padded = pad_dilate_np(work, padding, base_dilation, identity(x.dtype))
        win = windows_np(padded, range(x.ndim), window_dimensions, window_strides,
                         window_dilation)
        out = np_reduce(win, axis=_window_axes(x.ndim), initial=identity(x.dtype))
        return np.asarray(out).astype(x.dtype, copy=False).reshape(out_aval.shape)

    prim.def_impl(impl)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = lambda weak, **_: weak[0]

    def batch(vals, dims, **params):
        (x,), (d,) = vals, dims
        return prim.bind(x, **_insert_trivial_axis(params, d)), d
    batching.primitive_batchers[prim] = batch
    return prim


def _number(d):
    return dtypes.is_int(d) or dtypes.is_float(d) or dtypes.is_complex(d)


def _ordered(d):
    return dtypes.is_int(d) or dtypes.is_float(d) or d == np.bool_


reduce_window_sum_p = _reduce_window_prim("reduce_window_sum", np.sum,
                                          lambda dt: dt.type(0), _number)
reduce_window_max_p = _reduce_window_prim("reduce_window_max", np.max, _lowest, _ordered)
reduce_window_min_p = _reduce_window_prim("reduce_window_min", np.min, _highest, _ordered)


def _insert_trivial_axis(params: dict, d: int) -> dict:
    """Window params for an operand with a new (batch) axis at ``d``."""
    def ins(key, value):
        v = list(params[key])
        v.insert(d, value)
        return tuple(v)
    out = dict(params)
    out.update(window_dimensions=ins("window_dimensions", 1),
               window_strides=ins("window_strides", 1), padding=ins("padding", (0, 0)),
               base_dilation=ins("base_dilation", 1),
               window_dilation=ins("window_dilation", 1))
    return out


# ---------------------------------------------------------------------------
# select_and_gather_add / select_and_scatter_add
# ---------------------------------------------------------------------------

select_and_gather_add_p = Primitive("select_and_gather_add")
select_and_scatter_add_p = Primitive("select_and_scatter_add")


def _select_name(select_prim) -> str:
    return getattr(select_prim, "name", str(select_prim))


def _check_select(name: str, a: ShapedArray, operand: ShapedArray, select_prim) -> None:
    if _select_name(select_prim) not in ("ge", "le"):
        raise TypeError(f"{name}: select_prim must be lax.ge_p or lax.le_p, got "
                        f"{select_prim}.")
    if not _ordered(operand.dtype):
        raise TypeError(f"{name} does not accept operand dtype {operand.dtype.name}.")


def _selection(x: np.ndarray, select_prim, window_dimensions, window_strides, padding,
               base_dilation, window_dilation) -> tuple[np.ndarray, np.ndarray]:
    """For each window: the flat in-window index of the selected element of ``x`` (the
    first maximum for ``ge``, minimum for ``le``; padding is never selected) and
    whether the window holds any element at all."""
    is_max = _select_name(select_prim) == "ge"
    fill = _lowest(x.dtype) if is_max else _highest(x.dtype)
    geometry = (range(x.ndim), window_dimensions, window_strides, window_dilation)
    values = windows_np(pad_dilate_np(x, padding, base_dilation, fill), *geometry)
    valid = windows_np(pad_dilate_np(np.ones(x.shape, bool), padding, base_dilation, False),
                       *geometry)
    out_shape = values.shape[:x.ndim]
    values = values.reshape(out_shape + (-1,))
    valid = valid.reshape(out_shape + (-1,))
    best = (np.max if is_max else np.min)(values, axis=-1, keepdims=True, initial=fill)
    index = np.argmax(valid & (values == best), axis=-1)[..., None]
    return index, np.take_along_axis(valid, index, -1)[..., 0]


@select_and_gather_add_p.def_impl
def _select_and_gather_add_impl(tangents, operand, *, select_prim, window_dimensions,
                                window_strides, padding, base_dilation, window_dilation):
    _select_and_gather_add_abstract_eval(
        get_aval(tangents), get_aval(operand), select_prim=select_prim,
        window_dimensions=window_dimensions, window_strides=window_strides, padding=padding,
        base_dilation=base_dilation, window_dilation=window_dilation)
    index, _ = _selection(operand, select_prim, window_dimensions, window_strides, padding,
                          base_dilation, window_dilation)
    t = windows_np(pad_dilate_np(tangents, padding, base_dilation, 0), range(operand.ndim),
                   window_dimensions, window_strides, window_dilation)
    t = t.reshape(index.shape[:-1] + (-1,))
    return np.ascontiguousarray(np.take_along_axis(t, index, -1)[..., 0])


@select_and_gather_add_p.def_abstract_eval
def _select_and_gather_add_abstract_eval(tangents, operand, *, select_prim,
                                         window_dimensions, window_strides, padding,
                                         base_dilation, window_dilation):
    name = "select_and_gather_add"
    _check_select(name, tangents, operand, select_prim)
    if tangents.shape != operand.shape or tangents.dtype != operand.dtype:
        raise TypeError(f"{name}: tangents and operand must have the same shape and dtype, "
                        f"got {tangents.str_short()} and {operand.str_short()}.")
    shape = _window_shape(name, operand, window_dimensions, window_strides, padding,
                          base_dilation, window_dilation)
    return ShapedArray(shape, tangents.dtype, tangents.weak_type)


@select_and_scatter_add_p.def_impl
def _select_and_scatter_add_impl(source, operand, *, select_prim, window_dimensions,
                                 window_strides, padding, base_dilation, window_dilation):
    _select_and_scatter_add_abstract_eval(
        get_aval(source), get_aval(operand), select_prim=select_prim,
        window_dimensions=window_dimensions, window_strides=window_strides, padding=padding,
        base_dilation=base_dilation, window_dilation=window_dilation)
    index, has = _selection(operand, select_prim, window_dimensions, window_strides, padding,
                            base_dilation, window_dilation)
    out_shape = index.shape[:-1]
    window = np.unravel_index(index[..., 0], window_dimensions)
    grid = np.indices(out_shape, sparse=True)
    coords = []
    for g, w, s, wd, (lo, _), bd in zip(grid, window, window_strides, window_dilation,
                                        padding, base_dilation):
        # position in the padded, dilated operand -> index in the operand
        coords.append((g * s + w * wd - lo) // bd)
    flat = np.ravel_multi_index([np.broadcast_to(c, out_shape)[has] for c in coords],
                                operand.shape)
    values = np.asarray(source)[has]
    if dtypes.is_float(source.dtype):
        out = np.bincount(flat, weights=values.astype(np.float64), minlength=operand.size)
    else:
        out = np.zeros(operand.size, source.dtype)
        np.add.at(out, flat, values)
    return out.astype(source.dtype).reshape(operand.shape)


@select_and_scatter_add_p.def_abstract_eval
def _select_and_scatter_add_abstract_eval(source, operand, *, select_prim, window_dimensions,
                                          window_strides, padding, base_dilation,
                                          window_dilation):
    name = "select_and_scatter_add"
    _check_select(name, source, operand, select_prim)
    shape = _window_shape(name, operand, window_dimensions, window_strides, padding,
                          base_dilation, window_dilation)
    if source.shape != shape:
        raise TypeError(f"{name}: source shape {source.shape} must equal the windowed shape "
                        f"{shape} of operand {operand.str_short()}.")
    return ShapedArray(operand.shape, source.dtype, source.weak_type)


select_and_gather_add_p.weak_type_rule = lambda weak, **_: weak[0]
select_and_scatter_add_p.weak_type_rule = lambda weak, **_: weak[0]

# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def _geometry(shape: Sequence[int], window_dimensions, window_strides, padding,
              base_dilation, window_dilation) -> dict:
    n = len(shape)
    window_dimensions = tuple(int(d) for d in window_dimensions)
    window_strides = tuple(int(d) for d in window_strides)
    base_dilation = (1,) * n if base_dilation is None else tuple(int(d) for d in base_dilation)
    window_dilation = (1,) * n if window_dilation is None else \
        tuple(int(d) for d in window_dilation)
    if isinstance(padding, str):
        dilated = [_dilate_dim(k, r) for k, r in zip(window_dimensions, window_dilation)]
        padding = padtype_to_pads(shape, dilated, window_strides, padding)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return dict(window_dimensions=window_dimensions, window_strides=window_strides,
                padding=padding, base_dilation=base_dilation, window_dilation=window_dilation)


# The computations reduce_window knows, with the reduction each stands for: lax's functions
# and primitives; tinyjax.numpy registers its ufuncs when it is imported.
_MONOIDS: list[tuple[Any, str]] = [(lax_elementwise.add, "sum"), (lax_elementwise.add_p, "sum"),
                                   (lax_elementwise.max, "max"), (lax_elementwise.max_p, "max"),
                                   (lax_elementwise.min, "min"), (lax_elementwise.min_p, "min")]


def register_monoid(computation: Any, kind: str) -> None:
    """Let ``reduce_window`` take ``computation`` as the reduction ``kind`` ('sum', 'max',
    'min')."""
    _MONOIDS.append((computation, kind))


def _monoid(computation) -> str | None:
    return next((kind for fn, kind in _MONOIDS if computation is fn), None)


def reduce_window(operand, init_value, computation: Callable, window_dimensions: Sequence[int],
                  window_strides: Sequence[int], padding,
                  base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None):
    """Reduce every window of ``operand`` with ``computation(accumulated, element)``
    (on scalars), starting from ``init_value``; ``padding`` is 'VALID', 'SAME' or
    (low, high) pairs.  ``lax.add`` from 0, ``lax.max`` and ``lax.min`` (or their
    ``jnp`` versions) bind the windowed sum, max and min primitives; any other
    computation binds ``reduce_window_p``."""
    from tinyjax.lax.elementwise import convert_element_type, max as lax_max, min as lax_min
    x = as_operand(operand)
    aval = get_aval(x)
    kind = _monoid(computation)
    params = _geometry(aval.shape, window_dimensions, window_strides, padding,
                       base_dilation, window_dilation)
    init = _concrete_scalar(init_value)
    if kind is None or (kind == "sum" and init != 0):
        return _reduce_window_general(x, init_value, computation, params)
    if kind == "sum":
        return reduce_window_sum_p.bind(x, **params)
    prim = reduce_window_max_p if kind == "max" else reduce_window_min_p
    out = prim.bind(x, **params)
    if init is not None and init == (_lowest if kind == "max" else _highest)(aval.dtype):
        return out
    # padding takes init_value, and every window starts from it
    init_x = convert_element_type(as_operand(init_value), aval.dtype)
    return (lax_max if kind == "max" else lax_min)(out, init_x)


def _reduce_window_general(x: Any, init_value: Any, computation: Callable,
                           params: dict) -> Any:
    from tinyjax.core import Tracer
    dt = get_aval(x).dtype
    init = as_operand(init_value, dt) if type(init_value) in (bool, int, float) else \
        lax_elementwise.convert_element_type(as_operand(init_value), dt)
    closed = computation_jaxpr(computation, tree_util.tree_structure(0), [dt])
    if any(isinstance(c, Tracer) for c in closed.consts):
        # a computation closing over traced values: folded in place (a primitive's
        # parameters hold no tracers)
        return _reduce_window(x, init, jaxpr=closed.jaxpr, consts=tuple(closed.consts),
                              **params)[0]
    return reduce_window_p.bind(x, init, jaxpr=closed.jaxpr, consts=tuple(closed.consts),
                                **params)[0]


def window_rows(x: Any, fill: Any, out_shape: Sequence[int], window_dimensions: Sequence[int],
                window_strides: Sequence[int], padding: Sequence[tuple[int, int]],
                base_dilation: Sequence[int], window_dilation: Sequence[int]) -> Any:
    """(window size, output size): each window's elements of the padded, dilated ``x``
    (``fill`` in the padding and the holes), one strided slice per position in the window
    (in row-major order of the window)."""
    padded = pad(x, fill, [(lo, hi, b - 1) for (lo, hi), b in zip(padding, base_dilation)])
    out = []
    for offset in product(*(range(k) for k in window_dimensions)):
        start = [j * r for j, r in zip(offset, window_dilation)]
        limit = [b + (o - 1) * s + 1 if o else b
                 for b, o, s in zip(start, out_shape, window_strides)]
        out.append(reshape(lax_slice(padded, start, limit, window_strides),
                           (math.prod(out_shape),)))
    return stack(out)


def _reduce_window(*operands_and_inits: Any, jaxpr: Any, consts: tuple,
                   window_dimensions: tuple, window_strides: tuple, padding: tuple,
                   base_dilation: tuple, window_dilation: tuple) -> list[Any]:
    """Every window's elements gathered along a new leading axis by strided slices of
    the padded, dilated operands, then folded over that axis as ``lax.reduce`` folds
    (skipping the elements of the padding and the dilation's holes, as XLA does)."""
    n = len(operands_and_inits) // 2
    operands, inits = operands_and_inits[:n], operands_and_inits[n:]
    shape = get_aval(operands[0]).shape
    out_shape = _window_shape("reduce_window", ShapedArray(shape, get_aval(operands[0]).dtype),
                              window_dimensions, window_strides, padding, base_dilation,
                              window_dilation)
    if any(get_aval(v).shape or get_aval(v).dtype != get_aval(x).dtype
           for v, x in zip(inits, operands)):
        raise TypeError("reduce_window: init values must be scalars of the operands' "
                        f"dtypes, got {', '.join(get_aval(v).str_short() for v in inits)}")
    geometry = (out_shape, window_dimensions, window_strides, padding, base_dilation,
                window_dilation)
    # XLA skips the padding and the holes of base dilation: they are masked out
    valid = window_rows(full(shape, True, np.bool_), as_operand(np.bool_(False)), *geometry)
    rows = [window_rows(x, init, *geometry) for x, init in zip(operands, inits)]
    outs = fold_rows(rows, inits, ClosedJaxpr(jaxpr, list(consts)), valid)
    return [reshape(o, out_shape) for o in outs]


reduce_window_p = Primitive("reduce_window", multiple_results=True)
define_composite(reduce_window_p, _reduce_window)
derive_rules(reduce_window_p)
reduce_window_p.weak_type_rule = lambda weak, **params: weak[0]


def _concrete_scalar(value) -> Any:
    """The Python value of a concrete scalar, or None for an abstract tracer."""
    from tinyjax.core import Tracer
    if isinstance(value, Tracer):
        value = value.to_concrete_value()
        if value is None:
            return None
    value = np.asarray(value)
    if value.shape != ():
        raise TypeError(f"reduce_window init_value must be a scalar, got shape {value.shape}.")
    return value.item()


def _select_prim(select_prim):
    from tinyjax.lax import elementwise as ew
    return {ew.ge: ew.ge_p, ew.le: ew.le_p}.get(select_prim, select_prim)


def select_and_scatter_add(source, operand, select_prim, window_dimensions: Sequence[int],
                           window_strides: Sequence[int], padding,
                           base_dilation: Sequence[int] | None = None,
                           window_dilation: Sequence[int] | None = None):
    """Add each ``source`` value at the position of ``operand`` selected in its window
    (``lax.ge_p``: the first maximum, the max-pool gradient; ``lax.le_p``: minimum)."""
    x = as_operand(operand)
    params = _geometry(get_aval(x).shape, window_dimensions, window_strides, padding,
                       base_dilation, window_dilation)
    return select_and_scatter_add_p.bind(as_operand(source), x,
                                         select_prim=_select_prim(select_prim), **params)


def select_and_gather_add(tangents, operand, select_prim, window_dimensions: Sequence[int],
                          window_strides: Sequence[int], padding,
                          base_dilation: Sequence[int] | None = None,
                          window_dilation: Sequence[int] | None = None):
    """For each window, the value of ``tangents`` where ``operand`` is selected."""
    x = as_operand(operand)
    params = _geometry(get_aval(x).shape, window_dimensions, window_strides, padding,
                       base_dilation, window_dilation)
    return select_and_gather_add_p.bind(as_operand(tangents), x,
                                        select_prim=_select_prim(select_prim), **params)


# ---------------------------------------------------------------------------
# Differentiation
# ---------------------------------------------------------------------------


def _reduce_window_sum_transpose(ct, x, *, window_dimensions, window_strides, padding,
                                 base_dilation, window_dilation):
    # Each operand element receives the cotangents of the windows that cover it: a
    # windowed sum over the cotangent dilated by the strides, with the padding that
    # lines the (symmetric) window up with the operand.
    aval = x.aval
    if type(ct) is Zero:
        return [Zero(ad.tangent_aval(aval))]
    out_shape = get_aval(ct).shape
    pads = []
    for d, k, s, o, (lo, _), bd, wd in zip(aval.shape, window_dimensions, window_strides,
                                           out_shape, padding, base_dilation,
                                           window_dilation):
        dk = _dilate_dim(k, wd)
        before = dk - 1 - lo
        pads.append((before, (d - 1) * bd + dk - before - _dilate_dim(o, s)))
    return [reduce_window_sum_p.bind(ct, window_dimensions=window_dimensions,
                                     window_strides=base_dilation, padding=tuple(pads),
                                     base_dilation=window_strides,
                                     window_dilation=window_dilation)]


ad.deflinear(reduce_window_sum_p, _reduce_window_sum_transpose)


def _chooser_jvp(prim: Primitive, select_prim_name: str):
    def rule(primals, tangents, **params):
        from tinyjax.lax import elementwise as ew
        (x,), (t,) = primals, tangents
        out = prim.bind(x, **params)
        if type(t) is Zero:
            return out, Zero.from_primal(out)
        select_prim = ew.ge_p if select_prim_name == "ge" else ew.le_p
        return out, select_and_gather_add_p.bind(ad.instantiate_zeros(t), x,
                                                 select_prim=select_prim, **params)
    ad.primitive_jvps[prim] = rule


_chooser_jvp(reduce_window_max_p, "ge")
_chooser_jvp(reduce_window_min_p, "le")


def _linear_in_first(prim: Primitive, transpose_prim: Primitive):
    """``prim(a, operand)`` is linear in ``a`` and piecewise constant in ``operand``;
    its transpose is ``transpose_prim`` with the same selection."""
    def jvp(primals, tangents, **params):
        (a, x), (ta, _) = primals, tangents
        out = prim.bind(a, x, **params)
        if type(ta) is Zero:
            return out, Zero.from_primal(out)
        return out, prim.bind(ta, x, **params)

    def transpose(ct, a, x, **params):
        assert is_undefined_primal(a) and not is_undefined_primal(x)
        if type(ct) is Zero:
            return [Zero(ad.tangent_aval(a.aval)), None]
        return [transpose_prim.bind(ct, x, **params), None]

    def batch(vals, dims, **params):
        (a, x), (da, dx) = vals, dims
        size = batching.batch_size(vals, dims)
        a, x = batching.moveaxis(a, da, 0, size), batching.moveaxis(x, dx, 0, size)
        return prim.bind(a, x, **_insert_trivial_axis(params, 0)), 0

    ad.primitive_jvps[prim] = jvp
    ad.primitive_transposes[prim] = transpose
    batching.primitive_batchers[prim] = batch


_linear_in_first(select_and_gather_add_p, select_and_scatter_add_p)
_linear_in_first(select_and_scatter_add_p, select_and_gather_add_p)
