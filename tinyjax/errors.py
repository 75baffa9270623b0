"""Errors raised by tracing and indexing, with JAX's names and hierarchy (``jax.errors``),
and :func:`warn_user` (warnings attributed to the user's line; not a JAX name, so not
exported)."""
import os
import sys
import warnings

__all__ = ["JAXTypeError", "JAXIndexError", "ConcretizationTypeError",
           "TracerBoolConversionError", "TracerIntegerConversionError",
           "TracerArrayConversionError", "UnexpectedTracerError",
           "NonConcreteBooleanIndexError", "KeyReuseError", "JaxRuntimeError",
           "JaxprTypeError", "InconclusiveDimensionOperation"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type = UserWarning) -> None:
    """``warnings.warn`` attributed to the innermost frame outside tinyjax (the user's line
    that led to it)."""
    frame, level = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


class JAXTypeError(TypeError):
    """The base of the type errors that tracing raises."""


class JAXIndexError(IndexError):
    """The base of the index errors that tracing raises."""


class ConcretizationTypeError(JAXTypeError):
    """A Python control-flow or conversion needed the value of an abstract tracer."""


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool()`` of an abstract tracer, typically a Python ``if`` under ``jit``."""


class TracerIntegerConversionError(JAXTypeError):
    """``__index__`` of an abstract tracer (using it as a Python index)."""


class TracerArrayConversionError(JAXTypeError):
    """``np.asarray`` (``__array__``) of a tracer."""


class UnexpectedTracerError(JAXTypeError):
    """A tracer was used after the transform that created it had finished."""


class NonConcreteBooleanIndexError(JAXIndexError):
    """A boolean mask index whose value is not known while tracing."""


class KeyReuseError(JAXTypeError):
    """A PRNG key was used twice where the key-reuse checker is on."""


class JaxRuntimeError(RuntimeError):
    """An error detected while a compiled program ran (JAX's ``jax.errors.JaxRuntimeError``;
    a failed ``checkify`` check raises checkify's own ``JaxRuntimeError``, a ValueError)."""


class JaxprTypeError(TypeError):
    """A jaxpr failed to type-check."""


class InconclusiveDimensionOperation(Exception):
    """A comparison of symbolic dimensions that cannot be decided."""


class ShardingTypeError(Exception):
    """Operands whose types name layouts (arrays over a mesh's Explicit axes) that an
    operation cannot combine into one layout for its result (JAX's
    ``jax._src.core.ShardingTypeError``)."""
