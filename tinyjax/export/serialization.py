"""The byte format of a serialized Exported (tinyjax's own; JAX's is a flatbuffer of
StableHLO bytecode, which tinyjax does not produce).

Layout: the magic ``b"tinyjax.export\\0"``, the format version (uint32, little endian),
the length of the header (uint64), the header -- UTF-8 JSON holding the calling
convention, the program (see :mod:`tinyjax.export.jaxpr_codec`), the table of arrays
(dtype, shape, offset, size) and the VJPs -- then the arrays' bytes, each in C order.
Reading checks the magic, the version, every offset and size, and the program's types
(the jaxpr typechecker); anything else raises ValueError.
"""
from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from tinyjax.errors import JaxprTypeError
from tinyjax.export.jaxpr_codec import Decoder, Encoder, Unserializable, dtype_name, dtype_of
from tinyjax.export.pytrees import decode_treedef, encode_treedef
from tinyjax.jaxpr import check_jaxpr

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
    arrays = []
    for name, shape, offset, size in table:
        dtype = dtype_of(name)
        if not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"malformed array shape {shape!r}")
        n = int(np.prod(shape, dtype=np.int64))
        if not (isinstance(offset, int) and isinstance(size, int) and 0 <= offset
                and size == n * dtype.itemsize and offset + size <= len(data)):
            raise ValueError("an array lies outside the data")
        if dtype.itemsize:
            value = np.frombuffer(data[offset:offset + size], dtype).reshape(shape).copy()
        else:  # float0: no bytes
            value = np.zeros(shape, dtype)
        value.flags.writeable = False
        arrays.append(value)
    return arrays


def _fields(doc: dict, dec: Decoder) -> dict:
    program = dec.closed_jaxpr(doc["program"])
    check_jaxpr(program.jaxpr)
    in_avals = tuple(dec.aval(a) for a in doc["in_avals"])
    out_avals = tuple(dec.aval(a) for a in doc["out_avals"])
    if list(in_avals) != list(program.in_avals) or list(out_avals) != list(program.out_avals):
        raise ValueError("the declared argument or result types are not the program's")
    in_tree, out_tree = decode_treedef(doc["in_tree"]), decode_treedef(doc["out_tree"])
    if in_tree.num_leaves != len(in_avals) or out_tree.num_leaves != len(out_avals):
        raise ValueError("the pytrees do not match the numbers of arguments and results")
    return {
        "fun_name": str(doc["fun_name"]), "in_tree": in_tree, "out_tree": out_tree,
        "in_avals": in_avals, "out_avals": out_avals,
        "platforms": tuple(str(p) for p in doc["platforms"]),
        "nr_devices": int(doc["nr_devices"]),
        "disabled_safety_checks": tuple(str(c) for c in doc["disabled_safety_checks"]),
        "calling_convention_version": int(doc["calling_convention_version"]),
        "module_kept_var_idx": tuple(int(i) for i in doc["module_kept_var_idx"]),
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
    except (KeyError, TypeError, IndexError, AttributeError, UnicodeDecodeError,
            json.JSONDecodeError, JaxprTypeError) as e:
        raise ValueError(f"deserialize: malformed serialized Exported: {e!r}") from e
    except ValueError as e:
        raise ValueError(f"deserialize: {e}") from e
