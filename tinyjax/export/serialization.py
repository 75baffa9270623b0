"""The byte format of a serialized Exported (tinyjax's own; JAX's is a flatbuffer of
StableHLO bytecode, which tinyjax does not produce).

Layout: the magic ``b"tinyjax.export\\0"``, the format version (uint32, little endian),
the length of the header (uint64), the header -- UTF-8 JSON holding the calling
convention, the program (see :mod:`tinyjax.export.jaxpr_codec`), the table of arrays
(dtype, shape, offset, size) and the VJPs -- then the arrays' bytes, each in C order, one
after another to the end.  Reading checks the magic, the version, every offset and size,
the type of every field, and the program's types (the jaxpr typechecker, nested bodies
included); any malformation raises ValueError.  An equation's parameters are checked only
as far as its primitive's type rule reads them.
"""
from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from tinyjax.export.jaxpr_codec import (Decoder, Encoder, Unserializable, dtype_name,
                                        dtype_of, shape_of)
from tinyjax.export.pytrees import decode_treedef, encode_treedef
from tinyjax.jaxpr import Jaxpr, check_jaxpr, sub_jaxprs

__all__ = ["FORMAT_VERSION", "serialize", "deserialize_fields"]

MAGIC = b"tinyjax.export\0"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<IQ")  # version, header length


def _document(exported: Any, vjp_order: int, enc: Encoder) -> dict:
    try:
        program = enc.closed_jaxpr(exported.jaxpr)
    except Unserializable as e:
        raise ValueError(f"Cannot serialize the exported function '{exported.fun_name}': "
                         f"its program holds {e}") from None
    vjp = None
    if vjp_order > 0:
        if not exported.has_vjp():
            raise ValueError(f"Cannot serialize the exported function '{exported.fun_name}' "
                             f"with vjp_order {vjp_order}: it has no VJP of that order (it "
                             "was read back from a serialization with fewer)")
        vjp = _document(exported.vjp(), vjp_order - 1, enc)
    return {
        "fun_name": exported.fun_name,
        "in_tree": encode_treedef(exported.in_tree),
        "out_tree": encode_treedef(exported.out_tree),
        "in_avals": [enc.aval(a) for a in exported.in_avals],
        "out_avals": [enc.aval(a) for a in exported.out_avals],
        "platforms": list(exported.platforms),
        "nr_devices": exported.nr_devices,
        "disabled_safety_checks": [str(c) for c in exported.disabled_safety_checks],
        "calling_convention_version": exported.calling_convention_version,
        "module_kept_var_idx": list(exported.module_kept_var_idx),
        "program": program,
        "vjp": vjp,
    }


def serialize(exported: Any, vjp_order: int = 0) -> bytearray:
    """The bytes of ``exported`` and of its VJPs up to order ``vjp_order``."""
    if not isinstance(vjp_order, int) or vjp_order < 0:
        raise ValueError(f"serialize: vjp_order must be a non-negative int, got {vjp_order!r}")
    enc = Encoder()
    doc = _document(exported, vjp_order, enc)
    table, offset = [], 0
    for a in enc.arrays:
        size = a.size * a.dtype.itemsize
        table.append([dtype_name(a.dtype), list(a.shape), offset, size])
        offset += size
    header = json.dumps({"exported": doc, "arrays": table}, separators=(",", ":"),
                        allow_nan=False).encode("utf-8")
    out = bytearray(MAGIC)
    out += _PREFIX.pack(FORMAT_VERSION, len(header))
    out += header
    for a in enc.arrays:
        out += np.ascontiguousarray(a).tobytes()
    return out


def _read_arrays(table: Any, data: memoryview) -> list[np.ndarray]:
    """The arrays of ``table``, which lie one after another and fill ``data``."""
    arrays, end = [], 0
    for name, shape, offset, size in _typed(table, list, "table of arrays"):
        dtype, shape = dtype_of(name), shape_of(shape)
        if offset != end or size != math.prod(shape) * dtype.itemsize \
                or end + size > len(data):
            raise ValueError("an array lies outside the data (the serialization is truncated "
                             "or its table of arrays is corrupt)")
        end += size
        if dtype.itemsize:
            value = np.frombuffer(data[offset:end], dtype).reshape(shape).copy()
        else:  # float0: no bytes
            value = np.zeros(shape, dtype)
        value.flags.writeable = False
        arrays.append(value)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes follow the last array")
    return arrays


def _typed(value: Any, kind: type, what: str) -> Any:
    """``value`` if its type is exactly ``kind`` (a bool is no int here), else ValueError."""
    if type(value) is not kind:
        raise ValueError(f"malformed {what}: {value!r}")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    return tuple(_typed(v, str, what) for v in _typed(value, list, what))


def _check_program(jaxpr: Jaxpr) -> None:
    """Typecheck ``jaxpr`` and every jaxpr nested in its equations (loop bodies,
    branches, ...): a body's types are only declared by its own binders."""
    check_jaxpr(jaxpr)
    for eqn in jaxpr.eqns:
        for sub in sub_jaxprs(eqn.params):
            _check_program(sub)


def _fields(doc: dict, dec: Decoder) -> dict:
    program = dec.closed_jaxpr(doc["program"])
    _check_program(program.jaxpr)
    in_avals = tuple(dec.aval(a) for a in doc["in_avals"])
    out_avals = tuple(dec.aval(a) for a in doc["out_avals"])
    if list(in_avals) != list(program.in_avals) or list(out_avals) != list(program.out_avals):
        raise ValueError("the declared argument or result types are not the program's")
    in_tree, out_tree = decode_treedef(doc["in_tree"]), decode_treedef(doc["out_tree"])
    if in_tree.num_leaves != len(in_avals) or out_tree.num_leaves != len(out_avals):
        raise ValueError("the pytrees do not match the numbers of arguments and results")
    kept = tuple(_typed(i, int, "kept argument index")
                 for i in _typed(doc["module_kept_var_idx"], list, "kept argument indices"))
    if list(kept) != sorted(set(kept)) or not set(kept) <= set(range(len(in_avals))):
        raise ValueError(f"malformed kept argument indices {list(kept)} of "
                         f"{len(in_avals)} arguments")
    nr_devices = _typed(doc["nr_devices"], int, "number of devices")
    if nr_devices < 1:
        raise ValueError(f"malformed number of devices {nr_devices}")
    return {
        "fun_name": _typed(doc["fun_name"], str, "function name"),
        "in_tree": in_tree, "out_tree": out_tree, "in_avals": in_avals, "out_avals": out_avals,
        "platforms": _strings(doc["platforms"], "platforms"),
        "nr_devices": nr_devices,
        "disabled_safety_checks": _strings(doc["disabled_safety_checks"],
                                           "disabled safety checks"),
        "calling_convention_version": _typed(doc["calling_convention_version"], int,
                                             "calling convention version"),
        "module_kept_var_idx": kept,
        "jaxpr": program,
        "vjp": None if doc["vjp"] is None else _fields(doc["vjp"], dec),
    }


def deserialize_fields(blob: bytes | bytearray) -> dict:
    """The fields of the Exported ``blob`` holds (its VJP's under ``"vjp"``, or None)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"deserialize: expected a bytearray, got {type(blob).__name__}")
    data = memoryview(bytes(blob))
    start = len(MAGIC) + _PREFIX.size
    if len(data) < start or data[:len(MAGIC)] != MAGIC:
        raise ValueError("deserialize: not a serialized tinyjax Exported (the bytes do not "
                         "start with the tinyjax export header)")
    version, header_len = _PREFIX.unpack(data[len(MAGIC):start])
    if version != FORMAT_VERSION:
        raise ValueError(f"deserialize: the Exported was serialized in tinyjax's export format "
                         f"version {version}; this tinyjax reads version {FORMAT_VERSION}")
    if start + header_len > len(data):
        raise ValueError("deserialize: the serialized Exported is truncated")
    try:
        header = json.loads(bytes(data[start:start + header_len]).decode("utf-8"))
        arrays = _read_arrays(header["arrays"], data[start + header_len:])
        return _fields(header["exported"], Decoder(arrays))
    except ValueError as e:
        raise ValueError(f"deserialize: {e}") from e
    except Exception as e:  # whatever else malformed data provokes: a missing key, a
        # nesting too deep, a primitive's type rule given bad parameters
        raise ValueError(f"deserialize: malformed serialized Exported: {e!r}") from e
