"""Tests for tinyjax.compiler.shape.view / shapetracker: movement ops vs numpy, view merging."""

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st

from tinyjax.compiler.shape.shapetracker import ShapeTracker, loop_vars, merge_views, unravel
from tinyjax.compiler.shape.symbolic import Var, evaluate, render
from tinyjax.compiler.shape.view import View, strides_for_shape


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def index_grids(shape):
    return {f"idx{i}": np.arange(s).reshape([-1 if j == i else 1 for j in range(len(shape))])
            for i, s in enumerate(shape)}


def gather(stk: ShapeTracker, buf: np.ndarray) -> np.ndarray:
    """Read the logical array through the tracker's index/valid expressions (numpy-evaluated)."""
    idx, valid = stk.expr_idxs()
    env = index_grids(stk.shape)
    I = np.broadcast_to(evaluate(idx, env), stk.shape)
    V = np.broadcast_to(evaluate(valid, env), stk.shape)
    assert set(np.unique(V)) <= {0, 1}
    live = I[V != 0]
    assert (live >= 0).all() and (live < buf.size).all(), "valid element indexes outside the buffer"
    if live.size:
        assert live.max() < stk.size_of_buffer
        if len(stk.views) == 1:
            assert live.max() + 1 == stk.size_of_buffer
    return np.where(V != 0, buf[np.clip(I, 0, max(buf.size - 1, 0))], 0) if buf.size else np.zeros(stk.shape, buf.dtype)


def gather_flat(stk: ShapeTracker, buf: np.ndarray) -> np.ndarray:
    """Same through expr_node (a single flat row-major index)."""
    idx, valid = stk.expr_node()
    f = np.arange(stk.size)
    I = np.broadcast_to(evaluate(idx, {"idx": f}), f.shape)
    V = np.broadcast_to(evaluate(valid, {"idx": f}), f.shape)
    return np.where(V != 0, buf[np.clip(I, 0, max(buf.size - 1, 0))], 0).reshape(stk.shape)


def apply_np(x, op, arg):
    if op == "reshape":
        return x.reshape(arg)
    if op == "permute":
        return x.transpose(arg)
    if op == "expand":
        return np.broadcast_to(x, arg)
    if op == "pad":
        return np.pad(x, arg) if x.ndim else x
    if op == "shrink":
        return x[tuple(slice(b, e) for b, e in arg)]
    if op == "flip":
        return np.flip(x, tuple(arg)) if len(arg) else x
    if op == "stride":
        return x[tuple(slice(None, None, k) for k in arg)]
    raise AssertionError(op)


def apply_st(stk, op, arg):
    return getattr(stk, op)(arg)


def check(stk, expected, buf):
    assert stk.shape == expected.shape
    np.testing.assert_array_equal(gather(stk, buf), expected)


# ------------------------------------------------------------------------------------------
# random op sequences (hypothesis)
# ------------------------------------------------------------------------------------------

def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def reshape_target(draw, shape):
    total = int(np.prod(shape))
    kind = draw(st.sampled_from(["merge", "split", "insert1", "drop1", "factor", "flat"]))
    shape = list(shape)
    if kind == "merge" and len(shape) >= 2:
        k = draw(st.integers(0, len(shape) - 2))
        return tuple(shape[:k] + [shape[k] * shape[k + 1]] + shape[k + 2:])
    if kind == "split" and shape:
        k = draw(st.integers(0, len(shape) - 1))
        d = draw(st.sampled_from(divisors(shape[k])))
        return tuple(shape[:k] + [d, shape[k] // d] + shape[k + 1:])
    if kind == "insert1" and len(shape) < 5:
        k = draw(st.integers(0, len(shape)))
        return tuple(shape[:k] + [1] + shape[k:])
    if kind == "drop1" and 1 in shape:
        k = shape.index(1)
        return tuple(shape[:k] + shape[k + 1:])
    if kind == "flat":
        return (total,)
    # random factorisation of the total into up to 4 dims
    out, rest = [], total
    for _ in range(draw(st.integers(0, 3))):
        d = draw(st.sampled_from(divisors(rest)))
        out.append(d)
        rest //= d
    out.append(rest)
    return tuple(draw(st.permutations(out)))


@st.composite
def movement_op(draw, shape):
    nd = len(shape)
    kinds = ["reshape", "permute", "pad", "shrink", "flip", "stride"]
    if 1 in shape:
        kinds.append("expand")
    op = draw(st.sampled_from(kinds))
    if op == "reshape":
        return op, draw(reshape_target(shape))
    if op == "permute":
        return op, tuple(draw(st.permutations(list(range(nd)))))
    if op == "expand":
        return op, tuple(draw(st.integers(1, 4)) if s == 1 else s for s in shape)
    if op == "pad":
        return op, tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    if op == "shrink":
        arg = []
        for s in shape:
            b = draw(st.integers(0, max(s - 1, 0)))
            arg.append((b, draw(st.integers(min(b + 1, s), s))))
        return op, tuple(arg)
    if op == "flip":
        return op, tuple(sorted(draw(st.sets(st.integers(0, max(nd - 1, 0)), max_size=nd)))) if nd else ()
    if op == "stride":
        return op, tuple(draw(st.sampled_from([1, 1, 2, 3, -1, -2, -3])) for _ in shape)
    raise AssertionError(op)


@st.composite
def op_sequences(draw):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=3)))
    ops, cur = [], shape
    for _ in range(draw(st.integers(1, 7))):
        op, arg = draw(movement_op(cur))
        nxt = apply_np(np.empty(cur, dtype=np.int8), op, arg).shape
        if int(np.prod(nxt)) > 3000:
            break
        ops.append((op, arg))
        cur = nxt
    return shape, ops


@settings(max_examples=1000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(op_sequences())
def test_random_movement_sequences_match_numpy(case):
    shape, ops = case
    buf = np.arange(1, int(np.prod(shape)) + 1)  # 1-based so masked (padded) reads of 0 are visible
    x = buf.reshape(shape)
    stk = ShapeTracker.from_shape(shape)
    for op, arg in ops:
        x = apply_np(x, op, arg)
        stk = apply_st(stk, op, arg)
        assert stk.shape == x.shape, (op, arg)
    check(stk, x, buf)
    np.testing.assert_array_equal(gather_flat(stk, buf), x)
    # simplify never changes the meaning and is idempotent
    s = stk.simplify()
    np.testing.assert_array_equal(gather(s, buf), x)
    assert s.simplify() == s
    # trackers are hashable values
    assert hash(stk) == hash(ShapeTracker(stk.views)) and stk == ShapeTracker(stk.views)


@settings(max_examples=150, deadline=None, database=None)
@given(op_sequences())
def test_random_sequences_real_strides(case):
    shape, ops = case
    buf = np.arange(1, int(np.prod(shape)) + 1)
    stk = ShapeTracker.from_shape(shape)
    for op, arg in ops:
        stk = apply_st(stk, op, arg)
    idx, valid = stk.expr_idxs()
    env = index_grids(stk.shape)
    I = np.broadcast_to(evaluate(idx, env), stk.shape)
    for d, rs in enumerate(stk.real_strides(ignore_valid=True)):
        if rs is not None and stk.shape[d] > 1:
            sl0 = [slice(None)] * len(stk.shape)
            sl1 = list(sl0)
            sl0[d], sl1[d] = slice(0, -1), slice(1, None)
            assert (I[tuple(sl1)] - I[tuple(sl0)] == rs).all()


# ------------------------------------------------------------------------------------------
# merged view counts for the standard cases
# ------------------------------------------------------------------------------------------

def test_reshape_of_contiguous_is_one_view():
    s = ShapeTracker.from_shape((2, 3, 4))
    for shp in [(24,), (6, 4), (2, 12), (4, 3, 2), (1, 24, 1), (2, 1, 3, 1, 4)]:
        r = s.reshape(shp)
        assert len(r.views) == 1 and r.contiguous
        check(r, np.arange(1, 25).reshape(shp), np.arange(1, 25))


def test_permute_then_compatible_reshape_is_one_view():
    s = ShapeTracker.from_shape((2, 3, 4)).permute((2, 0, 1))  # (4, 2, 3): axes 1, 2 stay adjacent
    r = s.reshape((4, 6))
    assert len(r.views) == 1
    assert r.views[0].strides == (1, 4)
    check(r, np.arange(1, 25).reshape(2, 3, 4).transpose(2, 0, 1).reshape(4, 6), np.arange(1, 25))
    r2 = r.reshape((2, 2, 2, 3))  # splitting again
    assert len(r2.views) == 1
    check(r2, np.arange(1, 25).reshape(2, 3, 4).transpose(2, 0, 1).reshape(2, 2, 2, 3), np.arange(1, 25))


def test_expand_then_reshape():
    s = ShapeTracker.from_shape((3, 1)).expand((3, 4))
    r = s.reshape((3, 2, 2))
    assert len(r.views) == 1 and r.views[0].strides == (1, 0, 0)
    check(r, np.broadcast_to(np.arange(1, 4).reshape(3, 1), (3, 4)).reshape(3, 2, 2), np.arange(1, 4))
    r = ShapeTracker.from_shape((1, 3)).expand((4, 3)).reshape((2, 2, 3))
    assert len(r.views) == 1 and r.views[0].strides == (0, 0, 1)
    r = ShapeTracker.from_shape((1, 3)).expand((4, 3)).reshape((12,))  # not expressible
    assert len(r.views) == 2
    check(r, np.broadcast_to(np.arange(1, 4), (4, 3)).reshape(12), np.arange(1, 4))


def test_pad_then_shrink_back():
    s = ShapeTracker.from_shape((3, 4))
    p = s.pad(((1, 2), (0, 3)))
    assert len(p.views) == 1 and p.views[0].mask == ((1, 4), (0, 4))
    b = p.shrink(((1, 4), (0, 4)))
    assert len(b.views) == 1 and b.views[0].mask is None and b.contiguous
    assert b == s
    inner = p.shrink(((2, 4), (1, 3)))  # strictly inside the valid region: no mask
    assert inner.views[0].mask is None
    check(inner, np.arange(1, 13).reshape(3, 4)[1:3, 1:3], np.arange(1, 13))


def test_flip_is_one_view():
    s = ShapeTracker.from_shape((3, 4)).flip((0, 1))
    assert len(s.views) == 1 and s.views[0].strides == (-4, -1) and s.views[0].offset == 11
    check(s, np.arange(1, 13).reshape(3, 4)[::-1, ::-1], np.arange(1, 13))
    assert s.flip((0, 1)).contiguous


def test_transpose_then_flatten_is_two_views():
    s = ShapeTracker.from_shape((3, 4)).permute((1, 0)).reshape((12,))
    assert len(s.views) == 2
    check(s, np.arange(1, 13).reshape(3, 4).T.reshape(12), np.arange(1, 13))
    # and reshaping back merges into one view again
    back = s.reshape((4, 3))
    assert len(back.views) == 1 and back.views[0].strides == (1, 4)


def test_stride_is_one_view():
    s = ShapeTracker.from_shape((7, 5)).stride((2, -3))
    assert len(s.views) == 1 and s.shape == (4, 2)
    check(s, np.arange(1, 36).reshape(7, 5)[::2, ::-3], np.arange(1, 36))
    # conv-style strided window without a copy: pad, stride
    c = ShapeTracker.from_shape((6,)).pad(((1, 1),)).stride((2,))
    assert len(c.views) == 1
    check(c, np.pad(np.arange(1, 7), 1)[::2], np.arange(1, 7))


def test_masked_reshape_merges_when_expressible():
    # pad the outer dim, then flatten: the valid region is one interval of the flat index
    s = ShapeTracker.from_shape((2, 3)).pad(((1, 1), (0, 0))).reshape((12,))
    assert len(s.views) == 1 and s.views[0].mask == ((3, 9),)
    check(s, np.pad(np.arange(1, 7).reshape(2, 3), ((1, 1), (0, 0))).reshape(12), np.arange(1, 7))
    # split a padded dim where the valid interval is aligned
    s = ShapeTracker.from_shape((4,)).pad(((2, 2),)).reshape((4, 2))
    assert len(s.views) == 1 and s.views[0].mask == ((1, 3), (0, 2))
    # not aligned: needs two views (and stays correct)
    s = ShapeTracker.from_shape((4,)).pad(((1, 1),)).reshape((3, 2))
    assert len(s.views) == 2
    check(s, np.pad(np.arange(1, 5), 1).reshape(3, 2), np.arange(1, 5))


# ------------------------------------------------------------------------------------------
# contiguity, rendering, expr_node
# ------------------------------------------------------------------------------------------

def test_contiguous_render_and_expr_node():
    s = ShapeTracker.from_shape((3, 4))
    assert s.contiguous
    idx, valid = s.expr_idxs()
    assert render(idx) == "idx0*4+idx1" and valid == 1
    s3 = ShapeTracker.from_shape((2, 3, 5))
    assert render(s3.expr_idxs()[0]) == "idx0*15+idx1*5+idx2"
    for t in (s, s3, ShapeTracker.from_shape((7,))):
        flat, v = t.expr_node()
        assert isinstance(flat, Var) and flat.name == "idx" and v == 1
        assert render(flat) == "idx"
    assert render(ShapeTracker.from_shape((7,)).expr_idxs()[0]) == "idx0"
    assert not s.permute((1, 0)).contiguous
    assert not s.pad(((0, 1), (0, 0))).contiguous
    assert not s.shrink(((1, 3), (0, 4))).contiguous
    assert s.reshape((12,)).contiguous and s.reshape((2, 6)).contiguous


def test_expr_idxs_custom_indices_and_masks():
    s = ShapeTracker.from_shape((3, 4)).pad(((1, 0), (0, 2)))
    idx, valid = s.expr_idxs()
    assert render(idx) == "idx0*4+idx1-4"
    assert render(valid) == "((0<idx0)&&(idx1<4))"
    i, j = Var("i", 1, 3), Var("j", 0, 3)
    idx, valid = s.expr_idxs([i, j])
    assert valid == 1 and render(idx) == "i*4+j-4"
    idx, valid = s.expr_idxs([2, 5])
    assert valid == 0
    with pytest.raises(ValueError):
        s.expr_idxs([i])


def test_multi_view_expression():
    s = ShapeTracker.from_shape((3, 4)).permute((1, 0)).reshape((12,))
    idx, valid = s.expr_idxs()
    assert valid == 1
    assert render(idx) == "idx0/3+(idx0%3)*4"
    assert unravel(Var("f", 0, 11), (3, 4)) == [Var("f", 0, 11) // 4, Var("f", 0, 11) % 4]
    assert [v.name for v in loop_vars((2, 3))] == ["idx0", "idx1"]


def test_real_strides_and_axes():
    s = ShapeTracker.from_shape((3, 4))
    assert s.real_strides() == (4, 1) and s.unit_stride_axes() == [1]
    t = s.permute((1, 0))
    assert t.real_strides() == (1, 4) and t.unit_stride_axes() == [0]
    e = ShapeTracker.from_shape((3, 1)).expand((3, 5))
    assert e.real_strides() == (1, 0) and e.is_expanded_axis(1) and not e.is_expanded_axis(0)
    assert not ShapeTracker.from_shape((3, 1)).is_expanded_axis(1)
    p = s.pad(((1, 0), (0, 0)))
    assert p.real_strides() == (None, 1) and p.real_strides(ignore_valid=True) == (4, 1)
    two = s.permute((1, 0)).reshape((12,))
    assert two.real_strides() == (None,)
    f = s.flip((1,))
    assert f.real_strides() == (4, -1) and f.unit_stride_axes() == []
    with pytest.raises(ValueError):
        e.is_expanded_axis(5)


def test_size_of_buffer():
    assert ShapeTracker.from_shape((3, 4)).size_of_buffer == 12
    assert ShapeTracker.from_shape((3, 4)).shrink(((0, 2), (1, 3))).size_of_buffer == 7
    assert ShapeTracker.from_shape((3, 4)).pad(((2, 2), (2, 2))).size_of_buffer == 12
    assert ShapeTracker.from_shape((3, 1)).expand((3, 9)).size_of_buffer == 3
    assert ShapeTracker.from_shape((3, 4)).flip((0,)).size_of_buffer == 12
    assert ShapeTracker.from_shape((3, 4)).pad(((0, 0), (5, 0))).shrink(((0, 3), (0, 2))).size_of_buffer == 0
    assert ShapeTracker.from_shape((0, 4)).size_of_buffer == 0


# ------------------------------------------------------------------------------------------
# views: canonical form, hashing
# ------------------------------------------------------------------------------------------

def test_view_canonical_form():
    v = View.create((3, 1, 4))
    assert v.strides == (4, 0, 1) and v.contiguous and v.mask is None and v.offset == 0
    assert View.create((3, 1, 4), (4, 4, 1)) == v
    assert View.create((3, 4), mask=((0, 3), (0, 4))).mask is None
    m = View.create((3, 4), (4, 1), 0, ((1, 2), (0, 4)))      # single valid row: stride 0
    assert m.strides == (0, 1) and m.offset == 4 and m.mask == ((1, 2), (0, 4))
    z = View.create((3, 4), (4, 1), 7, ((1, 1), (0, 4)))       # nothing valid
    assert z.mask == ((0, 0), (0, 0)) and z.strides == (0, 0) and z.offset == 0 and z.fully_masked
    assert View.create((0, 4), (4, 1), 3).strides == (0, 0)
    assert strides_for_shape((2, 1, 3)) == (3, 0, 1)
    assert hash(View.create((2, 3))) == hash(View.create((2, 3)))
    assert len({View.create((2, 3)), View.create((2, 3)), View.create((3, 2))}) == 2
    with pytest.raises(Exception):
        v.offset = 3  # frozen


def test_view_reshape_cases():
    assert View.create((4, 6), (1, 4)).reshape((4, 2, 3)).strides == (1, 12, 4)
    assert View.create((2, 3), (1, 2)).reshape((6,)) is None
    assert View.create((2, 3), (-3, -1), 5).reshape((6,)) == View.create((6,), (-1,), 5)
    assert View.create((3, 4), (0, 1)).reshape((12,)) is None
    assert View.create((3, 4), (1, 0)).reshape((3, 2, 2)).strides == (1, 0, 0)


def test_merge_views_directly():
    inner = View.create((3, 4), (1, 3))   # transposed
    outer = View.create((12,))
    assert merge_views(inner, outer) is None
    assert merge_views(inner, View.create((3, 4))) == inner
    assert merge_views(View.create((12,)), outer) == outer


def test_fully_masked_and_empty():
    s = ShapeTracker.from_shape((3, 4)).pad(((0, 0), (4, 0))).shrink(((0, 3), (0, 3)))
    assert s.views[0].fully_masked
    idx, valid = s.expr_idxs()
    assert valid == 0
    r = s.reshape((9,)).pad(((1, 1),)).permute((0,))
    assert r.views[-1].fully_masked and len(r.views) == 1
    check(r, np.zeros(11, dtype=np.int64), np.arange(1, 13))
    e = ShapeTracker.from_shape((3, 4)).shrink(((1, 1), (0, 4)))
    assert e.shape == (0, 4) and e.size == 0
    assert e.reshape((0,)).shape == (0,) and e.reshape((4, 0, 1)).shape == (4, 0, 1)
    assert e.expr_idxs()[1] == 0
    assert ShapeTracker.from_shape((2, 1)).expand((2, 0)).shape == (2, 0)


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op,arg,words", [
    ("reshape", (5,), ["reshape", "(3, 4)", "(5,)"]),
    ("reshape", (-1, 12), ["reshape"]),
    ("permute", (0, 0), ["permute", "(3, 4)"]),
    ("permute", (0,), ["permute", "(3, 4)"]),
    ("expand", (6, 4), ["expand", "(3, 4)", "(6, 4)"]),
    ("expand", (3, 4, 1), ["expand", "(3, 4)"]),
    ("pad", ((1, 1),), ["pad", "(3, 4)"]),
    ("pad", ((-1, 0), (0, 0)), ["pad", "(3, 4)"]),
    ("shrink", ((0, 4), (0, 4)), ["shrink", "(3, 4)"]),
    ("shrink", ((2, 1), (0, 4)), ["shrink", "(3, 4)"]),
    ("shrink", ((0, 3),), ["shrink", "(3, 4)"]),
    ("flip", (2,), ["flip", "(3, 4)"]),
    ("flip", (0, 0), ["flip", "(3, 4)"]),
    ("stride", (0, 1), ["stride", "(3, 4)"]),
    ("stride", (1,), ["stride", "(3, 4)"]),
])
def test_movement_errors(op, arg, words):
    s = ShapeTracker.from_shape((3, 4))
    with pytest.raises(ValueError) as ei:
        getattr(s, op)(arg)
    for w in words:
        assert w in str(ei.value)
