"""Code generation: a scheduled :class:`~tinyjax.compiler.kernel.Kernel` becomes the loop IR
that a backend renders.

* :mod:`~tinyjax.compiler.codegen.uops`: the loop IR (``RANGE``/``ENDRANGE``, accumulators,
  loads, stores, ALU ops), one linear list per kernel;
* :mod:`~tinyjax.compiler.codegen.loops`: a kernel with its loops spelled out
  (:class:`LoopKernel`), what the passes transform;
* :mod:`~tinyjax.compiler.codegen.opts`: the passes (parallelize, block_reduce, upcast,
  tile, hoist_row_stores), each named and testable;
* :mod:`~tinyjax.compiler.codegen.heuristics`: which passes a kernel gets (the cost model);
* :mod:`~tinyjax.compiler.codegen.linearize`: a :class:`LoopKernel` as loop IR.

:func:`attach_loop_ir` is what the compiler calls before handing kernels to a backend: every
kernel the backend renders from loop IR gets it in ``kernel.loop_ir``.  With ``DEBUG=3`` the
loop IR is printed after each pass.

The kernel-level interface a program calls: the backend renders each kernel into a C
function ``void <kernel.name>(void **restrict bufs)`` where ``bufs[slot]`` points at the
data of ``kernel.bufs[slot]`` (slots ``0 .. n_outs-1`` written, the others read).
"""
from __future__ import annotations

from tinyjax.compiler.codegen.gemm import cpu_gemm
from tinyjax.compiler.codegen.heuristics import cpu_loops
from tinyjax.compiler.codegen.linearize import linearize
from tinyjax.compiler.codegen.loops import LoopKernel, base
from tinyjax.compiler.codegen.uops import format_uops
from tinyjax.compiler.kernel import Kernel

__all__ = ["attach_loop_ir", "loop_ir", "LoopKernel"]

# the backends whose renderers read kernel.loop_ir
LOOP_IR_BACKENDS = frozenset({"cpu"})


def renders_loops(k) -> bool:
    """Whether ``k``'s kind is rendered from loop IR (elementwise and reduce kernels, and a
    scatter's copy; products and sorts have their own renderers still)."""
    return k.gemm is None and k.sort is None


def loop_ir(k, trace: bool = False) -> list:
    """The loop IR of ``k`` on the CPU (of a scatter: of its copy of the operand); with
    ``trace``, printed after each pass."""
    if k.scatter_shape is not None:
        k = Kernel(k.name, k.bufs, k.buf_ids, k.full_shape, (), None, None, [], k.body)
    show = None
    if trace:
        print(f"--- {k.name}: loop IR after base")
        print(format_uops(linearize(base(k))))

        def show(lk: LoopKernel) -> None:
            print(f"--- {k.name}: loop IR after {lk.applied[-1]}")
            print(format_uops(linearize(lk)))
    return linearize(cpu_loops(k, reducible=_omp_reducible, trace=show))


def _omp_reducible(op: str, dt) -> bool:
    """OpenMP combines accumulators of every reduce op but max/min of booleans."""
    return not (str(dt) == "bool" and op in ("max", "min"))


def attach_loop_ir(kernels: list, backend_name: str, debug: int = 0) -> None:
    """Give every kernel that ``backend_name`` renders from loop IR its ``loop_ir``
    (``debug >= 3``: printed after each pass)."""
    if backend_name not in LOOP_IR_BACKENDS:
        return
    trace = debug >= 3
    for k in kernels:
        if renders_loops(k) and k.loop_ir is None:
            k.loop_ir = loop_ir(k, trace)
        elif k.gemm is not None and k.gemm_loops is None:
            k.gemm_loops = cpu_gemm(k)
            if trace:
                print(f"--- {k.name}: product {k.gemm_loops}")
