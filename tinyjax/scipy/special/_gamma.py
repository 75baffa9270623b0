"""The gamma and beta functions and their relatives: ``gamma``, ``gammaln``,
``loggamma``, ``gammasgn``, ``digamma``, ``polygamma``, the regularized incomplete
gamma and beta functions, ``beta``, ``betaln``, ``factorial``, ``comb``, ``poch``,
``multigammaln``."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["beta", "betainc", "betaln", "comb", "digamma", "factorial", "gamma", "gammainc",
           "gammaincc", "gammaln", "gammasgn", "loggamma", "multigammaln", "poch",
           "polygamma"]


def _real(name: str, *args: Any) -> list:
    """The arguments promoted to one inexact dtype; complex input is refused (JAX's
    message)."""
    out = promote_args_inexact(name, *args)
    if out and dtypes.is_complex(jnp.result_type(out[0])):
        raise ValueError(f"{name} does not support complex-valued inputs.")
    return out


def gammaln(x: Any) -> Any:
    """``log|Gamma(x)|``."""
    (x,) = _real("gammaln", x)
    return lax.lgamma(x)


def gammasgn(x: Any) -> Any:
    """The sign of the gamma function: ``+1`` or ``-1``; NaN at the poles (the
    non-positive integers), at ``-inf`` and for NaN; ``-1`` at ``-0``."""
    (x,) = _real("gammasgn", x)
    floor_x = lax.floor(x)
    negative = x < 0
    nan = (negative & (x == floor_x)) | jnp.isnan(x)
    minus = (negative & (jnp.fmod(floor_x, 2) != 0)) | ((x == 0) & jnp.signbit(x))
    return jnp.where(nan, np.nan, jnp.where(minus, -1.0, 1.0)).astype(x.dtype)


def loggamma(x: Any) -> Any:
    """The principal branch of ``log(Gamma(x))``: real for ``x > 0``, NaN otherwise
    (complex arguments are not supported)."""
    (x,) = _real("loggamma", x)
    return jnp.where(x > 0, lax.lgamma(x), np.nan)


def gamma(x: Any) -> Any:
    """The gamma function ``Gamma(x)`` (``gammasgn(x) * exp(gammaln(x))``)."""
    (x,) = _real("gamma", x)
    return gammasgn(x) * lax.exp(lax.lgamma(x))


def digamma(x: Any) -> Any:
    """The logarithmic derivative of the gamma function."""
    (x,) = _real("digamma", x)
    return lax.digamma(x)


def polygamma(n: Any, x: Any) -> Any:
    """The ``n``-th derivative of the digamma function (``n`` of an integer dtype)."""
    n_dtype = jnp.result_type(n)
    if not dtypes.is_int(n_dtype):
        raise ValueError("Argument `n` to polygamma must be of integer type. Got dtype "
                         f"{n_dtype}.")
    n, x = _real("polygamma", n, x)
    return lax.polygamma(n, x)


def gammainc(a: Any, x: Any) -> Any:
    """The regularized lower incomplete gamma function ``P(a, x)``."""
    a, x = _real("gammainc", a, x)
    return lax.igamma(a, x)


def gammaincc(a: Any, x: Any) -> Any:
    """The regularized upper incomplete gamma function ``Q(a, x) = 1 - P(a, x)``."""
    a, x = _real("gammaincc", a, x)
    return lax.igammac(a, x)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """The regularized incomplete beta function ``I_x(a, b)``."""
    a, b, x = _real("betainc", a, b, x)
    return lax.betainc(a, b, x)


def _algdiv(a: Any, b: Any) -> Any:
    """``lgamma(b) - lgamma(a + b)`` for ``b >= 8`` without cancellation (the DiDonato
    and Morris series of ``del(b) - del(a + b)``, ``del`` being lgamma's Stirling
    remainder)."""
    c = (0.833333333333333e-01, -0.277777777760991e-02, 0.793650666825390e-03,
         -0.595202931351870e-03, 0.837308034031215e-03, -0.165322962780713e-02)
    h = a / b
    x = 1.0 / (1 + h)   # the series' variable; h / (1 + h) scales the sum
    x2 = x * x
    s = [1.0 + (x + x2)]                      # s_n = (1 - x**n) / (1 - x), odd n >= 3
    for _ in range(4):
        s.append(1.0 + (x + x2 * s[-1]))
    t = (1.0 / b) ** 2
    w = c[5] * s[4]
    for ck, sk in zip(c[4:0:-1], s[3::-1]):
        w = w * t + ck * sk
    w = (w * t + c[0]) * (h / (1 + h) / b)
    u = (b + (a - 0.5)) * lax.log1p(a / b)
    v = a * (lax.log(b) - 1.0)
    return jnp.where(u <= v, (w - v) - u, (w - u) - v)


def betaln(a: Any, b: Any) -> Any:
    """``log|B(a, b)|``, accurate when one argument is large."""
    a, b = _real("betaln", a, b)
    a, b = jnp.minimum(a, b), jnp.maximum(a, b)
    small_b = lax.lgamma(a) + (lax.lgamma(b) - lax.lgamma(a + b))
    return jnp.where(b < 8, small_b, lax.lgamma(a) + _algdiv(a, b))


def beta(a: Any, b: Any) -> Any:
    """The beta function ``B(a, b) = Gamma(a) Gamma(b) / Gamma(a + b)``."""
    a, b = _real("beta", a, b)
    return gammasgn(a) * gammasgn(b) * gammasgn(a + b) * lax.exp(betaln(a, b))


def factorial(n: Any, exact: bool = False) -> Any:
    """``n!`` as ``Gamma(n + 1)`` (0 for negative ``n``); ``exact=True`` is not
    available, as in JAX."""
    if exact:
        raise NotImplementedError("factorial with exact=True")
    (n,) = _real("factorial", n)
    return jnp.where(n < 0, 0, lax.exp(lax.lgamma(n + 1)))


def comb(N: Any, k: Any, *, repetition: bool = False) -> Any:
    """The number of combinations of ``N`` things taken ``k`` at a time (with
    repetition: ``comb(N + k - 1, k)``), through the gamma function; 0 outside
    ``0 <= k <= N``."""
    N, k = _real("comb", N, k)
    if repetition:
        return jnp.where((k == 0) & (N >= 0), 1.0, comb(N + k - 1, k))
    valid = (k <= N) & (N >= 0) & (k >= 0)
    safe_n = jnp.where(valid, N, 0.0)
    safe_k = jnp.where(valid, k, 0.0)
    out = lax.exp(lax.lgamma(safe_n + 1) - lax.lgamma(safe_k + 1)
                  - lax.lgamma(safe_n + 1 - safe_k))
    return jnp.where(valid, out, 0.0)


@custom_jvp
def poch(z: Any, m: Any) -> Any:
    """The Pochhammer symbol ``(z)_m = Gamma(z + m) / Gamma(z)`` (1 at ``m == 0``)."""
    z, m = _real("poch", z, m)
    return jnp.where(m == 0., jnp.array(1, dtype=z.dtype), gamma(z + m) / gamma(z))


poch.defjvps(lambda dz, out, z, m: (lax.digamma(z + m) - lax.digamma(z)) * poch(z, m) * dz,
             lambda dm, out, z, m: lax.digamma(z + m) * poch(z, m) * dm)


def multigammaln(a: Any, d: Any) -> Any:
    """The log of the multivariate gamma function of dimension ``d`` (a concrete
    integer): ``d(d-1)/4 log(pi) + sum_j gammaln(a - j/2)``."""
    d = operator.index(d)
    a, d_arr = _real("multigammaln", a, d)
    constant = 0.25 * d_arr * (d_arr - 1) * np.log(np.pi).astype(a.dtype)
    b = jnp.arange(d, dtype=a.dtype) / 2
    return jnp.sum(lax.lgamma(jnp.expand_dims(a, -1) - b), axis=-1) + constant
