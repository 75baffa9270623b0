"""``x[idx]``, ``x.at[idx]``, ``take``, ``take_along_axis`` and ``where`` against numpy,
with grads against finite differences and vmap against loops."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.errors import NonConcreteBooleanIndexError
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=60, deadline=None)


# ---------------------------------------------------------------------------
# A strategy for index expressions: ints, slices, None, Ellipsis, integer arrays,
# boolean masks, in any (valid) combination
# ---------------------------------------------------------------------------

@st.composite
def index_exprs(draw, allow_bool=True, allow_arrays=True):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=0, max_size=4)))
    bshape = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    items, axis = [], 0
    use_ellipsis = draw(st.booleans())
    n_items = draw(st.integers(0, len(shape) + 2))
    ellipsis_at = draw(st.integers(0, n_items)) if use_ellipsis else -1
    for k in range(n_items):
        if k == ellipsis_at:
            items.append(Ellipsis)
            axis += draw(st.integers(0, len(shape) - axis))  # the axes it covers
            continue
        if axis >= len(shape):
            if draw(st.booleans()):
                items.append(None)
            continue
        n = shape[axis]
        kinds = ["int", "slice", "none"] + (["array"] if allow_arrays else []) + \
            (["bool"] if allow_bool and allow_arrays else [])
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            items.append(draw(st.integers(-n, n - 1)))
            axis += 1
        elif kind == "slice":
            bound = st.one_of(st.none(), st.integers(-n - 2, n + 2))
            step = draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))
            items.append(slice(draw(bound), draw(bound), step))
            axis += 1
        elif kind == "none":
            items.append(None)
        elif kind == "array":
            # a shape broadcastable to bshape
            s = tuple(d if draw(st.booleans()) else 1 for d in bshape)
            s = s[draw(st.integers(0, len(s))):]
            items.append(np.asarray(draw(st.lists(st.integers(-n, n - 1),
                                                  min_size=int(np.prod(s)),
                                                  max_size=int(np.prod(s))))).reshape(s)
                         .astype(np.int32))
            axis += 1
        else:
            k_dims = draw(st.integers(1, min(2, len(shape) - axis)))
            mshape = shape[axis:axis + k_dims]
            mask = np.asarray(draw(st.lists(st.booleans(), min_size=int(np.prod(mshape)),
                                            max_size=int(np.prod(mshape))))).reshape(mshape)
            items.append(mask)
            axis += k_dims
    if use_ellipsis:
        if Ellipsis not in [i for i in items if not isinstance(i, np.ndarray)]:
            items.append(Ellipsis)
        items += [slice(None)] * (len(shape) - axis)  # so the ellipsis covers its axes
    # at most one boolean mask, combined with other advanced indices only if it
    # is the only advanced index (numpy broadcasting of its nonzero otherwise)
    n_masks = sum(isinstance(i, np.ndarray) and i.dtype == bool for i in items)
    n_arrays = sum(isinstance(i, np.ndarray) and i.dtype != bool for i in items)
    if n_masks > 1 or (n_masks and n_arrays):
        items = [s for i in items for s in (
            [slice(None)] * i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else [i])]
    idx = tuple(items) if draw(st.booleans()) or len(items) != 1 else items[0]
    return shape, idx


def _check(actual, expected):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


@SETTINGS
@given(index_exprs())
def test_getitem_matches_numpy(case):
    shape, idx = case
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    _check(jnp.asarray(a)[idx], a[idx])
    # the general path (not numpy's basic indexing) gives the same answer
    from tinyjax.numpy._indexing import _rewriting_take
    _check(_rewriting_take(jnp.asarray(a), idx), a[idx])


@SETTINGS
@given(index_exprs(allow_bool=False))
def test_getitem_under_jit_matches_numpy(case):
    shape, idx = case
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    items = idx if isinstance(idx, tuple) else (idx,)
    arrays = [i for i in items if isinstance(i, np.ndarray)]

    def f(x, *arrs):
        it = iter(arrs)
        new = tuple(next(it) if isinstance(i, np.ndarray) else i for i in items)
        return x[new if isinstance(idx, tuple) else new[0]]
    _check(jax.jit(f)(jnp.asarray(a), *[jnp.asarray(v) for v in arrays]), a[idx])


@SETTINGS
@given(index_exprs(), st.sampled_from(["set", "add", "multiply", "min", "max"]))
def test_at_updates_match_numpy(case, op):
    shape, idx = case
    rng = np.random.default_rng(0)
    a = rng.integers(-5, 5, shape).astype(np.float32)
    got_shape = a[idx].shape
    v = rng.integers(-5, 5, got_shape).astype(np.float32)
    expected = a.copy()
    if op == "set":
        expected[idx] = v
    else:
        ufunc = {"add": np.add, "multiply": np.multiply, "min": np.minimum,
                 "max": np.maximum}[op]
        if isinstance(idx, tuple) and any(isinstance(i, np.ndarray) for i in idx) or \
                isinstance(idx, np.ndarray):
            # ufunc.at accumulates repeated indices, like scatter
            ufunc.at(expected, idx, v)
        else:
            expected[idx] = ufunc(expected[idx], v)
    if op == "set" and _has_repeats(a, idx):
        return  # which of the repeated updates wins is unspecified
    _check(getattr(jnp.asarray(a).at[idx], op)(jnp.asarray(v)), expected)


def _has_repeats(a, idx):
    pos = np.arange(a.size).reshape(a.shape)[idx]
    return len(np.unique(pos)) != np.size(pos)


def test_getitem_basic_cases():
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    x = jnp.asarray(a)
    for idx in [0, -1, (1, 2), (Ellipsis, 0), (None, 0, None), slice(None, None, -1),
                (slice(None), slice(3, None, -2)), ()]:
        _check(x[idx], a[idx])
    _check(jnp.asarray(5.0)[()], np.asarray(5.0, np.float32))
    _check(jnp.asarray(5.0)[None], np.asarray([5.0], np.float32))
    _check(jnp.asarray(5)[...], np.asarray(5, np.int32))
    assert x[0].aval.weak_type is False
    assert jnp.asarray(3.0)[None].aval.weak_type is True


def test_advanced_index_placement():
    a = np.arange(120, dtype=np.int32).reshape(2, 3, 4, 5)
    x = jnp.asarray(a)
    i, j = np.array([0, 1, 1]), np.array([[2], [0]])
    for idx in [(slice(None), i, j), (i, slice(None), j), (slice(None), i, slice(None), j),
                (0, slice(None), i), (slice(None), 0, i), (None, i, None, j),
                (Ellipsis, i), (i[:, None], i)]:
        _check(x[idx], a[idx])


def test_out_of_bound_indices_clamp_and_updates_drop():
    a = np.arange(5.0, dtype=np.float32)
    x = jnp.asarray(a)
    assert float(x[10]) == 4.0 and float(x[-10]) == 0.0       # JAX clamps
    _check(x[np.array([0, 7, -9])], np.array([0, 4, 0], np.float32))
    _check(x.at[np.array([1, 7])].set(-1.0), np.array([0, -1, 2, 3, 4], np.float32))
    _check(x.at[9].add(100.0), a)
    _check(x.at[-9].set(1.0), a)
    _check(x.at[7].set(-1.0, mode="clip"), np.array([0, 1, 2, 3, -1], np.float32))
    got = x.at[np.array([0, 9])].get(mode="fill", fill_value=-3.0)
    _check(got, np.array([0, -3], np.float32))
    assert np.isnan(np.asarray(x.at[9].get(mode="fill"))).all()


def test_eager_integer_array_indices_agree_with_jit():
    """Eager host arrays index with numpy when every index is in bounds; the jitted
    gather is the reference, for in-bound, negative and clamped out-of-bound indices."""
    a = np.arange(24, dtype=np.float32).reshape(4, 6)
    x = jnp.asarray(a)
    take = jax.jit(lambda x, i, j: (x[i], x[:, j], x[i, j], x[i[:, None], j], x[..., j]))
    cases = [(np.array([0, 3, -1]), np.array([5, -6, 2])),
             (jnp.array([1, 2], jnp.uint8), jnp.array([0, 0])),
             (np.array([0, 9]), np.array([-7, 1])),                  # out of bounds: clamp
             (np.zeros((0,), np.int32), np.zeros((0,), np.int32))]
    for i, j in cases:
        eager = (x[i], x[:, j], x[i, j], x[i[:, None], j], x[..., j])
        for e, c in zip(eager, take(x, i, j)):
            assert e.dtype == c.dtype and e.shape == c.shape
            np.testing.assert_array_equal(e, c)
    assert x[np.array([1])].weak_type is False and jnp.asarray(2.0)[None].weak_type is True


def test_at_other_ops_and_dtypes():
    a = np.arange(1.0, 7.0, dtype=np.float32).reshape(2, 3)
    x = jnp.asarray(a)
    e = a.copy()
    e[:, 1] /= 2
    _check(x.at[:, 1].divide(2.0), e)
    e = a.copy()
    e[1] **= 2
    _check(x.at[1].power(2), e)
    e = a.copy()
    e[0, ::2] -= 1
    _check(x.at[0, ::2].subtract(1), e)
    e = a.copy()
    e[1, 0] *= 3
    _check(x.at[1, 0].mul(3.0), e)
    _check(x.at[0].apply(lambda v: v * 10), np.where(np.arange(2)[:, None] == 0, a * 10, a))
    _check(x.at[0].get(), a[0])
    # values are cast to the array's dtype; a Python scalar keeps the int dtype
    xi = jnp.arange(4)
    _check(xi.at[1].set(7), np.array([0, 7, 2, 3], np.int32))
    _check(xi.at[1].set(2.7), np.array([0, 2, 2, 3], np.int32))
    # repeated indices accumulate
    _check(jnp.zeros(3).at[np.array([0, 0, 2])].add(1.0), np.array([2, 0, 1], np.float32))
    with pytest.raises(ValueError, match="shape mismatch"):
        x.at[0].set(np.ones(4, np.float32))


def test_boolean_mask_indexing():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    x = jnp.asarray(a)
    m = a > 4
    _check(x[m], a[m])
    _check(x[jnp.asarray(m)], a[m])
    _check(x[a[:, 0] > 0], a[a[:, 0] > 0])
    _check(x[:, [True, False, True, False]], a[:, [True, False, True, False]])
    _check(x.at[m].set(0.0), np.where(m, 0, a).astype(np.float32))
    with pytest.raises(NonConcreteBooleanIndexError, match="must be concrete"):
        jax.jit(lambda x: x[x > 4])(x)
    with pytest.raises(IndexError, match="boolean index did not match"):
        x[np.array([True, False])]


def test_index_errors():
    x = jnp.arange(6).reshape(2, 3)
    with pytest.raises(IndexError, match="Too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(TypeError, match="Indexer must have integer or boolean type"):
        x[1.5]
    with pytest.raises(TypeError, match="Indexer must have integer or boolean type"):
        x[np.array([0.5])]
    with pytest.raises(IndexError, match="static start/stop/step"):
        jax.jit(lambda x, i: x[i:])(x, 1)
    with pytest.raises(TypeError, match="immutable"):
        x[0] = 1
    with pytest.raises(IndexError, match="out of bounds"):
        jnp.zeros((0, 3))[0]


def test_traced_scalar_index():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    f = jax.jit(lambda x, i: x[i, 1:])
    for i in (0, 2, -1):
        _check(f(jnp.asarray(a), jnp.asarray(i)), a[i, 1:])


def test_grad_of_getitem_and_at(x64):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5))
    idx = (np.array([0, 2, 2]), slice(None, None, -2))
    check_grads(lambda x: jnp.sum(x[idx] ** 2), (x,), order=2, modes=("fwd", "rev"))
    check_grads(lambda x: x[1:, ::-1][None, ..., 2], (x,), order=1, modes=("fwd", "rev"))
    v = rng.standard_normal((2, 5))
    check_grads(lambda x, v: x.at[np.array([3, 1])].set(v), (x, v), order=1,
                modes=("fwd", "rev"))
    check_grads(lambda x, v: x.at[np.array([3, 3])].add(v * v), (x, v), order=1,
                modes=("fwd", "rev"))
    check_grads(lambda x: jnp.take_along_axis(x, np.array([[0], [4], [2], [1]]), 1),
                (x,), order=1, modes=("fwd", "rev"))


def test_vmap_getitem_matches_loop():
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((3, 4, 5)).astype(np.float32)
    idx = np.array([[0, 3], [1, 1], [2, 0]], np.int32)
    out = jax.vmap(lambda x, i: x[i, ::-1])(jnp.asarray(xs), jnp.asarray(idx))
    _check(out, np.stack([xs[b][idx[b], ::-1] for b in range(3)]))
    out = jax.vmap(lambda x: x[1:, np.array([0, 4])], in_axes=1)(jnp.asarray(xs))
    _check(out, np.stack([xs[:, b][1:, [0, 4]] for b in range(4)]))
    out = jax.vmap(lambda i: jnp.asarray(xs)[:, i])(jnp.asarray(np.array([3, 0])))
    _check(out, np.stack([xs[:, i] for i in (3, 0)]))
    out = jax.vmap(lambda x, i, v: x.at[i].add(v))(jnp.asarray(xs), jnp.asarray(idx[:, 0]),
                                                   jnp.ones((3, 5)))
    exp = xs.copy()
    for b in range(3):
        exp[b, idx[b, 0]] += 1
    _check(out, exp)


# ---------------------------------------------------------------------------
# take, take_along_axis, where
# ---------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_take_matches_numpy(shape, data):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    n = a.size if axis is None else shape[axis]
    ishape = tuple(data.draw(st.lists(st.integers(0, 3), max_size=2)))
    idx = np.asarray(data.draw(st.lists(st.integers(-n, n - 1), min_size=int(np.prod(ishape)),
                                        max_size=int(np.prod(ishape))))).reshape(ishape)
    idx = idx.astype(np.int32)
    _check(jnp.take(jnp.asarray(a), idx, axis=axis), np.take(a, idx, axis=axis))
    big = idx + 3 * n
    _check(jnp.take(a, big, axis=axis, mode="wrap"), np.take(a, big, axis=axis, mode="wrap"))
    _check(jnp.take(a, big, axis=axis, mode="clip"), np.take(a, big, axis=axis, mode="clip"))


def test_take_fill_and_errors():
    a = np.arange(4.0, dtype=np.float32)
    out = np.asarray(jnp.take(a, np.array([0, 5, -1])))
    assert out[0] == 0 and np.isnan(out[1]) and out[2] == 3
    _check(jnp.take(np.arange(4), np.array([9]), fill_value=-7), np.array([-7], np.int32))
    with pytest.raises(NotImplementedError, match="raise"):
        jnp.take(a, np.array([0]), mode="raise")
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.take(a, np.array([0]), axis=1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.data())
def test_take_along_axis_matches_numpy(shape, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 100)))
    a = rng.standard_normal(shape).astype(np.float32)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    ishape = list(shape)
    ishape[axis] = data.draw(st.integers(0, 4))
    for d in range(len(shape)):
        if d != axis % len(shape) and data.draw(st.booleans()):
            ishape[d] = 1
    idx = rng.integers(-shape[axis], shape[axis], ishape)
    _check(jnp.take_along_axis(jnp.asarray(a), idx, axis), np.take_along_axis(a, idx, axis))
    idx = np.argsort(a, axis=axis)
    _check(jnp.take_along_axis(a, idx, axis), np.take_along_axis(a, idx, axis))


def test_take_along_axis_none_and_errors():
    a = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    _check(jnp.take_along_axis(a, np.array([5, 0]), None),
           np.take_along_axis(a, np.array([5, 0]), None))
    with pytest.raises(ValueError, match="same number of dimensions"):
        jnp.take_along_axis(a, np.array([0]), 0)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([np.float32, np.int32, np.int8, np.bool_]),
       st.sampled_from([np.float32, np.int16, np.uint8]), st.data())
def test_where_matches_numpy_with_jax_dtypes(dt1, dt2, data):
    shapes = data.draw(st.lists(st.lists(st.integers(1, 3), max_size=3).map(tuple),
                                min_size=3, max_size=3))
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return
    rng = np.random.default_rng(0)
    c = rng.integers(0, 2, shapes[0]).astype(bool)
    x = rng.integers(0, 3, shapes[1]).astype(dt1)
    y = rng.integers(0, 3, shapes[2]).astype(dt2)
    out = jnp.where(c, x, y)
    assert out.dtype == jnp.promote_types(dt1, dt2)
    np.testing.assert_array_equal(out, np.where(c, x, y).astype(out.dtype))


def test_where_scalars_weak_types_and_errors():
    x = jnp.arange(4, dtype=jnp.int8)
    assert jnp.where(x > 1, x, 0).dtype == np.int8
    assert jnp.where(x > 1, 1.0, 0.0).dtype == np.float32
    assert jnp.where(np.array([1, 0, 2]), 1, 2).tolist() == [1, 2, 1]
    with pytest.raises(ValueError, match="Either both or neither"):
        jnp.where(x > 1, x)
    check_grads(lambda a: jnp.where(a > 0, a * a, -a), (np.array([-1.0, 2.0, 0.5]),),
                order=1, modes=("fwd", "rev"))


def test_where_is_one_jit_equation_when_staged():
    """jnp.where stages as JAX's: a jit equation named _where around its select_n (after
    the promotion and the condition's conversion); eager, jit, vmap and grad values are
    numpy's."""
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    f = lambda a: jnp.where(a > 0, a * 2, 1.0)
    eqns = jax.make_jaxpr(f)(x).jaxpr.eqns
    call = [e for e in eqns if e.primitive.name == "jit"]
    assert len(call) == 1 and call[0].params["name"] == "_where"
    assert [e.primitive.name for e in call[0].params["jaxpr"].eqns][-1] == "select_n"
    want = np.where(x > 0, x * 2, np.float32(1.0))
    for g in (f, jax.jit(f)):
        np.testing.assert_array_equal(np.asarray(g(x)), want)
    np.testing.assert_array_equal(np.asarray(jax.vmap(f)(np.stack([x, -x]))),
                                  np.stack([want, np.where(-x > 0, -x * 2, 1.0)]))
    np.testing.assert_array_equal(np.asarray(jax.grad(lambda a: f(a).sum())(x)),
                                  np.where(x > 0, 2.0, 0.0))


def test_where_one_argument():
    c = np.array([[0, 3], [2, 0]], np.int32)
    for got, exp in zip(jnp.where(c), np.where(c)):
        np.testing.assert_array_equal(got, exp)
    got = jax.jit(lambda c: jnp.where(c, size=3, fill_value=-1))(c)
    np.testing.assert_array_equal(got[0], [0, 1, -1])
    np.testing.assert_array_equal(got[1], [1, 0, -1])


def test_an_empty_ellipsis_before_a_mask_does_not_separate_what_follows_it():
    """An empty ellipsis right before a boolean mask separates the mask from what comes
    before it, not from the advanced index after it (found by the getitem sweep)."""
    a = np.arange(4, dtype=np.float32).reshape(2, 2, 1)
    for idx in [(slice(None), Ellipsis, np.array([True, True]), 0),
                (slice(None), Ellipsis, np.array([False, True]), 0),
                (np.array([1, 0]), Ellipsis, np.array([True, False]), 0)]:
        np.testing.assert_array_equal(np.asarray(jnp.asarray(a)[idx]), a[idx])
    z = np.zeros((1, 1, 1), np.float32)
    assert jnp.asarray(z)[:, ..., np.array([False]), 0].shape == (1, 0)


def test_an_empty_ellipsis_separates_advanced_indices():
    """numpy puts the broadcast axes first when advanced indices are separated, also by an
    ellipsis that stands for no axes."""
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    for idx in [(slice(None), 0, Ellipsis, 0, np.array([0])),
                (slice(None), np.array([0]), Ellipsis, np.array([1]), slice(None))]:
        for f in (lambda a: a[idx], jax.jit(lambda a: a[idx])):
            got = np.asarray(f(jnp.asarray(x)))
            assert got.shape == x[idx].shape and np.array_equal(got, x[idx])


@pytest.mark.parametrize("shape,index", [((0,), np.zeros(0, np.int32)),
                                         ((3, 0), np.array([0, 2])),
                                         ((2, 3), np.zeros(0, np.int32)),
                                         ((0, 4), (np.zeros(0, np.int32), slice(1, 3)))])
def test_gathering_nothing_from_or_into_an_empty_array(shape, index):
    # (the Hungarian algorithm's first step on an empty cost matrix)
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    np.testing.assert_array_equal(jnp.asarray(x)[index], x[index])
    counts = jnp.zeros(shape[0], jnp.int32).at[np.zeros(0, np.int32)].add(1)
    np.testing.assert_array_equal(counts, np.zeros(shape[0], np.int32))
