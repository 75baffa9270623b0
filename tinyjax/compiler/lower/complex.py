"""Complex numbers lowered to pairs of real numbers.

A complex value of the jaxpr is lowered to a :class:`Pair` of real LazyOps (its real and
imaginary parts), and every complex operation to real operations on the parts: below
this module the compiler, the scheduler and every backend see real arrays only, so
fusion works across complex arithmetic and a backend needs no complex type.  A complex
buffer is the interleaved pair layout numpy (and C99, and cuComplex) use: a complex
input is loaded as a real array with a last axis of 2 and split into two views (no
copy); a complex output is stored the same way and read back as complex.

Structural primitives (movement, selection, gathers, sums) apply their real rule to
each part; arithmetic ones have formulas here, written with care where the naive one
overflows or loses precision (division, absolute value, logarithm, square root).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.compiler import ops
from tinyjax.compiler.lower.cumulative import prefix_view
from tinyjax.compiler.ops import LazyOp
from tinyjax import lax
from tinyjax.core import Primitive, ShapedArray

__all__ = ["Pair", "is_complex", "load_pair", "store_pair", "const_pair", "lower_complex",
           "complex_rules"]


class Pair(NamedTuple):
    """The real and imaginary parts of a complex value (two real LazyOps)."""
    re: LazyOp
    im: LazyOp

    @property
    def shape(self) -> tuple[int, ...]:
        return self.re.shape


def is_complex(dt) -> bool:
    return dtypes.is_complex(np.dtype(dt))


def part_dtype(dt) -> np.dtype:
    return np.dtype(np.float64 if np.dtype(dt) == np.complex128 else np.float32)


def _real_aval(a: ShapedArray) -> ShapedArray:
    return a.update(dtype=part_dtype(a.dtype)) if is_complex(a.dtype) else a


def load_pair(slot: int, shape: Sequence[int], dtype) -> tuple[LazyOp, Pair]:
    """A complex input: the LOAD of its interleaved buffer and the views of its parts."""
    shape = tuple(shape)
    leaf = ops.load(slot, shape + (2,), part_dtype(dtype))
    return leaf, Pair(*(ops.reshape(ops.shrink(leaf, [(0, s) for s in shape] + [(k, k + 1)]),
                                    shape) for k in (0, 1)))


def store_pair(z: Pair) -> LazyOp:
    """A complex output: its parts interleaved (a real array with a last axis of 2),
    selected by the position on that axis."""
    shape = z.shape + (2,)
    first = ops.alu("eq", ops.expand(ops.reshape(ops.idx(2, np.int32), (1,) * len(z.shape) +
                                                 (2,)), shape), ops.const(0, np.int32, shape))
    re, im = (ops.expand(ops.reshape(p, z.shape + (1,)), shape) for p in z)
    return ops.where(first, re, im)


def const_pair(value, dtype, shape) -> Pair:
    value = complex(np.asarray(value).item())
    dt = part_dtype(dtype)
    return Pair(ops.const(value.real, dt, shape), ops.const(value.imag, dt, shape))


# ---------------------------------------------------------------------------------------------
# arithmetic on pairs
# ---------------------------------------------------------------------------------------------

def _alu(name: str, *xs: LazyOp) -> LazyOp:
    return ops.alu(name, *xs)


def _k(x: LazyOp, value) -> LazyOp:
    return ops.const(value, x.dtype, x.shape)


def add(a: Pair, b: Pair) -> Pair:
    return Pair(_alu("add", a.re, b.re), _alu("add", a.im, b.im))


def sub(a: Pair, b: Pair) -> Pair:
    return Pair(_alu("sub", a.re, b.re), _alu("sub", a.im, b.im))


def neg(a: Pair) -> Pair:
    return Pair(_alu("neg", a.re), _alu("neg", a.im))


def mul(a: Pair, b: Pair) -> Pair:
    return Pair(_alu("sub", _alu("mul", a.re, b.re), _alu("mul", a.im, b.im)),
                _alu("add", _alu("mul", a.re, b.im), _alu("mul", a.im, b.re)))


def scale(a: Pair, s: LazyOp) -> Pair:
    """``a`` times the real ``s``."""
    return Pair(_alu("mul", a.re, s), _alu("mul", a.im, s))


def conj(a: Pair) -> Pair:
    return Pair(a.re, _alu("neg", a.im))


def div(a: Pair, b: Pair) -> Pair:
    """Smith's algorithm: scale by the larger part of the divisor (no overflow in
    ``|b|^2``)."""
    c, d = b
    use_c = _alu("ge", _alu("abs", c), _alu("abs", d))
    r = ops.where(use_c, _alu("div", d, c), _alu("div", c, d))
    den = ops.where(use_c, _alu("add", c, _alu("mul", d, r)), _alu("add", _alu("mul", c, r), d))
    re = ops.where(use_c, _alu("add", a.re, _alu("mul", a.im, r)),
                   _alu("add", _alu("mul", a.re, r), a.im))
    im = ops.where(use_c, _alu("sub", a.im, _alu("mul", a.re, r)),
                   _alu("sub", _alu("mul", a.im, r), a.re))
    return Pair(_alu("div", re, den), _alu("div", im, den))


def absolute(a: Pair) -> LazyOp:
    """``hypot(re, im)`` scaled by the larger part; infinite if either part is."""
    x, y = _alu("abs", a.re), _alu("abs", a.im)
    big, small = _alu("max", x, y), _alu("min", x, y)
    safe = ops.where(_alu("eq", big, _k(big, 0)), _k(big, 1), big)
    ratio = _alu("div", small, safe)
    out = _alu("mul", big, _alu("sqrt", _alu("add", _k(ratio, 1), _alu("mul", ratio, ratio))))
    out = ops.where(_alu("eq", big, _k(big, 0)), _k(big, 0), out)
    inf = _alu("or", _alu("eq", x, _k(x, np.inf)), _alu("eq", y, _k(y, np.inf)))
    return ops.where(inf, _k(x, np.inf), out)


def exp(a: Pair) -> Pair:
    e = _alu("exp", a.re)
    zero_im = _alu("eq", a.im, _k(a.im, 0))  # exp(x + 0i) = exp(x) + 0i, even for x = inf
    return Pair(ops.where(zero_im, e, _alu("mul", e, _alu("cos", a.im))),
                ops.where(zero_im, a.im, _alu("mul", e, _alu("sin", a.im))))


def log(a: Pair) -> Pair:
    return Pair(_alu("log", absolute(a)), _alu("atan2", a.im, a.re))


def sqrt(a: Pair) -> Pair:
    """The principal root: ``t = sqrt((|z| + |re|) / 2)``, then ``(t, im / 2t)`` for
    ``re >= 0`` and ``(|im| / 2t, copysign(t, im))`` otherwise."""
    x, y = a
    t = _alu("sqrt", _alu("mul", _alu("add", absolute(a), _alu("abs", x)), _k(x, 0.5)))
    zero = _alu("eq", t, _k(t, 0))
    two_t = ops.where(zero, _k(t, 1), _alu("mul", t, _k(t, 2)))
    pos = _alu("ge", x, _k(x, 0))
    neg_im = _alu("lt", y, _k(y, 0))
    re = ops.where(pos, t, _alu("div", _alu("abs", y), two_t))
    im = ops.where(pos, _alu("div", y, two_t), ops.where(neg_im, _alu("neg", t), t))
    inf_im = _alu("eq", _alu("abs", y), _k(y, np.inf))
    re = ops.where(zero, _k(x, 0), ops.where(inf_im, _k(x, np.inf), re))
    im = ops.where(zero, y, ops.where(inf_im, y, im))
    return Pair(re, im)


def sin(a: Pair) -> Pair:
    return Pair(_alu("mul", _alu("sin", a.re), _alu("cosh", a.im)),
                _alu("mul", _alu("cos", a.re), _alu("sinh", a.im)))


def cos(a: Pair) -> Pair:
    return Pair(_alu("mul", _alu("cos", a.re), _alu("cosh", a.im)),
                _alu("neg", _alu("mul", _alu("sin", a.re), _alu("sinh", a.im))))


def sinh(a: Pair) -> Pair:
    return Pair(_alu("mul", _alu("sinh", a.re), _alu("cos", a.im)),
                _alu("mul", _alu("cosh", a.re), _alu("sin", a.im)))


def cosh(a: Pair) -> Pair:
    return Pair(_alu("mul", _alu("cosh", a.re), _alu("cos", a.im)),
                _alu("mul", _alu("sinh", a.re), _alu("sin", a.im)))


def tanh(a: Pair) -> Pair:
    """``(sinh 2x + i sin 2y) / (cosh 2x + cos 2y)``; ``sign(x) + 0i`` once ``|x|`` is
    large enough that the quotient would overflow."""
    x2, y2 = _alu("mul", a.re, _k(a.re, 2)), _alu("mul", a.im, _k(a.im, 2))
    den = _alu("add", _alu("cosh", x2), _alu("cos", y2))
    big = _alu("gt", _alu("abs", a.re), _k(a.re, 20))
    return Pair(ops.where(big, _alu("sign", a.re), _alu("div", _alu("sinh", x2), den)),
                ops.where(big, _k(a.im, 0), _alu("div", _alu("sin", y2), den)))


def times_i(a: Pair) -> Pair:
    return Pair(_alu("neg", a.im), a.re)


def times_minus_i(a: Pair) -> Pair:
    return Pair(a.im, _alu("neg", a.re))


def real_pair(x: LazyOp) -> Pair:
    return Pair(x, _k(x, 0))


def one(a: Pair) -> Pair:
    return Pair(_k(a.re, 1), _k(a.im, 0))


def square(a: Pair) -> Pair:
    return Pair(_alu("sub", _alu("mul", a.re, a.re), _alu("mul", a.im, a.im)),
                _alu("mul", _k(a.re, 2), _alu("mul", a.re, a.im)))


def log1p(a: Pair) -> Pair:
    """``log(1 + z)``: the real part as ``log1p(2x + x^2 + y^2) / 2`` (accurate near 0)."""
    x, y = a
    arg = _alu("add", _alu("mul", _k(x, 2), x), _alu("add", _alu("mul", x, x), _alu("mul", y, y)))
    near = _alu("lt", absolute(a), _k(x, 0.5))
    re = ops.where(near, _alu("mul", _alu("log1p", arg), _k(x, 0.5)),
                   _alu("log", absolute(add(a, one(a)))))
    return Pair(re, _alu("atan2", y, _alu("add", x, _k(x, 1))))


def expm1(a: Pair) -> Pair:
    """``expm1(x) cos y - 2 sin^2(y / 2)`` for the real part (accurate near 0)."""
    x, y = a
    s = _alu("sin", _alu("mul", y, _k(y, 0.5)))
    re = _alu("sub", _alu("mul", _alu("expm1", x), _alu("cos", y)),
              _alu("mul", _k(s, 2), _alu("mul", s, s)))
    return Pair(re, _alu("mul", _alu("exp", x), _alu("sin", y)))


def power(a: Pair, b: Pair) -> Pair:
    """``exp(b log a)``; ``0 ** b`` is 1 for ``b = 0`` and 0 otherwise."""
    out = exp(mul(b, log(a)))
    a_zero = _alu("and", _alu("eq", a.re, _k(a.re, 0)), _alu("eq", a.im, _k(a.im, 0)))
    b_zero = _alu("and", _alu("eq", b.re, _k(b.re, 0)), _alu("eq", b.im, _k(b.im, 0)))
    zero_re = ops.where(b_zero, _k(a.re, 1), _k(a.re, 0))
    return Pair(ops.where(a_zero, zero_re, out.re), ops.where(a_zero, _k(a.im, 0), out.im))


def integer_power(a: Pair, y: int) -> Pair:
    if y == 0:
        return one(a)
    n, acc, base = abs(int(y)), None, a
    while n:
        if n & 1:
            acc = base if acc is None else mul(acc, base)
        n >>= 1
        if n:
            base = mul(base, base)
    return div(one(a), acc) if y < 0 else acc


def _asinh(a: Pair) -> Pair:
    return log(add(a, sqrt(add(square(a), one(a)))))


def _acosh(a: Pair) -> Pair:
    return log(add(a, mul(sqrt(add(a, one(a))), sqrt(sub(a, one(a))))))


def _atanh(a: Pair) -> Pair:
    d = sub(log1p(a), log1p(neg(a)))
    return scale(d, _k(d.re, 0.5))


def _asin(a: Pair) -> Pair:
    return times_minus_i(_asinh(times_i(a)))


def _acos(a: Pair) -> Pair:
    s = _asin(a)
    return Pair(_alu("sub", _k(s.re, np.pi / 2), s.re), _alu("neg", s.im))


def _atan(a: Pair) -> Pair:
    return times_minus_i(_atanh(times_i(a)))


def _tan(a: Pair) -> Pair:
    return times_minus_i(tanh(times_i(a)))


def _sign(a: Pair) -> Pair:
    m = absolute(a)
    zero = _alu("eq", m, _k(m, 0))
    safe = ops.where(zero, _k(m, 1), m)
    return Pair(ops.where(zero, _k(m, 0), _alu("div", a.re, safe)),
                ops.where(zero, _k(m, 0), _alu("div", a.im, safe)))


def _lexicographic(pick: str) -> Callable:
    """max/min: the operand larger (smaller) by real part, then imaginary part, the first
    on ties; an operand with a NaN part wins, the first one if both have (numpy's
    ``maximum``/``minimum``, which eager evaluation uses)."""
    def rule(avals_in, avals_out, a, b):
        shape = avals_out[0].shape
        a, b = (Pair(ops.broadcast_to(x.re, shape), ops.broadcast_to(x.im, shape))
                for x in (a, b))
        first = _alu(pick, a.re, b.re)
        ties = _alu("and", _alu("eq", a.re, b.re), _alu("ge" if pick == "gt" else "le",
                                                      a.im, b.im))
        take_a = _alu("or", _alu("or", first, ties), _has_nan(a))
        return Pair(ops.where(take_a, a.re, b.re), ops.where(take_a, a.im, b.im))
    return rule


# ---------------------------------------------------------------------------------------------
# reductions: products as trees of complex products, max/min in two real passes
# ---------------------------------------------------------------------------------------------
# No complex accumulator exists below this module, so the reductions that are not
# componentwise are built from real ones.  max and min follow JAX's lexicographic order
# (real part, then imaginary part) and propagate NaN as tinyjax's eager max/min (numpy's)
# do: an operand with a NaN part wins -- in a reduction the first one along the axis.


def _pair_map(fn: Callable, z: Pair) -> Pair:
    return Pair(fn(z.re), fn(z.im))


def _has_nan(z: Pair) -> LazyOp:
    return _alu("or", _alu("ne", z.re, z.re), _alu("ne", z.im, z.im))


def _to_last_axis(x: LazyOp, axes: Sequence[int]) -> LazyOp:
    """``x`` with the reduced ``axes`` moved last and merged into one (C order)."""
    kept = [a for a in range(x.ndim) if a not in axes]
    x = ops.permute(x, kept + sorted(axes))
    return ops.reshape(x, [x.shape[i] for i in range(len(kept))] +
                       [int(np.prod([x.shape[i] for i in range(len(kept), x.ndim)]))])


def _last_axis_iota(shape: tuple[int, ...]) -> LazyOp:
    n = shape[-1]
    return ops.expand(ops.reshape(ops.idx(n, np.int32), (1,) * (len(shape) - 1) + (n,)), shape)


def _identity_pair(op: str, dt, shape) -> Pair:
    """The identity of a complex reduction (``dt``: the parts' dtype): 1, or -inf / +inf
    (and 0i) for max / min."""
    value = {"prod": 1.0, "max": -np.inf, "min": np.inf}[op]
    return Pair(ops.const(value, dt, shape), ops.const(0.0, dt, shape))


# how many operands one round of a product multiplies (one kernel per round)
_PRODUCT_FAN_IN = 16


def _pairwise_product(parts: list[Pair]) -> Pair:
    while len(parts) > 1:
        parts = [mul(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _tree_product(z: Pair) -> Pair:
    """The product along the last axis, as a tree of complex products: each round cuts
    the axis into up to :data:`_PRODUCT_FAN_IN` slices of ``m`` elements (the last one
    completed with ones) and multiplies them elementwise, pairwise, until one element
    is left (the shape keeps a last axis of size 1)."""
    while z.shape[-1] > 1:
        n = z.shape[-1]
        m = -(-n // _PRODUCT_FAN_IN)
        lead = [(0, s) for s in z.shape[:-1]]
        slices = []
        for start in range(0, n, m):
            part = _pair_map(lambda p: ops.shrink(p, lead + [(start, min(start + m, n))]), z)
            if part.shape[-1] < m:
                size = part.shape[-1]
                part = _pair_map(lambda p: ops.pad(p, [(0, 0)] * len(lead) + [(0, m - size)]),
                                 part)
                inside = _alu("lt", _last_axis_iota(part.shape),
                              ops.const(size, np.int32, part.shape))
                ones = _identity_pair("prod", z.re.dtype, part.shape)
                part = Pair(ops.where(inside, part.re, ones.re),
                            ops.where(inside, part.im, ones.im))
            slices.append(part)
        z = _pairwise_product(slices)
    return z


def _reduce_prod(avals_in, avals_out, z, *, axes, **params):
    out_shape = avals_out[0].shape
    if not axes:
        return z
    if avals_in[0].size == 0:
        return _identity_pair("prod", part_dtype(avals_out[0].dtype), out_shape)
    return _pair_map(lambda p: ops.reshape(p, out_shape),
                     _tree_product(_pair_map(lambda p: _to_last_axis(p, axes), z)))


def _lexicographic_extreme(op: str, z: Pair, keep: LazyOp | None, axis: int) -> Pair:
    """The lexicographic ``op`` ('max' or 'min') of the elements of ``z`` along ``axis``
    where ``keep`` holds (all if None), the axis kept with size 1; the first element
    with a NaN part instead where there is one."""
    n = z.shape[axis]
    shape = z.shape
    pos = ops.expand(ops.reshape(ops.idx(n, np.int32), [n if a == axis else 1
                                                          for a in range(len(shape))]), shape)
    nan = _has_nan(z)
    usable = nan if keep is None else _alu("and", keep, nan)
    first_nan = ops.reduce(ops.where(usable, pos, ops.const(n, np.int32, shape)), "min",
                           (axis,))
    at_first = _alu("eq", pos, ops.expand(first_nan, shape))
    worst = ops.const(-np.inf if op == "max" else np.inf, z.re.dtype, shape)
    nan_value = _pair_map(lambda p: ops.reduce(ops.where(at_first, p, worst), op, (axis,)), z)
    # NaN-free: the extreme real part, then the extreme imaginary part among its ties
    ordered = _alu("not", nan) if keep is None else _alu("and", keep, _alu("not", nan))
    best_re = ops.reduce(ops.where(ordered, z.re, worst), op, (axis,))
    tie = _alu("and", ordered, _alu("eq", z.re, ops.expand(best_re, shape)))
    best_im = ops.reduce(ops.where(tie, z.im, worst), op, (axis,))
    found = _alu("lt", first_nan, ops.const(n, np.int32, first_nan.shape))
    return Pair(ops.where(found, nan_value.re, best_re), ops.where(found, nan_value.im, best_im))


def _reduce_extreme(op: str) -> Callable:
    def rule(avals_in, avals_out, z, *, axes, **params):
        out_shape = avals_out[0].shape
        if not axes:
            return z
        if avals_in[0].size == 0:
            return _identity_pair(op, part_dtype(avals_out[0].dtype), out_shape)
        flat = _pair_map(lambda p: _to_last_axis(p, axes), z)
        out = _lexicographic_extreme(op, flat, None, len(flat.shape) - 1)
        return _pair_map(lambda p: ops.reshape(p, out_shape), out)
    return rule


def _cumulative(fn: Callable) -> Callable:
    """A cumulative rule from ``fn(z, axis)`` running forward along ``axis``."""
    def rule(avals_in, avals_out, z, *, axis, reverse=False):
        if z.shape[axis] == 0:
            return z
        if reverse:
            z = _pair_map(lambda p: ops.flip(p, (axis,)), z)
        out = fn(z, axis)
        return _pair_map(lambda p: ops.flip(p, (axis,)), out) if reverse else out
    return rule


def _cumprod(z: Pair, axis: int) -> Pair:
    """Hillis and Steele's scan: ``log2(n)`` rounds of ``z[i] *= z[i - s]`` (``i >= s``)
    for ``s = 1, 2, 4, ...``."""
    n, shape = z.shape[axis], z.shape
    pos = ops.expand(ops.reshape(ops.idx(n, np.int32), [n if a == axis else 1
                                                          for a in range(len(shape))]), shape)
    step = 1
    while step < n:
        moved = [(0, 0)] * len(shape)
        moved[axis] = (step, 0)
        window = [(0, d) for d in shape]
        shifted = _pair_map(lambda p: ops.shrink(ops.pad(p, moved), window), z)
        reach = _alu("ge", pos, ops.const(step, np.int32, shape))
        product = mul(z, shifted)
        z = Pair(ops.where(reach, product.re, z.re), ops.where(reach, product.im, z.im))
        step *= 2
    return z


def _cumulative_extreme(op: str) -> Callable:
    """The running lexicographic max/min over the prefix view (quadratic work, as the
    real cumulative reductions)."""
    def fn(z: Pair, axis: int) -> Pair:
        (re, keep), (im, _) = prefix_view(z.re, axis), prefix_view(z.im, axis)
        out = _lexicographic_extreme(op, Pair(re, im), keep, axis + 1)
        return _pair_map(lambda p: ops.reshape(p, z.shape), out)
    return fn


# ---------------------------------------------------------------------------------------------
# rules: name -> rule(avals_in, avals_out, *operands, **params) on Pairs and real LazyOps
# ---------------------------------------------------------------------------------------------


def _unary(fn: Callable) -> Callable:
    return lambda avals_in, avals_out, a, **params: fn(a)


def _binary(fn: Callable) -> Callable:
    def rule(avals_in, avals_out, a, b, **params):
        shape = avals_out[0].shape
        return fn(*(Pair(ops.broadcast_to(x.re, shape), ops.broadcast_to(x.im, shape))
                    for x in (a, b)))
    return rule


def _complex_from_parts(avals_in, avals_out, x, y):
    shape = avals_out[0].shape
    return Pair(ops.broadcast_to(x, shape), ops.broadcast_to(y, shape))


def _convert(avals_in, avals_out, x, *, new_dtype, **params):
    new = np.dtype(new_dtype)
    if isinstance(x, Pair):
        if is_complex(new):
            return Pair(ops.cast(x.re, part_dtype(new)), ops.cast(x.im, part_dtype(new)))
        if new == np.bool_:
            return _alu("or", _alu("ne", x.re, _k(x.re, 0)), _alu("ne", x.im, _k(x.im, 0)))
        return ops.cast(x.re, new)            # complex -> real keeps the real part
    re = ops.cast(x, part_dtype(new))
    return Pair(re, _k(re, 0))


def _equal(negate: bool) -> Callable:
    def rule(avals_in, avals_out, a, b):
        shape = avals_out[0].shape
        a, b = (Pair(ops.broadcast_to(x.re, shape), ops.broadcast_to(x.im, shape))
                for x in (a, b))
        if negate:
            return _alu("or", _alu("ne", a.re, b.re), _alu("ne", a.im, b.im))
        return _alu("and", _alu("eq", a.re, b.re), _alu("eq", a.im, b.im))
    return rule


def _bilinear(real_dot, avals_in, avals_out, lhs, rhs, **params):
    """A product bilinear in its operands (dot_general, a convolution) as four real ones:
    ``(ar br - ai bi, ar bi + ai br)``."""
    ins = [_real_aval(a) for a in avals_in]
    outs = [_real_aval(a) for a in avals_out]
    params = dict(params, preferred_element_type=None)
    lhs = lhs if isinstance(lhs, Pair) else real_pair(lhs)
    rhs = rhs if isinstance(rhs, Pair) else real_pair(rhs)

    def dot(x, y):
        return real_dot(ins, outs, x, y, **params)
    return Pair(_alu("sub", dot(lhs.re, rhs.re), dot(lhs.im, rhs.im)),
                _alu("add", dot(lhs.re, rhs.im), dot(lhs.im, rhs.re)))


def _sort(real_sort, avals_in, avals_out, *operands, dimension, is_stable=True,
          num_keys=1):
    """Complex keys sort by real part, then imaginary part: each becomes two real keys;
    other complex operands travel as their two parts."""
    flat, keys, layout = [], 0, []
    for i, x in enumerate(operands):
        parts = list(x) if isinstance(x, Pair) else [x]
        layout.append(len(parts))
        flat.extend(parts)
        if i < num_keys:
            keys += len(parts)
    real_avals = [ShapedArray(p.shape, p.dtype) for p in flat]
    sorted_parts = iter(real_sort(real_avals, real_avals, *flat,
                                              dimension=dimension, is_stable=is_stable,
                                              num_keys=keys))
    return [Pair(next(sorted_parts), next(sorted_parts)) if n == 2 else next(sorted_parts)
            for n in layout]


def _part_of_params(params: dict, k: int) -> dict:
    """``params`` with each complex value (a gather's ``fill_value``) replaced by its real
    (``k == 0``) or imaginary part."""
    return {name: (v.real if k == 0 else v.imag)
            if isinstance(v, (complex, np.complexfloating, np.ndarray)) and np.iscomplexobj(v)
            else v
            for name, v in params.items()}


def _componentwise(real_rule, avals_in, avals_out, *ins, **params):
    """The real rule applied to the real parts, then to the imaginary parts (for the
    primitives that move, select, gather or sum elements without looking at them)."""
    ins_r = [_real_aval(a) for a in avals_in]
    outs_r = [_real_aval(a) for a in avals_out]
    parts = [real_rule(ins_r, outs_r, *[x[k] if isinstance(x, Pair) else x for x in ins],
                       **_part_of_params(params, k)) for k in (0, 1)]
    if isinstance(parts[0], (list, tuple)):
        return [Pair(r, i) if is_complex(a.dtype) else r
                for r, i, a in zip(parts[0], parts[1], avals_out)]
    return Pair(parts[0], parts[1]) if is_complex(avals_out[0].dtype) else parts[0]


COMPONENTWISE = frozenset((
    lax.broadcast_in_dim_p, lax.reshape_p, lax.squeeze_p, lax.transpose_p, lax.rev_p,
    lax.slice_p, lax.pad_p, lax.concatenate_p, lax.split_p, lax.select_n_p,
    lax.dynamic_slice_p, lax.dynamic_update_slice_p, lax.gather_p, lax.scatter_p,
    lax.scatter_add_p, lax.stop_gradient_p, lax.reduce_sum_p, lax.cumsum_p, lax.add_p,
    lax.sub_p, lax.neg_p, lax.optimization_barrier_p, lax.reduce_window_sum_p))

complex_rules: dict[Primitive, Callable] = {
    lax.mul_p: _binary(mul), lax.div_p: _binary(div), lax.pow_p: _binary(power),
    lax.max_p: _lexicographic("gt"), lax.min_p: _lexicographic("lt"),
    lax.eq_p: _equal(False), lax.ne_p: _equal(True),
    lax.complex_p: _complex_from_parts, lax.convert_element_type_p: _convert,
    lax.real_p: lambda avals_in, avals_out, a: a.re,
    lax.imag_p: lambda avals_in, avals_out, a: a.im,
    lax.conj_p: lambda avals_in, avals_out, a, **params: conj(a) if isinstance(a, Pair) else
    real_pair(ops.cast(a, part_dtype(avals_out[0].dtype))),
    lax.abs_p: _unary(absolute), lax.sign_p: _unary(_sign), lax.square_p: _unary(square),
    lax.exp_p: _unary(exp), lax.log_p: _unary(log), lax.sqrt_p: _unary(sqrt),
    lax.rsqrt_p: _unary(lambda a: div(one(a), sqrt(a))),
    lax.exp2_p: _unary(lambda a: exp(scale(a, _k(a.re, np.log(2))))),
    lax.expm1_p: _unary(expm1), lax.log1p_p: _unary(log1p),
    lax.sin_p: _unary(sin), lax.cos_p: _unary(cos), lax.tan_p: _unary(_tan),
    lax.sinh_p: _unary(sinh), lax.cosh_p: _unary(cosh), lax.tanh_p: _unary(tanh),
    lax.asin_p: _unary(_asin), lax.acos_p: _unary(_acos), lax.atan_p: _unary(_atan),
    lax.asinh_p: _unary(_asinh), lax.acosh_p: _unary(_acosh), lax.atanh_p: _unary(_atanh),
    lax.logistic_p: _unary(lambda a: div(one(a), add(one(a), exp(neg(a))))),
    lax.integer_pow_p: lambda avals_in, avals_out, a, *, y: integer_power(a, y),
    lax.reduce_prod_p: _reduce_prod, lax.reduce_max_p: _reduce_extreme("max"),
    lax.reduce_min_p: _reduce_extreme("min"), lax.cumprod_p: _cumulative(_cumprod),
    lax.cummax_p: _cumulative(_cumulative_extreme("max")),
    lax.cummin_p: _cumulative(_cumulative_extreme("min")),
}
# rules built from the real rule of the primitive: primitive -> rule(real_rule, ...)
_FROM_REAL_RULES: dict[Primitive, Callable] = {lax.dot_general_p: _bilinear,
                                               lax.conv_general_dilated_p: _bilinear,
                                               lax.sort_p: _sort}


def lower_complex(primitive, avals_in, avals_out, ins, params, real_rules: dict):
    """Lower one equation that has complex operands or results (see the module doc), given
    the real lowering rules (by primitive); NotImplementedError for the primitives with no
    pair lowering (jit then evaluates eagerly, as for any primitive without a lowering)."""
    rule = complex_rules.get(primitive)
    if rule is not None:
        return rule(avals_in, avals_out, *ins, **params)
    if primitive in _FROM_REAL_RULES:
        return _FROM_REAL_RULES[primitive](real_rules[primitive], avals_in, avals_out, *ins,
                                           **params)
    if primitive in COMPONENTWISE:
        return _componentwise(real_rules[primitive], avals_in, avals_out, *ins, **params)
    raise NotImplementedError(f"no lowering for primitive '{primitive.name}' on complex "
                              "numbers")
