"""Arrays of extended dtypes: ``jax.experimental.primal_tangent_dtype`` (a dtype whose
values have one numpy dtype and whose tangents another) and ``EArray`` (an array of an
extended dtype around the array of its physical data).

tinyjax's abstract values carry no extended dtypes through the transforms (key arrays
are rebuilt around their data, see :doc:`/random`), so the dtype can be made and inspected
but an array cannot be converted to it: that raises NotImplementedError.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from tinyjax import dtypes
from tinyjax.array import Array

__all__ = ["EArray", "primal_tangent_dtype"]


class primal_tangent_dtype_scalar(dtypes.extended):
    """The scalar type of every primal-tangent dtype."""


def _short_name(dt: Any) -> str:
    if dtypes.is_extended(dt):
        return str(dt)
    return (dt.name.replace("float", "f").replace("uint", "u").replace("int", "i")
            .replace("complex", "c"))


@dataclasses.dataclass(frozen=True)
class PrimalTangentDType(dtypes.ExtendedDType):
    """Values of ``primal_dtype`` whose tangents and cotangents are of ``tangent_dtype``."""
    primal_dtype: Any
    tangent_dtype: Any
    name: str
    type = primal_tangent_dtype_scalar

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def wrap(self, data: Any) -> Any:
        raise NotImplementedError(
            f"arrays of dtype {self.name}: tinyjax's abstract values carry no extended dtypes "
            "through the transforms, so values cannot take a primal-tangent dtype")


def primal_tangent_dtype(primal_dtype: Any, tangent_dtype: Any,
                         name: str | None = None) -> PrimalTangentDType:
    """An extended dtype whose values are of ``primal_dtype`` and whose tangents are of
    ``tangent_dtype`` (e.g. int8 values differentiated in bfloat16); printed as ``name``
    (default ``PrimalTangentDType{i8/bf16}``)."""
    primal, tangent = np.dtype(primal_dtype), np.dtype(tangent_dtype)
    name = name or f"PrimalTangentDType{{{_short_name(primal)}/{_short_name(tangent)}}}"
    return PrimalTangentDType(primal, tangent, name)


class EArray:
    """An array of an extended dtype: its abstract value ``aval`` (shape and dtype) and the
    array of its physical data ``data`` (devices, placement, deletion are the data's)."""

    __slots__ = ("_aval", "_data")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, aval: Any, data: Any):
        self._aval, self._data = aval, data

    aval = property(lambda self: self._aval)
    shape = property(lambda self: self._aval.shape)
    dtype = property(lambda self: self._aval.dtype)
    ndim = property(lambda self: len(self._aval.shape))
    size = property(lambda self: math.prod(self._aval.shape))
    itemsize = property(lambda self: self._aval.dtype.itemsize)
    devices = property(lambda self: self._data.devices)
    sharding = property(lambda self: self._data.sharding)
    committed = property(lambda self: self._data.committed)
    is_fully_addressable = property(lambda self: self._data.is_fully_addressable)
    is_fully_replicated = property(lambda self: self._data.is_fully_replicated)
    delete = property(lambda self: self._data.delete)
    is_deleted = property(lambda self: self._data.is_deleted)
    on_device_size_in_bytes = property(lambda self: self._data.on_device_size_in_bytes)
    unsafe_buffer_pointer = property(lambda self: self._data.unsafe_buffer_pointer)

    def block_until_ready(self) -> "EArray":
        self._data.block_until_ready()
        return self

    def copy_to_host_async(self) -> None:
        self._data.copy_to_host_async()

    def copy(self) -> "EArray":
        return EArray(self._aval, self._data.copy())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        raise NotImplementedError("iteration over an EArray")

    def __repr__(self) -> str:
        return "E" + repr(self._data)


Array.register(EArray)
