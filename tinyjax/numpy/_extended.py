"""Arrays of extended dtypes (typed PRNG keys) under ``jnp``'s structural functions.

Such an array wraps a data array with trailing element axes (a key array of shape ``s``
wraps ``uint32[*s, 2]``).  ``jnp.asarray``/``array``/``copy``, ``shape``/``ndim``/``size``,
``broadcast_to``, ``expand_dims``, ``squeeze``, ``reshape``, ``stack`` and ``concatenate``
accept them as JAX's do: the operation acts on the data, its element axes kept.  The
module that defines such an array type registers it (:func:`register_extended_array`).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

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
