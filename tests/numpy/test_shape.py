"""Shape manipulation in ``jnp`` against numpy (values, shapes, dtypes), errors,
grads through the movement ops and vmap against loops."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.test_util import check_grads

SETTINGS = settings(max_examples=40, deadline=None)


def _check(actual, expected, dtype=None):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.dtype(dtype or expected.dtype), (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)


shapes = st.lists(st.integers(0, 4), max_size=4).map(tuple)
nonempty_shapes = st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple)


def _arange(shape, dtype=np.float32):
    return np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)


@SETTINGS
@given(shapes, st.data())
def test_reshape_ravel_transpose(shape, data):
    a = _arange(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    _check(jnp.transpose(a, perm), np.transpose(a, perm))
    _check(jnp.transpose(a), a.T)
    _check(jnp.ravel(a), a.ravel())
    _check(jnp.ravel(a, order="F"), a.ravel(order="F"))
    n = a.size
    divisors = [d for d in range(1, n + 1) if n % d == 0] or [1]
    d = data.draw(st.sampled_from(divisors))
    new = (d, -1) if n else (0, 3)
    _check(jnp.reshape(a, new), a.reshape(new))
    _check(jnp.reshape(a, new, order="F"), a.reshape(new, order="F"))
    _check(jnp.asarray(a).reshape(*new), a.reshape(*new))


@SETTINGS
@given(nonempty_shapes, st.data())
def test_moveaxis_swapaxes_expand_squeeze(shape, data):
    a = _arange(shape)
    nd = len(shape)
    src = data.draw(st.lists(st.integers(-nd, nd - 1), unique_by=lambda v: v % nd,
                             max_size=nd))
    dst = data.draw(st.lists(st.integers(-nd, nd - 1), unique_by=lambda v: v % nd,
                             min_size=len(src), max_size=len(src)))
    _check(jnp.moveaxis(a, src, dst), np.moveaxis(a, src, dst))
    i, j = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    _check(jnp.swapaxes(a, i, j), np.swapaxes(a, i, j))
    ax = data.draw(st.lists(st.integers(-nd - 1, nd), unique_by=lambda v: v % (nd + 2),
                            max_size=2))
    try:
        expected = np.expand_dims(a, tuple(ax))
    except Exception:
        expected = None
    if expected is not None:
        _check(jnp.expand_dims(a, tuple(ax)), expected)
    b = a.reshape(tuple(v for s in shape for v in (s, 1)))
    _check(jnp.squeeze(b), np.squeeze(b))
    _check(jnp.squeeze(b, 1), np.squeeze(b, 1))


@SETTINGS
@given(shapes, st.data())
def test_broadcasting_functions(shape, data):
    a = _arange(shape)
    target = tuple(data.draw(st.lists(st.integers(1, 3), max_size=2))) + \
        tuple(s if data.draw(st.booleans()) else s for s in shape)
    _check(jnp.broadcast_to(a, target), np.broadcast_to(a, target))
    other = tuple(1 if data.draw(st.booleans()) else s for s in shape)
    b = _arange(other, np.int8)
    xs = jnp.broadcast_arrays(a, b)
    for x, e in zip(xs, np.broadcast_arrays(a, b)):
        _check(x, e)
    assert jnp.broadcast_shapes(shape, other, ()) == np.broadcast_shapes(shape, other)


def test_atleast():
    for a in [np.float32(1), np.arange(3, dtype=np.int32), _arange((2, 3)),
              _arange((1, 2, 3))]:
        for f in ("atleast_1d", "atleast_2d", "atleast_3d"):
            _check(getattr(jnp, f)(a), getattr(np, f)(a))
    xs = jnp.atleast_2d(1.0, np.arange(2, dtype=np.int32))
    assert [x.shape for x in xs] == [(1, 1), (1, 2)]


@SETTINGS
@given(nonempty_shapes, st.integers(1, 3), st.data(),
       st.sampled_from([(np.float32, np.float32), (np.int32, np.float32),
                        (np.int8, np.uint8), (np.bool_, np.int16)]))
def test_concatenate_stack(shape, n, data, dts):
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1))
    arrays = []
    for k in range(n):
        s = list(shape)
        s[axis] = data.draw(st.integers(0, 3))
        arrays.append(_arange(tuple(s), dts[k % 2]) % 2)
    expected_dt = jnp.result_type(*[a.dtype for a in arrays])
    _check(jnp.concatenate(arrays, axis), np.concatenate(arrays, axis).astype(expected_dt))
    _check(jnp.concatenate(arrays, None), np.concatenate(arrays, None).astype(expected_dt))
    same = [_arange(shape, dts[k % 2]) % 3 for k in range(n)]
    sax = data.draw(st.integers(-nd - 1, nd))
    _check(jnp.stack(same, sax), np.stack(same, sax).astype(expected_dt))
    for f in ("vstack", "hstack", "dstack"):
        _check(getattr(jnp, f)(same), getattr(np, f)(same).astype(expected_dt))


def test_stacking_small_ranks_and_column_stack():
    a, b = np.arange(3, dtype=np.int32), np.arange(3, 6, dtype=np.int32)
    for f in ("vstack", "hstack", "dstack", "column_stack"):
        _check(getattr(jnp, f)([a, b]), getattr(np, f)([a, b]))
        _check(getattr(jnp, f)((np.int32(1), np.int32(2))),
               getattr(np, f)((np.int32(1), np.int32(2))))
    _check(jnp.column_stack([a, _arange((3, 2), np.int32)]),
           np.column_stack([a, _arange((3, 2), np.int32)]))
    _check(jnp.stack(jnp.asarray(_arange((2, 3)))), np.stack(_arange((2, 3))))
    assert jnp.concatenate([np.ones(2, np.int8), jnp.ones(2, jnp.int8)]).dtype == np.int8
    assert jnp.concatenate([np.ones(2, np.int8), np.ones(2)], dtype=jnp.int16).dtype == \
        np.int16


@SETTINGS
@given(nonempty_shapes, st.data())
def test_split_array_split(shape, data):
    a = _arange(shape)
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1))
    n = shape[axis]
    sections = data.draw(st.integers(1, 5))
    for got, exp in zip(jnp.array_split(a, sections, axis), np.array_split(a, sections, axis)):
        _check(got, exp)
    if n % sections == 0:
        got = jnp.split(a, sections, axis)
        exp = np.split(a, sections, axis)
        assert len(got) == len(exp)
        for g, e in zip(got, exp):
            _check(g, e)
    idx = sorted(data.draw(st.lists(st.integers(-n - 1, n + 1), max_size=3)))
    got, exp = jnp.split(a, idx, axis), np.split(a, idx, axis)
    assert len(got) == len(exp)
    for g, e in zip(got, exp):
        _check(g, e)


@SETTINGS
@given(shapes, st.lists(st.integers(0, 3), max_size=4))
def test_tile(shape, reps):
    a = _arange(shape)
    _check(jnp.tile(a, reps), np.tile(a, reps))
    _check(jnp.tile(a, 2), np.tile(a, 2))


@SETTINGS
@given(nonempty_shapes, st.data())
def test_repeat(shape, data):
    a = _arange(shape)
    nd = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
    r = data.draw(st.integers(0, 3))
    _check(jnp.repeat(a, r, axis), np.repeat(a, r, axis))
    n = a.size if axis is None else shape[axis]
    reps = np.asarray(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)),
                      np.int32)
    expected = np.repeat(a, reps, axis)
    _check(jnp.repeat(a, reps, axis), expected)
    # under jit the per-element repeats are traced; total_repeat_length is static
    total = int(reps.sum())
    f = jax.jit(lambda a, r: jnp.repeat(a, r, axis, total_repeat_length=total))
    _check(f(a, reps), expected)


def test_repeat_total_repeat_length_pads_with_last_and_truncates():
    a = np.array([1, 2, 3], np.int32)
    i32 = lambda v: np.array(v, np.int32)  # noqa: E731
    _check(jnp.repeat(a, np.array([1, 2, 0]), total_repeat_length=5), i32([1, 2, 2, 3, 3]))
    _check(jnp.repeat(a, np.array([2, 2, 2]), total_repeat_length=3), i32([1, 1, 2]))
    _check(jnp.repeat(a, 2, total_repeat_length=4), i32([1, 1, 2, 2]))
    with pytest.raises(ValueError, match="negative"):
        jnp.repeat(a, -1)


@SETTINGS
@given(shapes, st.data())
def test_flip_roll_rot90(shape, data):
    a = _arange(shape)
    nd = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1))) if nd else None
    _check(jnp.flip(a, axis), np.flip(a, axis))
    shift = data.draw(st.integers(-7, 7))
    _check(jnp.roll(a, shift, axis), np.roll(a, shift, axis))
    if nd >= 2:
        k = data.draw(st.integers(-5, 5))
        axes = tuple(data.draw(st.permutations(range(nd)))[:2])
        _check(jnp.rot90(a, k, axes), np.rot90(a, k, axes))
        _check(jnp.fliplr(a), np.fliplr(a))
        shifts = tuple(data.draw(st.lists(st.integers(-5, 5), min_size=2, max_size=2)))
        _check(jnp.roll(a, shifts, (0, 1)), np.roll(a, shifts, (0, 1)))
    if nd >= 1:
        _check(jnp.flipud(a), np.flipud(a))
        f = jax.jit(lambda a, s: jnp.roll(a, s, 0))
        _check(f(a, np.int32(shift)), np.roll(a, shift, 0))


@SETTINGS
@given(shapes, st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]),
       st.data())
def test_pad(shape, mode, data):
    a = _arange(shape, np.int32)
    nd = len(shape)
    form = data.draw(st.sampled_from(["int", "pair", "per_axis"] if nd else ["int"]))
    if form == "int":
        pw = data.draw(st.integers(0, 5))
    elif form == "pair":
        pw = tuple(data.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
    else:
        pw = tuple(tuple(data.draw(st.lists(st.integers(0, 5), min_size=2, max_size=2)))
                   for _ in range(nd))
    try:
        expected = np.pad(a, pw, mode=mode)
    except ValueError:
        with pytest.raises(ValueError):
            jnp.pad(a, pw, mode=mode)
        return
    _check(jnp.pad(a, pw, mode=mode), expected)
    if mode == "constant":
        _check(jnp.pad(a, pw, constant_values=7), np.pad(a, pw, constant_values=7))
        if nd:
            cv = tuple((k, 10 + k) for k in range(nd))
            _check(jnp.pad(a, pw, constant_values=cv), np.pad(a, pw, constant_values=cv))


def test_pad_errors():
    with pytest.raises(ValueError, match="negative"):
        jnp.pad(np.ones(3), -1)
    with pytest.raises(NotImplementedError, match="mode"):
        jnp.pad(np.ones(3), 1, mode="median")
    with pytest.raises(TypeError, match="integral"):
        jnp.pad(np.ones(3), 1.5)


def test_shape_errors():
    x = jnp.ones((2, 3))
    with pytest.raises(TypeError, match="cannot reshape array of shape"):
        jnp.reshape(x, (4,))
    with pytest.raises(TypeError, match="cannot reshape"):
        x.reshape(4, -1)
    with pytest.raises(ValueError, match="only specify one unknown"):
        jnp.reshape(x, (-1, -1))
    with pytest.raises(NotImplementedError, match="order='A'"):
        jnp.reshape(x, (6,), order="A")
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.moveaxis(x, 2, 0)
    with pytest.raises(ValueError, match="out of bounds"):
        jnp.swapaxes(x, 0, -3)
    with pytest.raises(ValueError, match="cannot select an axis to squeeze"):
        jnp.squeeze(x, 0)
    with pytest.raises(ValueError, match="repeated axis"):
        jnp.expand_dims(x, (0, 0))
    with pytest.raises(ValueError, match="permutation"):
        jnp.transpose(x, (0, 0))
    with pytest.raises(ValueError, match="Incompatible shapes"):
        jnp.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError, match="Incompatible shapes"):
        jnp.broadcast_shapes((2,), (3,))
    with pytest.raises(ValueError, match="Zero-dimensional"):
        jnp.concatenate([jnp.float32(1), jnp.float32(2)])
    with pytest.raises(ValueError, match="same number of dimensions"):
        jnp.concatenate([np.ones(2), np.ones((2, 1))])
    with pytest.raises(ValueError, match="same shape"):
        jnp.stack([np.ones(2), np.ones(3)])
    with pytest.raises(ValueError, match="equal division"):
        jnp.split(np.ones(5), 2)


def test_shape_queries():
    a = np.ones((2, 3, 4))
    assert jnp.ndim(a) == 3 and jnp.shape(a) == (2, 3, 4) and jnp.size(a) == 24
    assert jnp.size(a, 1) == 3 and jnp.size(a, -1) == 4 and jnp.ndim(1.0) == 0


def test_grads_through_shape_ops(x64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    for f in [lambda x: jnp.reshape(x, (3, 2), order="F"), lambda x: jnp.moveaxis(x, 0, 1),
              lambda x: jnp.concatenate([x, 2 * x], axis=None),
              lambda x: jnp.stack([x, x * x], 1), lambda x: jnp.tile(x, (2, 1)),
              lambda x: jnp.repeat(x, np.array([1, 0, 2]), axis=1),
              lambda x: jnp.roll(x, 2, 1), lambda x: jnp.rot90(x),
              lambda x: jnp.pad(x, 2, mode="reflect"), lambda x: jnp.pad(x, 3, mode="wrap"),
              lambda x: jnp.pad(x, (1, 2), mode="edge"),
              lambda x: jnp.pad(x, 1, constant_values=1.5),
              lambda x: jnp.split(x, [1], axis=1)[1], lambda x: jnp.flip(x)]:
        check_grads(f, (x,), order=1, modes=("fwd", "rev"))


def test_vmap_shape_ops_matches_loop():
    xs = _arange((3, 2, 4))
    for f in [lambda x: jnp.reshape(x, (4, 2)), lambda x: jnp.transpose(x),
              lambda x: jnp.concatenate([x, x], 1), lambda x: jnp.tile(x, 2),
              lambda x: jnp.repeat(x, 2, 0), lambda x: jnp.roll(x, 1, 1),
              lambda x: jnp.pad(x, 1, mode="symmetric"), lambda x: jnp.rot90(x, 3)]:
        _check(jax.vmap(f)(xs), np.stack([np.asarray(f(x)) for x in xs]))
    shifts = np.array([0, 1, -3], np.int32)
    _check(jax.vmap(lambda x, s: jnp.roll(x, s, 1))(xs, shifts),
           np.stack([np.roll(x, s, 1) for x, s in zip(xs, shifts)]))


def test_shape_ndim_size_read_objects_that_have_them():
    # as JAX's: a ShapeDtypeStruct, a key array or any object with ``shape``
    spec = jax.ShapeDtypeStruct((4, 3), np.float32)
    assert jnp.shape(spec) == (4, 3) and jnp.ndim(spec) == 2 and jnp.size(spec) == 12
    assert jnp.size(spec, 1) == 3
    keys = jax.random.split(jax.random.key(0), 5)
    assert jnp.shape(keys) == (5,) and jnp.ndim(keys) == 1 and jnp.size(keys) == 5
    assert jnp.shape([[1, 2, 3]]) == (1, 3) and jnp.ndim(2.0) == 0 and jnp.size(7) == 1
