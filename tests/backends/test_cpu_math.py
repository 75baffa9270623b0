"""Accuracy of the C device's transcendental functions in vectorised loops (glibc libmvec
where available, libm otherwise) against float64 numpy, on a large sample plus the special
values (NaN, +-inf, +-0, overflow/underflow edges)."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr

pytest.importorskip("ctypes")

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-30, 1e-45, 88.7, 88.8,
                     -87.3, -103.9, -104.0, 1e30, -1e30, 0.5, -0.5, 1.0, -1.0], np.float32)

# (primitive, sample generator) : domains where the function is finite and well-defined
CASES = {
    "exp": lambda r: r.uniform(-104, 89, 1 << 18),
    "log": lambda r: np.exp(r.uniform(-80, 80, 1 << 18)),
    "log1p": lambda r: np.concatenate([r.uniform(-0.999, 10, 1 << 17),
                                       r.uniform(-1e-3, 1e-3, 1 << 17)]),
    "expm1": lambda r: np.concatenate([r.uniform(-20, 88, 1 << 17),
                                       r.uniform(-1e-3, 1e-3, 1 << 17)]),
    "tanh": lambda r: np.concatenate([r.standard_normal(1 << 17) * 4,
                                      r.uniform(-1e-3, 1e-3, 1 << 17)]),
    "sin": lambda r: r.uniform(-100, 100, 1 << 18),
    "cos": lambda r: r.uniform(-100, 100, 1 << 18),
    "logistic": lambda r: r.standard_normal(1 << 18) * 10,
    "erf": lambda r: r.standard_normal(1 << 18) * 3,
    "atan": lambda r: r.standard_normal(1 << 18) * 10,
    "sqrt": lambda r: np.exp(r.uniform(-80, 80, 1 << 18)),
}
REF = {"logistic": lambda x: 1 / (1 + np.exp(-x)),
       "erf": lambda x: np.vectorize(__import__("math").erf)(x)}
MAX_ULP = 4  # glibc's documented bound for libmvec


def _ulp_error(got, ref):
    ref32 = ref.astype(np.float32)
    spacing = np.spacing(np.abs(ref32)).astype(np.float64)
    spacing = np.maximum(spacing, np.float64(np.finfo(np.float32).smallest_subnormal))
    return np.abs(got.astype(np.float64) - ref) / spacing


@pytest.mark.parametrize("name", sorted(CASES))
def test_vectorised_math_accuracy(name):
    rng = np.random.default_rng(0)
    x = np.concatenate([CASES[name](rng).astype(np.float32), SPECIALS])
    fn = getattr(lax, name)
    closed = jax.make_jaxpr(fn)(x)
    got, = compile_jaxpr(closed, get_backend("cpu"))(x)
    with np.errstate(all="ignore"):
        ref = (REF[name] if name in REF else getattr(np, name))(x.astype(np.float64))
        want = np.asarray(fn(x))  # eager: the semantics of special values
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    # compiled programs flush subnormals to zero, as XLA's CPU runtime does (results; the
    # operands of floating-point instructions, not those a function reads as bits)
    tiny = np.finfo(np.float32).tiny
    sub_in = (x != 0) & (np.abs(x) < tiny)
    sub_out = (ref != 0) & (np.abs(ref) < tiny) & ~sub_in
    assert (np.abs(got[sub_out]) <= tiny).all()
    ok = ~nan & ~inf & np.isfinite(ref) & ~sub_in & ~sub_out
    err = _ulp_error(got[ok], ref[ok])
    assert err.max() <= MAX_ULP, (name, float(err.max()), float(x[ok][err.argmax()]))


def test_large_sum_is_accurate():
    x = np.random.default_rng(0).standard_normal(1 << 22).astype(np.float32) + 1.0
    closed = jax.make_jaxpr(lambda x: lax.reduce_sum(x, (0,)))(x)
    got, = compile_jaxpr(closed, get_backend("cpu"))(x)
    ref = x.astype(np.float64).sum()
    assert abs(float(got) - ref) <= 1e-5 * abs(ref)  # a running float32 sum is ~1e-3 off


@pytest.mark.parametrize("op", ["max", "min"])
def test_large_max_min_propagate_nan(op):
    x = np.random.default_rng(1).standard_normal(1 << 20).astype(np.float32)
    red = lax.reduce_max if op == "max" else lax.reduce_min
    closed = jax.make_jaxpr(lambda x: red(x, (0,)))(x)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    assert exe(x)[0] == getattr(np, op)(x)
    y = x.copy()
    y[123457] = np.nan
    assert np.isnan(exe(y)[0])


@pytest.mark.parametrize("shape,perm", [((70, 45), (1, 0)), ((3, 33, 40), (0, 2, 1)),
                                        ((40, 3, 50), (2, 1, 0)), ((64, 64), (1, 0))])
def test_tiled_transposes(shape, perm):
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    closed = jax.make_jaxpr(lambda x: lax.transpose(x, perm) * 2.0 + 1.0)(x)
    got, = compile_jaxpr(closed, get_backend("cpu"))(x)
    np.testing.assert_array_equal(got, np.transpose(x, perm) * np.float32(2) + np.float32(1))


@pytest.mark.parametrize("shape", [((70, 45), (45, 33)), ((8, 300), (300, 129))])
def test_float64_matmul_uses_the_packed_kernel(x64, shape):
    rng = np.random.default_rng(4)
    a, b = (rng.standard_normal(s) for s in shape)
    closed = jax.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))) * 2.0)(a, b)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    assert exe.program.kernels[0].gemm is not None
    got, = exe(a, b)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, (a @ b) * 2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("trans", [(False, False), (True, False), (False, True), (True, True)])
def test_float32_matmul_transposed_operands(trans):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((37, 50)).astype(np.float32)
    b = rng.standard_normal((50, 70)).astype(np.float32)
    A = a.T.copy() if trans[0] else a
    B = b.T.copy() if trans[1] else b

    def f(A, B):
        x = lax.transpose(A, (1, 0)) if trans[0] else A
        y = lax.transpose(B, (1, 0)) if trans[1] else B
        return lax.dot_general(x, y, (((1,), (0,)), ((), ())))
    exe = compile_jaxpr(jax.make_jaxpr(f)(A, B), get_backend("cpu"))
    assert exe.program.kernels[0].gemm is not None
    np.testing.assert_allclose(exe(A, B)[0], a @ b, rtol=1e-5, atol=1e-4)


# (binary function, sample generator of both operands)
BINARY = {
    "pow": lambda r: (np.exp(r.uniform(-20, 20, 1 << 17)), r.uniform(-4, 4, 1 << 17)),
    "atan2": lambda r: (r.standard_normal(1 << 17) * 10, r.standard_normal(1 << 17) * 10),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_vectorised_binary_math_accuracy(name):
    """pow and atan2 (vectorised by libmvec where available: an Adam update raises to 0.5)
    against float64 numpy, the special values against eager on every pairing."""
    rng = np.random.default_rng(0)
    a, b = (v.astype(np.float32) for v in BINARY[name](rng))
    # (not the subnormal 1e-45: compiled programs read subnormal operands as zero)
    normal = SPECIALS[SPECIALS != np.float32(1e-45)]
    sa, sb = (v.ravel() for v in np.meshgrid(normal, normal))
    x, y = np.concatenate([a, sa]), np.concatenate([b, sb])
    fn = getattr(lax, name)
    got, = compile_jaxpr(jax.make_jaxpr(fn)(x, y), get_backend("cpu"))(x, y)
    want = np.asarray(fn(x, y))  # eager: the semantics of special values
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan)
    inf = np.isinf(want)
    np.testing.assert_array_equal(got[inf], want[inf])
    with np.errstate(all="ignore"):
        ref = getattr(np, "power" if name == "pow" else name)(x.astype(np.float64),
                                                               y.astype(np.float64))
    tiny = np.finfo(np.float32).tiny
    ok = (~nan & ~inf & np.isfinite(ref) & (np.abs(ref) >= tiny) & (np.abs(x) >= tiny)
          & (np.abs(y) >= tiny))
    err = _ulp_error(got[ok], ref[ok])
    assert err.max() <= MAX_ULP, (name, float(err.max()), float(x[ok][err.argmax()]))
