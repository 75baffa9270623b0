"""Edges where tinyjax.numpy used to differ from JAX (issue 21), each against JAX's
documented result: broadcasting of Python scalars in composed functions, Python int
overflow, integer division by zero, scalar-type constructors, boolean add/multiply on
every device."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads
from tests.cuda_support import CUDA_PARAM


def _logaddexp_np(a, b):
    return np.logaddexp(np.asarray(a, np.float64), np.asarray(b, np.float64))


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (2, 3)])
def test_logaddexp_array_and_python_scalar(shape):
    x = jnp.asarray(np.linspace(-2, 2, int(np.prod(shape)), dtype=np.float32).reshape(shape))
    np.testing.assert_allclose(jnp.logaddexp(x, 0.), _logaddexp_np(x, 0.), rtol=1e-6)
    np.testing.assert_allclose(jnp.logaddexp(0., x), _logaddexp_np(0., x), rtol=1e-6)
    g = jax.grad(lambda v: jnp.logaddexp(v, 0.).sum())(x)
    np.testing.assert_allclose(g, 1 / (1 + np.exp(-np.asarray(x, np.float64))), rtol=1e-6)
    check_grads(lambda v: jnp.logaddexp(v, 0.5), (x,), order=2, modes=["fwd", "rev"])


def test_logaddexp_of_signed_logits():
    """The logistic loss ``logaddexp(0, -y * logits)`` with labels from a where."""
    labels = jnp.array([[True], [False]])
    logits = jnp.array([0.5, -1.0, 2.0])

    def loss(w):
        return jnp.logaddexp(0., jnp.where(labels, -1., 1.) * w).sum()

    signs = np.where(np.asarray(labels), -1., 1.)
    np.testing.assert_allclose(loss(logits), _logaddexp_np(0., signs * logits).sum(),
                               rtol=1e-6)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(logits), jax.grad(loss)(logits),
                               rtol=1e-6)
    check_grads(loss, (logits,), order=1, modes=["rev"])


@pytest.mark.parametrize("value", [2**40, 2**31, -2**31 - 1, 2**64])
def test_python_int_out_of_int32_raises_overflow(value):
    with pytest.raises(OverflowError, match="too large to convert to int32"):
        jnp.array(value)
    with pytest.raises(OverflowError):
        jnp.array([1, value])
    with pytest.raises(OverflowError):
        jnp.ones(3) + value
    with pytest.raises(OverflowError):
        jax.lax.add(jnp.int32(1), value)


def test_python_ints_in_range_and_explicit_dtypes():
    assert int(jnp.array(-2**31)) == -2**31
    assert float(jnp.array(2**40, dtype=jnp.float32)) == 2.0**40
    assert int(jnp.array(2**32 - 1, jnp.uint32)) == 2**32 - 1
    with pytest.raises(OverflowError, match="out of bounds for uint32"):
        jnp.array(-1, jnp.uint32)
    # numpy values are cast (wrapping), as in JAX; a weak int wraps into int8
    assert int(jnp.array(np.int64(2**40))) == 0
    np.testing.assert_array_equal(jnp.zeros(3, jnp.int8) + 300, np.full(3, 44, np.int8))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.uint32])
def test_integer_division_and_remainder_by_zero(dtype):
    x = jnp.array([5, 0, 3] + ([-4] if np.issubdtype(dtype, np.signedinteger) else []),
                  dtype)
    zero = jnp.zeros_like(x)
    if np.issubdtype(dtype, np.signedinteger):
        # lax.div by zero is -1; floor_divide subtracts one where the signs differ
        expect_div = np.array([-2, -1, -2, -2], dtype)
    else:
        expect_div = np.full(3, np.iinfo(dtype).max, dtype)
    for f in (lambda a, b: a // b, jax.jit(lambda a, b: a // b)):
        np.testing.assert_array_equal(f(x, zero), expect_div)
    for f in (lambda a, b: a % b, jax.jit(lambda a, b: a % b), jnp.divmod):
        out = f(x, zero)
        np.testing.assert_array_equal(out[1] if isinstance(out, tuple) else out,
                                      np.zeros(x.shape, dtype))


def test_float_floor_divide_and_remainder_by_zero():
    a, b = jnp.array([5., -5., 0.]), jnp.array([0., 2., 0.])
    np.testing.assert_array_equal(a // b, [np.inf, -3., np.nan])
    np.testing.assert_array_equal(a % b, [np.nan, 1., np.nan])


def test_scalar_type_constructors_make_arrays():
    out = jnp.float32(1) + jnp.int32(2)
    assert isinstance(out, jax.Array) and out.dtype == np.float32 and not out.weak_type
    assert jnp.float32([1, 2]).shape == (2,)
    assert jnp.float_(3).dtype == np.float32 and jnp.int_(3).dtype == np.int32
    assert jnp.float32 == np.float32 and np.dtype(jnp.float32) == np.float32
    assert isinstance(np.float32(1), jnp.float32) and jnp.dtype(jnp.bfloat16) == jnp.bfloat16
    assert jnp.zeros(2, jnp.float16).dtype == np.float16
    assert np.zeros(2, jnp.int8).dtype == np.int8
    assert jnp.issubdtype(jnp.float32, jnp.floating) and jnp.single is jnp.float32
    with pytest.raises(OverflowError, match="out of bounds for uint8"):
        jnp.uint8(300)


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_bool_add_and_multiply_on_every_device(device):
    dev = jax.devices(device)[0]
    a = jax.device_put(jnp.array([True, False, False]), dev)
    b = jax.device_put(jnp.array([True, True, False]), dev)
    np.testing.assert_array_equal(a + b, [True, True, False])
    np.testing.assert_array_equal(jax.jit(jnp.add)(a, b), [True, True, False])
    np.testing.assert_array_equal(a * b, [True, False, False])
    np.testing.assert_array_equal(jax.jit(jnp.multiply)(a, b), [True, False, False])
    assert (a + b).dtype == np.bool_ and jax.jit(jnp.add)(a, b).dtype == np.bool_
    with pytest.raises(TypeError, match="subtract"):
        jnp.subtract(a, b)
