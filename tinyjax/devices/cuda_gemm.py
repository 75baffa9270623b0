"""Matmul-shaped reductions (kernels with a :class:`~tinyjax.lowering.kernel.GemmPlan`) on
the GPU: tiled through shared memory, on the tensor cores where the dtype allows.

Work in progress: :func:`gemm_supported` answers False, so every GemmPlan kernel is still
rendered by the generic reduction path of :mod:`tinyjax.devices.cuda_render`.
"""
from __future__ import annotations

from tinyjax.lowering.kernel import Kernel

__all__ = ["gemm_supported", "render_gemm", "gemm_launch_dims"]


def gemm_supported(k: Kernel) -> bool:
    """Whether :func:`render_gemm` renders ``k`` (a kernel with ``k.gemm`` set)."""
    return False


def render_gemm(lang, k: Kernel) -> str:
    """The CUDA source of the tiled matmul kernel ``k`` (``lang``: the CUDALanguage)."""
    raise NotImplementedError("cuda: tiled matmul rendering is not written yet")


def gemm_launch_dims(k: Kernel):
    """The LaunchDims of :func:`render_gemm`'s kernel."""
    raise NotImplementedError("cuda: tiled matmul rendering is not written yet")
