"""The CUDA kernel structures: the GPU passes and launch geometry the cost model picks per kernel
shape (tinyjax/compiler/codegen/gpu_*.py), the source the CUDA renderer spells from their
loop IR (tinyjax/backends/cuda/render.py) for each path (no GPU needed), nvcc
compilation of a broad set of kernels where nvcc is installed, and on a GPU: ``jit`` on
``cuda`` against eager evaluation for reductions, sorts, scatters and elementwise kernels.

``python tests/backends/test_cuda_render.py`` (on a GPU) prints kernel times and bandwidths."""
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.backends.cuda.launch import fits_int32
from tinyjax.backends.cuda.render import CUDALanguage, render_source
from tinyjax.compiler.codegen import CudaTarget, cuda_loop_ir, cuda_plan, gpu_heuristics as GH
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.schedule import schedule
from tests.cuda_support import assert_nvcc_compiles, needs_cuda, needs_nvcc, to_host

LANG = CUDALanguage()
SMS = CudaTarget().sms
BUSY = CudaTarget().busy
BF16 = np.dtype(dtypes.bfloat16)
rng = np.random.default_rng(0)


def _kernels(f, *args):
    leaves, outs = lower_jaxpr(inline_calls(jax.make_jaxpr(f)(*args).jaxpr))
    ks = schedule(leaves, outs).kernels
    for k in ks:
        k.loop_ir = cuda_loop_ir(k)
    return ks


def plan(k):
    """The GPU passes' decisions for ``k``."""
    return cuda_plan(k)


def render(k) -> str:
    return LANG.render_kernel(k)


def dims(k):
    return LANG.launch_dims(k)


def _one(kind, f, *args):
    """The only kernel of ``kind`` (reduce, sort, scatter, elementwise) that ``f`` makes."""
    ks = [k for k in _kernels(f, *args) if plan(k).kind == kind]
    assert len(ks) == 1, [k.describe() for k in _kernels(f, *args)]
    return ks[0]


def _normal(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


def _shape(*shape, dtype=np.float32):
    """A placeholder argument: only its shape and dtype matter for rendering."""
    return np.zeros(shape, dtype)


# ---- the plan per kernel shape (no GPU) ---------------------------------------------------------

def test_long_rows_reduce_with_a_block_per_row_and_warp_shuffles():
    k = _one("reduce", lambda x: jnp.sum(x, axis=1), _shape(4096, 4096))
    p = plan(k)
    assert (p.layout, p.grid, p.G) == ("rows", 4096, 1) and p.block == p.W >= 256
    src = render(k)
    assert "__shfl_xor_sync" in src and "__syncthreads()" in src
    assert dims(k) == ((4096, 1, 1), (p.W, 1, 1), 0)


def test_medium_rows_share_a_block_between_several_outputs():
    k = _one("reduce", lambda x: jnp.max(x, axis=-1), _shape(100000, 64))
    p = plan(k)
    assert p.layout == "rows" and p.W < 32 and p.block // p.W > 1
    assert p.grid == -(-100000 // (p.block // p.W))
    src = render(k)
    assert "__shfl_xor_sync" in src and "tj_smem" not in src  # within warps only


def test_softmax_is_one_block_per_row_with_stages_and_a_full_epilogue():
    ks = _kernels(lambda x: jax.nn.softmax(x, axis=-1), _shape(4096, 4096))
    full = [k for k in ks if k.full_epilogue]
    assert full, [k.describe() for k in ks]
    for k in ks:
        p = plan(k)
        assert p.kind == "reduce" and p.layout == "rows" and p.G == 1 and p.grid == 4096
    src = render(full[0])
    # each pass (max, sum, division) runs over the row spread over the block's threads;
    # each thread's share of the row is read from memory once, into registers
    W = plan(full[0]).W
    assert f"float c0[{4096 // W}];" in src and src.count("data1[") == 1, src
    assert src.count(f"for (int j = 0; j < {4096 // W}; j++)") == 3, src


def test_a_row_too_long_for_registers_is_read_once_per_pass():
    k = _one("reduce", lambda x: jax.nn.softmax(x, axis=-1), _shape(1024, 1 << 16))
    W = plan(k).W
    assert (1 << 16) // W * 4 > GH.ROW_CACHE
    src = render(k)
    assert "c0[" not in src and src.count("data1[") == 3, src
    assert f"for (int r = part; active && r < {1 << 16}; r += {W})" in src


def test_index_arithmetic_is_32_bit_where_it_fits():
    """A convolution's window offsets in 32-bit arithmetic; 64-bit once an address can pass
    2**31 (shapes only: nothing is allocated)."""
    def conv(x, w):
        return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    k = _one("reduce", conv, _shape(4, 28, 28, 1), _shape(3, 3, 1, 32))
    src = render(k)
    assert "const int i" in src and "long" not in src.split("{", 1)[1]
    big = jax.ShapeDtypeStruct((1 << 16, 1 << 16), np.float32)  # 2**32 elements
    k = _one("reduce", lambda x: jnp.sum(x, axis=1), big)
    assert "const long i" in render(k)
    assert fits_int32(_one("reduce", lambda x: jnp.sum(x, axis=1),
                                       _shape(1024, 1024)))


def test_reductions_along_contiguous_rows_load_vectors():
    """Four consecutive points per thread and step (16-byte loads) where every load of the
    reduction runs with unit stride along its innermost axis from an aligned offset."""
    for f in (lambda x: jnp.sum(jnp.tanh(x) * x), lambda x: jnp.sum(x[:, 4:996], axis=1)):
        k = _one("reduce", f, _shape(64, 1000))
        assert "tj_ld<float, 4>" in render(k)
    k = _one("reduce", lambda x: jnp.sum(x[:, 1:997], axis=1), _shape(64, 1000))
    assert "tj_ld" not in render(k)


def test_argmax_keeps_every_stage_accumulator_in_all_threads():
    k = _one("reduce", lambda x: jnp.argmax(x, axis=1), _shape(64, 3000))
    assert k.pre
    src = render(k)
    assert all(f"__shfl_xor_sync(0xffffffffu, acc{j}, 1)" in src for j in (0, 1)), src


def test_column_sums_of_a_tall_matrix_run_one_thread_per_column():
    k = _one("reduce", lambda x: jnp.sum(x, axis=0), _shape(64, 2 * BUSY))
    p = plan(k)
    assert (p.layout, p.W, p.G) == ("cols", 1, 1)
    assert p.grid == -(-2 * BUSY // p.block)
    assert "__shfl" not in render(k)


def test_column_sums_with_few_columns_split_rows_over_threads_and_blocks():
    k = _one("reduce", lambda x: jnp.sum(x, axis=0), _shape(100000, 256))
    p = plan(k)
    assert p.layout == "cols" and p.W == GH.COLS_MAX_W and p.G > 1
    assert p.block // p.W >= 32  # a warp reads 32 consecutive columns
    src = render(k)
    assert f"{k.name}_part" in src and "atomicAdd" in src


def test_a_full_sum_splits_over_blocks_and_the_last_one_finishes():
    k = _one("reduce", lambda x: jnp.sum(jnp.tanh(x * 1.5 + 0.5) * jnp.exp(-x * x)
                                         + jnp.sqrt(jnp.abs(x) + 1)), _shape(1 << 24))
    p = plan(k)
    assert p.layout == "rows" and p.W == GH.MAX_W and p.G >= 4 * SMS
    assert dims(k).grid == (p.G, 1, 1)
    src = render(k)
    assert "__threadfence()" in src and f"atomicAdd(&{k.name}_count[ob], 1u)" in src


def test_stages_are_never_split_over_blocks():
    k = _one("reduce", lambda x: jnp.argmin(x), _shape(1 << 20))
    p = plan(k)
    assert p.G == 1 and p.grid == 1 and p.block == GH.MAX_W


def test_contiguous_elementwise_uses_16_byte_loads_and_stores():
    k = _one("elementwise", lambda x, y: x * y + 1, _shape(1000, 64), _shape(1000, 64))
    p = plan(k)
    assert p.lanes == 4 and p.grid == -(-64000 // 4 // p.block)
    src = render(k)
    assert src.count("tj_ld<float, 4>") == 2 and "tj_st<float, 4>" in src
    assert "const bool aligned = (unsigned long)data0 % 16 == 0" in src


def test_unaligned_views_load_lane_by_lane():
    # x[:, 1:] starts one element into every row: that load goes lane by lane
    k = _one("elementwise", lambda x: x[:, 1:] * 2, _shape(50, 9))
    src = render(k)
    assert plan(k).lanes == 4 and "tj_ld" not in src and "tj_st<float, 4>" in src
    assert src.count("data1[") == 4


def test_odd_sizes_run_one_point_per_thread():
    k = _one("elementwise", lambda x: x + 1, _shape(7, 1001))
    p = plan(k)
    assert p.lanes == 1 and p.grid == -(-7007 // p.block)
    assert "tj_ld" not in render(k)


def test_grid_limits():
    for k in _kernels(lambda x: (x + 1, jnp.sum(x, axis=1), jnp.sum(x, axis=0)),
                      _shape(3000, 5001)):
        d = dims(k)
        assert 0 < d.grid[0] <= 2 ** 31 - 1 and d.grid[1] <= 65535 and d.grid[2] <= 65535
        assert 32 <= d.block[0] <= 1024 and d.block[0] % 32 == 0
        assert f"__launch_bounds__({d.block[0]})" in render(k)


def test_sort_renders_a_block_per_row_in_shared_memory_or_global_scratch():
    k = _one("sort", lambda x: jnp.argsort(x, axis=1), _shape(300, 1000))
    p = plan(k)
    assert (p.mode, p.grid, p.block) == ("shared", 300, 1024)
    assert "__shared__ int tj_idx[2000]" in render(k)
    k = _one("sort", lambda x: jnp.argsort(x), _shape(3, 100000))
    p = plan(k)
    assert p.mode == "global" and 1 <= p.grid <= 3
    assert f"__device__ int32_t {k.name}_scratch[{p.grid * 200000}]" in render(k)


@pytest.mark.parametrize("update, dtype, mode, call", [
    ("add", np.float32, "atomic", "atomicAdd(&data0["),
    ("add", np.int32, "atomic", "atomicAdd(&data0["),
    ("max", np.int32, "atomic", "atomicMax(&data0["),
    ("min", np.float32, "cas", "atomicCAS("),
    ("mul", np.float32, "cas", "atomicCAS("),
    ("set", np.float32, "winner", "_win[v"),
    ("add", np.float16, "serial", "for (long u = 0; u < 3; u++)"),
    ("max", np.bool_, "serial", "for (long u = 0; u < 3; u++)"),
])
def test_scatter_modes(update, dtype, mode, call):
    x = _shape(50, dtype=dtype)
    idx = np.array([3, 1, 3], np.int32)
    k = _one("scatter", lambda x, i: getattr(x.at[i], update)(x[:3]), x, idx)
    assert plan(k).mode == mode
    names = [name for name, _ in LANG.launches(k)]
    want = [f"{k.name}_copy"] + [f"{k.name}_mark"] * (mode == "winner") + [k.name]
    assert names == want
    src = render(k)
    # one function per launch, in launch order, each over the kernel's buffers; the updates last
    starts = [src.index(f" {name}(") for name in names]
    assert starts == sorted(starts) and src.count("__global__") == len(names)
    params = {src[i:].split("(", 1)[1].split(")", 1)[0] for i in starts}
    assert len(params) == 1
    assert call in src and src.index(call) > starts[-1 if mode != "winner" else -2]
    assert "__syncthreads" not in src


def _maxpool_backward(shape=(64, 56, 56, 64)):
    """The scatter kernel of a 2x2 max pool's gradient (a CNN step's backward pass)."""
    def pool(x):
        return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    return _one("scatter", jax.grad(lambda x: jnp.sum(pool(x) ** 2)), _shape(*shape))


def test_scatter_add_runs_copy_and_updates_over_the_whole_gpu():
    k = _maxpool_backward()
    n, nu = 64 * 56 * 56 * 64, 64 * 28 * 28 * 64
    assert k.scatter_shape and _prod(k.scatter_shape) == nu
    (copy, dc), (upd, du) = LANG.launches(k)
    assert (copy, upd) == (f"{k.name}_copy", k.name) and plan(k).mode == "atomic"
    # the copy is the elementwise path (16-byte vectors), the updates one per thread
    assert dc.grid[0] == -(-n // 4 // dc.block[0]) and du.grid[0] == -(-nu // du.block[0])
    assert du.grid[0] > SMS and du == dims(k)
    src = render(k)
    assert "tj_st<float, 4>" in src and "gridDim.x * blockDim.x" in src.split(f" {upd}(")[1]


def test_scatter_set_marks_winners_then_writes_them_and_the_copy_resets_the_marks():
    x, idx = _shape(1 << 16), np.zeros(1 << 20, np.int32)
    k = _one("scatter", lambda x, i, u: x.at[i].set(u), x, idx, _shape(1 << 20))
    launches = LANG.launches(k)
    assert [n for n, _ in launches] == [f"{k.name}_copy", f"{k.name}_mark", k.name]
    (_, dc), (_, dm), (_, dw) = launches
    assert dm == dw and dm.grid[0] == (1 << 20) // dm.block[0]
    assert dc.grid[0] * dc.block[0] >= (1 << 16) // 4  # covers the copy and the reset
    src = render(k)
    copy = src[src.index(f" {k.name}_copy("):src.index(f" {k.name}_mark(")]
    assert f"{k.name}_win[q] = 0;" in copy
    assert f"atomicMax(&{k.name}_win[" in src.split(f" {k.name}_mark(")[1]


def test_huge_replace_scatters_fall_back_to_one_thread_after_a_parallel_copy():
    k = _one("scatter", lambda x, i, u: x.at[i].set(u), _shape(1 << 29, dtype=np.int8),
             np.zeros(3, np.int32), _shape(3, dtype=np.int8))
    assert plan(k).mode == "serial"
    (_, dc), (_, du) = LANG.launches(k)
    assert dc.grid[0] > SMS and du == ((1, 1, 1), (1, 1, 1), 0)
    assert "_win" not in render(k)


def _prod(xs):
    return int(np.prod(list(xs), dtype=np.int64))


# ---- compiling (nvcc) -----------------------------------------------------------------------------

X = _normal(64, 1000)
XN = np.where(rng.random((16, 300)) < 0.05, np.nan, _normal(16, 300)).astype(np.float32)
TALL = rng.random((3000, 48)).astype(np.float32)
POS = rng.random(1 << 20).astype(np.float32)
I = rng.integers(-1000, 1000, (40, 700)).astype(np.int32)
TIES = rng.integers(0, 5, (8, 2000)).astype(np.int32)
B = rng.random((30, 500)) < 0.5
H = _normal(32, 513, dtype=np.float16)
IDX = rng.integers(0, 50, 400).astype(np.int32)
V50 = _normal(50)
U400 = _normal(400)
IV50 = rng.integers(-10, 10, 50).astype(np.int32)
IU400 = rng.integers(-10, 10, 400).astype(np.int32)
S2 = _normal(20, 6)
BIGV = _normal(5000)
BIGI = rng.integers(0, 5000, 1 << 18).astype(np.int32)
BIGU = _normal(1 << 18)

# name -> (function, args, rtol)
CASES = {
    # reductions: rows, columns, several axes, splits, stages
    "sum_rows": (lambda x: jnp.sum(x, axis=1), (X,), 1e-5),
    "sum_rows_view": (lambda x: jnp.sum(x[:, 4:996] * 2, axis=1), (X,), 1e-5),
    "sum_rows_unaligned": (lambda x: jnp.sum(x[:, 1:997], axis=1), (X,), 1e-5),
    "sum_cols": (lambda x: jnp.sum(x, axis=0), (X,), 1e-5),
    "sum_tall_cols": (lambda x: jnp.sum(x, axis=0), (TALL,), 1e-5),
    "sum_all_split": (lambda x: jnp.sum(x), (POS,), 1e-5),
    "sum_chain_split": (lambda x: jnp.sum(jnp.tanh(x * 1.5 + 0.5) * jnp.exp(-x * x)
                                          + jnp.sqrt(jnp.abs(x) + 1)), (POS,), 1e-5),
    "mean_rows_split": (lambda x: jnp.mean(x.reshape(4, -1), axis=1), (POS,), 1e-5),
    "sum_axes_13": (lambda x: jnp.sum(x.reshape(4, 10, 16, 100), axis=(1, 3)), (X,), 1e-5),
    "sum_axes_02": (lambda x: jnp.sum(x.reshape(4, 10, 16, 100), axis=(0, 2)), (X,), 1e-5),
    "max_nan": (lambda x: (jnp.max(x, axis=1), jnp.min(x, axis=0)), (XN,), 0),
    "prod": (lambda x: jnp.prod(1 + x[:, :50] * 0.01, axis=1), (X,), 1e-5),
    "int_reductions": (lambda a: (jnp.sum(a, axis=1), jnp.max(a, axis=0), jnp.min(a),
                                  lax.reduce_xor(a, (1,))), (I,), 0),
    "bool_reductions": (lambda b: (jnp.all(b, axis=1), jnp.any(b, axis=0),
                                   jnp.sum(b, axis=1)), (B,), 0),
    "softmax": (lambda x: jax.nn.softmax(x, axis=-1), (X,), 1e-5),
    "softmax_cols": (lambda x: jax.nn.softmax(x, axis=0), (X,), 1e-5),
    "logsumexp": (lambda x: jax.nn.logsumexp(x, axis=-1), (X,), 1e-5),
    "var": (lambda x: (jnp.var(x, axis=0), jnp.var(x, axis=1)), (X,), 1e-4),
    "argmax_argmin": (lambda x: (jnp.argmax(x, axis=1), jnp.argmin(x, axis=0),
                                 jnp.argmax(x)), (X,), 0),
    "argmax_nan": (lambda x: (jnp.argmax(x, axis=1), jnp.argmin(x, axis=1)), (XN,), 0),
    "argmax_ties": (lambda a: (jnp.argmax(a, axis=1), jnp.argmin(a, axis=0)), (TIES,), 0),
    "float16": (lambda h: (jnp.sum(h, axis=1), jnp.max(h, axis=0),
                           jax.nn.softmax(h, axis=-1)), (H,), 2e-3),
    "bfloat16": (lambda x: (lambda h: (jnp.sum(h, axis=1), jnp.min(h, axis=0), h * 2 + 1))(
        x[:32, :512].astype(jnp.bfloat16)), (X,), 1e-2),
    "cumsum": (lambda x: jnp.cumsum(x[:8, :200], axis=1), (X,), 1e-5),
    "einsum": (lambda x: jnp.einsum("ij,kj->ik", x[:6], x[:5]), (X,), 1e-5),
    # sort
    "sort_nan": (lambda x: (jnp.sort(x, axis=1), jnp.argsort(x, axis=1)), (XN,), 0),
    "sort_descending": (lambda x: (jnp.sort(x, axis=1, descending=True),
                                   jnp.argsort(x, axis=1, descending=True)), (XN,), 0),
    "argsort_ties_stable": (lambda a: (jnp.argsort(a, axis=1),
                                       jnp.argsort(a, axis=1, descending=True)), (TIES,), 0),
    "sort_axis0": (lambda x: jnp.argsort(x[:, :7], axis=0), (X,), 0),
    "sort_long_rows": (lambda x: jnp.argsort(x.reshape(2, -1), axis=1), (POS[:20000],), 0),
    "sort_multikey": (lambda a, x: lax.sort((a[0, :300] % 3, x[0], x[1]), num_keys=2),
                      (TIES, XN), 0),
    "sort_f16_bool": (lambda h, b: (jnp.argsort(h, axis=1), jnp.argsort(b, axis=1)), (H, B), 0),
    "top_k": (lambda x: lax.top_k(x, 5), (X,), 0),
    # scatter
    "scatter_add": (lambda v, i, u: v.at[i].add(u), (V50, IDX, U400), 1e-5),
    "scatter_add_int": (lambda v, i, u: v.at[i].add(u), (IV50, IDX, IU400), 0),
    "scatter_set_dups": (lambda v, i, u: v.at[i].set(u), (V50, IDX, U400), 0),
    "scatter_set_int": (lambda v, i, u: v.at[i].set(u), (IV50, IDX, IU400), 0),
    "scatter_min_max": (lambda v, i, u: (v.at[i].min(u), v.at[i].max(u)), (V50, IDX, U400), 0),
    "scatter_min_max_int": (lambda v, i, u: (v.at[i].min(u), v.at[i].max(u)),
                            (IV50, IDX, IU400), 0),
    "scatter_mul": (lambda v, i, u: v.at[i[:40]].mul(1 + 0.01 * u[:40]), (V50, IDX, U400), 1e-5),
    "scatter_f16": (lambda v, i, u: v.astype(jnp.float16).at[i].add(u.astype(jnp.float16)),
                    (V50, IDX, U400), 2e-3),
    "scatter_bool": (lambda v, i: (v > 0).at[i].set(True), (V50, IDX), 0),
    "scatter_2d": (lambda s, i: s.at[i[:30] % 20, 1:3].add(1.0), (S2, IDX), 1e-5),
    # many blocks of updates, many duplicates per target
    "scatter_add_many": (lambda v, i, u: v.at[i].add(u), (BIGV, BIGI, BIGU), 1e-4),
    "scatter_set_many": (lambda v, i, u: v.at[i].set(u), (BIGV, BIGI, BIGU), 0),
    "scatter_max_many": (lambda v, i, u: v.at[i].max(u), (BIGV, BIGI, BIGU), 0),
    # elementwise
    "elementwise_vector": (lambda x: jnp.tanh(x) * 2 + x[0], (X,), 1e-5),
    "elementwise_offsets": (lambda x: x[:, 1:] * x[:, :-1] + x[1:, ::3][:, :333].sum(), (X,), 1e-4),
    "elementwise_odd": (lambda x: jnp.exp(x[:7, :999]) - 1, (X,), 1e-5),
    "elementwise_transpose": (lambda x: x.T * 2 + 1, (X,), 1e-6),
    "elementwise_int_bool": (lambda a: (a * 3 - 1, a > 5, (a & 7).astype(jnp.int8),
                                        a.astype(jnp.float32) / 3), (I,), 1e-6),
    "elementwise_half": (lambda h: (h * 2 + 1, h.astype(jnp.float32) * 3,
                                    (h > 0)), (H[:, :512],), 1e-3),
    "iota_broadcast": (lambda x: x + jnp.arange(1000, dtype=jnp.float32)[None, :], (X,), 1e-6),
}


def _renamed_kernels(cases):
    out = []
    for name, (f, args, _) in cases.items():
        for k in _kernels(f, *args):
            k.name = f"{name}_{k.name}"
            out.append(k)
    return out


def test_every_case_renders_and_the_kinds_are_covered():
    kinds = {plan(k).kind for k in _renamed_kernels(CASES)}
    assert {"elementwise", "reduce", "sort", "scatter"} <= kinds
    modes = {plan(k).mode for k in _renamed_kernels(CASES) if k.scatter_shape}
    assert {"atomic", "cas", "winner", "serial"} <= modes


def test_every_kernel_waits_for_the_one_before_it_first():
    # a programmatic dependent launch may start a kernel while its predecessor on the stream
    # is finishing: no kernel function touches memory before this wait
    ks = _renamed_kernels(CASES) + _kernels(lambda a, b: jnp.maximum(a @ b, 0),
                                            _shape(256, 512), _shape(512, 256))
    assert {"gemm", "elementwise", "reduce", "sort", "scatter"} <= {plan(k).kind for k in ks}
    for k in ks:
        src = render(k).split("\n")
        heads = [i for i, ln in enumerate(src) if ln.startswith('extern "C" __global__')]
        assert len(heads) == len(LANG.launches(k)), k.name
        for i in heads:
            assert src[i + 1] == "  tj_wait_for_previous_kernel();", (k.name, src[i:i + 2])


@needs_nvcc
def test_rendered_kernels_compile_with_nvcc(tmp_path):
    src = render_source(_renamed_kernels(CASES))
    assert_nvcc_compiles(src, tmp_path)


# ---- on a GPU: jit on cuda against eager --------------------------------------------------------

def _check(got, want, rtol, name):
    got, want = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want), name
    for g, w in zip(got, want):
        g, w = to_host(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (name, g.shape, w.shape, g.dtype, w.dtype)
        if rtol and np.issubdtype(w.dtype, np.inexact) or w.dtype == BF16:
            g64, w64 = g.astype(np.float64), w.astype(np.float64)
            np.testing.assert_allclose(g64, w64, rtol=rtol, atol=rtol, err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


@needs_cuda
@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_cuda_matches_eager(name):
    f, args, rtol = CASES[name]
    jf = jax.jit(f, device="cuda")
    assert jf.lower(*args).compile().num_kernels > 0, "fell back to eager"
    want = f(*map(jnp.asarray, args))
    _check(jf(*args), want, rtol, name)
    _check(jf(*args), want, rtol, name + " (second call)")  # the split counters reset


@needs_cuda
@pytest.mark.parametrize("update", ["set", "add", "min", "max", "mul"])
def test_jit_cuda_scatter_repeated_calls_with_other_indices(update):
    """One compiled scatter called again with other indices: the replace scatter's winner
    marks of an earlier call (higher update numbers on the same targets) must not survive."""
    f = jax.jit(lambda v, i, u: getattr(v.at[i], update)(u), device="cuda")
    v, u = _normal(50), 1 + 0.01 * _normal(400)
    for idx in (np.full(400, 7, np.int32),                       # every update on target 7
                np.r_[np.full(10, 7), rng.integers(8, 50, 390)].astype(np.int32),
                IDX, IDX[::-1].copy()):
        want = getattr(jnp.asarray(v).at[idx], update)(u)
        _check(f(v, idx, u), want, 1e-5, f"{update} {idx[:12]}")


@needs_cuda
@settings(max_examples=12, deadline=None)
@given(shape=st.lists(st.integers(1, 70), min_size=1, max_size=3),
       data=st.data(), op=st.sampled_from(["sum", "max", "min", "argmax"]))
def test_jit_cuda_reductions_of_any_shape(shape, data, op):
    axis = data.draw(st.integers(0, len(shape) - 1))
    big = data.draw(st.sampled_from([1, 1, 300]))  # a long axis now and then
    shape[axis] *= big
    x = rng.standard_normal(shape).astype(np.float32)
    f = lambda x: getattr(jnp, op)(x, axis=axis)  # noqa: E731
    got, want = to_host(jax.jit(f, device="cuda")(x)), np.asarray(f(x))
    if op != "sum":
        np.testing.assert_array_equal(got, want, err_msg=f"{op} {shape} axis {axis}")
        return
    # float32 sums in another order: the error grows with the sum of magnitudes, so a
    # sum that cancels (thousands of normals adding up to ~0) needs an absolute bound
    atol = 1e-6 * float(np.abs(x).sum(axis=axis).max())
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=atol, err_msg=f"sum {shape} axis {axis}")


# ---- timings (on a GPU: python tests/backends/test_cuda_render.py) -------------------------------

def _time_kernels(f, *args, reps: int = 20):
    """(ms per call of the kernels alone, bytes each kernel reads and writes) with CUDA events
    around launches of the compiled kernels over device buffers."""
    from tinyjax.backends import get_backend
    from tinyjax.backends.cuda.driver import driver
    dev, drv = get_backend("cuda"), driver()
    leaves, outs = lower_jaxpr(inline_calls(jax.make_jaxpr(f)(*args).jaxpr))
    sched = schedule(leaves, outs)
    ks = sched.kernels
    for k in ks:
        k.loop_ir = cuda_loop_ir(k)
    _, fns = dev.compile(ks)
    ptrs, nbytes = {}, 0
    for k in ks:
        for b, (dt, n) in zip(k.buf_ids, k.bufs):
            if b not in ptrs:
                ptrs[b] = drv.alloc(int(n) * np.dtype(dt).itemsize)
        nbytes += sum(int(n) * np.dtype(dt).itemsize for dt, n in k.bufs)
    for b, a in zip(range(sched.n_inputs), args):  # the inputs are buffers 0 .. n-1
        a = np.ascontiguousarray(a)
        drv.htod(ptrs[b], a.ctypes.data, a.nbytes)

    def go():
        for fn, k in zip(fns, ks):
            fn.launch(drv, [ptrs[b] for b in k.buf_ids])
    go()
    drv.synchronize()
    t0, t1 = drv.event(), drv.event()
    drv.record(t0)
    for _ in range(reps):
        go()
    drv.record(t1)
    ms = drv.elapsed_ms(t0, t1) / reps
    for p in ptrs.values():
        drv.free(p)
    return ms, nbytes, [f"{k.name}:{plan(k).describe()}" for k in ks]


def _copy_bandwidth(n: int) -> float:
    from tinyjax.backends.cuda.driver import driver
    drv = driver()
    a, b = drv.alloc(n), drv.alloc(n)
    drv.dtod(b, a, n)
    t0, t1 = drv.event(), drv.event()
    drv.record(t0)
    for _ in range(20):
        drv.dtod(b, a, n)
    drv.record(t1)
    ms = drv.elapsed_ms(t0, t1) / 20
    drv.free(a)
    drv.free(b)
    return 2 * n / ms / 1e6


def main(overrides: list[str]):
    """Times the target kernels; ``overrides``: ``NAME=int`` settings of the GPU cost model
    (:mod:`tinyjax.compiler.codegen.gpu_heuristics`, e.g. ``ROW_ELEMS=8``) to compare plans."""
    for o in overrides:
        name, val = o.split("=")
        setattr(GH, name, int(val))
        print(f"gpu_heuristics.{name} = {val}")
    copy = _copy_bandwidth(64 << 20)
    print(f"device copy (cuMemcpyDtoD, 64 MiB): {copy:.0f} GB/s")
    x24 = rng.standard_normal(1 << 24).astype(np.float32)
    sq = rng.standard_normal((4096, 4096)).astype(np.float32)
    runs = {
        "sum(tanh(x*1.5+0.5)*exp(-x*x)+sqrt(abs(x)+1)) 2^24": (
            lambda x: jnp.sum(jnp.tanh(x * 1.5 + 0.5) * jnp.exp(-x * x) + jnp.sqrt(jnp.abs(x) + 1)),
            (x24,)),
        "sum 2^24": (lambda x: jnp.sum(x), (x24,)),
        "x*2+1 2^24": (lambda x: x * 2 + 1, (x24,)),
        "softmax 4096x4096 last axis": (lambda x: jax.nn.softmax(x, axis=-1), (sq,)),
        "sum axis 1 4096x4096": (lambda x: jnp.sum(x, axis=1), (sq,)),
        "sum axis 0 4096x4096": (lambda x: jnp.sum(x, axis=0), (sq,)),
        "argmax axis 1 4096x4096": (lambda x: jnp.argmax(x, axis=1), (sq,)),
        "argsort rows 4096x4096": (lambda x: jnp.argsort(x, axis=1), (sq,)),
        "x.at[i].add(u) 2^20 into 2^16": (
            lambda v, i, u: v.at[i].add(u),
            (x24[:1 << 16], rng.integers(0, 1 << 16, 1 << 20).astype(np.int32), x24[:1 << 20])),
    }
    for name, (f, args) in runs.items():
        ms, nbytes, plans = _time_kernels(f, *args)
        print(f"{name:<45} {ms * 1e3:9.1f} us  {nbytes / ms / 1e6:7.0f} GB/s "
              f"({100 * nbytes / ms / 1e6 / copy:4.0f}% of copy)  {'; '.join(plans)}")


if __name__ == "__main__":
    main(sys.argv[1:])
