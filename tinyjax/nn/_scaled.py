"""Block-scaled matrix products (``jax.nn.scaled_matmul`` and friends): operands whose
values are stored with one scale per block of ``block_size`` elements along the
contracting axis (the MX / NVFP4 formats)."""
from __future__ import annotations

import dataclasses
from typing import Any

import ml_dtypes
import numpy as np

import tinyjax.numpy as jnp

__all__ = ["BlockScaleConfig", "get_scaled_dot_general_config", "scaled_matmul",
           "scaled_dot_general"]


@dataclasses.dataclass
class BlockScaleConfig:
    """How an operand is quantized: its block size, value and scale dtypes."""
    mode: str
    block_size: int
    data_type: Any
    scale_type: Any
    global_scale: Any = None
    infer_only: bool = False


def get_scaled_dot_general_config(mode: str, global_scale: Any = None) -> BlockScaleConfig:
    """The block-scale configuration of ``mode``: 'mxfp8' (blocks of 32, float8_e4m3fn
    values, float8_e8m0fnu scales) or 'nvfp4' (blocks of 16, float4_e2m1fn values,
    float8_e4m3fn scales, a global scale)."""
    if mode == "mxfp8":
        return BlockScaleConfig(mode, 32, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e8m0fnu,
                                None, False)
    if mode == "nvfp4":
        scale = jnp.asarray(1.0) if global_scale is None else global_scale
        return BlockScaleConfig(mode, 16, ml_dtypes.float4_e2m1fn, ml_dtypes.float8_e4m3fn,
                                scale, False)
    raise ValueError(f"Unsupported mode: {mode}")


def scaled_matmul(lhs: Any, rhs: Any, lhs_scales: Any, rhs_scales: Any,
                  preferred_element_type: Any = np.float32) -> Any:
    """``out[b, m, n] = sum_k lhs[b, m, k] * ls[b, m, k // B] * rhs[b, n, k] *
    rs[b, n, k // B]`` with ``B = K / lhs_scales.shape[2]``: operands (B, M, K) and
    (B, N, K), scales (B, M, K/B) and (B, N, K/B); computed by dequantizing."""
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    ls, rs = jnp.asarray(lhs_scales), jnp.asarray(rhs_scales)
    if lhs.ndim != 3 or rhs.ndim != 3 or ls.ndim != 3 or rs.ndim != 3:
        raise ValueError("scaled_matmul: lhs, rhs and their scales must be rank 3, got "
                         f"{lhs.shape}, {rhs.shape}, {ls.shape}, {rs.shape}")
    k = lhs.shape[2]
    if rhs.shape[2] != k or ls.shape[2] != rs.shape[2] or k % ls.shape[2]:
        raise ValueError("scaled_matmul: the contracting sizes must agree and be a multiple "
                         f"of the scales' block count, got {lhs.shape}, {rhs.shape}, "
                         f"{ls.shape}, {rs.shape}")
    block = k // ls.shape[2]
    dt = np.dtype(preferred_element_type)
    a = lhs.astype(dt) * jnp.repeat(ls.astype(dt), block, axis=2)
    b = rhs.astype(dt) * jnp.repeat(rs.astype(dt), block, axis=2)
    return jnp.einsum("bmk,bnk->bmn", a, b, preferred_element_type=dt)


def scaled_dot_general(lhs: Any, rhs: Any, dimension_numbers: Any,
                       preferred_element_type: Any = np.float32,
                       configs: Any = None, implementation: Any = None) -> Any:
    """A ``dot_general`` whose operands are first quantized to block-scaled narrow
    floats.  tinyjax arrays of float8/float4 dtypes do not exist yet, so this raises."""
    raise NotImplementedError("jax.nn.scaled_dot_general quantizes to float8/float4 "
                              "arrays, which tinyjax does not support yet; use "
                              "scaled_matmul on values and scales you quantized yourself")
