"""Special functions as elementwise primitives defined by compositions of lax ops.

``igamma``, ``igammac``, ``igamma_grad_a``, ``regularized_incomplete_beta`` (``betainc``),
``bessel_i0e``, ``bessel_i1e`` and ``zeta`` are primitives, as in JAX, so that they appear
in jaxprs and carry JAX's derivative rules; each one's *definition* is a function written
in other lax operations (power series and continued fractions run as ``while_loop``\\ s
until every element has converged, Chebyshev and Euler-Maclaurin sums with fixed term
counts).  That one definition serves every evaluator: eager evaluation runs it op by op,
and the compiler expands the primitive into it before lowering
(:mod:`tinyjax.lax.composite`), as JAX's ``mlir.lower_fun`` does.

The algorithms are XLA's and JAX's (``jax/_src/lax/special.py``): the incomplete gamma
function by its series below ``x = max(1, a)`` and Legendre's continued fraction above,
with their derivatives in ``a`` carried along; the incomplete beta function by the
Lentz-Thompson-Barnett evaluation of its continued fraction (DLMF 8.17.22) on the side of
``(a + 1) / (a + b + 2)`` where it converges fast; Cephes' Chebyshev expansions for the
scaled Bessel functions; the Euler-Maclaurin formula for the Hurwitz zeta function.
16-bit floats are computed in float32 and rounded back.
"""
from __future__ import annotations

import enum
import math
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite
from tinyjax.lax.control_flow import while_loop
from tinyjax.lax.elementwise import (abs, add, bitwise_and,  # noqa: A004
                                     bitwise_not, bitwise_or, convert_element_type, digamma,
                                     div, eq, exp, floor, ge, gt, le, lgamma, log, log1p, lt,
                                     mul, ne, neg, rem, select, sign, sqrt, sub)
from tinyjax.lax.elementwise import pow as _pow
from tinyjax.lax.reductions import reduce_or
from tinyjax.lax.shape import broadcast_in_dim, full
from tinyjax.interpreters import ad, batching

__all__ = [
    "betainc", "bessel_i0e", "bessel_i0e_p", "bessel_i1e", "bessel_i1e_p",
    "igamma", "igamma_grad_a", "igamma_grad_a_p", "igamma_p", "igammac", "igammac_p",
    "random_gamma_grad", "regularized_incomplete_beta_p", "zeta", "zeta_p",
]

_LOW_PRECISION = (np.dtype(np.float16), np.dtype(dtypes.bfloat16))


# ---------------------------------------------------------------------------
# defining a composite primitive
# ---------------------------------------------------------------------------


def _in_float32_for_16_bits(definition: Callable) -> Callable:
    """Broadcast the operands to one shape and run ``definition(*operands, dtype=...)``,
    computing 16-bit floats in float32 (the series constants need its precision)."""
    def run(*args):
        args = [as_operand(a) for a in args]
        shape = np.broadcast_shapes(*(get_aval(a).shape for a in args))
        args = [a if get_aval(a).shape == shape else
                broadcast_in_dim(a, shape, tuple(range(len(shape) - get_aval(a).ndim,
                                                       len(shape))))
                for a in args]
        dt = get_aval(args[0]).dtype
        if dt in _LOW_PRECISION:
            out = definition(*[convert_element_type(a, np.float32) for a in args],
                             dtype=np.dtype(np.float32))
            return convert_element_type(out, dt)
        return definition(*args, dtype=dt)
    return run


def _composite(name: str, definition: Callable) -> Primitive:
    """An elementwise primitive on floating operands of one dtype (and one shape, or
    rank 0 broadcasting, as JAX's binary primitives) defined by ``definition``."""
    prim = Primitive(name)
    define_composite(prim, _in_float32_for_16_bits(definition))

    def abstract_eval(*avals):
        for i, a in enumerate(avals):
            if not dtypes.is_float(a.dtype):
                raise TypeError(f"{name} does not accept dtype {a.dtype.name} at position {i}."
                                f" Accepted dtypes at position {i} are subtypes of floating.")
        if len({a.dtype for a in avals}) > 1:
            raise TypeError(f"lax.{name} requires arguments to have the same dtypes, got "
                            f"{', '.join(a.dtype.name for a in avals)}.")
        shapes = {a.shape for a in avals if a.shape}
        if len(shapes) > 1:
            raise TypeError(f"{name} got incompatible shapes for broadcasting: "
                            f"{', '.join(str(a.shape) for a in avals)}.")
        shape = shapes.pop() if shapes else ()
        return ShapedArray(shape, avals[0].dtype, all(a.weak_type for a in avals))
    prim.def_abstract_eval(abstract_eval)
    prim.weak_type_rule = lambda weak, **params: all(weak)
    batching.defbroadcasting(prim)
    return prim


def _operands(*args: Any) -> list:
    """Operands of a special-function primitive: arrays keep their dtype, Python scalars
    take the first array's dtype (weak typing)."""
    first = next((a for a in args if type(a) not in (int, float)), None)
    dt = None if first is None else get_aval(as_operand(first)).dtype
    return [as_operand(a, dt) if type(a) in (int, float) else as_operand(a) for a in args]


# ---------------------------------------------------------------------------
# small helpers for the definitions (operands of one shape and dtype)
# ---------------------------------------------------------------------------


def _k(x: Any, value: float) -> Any:
    """``value`` as a weakly typed rank-0 constant of ``x``'s dtype (broadcast by the
    binary ops; weak, so that derivatives of weakly typed inputs stay weak)."""
    return as_operand(np.asarray(value, get_aval(x).dtype), weak=True)


def _full(x: Any, value: Any) -> Any:
    return full(get_aval(x).shape, value, get_aval(x).dtype)


def _any(pred: Any) -> Any:
    return reduce_or(pred, tuple(range(get_aval(pred).ndim)))


def _isnan(x: Any) -> Any:
    return ne(x, x)


def _or(*preds: Any) -> Any:
    out = preds[0]
    for p in preds[1:]:
        out = bitwise_or(out, p)
    return out


# ---------------------------------------------------------------------------
# incomplete gamma function
# ---------------------------------------------------------------------------


class IgammaMode(enum.Enum):
    """What the series and the continued fraction compute: P(a, x), dP/da, or the
    derivative of a Gamma(a) sample x with respect to a (implicit reparameterisation:
    -(dP/da) / (dP/dx))."""
    VALUE = 1
    DERIVATIVE = 2
    SAMPLE_DERIVATIVE = 3


def _igamma_series(ax, x, a, enabled, dtype, mode: IgammaMode):
    """P(a, x) = ax/a * sum_n x^n / ((a+1)...(a+n)) with ax = x^a e^-x / Gamma(a), and
    the sum's derivative in ``a``, each element stopping once its terms are negligible."""
    eps = float(dtypes.finfo(dtype).eps)

    def body(vals):
        on, r, c, ans, dc_da, dans_da = vals
        r1 = add(r, _k(r, 1.0))
        dc_da1 = sub(mul(dc_da, div(x, r1)), div(mul(c, x), mul(r1, r1)))
        dans_da1 = add(dans_da, dc_da1)
        c1 = mul(c, div(x, r1))
        ans1 = add(ans, c1)
        if mode is IgammaMode.VALUE:
            more = gt(div(c1, ans1), _k(c1, eps))
        else:
            more = gt(abs(div(dc_da1, dans_da1)), _k(dc_da1, eps))
        return (bitwise_and(on, more), select(on, r1, r), select(on, c1, c),
                select(on, ans1, ans), select(on, dc_da1, dc_da),
                select(on, dans_da1, dans_da))

    one, zero = _full(a, 1.0), _full(a, 0.0)
    _, _, _, ans, _, dans_da = while_loop(lambda v: _any(v[0]), body,
                                          (enabled, a, one, one, zero, zero))
    if mode is IgammaMode.VALUE:
        return div(mul(ans, ax), a)
    dlogax_da = sub(log(x), digamma(add(a, _k(a, 1.0))))
    if mode is IgammaMode.DERIVATIVE:
        return div(mul(ax, add(mul(ans, dlogax_da), dans_da)), a)
    return div(mul(neg(add(dans_da, mul(ans, dlogax_da))), x), a)


def _igammac_continued_fraction(ax, x, a, enabled, dtype, mode: IgammaMode):
    """Q(a, x) = ax * (Legendre's continued fraction), evaluated by its convergents
    p_k / q_k (rescaled when they grow), with their derivatives in ``a``; at most 2000
    steps."""
    eps = float(dtypes.finfo(dtype).eps)

    def cond(vals):
        return bitwise_and(lt(vals[5], _k(vals[5], 2000.0)), _any(vals[0]))

    def body(vals):
        (on, ans, t, y, z, c, pkm1, qkm1, pkm2, qkm2,
         dpkm2_da, dqkm2_da, dpkm1_da, dqkm1_da, dans_da) = vals
        c1 = add(c, _k(c, 1.0))
        y1 = add(y, _k(y, 1.0))
        z1 = add(z, _k(z, 2.0))
        yc = mul(y1, c1)
        pk = sub(mul(pkm1, z1), mul(pkm2, yc))
        qk = sub(mul(qkm1, z1), mul(qkm2, yc))
        nonzero = ne(qk, _k(qk, 0.0))
        r = div(pk, qk)
        t1 = select(nonzero, abs(div(sub(ans, r), r)), _full(r, 1.0))
        ans1 = select(nonzero, r, ans)
        dpk_da = add(sub(sub(mul(dpkm1_da, z1), pkm1), mul(dpkm2_da, yc)), mul(pkm2, c1))
        dqk_da = add(sub(sub(mul(dqkm1_da, z1), qkm1), mul(dqkm2_da, yc)), mul(qkm2, c1))
        dans_da1 = select(nonzero, div(sub(dpk_da, mul(ans1, dqk_da)), qk), dans_da)
        grad_change = select(nonzero, abs(sub(dans_da1, dans_da)), _full(dans_da, 1.0))
        rescale = gt(abs(pk), _k(pk, 1.0 / eps))

        def scaled(v):
            return select(rescale, mul(v, _k(v, eps)), v)
        new = [scaled(pkm1), scaled(qkm1), scaled(pk), scaled(qk), scaled(dpkm1_da),
               scaled(dqkm1_da), scaled(dpk_da), scaled(dqk_da)]
        npkm2, nqkm2, npkm1, nqkm1, ndpkm2, ndqkm2, ndpkm1, ndqkm1 = new
        if mode is IgammaMode.VALUE:
            more = gt(t1, _k(t1, eps))
        else:
            more = gt(grad_change, _k(grad_change, eps))
        keep = [ans, t, y, z]
        upd = [ans1, t1, y1, z1]
        out = [bitwise_and(on, more)] + [select(on, u, o) for u, o in zip(upd, keep)] + [c1]
        old = [pkm1, qkm1, pkm2, qkm2, dpkm2_da, dqkm2_da, dpkm1_da, dqkm1_da, dans_da]
        nxt = [npkm1, nqkm1, npkm2, nqkm2, ndpkm2, ndqkm2, ndpkm1, ndqkm1, dans_da1]
        return tuple(out + [select(on, u, o) for u, o in zip(nxt, old)])

    one = _k(x, 1.0)
    y = sub(one, a)
    z = add(add(x, y), one)
    pkm2, qkm2 = _full(x, 1.0), x
    pkm1, qkm1 = add(x, one), mul(z, x)
    ans = div(pkm1, qkm1)
    zero = _full(x, 0.0)
    dqkm1_da = neg(x)
    dans_da = div(neg(mul(ans, dqkm1_da)), qkm1)
    init = (enabled, ans, _full(x, 1.0), y, z, as_operand(np.asarray(0.0, dtype)), pkm1, qkm1,
            pkm2, qkm2, zero, zero, zero, dqkm1_da, dans_da)
    vals = while_loop(cond, body, init)
    ans, dans_da = vals[1], vals[14]
    if mode is IgammaMode.VALUE:
        return mul(ans, ax)
    dlogax_da = sub(log(x), digamma(a))
    if mode is IgammaMode.DERIVATIVE:
        return mul(ax, add(mul(ans, dlogax_da), dans_da))
    return neg(mul(add(dans_da, mul(ans, dlogax_da)), x))


def _log_ax(a, x, dtype):
    """log(x^a e^-x / Gamma(a)) and whether it underflows."""
    lax_ = sub(sub(mul(a, log(x)), x), lgamma(a))
    return lax_, lt(lax_, _k(lax_, -math.log(float(dtypes.finfo(dtype).max))))


def _igamma_definition(a, x, *, dtype):
    nan = _or(_isnan(a), _isnan(x))
    x_inf = eq(x, _k(x, np.inf))
    a_zero, x_zero = eq(a, _k(a, 0.0)), eq(x, _k(x, 0.0))
    domain_error = _or(lt(x, _k(x, 0.0)), lt(a, _k(a, 0.0)), bitwise_and(a_zero, x_zero), nan)
    use_cf = bitwise_and(ge(x, _k(x, 1.0)), gt(x, a))
    log_ax, underflow = _log_ax(a, x, dtype)
    ax = exp(log_ax)
    enabled = bitwise_not(_or(x_zero, domain_error, underflow, x_inf))
    out = select(use_cf,
                 sub(_k(a, 1.0), _igammac_continued_fraction(
                     ax, x, a, bitwise_and(enabled, use_cf), dtype, IgammaMode.VALUE)),
                 _igamma_series(ax, x, a, bitwise_and(enabled, bitwise_not(use_cf)), dtype,
                                IgammaMode.VALUE))
    out = select(x_zero, _full(a, 0.0), out)
    out = select(x_inf, _full(a, 1.0), out)
    return select(domain_error, _full(a, np.nan), out)


def _igammac_definition(a, x, *, dtype):
    nan = _or(_isnan(a), _isnan(x))
    a_zero, x_zero = eq(a, _k(a, 0.0)), eq(x, _k(x, 0.0))
    x_inf = eq(x, _k(x, np.inf))
    domain_error = _or(lt(x, _k(x, 0.0)), lt(a, _k(a, 0.0)), bitwise_and(a_zero, x_zero), nan)
    use_series = bitwise_or(lt(x, _k(x, 1.0)), lt(x, a))
    log_ax, underflow = _log_ax(a, x, dtype)
    enabled = bitwise_not(_or(domain_error, underflow, x_inf, a_zero))
    ax = exp(log_ax)
    series = _igamma_series(ax, x, a, bitwise_and(enabled, use_series), dtype,
                            IgammaMode.VALUE)
    cf = _igammac_continued_fraction(ax, x, a, bitwise_and(enabled, bitwise_not(use_series)),
                                     dtype, IgammaMode.VALUE)
    out = select(use_series, sub(_k(a, 1.0), series), cf)
    out = select(bitwise_or(x_inf, a_zero), _full(out, 0.0), out)
    return select(domain_error, _full(a, np.nan), out)


def _igamma_derivative(mode: IgammaMode):
    def definition(a, x, *, dtype):
        nan = _or(_isnan(a), _isnan(x))
        x_zero = eq(x, _k(x, 0.0))
        domain_error = bitwise_or(lt(x, _k(x, 0.0)), le(a, _k(a, 0.0)))
        use_cf = bitwise_and(gt(x, _k(x, 1.0)), gt(x, a))
        log_ax, underflow = _log_ax(a, x, dtype)
        ax = exp(log_ax)
        enabled = bitwise_not(_or(x_zero, domain_error, underflow, nan))
        out = select(use_cf,
                     neg(_igammac_continued_fraction(ax, x, a, bitwise_and(enabled, use_cf),
                                                     dtype, mode)),
                     _igamma_series(ax, x, a, bitwise_and(enabled, bitwise_not(use_cf)),
                                    dtype, mode))
        out = select(x_zero, _full(out, 0.0), out)
        return select(bitwise_or(domain_error, nan), _full(a, np.nan), out)
    return definition


igamma_p = _composite("igamma", _igamma_definition)
igammac_p = _composite("igammac", _igammac_definition)
igamma_grad_a_p = _composite("igamma_grad_a", _igamma_derivative(IgammaMode.DERIVATIVE))
_random_gamma_grad = _in_float32_for_16_bits(_igamma_derivative(IgammaMode.SAMPLE_DERIVATIVE))


def igamma(a: Any, x: Any) -> Any:
    """The regularized lower incomplete gamma function P(a, x)."""
    return igamma_p.bind(*_operands(a, x))


def igammac(a: Any, x: Any) -> Any:
    """The regularized upper incomplete gamma function Q(a, x) = 1 - P(a, x)."""
    return igammac_p.bind(*_operands(a, x))


def igamma_grad_a(a: Any, x: Any) -> Any:
    """The derivative of :func:`igamma` with respect to ``a``."""
    return igamma_grad_a_p.bind(*_operands(a, x))


def random_gamma_grad(a: Any, x: Any) -> Any:
    """The derivative of a Gamma(a, 1) sample ``x`` with respect to ``a`` (implicit
    reparameterisation: ``-(dP/da) / (dP/dx)`` at ``P(a, x)``)."""
    return _random_gamma_grad(*_operands(a, x))


def _igamma_dx(t, a, x):
    return mul(t, exp(sub(sub(mul(sub(a, _k(a, 1.0)), log(x)), x), lgamma(a))))


ad.defjvp(igamma_p, lambda t, a, x: mul(t, igamma_grad_a(a, x)), _igamma_dx)
ad.defjvp(igammac_p, lambda t, a, x: neg(mul(t, igamma_grad_a(a, x))),
          lambda t, a, x: neg(_igamma_dx(t, a, x)))


# ---------------------------------------------------------------------------
# incomplete beta function
# ---------------------------------------------------------------------------


def _lentz(num_iterations: int, tiny: float, numerator: Callable, denominator: Callable,
           shape: tuple, dtype) -> Any:
    """The continued fraction b0 + a1/(b1 + a2/(b2 + ...)) by the modified Lentz method,
    until every element's last factor is within ``tiny`` of 1 (or ``num_iterations``)."""
    def guard(v):
        return select(lt(abs(v), _k(v, tiny)), _full(v, tiny), v)

    def body(vals):
        i, _, c, d, h = vals
        an, bn = numerator(i), denominator(i)
        c1 = guard(add(bn, div(an, c)))
        d1 = div(_k(bn, 1.0), guard(add(bn, mul(an, d))))
        delta = mul(c1, d1)
        return (add(i, as_operand(np.int32(1))), _any(ge(abs(sub(delta, _k(delta, 1.0))),
                                                         _k(delta, tiny))),
                c1, d1, mul(h, delta))

    h = guard(denominator(as_operand(np.int32(0))))
    init = (as_operand(np.int32(1)), as_operand(np.bool_(True)), h, full(shape, 0.0, dtype), h)
    vals = while_loop(lambda v: bitwise_and(lt(v[0], as_operand(np.int32(num_iterations))),
                                            v[1]), body, init)
    return vals[4]


def _betainc_definition(a, b, x, *, dtype):
    shape = get_aval(a).shape
    a_zero = bitwise_or(eq(a, _k(a, 0.0)), eq(b, _k(b, np.inf)))
    b_zero = bitwise_or(eq(b, _k(b, 0.0)), eq(a, _k(a, np.inf)))
    x_zero, x_one = eq(x, _k(x, 0.0)), eq(x, _k(x, 1.0))
    nan = _or(_isnan(a), _isnan(b), _isnan(x))
    result_zero = bitwise_or(bitwise_and(b_zero, bitwise_not(x_one)),
                             bitwise_and(a_zero, x_zero))
    result_one = bitwise_or(bitwise_and(a_zero, bitwise_not(x_zero)),
                            bitwise_and(b_zero, x_one))
    result_nan = _or(lt(a, _k(a, 0.0)), lt(b, _k(b, 0.0)), lt(x, _k(x, 0.0)),
                     gt(x, _k(x, 1.0)), bitwise_and(a_zero, b_zero), nan)
    # the fraction converges fast below (a+1)/(a+b+2); above it, I_x(a,b) = 1 - I_1-x(b,a)
    direct = lt(x, div(add(a, _k(a, 1.0)), add(add(a, b), _k(b, 2.0))))
    a, b = select(direct, a, b), select(direct, b, a)
    x = select(direct, x, sub(_k(x, 1.0), x))
    one, two = _k(a, 1.0), _k(a, 2.0)

    def numerator(i):
        ib = broadcast_in_dim(i, shape, ())
        m = convert_element_type(div(sub(ib, as_operand(np.int32(1))),
                                     as_operand(np.int32(2))), dtype)
        even = eq(rem(ib, full(shape, 2, np.int32)), full(shape, 0, np.int32))
        m_zero = eq(m, _k(m, 0.0))
        first = div(mul(neg(add(a, b)), x), add(a, one))
        even_num = select(m_zero, first, div(mul(mul(neg(add(a, m)), add(add(a, b), m)), x),
                                             mul(add(a, mul(two, m)),
                                                 add(add(a, mul(two, m)), one))))
        odd_num = div(mul(mul(m, sub(b, m)), x),
                      mul(sub(add(a, mul(two, m)), one), add(a, mul(two, m))))
        out = select(even, even_num, odd_num)
        return select(eq(ib, full(shape, 1, np.int32)), _full(x, 1.0), out)

    def denominator(i):
        ib = broadcast_in_dim(i, shape, ())
        return select(eq(ib, full(shape, 0, np.int32)), _full(x, 0.0), _full(x, 1.0))

    eps = float(dtypes.finfo(dtype).eps) / 2
    fraction = _lentz(200 if dtype == np.float32 else 600, eps, numerator, denominator,
                      shape, dtype)
    very_small = float(dtypes.finfo(dtype).tiny) * 2
    lbeta_small_a = sub(lgamma(b), lgamma(add(a, b)))
    lbeta = add(lgamma(a), lbeta_small_a)
    factor = select(lt(a, _k(a, very_small)),
                    exp(sub(mul(log1p(neg(x)), b), lbeta_small_a)),
                    div(exp(sub(add(mul(log(x), a), mul(log1p(neg(x)), b)), lbeta)), a))
    out = mul(fraction, factor)
    out = select(direct, out, sub(_k(out, 1.0), out))
    out = select(result_zero, _full(a, 0.0), out)
    out = select(result_one, _full(a, 1.0), out)
    return select(result_nan, _full(a, np.nan), out)


regularized_incomplete_beta_p = _composite("regularized_incomplete_beta",
                                           _betainc_definition)


def betainc(a: Any, b: Any, x: Any) -> Any:
    """The regularized incomplete beta function I_x(a, b)."""
    return regularized_incomplete_beta_p.bind(*_operands(a, b, x))


def _betainc_no_grad(t, a, b, x):
    raise ValueError("Betainc gradient with respect to a and b not supported.")


def _betainc_dx(t, a, b, x):
    lbeta = sub(add(lgamma(a), lgamma(b)), lgamma(add(a, b)))
    return mul(t, exp(sub(add(mul(sub(b, _k(b, 1.0)), log1p(neg(x))),
                              mul(sub(a, _k(a, 1.0)), log(x))), lbeta)))


ad.defjvp(regularized_incomplete_beta_p, _betainc_no_grad, _betainc_no_grad, _betainc_dx)


# ---------------------------------------------------------------------------
# exponentially scaled modified Bessel functions of orders 0 and 1
# ---------------------------------------------------------------------------

# Cephes' Chebyshev coefficients (i0.c, i1.c): A on [0, 8] in t = x/2 - 2, B on (8, inf)
# in t = 32/x - 2; highest order first.  float32 needs only the trailing terms.
_I0E_A = (-4.41534164647933937950E-18, 3.33079451882223809783E-17,
          -2.43127984654795469359E-16, 1.71539128555513303061E-15,
          -1.16853328779934516808E-14, 7.67618549860493561688E-14,
          -4.85644678311192946090E-13, 2.95505266312963983461E-12,
          -1.72682629144155570723E-11, 9.67580903537323691224E-11,
          -5.18979560163526290666E-10, 2.65982372468238665035E-9,
          -1.30002500998624804212E-8, 6.04699502254191894932E-8,
          -2.67079385394061173391E-7, 1.11738753912010371815E-6,
          -4.41673835845875056359E-6, 1.64484480707288970893E-5,
          -5.75419501008210370398E-5, 1.88502885095841655729E-4,
          -5.76375574538582365885E-4, 1.63947561694133579842E-3,
          -4.32430999505057594430E-3, 1.05464603945949983183E-2,
          -2.37374148058994688156E-2, 4.93052842396707084878E-2,
          -9.49010970480476444210E-2, 1.71620901522208775349E-1,
          -3.04682672343198398683E-1, 6.76795274409476084995E-1)
_I0E_B = (-7.23318048787475395456E-18, -4.83050448594418207126E-18,
          4.46562142029675999901E-17, 3.46122286769746109310E-17,
          -2.82762398051658348494E-16, -3.42548561967721913462E-16,
          1.77256013305652638360E-15, 3.81168066935262242075E-15,
          -9.55484669882830764870E-15, -4.15056934728722208663E-14,
          1.54008621752140982691E-14, 3.85277838274214270114E-13,
          7.18012445138366623367E-13, -1.79417853150680611778E-12,
          -1.32158118404477131188E-11, -3.14991652796324136454E-11,
          1.18891471078464383424E-11, 4.94060238822496958910E-10,
          3.39623202570838634515E-9, 2.26666899049817806459E-8,
          2.04891858946906374183E-7, 2.89137052083475648297E-6,
          6.88975834691682398426E-5, 3.36911647825569408990E-3,
          8.04490411014108831608E-1)
_I1E_A = (2.77791411276104639959E-18, -2.11142121435816608115E-17,
          1.55363195773620046921E-16, -1.10559694773538630805E-15,
          7.60068429473540693410E-15, -5.04218550472791168711E-14,
          3.22379336594557470981E-13, -1.98397439776494371520E-12,
          1.17361862988909016308E-11, -6.66348972350202774223E-11,
          3.62559028155211703701E-10, -1.88724975172282928790E-9,
          9.38153738649577178388E-9, -4.44505912879632808065E-8,
          2.00329475355213526229E-7, -8.56872026469545474066E-7,
          3.47025130813767847674E-6, -1.32731636560394358279E-5,
          4.78156510755005422638E-5, -1.61760815825896745588E-4,
          5.12285956168575772895E-4, -1.51357245063125314899E-3,
          4.15642294431288815669E-3, -1.05640848946261981558E-2,
          2.47264490306265168283E-2, -5.29459812080949914269E-2,
          1.02643658689847095384E-1, -1.76416518357834055153E-1,
          2.52587186443633654823E-1)
_I1E_B = (7.51729631084210481353E-18, 4.41434832307170791151E-18,
          -4.65030536848935832153E-17, -3.20952592199342395980E-17,
          2.96262899764595013876E-16, 3.30820231092092828324E-16,
          -1.88035477551078244854E-15, -3.81440307243700780478E-15,
          1.04202769841288027642E-14, 4.27244001671195135429E-14,
          -2.10154184277266431302E-14, -4.08355111109219731823E-13,
          -7.19855177624590851209E-13, 2.03562854414708950722E-12,
          1.41258074366137813316E-11, 3.25260358301548823856E-11,
          -1.89749581235054123450E-11, -5.58974346219658380687E-10,
          -3.83538038596423702205E-9, -2.63146884688951950684E-8,
          -2.51223623787020892529E-7, -3.88256480887769039346E-6,
          -1.10588938762623716291E-4, -9.76109749136146840777E-3,
          7.78576235018280120474E-1)
# terms of the float64 expansions that matter in float32 (Cephes' single-precision sets)
_F32_TERMS = {id(_I0E_A): 18, id(_I0E_B): 7, id(_I1E_A): 17, id(_I1E_B): 7}


def _chebyshev(t, coefs, dtype):
    """Clenshaw's recurrence for sum' c_k T_k(t/2) (Cephes' chbevl)."""
    if dtype != np.float64:
        coefs = coefs[-_F32_TERMS[id(coefs)]:]
    b0, b1, b2 = _full(t, 0.0), _full(t, 0.0), _full(t, 0.0)
    for c in coefs:
        b2, b1 = b1, b0
        b0 = add(sub(mul(t, b1), b2), _k(t, c))
    return mul(_k(t, 0.5), sub(b0, b2))


def _bessel_ie(coefs_a, coefs_b, order: int):
    def definition(x, *, dtype):
        z = abs(x)
        small = _chebyshev(sub(mul(_k(z, 0.5), z), _k(z, 2.0)), coefs_a, dtype)
        if order == 1:
            small = mul(small, z)
        safe = select(le(z, _k(z, 8.0)), _full(z, 8.0), z)
        large = div(_chebyshev(sub(div(_k(z, 32.0), safe), _k(z, 2.0)), coefs_b, dtype),
                    sqrt(safe))
        out = select(le(z, _k(z, 8.0)), small, large)
        return mul(sign(x), out) if order == 1 else out
    return definition


bessel_i0e_p = _composite("bessel_i0e", _bessel_ie(_I0E_A, _I0E_B, 0))
bessel_i1e_p = _composite("bessel_i1e", _bessel_ie(_I1E_A, _I1E_B, 1))


def bessel_i0e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 0, ``exp(-|x|) I0(x)``."""
    return bessel_i0e_p.bind(as_operand(x))


def bessel_i1e(x: Any) -> Any:
    """The exponentially scaled modified Bessel function of order 1, ``exp(-|x|) I1(x)``."""
    return bessel_i1e_p.bind(as_operand(x))


def _bessel_i1e_dx(t, y, x):
    eps = float(dtypes.finfo(get_aval(x).dtype).eps)
    not_tiny = gt(abs(x), _k(x, eps))
    safe = select(not_tiny, x, _full(x, eps))
    dy = sub(bessel_i0e(safe), mul(y, add(sign(safe), div(_k(safe, 1.0), safe))))
    return mul(t, select(not_tiny, dy, _full(x, 0.5)))


ad.defjvp2(bessel_i0e_p, lambda t, y, x: mul(t, sub(bessel_i1e(x), mul(sign(x), y))))
ad.defjvp2(bessel_i1e_p, _bessel_i1e_dx)


# ---------------------------------------------------------------------------
# Hurwitz zeta function
# ---------------------------------------------------------------------------

# B_2k / (2k)! denominators of the Euler-Maclaurin correction terms: (2k)! / B_2k
_ZETA_EM_DENOMINATORS = (12.0, -720.0, 30240.0, -1209600.0, 47900160.0,
                         -1.8924375803183791606e9, 7.47242496e10, -2.950130727918164224e12,
                         1.1646782814350067249e14, -4.5979787224074726105e15,
                         1.8152105401943546773e17, -7.1661652561756670113e18)


def _zeta_definition(x, q, *, dtype):
    """zeta(x, q) = sum_{n<N} (q+n)^-x + (q+N)^(1-x)/(x-1) + (q+N)^-x/2
    + sum_k B_2k/(2k)! x(x+1)...(x+2k-2) (q+N)^(-x-2k+1)  (Euler-Maclaurin), with N = 9
    and twelve correction terms: no loop, one fused kernel."""
    n_terms = 9
    total = _full(q, 0.0)
    for n in range(n_terms):
        total = add(total, _pow(add(q, _k(q, float(n))), neg(x)))
    w = add(q, _k(q, float(n_terms)))
    w_pow = _pow(w, neg(x))
    total = add(total, div(mul(w_pow, w), sub(x, _k(x, 1.0))))
    total = add(total, mul(_k(x, 0.5), w_pow))
    rising = _full(x, 1.0)
    b = w_pow
    k = 0.0
    for denom in _ZETA_EM_DENOMINATORS:
        rising = mul(rising, add(x, _k(x, k)))
        b = div(b, w)
        total = add(total, div(mul(rising, b), _k(x, denom)))
        k += 1.0
        rising = mul(rising, add(x, _k(x, k)))
        b = div(b, w)
        k += 1.0
    q_nonpositive_int = bitwise_and(le(q, _k(q, 0.0)), eq(q, floor(q)))
    out = select(eq(x, _k(x, 1.0)), _full(x, np.inf), total)
    out = select(bitwise_and(lt(q, _k(q, 0.0)), ne(x, floor(x))), _full(x, np.nan), out)
    out = select(lt(x, _k(x, 1.0)), _full(x, np.nan), out)
    out = select(q_nonpositive_int, _full(x, np.inf), out)
    return select(bitwise_or(_isnan(x), _isnan(q)), _full(x, np.nan), out)


zeta_p = _composite("zeta", _zeta_definition)


def zeta(x: Any, q: Any) -> Any:
    """The Hurwitz zeta function zeta(x, q) = sum_n (n + q)^-x."""
    return zeta_p.bind(*_operands(x, q))

