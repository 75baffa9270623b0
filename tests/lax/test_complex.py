"""Complex numbers in lax and jnp: values against numpy, JAX's promotion and errors,
derivatives (JAX's convention for C as R^2; holomorphic mode) and vmap."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.config import config
from tinyjax.test_util import check_grads

HOLOMORPHIC_UNARY = [
    (lax.exp, np.exp), (lax.log, np.log), (lax.sin, np.sin), (lax.cos, np.cos),
    (lax.tan, np.tan), (lax.tanh, np.tanh), (lax.sqrt, np.sqrt),
    (lax.rsqrt, lambda z: 1 / np.sqrt(z)), (lax.log1p, np.log1p), (lax.expm1, np.expm1),
    (lax.exp2, np.exp2), (lax.asin, np.arcsin), (lax.acos, np.arccos),
    (lax.atan, np.arctan), (lax.sinh, np.sinh), (lax.cosh, np.cosh),
    (lax.asinh, np.arcsinh), (lax.acosh, np.arccosh), (lax.atanh, np.arctanh),
    (lax.logistic, lambda z: 1 / (1 + np.exp(-z))), (lax.square, np.square),
    (lax.neg, np.negative), (lambda z: lax.integer_pow(z, 3), lambda z: z ** 3),
]
IDS = [f.__name__ if f.__name__ != "<lambda>" else "integer_pow" for f, _ in HOLOMORPHIC_UNARY]


def _z(n=5, seed=0, dtype=np.complex128):
    rng = np.random.default_rng(seed)
    # away from the branch cuts of log, sqrt and the inverse functions
    return (0.3 + 0.4 * rng.random(n) + 1j * (0.2 + 0.5 * rng.random(n))).astype(dtype)


@pytest.mark.parametrize("fn,ref", HOLOMORPHIC_UNARY, ids=IDS)
def test_unary_values_and_second_derivatives(fn, ref, x64):
    z = _z()
    np.testing.assert_allclose(fn(z), ref(z), rtol=1e-12)
    check_grads(fn, (z,), order=2)


@pytest.mark.parametrize("fn,ref", HOLOMORPHIC_UNARY, ids=IDS)
def test_holomorphic_grad_is_the_complex_derivative(fn, ref, x64):
    z0, h = 0.5 + 0.3j, 1e-6
    derivative = (ref(np.complex128(z0 + h)) - ref(np.complex128(z0 - h))) / (2 * h)
    got = jax.grad(fn, holomorphic=True)(np.complex128(z0))
    np.testing.assert_allclose(got, derivative, rtol=1e-6)


@given(shape=st.lists(st.integers(0, 4), max_size=3),
       dtype=st.sampled_from(["complex64", "complex128"]),
       op=st.sampled_from(["add", "sub", "mul", "div", "pow", "eq", "ne", "max", "min"]))
@settings(max_examples=30, deadline=None)
def test_binary_values_match_numpy(shape, dtype, op):
    rng = np.random.default_rng(len(shape))
    mk = lambda: (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    x, y = mk(), mk()
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
           "pow": np.power, "eq": np.equal, "ne": np.not_equal, "max": np.maximum,
           "min": np.minimum}[op]
    with config.override(jax_enable_x64=dtype == "complex128"):
        got = getattr(lax, op)(x, y)
        want = ref(x, y)
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == "complex64" else 1e-12)


def test_parts_and_conj_primitives():
    x = np.array([1.5, -2.0], np.float32)
    y = np.array([0.5, 3.0], np.float32)
    z = lax.complex(x, y)
    assert z.dtype == np.complex64
    np.testing.assert_array_equal(lax.real(z), x)
    np.testing.assert_array_equal(lax.imag(z), y)
    np.testing.assert_array_equal(lax.conj(z), x - 1j * y)
    np.testing.assert_array_equal(lax.abs(z), np.abs(x + 1j * y))
    assert lax.abs(z).dtype == np.float32
    # conj of a real array is complex (JAX), jnp.conj of one is the array itself
    assert lax.conj(x).dtype == np.complex64 and jnp.conj(x).dtype == np.float32
    np.testing.assert_array_equal(jnp.imag(x), np.zeros(2))
    np.testing.assert_allclose(jnp.angle(z), np.angle(x + 1j * y), rtol=1e-6)
    np.testing.assert_allclose(jnp.angle(z, deg=True), np.angle(x + 1j * y, deg=True),
                               rtol=1e-6)


def test_promotion_follows_jax_lattice():
    f32 = jnp.ones(2, jnp.float32)
    assert (f32 + 1j).dtype == np.complex64
    assert not (f32 + 1j).weak_type
    w = jnp.arange(2) + 1j
    assert w.dtype == np.complex64 and w.weak_type      # int array + Python complex: weak
    assert (jnp.ones(2, jnp.float16) + 1j).dtype == np.complex64
    assert (jnp.ones(2, jnp.bfloat16) + 1j).dtype == np.complex64
    assert jnp.asarray(1j).weak_type
    with config.override(jax_enable_x64=True):
        assert (jnp.ones(2, jnp.float64) + jnp.ones(2, jnp.complex64)).dtype == np.complex128
        assert (jnp.ones(2, jnp.float32) + 1j).dtype == np.complex64
        assert jnp.asarray(1j).dtype == np.complex128
    assert jnp.promote_types(jnp.float64, jnp.complex64) == np.complex128
    assert jnp.issubdtype(jnp.complex64, jnp.complexfloating)


def test_creation_printing_and_conversion():
    z = jnp.array([1 + 2j, -3 + 0.5j])
    assert z.dtype == np.complex64
    assert repr(z) == "Array([ 1.+2.j , -3.+0.5j], dtype=complex64)"
    assert repr(jnp.asarray(1j)) == "Array(0.+1.j, dtype=complex64, weak_type=True)"
    assert jnp.zeros(2, complex).dtype == np.complex64
    np.testing.assert_array_equal(z.astype(jnp.float32), [1.0, -3.0])  # the real part
    np.testing.assert_array_equal(lax.convert_element_type(z, np.int32), [1, -3])
    np.testing.assert_array_equal(lax.convert_element_type(z, np.bool_), [True, True])
    np.testing.assert_array_equal(z.real, [1, -3])
    np.testing.assert_array_equal(z.conj(), [1 - 2j, -3 - 0.5j])
    assert complex(jnp.asarray(2 - 1j)) == 2 - 1j


def test_jnp_complex_classification():
    z = jnp.array([1 + 2j, 3 + 0j])
    np.testing.assert_array_equal(jnp.iscomplex(z), [True, False])
    np.testing.assert_array_equal(jnp.isreal(z), [False, True])
    assert jnp.iscomplexobj(z) and not jnp.isrealobj(z)
    assert not jnp.iscomplexobj(jnp.ones(2)) and jnp.isrealobj(3.0)
    bad = jnp.array([complex(np.inf, 0), complex(0, np.nan), 1j])
    np.testing.assert_array_equal(jnp.isinf(bad), [True, False, False])
    np.testing.assert_array_equal(jnp.isnan(bad), [False, True, False])
    np.testing.assert_array_equal(jnp.isfinite(bad), [False, False, True])


def test_jnp_orderings_are_lexicographic():
    a = jnp.array([1 + 2j, 1 + 1j, 0 + 5j, 2 - 1j])
    b = jnp.array([1 + 1j, 1 + 1j, 1 + 0j, 1 + 9j])
    an, bn = np.asarray(a), np.asarray(b)
    for fn, ref in ((jnp.less, np.less), (jnp.greater_equal, np.greater_equal),
                    (jnp.maximum, np.maximum), (jnp.minimum, np.minimum)):
        np.testing.assert_array_equal(fn(a, b), ref(an, bn))
        np.testing.assert_array_equal(jax.jit(fn)(a, b), ref(an, bn))
    np.testing.assert_array_equal(jnp.sort(a), np.sort(an))
    np.testing.assert_array_equal(jnp.sort_complex(jnp.array([3, 1, 2])), [1, 2, 3])
    assert jnp.sort_complex(jnp.array([3, 1, 2])).dtype == np.complex64
    assert jnp.max(a) == np.max(an) and jnp.min(a) == np.min(an)


def test_reductions_of_complex(x64):
    z = _z(6).reshape(2, 3)
    np.testing.assert_allclose(jnp.sum(z, 0), z.sum(0), rtol=1e-13)
    np.testing.assert_allclose(jnp.prod(z, 1), z.prod(1), rtol=1e-13)
    np.testing.assert_allclose(jnp.mean(z), z.mean(), rtol=1e-13)
    np.testing.assert_allclose(jnp.var(z), z.var(), rtol=1e-13)
    assert jnp.var(z).dtype == np.float64 and jnp.std(z).dtype == np.float64
    np.testing.assert_allclose(jnp.cumsum(z, 1), np.cumsum(z, 1), rtol=1e-13)
    np.testing.assert_allclose(jnp.cumprod(z, 1), np.cumprod(z, 1), rtol=1e-13)
    np.testing.assert_allclose(jnp.linalg.norm(z), np.linalg.norm(z), rtol=1e-13)
    np.testing.assert_allclose(jnp.dot(z[0], z[1]), np.dot(z[0], z[1]), rtol=1e-13)
    np.testing.assert_allclose(jnp.log10(z), np.log10(z), rtol=1e-13)
    np.testing.assert_allclose(jnp.round(z * 10), np.round(z * 10))


@pytest.mark.parametrize("bad", [
    (lambda: lax.lt(1j, 2j), TypeError, "lt does not accept dtype c64"),
    (lambda: lax.floor(jnp.asarray(1j)), TypeError, "floor does not accept dtype c64"),
    (lambda: lax.rem(1j, 2j), TypeError, "rem does not accept dtype c64"),
    (lambda: lax.complex(np.float16(1), np.float16(1)), TypeError, "float32, float64"),
    (lambda: lax.real(np.float32(1)), TypeError, "real does not accept dtype f32"),
    (lambda: jnp.floor(jnp.asarray(1j)), TypeError, "floor does not accept"),
    (lambda: jnp.signbit(jnp.asarray(1j)), ValueError, "not well defined for complex64"),
    (lambda: jnp.hypot(1j, 1j), ValueError, "hypot is not well defined"),
    (lambda: jnp.floor_divide(1j, 1j), TypeError, "does not support complex"),
    (lambda: jnp.argmax(jnp.array([1j])), TypeError, "argmax does not accept"),
    (lambda: lax.bitcast_convert_type(jnp.asarray(1j), np.float32), TypeError,
     "does not support bool or complex values"),
], ids=lambda b: b[2][:20])
def test_jax_errors_for_complex(bad):
    thunk, exc, match = bad
    with pytest.raises(exc, match=match):
        thunk()


# ---- derivatives: JAX's convention ----------------------------------------------------


def test_grad_of_real_function_is_conjugate_convention(x64):
    z = _z(4)
    # f = |z|^2 = x^2 + y^2: JAX gives df/dx - i df/dy = 2 conj(z)
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(jnp.abs(z) ** 2))(z),
                               2 * np.conj(z), rtol=1e-13)
    # f = re(g(z)) for holomorphic g: df = re(g'(z) dz), so df/dx - i df/dy = g'(z)
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(jnp.real(jnp.sin(z))))(z),
                               np.cos(z), rtol=1e-13)
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(jnp.imag(jnp.exp(z))))(z),
                               -1j * np.exp(z), rtol=1e-13)
    np.testing.assert_allclose(jax.grad(lambda z: jnp.sum(jnp.abs(z)))(z),
                               np.conj(z) / np.abs(z), rtol=1e-13)
    # a real input through a complex computation has a real gradient
    x = np.array([0.5, -1.5])
    g = jax.grad(lambda x: jnp.sum(jnp.abs(x * (1 + 2j)) ** 2))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, 10 * x, rtol=1e-13)


def test_holomorphic_jacobians_and_hessian(x64):
    z = _z(3)
    f = lambda z: z ** 2 * jnp.exp(z)
    d = np.diag(2 * z * np.exp(z) + z ** 2 * np.exp(z))
    np.testing.assert_allclose(jax.jacfwd(f, holomorphic=True)(z), d, rtol=1e-12)
    np.testing.assert_allclose(jax.jacrev(f, holomorphic=True)(z), d, rtol=1e-12)
    h = jax.hessian(lambda z: jnp.sum(z ** 3), holomorphic=True)(z)
    np.testing.assert_allclose(h, np.diag(6 * z), rtol=1e-12)


@pytest.mark.parametrize("call,match", [
    (lambda z, x: jax.grad(lambda z: jnp.sum(z ** 2))(z),
     "grad requires real-valued outputs .* but got complex"),
    (lambda z, x: jax.grad(lambda z: jnp.sum(z ** 2), holomorphic=True)(x),
     "grad with holomorphic=True requires inputs with complex dtype, but got float"),
    (lambda z, x: jax.grad(lambda z: jnp.sum(jnp.abs(z)), holomorphic=True)(z),
     "grad with holomorphic=True requires outputs with complex dtype"),
    (lambda z, x: jax.jacfwd(lambda z: z ** 2)(z),
     "jacfwd requires real-valued inputs .* but got complex"),
    (lambda z, x: jax.jacfwd(jnp.abs, holomorphic=True)(z),
     "jacfwd with holomorphic=True requires outputs with complex dtype"),
    (lambda z, x: jax.jacrev(lambda x: x * 1j)(x),
     "jacrev requires real-valued outputs .* but got complex"),
], ids=["grad-complex-out", "grad-holo-real-in", "grad-holo-real-out", "jacfwd-complex-in",
        "jacfwd-holo-real-out", "jacrev-complex-out"])
def test_autodiff_errors_for_complex(call, match):
    z = jnp.array([1 + 2j, 3 - 1j])
    x = jnp.array([1.0, 2.0])
    with pytest.raises(TypeError, match=match):
        call(z, x)


def test_non_holomorphic_jacobians_allowed_where_jax_allows(x64):
    z = _z(2)
    # complex input, real output: jacrev gives the conjugate-convention rows
    j = jax.jacrev(lambda z: jnp.abs(z) ** 2)(z)
    np.testing.assert_allclose(j, np.diag(2 * np.conj(z)), rtol=1e-13)
    # real input, complex output: jacfwd gives the complex columns
    x = np.array([0.5, 2.0])
    np.testing.assert_allclose(jax.jacfwd(lambda x: x * (1 + 1j))(x), np.eye(2) * (1 + 1j))


@pytest.mark.parametrize("f", [
    lambda z: jnp.abs(z), lambda z: jnp.real(z) * jnp.imag(z), lambda z: jnp.angle(z),
    lambda z: jnp.conj(z) * z ** 2, lambda z: jnp.abs(jnp.cumsum(z)),
    lambda z: jnp.abs(jnp.prod(z)), lambda z: jnp.var(z), lambda z: jnp.abs(z ** (0.5 + 1j)),
    lambda z: lax.complex(jnp.real(z) ** 2, jnp.imag(z)),
    lambda z: jnp.real(z).astype(jnp.complex128) * z,
], ids=["abs", "re*im", "angle", "conj*z^2", "cumsum", "prod", "var", "cpow", "complex",
        "convert"])
def test_non_holomorphic_check_grads(f, x64):
    check_grads(f, (_z(3, seed=2),), order=2)


def test_vmap_against_loop(x64):
    zs = _z(12).reshape(4, 3)
    f = lambda z: jnp.sum(z * jnp.conj(z)) + jnp.exp(z[0]) * jnp.abs(z[1])
    np.testing.assert_allclose(jax.vmap(f)(zs), np.stack([f(z) for z in zs]), rtol=1e-13)
    g = jax.vmap(jax.grad(lambda z: jnp.abs(jnp.sum(z ** 2))))
    np.testing.assert_allclose(g(zs), np.stack([jax.grad(
        lambda z: jnp.abs(jnp.sum(z ** 2)))(z) for z in zs]), rtol=1e-12)
