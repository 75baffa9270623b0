"""gather / scatter against an independent loop reference, numpy indexing,
finite differences and vmap-by-loop."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyjax as jax
from tinyjax import lax
from tinyjax.lax import (GatherDimensionNumbers as GDN, GatherScatterMode,
                         ScatterDimensionNumbers as SDN)

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])
MODES = ["clip", "fill", "promise_in_bounds"]
SCATTERS = {"scatter": lax.scatter, "add": lax.scatter_add, "mul": lax.scatter_mul,
            "min": lax.scatter_min, "max": lax.scatter_max}


# ---------------------------------------------------------------------------
# Loop reference (written from XLA's operation semantics, one index tuple at a time)
# ---------------------------------------------------------------------------


def _start(operand_shape, index_vec, b, start_index_map, obd, ibd, window, mode):
    """The window start in the operand for batch position ``b`` and whether the
    window is wholly in bounds."""
    start = [0] * len(operand_shape)
    ok = True
    for j, d in enumerate(start_index_map):
        s = int(index_vec[j])
        hi = operand_shape[d] - window[d]
        if s < 0 or s > hi:
            ok = False
        start[d] = min(max(s, 0), hi)
    for od, bd in zip(obd, ibd):
        start[od] = b[bd]
    return start, ok or mode == "clip"


def ref_gather(operand, indices, dn, slice_sizes, mode, fill_value=None):
    batch_shape = indices.shape[:-1]
    dropped = set(dn.collapsed_slice_dims) | set(dn.operand_batching_dims)
    kept = [d for d in range(operand.ndim) if d not in dropped]
    out_rank = len(batch_shape) + len(dn.offset_dims)
    batch_pos = [p for p in range(out_rank) if p not in dn.offset_dims]
    out_shape = [0] * out_rank
    for p, s in zip(batch_pos, batch_shape):
        out_shape[p] = s
    for p, d in zip(dn.offset_dims, kept):
        out_shape[p] = slice_sizes[d]
    out = np.zeros(out_shape, operand.dtype)
    for b in np.ndindex(*batch_shape):
        start, ok = _start(operand.shape, indices[b], b, dn.start_index_map,
                           dn.operand_batching_dims, dn.start_indices_batching_dims,
                           slice_sizes, mode)
        for w in np.ndindex(*slice_sizes):
            where = [0] * out_rank
            for p, i in zip(batch_pos, b):
                where[p] = i
            for p, d in zip(dn.offset_dims, kept):
                where[p] = w[d]
            if ok or mode != "fill":
                out[tuple(where)] = operand[tuple(s + i for s, i in zip(start, w))]
            else:
                out[tuple(where)] = fill_value
    return out


def ref_scatter(kind, operand, indices, updates, dn, mode):
    out = np.array(operand, copy=True)
    batch_shape = indices.shape[:-1]
    window_dims = [d for d in range(operand.ndim) if d not in dn.inserted_window_dims
                   and d not in dn.operand_batching_dims]
    scatter_pos = [p for p in range(updates.ndim) if p not in dn.update_window_dims]
    window = [1] * operand.ndim
    for d, p in zip(window_dims, dn.update_window_dims):
        window[d] = updates.shape[p]
    combine = {"scatter": lambda a, u: u, "add": lambda a, u: a + u,
               "mul": lambda a, u: a * u, "min": min, "max": max}[kind]
    for b in np.ndindex(*batch_shape):
        start, ok = _start(operand.shape, indices[b], b, dn.scatter_dims_to_operand_dims,
                           dn.operand_batching_dims, dn.scatter_indices_batching_dims,
                           window, mode)
        if not ok:
            continue
        for w in np.ndindex(*window):
            src = [0] * updates.ndim
            for p, i in zip(scatter_pos, b):
                src[p] = i
            for p, d in zip(dn.update_window_dims, window_dims):
                src[p] = w[d]
            dst = tuple(s + i for s, i in zip(start, w))
            out[dst] = combine(out[dst], updates[tuple(src)])
    return out


# ---------------------------------------------------------------------------
# Random gather configurations (every role an operand dim can play)
# ---------------------------------------------------------------------------


@st.composite
def gather_cases(draw, modes=tuple(MODES), batching=True, max_rank=3):
    rank = draw(st.integers(1, max_rank))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    roles = ["collapsed", "indexed", "window"] + (["batch"] if batching else [])
    role = draw(st.lists(st.sampled_from(roles), min_size=rank, max_size=rank))
    obd = tuple(d for d in range(rank) if role[d] == "batch")
    n_extra = draw(st.integers(0, 2))
    n_batch = n_extra + len(obd)
    order = draw(st.permutations(range(n_batch)))
    ibd = tuple(order[:len(obd)])
    batch_shape = [draw(st.integers(0, 3)) for _ in range(n_batch)]
    for od, bd in zip(obd, ibd):
        batch_shape[bd] = shape[od]
    sim = tuple(draw(st.permutations(
        [d for d in range(rank) if role[d] in ("collapsed", "indexed")])))
    sizes = tuple(1 if role[d] in ("collapsed", "batch")
                  else draw(st.integers(0, shape[d])) for d in range(rank))
    collapsed = tuple(d for d in range(rank) if role[d] == "collapsed")
    n_offset = rank - len(collapsed) - len(obd)
    out_rank = n_batch + n_offset
    offset_dims = tuple(sorted(draw(st.permutations(range(out_rank)))[:n_offset]))
    mode = draw(st.sampled_from(modes))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    lo_pad = 0 if mode == "promise_in_bounds" else 2
    cols = [rng.integers(-lo_pad, shape[d] - sizes[d] + 1 + lo_pad, size=batch_shape)
            for d in sim]
    indices = np.stack(cols, -1).astype(np.int32) if cols else \
        np.zeros(tuple(batch_shape) + (0,), np.int32)
    operand = rng.standard_normal(shape).astype(np.float32)
    dn = GDN(offset_dims=offset_dims, collapsed_slice_dims=collapsed, start_index_map=sim,
             operand_batching_dims=obd, start_indices_batching_dims=ibd)
    return operand, indices, dn, sizes, mode, rng


def _scatter_from_gather(case):
    operand, indices, dn, sizes, mode, rng = case
    sdn = lax.ScatterDimensionNumbers(
        update_window_dims=dn.offset_dims, inserted_window_dims=dn.collapsed_slice_dims,
        scatter_dims_to_operand_dims=dn.start_index_map,
        operand_batching_dims=dn.operand_batching_dims,
        scatter_indices_batching_dims=dn.start_indices_batching_dims)
    out_shape = ref_gather(operand, indices, dn, sizes, "clip").shape
    updates = rng.standard_normal(out_shape).astype(np.float32)
    return operand, indices, updates, sdn, mode, rng


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


@SETTINGS
@given(gather_cases())
def test_gather_matches_loop_reference(case):
    operand, indices, dn, sizes, mode, _ = case
    fill = -7.5
    got = lax.gather(operand, indices, dn, sizes, mode=mode, fill_value=fill)
    want = ref_gather(operand, indices, dn, sizes, mode, fill)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(got), want)


@SETTINGS
@given(gather_cases(modes=("clip", "fill")), st.sampled_from(sorted(SCATTERS)))
def test_scatter_matches_loop_reference(case, kind):
    operand, indices, updates, sdn, mode, _ = _scatter_from_gather(case)
    got = SCATTERS[kind](operand, indices, updates, sdn, mode=mode)
    want = ref_scatter(kind, operand, indices, updates, sdn, mode)
    assert got.shape == operand.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_default_modes():
    x = np.arange(5.0, dtype=np.float32)
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    idx = np.array([[7], [-1], [2]], np.int32)
    # lax.gather's default is PROMISE_IN_BOUNDS, which clamps like XLA
    np.testing.assert_array_equal(lax.gather(x, idx, dn, (1,)), [4.0, 0.0, 2.0])
    filled = lax.gather(x, idx, dn, (1,), mode="fill")
    np.testing.assert_array_equal(filled, [np.nan, np.nan, 2.0])
    ints = lax.gather(np.arange(5, dtype=np.int32), idx, dn, (1,), mode="fill")
    np.testing.assert_array_equal(ints, [np.iinfo(np.int32).min] * 2 + [2])
    uints = lax.gather(np.arange(5, dtype=np.uint8), idx, dn, (1,), mode="fill")
    np.testing.assert_array_equal(uints, [255, 255, 2])
    bools = lax.gather(np.zeros(5, bool), idx, dn, (1,), mode="fill")
    np.testing.assert_array_equal(bools, [True, True, False])
    # scatter's default is FILL_OR_DROP: out-of-bounds updates vanish
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    out = lax.scatter_add(x, idx, np.ones(3, np.float32), sdn)
    np.testing.assert_array_equal(out, [0, 1, 3, 3, 4])
    out = lax.scatter_add(x, idx, np.ones(3, np.float32), sdn, mode="clip")
    np.testing.assert_array_equal(out, [1, 1, 3, 3, 5])
    assert GatherScatterMode.from_any(None) is GatherScatterMode.FILL_OR_DROP
    assert GatherScatterMode.from_any("drop") is GatherScatterMode.FILL_OR_DROP
    assert GatherScatterMode.from_any("clip") is GatherScatterMode.CLIP
    assert GatherScatterMode.from_any("promise_in_bounds") is \
        GatherScatterMode.PROMISE_IN_BOUNDS
    with pytest.raises(ValueError, match='Unknown gather mode "wrap"'):
        GatherScatterMode.from_any("wrap")


def test_fill_whole_window():
    """A window that is only partly out of bounds is filled / dropped as a whole."""
    x = np.arange(6.0, dtype=np.float32)
    dn = GDN(offset_dims=(1,), collapsed_slice_dims=(), start_index_map=(0,))
    idx = np.array([[4], [3]], np.int32)
    got = lax.gather(x, idx, dn, (3,), mode="fill", fill_value=-1)
    np.testing.assert_array_equal(got, [[-1, -1, -1], [3, 4, 5]])
    np.testing.assert_array_equal(lax.gather(x, idx, dn, (3,), mode="clip"),
                                  [[3, 4, 5], [3, 4, 5]])
    sdn = SDN(update_window_dims=(1,), inserted_window_dims=(),
              scatter_dims_to_operand_dims=(0,))
    got = lax.scatter(x, idx, np.full((2, 3), 9.0, np.float32), sdn)
    np.testing.assert_array_equal(got, [0, 1, 2, 9, 9, 9])


def test_weak_type_and_dtype_preserved():
    x = lax.full((3,), 1.5)  # weakly typed
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    out = lax.gather(x, np.array([[1]]), dn, (1,))
    assert out.weak_type and out.dtype == np.float32
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    out = lax.scatter_add(x, np.array([[1]]), np.array([2.0], np.float32), sdn)
    assert out.weak_type
    ints = lax.scatter_max(np.arange(4, dtype=np.int8), np.array([[1], [1]]),
                           np.array([7, 3], np.int8), sdn)
    assert ints.dtype == np.int8
    np.testing.assert_array_equal(ints, [0, 7, 2, 3])


# ---------------------------------------------------------------------------
# The gathers that numpy-style indexing produces, checked against numpy itself
# ---------------------------------------------------------------------------


def test_numpy_style_indexing_shapes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    i = np.array([3, 0, 0, 2], np.int32)
    j = np.array([[4, 1], [0, 2]], np.int32)

    # x[i]
    dn = GDN(offset_dims=(1, 2), collapsed_slice_dims=(0,), start_index_map=(0,))
    np.testing.assert_array_equal(lax.gather(x, i[:, None], dn, (1, 5, 3)), x[i])
    # x[:, j]
    dn = GDN(offset_dims=(0, 3), collapsed_slice_dims=(1,), start_index_map=(1,))
    np.testing.assert_array_equal(lax.gather(x, j[..., None], dn, (4, 1, 3)), x[:, j])
    # x[i2, j] with broadcast index arrays
    i2 = np.array([[1], [3]], np.int32) + np.zeros_like(j)
    dn = GDN(offset_dims=(2,), collapsed_slice_dims=(0, 1), start_index_map=(0, 1))
    np.testing.assert_array_equal(
        lax.gather(x, np.stack([i2, j], -1), dn, (1, 1, 3)), x[i2, j])
    # x[j-ish, :, i-ish]: index vector order differs from the operand order
    a, c = np.array([2, 0, 1], np.int32), np.array([1, 1, 2], np.int32)
    dn = GDN(offset_dims=(1,), collapsed_slice_dims=(0, 2), start_index_map=(2, 0))
    np.testing.assert_array_equal(
        lax.gather(x, np.stack([c, a], -1), dn, (1, 5, 1)), x[a, :, c])
    # take_along_axis(x, k, axis=1) through batching dims
    k = rng.integers(0, 5, size=(4, 2, 3)).astype(np.int32)
    dn = GDN(offset_dims=(), collapsed_slice_dims=(1,), start_index_map=(1,),
             operand_batching_dims=(0, 2), start_indices_batching_dims=(0, 2))
    np.testing.assert_array_equal(lax.gather(x, k[..., None], dn, (1, 1, 1)),
                                  np.take_along_axis(x, k, axis=1))
    # x.at[i].add(u) (repeated indices accumulate), and .set
    u = rng.standard_normal((4, 5, 3)).astype(np.float32)
    sdn = SDN(update_window_dims=(1, 2), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    want = x.copy()
    np.add.at(want, i, u)
    np.testing.assert_allclose(lax.scatter_add(x, i[:, None], u, sdn), want, rtol=1e-6)
    want = x.copy()
    want[i] = u
    np.testing.assert_array_equal(lax.scatter(x, i[:, None], u, sdn), want)


def test_scalar_operand():
    x = np.array(2.5, np.float32)
    dn = GDN(offset_dims=(), collapsed_slice_dims=(), start_index_map=())
    np.testing.assert_array_equal(lax.gather(x, np.zeros((3, 0), np.int32), dn, ()),
                                  [2.5, 2.5, 2.5])
    sdn = SDN(update_window_dims=(), inserted_window_dims=(), scatter_dims_to_operand_dims=())
    out = lax.scatter_add(x, np.zeros((3, 0), np.int32), np.ones(3, np.float32), sdn)
    assert out.shape == () and float(out) == 5.5


def test_zero_sized():
    x = np.ones((3, 0), np.float32)
    dn = GDN(offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,))
    assert lax.gather(x, np.zeros((2, 1), np.int32), dn, (1, 0)).shape == (2, 0)
    y = np.ones((3,), np.float32)
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    assert lax.gather(y, np.zeros((0, 1), np.int32), dn, (1,)).shape == (0,)


# ---------------------------------------------------------------------------
# Derivatives (float64, central finite differences and the dot-product test)
# ---------------------------------------------------------------------------


def _check_jvp_vjp(f, args, rng, eps=1e-6, tol=1e-5):
    args = [np.asarray(a, np.float64) for a in args]
    tangents = [rng.standard_normal(a.shape) for a in args]
    out, tan = jax.jvp(f, args, tangents)
    plus = f(*[a + eps * t for a, t in zip(args, tangents)])
    minus = f(*[a - eps * t for a, t in zip(args, tangents)])
    fd = (np.asarray(plus) - np.asarray(minus)) / (2 * eps)
    np.testing.assert_allclose(np.asarray(tan), fd, rtol=tol, atol=tol)
    _, f_vjp = jax.vjp(f, *args)
    ct = rng.standard_normal(np.shape(out))
    cts = f_vjp(ct)
    lhs = sum(float(np.sum(np.asarray(c) * t)) for c, t in zip(cts, tangents))
    rhs = float(np.sum(ct * np.asarray(tan)))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-8, atol=1e-8)


@SETTINGS
@given(gather_cases())
def test_gather_derivatives(x64, case):
    operand, indices, dn, sizes, mode, rng = case
    f = lambda x: lax.gather(x, indices, dn, sizes, mode=mode, fill_value=0.5)  # noqa: E731
    _check_jvp_vjp(f, [operand], rng)


def _distinct(rng, shape):
    """Values far apart, so that extrema have no ties under finite differences."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) + rng.uniform(0.2, 0.8, shape)) * 0.5


@SETTINGS
@given(gather_cases(modes=("clip", "fill")), st.sampled_from(sorted(SCATTERS)),
       st.booleans())
def test_scatter_derivatives(x64, case, kind, wrt_updates_only):
    operand, indices, updates, sdn, mode, rng = _scatter_from_gather(case)
    operand = _distinct(rng, operand.shape)
    updates = _distinct(rng, updates.shape) + 0.1
    fn = SCATTERS[kind]
    if wrt_updates_only:
        f = lambda u: fn(operand, indices, u, sdn, mode=mode)  # noqa: E731
        _check_jvp_vjp(f, [updates], rng)
    else:
        f = lambda x, u: fn(x, indices, u, sdn, mode=mode)  # noqa: E731
        _check_jvp_vjp(f, [operand, updates], rng)


def test_scatter_mul_derivative_with_zero_updates(x64):
    rng = np.random.default_rng(1)
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    idx = np.array([[0], [0], [1], [1], [1], [2], [2], [2]], np.int32)
    # element 0: one zero; element 1: two zeros; element 2: no zero
    upd = np.array([0.0, 1.5, 0.0, 0.0, 2.0, 0.5, -1.5, 2.5])
    f = lambda x, u: lax.scatter_mul(x, idx, u, sdn)  # noqa: E731
    _check_jvp_vjp(f, [rng.standard_normal(4), upd], rng)
    for unique in (True, False):
        g = lambda x, u: lax.scatter_mul(  # noqa: E731
            x, np.array([[2], [0]]), u, sdn, unique_indices=unique)
        _check_jvp_vjp(g, [rng.standard_normal(4), np.array([0.0, 3.0])], rng)


def test_scatter_max_ties_average_tangents(x64):
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    idx = np.array([[0], [0], [1]], np.int32)
    x, u = np.array([1.0, 5.0]), np.array([1.0, 1.0, 2.0])
    _, t = jax.jvp(lambda x, u: lax.scatter_max(x, idx, u, sdn), (x, u),
                   (np.array([3.0, 7.0]), np.array([6.0, 9.0, 100.0])))
    np.testing.assert_allclose(t, [6.0, 7.0])  # mean(3, 6, 9); the operand wins


def test_scatter_grad_with_repeated_indices(x64):
    """The update that wins gets the gradient; the others and the overwritten
    operand element get zero."""
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    idx = np.array([[1], [1], [3]], np.int32)
    w = np.array([1.0, 2.0, 3.0, 4.0])
    f = lambda x, u: lax.reduce_sum(lax.mul(lax.scatter(x, idx, u, sdn), w), (0,))  # noqa
    out = np.asarray(lax.scatter(np.zeros(4), idx, np.array([5.0, 6.0, 7.0]), sdn))
    winner = 0 if out[1] == 5.0 else 1
    gx, gu = jax.grad(f, argnums=(0, 1))(np.ones(4), np.array([5.0, 6.0, 7.0]))
    np.testing.assert_array_equal(gx, [1.0, 0.0, 3.0, 0.0])
    want = np.zeros(3)
    want[winner], want[2] = 2.0, 4.0
    np.testing.assert_array_equal(gu, want)
    # unique_indices takes the simple path; its transpose must agree
    idx_u = np.array([[1], [3]], np.int32)
    g = lambda x, u: lax.reduce_sum(lax.mul(  # noqa: E731
        lax.scatter(x, idx_u, u, sdn, unique_indices=True), w), (0,))
    gx, gu = jax.grad(g, argnums=(0, 1))(np.ones(4), np.array([5.0, 6.0]))
    np.testing.assert_array_equal(gx, [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(gu, [2.0, 4.0])


def test_integer_operands_have_no_tangent():
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    def f(x):
        ints = lax.scatter_add(np.arange(3, dtype=np.int32), np.array([[1]]),
                               np.array([2], np.int32), sdn)
        return lax.reduce_sum(lax.mul(lax.convert_element_type(ints, np.float32), x), (0,))
    np.testing.assert_allclose(jax.grad(f)(np.float32(2.0)), 5.0)


# ---------------------------------------------------------------------------
# vmap against a loop
# ---------------------------------------------------------------------------


def _stack_at(xs, axis):
    return np.stack(xs, axis)


@SETTINGS
@given(gather_cases(), st.sampled_from(["operand", "indices", "both"]),
       st.integers(0, 10))
def test_gather_vmap(case, which, axis_seed):
    operand, indices, dn, sizes, mode, rng = case
    n = 3
    ops = [operand + i for i in range(n)]
    hi = max(operand.shape) + 2
    idxs = [np.clip(indices + rng.integers(-1, 2, indices.shape), -2, hi).astype(np.int32)
            for _ in range(n)]
    op_ax = axis_seed % (operand.ndim + 1) if which != "indices" else None
    idx_ax = axis_seed % (indices.ndim + 1) if which != "operand" else None
    f = lambda o, i: lax.gather(o, i, dn, sizes, mode=mode, fill_value=-3.0)  # noqa: E731
    op_in = _stack_at(ops, op_ax) if op_ax is not None else operand
    idx_in = _stack_at(idxs, idx_ax) if idx_ax is not None else indices
    got = jax.vmap(f, in_axes=(op_ax, idx_ax))(op_in, idx_in)
    want = np.stack([f(ops[k] if op_ax is not None else operand,
                       idxs[k] if idx_ax is not None else indices) for k in range(n)])
    np.testing.assert_array_equal(np.asarray(got), want)


@SETTINGS
@given(gather_cases(modes=("clip", "fill")), st.sampled_from(sorted(SCATTERS)),
       st.lists(st.booleans(), min_size=3, max_size=3).filter(any), st.integers(0, 10))
def test_scatter_vmap(case, kind, batched, axis_seed):
    operand, indices, updates, sdn, mode, rng = _scatter_from_gather(case)
    n = 2
    args = [operand, indices, updates]
    per_example = []
    for a, b in zip(args, batched):
        if not b:
            per_example.append([a] * n)
        elif a.dtype == np.int32:
            per_example.append([np.clip(a + rng.integers(-1, 2, a.shape), -2, 6)
                                .astype(np.int32) for _ in range(n)])
        else:
            per_example.append([rng.standard_normal(a.shape).astype(np.float32)
                                for _ in range(n)])
    axes = [axis_seed % (a.ndim + 1) if b else None for a, b in zip(args, batched)]
    stacked = [np.stack(xs, ax) if ax is not None else a
               for xs, ax, a in zip(per_example, axes, args)]
    fn = SCATTERS[kind]
    f = lambda o, i, u: fn(o, i, u, sdn, mode=mode)  # noqa: E731
    got = jax.vmap(f, in_axes=tuple(axes))(*stacked)
    want = np.stack([f(*(xs[k] for xs in per_example)) for k in range(n)])
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)


def test_vmap_of_grad_of_gather():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    idx = np.array([[[0], [0]], [[2], [1]], [[3], [3]]], np.int32)
    g = jax.vmap(jax.grad(lambda r, i: lax.reduce_sum(lax.gather(
        r, i, dn, (1,), mode="fill", fill_value=0.0), (0,))))(x, idx)
    np.testing.assert_array_equal(g, [[2, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 2]])


def test_vmap_over_empty_axis():
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    f = lambda o, i: lax.gather(o, i, dn, (1,))  # noqa: E731
    out = jax.vmap(f)(np.zeros((0, 3), np.float32), np.zeros((0, 2, 1), np.int32))
    assert out.shape == (0, 2)
    sdn = SDN(update_window_dims=(), inserted_window_dims=(0,),
              scatter_dims_to_operand_dims=(0,))
    g = lambda o, i, u: lax.scatter_add(o, i, u, sdn)  # noqa: E731
    out = jax.vmap(g)(np.zeros((0, 3), np.float32), np.zeros((0, 2, 1), np.int32),
                      np.zeros((0, 2), np.float32))
    assert out.shape == (0, 3)


def test_promise_in_bounds_gradient_follows_the_clamp(x64):
    dn = GDN(offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,))
    f = lambda x: lax.reduce_sum(lax.gather(x, np.array([[5], [1]]), dn, (1,)), (0,))  # noqa
    np.testing.assert_array_equal(jax.grad(f)(np.zeros(3)), [0.0, 1.0, 1.0])


def test_jaxpr_params_are_hashable():
    dn = GDN(offset_dims=[], collapsed_slice_dims=[0], start_index_map=[0])
    jaxpr = jax.make_jaxpr(lambda x: lax.gather(x, np.array([[1]]), dn, [1], mode="fill"))(
        np.zeros(3, np.float32))
    eqn = jaxpr.jaxpr.eqns[-1]
    assert eqn.primitive is lax.gather_p
    hash(tuple(eqn.params.items()))
    assert "gather" in str(jaxpr)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

X = np.zeros((3, 4), np.float32)


@pytest.mark.parametrize("indices,dn,sizes,match", [
    (np.zeros((2, 1), np.float32), GDN((1,), (0,), (0,)), (1, 4),
     "gather indices must have an integer type"),
    (np.zeros((2, 1), np.int32), GDN((1,), (0,), (0,)), (1, 4, 1),
     r"Gather op must have one slice size for every input dimension.*f32\[3,4\]"),
    (np.zeros((2, 2), np.int32), GDN((1,), (0,), (0,)), (1, 4),
     "1 elements in start_index_map and the bound of dimension"),
    (np.zeros((2, 1), np.int32), GDN((1,), (0,), (0,)), (2, 4),
     "can only collapse slice dims with bound 1, but bound is 2"),
    (np.zeros((2, 1), np.int32), GDN((1,), (0,), (0,)), (1, 5),
     r"Slice size at index 1 in gather op is out of range, must be within \[0, 4 \+ 1\)"),
    (np.zeros((2, 1), np.int32), GDN((2, 1), (), (0,)), (1, 4),
     "offset_dims in gather op must be sorted"),
    (np.zeros((2, 1), np.int32), GDN((1,), (0,), (5,)), (1, 4),
     r"Invalid start_index_map; domain is \[0, 2\), got: 0->5"),
    (np.zeros((2, 1), np.int32), GDN((1,), (), (0,)), (1, 4),
     "must either be a offset dimension or explicitly collapsed/batching"),
    (np.zeros((2, 1), np.int32), GDN((1,), (0,), (1,), (1,), (0,)), (1, 1),
     "start_index_map and operand_batching_dims in gather op must be disjoint"),
    (np.zeros((2, 1), np.int32), GDN((), (0,), (0,), (1,), (0,)), (1, 1),
     r"operand batching dimensions and indices batching dimensions to have the same "
     r"shape, got \(4,\) and \(2,\)"),
])
def test_gather_errors(indices, dn, sizes, match):
    with pytest.raises((TypeError, ValueError), match=match):
        lax.gather(X, indices, dn, sizes)
    with pytest.raises((TypeError, ValueError), match=match):
        jax.make_jaxpr(lambda x: lax.gather(x, indices, dn, sizes))(X)


SDN1 = SDN(update_window_dims=(1,), inserted_window_dims=(0,),
           scatter_dims_to_operand_dims=(0,))


@pytest.mark.parametrize("fn,indices,updates,dn,match", [
    (lax.scatter_add, np.zeros((2, 1), np.int32), np.zeros((2, 4), np.int32), SDN1,
     r"scatter-add requires arguments to have the same dtypes, got float32, int32"),
    (lax.scatter_mul, np.zeros((2, 1), np.float32), np.zeros((2, 4), np.float32), SDN1,
     "scatter-mul indices must have an integer type"),
    (lax.scatter, np.zeros((2, 1), np.int32), np.zeros((2, 4, 1), np.float32), SDN1,
     r"Updates tensor must be of rank 2; got 3.*scatter with operand f32\[3,4\]"),
    (lax.scatter_min, np.zeros((2, 1), np.int32), np.zeros((2, 5), np.float32), SDN1,
     "updates bound is 5, operand bound is 4"),
    (lax.scatter_max, np.zeros((2, 1), np.int32), np.zeros((3, 4), np.float32), SDN1,
     "For scatter dimension 0, updates bound is 3, indices bound is 2"),
    (lax.scatter_add, np.zeros((2, 1), np.int32), np.zeros((2, 4), np.float32),
     SDN((1,), (), (0,)), "Scatter op has window of size 1; doesn't match operand of rank 2"),
    (lax.scatter_add, np.zeros((2, 1), np.int32), np.zeros((2, 4), np.float32),
     SDN((1,), (0,), (3,)), r"Invalid scatter_dims_to_operand_dims mapping"),
])
def test_scatter_errors(fn, indices, updates, dn, match):
    with pytest.raises((TypeError, ValueError), match=match):
        fn(X, indices, updates, dn)


def test_dimension_numbers_type_error():
    with pytest.raises(TypeError, match="GatherDimensionNumbers"):
        lax.gather(X, np.zeros((1, 1), np.int32), ((1,), (0,), (0,)), (1, 4))
    with pytest.raises(TypeError, match="ScatterDimensionNumbers"):
        lax.scatter(X, np.zeros((1, 1), np.int32), np.zeros((1, 4), np.float32),
                    ((1,), (0,), (0,)))
