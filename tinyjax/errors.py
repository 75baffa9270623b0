"""Errors raised by tracing, with JAX's names (``jax.errors``)."""
from tinyjax.core import (ConcretizationTypeError, TracerBoolConversionError,  # noqa: F401
                          TracerIntegerConversionError, UnexpectedTracerError)
