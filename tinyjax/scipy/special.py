"""``jax.scipy.special``: special functions written with tinyjax.numpy and lax.

Names, signatures and numerics follow JAX (``jax/_src/scipy/special.py`` and
``jax/_src/ops/special.py``): the same formulas, branch points and custom derivative
rules, so values and gradients agree with JAX's to rounding.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["digamma", "entr", "erf", "erfc", "erfinv", "expit", "gammaln", "log_ndtr",
           "logit", "logsumexp", "ndtr", "ndtri", "xlog1py", "xlogy"]


def _const(x: Any, value: Any) -> Any:
    """``value`` as a (strong) scalar of ``x``'s dtype, broadcast by the jnp ops."""
    return np.asarray(value, dtype=jnp.result_type(x))


def _full(x: Any, value: Any) -> Any:
    return lax.full(jnp.shape(x), value, jnp.result_type(x))


# ---------------------------------------------------------------------------
# logsumexp
# ---------------------------------------------------------------------------

def _reduction_dims(ndim: int, axis: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(positive dims, dims as given) of a reduction over ``axis``."""
    if axis is None:
        dims = tuple(range(ndim))
    elif isinstance(axis, (tuple, list)):
        dims = tuple(int(a) for a in axis)
    else:
        dims = (int(axis),)
    pos = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1) or (ndim == 0 and d not in (0, -1)):
            raise ValueError(f"axis {d} is out of bounds for array of dimension {ndim}")
        pos.append(d % ndim if ndim else 0)
    if len(set(pos)) != len(pos):
        raise ValueError(f"duplicate value in 'axis': {axis}")
    return tuple(sorted(pos)) if ndim else (), dims if ndim else ()


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, where: Any = None) -> Any:
    """``log(sum(b * exp(a), axis))`` computed stably: the (stop-gradient) maximum is
    subtracted before exponentiating.

    With ``return_sign=True`` returns ``(log|sum|, sign(sum))``; otherwise a negative
    sum (possible only with ``b``) gives NaN, as in JAX.
    """
    if b is not None:
        a_arr, b_arr = promote_args_inexact("logsumexp", a, b)
        a_arr = jnp.where(b_arr != 0, a_arr, -jnp.inf)
    else:
        (a_arr,) = promote_args_inexact("logsumexp", a)
        b_arr = a_arr
    pos_dims, dims = _reduction_dims(jnp.ndim(a_arr), axis)
    amax = jnp.max(a_arr, axis=dims, keepdims=keepdims, where=where, initial=-jnp.inf)
    amax = lax.stop_gradient(jnp.where(jnp.isfinite(amax), amax, jnp.zeros_like(amax)))
    amax_with_dims = amax if keepdims else lax.expand_dims(amax, pos_dims)
    exp_a = lax.exp(lax.sub(a_arr, jnp.broadcast_to(amax_with_dims, jnp.shape(a_arr))))
    if b is not None:
        exp_a = lax.mul(exp_a, b_arr)
    sumexp = jnp.sum(exp_a, axis=dims, keepdims=keepdims, where=where)
    sign = lax.sign(sumexp)
    sumexp = lax.abs(sumexp)
    out = lax.add(lax.log(sumexp), amax)
    if return_sign:
        return out, sign
    if b is not None:
        out = jnp.where(sign < 0, jnp.array(np.nan, dtype=jnp.result_type(out)), out)
    return out


# ---------------------------------------------------------------------------
# thin wrappers of lax special functions
# ---------------------------------------------------------------------------

def erf(x: Any) -> Any:
    """The error function."""
    (x,) = promote_args_inexact("erf", x)
    return lax.erf(x)


def erfc(x: Any) -> Any:
    """The complementary error function ``1 - erf(x)``."""
    (x,) = promote_args_inexact("erfc", x)
    return lax.erfc(x)


def erfinv(x: Any) -> Any:
    """The inverse of ``erf`` on (-1, 1)."""
    (x,) = promote_args_inexact("erfinv", x)
    return lax.erf_inv(x)


def gammaln(x: Any) -> Any:
    """``log|Gamma(x)|``."""
    (x,) = promote_args_inexact("gammaln", x)
    return lax.lgamma(x)


def digamma(x: Any) -> Any:
    """The logarithmic derivative of the gamma function."""
    (x,) = promote_args_inexact("digamma", x)
    return lax.digamma(x)


def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``."""
    (x,) = promote_args_inexact("expit", x)
    return lax.logistic(x)


@custom_jvp
def logit(x: Any) -> Any:
    """The inverse of ``expit``: ``log(x / (1 - x))``."""
    (x,) = promote_args_inexact("logit", x)
    return lax.log(lax.div(x, lax.sub(_full(x, 1), x)))


logit.defjvps(lambda g, ans, x: lax.div(g, lax.mul(x, lax.sub(_full(x, 1), x))))


# ---------------------------------------------------------------------------
# xlogy family: 0 where x == 0, with derivative rules that stay finite there
# ---------------------------------------------------------------------------

@custom_jvp
def xlogy(x: Any, y: Any) -> Any:
    """``x * log(y)``, defined as 0 where ``x == 0`` (even for ``y == 0``)."""
    x, y = promote_args_inexact("xlogy", x, y)
    x_ok = x != 0.
    return jnp.where(x_ok, lax.mul(x, lax.log(jnp.where(x_ok, y, 1))), jnp.zeros_like(x))


@xlogy.defjvp
def _xlogy_jvp(primals, tangents):
    x, y = primals
    x_dot, y_dot = tangents
    result = xlogy(x, y)
    return result, (x_dot * jnp.log(y) + y_dot * x / y).astype(result.dtype)


@custom_jvp
def xlog1py(x: Any, y: Any) -> Any:
    """``x * log1p(y)``, defined as 0 where ``x == 0`` (even for ``y == -1``)."""
    x, y = promote_args_inexact("xlog1py", x, y)
    x_ok = x != 0.
    return jnp.where(x_ok, lax.mul(x, lax.log1p(jnp.where(x_ok, y, 0))), jnp.zeros_like(x))


@xlog1py.defjvp
def _xlog1py_jvp(primals, tangents):
    x, y = primals
    x_dot, y_dot = tangents
    result = xlog1py(x, y)
    return result, (x_dot * jnp.log1p(y) + y_dot * x / (1 + y)).astype(result.dtype)


@custom_jvp
def _xlogx(x: Any) -> Any:
    return xlogy(x, x)


@_xlogx.defjvp
def _xlogx_jvp(primals, tangents):
    (x,), (x_dot,) = primals, tangents
    return _xlogx(x), x_dot * (jnp.log(x) + 1)


def entr(x: Any) -> Any:
    """Elementwise entropy ``-x log x`` (0 at 0, ``-inf`` for ``x < 0``)."""
    (x,) = promote_args_inexact("entr", x)
    return lax.select(lax.lt(x, _full(x, 0)), _full(x, -np.inf), lax.neg(_xlogx(x)))


# ---------------------------------------------------------------------------
# normal distribution: ndtr, log_ndtr, ndtri
# ---------------------------------------------------------------------------

def _check_ndtr_dtype(name: str, x: Any) -> Any:
    x = jnp.asarray(x)
    if x.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"x.dtype={x.dtype} is not supported, see docstring for "
                        f"supported types.")
    return x


def ndtr(x: Any) -> Any:
    """The standard normal CDF, ``0.5 * erfc(-x / sqrt(2))`` evaluated without
    cancellation on both sides. Float32 and float64 inputs only (as JAX)."""
    return _ndtr(_check_ndtr_dtype("ndtr", x))


def _ndtr(x: Any) -> Any:
    dtype = np.dtype(x.dtype).type
    half_sqrt_2 = dtype(0.5) * np.sqrt(2., dtype=dtype)
    w = x * half_sqrt_2
    z = lax.abs(w)
    y = jnp.where(z < half_sqrt_2, dtype(1.) + lax.erf(w),
                  jnp.where(w > dtype(0.), dtype(2.) - lax.erfc(z), lax.erfc(z)))
    return dtype(0.5) * y


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 1, -2))


def _log_ndtr_asymptotic_series(x: Any, series_order: int) -> Any:
    dtype = np.dtype(x.dtype).type
    if series_order <= 0:
        return np.array(1, dtype)
    x_2 = lax.square(x)
    even_sum = jnp.zeros_like(x)
    odd_sum = jnp.zeros_like(x)
    x_2n = x_2
    for n in range(1, series_order + 1):
        y = np.array(_double_factorial(2 * n - 1), dtype) / x_2n
        if n % 2:
            odd_sum = odd_sum + y
        else:
            even_sum = even_sum + y
        x_2n = x_2n * x_2
    return dtype(1.) + even_sum - odd_sum


def _log_ndtr_lower(x: Any, series_order: int) -> Any:
    """Asymptotic expansion of ``log(ndtr(x))`` for ``x << -1``."""
    dtype = np.dtype(x.dtype).type
    log_scale = -dtype(0.5) * lax.square(x) - lax.log(-x) - dtype(0.5 * np.log(2. * np.pi))
    return log_scale + lax.log(_log_ndtr_asymptotic_series(x, series_order))


@partial(custom_jvp, nondiff_argnums=(1,))
def _log_ndtr(x: Any, series_order: int) -> Any:
    if x.dtype == np.dtype(np.float64):
        lower_segment, upper_segment = np.float64(-20), np.float64(8)
    else:
        lower_segment, upper_segment = np.float32(-10), np.float32(5)
    # The unchosen branches get clamped arguments so that their (discarded) values and
    # derivatives stay finite: a select's derivative is 1*dy + 0*(other), NaN if
    # the other is infinite.
    return jnp.where(
        x > upper_segment,
        -_ndtr(-x),
        jnp.where(x > lower_segment,
                  lax.log(_ndtr(jnp.maximum(x, lower_segment))),
                  _log_ndtr_lower(jnp.minimum(x, lower_segment), series_order)))


@_log_ndtr.defjvp
def _log_ndtr_jvp(series_order, primals, tangents):
    (x,), (t,) = primals, tangents
    ans = _log_ndtr(x, series_order)
    log_pdf = -0.5 * lax.square(x) - np.asarray(np.log(np.sqrt(2 * np.pi)), x.dtype)
    return ans, t * lax.exp(log_pdf - ans)


def log_ndtr(x: Any, series_order: int = 3) -> Any:
    """``log(ndtr(x))``, accurate far into both tails: ``-ndtr(-x)`` above 5 (float32)
    / 8 (float64), and an asymptotic series of order ``series_order`` below -10 /
    -20. Float32 and float64 inputs only (as JAX)."""
    if not isinstance(series_order, int):
        raise TypeError("series_order must be a Python integer.")
    if series_order < 0:
        raise ValueError("series_order must be non-negative.")
    if series_order > 30:
        raise ValueError("series_order must be <= 30.")
    x = jnp.asarray(x)
    if x.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"x.dtype={x.dtype} is not supported.")
    return _log_ndtr(x, series_order)


# Cephes' piecewise rational approximations of ndtri (highest degree first).
_NDTRI_P0 = [-5.99633501014107895267E1, 9.80010754185999661536E1,
             -5.66762857469070293439E1, 1.39312609387279679503E1,
             -1.23916583867381258016E0]
_NDTRI_Q0 = [1.0, 1.95448858338141759834E0, 4.67627912898881538453E0,
             8.63602421390890590575E1, -2.25462687854119370527E2,
             2.00260212380060660359E2, -8.20372256168333339912E1,
             1.59056225126211695515E1, -1.18331621121330003142E0]
_NDTRI_P1 = [4.05544892305962419923E0, 3.15251094599893866154E1,
             5.71628192246421288162E1, 4.40805073893200834700E1,
             1.46849561928858024014E1, 2.18663306850790267539E0,
             -1.40256079171354495875E-1, -3.50424626827848203418E-2,
             -8.57456785154685413611E-4]
_NDTRI_Q1 = [1.0, 1.57799883256466749731E1, 4.53907635128879210584E1,
             4.13172038254672030440E1, 1.50425385692907503408E1,
             2.50464946208309415979E0, -1.42182922854787788574E-1,
             -3.80806407691578277194E-2, -9.33259480895457427372E-4]
_NDTRI_P2 = [3.23774891776946035970E0, 6.91522889068984211695E0,
             3.93881025292474443415E0, 1.33303460815807542389E0,
             2.01485389549179081538E-1, 1.23716634817820021358E-2,
             3.01581553508235416007E-4, 2.65806974686737550832E-6,
             6.23974539184983293730E-9]
_NDTRI_Q2 = [1.0, 6.02427039364742014255E0, 3.67983563856160859403E0,
             1.37702099489081330271E0, 2.16236993594496635890E-1,
             1.34204006088543189037E-2, 3.28014464682127739104E-4,
             2.89247864745380683936E-6, 6.79019408009981274425E-9]


def _polyval(coeffs: list[float], x: Any) -> Any:
    out = jnp.zeros_like(x)
    for c in coeffs:
        out = out * x + np.asarray(c, x.dtype)
    return out


def _ndtri(p: Any) -> Any:
    dtype = np.dtype(p.dtype).type
    maybe_complement_p = jnp.where(p > dtype(-np.expm1(-2.)), dtype(1.) - p, p)
    # Keep every branch's argument in its valid range so unchosen branches stay finite.
    sanitized_mcp = jnp.where(maybe_complement_p <= dtype(0.),
                              jnp.full_like(p, dtype(0.5)), maybe_complement_p)

    # |p - 0.5| <= 0.5 - exp(-2): rational function of w = p - 0.5
    w = sanitized_mcp - dtype(0.5)
    ww = lax.square(w)
    x_for_big_p = w + w * ww * (_polyval(_NDTRI_P0, ww) / _polyval(_NDTRI_Q0, ww))
    x_for_big_p = x_for_big_p * -dtype(np.sqrt(2. * np.pi))

    # the tails: rational functions of 1/z with z = sqrt(-2 log p)
    z = lax.sqrt(dtype(-2.) * lax.log(sanitized_mcp))
    first_term = z - lax.log(z) / z
    second_term_small_p = (_polyval(_NDTRI_P2, dtype(1.) / z)
                           / _polyval(_NDTRI_Q2, dtype(1.) / z)) / z
    second_term_otherwise = (_polyval(_NDTRI_P1, dtype(1.) / z)
                             / _polyval(_NDTRI_Q1, dtype(1.) / z)) / z
    x_for_small_p = first_term - second_term_small_p
    x_otherwise = first_term - second_term_otherwise

    x = jnp.where(sanitized_mcp > dtype(np.exp(-2.)), x_for_big_p,
                  jnp.where(z >= dtype(8.0), x_for_small_p, x_otherwise))
    x = jnp.where(p > dtype(1. - np.exp(-2.)), x, -x)
    infinity = jnp.full_like(x, dtype(np.inf))
    x_nan_replaced = jnp.where(p <= dtype(0.0), -infinity,
                               jnp.where(p >= dtype(1.0), infinity, x))
    return x_nan_replaced


@custom_jvp
def _ndtri_cjvp(p: Any) -> Any:
    return _ndtri(p)


@_ndtri_cjvp.defjvp
def _ndtri_jvp(primals, tangents):
    (p,), (t,) = primals, tangents
    x = _ndtri(p)
    # d ndtri / dp = 1 / pdf(ndtri(p)) = sqrt(2 pi) exp(x^2 / 2)
    return x, t * np.asarray(np.sqrt(2 * np.pi), x.dtype) * lax.exp(0.5 * lax.square(x))


def ndtri(p: Any) -> Any:
    """The inverse of ``ndtr``: ``x`` with ``ndtr(x) == p`` (``-inf`` at 0, ``inf``
    at 1). Cephes' piecewise rational approximation, as JAX. Float32 and float64
    inputs only."""
    p = jnp.asarray(p)
    if p.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"x.dtype={p.dtype} is not supported, see docstring for "
                        f"supported types.")
    return _ndtri_cjvp(p)
