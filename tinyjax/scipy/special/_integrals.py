"""Exponential, sine and cosine integrals and the dilogarithm: ``expn``, ``exp1``,
``expi``, ``sici``, ``spence`` (Cephes' algorithms, as JAX)."""
from __future__ import annotations

from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.scipy.special._gamma import _real
from tinyjax.scipy.special._util import iterate_until_converged, ratio
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["exp1", "expi", "expn", "sici", "spence"]


# ---------------------------------------------------------------------------
# E_n(x)
# ---------------------------------------------------------------------------

def _expn_series(n: Any, x: Any) -> Any:
    """E_n(x) for 0 < x <= 1: (-x)^(n-1) psi(n)/(n-1)! - sum_k (-x)^k / ((k-n+1) k!),
    psi(n) = digamma(n) - log(x) (Cephes' power series)."""
    eps = float(dtypes.finfo(x.dtype).eps)
    one = jnp.ones_like(x)
    n1 = jnp.where(n == 1, 2 * n, n)
    ans = jnp.where(n == 1, jnp.zeros_like(x), one / (one - n1))
    state = (jnp.zeros_like(x), one, one - n, ans)

    def body(st):
        xk, yk, pk, ans = st
        xk, pk = xk + 1, pk + 1
        yk = yk * (-x) / xk
        ans = ans + jnp.where(pk != 0, yk / pk, 0.0)
        t = jnp.where(ans != 0, jnp.abs(yk / ans), one)
        return (xk, yk, pk, ans), t > eps
    _, _, _, ans = iterate_until_converged(body, state, x > 0)
    psi = lax.digamma(n) - jnp.log(x)
    return (-x) ** (n - 1) * psi / jnp.exp(lax.lgamma(n)) - ans


def _expn_fraction(n: Any, x: Any) -> Any:
    """E_n(x) for x > 1: exp(-x) times its continued fraction, rescaled when the
    convergents grow (Cephes)."""
    eps = float(dtypes.finfo(x.dtype).eps)
    big = 1.44115188075855872e17
    one = jnp.ones_like(x)
    state = (one, one, x, one, x + n, one / (x + n), jnp.zeros_like(x))

    def body(st):
        k, pkm2, qkm2, pkm1, qkm1, ans, r = st
        k = k + 1
        odd = jnp.fmod(k, 2.0) == 1
        yk = jnp.where(odd, one, x)
        xk = jnp.where(odd, n + (k - 1) / 2, k / 2)
        pk = pkm1 * yk + pkm2 * xk
        qk = qkm1 * yk + qkm2 * xk
        nonzero = qk != 0
        r = jnp.where(nonzero, pk / qk, r)
        t = jnp.where(nonzero, jnp.abs((ans - r) / r), one)
        ans = jnp.where(nonzero, r, ans)
        scale = jnp.where(jnp.abs(pk) > big, 1 / big, 1.0)
        return (k, pkm1 * scale, qkm1 * scale, pk * scale, qk * scale, ans, r), t > eps
    ans = iterate_until_converged(body, state, x > 0)[5]
    return ans * jnp.exp(-x)


def _expn_large_n(n: Any, x: Any) -> Any:
    """E_n(x) for n >= 5000: the first terms of its expansion in 1/(x + n)^2."""
    xk = x + n
    yk = 1.0 / (xk * xk)
    ans = yk * n * (6 * x * x - 8 * n * x + n * n)
    ans = yk * (ans + n * (n - 2 * x))
    ans = yk * (ans + n)
    return (ans + 1.0) * jnp.exp(-x) / xk


@custom_jvp
def _expn(n: Any, x: Any) -> Any:
    safe_x = jnp.where(x > 0, x, 1.0)
    safe_n = jnp.where((n >= 0) & (n == jnp.floor(n)), n, 1.0)
    series_n = jnp.where(safe_n >= 1, safe_n, 1.0)
    large = x > 1
    value = jnp.where(safe_n >= 5000, _expn_large_n(safe_n, safe_x),
                      jnp.where(large, _expn_fraction(safe_n, jnp.where(large, safe_x, 2.0)),
                                _expn_series(series_n, jnp.where(large, 0.5, safe_x))))
    value = jnp.where(n == 0, jnp.exp(-safe_x) / safe_x, value)
    value = jnp.where(x == 0, jnp.where(n < 2, np.inf, 1.0 / jnp.where(n < 2, 1.0, n - 1)),
                      value)
    bad = (n < 0) | (x < 0) | (n != jnp.floor(n)) | jnp.isnan(x) | jnp.isnan(n)
    return jnp.where(bad, np.nan, value)


@_expn.defjvp
def _expn_jvp(primals, tangents):
    n, x = primals
    _, x_dot = tangents
    return _expn(n, x), -x_dot * _expn(n - 1, x)


def expn(n: Any, x: Any) -> Any:
    """The generalized exponential integral ``E_n(x) = int_1^inf exp(-xt) / t^n dt``
    for integer ``n >= 0`` and ``x >= 0`` (NaN elsewhere)."""
    n, x = _real("expn", n, x)
    n, x = jnp.broadcast_arrays(n, x)
    return _expn(n, x)


def exp1(x: Any) -> Any:
    """The exponential integral ``E_1(x)``."""
    (x,) = _real("exp1", x)
    return expn(jnp.ones_like(x), x)


# ---------------------------------------------------------------------------
# Ei(x)
# ---------------------------------------------------------------------------

# Cephes' rational approximations of Ei on (0, 2], then x e^-x Ei(x) - 1 = w P(w)/Q(w),
# w = 1/x, on (2, 4], (4, 8], (8, 16], (16, 32], (32, 64] and beyond (highest first).
_EXPI_SMALL = ((-5.350447357812542947283e0, 2.185049168816613393830e2,
                -4.176572384826693777058e3, 5.541176756393557601232e4,
                -3.313381331178144034309e5, 1.592627163384945414220e6),
               (1.0, -5.250547959112862969197e1, 1.259616186786790571525e3,
                -1.756549581973534652631e4, 1.493062117002725991967e5,
                -7.294949239640527645655e5, 1.592627163384945429726e6))
_EXPI_LARGE = (
    (4.0, (1.981808503259689673238e-2, -1.271645625984917501326e0, -2.088160335681228318920e0,
           2.755544509187936721172e0, -4.409507048701600257171e-1, 4.665623805935891391017e-2,
           -1.545042679673485262580e-3, 7.059980605299617478514e-5),
     (1.0, 1.476498670914921440652e0, 5.629177174822436244827e-1, 1.699017897879307263248e-1,
      2.291647179034212017463e-2, 4.450150439728752875043e-3, 1.727439612206521482874e-4,
      3.953167195549672482304e-5)),
    (8.0, (-1.373215375871208729803e0, -7.084559133740838761406e-1, 1.580806855547941010501e0,
           -2.601500427425622944234e-1, 2.994674694113713763365e-2,
           -1.038086040188744005513e-3, 4.371064420753005429514e-5, 2.141783679522602903795e-6),
     (1.0, 8.585231423622028380768e-1, 4.483285822873995129957e-1, 7.687932158124475434091e-2,
      2.449868241021887685904e-2, 8.832165941927796567926e-4, 4.590952299511353531215e-4,
      -4.729848351866523044863e-6, 2.665195537390710170105e-6)),
    (16.0, (-2.106934601691916512584e0, 1.732733869664688041885e0, -2.423619178935841904839e-1,
            2.322724180937565842585e-2, 2.372880440493179832059e-4, -8.343219561192552752335e-5,
            1.363408795605250394881e-5, -3.655412321999253963714e-7,
            1.464941733975961318456e-8, 6.176407863710360207074e-10),
     (1.0, -2.298062239901678075778e-1, 1.105077041474037862347e-1, -1.566542966630792353556e-2,
      2.761106850817352773874e-3, -2.089148012284048449115e-4, 1.708528938807675304186e-5,
      -4.459311796356686423199e-7, 1.394634930353847498145e-8, 6.150865933977338354138e-10)),
    (32.0, (-2.458119367674020323359e-1, -1.483382253322077687183e-1, 7.248291795735551591813e-2,
            -1.348315687380940523823e-2, 1.342775069788636972294e-3, -7.942465637159712264564e-5,
            2.644179518984235952241e-6, -4.239473659313765177195e-8),
     (1.0, -1.044225908443871106315e-1, -2.676453128101402655055e-1, 9.695000254621984627876e-2,
      -1.601745692712991078208e-2, 1.496414899205908021882e-3, -8.462452563778485013756e-5,
      2.728938403476726394024e-6, -4.239462431819542051337e-8)),
    (64.0, (1.212561118105456670844e-1, -5.823133179043894485122e-1, 2.348887314557016779211e-1,
            -3.040034318113248237280e-2, 1.510082146865190661777e-3, -2.523137095499571377122e-5),
     (1.0, -1.002252150365854016662e0, 2.928709694872224144953e-1, -3.337004338674007801307e-2,
      1.560544881127388842819e-3, -2.523137093603234562648e-5)),
    (np.inf, (-7.657847078286127362028e-1, 6.886192415566705051750e-1, -2.132598113545206124553e-1,
              3.346107552384193813594e-2, -3.076541477344756050249e-3, 1.747119316454907477380e-4,
              -6.103711682274170530369e-6, 1.218032765428652199087e-7, -1.086076102793290233007e-9),
     (1.0, -1.888802868662308731041e0, 1.066691687211408896850e0, -2.751915982306380647738e-1,
      3.930852688233823569726e-2, -3.414684558602365085394e-3, 1.866844370703555398195e-4,
      -6.345146083130515357861e-6, 1.239754287483206878024e-7, -1.086076102793126632978e-9)))


def _expi_positive(x: Any) -> Any:
    """Ei(x) for x > 0: the interval's rational approximation (each one evaluated at a
    point inside its own interval where it is not the one used)."""
    small = x <= 2
    xs = jnp.where(small, x, 1.0)
    out = xs * ratio(*_EXPI_SMALL, xs) + np.euler_gamma + jnp.log(xs)
    lower = 2.0
    for upper, num, den in _EXPI_LARGE:
        inside = (x > lower) & (x <= upper)
        xi = jnp.where(inside, x, lower + 1.0)
        w = 1.0 / xi
        out = jnp.where(inside, jnp.exp(xi) * w * (w * ratio(num, den, w) + 1.0), out)
        lower = upper
    return out


@custom_jvp
def expi(x: Any) -> Any:
    """The exponential integral ``Ei(x)`` (``-E_1(-x)`` for negative ``x``)."""
    (x,) = _real("expi", x)
    positive = _expi_positive(jnp.where(x > 0, x, 1.0))
    out = jnp.where(x > 0, positive, -exp1(jnp.where(x < 0, -x, 1.0)))
    return jnp.where(x == 0, -np.inf, jnp.where(jnp.isnan(x), np.nan, out))


expi.defjvps(lambda t, ans, x: t * jnp.exp(x) / x)


# ---------------------------------------------------------------------------
# Si(x), Ci(x)
# ---------------------------------------------------------------------------

_SICI_SN = (-8.39167827910303881427E-11, 4.62591714427012837309E-8, -9.75759303843632795789E-6,
            9.76945438170435310816E-4, -4.13470316229406538752E-2, 1.00000000000000000302E0)
_SICI_SD = (2.03269266195951942049E-12, 1.27997891179943299903E-9, 4.41827842801218905784E-7,
            9.96412122043875552487E-5, 1.42085239326149893930E-2, 9.99999999999999996984E-1)
_SICI_CN = (2.02524002389102268789E-11, -1.35249504915790756375E-8, 3.59325051419993077021E-6,
            -4.74007206873407909465E-4, 2.89159652607555242092E-2, -1.00000000000000000080E0)
_SICI_CD = (4.07746040061880559506E-12, 3.06780997581887812692E-9, 1.23210355685883423679E-6,
            3.17442024775032769882E-4, 5.10028056236446052392E-2, 4.00000000000000000080E0)
# the auxiliary functions f, g in z = 1/x^2, for 4 < x < 8 and x >= 8
_SICI_F4 = ((4.23612862892216586994E0, 5.45937717161812843388E0, 1.62083287701538329132E0,
             1.67006611831323023771E-1, 6.81020132472518137426E-3, 1.08936580650328664411E-4,
             5.48900223421373614008E-7),
            (1, 8.16496634205391016773E0, 7.30828822505564552187E0, 1.86792257950184183883E0,
             1.78792052963149907262E-1, 7.01710668322789753610E-3, 1.10034357153915731354E-4,
             5.48900252756255700982E-7))
_SICI_G4 = ((8.71001698973114191777E-2, 6.11379109952219284151E-1, 3.97180296392337498885E-1,
             7.48527737628469092119E-2, 5.38868681462177273157E-3, 1.61999794598934024525E-4,
             1.97963874140963632189E-6, 7.82579040744090311069E-9),
            (1, 1.64402202413355338886E0, 6.66296701268987968381E-1, 9.88771761277688796203E-2,
             6.22396345441768420760E-3, 1.73221081474177119497E-4, 2.02659182086343991969E-6,
             7.82579218933534490868E-9))
_SICI_F8 = ((4.55880873470465315206E-1, 7.13715274100146711374E-1, 1.60300158222319456320E-1,
             1.16064229408124407915E-2, 3.49556442447859055605E-4, 4.86215430826454749482E-6,
             3.20092790091004902806E-8, 9.41779576128512936592E-11, 9.70507110881952024631E-14),
            (1.0, 9.17463611873684053703E-1, 1.78685545332074536321E-1, 1.22253594771971293032E-2,
             3.58696481881851580297E-4, 4.92435064317881464393E-6, 3.21956939101046018377E-8,
             9.43720590350276732376E-11, 9.70507110881952025725E-14))
_SICI_G8 = ((6.97359953443276214934E-1, 3.30410979305632063225E-1, 3.84878767649974295920E-2,
             1.71718239052347903558E-3, 3.48941165502279436777E-5, 3.47131167084116673800E-7,
             1.70404452782044526189E-9, 3.85945925430276600453E-12, 3.14040098946363334640E-15),
            (1.0, 1.68548898811011640017E0, 4.87852258695304967486E-1, 4.67913194259625806320E-2,
             1.90284426674399523638E-3, 3.68475504442561108162E-5, 3.57043223443740838771E-7,
             1.72693748966316146736E-9, 3.87830166023954706752E-12, 3.14040098946363335242E-15))


def _sici_series(x: Any) -> tuple[Any, Any]:
    """Si and Ci for 0 <= x <= 4 by rational functions of x^2."""
    t = x * x
    safe = jnp.where(x == 0, 1.0, x)
    si = jnp.where(x == 0, 0.0, x * ratio(_SICI_SN, _SICI_SD, t))
    ci = jnp.where(x == 0, -np.inf,
                   np.euler_gamma + jnp.log(safe) + t * ratio(_SICI_CN, _SICI_CD, t))
    return si, ci


def _sici_asymptotic(x: Any) -> tuple[Any, Any]:
    """Si and Ci for 4 < x <= 1e9 through the auxiliary functions f and g."""
    z = 1.0 / (x * x)
    near = x < 8.0
    f = jnp.where(near, ratio(*_SICI_F4, z), ratio(*_SICI_F8, z)) / x
    g = z * jnp.where(near, ratio(*_SICI_G4, z), ratio(*_SICI_G8, z))
    s, c = jnp.sin(x), jnp.cos(x)
    return np.pi / 2 - f * c - g * s, f * s - g * c


@custom_jvp
def sici(x: Any) -> tuple[Any, Any]:
    """The sine and cosine integrals ``(Si(x), Ci(x))``."""
    (x,) = _real("sici", x)
    ax = jnp.abs(x)
    series = _sici_series(jnp.where(ax <= 4, ax, 1.0))
    asymptotic = _sici_asymptotic(jnp.where((ax > 4) & (ax <= 1e9), ax, 5.0))
    far = jnp.where(ax > 1e9, ax, 2e9)
    si_far = jnp.where(jnp.isposinf(far), np.pi / 2, np.pi / 2 - jnp.cos(far) / far)
    ci_far = jnp.where(jnp.isposinf(far), 0.0, jnp.sin(far) / far)

    def pick(i):
        return jnp.where(ax <= 4, series[i], jnp.where(ax <= 1e9, asymptotic[i],
                                                        (si_far, ci_far)[i]))
    si, ci = pick(0), pick(1)
    return jnp.sign(x) * si, jnp.where(jnp.isneginf(x), np.nan, ci)


@sici.defjvp
def _sici_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return sici(x), (jnp.sinc(x / np.pi) * t, jnp.cos(x) / x * t)


# ---------------------------------------------------------------------------
# Spence's function (the dilogarithm)
# ---------------------------------------------------------------------------

_SPENCE_A = (4.65128586073990045278E-5, 7.31589045238094711071E-3, 1.33847639578309018650E-1,
             8.79691311754530315341E-1, 2.71149851196553469920E0, 4.25697156008121755724E0,
             3.29771340985225106936E0, 1.00000000000000000126E0)
_SPENCE_B = (6.90990488912553276999E-4, 2.54043763932544379113E-2, 2.82974860602568089943E-1,
             1.41172597751831069617E0, 3.63800533345137075418E0, 5.03278880143316990390E0,
             3.54771340985225096217E0, 9.99999999999999998740E-1)


def spence(x: Any) -> Any:
    """Spence's function ``int_1^x log(t) / (1 - t) dt`` for ``x >= 0`` (NaN below);
    float32 and float64 only, as JAX."""
    x = jnp.asarray(x)
    if x.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"x.dtype={x.dtype} is not supported, see docstring for supported "
                        "types.")
    safe = jnp.where((x > 0) & (x != 1), x, 0.5)
    inverted = safe > 2.0
    y = jnp.where(inverted, 1.0 / safe, safe)
    above = y > 1.5
    below = y < 0.5
    inverted = inverted | above
    w = jnp.where(above, 1.0 / y - 1.0, jnp.where(below, -y, y - 1.0))
    value = -w * ratio(_SPENCE_A, _SPENCE_B, w)
    value = jnp.where(below, np.pi ** 2 / 6.0 - jnp.log(y) * jnp.log(1.0 - y) - value, value)
    value = jnp.where(inverted, -0.5 * jnp.log(y) ** 2 - value, value)
    value = jnp.where(x == 1, 0.0, jnp.where(x == 0, np.pi ** 2 / 6, value))
    return jnp.where((x < 0) | jnp.isnan(x), np.nan, value).astype(x.dtype)
