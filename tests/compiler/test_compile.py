"""Compiled results equal eager evaluation of the same jaxpr, on the C and interpreter
devices, for every lowered primitive (grouped: one compiled program per group keeps the
number of C compilations small)."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr

rng = np.random.default_rng(0)
F = rng.standard_normal((3, 4)).astype(np.float32)
P = (np.abs(F) + 0.5).astype(np.float32)          # positive
U = rng.uniform(-0.9, 0.9, (3, 4)).astype(np.float32)  # inside (-1, 1)
I = rng.integers(-20, 20, (3, 4)).astype(np.int32)
J = rng.integers(1, 7, (3, 4)).astype(np.int32)
B = F > 0


def check(fn, *args, device, rtol=2e-5, atol=1e-5):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = exe(*args)
    want = [np.asarray(w) for w in eval_jaxpr(closed.jaxpr, closed.consts, *args)]
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (k, g.shape, w.shape, g.dtype, w.dtype)
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"output {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {k}")
    return exe


UNARY_ANY = ["neg", "sign", "floor", "ceil", "is_finite", "exp", "exp2", "log1p", "expm1",
             "tanh", "logistic", "sin", "cos", "atan", "sinh", "cosh", "asinh", "cbrt",
             "abs", "erf", "erfc", "square"]
UNARY_POS = ["log", "sqrt", "rsqrt", "lgamma", "digamma", "tan", "acosh"]
UNARY_UNIT = ["asin", "acos", "atanh", "erf_inv"]


def _un(names):
    def fn(x):
        return tuple(getattr(lax, n)(x) for n in names)
    return fn


@pytest.mark.parametrize("names,arg", [(UNARY_ANY, F), (UNARY_POS, P + 1.0), (UNARY_UNIT, U)],
                         ids=["any", "pos", "unit"])
def test_unary_float(names, arg, device):
    check(_un(names), arg, device=device, rtol=2e-5, atol=2e-5)


def test_unary_special_values(device):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 2.5], np.float32)
    check(_un(["neg", "sign", "floor", "ceil", "is_finite", "exp", "tanh", "abs", "square"]),
          x, device=device)
    check(lambda x: (lax.round(x), lax.round(x, lax.RoundingMethod.TO_NEAREST_EVEN)), x,
          device=device)


def test_binary_float(device):
    def fn(x, y):
        return (x + y, x - y, x * y, x / y, lax.rem(x, y), lax.max(x, y), lax.min(x, y),
                lax.pow(lax.abs(x), y), lax.atan2(x, y), lax.nextafter(x, y), x < y, x <= y,
                x > y, x >= y, lax.eq(x, y), lax.ne(x, y), lax.integer_pow(x, 3),
                lax.integer_pow(x, -2), lax.polygamma(lax.full(y.shape, 1.0, np.float32), lax.abs(y) + 1))
    check(fn, F, P, device=device, rtol=1e-4, atol=1e-5)


def test_max_min_nan(device):
    x = np.array([np.nan, 1.0, 2.0, np.nan], np.float32)
    y = np.array([1.0, np.nan, 3.0, np.nan], np.float32)
    check(lambda x, y: (lax.max(x, y), lax.min(x, y)), x, y, device=device)


def test_integer_ops(device):
    def fn(x, y):
        return (x + y, x - y, x * y, lax.div(x, y), lax.rem(x, y), lax.max(x, y),
                lax.min(x, y), lax.bitwise_and(x, y), lax.bitwise_or(x, y),
                lax.bitwise_xor(x, y), lax.bitwise_not(x), lax.shift_left(x, y),
                lax.shift_right_arithmetic(x, y), lax.shift_right_logical(x, y), lax.neg(x),
                lax.abs(x), lax.sign(x), lax.population_count(y), lax.integer_pow(x, 2),
                lax.div(x, lax.full(x.shape, 0, np.int32)), lax.rem(x, lax.full(x.shape, 0, np.int32)))
    check(fn, I, J, device=device)


def test_bool_ops(device):
    def fn(a, b):
        return (lax.bitwise_and(a, b), lax.bitwise_or(a, b), lax.bitwise_xor(a, b),
                lax.bitwise_not(a), lax.select(a, lax.full(F.shape, 1.0, np.float32), F))
    check(fn, B, ~B, device=device)


def test_convert_select_clamp(device):
    x = np.array([np.nan, np.inf, -np.inf, 3.7, -3.7, 1e10, -1e10, 0.0], np.float32)
    def fn(x):
        return (lax.convert_element_type(x, np.int32), lax.convert_element_type(x, np.uint8),
                lax.convert_element_type(x, np.bool_), lax.convert_element_type(x, np.float64),
                lax.convert_element_type(lax.convert_element_type(x, np.int32), np.float32),
                lax.clamp(np.float32(-1.0), x, np.float32(2.0)),
                lax.select_n(lax.convert_element_type(lax.clamp(np.float32(0), x, np.float32(2)),
                                                      np.int32), x, -x, x * 2))
    check(fn, x, device=device)


def test_shape_ops(device):
    def fn(x):
        return (lax.broadcast_in_dim(x, (2, 3, 4), (1, 2)),
                lax.reshape(x, (4, 3)), lax.reshape(x, (2, 6), dimensions=(1, 0)),
                lax.transpose(x, (1, 0)) * 2, lax.iota(np.int32, 5),
                lax.broadcasted_iota(np.float32, (3, 4), 1) + x,
                lax.rev(x, (0, 1)) + 1, lax.slice(x, (1, 0), (3, 4), (1, 2)) + 1,
                lax.squeeze(lax.reshape(x, (1, 3, 4)) * 1, (0,)),
                lax.expand_dims(x, (0,)) * 3)
    check(fn, F, device=device)


def test_pad_concatenate(device):
    def fn(x, y):
        return (lax.pad(x, np.float32(0), ((1, 2, 0), (0, 1, 1))),
                lax.pad(x * 2, np.float32(-5), ((-1, 2, 1), (2, -1, 0))),
                lax.concatenate([x, y, x * 2], 0), lax.concatenate([x, y], 1),
                lax.concatenate([x > 0, y > 0], 0))
    check(fn, F, F + 1, device=device)


def test_reductions(device):
    def fn(x, i, b):
        return (lax.reduce_sum(x, (0,)), lax.reduce_sum(x, (1,)), lax.reduce_sum(x, (0, 1)),
                lax.reduce_max(x, (1,)), lax.reduce_min(x, (0,)),
                lax.reduce_prod(x, (1,)), lax.reduce_sum(i, (0,)), lax.reduce_max(i, (1,)),
                lax.reduce_and(b, (1,)), lax.reduce_or(b, (0,)), lax.reduce_xor(i, (1,)),
                lax.argmax(x, 1, np.int32), lax.argmin(x, 0, np.int32),
                lax.reduce_sum(lax.exp(x) * 2, (1,)) + 1)
    check(fn, F, I, B, device=device)


def test_argmax_nan_and_ties(device):
    x = np.array([[1.0, 3.0, 3.0, 0.0], [np.nan, 1.0, np.nan, 2.0]], np.float32)
    check(lambda x: (lax.argmax(x, 1, np.int32), lax.argmin(x, 1, np.int32)), x,
          device=device)


def test_cumulative(device):
    def fn(x):
        return (lax.cumsum(x, 1), lax.cumsum(x, 0, reverse=True), lax.cumprod(x, 1),
                lax.cummax(x, 1), lax.cummin(x, 0))
    check(fn, F, device=device)


def test_dot_general(device):
    a = rng.standard_normal((2, 3, 4)).astype(np.float32)
    b = rng.standard_normal((2, 4, 5)).astype(np.float32)
    def fn(a, b):
        return (lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))),
                lax.dot_general(a[0], b[1], (((1,), (0,)), ((), ()))),
                lax.dot_general(a, a, (((1, 2), (1, 2)), ((), ()))))
    check(fn, a, b, device=device, rtol=1e-4, atol=1e-5)


def test_consts_and_literals(device):
    c = np.arange(12, dtype=np.float32).reshape(3, 4)
    check(lambda x: x * c + 2.0, F, device=device)


def test_float64_and_scalars(device):
    x = rng.standard_normal((5,))
    jax.config.update("jax_enable_x64", True)
    try:
        check(lambda x: (lax.reduce_sum(lax.exp(x), (0,)), x[2] * 2.0), x, device=device,
              rtol=1e-12, atol=1e-12)
    finally:
        jax.config.update("jax_enable_x64", False)
    check(lambda x: (lax.reduce_sum(lax.exp(x), (0,)), x[2] * 2.0), x.astype(np.float32),
          device=device)


def test_dead_code_never_runs(device):
    def fn(x):
        _ = lax.exp(x) * 3  # unused
        return x + 1
    exe = check(fn, F, device=device)
    assert exe.num_kernels == 1


def test_unsupported_primitive_message():
    from tinyjax.core import Primitive
    p = Primitive("frobnicate")
    p.def_impl(lambda x: x)
    p.def_abstract_eval(lambda x: x)
    closed = jax.make_jaxpr(lambda x: p.bind(x))(F)
    with pytest.raises(NotImplementedError, match="no lowering for primitive 'frobnicate'"):
        compile_jaxpr(closed, get_backend("cpu"))


def test_reduce_window_and_conv(device):
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)

    def fn(x, w):
        return (lax.reduce_window(x, -np.inf, lax.max, (1, 1, 3, 2), (1, 1, 2, 1), "VALID"),
                lax.reduce_window(x, 0.0, lax.add, (1, 1, 2, 2), (1, 1, 1, 2),
                                  ((0, 0), (0, 0), (1, 2), (0, 1))),
                lax.conv_general_dilated(x, w, (1, 1), "VALID"),
                lax.conv_general_dilated(x, w, (2, 1), ((1, 1), (2, 0)), lhs_dilation=(1, 2),
                                         rhs_dilation=(2, 1)),
                lax.conv_general_dilated(x[:, :2], w[:, :1], (1, 1), "SAME",
                                         feature_group_count=2))
    exe = check(fn, x, w, device=device, rtol=1e-4, atol=1e-5)
    # one kernel per windowed op, no im2col buffer; the conv dilating its input by 2 along
    # a unit-stride axis runs as its 2 phases (no product by the dilation's zeros) and a
    # kernel interleaving them
    assert exe.num_kernels == 7


def _dilated_conv_reference(x, w, d, pad):
    """numpy: the NWC input dilated by ``d`` and padded (negative: cropped), then a WIO
    kernel slid over it with unit stride."""
    z = np.zeros((x.shape[0], (x.shape[1] - 1) * d + 1, x.shape[2]))
    z[:, ::d] = x
    lo, hi = pad
    z = np.pad(z, ((0, 0), (max(lo, 0), max(hi, 0)), (0, 0)))
    z = z[:, -min(lo, 0):z.shape[1] + min(hi, 0)]
    n_out = z.shape[1] - w.shape[0] + 1
    return sum(np.einsum("nwc,co->nwo", z[:, t:t + n_out], w[t]) for t in range(w.shape[0]))


def test_input_dilated_conv_runs_as_its_phases(device):
    """A convolution of an input dilated by d (a strided conv's input gradient) multiplies no
    zeros: d products over the undilated input, each with every d-th tap, interleaved."""
    x = rng.standard_normal((3, 9, 5)).astype(np.float32)
    w = rng.standard_normal((5, 5, 4)).astype(np.float32)
    for d, pad in [(2, (4, 4)), (2, (3, 2)), (3, (-1, 2)), (2, (0, -1))]:
        def fn(x, w):
            return lax.conv_general_dilated(x, w, (1,), [pad], lhs_dilation=(d,),
                                            dimension_numbers=("NWC", "WIO", "NWC"))
        exe = check(fn, x, w, device=device, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(exe(x, w)[0], _dilated_conv_reference(x, w, d, pad),
                                   rtol=1e-4, atol=1e-4)
        products = [k for k in exe.program.kernels if k.gemm is not None or k.reduce_axes]
        taps = sum(int(np.prod([k.full_shape[a] for a in k.reduce_axes])) // x.shape[2]
                   for k in products)
        assert len(products) == d and taps == w.shape[0]


@pytest.mark.parametrize("starts", [(1, 2), (-3, 9), (2, 0)])
def test_dynamic_slice_and_update(starts, device):
    x = np.arange(20, dtype=np.float32).reshape(4, 5)
    u = -np.arange(6, dtype=np.float32).reshape(2, 3)
    s = [np.int32(v) for v in starts]

    def fn(x, u, i, j):
        return (lax.dynamic_slice(x * 2, (i, j), (2, 3)),
                lax.dynamic_update_slice(x, u + 1, (i, j)))
    exe = check(fn, x, u, *s, device=device)
    # the compiled program is reused with other (data-dependent) indices
    got = exe(x, u, np.int32(0), np.int32(1))
    np.testing.assert_array_equal(got[0], (x * 2)[0:2, 1:4])


def test_jit_fast_path_matches_the_general_path(monkeypatch):
    """Calls with positional Arrays take jit's fast path: same values, weak types, pytree
    outputs, non-contiguous inputs, and a device change between calls."""
    import tinyjax.numpy as jnp
    monkeypatch.setattr(jax.config, "tinyjax_device", "cpu")
    x = jnp.asarray(np.arange(12, dtype=np.float32).reshape(3, 4))
    xt = jnp.transpose(x)  # may be a strided view
    f = jax.jit(lambda a: (a + 1.0, {"s": jnp.sum(a)}))
    for _ in range(2):  # first call: trace + compile; second: the cached runner
        out, d = f(xt)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(xt) + 1)
        assert float(d["s"]) == 66.0
    g = jax.jit(lambda a: a * 2)
    w = jnp.asarray(3.0)  # weakly typed stays weakly typed
    assert g(w).weak_type == w.weak_type
    monkeypatch.setattr(jax.config, "tinyjax_device", "interp")
    np.testing.assert_array_equal(np.asarray(g(x)), np.asarray(x) * 2)
    assert len({k[0] for k in g._fast}) == 2  # the device is part of the fast-path key
