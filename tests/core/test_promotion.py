"""Type promotion checked against JAX's own answers.

The reference file (tests/data/jax_promotion.json, JAX's own answers) holds ``jnp.promote_types`` for every pair of the 13 real dtypes and the dtype
of ``array(dtype) + python_scalar`` with x64 off.

Note on the reference: its "note" says the pairs use x64-enabled semantics,
but the data is what JAX returns with x64 *disabled*: ``promote_types`` is
never canonicalized (int64, float64 appear), yet JAX's lattice has one
x64-dependent edge, u32 -> i64 (x64 on) vs u32 -> i32 (x64 off), and the file
has int32 for uint32 x int8/int16/int32. So the file is checked exactly with
x64 off (the default), and with x64 on every pair except those six, which
must be int64 as in JAX's documented promotion table.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinyjax import dtypes
from tinyjax.config import config

REFERENCE = Path(__file__).parents[1] / "data" / "jax_promotion.json"
REF = json.loads(REFERENCE.read_text())
PAIRS: dict[str, str] = REF["promote_types"]
SCALARS: dict[str, str] = REF["array_plus_python_scalar_x64_off"]

NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
         "int64", "bfloat16", "float16", "float32", "float64"]

# JAX's lattice edge u32 -> i64 exists only with x64 on (docs table: u4 x i1/i2/i4 = i8).
X64_ONLY = {(a, b): "int64" for a in ["uint32"] for b in ["int8", "int16", "int32"]}
X64_ONLY.update({(b, a): v for (a, b), v in list(X64_ONLY.items())})

PY_SCALARS = {"int": 1, "float": 1.0, "bool": True}
PY_TYPES = {"int": int, "float": float, "bool": bool}


def np_dtype(name: str) -> np.dtype:
    return np.dtype(dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def split(key: str) -> tuple[str, str]:
    a, b = key.split(",")
    return a, b


class Duck:
    """Stands in for a tinyjax Array / Tracer: just ``dtype`` and ``weak_type``."""

    def __init__(self, dt, weak=False):
        self.dtype = np.dtype(dt)
        self.weak_type = weak


def test_reference_covers_every_pair():
    assert set(PAIRS) == {f"{a},{b}" for a in NAMES for b in NAMES}
    assert set(SCALARS) == {f"{a},{s}" for a in NAMES for s in PY_SCALARS}
    assert REF["jax_version"]


# ---------------------------------------------------------------------------
# promote_types: every pair
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("key", sorted(PAIRS))
def test_promote_types_x64_off_matches_reference(key):
    a, b = split(key)
    expected = np.dtype(np_dtype(PAIRS[key]))
    with config.enable_x64(False):
        assert dtypes.promote_types(a, b) == expected
        assert dtypes.promote_types(np_dtype(a), np_dtype(b)) == expected
        assert dtypes.promote_types(np_dtype(a).type, np_dtype(b).type) == expected
        assert np.dtype(dtypes.lattice_join(a, b)) == expected


@pytest.mark.parametrize("key", sorted(PAIRS))
def test_promote_types_x64_on(key):
    a, b = split(key)
    expected = np_dtype(X64_ONLY.get((a, b), PAIRS[key]))
    with config.enable_x64(True):
        assert dtypes.promote_types(a, b) == expected
        assert dtypes.promote_types(np_dtype(a), np_dtype(b)) == expected


def test_x64_dependent_pairs_are_exactly_the_u32_i32_edge():
    differ = set()
    for key in PAIRS:
        a, b = split(key)
        with config.enable_x64(False):
            off = dtypes.promote_types(a, b)
        with config.enable_x64(True):
            on = dtypes.promote_types(a, b)
        if off != on:
            differ.add((a, b))
    assert differ == set(X64_ONLY)


@pytest.mark.parametrize("key", sorted(PAIRS))
@pytest.mark.parametrize("x64", [False, True])
def test_result_type_of_strong_pairs(key, x64):
    """result_type of two strongly-typed arrays: canonicalized lattice join."""
    a, b = split(key)
    with config.enable_x64(x64):
        ca, cb = dtypes.canonicalize_dtype(np_dtype(a)), dtypes.canonicalize_dtype(np_dtype(b))
        # numpy inputs are canonicalized first (as jax.dtypes.dtype does) ...
        expected = dtypes.canonicalize_dtype(dtypes.promote_types(ca, cb))
        x, y = np.zeros(2, np_dtype(a)), np.zeros(2, np_dtype(b))
        dt, weak = dtypes.result_type(x, y, return_weak_type_flag=True)
        assert dt == expected
        if x64:
            # ... which is a no-op with x64 on, so this is the reference itself.
            assert dt == np_dtype(X64_ONLY.get((a, b), PAIRS[key]))
        # Strong inputs give a weak result only where the join is the weak
        # float node: (u)int64 x uint64 -> f*.
        join = dtypes.lattice_join(ca, cb)
        assert weak == (join is float)
        assert dtypes.result_type(np_dtype(a), np_dtype(b)) == dt
        assert dtypes.result_type(y, x) == dt


# ---------------------------------------------------------------------------
# array + Python scalar: every case
# ---------------------------------------------------------------------------

_RANK = {"b": 0, "i": 1, "u": 1, "f": 2, "V": 2}   # V: bfloat16
_SCALAR_RANK = {"bool": 0, "int": 1, "float": 2}


def expected_weak(array_name: str, scalar: str) -> bool:
    # JAX: the result is weak when the join lands on the scalar's weak node,
    # i.e. the Python scalar's category (bool < int < float) outranks the
    # array's. Python bools are never weak.
    return _SCALAR_RANK[scalar] > _RANK[np_dtype(array_name).kind]


@pytest.mark.parametrize("key", sorted(SCALARS))
def test_array_plus_python_scalar(key):
    a, s = split(key)
    expected = np_dtype(SCALARS[key])
    weak = expected_weak(a, s)
    value = PY_SCALARS[s]
    with config.enable_x64(False):
        # The weak flag agrees with "result differs from the array's own dtype".
        assert weak == (expected != dtypes.canonicalize_dtype(np_dtype(a)))
        candidates = {
            "ndarray": np.zeros((2, 3), np_dtype(a)),
            "numpy scalar": np_dtype(a).type(0),
            "dtype": np_dtype(a),
            "dtype name": a,
            "array-like": Duck(np_dtype(a), weak=False),
            "canonical array-like": Duck(dtypes.canonicalize_dtype(np_dtype(a)), weak=False),
        }
        for what, arr in candidates.items():
            for args in ((arr, value), (value, arr)):
                got = dtypes.result_type(*args, return_weak_type_flag=True)
                assert got == (expected, weak), (what, args, got)
                assert dtypes.result_type(*args) == expected
                assert dtypes.lattice_result_type(*args) == (expected, weak), what
        # A Python scalar *type* behaves like a value of it.
        assert dtypes.result_type(np_dtype(a), PY_TYPES[s],
                                  return_weak_type_flag=True) == (expected, weak)
        # promote_types(dtype, int|float) is the uncanonicalized join.
        if s != "bool":
            assert dtypes.canonicalize_dtype(
                dtypes.promote_types(np_dtype(a), PY_TYPES[s])) == expected
