"""Special functions against scipy.special: each case names tinyjax's function, scipy's,
the ranges its arguments are drawn from, and the relative tolerance in float32 and
float64 (the larger ones are where JAX's own algorithm is that accurate)."""
import numpy as np
import scipy.special as sps

from tinyjax.scipy import special


def _int_arg(lo, hi):
    return ("int", lo, hi)


CASES = {
    # name: (tinyjax, scipy, argument ranges, (rtol float32, rtol float64)); None: untested
    "gammaln": (special.gammaln, sps.gammaln, [(0.1, 30)], (2e-5, 1e-12)),
    "gamma": (special.gamma, sps.gamma, [(-4.5, 10)], (2e-5, 1e-12)),
    "loggamma": (special.loggamma, sps.loggamma, [(0.1, 30)], (2e-5, 1e-12)),
    "gammasgn": (special.gammasgn, sps.gammasgn, [(-10, 10)], (0, 0)),
    "digamma": (special.digamma, sps.digamma, [(0.1, 30)], (1e-4, 1e-9)),
    "gammainc": (special.gammainc, sps.gammainc, [(0.05, 30), (0, 40)], (5e-5, 1e-11)),
    "gammaincc": (special.gammaincc, sps.gammaincc, [(0.05, 30), (0, 40)], (5e-5, 1e-11)),
    "betainc": (special.betainc, sps.betainc, [(0.1, 10), (0.1, 10), (0, 1)], (1e-4, 1e-10)),
    "betaln": (special.betaln, sps.betaln, [(0.1, 30), (0.1, 30)], (1e-5, 1e-6)),
    "beta": (special.beta, sps.beta, [(0.1, 8), (0.1, 8)], (5e-5, 1e-12)),
    "factorial": (special.factorial, sps.factorial, [(0, 20)], (5e-5, 1e-12)),
    "poch": (special.poch, sps.poch, [(0.5, 5), (-2, 5)], (5e-5, 1e-11)),
    "multigammaln": (lambda a: special.multigammaln(a, 3),
                     lambda a: sps.multigammaln(a, 3), [(1.5, 20)], (1e-5, 1e-12)),
    "polygamma": (special.polygamma, sps.polygamma, [_int_arg(0, 4), (0.2, 10)],
                  (1e-4, 1e-9)),
    "i0": (special.i0, sps.i0, [(-20, 20)], (5e-6, 1e-14)),
    "i0e": (special.i0e, sps.i0e, [(-50, 50)], (5e-6, 1e-14)),
    "i1": (special.i1, sps.i1, [(-20, 20)], (5e-6, 1e-14)),
    "i1e": (special.i1e, sps.i1e, [(-50, 50)], (5e-6, 1e-14)),
    "erfcx": (special.erfcx, sps.erfcx, [(-5, 60)], (2e-5, 1e-12)),
    "dawsn": (special.dawsn, sps.dawsn, [(-20, 20)], (2e-6, 1e-14)),
    "exp1": (special.exp1, sps.exp1, [(0.01, 50)], (2e-5, 1e-10)),
    "expi": (special.expi, sps.expi, [(-50, 80)], (2e-5, 1e-10)),
    "expn": (special.expn, sps.expn, [_int_arg(0, 8), (0.01, 10)], (2e-5, 1e-10)),
    "spence": (special.spence, sps.spence, [(0, 10)], (2e-6, 1e-14)),
    "zeta": (special.zeta, sps.zeta, [(1.1, 10), (0.05, 20)], (2e-5, 1e-14)),
    "hyp1f1": (special.hyp1f1, sps.hyp1f1, [(-3, 3), (0.5, 5), (-1, 10)], (3e-4, 1e-9)),
    # negative x runs Kummer's transformation (the direct series cancels there: 5e-8
    # in float64); against a 60-digit sum of the series tinyjax is within 5e-14 and
    # SciPy within 6e-13 over these ranges, hence 1e-11 (float32: within 7e-5 over 3000
    # draws, the tolerance of the case above)
    "hyp1f1_negative_x": (special.hyp1f1, sps.hyp1f1, [(-3, 3), (0.5, 5), (-10, 0)],
                          (3e-4, 1e-11)),
    "hyp2f1": (special.hyp2f1, sps.hyp2f1, [(-3, 3), (-3, 3), (0.5, 5), (-0.9, 0.85)],
               (2e-4, 1e-9)),
    "owens_t": (special.owens_t, sps.owens_t, [(-5, 5), (-5, 5)], (2e-5, 1e-12)),
    # float32: p log(p/q) - p + q cancels where p is close to q (absolute error ~ eps)
    "kl_div": (special.kl_div, sps.kl_div, [(0.01, 3), (0.01, 3)], (2e-3, 1e-12)),
    "rel_entr": (special.rel_entr, sps.rel_entr, [(0.01, 3), (0.01, 3)], (1e-4, 1e-12)),
    "boxcox": (special.boxcox, sps.boxcox, [(0.1, 10), (-2, 2)], (1e-5, 1e-12)),
    "boxcox1p": (special.boxcox1p, sps.boxcox1p, [(-0.9, 10), (-2, 2)], (1e-5, 1e-12)),
    "comb": (lambda n, k: special.comb(n, k), lambda n, k: sps.comb(n, k),
             [_int_arg(0, 25), _int_arg(0, 25)], (5e-5, 1e-11)),
}
# fresnel and sici return pairs
PAIRS = {
    "fresnel": (special.fresnel, sps.fresnel, [(-30, 30)], (2e-5, 1e-12)),
    "sici": (special.sici, sps.sici, [(-60, 60)], (2e-5, 1e-10)),
}


def draw_args(ranges, rng, n, dtype):
    out = []
    for r in ranges:
        if r[0] == "int":
            out.append(rng.integers(r[1], r[2] + 1, n))
        else:
            out.append(rng.uniform(r[0], r[1], n).astype(dtype))
    return out


def reference(fn, args):
    return np.asarray(fn(*[np.asarray(a, np.float64) if a.dtype.kind == "f" else a
                           for a in args]), np.float64)


__all__ = ["CASES", "PAIRS", "draw_args", "reference"]
