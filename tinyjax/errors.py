"""Errors raised by tracing, with JAX's names (``jax.errors``)."""
from tinyjax.core import (ConcretizationTypeError, TracerBoolConversionError,  # noqa: F401
                          TracerIntegerConversionError, UnexpectedTracerError)
from tinyjax.numpy._indexing import NonConcreteBooleanIndexError  # noqa: F401,E402

# Report them as tinyjax.errors.X (JAX users know them as jax.errors.X).
for _cls in (ConcretizationTypeError, TracerBoolConversionError, TracerIntegerConversionError,
             UnexpectedTracerError, NonConcreteBooleanIndexError):
    _cls.__module__ = __name__
