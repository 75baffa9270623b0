"""conv_general_dilated: values against an explicit-loop reference, derivatives against
finite differences, vmap against loops, and the abstract-evaluation errors."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax
from tinyjax import lax
from tinyjax.test_util import check_grads


def _dil(d, r):
    return 0 if d == 0 else 1 + r * (d - 1)


def conv_ref(x, w, strides, pads, lhs_dil, rhs_dil, fgc=1, bgc=1):
    """Direct definition, canonical layouts (N, C, *sp) / (O, I, *sp) / (N, O, *sp)."""
    n_all, _ = x.shape[:2]
    o_all, i_all = w.shape[:2]
    sp, ks = x.shape[2:], w.shape[2:]
    out_sp = [max(0, (_dil(d, ld) + lo + hi - _dil(k, rd)) // s + 1)
              if _dil(d, ld) + lo + hi >= _dil(k, rd) else 0
              for d, k, s, (lo, hi), ld, rd in zip(sp, ks, strides, pads, lhs_dil, rhs_dil)]
    n_out = n_all // bgc
    og = o_all // max(fgc, bgc)
    out = np.zeros((n_out, o_all) + tuple(out_sp), np.float64)
    for n in range(n_out):
        for o in range(o_all):
            g = o // og
            nn = g * n_out + n if bgc > 1 else n
            cs = slice(g * i_all, (g + 1) * i_all) if fgc > 1 else slice(None)
            for opos in itertools.product(*map(range, out_sp)):
                acc = 0.0
                for kpos in itertools.product(*map(range, ks)):
                    ipos = []
                    for oi, ki, s, (lo, _), ld, rd, d in zip(opos, kpos, strides, pads,
                                                             lhs_dil, rhs_dil, sp):
                        j = oi * s + ki * rd - lo
                        if j < 0 or j >= _dil(d, ld) or j % ld:
                            break
                        ipos.append(j // ld)
                    else:
                        acc += np.dot(x[(nn, cs) + tuple(ipos)].astype(np.float64),
                                      w[(o, slice(None)) + kpos].astype(np.float64))
                out[(n, o) + opos] = acc
    return out


def _layout(canon, spec):
    """The array whose axis spec[i] is canonical axis i."""
    return np.transpose(canon, np.argsort(spec))


@st.composite
def conv_cases(draw, max_sp=2):
    nsp = draw(st.integers(1, max_sp))
    kind = draw(st.sampled_from(["plain", "feature", "batch"]))
    g = 1 if kind == "plain" else draw(st.integers(2, 3))
    fgc, bgc = (g, 1) if kind == "feature" else (1, g) if kind == "batch" else (1, 1)
    n = draw(st.integers(1, 2)) * bgc
    i = draw(st.integers(1, 2))
    o = draw(st.integers(1, 2)) * g
    sp = draw(st.lists(st.integers(1, 5), min_size=nsp, max_size=nsp))
    ks = draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp))
    strides = draw(st.lists(st.integers(1, 3), min_size=nsp, max_size=nsp))
    lhs_dil = draw(st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp))
    rhs_dil = draw(st.lists(st.integers(1, 2), min_size=nsp, max_size=nsp))
    pads = [(draw(st.integers(-1, 2)), draw(st.integers(-1, 2))) for _ in range(nsp)]
    specs = [tuple(draw(st.permutations(range(nsp + 2)))) for _ in range(3)]
    return dict(nsp=nsp, fgc=fgc, bgc=bgc, x_shape=(n, i * fgc) + tuple(sp),
                w_shape=(o, i) + tuple(ks), strides=tuple(strides), lhs_dil=tuple(lhs_dil),
                rhs_dil=tuple(rhs_dil), pads=tuple(pads), specs=specs)


@settings(max_examples=40, deadline=None)
@given(conv_cases(), st.integers(0, 2**31 - 1))
def test_conv_values_match_loops(case, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x_shape"]).astype(np.float32)
    w = rng.standard_normal(case["w_shape"]).astype(np.float32)
    want = conv_ref(x, w, case["strides"], case["pads"], case["lhs_dil"], case["rhs_dil"],
                    case["fgc"], case["bgc"])
    lhs_spec, rhs_spec, out_spec = case["specs"]
    dn = lax.ConvDimensionNumbers(lhs_spec, rhs_spec, out_spec)
    got = lax.conv_general_dilated(_layout(x, lhs_spec), _layout(w, rhs_spec),
                                   case["strides"], case["pads"], case["lhs_dil"],
                                   case["rhs_dil"], dn, case["fgc"], case["bgc"])
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.transpose(np.asarray(got), out_spec), want, rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", "VALID", "SAME_LOWER", "same"])
@pytest.mark.parametrize("strides", [(1, 1), (2, 3)])
def test_string_padding(padding, strides):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    # independent rule: SAME gives ceil(d / s) outputs, the extra padding high first
    pads = []
    for d, k, s in zip((7, 6), (5, 3), strides):  # kernel dilated by (2, 2)
        if padding.upper() == "VALID":
            pads.append((0, 0))
            continue
        total = max(0, (-(-d // s) - 1) * s + k - d)
        lo = total // 2 if padding.upper() == "SAME" else total - total // 2
        pads.append((lo, total - lo))
    got = lax.conv_general_dilated(x, w, strides, padding, rhs_dilation=(2, 2))
    want = conv_ref(x, w, strides, pads, (1, 1), (2, 2))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    if padding.upper() != "VALID":
        assert got.shape[2:] == tuple(-(-d // s) for d, s in zip((7, 6), strides))
    assert lax.padtype_to_pads((7, 6), (5, 3), strides, padding) == pads


def test_string_dimension_numbers():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 5)).astype(np.float32)   # NCHW
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)   # OIHW
    want = conv_ref(x, w, (1, 2), [(1, 1), (0, 1)], (1, 1), (1, 1))
    got = lax.conv_general_dilated(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), (1, 2),
                                   [(1, 1), (0, 1)], dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(np.asarray(got).transpose(0, 3, 1, 2), want, rtol=1e-4,
                               atol=1e-4)
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NCHW", "OIHW", "NCHW"))
    assert dn == lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))
    dn = lax.conv_dimension_numbers((1, 5, 3), (2, 3, 4), ("NWC", "WIO", "NWC"))
    assert dn == lax.ConvDimensionNumbers((0, 2, 1), (2, 1, 0), (0, 2, 1))
    # spatial axes follow the rhs's order
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NCHW", "OIWH", "NCWH"))
    assert dn == lax.ConvDimensionNumbers((0, 1, 3, 2), (0, 1, 2, 3), (0, 1, 2, 3))
    assert lax.conv_dimension_numbers(x.shape, w.shape, None) == \
        lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2, 3), (0, 1, 2, 3))


def test_conv_and_general_padding_wrappers():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    np.testing.assert_allclose(lax.conv(x, w, (1, 1), "VALID"),
                               conv_ref(x, w, (1, 1), [(0, 0)] * 2, (1, 1), (1, 1)),
                               rtol=1e-4, atol=1e-4)
    got = lax.conv_with_general_padding(x, w, (2, 1), [(1, 0), (0, 2)], (2, 1), (1, 2))
    np.testing.assert_allclose(got, conv_ref(x, w, (2, 1), [(1, 0), (0, 2)], (2, 1), (1, 2)),
                               rtol=1e-4, atol=1e-4)


def test_dtypes_and_precision():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    w = rng.standard_normal((2, 2, 2, 2)).astype(np.float32)
    bf = tinyjax.dtypes.bfloat16
    out = lax.conv(x.astype(bf), w.astype(bf), (1, 1), "SAME", precision="highest")
    assert out.dtype == bf
    out = lax.conv(x.astype(bf), w.astype(bf), (1, 1), "SAME",
                   preferred_element_type=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, conv_ref(x.astype(bf).astype(np.float32),
                                             w.astype(bf).astype(np.float32), (1, 1),
                                             lax.padtype_to_pads((4, 4), (2, 2), (1, 1), "SAME"),
                                             (1, 1), (1, 1)), rtol=1e-5, atol=1e-5)
    xi, wi = (x * 3).astype(np.int32), (w * 3).astype(np.int32)
    out = lax.conv(xi, wi, (1, 1), "VALID")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, conv_ref(xi, wi, (1, 1), [(0, 0)] * 2, (1, 1), (1, 1)))
    jaxpr = tinyjax.make_jaxpr(lambda a, b: lax.conv(a, b, (1, 1), "SAME", "high"))(x, w)
    assert "precision=(Precision.HIGH, Precision.HIGH)" in str(jaxpr)
    assert "padding=((0, 1), (0, 1))" in str(jaxpr)


GRAD_CASES = [
    dict(x=(2, 3, 5), w=(2, 3, 2), strides=(2,), pads=[(1, 0)], ld=(1,), rd=(2,)),
    dict(x=(1, 2, 5, 4), w=(3, 2, 2, 3), strides=(2, 1), pads=[(1, 2), (0, -1)], ld=(2, 1),
         rd=(1, 2)),
    dict(x=(2, 4, 4, 3), w=(6, 2, 2, 2), strides=(1, 2), pads=[(1, 1), (1, 0)], ld=(1, 2),
         rd=(2, 1), fgc=2),
    dict(x=(4, 2, 5, 3), w=(6, 2, 3, 2), strides=(2, 1), pads=[(0, 1), (1, 1)], ld=(1, 1),
         rd=(1, 1), bgc=2),
    dict(x=(1, 3, 4, 4), w=(3, 1, 3, 3), strides=(1, 1), pads=[(1, 1), (1, 1)], ld=(1, 1),
         rd=(1, 1), fgc=3),  # depthwise
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_conv_grads(x64, case):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(case["x"])
    w = rng.standard_normal(case["w"])
    nsp = len(case["x"]) - 2
    perm = tuple(range(nsp + 2))[::-1]  # also exercise a non-default layout

    def f(a, b):
        return lax.conv_general_dilated(a, b, case["strides"], case["pads"], case["ld"],
                                        case["rd"], (perm, tuple(range(nsp + 2)), perm),
                                        case.get("fgc", 1), case.get("bgc", 1))
    check_grads(f, (np.transpose(x, perm), w), order=2, modes=("fwd", "rev"))


def test_conv_grad_values_vs_explicit_vjp(x64):
    # reverse mode against the explicit adjoint of the reference: <ct, conv(x, w)>
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5, 4))
    w = rng.standard_normal((3, 2, 2, 2))
    args = ((2, 1), [(1, 0), (0, 1)], (1, 2), (2, 1))
    ct = rng.standard_normal(np.shape(conv_ref(x, w, *args)))
    gx, gw = tinyjax.grad(lambda a, b: lax.reduce_sum(
        lax.mul(lax.conv_general_dilated(a, b, *args), ct), (0, 1, 2, 3)), (0, 1))(x, w)
    eye_x = np.eye(x.size).reshape((x.size,) + x.shape)
    want_gx = np.array([np.sum(conv_ref(e, w, *args) * ct) for e in eye_x]).reshape(x.shape)
    eye_w = np.eye(w.size).reshape((w.size,) + w.shape)
    want_gw = np.array([np.sum(conv_ref(x, e, *args) * ct) for e in eye_w]).reshape(w.shape)
    np.testing.assert_allclose(gx, want_gx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, want_gw, rtol=1e-10, atol=1e-10)


VMAP_CASES = [dict(fgc=1, bgc=1), dict(fgc=2, bgc=1), dict(fgc=1, bgc=2)]


@pytest.mark.parametrize("case", VMAP_CASES)
@pytest.mark.parametrize("which", ["lhs", "rhs", "both"])
def test_conv_vmap(case, which):
    rng = np.random.default_rng(6)
    fgc, bgc = case["fgc"], case["bgc"]
    b = 3
    x = rng.standard_normal((b, 2 * bgc, 2 * fgc, 5, 4)).astype(np.float32)
    w = rng.standard_normal((b, 2 * max(fgc, bgc), 2, 2, 3)).astype(np.float32)
    dn = ("NHWC", "HWOI", "NCWH")  # non-trivial layouts
    xs = np.transpose(x, (0, 1, 3, 4, 2))
    ws = np.transpose(w, (0, 3, 4, 1, 2))

    def f(a, c):
        return lax.conv_general_dilated(a, c, (2, 1), [(1, 0), (1, 1)], (1, 1), (1, 2), dn,
                                        fgc, bgc)
    x_ax, w_ax = {"lhs": (2, None), "rhs": (None, 4), "both": (1, 0)}[which]
    x_in = np.moveaxis(xs, 0, x_ax) if x_ax is not None else xs[0]
    w_in = np.moveaxis(ws, 0, w_ax) if w_ax is not None else ws[0]
    got = tinyjax.vmap(f, in_axes=(x_ax, w_ax))(x_in, w_in)
    want = np.stack([np.asarray(f(xs[i] if x_ax is not None else xs[0],
                                  ws[i] if w_ax is not None else ws[0])) for i in range(b)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_vmap_of_grad():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 2, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)

    def loss(w, x):
        y = lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=2)
        return lax.reduce_sum(lax.mul(y, y), (0, 1, 2, 3))
    got = tinyjax.vmap(tinyjax.grad(loss), in_axes=(None, 0))(w, x)
    want = np.stack([np.asarray(tinyjax.grad(loss)(w, x[i])) for i in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_mnist_sized_training_step_is_fast():
    import time
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 28, 28, 1)).astype(np.float32)
    w1 = rng.standard_normal((3, 3, 1, 16)).astype(np.float32)
    w2 = rng.standard_normal((3, 3, 16, 32)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(w1, w2, x):
        h = lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn)
        h = lax.max(h, lax.full_like_aval(tinyjax.core.get_aval(h), 0.0))
        h = lax.conv_general_dilated(h, w2, (2, 2), "SAME", dimension_numbers=dn)
        return lax.reduce_sum(lax.mul(h, h), (0, 1, 2, 3))
    grad = tinyjax.grad(loss, (0, 1))
    grad(w1, w2, x)
    start = time.perf_counter()
    g1, g2 = grad(w1, w2, x)
    assert time.perf_counter() - start < 2.0
    assert g1.shape == w1.shape and g2.shape == w2.shape


def test_abstract_eval_errors():
    x = np.zeros((2, 4, 5, 5), np.float32)
    w = np.zeros((6, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="feature_group_count must divide lhs feature"):
        lax.conv_general_dilated(x, w, (1, 1), "SAME", feature_group_count=3)
    with pytest.raises(ValueError, match=r"divided by feature_group_count must equal the rhs "
                                         r"input feature dimension size, but 4 // 1 != 2"):
        lax.conv_general_dilated(x, w, (1, 1), "SAME")
    with pytest.raises(ValueError, match="must be a multiple of feature_group_count"):
        lax.conv_general_dilated(np.zeros((2, 8, 5, 5), np.float32),
                                 np.zeros((6, 2, 3, 3), np.float32), (1, 1), "SAME",
                                 feature_group_count=4)
    with pytest.raises(ValueError, match="batch_group_count must divide lhs batch"):
        lax.conv_general_dilated(np.zeros((3, 2, 5, 5), np.float32), w, (1, 1), "SAME",
                                 batch_group_count=2)
    with pytest.raises(ValueError, match="At most one of batch_group_count"):
        lax.conv_general_dilated(np.zeros((2, 4, 5, 5), np.float32), w, (1, 1), "SAME",
                                 feature_group_count=2, batch_group_count=2)
    with pytest.raises(ValueError, match=r"same number of dimensions, but got \(2, 4, 5, 5\)"):
        lax.conv_general_dilated_p.bind(
            x, np.zeros((6, 4, 3), np.float32), window_strides=(1, 1),
            padding=((0, 0), (0, 0)), lhs_dilation=(1, 1), rhs_dilation=(1, 1),
            dimension_numbers=lax.ConvDimensionNumbers((0, 1, 2, 3), (0, 1, 2), (0, 1, 2, 3)),
            feature_group_count=1, batch_group_count=1)
    with pytest.raises(ValueError, match="window_strides must have one entry per spatial"):
        lax.conv_general_dilated(x, np.zeros((6, 4, 3, 3), np.float32), (1,), "VALID")
    with pytest.raises(TypeError, match="conv_general_dilated requires arguments to have the "
                                        "same dtypes, got float32, float16"):
        lax.conv(x, np.zeros((6, 4, 3, 3), np.float16), (1, 1), "VALID")
    with pytest.raises(RuntimeError, match="Unrecognized padding type"):
        lax.conv(x, np.zeros((6, 4, 3, 3), np.float32), (1, 1), "FULL")
    with pytest.raises(ValueError, match="String padding is not implemented"):
        lax.conv_general_dilated(x, np.zeros((6, 4, 3, 3), np.float32), (1, 1), "SAME",
                                 lhs_dilation=(2, 2))
    with pytest.raises(ValueError, match="padding argument to conv_general_dilated"):
        lax.conv(x, np.zeros((6, 4, 3, 3), np.float32), (1, 1), [1, 2])
    with pytest.raises(TypeError, match="ndim to be equal, got 4 and 3"):
        lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3), None)
    with pytest.raises(TypeError, match=r"dimension_numbers\[1\] must contain the characters "
                                        "'O' and 'I' exactly once"):
        lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NCHW", "OOHW", "NCHW"))
    with pytest.raises(TypeError, match="same set of spatial characters"):
        lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NCHW", "OIHX", "NCHW"))
    with pytest.raises(TypeError, match=r"dimension_numbers\[0\] must have len equal"):
        lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NCH", "OIHW", "NCHW"))
    with pytest.raises(TypeError, match="must be length 3"):
        lax.conv_dimension_numbers((1, 2, 3, 4), (1, 2, 3, 4), ("NCHW", "OIHW"))
