"""Array manipulation beyond reshaping: ``append``/``insert``/``delete``, ``resize``,
``rollaxis``, ``unstack``, ``block``, ``apply_along_axis``/``apply_over_axes``,
``choose``/``select``/``piecewise``, ``compress``/``extract``, ``place``/``put``/
``put_along_axis``, ``diagflat`` and ``partition``/``argpartition``.

Where numpy's result length depends on the values of an index argument (``insert``,
``delete``), the index must be concrete, as in JAX; the positions are computed with
numpy on index markers and the data moves with one gather.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import Tracer, get_aval
from tinyjax.numpy._creation import asarray, concrete_value, diag, zeros
from tinyjax.numpy._index_tricks import index_in_range
from tinyjax.numpy._indexing import take, where
from tinyjax.numpy._reductions import cumsum
from tinyjax.numpy._shape import (broadcast_arrays, concatenate, expand_dims, moveaxis,
                                  ravel, reshape)
from tinyjax.numpy._sorting import nonzero
from tinyjax.numpy._util import (broadcast_to_shape, check_arraylike, promote_dtypes,
                                 select_broadcast)
from tinyjax.api import vmap

__all__ = ["append", "insert", "delete", "resize", "rollaxis", "unstack", "block",
           "apply_along_axis", "apply_over_axes", "choose", "select", "piecewise",
           "compress", "extract", "place", "put", "put_along_axis", "diagflat",
           "partition", "argpartition"]


def _axis(axis: int, ndim: int, name: str) -> int:
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: axis {axis} is out of bounds for array of dimension "
                         f"{ndim}")
    return axis % ndim


def append(arr: Any, values: Any, axis: int | None = None) -> Any:
    """``arr`` with ``values`` appended along ``axis`` (both flattened when None)."""
    check_arraylike("append", arr, values)
    arr, values = asarray(arr), asarray(values)
    if axis is None:
        return concatenate([ravel(arr), ravel(values)], 0)
    return concatenate([arr, values], axis)


def _static_index(obj: Any, name: str) -> Any:
    if isinstance(obj, slice):
        return obj
    return np.asarray(concrete_value(asarray(obj) if not isinstance(obj, (int, np.integer))
                                     else obj, f"{name} obj (must be static)"))


def insert(arr: Any, obj: Any, values: Any, axis: int | None = None) -> Any:
    """``arr`` with ``values`` inserted before the indices ``obj`` along ``axis``
    (numpy's rules for scalar, slice and array ``obj``; ``obj`` must be concrete)."""
    check_arraylike("insert", arr, values)
    arr, values = asarray(arr), asarray(values)
    if axis is None:
        arr, axis = ravel(arr), 0
    shape = get_aval(arr).shape
    axis = _axis(axis, len(shape), "insert")
    index = _static_index(obj, "insert")
    if not isinstance(index, slice) and index.dtype == np.bool_:
        raise ValueError("jnp.insert(): boolean indices are not supported")
    n = shape[axis]
    # markers: which (flattened) value and which original row each output entry holds
    vshape = get_aval(values).shape
    source = np.insert(np.zeros(shape, np.int64), index,
                       np.arange(1, math.prod(vshape) + 1).reshape(vshape), axis=axis)
    original = np.insert(np.broadcast_to(np.arange(n).reshape(
        [n if i == axis else 1 for i in range(len(shape))]), shape) + 1, index,
        np.zeros(vshape, np.int64), axis=axis)
    out_shape = source.shape
    flat_values = ravel(values.astype(get_aval(arr).dtype))
    from_values = take(flat_values, asarray(np.maximum(source - 1, 0).astype(np.int32)))
    orig_rows = np.moveaxis(original, axis, 0).reshape(out_shape[axis], -1)[:, 0] - 1
    from_arr = take(arr, asarray(np.maximum(orig_rows, 0).astype(np.int32)), axis=axis)
    return where(asarray(original > 0), from_arr, from_values) if from_values.size else \
        lax.reshape(from_arr, out_shape)


def delete(arr: Any, obj: Any, axis: int | None = None, *,
           assume_unique_indices: bool = False) -> Any:
    """``arr`` without the entries at ``obj`` along ``axis`` (flattened when None);
    ``obj`` must be concrete unless ``assume_unique_indices`` (then an int array of
    distinct in-range indices, which may be traced)."""
    check_arraylike("delete", arr)
    arr = asarray(arr)
    if axis is None:
        arr, axis = ravel(arr), 0
    shape = get_aval(arr).shape
    axis = _axis(axis, len(shape), "delete")
    n = shape[axis]
    if assume_unique_indices and not isinstance(obj, slice):
        idx = ravel(asarray(obj))
        if not dtypes.is_int(get_aval(idx).dtype):
            raise ValueError("jnp.delete(..., assume_unique_indices=True) requires "
                             "integer indices")
        idx = where(idx < 0, idx + n, idx)
        keep = lax.full((n,), True, np.bool_).at[idx].set(False)
        kept = nonzero(keep, size=n - get_aval(idx).shape[0])[0]
        return take(arr, kept, axis=axis)
    index = _static_index(obj, "delete")
    if not isinstance(index, slice) and index.dtype == np.bool_:
        if index.shape != (n,):
            raise ValueError(f"jnp.delete(): boolean mask of shape {index.shape} does not "
                             f"match the axis length {n}")
        index = np.flatnonzero(index)
    if not isinstance(index, slice) and np.any((index < -n) | (index >= n)):
        raise IndexError(f"jnp.delete(): index {index} is out of bounds for axis {axis} "
                         f"with size {n}")
    kept = np.delete(np.arange(n), index)
    return take(arr, asarray(kept.astype(np.int32)), axis=axis)


def resize(a: Any, new_shape: Any) -> Any:
    """``a`` flattened, repeated cyclically (or cut) to fill ``new_shape``."""
    check_arraylike("resize", a)
    a = asarray(a)
    new_shape = (new_shape,) if np.ndim(new_shape) == 0 else tuple(new_shape)
    if any(int(d) < 0 for d in new_shape):
        raise ValueError("all elements of `new_shape` must be non-negative")
    new_shape = tuple(int(d) for d in new_shape)
    size = math.prod(new_shape)
    flat = ravel(a)
    n = get_aval(flat).shape[0]
    if n == 0 or size == 0:
        return zeros(new_shape, get_aval(a).dtype)
    reps = -(-size // n)
    return reshape(concatenate([flat] * reps, 0)[:size], new_shape)


def rollaxis(a: Any, axis: int, start: int = 0) -> Any:
    """Move ``axis`` so that it lies before position ``start`` (numpy's older
    :func:`moveaxis`)."""
    check_arraylike("rollaxis", a)
    a = asarray(a)
    ndim = get_aval(a).ndim
    axis = _axis(axis, ndim, "rollaxis")
    if not -ndim <= start <= ndim:
        raise ValueError(f"rollaxis: start={start} must satisfy {-ndim} <= start <= {ndim}")
    start = start + ndim if start < 0 else start
    if axis < start:
        start -= 1
    return moveaxis(a, axis, start)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[Any, ...]:
    """The slices of ``x`` along ``axis``, as a tuple (the inverse of ``stack``)."""
    check_arraylike("unstack", x)
    x = asarray(x)
    if get_aval(x).ndim == 0:
        raise ValueError("Unstack requires arrays with rank > 0, however a scalar array "
                         "was passed.")
    axis = _axis(axis, get_aval(x).ndim, "unstack")
    return tuple(lax.index_in_dim(x, i, axis, keepdims=False)
                 for i in range(get_aval(x).shape[axis]))


def _block_depth(arrays: Any, name: str = "block") -> int:
    if isinstance(arrays, tuple):
        raise TypeError("jnp.block does not allow tuples; use a list of lists")
    if isinstance(arrays, list):
        if not arrays:
            raise ValueError("jnp.block does not allow empty lists")
        depths = {_block_depth(a) for a in arrays}
        if len(depths) != 1:
            raise ValueError("List depths are mismatched in jnp.block")
        return depths.pop() + 1
    return 0


def block(arrays: Any) -> Any:
    """Assemble an array from nested lists of blocks: the innermost lists concatenate
    along the last axis, the next along the one before, and so on."""
    depth = _block_depth(arrays)

    def leaves(x):
        return [y for a in x for y in leaves(a)] if isinstance(x, list) else [x]

    ndim = max([depth] + [get_aval(asarray(v)).ndim for v in leaves(arrays)])

    def assemble(x, level):
        if not isinstance(x, list):
            v = asarray(x)
            return reshape(v, (1,) * (ndim - get_aval(v).ndim) + get_aval(v).shape)
        parts = promote_dtypes(*(assemble(a, level + 1) for a in x))
        return concatenate(parts, axis=-(depth - level))

    return assemble(arrays, 0)


def apply_along_axis(func1d: Callable, axis: int, arr: Any, *args: Any, **kwargs: Any
                     ) -> Any:
    """``func1d`` applied to the 1-D slices of ``arr`` along ``axis`` (vectorised)."""
    check_arraylike("apply_along_axis", arr)
    arr = asarray(arr)
    ndim = get_aval(arr).ndim
    axis = _axis(axis, ndim, "apply_along_axis")
    func = lambda x: func1d(x, *args, **kwargs)  # noqa: E731
    for i in range(1, ndim - axis):
        func = vmap(func, in_axes=i, out_axes=-1)
    for _ in range(axis):
        func = vmap(func, in_axes=0, out_axes=0)
    return func(arr)


def apply_over_axes(func: Callable, a: Any, axes: Sequence[int]) -> Any:
    """``func(a, axis)`` applied for each axis in turn, keeping the reduced axes."""
    check_arraylike("apply_over_axes", a)
    a = asarray(a)
    for axis in ([axes] if np.ndim(axes) == 0 else axes):
        b = asarray(func(a, axis))
        if get_aval(b).ndim == get_aval(a).ndim - 1:
            b = expand_dims(b, axis)
        elif get_aval(b).ndim != get_aval(a).ndim:
            raise ValueError("function is not returning an array of the correct shape")
        a = b
    return a


def choose(a: Any, choices: Any, out: None = None, mode: str = "raise") -> Any:
    """``choices[a[i]][i]`` for each position ``i`` (all broadcast together)."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.choose is not supported.")
    check_arraylike("choose", a, *choices)
    a = asarray(a)
    if not dtypes.is_int(get_aval(a).dtype):
        raise ValueError("`a` array must be integer typed")
    n = len(choices)
    index = index_in_range("choose", a, n, mode, "choice")
    arrays = broadcast_arrays(index, *promote_dtypes(*(asarray(c) for c in choices)))
    index, options = arrays[0], arrays[1:]
    out_value = options[0]
    for k, option in enumerate(options[1:], start=1):
        out_value = where(index == k, option, out_value)
    return out_value


def select(condlist: Sequence[Any], choicelist: Sequence[Any], default: Any = 0) -> Any:
    """The entry of the first choice whose condition holds (``default`` where none)."""
    if len(condlist) != len(choicelist):
        raise ValueError(f"condlist must have length equal to choicelist ({len(condlist)} "
                         f"vs {len(choicelist)})")
    if not condlist:
        raise ValueError("condlist must be non-empty")
    check_arraylike("select", *condlist, *choicelist, default)
    conds = [asarray(c) for c in condlist]
    for c in conds:
        if get_aval(c).dtype != np.bool_:
            raise TypeError(f"condlist must be a list of bool arrays, got "
                            f"{get_aval(c).dtype}")
    values = promote_dtypes(default, *choicelist)
    out = values[0]
    for cond, choice in reversed(list(zip(conds, values[1:]))):
        out = where(cond, choice, out)
    return out


def piecewise(x: Any, condlist: Any, funclist: Sequence[Any], *args: Any, **kw: Any
              ) -> Any:
    """``funclist[i](x)`` (or the constant ``funclist[i]``) where ``condlist[i]`` holds;
    one extra entry in ``funclist`` is the value where no condition holds."""
    check_arraylike("piecewise", x)
    x = asarray(x)
    conds = [asarray(c) for c in (condlist if isinstance(condlist, (list, tuple))
                                  else [condlist])]
    if get_aval(conds[0]).shape != get_aval(x).shape and len(conds) == 1 and \
            get_aval(conds[0]).ndim == get_aval(x).ndim + 1:
        conds = list(conds[0])
    n = len(conds)
    if len(funclist) not in (n, n + 1):
        raise ValueError(f"with {n} condition(s), either {n} or {n + 1} functions are "
                         f"expected; got {len(funclist)}")
    default = funclist[n] if len(funclist) == n + 1 else 0
    dt = get_aval(x).dtype

    def value(f):
        v = f(x, *args, **kw) if callable(f) else f
        return broadcast_to_shape(asarray(v).astype(dt), get_aval(x).shape)

    out = value(default)
    for cond, f in reversed(list(zip(conds, funclist[:n]))):
        out = select_broadcast(cond.astype(np.bool_), value(f), out)
    return out


def compress(condition: Any, a: Any, axis: int | None = None, *, size: int | None = None,
             fill_value: Any = 0, out: None = None) -> Any:
    """The slices of ``a`` along ``axis`` where the 1-D ``condition`` is true (exactly
    ``size`` of them, padded with ``fill_value``, when given)."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.compress is not supported.")
    check_arraylike("compress", condition, a)
    condition, a = asarray(condition), asarray(a)
    if get_aval(condition).ndim != 1:
        raise ValueError("condition must be a 1D array")
    if axis is None:
        a, axis = ravel(a), 0
    axis = _axis(axis, get_aval(a).ndim, "compress")
    n = get_aval(a).shape[axis]
    c = get_aval(condition).shape[0]
    condition = condition.astype(np.bool_)
    if c > n:
        condition = condition[:n]
    elif c < n:
        condition = concatenate([condition, lax.full((n - c,), False, np.bool_)])
    if size is None:
        kept = np.flatnonzero(np.asarray(concrete_value(condition, "compress condition "
                                                        "(pass size= under jit)")))
        return take(a, asarray(kept.astype(np.int32)), axis=axis)
    idx = nonzero(condition, size=size, fill_value=n)[0]
    return take(a, idx, axis=axis, mode="fill", fill_value=fill_value)


def extract(condition: Any, arr: Any, *, size: int | None = None,
            fill_value: Any = 0) -> Any:
    """The entries of the flattened ``arr`` where the flattened ``condition`` is
    nonzero."""
    check_arraylike("extract", condition, arr)
    return compress(ravel(asarray(condition)) != 0, ravel(asarray(arr)), size=size,
                    fill_value=fill_value)


def _immutable(name: str) -> ValueError:
    return ValueError(f"jax.numpy.{name} cannot modify arrays in-place, because JAX arrays "
                      "are immutable. Pass inplace=False to instead return an updated "
                      "array.")


def place(arr: Any, mask: Any, vals: Any, *, inplace: bool = True) -> Any:
    """``arr`` with the entries where ``mask`` holds replaced, in order, by ``vals``
    (repeated as needed); ``inplace=False`` is required."""
    if inplace:
        raise _immutable("place")
    check_arraylike("place", arr, mask, vals)
    data, m, v = asarray(arr), asarray(mask), ravel(asarray(vals))
    shape = get_aval(data).shape
    flat, m = ravel(data), ravel(m).astype(np.bool_)
    if get_aval(v).shape[0] == 0:
        return data
    idx = (cumsum(m.astype(np.int32)) - 1) % get_aval(v).shape[0]
    return reshape(where(m, take(v, idx).astype(get_aval(data).dtype), flat), shape)


def put(a: Any, ind: Any, v: Any, mode: str | None = None, *, inplace: bool = True) -> Any:
    """``a`` with the flat positions ``ind`` set to ``v`` (repeated as needed);
    out-of-range indices are dropped (``mode=None``), clipped or wrapped."""
    if inplace:
        raise _immutable("put")
    check_arraylike("put", a, ind, v)
    arr, idx, vals = asarray(a), ravel(asarray(ind)), ravel(asarray(v))
    size = get_aval(arr).size
    if not size or not get_aval(idx).size or not get_aval(vals).size:
        return arr
    count = get_aval(idx).shape[0]
    reps = -(-count // get_aval(vals).shape[0])
    vals = concatenate([vals] * reps)[:count]
    if mode is None:
        scatter_mode = "drop"
    elif mode == "clip":
        idx, scatter_mode = lax.clamp(np.array(0, get_aval(idx).dtype), idx,
                                      np.array(size - 1, get_aval(idx).dtype)), "clip"
    elif mode == "wrap":
        idx, scatter_mode = idx % size, "clip"
    elif mode == "raise":
        raise NotImplementedError("The 'raise' mode to jnp.put is not supported.")
    else:
        raise ValueError(f"mode should be one of 'wrap' or 'clip'; got mode={mode!r}")
    flat = ravel(arr).at[idx].set(vals, mode=scatter_mode)
    return reshape(flat, get_aval(arr).shape)


def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None,
                   inplace: bool = True, *, mode: str | None = None) -> Any:
    """The scatter counterpart of ``take_along_axis``: ``arr`` with
    ``arr[..., indices[..., j], ...] = values[..., j, ...]`` along ``axis``."""
    if inplace:
        raise _immutable("put_along_axis")
    check_arraylike("put_along_axis", arr, indices, values)
    arr, indices, values = asarray(arr), asarray(indices), asarray(values)
    shape = get_aval(arr).shape
    if axis is None:
        arr, axis = ravel(arr), 0
    if get_aval(arr).ndim != get_aval(indices).ndim:
        raise ValueError("put_along_axis arguments 'arr' and 'indices' must have same "
                         f"ndim. Got arr.ndim={get_aval(arr).ndim} and "
                         f"indices.ndim={get_aval(indices).ndim}.")
    axis = _axis(axis, get_aval(arr).ndim, "put_along_axis")
    ishape = get_aval(indices).shape
    try:
        values = broadcast_to_shape(values, ishape)
    except ValueError:
        raise ValueError("put_along_axis argument 'values' must be broadcastable to "
                         f"'indices'. Got values.shape={get_aval(values).shape} and "
                         f"indices.shape={ishape}.") from None
    n = get_aval(arr).shape[axis]
    indices = where(indices < 0, indices + n, indices)
    index = []
    for d in range(get_aval(arr).ndim):
        if d == axis:
            index.append(indices)
        else:
            dim = get_aval(arr).shape[d] if ishape[d] != 1 else 1
            index.append(reshape(lax.iota(np.int32, dim),
                                 tuple(dim if i == d else 1 for i in range(len(ishape)))))
    out = arr.at[tuple(index)].set(values, mode=mode)
    return reshape(out, shape)


def diagflat(v: Any, k: int = 0) -> Any:
    """A 2-D array with the flattened ``v`` on its ``k``-th diagonal."""
    check_arraylike("diagflat", v)
    return diag(ravel(asarray(v)), k)


def _partition_parts(name: str, a: Any, kth: int, axis: int) -> tuple[Any, int, int]:
    check_arraylike(name, a)
    a = asarray(a)
    if get_aval(a).ndim == 0:
        raise TypeError(f"{name} requires an array of at least one dimension")
    if isinstance(kth, Tracer) or np.ndim(kth) != 0:
        raise TypeError(f"{name}: kth must be a static integer (a sequence of kth is not "
                        "supported)")
    axis = _axis(axis, get_aval(a).ndim, name)
    n = get_aval(a).shape[axis]
    kth = int(kth)
    if not -n <= kth < n:
        raise ValueError(f"{name}: kth={kth} out of bounds for axis of size {n}")
    return moveaxis(a, axis, -1), kth % n, axis


def partition(a: Any, kth: int, axis: int = -1) -> Any:
    """A copy of ``a`` with the ``kth`` smallest value at position ``kth`` along
    ``axis``, the smaller ones (sorted) before it and the others after (JAX's order:
    the larger ones in descending order)."""
    x, kth, axis = _partition_parts("partition", a, kth, axis)
    n = get_aval(x).shape[-1]
    bottom = -lax.top_k(-x, kth + 1)[0]
    top = lax.top_k(x, n - kth - 1)[0]
    return moveaxis(lax.concatenate([bottom, top], get_aval(x).ndim - 1), -1, axis)


def argpartition(a: Any, kth: int, axis: int = -1) -> Any:
    """The indices that :func:`partition` would place at each position."""
    x, kth, axis = _partition_parts("argpartition", a, kth, axis)
    n = get_aval(x).shape[-1]
    bottom = lax.top_k(-x, kth + 1)[1]
    # the rest: the top n-kth-1 among the entries not in ``bottom``
    taken = lax.full(get_aval(x).shape, False, np.bool_)
    ones_at = lax.full(get_aval(bottom).shape, True, np.bool_)
    taken = _scatter_last_axis(taken, bottom, ones_at)
    lowest = lax.full(get_aval(x).shape, -np.inf if dtypes.is_float(get_aval(x).dtype)
                      else dtypes.iinfo(get_aval(x).dtype).min, get_aval(x).dtype)
    top = lax.top_k(where(taken, lowest, x), n - kth - 1)[1]
    return moveaxis(lax.concatenate([bottom, top], get_aval(x).ndim - 1), -1, axis)


def _scatter_last_axis(target: Any, idx: Any, values: Any) -> Any:
    """``target[..., idx[..., j]] = values[..., j]`` over the leading axes."""
    lead = get_aval(idx).shape[:-1]
    index = tuple(reshape(lax.iota(np.int32, d), tuple(d if i == j else 1 for i in
                                                       range(len(lead) + 1)))
                  for j, d in enumerate(lead)) + (idx,)
    return target.at[index].set(values)

