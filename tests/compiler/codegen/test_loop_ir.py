"""The loop IR and its passes: each pass keeps a kernel's results (the interpreter runs the
loop IR before and after it, against numpy), applies where it should and refuses where it
cannot, and the cost model keeps small work off the threads."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.compiler.codegen import loop_ir, opts
from tinyjax.compiler.codegen.gemm import cpu_gemm
from tinyjax.compiler.codegen.invariants import hoist_invariant_loads
from tinyjax.compiler.codegen.heuristics import cpu_loops
from tinyjax.compiler.codegen.linearizer import linearize
from tinyjax.compiler.codegen.loops import base
from tinyjax.backends.interp import run_loop_ir
from tinyjax.backends import get_backend
from tinyjax.compiler.program import compile_jaxpr
from tinyjax.compiler.lower.jaxpr import lower_jaxpr
from tinyjax.compiler.program import inline_calls
from tinyjax.compiler.schedule import schedule
from tinyjax.compiler.codegen.uops import Range
from tinyjax.compiler.kernel import UOp
from tinyjax.compiler.shape.symbolic import Const, Var

rng = np.random.default_rng(0)


def kernels_of(fn, *args):
    """The scheduled kernels of ``jit(fn)(*args)`` and their program buffers (inputs set)."""
    sched = schedule(*lower_jaxpr(inline_calls(jax.make_jaxpr(fn)(*args).jaxpr)))
    bufs = {i: np.asarray(a, dt) for i, (a, (dt, _)) in enumerate(
        zip(args, [sched.buffers[i] for i in range(len(args))]))}
    for b, (dt, n) in sched.buffers.items():
        bufs.setdefault(b, np.zeros(n, dt))
    return sched.kernels, bufs


def run(uops, k, bufs):
    """Run ``uops`` (the loop IR of ``k``) on copies of the program buffers; its outputs."""
    arrays = [bufs[b].reshape(-1).copy() for b in k.buf_ids]
    run_loop_ir(uops, arrays)
    return arrays[:k.n_outs]


def run_all(fn, *args, transform=None):
    """Every kernel of ``fn`` run in order on the interpreter, each from the loop IR that
    ``transform(kernel)`` gives (default: the plain loop nest); the program's buffers."""
    ks, bufs = kernels_of(fn, *args)
    for k in ks:
        uops = linearize(base(k)) if transform is None else transform(k)
        for b, out in zip(k.buf_ids, run(uops, k, bufs)):
            bufs[b] = out
    return ks, bufs


def check_same(fn, *args, transform):
    """``transform``'s loop IR gives every buffer of the plain loop nest's run, bit for bit
    up to float reassociation."""
    _, want = run_all(fn, *args)
    _, got = run_all(fn, *args, transform=transform)
    for b in want:
        np.testing.assert_allclose(got[b], want[b], rtol=2e-5, atol=1e-5)


def test_plain_loop_nest_matches_numpy():
    x = rng.standard_normal((5, 7)).astype(np.float32)
    ks, bufs = run_all(lambda x: jnp.sum(jnp.exp(x), axis=1) + 1.0, x)
    np.testing.assert_allclose(bufs[ks[-1].buf_ids[0]], np.exp(x).sum(1) + 1, rtol=1e-5)


def test_block_reduce_partial_sums_and_ragged_blocks():
    x = rng.standard_normal((3, 1000)).astype(np.float32)
    f = lambda x: jnp.max(x, axis=1) + jnp.sum(x * x, axis=1)  # noqa: E731
    check_same(f, x, transform=lambda k: linearize(opts.block_reduce(base(k), 96)))
    lk = opts.block_reduce(base(kernels_of(f, x)[0][0]), 96)
    assert [lp.var for lp in lk.loops] == ["i0", "b1", "i1"] and lk.loops[-1].partial


def test_upcast_keeps_a_row_of_accumulators():
    x = rng.standard_normal((300, 40)).astype(np.float32)
    f = lambda x: jnp.sum(x, axis=0)  # noqa: E731  (a column sum)
    for block in (40, 16, 7):  # whole row, blocks, a ragged last block
        check_same(f, x, transform=lambda k: linearize(opts.upcast(base(k), 1, block)))
    uops = linearize(opts.upcast(base(kernels_of(f, x)[0][0]), 1, 16))
    assert [u.arg.count for u in uops if u.op == "DEFINE_ACC"] == [16]


def test_tile_transposes_in_tiles():
    x = rng.standard_normal((70, 45)).astype(np.float32)
    check_same(lambda x: x.T * 2.0, x,
               transform=lambda k: linearize(opts.tile(base(k), (1, 0), 32)))


def test_parallelize_and_hoist_keep_results():
    x = rng.standard_normal((6, 50)).astype(np.float32)

    def softmax_and_max(x):
        m = jnp.max(x, axis=-1, keepdims=True)
        e = jnp.exp(x - m)
        return e / jnp.sum(e, axis=-1, keepdims=True), m[:, 0] * 2.0
    check_same(softmax_and_max, x, transform=lambda k: linearize(
        opts.parallelize(opts.hoist_row_stores(base(k)), 0) if k.full_epilogue
        else base(k)))


def test_passes_refuse_where_they_do_not_apply():
    ks, _ = kernels_of(lambda x: x * 2.0, np.ones((4, 8), np.float32))
    lk = base(ks[0])
    for bad in (lambda: opts.block_reduce(lk, 16), lambda: opts.upcast(lk, 0, 4),
                lambda: opts.hoist_row_stores(lk), lambda: opts.parallelize(lk, 5),
                lambda: opts.parallelize(opts.parallelize(lk, 0), 1),
                lambda: opts.tile(lk, (0, 3), 32)):
        with pytest.raises(opts.OptError):
            bad()


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 40), cols=st.integers(1, 300), block=st.integers(1, 64),
       axis=st.sampled_from([0, 1]), op=st.sampled_from(["sum", "max", "min"]))
def test_any_pass_sequence_keeps_a_reduction(rows, cols, block, axis, op):
    """Every applicable sequence of passes over a reduction gives the plain nest's result."""
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    red = {"sum": jnp.sum, "max": jnp.max, "min": jnp.min}[op]
    f = lambda x: red(x, axis=axis) * 2.0  # noqa: E731
    ks, _ = kernels_of(f, x)
    steps = [lambda lk: opts.block_reduce(lk, block),
             lambda lk: opts.upcast(lk, 1 - axis, block),
             lambda lk: opts.parallelize(lk, 0)]
    for seq in itertools.permutations(steps, 2):
        def transform(k, seq=seq):
            lk = base(k)
            for step in seq:
                try:
                    lk = step(lk)
                except opts.OptError:
                    pass
            return linearize(lk)
        check_same(f, x, transform=transform)


def test_small_work_runs_on_the_calling_thread():
    small, _ = kernels_of(lambda x: jnp.tanh(x) + 1.0, np.ones((64, 64), np.float32))
    big, _ = kernels_of(lambda x: jnp.tanh(x) + 1.0, np.ones((1024, 1024), np.float32))
    assert not any(u.op == "RANGE" and u.arg.parallel for u in loop_ir(small[0]))
    assert any(u.op == "RANGE" and u.arg.parallel for u in loop_ir(big[0]))
    a = np.ones((32, 40), np.float32)
    w = np.ones((40, 64), np.float32)
    (k,), _ = kernels_of(lambda a, w: a @ w, a, w)
    assert k.gemm is not None and not cpu_gemm(k).threads
    (k,), _ = kernels_of(lambda a, w: a @ w, np.ones((512, 512), np.float32),
                         np.ones((512, 512), np.float32))
    assert cpu_gemm(k).threads


def test_only_transposes_beyond_l1_are_tiled():
    """A transposing update of a 40 x 100 weight runs untiled (its strided reads stay in L1),
    one of 300 x 200 in 32 x 32 tiles."""
    def tiled(shape) -> bool:
        w = np.ones(shape, np.float32)
        (k,), _ = kernels_of(lambda w, g: 0.9 * w + 0.1 * g.T, w, w.T.copy())
        return "tile" in " ".join(step[2] for step in cpu_loops(k).applied)
    assert not tiled((40, 100)) and tiled((300, 200))


def test_loops_whose_stores_move_with_them_are_independent():
    """An elementwise kernel's innermost loop writes a new element every iteration (no test
    of overlapping buffers needed to vectorise it); a reduction's inner loop stores nothing,
    and a loop storing one row value in every iteration is not independent."""
    def independent(fn, *args):
        (k, *_), _ = kernels_of(fn, *args)
        return [u.arg.independent for u in loop_ir(k) if u.op == "RANGE"]
    x = np.ones((40, 100), np.float32)
    assert independent(lambda x: jnp.exp(x) * 2.0, x) == [False, True]
    assert not any(independent(lambda x: jnp.sum(x, axis=1), x))
    src = compile_jaxpr(jax.make_jaxpr(lambda x, y: (x * 2.0, y + 1.0, x * y))(x, x),
                        get_backend("cpu")).source()
    assert "#pragma GCC ivdep" in src


def test_compiled_small_kernels_have_no_parallel_region():
    x = np.ones((40, 100), np.float32)
    w = np.ones((100, 10), np.float32)
    exe = compile_jaxpr(jax.make_jaxpr(lambda x, w: jnp.maximum(x @ w, 0.0).sum(0))(x, w),
                        get_backend("cpu"))
    src = exe.source()
    assert "#pragma omp parallel" not in src.split("void k0")[1]
    np.testing.assert_allclose(exe(x, w)[0], np.full(10, 4000.0))


def test_debug_3_prints_the_loop_ir_after_each_pass(monkeypatch, capsys):
    x = np.ones((512, 600), np.float32)
    monkeypatch.setenv("DEBUG", "3")
    compile_jaxpr(jax.make_jaxpr(lambda x: jnp.sum(jnp.exp(x), axis=1))(x), get_backend("cpu"))
    out = capsys.readouterr().out
    assert "loop IR after base" in out and "loop IR after block_reduce(i1, 4096)" in out
    assert "loop IR after parallelize(i0)" in out and "DEFINE_ACC" in out and "RANGE" in out


def test_beam_search_keeps_the_fastest_and_replays_it_from_disk(tmp_path):
    from tinyjax.compiler.codegen.search import beam_search, cached_search
    x = rng.standard_normal((300, 200)).astype(np.float32)
    (k,), _ = kernels_of(lambda x: jnp.sum(x, axis=0), x)

    def time_fn(lk):  # a made-up clock: an upcast row of 64 is fastest, threads cost
        names = {name: args for name, args, _ in lk.applied}
        return (1.0 if names.get("upcast") != (1, 64) else 0.1) + 0.01 * ("parallelize" in names)
    best = beam_search(k, 3, time_fn)
    assert [s[:2] for s in best.applied] == [("upcast", (1, 64))]
    calls = []
    first = cached_search(k, 3, lambda lk: calls.append(1) or time_fn(lk), str(tmp_path))
    again = cached_search(k, 3, lambda lk: calls.append(2) or time_fn(lk), str(tmp_path))
    assert 2 not in calls and again.applied == first.applied == best.applied
    check_same(lambda x: jnp.sum(x, axis=0), x, transform=lambda k: linearize(best))


def test_beam_env_searches_with_the_compiled_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM", "1")
    monkeypatch.setenv("TINYJAX_CACHE_DIR", str(tmp_path))
    x = rng.standard_normal((64, 100)).astype(np.float32)
    exe = compile_jaxpr(jax.make_jaxpr(lambda x: jnp.max(x, axis=1) * 2.0)(x), get_backend("cpu"))
    np.testing.assert_allclose(exe(x)[0], x.max(1) * 2.0, rtol=1e-6)
    assert len([p for p in tmp_path.iterdir() if p.name.startswith("beam_")]) == 1


def test_a_thin_product_swaps_its_operands_to_pad_less():
    """M=32 outputs by N=5 (a conv's kernel gradient over 5 taps): the 5 go into panels of
    MR rows rather than NR columns; the result is unchanged."""
    a = rng.standard_normal((32, 300)).astype(np.float32)
    b = rng.standard_normal((300, 5)).astype(np.float32)
    (k,), _ = kernels_of(lambda a, b: a @ b, a, b)
    assert cpu_gemm(k).swapped
    exe = compile_jaxpr(jax.make_jaxpr(lambda a, b: a @ b)(a, b), get_backend("cpu"))
    np.testing.assert_allclose(exe(a, b)[0], a @ b, rtol=1e-4, atol=1e-4)
    (k,), _ = kernels_of(lambda a, b: a @ b, a[:, :64].T.copy(), a[:, :64].copy())
    assert not cpu_gemm(k).swapped  # 64 x 64: the same tiles either way


def test_masks_that_only_outer_loops_decide_are_hoisted_out_of_the_inner_loop():
    """Interleaving two halves (every other row from each): the tests of the masked loads
    read only the row, so hoist_masks computes them before the loop over a row, and the
    loop IR keeps its results."""
    a = rng.standard_normal((7, 4, 64)).astype(np.float32)
    b = rng.standard_normal((7, 3, 64)).astype(np.float32)

    def interleave(a, b):
        rows = jnp.stack([a[:, :3], b], axis=2).reshape(7, 6, 64)
        return jnp.concatenate([rows, a[:, 3:]], axis=1) * 2.0
    (k,), bufs = kernels_of(interleave, a, b)
    uops = loop_ir(k)
    inner = max(i for i, u in enumerate(uops) if u.op == "RANGE")
    hoisted = {u.arg.name for u in uops[:inner] if u.op == "DEFINE_VAR"}
    masked = [u for u in uops[inner:] if u.op == "LOAD" and not u.arg[2].vmin > 0]
    assert hoisted and masked
    assert all({v.name for v in u.arg[2].vars()} <= hoisted for u in masked)
    want = np.concatenate([np.stack([a[:, :3], b], axis=2).reshape(7, 6, 64), a[:, 3:]],
                          axis=1) * 2.0
    np.testing.assert_array_equal(run(uops, k, bufs)[0].reshape(want.shape), want)


def _loads_before_inner_loop(uops, slot: int) -> tuple[int, int]:
    """(loads of ``slot`` before the first innermost loop opens, loads inside loops)."""
    depth, before, inside = 0, 0, 0
    for u in uops:
        depth += (u.op == "RANGE") - (u.op == "ENDRANGE")
        if u.op == "LOAD" and u.arg[0] == slot:
            inside += depth > 1
            before += depth <= 1
    return before, inside


def test_row_statistic_is_loaded_once_per_row():
    """``g * exp(x - m) + (x == m)`` with the row maxima ``m`` an input: invariant_loads
    reads ``m[row]`` before the loop over the row (the loop also stores, so a C compiler
    would reload it every iteration), and the loop IR keeps its results."""
    x = rng.standard_normal((6, 40)).astype(np.float32)
    m = x.max(axis=1)
    g = rng.standard_normal((6, 40)).astype(np.float32)

    def f(x, m, g):
        return g * jnp.exp(x - m[:, None]) + (x == m[:, None]).astype(jnp.float32)
    (k,), bufs = kernels_of(f, x, m, g)
    uops = loop_ir(k)
    m_slot = k.buf_ids.index(1)
    assert _loads_before_inner_loop(uops, m_slot) == (1, 0)
    want = g * np.exp(x - m[:, None]) + (x == m[:, None])
    np.testing.assert_allclose(run(uops, k, bufs)[0].reshape(want.shape), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(f)(x, m, g)), want, rtol=1e-6)


def test_load_in_a_loop_that_may_not_run_stays():
    """A triangular nest (``i1 < i0``): the inner loop runs no iteration for ``i0 = 0``, so
    a load inside it stays there (its buffer may be as short as the loop); with a bound
    that always runs, the same load goes before the loop -- unless it is masked."""
    f32 = np.dtype(np.float32)

    def nest(hi, valid=Const(1)):
        i0, i1 = Var("i0", 0, 3), Var("i1", 0, 7)
        return [UOp("RANGE", None, (), Range("i0", Const(0), Const(4))),
                UOp("RANGE", None, (), Range("i1", Const(0), hi(i0))),
                UOp("LOAD", f32, (), (1, i0, valid)),
                UOp("STORE", None, (2,), (0, i0 * 8 + i1, Const(1))),
                UOp("ENDRANGE", None, (1,), None), UOp("ENDRANGE", None, (0,), None)]
    triangular = hoist_invariant_loads(nest(lambda i0: i0), n_outs=1)
    assert [u.op for u in triangular][:3] == ["RANGE", "RANGE", "LOAD"]
    square = hoist_invariant_loads(nest(lambda i0: Const(8)), n_outs=1)
    assert [u.op for u in square][:3] == ["RANGE", "LOAD", "RANGE"]
    assert square[3].srcs == (1,)  # the store reads the load where it now is
    masked = hoist_invariant_loads(nest(lambda i0: Const(8), Var("mask0", 0, 1)), n_outs=1)
    assert [u.op for u in masked][:3] == ["RANGE", "RANGE", "LOAD"]  # (a masked load stays)
    out, src = np.zeros(32, np.float32), np.arange(4, dtype=np.float32)
    run_loop_ir(square, [out, src])
    np.testing.assert_array_equal(out, np.repeat(src, 8))


@settings(max_examples=15, deadline=None)
@given(rows=st.integers(0, 5), cols=st.integers(0, 70), reduce=st.booleans())
def test_row_statistics_any_shape_against_numpy(rows, cols, reduce):
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    m = rng.standard_normal(rows).astype(np.float32)

    def f(x, m):
        y = jnp.where(x > m[:, None], x - m[:, None], 0.0) * m[:, None]
        return jnp.sum(y, axis=1) if reduce else y
    want = np.where(x > m[:, None], x - m[:, None], 0.0) * m[:, None]
    want = want.sum(axis=1) if reduce else want
    np.testing.assert_allclose(np.asarray(jax.jit(f)(x, m)), want, rtol=1e-5, atol=1e-5)
