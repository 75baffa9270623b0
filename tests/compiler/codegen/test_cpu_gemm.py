"""A CPU product's passes and its loop IR: any sequence of the passes keeps the product's
results (compiled on the C device against numpy), the loop IR is the product's functions
and one call of the support library's driver, and DEBUG=3 prints it after each pass."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.backends import get_backend
from tinyjax.compiler import codegen
from tinyjax.compiler.codegen import gemm
from tinyjax.compiler.codegen.cpu_gemm_linearizer import linearize_cpu_gemm
from tinyjax.compiler.program import compile_jaxpr
from tests.compiler.codegen.test_loop_ir import kernels_of

rng = np.random.default_rng(0)
DN = ("NWC", "WIO", "NWC")


def relu_matmul(a, b, c):
    return jnp.maximum(a, 0.0) @ b + c


def conv(x, w):
    return lax.conv_general_dilated(jnp.tanh(x), w, (1,), "SAME", dimension_numbers=DN)


def matmul_args():  # ragged against every panel size (6, 8, 16, 32 rows)
    return (rng.standard_normal((37, 70)).astype(np.float32),
            rng.standard_normal((70, 45)).astype(np.float32),
            rng.standard_normal(45).astype(np.float32))


def conv_args():  # two reduce axes (taps, channels): the conv's windows are packed
    return (rng.standard_normal((3, 40, 9)).astype(np.float32),
            rng.standard_normal((5, 9, 13)).astype(np.float32))


def sequence(*steps):
    """``cpu_gemm`` replaced: the passes ``steps`` (each ``(pass, *arguments)``) applied to
    the base product, nothing else."""
    def decide(k, parallel_min_flops=None, trace=None):
        gl = gemm.base_product(k)
        for step, *args in steps:
            gl = step(k, gl, *args)
        return gl
    return decide


SEQUENCES = {
    "base": (),
    "swap": ((gemm.swap_operands,),),
    "fuse": ((gemm.fuse_packing,),),
    "threads": ((gemm.parallelize, False),),
    "batched": ((gemm.parallelize, True),),
    "split_k": ((gemm.split_k, 2), (gemm.parallelize, False)),
    "rows": ((gemm.pack, "a", "rows"), (gemm.pack, "b", "rows")),
    "blocked": ((gemm.pack, "a", "blocked"), (gemm.pack, "b", "blocked")),
    "views": ((gemm.strided_views,),),
    "unit_stride": ((gemm.unit_stride_last, "a"), (gemm.unit_stride_last, "b"),
                    (gemm.pack, "a", "rows")),
    "split_k_rows": ((gemm.split_k, 2), (gemm.parallelize, False), (gemm.pack, "a", "rows"),
                     (gemm.pack, "b", "rows")),
    "split_k_blocked": ((gemm.swap_operands,), (gemm.split_k, 3),
                        (gemm.parallelize, False), (gemm.pack, "a", "blocked"),
                        (gemm.pack, "b", "rows"), (gemm.strided_views,)),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
@pytest.mark.parametrize("case", ["matmul", "conv"])
def test_any_pass_sequence_keeps_the_product(monkeypatch, name, case):
    fn, args = (relu_matmul, matmul_args()) if case == "matmul" else (conv, conv_args())
    monkeypatch.setattr(codegen, "cpu_gemm", sequence(*SEQUENCES[name]))
    closed = jax.make_jaxpr(fn)(*args)
    exe = compile_jaxpr(closed, get_backend("cpu"))
    want = fn(*[jnp.asarray(a) for a in args])  # eager
    np.testing.assert_allclose(exe(*args)[0], np.asarray(want), rtol=1e-4, atol=1e-4)
    (k,) = [k for k in exe.program.kernels if k.gemm is not None]
    assert [s[0] for s in k.gemm_loops.applied] == [s[0].__name__ for s in SEQUENCES[name]]


def test_the_loop_ir_is_the_products_functions_and_one_driver_call():
    """Operands that need code of their own get a panel-filling function (a fused ReLU); one
    read as it is and a result stored as it is get none: the driver fills and stores them."""
    (k,), _ = kernels_of(lambda a, b: jnp.maximum(a, 0.0) @ b, *matmul_args()[:2])
    gl = gemm.cpu_gemm(k)
    assert gl.views[0] is None and gl.views[1] is not None and gl.views[2] is not None
    uops = linearize_cpu_gemm(k, gl)
    functions = [u.arg.name for u in uops if u.op == "FUNCTION"]
    (call,) = [u for u in uops if u.op == "GEMM"]
    assert functions == ["_pa", ""] and call.arg.fns == ("_pa", None, None)
    assert (call.arg.M, call.arg.N, call.arg.K) == (37, 45, 70)
    plain = linearize_cpu_gemm(k, gemm.base_product(k))  # every function its own
    assert [u.arg.name for u in plain if u.op == "FUNCTION"] == ["_pa", "_pb", "_epi", ""]


def test_cost_model_records_its_passes_in_order():
    """A long reduction into a small result on the threads: split-K; the thin side swapped
    into rows; every step named in ``applied``."""
    a, b = (rng.standard_normal((8, 4096)).astype(np.float32),
            rng.standard_normal((4096, 16)).astype(np.float32))
    (k,), _ = kernels_of(lambda a, b: jnp.maximum(a, 0.0) @ b + 1.0, a, b)
    seen = []
    gl = gemm.cpu_gemm(k, parallel_min_flops=0, trace=seen.append)
    names = [s[0] for s in gl.applied]
    assert names[:2] == ["split_k", "parallelize"] and gl.strategy == "splitk"
    assert [len(s.applied) for s in seen] == list(range(len(names) + 1))
    assert gemm.cpu_gemm(k).threads is False  # small: on the calling thread


def test_debug_3_prints_a_products_loop_ir_after_each_pass(monkeypatch, capsys):
    a, b, c = matmul_args()
    monkeypatch.setenv("DEBUG", "3")
    compile_jaxpr(jax.make_jaxpr(relu_matmul)(a, b, c), get_backend("cpu"))
    out = capsys.readouterr().out
    assert "loop IR after base_product" in out and "loop IR after pack(a, blocked)" in out
    assert "loop IR after strided_views()" in out
    assert "FUNCTION" in out and "GEMM" in out and "RANGE" in out
