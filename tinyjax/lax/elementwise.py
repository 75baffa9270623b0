"""Elementwise primitives: unary and binary math, comparisons, bitwise ops,
``select_n``, ``clamp``, dtype conversion and ``stop_gradient``.

Each primitive is defined by one line through :func:`unop` / :func:`binop`
(numpy implementation, accepted dtypes), followed by its jvp and, for the linear
ones, its transpose.  Batching is by broadcasting for all of them.
"""
from __future__ import annotations

import enum
import math
from typing import Any, Callable, NamedTuple

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax import _special_np
from tinyjax.lax._helpers import as_operand, aval_str
from tinyjax.interpreters import ad, batching, lax_ops
from tinyjax.interpreters.ad import Zero, defjvp, defjvp2, defjvp_zero, is_undefined_primal

__all__ = [
    "imag_p",
    "imag",
    "real_p",
    "real",
    "conj_p",
    "conj",
    "copy_p",
    "complex_p",
    "complex",
    "AccuracyMode",
    "RoundingMethod",
    "Tolerance",
    "abs",
    "abs_p",
    "acos",
    "acos_p",
    "acosh",
    "acosh_p",
    "add",
    "add_p",
    "and_p",
    "asin",
    "asin_p",
    "asinh",
    "asinh_p",
    "atan",
    "atan2",
    "atan2_p",
    "atan_p",
    "atanh",
    "atanh_p",
    "bitcast_convert_type",
    "bitcast_convert_type_p",
    "bitwise_and",
    "bitwise_not",
    "bitwise_or",
    "bitwise_xor",
    "cbrt",
    "cbrt_p",
    "ceil",
    "ceil_p",
    "clamp",
    "clamp_p",
    "clz",
    "clz_p",
    "convert_element_type",
    "convert_element_type_p",
    "cos",
    "cos_p",
    "cosh",
    "cosh_p",
    "digamma",
    "digamma_p",
    "div",
    "div_p",
    "eq",
    "eq_p",
    "erf",
    "erf_inv",
    "erf_inv_p",
    "erf_p",
    "erfc",
    "erfc_p",
    "exp",
    "exp2",
    "exp2_p",
    "exp_p",
    "expm1",
    "expm1_p",
    "floor",
    "floor_p",
    "full_like_aval",
    "ge",
    "ge_p",
    "gt",
    "gt_p",
    "integer_pow",
    "integer_pow_p",
    "is_finite",
    "is_finite_p",
    "le",
    "le_p",
    "lgamma",
    "lgamma_p",
    "log",
    "log1p",
    "log1p_p",
    "log_p",
    "logistic",
    "logistic_p",
    "lt",
    "lt_p",
    "max",
    "max_p",
    "min",
    "min_p",
    "mul",
    "mul_p",
    "mulhi",
    "mulhi_p",
    "ne",
    "ne_p",
    "neg",
    "neg_p",
    "nextafter",
    "nextafter_p",
    "not_p",
    "or_p",
    "polygamma",
    "polygamma_p",
    "population_count",
    "population_count_p",
    "pow",
    "pow_p",
    "rem",
    "rem_p",
    "round",
    "round_p",
    "rsqrt",
    "rsqrt_p",
    "select",
    "select_n",
    "select_n_p",
    "shift_left",
    "shift_left_p",
    "shift_right_arithmetic",
    "shift_right_arithmetic_p",
    "shift_right_logical",
    "shift_right_logical_p",
    "sign",
    "sign_p",
    "sin",
    "sin_p",
    "sinh",
    "sinh_p",
    "sqrt",
    "sqrt_p",
    "square",
    "square_p",
    "stop_gradient",
    "stop_gradient_p",
    "sub",
    "sub_p",
    "tan",
    "tan_p",
    "tanh",
    "tanh_p",
    "unbroadcast",
    "xor_p",
]

# ---------------------------------------------------------------------------
# dtype classes accepted by the primitives
# ---------------------------------------------------------------------------

_FLOAT = ("floating", lambda d: dtypes.is_float(d))
_INEXACT = ("floating, complexfloating", lambda d: dtypes.is_inexact(d))
_REAL_NUMBER = ("integer, floating", lambda d: dtypes.is_float(d) or dtypes.is_int(d))
_NUMBER = ("integer, floating, complexfloating",
           lambda d: dtypes.is_inexact(d) or dtypes.is_int(d))
_SIGNED = ("signed integer, floating, complexfloating",
           lambda d: dtypes.is_inexact(d) or (dtypes.is_int(d) and not dtypes.is_unsigned(d)))
_INT = ("integer", lambda d: dtypes.is_int(d))
_BOOL_INT = ("bool, integer", lambda d: dtypes.is_int(d) or d == np.bool_)
_ORDERED = ("bool, integer, floating",
            lambda d: dtypes.is_int(d) or dtypes.is_float(d) or d == np.bool_)
_ANY = ("bool, integer, floating, complexfloating",
        lambda d: dtypes.is_int(d) or dtypes.is_inexact(d) or d == np.bool_)
# complex() builds complex64 / complex128 from float32 / float64 parts (as XLA does)
_COMPLEX_PART = ("float32, float64", lambda d: d in (np.float32, np.float64))
_COMPLEX = ("complexfloating", lambda d: dtypes.is_complex(d))

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(dtypes.bfloat16))

# The broadcasting numpy function behind each binary primitive: tinyjax.numpy's
# eager fast path calls it directly (same semantics, no shape equality needed).
numpy_binary_functions: dict[Primitive, Callable] = {}


def _check_dtype(name: str, accepted, aval: ShapedArray, position: str = "") -> None:
    kinds, ok = accepted
    if not ok(aval.dtype):
        raise TypeError(f"{name} does not accept dtype {dtypes.short_dtype_name(aval.dtype)}"
                        f"{position}. Accepted dtypes are subtypes of {kinds}.")


def _upcast(fn: Callable) -> Callable:
    """Compute float16/bfloat16 math in float32 and round back, as XLA does."""
    def impl(*args, **params):
        dt = args[0].dtype if hasattr(args[0], "dtype") else None
        if dt in _LOW_PRECISION:
            out = fn(*[np.asarray(a, np.float32) for a in args], **params)
            return np.asarray(out).astype(dt)
        return fn(*args, **params)
    return impl


def _all_weak(weak_flags, **params):
    return all(weak_flags)


def _first_weak(weak_flags, **params):
    return weak_flags[0]


# ---------------------------------------------------------------------------
# Definition helpers
# ---------------------------------------------------------------------------


def real_dtype(dt: Any) -> np.dtype:
    """The dtype of the real and imaginary parts of ``dt`` (``dt`` itself if real)."""
    dt = np.dtype(dt)
    return np.dtype(np.float32 if dt == np.complex64 else np.float64) \
        if dtypes.is_complex(dt) else dt


def complex_dtype(dt: Any) -> np.dtype:
    """The complex dtype whose parts have dtype ``dt`` (``dt`` itself if complex)."""
    dt = np.dtype(dt)
    if dtypes.is_complex(dt):
        return dt
    return np.dtype(np.complex128 if dt == np.float64 else np.complex64)


def _derives_dtype(out_dtype: Any) -> bool:
    return callable(out_dtype) and not isinstance(out_dtype, type)


def _result_dtype(out_dtype: Any, dt: np.dtype) -> np.dtype:
    """A primitive's result dtype: the operand's (None), a fixed one, or derived."""
    if out_dtype is None:
        return dt
    return np.dtype(out_dtype(dt) if _derives_dtype(out_dtype) else out_dtype)


def unop(name: str, np_fn: Callable, accepted=_FLOAT, out_dtype: Any = None,
         upcast: bool = True) -> Primitive:
    """A unary elementwise primitive; ``out_dtype`` fixes the result dtype (e.g. bool) or,
    given as a function of the operand's dtype, derives it (``abs`` of complex is real)."""
    prim = Primitive(name)
    fn = _upcast(np_fn) if upcast else np_fn
    derived = _derives_dtype(out_dtype)

    def impl(x, **params):
        out = fn(x, **params)
        want = _result_dtype(out_dtype, x.dtype)
        return out if getattr(out, "dtype", None) == want else np.asarray(out).astype(want)
    prim.def_impl(impl)

    def abstract_eval(x, **params):
        _check_dtype(name, accepted, x)
        dt = _result_dtype(out_dtype, x.dtype)
        return x if dt == x.dtype else ShapedArray(x.shape, dt, x.weak_type and derived)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = _first_weak if out_dtype is None or derived else prim.weak_type_rule
    batching.defvectorized(prim)
    return prim


def binop(name: str, np_fn: Callable, accepted=_NUMBER, out_dtype: Any = None,
          upcast: bool = False) -> Primitive:
    """A binary elementwise primitive on two operands of one dtype and of one shape,
    or one of them a scalar (rank 0) that broadcasts, as in JAX's jaxprs."""
    prim = Primitive(name)
    fn = _upcast(np_fn) if upcast else np_fn
    numpy_binary_functions[prim] = fn

    def impl(x, y, **params):
        if (x.shape != y.shape and x.shape and y.shape) or x.dtype != y.dtype:
            abstract_eval(get_aval(x), get_aval(y))
        out = fn(x, y, **params)
        want = _result_dtype(out_dtype, x.dtype)
        return out if getattr(out, "dtype", None) == want else np.asarray(out, want)
    prim.def_impl(impl)

    def abstract_eval(x, y, **params):
        _check_dtype(name, accepted, x, " (first argument)")
        _check_dtype(name, accepted, y, " (second argument)")
        if x.dtype != y.dtype:
            raise TypeError(f"lax.{name} requires arguments to have the same dtypes, got "
                            f"{x.dtype.name}, {y.dtype.name}. (Tip: jnp.{name} is a "
                            "similar function that does automatic type promotion on inputs).")
        if x.shape != y.shape and x.shape and y.shape:
            raise TypeError(f"{name} got incompatible shapes for broadcasting: "
                            f"{x.shape}, {y.shape}.")
        # comparisons of weak operands give a weak bool, as in JAX
        return ShapedArray(x.shape or y.shape, _result_dtype(out_dtype, x.dtype),
                           x.weak_type and y.weak_type)
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = _all_weak
    batching.defbroadcasting(prim)
    return prim


def _errstate(fn: Callable) -> Callable:
    def impl(*args, **params):
        with np.errstate(all="ignore"):
            return fn(*args, **params)
    return impl


# ---------------------------------------------------------------------------
# Unary math
# ---------------------------------------------------------------------------

def _complex_aware(real_fn: Callable, complex_fn: Callable) -> Callable:
    """numpy's function for real dtypes, ``complex_fn`` where numpy's is missing or
    differs from XLA's for complex ones."""
    def fn(x, *args, **params):
        return (complex_fn if dtypes.is_complex(x.dtype) else real_fn)(x, *args, **params)
    return fn


def _logistic_real(x):  # stable and accurate in both tails
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


neg_p = unop("neg", np.negative, _NUMBER, upcast=False)
sign_p = unop("sign", np.sign, _NUMBER, upcast=False)
floor_p = unop("floor", np.floor)
ceil_p = unop("ceil", np.ceil)
is_finite_p = unop("is_finite", np.isfinite, out_dtype=np.bool_)
exp_p = unop("exp", _errstate(np.exp), _INEXACT)
exp2_p = unop("exp2", _errstate(np.exp2), _INEXACT)
log_p = unop("log", _errstate(np.log), _INEXACT)
log1p_p = unop("log1p", _errstate(np.log1p), _INEXACT)
expm1_p = unop("expm1", _errstate(np.expm1), _INEXACT)
tanh_p = unop("tanh", _errstate(np.tanh), _INEXACT)
logistic_p = unop("logistic", _errstate(_complex_aware(
    _logistic_real, lambda z: 1 / (1 + np.exp(-z)))), _INEXACT)
sin_p = unop("sin", _errstate(np.sin), _INEXACT)
cos_p = unop("cos", _errstate(np.cos), _INEXACT)
tan_p = unop("tan", _errstate(np.tan), _INEXACT)
asin_p = unop("asin", _errstate(np.arcsin), _INEXACT)
acos_p = unop("acos", _errstate(np.arccos), _INEXACT)
atan_p = unop("atan", _errstate(np.arctan), _INEXACT)
sinh_p = unop("sinh", _errstate(np.sinh), _INEXACT)
cosh_p = unop("cosh", _errstate(np.cosh), _INEXACT)
asinh_p = unop("asinh", _errstate(np.arcsinh), _INEXACT)
acosh_p = unop("acosh", _errstate(np.arccosh), _INEXACT)
atanh_p = unop("atanh", _errstate(np.arctanh), _INEXACT)
sqrt_p = unop("sqrt", _errstate(np.sqrt), _INEXACT)
rsqrt_p = unop("rsqrt", _errstate(lambda x: 1 / np.sqrt(x)), _INEXACT)
cbrt_p = unop("cbrt", np.cbrt)
square_p = unop("square", np.square, _NUMBER, upcast=False)
abs_p = unop("abs", np.abs, _SIGNED, out_dtype=real_dtype, upcast=False)
erf_p = unop("erf", _special_np.erf)
erfc_p = unop("erfc", _special_np.erfc)
erf_inv_p = unop("erf_inv", _special_np.erf_inv)
lgamma_p = unop("lgamma", _special_np.lgamma)
digamma_p = unop("digamma", _special_np.digamma)
not_p = unop("not", lambda x: np.logical_not(x) if x.dtype == np.bool_ else np.invert(x),
             _BOOL_INT, upcast=False)
population_count_p = unop("population_count",  # two's-complement bits, as XLA counts
                          lambda x: np.bitwise_count(x.view(f"u{x.dtype.itemsize}")), _INT,
                          upcast=False)

# complex parts: real/imag of a complex array, conj (of a real one: a complex result)
real_p = unop("real", np.real, _COMPLEX, out_dtype=real_dtype, upcast=False)
imag_p = unop("imag", np.imag, _COMPLEX, out_dtype=real_dtype, upcast=False)
conj_p = unop("conj", lambda x, *, input_dtype: np.conj(x),
              ("float32, float64, complexfloating",
               lambda d: d in (np.float32, np.float64) or dtypes.is_complex(d)),
              out_dtype=complex_dtype, upcast=False)


def _round_impl(x, *, rounding_method):
    if int(rounding_method) == 1:  # TO_NEAREST_EVEN
        return np.round(x)
    return np.trunc(x + np.copysign(np.asarray(0.5, x.dtype), x)) if x.size else x


round_p = unop("round", _round_impl)


def _integer_pow_impl(x, *, y):
    if dtypes.is_int(x.dtype) and y < 0:
        raise ValueError("integer_pow of an integer to a negative power")
    with np.errstate(all="ignore"):
        return np.power(x, y) if y >= 0 else np.reciprocal(np.power(x, -y))


integer_pow_p = unop("integer_pow", _integer_pow_impl, _NUMBER)

# ---------------------------------------------------------------------------
# Binary math, comparisons and bitwise ops
# ---------------------------------------------------------------------------


def _int_div(x, y):
    """C-style integer division (rounds toward zero), as XLA's."""
    with np.errstate(all="ignore"):
        if dtypes.is_int(x.dtype):
            safe = np.where(y == 0, 1, y)
            q = np.abs(x) // np.abs(safe)
            q = np.where((x < 0) != (safe < 0), -q, q) if not dtypes.is_unsigned(x.dtype) \
                else q
            return np.where(y == 0, -1 if not dtypes.is_unsigned(x.dtype) else
                            np.iinfo(x.dtype).max, q).astype(x.dtype)
        return np.true_divide(x, y)


def _rem(x, y):
    with np.errstate(all="ignore"):
        if dtypes.is_int(x.dtype):
            safe = np.where(y == 0, 1, y)
            return np.where(y == 0, x, np.fmod(x, safe)).astype(x.dtype)
        return np.fmod(x, y)


def _pow(x, y):
    with np.errstate(all="ignore"):
        return np.power(x, y)


add_p = binop("add", np.add)
sub_p = binop("sub", np.subtract)
mul_p = binop("mul", np.multiply)
div_p = binop("div", _int_div, upcast=True)
rem_p = binop("rem", _rem, _REAL_NUMBER, upcast=True)
max_p = binop("max", np.maximum, _ANY)
min_p = binop("min", np.minimum, _ANY)
pow_p = binop("pow", _pow, _INEXACT, upcast=True)


def _atan2_complex(x, y):
    """XLA's complex atan2: ``-i log((y + i x) / sqrt(x^2 + y^2))``."""
    with np.errstate(all="ignore"):
        return -1j * np.log((y + 1j * x) / np.sqrt(x * x + y * y))


atan2_p = binop("atan2", _complex_aware(np.arctan2, _atan2_complex), _INEXACT, upcast=True)
complex_p = binop("complex", lambda x, y: x + 1j * y, _COMPLEX_PART, out_dtype=complex_dtype)
nextafter_p = binop("nextafter", np.nextafter, _FLOAT)


def _uint_view(x: np.ndarray) -> np.ndarray:
    return np.asarray(x).view(f"uint{x.dtype.itemsize * 8}")


def _clz_impl(x):
    """Leading zero bits of each integer's two's-complement representation."""
    bits = x.dtype.itemsize * 8
    rest = _uint_view(x).astype(np.uint64)
    length = np.zeros(rest.shape, np.int64)
    for step in (32, 16, 8, 4, 2, 1):          # binary search for the highest set bit
        high = rest >= np.uint64(1 << step)
        length += np.where(high, step, 0)
        rest = np.where(high, rest >> np.uint64(step), rest)
    length += rest > 0
    return (bits - length).astype(x.dtype)


def _mulhi_impl(x, y):
    """The high half of the double-width product (signed or unsigned as the operands)."""
    bits = x.dtype.itemsize * 8
    if bits <= 32:
        wide = np.int64 if dtypes.is_signed(x.dtype) else np.uint64
        prod = x.astype(wide) * y.astype(wide)
        return (prod >> wide(bits)).astype(x.dtype)
    prod = (np.asarray(x, object) * np.asarray(y, object)) >> bits
    return np.asarray(prod, object).astype(np.int64 if dtypes.is_signed(x.dtype)
                                           else np.uint64).astype(x.dtype)


clz_p = unop("clz", _clz_impl, _INT, upcast=False)
mulhi_p = binop("mulhi", _mulhi_impl, _INT)
and_p = binop("and", np.bitwise_and, _BOOL_INT)
or_p = binop("or", np.bitwise_or, _BOOL_INT)
xor_p = binop("xor", np.bitwise_xor, _BOOL_INT)


def _shift_left(x, y):
    bits = x.dtype.itemsize * 8
    ok = (y >= 0) & (y < bits)
    return np.where(ok, np.left_shift(x, np.where(ok, y, 0)), 0).astype(x.dtype)


def _shift_right_arithmetic(x, y):
    bits = x.dtype.itemsize * 8
    signed = x.view(np.dtype(f"i{x.dtype.itemsize}")) if dtypes.is_unsigned(x.dtype) else x
    shift = np.clip(y, 0, bits - 1).astype(signed.dtype)
    out = np.right_shift(signed, shift)
    return out.view(x.dtype) if dtypes.is_unsigned(x.dtype) else out


def _shift_right_logical(x, y):
    bits = x.dtype.itemsize * 8
    unsigned = x.view(np.dtype(f"u{x.dtype.itemsize}"))
    ok = (y >= 0) & (y < bits)
    out = np.where(ok, np.right_shift(unsigned, np.where(ok, y, 0).astype(unsigned.dtype)), 0)
    return out.astype(unsigned.dtype).view(x.dtype)


shift_left_p = binop("shift_left", _shift_left, _INT)
shift_right_arithmetic_p = binop("shift_right_arithmetic", _shift_right_arithmetic, _INT)
shift_right_logical_p = binop("shift_right_logical", _shift_right_logical, _INT)

eq_p = binop("eq", np.equal, _ANY, out_dtype=np.bool_)
ne_p = binop("ne", np.not_equal, _ANY, out_dtype=np.bool_)
lt_p = binop("lt", np.less, _ORDERED, out_dtype=np.bool_)
le_p = binop("le", np.less_equal, _ORDERED, out_dtype=np.bool_)
gt_p = binop("gt", np.greater, _ORDERED, out_dtype=np.bool_)
ge_p = binop("ge", np.greater_equal, _ORDERED, out_dtype=np.bool_)

# ---------------------------------------------------------------------------
# select_n, clamp
# ---------------------------------------------------------------------------

select_n_p = Primitive("select_n")


@select_n_p.def_impl
def _select_n_impl(which, *cases):
    if len(cases) == 1:
        return cases[0]
    if which.dtype == np.bool_:
        return np.where(which, cases[1], cases[0])
    return np.choose(which, cases, mode="clip") if which.ndim else cases[int(which)]


@select_n_p.def_abstract_eval
def _select_n_abstract_eval(which, *cases):
    if not cases:
        raise TypeError("select_n must have at least one case")
    if any(c.shape != cases[0].shape or c.dtype != cases[0].dtype for c in cases):
        raise TypeError("select_n cases must have the same shapes and dtypes, got "
                        f"[{aval_str(cases)}].")
    if which.dtype != np.bool_ and not dtypes.is_int(which.dtype):
        raise TypeError(f"select_n which must be boolean or integer type, got "
                        f"{which.dtype.name}.")
    if which.dtype == np.bool_ and len(cases) > 2:
        raise TypeError("select_n with boolean which cannot have more than 2 cases, got "
                        f"{len(cases)}.")
    if which.shape and which.shape != cases[0].shape:
        raise TypeError("select_n which must be scalar or have the same shape as cases, "
                        f"got which shape {which.shape} but case shape {cases[0].shape}.")
    return ShapedArray(cases[0].shape, cases[0].dtype,
                       all(c.weak_type for c in cases))


select_n_p.weak_type_rule = lambda weak, **_: all(weak[1:])

clamp_p = Primitive("clamp")


@clamp_p.def_impl
def _clamp_impl(lo, x, hi):
    return np.minimum(np.maximum(x, lo), hi).astype(x.dtype)


@clamp_p.def_abstract_eval
def _clamp_abstract_eval(lo, x, hi):
    for name, bound in (("min", lo), ("max", hi)):
        if bound.dtype != x.dtype:
            raise TypeError(f"clamp requires {name}.dtype == operand.dtype, got "
                            f"{bound.dtype.name} and {x.dtype.name}.")
        if bound.shape and bound.shape != x.shape:
            raise TypeError(f"clamp requires {name} to be a scalar or have the same shape "
                            f"as the operand, got {name} shape {bound.shape} and operand "
                            f"shape {x.shape}.")
    return x


clamp_p.weak_type_rule = lambda weak, **_: weak[1]

# ---------------------------------------------------------------------------
# dtype conversion and stop_gradient
# ---------------------------------------------------------------------------

convert_element_type_p = Primitive("convert_element_type")


@convert_element_type_p.def_impl
def _convert_impl(x, *, new_dtype, weak_type=False, sharding=None):
    if x.dtype == new_dtype:
        return x
    if new_dtype == np.bool_:
        return x != 0
    if dtypes.is_complex(x.dtype) and not dtypes.is_complex(new_dtype):
        x = x.real  # complex -> real keeps the real part (XLA, and numpy with a warning)
    if dtypes.is_int(new_dtype) and dtypes.is_float(x.dtype):
        # Float -> int truncates toward zero and saturates, NaN -> 0 (XLA semantics).
        info = np.iinfo(new_dtype)
        with np.errstate(all="ignore"):
            y = np.trunc(np.asarray(x, np.float64))
            y = np.where(np.isnan(y), 0, np.clip(y, info.min, info.max))
        return y.astype(new_dtype)
    return x.astype(new_dtype)


@convert_element_type_p.def_abstract_eval
def _convert_abstract_eval(x, *, new_dtype, weak_type=False, sharding=None):
    return ShapedArray(x.shape, new_dtype, weak_type)


convert_element_type_p.weak_type_rule = lambda weak, *, weak_type=False, **_: weak_type
batching.defvectorized(convert_element_type_p)

bitcast_convert_type_p = Primitive("bitcast_convert_type")


def _bitcast_shape(x: ShapedArray, new_dtype: np.dtype) -> tuple[int, ...]:
    old, new = x.dtype.itemsize, np.dtype(new_dtype).itemsize
    if old == new:
        return x.shape
    if old > new:
        if old % new:
            raise TypeError(f"bitcast_convert_type: cannot convert {x.dtype} to {new_dtype}")
        return x.shape + (old // new,)
    if not x.shape or x.shape[-1] != new // old:
        raise TypeError(f"bitcast_convert_type: converting {x.dtype.name} to "
                        f"{np.dtype(new_dtype).name} needs a last dimension of size "
                        f"{new // old}, got shape {x.shape}")
    return x.shape[:-1]


@bitcast_convert_type_p.def_impl
def _bitcast_impl(x, *, new_dtype):
    out = np.ascontiguousarray(x).view(new_dtype)
    return out.reshape(_bitcast_shape(get_aval(x), new_dtype))


@bitcast_convert_type_p.def_abstract_eval
def _bitcast_abstract_eval(x, *, new_dtype):
    new_dtype = np.dtype(new_dtype)
    if x.dtype != new_dtype and any(d == np.bool_ or dtypes.is_complex(d)
                                    for d in (x.dtype, new_dtype)):
        raise TypeError("lax.bitcast_convert_type does not support bool or complex values "
                        "unless the operand and destination types match. Got operand "
                        f"dtype={x.dtype}, new_dtype={new_dtype!r}. Consider using the "
                        "arr.view() method instead.")
    return ShapedArray(_bitcast_shape(x, new_dtype), new_dtype)


def _bitcast_batch(vals, dims, *, new_dtype):
    x, d = vals[0], dims[0]
    if d == get_aval(x).ndim - 1:
        x, d = batching.moveaxis(x, d, 0), 0
    return bitcast_convert_type_p.bind(x, new_dtype=new_dtype), d


batching.primitive_batchers[bitcast_convert_type_p] = _bitcast_batch
defjvp_zero(bitcast_convert_type_p)

# copy: a new array of the same value (what jnp.array / jnp.copy of an array bind, so that
# donating the copy leaves the original alone)
copy_p = Primitive("copy")
copy_p.def_impl(lambda x: x)
copy_p.def_abstract_eval(lambda x: x)
copy_p.weak_type_rule = _first_weak
batching.defvectorized(copy_p)
ad.deflinear(copy_p, lambda ct, x: [copy_p.bind(ad.instantiate_zeros(ct))])

stop_gradient_p = Primitive("stop_gradient")
stop_gradient_p.def_impl(lambda x: x)
stop_gradient_p.def_abstract_eval(lambda x: x)
stop_gradient_p.weak_type_rule = _first_weak
batching.defvectorized(stop_gradient_p)
defjvp_zero(stop_gradient_p)

# ---------------------------------------------------------------------------
# Public functions (JAX's lax signatures)
# ---------------------------------------------------------------------------


class AccuracyMode(enum.Enum):
    """A requested accuracy of the transcendental functions (``accuracy=`` of
    ``lax.exp`` and friends); tinyjax always computes them at full accuracy."""
    HIGHEST = 1
    DEFAULT = 2


class Tolerance(NamedTuple):
    """An accuracy request by tolerances (atol with rtol or ulps); tinyjax's functions
    are always at full accuracy, which meets any of them."""
    atol: float = 0.0
    rtol: float = 0.0
    ulps: int = 0


def _unary(prim: Primitive) -> Callable:
    def fn(x, accuracy=None):
        if accuracy is not None and not isinstance(accuracy, (AccuracyMode, Tolerance)):
            raise TypeError(f"{prim.name}: accuracy must be a lax.AccuracyMode or a "
                            f"lax.Tolerance, got {accuracy!r}")
        return prim.bind(as_operand(x))
    fn.__name__ = prim.name
    fn.__doc__ = (f"Elementwise ``{prim.name}`` (the ``{prim.name}`` primitive); "
                  "``accuracy`` is accepted and met by computing at full accuracy.")
    return fn


def binary_operands(x: Any, y: Any) -> tuple[Any, Any]:
    """The operands as primitives take them: a Python scalar becomes a weakly typed array
    of its kind's default dtype (as in JAX, ``lax`` functions do not promote: the dtypes
    must then match); rank-0 operands broadcast inside the primitive."""
    return as_operand(x), as_operand(y)


def _binary(prim: Primitive) -> Callable:
    def fn(x, y):
        return prim.bind(*binary_operands(x, y))
    fn.__name__ = prim.name
    fn.__doc__ = f"Elementwise ``{prim.name}`` of two arrays of one shape and dtype."
    return fn


neg = _unary(neg_p)
sign = _unary(sign_p)
floor = _unary(floor_p)
ceil = _unary(ceil_p)
is_finite = _unary(is_finite_p)
exp = _unary(exp_p)
exp2 = _unary(exp2_p)
log = _unary(log_p)
log1p = _unary(log1p_p)
expm1 = _unary(expm1_p)
tanh = _unary(tanh_p)
logistic = _unary(logistic_p)
sin = _unary(sin_p)
cos = _unary(cos_p)
tan = _unary(tan_p)
asin = _unary(asin_p)
acos = _unary(acos_p)
atan = _unary(atan_p)
sinh = _unary(sinh_p)
cosh = _unary(cosh_p)
asinh = _unary(asinh_p)
acosh = _unary(acosh_p)
atanh = _unary(atanh_p)
sqrt = _unary(sqrt_p)
rsqrt = _unary(rsqrt_p)
cbrt = _unary(cbrt_p)
square = _unary(square_p)
abs = _unary(abs_p)  # noqa: A001 - JAX's name
erf = _unary(erf_p)
erfc = _unary(erfc_p)
erf_inv = _unary(erf_inv_p)
lgamma = _unary(lgamma_p)
digamma = _unary(digamma_p)
bitwise_not = _unary(not_p)
population_count = _unary(population_count_p)
clz = _unary(clz_p)
clz.__doc__ = "Elementwise count of leading zero bits (the ``clz`` primitive)."

add = _binary(add_p)
sub = _binary(sub_p)
mul = _binary(mul_p)
div = _binary(div_p)
rem = _binary(rem_p)
max = _binary(max_p)  # noqa: A001
min = _binary(min_p)  # noqa: A001
pow = _binary(pow_p)  # noqa: A001
atan2 = _binary(atan2_p)
nextafter = _binary(nextafter_p)
mulhi = _binary(mulhi_p)
mulhi.__doc__ = ("Elementwise high half of the double-width product of two integers of one "
                 "dtype (the ``mulhi`` primitive).")
bitwise_and = _binary(and_p)
bitwise_or = _binary(or_p)
bitwise_xor = _binary(xor_p)
shift_left = _binary(shift_left_p)
shift_right_arithmetic = _binary(shift_right_arithmetic_p)
shift_right_logical = _binary(shift_right_logical_p)
eq = _binary(eq_p)
ne = _binary(ne_p)
lt = _binary(lt_p)
le = _binary(le_p)
gt = _binary(gt_p)
ge = _binary(ge_p)


class RoundingMethod:
    """``lax.round`` rounding methods."""
    AWAY_FROM_ZERO = 0
    TO_NEAREST_EVEN = 1


def real(x):
    """Elementwise real part of a complex array."""
    return real_p.bind(as_operand(x))


def imag(x):
    """Elementwise imaginary part of a complex array."""
    return imag_p.bind(as_operand(x))


def complex(x, y):  # noqa: A001 - JAX's name
    """Elementwise ``x + 1j * y`` of two float arrays of one shape and dtype."""
    return complex_p.bind(*binary_operands(x, y))


def conj(x):
    """Complex conjugate; of a real array, the complex array with a zero imaginary part."""
    x = as_operand(x)
    return conj_p.bind(x, input_dtype=get_aval(x).dtype)


def round(x, rounding_method=RoundingMethod.AWAY_FROM_ZERO):  # noqa: A001
    """Elementwise round; halves go away from zero unless ``TO_NEAREST_EVEN``."""
    return round_p.bind(as_operand(x), rounding_method=int(rounding_method))


def integer_pow(x, y: int):
    """``x ** y`` for a static Python integer ``y``."""
    return integer_pow_p.bind(as_operand(x), y=int(y))


def select_n(which, *cases):
    """``cases[which]`` elementwise; ``which`` is bool (2 cases) or int32."""
    return select_n_p.bind(as_operand(which), *[as_operand(c) for c in cases])


def select(pred, on_true, on_false):
    """``on_true`` where ``pred`` else ``on_false`` (``select_n(pred, on_false, on_true)``)."""
    return select_n(pred, on_false, on_true)


def clamp(min, x, max):  # noqa: A002
    """``x`` clipped to ``[min, max]``; bounds are scalars or of ``x``'s shape."""
    x = as_operand(x)
    dt = get_aval(x).dtype
    return clamp_p.bind(as_operand(min, dt), x, as_operand(max, dt))


def convert_element_type(operand, new_dtype) -> Any:
    """Cast to ``new_dtype`` (canonicalised: 64-bit types need jax_enable_x64)."""
    x = as_operand(operand)
    if dtypes.is_extended(new_dtype):
        raise NotImplementedError(
            f"convert_element_type to the extended dtype {new_dtype}: tinyjax's abstract "
            "values carry no extended dtypes through the transforms (key arrays are made "
            "with jax.random.wrap_key_data)")
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    aval = get_aval(x)
    if aval.dtype == new_dtype and not aval.weak_type:
        return x
    return convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=False,
                                       sharding=None)


def _convert_weak(x, new_dtype, weak_type: bool):
    """Internal: convert keeping a weak type flag (used by type promotion)."""
    aval = get_aval(x)
    if aval.dtype == new_dtype and aval.weak_type == weak_type:
        return x
    return convert_element_type_p.bind(x, new_dtype=np.dtype(new_dtype), weak_type=weak_type,
                                       sharding=None)


def bitcast_convert_type(operand, new_dtype):
    """Reinterpret the bits of ``operand`` as ``new_dtype``."""
    return bitcast_convert_type_p.bind(as_operand(operand),
                                       new_dtype=dtypes.canonicalize_dtype(new_dtype))


def stop_gradient(x):
    """Identity whose derivative is zero; maps over pytrees like JAX's."""
    from tinyjax.tree_util import physical

    def stop(leaf):
        leaf = as_operand(leaf)
        if not dtypes.is_inexact(get_aval(leaf).dtype):
            return leaf
        return stop_gradient_p.bind(leaf)
    return physical.tree_map(stop, x)


def full_like_aval(aval: ShapedArray, value) -> Any:
    """An array of ``aval``'s shape and dtype filled with ``value`` (strongly typed)."""
    return lax_ops.full(aval.shape, value, aval.dtype)


# ---------------------------------------------------------------------------
# Differentiation rules
# ---------------------------------------------------------------------------

def _zeros_like(x):
    return full_like_aval(get_aval(x).strip_weak_type(), 0)


def _const(x, value):
    """``value`` as a weakly typed scalar of ``x``'s dtype."""
    return as_operand(value, get_aval(x).dtype)


ad.deflinear(neg_p, lambda ct, x: [neg(ct)])
defjvp_zero(sign_p)
defjvp_zero(floor_p)
defjvp_zero(ceil_p)
defjvp_zero(round_p)
defjvp_zero(is_finite_p)
defjvp_zero(not_p)
defjvp_zero(population_count_p)
defjvp_zero(nextafter_p)
defjvp_zero(clz_p)
defjvp_zero(mulhi_p)
for _p in (and_p, or_p, xor_p, shift_left_p, shift_right_arithmetic_p,
           shift_right_logical_p, eq_p, ne_p, lt_p, le_p, gt_p, ge_p):
    defjvp_zero(_p)

defjvp2(exp_p, lambda t, ans, x: mul(t, ans))
defjvp2(exp2_p, lambda t, ans, x: mul(t, mul(ans, _const(x, math.log(2)))))
defjvp(log_p, lambda t, x: div(t, x))
defjvp(log1p_p, lambda t, x: div(t, add(x, _const(x, 1))))
defjvp2(expm1_p, lambda t, ans, x: mul(t, add(ans, _const(x, 1))))
defjvp2(tanh_p, lambda t, ans, x: mul(t, sub(_const(x, 1), square(ans))))
defjvp2(logistic_p, lambda t, ans, x: mul(t, mul(ans, sub(_const(x, 1), ans))))
defjvp(sin_p, lambda t, x: mul(t, cos(x)))
defjvp(cos_p, lambda t, x: neg(mul(t, sin(x))))
defjvp2(tan_p, lambda t, ans, x: mul(t, add(_const(x, 1), square(ans))))
defjvp(asin_p, lambda t, x: mul(t, rsqrt(sub(_const(x, 1), square(x)))))
defjvp(acos_p, lambda t, x: neg(mul(t, rsqrt(sub(_const(x, 1), square(x))))))
defjvp(atan_p, lambda t, x: div(t, add(_const(x, 1), square(x))))
defjvp(sinh_p, lambda t, x: mul(t, cosh(x)))
defjvp(cosh_p, lambda t, x: mul(t, sinh(x)))
defjvp(asinh_p, lambda t, x: mul(t, rsqrt(add(square(x), _const(x, 1)))))
defjvp(acosh_p, lambda t, x: div(t, mul(sqrt(sub(x, _const(x, 1))),
                                        sqrt(add(x, _const(x, 1))))))
defjvp(atanh_p, lambda t, x: div(t, sub(_const(x, 1), square(x))))
defjvp2(sqrt_p, lambda t, ans, x: div(t, mul(_const(x, 2), ans)))
defjvp2(rsqrt_p, lambda t, ans, x: mul(t, mul(_const(x, -0.5), div(ans, x))))
defjvp2(cbrt_p, lambda t, ans, x: div(t, mul(_const(x, 3), square(ans))))
defjvp(square_p, lambda t, x: mul(t, mul(_const(x, 2), x)))
defjvp(erf_p, lambda t, x: mul(t, mul(_const(x, 2 / math.sqrt(math.pi)),
                                      exp(neg(square(x))))))
defjvp(erfc_p, lambda t, x: mul(t, mul(_const(x, -2 / math.sqrt(math.pi)),
                                       exp(neg(square(x))))))
defjvp2(erf_inv_p, lambda t, ans, x: mul(t, mul(_const(x, math.sqrt(math.pi) / 2),
                                                exp(square(ans)))))
defjvp(lgamma_p, lambda t, x: mul(t, digamma(x)))


def _abs_jvp(t, ans, x):
    dt = get_aval(x).dtype
    if dtypes.is_complex(dt):
        # d|x| = re(conj(x) dx) / |x|, taken as 0 where x == 0 (as JAX does)
        safe = select(eq(ans, _const(ans, 0)), full_like_aval(get_aval(ans), 1), ans)
        return real(mul(t, div(conj(x), convert_element_type(safe, dt))))
    return mul(t, sign(x)) if dtypes.is_float(dt) else Zero.from_primal(x)


defjvp2(abs_p, _abs_jvp)


def _complex_transpose(ct, x, y):
    return [unbroadcast(x.aval, real(ct)) if is_undefined_primal(x) else None,
            unbroadcast(y.aval, neg(imag(ct))) if is_undefined_primal(y) else None]


def _conj_transpose(ct, x, *, input_dtype):
    return [conj(ct) if dtypes.is_complex(input_dtype) else real(ct)]


# Linear maps of C as R^2, transposed for the bilinear pairing re(u * v) (JAX's
# convention: no conjugation, so grad of a real function of z gives df/dx - i df/dy).
ad.deflinear(real_p, lambda ct, x: [complex(ct, full_like_aval(get_aval(ct), 0))])
ad.deflinear(imag_p, lambda ct, x: [complex(full_like_aval(get_aval(ct), 0), neg(ct))])
ad.deflinear(complex_p, _complex_transpose)
ad.deflinear(conj_p, _conj_transpose)


def _integer_pow_jvp(t, x, *, y):
    if y == 0:
        return _zeros_like(t)
    return mul(t, mul(_const(x, y), integer_pow(x, y - 1) if y != 1 else _const(x, 1)))


defjvp(integer_pow_p, _integer_pow_jvp)


# digamma's derivative is the trigamma function: polygamma(1, x).
polygamma_p = binop("polygamma", lambda m, x: _special_np.polygamma(m, x), _FLOAT)


def polygamma(m, x):
    """The m-th derivative of digamma (``m`` a non-negative integer-valued float)."""
    return polygamma_p.bind(*binary_operands(m, x))


defjvp(digamma_p, lambda t, x: mul(t, polygamma(_const(x, 1), x)))
defjvp(polygamma_p, None, lambda t, m, x: mul(t, polygamma(add(m, _const(m, 1)), x)))


def unbroadcast(aval: ShapedArray, ct: Any) -> Any:
    """Sum a cotangent down to a scalar operand's shape (rank-0 operands broadcast)."""
    if type(ct) is Zero or get_aval(ct).shape == aval.shape:
        return ct
    return lax_ops.reduce_sum(ct, tuple(range(get_aval(ct).ndim)))


def _add_transpose(ct, x, y):
    return [unbroadcast(x.aval, ct) if is_undefined_primal(x) else None,
            unbroadcast(y.aval, ct) if is_undefined_primal(y) else None]


def _sub_transpose(ct, x, y):
    neg_ct = None if type(ct) is Zero or not is_undefined_primal(y) else neg(ct)
    return [unbroadcast(x.aval, ct) if is_undefined_primal(x) else None,
            unbroadcast(y.aval, neg_ct) if neg_ct is not None else None]


ad.deflinear(add_p, _add_transpose)
ad.deflinear(sub_p, _sub_transpose)

defjvp(mul_p, lambda t, x, y: mul(t, y), lambda t, x, y: mul(x, t))


def _mul_transpose(ct, x, y):
    if is_undefined_primal(x):
        return [unbroadcast(x.aval, mul(ct, y)), None]
    return [None, unbroadcast(y.aval, mul(x, ct))]


ad.primitive_transposes[mul_p] = _mul_transpose

defjvp2(div_p, lambda t, ans, x, y: div(t, y),
        lambda t, ans, x, y: neg(mul(t, div(ans, y))))


def _div_transpose(ct, x, y):
    assert is_undefined_primal(x) and not is_undefined_primal(y)
    return [unbroadcast(x.aval, div(ct, y)), None]


ad.primitive_transposes[div_p] = _div_transpose


def _rem_jvp_y(t, x, y):
    q = div(x, y)
    return neg(mul(t, mul(sign(q), floor(abs(q)))))


defjvp(rem_p, lambda t, x, y: t, _rem_jvp_y)


def _balanced_eq(x, ans, y):
    """1 where ``x`` is the result alone, 1/2 where ``x`` and ``y`` tie, else 0: ties
    split the derivative evenly, as JAX does (only equalities: fine for complex)."""
    aval = get_aval(ans).strip_weak_type()
    one, half, zero = (full_like_aval(aval, v) for v in (1, 0.5, 0))
    return select(eq(x, ans), select(eq(y, ans), half, one), zero)


for _p in (max_p, min_p):
    defjvp2(_p, lambda t, ans, x, y: mul(t, _balanced_eq(x, ans, y)),
            lambda t, ans, x, y: mul(t, _balanced_eq(y, ans, x)))


def _pow_jvp_y(t, ans, x, y):
    zero = _const(x, 0)
    log_x = log(select(eq(x, zero), add(_zeros_like(x), _const(x, 1)), x))
    return mul(t, mul(ans, log_x))


defjvp2(pow_p, lambda t, ans, x, y: mul(t, mul(y, pow(x, sub(y, _const(y, 1))))),
        _pow_jvp_y)
defjvp(atan2_p, lambda t, x, y: mul(t, div(y, add(square(x), square(y)))),
       lambda t, x, y: mul(t, div(neg(x), add(square(x), square(y)))))


def _select_n_jvp(primals, tangents):
    which, *cases = primals
    out = select_n(which, *cases)
    case_tangents = tangents[1:]
    if all(type(t) is Zero for t in case_tangents):
        return out, Zero.from_primal(out)
    ts = [ad.instantiate_zeros(t) for t in case_tangents]
    return out, select_n(which, *ts)


def _select_n_transpose(ct, which, *cases):
    assert not is_undefined_primal(which)
    if type(ct) is Zero:
        return [None] + [Zero(c.aval) if is_undefined_primal(c) else None for c in cases]
    zeros = _zeros_like(ct)
    outs = [None]
    for i, c in enumerate(cases):
        if is_undefined_primal(c):
            picks = [zeros] * len(cases)
            picks[i] = ct
            outs.append(select_n(which, *picks))
        else:
            outs.append(None)
    return outs


ad.primitive_jvps[select_n_p] = _select_n_jvp
ad.primitive_transposes[select_n_p] = _select_n_transpose


def _clamp_jvp(primals, tangents):
    lo, x, hi = primals
    out = clamp(lo, x, hi)
    t_lo, t_x, t_hi = tangents
    total: Any = Zero.from_primal(out)
    shape = get_aval(x).shape

    def bcast(v):
        return v if get_aval(v).shape == shape else lax_ops.broadcast_in_dim(v, shape, ())
    zeros = _zeros_like(x)
    if type(t_x) is not Zero:
        inside = bitwise_and(ge(x, bcast(lo)), le(x, bcast(hi)))
        total = ad.add_tangents(total, select(inside, t_x, zeros))
    if type(t_lo) is not Zero:
        total = ad.add_tangents(total, select(gt(bcast(lo), x), bcast(t_lo), zeros))
    if type(t_hi) is not Zero:
        total = ad.add_tangents(total, select(lt(bcast(hi), x), bcast(t_hi), zeros))
    return out, total


ad.primitive_jvps[clamp_p] = _clamp_jvp


def _convert_jvp(primals, tangents, *, new_dtype, weak_type=False, sharding=None):
    (x,), (t,) = primals, tangents
    out = convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=weak_type,
                                      sharding=sharding)
    if type(t) is Zero or not dtypes.is_inexact(new_dtype) or \
            not dtypes.is_inexact(get_aval(x).dtype):
        return out, Zero.from_primal(out)
    return out, convert_element_type_p.bind(t, new_dtype=new_dtype, weak_type=weak_type,
                                            sharding=sharding)


def _convert_transpose(ct, x, *, new_dtype, weak_type=False, sharding=None):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    return [convert_element_type_p.bind(ct, new_dtype=x.aval.dtype,
                                        weak_type=x.aval.weak_type, sharding=sharding)]


ad.primitive_jvps[convert_element_type_p] = _convert_jvp
ad.primitive_transposes[convert_element_type_p] = _convert_transpose


def _select_n_batch(vals, dims):
    which, *cases = vals
    w_dim, *case_dims = dims
    size = batching.batch_size(vals, dims)
    # A scalar, unbatched predicate can stay scalar.
    if w_dim is None and not get_aval(which).shape:
        case_dims_set = {d for d in case_dims}
        if len(case_dims_set) == 1 and None not in case_dims_set:
            return select_n_p.bind(which, *cases), case_dims[0]
        return select_n_p.bind(which, *[batching.moveaxis(c, d, 0, size)
                                        for c, d in zip(cases, case_dims)]), 0
    cases = [batching.moveaxis(c, d, 0, size) for c, d in zip(cases, case_dims)]
    which = batching.moveaxis(which, w_dim, 0, size)
    if get_aval(which).ndim == 1 and get_aval(cases[0]).ndim > 1:
        # a scalar predicate per example: broadcast it over each example's case
        which = lax_ops.broadcast_in_dim(which, get_aval(cases[0]).shape, (0,))
    return select_n_p.bind(which, *cases), 0


batching.primitive_batchers[select_n_p] = _select_n_batch


def _clamp_batch(vals, dims):
    size = batching.batch_size(vals, dims)
    lo, x, hi = vals
    x = batching.moveaxis(x, dims[1], 0, size)
    shape = get_aval(x).shape
    out_bounds = []
    for b, d in ((lo, dims[0]), (hi, dims[2])):
        if d is None and not get_aval(b).shape:
            out_bounds.append(b)
        elif d is not None and get_aval(b).ndim == 1:  # batched scalar bound
            out_bounds.append(lax_ops.broadcast_in_dim(b, shape, (0,)))
        else:
            out_bounds.append(batching.moveaxis(b, d, 0, size))
    return clamp_p.bind(out_bounds[0], x, out_bounds[1]), 0


batching.primitive_batchers[clamp_p] = _clamp_batch
