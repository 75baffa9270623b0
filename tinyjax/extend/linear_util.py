"""``jax.extend.linear_util``: a function wrapped for the transform plumbing
(``jax.api_util.flatten_fun`` and ``jax.interpreters.partial_eval`` take it)."""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["WrappedFun", "transformation", "wrap_init"]


class WrappedFun:
    """``f`` with the parameters it is called with; ``call_wrapped(*args)`` calls it.

    tinyjax's plumbing calls functions directly, so a WrappedFun is also callable."""

    __slots__ = ("f", "params", "debug_info")

    def __init__(self, f: Callable, params: dict, debug_info: Any = None):
        self.f, self.params, self.debug_info = f, params, debug_info

    @property
    def __name__(self) -> str:
        return getattr(self.f, "__name__", "<unnamed wrapped function>")

    def call_wrapped(self, *args: Any, **kwargs: Any) -> Any:
        return self.f(*args, **dict(self.params, **kwargs))

    __call__ = call_wrapped

    def __repr__(self) -> str:
        return f"Wrapped function: {self.__name__}"


def wrap_init(f: Callable, params: dict | None = None, *, debug_info: Any = None
              ) -> WrappedFun:
    """``f`` as a :class:`WrappedFun` (called with ``params`` as keyword arguments)."""
    return WrappedFun(f, dict(params or {}), debug_info)


def transformation(gen: Callable[..., Any]) -> Callable[..., WrappedFun]:
    """A generator ``gen(*extra, *args)`` as a transformation of wrapped functions: it
    yields ``(args, kwargs)`` to call the wrapped function with, receives its result, and
    yields the transformed result.  ``transformation(gen)(f, *extra)`` is ``f``
    transformed."""
    def apply(f: WrappedFun, *extra: Any) -> WrappedFun:
        def transformed(*args: Any, **kwargs: Any) -> Any:
            steps = gen(*extra, *args, **kwargs)
            inner_args, inner_kwargs = next(steps)
            return steps.send(f.call_wrapped(*inner_args, **inner_kwargs))
        return WrappedFun(transformed, {}, f.debug_info)
    return apply
