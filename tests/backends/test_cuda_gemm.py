"""Tiled matmul kernels on CUDA (the tile passes of tinyjax/compiler/codegen/cuda_gemm.py, their loop
IR from gemm_linearizer.py, spelled by tinyjax/backends/cuda/render.py): the precision carried from
dot_general to the GemmPlan, the choice of tensor-core mode, nvcc compilation here, and on a
GPU: results against float64 references with tolerances matching each mode's precision.

``PYTHONPATH=. python tests/backends/test_cuda_gemm.py [--sweep]`` (on a GPU) prints TFLOP/s of
square products against ``torch.matmul`` (``--sweep``: first every tile configuration on 8192^2)."""
import re
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import config, dtypes, lax
from tinyjax.backends.cuda.render import CUDALanguage
from tinyjax.compiler.codegen import CudaTarget, cuda_gemm, cuda_loop_ir, cuda_plan
from tinyjax.compiler.codegen.gemm_linearizer import _Gemm
from tinyjax.compiler.codegen.gpu_loops import gpu_base
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.shape import symbolic
from tinyjax.compiler.schedule import schedule

from tests.cuda_support import assert_nvcc_compiles, cuda_source, needs_cuda, needs_nvcc

BF16 = np.dtype(dtypes.bfloat16)
rng = np.random.default_rng(0)


def _gemm_kernels(f, *args):
    leaves, outs = lower_jaxpr(inline_calls(jax.make_jaxpr(f)(*args).jaxpr))
    return [k for k in schedule(leaves, outs).kernels if k.gemm is not None]


def _normal(*shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(np.float32).astype(dtype)


NUM_SMS = CudaTarget().sms


def _plan(k):
    """The tile plan the passes give product ``k`` on an H100 (None: a generic reduction)."""
    gk = cuda_gemm.gemm_tiles(gpu_base(k), CudaTarget())
    return None if gk is None else gk.tile


def gemm_supported(k) -> bool:
    return _plan(k) is not None


def gemm_describe(k) -> str:
    return _plan(k).describe()


def gemm_launches(k) -> list:
    k.loop_ir = cuda_loop_ir(k)
    return CUDALanguage().launches(k)


def gemm_launch_dims(k):
    return gemm_launches(k)[-1][1]


def _evaluate(e, env: dict) -> int:
    """The value of an index expression of the loop IR with the names of ``env``."""
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
           "div": lambda a, b: a // b, "mod": lambda a, b: a % b, "xor": lambda a, b: a ^ b,
           "shl": lambda a, b: a << b, "shr": lambda a, b: a >> b, "bitand": lambda a, b: a & b}
    if isinstance(e, str):
        return env[e]
    if isinstance(e, int):
        return e
    return ops[e.op](*(_evaluate(a, env) for a in e.args))


def conv(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME")


def nhwc(x, w):
    return lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                    dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _flat_grads(x, w, g):
    """Both gradients of a ReLU-then-convolution layer, flattened into one array."""
    gx, gw = jax.grad(lambda x, w: jnp.sum(nhwc(jax.nn.relu(x), w) * g), (0, 1))(x, w)
    return jnp.concatenate([gx.reshape(-1), gw.reshape(-1)])


# name -> (function, args, tensor-core mode)
CASES = {
    "bf16": (lambda a, b: a @ b, (_normal(256, 128, dtype=BF16), _normal(128, 192, dtype=BF16)),
             "bf16"),
    "f16_transposed": (lambda a, b: a.T @ b.T, (_normal(128, 256, dtype=np.float16),
                                                 _normal(192, 128, dtype=np.float16)), "f16"),
    "tf32_bias_relu": (lambda x, w, b: jax.nn.relu(x @ w + b),
                       (_normal(256, 784), _normal(784, 1024), _normal(1024)), "tf32"),
    "tf32_transposed": (lambda a, b: a.T @ b.T, (_normal(128, 256), _normal(192, 128)), "tf32"),
    "tf32_edges": (lambda a, b: a @ b, (_normal(100, 37), _normal(37, 55)), "tf32"),
    "bf16_edges": (lambda a, b: a @ b, (_normal(100, 37, dtype=BF16), _normal(37, 55, dtype=BF16)),
                   "bf16"),
    "attention": (lambda q, k: jnp.einsum("bhqd,bhkd->bhqk", q, k) * 0.125,
                  (_normal(16, 4, 128, 64), _normal(16, 4, 128, 64)), "tf32"),
    "attention_bf16": (lambda p, v: jnp.einsum("bhqk,bhkd->bhqd", p, v),
                       (_normal(4, 4, 128, 128, dtype=BF16), _normal(4, 4, 128, 64, dtype=BF16)),
                       "bf16"),
    "mixed_16bit": (lambda a, b: a @ b, (_normal(64, 96, dtype=BF16),
                                         _normal(96, 80, dtype=np.float16)), "tf32"),
    "fused_operand": (lambda a, b: jnp.tanh(a) @ (b * 2.0).T, (_normal(96, 72), _normal(80, 72)),
                      "tf32"),
    "conv": (conv, (_normal(8, 16, 12, 12), _normal(32, 16, 3, 3)), "tf32"),
    # several contiguous axes flattened into K (a weight gradient over batch and sequence)
    # and into M (a dense layer over a sequence)
    "two_reduce_axes": (lambda x, g: jnp.einsum("bsd,bsn->dn", x, g),
                        (_normal(4, 24, 40), _normal(4, 24, 72)), "tf32"),
    "two_row_axes": (lambda x, w: x @ w, (_normal(3, 20, 48), _normal(48, 36)), "tf32"),
    # operands copied from views (heads merged into K; a padded NHWC window, a flipped
    # kernel and channels-first rows in the convolution's gradients) and with a ReLU applied
    # to the copied values
    "heads_merged": (lambda o, w: jnp.transpose(o, (0, 2, 1, 3)).reshape(2, 32, 256) @ w,
                     (_normal(2, 4, 32, 64), _normal(256, 96)), "tf32"),
    "conv_nhwc_relu": (lambda x, w: nhwc(jax.nn.relu(x), w),
                       (_normal(4, 12, 12, 16), _normal(3, 3, 16, 32)), "tf32"),
    "conv_nhwc_grads": (lambda x, w, g: _flat_grads(x, w, g),
                        (_normal(4, 12, 12, 16), _normal(3, 3, 16, 32), _normal(4, 12, 12, 32)),
                        "tf32"),
    # warpgroup MMA with ragged edges: 16-bit with N-major B; TF32 with both along K
    "bf16_wgmma_edges": (lambda a, b: a @ b, (_normal(100, 72, dtype=BF16),
                                              _normal(72, 136, dtype=BF16)), "bf16"),
    "tf32_wgmma_edges": (lambda a, b: a @ b.T, (_normal(100, 72), _normal(136, 72)), "tf32"),
    # TF32 with one operand along M/N: its fragments loaded into registers (b: the warpgroups
    # run along N, the tile transposed)
    "tf32_wgmma_regs_b": (lambda a, b: a @ b, (_normal(200, 72), _normal(72, 136)), "tf32"),
    "tf32_wgmma_regs_a": (lambda a, b: a.T @ b.T, (_normal(72, 136), _normal(200, 72)), "tf32"),
    # a ReLU on a copied operand: on the register fragments (the operand along K, the other
    # too), or on the shared tile in place (the other operand along N takes the registers)
    "tf32_wgmma_fn_regs": (lambda a, b: jax.nn.relu(a) @ b.T, (_normal(200, 72), _normal(136, 72)),
                           "tf32"),
    "tf32_wgmma_fn_tile": (lambda a, b: jax.nn.relu(a) @ b, (_normal(200, 72), _normal(72, 136)),
                           "tf32"),
    "highest": (lambda a, b: lax.dot(a, b, precision="highest"),
                (_normal(200, 130), _normal(130, 150)), "simt"),
    "highest_batched": (lambda a, b: lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))),
                                                     precision=lax.Precision.HIGHEST),
                        (_normal(3, 70, 40), _normal(3, 40, 90)), "simt"),
}


# ---- here: plans and rendering ----------------------------------------------------------------

def test_precision_is_carried_to_the_gemm_plan():
    a, b = _normal(64, 32), _normal(32, 48)
    (k,) = _gemm_kernels(lambda a, b: lax.dot(a, b), a, b)
    assert k.gemm.allow_tf32  # JAX's default on GPUs: TF32
    (k,) = _gemm_kernels(lambda a, b: lax.dot(a, b, precision="highest"), a, b)
    assert not k.gemm.allow_tf32
    (k,) = _gemm_kernels(lambda a, b: lax.dot(a, b, precision=("high", "highest")), a, b)
    assert not k.gemm.allow_tf32
    with config.override(jax_default_matmul_precision="float32"):
        (k,) = _gemm_kernels(lambda a, b: a @ b, a, b)
        assert not k.gemm.allow_tf32
        (k,) = _gemm_kernels(lambda a, b: lax.dot(a, b, precision="default"), a, b)
        assert k.gemm.allow_tf32  # an explicit precision wins over the config
    with config.override(jax_default_matmul_precision="tensorfloat32"):
        (k,) = _gemm_kernels(lambda a, b: a @ b, a, b)
        assert k.gemm.allow_tf32


def test_16bit_matmuls_accumulate_in_float32():
    a, b = _normal(64, 32, dtype=BF16), _normal(32, 48, dtype=BF16)
    (k,) = _gemm_kernels(lambda a, b: a @ b, a, b)
    assert k.acc_dtype == np.float32 and k.bufs[0][0] == BF16
    got = np.asarray(jax.jit(lambda a, b: a @ b)(a, b))
    want = a.astype(np.float32) @ b.astype(np.float32)
    np.testing.assert_array_equal(got, want.astype(BF16))


@pytest.mark.parametrize("name", sorted(CASES))
def test_mode(name):
    f, args, mode = CASES[name]
    ks = _gemm_kernels(f, *args)
    assert ks and all(gemm_supported(k) for k in ks)
    assert {_plan(k).mode for k in ks} == {mode}


def test_float64_stays_on_the_generic_path():
    with config.override(jax_enable_x64=True):
        a, b = rng.standard_normal((64, 32)), rng.standard_normal((32, 48))
        (k,) = _gemm_kernels(lambda a, b: a @ b, a, b)
    assert not gemm_supported(k)


@pytest.fixture
def mma_sync(monkeypatch):
    """The copy analysis as mma.sync sees it: warpgroup MMA (on by default: an H100) turns
    TF32 operands read along M/N into computed ones (see test_warpgroup_...)."""
    monkeypatch.setattr(cuda_gemm, "WGMMA", False)


def test_plain_operands_are_copied_asynchronously(mma_sync):
    f, args, _ = CASES["tf32_transposed"]
    (k,) = _gemm_kernels(f, *args)
    p = _plan(k)
    assert p.a.plain and p.b.plain and not p.a.kmajor and p.b.kmajor
    assert "cp.async.cg.shared.global" in cuda_source([k])
    f, args, _ = CASES["tf32_edges"]  # rows of 37 floats: not 16-byte aligned
    (k,) = _gemm_kernels(f, *args)
    p = _plan(k)
    assert not p.a.plain and not p.b.plain


def test_contiguous_axes_flatten_into_plain_operands(mma_sync):
    for name in ("two_reduce_axes", "two_row_axes"):
        f, args, _ = CASES[name]
        (k,) = _gemm_kernels(f, *args)
        p = _plan(k)
        assert p.a.plain and p.b.plain, name
    # reduce axes in opposite orders: K is one flattened index for at most one operand, the
    # other's chunks are addressed along its rows
    (k,) = _gemm_kernels(lambda x, g: jnp.einsum("sbd,bsn->dn", x, g),
                         _normal(24, 4, 40), _normal(4, 24, 72))
    p = _plan(k)
    assert p.a.plain and p.b.plain and not (p.a.kmajor and p.b.kmajor)


def _stages(f, *args) -> list[str]:
    return [gemm_describe(k).split(" stage ")[1].split()[0]
            for k in _gemm_kernels(f, *map(_spec, args))]


def test_views_and_pointwise_functions_are_copied(mma_sync):
    """Operands that are views (heads merged into K, a flipped kernel, a padded window: its
    mask does not depend on the channels, along which the chunks run) are copied with
    cp.async ('c'); a fused ReLU or scaling is applied to the copied values ('f'); a
    function that does not keep the zero fill zero is computed element by element ('e')."""
    heads = lambda o, w: jnp.transpose(o, (0, 2, 1, 3)).reshape(16, 128, 256) @ w  # noqa: E731
    assert _stages(heads, _normal(16, 4, 128, 64), _normal(256, 256)) == ["cc"]
    x, w = _normal(8, 12, 12, 16), _normal(3, 3, 16, 32)
    assert _stages(nhwc, x, w) == ["cc"]
    assert _stages(lambda x, w: nhwc(jax.nn.relu(x), w), x, w) == ["fc"]
    # the backward pass: data gradient (a padded window of the output gradient, the kernel
    # flipped) and weight gradient (the input's channels first along M)
    _, vjp = jax.vjp(lambda x, w: nhwc(jax.nn.relu(x), w), x, w)
    grads = jax.jit(vjp)
    stages = [gemm_describe(k).split(" stage ")[1].split()[0] for k in
              _gemm_kernels(lambda g: grads(g), _normal(8, 12, 12, 32))]
    assert stages == ["cc", "cc"], stages
    assert _stages(lambda a, b: (a * 2.0) @ b, _normal(64, 64), _normal(64, 64)) == ["fc"]
    assert _stages(lambda a, b: (a + 1.0) @ b, _normal(64, 64), _normal(64, 64)) == ["ec"]
    assert _stages(lambda a, b: jnp.maximum(a, 1.0) @ b, _normal(64, 64), _normal(64, 64)) == ["ec"]


def _check_runs(index, d: int, V: int, extents: dict) -> bool:
    """Whether every V-aligned run of i<d> reads V consecutive, V-aligned elements (by
    evaluating ``index`` at every point)."""
    names = sorted(extents)
    grids = np.meshgrid(*[np.arange(extents[n]) for n in names], indexing="ij")
    env = dict(zip(names, grids))
    vals = np.asarray(symbolic.evaluate(index, env)) + np.zeros(grids[0].shape, np.int64)
    ax = names.index(f"i{d}")
    runs = np.moveaxis(vals, ax, -1)
    runs = runs.reshape(*runs.shape[:-1], -1, V)
    return bool(np.all(runs[..., 0] % V == 0) and
                np.all(np.diff(runs, axis=-1) == 1))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_chunks_contiguous_agrees_with_evaluation(data):
    """Views made by reshaping, transposing and flipping a row-major array: the symbolic
    test never claims contiguity that evaluation denies, and finds it for the plain case."""
    V = data.draw(st.sampled_from([4, 8]), "V")
    shape = data.draw(st.lists(st.sampled_from([1, 2, 3, 4, 8, 16]), min_size=2, max_size=4))
    perm = data.draw(st.permutations(range(len(shape))))
    flips = data.draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    from tinyjax.compiler.shape.shapetracker import ShapeTracker
    t = ShapeTracker.from_shape(tuple(shape)).permute(tuple(perm))
    t = t.flip(tuple(i for i, f in enumerate(flips) if f))
    n = int(np.prod(t.shape))
    new_shape = data.draw(st.sampled_from([t.shape, (n,)] + [
        (a, n // a) for a in (2, 4, 8, 16) if n % a == 0]))
    t = t.reshape(tuple(new_shape))
    vs = [symbolic.Var(f"i{i}", 0, s - 1) for i, s in enumerate(t.shape)]
    index, _ = t.expr_idxs(vs)
    d = len(t.shape) - 1
    if t.shape[d] % V:
        return
    got = cuda_gemm._chunks_contiguous(index, d, V)
    if got:
        assert _check_runs(index, d, V, {f"i{i}": s for i, s in enumerate(t.shape)})
    if list(perm) == sorted(perm) and not any(flips) and shape[-1] % V == 0:
        assert got


def test_tile_passes_print_their_loop_ir(capsys):
    """``DEBUG=3``'s trace: the tile passes in order, each named with its arguments, and
    once the tile is chosen the loop IR with the tensor cores' ops."""
    big = jax.ShapeDtypeStruct((4096, 4096), BF16)
    (k,) = _gemm_kernels(lambda a, b: a @ b, big, big)
    uops = cuda_loop_ir(k, trace=True)
    out = capsys.readouterr().out
    steps = re.findall(r"--- k0: loop IR after (\w+)", out)
    assert steps[:4] == ["mma", "stage", "wgmma", "tile"] and steps[4:] in ([], ["index32"]), steps
    assert "loop IR after mma(bf16)" in out and "loop IR after stage(cc)" in out
    after_tile = out.split("loop IR after tile(")[1]
    for op in ("FUNCTION", "RANGE", "CP_ASYNC", "WGMMA", "ASYNC", "BARRIER"):
        assert op in after_tile, op
    # what the trace printed last is the loop IR the renderer gets
    assert {u.op for u in uops} >= {"FUNCTION", "CP_ASYNC", "WGMMA", "ENDFUNCTION"}
    # mma.sync on a GPU without warpgroup MMA
    uops = cuda_loop_ir(k, CudaTarget(wgmma=False))
    assert "MMA" in {u.op for u in uops} and "WGMMA" not in {u.op for u in uops}


def test_tile_passes_refuse_what_they_cannot_do():
    """Each pass checks its own preconditions (an OptError, so the search skips the step)."""
    from tinyjax.compiler.codegen.opts import OptError
    f, args, _ = CASES["bf16"]
    (k,) = _gemm_kernels(f, *args)
    gk = cuda_gemm.mma(gpu_base(k), "bf16")
    with pytest.raises(OptError, match="split_k"):
        cuda_gemm.split_k(gk, 2, gk.tile.BK + 1)  # not a multiple of the k-slice
    with pytest.raises(OptError, match="split_k"):
        cuda_gemm.split_k(gk, 64, gk.tile.BK)  # more chunks than K has room for
    f, args, _ = CASES["tf32_transposed"]
    (k,) = _gemm_kernels(f, *args)
    with pytest.raises(OptError, match="wgmma"):  # operands not yet staged with cp.async
        cuda_gemm.wgmma(cuda_gemm.mma(gpu_base(k), "tf32"), "")
    gk = cuda_gemm.mma(gpu_base(k), "simt")
    with pytest.raises(OptError, match="wgmma"):
        cuda_gemm.wgmma(gk, "")
    with pytest.raises(OptError, match="tile"):
        cuda_gemm.tile(gk, 64, 64, 32, 2, 2, 2)  # SIMT tiles are 128 x 128
    leaves, outs = lower_jaxpr(jax.make_jaxpr(lambda x: x.sum(0))(_normal(64, 64)).jaxpr)
    (k,) = schedule(leaves, outs).kernels  # a reduction, not a product
    with pytest.raises(OptError, match="mma"):
        cuda_gemm.mma(gpu_base(k), "bf16")


def test_tile_size_follows_the_work():
    ks = {n: _gemm_kernels(lambda a, b: a @ b, _normal(n, 256, dtype=BF16),
                           _normal(256, n, dtype=BF16))[0] for n in (256, 8192)}
    assert _plan(ks[256]).BM == 64
    p = _plan(ks[8192])
    assert (p.BM, p.BN) == (256, 128) and p.shared_bytes > 48 * 1024
    assert gemm_launch_dims(ks[8192]).grid == ((8192 // 256) * (8192 // 128), 1, 1)
    # a tall product 64 wide (a convolution's 64 output channels): tiles no wider than it
    (k,) = _gemm_kernels(lambda a, b: a @ b, _normal(50176, 288), _normal(288, 64))
    assert _plan(k).BN == 64
    # a small product (latency-bound): one wave of 64 x 128 tiles (256 blocks, two per SM)
    # rather than 1.3 waves of 64 x 64 (512 blocks, three per SM)
    (k,) = _gemm_kernels(lambda a, b: a @ b, _normal(2048, 256), _normal(256, 1024))
    p = _plan(k)
    assert (p.BM, p.BN, p.tiles[0] * p.tiles[1]) == (64, 128, 256)
    assert 2 * NUM_SMS >= 256 and 3 * NUM_SMS < 512
    # 32 wide for a product 32 wide (conv1's data gradient), not for wider ones
    (k,) = _gemm_kernels(lambda a, b: a @ b, _normal(50176, 576), _normal(576, 32))
    assert (_plan(k).BM, _plan(k).BN) == (128, 32)
    (k,) = _gemm_kernels(lambda a, b: a @ b, _normal(2048, 256), _normal(256, 768))
    assert _plan(k).BN >= 64
    # waves count the K chunks of a split: 2048 x 256 x 1024 splits in 4 either way, and
    # 64 tiles of 8192 outputs (256 blocks, two per SM) run in the one wave that 128 of 4096
    # (512 blocks, three per SM) need two for (15.3 against 18.2 us on an H100)
    (k,) = _gemm_kernels(lambda a, b: a @ b, _normal(2048, 1024), _normal(1024, 256))
    p = _plan(k)
    assert (p.BM * p.BN, p.tiles[0] * p.tiles[1], p.splits) == (8192, 64, 4)


def test_warpgroup_mma_where_both_operands_are_copied(monkeypatch):
    big = jax.ShapeDtypeStruct((4096, 4096), BF16)
    (k,) = _gemm_kernels(lambda a, b: a @ b, big, big)
    p = _plan(k)
    assert p.wgmma and p.threads == 32 * p.WM and p.BM == 16 * p.WM
    assert (not p.a.kmajor, not p.b.kmajor) == (False, True)
    src = cuda_source([k])
    assert "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16" in src
    assert "p, 1, 1, 0, 1;" in src  # A along K, B along N (transposed)
    x, w = _normal(256, 512), _normal(512, 384)
    # TF32 reads shared tiles along K only: x @ w.T reads both from shared memory; for x @ w
    # (w along N) the warpgroups run along N, w's fragments loaded into registers; for
    # x.T @ w (both along M/N) mma.sync
    p = _plan(_gemm_kernels(lambda x, w: x @ w.T, x, w.T)[0])
    assert p.wgmma and p.wg_regs == ""
    (k,) = _gemm_kernels(lambda x, w: x @ w, x, w)
    p = _plan(k)
    assert p.wgmma and p.wg_regs == "b" and p.WM == 1 and p.threads == 32 * p.WN
    assert "m64n64k8.f32.tf32.tf32" in cuda_source([k])
    p = _plan(_gemm_kernels(lambda u, v: u.T @ v.T, x.T, w.T)[0])
    assert p.wgmma and p.wg_regs == "a" and p.WN == 1
    assert not _plan(_gemm_kernels(lambda u, w: u.T @ w, x.T, w)[0]).wgmma
    # an operand computed element by element stays on mma.sync
    for name in ("bf16_edges", "conv"):
        f, args, _ = CASES[name]
        assert not any(_plan(k).wgmma for k in _gemm_kernels(f, *args)), name
    # a copied operand's pointwise function: applied to its register fragments where it is
    # the m64 operand, else to its shared tile in place
    for name, regs, in_place in (("tf32_wgmma_fn_regs", "a", False),
                                 ("tf32_wgmma_fn_tile", "b", True)):
        f, args, _ = CASES[name]
        (kf,) = _gemm_kernels(f, *args)
        p = _plan(kf)
        assert p.wgmma and p.wg_regs == regs and (p.a.plain.fn or p.b.plain.fn), name
        assert ("uint32_t *tw" in cuda_source([kf])) == in_place, name
    assert "wgmma" in gemm_describe(k)
    monkeypatch.setattr(cuda_gemm, "WGMMA", False)  # a GPU without it (not an H100)
    p = _plan(k)
    assert not p.wgmma and "wgmma" not in cuda_source([k])


@pytest.mark.parametrize("dtype,major", [(BF16, "k"), (BF16, "mn"), (np.float32, "k")])
def test_warpgroup_tiles_have_the_canonical_128_byte_swizzle(dtype, major):
    """Every element's shared-memory byte offset is the one of the PTX ISA's canonical
    128-byte-swizzled layout (8-row atoms of 128-byte rows, 16-byte chunks XOR the row
    within the atom; along M/N, 64-element column blocks LBO = BK * 128 bytes apart)."""
    a = _normal(256, 512, dtype=dtype)
    b = _normal(512, 256, dtype=dtype) if major == "mn" else _normal(256, 512, dtype=dtype)
    f = (lambda a, b: a @ b) if major == "mn" else (lambda a, b: a @ b.T)
    (k,) = _gemm_kernels(f, a, b)
    p = _plan(k)
    assert p.wgmma
    r = _Gemm(cuda_gemm.gemm_tiles(gpu_base(k), CudaTarget()))
    esize, V = p.esize, 16 // p.esize
    seen = set()
    for row_mn in range(p.BN):
        for kk in range(p.BK):
            if p.b.kmajor:
                got = _evaluate(r.chunk(p.b, "row", "ch"), {"row": row_mn, "ch": kk // V}) * 16 \
                    + kk % V * esize
                atom = (row_mn // 8) * 1024 + (row_mn % 8) * 128
                want = atom + ((kk // V) ^ (row_mn % 8)) * 16 + kk % V * esize
            else:
                got = _evaluate(r.chunk(p.b, "row", "ch"), {"row": kk, "ch": row_mn // V}) * 16 \
                    + row_mn % V * esize
                block = (row_mn // 64) * p.BK * 128 + (kk // 8) * 1024 + (kk % 8) * 128
                want = block + (((row_mn % 64) // V) ^ (kk % 8)) * 16 + row_mn % V * esize
            assert got == want, (row_mn, kk)
            seen.add(got)
    assert len(seen) == p.BN * p.BK and max(seen) < p.BN * p.BK * esize


def _tile_configs(monkeypatch, which: str):
    """Force the largest ('big'), middle or smallest tile configuration for tests (unsplit:
    the split-K tests below cover splitting)."""
    monkeypatch.setattr(cuda_gemm, "SPLIT_MIN_K", 1 << 40)
    if which == "mid":
        for name in ("_CONFIGS", "_WG_CONFIGS"):
            configs = getattr(cuda_gemm, name)
            monkeypatch.setattr(cuda_gemm, name, {e: c[1:] for e, c in configs.items()})
    i = -1 if which == "small" else 0
    monkeypatch.setattr(cuda_gemm, "_pick_tile", lambda mode, M, N, K, outer, a, b, configs, *_:
                        cuda_gemm._fitting_tiles(mode, M, N, a, b, configs)[i])


@needs_nvcc
def test_rendered_source_compiles_with_nvcc(tmp_path, monkeypatch):
    kernels = []
    for which in ("small", "big"):
        _tile_configs(monkeypatch, which)
        for name, (f, args, _) in CASES.items():
            for k in _gemm_kernels(f, *args):
                k.name = f"{name}_{which}_{k.name}"
                kernels.append(k)
    assert_nvcc_compiles(cuda_source(kernels), tmp_path)


# ---- split-K -----------------------------------------------------------------------------------

def _dot_hi(a, b):
    return lax.dot(a, b, precision="highest")


def _bmm_bias_relu(a, b, c):
    return jax.nn.relu(lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,)))) + c)


def _wgrad(x, g):
    """A weight gradient: a long reduction over the batch for a small output."""
    return x.T @ g


# name -> (function, args, mode, expected split S); the shapes of the workloads' small-grid
# kernels: CNN and dense weight gradients (K = 64 * 28 * 28), a dense layer on a flattened
# feature map, attention/MLP weight gradients (K = batch * sequence)
SPLIT = {
    "cnn_wgrad": (_wgrad, (_normal(50176, 288), _normal(50176, 64)), "tf32", 79),
    "cnn_wgrad_small": (_wgrad, (_normal(50176, 16), _normal(50176, 32)), "tf32", 196),
    "dense_bias_relu": (lambda x, w, b: jax.nn.relu(x @ w + b),
                        (_normal(64, 12544), _normal(12544, 16), _normal(16)), "tf32", 49),
    "attention_wgrad": (_wgrad, (_normal(2048, 256), _normal(2048, 768)), "tf32", 8),
    "batched_bias_relu": (_bmm_bias_relu, (_normal(3, 64, 4096), _normal(3, 4096, 48),
                                           _normal(48)), "tf32", 16),
    "bf16": (_wgrad, (_normal(8192, 96, dtype=BF16), _normal(8192, 80, dtype=BF16)), "bf16", 32),
    "f16_edges": (_wgrad, (_normal(3000, 37, dtype=np.float16),
                           _normal(3000, 55, dtype=np.float16)), "f16", 11),
    "tf32_edges": (_wgrad, (_normal(3001, 37), _normal(3001, 55)), "tf32", 11),
    "simt": (_dot_hi, (_normal(100, 9000), _normal(9000, 70)), "simt", 32),
    "simt_batched": (lambda a, b, c: jax.nn.relu(
        lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))), precision="highest") + c),
        (_normal(3, 64, 4096), _normal(3, 4096, 48), _normal(48)), "simt", 16),
}


def _spec(x):
    return jax.ShapeDtypeStruct(x.shape, x.dtype)


@pytest.mark.parametrize("name", sorted(SPLIT))
def test_split_k_plan(name):
    f, args, mode, S = SPLIT[name]
    (k,) = _gemm_kernels(f, *map(_spec, args))
    p = _plan(k)
    assert (p.mode, p.splits) == (mode, S)
    tm, tn = p.tiles
    assert tm * tn * p.outer < 2 * NUM_SMS  # few blocks before
    C = p.kchunk  # chunks of whole k-slices cover K once, at least SPLIT_MIN_K long
    assert C % p.BK == 0 and C >= cuda_gemm.SPLIT_MIN_K and (S - 1) * C < p.K <= S * C
    # after: at least a block per SM, unless K has no room for more chunks (of at least
    # SPLIT_MIN_K, each rounded up to whole k-slices)
    MIN = cuda_gemm.SPLIT_MIN_K
    assert tm * tn * p.outer * S >= NUM_SMS or S * (MIN + p.BK) >= p.K // MIN * MIN
    T, NG, G = tm * tn * p.outer, p.groups, p.group_size
    # the scratch: a tile-sized slot per chunk (and per group of chunks, summed in two levels)
    scratch = S + (NG if NG > 1 else 0)
    assert 4 * scratch * T * p.BM * p.BN <= cuda_gemm.SPLIT_MAX_BYTES
    if S <= cuda_gemm.SPLIT_ONE_LEVEL:
        assert NG == 1
    else:  # groups of about sqrt(S) chunks: no block adds up more than G slots
        assert (G - 1) ** 2 < S <= G * G and NG == -(-S // G) and (NG - 1) * G < S
    # one launch: a block per tile, outer index and chunk; the last of a tile finishes it
    ((name, dims),) = gemm_launches(k)
    assert name == k.name and gemm_launch_dims(k) == dims
    assert dims.grid == (tm * tn, p.outer, S) and dims.block == (p.threads, 1, 1)
    src = cuda_source([k])
    assert len(re.findall(r'extern "C" __global__', src)) == 1
    assert f"__device__ uint32_t {k.name}_count[{T * NG}];" in src
    assert f"__device__ float {k.name}_partials[{S * T * p.BM * p.BN}];" in src
    if NG == 1:
        assert f"atomicAdd(&{k.name}_count[tile], 1u) == {S - 1}" in src
        assert "_groups" not in src
    else:
        assert f"atomicAdd(&{k.name}_count[((tile * {NG}) + kg)], 1u) == ((s1 - s0) - 1)" in src
        assert f"__device__ float {k.name}_partials_groups[{NG * T * p.BM * p.BN}];" in src
        assert f"atomicAdd(&{k.name}_count_groups[tile], 1u) == {NG - 1}" in src
    # no static shared memory: with a 48 KiB dynamic tile it would pass the launch's limit
    assert not re.search(r"^\s*__shared__", src, re.M)


@pytest.mark.parametrize("shapes", [((2048, 2048), (2048, 2048)),  # enough tiles
                                    ((256, 256), (256, 256)),  # K too short to split
                                    ((16, 511), (511, 16))])
def test_split_k_only_for_few_blocks_and_long_reductions(shapes):
    specs = [jax.ShapeDtypeStruct(s, np.float32) for s in shapes]
    (k,) = _gemm_kernels(lambda a, b: a @ b, *specs)
    assert _plan(k).splits == 1
    assert [n for n, _ in gemm_launches(k)] == [k.name]


def test_split_k_scratch_is_bounded(monkeypatch):
    f, args, _, S = SPLIT["cnn_wgrad"]
    (k,) = _gemm_kernels(f, *map(_spec, args))
    p = _plan(k)
    slot = 4 * p.BM * p.BN * p.tiles[0] * p.tiles[1] * p.outer  # one tile-sized slot per block
    monkeypatch.setattr(cuda_gemm, "SPLIT_MAX_BYTES", 2 * slot * 10)  # chunks and groups
    p = _plan(k)
    assert 2 <= p.splits <= 10 and p.splits * p.kchunk >= p.K
    monkeypatch.setattr(cuda_gemm, "SPLIT_MAX_BYTES", 2 * slot)
    assert _plan(k).splits == 1


def _workload_kernels():
    """The gemm kernels of the benchmarks' CNN, attention and MLP training steps."""
    from bench import workloads as W

    def mlp_loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = jnp.maximum(h @ w + b, 0.0)
        w, b = params[-1]
        return -jnp.mean(jnp.sum(jax.nn.log_softmax(h @ w + b) * y, axis=-1))
    out = []
    for name, loss, args in (("cnn", W.cnn_loss_fn(jnp, jax), W.cnn_setup()),
                             ("attention", W.attention_loss_fn(jnp, jax), W.attention_setup()),
                             ("mlp", mlp_loss, W._mlp_setup())):
        args = jax.tree_util.tree_map(_spec, args)
        for k in _gemm_kernels(jax.value_and_grad(loss), *args):
            k.name = f"{name}_{k.name}"
            out.append(k)
    return out


def test_split_k_in_the_workloads():
    got = {(p.M, p.N, p.K): p.splits for p in map(_plan, _workload_kernels())
           if p is not None}
    assert got[(288, 64, 50176)] == 79  # CNN conv2 weight gradient: 5 blocks before
    assert got[(256, 768, 2048)] == 8  # attention qkv weight gradient: 48 blocks
    assert got[(2048, 768, 256)] == 1  # K too short


def test_workload_operands_are_all_copied(mma_sync):
    """Every operand of the workloads' matmuls and convolutions, forward and backward, is
    staged with cp.async: none is computed element by element."""
    stages = {k.name: gemm_describe(k).split(" stage ")[1].split()[0]
              for k in _workload_kernels() if gemm_supported(k)}
    assert stages and all("e" not in s for s in stages.values()), stages
    assert "fc" in stages.values()  # a ReLU applied to copied values


def test_thin_products_take_the_generic_reduction():
    """conv1's weight gradient (9 x 32 outputs), the dense layer to 10 classes, the MLP's
    last layer: a 64-wide tile would be mostly zeros."""
    thin = [k for k in _workload_kernels() if _plan(k) is None]
    shapes = set()
    for k in thin:
        g, full = k.gemm, k.full_shape
        dims = [int(np.prod([full[a] for a in axes]))
                for axes in (g.m_axes, g.n_axes, k.reduce_axes)]
        assert min(dims) < cuda_gemm.MIN_DIM
        shapes.add(tuple(dims))
    assert {(9, 32, 50176), (64, 10, 12544), (256, 10, 1024)} <= shapes
    assert all(cuda_plan(k).kind == "reduce" for k in thin)


@needs_nvcc
def test_split_kernels_compile_with_nvcc(tmp_path):
    kernels = []
    for name, (f, args, _, _) in SPLIT.items():
        (k,) = _gemm_kernels(f, *map(_spec, args))
        k.name = f"{name}_{k.name}"
        kernels.append(k)
    kernels += [k for k in _workload_kernels() if gemm_supported(k) and
                _plan(k).splits > 1]
    assert_nvcc_compiles(cuda_source(kernels), tmp_path)


# ---- on a GPU ---------------------------------------------------------------------------------

def _reference(f, args):
    """f on float64 copies (the exact product of the staged values) and on |args| (the scale
    of the rounding error of each output)."""
    wide = [np.asarray(a, np.float64) for a in args]
    with config.override(jax_enable_x64=True):
        exact = np.asarray(f(*wide))
        scale = np.asarray(f(*[np.abs(a) for a in wide]))
    return exact, np.abs(scale)


# relative error bound (of sum |a||b|) per mode: TF32 rounds both operands to 11 bits
_RTOL = {"bf16": 2e-5, "f16": 2e-5, "tf32": 2e-3, "simt": 1e-5}


def _check(name, got, f, args, mode):
    exact, scale = _reference(f, args)
    got = np.asarray(got)
    out_dt = jax.eval_shape(f, *args).dtype
    assert got.dtype == out_dt, name
    tol = _RTOL[mode] * scale + 1e-30
    if out_dt in (BF16, np.float16):  # plus the rounding of the result itself
        tol = tol + np.abs(exact) * (2.0 ** -8 if out_dt == BF16 else 2.0 ** -11)
    err = np.abs(got.astype(np.float64) - exact)
    assert np.all(err <= tol), f"{name}: max excess {np.max(err - tol)}"


# every tile configuration on a few cases covering the staging paths
TILED = ["bf16", "f16_transposed", "tf32_transposed", "tf32_edges", "bf16_edges", "conv",
         "bf16_wgmma_edges", "tf32_wgmma_edges", "tf32_wgmma_regs_b", "tf32_wgmma_regs_a"]


@needs_cuda
@pytest.mark.parametrize("name,tiles", [(n, "small") for n in sorted(CASES)] +
                         [(n, t) for t in ("mid", "big") for n in TILED])
def test_jit_cuda_matches_reference(name, tiles, monkeypatch):
    _tile_configs(monkeypatch, tiles)
    f, args, mode = CASES[name]
    jf = jax.jit(lambda *a: f(*a), device="cuda")
    _check(name, jf(*args), f, args, mode)


@needs_cuda
@pytest.mark.parametrize("name", sorted(SPLIT))
def test_split_k_matches_reference(name):
    f, args, mode, _ = SPLIT[name]
    (k,) = _gemm_kernels(f, *args)
    assert _plan(k).splits > 1
    jf = jax.jit(lambda *a: f(*a), device="cuda")
    _check(name, jf(*args), f, args, mode)


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, BF16, np.float16])
@pytest.mark.parametrize("precision", [None, "highest"])
def test_split_k_small_integers_are_exact_and_deterministic(dtype, precision):
    """Every chunk counted once: exact (all partial sums are integers below 2**24); the chunks
    added in a fixed order: the same bits on every run."""
    a = rng.integers(-8, 9, (64, 20000)).astype(dtype)
    b = rng.integers(-8, 9, (20000, 40)).astype(dtype)
    c = rng.integers(-8, 9, (40,)).astype(dtype)
    f = lambda a, b, c: jax.nn.relu(lax.dot(a, b, precision=precision) + c)  # noqa: E731
    (k,) = _gemm_kernels(f, a, b, c)
    assert _plan(k).splits > 1
    got = np.asarray(jax.jit(f, device="cuda")(a, b, c))
    dot = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)  # rounded op by op
    want = np.maximum((dot.astype(np.float64) + c.astype(np.float64)).astype(dtype), 0)
    np.testing.assert_array_equal(got, want)
    x, y = _normal(64, 20000), _normal(20000, 40)
    jf = jax.jit(lambda x, y: x @ y, device="cuda")
    np.testing.assert_array_equal(np.asarray(jf(x, y)), np.asarray(jf(x, y)))


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, BF16, np.float16])
def test_small_integers_are_exact(dtype):
    a = rng.integers(-8, 9, (300, 520)).astype(dtype)
    b = rng.integers(-8, 9, (520, 136)).astype(dtype)
    got = jax.jit(lambda a, b: a @ b, device="cuda")(a, b)
    want = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)  # the result's rounding
    np.testing.assert_array_equal(np.asarray(got), want)


# ---- benchmark (python tests/backends/test_cuda_gemm.py) ----------------------------------------

def _time(launch, sync, event, elapsed_ms, seconds=0.15):
    """Milliseconds per call of ``launch`` (warmed up, repeated for about ``seconds``)."""
    launch()
    sync()
    e0, e1 = event(), event()
    e0.record()
    launch()
    e1.record()
    sync()
    iters = int(min(max(seconds * 1e3 / max(elapsed_ms(e0, e1), 1e-3), 3), 1000))
    e0.record()
    for _ in range(iters):
        launch()
    e1.record()
    sync()
    return elapsed_ms(e0, e1) / iters


def _bench_one(d, kernel, n):
    from tinyjax.backends.cuda.driver import nvrtc_compile
    from tinyjax.backends.cuda.runtime import CUDABackend
    src = cuda_source([kernel])
    mod = d.load_module(nvrtc_compile(src, d.arch, CUDABackend.options))
    steps = []
    for fname, dims in CUDABackend.language.launches(kernel):
        fn = d.get_function(mod, fname)
        if dims.shared_bytes > 48 * 1024:
            d.set_max_shared(fn, dims.shared_bytes)
        steps.append((fn, dims, fname))
    bufs = []
    for dt, size in kernel.bufs:
        host = (rng.random(size, dtype=np.float32) * 2 - 1).astype(dt)
        p = d.alloc(host.nbytes)
        d.htod(p, host.ctypes.data, host.nbytes)
        bufs.append((p, host))
    ptrs = [p for p, _ in bufs]

    class _Event:
        def __init__(self):
            self.e = d.event()

        def record(self):
            d.record(self.e)

    def launch():
        for fn, dims, fname in steps:
            d.launch(fn, dims.grid, dims.block, ptrs, fname, dims.shared_bytes)

    ms = _time(launch, d.synchronize, _Event, lambda a, b: d.elapsed_ms(a.e, b.e))
    out = np.empty_like(bufs[0][1])
    d.dtoh(out.ctypes.data, ptrs[0], out.nbytes)
    a = bufs[1][1].reshape(n, n).astype(np.float64)
    b = bufs[2][1].reshape(n, n).astype(np.float64)
    rows = rng.integers(0, n, 4)
    want = a[rows] @ b
    err = np.max(np.abs(out.reshape(n, n)[rows].astype(np.float64) - want)) / np.sqrt(n)
    for p, _ in bufs:
        d.free(p)
    return 2 * n ** 3 / ms / 1e9, err


PRODUCTS = {"bf16": (BF16, None), "f16": (np.float16, None), "tf32": (np.float32, None),
            "fp32-highest": (np.float32, "highest")}


def _square_kernel(n, dt, prec):
    z = np.zeros((n, n), dt)
    (k,) = _gemm_kernels(lambda a, b: lax.dot(a, b, precision=prec), z, z)
    return k


def _bench(sweep=False):
    from tinyjax.backends.cuda.driver import driver
    d = driver()
    d.make_current()
    try:
        import torch
    except ImportError:
        torch = None
    if sweep:  # every tile configuration on 8192^2 (python tests/backends/test_cuda_gemm.py --sweep)
        saved = cuda_gemm._CONFIGS, cuda_gemm._WG_CONFIGS
        configs = {2: [(128, 256, 64, 2, 4, 3), (128, 128, 64, 2, 4, 4)],
                   4: [(128, 256, 32, 2, 4, 3), (128, 128, 32, 2, 2, 3)]}
        wg_configs = {2: [(128, 256, 64, 8, 1, 4), (128, 256, 64, 8, 1, 3), (256, 128, 64, 16, 1, 4),
                          (128, 128, 64, 8, 1, 6), (128, 128, 64, 8, 1, 4)],
                      4: [(256, 128, 32, 16, 1, 4), (128, 256, 32, 8, 1, 4), (128, 128, 32, 8, 1, 4)]}
        for name in ("bf16", "tf32"):
            dt, prec = PRODUCTS[name]
            esize = 4 if name == "tf32" else 2
            for wg, cfgs in ((False, configs), (True, wg_configs)):
                for cfg in cfgs.get(esize, ()):
                    cuda_gemm._CONFIGS = {esize: (cfg,)}
                    cuda_gemm._WG_CONFIGS = {esize: (cfg,)}
                    cuda_gemm.WGMMA = wg
                    try:
                        tf, err = _bench_one(d, _square_kernel(8192, dt, prec), 8192)
                        print(f"sweep 8192 {name:5s} {'wgmma' if wg else 'mma'} {cfg} {tf:7.1f} "
                              f"TFLOP/s (err/sqrt(K) {err:.1e})", flush=True)
                    except Exception as e:  # e.g. too much shared memory
                        print(f"sweep 8192 {name:5s} {cfg} failed: {str(e)[:200]}", flush=True)
        cuda_gemm._CONFIGS, cuda_gemm._WG_CONFIGS = saved
        cuda_gemm.WGMMA = True
        saved_bk = cuda_gemm.SIMT_BK
        for bk in (8, 16, 32):
            cuda_gemm.SIMT_BK = bk
            tf, err = _bench_one(d, _square_kernel(8192, np.float32, "highest"), 8192)
            print(f"sweep 8192 simt BK={bk} {tf:7.1f} TFLOP/s (err/sqrt(K) {err:.1e})", flush=True)
        cuda_gemm.SIMT_BK = saved_bk
    for n in (8192, 4096, 1024):
        for name, (dt, prec) in PRODUCTS.items():
            k = _square_kernel(n, dt, prec)
            mode = _plan(k).mode + (" wgmma" if _plan(k).wgmma else "")
            tf, err = _bench_one(d, k, n)
            line = f"{n:5d} {name:13s} tinyjax[{mode}] {tf:7.1f} TFLOP/s (err/sqrt(K) {err:.1e})"
            if torch is not None:
                tdt = {np.dtype(np.float16): torch.float16, BF16: torch.bfloat16}.get(
                    np.dtype(dt), torch.float32)
                torch.backends.cuda.matmul.allow_tf32 = prec is None
                ta = torch.randn(n, n, device="cuda").to(tdt)
                tb = torch.randn(n, n, device="cuda").to(tdt)
                ev = lambda: torch.cuda.Event(enable_timing=True)  # noqa: E731
                ms = _time(lambda: torch.matmul(ta, tb), torch.cuda.synchronize, ev,
                           lambda a, b: a.elapsed_time(b))
                ttf = 2 * n ** 3 / ms / 1e9
                line += f"   torch {ttf:7.1f} TFLOP/s   ratio {tf / ttf:5.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    sys.exit(_bench("--sweep" in sys.argv))
