"""``jnp.ufunc``: numpy's ufunc objects (``__call__``, ``reduce``, ``accumulate``, ``at``,
``reduceat``, ``outer``) over any elementwise function, and the ufunc objects JAX exports
(``jnp.add``, ``jnp.multiply``, ``jnp.maximum``, the bitwise and logical functions,
``jnp.logaddexp``/``logaddexp2``, ``jnp.subtract``, ``jnp.negative``).

A method without a specialised implementation runs the function in a loop
(``fori_loop``/``scan``): correct for any function, fast for the specialised ones
(``add.reduce`` is ``sum``, ``add.at`` is ``x.at[i].add``).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.api import eval_shape, vmap
from tinyjax.core import get_aval
from tinyjax.lax.windowed import register_monoid
from tinyjax.numpy import _reductions as red
from tinyjax.numpy import _ufuncs as uf
from tinyjax.numpy._creation import asarray, full
from tinyjax.numpy._shape import moveaxis, reshape
from tinyjax.numpy._util import broadcast_to_shape, check_arraylike, select_broadcast
from tinyjax.numpy._vectorize import vectorize

__all__ = ["ufunc", "frompyfunc", "add", "subtract", "multiply", "maximum", "minimum",
           "bitwise_and", "bitwise_or", "bitwise_xor", "logical_and", "logical_or",
           "logical_xor", "logaddexp", "logaddexp2", "negative"]

_AT_INPLACE = ("jax.numpy.ufunc.at does not update arrays in place (tinyjax arrays are "
               "immutable): pass inplace=False to get the updated copy.")


class ufunc:
    """A universal function: ``func`` applied elementwise, with numpy's methods.

    Args:
      func: the elementwise function (of ``nin`` arrays, returning ``nout``).
      nin, nout: the numbers of inputs and outputs.
      name: the name (``func.__name__`` by default).
      nargs: ``nin + nout`` by default (numpy's attribute).
      identity: the value a reduction over an empty axis gives (None: no identity).
      call, reduce, accumulate, at, reduceat: faster implementations of the methods,
        used in place of the generic loops.
    """

    def __init__(self, func: Callable[..., Any], /, nin: int, nout: int, *,
                 name: str | None = None, nargs: int | None = None, identity: Any = None,
                 call: Callable[..., Any] | None = None,
                 reduce: Callable[..., Any] | None = None,
                 accumulate: Callable[..., Any] | None = None,
                 at: Callable[..., Any] | None = None,
                 reduceat: Callable[..., Any] | None = None):
        self._func = func
        self.nin, self.nout = int(nin), int(nout)
        self.nargs = self.nin + self.nout if nargs is None else int(nargs)
        self.identity = identity
        self.__name__ = name or getattr(func, "__name__", "ufunc")
        self.__doc__ = getattr(func, "__doc__", None)
        self._call, self._reduce, self._accumulate = call, reduce, accumulate
        self._at, self._reduceat = at, reduceat

    def __repr__(self) -> str:
        return f"<jnp.ufunc '{self.__name__}'>"

    def __hash__(self) -> int:
        return hash((self._func, self.__name__, self.nin, self.nout))

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, ufunc) and (self._func, self.__name__, self.nin,
                                             self.nout) == (other._func, other.__name__,
                                                            other.nin, other.nout)

    def __call__(self, *args: Any, out: None = None, where: None = None) -> Any:
        if out is not None:
            raise NotImplementedError(f"out argument of {self}")
        if where is not None:
            raise NotImplementedError(f"where argument of {self}")
        return (self._call or self._func)(*args)

    # -- helpers -----------------------------------------------------------------------
    def _binary_only(self, method: str) -> None:
        if self.nin != 2:
            raise ValueError(f"{method} only supported for binary ufuncs")
        if self.nout != 1:
            raise ValueError(f"{method} only supported for functions returning a single value")

    def _result_dtype(self, *args: Any) -> np.dtype:
        ones = [lax.full((), 1, get_aval(asarray(a)).dtype) for a in args]
        return eval_shape(self._func, *ones).dtype

    # -- reduce ------------------------------------------------------------------------
    def reduce(self, a: Any, axis: int | tuple[int, ...] | None = 0, dtype: Any = None,
               out: None = None, keepdims: bool = False, initial: Any = None,
               where: Any = None) -> Any:
        """Reduce ``a`` along ``axis`` by repeated application of the ufunc."""
        check_arraylike(f"{self.__name__}.reduce", a)
        self._binary_only("reduce")
        if out is not None:
            raise NotImplementedError(f"out argument of {self.__name__}.reduce()")
        if where is not None:
            check_arraylike(f"{self.__name__}.reduce", where)
            if self.identity is None and initial is None:
                raise ValueError(f"reduction operation {self.__name__!r} does not have an "
                                 "identity, so to use a where mask one has to specify "
                                 "'initial'.")
            if get_aval(asarray(where)).dtype != np.bool_:
                raise ValueError("where argument must have dtype=bool; got dtype="
                                 f"{get_aval(asarray(where)).dtype}")
        impl = self._reduce or self._reduce_via_loop
        return impl(a, axis=axis, dtype=dtype, keepdims=keepdims, initial=initial,
                    where=where)

    def _reduce_via_loop(self, a: Any, axis: Any = 0, dtype: Any = None,
                         keepdims: bool = False, initial: Any = None,
                         where: Any = None) -> Any:
        arr = asarray(a)
        shape = get_aval(arr).shape
        dtype = self._result_dtype(arr, arr) if dtype is None else \
            dtypes.canonicalize_dtype(dtype)
        initial = self.identity if initial is None else initial
        axes = tuple(range(len(shape))) if axis is None else \
            tuple(red._reduction_axes(axis, len(shape)))
        kept = [d for i, d in enumerate(shape) if i not in axes]
        final_shape = tuple(1 if i in axes else d for i, d in enumerate(shape)) \
            if keepdims else tuple(kept)
        # the reduced axes first, flattened into one
        n = math.prod(shape[i] for i in axes)
        perm = list(axes) + [i for i in range(len(shape)) if i not in axes]
        arr = reshape(lax.transpose(arr, perm), (n, *kept))
        if where is not None:
            w = broadcast_to_shape(asarray(where), shape)
            where = reshape(lax.transpose(w, perm), (n, *kept))
        if n == 0:
            if initial is None:
                raise ValueError(f"zero-size array to reduction operation {self.__name__} "
                                 "which has no identity")
            return full(final_shape, initial, dtype)

        def step(i, acc):
            new = self(acc, lax.convert_element_type(arr[i], dtype))
            new = lax.convert_element_type(new, dtype)
            return new if where is None else select_broadcast(where[i], new, acc)

        start = 1 if initial is None else 0
        acc0 = arr[0] if initial is None else full(tuple(kept), initial, dtype)
        acc0 = broadcast_to_shape(lax.convert_element_type(asarray(acc0), dtype), tuple(kept))
        result = lax.fori_loop(start, n, step, acc0)
        return reshape(result, final_shape)

    # -- accumulate --------------------------------------------------------------------
    def accumulate(self, a: Any, axis: int = 0, dtype: Any = None, out: None = None) -> Any:
        """The running reduction of ``a`` along ``axis`` (same shape as ``a``)."""
        check_arraylike(f"{self.__name__}.accumulate", a)
        self._binary_only("accumulate")
        if out is not None:
            raise NotImplementedError(f"out argument of {self.__name__}.accumulate()")
        if axis is None or isinstance(axis, tuple):
            raise ValueError("accumulate does not allow multiple axes")
        impl = self._accumulate or self._accumulate_via_scan
        return impl(a, axis=axis, dtype=dtype)

    def _accumulate_via_scan(self, a: Any, axis: int = 0, dtype: Any = None) -> Any:
        arr = asarray(a)
        dtype = self._result_dtype(arr, arr) if dtype is None else \
            dtypes.canonicalize_dtype(dtype)
        axis = red._reduction_axes(axis, get_aval(arr).ndim)[0]
        if get_aval(arr).size == 0:
            return full(get_aval(arr).shape, 0, dtype)
        arr = lax.convert_element_type(moveaxis(arr, axis, 0), dtype)

        def step(acc, x):
            y = lax.convert_element_type(self(acc, x), dtype)
            return y, y

        _, rest = lax.scan(step, arr[0], arr[1:])
        out = lax.concatenate([lax.expand_dims(arr[0], (0,)), rest], 0)
        return moveaxis(out, 0, axis)

    # -- at ----------------------------------------------------------------------------
    def at(self, a: Any, indices: Any, b: Any = None, /, *, inplace: bool = True) -> Any:
        """``a`` with the ufunc applied at ``indices`` (repeated indices accumulate);
        ``inplace=False`` is required, as in JAX."""
        if inplace:
            raise NotImplementedError(_AT_INPLACE)
        impl = self._at or self._at_via_scan
        return impl(a, indices) if b is None else impl(a, indices, b)

    def _at_via_scan(self, a: Any, indices: Any, *args: Any) -> Any:
        check_arraylike(f"{self.__name__}.at", a, *args)
        dtype = self._result_dtype(a, *args)
        a = lax.convert_element_type(asarray(a), dtype)
        args = tuple(lax.convert_element_type(asarray(v), dtype) for v in args)
        idx = indices if isinstance(indices, tuple) else (indices,)
        arrays = [asarray(i) for i in idx if not isinstance(i, slice) and i is not None
                  and i is not Ellipsis]
        if not arrays or all(get_aval(i).ndim == 0 for i in arrays):
            return a.at[indices].set(self(a.at[indices].get(), *args))
        shape = np.broadcast_shapes(*(get_aval(i).shape for i in arrays))
        count = math.prod(shape)
        flat = tuple(reshape(broadcast_to_shape(asarray(i), shape), (count,))
                     if not (isinstance(i, slice) or i is None or i is Ellipsis) else i
                     for i in idx)
        if args:
            v = args[0]
            vshape = get_aval(v).shape
            rest = vshape[len(shape):] if len(vshape) > len(shape) else ()
            args = (reshape(broadcast_to_shape(v, (*shape, *rest)), (count, *rest)),)

        def step(carry, i):
            where = tuple(j if isinstance(j, slice) or j is None or j is Ellipsis else j[i]
                          for j in flat)
            updated = self(carry.at[where].get(), *(v[i] for v in args))
            return carry.at[where].set(updated), None

        out, _ = lax.scan(step, a, lax.iota(np.int32, count))
        return out

    # -- reduceat ----------------------------------------------------------------------
    def reduceat(self, a: Any, indices: Any, axis: int = 0, dtype: Any = None,
                 out: None = None) -> Any:
        """Reductions over the slices ``a[indices[i]:indices[i+1]]`` along ``axis`` (just
        ``a[indices[i]]`` where ``indices[i] >= indices[i+1]``), as numpy's."""
        self._binary_only("reduceat")
        if out is not None:
            raise NotImplementedError(f"out argument of {self.__name__}.reduceat()")
        impl = self._reduceat or self._reduceat_via_loop
        return impl(a, indices, axis=axis, dtype=dtype)

    def _reduceat_via_loop(self, a: Any, indices: Any, axis: int = 0,
                           dtype: Any = None) -> Any:
        check_arraylike(f"{self.__name__}.reduceat", a, indices)
        a = asarray(a)
        indices = asarray(indices)
        if get_aval(a).ndim == 0:
            raise ValueError(f"reduceat: a must have 1 or more dimension, got "
                             f"a.shape={get_aval(a).shape}")
        if get_aval(indices).ndim != 1:
            raise ValueError("reduceat: indices must be one-dimensional, got "
                             f"indices.shape={get_aval(indices).shape}")
        if axis is None or isinstance(axis, (tuple, list)):
            raise ValueError("reduceat requires a single integer axis.")
        axis = red._reduction_axes(axis, get_aval(a).ndim)[0]
        if dtype is not None:
            a = lax.convert_element_type(a, dtypes.canonicalize_dtype(dtype))
        a = moveaxis(a, axis, 0)
        n = get_aval(a).shape[0]
        starts = indices
        ends = lax.concatenate([indices[1:], lax.full((1,), n, get_aval(indices).dtype)], 0)
        out = a[starts]                       # the first element of each segment
        bshape = (get_aval(starts).shape[0],) + (1,) * (get_aval(a).ndim - 1)
        lo, hi = reshape(starts, bshape), reshape(ends, bshape)

        def step(i, acc):
            inside = lax.bitwise_and(lax.gt(i, lo), lax.lt(i, hi))
            return select_broadcast(inside, lax.convert_element_type(
                self(acc, a[i]), get_aval(acc).dtype), acc)

        return moveaxis(lax.fori_loop(0, n, step, out), 0, axis)

    # -- outer -------------------------------------------------------------------------
    def outer(self, A: Any, B: Any, /) -> Any:
        """The ufunc of every pair: shape ``A.shape + B.shape``."""
        self._binary_only("outer")
        check_arraylike(f"{self.__name__}.outer", A, B)
        A, B = asarray(A), asarray(B)
        sa, sb = get_aval(A).shape, get_aval(B).shape
        flat_a, flat_b = reshape(A, (math.prod(sa),)), reshape(B, (math.prod(sb),))
        result = vmap(vmap(self, (None, 0)), (0, None))(flat_a, flat_b)
        return reshape(result, (*sa, *sb))


def frompyfunc(func: Callable[..., Any], /, nin: int, nout: int, *,
               identity: Any = None) -> ufunc:
    """A :class:`ufunc` from a function of scalars (vectorised with ``jnp.vectorize``)."""
    return ufunc(vectorize(func), nin, nout, identity=identity,
                 name=getattr(func, "__name__", "frompyfunc"))


# -- the ufunc objects JAX exports, with their fast methods ----------------------------

def _reduction(fn: Callable) -> Callable:
    def reduce(a, axis=0, dtype=None, keepdims=False, initial=None, where=None):
        kw = {} if dtype is None else {"dtype": dtype}
        return fn(a, axis=axis, keepdims=keepdims, initial=initial, where=where, **kw)
    return reduce


def _logical_reduction(fn: Callable) -> Callable:
    def reduce(a, axis=0, dtype=None, keepdims=False, initial=None, where=None):
        out = fn(a, axis=axis, keepdims=keepdims, where=where)
        if initial is not None:
            out = (uf.logical_and if fn is red.all else uf.logical_or)(out, initial)
        return out if dtype is None else lax.convert_element_type(out, dtype)
    return reduce


def _cumulative(fn: Callable) -> Callable:
    return lambda a, axis=0, dtype=None: fn(a, axis=axis, dtype=dtype)


def _at_method(name: str) -> Callable:
    def at(a, indices, b):
        return getattr(asarray(a).at[indices], name)(b)
    return at


add = ufunc(uf.add, 2, 1, name="add", identity=0, reduce=_reduction(red.sum),
            accumulate=_cumulative(red.cumsum), at=_at_method("add"))
multiply = ufunc(uf.multiply, 2, 1, name="multiply", identity=1,
                 reduce=_reduction(red.prod), accumulate=_cumulative(red.cumprod),
                 at=_at_method("multiply"))
subtract = ufunc(uf.subtract, 2, 1, name="subtract", at=_at_method("subtract"))
maximum = ufunc(uf.maximum, 2, 1, name="maximum", reduce=_reduction(red.max),
                at=_at_method("max"))
minimum = ufunc(uf.minimum, 2, 1, name="minimum", reduce=_reduction(red.min),
                at=_at_method("min"))
bitwise_and = ufunc(uf.bitwise_and, 2, 1, name="bitwise_and", identity=-1)
bitwise_or = ufunc(uf.bitwise_or, 2, 1, name="bitwise_or", identity=0)
bitwise_xor = ufunc(uf.bitwise_xor, 2, 1, name="bitwise_xor", identity=0)
logical_and = ufunc(uf.logical_and, 2, 1, name="logical_and", identity=True,
                    reduce=_logical_reduction(red.all))
logical_or = ufunc(uf.logical_or, 2, 1, name="logical_or", identity=False,
                   reduce=_logical_reduction(red.any))
logical_xor = ufunc(uf.logical_xor, 2, 1, name="logical_xor", identity=False)
logaddexp = ufunc(uf.logaddexp, 2, 1, name="logaddexp", identity=-np.inf)
logaddexp2 = ufunc(uf.logaddexp2, 2, 1, name="logaddexp2", identity=-np.inf)
negative = ufunc(uf.negative, 1, 1, name="negative")
for _ufunc, _kind in ((add, "sum"), (maximum, "max"), (minimum, "min")):
    register_monoid(_ufunc, _kind)  # lax.reduce_window takes the ufunc objects too
