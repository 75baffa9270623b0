"""``jax.nn.dot_product_attention``: scaled dot-product attention with bias, boolean and
causal masks, sliding windows, sequence lengths and grouped (multi-query) heads, written
in jnp (one fused softmax, two products), as JAX's 'xla' implementation computes it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.nn.functions import softmax
from tinyjax.scipy.special import logsumexp

__all__ = ["dot_product_attention"]


def _as_4d(t: Any) -> Any:
    t = jnp.asarray(t)
    return jnp.expand_dims(t, tuple(range(4 - t.ndim))) if t.ndim < 4 else t


def _check(t: Any, shape: Sequence[int], dtype: Any, name: str) -> None:
    if t is None:
        return
    if t.ndim != len(shape):
        raise ValueError(f"{name} ndim should be {len(shape)}, but got {t.ndim}")
    if dtype is not None and t.dtype != dtype:
        raise ValueError(f"{name} dtype should be {np.dtype(dtype)}, but got {t.dtype}")
    if any(s != -1 and d != s for s, d in zip(shape, t.shape)):
        raise ValueError(f"{name} shape should be {list(shape)}: but got {t.shape}")


def _large_negative(dtype: np.dtype) -> float:
    return -0.7 * min(float(dtypes.finfo(dtype).max), float(np.finfo(np.float32).max))


def _combined_mask(T: int, S: int, mask: Any, is_causal: bool, q_seqlen: Any,
                   kv_seqlen: Any, window: tuple[int, int] | None) -> Any:
    """The boolean mask broadcastable to (B, N, T, S), or None when nothing is masked."""
    parts = []
    if mask is not None:
        parts.append(mask)
    q_pos = jnp.arange(T)[:, None]
    k_pos = jnp.arange(S)[None, :]
    if is_causal:
        parts.append((q_pos >= k_pos)[None, None])
    if window is not None:
        left, right = window
        parts.append(((q_pos <= k_pos + left) & (q_pos >= k_pos - right))[None, None])
    if q_seqlen is not None or kv_seqlen is not None:
        pad = jnp.ones((1, T, S), bool)
        if q_seqlen is not None:
            pad = pad & (jnp.arange(T)[None, :, None] < q_seqlen[:, None, None])
        if kv_seqlen is not None:
            pad = pad & (jnp.arange(S)[None, None, :] < kv_seqlen[:, None, None])
        parts.append(pad[:, None])
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out & p
    return out


def dot_product_attention(query: Any, key: Any, value: Any, bias: Any = None,
                          mask: Any = None, *, scale: float | None = None,
                          is_causal: bool = False, query_seq_lengths: Any = None,
                          key_value_seq_lengths: Any = None,
                          local_window_size: int | tuple[int, int] | None = None,
                          implementation: str | None = None,
                          return_residual: bool = False) -> Any:
    """``softmax(query @ key^T * scale + bias, masked) @ value`` per head.

    Shapes: query ``(B, T, N, H)``, key and value ``(B, S, K, H)`` with ``N`` a multiple
    of ``K`` (query head ``n`` attends with key/value head ``n // (N // K)``), or the same
    without the batch axis; ``bias`` and boolean ``mask`` broadcast to ``(B, N, T, S)``.
    ``is_causal`` masks keys after the query position, ``local_window_size=(l, r)`` keys
    more than ``l`` before or ``r`` after it, the sequence lengths (int32, ``(B,)``)
    padding. The logits and softmax are computed in at least float32; the result has
    ``query``'s shape and ``key``'s dtype. ``return_residual`` also returns the
    log-sum-exp of the logits, ``(B, T, N)``.
    """
    if implementation not in (None, "xla"):
        if implementation == "cudnn":
            raise NotImplementedError("dot_product_attention: implementation='cudnn' needs "
                                      "cuDNN, which tinyjax does not use; pass None or "
                                      "'xla'")
        raise ValueError(f"Unsupported implementation option: {implementation}")
    out_shape = jnp.shape(query)
    q, k, v = _as_4d(query), _as_4d(key), _as_4d(value)
    bias = _as_4d(bias) if bias is not None else None
    mask = _as_4d(mask) if mask is not None else None
    q_len = jnp.asarray(query_seq_lengths) if query_seq_lengths is not None else None
    kv_len = jnp.asarray(key_value_seq_lengths) if key_value_seq_lengths is not None \
        else None
    if isinstance(local_window_size, int):
        local_window_size = (local_window_size, local_window_size)
    B, S, K, H = k.shape
    _check(v, [B, S, K, H], k.dtype, "value")
    _check(q, [B, -1, -1, H], k.dtype, "query")
    _check(mask, [-1] * 4, np.dtype(bool), "mask")
    _check(bias, [-1] * 4, None, "bias")
    _check(q_len, [B], np.dtype(np.int32), "query_seq_lengths")
    _check(kv_len, [B], np.dtype(np.int32), "key_value_seq_lengths")
    T, N = q.shape[1], q.shape[2]
    if N % K:
        raise ValueError("The number of query heads must be a multiple of key/value heads, "
                         f"but got {N} vs {K}")
    if N != K:                                    # grouped heads share a key/value head
        k, v = jnp.repeat(k, N // K, axis=2), jnp.repeat(v, N // K, axis=2)
    scale = 1.0 / np.sqrt(H) if scale is None else scale
    logits_dtype = jnp.promote_types(q.dtype, np.float32)
    logits = jnp.einsum("BTNH,BSNH->BNTS", q, k, preferred_element_type=logits_dtype)
    logits = logits * jnp.asarray(scale, logits.dtype)
    if bias is not None:
        logits = (logits + bias).astype(logits.dtype)
    keep = _combined_mask(T, S, mask, is_causal, q_len, kv_len, local_window_size)
    if keep is not None:
        logits = jnp.where(keep, logits, _large_negative(logits.dtype))
    logits = logits.astype(np.float32)
    probs = softmax(logits, axis=-1).astype(k.dtype)
    encoded = jnp.einsum("BNTS,BSNH->BTNH", probs, v)
    if q_len is not None:
        valid = jnp.arange(T)[None, :] < q_len[:, None]
        encoded = encoded * valid[:, :, None, None].astype(encoded.dtype)
    encoded = jnp.reshape(encoded, out_shape)
    if not return_residual:
        return encoded
    lse = jnp.transpose(logsumexp(logits, axis=-1).astype(k.dtype), (0, 2, 1))
    return encoded, lax.stop_gradient(jnp.reshape(lse, out_shape[:-1]))
