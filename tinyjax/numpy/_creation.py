"""Array creation: ``array``/``asarray`` and friends."""
from __future__ import annotations

import functools
import operator
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.array import ArrayImpl, on_default_device, register_asarray, wrap_eager
from tinyjax.backends.base import host_copy
from tinyjax.core import ShapedArray, Tracer, get_aval
from tinyjax.lax.sharding_constraint import placed_like
from tinyjax.numpy._extended import is_extended, on_data


def _leaves_of_nested(obj: Any) -> list[Any]:
    if isinstance(obj, (list, tuple)):
        out = []
        for o in obj:
            out.extend(_leaves_of_nested(o))
        return out
    return [obj]


def _placing(fn: Callable) -> Callable:
    """JAX's ``device=`` argument of the array constructors: the result is put on that
    device (``tinyjax.device_put``); ``fn`` itself never sees it."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device = kwargs.pop("device", None)
        out = fn(*args, **kwargs)
        if device is None:
            return out
        from tinyjax.dispatch import device_put
        return device_put(out, device)
    return wrapper


def _stack(items: list, dtype: Any) -> Any:
    """``jnp.stack(items)`` converted to ``dtype`` (jnp.stack lives in _shape, above); each
    item is converted and then given its leading axis, in turn (JAX's equation order)."""
    shape = get_aval(items[0]).shape
    if any(get_aval(i).shape != shape for i in items):
        raise ValueError("All input arrays must have the same shape.")
    return lax.concatenate([lax.expand_dims(lax.convert_element_type(i, dtype), (0,))
                            for i in items], 0)


@_placing
def array(object: Any, dtype: Any = None, copy: bool = True, order: str | None = None,
          ndmin: int = 0, *, device: Any = None) -> Any:
    """Create an array from an array, a (nested) sequence or a scalar.

    A Python scalar gives a weakly typed array (its dtype yields to the other
    operand's in binary operations), as in JAX.
    """
    if object is None:
        raise ValueError("None is not a valid value for jnp.array")
    if is_extended(object):  # (typed PRNG keys)
        _check_extended_dtype(object, dtype)
        return on_data(object, lambda d, tail: array(d, copy=copy)) if copy else object
    if isinstance(object, (ArrayImpl, Tracer)):
        out = object
        if dtype is not None:
            out = lax.convert_element_type(out, dtype)
        if copy and out is object:  # a new array (donating it leaves ``object`` alone)
            out = lax.copy_p.bind(out)
    elif isinstance(object, (list, tuple)) and any(
            isinstance(leaf, (ArrayImpl, Tracer)) for leaf in _leaves_of_nested(object)):
        items = [array(o, copy=False) for o in object]
        if dtype is None:
            dt = dtypes.result_type(*items) if items else dtypes.default_float_dtype()
        else:
            dt = dtypes.canonicalize_dtype(dtype)
        out = _stack(items, dt) if items else \
            wrap_eager(np.zeros((0,), dt))
    else:
        if hasattr(object, "__jax_array__"):
            return array(object.__jax_array__(), dtype=dtype)
        if dtype is None:
            if _is_python_int(object):
                dtypes.python_scalar_array(object, dtypes.default_int_dtype())  # range
            np_value = np.asarray(object)
            if np_value.dtype.kind in "USOV" and np_value.dtype != dtypes.bfloat16:
                if any(map(_is_python_int, _leaves_of_nested(object))):
                    raise OverflowError(f"array: a Python int in {object!r} is too large "
                                        "to convert to an integer dtype")
                raise TypeError(f"array: cannot convert {object!r} to a tinyjax array "
                                f"(numpy dtype {np_value.dtype})")
            if isinstance(object, (np.ndarray, np.generic)):
                dt = dtypes.canonicalize_dtype(np_value.dtype)
            else:
                dt = dtypes.dtype(object) if not isinstance(object, (list, tuple)) else \
                    _python_sequence_dtype(object, np_value)
        else:
            dt = dtypes.canonicalize_dtype(dtype)
            np_value = np.asarray(object) if not _is_python_int(object) else None
            if np_value is not None and dtypes.is_complex(np_value.dtype) and \
                    not dtypes.is_complex(dt):
                np_value = np_value.real  # as JAX: complex -> real keeps the real part
        weak = dtype is None and type(object) in (int, float, complex)
        out = on_default_device(wrap_eager(_host_value(object, np_value, dt), weak))
    if ndmin > get_aval(out).ndim:
        shape = (1,) * (ndmin - get_aval(out).ndim) + get_aval(out).shape
        out = lax.reshape(out, shape)
    return out


def _is_python_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, (bool, np.generic))


def _host_value(obj: Any, np_value: np.ndarray | None, dt: np.dtype) -> np.ndarray:
    """A fresh numpy array of ``obj`` in ``dt``.  Python ints must fit ``dt`` as in JAX
    (numpy's OverflowError otherwise); numpy values are cast (wrapping, as in JAX)."""
    if _is_python_int(obj) or (isinstance(obj, (list, tuple)) and dtypes.is_int(dt) and
                               any(map(_is_python_int, _leaves_of_nested(obj)))):
        return np.array(obj, dtype=dt)
    return host_copy(np_value, dt)  # (on a cache line, as compiled kernels read it)


def _python_sequence_dtype(obj, np_value: np.ndarray) -> np.dtype:
    """JAX's rule for lists of Python scalars: the weak-type join, canonicalised."""
    leaves = _leaves_of_nested(obj)
    if not leaves:
        return dtypes.default_float_dtype()
    if all(isinstance(v, (bool, int, float, complex)) for v in leaves):
        return dtypes.result_type(*leaves) if not all(isinstance(v, bool) for v in leaves) \
            else np.dtype(np.bool_)
    return dtypes.canonicalize_dtype(np_value.dtype)


@_placing
def asarray(a: Any, dtype: Any = None, order: str | None = None, *,
            copy: bool | None = None, device: Any = None) -> Any:
    """Convert ``a`` to an array without copying when it already is one."""
    if dtype is None and isinstance(a, (ArrayImpl, Tracer)):
        return a
    if is_extended(a):
        _check_extended_dtype(a, dtype)
        return a
    return array(a, dtype=dtype, copy=False)


def _check_extended_dtype(a: Any, dtype: Any) -> None:
    if dtype is not None and dtype != a.dtype:
        raise TypeError(f"cannot convert an array of dtype {a.dtype} to "
                        f"{dtypes.canonicalize_dtype(dtype)}")


register_asarray(asarray)  # Array(x) and tinyjax's own conversions convert as it does


# ---------------------------------------------------------------------------
# Filled arrays
# ---------------------------------------------------------------------------

def _shape_tuple(shape: Any, fun_name: str) -> tuple[int, ...]:
    """A static shape from an int or a sequence of ints (JAX's error for tracers)."""
    if type(shape) is tuple and all(type(d) is int and d >= 0 for d in shape):
        return shape
    # (a traced dimension fails operator.index with a TypeError: JAX's error below)
    if not isinstance(shape, (tuple, list)) and np.ndim(shape) == 0:
        shape = (shape,)
    try:
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"Shapes must be 1D sequences of concrete values of integer type, "
                        f"got {shape}.") from None
    if any(d < 0 for d in out):
        raise ValueError(f"{fun_name}: negative dimensions are not allowed, got {out}")
    return out


def concrete_value(x: Any, what: str) -> Any:
    """The concrete (numpy) value of ``x``, or JAX's ConcretizationTypeError naming
    ``what`` when ``x`` is an abstract tracer."""
    if isinstance(x, ArrayImpl):
        return x._value
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        if value is None:
            from tinyjax.core import ConcretizationTypeError, _concretization_message
            raise ConcretizationTypeError(
                _concretization_message(x, "a concrete value") +
                f"\nIt arose in the argument {what}, which must be static.")
        return value
    return x


@_placing
def zeros(shape: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """An array of zeros (float32 unless ``dtype`` is given)."""
    return lax.full(_shape_tuple(shape, "zeros"), 0, _default_dtype(dtype))


@_placing
def ones(shape: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """An array of ones (float32 unless ``dtype`` is given)."""
    return lax.full(_shape_tuple(shape, "ones"), 1, _default_dtype(dtype))


@_placing
def empty(shape: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """As in JAX, ``empty`` is ``zeros`` (arrays are immutable)."""
    return zeros(shape, dtype)


@_placing
def full(shape: Any, fill_value: Any, dtype: Any = None, *, device: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (broadcast if it is an array)."""
    shape = _shape_tuple(shape, "full")
    if np.ndim(fill_value) == 0 and not (isinstance(fill_value, (ArrayImpl, Tracer))
                                         and get_aval(fill_value).ndim):
        return lax.full(shape, fill_value, dtype)
    from tinyjax.numpy._util import broadcast_to_shape
    x = asarray(fill_value, dtype=dtype)
    return broadcast_to_shape(x, shape)


def _like_aval(a: Any) -> ShapedArray:
    """The type of the array ``a``, or of a duck-typed array (an object with ``shape`` and
    ``dtype``, such as a ShapeDtypeStruct), as the ``*_like`` functions read it."""
    if not isinstance(a, (ArrayImpl, Tracer, np.ndarray, np.generic)) and \
            hasattr(a, "shape") and hasattr(a, "dtype"):
        return ShapedArray(a.shape, dtypes.canonicalize_dtype(a.dtype),
                           bool(getattr(a, "weak_type", False)))
    return get_aval(asarray(a))


def _like_shape(a: Any, shape: Any) -> tuple[int, ...]:
    return tuple(_like_aval(a).shape) if shape is None else _shape_tuple(shape, "full_like")


@_placing
def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None, *,
              device: Any = None) -> Any:
    """An array like ``a`` (its dtype and weak type, unless given) filled with
    ``fill_value``; laid out as ``a`` is where ``a`` is an array committed to its devices
    (a sharded one, say) of the result's shape, as in JAX."""
    aval = _like_aval(a)
    shape = _like_shape(a, shape)
    if dtype is None:
        dt, weak = aval.dtype, aval.weak_type
    else:
        dt, weak = dtypes.canonicalize_dtype(dtype), False
    if np.ndim(fill_value) == 0 and not isinstance(fill_value, (ArrayImpl, Tracer)):
        value = lax.convert_element_type(np.asarray(fill_value), dt) if \
            not isinstance(fill_value, (bool, int, float)) else fill_value
        out = lax.full(shape, value, dt)
    else:
        out = full(shape, lax.convert_element_type(fill_value, dt))
    if weak:
        from tinyjax.lax.elementwise import _convert_weak
        return _convert_weak(out, dt, True)
    return placed_like(out, a)


@_placing
def zeros_like(a: Any, dtype: Any = None, shape: Any = None, *, device: Any = None) -> Any:
    """Zeros with the shape and dtype of ``a``."""
    return full_like(a, 0, dtype, shape)


@_placing
def ones_like(a: Any, dtype: Any = None, shape: Any = None, *, device: Any = None) -> Any:
    """Ones with the shape and dtype of ``a``."""
    return full_like(a, 1, dtype, shape)


@_placing
def empty_like(prototype: Any, dtype: Any = None, shape: Any = None, *,
               device: Any = None) -> Any:
    """As in JAX, ``empty_like`` is ``zeros_like``."""
    return zeros_like(prototype, dtype, shape)


def _default_dtype(dtype: Any, default: Any = None) -> np.dtype:
    if dtype is None:
        return dtypes.default_float_dtype() if default is None else default
    return dtypes.canonicalize_dtype(dtype)


@_placing
def astype(x: Any, dtype: Any, /, *, copy: bool = False, device: Any = None) -> Any:
    """``x`` converted to ``dtype`` (a float to bool conversion is ``x != 0``)."""
    from tinyjax.numpy._util import check_arraylike
    check_arraylike("astype", x)
    if dtypes.is_extended(dtype):  # (lax says what tinyjax cannot convert to)
        return lax.convert_element_type(asarray(x), dtype)
    return lax.convert_element_type(asarray(x), _default_dtype(dtype))


def copy(a: Any, order: str | None = None) -> Any:
    """A copy of ``a`` (arrays are immutable, so this is ``array(a)``)."""
    return array(a, copy=True, order=order)


# ---------------------------------------------------------------------------
# Ranges
# ---------------------------------------------------------------------------

@_placing
def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None, *,
           device: Any = None) -> Any:
    """Evenly spaced values in ``[start, stop)``; the bounds must be static.

    The dtype is the default int type when every bound is an integer, else the
    default float type (JAX's rule), unless ``dtype`` is given.
    """
    names = ("start", "stop", "step")
    vals = [concrete_value(v, f"'{n}' of jnp.arange") if v is not None else None
            for v, n in zip((start, stop, step), names)]
    for v, n in zip(vals, names):
        if v is not None and np.ndim(v) != 0:
            raise ValueError(f"jax.numpy.arange: arguments must be scalars; got {n}={v}")
    start, stop, step = vals
    if dtype is None:
        dt = dtypes.result_type(*(v if isinstance(v, (bool, int, float, complex))
                                  else np.asarray(v) for v in vals if v is not None))
        if dt == np.bool_:
            dt = dtypes.default_int_dtype()
        dt = dtypes.canonicalize_dtype(dt)
    else:
        dt = _default_dtype(dtype)
    if stop is None and step is None and dtypes.is_int(dt):
        n = int(start)
        return lax.iota(dt, max(n, 0))
    return on_default_device(wrap_eager(np.arange(start, stop, step, dtype=dt)))


@_placing
def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0, *,
             device: Any = None) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (array bounds give a new
    axis at ``axis``)."""
    num = operator.index(concrete_value(num, "'num' of jnp.linspace"))
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    start, stop = asarray(start), asarray(stop)
    out_dt = dtypes.result_type(start, stop, float) if dtype is None else \
        _default_dtype(dtype)
    comp_dt = out_dt if dtypes.is_float(out_dt) else dtypes.default_float_dtype()
    start = lax.convert_element_type(start, comp_dt)
    stop = lax.convert_element_type(stop, comp_dt)
    bshape = _broadcast_shapes(get_aval(start).shape, get_aval(stop).shape)
    ndim_out = len(bshape) + 1
    axis = _canon_axis(axis, ndim_out)
    out_shape = bshape[:axis] + (num,) + bshape[axis:]
    bdims = tuple(d for d in range(ndim_out) if d != axis)
    s = lax.broadcast_in_dim(_bcast(start, bshape), out_shape, bdims)
    e = lax.broadcast_in_dim(_bcast(stop, bshape), out_shape, bdims)
    div = (num - 1) if endpoint else num
    t = lax.broadcasted_iota(comp_dt, out_shape, axis)
    if div > 0:
        step = (_bcast(stop, bshape) - _bcast(start, bshape)) / np.asarray(div, comp_dt)
        out = s + t * lax.broadcast_in_dim(step, out_shape, bdims)
        if endpoint and num > 1:
            # the last sample is exactly ``stop``
            last = lax.broadcasted_iota(np.int32, out_shape, axis) == num - 1
            out = lax.select(last, e, out)
    else:
        step = lax.full(bshape, np.nan, comp_dt)
        out = s if num else lax.full(out_shape, 0, comp_dt)
    if dtypes.is_int(out_dt):
        out = lax.floor(out)
    out = lax.convert_element_type(out, out_dt)
    return (out, lax.convert_element_type(step, out_dt) if dtypes.is_float(out_dt) else step) \
        if retstep else out


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             base: Any = 10.0, dtype: Any = None, axis: int = 0) -> Any:
    """``base ** linspace(start, stop, ...)``."""
    from tinyjax.numpy._ufuncs import power
    out_dt = dtypes.result_type(asarray(start), asarray(stop), float) if dtype is None \
        else _default_dtype(dtype)
    comp_dt = out_dt if dtypes.is_float(out_dt) else dtypes.default_float_dtype()
    lin = linspace(start, stop, num, endpoint=endpoint, dtype=comp_dt, axis=axis)
    base = asarray(base, dtype=comp_dt)
    if get_aval(base).ndim:
        base = lax.expand_dims(base, (axis,))
    out = power(base, lin)
    if dtypes.is_int(out_dt):
        out = lax.floor(out)
    return lax.convert_element_type(out, out_dt)


# ---------------------------------------------------------------------------
# Matrices
# ---------------------------------------------------------------------------

def _static_int(x: Any, what: str) -> int:
    return operator.index(concrete_value(x, what))


def _tri_mask(n: int, m: int, k: int) -> Any:
    """``j - i <= k`` over an (n, m) grid."""
    i = lax.broadcasted_iota(np.int32, (n, m), 0)
    j = lax.broadcasted_iota(np.int32, (n, m), 1)
    return lax.le(j - i, np.asarray(k, np.int32))


@_placing
def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None, *,
        device: Any = None) -> Any:
    """Ones on the ``k``-th diagonal of an (N, M) matrix (float32 by default)."""
    n = _static_int(N, "'N' of jnp.eye")
    m = n if M is None else _static_int(M, "'M' of jnp.eye")
    if n < 0 or m < 0:
        raise ValueError(f"negative dimensions are not allowed, got {n} and {m}")
    k = _static_int(k, "'k' of jnp.eye")
    i = lax.broadcasted_iota(np.int32, (n, m), 0)
    j = lax.broadcasted_iota(np.int32, (n, m), 1)
    return lax.convert_element_type(lax.eq(j - i, np.asarray(k, np.int32)),
                                    _default_dtype(dtype))


def identity(n: int, dtype: Any = None) -> Any:
    """The (n, n) identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Any:
    """Ones at and below the ``k``-th diagonal."""
    n = _static_int(N, "'N' of jnp.tri")
    m = n if M is None else _static_int(M, "'M' of jnp.tri")
    return lax.convert_element_type(_tri_mask(n, m, _static_int(k, "'k' of jnp.tri")),
                                    _default_dtype(dtype))


def _triangle(m: Any, k: int, lower: bool, name: str) -> Any:
    m = asarray(m)
    shape = get_aval(m).shape
    if len(shape) < 2:
        raise ValueError(f"{name} requires an array of at least two dimensions, got "
                         f"shape {shape}")
    mask = _tri_mask(shape[-2], shape[-1], k if lower else k - 1)
    if not lower:
        mask = lax.bitwise_not(mask)
    mask = lax.broadcast_in_dim(mask, shape, (len(shape) - 2, len(shape) - 1))
    return lax.select(mask, m, zeros_like(m))


def tril(m: Any, k: int = 0) -> Any:
    """``m`` with the elements above the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, _static_int(k, "'k' of jnp.tril"), True, "tril")


def triu(m: Any, k: int = 0) -> Any:
    """``m`` with the elements below the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, _static_int(k, "'k' of jnp.triu"), False, "triu")


def diagonal(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Any:
    """The ``offset`` diagonal of the (axis1, axis2) planes, as the last axis.

    A strided slice of the flattened plane: no gather.
    """
    a = asarray(a)
    shape = get_aval(a).shape
    nd = len(shape)
    if nd < 2:
        raise ValueError("diagonal requires an array of at least two dimensions.")
    a1, a2 = _canon_axis(axis1, nd), _canon_axis(axis2, nd)
    if a1 == a2:
        raise ValueError("axis1 and axis2 must not be equal.")
    offset = _static_int(offset, "'offset' of jnp.diagonal")
    rest = [d for d in range(nd) if d not in (a1, a2)]
    x = lax.transpose(a, tuple(rest) + (a1, a2))
    lead = tuple(shape[d] for d in rest)
    n, m = shape[a1], shape[a2]
    count = max(0, min(n, m - offset) if offset >= 0 else min(n + offset, m))
    if count == 0:
        return lax.full(lead + (0,), 0, get_aval(a).dtype)
    start = offset if offset >= 0 else -offset * m
    flat = lax.reshape(x, lead + (n * m,))
    nl = len(lead)
    return lax.slice(flat, (0,) * nl + (start,), lead + (start + (count - 1) * (m + 1) + 1,),
                     (1,) * nl + (m + 1,))


def diag(v: Any, k: int = 0) -> Any:
    """The ``k``-th diagonal of a matrix, or a matrix with ``v`` on its ``k``-th
    diagonal."""
    v = asarray(v)
    k = _static_int(k, "'k' of jnp.diag")
    shape = get_aval(v).shape
    if len(shape) == 2:
        return diagonal(v, k)
    if len(shape) != 1:
        raise ValueError("diag input must be 1d or 2d")
    n = shape[0] + abs(k)
    padded = lax.pad(v, lax.full((), 0, get_aval(v).dtype), ((0, abs(k), 0),))
    # row i holds v[i] (k >= 0) or column j holds v[j] (k < 0) on the diagonal
    vals = lax.broadcast_in_dim(padded, (n, n), (0,) if k >= 0 else (1,))
    i = lax.broadcasted_iota(np.int32, (n, n), 0)
    j = lax.broadcasted_iota(np.int32, (n, n), 1)
    on_diag = lax.eq(j - i, np.asarray(k, np.int32))
    return lax.select(on_diag, vals, zeros_like(vals))


# ---------------------------------------------------------------------------
# Grids
# ---------------------------------------------------------------------------

def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False,
             indexing: str = "xy") -> list[Any]:
    """Coordinate matrices from 1-D coordinate vectors (``indexing`` 'xy' or 'ij')."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"Valid values for indexing are 'xy' and 'ij', got {indexing}")
    args = [asarray(x) for x in xi]
    for x in args:
        if get_aval(x).ndim != 1:
            raise ValueError(f"Arguments to jax.numpy.meshgrid must be 1D, got shape "
                             f"{get_aval(x).shape}")
    sizes = [get_aval(x).shape[0] for x in args]
    if indexing == "xy" and len(args) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    nd = len(args)
    out = []
    for i, x in enumerate(args):
        d = i
        if indexing == "xy" and nd >= 2 and i < 2:
            d = 1 - i
        if sparse:
            shape = [1] * nd
            shape[d] = get_aval(x).shape[0]
            out.append(lax.reshape(x, tuple(shape)))
        else:
            out.append(lax.broadcast_in_dim(x, tuple(sizes), (d,)))
    return out


def indices(dimensions: Any, dtype: Any = None, sparse: bool = False) -> Any:
    """An array (or, ``sparse``, a tuple) of the index grids of an array of shape
    ``dimensions``."""
    dims = _shape_tuple(dimensions, "indices")
    dt = _default_dtype(dtype, dtypes.default_int_dtype())
    nd = len(dims)
    grids = []
    for i, n in enumerate(dims):
        if sparse:
            shape = tuple(n if j == i else 1 for j in range(nd))
            grids.append(lax.broadcasted_iota(dt, shape, i))
        else:
            grids.append(lax.broadcasted_iota(dt, (1,) + dims, i + 1))
    if sparse:
        return tuple(grids)
    return lax.concatenate(grids, 0) if grids else lax.full((0,), 0, dt)


# ---------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------

def _canon_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    """``axis`` in ``[0, ndim)`` or JAX's error text."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim if ndim else axis


def _broadcast_shapes(*shapes):
    from tinyjax.numpy._util import broadcast_shapes
    return broadcast_shapes(*shapes)


def _bcast(x: Any, shape: tuple[int, ...]) -> Any:
    from tinyjax.numpy._util import broadcast_to_shape
    return broadcast_to_shape(x, shape)
