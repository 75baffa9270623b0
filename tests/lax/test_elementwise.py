"""Elementwise primitives: values against numpy/math, derivatives, errors."""
import math

import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.test_util import check_grads


UNARY = [
    (lax.exp, np.exp), (lax.log, np.log), (lax.sin, np.sin), (lax.cos, np.cos),
    (lax.tan, np.tan), (lax.tanh, np.tanh), (lax.sqrt, np.sqrt), (lax.rsqrt, lambda x: 1 / np.sqrt(x)),
    (lax.cbrt, np.cbrt), (lax.log1p, np.log1p), (lax.expm1, np.expm1), (lax.exp2, np.exp2),
    (lax.asin, np.arcsin), (lax.acos, np.arccos), (lax.atan, np.arctan), (lax.sinh, np.sinh),
    (lax.cosh, np.cosh), (lax.asinh, np.arcsinh), (lax.atanh, np.arctanh),
    (lax.logistic, lambda x: 1 / (1 + np.exp(-x))), (lax.square, np.square),
    (lax.erf, np.vectorize(math.erf)), (lax.erfc, np.vectorize(math.erfc)),
    (lax.lgamma, np.vectorize(math.lgamma)),
]


@pytest.mark.parametrize("fn,ref", UNARY, ids=[f.__name__ for f, _ in UNARY])
def test_unary_values_and_second_derivatives(fn, ref, x64):
    x = np.linspace(0.15, 0.85, 7)
    np.testing.assert_allclose(fn(x), ref(x), rtol=1e-12)
    check_grads(fn, (x,), order=2)


def test_scalar_special_functions():
    np.testing.assert_allclose(lax.erf(np.float32(0.5)), math.erf(0.5), rtol=1e-6)
    np.testing.assert_allclose(lax.lgamma(np.float32(3.0)), math.log(2.0), rtol=1e-6)


def test_digamma_and_erf_inv(x64):
    x = np.array([0.3, 1.0, 2.5, 7.0])
    euler = 0.5772156649015329
    np.testing.assert_allclose(lax.digamma(np.array([1.0]))[0], -euler, rtol=1e-10)
    # psi(x + 1) = psi(x) + 1/x
    np.testing.assert_allclose(lax.digamma(x + 1), lax.digamma(x) + 1 / x, rtol=1e-10)
    p = np.array([-0.9, -0.3, 0.0, 0.4, 0.99])
    np.testing.assert_allclose(np.vectorize(math.erf)(lax.erf_inv(p)), p, atol=1e-12)
    check_grads(lax.digamma, (x,), order=1)
    check_grads(lax.erf_inv, (p[1:4],), order=2)


BINARY = [(lax.add, np.add), (lax.sub, np.subtract), (lax.mul, np.multiply),
          (lax.div, np.divide), (lax.pow, np.power), (lax.atan2, np.arctan2),
          (lax.max, np.maximum), (lax.min, np.minimum), (lax.rem, np.fmod)]


@pytest.mark.parametrize("fn,ref", BINARY, ids=[f.__name__ for f, _ in BINARY])
def test_binary_values_and_derivatives(fn, ref, x64):
    x = np.array([0.3, 1.7, 2.2, 0.9])
    y = np.array([1.1, 0.4, 2.9, 0.6])
    np.testing.assert_allclose(fn(x, y), ref(x, y), rtol=1e-12)
    check_grads(fn, (x, y), order=2)


def test_integer_division_truncates_like_c():
    x = np.array([7, -7, 7, -7], np.int32)
    y = np.array([2, 2, -2, -2], np.int32)
    np.testing.assert_array_equal(lax.div(x, y), [3, -3, -3, 3])
    np.testing.assert_array_equal(lax.rem(x, y), [1, -1, 1, -1])


def test_shifts_and_bits():
    x = np.array([1, -8, 255], np.int32)
    np.testing.assert_array_equal(lax.shift_left(x, np.int32(2)), x << 2)
    np.testing.assert_array_equal(lax.shift_right_arithmetic(x, np.int32(1)), x >> 1)
    np.testing.assert_array_equal(lax.shift_right_logical(np.array([-8], np.int32), np.int32(28)),
                                  [15])
    np.testing.assert_array_equal(lax.population_count(np.array([0, 1, 7, 255], np.int32)),
                                  [0, 1, 3, 8])


def test_select_clamp_convert():
    p = np.array([True, False, True])
    np.testing.assert_array_equal(lax.select(p, np.ones(3, np.float32), np.zeros(3, np.float32)),
                                  [1, 0, 1])
    np.testing.assert_array_equal(lax.select_n(np.array([0, 2, 1], np.int32),
                                               *[np.full(3, i, np.float32) for i in range(3)]),
                                  [0, 2, 1])
    np.testing.assert_array_equal(lax.clamp(0.0, np.array([-1.0, 0.5, 2.0], np.float32), 1.0),
                                  [0, 0.5, 1])
    out = lax.convert_element_type(np.array([1.7, -1.7, np.nan, 1e20], np.float32), np.int32)
    np.testing.assert_array_equal(out, [1, -1, 0, np.iinfo(np.int32).max])


@pytest.mark.parametrize("in_axes", [(0, 0, 0), (0, None, 0), (0, 1, None), (None, 0, 1)])
def test_select_vmap_of_a_scalar_predicate_per_example(in_axes):
    # each example selects a whole case with one scalar predicate (a Python loop is the
    # reference)
    rng = np.random.default_rng(0)
    pred = np.array([True, False, True])
    x, y = rng.normal(size=(3, 5)).astype(np.float32), rng.normal(size=(3, 5)).astype(np.float32)
    args = [pred if in_axes[0] is not None else pred[0],
            x if in_axes[1] == 0 else x.T if in_axes[1] == 1 else x[0],
            y if in_axes[2] == 0 else y.T if in_axes[2] == 1 else y[0]]
    out = jax.vmap(lax.select, in_axes=in_axes)(*args)
    take = lambda a, ax, i: a if ax is None else np.take(a, i, axis=ax)
    expected = [np.where(take(args[0], in_axes[0], i), take(args[1], in_axes[1], i),
                         take(args[2], in_axes[2], i)) for i in range(3)]
    np.testing.assert_array_equal(out, np.stack(expected))


def test_round_methods():
    x = np.array([0.5, 1.5, -0.5, 2.5], np.float32)
    np.testing.assert_array_equal(lax.round(x), [1, 2, -1, 3])
    np.testing.assert_array_equal(lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN), [0, 2, -0, 2])


ERRORS = [
    (lambda: lax.exp(np.int32(1)), TypeError, "exp does not accept dtype i32"),
    (lambda: lax.add(np.ones(3, np.float32), np.ones(4, np.float32)), TypeError,
     "add got incompatible shapes for broadcasting: \\(3,\\), \\(4,\\)"),
    (lambda: lax.mul(np.ones(3, np.float32), np.ones(3, np.int32)), TypeError,
     "mul requires arguments to have the same dtypes, got float32, int32"),
    (lambda: lax.shift_left(np.ones(2, np.float32), np.ones(2, np.float32)), TypeError,
     "shift_left does not accept dtype f32"),
    (lambda: lax.select_n(np.ones(3, np.float32), np.ones(3, np.float32)), TypeError,
     "select_n which must be boolean or integer type"),
    (lambda: lax.select(np.array([True, False]), np.ones(3, np.float32),
                        np.ones(3, np.float32)), TypeError, "select_n which must be scalar"),
    (lambda: lax.clamp(np.ones(2, np.float32), np.ones(3, np.float32), 1.0), TypeError,
     "clamp requires min to be a scalar or have the same shape"),
    (lambda: lax.bitcast_convert_type(np.ones(3, np.int8), np.int32), TypeError,
     "bitcast_convert_type"),
]


@pytest.mark.parametrize("thunk,exc,match", ERRORS)
def test_abstract_eval_errors_eager_and_traced(thunk, exc, match):
    with pytest.raises(exc, match=match):
        thunk()
    with pytest.raises(exc, match=match):
        jax.make_jaxpr(lambda: thunk())()


def test_population_count_counts_twos_complement_bits():
    np.testing.assert_array_equal(lax.population_count(np.array([-5, -1, 7], np.int32)),
                                  [31, 32, 3])
    np.testing.assert_array_equal(lax.population_count(np.array([-1], np.int8)), [8])


@pytest.mark.parametrize("x64", [False, True], ids=["x32", "x64"])
@pytest.mark.parametrize("scalar", [True, 2, 1.5, 2j], ids=["bool", "int", "float", "complex"])
@pytest.mark.parametrize("dtype", [np.bool_, np.uint8, np.int8, np.int32, np.int64, np.float16,
                                   np.float32, np.float64, np.complex64, np.complex128])
def test_python_scalars_take_their_default_dtype_without_promotion(x64, scalar, dtype):
    """lax functions do not promote (JAX): a Python scalar is a weakly typed array of its
    kind's default dtype, and the other operand's dtype must be that one."""
    from tinyjax import config
    with config.enable_x64(x64):
        default = np.dtype({bool: np.bool_, int: np.int64, float: np.float64,
                            complex: np.complex128}[type(scalar)])
        if not x64 and default != np.bool_:
            default = np.dtype({"i": np.int32, "f": np.float32, "c": np.complex64}[default.kind])
        arr = jax.numpy.zeros((2,), dtype)
        if arr.dtype != default:
            with pytest.raises(TypeError, match=f"lax.max requires arguments to have the "
                                                f"same dtypes, got {arr.dtype.name}"):
                lax.max(arr, scalar)
            return
        out = lax.max(arr, scalar)
        assert out.dtype == default and not out.weak_type
        np.testing.assert_array_equal(np.asarray(out), np.maximum(np.zeros(2, default),
                                                                  np.asarray(scalar, default)))
        both = lax.max(scalar, scalar)
        assert both.dtype == default and both.weak_type
