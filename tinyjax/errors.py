"""Errors raised by tracing and indexing, with JAX's names (``jax.errors``)."""

__all__ = ["ConcretizationTypeError", "TracerBoolConversionError",
           "TracerIntegerConversionError", "UnexpectedTracerError",
           "NonConcreteBooleanIndexError"]


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
