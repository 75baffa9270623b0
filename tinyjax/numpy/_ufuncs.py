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
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.windowed import register_monoid
from tinyjax.numpy import _extended
from tinyjax.numpy._extended import is_extended
from tinyjax.numpy._util import (check_arraylike, promote_args, promote_args_inexact,
                                 promote_args_numeric, promote_dtypes, select_broadcast)

__all__ = [
    "isrealobj",
    "isreal",
    "iscomplexobj",
    "iscomplex",
    "angle",
    "abs",
    "absolute",
    "add",
    "acos",
    "acosh",
    "arccos",
    "arccosh",
    "arcsin",
    "arcsinh",
    "arctan",
    "arctan2",
    "arctanh",
    "around",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "bitwise_count",
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
    "fabs",
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
    "spacing",
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
                  inexact: bool = False,
                  bool_fn: Callable | None = None,
                  extended_fn: Callable | None = None) -> Callable:
    """A broadcasting, promoting binary function binding ``prim``.

    ``kinds`` restricts the promoted dtype ("number": no bool; "any"; "int_bool");
    ``bool_fn`` is the lax function for boolean operands (add is OR, multiply AND);
    ``extended_fn`` the function for arrays of extended dtypes (key arrays), which the
    others do not take.
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
                    if t2 is ArrayImpl:
                        v2 = x2._value
                        if v2.dtype != dt:
                            v2 = v2.astype(dt)
                    else:
                        v2 = dtypes.python_scalar_array(x2, dt)
                    out = np_fn(v1, v2)
                    return wrap_eager(out, weak)
        if extended_fn is not None and (is_extended(x1) or is_extended(x2)):
            return extended_fn(x1, x2)
        ops = (promote_args_inexact if inexact else promote_args)(name, x1, x2)
        dt = get_aval(ops[0]).dtype
        check_kind(dt)
        if prim in _ORDERINGS and dtypes.is_complex(dt):
            return _lexicographic(lax_fn, *ops)
        return (bool_fn if bool_fn is not None and dt == np.bool_ else lax_fn)(*ops)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with numpy broadcasting and JAX type promotion."
    return fn


_ORDERINGS = frozenset({ew.lt_p, ew.le_p, ew.gt_p, ew.ge_p})


def _lexicographic(lax_fn: Callable, x: Any, y: Any) -> Any:
    """An ordering of complex numbers by real part, then imaginary part (numpy's and
    JAX's)."""
    xr, yr = lax.real(x), lax.real(y)
    return lax.select(lax.eq(xr, yr), lax_fn(lax.imag(x), lax.imag(y)), lax_fn(xr, yr))


def _no_complex(name: str, dt: np.dtype) -> None:
    if dtypes.is_complex(dt):
        raise TypeError(f"{name} does not support complex-valued inputs")


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


add = _binary_ufunc("add", ew.add_p, "any", bool_fn=lax.bitwise_or)
subtract = _binary_ufunc("subtract", ew.sub_p)
multiply = _binary_ufunc("multiply", ew.mul_p, "any", bool_fn=lax.bitwise_and)
maximum = _binary_ufunc("maximum", ew.max_p, "any")
minimum = _binary_ufunc("minimum", ew.min_p, "any")
for _ufunc, _kind in ((add, "sum"), (maximum, "max"), (minimum, "min")):
    register_monoid(_ufunc, _kind)  # lax.reduce_window takes them as its computation

true_divide = _binary_ufunc("true_divide", ew.div_p, inexact=True)
divide = true_divide
# key arrays compare key by key, as JAX's
equal = _binary_ufunc("equal", ew.eq_p, "any", extended_fn=_extended.equal)
not_equal = _binary_ufunc(
    "not_equal", ew.ne_p, "any",
    extended_fn=lambda x1, x2: lax.bitwise_not(_extended.equal(x1, x2, "not_equal")))
less = _binary_ufunc("less", ew.lt_p, "any")
less_equal = _binary_ufunc("less_equal", ew.le_p, "any")
greater = _binary_ufunc("greater", ew.gt_p, "any")
greater_equal = _binary_ufunc("greater_equal", ew.ge_p, "any")
bitwise_and = _binary_ufunc("bitwise_and", ew.and_p, "int_bool")
bitwise_or = _binary_ufunc("bitwise_or", ew.or_p, "int_bool")
bitwise_xor = _binary_ufunc("bitwise_xor", ew.xor_p, "int_bool")
arctan2 = _binary_ufunc("arctan2", ew.atan2_p, inexact=True)
nextafter = _binary_ufunc("nextafter", ew.nextafter_p, inexact=True)


def logical_and(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value AND."""
    return lax.bitwise_and(*map(_as_bool, promote_args("logical_and", x1, x2)))


def logical_or(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value OR."""
    return lax.bitwise_or(*map(_as_bool, promote_args("logical_or", x1, x2)))


def logical_xor(x1: Any, x2: Any, /) -> Any:
    """Elementwise truth-value XOR."""
    return lax.bitwise_xor(*map(_as_bool, promote_args("logical_xor", x1, x2)))


def logical_not(x: Any, /) -> Any:
    """Elementwise truth-value NOT."""
    return lax.bitwise_not(_as_bool(x))


def _as_bool(x: Any) -> Any:
    check_arraylike("logical op", x)
    (x,) = promote_dtypes(x)
    if get_aval(x).dtype == np.bool_:
        return x
    return lax.ne(x, _full(x, 0))


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


def _log_base(name: str, x: Any, base: float) -> Any:
    (x,) = promote_args_inexact(name, x)
    # a complex log is divided part by part (so log(0) stays -inf + 0j)
    return _by_parts(lambda v: lax.div(v, lax.full_like_aval(get_aval(v), math.log(base))))(
        lax.log(x))


def log2(x: Any, /) -> Any:
    """Elementwise base-2 logarithm."""
    return _log_base("log2", x, 2)


def log10(x: Any, /) -> Any:
    """Elementwise base-10 logarithm."""
    return _log_base("log10", x, 10)


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
    return lax.div(_full(x, 1), x)


def _float_only_rounding(name: str, lax_fn: Callable) -> Callable:
    def fn(x: Any, /) -> Any:
        check_arraylike(name, x)
        (x,) = promote_dtypes(x)
        if not dtypes.is_inexact(get_aval(x).dtype):
            return x  # integers are already integral (JAX returns them unchanged)
        return lax_fn(x)  # complex: lax's error, as JAX's
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}``; integer inputs are returned unchanged."
    return fn


floor = _float_only_rounding("floor", lax.floor)
ceil = _float_only_rounding("ceil", lax.ceil)
trunc = _float_only_rounding("trunc", lambda x: select_broadcast(
    lax.lt(x, _full(x, 0)), lax.ceil(x), lax.floor(x)))


def _by_parts(fn: Callable) -> Callable:
    """``fn`` applied to the real and imaginary parts of a complex operand."""
    def apply(x):
        if dtypes.is_complex(get_aval(x).dtype):
            return lax.complex(fn(lax.real(x)), fn(lax.imag(x)))
        return fn(x)
    return apply


rint = _float_only_rounding("rint", _by_parts(lambda x: lax.round(
    x, lax.RoundingMethod.TO_NEAREST_EVEN)))
fix = trunc


def round(a: Any, decimals: int = 0, out: None = None) -> Any:  # noqa: A001
    """Round to ``decimals`` places, halves to even (numpy's rule)."""
    check_arraylike("round", a)
    (a,) = promote_dtypes(a)
    dt = get_aval(a).dtype
    if dtypes.is_complex(dt):
        return _by_parts(lambda part: round(part, decimals))(a)
    if not dtypes.is_float(dt):
        if decimals >= 0:
            return a
        factor = _full(a, 10 ** (-decimals))
        return lax.mul(floor_divide(add(a, lax.div(factor, lax.full_like_aval(
            get_aval(a), 2))), factor), factor)
    if decimals == 0:
        return lax.round(a, lax.RoundingMethod.TO_NEAREST_EVEN)
    factor = _full(a, 10.0 ** decimals)
    return lax.div(lax.round(lax.mul(a, factor), lax.RoundingMethod.TO_NEAREST_EVEN), factor)


around = round


def floor_divide(x1: Any, x2: Any, /) -> Any:
    """Elementwise floor of ``x1 / x2`` (integer division by zero gives JAX's values:
    lax.div's -1, one less where the signs differ)."""
    x1, x2 = promote_args_numeric("floor_divide", x1, x2)
    dt = get_aval(x1).dtype
    _no_complex("floor_divide", dt)
    if dtypes.is_unsigned(dt):
        return lax.div(x1, x2)
    if dtypes.is_int(dt):
        q = lax.div(x1, x2)
        adjust = lax.bitwise_and(lax.ne(lax.sign(x1), lax.sign(x2)),
                                 lax.ne(lax.rem(x1, x2), _full(x1, 0)))
        return select_broadcast(adjust, lax.sub(q, _full(q, 1)), q)
    return _float_divmod(x1, x2)[0]


def _float_divmod(x1: Any, x2: Any) -> tuple[Any, Any]:
    """Python's float ``divmod`` (CPython's float_divmod), elementwise."""
    mod = lax.rem(x1, x2)
    div = lax.div(select_broadcast(lax.eq(x2, _full(x2, 0)), x1, lax.sub(x1, mod)), x2)
    fix = lax.bitwise_and(lax.ne(mod, _full(mod, 0)), lax.ne(lax.sign(x2), lax.sign(mod)))
    mod = select_broadcast(fix, lax.add(mod, x2), mod)
    div = select_broadcast(fix, lax.sub(div, _full(div, 1)), div)
    return lax.round(div, lax.RoundingMethod.TO_NEAREST_EVEN), mod


def remainder(x1: Any, x2: Any, /) -> Any:
    """Elementwise remainder with the sign of the divisor (numpy's ``mod``); an integer
    remainder by zero is 0, as in JAX."""
    x1, x2 = promote_args_numeric("remainder", x1, x2)
    dt = get_aval(x1).dtype
    if dtypes.is_int(dt):
        x2 = select_broadcast(lax.eq(x2, _full(x2, 0)), _full(x2, 1), x2)
    r = lax.rem(x1, x2)
    if dtypes.is_unsigned(dt):
        return r
    zero = _full(r, 0)
    fix_sign = lax.bitwise_and(lax.ne(r, zero), lax.ne(lax.lt(r, zero), lax.lt(x2, _full(x2, 0))))
    return select_broadcast(fix_sign, lax.add(r, x2), r)


mod = remainder


def fmod(x1: Any, x2: Any, /) -> Any:
    """Elementwise remainder with the sign of the dividend (C's ``fmod``)."""
    return lax.rem(*promote_args_numeric("fmod", x1, x2))


def divmod(x1: Any, x2: Any, /) -> tuple[Any, Any]:  # noqa: A001
    """``(floor_divide(x1, x2), remainder(x1, x2))``."""
    return floor_divide(x1, x2), remainder(x1, x2)


def _int_power(x: Any, y: Any) -> Any:
    """Integer power by repeated squaring over the (at most 64) bits of ``y``."""
    dt = get_aval(x).dtype
    one = _full(x, 1, dt)        # strong: JAX's integer power has a strong result
    zero = _full(y, 0)
    acc, base, e = one, x, y
    for _ in range(dt.itemsize * 8):
        bit = lax.ne(lax.bitwise_and(e, _full(e, 1)), zero)
        acc = select_broadcast(bit, lax.mul(acc, base), acc)
        base = lax.mul(base, base)
        e = lax.shift_right_logical(e, _full(e, 1))
    return select_broadcast(lax.lt(y, zero), _full(x, 0), acc)


def _concrete_int(x: Any) -> int | None:
    """``x`` as a Python int when it is a concrete integer scalar (not a tracer)."""
    if isinstance(x, int):          # Python bools too (operator.index accepts them)
        return int(x)
    if type(x) is ArrayImpl or isinstance(x, (np.ndarray, np.integer)):
        value = np.asarray(x._value if type(x) is ArrayImpl else x)
        if value.ndim == 0 and dtypes.is_int(value.dtype):
            return int(value)
    return None


def power(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 ** x2``: a concrete integer exponent is an ``integer_pow``
    (exact for integers, differentiable at 0), integer bases use binary
    exponentiation, otherwise ``lax.pow`` after promotion (JAX's cases)."""
    check_arraylike("power", x1, x2)
    exponent = _concrete_int(x2)
    if exponent is not None:
        (x1,) = promote_dtypes(x1)
        if get_aval(x1).dtype == np.bool_:
            x1 = lax.convert_element_type(x1, dtypes.default_int_dtype())
        if dtypes.is_int(get_aval(x1).dtype) and exponent < 0:
            raise ValueError("Integers cannot be raised to negative integer powers.")
        return lax.integer_pow(x1, exponent)
    x1, x2 = promote_args_numeric("power", x1, x2)
    if dtypes.is_int(get_aval(x1).dtype):
        return _int_power(x1, x2)
    return lax.pow(x1, x2)


pow = power  # noqa: A001


def float_power(x1: Any, x2: Any, /) -> Any:
    """``x1 ** x2`` after promotion to an inexact type."""
    return lax.pow(*promote_args_inexact("float_power", x1, x2))


def left_shift(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 << x2``."""
    x1, x2 = promote_args_numeric("left_shift", x1, x2)
    return lax.shift_left(x1, x2)


def right_shift(x1: Any, x2: Any, /) -> Any:
    """Elementwise ``x1 >> x2`` (arithmetic for signed, logical for unsigned)."""
    x1, x2 = promote_args_numeric("right_shift", x1, x2)
    if dtypes.is_unsigned(get_aval(x1).dtype):
        return lax.shift_right_logical(x1, x2)
    return lax.shift_right_arithmetic(x1, x2)


bitwise_left_shift = left_shift
bitwise_right_shift = right_shift


# ---------------------------------------------------------------------------
# Floating-point classification and sign manipulation
# ---------------------------------------------------------------------------


def _full(x: Any, value: Any, dtype: Any = None) -> Any:
    """An array of ``x``'s shape filled with ``value``: of ``x``'s dtype and weak type
    (so constants in a composition keep a weakly typed result weak), or of ``dtype``."""
    aval = get_aval(x)
    if dtype is not None:
        return lax.full(aval.shape, value, dtype)
    return lax.full(aval.shape, as_operand(value, aval.dtype, aval.weak_type))


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
    """Elementwise test for positive or negative infinity (of either part, if complex)."""
    x = _one_operand("isinf", x)
    if not _is_inexact(x):
        return _full(x, False, np.bool_)
    if dtypes.is_complex(get_aval(x).dtype):
        return lax.bitwise_or(isinf(lax.real(x)), isinf(lax.imag(x)))
    return lax.eq(lax.abs(x), _full(x, np.inf))


def isfinite(x: Any, /) -> Any:
    """Elementwise test for finiteness (not infinite and not NaN; both parts, if complex)."""
    x = _one_operand("isfinite", x)
    if dtypes.is_complex(get_aval(x).dtype):
        return lax.bitwise_and(lax.is_finite(lax.real(x)), lax.is_finite(lax.imag(x)))
    return lax.is_finite(x) if _is_inexact(x) else _full(x, True, np.bool_)


def _isinf_signed(name: str, value: float) -> Callable:
    def fn(x: Any, /) -> Any:
        x = _one_operand(name, x)
        if dtypes.is_complex(get_aval(x).dtype):
            raise ValueError("isposinf/isneginf are not well defined for complex types")
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
    if dtypes.is_complex(dt):
        raise ValueError(f"jax.numpy.signbit is not well defined for {dt.name}")
    if dt == np.bool_ or dtypes.is_unsigned(dt):
        return _full(x, False, np.bool_)
    if dtypes.is_int(dt):
        return lax.lt(x, _full(x, 0))
    bits = lax.bitcast_convert_type(x, _BITS_INT[dt.itemsize])
    return lax.lt(bits, _full(bits, 0))


def copysign(x1: Any, x2: Any, /) -> Any:
    """``|x1|`` with the sign of ``x2``."""
    x1, x2 = promote_args_inexact("copysign", x1, x2)
    _no_complex("copysign", get_aval(x1).dtype)
    return select_broadcast(signbit(x2), lax.neg(lax.abs(x1)), lax.abs(x1))


def fmax(x1: Any, x2: Any, /) -> Any:
    """Elementwise maximum that ignores NaNs (NaN only where both are NaN)."""
    x1, x2 = promote_args("fmax", x1, x2)
    return select_broadcast(lax.bitwise_or(lax.gt(x1, x2), isnan(x2)), x1, x2)


def fmin(x1: Any, x2: Any, /) -> Any:
    """Elementwise minimum that ignores NaNs (NaN only where both are NaN)."""
    x1, x2 = promote_args("fmin", x1, x2)
    return select_broadcast(lax.bitwise_or(lax.lt(x1, x2), isnan(x2)), x1, x2)


def heaviside(x1: Any, x2: Any, /) -> Any:
    """Heaviside step: 0 where ``x1 < 0``, ``x2`` where ``x1 == 0``, 1 where ``x1 > 0``."""
    x1, x2 = promote_args_inexact("heaviside", x1, x2)
    zero = _full(x1, 0)
    return select_broadcast(lax.lt(x1, zero), zero,
                      select_broadcast(lax.gt(x1, zero), _full(x1, 1), x2))


def hypot(x1: Any, x2: Any, /) -> Any:
    """``sqrt(x1**2 + x2**2)`` computed without overflow or underflow."""
    x1, x2 = promote_args_inexact("hypot", x1, x2)
    if dtypes.is_complex(get_aval(x1).dtype):
        raise ValueError("jnp.hypot is not well defined for complex-valued inputs. Please "
                         "convert to real values first, such as by using abs(x)")
    x1, x2 = lax.abs(x1), lax.abs(x2)
    idx_inf = lax.bitwise_or(isposinf(x1), isposinf(x2))
    big, small = lax.max(x1, x2), lax.min(x1, x2)
    is_zero = lax.eq(big, _full(big, 0))
    safe = select_broadcast(is_zero, _full(big, 1), big)
    ratio = lax.div(small, safe)
    out = select_broadcast(is_zero, big,
                     lax.mul(big, lax.sqrt(lax.add(_full(ratio, 1), lax.square(ratio)))))
    return select_broadcast(idx_inf, _full(out, np.inf), out)


def _replace_posinf(x: Any) -> Any:
    return select_broadcast(isposinf(x), _full(x, 0), x)


def _logaddexp_impl(x1: Any, x2: Any) -> Any:
    amax = lax.max(x1, x2)
    # a NaN input, or infinities of one sign: x1 + x2 is the answer (and x1 - x2 would
    # be NaN), so those lanes subtract zeros instead
    special = lax.bitwise_or(lax.bitwise_or(lax.ne(x1, x1), lax.ne(x2, x2)),
                             lax.bitwise_and(lax.eq(x1, x2), isinf(x1)))
    zero = _full(x1, 0)
    delta = lax.sub(select_broadcast(special, zero, x1), select_broadcast(special, zero, x2))
    both = lax.add(select_broadcast(special, x1, zero), select_broadcast(special, x2, zero))
    return select_broadcast(special, both,
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
    if dtypes.is_complex(get_aval(x1).dtype):
        # shift by the operand of larger real part: a + log1p(exp(b - a))
        first = lax.ge(lax.real(x1), lax.real(x2))
        a, b = lax.select(first, x1, x2), lax.select(first, x2, x1)
        return lax.add(a, lax.log1p(lax.exp(lax.sub(b, a))))
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
    safe = select_broadcast(eq_zero, _full(x, 1), pi_x)
    # At 0 the Maclaurin polynomial (value 1) carries the derivatives of sinc there.
    y2 = lax.square(pi_x)
    series = lax.add(_full(x, 1), lax.mul(y2, lax.add(_full(x, -1 / 6), lax.mul(
        y2, _full(x, 1 / 120)))))
    return select_broadcast(eq_zero, series, lax.div(lax.sin(safe), safe))


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
# Complex parts
# ---------------------------------------------------------------------------


def conjugate(x: Any, /) -> Any:
    """Complex conjugate (``x`` itself for real dtypes)."""
    x = _one_operand("conjugate", x)
    return lax.conj(x) if dtypes.is_complex(get_aval(x).dtype) else x


conj = conjugate


def real(val: Any, /) -> Any:
    """Real part (``val`` itself for real dtypes)."""
    x = _one_operand("real", val)
    return lax.real(x) if dtypes.is_complex(get_aval(x).dtype) else x


def imag(val: Any, /) -> Any:
    """Imaginary part (zeros of ``val``'s dtype for real dtypes)."""
    x = _one_operand("imag", val)
    return lax.imag(x) if dtypes.is_complex(get_aval(x).dtype) else _full(x, 0)


def angle(z: Any, deg: bool = False) -> Any:
    """The argument of ``z`` (``atan2(imag, real)``), in radians or degrees; a float."""
    (z,) = promote_args_inexact("angle", z)
    re, im = real(z), imag(z)
    out = lax.atan2(im, re)
    return rad2deg(out) if deg else out


def iscomplex(x: Any, /) -> Any:
    """Elementwise: a complex dtype with a nonzero imaginary part."""
    i = imag(_one_operand("iscomplex", x))
    return lax.ne(i, _full(i, 0))


def isreal(x: Any, /) -> Any:
    """Elementwise: a real dtype, or a zero imaginary part."""
    i = imag(_one_operand("isreal", x))
    return lax.eq(i, _full(i, 0))


def iscomplexobj(x: Any, /) -> bool:
    """Whether ``x`` has a complex dtype (``x`` may be any array-like or None)."""
    if x is None:
        return False
    return dtypes.is_complex(dtypes.dtype(x) if not hasattr(x, "dtype") else x.dtype)


def isrealobj(x: Any, /) -> bool:
    """Whether ``x`` has a real (not complex) dtype."""
    return not iscomplexobj(x)


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
        safe_b = select_broadcast(nz, b, _full(b, 1))
        a, b = select_broadcast(nz, b, a), select_broadcast(nz, lax.rem(a, safe_b), zero)
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
    return select_broadcast(is_zero, zero,
                      lax.mul(a, lax.div(b, select_broadcast(is_zero, _full(d, 1), d))))


def frexp(x: Any, /) -> tuple[Any, Any]:
    """``(mantissa, exponent)`` with ``x == mantissa * 2**exponent``, ``0.5 <= |mantissa|
    < 1`` (zeros, infinities and NaNs: ``(x, 0)``); the exponent is int32."""
    (x,) = promote_args_inexact("frexp", x)
    dt = get_aval(x).dtype
    _no_complex("frexp", dt)
    info = dtypes.finfo(dt)
    int_dt = _BITS_INT[dt.itemsize]
    mask, bias = (1 << info.nexp) - 1, 1 - info.minexp
    # scale subnormals into the normal range first
    tiny = lax.lt(lax.abs(x), _full(x, info.tiny))
    bits = lax.bitcast_convert_type(select_broadcast(tiny, lax.mul(x, _full(x, 1 << info.nmant)),
                                               x), int_dt)
    exp = select_broadcast(tiny, _full(bits, -info.nmant), _full(bits, 0))
    nmant = _full(bits, info.nmant)
    exp = lax.add(exp, lax.add(lax.bitwise_and(lax.shift_right_logical(bits, nmant),
                                               _full(bits, mask)), _full(bits, 1 - bias)))
    bits = lax.bitwise_and(bits, _full(bits, ~(mask << info.nmant)))
    bits = lax.bitwise_or(bits, _full(bits, (bias - 1) << info.nmant))
    mant = lax.bitcast_convert_type(bits, dt)
    special = lax.bitwise_or(lax.bitwise_not(isfinite(x)), lax.eq(x, _full(x, 0)))
    exp = select_broadcast(special, _full(exp, 0), exp)
    return select_broadcast(special, x, mant), lax.convert_element_type(exp, np.int32)


# ---------------------------------------------------------------------------
# The array API's names and numpy's float-only and bit-level extras
# ---------------------------------------------------------------------------

acos, acosh, asin, asinh = arccos, arccosh, arcsin, arcsinh
atan, atanh, atan2 = arctan, arctanh, arctan2


def fabs(x: Any, /) -> Any:
    """Elementwise absolute value as a float (integers are converted first)."""
    (x,) = promote_args_inexact("fabs", x)
    if dtypes.is_complex(get_aval(x).dtype):
        raise TypeError("ufunc 'fabs' does not support complex dtypes")
    return lax.abs(x)


def spacing(x: Any, /) -> Any:
    """The distance from ``x`` to the next representable value away from zero
    (towards +inf for float16, as numpy)."""
    (x,) = promote_args_inexact("spacing", x)
    dt = get_aval(x).dtype
    if dtypes.is_complex(dt):
        raise ValueError("jnp.spacing is not defined for complex inputs.")
    inf = _full(x, np.inf)
    if dt == np.float16:
        return lax.sub(lax.nextafter(x, inf), x)
    result = lax.sub(lax.nextafter(x, copysign(inf, x)), x)
    tiny = copysign(_full(x, dtypes.finfo(dt).smallest_subnormal), x)
    return select_broadcast(lax.eq(result, _full(result, 0)), tiny, result)


def bitwise_count(x: Any, /) -> Any:
    """The number of 1 bits in ``|x|`` (uint8)."""
    check_arraylike("bitwise_count", x)
    (x,) = promote_dtypes(x)
    dt = get_aval(x).dtype
    if not (dtypes.is_int(dt) or dt == np.bool_):
        raise TypeError(f"bitwise_count requires integer or boolean arguments, got {dt.name}.")
    if dt == np.bool_:
        return lax.convert_element_type(x, np.uint8)
    return lax.convert_element_type(lax.population_count(absolute(x)), np.uint8)
