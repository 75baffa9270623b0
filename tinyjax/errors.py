"""Errors raised by tracing, with JAX's names (``jax.errors``)."""
from tinyjax.core import (ConcretizationTypeError, TracerBoolConversionError,  # noqa: F401
                          TracerIntegerConversionError, UnexpectedTracerError)
from tinyjax.numpy._indexing import NonConcreteBooleanIndexError  # noqa: F401,E402
