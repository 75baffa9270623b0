"""Code generation: a scheduled :class:`~tinyjax.compiler.kernel.Kernel` becomes the loop IR
that a backend renders.

* :mod:`~tinyjax.compiler.codegen.uops`: the loop IR (``RANGE``/``ENDRANGE``, accumulators,
  loads, stores, ALU ops), one linear list per kernel;
* :mod:`~tinyjax.compiler.codegen.loops`: a kernel with its loops spelled out
  (:class:`LoopKernel`), what the passes transform;
* :mod:`~tinyjax.compiler.codegen.opts`: the passes (parallelize, block_reduce, upcast,
  tile, hoist_row_stores), each named and testable; two passes over the linear loop IR
  after them: :mod:`~tinyjax.compiler.codegen.masks` and
  :mod:`~tinyjax.compiler.codegen.invariants` (masks and invariant loads out of loops);
* :mod:`~tinyjax.compiler.codegen.heuristics`: which passes a kernel gets (the cost model);
* :mod:`~tinyjax.compiler.codegen.search`: or which a timed beam search finds (``BEAM=n``);
* :mod:`~tinyjax.compiler.codegen.linearizer`: a :class:`LoopKernel` as loop IR;
* :mod:`~tinyjax.compiler.codegen.gemm`: the CPU product's passes (its strategy, threads,
  panels); :mod:`~tinyjax.compiler.codegen.cpu_gemm_linearizer`: a product as loop IR
  (its panel fills and epilogue as functions, the support library's driver called).

:func:`prepare_kernels` is what the compiler calls before handing kernels to a backend:
every kernel the backend renders from loop IR gets it in ``kernel.loop_ir`` (a CPU product
its decisions in ``kernel.gemm_loops`` too).  With ``DEBUG=3`` the loop IR is printed after each
pass.

The kernel-level interface a program calls: the backend renders each kernel into a C
function ``void <kernel.name>(void **restrict bufs)`` where ``bufs[slot]`` points at the
data of ``kernel.bufs[slot]`` (slots ``0 .. n_outs-1`` written, the others read).
"""
from __future__ import annotations

from tinyjax.compiler.codegen.cpu_gemm_linearizer import linearize_cpu_gemm
from tinyjax.compiler.codegen.cuda_gemm import gemm_tiles
from tinyjax.compiler.codegen.gemm import cpu_gemm
from tinyjax.compiler.codegen.gemm_linearizer import linearize_gemm
from tinyjax.compiler.codegen.gpu_heuristics import CudaTarget, cuda_loops
from tinyjax.compiler.codegen.gpu_linearizer import linearize_gpu
from tinyjax.compiler.codegen.heuristics import cpu_loops
from tinyjax.compiler.codegen.invariants import hoist_invariant_loads
from tinyjax.compiler.codegen.linearizer import linearize
from tinyjax.compiler.codegen.loops import LoopKernel, base
from tinyjax.compiler.codegen.masks import hoist_masks
from tinyjax.compiler.codegen.search import cached_search, kernel_timer
from tinyjax.compiler.codegen.uops import format_uops
from tinyjax.compiler.kernel import Kernel
from tinyjax.config import env_int

__all__ = ["prepare_kernels", "attach_loop_ir", "loop_ir", "cuda_loop_ir", "cuda_plan",
           "LoopKernel", "CudaTarget"]


def renders_loops(k) -> bool:
    """Whether ``k``'s loop IR is the loop nest of :mod:`~tinyjax.compiler.codegen.opts`'
    passes (elementwise and reduce kernels, a scatter's copy; products have passes of their
    own, :mod:`~tinyjax.compiler.codegen.gemm`, and sorts a renderer of their own)."""
    return k.gemm is None and k.sort is None


def loop_ir(k, trace: bool = False, optimize: bool = True, beam: int = 0,
            time_fn=None) -> list:
    """The loop IR of ``k`` on the CPU (of a scatter: of its copy of the operand); with
    ``trace``, printed after each pass; without ``optimize``, the plain loop nest; with
    ``beam > 0``, the passes a search of that width finds fastest (``time_fn(loop IR)``:
    seconds per run; winners kept in the disk cache)."""
    if k.scatter_shape is not None:
        k = Kernel(k.name, k.bufs, k.buf_ids, k.full_shape, (), None, None, [], k.body)
    if not optimize:
        return linearize(base(k))
    if beam > 0:
        start = cpu_loops(k, reducible=_omp_reducible)
        best = cached_search(k, beam, lambda lk: time_fn(linearize(lk)), start=start)
        if trace:
            print(f"--- {k.name}: BEAM={beam} chose {[s[2] for s in best.applied]}")
            print(format_uops(linearize(best)))
        return hoist_invariant_loads(hoist_masks(linearize(best)), k.n_outs)
    show = None
    if trace:
        print(f"--- {k.name}: loop IR after base")
        print(format_uops(linearize(base(k))))

        def show(lk: LoopKernel) -> None:
            print(f"--- {k.name}: loop IR after {lk.applied[-1][2]}")
            print(format_uops(linearize(lk)))
    uops = hoist_masks(linearize(cpu_loops(k, reducible=_omp_reducible, trace=show)))
    if trace:
        print(f"--- {k.name}: loop IR after hoist_masks")
        print(format_uops(uops))
    uops = hoist_invariant_loads(uops, k.n_outs)
    if trace:
        print(f"--- {k.name}: loop IR after hoist_invariant_loads")
        print(format_uops(uops))
    return uops


def cuda_plan(k, target: CudaTarget = CudaTarget(), trace=None):
    """The GPU passes of ``k`` on ``target`` (a
    :class:`~tinyjax.compiler.codegen.gpu_loops.GpuKernel`); ``trace`` sees each step."""
    return cuda_loops(k, target, trace=trace, tiled=gemm_tiles)


def cuda_loop_ir(k, target: CudaTarget = CudaTarget(), trace: bool = False) -> list:
    """The loop IR of ``k`` on a CUDA GPU ``target``; with ``trace``, printed after each
    pass."""
    show = None
    if trace:
        def show(gk) -> None:
            print(f"--- {k.name}: loop IR after {gk.applied[-1][2]}")
            if gk.kind == "gemm" and gk.applied[-1][0] in ("mma", "stage", "wgmma"):
                print(f"  ({gk.tile.describe()})")  # no tile yet
            else:
                print(format_uops(linearize_gemm(gk) if gk.kind == "gemm" else
                                  linearize_gpu(gk)))
    gk = cuda_plan(k, target, show)
    return linearize_gemm(gk) if gk.kind == "gemm" else linearize_gpu(gk)


def _show_product(k):
    """What DEBUG=3 prints of a CPU product after each of its passes: the decisions and the
    loop IR they give."""
    def show(gl) -> None:
        step = "base_product" if not gl.applied else \
            f"{gl.applied[-1][0]}({', '.join(map(str, gl.applied[-1][1]))})"
        print(f"--- {k.name}: loop IR after {step}: {gl}")
        print(format_uops(linearize_cpu_gemm(k, gl)))
    return show


def _target(backend) -> CudaTarget:
    """The CUDA target a backend describes (its ``sms`` and ``wgmma``, where it has them)."""
    d = CudaTarget()
    return CudaTarget(getattr(backend, "sms", d.sms), getattr(backend, "wgmma", d.wgmma))


def _omp_reducible(op: str, dt) -> bool:
    """OpenMP combines accumulators of every reduce op but max/min of booleans."""
    return not (str(dt) == "bool" and op in ("max", "min"))


def attach_loop_ir(kernels: list, backend, debug: int = 0, beam: int = 0,
                   time_fn=None) -> None:
    """Give every kernel that ``backend`` renders from loop IR its ``loop_ir`` (``debug >=
    3``: printed after each pass).  A backend names what it reads in ``loop_ir_target``:
    ``"cpu"`` (the C renderer's optimised loops), ``"interp"`` (the plain loop nest, the
    reference the passes are checked against) or None (no loop IR).  With
    ``beam > 0`` (``BEAM``), each kernel's passes are searched: ``time_fn(kernel, loop IR)``
    times a candidate, and the winners are kept in the disk cache."""
    target = backend.loop_ir_target
    if target is None:
        return
    trace = debug >= 3 and target in ("cpu", "cuda")
    for k in kernels:
        if target == "cuda":
            if k.loop_ir is None:
                k.loop_ir = cuda_loop_ir(k, _target(backend), trace)
        elif target == "interp":
            if k.sort is None and k.loop_ir is None:
                k.loop_ir = loop_ir(k, optimize=False)
        elif renders_loops(k) and k.loop_ir is None:
            searched = beam > 0 and k.scatter_shape is None and time_fn is not None
            k.loop_ir = loop_ir(k, trace, beam=beam if searched else 0,
                                time_fn=lambda uops, k=k: time_fn(k, uops))
        elif k.gemm is not None and k.loop_ir is None:
            k.gemm_loops = cpu_gemm(k, trace=_show_product(k) if trace else None)
            k.loop_ir = linearize_cpu_gemm(k, k.gemm_loops)


def prepare_kernels(kernels: list, backend, debug: int = 0) -> None:
    """What the compiler calls before ``backend.compile(kernels)``: each kernel's loop IR
    attached (with ``BEAM=n`` on a backend rendering C loops, searched by timing them on
    it, the choices kept in the cache directory)."""
    beam = env_int("BEAM")
    if beam > 0 and backend.loop_ir_target == "cpu":
        attach_loop_ir(kernels, backend, debug, beam, kernel_timer(backend))
    else:
        attach_loop_ir(kernels, backend, debug)
