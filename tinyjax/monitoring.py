"""``jax.monitoring``: events and durations reported to registered listeners.

tinyjax reports, as JAX does, ``/jax/core/compile/jaxpr_trace_duration`` (tracing a
function for ``jit``) and ``/jax/core/compile/backend_compile_duration`` (compiling it),
with the keyword ``fun_name``.
"""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["record_event", "record_event_duration_secs", "record_event_time_span",
           "record_scalar", "register_event_listener",
           "register_event_duration_secs_listener", "register_event_time_span_listener",
           "register_scalar_listener", "unregister_event_listener",
           "unregister_event_duration_listener", "unregister_event_time_span_listener",
           "unregister_scalar_listener", "clear_event_listeners"]

_event: list[Callable[..., None]] = []
_duration: list[Callable[..., None]] = []
_time_span: list[Callable[..., None]] = []
_scalar: list[Callable[..., None]] = []


def record_event(event: str, **kwargs: Any) -> None:
    """Report that ``event`` happened: ``listener(event, **kwargs)``."""
    for listener in list(_event):
        listener(event, **kwargs)


def record_event_duration_secs(event: str, duration: float, **kwargs: Any) -> None:
    """Report how long ``event`` took: ``listener(event, duration, **kwargs)``."""
    for listener in list(_duration):
        listener(event, duration, **kwargs)


def record_event_time_span(event: str, start_time: float, end_time: float,
                           **kwargs: Any) -> None:
    """Report when ``event`` started and ended:
    ``listener(event, start_time, end_time, **kwargs)``."""
    for listener in list(_time_span):
        listener(event, start_time, end_time, **kwargs)


def record_scalar(event: str, value: float | int, **kwargs: Any) -> None:
    """Report a value: ``listener(event, value, **kwargs)``."""
    for listener in list(_scalar):
        listener(event, value, **kwargs)


def register_event_listener(callback: Callable[..., None]) -> None:
    _event.append(callback)


def register_event_duration_secs_listener(callback: Callable[..., None]) -> None:
    _duration.append(callback)


def register_event_time_span_listener(callback: Callable[..., None]) -> None:
    _time_span.append(callback)


def register_scalar_listener(callback: Callable[..., None]) -> None:
    _scalar.append(callback)


def _unregister(listeners: list, callback: Callable[..., None]) -> None:
    if callback not in listeners:
        raise AssertionError(f"{callback} is not a registered listener")
    listeners.remove(callback)


def unregister_event_listener(callback: Callable[..., None]) -> None:
    _unregister(_event, callback)


def unregister_event_duration_listener(callback: Callable[..., None]) -> None:
    _unregister(_duration, callback)


def unregister_event_time_span_listener(callback: Callable[..., None]) -> None:
    _unregister(_time_span, callback)


def unregister_scalar_listener(callback: Callable[..., None]) -> None:
    _unregister(_scalar, callback)


def clear_event_listeners() -> None:
    """Unregister every listener."""
    for listeners in (_event, _duration, _time_span, _scalar):
        listeners.clear()
