"""dot_general / dot / batch_matmul: values against an independent einsum reference,
derivatives against finite differences, vmap against loops, and errors."""
import string

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax
from tinyjax import lax
from tinyjax.test_util import check_grads


@st.composite
def dot_cases(draw):
    """Random operands and dimension numbers, with an einsum spec to check against."""
    nb, nc = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    nlf, nrf = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sizes = draw(st.lists(st.integers(1, 4), min_size=nb + nc + nlf + nrf,
                          max_size=nb + nc + nlf + nrf))
    letters = string.ascii_letters[:len(sizes)]
    b, c = letters[:nb], letters[nb:nb + nc]
    lf, rf = letters[nb + nc:nb + nc + nlf], letters[nb + nc + nlf:]
    size = dict(zip(letters, sizes))
    lhs = draw(st.permutations(b + c + lf))
    rhs = draw(st.permutations(b + c + rf))
    dims = (((tuple(lhs.index(x) for x in c), tuple(rhs.index(x) for x in c)),
             (tuple(lhs.index(x) for x in b), tuple(rhs.index(x) for x in b))))
    lf_sorted = "".join(x for x in lhs if x in lf)
    rf_sorted = "".join(x for x in rhs if x in rf)
    spec = f"{''.join(lhs)},{''.join(rhs)}->{b}{lf_sorted}{rf_sorted}"
    return (tuple(size[x] for x in lhs), tuple(size[x] for x in rhs), dims, spec)


@settings(max_examples=60, deadline=None)
@given(dot_cases(), st.sampled_from([np.float32, np.float64, np.int32, np.float16,
                                     np.complex64]), st.integers(0, 2**31 - 1))
def test_dot_general_values(case, dtype, seed):
    lshape, rshape, dims, spec = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(lshape) * 3).astype(dtype)
    y = (rng.standard_normal(rshape) * 3).astype(dtype)
    got = lax.dot_general(x, y, dims)
    want = np.einsum(spec, x.astype(np.complex128), y.astype(np.complex128))
    expected_dtype = tinyjax.dtypes.canonicalize_dtype(dtype)
    assert got.dtype == expected_dtype
    assert got.shape == want.shape
    tol = 2e-2 if dtype == np.float16 else 1e-5
    np.testing.assert_allclose(np.asarray(got, np.complex128), want, rtol=tol, atol=tol)


@settings(max_examples=30, deadline=None)
@given(dot_cases(), st.integers(0, 2**31 - 1), st.sampled_from(["lhs", "rhs", "both"]),
       st.data())
def test_dot_general_vmap(case, seed, which, data):
    lshape, rshape, dims, _ = case
    rng = np.random.default_rng(seed)
    n = 3
    x = rng.standard_normal((n,) + lshape).astype(np.float32)
    y = rng.standard_normal((n,) + rshape).astype(np.float32)
    lax_ = data.draw(st.integers(0, len(lshape))) if which != "rhs" else None
    rax = data.draw(st.integers(0, len(rshape))) if which != "lhs" else None
    f = lambda a, b: lax.dot_general(a, b, dims)  # noqa: E731
    x_in = np.moveaxis(x, 0, lax_) if lax_ is not None else x[0]
    y_in = np.moveaxis(y, 0, rax) if rax is not None else y[0]
    got = tinyjax.vmap(f, in_axes=(lax_, rax))(x_in, y_in)
    want = np.stack([np.asarray(f(x[i] if lax_ is not None else x[0],
                                  y[i] if rax is not None else y[0])) for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


GRAD_DIMS = [
    ((3,), (3,), (((0,), (0,)), ((), ()))),                     # inner product
    ((2, 3), (3, 4), (((1,), (0,)), ((), ()))),                 # matmul
    ((4, 2, 3), (4, 3, 5), (((2,), (1,)), ((0,), (0,)))),       # batched matmul
    ((3, 2, 4), (2, 5, 3), (((0, 1), (2, 0)), ((), ()))),       # two contracting, permuted
    ((2, 3, 4), (4, 3, 2), (((1,), (1,)), ((2, 0), (0, 2)))),   # batch dims out of order
    ((2, 3), (4,), (((), ()), ((), ()))),                        # outer product
]


@pytest.mark.parametrize("lshape,rshape,dims", GRAD_DIMS)
def test_dot_general_grads(x64, lshape, rshape, dims):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(lshape), rng.standard_normal(rshape)
    check_grads(lambda a, b: lax.dot_general(a, b, dims), (x, y), order=2,
                modes=("fwd", "rev"))
    # one operand constant
    check_grads(lambda a: lax.dot_general(a, y, dims), (x,), order=1, modes=("rev",))
    check_grads(lambda b: lax.dot_general(x, b, dims), (y,), order=1, modes=("rev",))


def test_grad_matches_matmul_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    y = rng.standard_normal((4, 5)).astype(np.float32)
    ct = rng.standard_normal((3, 5)).astype(np.float32)
    gx, gy = tinyjax.vjp(lambda a, b: lax.dot(a, b), x, y)[1](ct)
    np.testing.assert_allclose(gx, ct @ y.T, rtol=1e-5)
    np.testing.assert_allclose(gy, x.T @ ct, rtol=1e-5)


def test_dot_and_batch_matmul():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    np.testing.assert_allclose(lax.dot(a, b), a.astype(np.float32) @ b.astype(np.float32),
                               rtol=1e-5)
    np.testing.assert_allclose(lax.dot(b, b), b @ b, rtol=1e-5)
    np.testing.assert_allclose(lax.dot(b, a.T), b @ a.T, rtol=1e-5)
    x, y = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(lax.batch_matmul(x, y), np.matmul(x, y), rtol=1e-5)
    with pytest.raises(TypeError, match=r"Incompatible shapes for dot: got \(3, 4\) and \(3,\)"):
        lax.dot(a, np.ones(3))
    with pytest.raises(TypeError, match="Incompatible shapes for dot"):
        lax.dot(np.ones((2, 2, 2)), np.ones(2))
    with pytest.raises(ValueError, match="must be at least 2D, got 1, 2"):
        lax.batch_matmul(np.ones(3), np.ones((3, 3)))
    with pytest.raises(ValueError, match="must have same ndim, got 3, 2"):
        lax.batch_matmul(np.ones((2, 3, 3)), np.ones((3, 3)))


def test_preferred_element_type_and_accumulation():
    bf = tinyjax.dtypes.bfloat16
    x = np.full((1, 4096), 1.0, np.float32)
    y = np.full((4096, 1), 1.0, np.float32)
    # float16/bfloat16 accumulate in float32: 4096 would not be exact if summed in float16
    out = lax.dot(x.astype(np.float16), y.astype(np.float16))
    assert out.dtype == np.float16 and float(np.asarray(out)[0, 0]) == 4096.0
    out = lax.dot(x.astype(bf), y.astype(bf), preferred_element_type=np.float32)
    assert out.dtype == np.float32 and float(np.asarray(out)[0, 0]) == 4096.0
    xi = np.full((2, 300), 100, np.int8)
    out = lax.dot(xi, xi.T, preferred_element_type=np.int32)
    assert out.dtype == np.int32 and int(np.asarray(out)[0, 0]) == 300 * 100 * 100
    # mixed inputs are allowed with a preferred type
    out = lax.dot(x.astype(bf), y, preferred_element_type=np.float32)
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match="dot_general requires arguments to have the same "
                                        "dtypes, got float32, int32"):
        lax.dot(x, y.astype(np.int32))
    with pytest.raises(TypeError, match="must not be narrower than the original type"):
        lax.dot(xi.astype(np.int32), xi.T.astype(np.int32), preferred_element_type=np.int8)
    jaxpr = tinyjax.make_jaxpr(lambda a, b: lax.dot(a, b, preferred_element_type=np.float32))(
        x.astype(bf), y.astype(bf))
    assert "preferred_element_type=float32" in str(jaxpr)


def test_grad_with_preferred_element_type():
    bf = tinyjax.dtypes.bfloat16
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4)).astype(bf)
    y = rng.standard_normal((4, 2)).astype(bf)
    gx, gy = tinyjax.grad(lambda a, b: lax.reduce_sum(
        lax.dot(a, b, preferred_element_type=np.float32), (0, 1)), (0, 1))(x, y)
    assert gx.dtype == bf and gy.dtype == bf
    np.testing.assert_allclose(np.asarray(gx, np.float32),
                               np.broadcast_to(np.asarray(y, np.float32).sum(1), (3, 4)),
                               rtol=2e-2)


def test_precision():
    P = lax.Precision
    assert P("highest") is P.HIGHEST and P("float32") is P.HIGHEST
    assert P("tensorfloat32") is P.HIGH and P("bfloat16") is P.DEFAULT
    assert lax.canonicalize_precision(None) is None
    assert lax.canonicalize_precision("high") == (P.HIGH, P.HIGH)
    assert lax.canonicalize_precision(P.DEFAULT) == (P.DEFAULT, P.DEFAULT)
    assert lax.canonicalize_precision(("highest", P.DEFAULT)) == (P.HIGHEST, P.DEFAULT)
    with pytest.raises(ValueError, match="Precision argument must be one of"):
        lax.canonicalize_precision("ultra")
    x = np.ones((2, 2), np.float32)
    jaxpr = tinyjax.make_jaxpr(lambda a: lax.dot(a, a, precision=P.HIGHEST))(x)
    assert "precision=(Precision.HIGHEST, Precision.HIGHEST)" in str(jaxpr)
    hash(jaxpr.eqns[0].params["precision"])


def test_abstract_eval_errors():
    x, y = np.ones((2, 3, 4), np.float32), np.ones((2, 4, 5), np.float32)
    with pytest.raises(TypeError, match="dot_general requires contracting dimensions to have "
                                        r"the same shape, got \(3,\) and \(4,\)"):
        lax.dot_general(x, y, (((1,), (1,)), ((0,), (0,))))
    with pytest.raises(TypeError, match="dot_general requires lhs batch dimensions and rhs "
                                        r"batch dimensions to have the same shape, got \(2,\) "
                                        r"and \(5,\)"):
        lax.dot_general(x, y, (((2,), (1,)), ((0,), (2,))))
    with pytest.raises(TypeError, match="dot_general requires equal numbers of lhs_batch and "
                                        "rhs_batch"):
        lax.dot_general(x, y, (((2,), (1,)), ((0,), ())))
    with pytest.raises(TypeError, match="equal numbers of lhs_contracting and rhs_contracting"):
        lax.dot_general(x, y, (((2, 1), (1,)), ((0,), (0,))))
    with pytest.raises(TypeError, match=r"dot_general requires rhs contracting dimensions to "
                                        r"be in range \[0, 3\)"):
        lax.dot_general(x, y, (((2,), (3,)), ((0,), (0,))))
    with pytest.raises(TypeError, match="lhs batch dimensions and lhs contracting dimensions "
                                        "to be distinct"):
        lax.dot_general(x, y, (((0,), (1,)), ((0,), (0,))))
    with pytest.raises(TypeError, match="dot_general dimension_numbers must be"):
        lax.dot_general(x, y, ((2,), (1,)))
    with pytest.raises(TypeError, match="dot_general requires contracting dimensions"):
        tinyjax.make_jaxpr(lambda a, b: lax.dot_general(a, b, (((1,), (1,)), ((0,), (0,)))))(
            x, y)
