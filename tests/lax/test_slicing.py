"""Tests of the slicing primitives (tinyjax/lax/slicing.py): values against numpy,
derivatives against finite differences, vmap against Python loops, abstract-eval
errors, and printed jaxprs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tinyjax
import tinyjax as jax
from tinyjax import lax
from tinyjax.jaxpr import check_jaxpr

SETTINGS = settings(max_examples=40, deadline=None)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _arr(shape, seed=0, dtype=np.float32):
    return _rng(seed).standard_normal(shape).astype(dtype)


shapes = st.lists(st.integers(0, 5), min_size=1, max_size=3).map(tuple)


# ---------------------------------------------------------------------------
# Independent numpy references
# ---------------------------------------------------------------------------


def np_pad(x, value, config):
    """Interior padding by strided assignment, then edge padding/cropping per axis."""
    for axis, (lo, hi, interior) in enumerate(config):
        n = x.shape[axis]
        size = 0 if n == 0 else n + (n - 1) * interior
        shape = list(x.shape)
        shape[axis] = size
        dil = np.full(shape, value, x.dtype)
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(None, None, interior + 1)
        dil[tuple(idx)] = x
        widths = [(0, 0)] * x.ndim
        widths[axis] = (max(lo, 0), max(hi, 0))
        dil = np.pad(dil, widths, constant_values=value)
        crop = [slice(None)] * x.ndim
        crop[axis] = slice(max(-lo, 0), dil.shape[axis] - max(-hi, 0))
        x = dil[tuple(crop)]
    return x


def np_clamped_start(i, d, n, allow_negative=True):
    i = int(i)
    if allow_negative and i < 0:
        i += d
    return min(max(i, 0), d - n)


def np_dynamic_slice(x, starts, sizes, allow_negative=True):
    s = [np_clamped_start(i, d, n, allow_negative) for i, d, n in zip(starts, x.shape, sizes)]
    return x[tuple(slice(a, a + n) for a, n in zip(s, sizes))]


def np_dynamic_update_slice(x, u, starts):
    out = x.copy()
    s = [np_clamped_start(i, d, n) for i, d, n in zip(starts, x.shape, u.shape)]
    out[tuple(slice(a, a + n) for a, n in zip(s, u.shape))] = u
    return out


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@st.composite
def slice_cases(draw):
    shape = draw(shapes)
    start, limit, strides = [], [], []
    for d in shape:
        a = draw(st.integers(0, d))
        b = draw(st.integers(a, d))
        start.append(a)
        limit.append(b)
        strides.append(draw(st.integers(1, 3)))
    return shape, start, limit, strides


@SETTINGS
@given(slice_cases())
def test_slice_values(case):
    shape, start, limit, strides = case
    x = _arr(shape)
    expected = x[tuple(slice(a, b, s) for a, b, s in zip(start, limit, strides))]
    np.testing.assert_array_equal(np.asarray(lax.slice(x, start, limit, strides)), expected)
    unit = x[tuple(slice(a, b) for a, b in zip(start, limit))]
    np.testing.assert_array_equal(np.asarray(lax.slice(x, start, limit)), unit)
    # staged: abstract eval agrees with the impl
    out = jax.eval_shape(lambda v: lax.slice(v, start, limit, strides), x)
    assert out.shape == expected.shape and out.dtype == expected.dtype


def test_slice_in_dim_and_index_in_dim():
    x = _arr((4, 5, 3))
    np.testing.assert_array_equal(np.asarray(lax.slice_in_dim(x, 1, -1, 2, axis=1)),
                                  x[:, 1:-1:2])
    np.testing.assert_array_equal(np.asarray(lax.slice_in_dim(x, None, None, axis=2)), x)
    np.testing.assert_array_equal(np.asarray(lax.slice_in_dim(x, -3, None)), x[-3:])
    np.testing.assert_array_equal(np.asarray(lax.index_in_dim(x, -1, axis=1)), x[:, -1:])
    np.testing.assert_array_equal(
        np.asarray(lax.index_in_dim(x, 2, axis=2, keepdims=False)), x[:, :, 2])
    with pytest.raises(IndexError, match="index 5 is out of bounds for axis 1 with size 5"):
        lax.index_in_dim(x, 5, axis=1)


def test_slice_eager_is_a_view():
    x = jax.numpy.asarray(_arr((6, 6)))
    y = lax.slice(x, (1, 0), (5, 6), (2, 1))
    assert np.shares_memory(y._value, x._value)


@st.composite
def pad_cases(draw):
    shape = draw(shapes)
    config = []
    for d in shape:
        interior = draw(st.integers(0, 2))
        size = 0 if d == 0 else d + (d - 1) * interior
        lo = draw(st.integers(-3, 3))
        hi = draw(st.integers(max(-3, -(size + lo)) if size + lo >= -3 else 0, 3))
        if size + lo + hi < 0:
            lo = hi = 0
        config.append((lo, hi, interior))
    return shape, config


@SETTINGS
@given(pad_cases())
def test_pad_values(case):
    shape, config = case
    x = _arr(shape)
    expected = np_pad(x, np.float32(7.5), config)
    out = lax.pad(x, np.float32(7.5), config)
    np.testing.assert_array_equal(np.asarray(out), expected)
    assert jax.eval_shape(lambda v: lax.pad(v, 7.5, config), x).shape == expected.shape


def test_pad_int_and_python_scalar_value():
    x = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = lax.pad(x, -1, [(1, 0, 1), (-1, 2, 0)])
    np.testing.assert_array_equal(np.asarray(out), np_pad(x, -1, [(1, 0, 1), (-1, 2, 0)]))
    assert out.dtype == np.int32


@SETTINGS
@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), shapes, st.data())
def test_concatenate_values(sizes, base, data):
    axis = data.draw(st.integers(0, len(base) - 1))
    ops = []
    for k, n in enumerate(sizes):
        shape = list(base)
        shape[axis] = n
        ops.append(_arr(shape, seed=k))
    out = lax.concatenate(ops, axis)
    np.testing.assert_array_equal(np.asarray(out), np.concatenate(ops, axis))


@SETTINGS
@given(shapes, st.data())
def test_rev_values(shape, data):
    dims = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True))
    x = _arr(shape)
    np.testing.assert_array_equal(np.asarray(lax.rev(x, dims)), np.flip(x, dims) if dims
                                  else x)


@SETTINGS
@given(st.lists(st.integers(1, 3), min_size=1, max_size=4), st.data())
def test_squeeze_expand_dims_values(shape, data):
    shape = tuple(1 if data.draw(st.booleans()) else d for d in shape)
    ones = [i for i, d in enumerate(shape) if d == 1]
    dims = data.draw(st.lists(st.sampled_from(ones), unique=True)) if ones else []
    dims = [d - len(shape) if data.draw(st.booleans()) else d for d in dims]
    x = _arr(shape)
    np.testing.assert_array_equal(np.asarray(lax.squeeze(x, dims)), np.squeeze(x, tuple(dims)))
    new = data.draw(st.lists(st.integers(-len(shape) - 1, len(shape)), max_size=1))
    np.testing.assert_array_equal(np.asarray(lax.expand_dims(x, new)),
                                  np.expand_dims(x, tuple(new)))


def test_expand_dims_several():
    x = _arr((2, 3))
    np.testing.assert_array_equal(np.asarray(lax.expand_dims(x, (0, 3))),
                                  np.expand_dims(x, (0, 3)))
    with pytest.raises(ValueError, match="repeated axis in lax.expand_dims"):
        lax.expand_dims(x, (0, -4))


@SETTINGS
@given(shapes, st.data())
def test_split_values(shape, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    bounds = [0] + cuts + [n]
    sizes = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    x = _arr(shape)
    outs = lax.split(x, sizes, axis)
    expected = np.split(x, cuts, axis)
    assert len(outs) == len(expected)
    for o, e in zip(outs, expected):
        np.testing.assert_array_equal(np.asarray(o), e)


@st.composite
def dynamic_cases(draw):
    shape = draw(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple))
    sizes = tuple(draw(st.integers(0, d)) for d in shape)
    starts = tuple(draw(st.integers(-2 * d, 2 * d)) for d in shape)
    return shape, sizes, starts


@SETTINGS
@given(dynamic_cases())
def test_dynamic_slice_values(case):
    shape, sizes, starts = case
    x = _arr(shape)
    np.testing.assert_array_equal(np.asarray(lax.dynamic_slice(x, starts, sizes)),
                                  np_dynamic_slice(x, starts, sizes))
    np.testing.assert_array_equal(
        np.asarray(lax.dynamic_slice(x, starts, sizes, allow_negative_indices=False)),
        np_dynamic_slice(x, starts, sizes, allow_negative=False))
    # traced start indices, staged
    f = jax.make_jaxpr(lambda v, *s: lax.dynamic_slice(v, s, sizes))
    closed = f(x, *[np.int32(s) for s in starts])
    check_jaxpr(closed.jaxpr)
    assert closed.jaxpr.outvars[0].aval.shape == sizes


@SETTINGS
@given(dynamic_cases())
def test_dynamic_update_slice_values(case):
    shape, sizes, starts = case
    x = _arr(shape)
    u = _arr(sizes, seed=1)
    out = lax.dynamic_update_slice(x, u, starts)
    np.testing.assert_array_equal(np.asarray(out), np_dynamic_update_slice(x, u, starts))
    np.testing.assert_array_equal(np.asarray(x), _arr(shape))  # operand untouched


def test_dynamic_index_helpers():
    x = _arr((4, 5))
    i = jax.numpy.asarray(np.int32(-2))
    np.testing.assert_array_equal(np.asarray(lax.dynamic_slice_in_dim(x, i, 2, axis=1)),
                                  x[:, 3:5])
    np.testing.assert_array_equal(np.asarray(lax.dynamic_slice_in_dim(x, 4, 3)), x[1:4])
    np.testing.assert_array_equal(np.asarray(lax.dynamic_index_in_dim(x, 1, 1, False)),
                                  x[:, 1])
    np.testing.assert_array_equal(np.asarray(lax.dynamic_index_in_dim(x, -1)), x[-1:])
    np.testing.assert_array_equal(np.asarray(lax.dynamic_slice(x, np.array([1, 2]), (2, 2))),
                                  x[1:3, 2:4])
    u = _arr((4,), seed=2)
    expected = x.copy()
    expected[:, 2] = u
    np.testing.assert_array_equal(
        np.asarray(lax.dynamic_update_index_in_dim(x, u, 2, axis=1)), expected)
    expected = x.copy()
    expected[2:4] = x[:2]
    np.testing.assert_array_equal(
        np.asarray(lax.dynamic_update_slice_in_dim(x, x[:2], 3, axis=0)), expected)


def test_dynamic_slice_traced_negative_index_wraps():
    """A traced index is wrapped with a select in the jaxpr, then clamped."""
    from tinyjax.jaxpr import eval_jaxpr
    x = _arr((6,))
    closed = jax.make_jaxpr(lambda i: lax.dynamic_slice(x, (i,), (2,)))(np.int32(0))
    for i in range(-8, 8):
        out, = eval_jaxpr(closed.jaxpr, closed.consts, jax.numpy.asarray(np.int32(i)))
        np.testing.assert_array_equal(np.asarray(out), np_dynamic_slice(x, (i,), (2,)))


def test_weak_types():
    x = lax.pad(1.0, 0.0, ())
    assert x.weak_type
    x32 = jax.numpy.asarray(np.float32(1.0))
    assert not lax.pad(x32, 0.0, ()).weak_type
    w = lax.expand_dims(1.0, (0,))
    assert w.weak_type
    assert lax.slice(w, (0,), (1,)).weak_type
    assert lax.rev(w, (0,)).weak_type
    assert lax.squeeze(w, (0,)).weak_type
    assert all(p.weak_type for p in lax.split(lax.concatenate([w, w], 0), (1, 1)))
    assert not lax.concatenate([w, jax.numpy.asarray(np.ones(1, np.float32))], 0).weak_type
    assert lax.dynamic_slice(w, (0,), (1,)).weak_type
    assert jax.eval_shape(lambda v: lax.dynamic_slice(v, (0,), (1,)), w).weak_type
    assert jax.eval_shape(lambda v: lax.concatenate([v, v], 0), w).weak_type


# ---------------------------------------------------------------------------
# Derivatives against central finite differences (float64)
# ---------------------------------------------------------------------------


def _numerical_jvp(f, args, tangents, eps=1e-6):
    plus = f(*[a + eps * t for a, t in zip(args, tangents)])
    minus = f(*[a - eps * t for a, t in zip(args, tangents)])
    return (np.asarray(plus) - np.asarray(minus)) / (2 * eps)


def check_grads(f, args, order=1, seed=0):
    """jvp against finite differences, and vjp against jvp (⟨ct, J t⟩ = ⟨Jᵀct, t⟩);
    ``order=2`` checks the same for the jvp function of ``f``."""
    rng = _rng(seed)
    args = [np.asarray(a, np.float64) for a in args]
    tangents = [rng.standard_normal(a.shape) for a in args]
    out, t_out = jax.jvp(f, args, tangents)
    np.testing.assert_allclose(np.asarray(t_out), _numerical_jvp(f, args, tangents),
                               rtol=1e-6, atol=1e-6)
    out, vjp_fn = jax.vjp(f, *args)
    ct = rng.standard_normal(np.shape(out))
    cts_in = vjp_fn(ct)
    lhs = np.sum(ct * np.asarray(t_out))
    rhs = sum(np.sum(np.asarray(c) * t) for c, t in zip(cts_in, tangents))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)
    if order >= 2:
        def jvp_of_f(*a):
            return jax.jvp(f, a, tangents)[1]
        check_grads(jvp_of_f, args, order - 1, seed + 1)


GRAD_CASES = {
    "slice": (lambda x: lax.slice(x, (1, 0), (4, 5), (2, 3)), [(5, 5)]),
    "slice_unit": (lambda x: lax.slice(x, (1, 2), (3, 5)), [(4, 5)]),
    "pad": (lambda x, v: lax.pad(x, v, [(2, -1, 1), (-2, 3, 2)]), [(3, 4), ()]),
    "pad_crop": (lambda x, v: lax.pad(x, v, [(-1, -1, 0), (0, 1, 0)]), [(4, 3), ()]),
    "concatenate": (lambda x, y, z: lax.concatenate([x, y, z], 1), [(2, 1), (2, 3), (2, 0)]),
    "rev": (lambda x: lax.rev(x, (0, 2)), [(2, 3, 4)]),
    "squeeze": (lambda x: lax.squeeze(x, (0, -1)), [(1, 3, 1)]),
    "expand_dims": (lambda x: lax.expand_dims(x, (1,)), [(3, 2)]),
    "split": (lambda x: lax.concatenate(
        [p * (k + 1.0) for k, p in enumerate(lax.split(x, (2, 0, 3), 1))], 1), [(2, 5)]),
    "dynamic_slice": (lambda x: lax.dynamic_slice(x, (-2, 1), (2, 3)), [(4, 5)]),
    "dynamic_slice_clamped": (lambda x: lax.dynamic_slice(x, (3, 9), (2, 3)), [(4, 5)]),
    "dynamic_update_slice": (lambda x, u: lax.dynamic_update_slice(x, u, (1, -2)),
                             [(4, 5), (2, 3)]),
    "dynamic_update_slice_clamped": (lambda x, u: lax.dynamic_update_slice(x, u, (7, 0)),
                                     [(4, 5), (2, 3)]),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
def test_grads(name, x64):
    f, shapes_ = GRAD_CASES[name]
    args = [_rng(k).standard_normal(s) for k, s in enumerate(shapes_)]
    check_grads(f, args)


def test_grad_of_pad_value_sums_padded_positions(x64):
    x = np.ones((3,))
    g = jax.grad(lambda v: lax.reduce_sum(lax.pad(x, v, [(2, -1, 1)]), (0,)))(2.0)
    # output has 2 + 5 - 1 = 6 entries, of which 3 - 1 = 2 come from x (one cropped)
    assert float(g) == 4.0
    gx = jax.grad(lambda x: lax.reduce_sum(lax.pad(x, 0.0, [(2, -1, 1)]), (0,)))(x)
    np.testing.assert_array_equal(np.asarray(gx), [1.0, 1.0, 0.0])


@pytest.mark.parametrize("name", ["slice", "pad", "dynamic_update_slice"])
def test_second_order(name, x64):
    g, shapes_ = GRAD_CASES[name]

    def f(*a):
        return lax.sin(g(*a)) * g(*a)
    args = [_rng(k).standard_normal(s) for k, s in enumerate(shapes_)]
    check_grads(f, args, order=2)


def test_hessian_through_slicing(x64):
    def f(x):
        y = lax.concatenate([lax.rev(x, (0,)), lax.slice(x, (1,), (3,))], 0)
        return lax.reduce_sum(lax.sin(lax.pad(y, 0.0, [(1, 1, 1)])), (0,))
    x = _rng(3).standard_normal(4)
    h = np.asarray(jax.hessian(f)(x))
    eps = 1e-5
    num = np.stack([(np.asarray(jax.grad(f)(x + eps * e)) -
                     np.asarray(jax.grad(f)(x - eps * e))) / (2 * eps) for e in np.eye(4)])
    np.testing.assert_allclose(h, num, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# vmap against Python loops
# ---------------------------------------------------------------------------


def _loop(f, in_axes, args):
    size = next(np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None)
    outs = []
    for b in range(size):
        outs.append(f(*[a if ax is None else np.take(a, b, axis=ax)
                        for a, ax in zip(args, in_axes)]))
    if isinstance(outs[0], (list, tuple)):
        return [np.stack([np.asarray(o[k]) for o in outs]) for k in range(len(outs[0]))]
    return np.stack([np.asarray(o) for o in outs])


def check_vmap(f, in_axes, args):
    expected = _loop(f, in_axes, args)
    got = jax.vmap(f, in_axes=in_axes)(*args)
    if isinstance(expected, list):
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(np.asarray(g), e)
    else:
        np.testing.assert_array_equal(np.asarray(got), expected)


VMAP_CASES = {
    "slice": (lambda x: lax.slice(x, (1, 0), (4, 3), (2, 2)), [(5, 3)]),
    "pad": (lambda x, v: lax.pad(x, v, [(1, -1, 1), (-1, 2, 0)]), [(3, 4), ()]),
    "concatenate": (lambda x, y: lax.concatenate([x, y, x], 1), [(2, 1), (2, 3)]),
    "rev": (lambda x: lax.rev(x, (0, 1)), [(2, 3)]),
    "squeeze": (lambda x: lax.squeeze(x, (1,)), [(3, 1)]),
    "expand_dims": (lambda x: lax.expand_dims(x, (0, 2)), [(3, 2)]),
    "split": (lambda x: lax.split(x, (1, 2), 1), [(2, 3)]),
    "dynamic_slice": (lambda x: lax.dynamic_slice(x, (-1, 1), (2, 2)), [(4, 3)]),
    "dynamic_update_slice": (lambda x, u: lax.dynamic_update_slice(x, u, (2, 5)),
                             [(4, 3), (2, 2)]),
}


def _batched(shape, axis, size=3, seed=0):
    if axis is None:
        return _arr(shape, seed)
    full = list(shape)
    full.insert(axis, size)
    return _arr(full, seed)


@pytest.mark.parametrize("name", sorted(VMAP_CASES))
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap(name, axis):
    f, shapes_ = VMAP_CASES[name]
    n = len(shapes_)
    for mapped in range(1, 2 ** n):  # every non-empty subset of batched arguments
        in_axes = [(axis % (len(s) + 1)) if mapped >> k & 1 else None
                   for k, s in enumerate(shapes_)]
        args = [_batched(s, ax, seed=k) for k, (s, ax) in enumerate(zip(shapes_, in_axes))]
        check_vmap(f, in_axes, args)


def test_vmap_of_grad_of_pad(x64):
    f = jax.grad(lambda x, v: lax.reduce_sum(lax.sin(lax.pad(x, v, [(1, 1, 2)])), (0,)),
                 argnums=(0, 1))
    xs, vs = _rng(0).standard_normal((4, 3)), _rng(1).standard_normal(4)
    got = jax.vmap(f)(xs, vs)
    for b in range(4):
        gx, gv = f(xs[b], vs[b])
        np.testing.assert_allclose(np.asarray(got[0])[b], np.asarray(gx), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(got[1])[b], np.asarray(gv), rtol=1e-12)


def _batched_index_cases():
    x = _arr((5, 4))
    xs = _arr((3, 5, 4), seed=1)
    i = np.array([-7, 1, 4], np.int32)
    j = np.array([2, -1, 3], np.int32)
    return x, xs, i, j


@pytest.mark.parametrize("x_axis", [None, 0, 2])
def test_vmap_dynamic_slice_batched_indices(x_axis):
    x, xs, i, j = _batched_index_cases()
    operand = x if x_axis is None else np.moveaxis(xs, 0, x_axis)
    f = lambda v, a, b: lax.dynamic_slice(v, (a, b), (2, 3))  # noqa: E731
    check_vmap(f, [x_axis, 0, None], [operand, i, np.int32(2)])
    check_vmap(f, [x_axis, 0, 0], [operand, i, j])


@pytest.mark.parametrize("x_axis", [None, 0, 1])
def test_vmap_dynamic_update_slice_batched_indices(x_axis):
    x, xs, i, j = _batched_index_cases()
    operand = x if x_axis is None else np.moveaxis(xs, 0, x_axis)
    u = _arr((3, 2, 3), seed=4)
    f = lambda v, up, a, b: lax.dynamic_update_slice(v, up, (a, b))  # noqa: E731
    check_vmap(f, [x_axis, 0, 0, 0], [operand, u, i, j])
    check_vmap(f, [x_axis, None, 0, None], [operand, u[0], i, np.int32(-1)])


# ---------------------------------------------------------------------------
# Abstract-eval errors (staged, so abstract evaluation runs) and eager errors
# ---------------------------------------------------------------------------

F32 = np.zeros((2, 3), np.float32)
I32 = np.zeros((2, 3), np.int32)

ERRORS = [
    ("slice", lambda x: lax.slice(x, (0,), (1,)), [F32], TypeError,
     r"slice start_indices must have length equal to the number of dimensions"),
    ("slice", lambda x: lax.slice(x, (0, 0), (1,)), [F32], TypeError,
     r"slice limit_indices must have the same length as start_indices"),
    ("slice", lambda x: lax.slice(x, (0, 0), (3, 3)), [F32], TypeError,
     r"slice limit_indices must be less than or equal to operand shape.*\(2, 3\)"),
    ("slice", lambda x: lax.slice(x, (-1, 0), (1, 3)), [F32], TypeError,
     r"slice start_indices must be greater than or equal to zero"),
    ("slice", lambda x: lax.slice(x, (2, 0), (1, 3)), [F32], TypeError,
     r"slice limit_indices must be greater than or equal to start_indices"),
    ("slice", lambda x: lax.slice(x, (0, 0), (1, 3), (1, 0)), [F32], TypeError,
     r"slice strides must be positive"),
    ("slice", lambda x: lax.slice(x, (0, 0), (1, 3), (1, 2, 1)), [F32], TypeError,
     r"slice strides must have length equal to the number of dimensions"),
    ("pad", lambda x: lax.pad(x, np.int32(0), [(0, 0, 0)] * 2), [F32], TypeError,
     r"pad operand and padding_value must be same dtype: got float32 and int32"),
    ("pad", lambda x: lax.pad(x, np.zeros(2, np.float32), [(0, 0, 0)] * 2), [F32],
     TypeError, r"pad padding_value must be a scalar"),
    ("pad", lambda x: lax.pad(x, 0.0, [(0, 0, 0)]), [F32], ValueError,
     r"length of padding_config must equal the number of axes of operand"),
    ("pad", lambda x: lax.pad(x, 0.0, [(0, 0, -1), (0, 0, 0)]), [F32], ValueError,
     r"interior padding in padding_config must be nonnegative"),
    ("pad", lambda x: lax.pad(x, 0.0, [(-2, -1, 0), (0, 0, 0)]), [F32], ValueError,
     r"Dimension size after padding is not at least 0, got result shape \(-1, 3\)"),
    ("concatenate", lambda x, y: lax.concatenate([x, y], 0), [F32, I32], TypeError,
     r"lax.concatenate requires arguments to have the same dtypes, got float32, int32"),
    ("concatenate", lambda x, y: lax.concatenate([x, y], 0), [F32, F32[0]], TypeError,
     r"Cannot concatenate arrays with different numbers of dimensions"),
    ("concatenate", lambda x, y: lax.concatenate([x, y], 2), [F32, F32], TypeError,
     r"concatenate dimension out of bounds: dimension 2 for shapes \(2, 3\), \(2, 3\)"),
    ("concatenate", lambda x, y: lax.concatenate([x, y], 0), [F32, F32[:, :2]], TypeError,
     r"Cannot concatenate arrays with shapes that differ in dimensions other than"),
    ("concatenate", lambda: lax.concatenate([], 0), [], TypeError,
     r"concatenate expects at least one operand, got 0"),
    ("rev", lambda x: lax.rev(x, (0, 0)), [F32], TypeError, r"rev dimensions must be unique"),
    ("rev", lambda x: lax.rev(x, (2,)), [F32], TypeError,
     r"rev dimensions must all be less than operand ndim, got dimension 2"),
    ("rev", lambda x: lax.rev(x, (-1,)), [F32], TypeError,
     r"rev dimensions must have all nonnegative values"),
    ("squeeze", lambda x: lax.squeeze(x, (0,)), [F32], ValueError,
     r"cannot select an axis to squeeze out which has size not equal to one"),
    ("squeeze", lambda x: lax.squeeze(x, (2,)), [F32], ValueError,
     r"squeeze dimension 2 is out of bounds for array of dimension 2"),
    ("squeeze", lambda x: lax.squeeze(x, (0, -2)), [F32[:1]], ValueError,
     r"squeeze dimensions are not unique"),
    ("split", lambda x: lax.split(x, (1, 1), 1), [F32], ValueError,
     r"split: sum of sizes 2 must be equal to dimension 1 of the operand shape \(2, 3\)"),
    ("split", lambda x: lax.split(x, (4, -1), 1), [F32], ValueError,
     r"split: sizes passed to split must be nonnegative"),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (0,), (1, 1)), [F32], ValueError,
     r"dynamic_slice: length of slice indices must match number of operand dimensions \(1 vs 2\)"),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (0, 0), (3, 1)), [F32], TypeError,
     r"dynamic_slice slice_sizes must be less than or equal to operand shape"),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (0, 0), (1,)), [F32], TypeError,
     r"dynamic_slice slice_sizes must have the same length as start_indices"),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (0, 0), (1, -1)), [F32], TypeError,
     r"dynamic_slice slice_sizes must be greater than or equal to zero"),
    ("dynamic_slice", lambda x: lax.dynamic_slice(x, (0, 0.5), (1, 1)), [F32], TypeError,
     r"index arguments to dynamic_slice must be integers"),
    ("dynamic_update_slice", lambda x, u: lax.dynamic_update_slice(x, u, (0, 0)),
     [F32, I32], TypeError,
     r"lax.dynamic_update_slice requires arguments to have the same dtypes"),
    ("dynamic_update_slice", lambda x, u: lax.dynamic_update_slice(x, u, (0, 0)),
     [F32, F32[0]], TypeError, r"dynamic_update_slice update must have the same rank"),
    ("dynamic_update_slice", lambda x, u: lax.dynamic_update_slice(x, u, (0, 0)),
     [F32[:1], F32], TypeError, r"dynamic_update_slice update shape must be smaller than"),
    ("dynamic_update_slice", lambda x, u: lax.dynamic_update_slice(x, u, (0,)),
     [F32, F32], ValueError,
     r"dynamic_update_slice: length of slice indices must match number of operand"),
]


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "eager"])
@pytest.mark.parametrize("case", ERRORS, ids=[f"{c[0]}-{k}" for k, c in enumerate(ERRORS)])
def test_errors(case, staged):
    _, f, args, exc, match = case
    with pytest.raises(exc, match=match):
        if staged:
            jax.make_jaxpr(f)(*args)
        else:
            f(*args)


def _bind_errors():
    """Errors only reachable by binding the primitives directly."""
    i32, f32 = np.int32(0), np.float32(0)
    return [
        (lambda: lax.dynamic_slice_p.bind(F32, i32, slice_sizes=(1, 1)), TypeError,
         r"dynamic_slice start_indices must have length equal to the number of dimensions"),
        (lambda: lax.dynamic_slice_p.bind(F32, i32, np.int16(0), slice_sizes=(1, 1)),
         TypeError, r"index arguments to dynamic_slice must be integers of the same type"),
        (lambda: lax.dynamic_slice_p.bind(F32, i32, f32, slice_sizes=(1, 1)), TypeError,
         r"index arguments to dynamic_slice must be integers of the same type, got: "
         r"int32, float32"),
        (lambda: lax.dynamic_slice_p.bind(F32, i32, np.zeros(1, np.int32),
                                          slice_sizes=(1, 1)),
         TypeError, r"dynamic_slice start_indices must be scalars"),
        (lambda: lax.dynamic_update_slice_p.bind(F32, F32, i32), TypeError,
         r"dynamic_update_slice start_indices must have length equal"),
        (lambda: lax.pad_p.bind(F32, f32, padding_config=((0, 0), (0, 0))), ValueError,
         r"pad padding_config must be a sequence of \(low, high, interior\) triples"),
        (lambda: lax.split_p.bind(F32, sizes=(3,), axis=2), ValueError,
         r"split axis 2 is out of bounds for operand shape \(2, 3\)"),
    ]


@pytest.mark.parametrize("staged", [True, False], ids=["staged", "eager"])
@pytest.mark.parametrize("k", range(len(_bind_errors())))
def test_bind_errors(k, staged):
    f, exc, match = _bind_errors()[k]
    with pytest.raises(exc, match=match):
        jax.make_jaxpr(f)() if staged else f()


# ---------------------------------------------------------------------------
# Printed jaxprs
# ---------------------------------------------------------------------------


def test_make_jaxpr_params():
    x = np.zeros((4, 6), np.float32)

    def f(x, i):
        a = lax.slice(x, (1, 0), (4, 6), (2, 3))
        b = lax.slice_in_dim(x, 1, 3, axis=1)
        c = lax.pad(a, 0.0, [(1, -1, 2), (0, 0, 0)])
        d = lax.concatenate([x, x], 1)
        e = lax.rev(x, (1,))
        s = lax.split(x, (2, 4), axis=-1)
        g = lax.squeeze(lax.expand_dims(x, (0,)), (0,))
        h = lax.dynamic_slice(x, (i, 2), (2, 2))
        k = lax.dynamic_update_slice(x, h, (1, i))
        return a, b, c, d, e, s, g, h, k

    closed = jax.make_jaxpr(f)(x, np.int32(1))
    check_jaxpr(closed.jaxpr)
    text = str(closed)
    for expected in [
        # (parameters print sorted, as JAX prints them)
        "slice[limit_indices=(4, 6) start_indices=(1, 0) strides=(2, 3)]",
        "slice[limit_indices=(4, 3) start_indices=(0, 1) strides=None]",
        "pad[padding_config=((1, -1, 2), (0, 0, 0))]",
        "concatenate[dimension=1]",
        "rev[dimensions=(1,)]",
        "split[axis=1 sizes=(2, 4)]",
        "squeeze[dimensions=(0,)]",
        "f32[1,4,6] = broadcast_in_dim[broadcast_dimensions=(1, 2)]",
        "dynamic_slice[slice_sizes=(2, 2)]",
        "dynamic_update_slice ",
    ]:
        assert expected in text, (expected, text)
    # shapes of the outputs as printed
    assert "f32[2,2] = slice" in text and "f32[4,2] = pad" in text
    assert "f32[4,12] = concatenate" in text
    # static start indices add no equations; a traced one is wrapped with one select
    assert text.count("select_n") == 2 and "convert_element_type" not in text


def test_jaxpr_cse_friendly_params():
    """Equal calls give equal (hashable) params."""
    x = np.zeros((4, 6), np.float32)
    closed = jax.make_jaxpr(lambda x: (lax.slice(x, [0, 1], np.array([2, 3])),
                                       lax.slice(x, (0, 1), (2, 3), [1, 1])))(x)
    p1, p2 = (e.params for e in closed.jaxpr.eqns)
    assert p1 == p2 and hash(tuple(p1.items())) == hash(tuple(p2.items()))
    assert all(type(v) is int for v in p1["start_indices"])


def test_grad_and_vmap_with_batched_indices_compose(x64):
    """vmap of grad (the transpose of dynamic_slice, a dynamic_update_slice, batched
    with batched indices) and grad of vmap (through gather's rules)."""
    x = _rng(0).standard_normal((5, 4))
    i = np.array([-7, 1, 4], np.int32)

    def f(x, a):
        return lax.reduce_sum(lax.sin(lax.dynamic_slice(x, (a, 1), (2, 3))), (0, 1))
    got = np.asarray(jax.vmap(jax.grad(f), in_axes=(None, 0))(x, i))
    expected = np.stack([np.asarray(jax.grad(f)(x, a)) for a in i])
    np.testing.assert_allclose(got, expected, rtol=1e-12)

    def g(x):
        return lax.reduce_sum(jax.vmap(f, in_axes=(None, 0))(x, i), (0,))
    expected = sum(np.asarray(jax.grad(f)(x, a)) for a in i)
    np.testing.assert_allclose(np.asarray(jax.grad(g)(x)), expected, rtol=1e-12)


def test_rank0_and_empty_edge_cases():
    s = np.arange(3.0, dtype=np.float32)
    np.testing.assert_array_equal(
        np.asarray(jax.vmap(lambda v: lax.dynamic_slice(v, (), ()))(s)), s)
    np.testing.assert_array_equal(
        np.asarray(jax.vmap(lambda v, u: lax.dynamic_update_slice(v, u, ()))(s, s + 1)), s + 1)
    assert lax.split(np.zeros((2, 0), np.float32), (), 1) == []
    assert lax.split(np.zeros((2, 0), np.float32), (0, 0), 1)[1].shape == (2, 0)
    np.testing.assert_array_equal(np.asarray(lax.pad(np.float32(2), 0.0, ())), 2.0)
