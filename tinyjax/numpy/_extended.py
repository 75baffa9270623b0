"""Arrays of extended dtypes (typed PRNG keys) under ``jnp``'s structural functions.

Such an array wraps a data array with trailing element axes (a key array of shape ``s``
wraps ``uint32[*s, 2]``).  ``jnp.asarray``/``array``/``copy``, ``shape``/``ndim``/``size``,
``broadcast_to``, ``expand_dims``, ``squeeze``, ``reshape``, ``stack`` and ``concatenate``
accept them as JAX's do: the operation acts on the data, its element axes kept; and
``equal``/``not_equal``, ``array_equal``/``array_equiv`` and ``where`` compare and select
whole elements (:func:`equal`, :func:`select`).  The module that defines such an array
type registers it (:func:`register_extended_array`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from tinyjax import lax
from tinyjax.numpy._util import broadcast_shapes, broadcast_to_shape, dtype_of

__all__: list[str] = []

# the registered types: cls -> (its data, the array of other data)
_types: dict[type, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}


def register_extended_array(cls: type, data: Callable[[Any], Any],
                            rewrap: Callable[[Any], Any]) -> None:
    """Make ``jnp``'s structural functions take ``cls`` arrays: ``data(x)`` is the wrapped
    array (``x.shape`` plus element axes), ``rewrap(data)`` the array of other data."""
    _types[cls] = (data, rewrap)


def is_extended(x: Any) -> bool:
    return type(x) in _types


def on_data(x: Any, fn: Callable[[Any, tuple], Any]) -> Any:
    """``fn(data, element_shape)`` (the shape of the element axes at the end of ``data``)
    rewrapped as an array of ``x``'s type."""
    data, rewrap = _types[type(x)]
    d = data(x)
    return rewrap(fn(d, tuple(d.shape[len(x.shape):])))


def on_data_of_all(xs: Sequence[Any], fn: Callable[[list, tuple], Any]) -> Any:
    """:func:`on_data` for a sequence of arrays of one extended type."""
    kinds = {type(x) for x in xs}
    if len(kinds) != 1:
        raise TypeError(f"cannot combine arrays of an extended dtype with others: "
                        f"{sorted(k.__name__ for k in kinds)}")
    data, rewrap = _types[kinds.pop()]
    ds = [data(x) for x in xs]
    return rewrap(fn(ds, tuple(ds[0].shape[len(xs[0].shape):])))


def _mixed(xs: Sequence[Any]) -> bool:
    return len({type(x) for x in xs}) != 1


def equal(x1: Any, x2: Any, name: str = "equal") -> Any:
    """Per element of the broadcast shape of two arrays of one extended type, whether their
    elements are equal (all their data): a bool array.  ``name`` is the caller's, for the
    error where only one of them is extended."""
    if _mixed((x1, x2)):
        names = ", ".join(str(x.dtype if is_extended(x) else dtype_of(x)) for x in (x1, x2))
        raise TypeError(f"{name} does not accept dtypes {names}.")
    data = _types[type(x1)][0]
    d1, d2 = data(x1), data(x2)
    tail = tuple(d1.shape[len(x1.shape):])
    shape = broadcast_shapes(x1.shape, x2.shape)
    eq = lax.eq(broadcast_to_shape(d1, shape + tail), broadcast_to_shape(d2, shape + tail))
    return lax.reduce_and(eq, tuple(range(len(shape), len(shape) + len(tail))))


def select(condition: Any, x: Any, y: Any) -> Any:
    """``x`` where the bool array ``condition`` is true, else ``y``: arrays of one extended
    type, broadcast together (``jnp.where``)."""
    if _mixed((x, y)):  # (JAX's error, from its type promotion)
        extended = x if is_extended(x) else y
        raise ValueError(f"dtype={extended.dtype} is not a valid dtype for JAX type "
                         "promotion.")
    data, rewrap = _types[type(x)]
    dx, dy = data(x), data(y)
    tail = tuple(dx.shape[len(x.shape):])
    shape = broadcast_shapes(condition.shape, x.shape, y.shape)
    cond = lax.expand_dims(condition, tuple(range(condition.ndim, condition.ndim + len(tail))))
    full = shape + tail
    out = lax.select(broadcast_to_shape(cond, full), broadcast_to_shape(dx, full),
                     broadcast_to_shape(dy, full))
    return rewrap(out)
