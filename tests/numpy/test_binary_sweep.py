"""Every binary and ternary elementwise jnp function over the operand mixes where tinyjax
used to differ from JAX: result dtypes and weak types for every pair of operand kinds
(arrays of each dtype, weakly typed arrays, Python scalars), eager and traced, against a
table of JAX's results; values against numpy and derivatives against finite differences
for (array, Python scalar), (Python scalar, array), (1,1) x () and (3,1) x (1,4) operands.

The table ``data/binary_result_types.json`` holds facts measured from JAX 0.10.2 with x64
off: a generator script (kept outside the repository) built each operand kind as below,
called ``jax.eval_shape(lambda: jnp.<fn>(a, b))`` (eager calls gave the same table) and
recorded the result's dtype, ``*`` for a weak type, or ``!<ExceptionType>``; rows are the
pairs of ``kinds`` in row-major order."""
import json
import pathlib
import zlib

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

TABLE = json.loads((pathlib.Path(__file__).parent / "data" /
                    "binary_result_types.json").read_text())
KINDS = TABLE["kinds"]


def _operand(kind):
    if kind == "py_bool":
        return True
    if kind == "py_int":
        return 3
    if kind == "py_float":
        return 2.0
    if kind == "weak_int32":
        return jnp.asarray(3)
    if kind == "weak_float32":
        return jnp.asarray(2.0)
    if kind == "bool":
        return jnp.asarray(np.bool_(True))
    return jnp.asarray(np.array(2, dtype=jnp.dtype(kind)))


def _describe(out):
    outs = out if isinstance(out, tuple) else (out,)
    return ",".join(str(o.dtype) + ("*" if o.weak_type else "") for o in outs)


def _result(fn, args, traced):
    try:
        out = jax.eval_shape(lambda: fn(*args)) if traced else fn(*args)
        return _describe(out)
    except Exception as e:  # noqa: BLE001
        return "!" + type(e).__name__


def _mismatches(fn, arg_kinds, expected, traced):
    bad = []
    for kinds, want in zip(arg_kinds, expected):
        got = _result(fn, [_operand(k) for k in kinds], traced)
        if got != want:
            bad.append(f"{kinds}: got {got}, JAX {want}")
    return bad


PAIRS = [(a, b) for a in KINDS for b in KINDS]


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("name", sorted(TABLE["binary"]))
def test_binary_result_dtypes_match_jax(name, traced):
    expected = TABLE["binary"][name].split()
    bad = _mismatches(getattr(jnp, name), PAIRS, expected, traced)
    assert not bad, f"jnp.{name}: {len(bad)} of {len(PAIRS)} differ:\n" + "\n".join(bad[:20])


TERNARY_TEMPLATES = {"where": ("bool", "A", "B"), "clip": ("A", "B", "B")}


@pytest.mark.parametrize("traced", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("name", sorted(TABLE["ternary"]))
def test_ternary_result_dtypes_match_jax(name, traced):
    template = TERNARY_TEMPLATES[name]
    arg_kinds = [tuple({"A": a, "B": b}.get(t, t) for t in template) for a, b in PAIRS]
    expected = TABLE["ternary"][name].split()
    bad = _mismatches(getattr(jnp, name), arg_kinds, expected, traced)
    assert not bad, f"jnp.{name}: {len(bad)} of {len(PAIRS)} differ:\n" + "\n".join(bad[:20])


# --- values and derivatives over broadcasting operand mixes ------------------------------

def _any(shape, rng):
    return rng.uniform(-2.0, 2.0, shape)


def _pos(shape, rng):
    return rng.uniform(0.5, 2.0, shape)


# name -> (generator of x1, generator of x2, differentiable); numpy has the same name
FLOAT_BINARY = {
    "add": (_any, _any, True), "subtract": (_any, _any, True),
    "multiply": (_any, _any, True), "divide": (_any, _pos, True),
    "true_divide": (_any, _pos, True), "power": (_pos, _any, True),
    "pow": (_pos, _any, True), "float_power": (_pos, _any, True),
    "arctan2": (_any, _pos, True), "atan2": (_any, _pos, True),
    "hypot": (_pos, _pos, True), "logaddexp": (_any, _any, True),
    "logaddexp2": (_any, _any, True), "maximum": (_any, _any, True),
    "minimum": (_any, _any, True), "fmax": (_any, _any, True), "fmin": (_any, _any, True),
    "copysign": (_pos, _any, True), "fmod": (_any, _pos, True),
    "remainder": (_any, _pos, True), "mod": (_any, _pos, True),
    "floor_divide": (_any, _pos, False), "heaviside": (_any, _any, False),
    "nextafter": (_any, _any, False), "equal": (_any, _any, False),
    "not_equal": (_any, _any, False), "less": (_any, _any, False),
    "less_equal": (_any, _any, False), "greater": (_any, _any, False),
    "greater_equal": (_any, _any, False), "logical_and": (_any, _any, False),
    "logical_or": (_any, _any, False), "logical_xor": (_any, _any, False),
}
INT_BINARY = ["bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift",
              "bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "floor_divide",
              "remainder", "mod", "fmod", "add", "subtract", "multiply", "maximum",
              "minimum", "power"]

# (shape of x1, shape of x2); None is a Python scalar
SHAPES = [((3,), None), (None, (3,)), ((1, 1), ()), ((3, 1), (1, 4)), ((2, 3), (2, 3))]


def _value(shape, gen, rng):
    if shape is None:
        return float(np.round(gen((), rng), 2)) or 0.5
    return gen(shape, rng).astype(np.float32)


def _away_from_jumps(a, b, rng):
    """Operands whose quotient is half-way between integers, so that finite differences
    of a remainder do not straddle its jumps."""
    half = lambda shape: rng.integers(-3, 3, shape) + 0.5  # noqa: E731
    if isinstance(b, float):
        return (np.float32(b) * half(np.shape(a))).astype(np.float32), b
    q = half(np.broadcast_shapes(np.shape(a), np.shape(b)))
    if isinstance(a, float):
        return a, (a / half(np.shape(b))).astype(np.float32)
    a = (np.broadcast_to(b, q.shape) * q).astype(np.float32)
    return a, b


def _np_name(name):
    return {"pow": "power", "atan2": "arctan2"}.get(name, name)


def _close(actual, expected, rtol=2e-5):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(expected)
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(expected, np.float64),
                               rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", sorted(FLOAT_BINARY))
def test_float_binary_values_and_grads(name, shapes):
    gen1, gen2, differentiable = FLOAT_BINARY[name]
    rng = np.random.default_rng(zlib.crc32(repr((name, shapes)).encode()))
    a, b = _value(shapes[0], gen1, rng), _value(shapes[1], gen2, rng)
    while np.min(np.abs(np.subtract(a, b))) < 0.05:   # no ties: min/max have a kink there
        a, b = _value(shapes[0], gen1, rng), _value(shapes[1], gen2, rng)
    if name in ("mod", "remainder", "fmod"):
        a, b = _away_from_jumps(a, b, rng)
    fn = getattr(jnp, name)
    np_a = np.float32(a) if isinstance(a, float) else a
    np_b = np.float32(b) if isinstance(b, float) else b
    expected = getattr(np, _np_name(name))(np_a, np_b)
    _close(fn(a, b), expected)
    _close(jax.jit(fn)(a, b) if not isinstance(a, float) and not isinstance(b, float)
           else jax.jit(lambda x: fn(x, b) if isinstance(b, float) else fn(a, x))(
               b if isinstance(a, float) else a), expected)
    if not differentiable:
        return
    # derivatives in the array operand(s), the Python scalar held fixed
    if isinstance(a, float):
        check_grads(lambda y: fn(a, y), (b,), order=1, modes=["fwd", "rev"], rtol=2e-2)
    elif isinstance(b, float):
        check_grads(lambda x: fn(x, b), (a,), order=1, modes=["fwd", "rev"], rtol=2e-2)
    else:
        check_grads(fn, (a, b), order=1, modes=["fwd", "rev"], rtol=2e-2)
        grads = jax.grad(lambda x, y: fn(x, y).sum(), argnums=(0, 1))(a, b)
        assert [g.shape for g in grads] == [np.shape(a), np.shape(b)]


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", INT_BINARY)
def test_int_binary_values(name, shapes):
    rng = np.random.default_rng(zlib.crc32(repr((name, shapes)).encode()))

    def make(shape, lo, hi):
        return int(rng.integers(lo, hi)) if shape is None else \
            rng.integers(lo, hi, shape).astype(np.int32)

    a = make(shapes[0], -20, 20)
    b = make(shapes[1], 1, 6)
    fn = getattr(jnp, name)
    np_a = np.int32(a) if isinstance(a, int) else a
    np_b = np.int32(b) if isinstance(b, int) else b
    expected = getattr(np, name)(np_a, np_b)
    out = fn(a, b)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int32


@pytest.mark.parametrize("shapes", [((3,), (3,), (3,)), ((1, 1), (), ()),
                                    ((3, 1), (1, 4), ()), ((3,), None, None)],
                         ids=str)
def test_where_and_clip_broadcast_values_and_grads(shapes):
    rng = np.random.default_rng(0)
    c = rng.uniform(-1, 1, shapes[0]).astype(np.float32)
    lo = -0.3 if shapes[1] is None else rng.uniform(-1, -0.2, shapes[1]).astype(np.float32)
    hi = 0.4 if shapes[2] is None else rng.uniform(0.2, 1, shapes[2]).astype(np.float32)
    _close(jnp.clip(c, lo, hi), np.clip(c, lo, hi))
    _close(jnp.where(c > 0, c, lo), np.where(c > 0, c, lo))
    _close(jnp.where(c > 0, 0., c), np.where(c > 0, 0., c))
    check_grads(lambda x: jnp.where(x > 0, x * 2., lo), (c,), order=1, modes=["rev"])
    check_grads(lambda x: jnp.clip(x * 3., lo, hi), (c,), order=1, modes=["fwd", "rev"])
