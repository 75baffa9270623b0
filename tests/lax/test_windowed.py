"""Windowed reductions and the max-pool derivative primitives: values against explicit
loops, derivatives against finite differences, vmap against loops, errors."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.test_util import check_grads


def _dil(d, r):
    return 0 if d == 0 else 1 + r * (d - 1)


def _windows(shape, wd, ws, pads, bd, wdil):
    """For each output position, the operand indices (None for padding) of its window
    in row-major window order."""
    out_shape = tuple((_dil(d, b) + lo + hi - _dil(k, r)) // s + 1
                      for d, k, s, (lo, hi), b, r in zip(shape, wd, ws, pads, bd, wdil))
    result = {}
    for o in itertools.product(*map(range, out_shape)):
        idxs = []
        for w in itertools.product(*map(range, wd)):
            idx = []
            for oi, wi, s, r, (lo, _), b, d in zip(o, w, ws, wdil, pads, bd, shape):
                j = oi * s + wi * r - lo
                if j < 0 or j >= _dil(d, b) or j % b:
                    idx = None
                    break
                idx.append(j // b)
            idxs.append(None if idx is None else tuple(idx))
        result[o] = idxs
    return out_shape, result


def reduce_window_ref(x, kind, *geom):
    out_shape, wins = _windows(x.shape, *geom)
    out = np.zeros(out_shape, np.float64)
    for o, idxs in wins.items():
        vals = [float(x[i]) for i in idxs if i is not None]
        out[o] = {"sum": sum(vals), "max": max(vals, default=-np.inf),
                  "min": min(vals, default=np.inf)}[kind]
    return out


def select_ref(x, is_max, *geom):
    """Selected operand index per output position (first max/min), or None."""
    out_shape, wins = _windows(x.shape, *geom)
    sel = {}
    for o, idxs in wins.items():
        best = None
        for i in idxs:
            if i is not None and (best is None or (x[i] > x[best] if is_max else x[i] < x[best])):
                best = i
        sel[o] = best
    return out_shape, sel


@st.composite
def geometries(draw, max_rank=3):
    rank = draw(st.integers(1, max_rank))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    wd = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    ws = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    bd = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    wdil = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    pads = []
    for d, k, b, r in zip(shape, wd, bd, wdil):
        lo, hi = draw(st.integers(-1, 2)), draw(st.integers(-1, 2))
        while _dil(d, b) + lo + hi < _dil(k, r):
            hi += 1
        pads.append((lo, hi))
    return shape, wd, ws, tuple(pads), bd, wdil


@settings(max_examples=40, deadline=None)
@given(geometries(), st.sampled_from(["sum", "max", "min"]),
       st.sampled_from([np.float32, np.int32]), st.integers(0, 2**31 - 1))
def test_reduce_window_values(geom, kind, dtype, seed):
    shape, wd, ws, pads, bd, wdil = geom
    x = (np.random.default_rng(seed).standard_normal(shape) * 4).astype(dtype)
    comp = {"sum": lax.add, "max": lax.max, "min": lax.min}[kind]
    init = {"sum": 0, "max": -np.inf if dtype == np.float32 else np.iinfo(dtype).min,
            "min": np.inf if dtype == np.float32 else np.iinfo(dtype).max}[kind]
    got = lax.reduce_window(x, dtype(init) if dtype != np.float32 else init, comp, wd, ws,
                            pads, bd, wdil)
    want = reduce_window_ref(x, kind, wd, ws, pads, bd, wdil)
    if dtype == np.int32 and kind != "sum":
        want = np.clip(want, np.iinfo(dtype).min, np.iinfo(dtype).max)
    assert got.dtype == dtype and got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(geometries(), st.booleans(), st.integers(0, 2**31 - 1))
def test_select_and_scatter_and_gather(geom, is_max, seed):
    shape, wd, ws, pads, bd, wdil = geom
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float32)  # many ties: first one wins
    out_shape, sel = select_ref(x, is_max, wd, ws, pads, bd, wdil)
    source = rng.standard_normal(out_shape).astype(np.float32)
    want = np.zeros(shape, np.float64)
    for o, i in sel.items():
        if i is not None:
            want[i] += source[o]
    prim = lax.ge_p if is_max else lax.le_p
    got = lax.select_and_scatter_add(source, x, prim, wd, ws, pads, bd, wdil)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-5, atol=1e-5)
    t = rng.standard_normal(shape).astype(np.float32)
    want_g = np.zeros(out_shape)
    for o, i in sel.items():
        want_g[o] = 0.0 if i is None else t[i]
    got_g = lax.select_and_gather_add(t, x, prim, wd, ws, pads, bd, wdil)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-6)
    # the two are transposes of each other: <s, gather(t)> == <scatter(s), t>
    np.testing.assert_allclose(np.sum(source * np.asarray(got_g, np.float64)),
                               np.sum(np.asarray(got, np.float64) * t), rtol=1e-4, atol=1e-4)


def test_string_padding_and_jnp_computations():
    x = np.arange(30, dtype=np.float32).reshape(5, 6)
    got = lax.reduce_window(x, -np.inf, jnp.maximum, (2, 3), (2, 2), "SAME")
    pads = lax.padtype_to_pads((5, 6), (2, 3), (2, 2), "SAME")
    assert got.shape == (3, 3)
    np.testing.assert_array_equal(got, reduce_window_ref(x, "max", (2, 3), (2, 2), pads,
                                                         (1, 1), (1, 1)))
    got = lax.reduce_window(x, 0.0, jnp.add, (2, 2), (1, 1), "VALID")
    np.testing.assert_array_equal(got, reduce_window_ref(x, "sum", (2, 2), (1, 1),
                                                         ((0, 0), (0, 0)), (1, 1), (1, 1)))
    got = lax.reduce_window(x, np.inf, jnp.minimum, (2, 2), (1, 1), "VALID",
                            window_dilation=(2, 1))
    np.testing.assert_array_equal(got, reduce_window_ref(x, "min", (2, 2), (1, 1),
                                                         ((0, 0), (0, 0)), (1, 1), (2, 1)))
    # a non-identity init joins every window (and is what padding holds)
    got = lax.reduce_window(x, 10.0, lax.max, (2, 2), (2, 2), [(1, 0), (0, 0)])
    want = np.maximum(reduce_window_ref(x, "max", (2, 2), (2, 2), ((1, 0), (0, 0)), (1, 1),
                                        (1, 1)), 10.0)
    np.testing.assert_array_equal(got, want)


GRAD_GEOMS = [
    ((4, 5), (2, 2), (2, 2), ((0, 0), (0, 1)), (1, 1), (1, 1)),
    ((5, 4), (3, 2), (1, 2), ((1, 1), (1, 0)), (1, 1), (1, 1)),
    ((3, 4), (2, 2), (2, 1), ((1, -1), (0, 2)), (2, 1), (1, 2)),
    ((2, 3, 4), (1, 2, 3), (1, 1, 2), ((0, 0), (1, 1), (2, 1)), (1, 2, 1), (1, 1, 2)),
]


@pytest.mark.parametrize("geom", GRAD_GEOMS)
@pytest.mark.parametrize("kind", ["sum", "max", "min"])
def test_reduce_window_grads(x64, geom, kind):
    shape = geom[0]
    rng = np.random.default_rng(1)
    # well separated values so that finite differences never cross a tie
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float64) * 0.1
    comp = {"sum": lax.add, "max": lax.max, "min": lax.min}[kind]
    init = {"sum": 0.0, "max": -np.inf, "min": np.inf}[kind]
    f = lambda a: lax.reduce_window(a, init, comp, *geom[1:])  # noqa: E731
    check_grads(f, (x,), order=2, modes=("fwd", "rev"), eps=1e-3)


def test_max_pool_grad_matches_reference(x64):
    x = np.random.default_rng(2).integers(0, 4, (6, 7)).astype(np.float64)
    geom = ((3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), (1, 1))
    ct = np.random.default_rng(3).standard_normal((3, 4))
    g = tinyjax.grad(lambda a: lax.reduce_sum(
        lax.mul(lax.reduce_window(a, -np.inf, lax.max, *geom), ct), (0, 1)))(x)
    _, sel = select_ref(x, True, *geom)
    want = np.zeros_like(x)
    for o, i in sel.items():
        want[i] += ct[o]
    np.testing.assert_allclose(g, want)


def test_select_primitives_grads(x64):
    rng = np.random.default_rng(4)
    x = rng.permutation(20).reshape(4, 5).astype(np.float64)
    geom = ((2, 2), (1, 2), ((0, 1), (1, 0)), (1, 1), (1, 1))
    src = rng.standard_normal((4, 3))
    t = rng.standard_normal((4, 5))
    check_grads(lambda s: lax.select_and_scatter_add(s, x, lax.ge_p, *geom), (src,), 2)
    check_grads(lambda u: lax.select_and_gather_add(u, x, lax.le_p, *geom), (t,), 2)
    # the operand only selects: its derivative is zero
    _, tan = tinyjax.jvp(lambda a: lax.select_and_scatter_add(src, a, lax.ge_p, *geom),
                         (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(tan, 0.0)


@pytest.mark.parametrize("kind", ["sum", "max", "min"])
def test_reduce_window_vmap(kind):
    x = np.random.default_rng(5).standard_normal((4, 3, 5)).astype(np.float32)
    comp = {"sum": lax.add, "max": lax.max, "min": lax.min}[kind]
    init = {"sum": 0.0, "max": -np.inf, "min": np.inf}[kind]
    f = lambda a: lax.reduce_window(a, init, comp, (2, 2), (1, 2), "SAME",  # noqa: E731
                                    window_dilation=(1, 2))
    for axis in (0, 1, 2):
        got = tinyjax.vmap(f, in_axes=axis)(np.moveaxis(x, 0, axis))
        want = np.stack([np.asarray(f(x[i])) for i in range(4)])
        np.testing.assert_allclose(got, want, rtol=1e-6)
    g = tinyjax.vmap(tinyjax.grad(lambda a: lax.reduce_sum(f(a), (0, 1))))(x)
    want = np.stack([np.asarray(tinyjax.grad(lambda a: lax.reduce_sum(f(a), (0, 1)))(x[i]))
                     for i in range(4)])
    np.testing.assert_allclose(g, want, rtol=1e-6)


@pytest.mark.parametrize("in_axes", [(0, None), (None, 1), (1, 0)])
@pytest.mark.parametrize("prim_name", ["scatter", "gather"])
def test_select_vmap(in_axes, prim_name):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    geom = ((2, 2), (2, 1), ((0, 0), (1, 0)), (1, 1), (1, 1))
    a = rng.standard_normal((3, 2, 5) if prim_name == "scatter" else (3, 4, 5)).astype(
        np.float32)
    fn = lax.select_and_scatter_add if prim_name == "scatter" else lax.select_and_gather_add
    f = lambda s, op: fn(s, op, lax.ge_p, *geom)  # noqa: E731
    a_in = np.moveaxis(a, 0, in_axes[0]) if in_axes[0] is not None else a[0]
    x_in = np.moveaxis(x, 0, in_axes[1]) if in_axes[1] is not None else x[0]
    got = tinyjax.vmap(f, in_axes=in_axes)(a_in, x_in)
    want = np.stack([np.asarray(f(a[i] if in_axes[0] is not None else a[0],
                                  x[i] if in_axes[1] is not None else x[0])) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_dtypes_and_weak_type():
    bf = tinyjax.dtypes.bfloat16
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    out = lax.reduce_window(x.astype(bf), 0.0, lax.add, (2, 2), (1, 1), "VALID")
    assert out.dtype == bf
    np.testing.assert_allclose(np.asarray(out, np.float32),
                               reduce_window_ref(x, "sum", (2, 2), (1, 1), ((0, 0),) * 2,
                                                 (1, 1), (1, 1)))
    out = lax.reduce_window(x.astype(np.int32), np.int32(0), lax.add, (2, 2), (1, 1), "VALID")
    assert out.dtype == np.int32
    b = x > 5
    out = lax.reduce_window(b, False, lax.max, (2, 2), (1, 1), "VALID")
    np.testing.assert_array_equal(out, reduce_window_ref(b.astype(float), "max", (2, 2), (1, 1),
                                                         ((0, 0),) * 2, (1, 1), (1, 1)) > 0)
    jaxpr = tinyjax.make_jaxpr(
        lambda a: lax.reduce_window(a, 0.0, lax.add, (2,), (1,), "VALID"))(1.0 * np.ones(3))
    assert "reduce_window_sum" in str(jaxpr)


def test_errors():
    x = np.zeros((4, 5), np.float32)
    with pytest.raises(TypeError, match=r"reduce_window_max: window_dimensions must have one "
                                        r"entry per operand dimension.*\(4, 5\)"):
        lax.reduce_window(x, -np.inf, lax.max, (2,), (1,), "VALID")
    with pytest.raises(TypeError, match=r"reduce_window_sum: the window \(of dilated size 7\) "
                                        r"does not fit in dimension 1"):
        lax.reduce_window(x, 0.0, lax.add, (1, 3), (1, 1), "VALID", window_dilation=(1, 3))
    with pytest.raises(TypeError, match="window_strides must be positive"):
        lax.reduce_window(x, 0.0, lax.add, (1, 1), (1, 0), "VALID")
    # any other computation (or add from another start) is reduce_window_p's
    np.testing.assert_allclose(lax.reduce_window(x, 2.0, lax.mul, (1, 1), (1, 1), "VALID"),
                               2 * np.asarray(x), rtol=1e-6)
    np.testing.assert_allclose(lax.reduce_window(x, 1.0, lax.add, (1, 1), (1, 1), "VALID"),
                               np.asarray(x) + 1, rtol=1e-6)
    with pytest.raises(TypeError, match="reduce_window_sum does not accept dtype bool"):
        lax.reduce_window(x > 0, False, lax.add, (1, 1), (1, 1), "VALID")
    with pytest.raises(RuntimeError, match="Unrecognized padding type"):
        lax.reduce_window(x, 0.0, lax.add, (1, 1), (1, 1), "FULL")
    with pytest.raises(TypeError, match="select_prim must be lax.ge_p or lax.le_p"):
        lax.select_and_scatter_add(np.zeros((4, 5), np.float32), x, lax.eq_p, (1, 1), (1, 1),
                                   "VALID")
    with pytest.raises(TypeError, match=r"source shape \(4, 4\) must equal the windowed "
                                        r"shape \(4, 5\)"):
        lax.select_and_scatter_add(np.zeros((4, 4), np.float32), x, lax.ge_p, (1, 1), (1, 1),
                                   "VALID")
    with pytest.raises(TypeError, match="tangents and operand must have the same shape"):
        lax.select_and_gather_add(np.zeros((4, 4), np.float32), x, lax.ge_p, (1, 1), (1, 1),
                                  "VALID")


def test_traced_init_value():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)

    def f(init):
        return lax.reduce_window(x, init, lax.max, (2, 2), (1, 1), [(1, 0), (0, 0)])
    want = np.maximum(reduce_window_ref(x, "max", (2, 2), (1, 1), ((1, 0), (0, 0)), (1, 1),
                                        (1, 1)), 5.0)
    np.testing.assert_array_equal(tinyjax.jit(f)(np.float32(5.0)), want)
    np.testing.assert_array_equal(tinyjax.jit(f)(np.float32(-np.inf)), reduce_window_ref(
        x, "max", (2, 2), (1, 1), ((1, 0), (0, 0)), (1, 1), (1, 1)))
    # a traced start for add: the general reduce_window, from that start
    summed = tinyjax.jit(lambda i: lax.reduce_window(x, i, lax.add, (2, 2), (1, 1), "VALID"))
    np.testing.assert_allclose(summed(3.0), reduce_window_ref(
        x, "sum", (2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), (1, 1)) + 3, rtol=1e-6)
    with pytest.raises(TypeError, match="init_value must be a scalar"):
        lax.reduce_window(x, np.zeros(2), lax.max, (2, 2), (1, 1), "VALID")
