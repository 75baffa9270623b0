"""tinyjax.config and tinyjax.dtypes: flags, canonicalization, categories,
names, float0, weak-type promotion, and lattice properties."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import dtypes
from tinyjax.config import config
from tinyjax.core import ShapedArray

REPO = Path(__file__).parents[2]

BF16 = np.dtype(dtypes.bfloat16)
REAL = [np.dtype(t) for t in (np.bool_, np.uint8, np.uint16, np.uint32, np.uint64,
                               np.int8, np.int16, np.int32, np.int64)] + [
    BF16, np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)]
COMPLEX = [np.dtype(np.complex64), np.dtype(np.complex128)]
ALL = REAL + COMPLEX
WEAK_TYPES = [int, float, complex]
NODES = ALL + WEAK_TYPES


class Duck:
    """Stands in for a tinyjax Array / Tracer: just ``dtype`` and ``weak_type``."""

    def __init__(self, dt, weak=False):
        self.dtype = np.dtype(dt)
        self.weak_type = weak

    def __repr__(self):
        return f"Duck({self.dtype}, weak={self.weak_type})"


@pytest.fixture
def x32():
    with config.enable_x64(False):
        yield


# ---------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------

def test_flags_from_the_command_line(monkeypatch):
    monkeypatch.setattr("sys.argv", ["prog", "--jax_numpy_rank_promotion=raise",
                                     "--jax_debug_nans", "--not_a_jax_flag=1", "-v"])
    try:
        config.parse_flags_with_absl()
        assert config.jax_numpy_rank_promotion == "raise" and config.jax_debug_nans is True
    finally:
        config.reset("jax_numpy_rank_promotion")
        config.reset("jax_debug_nans")


def test_config_defaults():
    if "JAX_ENABLE_X64" not in os.environ and "TINYJAX_ENABLE_X64" not in os.environ:
        assert config.jax_enable_x64 is False
    assert config.jax_default_matmul_precision is None
    assert config.jax_numpy_rank_promotion == "allow"
    assert config.jax_numpy_dtype_promotion == "standard"
    assert config.jax_debug_nans is False
    assert {"jax_enable_x64", "jax_default_matmul_precision", "jax_numpy_rank_promotion",
            "jax_debug_nans", "jax_debug_infs", "jax_disable_jit", "jax_log_compiles",
            "jax_default_device", "jax_enable_checks", "jax_no_tracing",
            "jax_numpy_dtype_promotion", "jax_check_tracer_leaks",
            "jax_transfer_guard", "jax_num_cpu_devices", "jax_compilation_cache_dir",
            "jax_compilation_cache_max_size", "tinyjax_executables_per_function",
            "tinyjax_executables_total"} <= set(config.values())
    assert config.jax_numpy_dtype_promotion == "standard"
    assert config.jax_default_prng_impl == "threefry2x32"


def test_config_update_and_restore():
    old = config.jax_debug_nans
    try:
        config.update("jax_debug_nans", True)
        assert config.jax_debug_nans is True
        config.update("jax_numpy_rank_promotion", "raise")
        assert config.jax_numpy_rank_promotion == "raise"
        config.update("jax_default_matmul_precision", "highest")
        assert config.jax_default_matmul_precision == "highest"
    finally:
        config.update("jax_debug_nans", old)
        config.update("jax_numpy_rank_promotion", "allow")
        config.update("jax_default_matmul_precision", None)
    assert config.jax_numpy_rank_promotion == "allow"


def test_config_unknown_flag_names_the_flag():
    with pytest.raises(AttributeError, match="jax_no_such_flag"):
        config.jax_no_such_flag
    with pytest.raises(AttributeError, match="jax_no_such_flag"):
        config.update("jax_no_such_flag", 1)
    with pytest.raises(AttributeError, match="jax_no_such_flag"):
        config.jax_no_such_flag = 1
    with pytest.raises(AttributeError, match="jax_no_such_flag"):
        config.read("jax_no_such_flag")


def test_config_validates_values():
    with pytest.raises(ValueError):
        config.update("jax_numpy_rank_promotion", "sometimes")
    with pytest.raises(TypeError):
        config.update("jax_enable_x64", 2.5)
    with pytest.raises(ValueError):
        config.update("jax_default_matmul_precision", "very-high")
    assert config.jax_numpy_rank_promotion == "allow"


def test_config_attribute_assignment_is_validated():
    with config.enable_x64(False):
        config.jax_enable_x64 = True          # routed through update()
        assert config.jax_enable_x64 is True
    assert config.jax_enable_x64 is not None


def test_enable_x64_context_restores_even_on_error():
    before = config.jax_enable_x64
    with config.enable_x64(not before):
        assert config.jax_enable_x64 is (not before)
        with config.enable_x64(before):
            assert config.jax_enable_x64 is before
        assert config.jax_enable_x64 is (not before)
    assert config.jax_enable_x64 is before
    with pytest.raises(RuntimeError):
        with config.override(jax_enable_x64=not before, jax_debug_nans=True):
            raise RuntimeError
    assert config.jax_enable_x64 is before
    assert config.jax_debug_nans is False


@pytest.mark.parametrize("env,expected", [
    ({"JAX_ENABLE_X64": "1"}, True),
    ({"JAX_ENABLE_X64": "true"}, True),
    ({"JAX_ENABLE_X64": "0"}, False),
    ({"TINYJAX_ENABLE_X64": "yes"}, True),
    ({"TINYJAX_ENABLE_X64": "0", "JAX_ENABLE_X64": "1"}, False),   # tinyjax's wins
    ({}, False),
])
def test_enable_x64_from_environment(env, expected):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("JAX_ENABLE_X64", "TINYJAX_ENABLE_X64")}
    code = ("from tinyjax.config import config; from tinyjax import dtypes; "
            "print(config.jax_enable_x64, dtypes.dtype(1.0))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(expected), "float64" if expected else "float32"]


# ---------------------------------------------------------------------------
# canonicalize_dtype, defaults
# ---------------------------------------------------------------------------

WIDE = {"int64": "int32", "uint64": "uint32", "float64": "float32", "complex128": "complex64"}


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_canonicalize_dtype(dt):
    with config.enable_x64(False):
        assert dtypes.canonicalize_dtype(dt) == np.dtype(WIDE.get(dt.name, dt))
        assert dtypes.canonicalize_dtype(dt.name) == np.dtype(WIDE.get(dt.name, dt))
        assert dtypes.canonicalize_dtype(dt.type) == np.dtype(WIDE.get(dt.name, dt))
    with config.enable_x64(True):
        assert dtypes.canonicalize_dtype(dt) == dt
        assert dtypes.canonicalize_dtype(dt.type) == dt
    assert isinstance(dtypes.canonicalize_dtype(dt), np.dtype)


def test_canonicalize_python_types_and_cache_follows_flag():
    for _ in range(2):  # second round hits the cache
        with config.enable_x64(False):
            assert dtypes.canonicalize_dtype(int) == np.int32
            assert dtypes.canonicalize_dtype(float) == np.float32
            assert dtypes.canonicalize_dtype(complex) == np.complex64
            assert dtypes.canonicalize_dtype(bool) == np.bool_
            assert dtypes.canonicalize_dtype("float64") == np.float32
        with config.enable_x64(True):
            assert dtypes.canonicalize_dtype(int) == np.int64
            assert dtypes.canonicalize_dtype(float) == np.float64
            assert dtypes.canonicalize_dtype("float64") == np.float64
    assert dtypes.canonicalize_dtype("bfloat16") == BF16
    assert dtypes.canonicalize_dtype(dtypes.float0) == dtypes.float0
    with pytest.raises(TypeError):
        dtypes.canonicalize_dtype("not-a-dtype")


def test_defaults(x32):
    assert dtypes.default_int_dtype() == np.int32
    assert dtypes.default_uint_dtype() == np.uint32
    assert dtypes.default_float_dtype() == np.float32
    assert dtypes.default_complex_dtype() == np.complex64
    with config.enable_x64(True):
        assert dtypes.default_int_dtype() == np.int64
        assert dtypes.default_uint_dtype() == np.uint64
        assert dtypes.default_float_dtype() == np.float64
        assert dtypes.default_complex_dtype() == np.complex128


# ---------------------------------------------------------------------------
# dtype(), is_weakly_typed
# ---------------------------------------------------------------------------

def test_dtype_of_values(x32):
    assert dtypes.dtype(1) == np.int32
    assert dtypes.dtype(1.0) == np.float32
    assert dtypes.dtype(True) == np.bool_
    assert dtypes.dtype(1j) == np.complex64
    assert dtypes.dtype(int) == np.int32
    assert dtypes.dtype(float) == np.float32
    assert dtypes.dtype(np.float64) == np.float32
    assert dtypes.dtype("int64") == np.int32
    assert dtypes.dtype(np.zeros(3)) == np.float32          # float64 ndarray
    assert dtypes.dtype(np.int64(3)) == np.int32
    assert dtypes.dtype(np.float64(3.0)) == np.float32      # not a weak Python float
    assert dtypes.dtype(np.zeros(3, BF16)) == BF16
    assert dtypes.dtype([1, 2, 3]) == np.int32
    assert dtypes.dtype([1.0, 2]) == np.float32
    assert dtypes.dtype(np.zeros(2, dtypes.float0)) == dtypes.float0
    # Arrays/tracers keep their dtype, as jax.dtypes.dtype does for jax Arrays.
    assert dtypes.dtype(Duck(np.float16, weak=True)) == np.float16


def test_dtype_of_values_x64(x64):
    assert dtypes.dtype(1) == np.int64
    assert dtypes.dtype(1.0) == np.float64
    assert dtypes.dtype(1j) == np.complex128
    assert dtypes.dtype(np.zeros(3)) == np.float64


def test_dtype_rejects_invalid():
    for bad in (np.array(["a"]), "U3", np.dtype(object), np.array([None])):
        with pytest.raises(TypeError):
            dtypes.dtype(bad)
    with pytest.raises(ValueError):
        dtypes.dtype(None)


def test_is_weakly_typed():
    assert dtypes.is_weakly_typed(1)
    assert dtypes.is_weakly_typed(1.0)
    assert dtypes.is_weakly_typed(1j)
    assert not dtypes.is_weakly_typed(True)
    assert not dtypes.is_weakly_typed(np.float64(1.0))
    assert not dtypes.is_weakly_typed(np.int32(1))
    assert not dtypes.is_weakly_typed(np.zeros(3))
    assert dtypes.is_weakly_typed(Duck(np.float32, weak=True))
    assert not dtypes.is_weakly_typed(Duck(np.float32, weak=False))


# ---------------------------------------------------------------------------
# categories
# ---------------------------------------------------------------------------

CATEGORIES = [np.generic, np.number, np.inexact, np.floating, np.complexfloating,
              np.integer, np.signedinteger, np.unsignedinteger, np.bool_]


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_issubdtype_categories(dt):
    for cat in CATEGORIES:
        if dt == BF16:
            expected = cat in (np.generic, np.number, np.inexact, np.floating)
        else:
            expected = np.issubdtype(dt, cat)
        assert dtypes.issubdtype(dt, cat) is expected, (dt, cat)
        assert dtypes.issubdtype(dt.type, cat) is expected
        assert dtypes.issubdtype(dt.name, cat) is expected
    assert dtypes.issubdtype(dt, dt)
    for other in ALL:
        assert dtypes.issubdtype(dt, other) == (dt == other)


def test_issubdtype_misc():
    assert dtypes.issubdtype(dtypes.bfloat16, np.floating)
    assert dtypes.issubdtype("bfloat16", dtypes.bfloat16)
    assert not dtypes.issubdtype(np.float32, dtypes.bfloat16)
    assert not dtypes.issubdtype(dtypes.bfloat16, np.float16)
    assert not dtypes.issubdtype(np.bool_, np.integer)
    assert dtypes.issubdtype(float, np.floating)
    assert dtypes.issubdtype(int, np.signedinteger)
    assert not dtypes.issubdtype(dtypes.float0, np.number)


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_is_predicates(dt):
    name = dt.name
    assert dtypes.is_float(dt) == (name in ("bfloat16", "float16", "float32", "float64"))
    assert dtypes.is_int(dt) == (dt.kind in "iu")
    assert dtypes.is_signed(dt) == (dt.kind == "i")
    assert dtypes.is_unsigned(dt) == (dt.kind == "u")
    assert dtypes.is_bool(dt) == (name == "bool")
    assert dtypes.is_complex(dt) == (dt.kind == "c")
    assert dtypes.is_inexact(dt) == (dtypes.is_float(dt) or dtypes.is_complex(dt))
    # dtype-likes and objects with a dtype are accepted too
    assert dtypes.is_float(name) == dtypes.is_float(dt)
    assert dtypes.is_int(dt.type) == dtypes.is_int(dt)
    assert dtypes.is_unsigned(np.zeros(1, dt)) == dtypes.is_unsigned(dt)
    assert dtypes.is_bool(Duck(dt)) == dtypes.is_bool(dt)


def test_is_predicates_float0():
    for pred in (dtypes.is_float, dtypes.is_int, dtypes.is_bool, dtypes.is_complex,
                 dtypes.is_unsigned):
        assert not pred(dtypes.float0)


# ---------------------------------------------------------------------------
# finfo / iinfo / names / float0
# ---------------------------------------------------------------------------

def test_finfo():
    bf = dtypes.finfo(dtypes.bfloat16)
    assert bf.bits == 16 and bf.eps == 2.0 ** -7 and bf.nmant == 7
    assert float(bf.max) == float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    assert dtypes.finfo("bfloat16").eps == bf.eps
    assert dtypes.finfo(np.float16).eps == np.finfo(np.float16).eps
    assert dtypes.finfo(np.float32).max == np.finfo(np.float32).max
    assert dtypes.finfo("float64").bits == 64
    assert dtypes.finfo(np.zeros(2, np.float32)).bits == 32
    assert dtypes.finfo(np.complex64).bits == 32
    with pytest.raises(ValueError):
        dtypes.finfo(np.int32)


def test_iinfo():
    for dt in REAL:
        if dt.kind in "iu":
            assert dtypes.iinfo(dt).min == np.iinfo(dt).min
            assert dtypes.iinfo(dt).max == np.iinfo(dt).max
            assert dtypes.iinfo(dt.name).bits == 8 * dt.itemsize
    assert dtypes.iinfo(np.int8).min == -128
    assert dtypes.iinfo("uint16").max == 65535
    with pytest.raises(ValueError):
        dtypes.iinfo(np.float32)


SHORT = {"bool": "bool", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
         "uint8": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64",
         "float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64",
         "complex64": "c64", "complex128": "c128"}


@pytest.mark.parametrize("dt", ALL, ids=str)
def test_short_dtype_name(dt):
    assert dtypes.short_dtype_name(dt) == SHORT[dt.name]
    assert dtypes.short_dtype_name(dt.type) == SHORT[dt.name]
    assert dtypes.short_dtype_name(dt.name) == SHORT[dt.name]


def test_float0():
    f0 = dtypes.float0
    assert f0 == np.dtype([("float0", np.void, 0)])
    assert f0.itemsize == 0
    assert dtypes.short_dtype_name(f0) == "float0"
    z = np.zeros((2, 3), f0)
    assert z.shape == (2, 3) and z.dtype == f0 and z.nbytes == 0
    assert dtypes.dtype(z) == f0
    assert dtypes.canonicalize_dtype(f0) == f0
    # Identical dtypes need no lattice; anything else is not a promotion.
    assert dtypes.result_type(f0, f0) == f0
    assert dtypes.result_type(z, z, z) == f0
    assert dtypes.promote_types(f0, f0) == f0
    with pytest.raises(dtypes.TypePromotionError):
        dtypes.result_type(z, np.zeros(3, np.float32))
    with pytest.raises(ValueError):  # TypePromotionError is a ValueError
        dtypes.promote_types(f0, np.int32)


# ---------------------------------------------------------------------------
# result_type with mixes of scalars and arrays
# ---------------------------------------------------------------------------

def rt(*args):
    return dtypes.result_type(*args, return_weak_type_flag=True)


def test_result_type_mixes_x32(x32):
    i8, b, i32, f16, f32, u8 = (np.zeros(2, t) for t in
                                (np.int8, np.bool_, np.int32, np.float16, np.float32, np.uint8))
    assert rt(i8, 1) == (np.int8, False)
    assert rt(b, 1) == (np.int32, True)
    assert rt(b, 1.0) == (np.float32, True)
    assert rt(i32, 2.0) == (np.float32, True)
    assert rt(f16, 2.0) == (np.float16, False)
    assert rt(np.zeros(2, BF16), 2) == (BF16, False)
    assert rt(1, 2) == (np.int32, True)
    assert rt(1, 2.0) == (np.float32, True)
    assert rt(True, False) == (np.bool_, False)
    assert rt(True, 1) == (np.int32, True)
    assert rt(i8, True) == (np.int8, False)
    assert rt(f32, 1j) == (np.complex64, False)
    assert rt(i32, 1j) == (np.complex64, True)
    assert rt(1.0, 1j) == (np.complex64, True)
    assert rt(u8, i8) == (np.int16, False)
    assert rt(u8, i8, 1.0) == (np.float32, True)
    assert rt(u8, i8, f16) == (np.float16, False)
    assert rt(1, 2, 3.0) == (np.float32, True)
    assert rt(np.float64(1.0), 1) == (np.float32, False)     # numpy scalar: strong
    assert rt(None) == (np.float32, False)
    assert rt(i8, None) == (np.float32, False)
    assert rt(np.float32) == (np.float32, False)
    assert rt(int) == (np.int32, True)
    assert rt(np.float32, int) == (np.float32, False)
    assert rt(2.0) == (np.float32, True)
    assert dtypes.result_type(i8, 1) == np.int8
    with pytest.raises(ValueError):
        dtypes.result_type()


def test_result_type_weak_arrays(x32):
    wf32, wi32 = Duck(np.float32, True), Duck(np.int32, True)
    assert rt(wf32, Duck(np.float16)) == (np.float16, False)
    assert rt(wi32, np.zeros(2, np.int8)) == (np.int8, False)
    assert rt(wi32, np.zeros(2, np.uint8)) == (np.uint8, False)
    assert rt(wi32, wf32) == (np.float32, True)
    assert rt(wf32, 1) == (np.float32, True)
    assert rt(wi32, 1) == (np.int32, True)
    assert rt(wi32, Duck(np.int32, False)) == (np.int32, False)
    assert rt(wf32, Duck(np.bool_)) == (np.float32, True)
    assert rt(Duck(np.bool_, True), 1) == (np.int32, True)
    assert rt(Duck(np.bool_, True)) == (np.bool_, False)        # bool is never weak
    # A weak non-default dtype: result_type reports the kind's default dtype,
    # lattice_result_type keeps the joined dtype (what jnp binary ops use).
    wf16 = Duck(np.float16, True)
    assert rt(wf16, wf16) == (np.float32, True)
    assert dtypes.lattice_result_type(wf16, wf16) == (np.float16, True)
    # All inputs weak: JAX joins the strong counterparts (f16 v f32 here).
    assert dtypes.lattice_result_type(wf16, 1.0) == (np.float32, True)
    assert dtypes.lattice_result_type(wf16, np.zeros(1, np.float16)) == (np.float16, False)
    assert rt(Duck(BF16, True)) == (np.float32, True)


def test_result_type_x64(x64):
    assert rt(np.zeros(2, np.int64), 1) == (np.int64, False)
    assert rt(np.zeros(2, np.float64), 1.0) == (np.float64, False)
    assert rt(np.zeros(2, np.bool_), 1) == (np.int64, True)
    assert rt(np.zeros(2, np.int8), 1.0) == (np.float64, True)
    assert rt(np.zeros(2, BF16), 1.0) == (BF16, False)
    assert rt(1, 2.0) == (np.float64, True)
    assert rt(np.zeros(2, np.uint32), np.zeros(2, np.int32)) == (np.int64, False)
    assert rt(np.zeros(2, np.uint64), np.zeros(2, np.int8)) == (np.float64, True)
    assert rt(np.zeros(2, np.uint64), np.zeros(2, np.int8), np.float16(0)) == (np.float16, False)


def test_result_type_x32_canonicalizes_numpy_inputs(x32):
    # numpy inputs are canonicalized before the join (uint64 -> uint32), so
    # with x64 off uint64 x int8 is int32, while promote_types (never
    # canonicalized) gives float64, as in JAX.
    assert rt(np.zeros(2, np.uint64), np.zeros(2, np.int8)) == (np.int32, False)
    assert dtypes.promote_types(np.uint64, np.int8) == np.float64
    # Objects carrying their own dtype are taken as they are.
    assert rt(Duck(np.uint64), Duck(np.int8)) == (np.float32, True)
    assert rt(Duck(np.float64), 1.0) == (np.float32, False)


# ---------------------------------------------------------------------------
# lattice properties (hypothesis + exhaustive)
# ---------------------------------------------------------------------------

nodes = st.sampled_from(NODES)
dtype_st = st.sampled_from(ALL)
arg_st = st.one_of(
    st.builds(lambda d, w: Duck(d, w), dtype_st, st.booleans()),
    st.builds(lambda d: np.zeros(2, d), dtype_st),
    st.sampled_from([0, 1.5, 2j, True]),
)


def same_node(a, b) -> bool:
    if isinstance(a, type) or isinstance(b, type):
        return a is b
    return a == b


@pytest.mark.parametrize("flag", [False, True])
@settings(max_examples=300, deadline=None)
@given(a=nodes, b=nodes)
def test_promote_types_commutative(flag, a, b):
    with config.enable_x64(flag):
        assert dtypes.promote_types(a, b) == dtypes.promote_types(b, a)
        assert same_node(dtypes.lattice_join(a, b), dtypes.lattice_join(b, a))
        assert dtypes.promote_types(a, b) == np.dtype(dtypes.lattice_join(a, b))


@pytest.mark.parametrize("flag", [False, True])
@settings(max_examples=300, deadline=None)
@given(a=nodes, b=nodes, c=nodes)
def test_join_associative_idempotent_absorbing(flag, a, b, c):
    with config.enable_x64(flag):
        j = dtypes.lattice_join
        assert same_node(j(j(a, b), c), j(a, j(b, c)))
        assert same_node(j(a, b, c), j(j(a, b), c))
        assert same_node(j(a, a), a)
        assert same_node(j(a, j(a, b)), j(a, b))
        assert same_node(j(np.bool_, a), a)                 # bool is the bottom


@pytest.mark.parametrize("flag", [False, True])
def test_join_associative_exhaustive(flag):
    with config.enable_x64(flag):
        j = dtypes.lattice_join
        for a, b, c in itertools.product(NODES, repeat=3):
            assert same_node(j(j(a, b), c), j(a, j(b, c))), (a, b, c)


@pytest.mark.parametrize("flag", [False, True])
@settings(max_examples=300, deadline=None)
@given(args=st.lists(arg_st, min_size=1, max_size=4), data=st.data())
def test_result_type_symmetric_and_idempotent(flag, args, data):
    with config.enable_x64(flag):
        expected = rt(*args)
        perm = data.draw(st.permutations(args))
        assert rt(*perm) == expected
        assert rt(*args, args[0]) == expected            # duplicates change nothing
        assert dtypes.result_type(*args) == expected[0]
        dt, weak = dtypes.lattice_result_type(*args)
        # The two functions differ only in which dtype a weak result gets.
        assert weak == expected[1]
        if not weak:
            assert dt == expected[0]
        else:  # result_type gives a weak result the default dtype of its kind
            assert rt(Duck(dt, True)) == expected
        assert dt == dtypes.canonicalize_dtype(dt)


@pytest.mark.parametrize("flag", [False, True])
@settings(max_examples=300, deadline=None)
@given(ds=st.lists(dtype_st, min_size=2, max_size=4))
def test_result_type_of_strong_values_is_canonical_join(flag, ds):
    with config.enable_x64(flag):
        canon = [dtypes.canonicalize_dtype(d) for d in ds]
        join = dtypes.lattice_join(*canon)
        dt, weak = rt(*(np.zeros(1, d) for d in ds))
        assert weak == (join is float or join is complex or join is int)
        assert dt == dtypes.canonicalize_dtype(join)


@pytest.mark.parametrize("flag", [False, True])
def test_binary_table_matches_general_path(flag):
    """The precomputed two-argument table agrees with the n-ary code path."""
    with config.enable_x64(flag):
        for (da, wa), (db, wb) in itertools.product(
                [(d, w) for d in ALL for w in (False, True)], repeat=2):
            a, b = Duck(da, wa), Duck(db, wb)
            assert rt(a, b) == rt(a, b, a) == rt(b, a, b), (a, b)
            assert (dtypes.lattice_result_type(a, b)
                    == dtypes.lattice_result_type(a, b, b)), (a, b)


def test_extended_dtypes_of_keys():
    import tinyjax as jax
    key = jax.random.key(0)
    assert dtypes.issubdtype(key.dtype, dtypes.prng_key)
    assert dtypes.issubdtype(key.dtype, dtypes.extended)
    assert not dtypes.issubdtype(key.dtype, np.floating)
    assert not dtypes.issubdtype(np.float32, dtypes.extended)
    assert dtypes.canonicalize_dtype(key.dtype, allow_extended_dtype=True) is key.dtype
    with pytest.raises(ValueError):
        dtypes.canonicalize_dtype(key.dtype)


def test_itemsize_bits_and_scalar_type_of():
    assert dtypes.itemsize_bits(np.float32) == 32 and dtypes.itemsize_bits(bool) == 8
    assert dtypes.itemsize_bits(dtypes.bfloat16) == 16
    assert dtypes.scalar_type_of(1.0) is float and dtypes.scalar_type_of(np.int8(1)) is int
    assert dtypes.scalar_type_of(True) is bool
    assert dtypes.scalar_type_of(np.ones(2, np.complex64)) is complex
    assert dtypes.scalar_type_of(dtypes.bfloat16(1)) is float


def test_tangent_avals_are_float0_unless_inexact():
    assert jax.typeof(jnp.ones((2, 3))).to_tangent_aval() == ShapedArray((2, 3), np.float32)
    assert jax.typeof(jnp.ones(2, jnp.complex64)).to_ct_aval().dtype == np.complex64
    for x in (jnp.arange(3), jnp.array([True]), jax.random.key(0)):
        t = jax.typeof(x).to_tangent_aval()
        assert t.dtype == dtypes.float0 and t.shape == x.shape
    assert jax.typeof(1.0).to_tangent_aval().weak_type
