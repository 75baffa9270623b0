"""Lowering rule of ``dot_general`` (:mod:`tinyjax.lax.dot`): expand, multiply, sum -- one
reduce kernel -- and the accumulation dtype and TF32 policy contractions share."""
from __future__ import annotations

import numpy as np

from tinyjax.compiler import ops
from tinyjax.compiler.lower.registry import register_lowering
from tinyjax.config import config
from tinyjax.lax.dot import dot_general_p


def _dot_general(avals_in, avals_out, lhs, rhs, *, dimension_numbers, precision=None,
                 preferred_element_type=None, **params):
    """Expand both operands to (batch, lhs free, rhs free, contract), multiply, sum: one
    reduce kernel (the matmul is never a separate kernel kind)."""
    (lc, rc), (lb, rb) = dimension_numbers
    out_dtype = np.dtype(avals_out[0].dtype)
    if out_dtype == np.bool_:
        raise NotImplementedError("no lowering for primitive 'dot_general' on booleans")
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    acc_dtype = accumulation_dtype(lhs.dtype, rhs.dtype, out_dtype)
    lhs = ops.cast(ops.permute(lhs, list(lb) + lf + list(lc)), acc_dtype)
    rhs = ops.cast(ops.permute(rhs, list(rb) + rf + list(rc)), acc_dtype)
    B = [lhs.shape[i] for i in range(len(lb))]
    LF = [lhs.shape[len(lb) + i] for i in range(len(lf))]
    RF = [rhs.shape[len(rb) + i] for i in range(len(rf))]
    C = [lhs.shape[len(lb) + len(lf) + i] for i in range(len(lc))]
    full = B + LF + RF + C
    lhs = ops.expand(ops.reshape(lhs, B + LF + [1] * len(RF) + C), full)
    rhs = ops.expand(ops.reshape(rhs, B + [1] * len(LF) + RF + C), full)
    prod = ops.alu("mul", lhs, rhs)
    if not C:
        return ops.cast(ops.reshape(prod, avals_out[0].shape), out_dtype)
    if 0 in C:
        return ops.const(0, out_dtype, avals_out[0].shape)
    red = ops.reduce(prod, "sum", range(len(full) - len(C), len(full)),
                     allow_tf32=acc_dtype == np.float32 and allow_tf32(precision))
    return ops.cast(ops.reshape(red, avals_out[0].shape), out_dtype)


register_lowering(dot_general_p, _dot_general)


def accumulation_dtype(*dts) -> np.dtype:
    """The dtype a contraction accumulates in: 16-bit floats in float32 (as XLA does and as
    eager evaluation does), else the widest of the operand and result dtypes."""
    wide = [np.dtype(np.float32) if _is_half(d) else np.dtype(d) for d in dts]
    return np.dtype(np.result_type(*wide))


def _is_half(dt) -> bool:
    return np.dtype(dt) == np.float16 or np.dtype(dt).name == "bfloat16"


# jax_default_matmul_precision values asking for more than TF32 (on GPUs they all run in
# full float32 here: there is no 3-pass emulation)
_FULL_FLOAT32 = frozenset({"highest", "float32", "bfloat16_3x", "TF32_TF32_F32_X3",
                           "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
                           "F32_F32_F32", "F64_F64_F64"})


def allow_tf32(precision) -> bool:
    """Whether a float32 contraction may use TF32 tensor cores, in JAX's GPU semantics:
    ``precision`` (None or a pair of ``lax.Precision``) DEFAULT or HIGH does, HIGHEST does not;
    with ``precision=None`` the ``jax_default_matmul_precision`` config decides (unset: TF32,
    as XLA's default on GPUs)."""
    if precision is not None:
        return all(getattr(p, "name", str(p)).upper() != "HIGHEST" for p in precision)
    return config.jax_default_matmul_precision not in _FULL_FLOAT32
