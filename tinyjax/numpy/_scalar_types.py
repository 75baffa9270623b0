"""JAX's scalar types: ``jnp.float32`` and friends are dtype specs *and* constructors.

``jnp.float32(1)`` makes a zero-dimensional tinyjax array of dtype float32 (so that
``jnp.float32(1) + jnp.int32(2)`` follows tinyjax's promotion, not numpy's), while
``jnp.float32`` still works wherever a dtype is expected (``np.dtype(jnp.float32)``,
``x.astype(jnp.float32)``, ``jnp.float32 == np.float32``, ``isinstance(v, jnp.float32)``).
"""
from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from tinyjax import dtypes

_asarray = None  # set by tinyjax.numpy once asarray exists (no import cycle)


def set_asarray(fn) -> None:
    """Register the constructor the scalar types call (``jnp.asarray``)."""
    global _asarray
    _asarray = fn


class _ScalarMeta(type):
    """The metaclass of tinyjax's scalar types: a class per dtype."""

    dtype: np.dtype

    @property
    def __numpy_dtype__(cls) -> np.dtype:
        return cls.dtype

    def __hash__(cls) -> int:
        return hash(cls.dtype.type)

    def __eq__(cls, other: Any) -> bool:
        return cls is other or cls.dtype.type == other

    def __ne__(cls, other: Any) -> bool:
        return not cls == other

    def __call__(cls, x: Any) -> Any:
        return _asarray(x, dtype=cls.dtype)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, cls.dtype.type)


def _scalar_type(np_type: type, name: str | None = None) -> _ScalarMeta:
    name = name or np.dtype(np_type).name
    return _ScalarMeta(name, (object,), {
        "dtype": np.dtype(np_type), "__module__": "tinyjax.numpy",
        "__doc__": f"A tinyjax scalar constructor of type {name}: ``{name}(x)`` is "
                   f"``asarray(x, dtype={name})``, a zero-dimensional array for scalars."})


bool_ = _scalar_type(np.bool_, "bool")
int8, int16, int32, int64 = (_scalar_type(t) for t in (np.int8, np.int16, np.int32,
                                                        np.int64))
uint8, uint16, uint32, uint64 = (_scalar_type(t) for t in (np.uint8, np.uint16, np.uint32,
                                                            np.uint64))
bfloat16 = _scalar_type(dtypes.bfloat16, "bfloat16")
float16, float32, float64 = (_scalar_type(t) for t in (np.float16, np.float32, np.float64))
complex64, complex128 = _scalar_type(np.complex64), _scalar_type(np.complex128)

# ml_dtypes' narrow types (names only: tinyjax arrays of them are not supported yet,
# so calling one raises asarray's dtype error)
int2, int4, uint2, uint4 = (_scalar_type(getattr(ml_dtypes, n), n)
                            for n in ("int2", "int4", "uint2", "uint4"))
float8_e3m4, float8_e4m3, float8_e4m3b11fnuz, float8_e4m3fn, float8_e4m3fnuz, \
    float8_e5m2, float8_e5m2fnuz, float8_e8m0fnu, float4_e2m1fn, float6_e2m3fn, \
    float6_e3m2fn = (_scalar_type(getattr(ml_dtypes, n), n) for n in (
        "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn",
        "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu",
        "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn"))
int1 = _scalar_type(ml_dtypes.int1, "int1") if hasattr(ml_dtypes, "int1") else None
uint1 = _scalar_type(ml_dtypes.uint1, "uint1") if hasattr(ml_dtypes, "uint1") else None

# numpy's aliases, as JAX spells them
single, double = float32, float64
csingle, cdouble = complex64, complex128
uint = uint64
float_, int_, complex_ = float64, int64, complex128

__all__ = [
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "bfloat16", "float16", "float32", "float64", "complex64", "complex128", "int2", "int4",
    "uint2", "uint4", "float8_e3m4", "float8_e4m3", "float8_e4m3b11fnuz", "float8_e4m3fn",
    "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz", "float8_e8m0fnu", "float4_e2m1fn",
    "float6_e2m3fn", "float6_e3m2fn", "single", "double", "csingle", "cdouble", "uint",
    "float_", "int_", "complex_"] + (["int1", "uint1"] if int1 is not None else [])
