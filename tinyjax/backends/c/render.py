"""The C language: the shared C-like renderer (:mod:`tinyjax.backends.cstyle`) with C's
loop nests for matmul-shaped reductions (:mod:`tinyjax.backends.c.gemm`)."""
from __future__ import annotations

from tinyjax.backends.c.gemm import render_gemm
from tinyjax.backends.cstyle import CStyleLanguage
from tinyjax.compiler.kernel import Kernel

__all__ = ["CLanguage"]


class CLanguage(CStyleLanguage):
    """C, as the ``cpu`` backend compiles it."""

    def render_gemm(self, k: Kernel) -> list[str]:
        return render_gemm(self, k)
