"""Kernel counts: the scheduler fuses what it should and materialises only what it must.

Scheduling does not depend on the device, so the count tests run on every device of the
``device`` fixture (cpu, interp, and cuda where present), checking values there too."""
import os
import time

import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tests.cuda_support import to_host

rng = np.random.default_rng(1)


def compiled(fn, *args, device="cpu"):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = [to_host(g) for g in exe(*args)]  # device buffers copied back
    want = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (g.shape, g.dtype, w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    return exe, got


def test_relu_affine_sum_is_one_kernel(device):
    x = rng.standard_normal((8, 5)).astype(np.float32)
    exe, _ = compiled(lambda x: lax.reduce_sum(lax.max(x * 2 + 1, 0.0), (0, 1)), x,
                      device=device)
    assert exe.num_kernels == 1


def test_a_chain_of_elementwise_values_each_read_twice_is_one_kernel(device):
    # Threefry's rounds: every value feeds two elementwise ops (x1 -> the rotation and the
    # next add).  Inside one kernel both reads share one computation, so nothing is
    # materialised: random bits and normal draws are one kernel each.
    key = np.array([0, 42], np.uint32)
    exe, _ = compiled(lambda k: jax.random.bits(k, (64, 3)), key, device=device)
    assert exe.num_kernels == 1
    exe, _ = compiled(lambda k: jax.random.normal(k, (64, 3)), key, device=device)
    assert exe.num_kernels == 1


def test_materialised_transpose_is_one_kernel(device):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    exe, _ = compiled(lambda x: lax.transpose(x * 1.5, (1, 0)), x, device=device)
    assert exe.num_kernels == 1


def test_broadcast_multiply_sum_is_one_matmul_kernel(device):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)

    def f(a, b):  # (a[:, None, :] * b.T[None, :, :]).sum(-1)
        bt = lax.transpose(b, (1, 0))
        aa = lax.broadcast_in_dim(a, (4, 5, 6), (0, 2))
        bb = lax.broadcast_in_dim(bt, (4, 5, 6), (1, 2))
        return lax.reduce_sum(aa * bb, (2,))
    exe, (out,) = compiled(f, a, b, device=device)
    assert exe.num_kernels == 1
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)


def test_dot_general_is_one_kernel(device):
    a = rng.standard_normal((4, 6)).astype(np.float32)
    b = rng.standard_normal((6, 5)).astype(np.float32)
    exe, _ = compiled(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))) + 1.0,
                      a, b, device=device)
    assert exe.num_kernels == 1  # the bias add is the reduce's epilogue


def _softmax(x):
    m = lax.reduce_max(x, (1,))
    e = lax.exp(x - lax.broadcast_in_dim(m, x.shape, (0,)))
    s = lax.reduce_sum(e, (1,))
    return e / lax.broadcast_in_dim(s, x.shape, (0,))


def test_softmax_kernels(device):
    x = rng.standard_normal((4, 7)).astype(np.float32)
    exe, (out,) = compiled(_softmax, x, device=device)
    assert exe.num_kernels == 1  # max, sum of exp and the division: stages of one row loop
    np.testing.assert_allclose(out.sum(1), np.ones(4), rtol=1e-5)


def test_movement_only_is_zero_kernels(device):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    exe, (a, b, c) = compiled(lambda x: (lax.transpose(x, (1, 0)), lax.reshape(x, (2, 6)),
                                         lax.slice(x, (0, 1), (3, 4))), x, device=device)
    assert exe.num_kernels == 0
    exe, (y,) = compiled(lambda x: x, x, device=device)
    assert exe.num_kernels == 0


def test_reduce_broadcast_back_fuses_as_a_row_epilogue(device):
    # the row sum, then the row minus it: one kernel whose epilogue loops over the row again
    x = rng.standard_normal((3, 4)).astype(np.float32)
    exe, _ = compiled(lambda x: x - lax.broadcast_in_dim(lax.reduce_sum(x, (1,)), (3, 4), (0,)),
                      x, device=device)
    assert exe.num_kernels == 1


def test_full_reduction_broadcast_back_is_materialised(device):
    # a whole-array sum has no rows to share among threads: realised, then a parallel
    # elementwise kernel
    x = rng.standard_normal((300, 400)).astype(np.float32)
    exe, _ = compiled(lambda x: x - lax.broadcast_in_dim(lax.reduce_sum(x, (0, 1)), x.shape, ()),
                      x, device=device)
    assert exe.num_kernels == 2


def test_expensive_shared_input_is_materialised_once(device):
    a = rng.standard_normal((8, 8)).astype(np.float32)
    # exp(a) would be recomputed 8 times per element inside the matmul: realise it
    exe, _ = compiled(lambda a: lax.dot_general(lax.exp(lax.sin(a)), a, (((1,), (0,)), ((), ()))),
                      a, device=device)
    assert exe.num_kernels == 2


def test_multiple_outputs_share_inputs(device):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    exe, _ = compiled(lambda x: (x + 1, lax.reduce_sum(x, (0,)), x * 2), x, device=device)
    assert exe.num_kernels == 3


def _layer_norm_stats(x):
    n = x.shape[-1]
    mean = lax.reduce_sum(x, (1,)) / n
    d = x - lax.broadcast_in_dim(mean, x.shape, (0,))
    var = lax.reduce_sum(d * d, (1,)) / n
    y = d * lax.broadcast_in_dim(lax.rsqrt(var + 1e-5), x.shape, (0,))
    return y, mean, var


def test_layer_norm_is_one_kernel_writing_its_statistics(device):
    # the mean and variance are read by the normalisation and returned: stages of the
    # normalising kernel, which writes them too (multi-output fusion)
    x = rng.standard_normal((64, 48)).astype(np.float32)
    exe, (y, mean, var) = compiled(_layer_norm_stats, x, device=device)
    assert exe.num_kernels == 1
    assert exe.program.kernels[0].n_outs == 3
    np.testing.assert_allclose(mean, x.mean(1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var, x.var(1), rtol=1e-4, atol=1e-6)


def test_adam_update_of_a_transposed_gradient_is_one_kernel(device):
    """A weight gradient that Adam's two moments read transposed is written transposed by
    its product (realized in its readers' layout), and the moments and the parameter are
    one kernel writing three outputs (its moments absorbed: functions of the gradient)."""
    w = rng.standard_normal((40, 100)).astype(np.float32)
    x = rng.standard_normal((32, 40)).astype(np.float32)
    g = rng.standard_normal((32, 100)).astype(np.float32)

    def adam(w, m, v, x, g):
        dw = (g.T @ x).T  # (a weight gradient computed the other way round)
        m = 0.9 * m + 0.1 * dw
        v = 0.999 * v + 0.001 * dw * dw
        return w - 0.01 * m / ((v / 0.5) ** 0.5 + 1e-8), m, v
    exe, _ = compiled(adam, w, w * 0.1, w * w, x, g, device=device)
    assert exe.num_kernels == 2
    product, update = exe.program.kernels
    assert product.gemm is not None and update.n_outs == 3 and not update.reduce_op


def test_an_absorbed_result_read_through_a_pad_is_zero_outside_it(device):
    """A history updated with a function of a reduction (L-BFGS's ``1 / y.s`` appended
    to its last values): the kernel writing the history computes the function itself,
    and where the concatenation pads it (every point but the last) it is zero, not the
    function of a zero read."""
    x = rng.standard_normal((7,)).astype(np.float32)
    h = rng.standard_normal((10,)).astype(np.float32)

    def push(x, h):
        s = lax.reduce_sum(x * x, (0,))
        r = 1.0 / s
        return lax.concatenate([h[1:], lax.broadcast_in_dim(r, (1,), ())], 0), s * x
    exe, (new, _) = compiled(push, x, h, device=device)
    assert np.isfinite(new).all()


def test_stage_results_stored_only_where_read(device):
    # the statistics feed only the normalisation: computed as stages, never written
    x = rng.standard_normal((64, 48)).astype(np.float32)
    exe, _ = compiled(lambda x: _layer_norm_stats(x)[0] * 2.0, x, device=device)
    assert exe.num_kernels == 1 and exe.program.kernels[0].n_outs == 1


def test_log_softmax_gradient_row_results_share_a_kernel(device):
    # the max, the sum of exp and the gradient's row sums: all stages of the kernel that
    # writes the logits' gradient; the loss reads the max and sum it stored
    x = rng.standard_normal((96, 10)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 96)]

    def loss(x, y):
        z = x - jax.numpy.max(x, axis=-1, keepdims=True)
        logp = z - jax.numpy.log(jax.numpy.sum(jax.numpy.exp(z), axis=-1, keepdims=True))
        return -jax.numpy.mean(jax.numpy.sum(logp * y, axis=-1))
    exe, (value, g) = compiled(jax.value_and_grad(loss), x, y, device=device)
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(g, (p - y) / 96, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(value, -np.mean(np.sum(np.log(p) * y, 1)), rtol=1e-5)
    # the gradient (one kernel, writing the max and sum too), the loss's row sums, its mean
    assert exe.num_kernels == 3
    assert sorted(k.n_outs for k in exe.program.kernels) == [1, 1, 3]


def test_no_kernel_computes_only_constants(device):
    # the cotangent of a mean, -1/n, is folded into the kernels that read it
    x = rng.standard_normal((16, 8)).astype(np.float32)
    exe, _ = compiled(jax.grad(lambda x: -jax.numpy.mean(jax.numpy.sum(x * x, axis=1))), x,
                      device=device)
    assert exe.num_kernels == 1
    assert not any("(0 inputs)" in k for k in exe.kernels())


def test_a_mask_of_positions_is_recomputed_where_it_is_read(device):
    # a causal mask (iota comparisons) read by the forward select and by its transpose in
    # the backward pass is a few integer ops in each reader, not a kernel of its own
    x = rng.standard_normal((4, 8, 8)).astype(np.float32)

    def loss(x):
        causal = jax.numpy.tril(jax.numpy.ones((8, 8), dtype=bool))
        return jax.numpy.sum(jax.numpy.where(causal, x, -1e9) ** 2 * x)
    exe, (g,) = compiled(jax.grad(loss), x, device=device)
    mask = np.tril(np.ones((8, 8), bool))
    np.testing.assert_allclose(g, np.where(mask, 3 * x * x, 1e18), rtol=1e-5)
    assert not any("(0 inputs)" in k for k in exe.kernels())


def test_a_row_result_read_through_another_kernel_is_written_first(device):
    # e = exp(sin(x - max)) is realised (read thrice, costly) and read by the final kernel,
    # so the max cannot be a stage of that one (e's kernel must run between the two): it is
    # a stage of e's kernel, which writes it; the final kernel takes the sum of e as a stage
    x = rng.standard_normal((70, 33)).astype(np.float32)

    def f(x):
        mx = lax.reduce_max(x, (1,))  # read through two broadcasts: realised
        e = lax.exp(lax.sin(x - lax.broadcast_in_dim(mx, x.shape, (0,))))
        s = lax.broadcast_in_dim(lax.reduce_sum(e, (1,)), x.shape, (0,))
        return e / s + lax.exp(e) * lax.broadcast_in_dim(mx, x.shape, (0,))
    exe, (out,) = compiled(f, x, device=device)
    m = x.max(1, keepdims=True)
    e = np.exp(np.sin(x - m))
    np.testing.assert_allclose(out, e / e.sum(1, keepdims=True) + np.exp(e) * m, rtol=1e-5)
    assert [k.n_outs for k in exe.program.kernels] == [2, 1]


def test_source_lines_recorded(device):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    exe, _ = compiled(lambda x: lax.reduce_sum(lax.exp(x), (1,)), x, device=device)
    assert all("test_fusion.py" in k for k in exe.kernels())
    assert "test_fusion.py" in exe.source()


def test_buffers_are_reused():
    x = rng.standard_normal((1 << 17,)).astype(np.float32) * 1e-3

    def f(x):  # whole-array reductions broadcast back: several intermediates, same size
        for _ in range(4):
            s = lax.reduce_sum(x, (0,))
            x = lax.exp(x - lax.broadcast_in_dim(s, x.shape, ()))
        return x
    exe, _ = compiled(f, x)
    offsets = [b.index for b in exe.program.scratch if b.nbytes]
    assert len(set(offsets)) < len(offsets)  # buffers whose lifetimes do not overlap share


@pytest.mark.slow
def test_matmul_256_speed_report():
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    closed = jax.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))))(a, b)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    np.testing.assert_allclose(exe(a, b)[0], a @ b, rtol=1e-4, atol=1e-3)
    def gflops(fn, n=20):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return 2 * 256 ** 3 / ((time.perf_counter() - t) / n) / 1e9
    ours, ref = gflops(lambda: exe(a, b)), gflops(lambda: a @ b)
    print(f"\nmatmul 256x256 float32: tinyjax C {ours:.1f} GFLOP/s, numpy {ref:.1f} GFLOP/s")
