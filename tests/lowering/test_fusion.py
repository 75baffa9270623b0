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
from tinyjax.lowering import compile_jaxpr
from tests.cuda_support import to_host

rng = np.random.default_rng(1)


def compiled(fn, *args, device="cpu"):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, device)
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
    ids = {id(a) for a in exe._static.values()}
    assert len(ids) < len(exe._static)


@pytest.mark.slow
def test_matmul_256_speed_report():
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    closed = jax.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (0,)), ((), ()))))(a, b)
    exe = compile_jaxpr(closed, "cpu")
    np.testing.assert_allclose(exe(a, b)[0], a @ b, rtol=1e-4, atol=1e-3)
    def gflops(fn, n=20):
        fn()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return 2 * 256 ** 3 / ((time.perf_counter() - t) / n) / 1e9
    ours, ref = gflops(lambda: exe(a, b)), gflops(lambda: a @ b)
    print(f"\nmatmul 256x256 float32: tinyjax C {ours:.1f} GFLOP/s, numpy {ref:.1f} GFLOP/s")
