"""Dtypes and JAX's type-promotion lattice (``jax.dtypes`` equivalent).

Promotion follows JAX's documented lattice, with weak types at the special
nodes ``i*``, ``f*``, ``c*`` (Python ``int``/``float``/``complex`` and
weakly-typed arrays)::

    b1 -> i*
    i* -> u8, i8
    u8 -> u16, i16      u16 -> u32, i32     u32 -> u64, i64 (x64) / i32 (x32)
    u64 -> f*
    i8 -> i16 -> i32 -> i64 -> f*
    f* -> bf16, f16, c*
    bf16 -> f32         f16 -> f32          f32 -> f64, c64     f64 -> c128
    c* -> c64 -> c128

The only x64-dependent edge is JAX's: with ``jax_enable_x64`` off,
``u32`` sits below ``i32`` instead of ``i64`` so that no 64-bit type is formed
from 32-bit inputs (``promote_types(uint32, int32)`` is int32 with x64 off and
int64 with x64 on, exactly as ``jnp.promote_types`` does).

Public entry points:

* ``promote_types(a, b)``: the lattice join, not canonicalized (like
  ``jnp.promote_types``): Python ``int``/``float``/``complex`` *types* are
  weak; a weak result is reported as ``np.dtype(int|float|complex)``.
* ``result_type(*args, return_weak_type_flag=False)``: JAX's argument
  promotion over values (Python scalars, numpy arrays/scalars, dtype-likes,
  or objects with ``dtype`` and ``weak_type``), canonicalized for the x64
  flag. A weak result gets the default dtype of its kind.
* ``lattice_result_type(*args) -> (dtype, weak)``: like ``result_type`` but a
  weak result keeps the joined dtype (what JAX's ``promote_dtypes`` uses
  for ``jnp`` binary ops); the two differ only for weak non-default dtypes
  (e.g. two weak float16 values: float16 here, float32 from result_type).

Complex dtypes take part in the lattice; tinyjax's array layer rejects
them, this module does not.
"""
from __future__ import annotations

import functools
from typing import Any

import ml_dtypes
import numpy as np

from tinyjax.config import config

__all__ = [
    "TypePromotionError",
    "bool_", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
    "uint64", "bfloat16", "float16", "float32", "float64", "complex64",
    "complex128", "float0", "extended", "prng_key", "itemsize_bits", "scalar_type_of",
    "ExtendedDType",
    "canonicalize_dtype", "promote_types", "result_type", "lattice_result_type",
    "lattice_join",
    "dtype", "is_weakly_typed", "issubdtype",
    "is_float", "is_int", "is_unsigned", "is_signed", "is_bool", "is_complex",
    "is_inexact",
    "default_float_dtype", "default_int_dtype", "default_uint_dtype",
    "default_complex_dtype",
    "finfo", "iinfo", "short_dtype_name",
]


class TypePromotionError(ValueError):
    """The inputs have no common type on the promotion lattice."""


# ---------------------------------------------------------------------------
# dtype objects
# ---------------------------------------------------------------------------

bool_ = np.bool_
int8, int16, int32, int64 = np.int8, np.int16, np.int32, np.int64
uint8, uint16, uint32, uint64 = np.uint8, np.uint16, np.uint32, np.uint64
bfloat16 = ml_dtypes.bfloat16
float16, float32, float64 = np.float16, np.float32, np.float64
complex64, complex128 = np.complex64, np.complex128

def is_extended(dt: Any) -> bool:
    """Whether ``dt`` is an extended dtype: an object whose ``type`` is a subclass of
    :class:`extended` (a key array's dtype)."""
    t = getattr(dt, "type", None)
    return isinstance(t, type) and issubclass(t, extended) and not isinstance(dt, type)


# Trivial vector-space dtype: tangent type of integer and boolean primals.
float0: np.dtype = np.dtype([("float0", np.void, 0)])

_b1 = np.dtype(np.bool_)
_u1, _u2, _u4, _u8 = (np.dtype(t) for t in (np.uint8, np.uint16, np.uint32, np.uint64))
_i1, _i2, _i4, _i8 = (np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64))
_bf = np.dtype(bfloat16)
_f2, _f4, _f8 = (np.dtype(t) for t in (np.float16, np.float32, np.float64))
_c8, _c16 = np.dtype(np.complex64), np.dtype(np.complex128)

_BOOL_DTYPES = (_b1,)
_UNSIGNED_DTYPES = (_u1, _u2, _u4, _u8)
_SIGNED_DTYPES = (_i1, _i2, _i4, _i8)
_INT_DTYPES = _UNSIGNED_DTYPES + _SIGNED_DTYPES
_FLOAT_DTYPES = (_bf, _f2, _f4, _f8)
_COMPLEX_DTYPES = (_c8, _c16)
# Every dtype that takes part in promotion.
_LATTICE_DTYPES = _BOOL_DTYPES + _INT_DTYPES + _FLOAT_DTYPES + _COMPLEX_DTYPES
# Every dtype a tinyjax value may have.
_VALID_DTYPES = frozenset(_LATTICE_DTYPES + (float0,))

_TO_32BIT = {_i8: _i4, _u8: _u4, _f8: _f4, _c16: _c8}

# Default (uncanonicalized) dtypes of Python scalar types, as in JAX.
python_scalar_dtypes: dict[type, np.dtype] = {
    bool: _b1, int: _i8, float: _f8, complex: _c16,
}

# ---------------------------------------------------------------------------
# canonicalization and defaults
# ---------------------------------------------------------------------------

# _CANON[x64]: lattice dtype -> canonical dtype (x64 is a bool, used as index).
_CANON = (
    {dt: _TO_32BIT.get(dt, dt) for dt in _LATTICE_DTYPES},
    {dt: dt for dt in _LATTICE_DTYPES},
)
_CANON_CACHE: tuple[dict, dict] = ({}, {})

_DEFAULT_INT = (_i4, _i8)
_DEFAULT_UINT = (_u4, _u8)
_DEFAULT_FLOAT = (_f4, _f8)
_DEFAULT_COMPLEX = (_c8, _c16)


def default_int_dtype() -> np.dtype:
    return _DEFAULT_INT[config.jax_enable_x64]


def python_scalar_array(x: Any, dt: Any) -> np.ndarray:
    """The 0-d numpy value of the Python scalar ``x`` in dtype ``dt``, as JAX makes it.

    A Python int becomes the default integer type first: one outside its range raises
    JAX's OverflowError (whatever ``dt`` is); an integer ``dt`` then wraps, as JAX's
    conversion of that int32 value does.
    """
    if type(x) is int or (isinstance(x, int) and not isinstance(x, bool)):
        default = default_int_dtype()
        info = np.iinfo(default)
        if not info.min <= x <= info.max:
            raise OverflowError(f"Python int {x} too large to convert to {default.name}")
        value = np.asarray(x, default)
        return value if value.dtype == dt else value.astype(dt)
    return np.asarray(x, dt)


def default_uint_dtype() -> np.dtype:
    return _DEFAULT_UINT[config.jax_enable_x64]


def default_float_dtype() -> np.dtype:
    return _DEFAULT_FLOAT[config.jax_enable_x64]


def default_complex_dtype() -> np.dtype:
    return _DEFAULT_COMPLEX[config.jax_enable_x64]


def _canonicalize_uncached(dt: Any, x64: bool) -> np.dtype:
    try:
        d = np.dtype(dt)
    except TypeError as e:
        raise TypeError(f"dtype {dt!r} not understood") from e
    return d if x64 else _TO_32BIT.get(d, d)


def canonicalize_dtype(dt: Any, allow_extended_dtype: bool = False) -> np.dtype:
    """The dtype tinyjax uses for ``dt`` under the current x64 flag.

    With ``jax_enable_x64`` off, int64/uint64/float64/complex128 become their
    32-bit counterparts. Accepts anything ``np.dtype`` accepts, including the
    Python types ``bool``/``int``/``float``/``complex``. Cached per flag value.
    An extended dtype (a key dtype) is returned as it is with
    ``allow_extended_dtype``, else it is a ValueError.
    """
    if is_extended(dt):
        if not allow_extended_dtype:
            raise ValueError(f"Internal: canonicalize_dtype called on extended dtype {dt} "
                             "with allow_extended_dtype=False")
        return dt
    x64 = config.jax_enable_x64
    cache = _CANON_CACHE[x64]
    try:
        return cache[dt]
    except KeyError:
        pass
    except TypeError:  # unhashable dtype spec
        return _canonicalize_uncached(dt, x64)
    out = cache[dt] = _canonicalize_uncached(dt, x64)
    return out


# ---------------------------------------------------------------------------
# the lattice
# ---------------------------------------------------------------------------
# Nodes are strings: the weak nodes "i*", "f*", "c*" and one label per dtype.

_LABEL_OF: dict[np.dtype, str] = {
    _b1: "b1", _u1: "u8", _u2: "u16", _u4: "u32", _u8: "u64",
    _i1: "i8", _i2: "i16", _i4: "i32", _i8: "i64",
    _bf: "bf16", _f2: "f16", _f4: "f32", _f8: "f64", _c8: "c64", _c16: "c128",
}
_DTYPE_OF: dict[str, np.dtype] = {v: k for k, v in _LABEL_OF.items()}
_WEAK_NODES = ("i*", "f*", "c*")
_WEAK_NODE_OF_KIND = {"i": "i*", "u": "i*", "f": "f*", "c": "c*"}
_PY_TYPE_OF_WEAK_NODE = {"i*": int, "f*": float, "c*": complex}


def _lattice_edges(x64: bool) -> dict[str, tuple[str, ...]]:
    return {
        "b1": ("i*",),
        "i*": ("u8", "i8"),
        "u8": ("u16", "i16"),
        "u16": ("u32", "i32"),
        "u32": ("u64", "i64" if x64 else "i32"),
        "u64": ("f*",),
        "i8": ("i16",),
        "i16": ("i32",),
        "i32": ("i64",),
        "i64": ("f*",),
        "f*": ("bf16", "f16", "c*"),
        "bf16": ("f32",),
        "f16": ("f32",),
        "f32": ("f64", "c64"),
        "f64": ("c128",),
        "c*": ("c64",),
        "c64": ("c128",),
        "c128": (),
    }


def _upper_bounds(edges: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    ub: dict[str, frozenset[str]] = {}

    def visit(n: str, stack: tuple[str, ...] = ()) -> frozenset[str]:
        if n in stack:
            raise AssertionError(f"cycle in the promotion lattice at {n}")
        if n not in ub:
            out = {n}
            for m in edges[n]:
                out |= visit(m, stack + (n,))
            ub[n] = frozenset(out)
        return ub[n]

    for n in edges:
        visit(n)
    return ub


def _join_table(x64: bool) -> dict[tuple[str, str], str]:
    """Least upper bound of every pair of nodes; checks the lattice property."""
    ub = _upper_bounds(_lattice_edges(x64))
    table = {}
    for a in ub:
        for b in ub:
            common = ub[a] & ub[b]
            least = [c for c in common if common <= ub[c]]
            if len(least) != 1:
                raise AssertionError(f"no unique join for {a}, {b}: {least}")
            table[a, b] = least[0]
    return table


_JOIN = (_join_table(False), _join_table(True))


def _node(dt: np.dtype, weak: bool) -> str | None:
    """The lattice node of a value of dtype ``dt``; None if ``dt`` is not in it."""
    label = _LABEL_OF.get(dt)
    if label is None or not weak or dt == _b1:
        return label
    return "f*" if dt == _bf else _WEAK_NODE_OF_KIND[dt.kind]


def _native(dt: np.dtype) -> np.dtype:
    return dt.newbyteorder("=") if dt.byteorder not in "=|" else dt


def _join_nodes(nodes: list[str], x64: bool) -> str:
    join = _JOIN[x64]
    out = nodes[0]
    for n in nodes[1:]:
        out = join[out, n]
    return out


def _lattice_join(dws: list[tuple[np.dtype, bool]], x64: bool) -> tuple[np.dtype, bool]:
    """JAX's ``lattice_result_type`` on (dtype, weak) pairs, uncanonicalized."""
    if len(dws) == 1:
        dt, weak = dws[0]
        return dt, bool(weak) and dt != _b1
    dts = [_native(d) for d, _ in dws]
    all_weak = all(w for _, w in dws)
    first = dts[0]
    if not all_weak and all(d == first for d in dts[1:]):
        return first, False          # trivial promotion (lets float0 etc. through)
    if all_weak:
        # Join the strong counterparts and re-apply weakness at the end.
        nodes = [_LABEL_OF.get(d) for d in dts]
    else:
        nodes = [_node(d, w) for d, (_, w) in zip(dts, dws)]
    if None in nodes:
        bad = next(d for d, n in zip(dts, nodes) if n is None)
        raise TypePromotionError(
            f"dtype {bad} is not a valid dtype for tinyjax type promotion "
            f"(inputs: {tuple(str(d) for d in dts)})")
    joined = _join_nodes(nodes, x64)
    if joined in _WEAK_NODES:
        return _canonicalize_uncached(_PY_TYPE_OF_WEAK_NODE[joined], x64), True
    out = _DTYPE_OF[joined]
    return out, all_weak and out != _b1


def _kind_default(dt: np.dtype, x64: bool) -> np.dtype:
    if dt == _bf:
        return _DEFAULT_FLOAT[x64]
    kind = dt.kind
    if kind == "i":
        return _DEFAULT_INT[x64]
    if kind == "u":
        return _DEFAULT_UINT[x64]
    if kind == "f":
        return _DEFAULT_FLOAT[x64]
    if kind == "c":
        return _DEFAULT_COMPLEX[x64]
    return dt


def _canon(dt: np.dtype, x64: bool) -> np.dtype:
    out = _CANON[x64].get(dt)
    return _canonicalize_uncached(dt, x64) if out is None else out


def _finish_result_type(dt: np.dtype, weak: bool, x64: bool) -> tuple[np.dtype, bool]:
    if weak:
        return _kind_default(dt, x64), True
    return _canon(dt, x64), False


def _finish_lattice(dt: np.dtype, weak: bool, x64: bool) -> tuple[np.dtype, bool]:
    return _canon(dt, x64), weak


# Precomputed two-argument tables, keyed (dtype_a, weak_a, dtype_b, weak_b);
# [x64] selects the table for the flag value.
def _binary_tables(finish) -> tuple[dict, dict]:
    tables = []
    for x64 in (False, True):
        t = {}
        for da in _LATTICE_DTYPES:
            for wa in (False, True):
                for db in _LATTICE_DTYPES:
                    for wb in (False, True):
                        dt, w = _lattice_join([(da, wa), (db, wb)], x64)
                        t[da, wa, db, wb] = finish(dt, w, x64)
        tables.append(t)
    return tables[0], tables[1]


def _unary_tables(finish) -> tuple[dict, dict]:
    return tuple(
        {(d, w): finish(*_lattice_join([(d, w)], x64), x64)
         for d in _LATTICE_DTYPES for w in (False, True)}
        for x64 in (False, True))


_RT2 = _binary_tables(_finish_result_type)
_LRT2 = _binary_tables(_finish_lattice)
_RT1 = _unary_tables(_finish_result_type)
_LRT1 = _unary_tables(_finish_lattice)

# promote_types: node x node -> np.dtype, per flag value.
_WEAK_NODE_RESULT = {"i*": np.dtype(int), "f*": np.dtype(float), "c*": np.dtype(complex)}
_PROMOTE = tuple(
    {(a, b): _WEAK_NODE_RESULT[j] if j in _WEAK_NODE_RESULT else _DTYPE_OF[j]
     for (a, b), j in _JOIN[x64].items()}
    for x64 in (False, True))
_PROMOTE_CACHE: tuple[dict, dict] = ({}, {})


# ---------------------------------------------------------------------------
# promote_types / result_type
# ---------------------------------------------------------------------------

def _promote_node(x: Any) -> tuple[str | None, np.dtype | None]:
    if x is int:
        return "i*", None
    if x is float:
        return "f*", None
    if x is complex:
        return "c*", None
    d = _native(np.dtype(x))
    return _LABEL_OF.get(d), d


def promote_types(a: Any, b: Any) -> np.dtype:
    """``jnp.promote_types``: the join of two dtypes on JAX's lattice.

    Not canonicalized (int64 stays int64 with x64 off). The Python types
    ``int``, ``float``, ``complex`` are weak: ``promote_types('uint8', int)``
    is uint8. A weak result is ``np.dtype(int|float|complex)`` (64-bit).
    """
    x64 = config.jax_enable_x64
    if config.jax_numpy_dtype_promotion == "strict":
        _check_strict((np.dtype(a) if a not in (int, float, complex) else a,
                       np.dtype(b) if b not in (int, float, complex) else b), x64)
    # Keyed with the argument types so that e.g. ``float`` (weak) and
    # ``np.dtype('float64')`` (strong), which compare equal, never share an entry.
    key = (type(a), a, type(b), b)
    cache = _PROMOTE_CACHE[x64]
    try:
        return cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable spec
        return _promote_types_uncached(a, b, x64)
    out = cache[key] = _promote_types_uncached(a, b, x64)
    return out


def _promote_types_uncached(a: Any, b: Any, x64: bool) -> np.dtype:
    (na, da), (nb, db) = _promote_node(a), _promote_node(b)
    if na is None or nb is None:
        if da is not None and db is not None and da == db:
            return da
        raise TypePromotionError(
            f"no type promotion between {a!r} and {b!r}: only bool, integer, "
            "floating and complex dtypes take part in promotion")
    return _PROMOTE[x64][na, nb]


def lattice_join(*types: Any) -> np.dtype | type:
    """Least upper bound of ``types`` on the lattice of the current x64 flag.

    ``types`` are dtype-likes (strong) or the Python types ``int``, ``float``,
    ``complex`` (the weak nodes ``i*``, ``f*``, ``c*``); a weak result is
    returned as that Python type, a strong one as an np.dtype. Not
    canonicalized. ``promote_types(a, b) == np.dtype(lattice_join(a, b))``.
    """
    if not types:
        raise ValueError("lattice_join needs at least one type")
    labels = []
    for t in types:
        label, _ = _promote_node(t)
        if label is None:
            raise TypePromotionError(f"{t!r} is not a node of the promotion lattice")
        labels.append(label)
    j = _join_nodes(labels, config.jax_enable_x64)
    return _PY_TYPE_OF_WEAK_NODE[j] if j in _PY_TYPE_OF_WEAK_NODE else _DTYPE_OF[j]


# Python scalar *values*: type -> (dtype, weak), per flag value.
_PY_SCALAR_DW = (
    {bool: (_b1, False), int: (_i4, True), float: (_f4, True), complex: (_c8, True)},
    {bool: (_b1, False), int: (_i8, True), float: (_f8, True), complex: (_c16, True)},
)


_NP_DTYPE_CLASSES = frozenset(type(d) for d in _LATTICE_DTYPES)


def _dtype_and_weak(x: Any, x64: bool) -> tuple[np.dtype, bool]:
    """(dtype, weak_type) of a result_type argument, as JAX's lattice sees it."""
    t = type(x)
    r = _PY_SCALAR_DW[x64].get(t)
    if r is not None:                          # Python scalar value
        return r
    if t in _NP_DTYPE_CLASSES:                 # an np.dtype (fast path)
        c = _CANON[x64].get(x)
        if c is not None:
            return c, False
    w = getattr(x, "weak_type", None)
    if w is not None:                          # tinyjax Array / Tracer / ShapedArray
        return x.dtype, w
    if t is np.ndarray or isinstance(x, np.generic):
        d = x.dtype
        c = _CANON[x64].get(d)
        return (_canonicalize_uncached(d, x64) if c is None else c), False
    return _dtype_and_weak_slow(x, x64)


def _dtype_and_weak_slow(x: Any, x64: bool) -> tuple[np.dtype, bool]:
    if x is None:
        return _DEFAULT_FLOAT[x64], False
    if isinstance(x, type):
        if x is int or x is float or x is complex:   # weak Python scalar types
            return _PY_SCALAR_DW[x64][x]
        return canonicalize_dtype(x), False
    if isinstance(x, bool):
        return _b1, False
    if isinstance(x, (int, float, complex)):           # subclasses of Python scalars
        for base in (int, float, complex):
            if isinstance(x, base):
                return _PY_SCALAR_DW[x64][base]
    aval = getattr(x, "aval", None)
    if aval is not None and hasattr(aval, "weak_type"):
        return aval.dtype, bool(aval.weak_type)
    dt_attr = getattr(x, "dtype", None)
    if isinstance(dt_attr, np.dtype):
        return canonicalize_dtype(dt_attr), False
    if isinstance(x, (str, np.dtype)):
        return canonicalize_dtype(x), False
    try:
        return canonicalize_dtype(np.dtype(x)), False
    except TypeError:
        pass
    raise TypeError(f"Cannot determine the dtype of {x!r}")


# Results for three or more arguments, keyed by the flattened (dtype, weak) list.
_RTN_CACHE: tuple[dict, dict] = ({}, {})
_LRTN_CACHE: tuple[dict, dict] = ({}, {})
_NARY_CACHE_SIZE = 4096


def _nary(args, x64: bool, finish, cache: dict) -> tuple[np.dtype, bool]:
    dws = [_dtype_and_weak(x, x64) for x in args]
    key = tuple(v for dw in dws for v in dw)
    r = cache.get(key)
    if r is None:
        r = finish(*_lattice_join(dws, x64), x64)
        if len(cache) >= _NARY_CACHE_SIZE:
            cache.clear()
        cache[key] = r
    return r


def _quick_dtype_and_weak(x: Any, scalars: dict, x64: bool) -> tuple[np.dtype, bool]:
    """``_dtype_and_weak`` with the common cases first: Python scalars and objects
    with ``weak_type`` (Arrays, tracers)."""
    dw = scalars.get(type(x))
    if dw is not None:
        return dw
    weak = getattr(x, "weak_type", None)
    return (x.dtype, weak) if weak is not None else _dtype_and_weak(x, x64)


def _promote(args: tuple, x64: bool, finish, one: dict, two: dict, many: dict
             ) -> tuple[np.dtype, bool]:
    """The join of ``args``, finished by ``finish``; one- and two-argument calls are
    table lookups (the eager hot path)."""
    n = len(args)
    if n == 2:
        scalars = _PY_SCALAR_DW[x64]
        da, wa = _quick_dtype_and_weak(args[0], scalars, x64)
        db, wb = _quick_dtype_and_weak(args[1], scalars, x64)
        r = two.get((da, wa, db, wb))
        return r if r is not None else finish(*_lattice_join([(da, wa), (db, wb)], x64), x64)
    if n == 1:
        dw = _dtype_and_weak(args[0], x64)
        r = one.get(dw)
        return r if r is not None else finish(*_lattice_join([dw], x64), x64)
    if n == 0:
        raise ValueError("at least one array or dtype is required")
    return _nary(args, x64, finish, many)


def result_type(*args: Any, return_weak_type_flag: bool = False):
    """JAX's argument dtype promotion (``jax.dtypes.result_type``).

    ``args`` may be dtype-likes (Python ``int``/``float``/``complex`` types are
    weak), Python scalars (``int``/``float``/``complex`` weak, ``bool``
    strong), numpy arrays and scalars (strong), ``None`` (default float) or
    objects with ``dtype`` and ``weak_type`` attributes. The result is
    canonicalized for the x64 flag; it is weak when the join lands on a weak
    node (``i*``/``f*``/``c*``) or every input was weak, and then it is the
    default dtype of its kind. Returns ``dtype``, or ``(dtype, weak)`` with
    ``return_weak_type_flag=True``.
    """
    x64 = config.jax_enable_x64
    if config.jax_numpy_dtype_promotion == "strict":
        _check_strict(args, x64)
    try:
        r = _promote(args, x64, _finish_result_type, _RT1[x64], _RT2[x64], _RTN_CACHE[x64])
    except (TypeError, ValueError):
        r = _extended_result(args)
        if r is None:
            raise
    return r if return_weak_type_flag else r[0]


def _extended_result(args: tuple) -> tuple[Any, bool] | None:
    """(dtype, weak) of ``args`` of which some have an extended dtype (key arrays, or the
    dtype itself): that dtype where all have it, as JAX's (it promotes with nothing else);
    JAX's ValueError otherwise.  None where none has one."""
    found = [a if isinstance(a, ExtendedDType) else getattr(a, "dtype", None) for a in args]
    extended = [d for d in found if is_extended(d)]
    if not extended:
        return None
    if len(extended) < len(args) or any(d != extended[0] for d in extended):
        raise ValueError(f"dtype={extended[0]} is not a valid dtype for JAX type promotion.")
    return extended[0], False


def lattice_result_type(*args: Any) -> tuple[np.dtype, bool]:
    """(dtype, weak) of combining ``args``, as JAX's ``promote_dtypes`` does.

    Same as ``result_type(..., return_weak_type_flag=True)`` except that a
    weak result keeps its joined (canonicalized) dtype instead of the default
    dtype of its kind.
    """
    x64 = config.jax_enable_x64
    if config.jax_numpy_dtype_promotion == "strict":
        _check_strict(args, x64)
    try:
        return _promote(args, x64, _finish_lattice, _LRT1[x64], _LRT2[x64], _LRTN_CACHE[x64])
    except (TypeError, ValueError):
        r = _extended_result(args)
        if r is None:
            raise
        return r


# Strict promotion (jax_numpy_dtype_promotion='strict'): JAX's strict lattice has edges
# only from the weak nodes -- a weak int to every integer and floating type, a weak float
# to every floating and complex type, a weak complex to the complex types -- so values
# combine only with values of their own dtype or with weak values that reach it.  Where
# such a join exists it is the standard one, which is then computed as usual.
_INTS = ("u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64")
_FLOATS = ("bf16", "f16", "f32", "f64")
_COMPLEXES = ("c64", "c128")
_STRICT_REACH = {"i*": frozenset(_INTS + _FLOATS + _COMPLEXES + ("f*", "c*")),
                 "f*": frozenset(_FLOATS + _COMPLEXES + ("c*",)),
                 "c*": frozenset(_COMPLEXES)}


def _check_strict(args: tuple, x64: bool) -> None:
    """Raise TypePromotionError unless ``args`` combine on JAX's strict lattice."""
    if len(args) < 2:
        return
    dws = [_dtype_and_weak(x, x64) for x in args]
    first = dws[0][0]
    if not all(w for _, w in dws) and all(d == first for d, _ in dws):
        return
    nodes = [_node(_native(d), w) for d, w in dws]
    if None in nodes:
        return  # not lattice dtypes: the standard path says so
    strong = {n for n in nodes if n not in _WEAK_NODES}
    target = next(iter(strong)) if len(strong) == 1 else None
    if len(strong) > 1 or (target is not None and not all(
            target in _STRICT_REACH[n] for n in nodes if n in _WEAK_NODES)):
        names = tuple(_PY_TYPE_OF_WEAK_NODE[n].__name__ if n in _WEAK_NODES else d.name
                      for n, (d, _) in zip(nodes, dws))
        raise TypePromotionError(
            f"Input dtypes {names} have no available implicit dtype promotion path when "
            "jax_numpy_dtype_promotion=strict. Try explicitly casting inputs to the "
            "desired output type, or set jax_numpy_dtype_promotion=standard.")


# ---------------------------------------------------------------------------
# dtype of a value, weak types
# ---------------------------------------------------------------------------

_PY_SCALAR_TYPES = (bool, int, float, complex)


def _check_valid(dt: np.dtype, x: Any) -> np.dtype:
    if dt not in _VALID_DTYPES:
        raise TypeError(f"Value {x!r} with dtype {dt} is not a valid tinyjax array "
                        "type; only boolean and numeric dtypes are supported")
    return dt


def dtype(x: Any) -> np.dtype:
    """The dtype tinyjax gives the value or dtype spec ``x``.

    Python scalars and Python scalar types give the default dtypes
    (int32/float32/complex64, or 64-bit with x64 on; bool); numpy arrays,
    numpy scalars, numpy scalar types, strings and np.dtypes are
    canonicalized; objects with ``weak_type`` (tinyjax Arrays and tracers)
    report their own dtype unchanged, as JAX does for its arrays.
    """
    x64 = config.jax_enable_x64
    r = _PY_SCALAR_DW[x64].get(type(x))
    if r is not None:
        return r[0]
    if x is None:
        raise ValueError("Invalid argument to dtype: None")
    if isinstance(x, type):
        if x in _PY_SCALAR_TYPES:
            return _PY_SCALAR_DW[x64][x][0]
        if issubclass(x, np.generic):
            return _check_valid(canonicalize_dtype(x), x)
    elif isinstance(x, _PY_SCALAR_TYPES) and not isinstance(x, np.generic):
        return _dtype_and_weak_slow(x, x64)[0]
    if isinstance(x, (str, np.dtype)):
        return _check_valid(canonicalize_dtype(x), x)
    dt = getattr(x, "dtype", None)
    if isinstance(dt, np.dtype):
        if getattr(x, "weak_type", None) is not None:
            return _check_valid(dt, x)
        return _check_valid(canonicalize_dtype(dt), x)
    try:
        dt = np.asarray(x).dtype
    except Exception as e:  # noqa: BLE001
        raise TypeError(f"Cannot determine the dtype of {x!r}") from e
    return _check_valid(canonicalize_dtype(dt), x)


def itemsize_bits(dt: Any) -> int:
    """The size of one element of dtype ``dt`` in bits (4 for int4, 1 byte = 8 for
    bool)."""
    if dt is None:
        raise ValueError("itemsize_bits: dtype cannot be None")
    d = np.dtype(dt) if not is_extended(dt) else dt
    return _SUB_BYTE_BITS.get(d.name) or d.itemsize * 8


_SUB_BYTE_BITS = {"int4": 4, "uint4": 4, "int2": 2, "uint2": 2, "float4_e2m1fn": 4}


def scalar_type_of(x: Any) -> type:
    """The Python scalar type (bool, int, float or complex) matching the dtype of ``x``."""
    dt = dtype(x)
    if dt == np.bool_:
        return bool
    if np.issubdtype(dt, np.integer):
        return int
    if dt == bfloat16 or np.issubdtype(dt, np.floating):
        return float
    if np.issubdtype(dt, np.complexfloating):
        return complex
    raise TypeError(f"Invalid scalar value {x!r}")


def is_weakly_typed(x: Any) -> bool:
    """True for Python int/float/complex values and weakly-typed arrays/tracers."""
    t = type(x)
    if t is int or t is float or t is complex:
        return True
    w = getattr(x, "weak_type", None)
    if w is not None:
        return bool(w)
    aval = getattr(x, "aval", None)
    return bool(getattr(aval, "weak_type", False))


# ---------------------------------------------------------------------------
# categories
# ---------------------------------------------------------------------------

_BF16_SUPERTYPES = frozenset({bfloat16, np.floating, np.inexact, np.number, np.generic})


class extended(np.generic):
    """The scalar type above every dtype that is not a numpy dtype, such as the dtypes
    of PRNG key arrays (``jax.dtypes.extended``)."""


class prng_key(extended):
    """The scalar type of PRNG key dtypes (``jax.dtypes.prng_key``):
    ``issubdtype(jax.random.key(0).dtype, prng_key)`` is True."""


class ExtendedDType:
    """Base of the dtypes that are not numpy dtypes (``key<fry>``): ``type`` is their
    scalar type, a subclass of :class:`extended`; ``name`` is how they print.

    An array of such a dtype stands for data of a numpy dtype, ``physical_dtype``, with
    trailing element axes ``element_shape`` (a key array of shape ``s``: ``uint32[*s,
    2]``); ``wrap(data)`` is the array around its data.  The transforms trace that data
    (where an abstract value of the dtype is traced, see ``core.physical_aval``).  A dtype
    without a ``physical_dtype`` has no such data."""

    type: type = extended
    name: str = "extended"
    element_shape: tuple[int, ...] = ()
    physical_dtype: Any = None

    def wrap(self, data: Any) -> Any:
        """The array of this dtype whose data is ``data``."""
        raise NotImplementedError(f"arrays of the extended dtype {self.name} have no "
                                  "physical data in tinyjax")


def _sctype(x: Any) -> type:
    if isinstance(x, type) and issubclass(x, np.generic):
        return x
    if isinstance(x, ExtendedDType):
        return x.type
    return np.dtype(x).type


@functools.lru_cache(maxsize=1024)
def _issubdtype_cached(ta: type, a: Any, tb: type, b: Any) -> bool:
    if isinstance(b, ExtendedDType):      # a particular extended dtype: only itself
        return a == b
    sa, sb = _sctype(a), _sctype(b)
    if issubclass(sa, extended) or issubclass(sb, extended):
        return issubclass(sa, sb)
    if sa is bfloat16:
        return sb in _BF16_SUPERTYPES
    return bool(np.issubdtype(sa, sb))


def issubdtype(a: Any, b: Any) -> bool:
    """``np.issubdtype`` that knows bfloat16 is a floating type and the extended
    dtypes (key dtypes are ``prng_key``s, which are ``extended``).

    ``b`` may be a concrete dtype or an abstract category such as
    ``np.floating``, ``np.integer``, ``np.inexact``, ``np.number``,
    ``np.signedinteger``, ``np.unsignedinteger``, ``np.bool_``, ``extended``,
    ``prng_key``.
    """
    try:
        return _issubdtype_cached(type(a), a, type(b), b)
    except TypeError:  # unhashable spec
        return _issubdtype_cached.__wrapped__(type(a), a, type(b), b)


def _as_dtype(dt: Any) -> np.dtype:
    if isinstance(dt, np.dtype):
        return dt
    if not isinstance(dt, type):
        d = getattr(dt, "dtype", None)      # arrays, tracers, avals
        if isinstance(d, np.dtype):
            return d
    return np.dtype(dt)


_FLOAT_SET = frozenset(_FLOAT_DTYPES)
_SIGNED_SET = frozenset(_SIGNED_DTYPES)
_UNSIGNED_SET = frozenset(_UNSIGNED_DTYPES)
_INT_SET = frozenset(_INT_DTYPES)
_COMPLEX_SET = frozenset(_COMPLEX_DTYPES)
_INEXACT_SET = _FLOAT_SET | _COMPLEX_SET


def is_float(dt: Any) -> bool:
    """Real floating (bfloat16, float16/32/64)."""
    return _as_dtype(dt) in _FLOAT_SET


def is_int(dt: Any) -> bool:
    """Signed or unsigned integer (not bool)."""
    return _as_dtype(dt) in _INT_SET


def is_signed(dt: Any) -> bool:
    """Signed integer."""
    return _as_dtype(dt) in _SIGNED_SET


def is_unsigned(dt: Any) -> bool:
    """Unsigned integer."""
    return _as_dtype(dt) in _UNSIGNED_SET


def is_bool(dt: Any) -> bool:
    return _as_dtype(dt) == _b1


def is_complex(dt: Any) -> bool:
    return _as_dtype(dt) in _COMPLEX_SET


def is_inexact(dt: Any) -> bool:
    """Floating or complex."""
    return _as_dtype(dt) in _INEXACT_SET


def tangent_dtype(dt: Any) -> np.dtype:
    """The dtype of a value's tangents: its own for floats and complex numbers, float0 for
    the others (integers, bools, PRNG keys)."""
    return dt if not is_extended(dt) and is_inexact(dt) else float0


# ---------------------------------------------------------------------------
# finfo / iinfo / names
# ---------------------------------------------------------------------------

def finfo(dt: Any):
    """Machine limits of a floating dtype (ml_dtypes.finfo: handles bfloat16)."""
    return ml_dtypes.finfo(_as_dtype(dt))


def iinfo(dt: Any):
    """Machine limits of an integer dtype."""
    return ml_dtypes.iinfo(_as_dtype(dt))


_SHORT_NAMES: dict[np.dtype, str] = {
    _b1: "bool", _i1: "i8", _i2: "i16", _i4: "i32", _i8: "i64",
    _u1: "u8", _u2: "u16", _u4: "u32", _u8: "u64",
    _bf: "bf16", _f2: "f16", _f4: "f32", _f8: "f64", _c8: "c64", _c16: "c128",
    float0: "float0",
}


def short_dtype_name(dt: Any) -> str:
    """JAX's jaxpr name of a dtype: ``f32``, ``i8``, ``bf16``, ``bool``, ``float0``…"""
    d = _as_dtype(dt)
    name = _SHORT_NAMES.get(d)
    if name is None:
        name = (d.name.replace("float", "f").replace("uint", "u")
                .replace("int", "i").replace("complex", "c"))
    return name
