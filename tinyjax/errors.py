"""Errors raised by tracing and indexing, with JAX's names (``jax.errors``), and
:func:`warn_user` (warnings attributed to the user's line)."""
import os
import sys
import warnings

__all__ = ["ConcretizationTypeError", "TracerBoolConversionError",
           "TracerIntegerConversionError", "UnexpectedTracerError",
           "NonConcreteBooleanIndexError", "warn_user"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type = UserWarning) -> None:
    """``warnings.warn`` attributed to the innermost frame outside tinyjax (the user's line
    that led to it)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class ConcretizationTypeError(TypeError):
    """A Python control-flow or conversion needed the value of an abstract tracer."""


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool()`` of an abstract tracer, typically a Python ``if`` under ``jit``."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """``int()``/``__index__`` of an abstract tracer."""


class UnexpectedTracerError(Exception):
    """A tracer was used after the transform that created it had finished."""


class NonConcreteBooleanIndexError(IndexError):
    """A boolean mask index whose value is not known while tracing (JAX's
    ``jax.errors.NonConcreteBooleanIndexError``)."""
