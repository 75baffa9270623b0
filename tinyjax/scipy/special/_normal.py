"""The error function family and the normal distribution's functions: ``erf``,
``erfc``, ``erfinv``, ``erfcx``, ``ndtr``, ``ndtri``, ``log_ndtr``, ``dawsn``, ``fresnel``,
``wofz``: JAX's formulas, branch points and custom derivative rules (Cephes' rational
approximations), so values and gradients agree with JAX's to rounding."""
from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.lax.elementwise import complex_dtype
from tinyjax.numpy._util import promote_args_inexact
from tinyjax.scipy.special._gamma import _real
from tinyjax.scipy.special._util import in_float32_for_16_bits, polyval, ratio
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["dawsn", "erf", "erfc", "erfcx", "erfinv", "fresnel", "log_ndtr", "ndtr", "ndtri",
           "wofz"]


# ---------------------------------------------------------------------------
# thin wrappers of lax special functions
# ---------------------------------------------------------------------------

def erf(x: Any) -> Any:
    """The error function."""
    (x,) = _real("erf", x)
    return lax.erf(x)


def erfc(x: Any) -> Any:
    """The complementary error function ``1 - erf(x)``."""
    (x,) = _real("erfc", x)
    return lax.erfc(x)


def erfinv(x: Any) -> Any:
    """The inverse of ``erf`` on (-1, 1)."""
    (x,) = _real("erfinv", x)
    return lax.erf_inv(x)


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


def _ndtri(p: Any) -> Any:
    dtype = np.dtype(p.dtype).type
    maybe_complement_p = jnp.where(p > dtype(-np.expm1(-2.)), dtype(1.) - p, p)
    # a harmless value where p is 0 or 1 (those results are replaced below)
    sanitized_mcp = jnp.where(maybe_complement_p == dtype(0.),
                              jnp.full_like(p, dtype(0.5)), maybe_complement_p)

    # |p - 0.5| <= 0.5 - exp(-2): rational function of w = p - 0.5
    w = sanitized_mcp - dtype(0.5)
    ww = lax.square(w)
    x_for_big_p = w + w * ww * (polyval(_NDTRI_P0, ww) / polyval(_NDTRI_Q0, ww))
    x_for_big_p = x_for_big_p * -dtype(np.sqrt(2. * np.pi))

    # the tails: rational functions of 1/z with z = sqrt(-2 log p)
    z = lax.sqrt(dtype(-2.) * lax.log(sanitized_mcp))
    first_term = z - lax.log(z) / z
    second_term_small_p = (polyval(_NDTRI_P2, dtype(1.) / z)
                           / polyval(_NDTRI_Q2, dtype(1.) / z)) / z
    second_term_otherwise = (polyval(_NDTRI_P1, dtype(1.) / z)
                             / polyval(_NDTRI_Q1, dtype(1.) / z)) / z
    x_for_small_p = first_term - second_term_small_p
    x_otherwise = first_term - second_term_otherwise

    x = jnp.where(sanitized_mcp > dtype(np.exp(-2.)), x_for_big_p,
                  jnp.where(z >= dtype(8.0), x_for_small_p, x_otherwise))
    x = jnp.where(p > dtype(1. - np.exp(-2.)), x, -x)
    infinity = jnp.full_like(x, dtype(np.inf))
    # outside [0, 1] the logarithm above gives NaN, as in JAX
    return jnp.where(p == dtype(0.0), -infinity, jnp.where(p == dtype(1.0), infinity, x))


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


# ---------------------------------------------------------------------------
# erfcx, dawsn, fresnel
# ---------------------------------------------------------------------------

# erfcx(x) ~ 1/(sqrt(pi) x) sum_k c_k x^-2k with c_k = (-1)^k (2k-1)!! / 2^k (highest first)
_ERFCX_ASYMPTOTIC = (7918.06640625, -1055.7421875, 162.421875, -29.53125, 6.5625, -1.875,
                     .75, -.5, 1.)


def erfcx(x: Any) -> Any:
    """The scaled complementary error function ``exp(x**2) * erfc(x)``: for real ``x``
    computed directly until ``exp(x**2)`` would overflow, then by its asymptotic
    series; for complex ``x`` it is ``wofz(ix)``."""
    (x,) = promote_args_inexact("erfcx", x)
    if dtypes.is_complex(jnp.result_type(x)):
        return _wofz(lax.complex(-lax.imag(x), lax.real(x)))
    return _erfcx(x)


@custom_jvp
@in_float32_for_16_bits
def _erfcx(x: Any) -> Any:
    # terms enough that the first one left out is below the dtype's epsilon at the switch
    nterms = 9 if x.dtype == np.float64 else 5
    threshold = np.sqrt(np.log(float(dtypes.finfo(x.dtype).max)))
    large = x > threshold
    safe_x = jnp.where(large, jnp.ones_like(x), x)
    direct = lax.exp(lax.square(safe_x)) * lax.erfc(safe_x)
    asymptotic = polyval(_ERFCX_ASYMPTOTIC[-nterms:], 1.0 / lax.square(x)) / \
        (x * np.sqrt(np.pi).astype(x.dtype))
    return jnp.where(large, asymptotic, direct)


_erfcx.defjvps(lambda g, ans, x: g * (2 * x * ans - np.asarray(2 / np.sqrt(np.pi), x.dtype)))


# Cody, Paciorek and Thacher (1970): dawsn(x) = x P(x^2)/Q(x^2) below 3.25, and
# 0.5/x (1 + t P(t)/Q(t)) with t = 1/x^2 on [3.25, 6.25) and beyond (highest first)
_DAWSN_AN = (1.13681498971755972054e-11, 8.49262267667473811108e-10,
             1.94434204175553054283e-8, 9.53151741254484363489e-7,
             3.07828309874913200438e-6, 3.52513368520288738649e-4,
             -8.50149846724410912031e-4, 4.22618223005546594270e-2,
             -9.17480371773452345351e-2, 9.99999999999999994612e-1)
_DAWSN_AD = (2.40372073066762605484e-11, 1.48864681368493396752e-9,
             5.21265281010541664570e-8, 1.27258478273186970203e-6,
             2.32490249820789513991e-5, 3.25524741826057911661e-4,
             3.48805814657162590916e-3, 2.79448531198828973716e-2,
             1.58874241960120565368e-1, 5.74918629489320327824e-1,
             1.00000000000000000539e0)
_DAWSN_BN = (5.08955156417900903354e-1, -2.44754418142697847934e-1,
             9.41512335303534411857e-2, -2.18711255142039025206e-2,
             3.66207612329569181322e-3, -4.23209114460388756528e-4,
             3.59641304793896631888e-5, -2.14640351719968974225e-6,
             9.10010780076391431042e-8, -2.40274520828250956942e-9,
             3.59233385440928410398e-11)
_DAWSN_BD = (1.00000000000000000000e0, -6.31839869873368190192e-1,
             2.36706788228248691528e-1, -5.31806367003223277662e-2,
             8.48041718586295374409e-3, -9.47996768486665330168e-4,
             7.81025592944552338085e-5, -4.55875153252442634831e-6,
             1.89100358111421846170e-7, -4.91324691331920606875e-9,
             7.18466403235734541950e-11)
_DAWSN_CN = (-5.90592860534773254987e-1, 6.29235242724368800674e-1,
             -1.72858975380388136411e-1, 1.64837047825189632310e-2,
             -4.86827613020462700845e-4)
_DAWSN_CD = (1.00000000000000000000e0, -2.69820057197544900361e0,
             1.73270799045947845857e0, -3.93708582281939493482e-1,
             3.44278924041233391079e-2, -9.73655226040941223894e-4)


def dawsn(x: Any) -> Any:
    """Dawson's integral ``exp(-x**2) * integral_0^x exp(t**2) dt``."""
    (x,) = _real("dawsn", x)
    return _dawsn(x)


@custom_jvp
@in_float32_for_16_bits
def _dawsn(x: Any) -> Any:
    ax = lax.abs(x)
    near = ax < 3.25
    middle = (ax >= 3.25) & (ax < 6.25)
    # every region sees a harmless argument where it is not used (no inf/inf)
    a1 = jnp.where(near, ax, 1.0)
    value_near = a1 * ratio(_DAWSN_AN, _DAWSN_AD, a1 * a1)

    def tail(where, num, den):
        a = jnp.where(where, ax, 1.0)
        t = 1.0 / (a * a)
        return (0.5 / a) * (1.0 + t * ratio(num, den, t))
    value = jnp.where(near, value_near,
                      jnp.where(middle, tail(middle, _DAWSN_BN, _DAWSN_BD),
                                tail(ax >= 6.25, _DAWSN_CN, _DAWSN_CD)))
    return jnp.sign(x) * value


_dawsn.defjvps(lambda g, ans, x: g * (1.0 - 2.0 * x * ans))


# Cephes' fresnl: small |x| (x^2 < 2.5625) by rational functions of x^4, larger by the
# auxiliary functions f, g of u = 1/(pi x^2)^2; single precision uses polynomials only.
_FRESNEL_F64 = dict(
    sn=(-2.99181919401019853726e3, 7.08840045257738576863e5, -6.29741486205862506537e7,
        2.54890880573376359104e9, -4.42979518059697779103e10, 3.18016297876567817986e11),
    sd=(1.0, 2.81376268889994315696e2, 4.55847810806532581675e4, 5.17343888770096400730e6,
        4.19320245898111231129e8, 2.24411795645340920940e10, 6.07366389490084639049e11),
    cn=(-4.98843114573573548651e-8, 9.50428062829859605134e-6, -6.45191435683965050962e-4,
        1.88843319396703850064e-2, -2.05525900955013891793e-1, 9.99999999999999998822e-1),
    cd=(3.99982968972495980367e-12, 9.15439215774657478799e-10, 1.25001862479598821474e-7,
        1.22262789024179030997e-5, 8.68029542941784300606e-4, 4.12142090722199792936e-2,
        1.00000000000000000118e0),
    fn=(4.21543555043677546506e-1, 1.43407919780758885261e-1, 1.15220955073585758835e-2,
        3.45017939782574027900e-4, 4.63613749287867322088e-6, 3.05568983790257605827e-8,
        1.02304514164907233465e-10, 1.72010743268161828879e-13, 1.34283276233062758925e-16,
        3.76329711269987889006e-20),
    fd=(1.0, 7.51586398353378947175e-1, 1.16888925859191382142e-1, 6.44051526508858611005e-3,
        1.55934409164153020873e-4, 1.84627567348930545870e-6, 1.12699224763999035261e-8,
        3.60140029589371370404e-11, 5.88754533621578410010e-14, 4.52001434074129701496e-17,
        1.25443237090011264384e-20),
    gn=(5.04442073643383265887e-1, 1.97102833525523411709e-1, 1.87648584092575249293e-2,
        6.84079380915393090172e-4, 1.15138826111884280931e-5, 9.82852443688422223854e-8,
        4.45344415861750144738e-10, 1.08268041139020870318e-12, 1.37555460633261799868e-15,
        8.36354435630677421531e-19, 1.86958710162783235106e-22),
    gd=(1.0, 1.47495759925128324529e0, 3.37748989120019970451e-1, 2.53603741420338795122e-2,
        8.14679107184306179049e-4, 1.27545075667729118702e-5, 1.04314589657571990585e-7,
        4.60680728146520428211e-10, 1.10273215066240270757e-12, 1.38796531259578871258e-15,
        8.39158816283118707363e-19, 1.86958710162783236342e-22))
_FRESNEL_F32 = dict(
    sn=(1.647629463788700e-9, -1.522754752581096e-7, 8.424748808502400e-6,
        -3.120693124703272e-4, 7.244727626597022e-3, -9.228055941124598e-2,
        5.235987735681432e-1),
    cn=(1.416802502367354e-8, -1.157231412229871e-6, 5.387223446683264e-5,
        -1.604381798862293e-3, 2.818489036795073e-2, -2.467398198317899e-1,
        9.999999760004487e-1),
    fn=(-1.903009855649792e12, 1.355942388050252e11, -4.158143148511033e9,
        7.343848463587323e7, -8.732356681548485e5, 8.560515466275470e3,
        -1.032877601091159e2, 2.999401847870011e0),
    gn=(-1.860843997624650e11, 1.278350673393208e10, -3.779387713202229e8,
        6.492611570598858e6, -7.787789623358162e4, 8.602931494734327e2,
        -1.493439396592284e1, 9.999841934744914e-1))


def _sin_cos_half_pi_square(x: Any) -> tuple[Any, Any]:
    """``sin(pi x^2 / 2)`` and ``cos(pi x^2 / 2)`` with the argument reduced modulo 2
    exactly (``x^2 / 2 mod 2`` computed from ``x mod 2``), accurate for large ``x``."""
    x = jnp.abs(x)
    s = jnp.fmod(x, 2.0)
    r = jnp.fmod(s * (x - s / 2), 2.0)
    sin = jnp.where(r < 0.5, jnp.sin(np.pi * r),
                    jnp.where(r > 1.5, jnp.sin(np.pi * (r - 2.0)), -jnp.sin(np.pi * (r - 1.0))))
    cos = jnp.where(r == 0.5, 0.0,
                    jnp.where(r < 1.0, -jnp.sin(np.pi * (r - 0.5)), jnp.sin(np.pi * (r - 1.5))))
    return sin, cos


def fresnel(x: Any) -> tuple[Any, Any]:
    """The Fresnel integrals ``(S(x), C(x))``, integrals of ``sin(pi t^2/2)`` and
    ``cos(pi t^2/2)`` from 0 to ``x``."""
    (x,) = _real("fresnel", x)
    return _fresnel(x)


@custom_jvp
@in_float32_for_16_bits
def _fresnel(xa: Any) -> tuple[Any, Any]:
    double = xa.dtype == np.float64
    k = _FRESNEL_F64 if double else _FRESNEL_F32
    x = jnp.abs(xa)
    x2 = x * x
    t4 = x2 * x2
    if double:
        s_small = x * x2 * ratio(k["sn"], k["sd"], t4)
        c_small = x * ratio(k["cn"], k["cd"], t4)
    else:
        s_small = x * x2 * polyval(k["sn"], t4)
        c_small = x * polyval(k["cn"], t4)
    sin, cos = _sin_cos_half_pi_square(x)
    if double:
        c_large = 0.5 + 1 / (np.pi * x) * sin
        s_large = 0.5 - 1 / (np.pi * x) * cos
    else:
        c_large = s_large = jnp.full_like(x, 0.5)
    t = np.pi * x2
    u = 1.0 / (t * t)
    if double:
        f = 1.0 - u * ratio(k["fn"], k["fd"], u)
        g = (1.0 / t) * ratio(k["gn"], k["gd"], u)
    else:
        f = 1.0 - u * polyval(k["fn"], u)
        g = (1.0 / t) * polyval(k["gn"], u)
    c_mid = 0.5 + (f * sin - g * cos) / (np.pi * x)
    s_mid = 0.5 - (f * cos + g * sin) / (np.pi * x)
    small, large, inf = x2 < 2.5625, x > 36974.0, jnp.isinf(xa)
    s = jnp.where(inf, 0.5, jnp.where(small, s_small, jnp.where(large, s_large, s_mid)))
    c = jnp.where(inf, 0.5, jnp.where(small, c_small, jnp.where(large, c_large, c_mid)))
    negative = xa < 0
    return jnp.where(negative, -s, s), jnp.where(negative, -c, c)


@_fresnel.defjvp
def _fresnel_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    sin, cos = _sin_cos_half_pi_square(x)
    return _fresnel(x), (sin * t, cos * t)


# ---------------------------------------------------------------------------
# the Faddeeva function wofz (and erfcx of complex arguments)
# ---------------------------------------------------------------------------

def _weideman_coefficients(n: int) -> tuple[float, np.ndarray]:
    """Weideman's rational approximation of the Faddeeva function in the closed upper
    half-plane (SIAM J. Numer. Anal. 31(5), 1994)::

        w(z) ~ 2 p(Z) / (L - iz)^2 + 1 / (sqrt(pi) (L - iz)),   Z = (L + iz) / (L - iz)

    with ``L = sqrt(n / sqrt(2))`` and ``p`` of degree ``n - 1``, its coefficients
    (highest degree first) the Fourier coefficients of ``exp(-t^2) (L^2 + t^2)`` at
    ``t = L tan(theta / 2)``, computed by his FFT recipe: ``(L, coefficients)``."""
    m = 2 * n
    scale = np.sqrt(n / np.sqrt(2.0))
    t = scale * np.tan(np.arange(-m + 1, m) * np.pi / (2 * m))
    f = np.concatenate([[0.0], np.exp(-t * t) * (scale ** 2 + t * t)])
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / (2 * m)
    return float(scale), a[n:0:-1]


_WOFZ_L, _WOFZ_COEFFICIENTS = _weideman_coefficients(32)


def _to_complex(name: str, z: Any) -> Any:
    """``z`` promoted to an inexact dtype, then made complex (JAX's
    ``promote_args_complex``)."""
    (z,) = promote_args_inexact(name, z)
    return lax.convert_element_type(z, complex_dtype(jnp.result_type(z)))


def wofz(z: Any) -> Any:
    """The Faddeeva function ``exp(-z**2) * erfc(-iz)`` (complex; real input is made
    complex): Weideman's 32-term rational approximation in the upper half-plane and
    ``w(z) = 2 exp(-z^2) - w(-z)`` below it, as JAX computes it."""
    return _wofz(_to_complex("wofz", z))


def _wofz_upper_half_plane(z: Any) -> Any:
    iz = lax.complex(-lax.imag(z), lax.real(z))
    denominator = _WOFZ_L - iz
    p = polyval(_WOFZ_COEFFICIENTS, (_WOFZ_L + iz) / denominator)
    return 2 * p / (denominator * denominator) + (1 / np.sqrt(np.pi)) / denominator


@custom_jvp
def _wofz(z: Any) -> Any:
    upper = lax.imag(z) >= 0
    w = _wofz_upper_half_plane(jnp.where(upper, z, -z))
    return jnp.where(upper, w, 2 * lax.exp(-z * z) - w)


# w'(z) = -2 z w(z) + 2i / sqrt(pi) (w is holomorphic)
_wofz.defjvps(lambda g, ans, z: g * (-2 * z * ans + 2j / np.sqrt(np.pi)))
