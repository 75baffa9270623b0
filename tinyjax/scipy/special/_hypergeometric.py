"""The confluent and Gauss hypergeometric functions ``hyp1f1`` and ``hyp2f1`` (the
methods of Pearson, Olver and Porter, arXiv:1407.7786, as JAX), with JAX's derivative
series in the parameters.  Each is written for one element and vectorised."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.scipy.special._gamma import _real, gamma
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["hyp1f1", "hyp2f1"]

_MAX_TERMS = 250


def _sum_series(first_term: Any, ratio, weight=None, start: Any = 1.0) -> Any:
    """``start + sum_{k>=1} w_k t_k`` with ``t_1 = first_term``, ``t_{k+1} = t_k *
    ratio(k)`` and weights ``w_k = weight(k)`` (1 without), until a term is below
    machine precision relative to the sum or after 250 terms."""
    eps = float(dtypes.finfo(jnp.result_type(first_term)).eps)

    def cond(state):
        total, k, term = state
        return (k < _MAX_TERMS) & (jnp.abs(term) / jnp.abs(total) > eps)

    def body(state):
        total, k, term = state
        total = total + (term if weight is None else term * weight(k))
        return total, k + 1, term * ratio(k)
    dt = jnp.result_type(first_term)
    return lax.while_loop(cond, body, (jnp.asarray(start, dt), jnp.asarray(1, dt),
                                       first_term))[0]


# ---------------------------------------------------------------------------
# 1F1(a; b; x)
# ---------------------------------------------------------------------------

def _hyp1f1_ratio(a, b, x):
    return lambda k: (a + k) / (b + k) * x / (k + 1)


def _hyp1f1_series(a, b, x):
    return _sum_series(a / b * x, _hyp1f1_ratio(a, b, x))


def _hyp1f1_kummer(a, b, x):
    """The series for ``x < 0`` through Kummer's transformation ``1F1(a; b; x) =
    e^x 1F1(b - a; b; -x)``: the direct series alternates there, its terms growing to
    about ``e^|x|`` while the sum shrinks (2e-9 relative error at x = -9.3, 5e-8 over
    x in [-10, 0] in float64); the transformed one has terms of one sign after the
    first few."""
    return jnp.exp(x) * _hyp1f1_series(b - a, b, -x)


def _hyp1f1_asymptotic(a, b, x):
    serie = _sum_series((b - a) * (1 - a) / x,
                        lambda k: (b - a + k) * (1 - a + k) / (k + 1) / x)
    return gamma(b) / gamma(a) * jnp.exp(x) * x ** (a - b) * serie


@jnp.vectorize
def _hyp1f1_scalar(a, b, x):
    branch = jnp.where(jnp.abs(x) < 100, jnp.where(x < 0, 0, 1), 2)
    result = lax.switch(branch, [_hyp1f1_kummer, _hyp1f1_series, _hyp1f1_asymptotic],
                        a, b, x)
    return jnp.where(a == 0, 1.0, jnp.where((a == b) & (a != 0), jnp.exp(x),
                                             jnp.where((b == 0) & (a != 0), np.inf, result)))


@jnp.vectorize
def _hyp1f1_da(a, b, x):
    return _sum_series(a / b * x, _hyp1f1_ratio(a, b, x),
                       lambda k: lax.digamma(a + k) - lax.digamma(a), start=0.0)


@jnp.vectorize
def _hyp1f1_db(a, b, x):
    return _sum_series(a / b * x, _hyp1f1_ratio(a, b, x),
                       lambda k: lax.digamma(b) - lax.digamma(b + k), start=0.0)


@custom_jvp
def hyp1f1(a: Any, b: Any, x: Any) -> Any:
    """Kummer's confluent hypergeometric function ``1F1(a; b; x)``: its power series for
    ``0 <= x < 100`` (for ``-100 < x < 0`` that of Kummer's transformation), the
    asymptotic series beyond."""
    a, b, x = _real("hyp1f1", a, b, x)
    return _hyp1f1_scalar(a, b, x)


hyp1f1.defjvps(lambda da, out, a, b, x: _hyp1f1_da(a, b, x) * da,
               lambda db, out, a, b, x: _hyp1f1_db(a, b, x) * db,
               lambda dx, out, a, b, x: a / b * hyp1f1(a + 1, b + 1, x) * dx)


# ---------------------------------------------------------------------------
# 2F1(a, b; c; x)
# ---------------------------------------------------------------------------

def _near_int(v, eps):
    return jnp.abs(v - jnp.round(v)) < eps


def _hyp2f1_terminal(a, b, c, x):
    """The polynomial 2F1 when a (or b) is a non-positive integer: -a terms."""
    eps = float(dtypes.finfo(x.dtype).eps) * 50
    # the integer parameter of larger magnitude (short of a non-positive integer c's)
    swap = (b < a) & _near_int(b, eps) & ~((jnp.fmod(c, 1.0) == 0) & (c <= 0) & (c > b))
    a, b = jnp.where(swap, b, a), jnp.where(swap, a, b)
    a = jnp.abs(a)

    def body(i, state):
        total, term = state
        k = i.astype(x.dtype)
        term = term * -(a - k + 1) / (c + k - 1) * (b + k - 1) / k * x
        return total + term, term
    one = jnp.ones_like(x)
    return lax.fori_loop(1, jnp.round(a).astype(np.int32) + 1, body, (one, one))[0]


def _hyp2f1_series(a, b, c, x):
    eps = float(dtypes.finfo(x.dtype).eps)

    def cond(state):
        total, k, term = state
        return (k < _MAX_TERMS) & (jnp.abs(term) > eps * jnp.abs(total))

    def body(state):
        total, k, term = state
        return total + term, k + 1, term * (a + k - 1) * (b + k - 1) / (c + k - 1) / k * x
    zero, one = jnp.zeros_like(x), jnp.ones_like(x)
    return lax.while_loop(cond, body, (zero, one, one))[0]


def _hyp2f1_digamma_transform(a, b, c, x):
    """2F1 near x = 1 when c - a - b is (nearly) an integer: the limiting form of the
    1 - x transformation, a digamma series (Abramowitz and Stegun 15.3.10-12)."""
    eps = float(dtypes.finfo(x.dtype).eps)
    d = c - a - b
    s = 1 - x
    rd = jnp.round(d)
    e = jnp.where(rd >= 0, d, -d)
    d1 = jnp.where(rd >= 0, d, 0.0)
    d2 = jnp.where(rd >= 0, 0.0, d)
    ard = jnp.where(rd >= 0, rd, -rd).astype(np.int32)
    log_s = jnp.log(s)
    y = (lax.digamma(jnp.ones_like(x)) + lax.digamma(1.0 + e) - lax.digamma(a + d1)
         - lax.digamma(b + d1) - log_s) / gamma(e + 1.0)
    p = (a + d1) * (b + d1) * s / gamma(e + 2.0)

    def cond(state):
        p, q, t, y = state
        return (t < _MAX_TERMS) & (jnp.abs(q) >= eps * jnp.abs(y))

    def body(state):
        p, q, t, y = state
        r = (lax.digamma(1.0 + t) + lax.digamma(1.0 + t + e) - lax.digamma(a + t + d1)
             - lax.digamma(b + t + d1) - log_s)
        q = p * r
        p = p * s * (a + t + d1) / (t + 1.0) * (b + t + d1) / (t + 1.0 + e)
        return p, q, t + 1.0, y + q
    _, _, _, y = lax.while_loop(cond, body, (p, y, jnp.ones_like(x), y))

    def finite_sum(i, state):
        p, t, y1 = state
        p = p * s * (a + t + d2) * (b + t + d2) / (1.0 - e + t)
        t = t + 1.0
        p = p / t
        return p, t, y1 + p
    one = jnp.ones_like(x)
    y1 = lax.fori_loop(1, ard, finite_sum, (one, jnp.zeros_like(x), one))[2]
    gc = gamma(c)
    y1 = y1 * gamma(e) * gc / (gamma(a + d1) * gamma(b + d1))
    y_scaled = y * gc / (gamma(a + d2) * gamma(b + d2))
    y_scaled = jnp.where((ard & 1) != 0, -y_scaled, y_scaled)
    q = s ** rd
    general = jnp.where(rd > 0, y_scaled * q + y1, y_scaled + y1 * q)
    return jnp.where(rd == 0, y * gc / (gamma(a) * gamma(b)), general)


def _hyp2f1_terminal_or_series(a, b, c, x):
    eps = float(dtypes.finfo(x.dtype).eps) * 50
    d = c - a - b
    terminating = ((a <= 0) & _near_int(a, eps)) | ((b <= 0) & _near_int(b, eps))
    index = jnp.where((x > 0.9) & ~terminating,
                      jnp.where(jnp.abs(d - jnp.round(d)) >= eps, 0, 1),
                      jnp.where(terminating, 2, 0))
    return lax.switch(index, [_hyp2f1_series, _hyp2f1_digamma_transform, _hyp2f1_terminal],
                      a, b, c, x)


@jnp.vectorize
def _hyp2f1_scalar(a, b, c, x):
    eps = float(dtypes.finfo(x.dtype).eps) * 50
    d = c - a - b
    s = 1 - x
    ca, cb = c - a, c - b
    index = jnp.where(
        (x == 0) | (((a == 0) | (b == 0)) & (c != 0)), 0,
        jnp.where((c == 0) | ((c < 0) & (jnp.fmod(c, 1.0) == 0)), 1,
                  jnp.where((d <= -1) & ~((jnp.abs(d - jnp.round(d)) >= eps) & (s < 0)), 2,
                            jnp.where((d <= 0) & (x == 1), 1,
                                      jnp.where((x < 1) & (b == c), 3,
                                                jnp.where((x < 1) & (a == c), 4,
                                                          jnp.where(x > 1, 1,
                                                                    jnp.where(x == 1, 5,
                                                                              6))))))))
    branches = [
        lambda: jnp.ones_like(x),
        lambda: jnp.full_like(x, np.inf),
        lambda: s ** d * _hyp2f1_terminal_or_series(ca, cb, c, x),
        lambda: s ** (-a),
        lambda: s ** (-b),
        lambda: gamma(c) * gamma(d) / (gamma(ca) * gamma(cb)),
        lambda: _hyp2f1_terminal_or_series(a, b, c, x),
    ]
    return lax.switch(index, branches)


def _hyp2f1_parameter_derivative(which: str):
    @jnp.vectorize
    def derivative(a, b, c, x):
        p = {"a": a, "b": b, "c": c}[which]
        if which == "c":
            def weight(k):
                return lax.digamma(c) - lax.digamma(c + k)
        else:
            def weight(k):
                return lax.digamma(p + k) - lax.digamma(p)
        return _sum_series(a * b / c * x, lambda k: (a + k) * (b + k) / (c + k) / (k + 1) * x,
                           weight, start=0.0)
    return derivative


_hyp2f1_da = _hyp2f1_parameter_derivative("a")
_hyp2f1_db = _hyp2f1_parameter_derivative("b")
_hyp2f1_dc = _hyp2f1_parameter_derivative("c")


@custom_jvp
def hyp2f1(a: Any, b: Any, c: Any, x: Any) -> Any:
    """Gauss's hypergeometric function ``2F1(a, b; c; x)`` for real ``x <= 1``: its
    series, closed forms at the special parameters, and the ``1 - x`` transformations
    near ``x = 1`` (infinity for ``x > 1``, as JAX)."""
    a, b, c, x = _real("hyp2f1", a, b, c, x)
    return _hyp2f1_scalar(a, b, c, x)


hyp2f1.defjvps(lambda da, out, a, b, c, x: _hyp2f1_da(a, b, c, x) * da,
               lambda db, out, a, b, c, x: _hyp2f1_db(a, b, c, x) * db,
               lambda dc, out, a, b, c, x: _hyp2f1_dc(a, b, c, x) * dc,
               lambda dx, out, a, b, c, x: a * b / c * hyp2f1(a + 1, b + 1, c + 1, x) * dx)
