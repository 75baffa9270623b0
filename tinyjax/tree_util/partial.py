"""``Partial``: a ``functools.partial`` that is a pytree (its arguments are its children)."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tinyjax.tree_util.registration import register_pytree_node


# ---------------------------------------------------------------------------
# Partial
# ---------------------------------------------------------------------------


class _HashableCallableShim:
    """Wraps a functools.partial so Partial does not merge its arguments.

    Delegates calling, hashing and equality to the wrapped callable.
    """

    def __init__(self, fun: Callable) -> None:
        self.fun = fun

    def __call__(self, *args, **kwargs):
        return self.fun(*args, **kwargs)

    def __hash__(self) -> int:
        return hash(self.fun)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _HashableCallableShim):
            return self.fun == other.fun
        return self.fun == other

    def __repr__(self) -> str:
        return f"_HashableCallableShim({self.fun!r})"


class Partial(functools.partial):
    """A ``functools.partial`` that is a pytree.

    The wrapped function is static aux data; the bound positional arguments
    (a tuple) and keyword arguments (a dict) are the children, so
    ``tree_leaves(Partial(f, x, y=z)) == [x, z]``. If ``func`` is itself a
    ``functools.partial`` it is kept opaque (its arguments are part of the
    static function, not children).
    """

    def __new__(klass, func: Callable, *args: Any, **kwargs: Any) -> Partial:
        if isinstance(func, functools.partial):
            # functools.partial would merge the inner partial's arguments into
            # ours (making them pytree children); hide it behind a shim.
            original = func
            func = _HashableCallableShim(original)
            out = super().__new__(klass, func, *args, **kwargs)
            func.func = original.func
            func.args = original.args
            func.keywords = original.keywords
            return out
        return super().__new__(klass, func, *args, **kwargs)


register_pytree_node(
    Partial,
    lambda p: ((p.args, p.keywords), p.func),
    lambda func, xs: Partial(func, *xs[0], **xs[1]),
)
