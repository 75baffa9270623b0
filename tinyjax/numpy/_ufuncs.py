"""Elementwise ``tinyjax.numpy`` functions (numpy's ufuncs), built on lax.

Binary functions promote and broadcast their arguments (JAX's rules), then bind
one lax primitive.  In eager mode the simple ones take a fast path straight to
numpy: the same promotion and the same numpy function the primitive runs, but no
tracing machinery — an eager ``x + 1.0`` costs about as much as numpy's.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from tinyjax import core, dtypes, lax
from tinyjax.array import ArrayImpl, wrap_eager
from tinyjax.core import get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax.windowed import register_monoid
from tinyjax.numpy._util import (check_arraylike, promote_args, promote_args_inexact,
                                 promote_dtypes)

__all__ = [
    "abs",
    "absolute",
    "add",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "around",
    "bitwise_and",
    "bitwise_invert",
    "bitwise_left_shift",
    "bitwise_not",
    "bitwise_or",
    "bitwise_right_shift",
    "bitwise_xor",
    "cbrt",
    "ceil",
    "conj",
    "conjugate",
    "copysign",
    "cos",
    "cosh",
    "deg2rad",
    "degrees",
    "divide",
    "divmod",
    "equal",
    "exp",
    "exp2",
    "expm1",
    "fix",
    "float_power",
    "floor",
    "floor_divide",
    "fmax",
    "fmin",
    "fmod",
    "frexp",
    "gcd",
    "greater",
    "greater_equal",
    "heaviside",
    "hypot",
    "imag",
    "invert",
    "isfinite",
    "isinf",
    "isnan",
    "isneginf",
    "isposinf",
    "lcm",
    "ldexp",
    "left_shift",
    "less",
    "less_equal",
    "log",
    "log10",
    "log1p",
    "log2",
    "logaddexp",
    "logaddexp2",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "mod",
    "modf",
    "multiply",
    "negative",
    "nextafter",
    "not_equal",
    "positive",
    "pow",
    "power",
    "rad2deg",
    "radians",
    "real",
    "reciprocal",
    "remainder",
    "right_shift",
    "rint",
    "round",
    "sign",
    "signbit",
    "sin",
    "sinc",
    "sinh",
    "sqrt",
    "square",
    "subtract",
    "tan",
    "tanh",
    "true_divide",
    "trunc",
]

_state = core._state
_eval_trace = core.eval_trace
_lattice_result_type = dtypes.lattice_result_type
_PY_NUMBERS = (int, float)


def _binary_ufunc(name: str, prim: core.Primitive, kinds: str = "number",
                  inexact: bool = False, bool_out: bool = False) -> Callable:
    """A broadcasting, promoting binary function binding ``prim``.

    ``kinds`` restricts the promoted dtype ("number": no bool; "any"; "int_bool").
    """
    np_fn = ew.numpy_binary_functions[prim]
    lax_fn = getattr(lax, prim.name) if prim.name not in ("and", "or", "xor") else \
        getattr(lax, f"bitwise_{prim.name}")

    def check_kind(dt):
        if kinds == "number" and dt == np.bool_:
            raise TypeError(f"{name} does not accept boolean arguments; use "
                            "logical operations or cast to an integer type first.")
        if kinds == "int_bool" and not (dtypes.is_int(dt) or dt == np.bool_):
            raise TypeError(f"{name} requires integer or boolean arguments, got "
                            f"{dt.name}.")

    def fn(x1: Any, x2: Any, /) -> Any:
        if _state.trace is _eval_trace and type(x1) is ArrayImpl and x1._device is None:
            t2 = type(x2)  # the numpy fast path: uncommitted host arrays and scalars only
            if (t2 is ArrayImpl and x2._device is None) or t2 in _PY_NUMBERS:
                dt, weak = _lattice_result_type(x1, x2)
                if not inexact or dtypes.is_float(dt):
                    check_kind(dt)
                    v1 = x1._value
                    if v1.dtype != dt:
                        v1 = v1.astype(dt)
                    v2 = x2._value if t2 is ArrayImpl else x2
                    if t2 is not ArrayImpl or v2.dtype != dt:
                        v2 = np.asarray(v2, dt)
                    out = np_fn(v1, v2)
                    return wrap_eager(out, weak and not bool_out)
        ops = (promote_args_inexact if inexact else promote_args)(name, x1, x2)
        check_kind(get_aval(ops[0]).dtype)
        return lax_fn(*ops)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with numpy broadcasting and JAX type promotion."
    return fn


def _unary_ufunc(name: str, lax_fn: Callable, inexact: bool = True,
                 kinds: str = "number") -> Callable:
    def fn(x: Any, /) -> Any:
        check_arraylike(name, x)
        (x,) = promote_args_inexact(name, x) if inexact else promote_dtypes(x)
        if kinds == "number" and get_aval(x).dtype == np.bool_:
            raise TypeError(f"{name} does not accept boolean arguments.")
        return lax_fn(x)
    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}``."
    return fn


add = _binary_ufunc("add", ew.add_p, "any")
subtract = _binary_ufunc("subtract", ew.sub_p)
multiply = _binary_ufunc("multiply", ew.mul_p, "any")
maximum = _binary_ufunc("maximum", ew.max_p, "any")
minimum = _binary_ufunc("minimum", ew.min_p, "any")
for _ufunc, _kind in ((add, "sum"), (maximum, "max"), (minimum, "min")):
    register_monoid(_ufunc, _kind)  # lax.reduce_window takes them as its computation

true_divide = _binary_ufunc("true_divide", ew.div_p, inexact=True)
divide = true_divide
equal = _binary_ufunc("equal", ew.eq_p, "any", bool_out=True)
not_equal = _binary_ufunc("not_equal", ew.ne_p, "any", bool_out=True)
less = _binary_ufunc("less", ew.lt_p, "any", bool_out=True)
less_equal = _binary_ufunc("less_equal", ew.le_p, "any", bool_out=True)
greater = _binary_ufunc("greater", ew.gt_p, "any", bool_out=True)
greater_equal = _binary_ufunc("greater_equal", ew.ge_p, "any", bool_out=True)
bitwise_and = _binary_ufunc("bitwise_and", ew.and_p, "int_bool")
bitwise_or = _binary_ufunc("bitwise_or", ew.or_p, "int_bool")
bitwise_xor = _binary_ufunc("bitwise_xor", ew.xor_p, "int_bool")
arctan2 = _binary_ufunc("arctan2", ew.atan2_p, inexact=True)
nextafter = _binary_ufunc("nextafter", ew.nextafter_p, inexact=True)


def _add_bool_ok(x1, x2):
    return add(x1, x2)


def logical_and(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value AND."""
    return lax.bitwise_and(*promote_args("logical_and", _as_bool(x1), _as_bool(x2)))


def logical_or(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value OR."""
    return lax.bitwise_or(*promote_args("logical_or", _as_bool(x1), _as_bool(x2)))


def logical_xor(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value XOR."""
    return lax.bitwise_xor(*promote_args("logical_xor", _as_bool(x1), _as_bool(x2)))


def logical_not(x: Any, /) -> Any:
    """Elementwise truth-value NOT."""
    return lax.bitwise_not(_as_bool(x))


def _as_bool(x: Any) -> Any:
    check_arraylike("logical op", x)
    (x,) = promote_dtypes(x)
    if get_aval(x).dtype == np.bool_:
        return x
    return lax.ne(x, lax.full_like_aval(get_aval(x), 0))


def negative(x: Any, /) -> Any:
    """Elementwise ``-x``."""
    return _unary_ufunc("negative", lax.neg, inexact=False)(x)


def positive(x: Any, /) -> Any:
    """Elementwise ``+x`` (a copy of ``x``)."""
    check_arraylike("positive", x)
    return promote_dtypes(x)[0]


def invert(x: Any, /) -> Any:
    """Elementwise bitwise NOT (logical NOT for booleans)."""
    check_arraylike("invert", x)
    (x,) = promote_dtypes(x)
    dt = get_aval(x).dtype
    if not (dtypes.is_int(dt) or dt == np.bool_):
        raise TypeError(f"invert requires integer or boolean arguments, got {dt.name}.")
    return lax.bitwise_not(x)


bitwise_not = invert
bitwise_invert = invert


def absolute(x: Any, /) -> Any:
    """Elementwise absolute value (unsigned and bool values are returned as is)."""
    check_arraylike("absolute", x)
    (x,) = promote_dtypes(x)
    dt = get_aval(x).dtype
    if dtypes.is_unsigned(dt) or dt == np.bool_:
        return x
    return lax.abs(x)


abs = absolute  # noqa: A001


def sign(x: Any, /) -> Any:
    """Elementwise sign: -1, 0 or 1 (nan for nan)."""
    check_arraylike("sign", x)
    (x,) = promote_dtypes(x)
    if get_aval(x).dtype == np.bool_:
        return x
    return lax.sign(x)


sqrt = _unary_ufunc("sqrt", lax.sqrt)
cbrt = _unary_ufunc("cbrt", lax.cbrt)
exp = _unary_ufunc("exp", lax.exp)
exp2 = _unary_ufunc("exp2", lax.exp2)
expm1 = _unary_ufunc("expm1", lax.expm1)
log = _unary_ufunc("log", lax.log)
log1p = _unary_ufunc("log1p", lax.log1p)
sin = _unary_ufunc("sin", lax.sin)
cos = _unary_ufunc("cos", lax.cos)
tan = _unary_ufunc("tan", lax.tan)
arcsin = _unary_ufunc("arcsin", lax.asin)
arccos = _unary_ufunc("arccos", lax.acos)
arctan = _unary_ufunc("arctan", lax.atan)
sinh = _unary_ufunc("sinh", lax.sinh)
cosh = _unary_ufunc("cosh", lax.cosh)
tanh = _unary_ufunc("tanh", lax.tanh)
arcsinh = _unary_ufunc("arcsinh", lax.asinh)
arccosh = _unary_ufunc("arccosh", lax.acosh)
arctanh = _unary_ufunc("arctanh", lax.atanh)


def log2(x: Any, /) -> Any:
    """Elementwise base-2 logarithm."""
    (x,) = promote_args_inexact("log2", x)
    return lax.div(lax.log(x), lax.full_like_aval(get_aval(x), math.log(2)))


def log10(x: Any, /) -> Any:
    """Elementwise base-10 logarithm."""
    (x,) = promote_args_inexact("log10", x)
    return lax.div(lax.log(x), lax.full_like_aval(get_aval(x), math.log(10)))


def square(x: Any, /) -> Any:
    """Elementwise ``x * x``."""
    check_arraylike("square", x)
    (x,) = promote_dtypes(x)
    if get_aval(x).dtype == np.bool_:
        return lax.bitwise_and(x, x)
    return lax.square(x)


def reciprocal(x: Any, /) -> Any:
    """Elementwise ``1 / x``."""
    (x,) = promote_args_inexact("reciprocal", x)
    return lax.div(lax.full_like_aval(get_aval(x), 1), x)


def _float_only_rounding(name: str, lax_fn: Callable) -> Callable:
    def fn(x: Any, /) -> Any:
        check_arraylike(name, x)
        (x,) = promote_dtypes(x)
        if not dtypes.is_float(get_aval(x).dtype):
            return x  # integers are already integral (JAX returns them unchanged)
        return lax_fn(x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}``; integer inputs are returned unchanged."
    return fn


floor = _float_only_rounding("floor", lax.floor)
ceil = _float_only_rounding("ceil", lax.ceil)
trunc = _float_only_rounding("trunc", lambda x: lax.select(
    lax.lt(x, lax.full_like_aval(get_aval(x), 0)), lax.ceil(x), lax.floor(x)))
rint = _float_only_rounding("rint", lambda x: lax.round(
    x, lax.RoundingMethod.TO_NEAREST_EVEN))
fix = trunc


def round(a: Any, decimals: int = 0, out: None = None) -> Any:  # noqa: A001
    """Round to ``decimals`` places, halves to even (numpy's rule)."""
    check_arraylike("round", a)
    (a,) = promote_dtypes(a)
    dt = get_aval(a).dtype
    if not dtypes.is_float(dt):
        if decimals >= 0:
            return a
        factor = lax.full_like_aval(get_aval(a), 10 ** (-decimals))
        return lax.mul(floor_divide(add(a, lax.div(factor, lax.full_like_aval(
            get_aval(a), 2))), factor), factor)
    if decimals == 0:
        return lax.round(a, lax.RoundingMethod.TO_NEAREST_EVEN)
    factor = lax.full_like_aval(get_aval(a), 10.0 ** decimals)
    return lax.div(lax.round(lax.mul(a, factor), lax.RoundingMethod.TO_NEAREST_EVEN), factor)


around = round


def floor_divide(x1: Any, x2: Any, /) -> Any:
    """Elementwise floor of ``x1 / x2``."""
    x1, x2 = promote_args("floor_divide", x1, x2)
    dt = get_aval(x1).dtype
    if dt == np.bool_:
        raise TypeError("floor_divide does not accept boolean arguments")
    if dtypes.is_int(dt):
        q = lax.div(x1, x2)
        zero = lax.full_like_aval(get_aval(x1), 0)
        if dtypes.is_unsigned(dt):
            return q
        adjust = lax.bitwise_and(lax.ne(lax.lt(x1, zero), lax.lt(x2, zero)),
                                 lax.ne(lax.rem(x1, x2), zero))
        return lax.select(adjust, lax.sub(q, lax.full_like_aval(get_aval(q), 1)), q)
    mod = remainder(x1, x2)
    return lax.round(lax.div(lax.sub(x1, mod), x2), lax.RoundingMethod.TO_NEAREST_EVEN)


def remainder(x1: Any, x2: Any, /) -> Any:
    """Elementwise remainder with the sign of the divisor (numpy's ``mod``)."""
    x1, x2 = promote_args("remainder", x1, x2)
    if get_aval(x1).dtype == np.bool_:
        raise TypeError("remainder does not accept boolean arguments")
    r = lax.rem(x1, x2)
    zero = lax.full_like_aval(get_aval(r), 0)
    if dtypes.is_unsigned(get_aval(r).dtype):
        return r
    fix_sign = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(x2, zero)))
    return lax.select(fix_sign, lax.add(r, x2), r)


mod = remainder


def fmod(x1: Any, x2: Any, /) -> Any:
    """Elementwise remainder with the sign of the dividend (C's ``fmod``)."""
    return lax.rem(*promote_args("fmod", x1, x2))


def divmod(x1: Any, x2: Any, /) -> tuple[Any, Any]:  # noqa: A001
    """``(floor_divide(x1, x2), remainder(x1, x2))``."""
    return floor_divide(x1, x2), remainder(x1, x2)


def _int_power(x: Any, y: Any) -> Any:
    """Integer power by repeated squaring over the (at most 64) bits of ``y``."""
    dt = get_aval(x).dtype
    one = lax.full_like_aval(get_aval(x), 1)
    zero = lax.full_like_aval(get_aval(y), 0)
    acc, base, e = one, x, y
    for _ in range(dt.itemsize * 8):
        bit = lax.ne(lax.bitwise_and(e, lax.full_like_aval(get_aval(e), 1)), zero)
        acc = lax.select(bit, lax.mul(acc, base), acc)
        base = lax.mul(base, base)
        e = lax.shift_right_logical(e, lax.full_like_aval(get_aval(e), 1))
    return lax.select(lax.lt(y, zero), lax.full_like_aval(get_aval(x), 0), acc)


def power(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 ** x2``."""
    check_arraylike("power", x1, x2)
    if isinstance(x2, int) and not isinstance(x2, bool) and not isinstance(x1, (int, float)):
        (x1,) = promote_dtypes(x1)
        if dtypes.is_int(get_aval(x1).dtype) and x2 < 0:
            raise ValueError("Integers cannot be raised to negative integer powers.")
        return lax.integer_pow(x1, x2)
    x1, x2 = promote_args("power", x1, x2)
    dt = get_aval(x1).dtype
    if dtypes.is_int(dt) or dt == np.bool_:
        if dt == np.bool_:
            raise TypeError("power does not accept boolean arguments")
        return _int_power(x1, x2)
    return lax.pow(x1, x2)


pow = power  # noqa: A001


def float_power(x1: Any, x2: Any, /) -> Any:
    """``x1 ** x2`` computed in the widest float type enabled."""
    x1, x2 = promote_args_inexact("float_power", x1, x2)
    dt = dtypes.canonicalize_dtype(np.float64)
    return lax.pow(lax.convert_element_type(x1, dt), lax.convert_element_type(x2, dt))


def left_shift(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 << x2``."""
    x1, x2 = promote_args("left_shift", x1, x2)
    return lax.shift_left(x1, x2)


def right_shift(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 >> x2`` (arithmetic for signed, logical for unsigned)."""
    x1, x2 = promote_args("right_shift", x1, x2)
    if dtypes.is_unsigned(get_aval(x1).dtype):
        return lax.shift_right_logical(x1, x2)
    return lax.shift_right_arithmetic(x1, x2)


bitwise_left_shift = left_shift
bitwise_right_shift = right_shift


# ---------------------------------------------------------------------------
# Floating-point classification and sign manipulation
# ---------------------------------------------------------------------------


def _full(x: Any, value: Any, dtype: Any = None) -> Any:
    aval = get_aval(x)
    return lax.full(aval.shape, value, aval.dtype if dtype is None else dtype)


def _is_inexact(x: Any) -> bool:
    return dtypes.is_inexact(get_aval(x).dtype)


def _one_operand(name: str, x: Any) -> Any:
    check_arraylike(name, x)
    return promote_dtypes(x)[0]


def isnan(x: Any, /) -> Any:
    """Elementwise test for NaN (always False for integers and bools)."""
    x = _one_operand("isnan", x)
    return lax.ne(x, x) if _is_inexact(x) else _full(x, False, np.bool_)


def isinf(x: Any, /) -> Any:
    """Elementwise test for positive or negative infinity."""
    x = _one_operand("isinf", x)
    if not _is_inexact(x):
        return _full(x, False, np.bool_)
    return lax.eq(lax.abs(x), _full(x, np.inf))


def isfinite(x: Any, /) -> Any:
    """Elementwise test for finiteness (not infinite and not NaN)."""
    x = _one_operand("isfinite", x)
    return lax.is_finite(x) if _is_inexact(x) else _full(x, True, np.bool_)


def _isinf_signed(name: str, value: float) -> Callable:
    def fn(x: Any, /) -> Any:
        x = _one_operand(name, x)
        return lax.eq(x, _full(x, value)) if _is_inexact(x) else _full(x, False, np.bool_)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise test for {'positive' if value > 0 else 'negative'} infinity."
    return fn


isposinf = _isinf_signed("isposinf", np.inf)
isneginf = _isinf_signed("isneginf", -np.inf)

_BITS_INT = {2: np.int16, 4: np.int32, 8: np.int64}


def signbit(x: Any, /) -> Any:
    """Elementwise test of the sign bit (True for -0.0 and negative NaNs)."""
    x = _one_operand("signbit", x)
    dt = get_aval(x).dtype
    if dt == np.bool_ or dtypes.is_unsigned(dt):
        return _full(x, False, np.bool_)
    if dtypes.is_int(dt):
        return lax.lt(x, _full(x, 0))
    bits = lax.bitcast_convert_type(x, _BITS_INT[dt.itemsize])
    return lax.lt(bits, _full(bits, 0))


def copysign(x1: Any, x2: Any, /) -> Any:
    """``|x1|`` with the sign of ``x2``."""
    x1, x2 = promote_args_inexact("copysign", x1, x2)
    return lax.select(signbit(x2), lax.neg(lax.abs(x1)), lax.abs(x1))


def fmax(x1: Any, x2: Any, /) -> Any:
    """Elementwise maximum that ignores NaNs (NaN only where both are NaN)."""
    x1, x2 = promote_args("fmax", x1, x2)
    return lax.select(lax.bitwise_or(lax.gt(x1, x2), isnan(x2)), x1, x2)


def fmin(x1: Any, x2: Any, /) -> Any:
    """Elementwise minimum that ignores NaNs (NaN only where both are NaN)."""
    x1, x2 = promote_args("fmin", x1, x2)
    return lax.select(lax.bitwise_or(lax.lt(x1, x2), isnan(x2)), x1, x2)


def heaviside(x1: Any, x2: Any, /) -> Any:
    """Heaviside step: 0 where ``x1 < 0``, ``x2`` where ``x1 == 0``, 1 where ``x1 > 0``."""
    x1, x2 = promote_args_inexact("heaviside", x1, x2)
    zero = _full(x1, 0)
    return lax.select(lax.lt(x1, zero), zero,
                      lax.select(lax.gt(x1, zero), _full(x1, 1), x2))


def hypot(x1: Any, x2: Any, /) -> Any:
    """``sqrt(x1**2 + x2**2)`` computed without overflow or underflow."""
    x1, x2 = promote_args_inexact("hypot", x1, x2)
    x1, x2 = lax.abs(x1), lax.abs(x2)
    idx_inf = lax.bitwise_or(isposinf(x1), isposinf(x2))
    big, small = lax.max(x1, x2), lax.min(x1, x2)
    is_zero = lax.eq(big, _full(big, 0))
    safe = lax.select(is_zero, _full(big, 1), big)
    ratio = lax.div(small, safe)
    out = lax.select(is_zero, big,
                     lax.mul(big, lax.sqrt(lax.add(_full(ratio, 1), lax.square(ratio)))))
    return lax.select(idx_inf, _full(out, np.inf), out)


def _replace_posinf(x: Any) -> Any:
    return lax.select(isposinf(x), _full(x, 0), x)


def _logaddexp_impl(x1: Any, x2: Any) -> Any:
    amax = lax.max(x1, x2)
    # a NaN input, or infinities of one sign: x1 + x2 is the answer (and x1 - x2 would
    # be NaN), so those lanes subtract zeros instead
    special = lax.bitwise_or(lax.bitwise_or(lax.ne(x1, x1), lax.ne(x2, x2)),
                             lax.bitwise_and(lax.eq(x1, x2), isinf(x1)))
    zero = _full(x1, 0)
    delta = lax.sub(lax.select(special, zero, x1), lax.select(special, zero, x2))
    both = lax.add(lax.select(special, x1, zero), lax.select(special, x2, zero))
    return lax.select(special, both,
                      lax.add(amax, lax.log1p(lax.exp(lax.neg(lax.abs(delta))))))


def _make_logaddexp():
    from tinyjax.custom_derivatives import custom_jvp

    @custom_jvp
    def _lae(x1, x2):
        return _logaddexp_impl(x1, x2)

    @_lae.defjvp
    def _lae_jvp(primals, tangents):
        x1, x2 = primals
        t1, t2 = tangents
        out = _lae(x1, x2)
        # exp(x - out) with +inf replaced, so that inf inputs give finite weights
        w1 = lax.exp(lax.sub(_replace_posinf(x1), _replace_posinf(out)))
        w2 = lax.exp(lax.sub(_replace_posinf(x2), _replace_posinf(out)))
        return out, lax.add(lax.mul(t1, w1), lax.mul(t2, w2))
    return _lae


_logaddexp_cjvp = None


def logaddexp(x1: Any, x2: Any, /) -> Any:
    """``log(exp(x1) + exp(x2))`` without overflow (exact for infinities)."""
    global _logaddexp_cjvp
    x1, x2 = promote_args_inexact("logaddexp", x1, x2)
    if _logaddexp_cjvp is None:
        _logaddexp_cjvp = _make_logaddexp()
    return _logaddexp_cjvp(x1, x2)


def logaddexp2(x1: Any, x2: Any, /) -> Any:
    """``log2(2**x1 + 2**x2)`` without overflow."""
    x1, x2 = promote_args_inexact("logaddexp2", x1, x2)
    ln2 = _full(x1, math.log(2))
    return lax.div(logaddexp(lax.mul(x1, ln2), lax.mul(x2, ln2)), ln2)


def sinc(x: Any, /) -> Any:
    """``sin(pi x) / (pi x)``, 1 at 0 (with the right derivatives there)."""
    (x,) = promote_args_inexact("sinc", x)
    eq_zero = lax.eq(x, _full(x, 0))
    pi_x = lax.mul(_full(x, np.pi), x)
    safe = lax.select(eq_zero, _full(x, 1), pi_x)
    # At 0 the Maclaurin polynomial (value 1) carries the derivatives of sinc there.
    y2 = lax.square(pi_x)
    series = lax.add(_full(x, 1), lax.mul(y2, lax.add(_full(x, -1 / 6), lax.mul(
        y2, _full(x, 1 / 120)))))
    return lax.select(eq_zero, series, lax.div(lax.sin(safe), safe))


def deg2rad(x: Any, /) -> Any:
    """Degrees to radians."""
    (x,) = promote_args_inexact("deg2rad", x)
    return lax.mul(x, _full(x, np.pi / 180))


def rad2deg(x: Any, /) -> Any:
    """Radians to degrees."""
    (x,) = promote_args_inexact("rad2deg", x)
    return lax.mul(x, _full(x, 180 / np.pi))


radians = deg2rad
degrees = rad2deg


# ---------------------------------------------------------------------------
# Complex parts (tinyjax has real dtypes only: identities and zeros)
# ---------------------------------------------------------------------------


def _real_only(name: str, x: Any) -> Any:
    x = _one_operand(name, x)
    if dtypes.is_complex(get_aval(x).dtype):
        raise NotImplementedError(f"jnp.{name}: complex dtypes are not supported by tinyjax.")
    return x


def conjugate(x: Any, /) -> Any:
    """Complex conjugate (the identity for real dtypes)."""
    return _real_only("conjugate", x)


conj = conjugate


def real(val: Any, /) -> Any:
    """Real part (the identity for real dtypes)."""
    return _real_only("real", val)


def imag(val: Any, /) -> Any:
    """Imaginary part (zeros for real dtypes)."""
    x = _real_only("imag", val)
    return _full(x, 0)


# ---------------------------------------------------------------------------
# Decompositions and integer functions
# ---------------------------------------------------------------------------


def modf(x: Any, /, out: None = None) -> tuple[Any, Any]:
    """``(x - trunc(x), trunc(x))``: fractional and integral parts."""
    (x,) = promote_args_inexact("modf", x)
    whole = trunc(x)
    return lax.sub(x, whole), whole


def ldexp(x1: Any, x2: Any, /) -> Any:
    """``x1 * 2**x2`` (``x2`` an integer array)."""
    check_arraylike("ldexp", x1, x2)
    (x2,) = promote_dtypes(x2)
    if not (dtypes.is_int(get_aval(x2).dtype) or get_aval(x2).dtype == np.bool_):
        raise ValueError(f"ldexp exponent must be an integer type; got {get_aval(x2).dtype}")
    (x1,) = promote_args_inexact("ldexp", x1)
    x1, x2f = promote_args("ldexp", x1, lax.convert_element_type(x2, get_aval(x1).dtype))
    # two steps keep 2**x2 finite where the product is (x2 up to twice the max exponent)
    half = lax.floor(lax.div(x2f, _full(x2f, 2)))
    two = _full(x1, 2)
    return lax.mul(lax.mul(x1, lax.pow(two, half)), lax.pow(two, lax.sub(x2f, half)))


def _euclid_steps(dt: np.dtype) -> int:
    return int(dt.itemsize * 8 * 1.45) + 2


def gcd(x1: Any, x2: Any, /) -> Any:
    """Greatest common divisor of ``|x1|`` and ``|x2|`` (integers)."""
    x1, x2 = promote_args("gcd", x1, x2)
    dt = get_aval(x1).dtype
    if not dtypes.is_int(dt):
        raise ValueError("Arguments to jax.numpy.gcd must be integers.")
    a, b = absolute(x1), absolute(x2)
    zero = _full(a, 0)
    # Euclid's algorithm, unrolled over the worst case (consecutive Fibonacci numbers)
    for _ in range(_euclid_steps(dt)):
        nz = lax.ne(b, zero)
        safe_b = lax.select(nz, b, _full(b, 1))
        a, b = lax.select(nz, b, a), lax.select(nz, lax.rem(a, safe_b), zero)
    return a


def lcm(x1: Any, x2: Any, /) -> Any:
    """Least common multiple of ``|x1|`` and ``|x2|`` (integers)."""
    x1, x2 = promote_args("lcm", x1, x2)
    dt = get_aval(x1).dtype
    if not dtypes.is_int(dt):
        raise ValueError("Arguments to jax.numpy.lcm must be integers.")
    d = gcd(x1, x2)
    zero = _full(d, 0)
    is_zero = lax.eq(d, zero)
    a, b = absolute(x1), absolute(x2)
    return lax.select(is_zero, zero,
                      lax.mul(a, lax.div(b, lax.select(is_zero, _full(d, 1), d))))


def frexp(x: Any, /) -> tuple[Any, Any]:
    """``(mantissa, exponent)`` with ``x == mantissa * 2**exponent``, ``0.5 <= |mantissa|
    < 1`` (zeros, infinities and NaNs: ``(x, 0)``); the exponent is int32."""
    (x,) = promote_args_inexact("frexp", x)
    dt = get_aval(x).dtype
    info = dtypes.finfo(dt)
    int_dt = _BITS_INT[dt.itemsize]
    mask, bias = (1 << info.nexp) - 1, 1 - info.minexp
    # scale subnormals into the normal range first
    tiny = lax.lt(lax.abs(x), _full(x, info.tiny))
    bits = lax.bitcast_convert_type(lax.select(tiny, lax.mul(x, _full(x, 1 << info.nmant)),
                                               x), int_dt)
    exp = lax.select(tiny, _full(bits, -info.nmant), _full(bits, 0))
    nmant = _full(bits, info.nmant)
    exp = lax.add(exp, lax.add(lax.bitwise_and(lax.shift_right_logical(bits, nmant),
                                               _full(bits, mask)), _full(bits, 1 - bias)))
    bits = lax.bitwise_and(bits, _full(bits, ~(mask << info.nmant)))
    bits = lax.bitwise_or(bits, _full(bits, (bias - 1) << info.nmant))
    mant = lax.bitcast_convert_type(bits, dt)
    special = lax.bitwise_or(lax.bitwise_not(isfinite(x)), lax.eq(x, _full(x, 0)))
    exp = lax.select(special, _full(exp, 0), exp)
    return lax.select(special, x, mant), lax.convert_element_type(exp, np.int32)
