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
from tinyjax.array import Array, wrap_eager
from tinyjax.core import get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax.elementwise import _convert_weak
from tinyjax.numpy._util import (check_arraylike, promote_args, promote_args_inexact,
                                 promote_dtypes)

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
        if _state.trace is _eval_trace and type(x1) is Array:
            t2 = type(x2)
            if t2 is Array or t2 in _PY_NUMBERS:
                dt, weak = _lattice_result_type(x1, x2)
                if not inexact or dtypes.is_float(dt):
                    check_kind(dt)
                    v1 = x1._value
                    if v1.dtype != dt:
                        v1 = v1.astype(dt)
                    v2 = x2._value if t2 is Array else x2
                    if t2 is not Array or v2.dtype != dt:
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
