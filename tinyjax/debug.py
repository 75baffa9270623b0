"""``jax.debug``: print values, call Python, and stop in a debugger from inside traced
code (under ``jit``, ``vmap``, ``grad``, loops and branches), with the values the
program computes at run time.

All three are host callbacks (:func:`tinyjax.callback.debug_callback`): compiled code
calls back into Python; under ``vmap`` they run once per batch element, under ``grad``
they see primal values.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy as np

from tinyjax.callback import debug_callback
from tinyjax.debugger import breakpoint  # noqa: A004

__all__ = ["print", "callback", "breakpoint", "DebugEffect", "OrderedDebugEffect"]


class DebugEffect:
    """The effect of ``jax.debug.print``/``callback``: the call happens when the program
    runs, even if nothing uses its result, in no fixed order with the others."""


class OrderedDebugEffect:
    """The effect of an ``ordered=True`` debug call: the calls happen in program order."""


def print(fmt: str, *args: Any, ordered: bool = False, partitioned: bool = False,  # noqa: A001
          **kwargs: Any) -> None:
    """Print ``fmt.format(*args, **kwargs)`` with the run-time values of the arrays
    among the arguments (numpy's print options as they are at the call).  ``ordered``
    keeps the prints of a program in program order."""
    if not isinstance(fmt, str):
        raise TypeError(f"expected str, got {type(fmt).__name__}")
    options = np.get_printoptions()

    def host_print(*call_args: Any, **call_kwargs: Any) -> None:
        with np.printoptions(**options):
            builtins.print(fmt.format(*call_args, **call_kwargs))

    debug_callback(host_print, *args, ordered=ordered, **kwargs)


def callback(callback: Callable[..., Any], *args: Any, ordered: bool = False,
             partitioned: bool = False, **kwargs: Any) -> None:
    """Call ``callback(*args, **kwargs)`` on the host with the run-time values of the
    arrays among the arguments; the result is ignored."""
    if not callable(callback):
        raise TypeError(f"jax.debug.callback expects a callable, got {callback!r}")
    debug_callback(callback, *args, ordered=ordered, **kwargs)
