"""Complex numbers compiled as pairs of real numbers: every complex operation's compiled
result equals eager evaluation on every device (compile_jaxpr raises for a missing
rule, so nothing falls back to eager), and complex work fuses like real work."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.config import config
from tinyjax.jaxpr import eval_jaxpr

rng = np.random.default_rng(5)
Z = ((0.2 + rng.random((3, 4))) * np.exp(1j * rng.uniform(-3, 3, (3, 4)))).astype(np.complex64)
W = ((0.2 + rng.random((3, 4))) * np.exp(1j * rng.uniform(-3, 3, (3, 4)))).astype(np.complex64)
X = rng.standard_normal((3, 4)).astype(np.float32)


def check(fn, *args, device, tol=2e-5):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = exe(*args)
    want = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (i, g.dtype, w.dtype)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {i}")
    return exe


UNARY = [jnp.exp, jnp.log, jnp.sqrt, jnp.sin, jnp.cos, jnp.tan, jnp.sinh, jnp.cosh, jnp.tanh,
         jnp.arcsin, jnp.arccos, jnp.arctan, jnp.arcsinh, jnp.arccosh, jnp.arctanh,
         jnp.expm1, jnp.log1p, jnp.exp2, jnp.abs, jnp.sign, jnp.square, jnp.conj, jnp.real,
         jnp.imag, jnp.angle, lax.rsqrt, lax.logistic, lambda z: z ** 3,
         lambda z: lax.integer_pow(z, -2), jnp.negative, jnp.isfinite, jnp.isnan]


def test_unary(device):
    check(lambda z: [f(z) for f in UNARY], Z, device=device, tol=5e-5)


def test_binary_and_comparisons(device):
    def f(z, w, x):
        return [z + w, z - w, z * w, z / w, z ** w, z == w, z != z, jnp.maximum(z, w),
                jnp.minimum(z, w), jnp.less(z, w), z * x, x / z, lax.complex(x, x * 2),
                z + 1j, 2.5j * z, jnp.logaddexp(z, w)]
    check(f, Z, W, X, device=device, tol=5e-5)


def test_conversions(device):
    def f(z, x):
        return [z.astype(jnp.float32), z.astype(jnp.int32), z.astype(bool),
                x.astype(jnp.complex64), lax.conj(x)]
    check(f, Z * 3, X, device=device)
    with config.override(jax_enable_x64=True):
        z = Z.astype(np.complex128)
        check(lambda z: [z.astype(jnp.complex64), z.astype(jnp.complex64).astype(z.dtype) * z],
              z, device=device, tol=1e-6)


def test_structural_and_reductions(device):
    def f(z, w):
        return [z.T, z[1:, ::2], jnp.concatenate([z, w]), jnp.where(z.real > 0, z, w),
                jnp.pad(z, 1), jnp.sum(z, axis=1), jnp.mean(z), jnp.cumsum(z, axis=0),
                z @ w.T, jnp.dot(z[0], w[1]), jnp.sort(z, axis=1), z[jnp.array([2, 0])],
                z.at[1, 2].set(5j), z.at[0].add(w[0]), jnp.var(z), jnp.linalg.norm(z),
                jnp.broadcast_to(z[0], (2, 4)), jnp.flip(z, 0), z.reshape(4, 3)]
    check(f, Z, W, device=device, tol=5e-5)


def test_gather_fills_out_of_bounds_with_the_complex_fill_value(device):
    """The imaginary part comes from the fill value's imaginary part (it was taken from the
    real part)."""
    idx = np.array([0, 7, -9, 2])
    out = check(lambda z: [jnp.take(z[0], idx, mode="fill", fill_value=3 + 4j),
                           z.at[:, idx].get(mode="fill", fill_value=-1j)], Z, device=device)
    got = out(Z)
    np.testing.assert_array_equal(np.asarray(got[0])[[1, 2]], [3 + 4j, 3 + 4j])
    np.testing.assert_array_equal(np.asarray(got[1])[:, 1], [-1j] * 3)


def test_complex_grad_under_jit(device):
    def loss(z, x):
        return jnp.sum(jnp.abs(jnp.exp(z) * x + jnp.conj(z)) ** 2)
    grad = jax.grad(loss)
    check(lambda z, x: grad(z, x), Z, X, device=device, tol=5e-4)
    f = jax.grad(lambda z: jnp.sum(jnp.sin(z) * z), holomorphic=True)
    check(lambda z: f(z[0, 0]), Z, device=device, tol=5e-5)


def test_fuses_like_real_work():
    exe = check(lambda z, w: jnp.exp(z) * w + jnp.conj(z) * 2j, Z, W, device="cpu")
    assert exe.num_kernels == 1
    # a division's shared (costly) quotients may be kept in a buffer, as for real division
    assert check(lambda z, w: z / w + 1, Z, W, device="cpu").num_kernels <= 2
    exe = check(lambda z: jnp.abs(z) * 2 + jnp.real(z), Z, device="cpu")
    assert exe.num_kernels == 1


def test_jit_returns_complex_arrays(device):
    f = jax.jit(lambda z, x: (z * x, jnp.abs(z)), device=device)
    a, b = f(Z, X)
    assert a.dtype == np.complex64 and b.dtype == np.float32
    np.testing.assert_allclose(np.asarray(a), Z * X, rtol=1e-6)
    assert f.lower(Z, X).compile().num_kernels >= 1


# small integers: ties in the real part (the imaginary part decides) and exact products
ZI = (rng.integers(-2, 3, (3, 7)) + 1j * rng.integers(-2, 3, (3, 7))).astype(np.complex64)
ZNAN = ZI.copy()
ZNAN[0, 3], ZNAN[1, 2], ZNAN[1, 5] = complex(np.nan, 1), complex(1, np.nan), np.nan
REDUCTIONS = [
    lambda z: jnp.prod(z), lambda z: jnp.prod(z, axis=1), lambda z: jnp.prod(z[:, :5], axis=0),
    lambda z: jnp.cumprod(z, axis=1), lambda z: lax.cumprod(z, axis=0, reverse=True),
    lambda z: jnp.max(z), lambda z: jnp.max(z, axis=1), lambda z: jnp.min(z, axis=0),
    lambda z: lax.cummax(z, axis=1), lambda z: lax.cummin(z, axis=1, reverse=True),
    lambda z: jnp.prod(z[:0], axis=0), lambda z: jnp.max(z[:0], axis=0, initial=-np.inf),
    lambda z: jnp.maximum(z, z[::-1]), lambda z: jnp.minimum(z[:, ::-1], z)]


@pytest.mark.parametrize("data", [Z[:, :3], ZI, ZNAN], ids=["random", "ties", "nan"])
def test_products_and_lexicographic_extremes(device, data):
    # products as trees of complex products, max/min in JAX's lexicographic order with
    # NaN propagated as eagerly (the first operand with a NaN part wins)
    check(lambda z: [f(z) for f in REDUCTIONS], data, device=device, tol=1e-5)
    want = np.prod(data.astype(np.complex128), axis=1)
    got = jax.jit(lambda z: jnp.prod(z, axis=1), device=device)(data)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_lexicographic_order_matches_jax():
    # JAX's values for these (NaN-free) cases
    z = np.array([1 + 2j, 1 + 3j, -1 + 5j, 1 + 3j, 2 - 1j], np.complex64)
    for device in ("cpu", "interp"):
        assert complex(jax.jit(jnp.max, device=device)(z)) == 2 - 1j
        assert complex(jax.jit(jnp.min, device=device)(z)) == -1 + 5j
        np.testing.assert_array_equal(jax.jit(lax.cummax, device=device)(z),
                                      [1 + 2j, 1 + 3j, 1 + 3j, 1 + 3j, 2 - 1j])
        assert complex(jax.jit(jnp.prod, device=device)(np.full(4, 1j, np.complex64))) == 1


def test_complex_products_under_transforms(device):
    grad = jax.grad(lambda z: jnp.prod(z).real)
    check(grad, Z[0], device=device, tol=1e-4)
    check(jax.vmap(lambda z: jnp.cumprod(z)), Z, device=device, tol=1e-5)
    check(lambda z: jnp.convolve(z[0], z[1]), Z, device=device, tol=1e-5)
    check(lambda z: lax.reduce_window(z, 0j, lax.add, (2, 2), (1, 1), "VALID"), Z,
          device=device, tol=1e-5)


def test_product_kernel_count():
    # a tree of ceil(log2(n)) rounds of products: a few kernels, not one per element
    exe = check(lambda z: jnp.prod(z), np.tile(Z, (1, 64)), device="cpu", tol=1e-4)
    assert exe.num_kernels <= 6


def test_missing_pair_rule_is_an_error():
    closed = jax.make_jaxpr(lambda z: z.at[0].multiply(2j))(Z)
    with pytest.raises(NotImplementedError, match="scatter-mul' on complex"):
        compile_jaxpr(closed, get_backend("interp"))
