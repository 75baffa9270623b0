"""Discrete distributions: ``bernoulli``, ``rademacher``, ``randint``, ``categorical``,
``geometric``, ``poisson``, ``binomial``, ``multinomial`` (JAX's algorithms: the
rejection samplers draw the same keys and uniforms as JAX's)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
import tinyjax.numpy as jnp
from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._bits import random_bits, split_data, split_n
from tinyjax.random._continuous import gumbel_draws
from tinyjax.random._keys import key_data_of
from tinyjax.random._uniform import uniform_draws
from tinyjax.random._util import (bcast, broadcast_to_rank, canonical_shape, check_shape, const,
                                  float_dtype, int_dtype, shape_of_params)

__all__ = ["bernoulli", "binomial", "categorical", "geometric", "multinomial", "poisson",
           "rademacher", "randint"]


@compiled_when_large(("shape", "dtype"))
def rademacher(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Random signs, -1 or +1 with equal probability."""
    data, _ = key_data_of(key, "rademacher")
    dtype = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    return rademacher_draws(data, canonical_shape(shape), dtype)


def rademacher_draws(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    """-1 or +1 of ``dtype`` from raw key data: ``2 * bernoulli(0.5) - 1``."""
    b = as_operand(bernoulli_draws(data, 0.5, shape))
    return lax.convert_element_type(lax.sub(lax.mul(const(np.int32, 2),
                                                    lax.convert_element_type(b, np.int32)),
                                            const(np.int32, 1)), dtype)


def bernoulli_draws(data: Any, p: Any, shape: tuple[int, ...] | None,
                    mode: str = "low") -> Any:
    """Bernoulli draws from raw key data: ``u < p``, or (``mode="high"``) ``u2 < p - u1``
    with a second uniform ``u2`` scaled below the first's resolution (probabilities
    below float epsilon are then drawn too)."""
    if mode not in ("high", "low"):
        raise ValueError(f"got mode='{mode}', expected 'high' or 'low'")
    p = as_operand(p)
    pdt = get_aval(p).dtype
    if not dtypes.is_float(pdt):
        raise TypeError(f"bernoulli probability `p` must have a floating dtype, got {pdt}.")
    pshape = get_aval(p).shape
    if shape is None:
        shape = pshape
    else:
        check_shape("bernoulli", shape, pshape)
    p = bcast(broadcast_to_rank(lax.convert_element_type(p, pdt), len(shape)), shape)
    if mode == "high":
        u = as_operand(uniform_draws(data, (2, *shape), pdt, 0.0, 1.0))
        u1, u2 = lax.index_in_dim(u, 0, 0, False), lax.index_in_dim(u, 1, 0, False)
        u2 = lax.mul(u2, const(pdt, 2.0 ** -dtypes.finfo(pdt).nmant))
        return lax.lt(u2, lax.sub(p, u1))
    return lax.lt(as_operand(uniform_draws(data, shape, pdt, 0.0, 1.0)), p)


@compiled_when_large(("shape", "mode"), ("p",))
def bernoulli(key: Any, p: Any = 0.5, shape: Sequence[int] | None = None,
              mode: str = "low") -> Any:
    """Booleans that are True with probability ``p``: ``uniform < p`` (``mode="high"``
    resolves probabilities far below float epsilon, from a second uniform draw)."""
    data, _ = key_data_of(key, "bernoulli")
    return bernoulli_draws(data, p, None if shape is None else canonical_shape(shape), mode)


def _clip_to_dtype(val: Any, dtype: np.dtype) -> Any:
    """``val`` (an integer array) clipped to the range of ``dtype`` and converted."""
    vdt = get_aval(val).dtype
    info_d, info_v = dtypes.iinfo(dtype), dtypes.iinfo(vdt)
    lo = const(vdt, max(int(info_d.min), int(info_v.min)))
    hi = const(vdt, min(int(info_d.max), int(info_v.max)))
    shape = get_aval(val).shape
    return lax.convert_element_type(lax.clamp(bcast(lo, shape), val, bcast(hi, shape)),
                                    dtype)


def _int_operand(x: Any) -> Any:
    x = as_operand(x)
    dt = get_aval(x).dtype
    if not dtypes.is_int(dt):
        x = lax.convert_element_type(x, dtypes.canonicalize_dtype(np.int64))
    elif get_aval(x).weak_type:
        x = lax.convert_element_type(x, dt)
    return x


@compiled_when_large(("shape", "dtype"), ("minval", "maxval"))
def randint(key: Any, shape: Sequence[int], minval: Any, maxval: Any,
            dtype: Any = None) -> Any:
    """Integers uniform in ``[minval, maxval)``: two draws of bits combined modulo the
    span (so the bias for spans that are not powers of two is tiny)."""
    data, _ = key_data_of(key, "randint")
    dtype = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    if not dtypes.is_int(dtype):
        raise TypeError(f"randint only accepts integer dtypes, got {dtype}")
    shape = canonical_shape(shape)
    minval, maxval = _int_operand(minval), _int_operand(maxval)
    check_shape("randint", shape, get_aval(minval).shape, get_aval(maxval).shape)
    nbits = dtypes.iinfo(dtype).bits
    mdt = get_aval(maxval).dtype
    top = _clip_to_dtype(const(dtype, dtypes.iinfo(dtype).max), mdt)
    maxval_out_of_range = lax.gt(maxval, bcast(top, get_aval(maxval).shape))
    minval = bcast(broadcast_to_rank(_clip_to_dtype(minval, dtype), len(shape)), shape)
    maxval = bcast(broadcast_to_rank(_clip_to_dtype(maxval, dtype), len(shape)), shape)
    maxval_out_of_range = bcast(broadcast_to_rank(maxval_out_of_range, len(shape)), shape)

    k = split_data(data, (2,))
    higher = random_bits(lax.index_in_dim(k, 0, 0, False), nbits, shape)
    lower = random_bits(lax.index_in_dim(k, 1, 0, False), nbits, shape)
    udt = np.dtype(f"uint{nbits}")
    span = lax.convert_element_type(lax.sub(maxval, minval), udt)
    span = lax.select(lax.le(maxval, minval), lax.full(shape, 1, udt), span)
    span = lax.select(lax.bitwise_and(maxval_out_of_range, lax.gt(maxval, minval)),
                      lax.add(span, lax.full(shape, 1, udt)), span)
    multiplier = lax.rem(lax.full(shape, 2 ** (nbits // 2), udt), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher, span), multiplier), lax.rem(lower, span))
    offset = lax.rem(offset, span)
    return lax.add(minval, lax.convert_element_type(offset, dtype))


@compiled_when_large(("axis", "shape", "replace", "mode"), ("logits",))
def categorical(key: Any, logits: Any, axis: int = -1, shape: Sequence[int] | None = None,
                replace: bool = True, mode: str | None = None) -> Any:
    """Samples of a categorical distribution with unnormalised log-probabilities
    ``logits``: the Gumbel-max trick, or (``replace=False``) the top-k of logits plus
    Gumbel noise, which draws without replacement.  ``mode`` is :func:`gumbel`'s."""
    data, _ = key_data_of(key, "categorical")
    logits = as_operand(logits)
    lshape = get_aval(logits).shape
    if axis >= 0:
        axis -= len(lshape)
    batch_shape = tuple(np.delete(np.array(lshape, dtype=np.int64), axis).tolist())
    if shape is None:
        shape = batch_shape
    else:
        shape = canonical_shape(shape)
        check_shape("categorical", shape, batch_shape)
    mode = "low" if mode is None else mode
    if mode not in ("highest", "high", "low"):
        raise ValueError(f"Must provide valid mode for gumbel got: {mode}")
    prefix = shape[:len(shape) - len(batch_shape)]
    index_dtype = dtypes.canonicalize_dtype(np.int64)
    ldt = get_aval(logits).dtype
    if not replace:
        noisy = lax.add(logits, gumbel_draws(data, lshape, ldt, mode))
        k = int(np.prod(prefix))
        if k > lshape[axis]:
            raise ValueError(f"Number of samples without replacement ({k}) cannot exceed "
                             f"number of categories ({lshape[axis]}).")
        moved = jnp.moveaxis(noisy, axis, -1)
        _, indices = lax.top_k(moved, k)
        nd = get_aval(indices).ndim
        indices = lax.reshape(indices, shape, (nd - 1, *range(nd - 1)))
        return lax.convert_element_type(indices, index_dtype)
    logits_shape = list(shape[len(shape) - len(batch_shape):])
    logits_shape.insert(axis % len(lshape), lshape[axis])
    full_shape = (*prefix, *logits_shape)
    g = gumbel_draws(data, full_shape, ldt, mode)
    lg = lax.broadcast_in_dim(logits, full_shape, tuple(range(len(prefix), len(full_shape))))
    return lax.argmax(lax.add(g, lg), axis % len(full_shape), index_dtype)


@compiled_when_large(("shape", "dtype"), ("p",))
def geometric(key: Any, p: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Geometric samples (trials up to the first success, support 1, 2, ...):
    ``floor(log(u) / log1p(-p)) + 1``."""
    data, _ = key_data_of(key, "geometric")
    dtype = int_dtype(dtype, "geometric")
    (p,) = promote_args_inexact("geometric", p)
    shape = shape_of_params("geometric", shape, p)
    u = as_operand(uniform_draws(data, shape, get_aval(p).dtype, 0.0, 1.0))
    u = jnp.where(u == 0, 1, u)
    g = lax.floor(lax.div(lax.log(u), bcast(broadcast_to_rank(lax.log1p(lax.neg(p)), len(shape)),
                                            shape))) + 1
    return g.astype(dtype)


# ---------------------------------------------------------------------------
# Poisson: Knuth's multiplication method below 10, Hoermann's transformed rejection above
# ---------------------------------------------------------------------------

def _poisson_knuth(data, lam, shape, dtype, max_iters):
    def body(carry):
        i, k, rng, log_prod = carry
        rng, subkey = split_n(rng, 2)
        k = jnp.where(log_prod > -lam, k + 1, k)
        u = uniform_draws(subkey, shape, np.dtype(np.float32), 0.0, 1.0)
        return i + 1, k, rng, log_prod + jnp.log(u)

    def cond(carry):
        i, log_prod = carry[0], carry[3]
        return jnp.any(log_prod > -lam) & (i < max_iters)
    init = (0, jnp.zeros(shape, dtype), data, jnp.zeros(shape, np.float32))
    k = lax.while_loop(cond, body, init)[1]
    return (k - 1).astype(dtype)


def _rejection_loop(propose, data, shape, dtype, max_iters):
    """JAX's rejection loops: every round splits the key in three and draws a proposal
    ``k, accept = propose(key1, key2)`` for every element; an accepted proposal is kept
    (a later accepted one replaces it), until all elements have accepted one."""
    def body(carry):
        i, k_out, accepted, rng = carry
        rng, k0, k1 = split_n(rng, 3)
        k, accept = propose(k0, k1)
        return i + 1, jnp.where(accept, k, k_out), accepted | accept, rng

    def cond(carry):
        return jnp.any(~carry[2]) & (carry[0] < max_iters)
    init = (0, jnp.full(shape, -1, dtype), jnp.zeros(shape, bool), data)
    return lax.while_loop(cond, body, init)[1]


def _poisson_rejection(data, lam, shape, dtype, max_iters):
    log_lam = jnp.log(lam)
    b = 0.931 + 2.53 * jnp.sqrt(lam)
    a = -0.059 + 0.02483 * b
    inv_alpha = 1.1239 + 1.1328 / (b - 3.4)
    v_r = 0.9277 - 3.6224 / (b - 2)

    def propose(k0, k1):
        u = uniform_draws(k0, shape, lam.dtype, 0.0, 1.0) - 0.5
        v = uniform_draws(k1, shape, lam.dtype, 0.0, 1.0)
        u_shifted = 0.5 - jnp.abs(u)
        k = jnp.floor((2 * a / u_shifted + b) * u + lam + 0.43)
        s = jnp.log(v * inv_alpha / (a / (u_shifted * u_shifted) + b))
        t = -lam + k * log_lam - lax.lgamma(k + 1)
        accept1 = (u_shifted >= 0.07) & (v <= v_r)
        reject = (k < 0) | ((u_shifted < 0.013) & (v > u_shifted))
        return k, accept1 | (~reject & (s <= t))
    return _rejection_loop(propose, data, shape, lam.dtype, max_iters).astype(dtype)


@compiled_when_large(("shape", "dtype"), ("lam",))
def poisson(key: Any, lam: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Poisson samples with rate ``lam`` (computed in float32, as JAX)."""
    data, _ = key_data_of(key, "poisson")
    dtype = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    lam = as_operand(lam)
    shape = get_aval(lam).shape if shape is None else canonical_shape(shape)
    lam = jnp.broadcast_to(lam, shape).astype(np.float32)
    use_knuth = jnp.isnan(lam) | (lam < 10)
    max_iters = int(dtypes.iinfo(dtype).max)
    knuth = _poisson_knuth(data, jnp.where(use_knuth, lam, 0.0), shape, dtype, max_iters)
    rejection = _poisson_rejection(data, jnp.where(use_knuth, 1e5, lam), shape, dtype,
                                   max_iters)
    result = jnp.where(use_knuth, knuth, rejection)
    return jnp.where(lam == 0, jnp.zeros_like(result), result)


# ---------------------------------------------------------------------------
# binomial: inversion by geometric sums for n p <= 10, BTRS (Hoermann) above
# ---------------------------------------------------------------------------

# log k! - (Stirling's approximation to it), k = 0..9
_STIRLING_TAIL = (0.0810614667953272, 0.0413406959554092, 0.0276779256849983,
                  0.02079067210376509, 0.0166446911898211, 0.0138761288230707,
                  0.0118967099458917, 0.0104112652619720, 0.00925546218271273,
                  0.00833056343336287)


def _stirling_approx_tail(k):
    kc = jnp.clip(k, 0.0, 9.0)
    kp1sq = (kc + 1) * (kc + 1)
    approx = (1.0 / 12 - (1.0 / 360 - 1.0 / 1260 / kp1sq) / kp1sq) / (kc + 1)
    table = jnp.zeros_like(k)
    for i, value in enumerate(_STIRLING_TAIL):
        table = jnp.where(jnp.floor(kc) == i, value, table)
    return jnp.where(k <= 9, table, approx)


def _binomial_inversion(data, count, prob, shape, dtype, max_iters):
    log1m_prob = jnp.log1p(-prob)

    def body(carry):
        i, num_geom, geom_sum, rng = carry
        subkey, rng = split_n(rng, 2)
        num_geom = jnp.where(geom_sum <= count, num_geom + 1, num_geom)
        u = uniform_draws(subkey, shape, prob.dtype, 0.0, 1.0)
        return i + 1, num_geom, geom_sum + jnp.ceil(jnp.log(u) / log1m_prob), rng

    def cond(carry):
        return jnp.any(carry[2] <= count) & (carry[0] < max_iters)
    init = (0, jnp.zeros(shape, prob.dtype), jnp.zeros(shape, prob.dtype), data)
    k = lax.while_loop(cond, body, init)[1]
    return (k - 1).astype(dtype)


def _btrs(data, count, prob, shape, dtype, max_iters):
    stddev = jnp.sqrt(count * prob * (1 - prob))
    b = 1.15 + 2.53 * stddev
    a = -0.0873 + 0.0248 * b + 0.01 * prob
    c = count * prob + 0.5
    v_r = 0.92 - 4.2 / b
    r = prob / (1 - prob)
    alpha = (2.83 + 5.1 / b) * stddev
    m = jnp.floor((count + 1) * prob)

    def propose(k0, k1):
        u = uniform_draws(k0, shape, prob.dtype, 0.0, 1.0)
        v = uniform_draws(k1, shape, prob.dtype, 0.0, 1.0)
        u = u - 0.5
        us = 0.5 - jnp.abs(u)
        accept1 = (us >= 0.07) & (v <= v_r)
        k = jnp.floor((2 * a / us + b) * u + c)
        reject = (k < 0) | (k > count)
        v = jnp.log(v * alpha / (a / (us * us) + b))
        ub = ((m + 0.5) * jnp.log((m + 1) / (r * (count - m + 1)))
              + (count + 1) * jnp.log((count - m + 1) / (count - k + 1))
              + (k + 0.5) * jnp.log(r * (count - k + 1) / (k + 1))
              + _stirling_approx_tail(m) + _stirling_approx_tail(count - m)
              - _stirling_approx_tail(k) - _stirling_approx_tail(count - k))
        return k, accept1 | (~reject & (v <= ub))
    return _rejection_loop(propose, data, shape, prob.dtype, max_iters).astype(dtype)


def _binomial_draws(data, n, p, shape, dtype):
    (p,) = promote_args_inexact("binomial", p)
    count = jnp.broadcast_to(jnp.asarray(n).astype(p.dtype), shape)
    prob = jnp.broadcast_to(p, shape)
    p_lt_half = prob < 0.5
    q = jnp.where(p_lt_half, prob, 1.0 - prob)
    count_nan_or_neg = jnp.isnan(count) | (count < 0.0)
    count_inf = jnp.isinf(count)
    q_nan, q_neg = jnp.isnan(q), q < 0.0
    q = jnp.where(q_nan | q_neg, 0.01, q)
    use_inversion = count_nan_or_neg | (count * q <= 10.0)
    count = jnp.floor(count)
    max_iters = float(dtypes.finfo(dtype).max)
    samples = jnp.where(
        use_inversion,
        _binomial_inversion(data, jnp.where(use_inversion, count, 0.0), q, shape, dtype,
                            max_iters),
        _btrs(data, jnp.where(use_inversion, 1e4, count), jnp.where(use_inversion, 0.5, q),
              shape, dtype, max_iters))
    invalid = q_neg | q_nan | count_nan_or_neg
    samples = jnp.where(invalid, np.nan, samples)
    samples = jnp.where(count_inf & ~invalid, np.inf, samples)
    samples = jnp.where(p_lt_half | count_nan_or_neg | q_nan | count_inf, samples,
                        count.astype(dtype) - samples)
    return samples.astype(dtype)


@compiled_when_large(("shape", "dtype"), ("n", "p"))
def binomial(key: Any, n: Any, p: Any, shape: Sequence[int] | None = None,
             dtype: Any = None) -> Any:
    """Binomial samples (as floats): ``n`` trials of success probability ``p``; NaN for
    NaN or negative ``n`` or invalid ``p``, inf for infinite ``n``."""
    data, _ = key_data_of(key, "binomial")
    dtype = float_dtype(dtype, "binomial")
    n, p = as_operand(n), as_operand(p)
    shape = shape_of_params("binomial", shape, n, p)
    return _binomial_draws(data, n, p, shape, dtype)


@compiled_when_large(("shape", "dtype", "unroll"), ("p",))
def multinomial(key: Any, n: Any, p: Any, *, shape: Sequence[int] | None = None,
                dtype: Any = None, unroll: int | bool = 1) -> Any:
    """Multinomial counts of ``n`` trials over the categories of the last axis of ``p``:
    one binomial draw per category, of the trials the previous categories left."""
    data, _ = key_data_of(key, "multinomial")
    n, p = promote_args_inexact("multinomial", n, p)
    shape = get_aval(p).shape if shape is None else canonical_shape(shape)
    n = jnp.broadcast_to(n, shape[:-1])
    p = jnp.moveaxis(jnp.broadcast_to(p, shape), -1, 0)
    remaining = lax.cumsum(p, 0, reverse=True)
    ratios = p / jnp.where(remaining == 0, 1, remaining)
    keys = split_data(data, (shape[-1],))
    out_dtype = float_dtype(dtype, "multinomial")

    def step(remainder, ratio_key):
        ratio, k = ratio_key
        count = _binomial_draws(k, remainder, jnp.clip(ratio, 0, 1), shape[:-1],
                                jnp.result_type(remainder))
        return remainder - count, count
    _, counts = lax.scan(step, n, (ratios, keys), unroll=unroll)
    return jnp.moveaxis(counts, 0, -1).astype(out_dtype)
