"""``jax.profiler``: the annotations code marks itself with, and the profiler entry
points.

tinyjax has no profiler that records traces: the annotations (``TraceAnnotation``,
``StepTraceAnnotation``, ``annotate_function``) are accepted and do nothing, as they do
in JAX while no trace is being recorded; starting a trace or a profiler server, and the
device memory profile, raise NotImplementedError.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Any, Callable, Iterator

__all__ = ["ProfileData", "ProfileEvent", "ProfileOptions", "ProfilePlane",
           "StepTraceAnnotation", "TraceAnnotation", "annotate_function",
           "device_memory_profile", "register_subprocess", "save_device_memory_profile",
           "start_server", "start_trace", "stop_server", "stop_trace", "trace"]

_NO_PROFILER = "tinyjax has no profiler yet"


class TraceAnnotation:
    """Marks a region of a profiled trace (``with TraceAnnotation("name"): ...``)."""

    def __init__(self, name: str, **kwargs: Any):
        self.name, self.kwargs = name, kwargs

    def __enter__(self) -> "TraceAnnotation":
        return self

    def __exit__(self, *exc) -> None:
        return None


class StepTraceAnnotation(TraceAnnotation):
    """Marks one training step of a profiled trace (``step_num=``)."""

    def __init__(self, name: str, **kwargs: Any):
        super().__init__(name, **kwargs)


def annotate_function(func: Callable, name: str | None = None,
                      **decorator_kwargs: Any) -> Callable:
    """``func``, each call inside a ``TraceAnnotation`` named ``name`` (the function's
    name by default)."""
    label = name or getattr(func, "__qualname__", getattr(func, "__name__", "function"))

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with TraceAnnotation(label, **decorator_kwargs):
            return func(*args, **kwargs)
    return wrapper


class ProfileOptions:
    """Options of a profiled trace (accepted; tinyjax records no trace)."""

    def __init__(self):
        self.host_tracer_level = 2
        self.python_tracer_level = 0
        self.enable_hlo_proto = True
        self.start_timestamp_ns = 0
        self.duration_ms = 0
        self.repository_path = ""
        self.advanced_configuration: dict = {}


class ProfileData:
    """A recorded profile (JAX's XSpace reader)."""

    def __init__(self, *args: Any, **kwargs: Any):
        raise NotImplementedError(_NO_PROFILER)

    @classmethod
    def from_file(cls, path: str) -> "ProfileData":
        raise NotImplementedError(_NO_PROFILER)

    @classmethod
    def from_serialized_xspace(cls, data: bytes) -> "ProfileData":
        raise NotImplementedError(_NO_PROFILER)


class ProfilePlane(ProfileData):
    """A plane of a recorded profile."""


class ProfileEvent(ProfileData):
    """An event of a recorded profile."""


def start_trace(log_dir: Any, create_perfetto_link: bool = False,
                create_perfetto_trace: bool = False, profiler_options: Any = None) -> None:
    raise NotImplementedError(_NO_PROFILER)


def stop_trace() -> None:
    raise RuntimeError("No profile started")


@contextmanager
def trace(log_dir: Any, create_perfetto_link: bool = False,
          create_perfetto_trace: bool = False, profiler_options: Any = None
          ) -> Iterator[None]:
    start_trace(log_dir, create_perfetto_link, create_perfetto_trace, profiler_options)
    yield


def start_server(port: int, requires_backend: bool = True):
    raise NotImplementedError(_NO_PROFILER)


def stop_server() -> None:
    raise ValueError("No active profiler server.")


def register_subprocess(pid: int, port: int) -> Callable[[], None]:
    raise NotImplementedError(_NO_PROFILER)


def device_memory_profile(backend: str | None = None) -> bytes:
    raise NotImplementedError(_NO_PROFILER)


def save_device_memory_profile(filename: Any, backend: str | None = None) -> None:
    raise NotImplementedError(_NO_PROFILER)
