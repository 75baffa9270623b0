"""``jax.debug``: print values, call Python, and stop in a debugger from inside traced
code (under ``jit``, ``vmap``, ``grad``, loops and branches), with the values the
program computes at run time.

All three are host callbacks (:func:`tinyjax.callback.debug_callback`): compiled code
calls back into Python; under ``vmap`` they run once per batch element, under ``grad``
they see primal values.
"""
from __future__ import annotations

import builtins
import copy
import logging
import string
import sys
from typing import Any, Callable

import numpy as np

from tinyjax.callback import debug_callback
from tinyjax.debugger import breakpoint  # noqa: A004
from tinyjax.sharding_display import visualize_array_sharding, visualize_sharding
from tinyjax.spmd.inspect_sharding import inspect_array_sharding

_logger = logging.getLogger(__name__)

__all__ = ["print", "log", "callback", "breakpoint", "DebugEffect", "OrderedDebugEffect",
           "inspect_array_sharding", "visualize_array_sharding", "visualize_sharding"]


class DebugEffect:
    """The effect of ``jax.debug.print``/``callback``: the call happens when the program
    runs, even if nothing uses its result, in no fixed order with the others."""


class OrderedDebugEffect:
    """The effect of an ``ordered=True`` debug call: the calls happen in program order."""


def print(fmt: str | None = None, *args: Any, ordered: bool = False,  # noqa: A001
          partitioned: bool = False, skip_format_check: bool = False,
          **kwargs: Any) -> Callable[..., None] | None:
    """Print ``fmt.format(*args, **kwargs)`` with the run-time values of the arrays
    among the arguments (numpy's print options as they are at the call).  ``ordered``
    keeps the prints of a program in program order.

    As in JAX, options may come first in a call of their own:
    ``jax.debug.print(ordered=True)("x = {x}", x=x)``.  An argument the format string
    does not use is an error (an f-string passed by mistake) unless
    ``skip_format_check``; a format string with no placeholders prints the arguments
    after it, separated by spaces."""
    return _two_call_form("print", fmt, args, kwargs, lambda fmt, *a, **k: _print(
        fmt, a, k, ordered=ordered, skip_format_check=skip_format_check, record=None))


def log(fmt: str | None = None, *args: Any, ordered: bool = False,
        partitioned: bool = False, skip_format_check: bool = False,
        **kwargs: Any) -> Callable[..., None] | None:
    """:func:`print`, but the message goes to the ``logging`` logger ``tinyjax.debug``
    at level INFO, as a record naming the file and line of the call."""
    record = _caller_record(logging.INFO)
    return _two_call_form("log", fmt, args, kwargs, lambda fmt, *a, **k: _print(
        fmt, a, k, ordered=ordered, skip_format_check=skip_format_check, record=record))


def callback(callback: Callable[..., Any] | None = None, *args: Any,
             ordered: bool = False, partitioned: bool = False,
             **kwargs: Any) -> Callable[..., None] | None:
    """Call ``callback(*args, **kwargs)`` on the host with the run-time values of the
    arrays among the arguments; the result is ignored.  Options may come first in a call
    of their own: ``jax.debug.callback(ordered=True)(fn, x)``."""
    def call(fn: Callable[..., Any], *a: Any, **k: Any) -> None:
        if not callable(fn):
            raise TypeError("first argument to jax.debug.callback must be callable, "
                            f"but got an object of type {type(fn)}")
        debug_callback(fn, *a, ordered=ordered, **k)
    return _two_call_form("callback", callback, args, kwargs, call)


def _two_call_form(name: str, first: Any, args: tuple, kwargs: dict,
                   call: Callable[..., None]) -> Callable[..., None] | None:
    """``call(first, *args, **kwargs)`` now, or -- when ``first`` is None (only options
    were given) -- ``call`` itself, to be called with them."""
    if first is not None:
        call(first, *args, **kwargs)
        return None
    if args or kwargs:
        raise TypeError(f"debug_{name} received unexpected arguments in the two-call "
                        f"form: {args=} {kwargs=}")
    return call


class _UnusedArgumentsCheck(string.Formatter):
    """Formats nothing; raises JAX's errors for arguments the format string leaves out."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return ""

    def check_unused_args(self, used_args: Any, args: Any, kwargs: Any) -> None:
        unused = [a for i, a in enumerate(args) if i not in used_args]
        if unused:
            raise ValueError(f"Unused positional arguments to `jax.debug.print`: {unused}")
        unused_names = [k for k in kwargs if k not in used_args]
        if unused_names:
            raise ValueError(
                f"Unused keyword arguments to `jax.debug.print`: {unused_names}. You may "
                "be passing an f-string (i.e, `f\"{x}\"`) into `jax.debug.print` and "
                "instead should pass in a regular string.")


def _print(fmt: str, args: tuple, kwargs: dict, *, ordered: bool, skip_format_check: bool,
           record: logging.LogRecord | None) -> None:
    if not isinstance(fmt, str):
        raise TypeError(f"expected str, got {type(fmt).__name__}")  # string.Formatter's words
    if not skip_format_check:
        _UnusedArgumentsCheck().format(fmt, *args, **kwargs)
    has_placeholders = any(field is not None for _, field, _, _ in string.Formatter().parse(fmt))
    options = np.get_printoptions()

    def host_print(*call_args: Any, **call_kwargs: Any) -> None:
        with np.printoptions(**options):
            if has_placeholders:
                message = fmt.format(*call_args, **call_kwargs)
            else:
                message = " ".join((fmt, *(str(a) for a in call_args)))
        if record is None:
            builtins.print(message)
        else:
            emitted = copy.copy(record)
            emitted.msg = message
            _logger.handle(emitted)

    debug_callback(host_print, *args, ordered=ordered, **kwargs)


def _caller_record(level: int) -> logging.LogRecord:
    """A log record naming the user's frame (the caller of ``jax.debug.log``)."""
    frame = sys._getframe(2)
    return _logger.makeRecord(_logger.name, level, frame.f_code.co_filename, frame.f_lineno,
                              "", (), None)
