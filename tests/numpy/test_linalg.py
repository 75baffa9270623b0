"""jnp products and contractions (dot, matmul, tensordot, einsum, ...) and jnp.linalg."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=40, deadline=None)
DTYPES = [np.float32, np.int8, np.int32, np.uint8, np.bool_]


def rand(rng, shape, dtype):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        lo = 0 if np.issubdtype(dtype, np.unsignedinteger) else -3
        return rng.integers(lo, 4, size=shape).astype(dtype)
    return rng.normal(size=shape).astype(dtype)


def expected(np_fn, *args, dtype):
    """numpy's answer computed exactly (float64 / int64) then cast to JAX's dtype."""
    wide = [a.astype(np.float64) if a.dtype.kind == "f" else a.astype(np.int64)
            for a in args]
    return np.asarray(np_fn(*wide)).astype(dtype)


def check(actual, want, dtype=None, tol=1e-5):
    actual = np.asarray(actual)
    assert actual.shape == np.shape(want), (actual.shape, np.shape(want))
    if dtype is not None:
        assert actual.dtype == dtype, (actual.dtype, dtype)
    np.testing.assert_allclose(actual.astype(np.float64), np.asarray(want, np.float64),
                               rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------

@st.composite
def matmul_shapes(draw):
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    nb = draw(st.integers(0, 3))
    batch = [draw(st.integers(1, 3)) for _ in range(nb)]
    a_batch = [d if draw(st.booleans()) else 1 for d in batch][draw(st.integers(0, nb)):]
    b_batch = [d if draw(st.booleans()) else 1 for d in batch][draw(st.integers(0, nb)):]
    a = (k,) if draw(st.integers(0, 4)) == 0 else tuple(a_batch) + (m, k)
    b = (k,) if draw(st.integers(0, 4)) == 0 else tuple(b_batch) + (k, n)
    return a, b


@SETTINGS
@given(matmul_shapes(), st.sampled_from(DTYPES), st.sampled_from(DTYPES), st.integers(0, 99))
def test_matmul_matches_numpy(shapes, da, db, seed):
    rng = np.random.default_rng(seed)
    a, b = rand(rng, shapes[0], da), rand(rng, shapes[1], db)
    dt = jnp.promote_types(da, db)
    out = jnp.matmul(a, b)
    if dt == np.bool_:
        want = np.matmul(a.astype(np.int64), b.astype(np.int64)) != 0
    else:
        want = expected(np.matmul, a, b, dtype=dt)
    check(out, want, dt)
    check(a @ jnp.asarray(b), want, dt)


def test_matmul_int8_keeps_dtype_and_preferred_type():
    a = np.full((2, 3), 100, np.int8)
    assert jnp.matmul(a, a.T).dtype == np.int8  # wraps, as JAX
    out = jnp.matmul(a, a.T, preferred_element_type=np.int32)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, a.astype(np.int32) @ a.T.astype(np.int32))


def test_matmul_errors():
    with pytest.raises(ValueError, match="operand 0 must have ndim at least 1"):
        jnp.matmul(1.0, np.ones(3))
    with pytest.raises(ValueError, match="mismatch in its core dimension"):
        jnp.matmul(np.ones((2, 3)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="Incompatible shapes for matmul"):
        jnp.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2)))


def test_matmul_vmap_matches_loop():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 3, 4)).astype(np.float32), rng.normal(size=(4, 5, 2)) \
        .astype(np.float32)
    out = jax.vmap(jnp.matmul, in_axes=(0, 1))(a, b)
    check(out, np.stack([a[i] @ b[:, i] for i in range(5)]))
    out = jax.vmap(jnp.matmul, in_axes=(None, 1))(a[0, 0], b)  # vector @ matrix
    check(out, np.stack([a[0, 0] @ b[:, i] for i in range(5)]))


def test_matmul_grads(x64):
    rng = np.random.default_rng(2)
    check_grads(jnp.matmul, (rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 2))), 2,
                modes=("fwd", "rev"))
    check_grads(jnp.matmul, (rng.normal(size=(4,)), rng.normal(size=(3, 4, 2))), 1,
                modes=("fwd", "rev"))


def test_matmul_under_jit():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(2, 1, 3, 4)).astype(np.float32), rng.normal(size=(5, 4, 2)) \
        .astype(np.float32)
    check(jax.jit(jnp.matmul)(a, b), np.matmul(a, b))


# ---------------------------------------------------------------------------
# dot, vdot, inner, outer, tensordot, kron, trace, cross
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.integers(0, 3), st.integers(0, 3), st.sampled_from(DTYPES[:3]), st.integers(0, 99))
def test_dot_inner_match_numpy(na, nb, dt, seed):
    rng = np.random.default_rng(seed)
    k = 3
    a = rand(rng, tuple(rng.integers(1, 4, size=max(na - 1, 0))) + (k,) if na else (), dt)
    b_shape = () if nb == 0 else ((k,) if nb == 1 else
                                  tuple(rng.integers(1, 4, size=nb - 2)) + (k, 2))
    b = rand(rng, b_shape, dt)
    check(jnp.dot(a, b), expected(np.dot, a, b, dtype=dt), dt)
    if nb <= 1 or na == 0:
        check(jnp.inner(a, b), expected(np.inner, a, b, dtype=dt), dt)


def test_dot_errors():
    with pytest.raises(TypeError, match="Incompatible shapes for dot"):
        jnp.dot(np.ones((2, 3)), np.ones((4,)))


def test_vdot_outer():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 2)).astype(
        np.float32)
    check(jnp.vdot(a, b), np.vdot(a, b))
    check(jnp.outer(a, b), np.outer(a, b))
    assert jnp.outer(np.arange(3, dtype=np.int8), np.arange(2, dtype=np.int8)).dtype == np.int8


@SETTINGS
@given(st.integers(0, 99), st.integers(0, 3))
def test_tensordot_matches_numpy(seed, n):
    rng = np.random.default_rng(seed)
    shared = tuple(rng.integers(1, 4, size=n))
    a = rng.normal(size=tuple(rng.integers(1, 4, size=2)) + shared).astype(np.float32)
    b = rng.normal(size=shared + (2,)).astype(np.float32)
    check(jnp.tensordot(a, b, n), np.tensordot(a, b, n))
    if n:
        perm = rng.permutation(n)
        ax_a = [a.ndim - n + int(i) for i in perm]
        ax_b = [int(i) - b.ndim for i in perm]  # negative axes too
        check(jnp.tensordot(a, b, (ax_a, ax_b)), np.tensordot(a, b, (ax_a, ax_b)))


def test_tensordot_errors():
    with pytest.raises(TypeError, match="exceeds input ranks"):
        jnp.tensordot(np.ones(3), np.ones(3), 2)
    with pytest.raises(TypeError, match="equal length"):
        jnp.tensordot(np.ones((3, 2)), np.ones((3, 2)), ([0, 1], [0]))
    with pytest.raises(TypeError, match="same size"):
        jnp.tensordot(np.ones((3, 2)), np.ones((3, 2)), ([1], [0]))


@pytest.mark.parametrize("sa,sb", [((2,), (3,)), ((2, 3), (2, 2)), ((2,), (2, 3)),
                                   ((1, 2, 2), (3, 1))])
def test_kron(sa, sb):
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)
    check(jnp.kron(a, b), np.kron(a, b))


@SETTINGS
@given(st.integers(-3, 3), st.integers(0, 2), st.integers(0, 2), st.sampled_from(DTYPES),
       st.integers(0, 99))
def test_trace_matches_numpy(offset, ax1, ax2, dt, seed):
    if ax1 == ax2:
        return
    rng = np.random.default_rng(seed)
    a = rand(rng, (3, 4, 2), dt)
    want = np.trace(a.astype(np.int64) if dt == np.bool_ else a, offset, ax1, ax2)
    out = jnp.trace(a, offset, ax1, ax2)
    want_dt = {np.int8: np.int32, np.uint8: np.uint32, np.bool_: np.int32}.get(dt, dt)
    check(out, want, want_dt)


def test_trace_errors():
    with pytest.raises(ValueError, match="at least two dimensions"):
        jnp.trace(np.ones(3))
    with pytest.raises(ValueError, match="must not be equal"):
        jnp.trace(np.ones((3, 3)), axis1=1, axis2=-1)


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
@pytest.mark.parametrize("na,nb", [(3, 3), (2, 3), (3, 2), (2, 2)])
def test_cross(na, nb):
    rng = np.random.default_rng(6)
    a = rng.normal(size=(4, na)).astype(np.float32)
    b = rng.normal(size=(1, nb)).astype(np.float32)
    check(jnp.cross(a, b), np.cross(a, b))
    check(jnp.cross(a.T, b.T, axisa=0, axisb=0, axisc=0), np.cross(a.T, b.T, axisa=0,
                                                                    axisb=0, axisc=0))
    with pytest.raises(ValueError, match="must be either 2 or 3"):
        jnp.cross(np.ones(4), np.ones(3))


# ---------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------

@st.composite
def einsum_problems(draw):
    labels = "abcdef"
    sizes = {c: draw(st.integers(1, 3)) for c in labels}
    n_ops = draw(st.integers(1, 4))
    subs = []
    for _ in range(n_ops):
        k = draw(st.integers(0, 4))
        subs.append("".join(draw(st.lists(st.sampled_from(labels), min_size=k, max_size=k))))
    used = sorted(set("".join(subs)))
    if draw(st.booleans()):
        out = "".join(draw(st.permutations(used))[:draw(st.integers(0, len(used)))])
        spec = ",".join(subs) + "->" + out
    else:
        spec = ",".join(subs)
    shapes = [tuple(sizes[c] for c in s) for s in subs]
    return spec, shapes


@SETTINGS
@given(einsum_problems(), st.sampled_from([False, True, "greedy", "optimal"]),
       st.integers(0, 99))
def test_einsum_matches_numpy(problem, optimize, seed):
    spec, shapes = problem
    rng = np.random.default_rng(seed)
    ops = [rng.normal(size=s).astype(np.float32) for s in shapes]
    want = np.einsum(spec, *[o.astype(np.float64) for o in ops])
    check(jnp.einsum(spec, *ops, optimize=optimize), want, np.float32, tol=1e-4)


@pytest.mark.parametrize("spec,shapes", [
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("i...->...", [(3, 2, 2)]),
    ("ij...,j...->i...", [(2, 3), (3,)]),
    ("...,...", [(2, 3), (3,)]),
    ("ii...->i...", [(3, 3, 2)]),
    ("bij,bjk->bik", [(1, 2, 3), (4, 3, 2)]),
])
def test_einsum_ellipsis_and_broadcasting(spec, shapes):
    rng = np.random.default_rng(7)
    ops = [rng.normal(size=s).astype(np.float32) for s in shapes]
    check(jnp.einsum(spec, *ops), np.einsum(spec, *ops), tol=1e-4)


def test_einsum_interleaved_and_dtypes():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(3, 4)).astype(
        np.float32)
    check(jnp.einsum(a, [0, 1], b, [1, 2], [0, 2]), a @ b)
    i8 = np.arange(6, dtype=np.int8).reshape(2, 3)
    assert jnp.einsum("ij,kj->ik", i8, i8).dtype == np.int8
    assert jnp.einsum("ij->", i8).dtype == np.int8
    assert jnp.einsum("ij,kj->ik", i8, a).dtype == np.float32
    out = jnp.einsum("ij,jk", a, b, preferred_element_type=np.float32)
    assert out.dtype == np.float32
    bl = np.array([[True, False], [False, False]])
    np.testing.assert_array_equal(jnp.einsum("ij->i", bl), np.array([True, False]))


def test_einsum_errors():
    with pytest.raises(ValueError, match="operands"):
        jnp.einsum("ij,jk", np.ones((2, 2)))
    with pytest.raises(ValueError, match="never appeared"):
        jnp.einsum("ij->k", np.ones((2, 2)))
    with pytest.raises(ValueError, match="does not match"):
        jnp.einsum("ij,jk", np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="subscripts but operand has"):
        jnp.einsum("ijk", np.ones((2, 2)))
    with pytest.raises(ValueError, match="optimize"):
        jnp.einsum("ij", np.ones((2, 2)), optimize="fastest")


def test_einsum_lowers_each_pair_to_one_dot_general():
    ops = [np.ones((2, 3), np.float32), np.ones((3, 4), np.float32), np.ones((4, 5),
                                                                           np.float32)]
    jaxpr = str(jax.make_jaxpr(lambda *xs: jnp.einsum("ij,jk,kl->il", *xs))(*ops))
    assert jaxpr.count("dot_general") == 2


def test_einsum_greedy_picks_cheap_pair_first():
    # (a, b) first would make a 50x50 intermediate; b @ c first is cheap
    from tinyjax.numpy._linalg import _contraction_path
    sizes = {"i": 50, "j": 2, "k": 50, "l": 2}
    assert _contraction_path(["ij", "jk", "kl"], "il", sizes, "greedy")[0] == (1, 2)
    assert _contraction_path(["ij", "jk", "kl"], "il", sizes, "optimal")[0] == (1, 2)
    assert _contraction_path(["ij", "jk", "kl"], "il", sizes, False)[0] == (0, 1)


def test_einsum_grads_and_vmap(x64):
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 3))
    check_grads(lambda x, y: jnp.einsum("bij,jk->bik", x, y), (a, b), 2,
                modes=("fwd", "rev"))
    check_grads(lambda x: jnp.einsum("bii->b", x), (rng.normal(size=(2, 3, 3)),), 1,
                modes=("fwd", "rev"))
    out = jax.vmap(lambda x, y: jnp.einsum("ij,jk->ik", x, y))(a, np.stack([b[:, :3]] * 2))
    check(out, np.stack([a[i] @ b[:, :3] for i in range(2)]))


# ---------------------------------------------------------------------------
# linalg.norm
# ---------------------------------------------------------------------------

@SETTINGS
@given(st.sampled_from([None, 1, 2, np.inf, -np.inf, 0, 3, 0.5, -1]), st.booleans(),
       st.integers(0, 2), st.integers(0, 99))
def test_vector_norm(ord, keepdims, axis, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    check(jnp.linalg.norm(x, ord, axis, keepdims), np.linalg.norm(x, ord, axis, keepdims),
          np.float32, tol=1e-4)


@SETTINGS
@given(st.sampled_from([None, "fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"]), st.booleans(),
       st.sampled_from([(0, 1), (1, 0), (0, 2), (-1, 1)]), st.integers(0, 99))
def test_matrix_norm(ord, keepdims, axis, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(3, 4, 2)).astype(np.float32)
    check(jnp.linalg.norm(x, ord, axis, keepdims), np.linalg.norm(x, ord, axis, keepdims),
          np.float32, tol=1e-4)


def test_norm_defaults_and_dtypes():
    x = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = jnp.linalg.norm(x)
    assert out.dtype == np.float32
    check(out, np.linalg.norm(x), tol=1e-5)
    check(jnp.linalg.norm(x, keepdims=True), np.linalg.norm(x, keepdims=True), tol=1e-5)
    check(jnp.linalg.norm(np.ones((2, 2, 2))), np.linalg.norm(np.ones((2, 2, 2))))
    check(jnp.linalg.vector_norm(x, ord=1), np.abs(x).sum())
    check(jnp.linalg.matrix_norm(x, ord=1), np.linalg.norm(x, 1))


def test_norm_errors():
    x = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="Invalid order 'fro' for vector norm"):
        jnp.linalg.norm(np.ones(3), "fro")
    with pytest.raises(ValueError, match="Invalid order"):
        jnp.linalg.norm(x, 3)
    with pytest.raises(ValueError, match="Improper number of axes for norm"):
        jnp.linalg.norm(np.ones((2, 2, 2)), axis=(0, 1, 2))


def test_norm_grads(x64):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(3, 4))
    for ord, axis in [(None, None), (None, 1), (3, 0), (1, None), ("fro", (0, 1)),
                      (np.inf, 1), (2, (0, 1)), ("nuc", (1, 0)), (-2, None)]:
        check_grads(lambda v: jnp.linalg.norm(v, ord, axis), (x,), 1, modes=("fwd", "rev"))


def test_linalg_namespace():
    assert jnp.linalg.matmul is jnp.matmul
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    check(jnp.linalg.matrix_transpose(x), x.T)
    check(jnp.linalg.vecdot(x, x), (x * x).sum(-1))
    check(jnp.linalg.trace(np.ones((2, 3, 3))), np.full(2, 3.0))


def test_vecdot_matvec_vecmat_match_numpy():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(2, 3, 4)).astype(np.float32)
    b = rng.normal(size=(3, 4)).astype(np.float32)
    v, u = rng.normal(size=4).astype(np.float32), rng.normal(size=3).astype(np.float32)
    check(jnp.vecdot(a, b), np.vecdot(a, b))
    check(jnp.vecdot(a, a, axis=1), np.vecdot(a, a, axis=1))
    check(jnp.matvec(a, v), np.matvec(a, v))
    check(jnp.vecmat(u, a), np.vecmat(u, a))
    with pytest.raises(ValueError, match="axes must match"):
        jnp.vecdot(a, b, axis=0)


def test_empty_operands():
    assert jnp.matmul(np.ones((0, 3)), np.ones((3, 2))).shape == (0, 2)
    check(jnp.matmul(np.ones((2, 0)), np.ones((0, 2))), np.zeros((2, 2)))
    check(jnp.einsum("ij,jk", np.ones((0, 2)), np.ones((2, 3))), np.zeros((0, 3)))
    check(jnp.einsum("i->", np.ones(0)), 0.0)
    check(jnp.einsum(",->", 2.0, 3.0), 6.0)
