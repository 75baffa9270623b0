"""The C language: the shared C-like renderer (:mod:`tinyjax.backends.cstyle`) with C's
loop nests for matmul-shaped reductions (:mod:`tinyjax.backends.c.gemm`)."""
from __future__ import annotations

from tinyjax.backends.c.gemm import render_gemm
from tinyjax.backends.cstyle import CStyleLanguage
from tinyjax.compiler.kernel import Kernel

__all__ = ["CLanguage"]


class CLanguage(CStyleLanguage):
    """C, as the ``cpu`` backend compiles it.

    The kernel-level interface a compiled program calls: ``render_kernel(k)`` is the C
    source of one function ``void <k.name>(void **restrict bufs)``, ``bufs[slot]`` pointing
    at the data of ``k.bufs[slot]`` (slots ``0 .. k.n_outs - 1`` written, the rest read),
    to be compiled after :data:`tinyjax.backends.prelude.PRELUDE`.  It renders what
    :func:`tinyjax.compiler.codegen.attach_loop_ir` attached: ``k.loop_ir`` (elementwise,
    reduce and scatter kernels) or ``k.gemm_loops`` (products); sorts need neither."""

    def render_gemm(self, k: Kernel) -> list[str]:
        return render_gemm(self, k)
