"""The matmul-shaped kernel's code paths on the C device (values vs eager on cpu and the
interpreter): A panels packed next to their tiles (a conv's windows, a ReLU fused into the
packing as branch-free selects) and split-K (a small result over a long reduction: a conv's
kernel gradient)."""
import re
import sys

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tests.subprocess_support import describe, run_python

rng = np.random.default_rng(0)
DN = ("NHWC", "HWIO", "NHWC")


@pytest.fixture(params=["cpu", "interp"])
def device(request):
    return request.param


@pytest.fixture
def threads(monkeypatch):
    """Every product on the threads, whatever its size (the cost model keeps these tests'
    small products on the calling thread): the threaded strategies get rendered."""
    from tinyjax.compiler.codegen import gemm
    monkeypatch.setattr(gemm, "PARALLEL_MIN_FLOPS", 0)


def check(fn, *args, device, rtol=1e-4, atol=1e-4):
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend(device))
    got = exe(*args)
    want = [np.asarray(w) for w in eval_jaxpr(closed.jaxpr, closed.consts, *args)]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return exe


def _source(exe) -> str:
    return getattr(exe, "_source", "") or ""


def _plans(exe) -> list:
    """The CPU decisions of the program's products (codegen.gemm.GemmLoops)."""
    return [k.gemm_loops for k in exe.program.kernels if k.gemm is not None]


def _relu_conv(x, w):
    return lax.conv_general_dilated(jnp.maximum(x, 0.0), w, (1, 1), "SAME", dimension_numbers=DN)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_with_fused_relu_packs_a_panels_per_tile(device, dtype, request):
    if dtype == np.float64:
        request.getfixturevalue("x64")
    x = rng.standard_normal((3, 9, 10, 8)).astype(dtype)
    x[0, 2, 3, 1] = np.nan   # NaN-propagating max must survive the branch-free select
    x[1, 4, 4, 0] = -np.inf
    w = rng.standard_normal((3, 3, 8, 12)).astype(dtype)
    exe = check(_relu_conv, x, w, device=device)
    if device == "cpu":
        src = _source(exe)
        assert [p.strategy for p in _plans(exe)] == ["fused"] and "TJ_FUSED" in src
        assert ("tj_sel_d" if dtype == np.float64 else "tj_sel_f") in src
    out = exe(x, w)[0]
    assert np.isnan(out[0, 1:4, 2:5]).all() and not np.isnan(out[2]).any()


def test_threads_take_a_panels_in_runs(threads, device):
    """On the threads a fused product's A panels are handed out a run at a time (79 panels
    of 8 rows, the last ragged, in runs of 4: the last run short) and every tile is right."""
    x = rng.standard_normal((7, 9, 10, 8)).astype(np.float32)
    w = rng.standard_normal((3, 3, 8, 12)).astype(np.float32)
    exe = check(_relu_conv, x, w, device=device)
    if device == "cpu":
        assert [(p.strategy, p.threads) for p in _plans(exe)] == [("fused", True)]


def test_long_reduction_small_result_splits_k(threads, device):
    a = rng.standard_normal((8, 4096)).astype(np.float32)
    b = rng.standard_normal((4096, 16)).astype(np.float32)
    exe = check(lambda a, b: jnp.maximum(a, 0.0) @ b + 1.0, a, b, device=device, rtol=2e-4)
    if device == "cpu":
        assert "splitk" in [p.strategy for p in _plans(exe)] and "TJ_SPLITK" in _source(exe)


def test_conv_kernel_gradient_splits_k(threads, device):
    x = rng.standard_normal((32, 12, 12, 4)).astype(np.float32)
    w = rng.standard_normal((3, 3, 4, 6)).astype(np.float32)
    g = rng.standard_normal((32, 12, 12, 6)).astype(np.float32)

    def kernel_grad(x, w, g):
        return jax.grad(lambda w: jnp.sum(_relu_conv(x, w) * g))(w)
    exe = check(kernel_grad, x, w, g, device=device, rtol=2e-4, atol=2e-3)
    if device == "cpu":
        assert "splitk" in [p.strategy for p in _plans(exe)] and "TJ_SPLITK" in _source(exe)


def test_staged_reductions_keep_a_row_of_accumulators_per_stage(device):
    """Softmax down the columns and a max-pool gradient: several reduction stages over one
    loop space, each with a row of accumulators along the unit-stride output axis."""
    x = rng.standard_normal((37, 40)).astype(np.float32)
    x[3, 5] = np.nan

    def col_softmax(x):
        m = jnp.max(x, axis=0, keepdims=True)
        e = jnp.exp(x - m)
        return e / jnp.sum(e, axis=0, keepdims=True)
    exe = check(col_softmax, x, device=device)
    out = exe(x)[0]
    assert np.isnan(out[:, 5]).all() and not np.isnan(out[:, 4]).any()

    h = rng.standard_normal((2, 8, 8, 16)).astype(np.float32)
    h[0, 0, 0, 0] = h[0, 0, 1, 0]  # a tie: the first in the window wins

    def pool_grad(h):
        def pool(h):
            return lax.reduce_window(jnp.maximum(h, 0.0), -np.inf, lax.max, (1, 2, 2, 1),
                                     (1, 2, 2, 1), "VALID")
        return jax.grad(lambda h: jnp.sum(pool(h) * jnp.arange(16.0)))(h)
    exe = check(pool_grad, h, device=device)
    if device == "cpu":  # both stages (the max, then the argmax) keep a row of accumulators
        staged = [k for k in exe.program.kernels if k.pre]
        assert staged and all(
            u.arg.count > 1 for k in staged for u in k.loop_ir if u.op == "DEFINE_ACC")


@pytest.mark.parametrize("M,N,K", [(33, 45, 24), (9, 300, 230)])  # A packed per tile / all first
def test_many_products_go_to_the_threads_whole(threads, device, M, N, K):
    """A batch of at least BATCH_PARALLEL_MIN products (attention's heads): each thread packs
    and multiplies whole products, ragged tiles and a fused ReLU included."""
    a = rng.standard_normal((4, 5, M, K)).astype(np.float32)
    b = rng.standard_normal((4, 5, K, N)).astype(np.float32)
    exe = check(lambda a, b: jnp.maximum(a, 0.0) @ b * 0.5, a, b, device=device, rtol=2e-4)
    if device == "cpu":
        assert [(p.batched, p.threads) for p in _plans(exe)] == [(True, True)]
        assert re.search(r"tj_gemm_plan plan = \{(\d+, ){4}20, \d+, \d+, TJ_\w+, 1, 1[,}]",
                         _source(exe))


def test_an_operand_along_k_fills_a_big_panel_k_by_k(device):
    """``g @ w.T``: the packed panel of ``w.T`` (32 rows x 1024) is larger than L1, so it is
    filled k by k although its reads run along K."""
    g = rng.standard_normal((20, 1024)).astype(np.float32)
    w = rng.standard_normal((70, 1024)).astype(np.float32)
    check(lambda g, w: g @ w.T, g, w, device=device, rtol=2e-4, atol=2e-4)


def test_a_row_result_is_stored_before_the_loop_over_the_row(device):
    """Softmax with its row max read elsewhere: the max is stored once per row ahead of the
    division's loop, which is then free of guarded stores (and vectorises)."""
    x = rng.standard_normal((6, 50)).astype(np.float32)
    x[:, 20:] = -1e9  # a causal mask's scores: exp underflows to 0

    def softmax_and_max(x):
        m = jnp.max(x, axis=-1, keepdims=True)
        e = jnp.exp(x - m)
        return e / jnp.sum(e, axis=-1, keepdims=True), m[:, 0] * 2.0
    exe = check(softmax_and_max, x, device=device)
    if device == "cpu":
        src = _source(exe)
        assert re.search(r"data\d\[i0\] = acc\d;\n(\s*#pragma GCC ivdep\n)?\s*for \(long i1 = 0; "
                         r"i1 < 50;", src), src


@pytest.mark.parametrize("M,N,K", [(301, 40, 2050), (70, 300, 1000)])
def test_b_groups_are_packed_by_the_threads_that_use_them(threads, device, M, N, K):
    """B too big to pack once for all tiles: each group of B panels is packed by the thread
    that multiplies the A panels by it (with few groups, A is cut into chunks and a group
    packed once per chunk); A's rows, computed 32 values at a time (a fused ReLU, a ragged
    last block of K), are written into its panels transposed where a panel fits in L1."""
    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    exe = check(lambda a, b: jnp.maximum(a, 0.0) @ b - 1.0, a, b, device=device, rtol=5e-4,
                atol=5e-4)
    if device == "cpu":
        src = _source(exe)
        assert [p.strategy for p in _plans(exe)] == ["grouped"] and "TJ_GROUPED" in src
        assert ("blk[r][j] = " in src) == (8 * K * 4 <= 32768)


# --- operands and results that are strided views (filled and stored by the support library)


def _views(exe) -> list:
    return [(p.pack_a, p.pack_b) + p.views for p in _plans(exe)]


VIEW_CASES = {
    # name: (function, operand shapes, (pack a, pack b) expected, [is a view] x (a, b, result))
    "a @ b": (lambda a, b: a @ b, [(37, 29), (29, 45)]),
    "a.T @ b": (lambda a, b: a.T @ b, [(29, 37), (29, 45)]),
    "a @ b.T": (lambda a, b: a @ b.T, [(37, 29), (45, 29)]),
    "(a @ b).T": (lambda a, b: (a @ b).T, [(37, 29), (29, 45)]),
    "offset slices": (lambda a, b: a[3:40, 2:] @ b[1:, 5:50], [(41, 31), (30, 51)]),
    "two reduce axes": (lambda a, b: jnp.tensordot(a, b, 2), [(37, 5, 6), (5, 6, 45)]),
    "rows of two axes": (lambda a, b: a @ b, [(3, 13, 29), (29, 45)]),
}


@pytest.mark.parametrize("case", list(VIEW_CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_operands_and_results_are_views(case, dtype, request):
    """An operand read as it is and a result stored as it is have no functions of their own
    in the kernel (the support library fills and stores them through their strides): the
    values against eager, ragged panels and tiles included."""
    if dtype == np.float64:
        request.getfixturevalue("x64")
    fn, shapes = VIEW_CASES[case]
    args = [rng.standard_normal(s).astype(dtype) for s in shapes]
    exe = check(fn, *args, device="cpu", rtol=1e-5, atol=1e-5)
    (plan,) = _plans(exe)
    assert all(v is not None for v in plan.views), plan
    name = next(k.name for k in exe.program.kernels if k.gemm is not None)
    assert f"{name}_pa" not in _source(exe) and f"{name}_epi" not in _source(exe)


def test_views_fill_panels_each_way(threads):
    """The three ways of filling a panel (rows innermost, blocks along K written
    transposed, K innermost: a split-K chunk read along K) from views."""
    a = rng.standard_normal((8, 4096)).astype(np.float32)
    b = rng.standard_normal((4096, 16)).astype(np.float32)
    exe = check(lambda a, b: a @ b, a, b, device="cpu", rtol=2e-4, atol=2e-3)
    (plan,) = _plans(exe)
    assert plan.strategy == "splitk" and {plan.pack_a, plan.pack_b} == {"k", "rows"}
    assert plan.views[0] is not None and plan.views[1] is not None
    exe = check(lambda a, b: a @ b, a[:, :300], b[:300], device="cpu", rtol=2e-4, atol=2e-4)
    (plan,) = _plans(exe)
    assert "blocked" in (plan.pack_a, plan.pack_b) and None not in plan.views


def test_batched_views_unravel_their_outer_axes(threads):
    """Attention's per-head products read heads out of (batch, seq, heads, dim) arrays: the
    outer axes (batch, heads) do not merge, each keeps its stride."""
    q = rng.standard_normal((3, 17, 4, 16)).astype(np.float32)
    k = rng.standard_normal((3, 19, 4, 16)).astype(np.float32)
    exe = check(lambda q, k: jnp.einsum("bqhd,bkhd->bhqk", q, k), q, k, device="cpu",
                rtol=1e-5, atol=1e-5)
    (plan,) = _plans(exe)
    assert all(v is not None and len(v.outer) == 2 for v in plan.views), plan


def test_a_fused_operand_keeps_its_own_packing_beside_a_view():
    """A ReLU fused into one operand: that side is packed by the kernel, the other is a view."""
    a = rng.standard_normal((37, 29)).astype(np.float32)
    b = rng.standard_normal((29, 45)).astype(np.float32)
    exe = check(lambda a, b: jnp.maximum(a, 0.0) @ b, a, b, device="cpu")
    (plan,) = _plans(exe)
    fused = 1 if plan.swapped else 0
    assert plan.views[fused] is None and plan.views[1 - fused] is not None


def test_cost_model_counts_each_result_elements_epilogue():
    """A convolution over one input channel (K = 5 taps, 1900 x 64 results: 0.6M
    multiply-adds) is mostly its tiles' stores and epilogue, and goes to the threads; a
    product of twice the multiply-adds over a tenth of the results stays on one thread."""
    x = rng.standard_normal((100, 40, 1)).astype(np.float32)
    w = rng.standard_normal((5, 1, 64)).astype(np.float32)
    conv = lambda x, w: lax.conv_general_dilated(  # noqa: E731
        x, w, (2,), [(1, 1)], dimension_numbers=("NWC", "WIO", "NWC"))
    exe = check(conv, x, w, device="cpu")
    assert [p.threads for p in _plans(exe)] == [True]
    a = rng.standard_normal((128, 100)).astype(np.float32)
    b = rng.standard_normal((100, 100)).astype(np.float32)
    exe = check(lambda a, b: a @ b, a, b, device="cpu")
    assert [p.threads for p in _plans(exe)] == [False]


_OUT_OF_MEMORY = """
import resource, numpy as np, tinyjax as jax
rng = np.random.default_rng(0)
f = jax.jit(lambda a, b: a @ b)
small = rng.standard_normal((64, 64)).astype(np.float32)
f(small, small)   # the threads and their small buffers exist before the limit
a = rng.standard_normal((3000, 6000)).astype(np.float32)   # packed whole: 72 MB
b = rng.standard_normal((6000, 64)).astype(np.float32)
f.lower(a, b).compile()
with open("/proc/self/statm") as statm:
    used = int(statm.read().split()[0]) * resource.getpagesize()
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
resource.setrlimit(resource.RLIMIT_AS, (used + (48 << 20), hard))
try:
    f(a, b)
    print("no error")
except MemoryError as e:
    print("MemoryError", "packing buffers" in str(e))
resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
print(np.allclose(np.asarray(f(a, b)), a @ b, rtol=1e-3, atol=1e-2))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
@pytest.mark.parametrize("threads", ["1", "2"])
def test_a_product_without_memory_for_its_buffers_raises(threads):
    """A product whose packing buffers cannot be allocated (the address space limited below
    them) is skipped and the call raises MemoryError -- it crashed the process before --
    and the next call, with the memory back, computes it."""
    r = run_python(_OUT_OF_MEMORY, env={"TINYJAX_CPU_THREADS": threads})
    assert r.returncode == 0, describe(r)
    assert r.stdout.split("\n")[:2] == ["MemoryError True", "True"], describe(r)


@pytest.mark.parametrize("on_threads", [False, True])
@pytest.mark.parametrize("M, K, N, batch, in_place", [
    (5, 1900, 64, None, True), (192, 1000, 64, None, True), (40, 300, 96, 3, True),
    (24, 700, 48, None, False), (64, 3000, 64, None, False)])
def test_b_read_in_place_or_packed(monkeypatch, on_threads, M, K, N, batch, in_place):
    """A B operand that is a view with unit stride along its panels' columns, whole
    panels and a small span is read where it is, the others packed: a kernel gradient's
    shapes (5 taps, 192 windows), batched products (each product's B at its own offset),
    a ragged N (48) and a span over the bound (3000 x 64 floats): every way the same
    values as numpy."""
    if on_threads:
        from tinyjax.compiler.codegen import gemm
        monkeypatch.setattr(gemm, "PARALLEL_MIN_FLOPS", 0)
    lead = () if batch is None else (batch,)
    a = rng.standard_normal(lead + (M, K)).astype(np.float32)
    b = rng.standard_normal(lead + (K, N)).astype(np.float32)
    got = np.asarray(jax.jit(lambda a, b: jnp.maximum(a, 0.0) @ b)(a, b))
    np.testing.assert_allclose(got, np.maximum(a, 0) @ b, rtol=1e-4, atol=1e-3)
    exe = check(lambda a, b: jnp.maximum(a, 0.0) @ b, a, b, device="cpu", atol=1e-3)
    assert [p.pack_b == "none" for p in _plans(exe)] == [in_place]


@pytest.mark.parametrize("view", ["reversed", "every_other_row", "column_slice", "shared"])
def test_b_read_in_place_through_views(view):
    """B read in place through the views a program makes of its buffers: rows reversed (a
    negative stride), every other row, a slice of columns, one B shared by a batch."""
    a = rng.standard_normal((6, 40, 200)).astype(np.float32)
    b = rng.standard_normal((400, 128)).astype(np.float32)
    take = {"reversed": lambda b: b[199::-1, :64], "every_other_row": lambda b: b[::2, :64],
            "column_slice": lambda b: b[:200, 32:96], "shared": lambda b: b[:200, :64]}[view]
    got = np.asarray(jax.jit(lambda a, b: jnp.maximum(a, 0.0) @ take(b))(a, b))
    np.testing.assert_allclose(got, np.maximum(a, 0) @ take(b), rtol=1e-4, atol=1e-3)
