"""Lowering rules: jaxpr primitive -> low-level op graph (:mod:`tinyjax.compiler.ops`).

``lowering_rules[name](avals_in, avals_out, *lazy_operands, **params)`` returns one LazyOp
(or a list for multiple-result primitives).  Rules are keyed by primitive *name* so that
primitive modules being written elsewhere need no import here; an equation whose primitive
has no rule makes :func:`lower_jaxpr` raise ``NotImplementedError("no lowering for
primitive '<name>'")``.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.compiler import ops
from tinyjax.compiler.lower.fold import fold_broadcast_reduction
from tinyjax.compiler.ops import LazyOp

__all__ = ["lowering_rules", "register", "lower_jaxpr", "SUPPORTED_DTYPES"]

lowering_rules: dict[str, Callable] = {}

SUPPORTED_DTYPES = frozenset(np.dtype(d) for d in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
    np.uint64, np.float16, dtypes.bfloat16, np.float32, np.float64))


def register(*names: str):
    def deco(fn):
        for n in names:
            lowering_rules[n] = fn
        return fn
    return deco


def check_dtype(dt) -> np.dtype:
    dt = np.dtype(dt)
    if dt not in SUPPORTED_DTYPES:
        raise NotImplementedError(f"no lowering for dtype '{dt.name}'")
    return dt


# ---------------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------------

_UNARY_SAME = ("neg", "sign", "floor", "ceil", "is_finite", "exp", "exp2", "log", "log1p",
               "expm1", "tanh", "logistic", "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
               "cosh", "asinh", "acosh", "atanh", "sqrt", "rsqrt", "cbrt", "abs", "erf", "erfc",
               "erf_inv", "lgamma", "digamma", "not", "population_count")
_BINARY_SAME = ("add", "sub", "mul", "div", "rem", "max", "min", "pow", "atan2", "nextafter",
                "and", "or", "xor", "shift_left", "shift_right_arithmetic",
                "shift_right_logical", "eq", "ne", "lt", "le", "gt", "ge", "polygamma")


def _elementwise(name: str):
    def rule(avals_in, avals_out, *xs, **params):
        out = avals_out[0]
        xs = [ops.broadcast_to(x, out.shape) for x in xs]
        return ops.alu(name, *xs, dtype=out.dtype)
    return rule


for _n in _UNARY_SAME + _BINARY_SAME:
    lowering_rules[_n] = _elementwise(_n)


@register("square")
def _square(avals_in, avals_out, x):
    return ops.alu("mul", x, x)


@register("round")
def _round(avals_in, avals_out, x, *, rounding_method):
    return ops.alu("round_even" if int(rounding_method) == 1 else "round_away", x)


@register("integer_pow")
def _integer_pow(avals_in, avals_out, x, *, y):
    if y == 0:
        return ops.const(1, x.dtype, x.shape)
    n, acc, base = abs(int(y)), None, x
    while n:  # square-and-multiply
        if n & 1:
            acc = base if acc is None else ops.alu("mul", acc, base)
        n >>= 1
        if n:
            base = ops.alu("mul", base, base)
    return ops.alu("recip", acc) if y < 0 else acc


@register("stop_gradient", "optimization_barrier", "copy", "copy_p")
def _identity(avals_in, avals_out, *xs, **params):
    return xs[0] if len(xs) == 1 else list(xs)


@register("convert_element_type")
def _convert(avals_in, avals_out, x, *, new_dtype, **params):
    return ops.cast(x, check_dtype(new_dtype))


@register("bitcast_convert_type")
def _bitcast_convert(avals_in, avals_out, x, *, new_dtype):
    new = check_dtype(new_dtype)
    if new.itemsize != x.dtype.itemsize or np.bool_ in (new, x.dtype) or \
            2 in (new.itemsize, x.dtype.itemsize) and "f" in (new.kind, x.dtype.kind) or \
            "bfloat16" in (new.name, x.dtype.name):
        raise NotImplementedError("no lowering for primitive 'bitcast_convert_type' between "
                                  f"{x.dtype.name} and {new.name}")
    return ops.bitcast(x, new)


@register("select_n")
def _select_n(avals_in, avals_out, which, *cases):
    shape = avals_out[0].shape
    which = ops.broadcast_to(which, shape)
    if len(cases) == 1:
        return cases[0]
    if which.dtype == np.bool_:
        return ops.where(which, cases[1], cases[0])
    out = cases[-1]
    for k in range(len(cases) - 2, -1, -1):  # np.choose(mode="clip")
        out = ops.where(ops.alu("le", which, ops.const(k, which.dtype, shape)), cases[k], out)
    return out


@register("clamp")
def _clamp(avals_in, avals_out, lo, x, hi):
    lo, hi = ops.broadcast_to(lo, x.shape), ops.broadcast_to(hi, x.shape)
    return ops.alu("min", ops.alu("max", x, lo), hi)


# ---------------------------------------------------------------------------------------------
# shape / movement
# ---------------------------------------------------------------------------------------------

@register("broadcast_in_dim")
def _broadcast_in_dim(avals_in, avals_out, x, *, shape, broadcast_dimensions, **params):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return ops.expand(ops.reshape(x, expanded), shape)


@register("reshape")
def _reshape(avals_in, avals_out, x, *, new_sizes, dimensions=None, **params):
    if dimensions is not None:
        x = ops.permute(x, dimensions)
    return ops.reshape(x, new_sizes)


@register("squeeze", "expand_dims")
def _to_out_shape(avals_in, avals_out, x, **params):
    return ops.reshape(x, avals_out[0].shape)


@register("transpose")
def _transpose(avals_in, avals_out, x, *, permutation):
    return ops.permute(x, permutation)


@register("rev")
def _rev(avals_in, avals_out, x, *, dimensions):
    return ops.flip(x, dimensions)


@register("iota")
def _iota(avals_in, avals_out, *, dtype, shape, dimension, **params):
    n = shape[dimension]
    ramp = ops.cast(ops.idx(n, np.int64 if n > 2**31 - 1 else np.int32), check_dtype(dtype))
    view = [1] * len(shape)
    view[dimension] = n
    return ops.expand(ops.reshape(ramp, view), shape)


@register("slice")
def _slice(avals_in, avals_out, x, *, start_indices, limit_indices, strides=None):
    x = ops.shrink(x, list(zip(start_indices, limit_indices)))
    return ops.stride(x, strides) if strides else x


def pad_with_value(x: LazyOp, padding_config, value: LazyOp) -> LazyOp:
    """lax.pad: low/high (possibly negative) and interior padding, as views of ``x`` and of a
    "valid" mask (a padded view of a constant true) selecting ``value`` elsewhere."""
    def views(y: LazyOp) -> LazyOp:
        for ax, (lo, hi, interior) in enumerate(padding_config):
            if interior:
                n = y.shape[ax]
                sh = list(y.shape)
                y = ops.reshape(y, sh[:ax + 1] + [1] + sh[ax + 1:])
                cfg = [(0, 0)] * y.ndim
                cfg[ax + 1] = (0, interior)
                y = ops.pad(y, cfg)
                y = ops.reshape(y, sh[:ax] + [n * (interior + 1)] + sh[ax + 1:])
                cut = [(0, s) for s in y.shape]
                cut[ax] = (0, n * (interior + 1) - interior) if n else (0, 0)
                y = ops.shrink(y, cut)
            padc = [(0, 0)] * y.ndim
            padc[ax] = (max(lo, 0), max(hi, 0))
            y = ops.pad(y, padc)
            cut = [(0, s) for s in y.shape]
            cut[ax] = (-min(lo, 0), y.shape[ax] + min(hi, 0))
            y = ops.shrink(y, cut)
        return y
    body = views(x)
    if value.op == "CONST" and value.arg == 0:
        return body
    mask = views(ops.const(True, np.bool_, x.shape))
    return ops.where(mask, body, ops.broadcast_to(value, body.shape))


@register("pad")
def _pad(avals_in, avals_out, x, padding_value, *, padding_config):
    return pad_with_value(x, padding_config, padding_value)


@register("concatenate")
def _concatenate(avals_in, avals_out, *xs, dimension):
    total = avals_out[0].shape[dimension]
    out, start = None, 0
    for x in xs:
        n = x.shape[dimension]
        cfg = [(0, 0)] * x.ndim
        cfg[dimension] = (start, total - start - n)
        start += n
        if n == 0:
            continue
        y = ops.pad(x, cfg)
        if x.dtype == np.bool_:
            out = y if out is None else ops.alu("or", out, y)
        else:
            out = y if out is None else ops.alu("add", out, y)
    return out if out is not None else ops.const(0, avals_out[0].dtype, avals_out[0].shape)


@register("split")
def _split(avals_in, avals_out, x, *, sizes, axis):
    outs, start = [], 0
    for n in sizes:
        cut = [(0, s) for s in x.shape]
        cut[axis] = (start, start + n)
        outs.append(ops.shrink(x, cut))
        start += n
    return outs


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------

def _reducer(op: str):
    def rule(avals_in, avals_out, x, *, axes, **params):
        if x.size == 0 or not axes:
            if not axes:
                return x
            return ops.const(_identity_value(op, x.dtype), x.dtype, avals_out[0].shape)
        # over axes the operand is broadcast along: folded (see compiler.lower.fold)
        red = fold_broadcast_reduction(x, op, axes)
        return ops.reshape(ops.reduce(x, op, axes) if red is None else red,
                           avals_out[0].shape)
    return rule


def _identity_value(op: str, dt):
    dt = np.dtype(dt)
    if op in ("sum", "or", "xor"):
        return 0
    if op == "prod":
        return 1
    if op == "and":
        return True if dt == np.bool_ else -1
    if dt == np.bool_:
        return op == "min"
    if dtypes.is_float(dt):
        return -np.inf if op == "max" else np.inf
    info = np.iinfo(dt)
    return info.min if op == "max" else info.max


for _p, _o in (("reduce_sum", "sum"), ("reduce_prod", "prod"), ("reduce_max", "max"),
               ("reduce_min", "min"), ("reduce_and", "and"), ("reduce_or", "or"),
               ("reduce_xor", "xor")):
    lowering_rules[_p] = _reducer(_o)


def _arg_rule(op: str):
    """argmax/argmin as two reductions: the extremum m (NaN wins), then the smallest index
    whose value equals m (or is NaN when m is)."""
    def rule(avals_in, avals_out, x, *, axes, index_dtype):
        axis, = axes
        m = ops.expand(ops.reduce(x, op, (axis,)), x.shape)
        hit = ops.alu("eq", x, m)
        if ops.is_float(x.dtype):
            nan_x = ops.alu("ne", x, x)
            nan_m = ops.alu("ne", m, m)
            hit = ops.alu("or", hit, ops.alu("and", nan_x, nan_m))
        n = x.shape[axis]
        it = ops.cast(ops.idx(n, np.int64), index_dtype)
        view = [1] * x.ndim
        view[axis] = n
        it = ops.expand(ops.reshape(it, view), x.shape)
        cand = ops.where(hit, it, ops.const(n, index_dtype, x.shape))
        return ops.reshape(ops.reduce(cand, "min", (axis,)), avals_out[0].shape)
    return rule


lowering_rules["argmax"] = _arg_rule("max")
lowering_rules["argmin"] = _arg_rule("min")


def _cumulative(op: str):
    """out[i] = reduce_{j <= i} x[j] as a masked, expanded view reduced in one kernel
    (quadratic work; fine for the small axes it is used on)."""
    def rule(avals_in, avals_out, x, *, axis, reverse=False):
        n = x.shape[axis]
        if n == 0:
            return x
        if reverse:
            x = ops.flip(x, (axis,))
        # y[..., i, j, ...] = x[..., j, ...] for j <= i, identity elsewhere
        sh = list(x.shape)
        xe = ops.reshape(x, sh[:axis] + [1, n] + sh[axis + 1:])
        xe = ops.expand(xe, sh[:axis] + [n, n] + sh[axis + 1:])
        ii = ops.expand(ops.reshape(ops.idx(n, np.int32), [n, 1]), [n, n])
        jj = ops.expand(ops.reshape(ops.idx(n, np.int32), [1, n]), [n, n])
        keep = ops.alu("le", jj, ii)
        keep = ops.expand(ops.reshape(keep, [1] * axis + [n, n] + [1] * (x.ndim - axis - 1)),
                          xe.shape)
        ident = ops.const(_identity_value(op, x.dtype), x.dtype, xe.shape)
        y = ops.where(keep, xe, ident)
        out = ops.reshape(ops.reduce(y, op, (axis + 1,)), x.shape)
        return ops.flip(out, (axis,)) if reverse else out
    return rule


for _p, _o in (("cumsum", "sum"), ("cumprod", "prod"), ("cummax", "max"), ("cummin", "min")):
    lowering_rules[_p] = _cumulative(_o)


# ---------------------------------------------------------------------------------------------
# contractions
# ---------------------------------------------------------------------------------------------

@register("dot_general")
def _dot_general(avals_in, avals_out, lhs, rhs, *, dimension_numbers, precision=None,
                 preferred_element_type=None, **params):
    """Expand both operands to (batch, lhs free, rhs free, contract), multiply, sum: one
    reduce kernel (the matmul is never a separate kernel kind)."""
    (lc, rc), (lb, rb) = dimension_numbers
    out_dtype = np.dtype(avals_out[0].dtype)
    if out_dtype == np.bool_:
        raise NotImplementedError("no lowering for primitive 'dot_general' on booleans")
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    acc_dtype = _accumulation_dtype(lhs.dtype, rhs.dtype, out_dtype)
    lhs = ops.cast(ops.permute(lhs, list(lb) + lf + list(lc)), acc_dtype)
    rhs = ops.cast(ops.permute(rhs, list(rb) + rf + list(rc)), acc_dtype)
    B = [lhs.shape[i] for i in range(len(lb))]
    LF = [lhs.shape[len(lb) + i] for i in range(len(lf))]
    RF = [rhs.shape[len(rb) + i] for i in range(len(rf))]
    C = [lhs.shape[len(lb) + len(lf) + i] for i in range(len(lc))]
    full = B + LF + RF + C
    lhs = ops.expand(ops.reshape(lhs, B + LF + [1] * len(RF) + C), full)
    rhs = ops.expand(ops.reshape(rhs, B + [1] * len(LF) + RF + C), full)
    prod = ops.alu("mul", lhs, rhs)
    if not C:
        return ops.cast(ops.reshape(prod, avals_out[0].shape), out_dtype)
    if 0 in C:
        return ops.const(0, out_dtype, avals_out[0].shape)
    red = ops.reduce(prod, "sum", range(len(full) - len(C), len(full)),
                     allow_tf32=acc_dtype == np.float32 and allow_tf32(precision))
    return ops.cast(ops.reshape(red, avals_out[0].shape), out_dtype)


def _accumulation_dtype(*dts) -> np.dtype:
    """The dtype a contraction accumulates in: 16-bit floats in float32 (as XLA does and as
    eager evaluation does), else the widest of the operand and result dtypes."""
    wide = [np.dtype(np.float32) if _is_half(d) else np.dtype(d) for d in dts]
    return np.dtype(np.result_type(*wide))


def _is_half(dt) -> bool:
    return np.dtype(dt) == np.float16 or np.dtype(dt).name == "bfloat16"


# jax_default_matmul_precision values asking for more than TF32 (on GPUs they all run in
# full float32 here: there is no 3-pass emulation)
_FULL_FLOAT32 = frozenset({"highest", "float32", "bfloat16_3x", "TF32_TF32_F32_X3",
                           "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
                           "F32_F32_F32", "F64_F64_F64"})


def allow_tf32(precision) -> bool:
    """Whether a float32 contraction may use TF32 tensor cores, in JAX's GPU semantics:
    ``precision`` (None or a pair of ``lax.Precision``) DEFAULT or HIGH does, HIGHEST does not;
    with ``precision=None`` the ``jax_default_matmul_precision`` config decides (unset: TF32,
    as XLA's default on GPUs)."""
    if precision is not None:
        return all(getattr(p, "name", str(p)).upper() != "HIGHEST" for p in precision)
    from tinyjax.config import config
    return config.jax_default_matmul_precision not in _FULL_FLOAT32


# ---------------------------------------------------------------------------------------------
# the jaxpr walk
# ---------------------------------------------------------------------------------------------

def lower_jaxpr(jaxpr, n_slots_start: int = 0):
    """Lower a jaxpr's equations to a LazyOp graph.

    Returns (input leaves for constvars + invars, output LazyOps).  Literals become CONST
    nodes; unused equations are lowered too (cheap) but never scheduled."""
    from tinyjax.jaxpr import Literal
    env: dict = {}
    leaves = []
    for slot, v in enumerate(list(jaxpr.constvars) + list(jaxpr.invars)):
        check_dtype(v.aval.dtype)
        leaf = ops.load(slot, v.aval.shape, v.aval.dtype)
        env[v] = leaf
        leaves.append(leaf)

    def read(a):
        if isinstance(a, Literal):
            check_dtype(a.aval.dtype)
            return ops.const(np.asarray(a.val).item(), a.aval.dtype, a.aval.shape)
        return env[a]

    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        rule = lowering_rules.get(name)
        if rule is None:
            raise NotImplementedError(f"no lowering for primitive '{name}'")
        for v in eqn.outvars:
            check_dtype(v.aval.dtype)
        ops.current_source(eqn.source_info or "")
        try:
            ins = [read(a) for a in eqn.invars]
            out = rule([a.aval for a in eqn.invars], [v.aval for v in eqn.outvars], *ins,
                       **eqn.params)
        finally:
            ops.current_source("")
        outs = out if isinstance(out, (list, tuple)) else [out]
        for v, o in zip(eqn.outvars, outs):
            if o.shape != tuple(v.aval.shape):
                raise AssertionError(f"lowering of {name} gave shape {o.shape}, "
                                     f"expected {v.aval.shape}")
            env[v] = ops.cast(o, v.aval.dtype)
    return leaves, [read(a) for a in jaxpr.outvars]


# ---------------------------------------------------------------------------------------------
# windows: reduce_window and convolution as views (no im2col buffer)
# ---------------------------------------------------------------------------------------------

def windows(x: LazyOp, axes: Sequence[int], ks, strides, dils) -> LazyOp:
    """View of ``x`` with each of ``axes`` (size L) replaced by its output positions
    ``n_out`` and window offsets appended at the end: ``y[..., o, ..., w] = x[..., o*s + w*d,
    ...]``.  Built from repeat (expand + reshape), shrink, reshape and stride: the trick that
    row ``w`` of a length-(L+d) reshape of L-periodic data starts at offset ``w*d``."""
    axes = list(axes)
    for j, (ax, k, s, d) in enumerate(zip(axes, ks, strides, dils)):
        nd = x.ndim
        L = x.shape[ax]
        n_out = (L - (d * (k - 1) + 1)) // s + 1
        order = [i for i in range(nd) if i != ax] + [ax]
        x = ops.permute(x, order)
        pre = list(x.shape[:-1])
        e = -(-k * (L + d) // L)
        x = ops.expand(ops.reshape(x, pre + [1, L]), pre + [e, L])
        x = ops.reshape(x, pre + [e * L])
        x = ops.shrink(x, [(0, s_) for s_ in pre] + [(0, k * (L + d))])
        x = ops.reshape(x, pre + [k, L + d])
        x = ops.shrink(x, [(0, s_) for s_ in pre] + [(0, k), (0, (n_out - 1) * s + 1)])
        x = ops.stride(x, [1] * len(pre) + [1, s])
        # axes now: pre (nd-1 of them, original order without ax), k, n_out -> put n_out
        # back at ax and k at the end
        back = list(range(ax)) + [nd] + list(range(ax, nd - 1)) + [nd - 1]
        x = ops.permute(x, back)
    return x


def _reduce_window(op: str):
    def rule(avals_in, avals_out, x, *, window_dimensions, window_strides, padding,
             base_dilation, window_dilation):
        out = avals_out[0]
        if 0 in out.shape or x.size == 0:
            return ops.const(_identity_value(op, x.dtype), x.dtype, out.shape)
        ident = ops.const(_identity_value(op, x.dtype), x.dtype, ())
        cfg = [(lo, hi, bd - 1) for (lo, hi), bd in zip(padding, base_dilation)]
        xp = pad_with_value(x, cfg, ident)
        w = windows(xp, range(x.ndim), window_dimensions, window_strides, window_dilation)
        red = ops.reduce(w, op, range(x.ndim, 2 * x.ndim))
        return ops.reshape(red, out.shape)
    return rule


for _p, _o in (("reduce_window_sum", "sum"), ("reduce_window_max", "max"),
               ("reduce_window_min", "min")):
    lowering_rules[_p] = _reduce_window(_o)


@register("conv_general_dilated")
def _conv(avals_in, avals_out, lhs, rhs, *, window_strides, padding, lhs_dilation,
          rhs_dilation, dimension_numbers, feature_group_count, batch_group_count,
          precision=None, preferred_element_type=None):
    """Padded, dilated, windowed view of lhs times an expanded view of rhs, summed over
    (input channels, window): one reduce kernel."""
    if batch_group_count != 1:
        raise NotImplementedError("no lowering for primitive 'conv_general_dilated' with "
                                  "batch_group_count > 1")
    out = avals_out[0]
    dt = np.dtype(out.dtype)
    if dt == np.bool_:
        raise NotImplementedError("no lowering for primitive 'conv_general_dilated' on booleans")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    acc = _accumulation_dtype(lhs.dtype, rhs.dtype, dt)
    x = ops.cast(ops.permute(lhs, lhs_spec), acc)      # N, C, *sp
    w = ops.cast(ops.permute(rhs, rhs_spec), acc)      # O, I, *k
    nsp = x.ndim - 2
    if 0 in out.shape:
        return ops.const(0, dt, out.shape)
    cfg = [(0, 0, 0), (0, 0, 0)] + [(lo, hi, d - 1) for (lo, hi), d in zip(padding, lhs_dilation)]
    x = pad_with_value(x, cfg, ops.const(0, acc, ()))
    ks = w.shape[2:]
    xw = windows(x, range(2, 2 + nsp), ks, window_strides, rhs_dilation)  # N, C, *o, *k
    N = xw.shape[0]
    osp = list(xw.shape[2:2 + nsp])
    G = feature_group_count
    O, Cg = w.shape[0], w.shape[1]
    Og = O // G
    # full: N, G, Og, *o, Cg, *k
    xw = ops.reshape(xw, [N, G, Cg] + osp + list(ks))
    xw = ops.permute(xw, [0, 1] + list(range(3, 3 + nsp)) + [2] + list(range(3 + nsp, 3 + 2 * nsp)))
    full = [N, G, Og] + osp + [Cg] + list(ks)
    xw = ops.expand(ops.reshape(xw, [N, G, 1] + osp + [Cg] + list(ks)), full)
    ww = ops.reshape(w, [1, G, Og] + [1] * nsp + [Cg] + list(ks))
    ww = ops.expand(ww, full)
    red = ops.reduce(ops.alu("mul", xw, ww), "sum", range(3 + nsp, len(full)),
                     allow_tf32=acc == np.float32 and allow_tf32(precision))
    y = ops.cast(ops.reshape(red, [N, O] + osp), dt)    # N, O, *o (logical)
    return ops.permute(y, list(np.argsort(out_spec)))


# ---------------------------------------------------------------------------------------------
# data-dependent indexing (DLOAD: the gather kernel kind)
# ---------------------------------------------------------------------------------------------

def _iota_along(shape, k) -> LazyOp:
    n = shape[k]
    view = [1] * len(shape)
    view[k] = n
    return ops.expand(ops.reshape(ops.idx(n, np.int64), view), shape)


def _scalar_clamped(s: LazyOp, hi: int, shape) -> LazyOp:
    s = ops.cast(s, np.int64)
    s = ops.alu("min", ops.alu("max", s, ops.const(0, np.int64)), ops.const(max(hi, 0), np.int64))
    return ops.broadcast_to(s, shape)


def _strides(shape):
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return out[::-1]


@register("dynamic_slice")
def _dynamic_slice(avals_in, avals_out, x, *starts, slice_sizes):
    shape = tuple(slice_sizes)
    if 0 in shape:
        return ops.const(0, x.dtype, shape)
    off = ops.const(0, np.int64, shape)
    for k, (s, d, n, st) in enumerate(zip(starts, x.shape, shape, _strides(x.shape))):
        pos = ops.alu("add", _scalar_clamped(s, d - n, shape), _iota_along(shape, k))
        off = ops.alu("add", off, ops.alu("mul", pos, ops.const(st, np.int64, shape)))
    return ops.dload(x, off)


@register("dynamic_update_slice")
def _dynamic_update_slice(avals_in, avals_out, x, update, *starts):
    shape = x.shape
    if update.size == 0:
        return x
    inside = ops.const(True, np.bool_, shape)
    off = ops.const(0, np.int64, shape)
    for k, (s, d, n, st) in enumerate(zip(starts, shape, update.shape, _strides(update.shape))):
        rel = ops.alu("sub", _iota_along(shape, k), _scalar_clamped(s, d - n, shape))
        ok = ops.alu("and", ops.alu("ge", rel, ops.const(0, np.int64, shape)),
                     ops.alu("lt", rel, ops.const(n, np.int64, shape)))
        inside = ops.alu("and", inside, ok)
        rel = ops.alu("min", ops.alu("max", rel, ops.const(0, np.int64, shape)),
                      ops.const(n - 1, np.int64, shape))
        off = ops.alu("add", off, ops.alu("mul", rel, ops.const(st, np.int64, shape)))
    return ops.where(inside, ops.dload(update, off), x)


def _window_offsets(x_shape, indices: LazyOp, start_index_map, operand_batching_dims,
                    indices_batching_dims, window):
    """Lazy ``_window_positions``: the flat operand offset of every (index batch position,
    window position) (shape ``batch + window``, starts clamped into bounds) and the
    ``batch``-shaped mask of windows wholly in bounds (None: no index dims)."""
    batch = tuple(indices.shape[:-1])
    nb, n = len(batch), len(x_shape)
    G = batch + tuple(window)
    idx = ops.cast(indices, np.int64)
    ok = None
    starts: list = [None] * n
    for j, d in enumerate(start_index_map):
        cut = [(0, s) for s in idx.shape]
        cut[-1] = (j, j + 1)
        raw = ops.reshape(ops.shrink(idx, cut), batch)
        hi = x_shape[d] - window[d]
        inb = ops.alu("and", ops.alu("ge", raw, ops.const(0, np.int64, batch)),
                      ops.alu("le", raw, ops.const(hi, np.int64, batch)))
        ok = inb if ok is None else ops.alu("and", ok, inb)
        starts[d] = ops.alu("min", ops.alu("max", raw, ops.const(0, np.int64, batch)),
                            ops.const(max(hi, 0), np.int64, batch))
    for od, bd in zip(operand_batching_dims, indices_batching_dims):
        starts[od] = _iota_along(batch, bd) if batch else ops.const(0, np.int64, ())
    offset = ops.const(0, np.int64, G)
    for d, st in enumerate(_strides(x_shape)):
        pos = _iota_along(G, nb + d)
        if starts[d] is not None:
            s = ops.expand(ops.reshape(starts[d], batch + (1,) * n), G)
            pos = ops.alu("add", pos, s)
        offset = ops.alu("add", offset, ops.alu("mul", pos, ops.const(st, np.int64, G)))
    if ok is not None:
        ok = ops.expand(ops.reshape(ok, batch + (1,) * n), G)
    return offset, ok, G


@register("gather")
def _gather(avals_in, avals_out, x, indices, *, dimension_numbers, slice_sizes,
            unique_indices=False, indices_are_sorted=False, mode=None, fill_value=None):
    """XLA gather as one DLOAD at the window offsets; FILL_OR_DROP masks windows not wholly
    in bounds (the eager implementation's semantics, step for step)."""
    from tinyjax.lax.gather_scatter import (GatherScatterMode, _default_fill_value,
                                            _output_permutation)
    dn = dimension_numbers
    out = avals_out[0]
    if 0 in out.shape or x.size == 0:
        return ops.const(0, x.dtype, out.shape)
    window = tuple(int(s) for s in slice_sizes)
    offset, ok, G = _window_offsets(x.shape, indices, dn.start_index_map,
                                    dn.operand_batching_dims, dn.start_indices_batching_dims,
                                    window)
    batch = tuple(indices.shape[:-1])
    val = ops.dload(x, offset)
    if GatherScatterMode.from_any(mode) == GatherScatterMode.FILL_OR_DROP and ok is not None:
        fill = _default_fill_value(x.dtype) if fill_value is None else fill_value
        val = ops.where(ok, val, ops.const(fill, x.dtype, G))
    dropped = set(dn.collapsed_slice_dims) | set(dn.operand_batching_dims)
    kept = tuple(s for d, s in enumerate(window) if d not in dropped)
    val = ops.reshape(val, batch + kept)
    return ops.permute(val, _output_permutation(len(batch), dn.offset_dims))


def _scatter_rule(combine: str):
    def rule(avals_in, avals_out, x, indices, updates, *, dimension_numbers,
             indices_are_sorted=False, unique_indices=False, mode=None, **params):
        """The scatter kernel kind: a copy of ``x``, then a serial loop over the updates
        (in C order, as the eager ``np.<ufunc>.at``) at the window offsets."""
        from tinyjax.lax.gather_scatter import GatherScatterMode, _scatter_window_sizes
        dn = dimension_numbers
        if x.size == 0 or updates.size == 0:
            return x
        window = _scatter_window_sizes(x.ndim, updates.shape, dn)
        offset, ok, G = _window_offsets(x.shape, indices, dn.scatter_dims_to_operand_dims,
                                        dn.operand_batching_dims,
                                        dn.scatter_indices_batching_dims, window)
        scatter_dims = [d for d in range(updates.ndim) if d not in dn.update_window_dims]
        upd = ops.reshape(ops.permute(updates, scatter_dims + list(dn.update_window_dims)), G)
        if ok is None or GatherScatterMode.from_any(mode) == GatherScatterMode.CLIP:
            ok = ops.const(True, np.bool_, G)
        if x.ndim == 0:
            return ops.reshape(ops.scatter(ops.reshape(x, (1,)), offset, upd, ok, combine), ())
        return ops.scatter(x, offset, upd, ok, combine)
    return rule


for _p, _c in (("scatter", "replace"), ("scatter-add", "add"), ("scatter-mul", "mul"),
               ("scatter-min", "min"), ("scatter-max", "max")):
    lowering_rules[_p] = _scatter_rule(_c)


@register("cumlogsumexp")
def _cumlogsumexp(avals_in, avals_out, x, *, axis, reverse=False):
    """log(sum_{j<=i} exp(x_j)) with the running max m_i as the shift: the masked, expanded
    view of the cumulative rules, two reductions (max, then the shifted sum)."""
    n = x.shape[axis]
    if n == 0 or not ops.is_float(x.dtype):
        return x
    if reverse:
        x = ops.flip(x, (axis,))
    sh = list(x.shape)
    full = sh[:axis] + [n, n] + sh[axis + 1:]
    xe = ops.expand(ops.reshape(x, sh[:axis] + [1, n] + sh[axis + 1:]), full)
    ii = ops.expand(ops.reshape(ops.idx(n, np.int32), [n, 1]), [n, n])
    jj = ops.expand(ops.reshape(ops.idx(n, np.int32), [1, n]), [n, n])
    keep = ops.expand(ops.reshape(ops.alu("le", jj, ii), [1] * axis + [n, n] +
                                  [1] * (x.ndim - axis - 1)), full)
    neg_inf = ops.const(-np.inf, x.dtype, full)
    y = ops.where(keep, xe, neg_inf)
    m = ops.reduce(y, "max", (axis + 1,))                       # keeps the axis, size 1
    finite = ops.alu("is_finite", m)
    shift = ops.where(finite, m, ops.const(0, x.dtype, m.shape))
    e = ops.alu("exp", ops.alu("sub", y, ops.expand(shift, full)))
    s = ops.reduce(e, "sum", (axis + 1,))
    out = ops.alu("add", ops.alu("log", s), shift)
    out = ops.reshape(out, x.shape)
    return ops.flip(out, (axis,)) if reverse else out


# ---------------------------------------------------------------------------------------------
# sorting: the sort kernel kind computes permutations; the values are gathered through them
# ---------------------------------------------------------------------------------------------

def _take_along(x: LazyOp, perm: LazyOp, axis: int) -> LazyOp:
    """``take_along_axis(x, perm, axis)`` as one DLOAD (``perm``: int64, in range)."""
    shape = perm.shape
    offset = None
    for d, st in enumerate(_strides(x.shape)):
        pos = perm if d == axis else _iota_along(shape, d)
        term = ops.alu("mul", pos, ops.const(st, np.int64, shape))
        offset = term if offset is None else ops.alu("add", offset, term)
    return ops.dload(x, offset)


@register("sort")
def _sort(avals_in, avals_out, *operands, dimension, is_stable=True, num_keys=1):
    if operands[0].size == 0 or operands[0].shape[dimension] <= 1:
        return list(operands)
    perm = ops.sortperm(operands[:num_keys], dimension)
    return [_take_along(x, perm, dimension) for x in operands]


@register("top_k")
def _top_k(avals_in, avals_out, x, *, k):
    out_shape = avals_out[0].shape
    if 0 in out_shape:
        return [ops.const(0, x.dtype, out_shape), ops.const(0, np.int32, out_shape)]
    axis = x.ndim - 1
    perm = ops.sortperm([x], axis, descending=True)
    cut = [(0, s) for s in x.shape]
    cut[-1] = (0, k)
    perm = ops.shrink(perm, cut)
    return [_take_along(x, perm, axis), ops.cast(perm, np.int32)]


# ---------------------------------------------------------------------------------------------
# max-pool gradients: the window selection as reductions over windowed views
# ---------------------------------------------------------------------------------------------

def _selection(x: LazyOp, select_prim, window_dimensions, window_strides, padding,
               base_dilation, window_dilation):
    """(index, has, geometry): per window, the row-major in-window index of the first
    maximum (``ge``) / minimum (``le``) of ``x`` over the real (non-padding) elements (0
    when nothing matches, as numpy's argmax of all-False), and whether the window holds
    any real element; ``geometry(y, fill)`` windows another operand the same way."""
    from tinyjax.lax.windowed import _highest, _lowest
    is_max = getattr(select_prim, "name", str(select_prim)) == "ge"
    nd = x.ndim
    cfg = [(lo, hi, bd - 1) for (lo, hi), bd in zip(padding, base_dilation)]

    def geometry(y: LazyOp, fill) -> LazyOp:
        yp = pad_with_value(y, cfg, ops.const(fill, y.dtype, ()))
        return windows(yp, range(nd), window_dimensions, window_strides, window_dilation)
    fill = _lowest(x.dtype) if is_max else _highest(x.dtype)
    vals = geometry(x, fill)
    valid = geometry(ops.const(True, np.bool_, x.shape), False)
    full = vals.shape
    wax = tuple(range(nd, 2 * nd))
    best = ops.expand(ops.reduce(vals, "max" if is_max else "min", wax), full)
    hit = ops.alu("and", valid, ops.alu("eq", vals, best))
    W = int(np.prod(window_dimensions))
    widx = ops.const(0, np.int64, full)
    for j, st in enumerate(_strides(tuple(window_dimensions))):
        widx = ops.alu("add", widx, ops.alu("mul", _iota_along(full, nd + j),
                                            ops.const(st, np.int64, full)))
    first = ops.reduce(ops.where(hit, widx, ops.const(W, np.int64, full)), "min", wax)
    index = ops.where(ops.alu("eq", first, ops.const(W, np.int64, first.shape)),
                      ops.const(0, np.int64, first.shape), first)       # out + (1,)*nd
    sel = ops.alu("eq", widx, ops.expand(index, full))
    has = ops.reduce(ops.alu("and", sel, valid), "or", wax)
    return index, has, geometry, widx, sel


@register("select_and_gather_add")
def _select_and_gather_add(avals_in, avals_out, tangents, operand, *, select_prim,
                           window_dimensions, window_strides, padding, base_dilation,
                           window_dilation):
    out = avals_out[0]
    if 0 in out.shape or operand.size == 0:
        return ops.const(0, tangents.dtype, out.shape)
    index, has, geometry, widx, sel = _selection(operand, select_prim, window_dimensions,
                                                 window_strides, padding, base_dilation,
                                                 window_dilation)
    t = geometry(tangents, 0)
    picked = ops.where(sel, t, ops.const(0, t.dtype, t.shape))
    if t.dtype == np.bool_:
        red = ops.reduce(picked, "or", range(operand.ndim, 2 * operand.ndim))
    else:
        red = ops.reduce(picked, "sum", range(operand.ndim, 2 * operand.ndim))
    return ops.reshape(red, out.shape)


@register("select_and_scatter_add")
def _select_and_scatter_add(avals_in, avals_out, source, operand, *, select_prim,
                            window_dimensions, window_strides, padding, base_dilation,
                            window_dilation):
    """Each window adds its source value at its selected operand element: the scatter kernel
    kind over the windows, offsets from the selected in-window index."""
    out = avals_out[0]
    if 0 in out.shape:
        return ops.const(0, source.dtype, out.shape)
    zeros = ops.const(0, source.dtype, operand.shape)
    if source.size == 0:
        return zeros
    index, has, _, _, _ = _selection(operand, select_prim, window_dimensions, window_strides,
                                     padding, base_dilation, window_dilation)
    oshape = source.shape
    index = ops.reshape(index, oshape)
    has = ops.reshape(has, oshape)
    offset = ops.const(0, np.int64, oshape)
    rest = index
    wst = _strides(tuple(window_dimensions))
    for d, (st, n) in enumerate(zip(_strides(operand.shape), operand.shape)):
        w = ops.alu("div", rest, ops.const(wst[d], np.int64, oshape))
        rest = ops.alu("rem", rest, ops.const(wst[d], np.int64, oshape))
        lo = padding[d][0]
        pos = ops.alu("add", ops.alu("mul", _iota_along(oshape, d),
                                     ops.const(window_strides[d], np.int64, oshape)),
                      ops.alu("mul", w, ops.const(window_dilation[d], np.int64, oshape)))
        pos = ops.alu("sub", pos, ops.const(lo, np.int64, oshape))
        coord = ops.alu("div", pos, ops.const(base_dilation[d], np.int64, oshape))
        offset = ops.alu("add", offset, ops.alu("mul", coord, ops.const(st, np.int64, oshape)))
    return ops.scatter(zeros, offset, source, has, "add")
