"""The gamma family: ``gamma`` and ``loggamma`` (the ``random_gamma`` primitive), and
what is built on gamma draws: ``beta``, ``dirichlet``, ``chisquare``, ``f``, ``t``,
``generalized_normal``, ``ball``.

Gamma draws follow JAX's algorithm exactly: every element gets its own key (a split of
the caller's), and Marsaglia and Tsang's rejection method runs per element (a ``while``
loop, batched over the elements) until it accepts, drawing normal and uniform variates
from that element's key; ``a < 1`` is boosted to ``a + 1`` and multiplied by
``u ** (1 / a)`` (in log space for ``loggamma``).  The draws are differentiable in ``a``
by implicit reparameterisation (``lax.random_gamma_grad``).
"""
from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.api import vmap
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite
from tinyjax.random._compiled import compiled_when_large
from tinyjax.random._bits import split_data, split_n
from tinyjax.random._discrete import rademacher_draws
from tinyjax.random._keys import key_data_of
from tinyjax.random._normal import normal_draws
from tinyjax.random._uniform import uniform_draws
from tinyjax.random._util import (canonical_shape, check_shape, convert, float_dtype, param,
                                  shape_of_params)

__all__ = ["ball", "beta", "chisquare", "dirichlet", "f", "gamma", "generalized_normal",
           "loggamma", "random_gamma_p", "t"]


def _gamma_one(key: Any, alpha: Any, log_space: bool) -> Any:
    """One Gamma(alpha) draw (or its log) from one raw key (Marsaglia and Tsang)."""
    dtype = get_aval(alpha).dtype
    zero, one = jnp.zeros((), dtype), jnp.ones((), dtype)
    boost = alpha >= one
    alpha_orig = alpha
    alpha = jnp.where(boost, alpha, alpha + one)
    d = alpha - np.asarray(1 / 3, dtype)
    c = np.asarray(1 / 3, dtype) / jnp.sqrt(d)

    def reject(state):
        _, x2, v, u = state
        return ((u >= one - np.asarray(0.0331, dtype) * (x2 * x2))
                & (jnp.log(u) >= x2 * np.asarray(0.5, dtype) + d * (one - v + jnp.log(v))))

    def propose(state):
        def next_normal(kxv):
            k, sub = split_n(kxv[0], 2)
            x = normal_draws(sub, (), dtype)
            return k, x, one + x * c
        k, x_key, u_key = split_n(state[0], 3)
        _, x, v = lax.while_loop(lambda kxv: kxv[2] <= zero, next_normal,
                                 (x_key, zero, -one))
        u = uniform_draws(u_key, (), dtype, 0.0, 1.0)
        return k, x * x, v * v * v, u

    key, subkey = split_n(key, 2)
    _, _, v, _ = lax.while_loop(reject, propose, (key, zero, one, one + one))
    if log_space:
        u = uniform_draws(subkey, (), dtype, 0.0, 1.0)
        log_u = lax.log1p(lax.neg(u))              # -Exponential(1)
        log_boost = jnp.where(boost | (log_u == zero), zero, log_u * (one / alpha_orig))
        return jnp.log(d) + jnp.log(v) + log_boost
    u = one - uniform_draws(subkey, (), dtype, 0.0, 1.0)
    return d * v * jnp.where(boost, one, lax.pow(u, one / alpha_orig))


def _random_gamma(keys: Any, a: Any, *, log_space: bool) -> Any:
    """Draws for every element of ``a`` from raw keys of shape ``a.shape[:k] + (2,)``:
    each key is split into one key per element of the trailing axes."""
    a_shape = get_aval(a).shape
    key_batch = get_aval(keys).ndim - 1
    per_key = math.prod(a_shape[key_batch:])
    flat_keys = jnp.reshape(keys, (-1, 2))
    element_keys = vmap(lambda k: split_data(k, (per_key,)))(flat_keys)
    draws = vmap(lambda k, alpha: _gamma_one(k, alpha, log_space))(
        jnp.reshape(element_keys, (-1, 2)), jnp.reshape(a, (-1,)))
    return jnp.reshape(draws, a_shape)


random_gamma_p = Primitive("random_gamma")
define_composite(random_gamma_p, _random_gamma)


def _random_gamma_abstract_eval(keys, a, *, log_space):
    if keys.dtype != np.uint32 or keys.shape[-1:] != (2,) or \
            keys.shape[:-1] != a.shape[:keys.ndim - 1]:
        raise TypeError(f"random_gamma expects uint32 key data of shape a.shape[:k] + (2,), "
                        f"got keys {keys.str_short()} and a {a.str_short()}")
    return ShapedArray(a.shape, a.dtype)


random_gamma_p.def_abstract_eval(_random_gamma_abstract_eval)


def _random_gamma_batch(vals, dims, *, log_space):
    keys, a = vals
    size = next(get_aval(v).shape[d] for v, d in zip(vals, dims) if d is not None)
    keys = batching.moveaxis(keys, dims[0], 0, size)
    a = batching.moveaxis(a, dims[1], 0, size)
    return random_gamma_p.bind(keys, a, log_space=log_space), 0


batching.primitive_batchers[random_gamma_p] = _random_gamma_batch


def _gamma_grad(sample: Any, a: Any, log_space: bool) -> Any:
    """d sample / d a by implicit reparameterisation (of exp(sample) in log space)."""
    if not log_space:
        return lax.random_gamma_grad(a, sample)
    x = jnp.exp(sample)
    x = jnp.where(x == 0, dtypes.finfo(x.dtype).tiny, x)
    return lax.random_gamma_grad(a, x) / x


ad.defjvp2(random_gamma_p, None,
           lambda t, ans, keys, a, *, log_space: t * _gamma_grad(ans, a, log_space))


def _gamma_draws(data: Any, a: Any, shape: tuple[int, ...], dtype: np.dtype,
                 log_space: bool) -> Any:
    return random_gamma_p.bind(data, param(a, dtype, shape), log_space=log_space)


def _gamma_common(name: str, key: Any, a: Any, shape: Any, dtype: Any,
                  log_space: bool) -> Any:
    data, _ = key_data_of(key, name)
    dtype = float_dtype(dtype, name)
    shape = shape_of_params(name, shape, as_operand(a))
    return _gamma_draws(data, a, shape, dtype, log_space)


@compiled_when_large(("shape", "dtype"), ("a",))
def gamma(key: Any, a: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Gamma(a, 1) samples, differentiable with respect to ``a``."""
    return _gamma_common("gamma", key, a, shape, dtype, False)


@compiled_when_large(("shape", "dtype"), ("a",))
def loggamma(key: Any, a: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Logs of Gamma(a, 1) samples, computed in log space (accurate for small ``a``,
    where the samples themselves underflow)."""
    return _gamma_common("loggamma", key, a, shape, dtype, True)


@compiled_when_large(("shape", "dtype"), ("a", "b"))
def beta(key: Any, a: Any, b: Any, shape: Sequence[int] | None = None,
         dtype: Any = None) -> Any:
    """Beta(a, b) samples: ``Ga / (Ga + Gb)`` from log-space gamma draws."""
    data, _ = key_data_of(key, "beta")
    dtype = float_dtype(dtype, "beta")
    shape = shape_of_params("beta", shape, as_operand(a), as_operand(b))
    key_a, key_b = split_n(data, 2)
    log_ga = _gamma_draws(key_a, a, shape, dtype, True)
    log_gb = _gamma_draws(key_b, b, shape, dtype, True)
    log_max = lax.max(log_ga, log_gb)
    ga, gb = jnp.exp(log_ga - log_max), jnp.exp(log_gb - log_max)
    return ga / (ga + gb)


@compiled_when_large(("shape", "dtype"), ("alpha",))
def dirichlet(key: Any, alpha: Any, shape: Sequence[int] | None = None,
              dtype: Any = None) -> Any:
    """Dirichlet(alpha) samples over the last axis: a softmax of log-gamma draws."""
    data, _ = key_data_of(key, "dirichlet")
    dtype = float_dtype(dtype, "dirichlet")
    alpha = as_operand(alpha)
    ashape = get_aval(alpha).shape
    if len(ashape) < 1:
        raise ValueError(f"dirichlet requires alpha.ndim >= 1, got alpha.ndim == "
                         f"{len(ashape)}")
    if shape is None:
        shape = ashape[:-1]
    else:
        shape = canonical_shape(shape)
        check_shape("dirichlet", shape, ashape[:-1])
    full = tuple(shape) + ashape[-1:]
    log_g = _gamma_draws(data, alpha, full, dtype, True)
    unnormalized = jnp.exp(log_g - lax.stop_gradient(jnp.max(log_g, -1, keepdims=True)))
    return unnormalized / jnp.sum(unnormalized, -1, keepdims=True)


def _chisquare_draws(data: Any, df: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    half_df = convert(df, dtype) / 2
    return jnp.exp(_gamma_draws(data, half_df, shape, dtype, True)) * 2


@compiled_when_large(("shape", "dtype"), ("df",))
def chisquare(key: Any, df: Any, shape: Sequence[int] | None = None,
              dtype: Any = None) -> Any:
    """Chi-square samples with ``df`` degrees of freedom: twice Gamma(df / 2)."""
    data, _ = key_data_of(key, "chisquare")
    dtype = float_dtype(dtype, "chisquare")
    shape = shape_of_params("chisquare", shape, as_operand(df))
    return _chisquare_draws(data, df, shape, dtype)


@compiled_when_large(("shape", "dtype"), ("dfnum", "dfden"))
def f(key: Any, dfnum: Any, dfden: Any, shape: Sequence[int] | None = None,
      dtype: Any = None) -> Any:
    """F-distribution samples: the ratio of two chi-square draws, each over its degrees
    of freedom."""
    data, _ = key_data_of(key, "f")
    dtype = float_dtype(dtype, "f")
    dfnum, dfden = as_operand(dfnum), as_operand(dfden)
    shape = shape_of_params("f", shape, dfnum, dfden)
    key_den, key_num = split_n(data, 2)
    num = _chisquare_draws(key_num, dfnum, shape, dtype) / convert(dfnum, dtype)
    den = _chisquare_draws(key_den, dfden, shape, dtype) / convert(dfden, dtype)
    return num / den


@compiled_when_large(("shape", "dtype"), ("df",))
def t(key: Any, df: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Student's t samples: ``n * sqrt(df / 2 / g)`` with ``n`` normal and ``g`` a
    Gamma(df / 2) draw."""
    data, _ = key_data_of(key, "t")
    dtype = float_dtype(dtype, "t")
    shape = shape_of_params("t", shape, as_operand(df))
    key_n, key_g = split_n(data, 2)
    n = normal_draws(key_n, shape, dtype)
    half_df = param(df, dtype, shape) / 2
    g = _gamma_draws(key_g, half_df, shape, dtype, False)
    return n * jnp.sqrt(half_df / g)


def _generalized_normal_draws(data: Any, p: Any, shape: tuple[int, ...],
                              dtype: np.dtype) -> Any:
    key_g, key_r = split_n(data, 2)
    g = _gamma_draws(key_g, 1 / p, shape, dtype, False)
    return rademacher_draws(key_r, shape, dtype) * g ** (1 / p)


@compiled_when_large(("shape", "dtype"))
def generalized_normal(key: Any, p: float, shape: Sequence[int] = (),
                       dtype: Any = None) -> Any:
    """Samples of the generalized normal distribution with density proportional to
    ``exp(-|x|**p)``: a random sign times ``Gamma(1/p) ** (1/p)``."""
    data, _ = key_data_of(key, "generalized_normal")
    dtype = float_dtype(dtype, "generalized_normal")
    return _generalized_normal_draws(data, p, canonical_shape(shape), dtype)


@compiled_when_large(("d", "p", "shape", "dtype"))
def ball(key: Any, d: int, p: float = 2, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Points uniform in the ``d``-dimensional unit ``p``-norm ball (Barthe, Guedon,
    Mendelson and Naor): generalized normal draws scaled by their p-norm plus an
    exponential draw."""
    data, _ = key_data_of(key, "ball")
    dtype = float_dtype(dtype, "ball")
    d = operator.index(d)
    shape = canonical_shape(shape)
    k1, k2 = split_n(data, 2)
    g = _generalized_normal_draws(k1, p, (*shape, d), dtype)
    e = -lax.log1p(lax.neg(as_operand(uniform_draws(k2, shape, dtype, 0.0, 1.0))))
    return g / (((jnp.abs(g) ** p).sum(-1) + e) ** (1 / p))[..., None]
