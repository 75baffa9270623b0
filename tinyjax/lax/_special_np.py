"""numpy implementations of special functions numpy lacks (erf, lgamma, digamma, …).

They run eager operations and serve as references; compiled kernels use the C
library's versions.  Accuracy is float64-level for erf/erfc/lgamma (computed via
the math module) and ~1e-12 relative for digamma/polygamma.
"""
from __future__ import annotations

import math

import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)
_erfc = np.frompyfunc(math.erfc, 1, 1)
_lgamma = np.frompyfunc(lambda v: v if math.isnan(v) else math.inf if math.isinf(v) else
                        math.lgamma(v) if v > 0 or v != math.floor(v) else math.inf, 1, 1)


def _apply(fn, x):
    x = np.asarray(x)
    out = np.asarray(fn(x.astype(np.float64)), dtype=np.float64)
    return out.astype(x.dtype)


def erf(x):
    return _apply(_erf, x)


def erfc(x):
    return _apply(_erfc, x)


def lgamma(x):
    return _apply(_lgamma, x)


def erf_inv(x):
    """Inverse error function: a starting guess refined by Newton steps on erf."""
    x = np.asarray(x)
    xd = x.astype(np.float64)
    with np.errstate(all="ignore"):
        w = -np.log((1.0 - xd) * (1.0 + xd))
        # Giles' single-precision approximation as the starting point.
        small = w < 5.0
        ws = w - 2.5
        p_small = 2.81022636e-08
        for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                  -0.00125372503, -0.00417768164, 0.246640727, 1.50140941):
            p_small = c + p_small * ws
        wl = np.sqrt(np.maximum(w, 0)) - 3.0
        p_large = -0.000200214257
        for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                  -0.0076224613, 0.00943887047, 1.00167406, 2.83297682):
            p_large = c + p_large * wl
        y = np.where(small, p_small, p_large) * xd
        for _ in range(3):
            err = erf(y) - xd
            y = y - err / (2.0 / math.sqrt(math.pi) * np.exp(-y * y))
        y = np.where(xd == 1.0, np.inf, np.where(xd == -1.0, -np.inf, y))
        y = np.where(np.abs(xd) > 1.0, np.nan, y)
    return y.astype(x.dtype)


def _hurwitz_zeta(s: float, q: np.ndarray) -> np.ndarray:
    """zeta(s, q) for s > 1, q > 0, by recurrence up to q >= 10 then Euler–Maclaurin."""
    q = np.array(q, dtype=np.float64)
    total = np.zeros_like(q)
    while True:
        small = q < 10.0
        if not small.any():
            break
        total = total + np.where(small, q ** -s, 0.0)
        q = np.where(small, q + 1.0, q)
    # Euler–Maclaurin tail
    total = total + q ** (1 - s) / (s - 1) + 0.5 * q ** -s
    bernoulli = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)
    term_coef = s
    qpow = q ** (-s - 1)
    fact = 2.0
    for k, b in enumerate(bernoulli):
        total = total + b / fact * term_coef * qpow
        term_coef *= (s + 2 * k + 1) * (s + 2 * k + 2)
        fact *= (2 * k + 3) * (2 * k + 4)
        qpow = qpow / (q * q)
    return total


def digamma(x):
    x = np.asarray(x)
    xd = x.astype(np.float64)
    with np.errstate(all="ignore"):
        # Reflection for negative arguments: psi(1-x) - psi(x) = pi cot(pi x).
        neg = xd < 0.5
        z = np.where(neg, 1.0 - xd, xd)
        acc = np.zeros_like(z)
        while True:
            small = z < 10.0
            if not small.any():
                break
            acc = acc - np.where(small, 1.0 / z, 0.0)
            z = np.where(small, z + 1.0, z)
        inv = 1.0 / z
        inv2 = inv * inv
        series = np.log(z) - 0.5 * inv - inv2 * (
            1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (
                1 / 132 - inv2 * (691 / 32760 - inv2 / 12))))))
        out = acc + series
        out = np.where(neg, out - math.pi / np.tan(math.pi * xd), out)
        out = np.where((xd <= 0) & (xd == np.floor(xd)), np.nan, out)
    return out.astype(x.dtype)


def polygamma(m, x):
    """psi^(m)(x) for integer m >= 0 (x > 0 for m >= 1)."""
    x = np.asarray(x)
    m_arr = np.asarray(m)
    if m_arr.ndim == 0 and int(m_arr) == 0:
        return digamma(x)
    out = np.empty(np.broadcast(m_arr, x).shape, np.float64)
    mb, xb = np.broadcast_arrays(m_arr, x.astype(np.float64))
    for order in np.unique(mb):
        sel = mb == order
        order = int(order)
        if order == 0:
            out[sel] = digamma(xb[sel])
        else:
            with np.errstate(all="ignore"):
                val = ((-1.0) ** (order + 1) * math.factorial(order)
                       * _hurwitz_zeta(order + 1.0, xb[sel]))
            out[sel] = np.where(xb[sel] > 0, val, np.nan)
    return out.astype(x.dtype)
