"""jax.nn.dot_product_attention against a numpy reference (per head, with every kind of
mask), grads against finite differences, jit against eager; the small activations
against numpy formulas."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.nn as nn
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

RNG = np.random.default_rng(0)
B, T, S, N, K, H = 2, 5, 6, 4, 2, 8
Q = RNG.normal(size=(B, T, N, H)).astype(np.float32)
KEY = RNG.normal(size=(B, S, K, H)).astype(np.float32)
VAL = RNG.normal(size=(B, S, K, H)).astype(np.float32)


def _reference(q, k, v, bias=None, keep=None, scale=None):
    """Attention head by head in float64: query head n reads key/value head n // (N/K)."""
    b, t, n, h = q.shape
    group = n // k.shape[2]
    scale = 1 / np.sqrt(h) if scale is None else scale
    out = np.zeros(q.shape)
    for bi in range(b):
        for ni in range(n):
            logits = q[bi, :, ni].astype(np.float64) @ k[bi, :, ni // group].T * scale
            if bias is not None:
                logits = logits + np.broadcast_to(bias, (b, n, t, k.shape[1]))[bi, ni]
            if keep is not None:
                m = np.broadcast_to(keep, (b, n, t, k.shape[1]))[bi, ni]
                logits = np.where(m, logits, -1e30)
            p = np.exp(logits - logits.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            out[bi, :, ni] = p @ v[bi, :, ni // group]
    return out


def _close(a, b):
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=2e-5, atol=2e-5)


def test_plain_bias_and_mask():
    bias = RNG.normal(size=(1, N, T, S)).astype(np.float32)
    mask = RNG.uniform(size=(B, 1, T, S)) > 0.3
    mask[..., 0] = True                  # no fully masked row
    _close(nn.dot_product_attention(Q, KEY, VAL), _reference(Q, KEY, VAL))
    _close(nn.dot_product_attention(Q, KEY, VAL, bias, mask, scale=0.7),
           _reference(Q, KEY, VAL, bias, mask, scale=0.7))
    _close(nn.dot_product_attention(Q[0], KEY[0], VAL[0]),
           _reference(Q[:1], KEY[:1], VAL[:1])[0])


def test_causal_window_and_lengths():
    tpos, spos = np.arange(T)[:, None], np.arange(S)[None, :]
    _close(nn.dot_product_attention(Q, KEY, VAL, is_causal=True),
           _reference(Q, KEY, VAL, keep=(tpos >= spos)[None, None]))
    _close(nn.dot_product_attention(Q, KEY, VAL, local_window_size=(1, 2)),
           _reference(Q, KEY, VAL, keep=((tpos <= spos + 1) & (tpos >= spos - 2))[None, None]))
    q_len, kv_len = np.array([3, 5], np.int32), np.array([4, 6], np.int32)
    out = nn.dot_product_attention(Q, KEY, VAL, query_seq_lengths=q_len,
                                   key_value_seq_lengths=kv_len)
    keep = (np.arange(S)[None, None, None, :] < kv_len[:, None, None, None])
    ref = _reference(Q, KEY, VAL, keep=keep)
    ref *= (np.arange(T)[None, :] < q_len[:, None])[:, :, None, None]
    _close(out, ref)
    o, lse = nn.dot_product_attention(Q, KEY, VAL, is_causal=True, return_residual=True)
    assert lse.shape == (B, T, N)


def test_grads_jit_and_errors():
    mask = np.ones((1, 1, T, S), bool)
    f = lambda q, k, v: nn.dot_product_attention(q, k, v, mask=mask, is_causal=True)  # noqa
    check_grads(f, (Q, KEY, VAL), order=1, modes=["rev"], rtol=2e-2)
    _close(jax.jit(f)(Q, KEY, VAL), np.asarray(f(Q, KEY, VAL), np.float64))
    with pytest.raises(ValueError, match="multiple of key/value heads"):
        nn.dot_product_attention(Q[:, :, :3], KEY, VAL)
    with pytest.raises(ValueError, match="mask dtype"):
        nn.dot_product_attention(Q, KEY, VAL, mask=mask.astype(np.float32))
    with pytest.raises(NotImplementedError, match="cudnn"):
        nn.dot_product_attention(Q, KEY, VAL, implementation="cudnn")


def test_small_activations():
    x = np.linspace(0.01, 5, 9).astype(np.float32)
    _close(nn.log1mexp(x), np.log(-np.expm1(-x.astype(np.float64))))
    check_grads(nn.log1mexp, (x,), order=1)
    z = np.linspace(-2, 2, 9).astype(np.float32)
    _close(nn.sparse_plus(z), np.where(z <= -1, 0, np.where(z >= 1, z, (z + 1) ** 2 / 4)))
    _close(nn.sparse_sigmoid(z), np.clip((z + 1) / 2, 0, 1))
    _close(nn.identity(z), z)
    _close(nn.tanh(z), np.tanh(z))
    _close(nn.logmeanexp(Q, axis=(1, 3)),
           np.log(np.mean(np.exp(Q.astype(np.float64)), axis=(1, 3))))
    w = Q > 0
    expect = np.log(np.sum(np.exp(Q.astype(np.float64)) * w, axis=1) / w.sum(axis=1))
    _close(nn.logmeanexp(Q, axis=1, where=w), expect)


def test_scaled_matmul_dequantizes_blocks():
    a = RNG.normal(size=(2, 3, 64)).astype(np.float32)
    b = RNG.normal(size=(2, 4, 64)).astype(np.float32)
    sa = RNG.uniform(1, 2, (2, 3, 2)).astype(np.float32)
    sb = RNG.uniform(1, 2, (2, 4, 2)).astype(np.float32)
    ref = np.einsum("bmk,bnk->bmn", a * np.repeat(sa, 32, -1), b * np.repeat(sb, 32, -1))
    _close(nn.scaled_matmul(a, b, sa, sb), ref)
    assert nn.get_scaled_dot_general_config("mxfp8").block_size == 32
    assert nn.get_scaled_dot_general_config("nvfp4").block_size == 16
    with pytest.raises(ValueError, match="Unsupported mode"):
        nn.get_scaled_dot_general_config("fp16")
    with pytest.raises(NotImplementedError, match="float8"):
        nn.scaled_dot_general(a, b, (((2,), (2,)), ((0,), (0,))))
