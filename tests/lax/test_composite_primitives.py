"""lax primitives defined by a composition (tinyjax.lax.composite): each appears in
jaxprs under JAX's name and parameters, and its derived rules -- abstract evaluation,
jvp, transpose, batching -- agree with numpy, finite differences, loops and eager."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax
from tinyjax.test_util import check_grads

RNG = np.random.default_rng(0)
X = RNG.normal(size=(2, 3)).astype(np.float32)
SDN = lax.ScatterDimensionNumbers(update_window_dims=(1,), inserted_window_dims=(0,),
                                  scatter_dims_to_operand_dims=(0,))
IDX = np.array([[1], [0], [1]], np.int32)
UPD = RNG.normal(size=(3, 3)).astype(np.float32)


def _scatter_sub_ref(x, upd):
    out = x.copy()
    np.subtract.at(out, IDX[:, 0], upd)
    return out


# name -> (function of float operands, operands, numpy reference, expected equation text)
CASES = {
    "stack": (lambda a, b: lax.stack([a, b], axis=1), (X, 2 * X),
              lambda a, b: np.stack([a, b], 1), "stack[axis=1]"),
    "unstack": (lambda a: lax.unstack(a, axis=-1), (X,),
                lambda a: tuple(np.moveaxis(a, -1, 0)), "unstack[axis=1]"),
    "tile": (lambda a: lax.tile(a, (2, 1)), (X,), lambda a: np.tile(a, (2, 1)),
             "tile[reps=(2, 1)]"),
    "scatter-sub": (lambda a, u: lax.scatter_sub(a, IDX, u, SDN), (X, UPD),
                    _scatter_sub_ref, "scatter-sub["),
    "approx_top_k": (lambda a: lax.approx_min_k(a, 2, reduction_dimension=0), (X.T,),
                     lambda a: (np.sort(a, 0)[:2], np.argsort(a, 0, kind="stable")[:2]),
                     "approx_top_k[\n      aggregate_to_topk=True\n      is_max_k=False\n"
                     "      k=2\n      recall_target=0.95\n      reduction_dimension=0\n"
                     "      reduction_input_size_override=-1\n    ]"),
    "reduce": (lambda a, b: lax.reduce((a, b), (0.0, 1.0),
                                       lambda acc, e: (acc[0] * e[1] + e[0], acc[1] * e[1]),
                                       (0,)), (X, X + 2),
               lambda a, b: (a[0] * b[1] + a[1], b[0] * b[1]), "reduce[\n      computation="),
    "reduce_window": (lambda a: lax.reduce_window(a, 1.0, lambda s, e: s * e, (1, 2), (1, 1),
                                                  "VALID"), (X,),
                      lambda a: a[:, :-1] * a[:, 1:], "reduce_window[\n      base_dilation="),
}
KEY = RNG.integers(0, 2 ** 32, size=4, dtype=np.uint32)


def _close(got, want):
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_appears_in_jaxpr_under_jax_name(name):
    fn, args, _, text = CASES[name]
    jaxpr = jax.make_jaxpr(fn)(*args)
    assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == [name]
    assert text in str(jaxpr)


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_eager_and_jit(name):
    fn, args, ref, _ = CASES[name]
    _close(fn(*args), ref(*args))
    _close(jax.jit(fn)(*args), fn(*args))


@pytest.mark.parametrize("name", sorted(CASES))
def test_grads_against_finite_differences(name):
    fn, args, _, _ = CASES[name]
    check_grads(fn, args, order=2, eps=1e-2, atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_against_a_loop(name):
    fn, args, _, _ = CASES[name]
    batched = [np.stack([a, a + 1, 2 * a]) for a in args]
    got = jax.vmap(fn)(*batched)
    want = [fn(*[b[i] for b in batched]) for i in range(3)]
    for g, w in zip(jax.tree.leaves(got), zip(*[jax.tree.leaves(w) for w in want])):
        np.testing.assert_allclose(np.asarray(g), np.stack(w), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_vmap_along_a_middle_axis_and_with_unbatched_operands(name):
    """The derived batching rule along axis 1 in and the last axis out, with only the last
    operand batched (the others broadcast), and of the gradient."""
    fn, args, _, _ = CASES[name]
    batched = np.stack([args[-1], args[-1] + 1, 2 * args[-1]], axis=1)
    in_axes = (None,) * (len(args) - 1) + (1,)
    got = jax.vmap(fn, in_axes=in_axes, out_axes=-1)(*args[:-1], batched)
    want = [fn(*args[:-1], batched[:, i]) for i in range(3)]
    for g, w in zip(jax.tree.leaves(got), zip(*[jax.tree.leaves(w) for w in want])):
        np.testing.assert_allclose(np.asarray(g), np.stack(w, -1), rtol=1e-6)

    def loss(*a):
        return sum(jax.numpy.sum(jax.numpy.sin(o)) for o in jax.tree.leaves(fn(*a))
                   if jax.numpy.issubdtype(o.dtype, jax.numpy.floating))
    grads = jax.vmap(jax.grad(loss, argnums=len(args) - 1), in_axes=in_axes, out_axes=1)(
        *args[:-1], batched)
    for i in range(3):
        np.testing.assert_allclose(np.asarray(grads)[:, i],
                                   jax.grad(loss, argnums=len(args) - 1)(*args[:-1],
                                                                         batched[:, i]),
                                   rtol=1e-5, atol=1e-6)


def test_integer_operands_have_zero_tangents_and_batch():
    ints = np.arange(6, dtype=np.int32).reshape(2, 3) * np.array([1, -1, 1], np.int32)
    float0 = np.zeros(ints.shape, jax.dtypes.float0)
    out, tangent = jax.jvp(lambda a: lax.stack([a, a]), (ints,), (float0,))
    assert tangent.dtype == jax.dtypes.float0 and tangent.shape == (2, 2, 3)
    (_, indices), (_, t_indices) = jax.jvp(lambda a: lax.approx_min_k(a, 1), (ints,), (float0,))
    assert t_indices.dtype == jax.dtypes.float0
    values, indices = jax.vmap(lambda a: lax.approx_min_k(a, 1), in_axes=1, out_axes=1)(ints)
    np.testing.assert_array_equal(values, np.sort(ints, 0)[:1])
    np.testing.assert_array_equal(indices, np.argsort(ints, 0, kind="stable")[:1])


def test_linear_ones_transpose_by_their_definition():
    ct = np.ones((2, 2, 3), np.float32)
    (got,) = jax.linear_transpose(lambda a: lax.stack([a, a]), X)(ct)
    np.testing.assert_allclose(got, 2 * ct[0])
    (got,) = jax.linear_transpose(lambda a: lax.tile(a, (3, 1)), X)(np.ones((6, 3), np.float32))
    np.testing.assert_allclose(got, 3 * np.ones_like(X))
    jaxpr = jax.make_jaxpr(jax.grad(lambda a: lax.tile(a, (2, 1)).sum()))(X)
    assert "tile" in str(jaxpr)


def test_weak_types_kept_eagerly_and_traced():
    assert lax.stack([1.0, 2.0]).weak_type
    assert jax.jit(lambda: lax.tile(1.0, ()))().weak_type
    assert all(u.weak_type for u in lax.unstack(lax.stack([1.0, 2.0])))


def test_rng_bit_generator_is_a_primitive_of_jax_params():
    fn = lambda k: lax.rng_bit_generator(k, (2, 3), np.uint8,  # noqa: E731
                                         lax.RandomAlgorithm.RNG_PHILOX)
    text = str(jax.make_jaxpr(fn)(KEY))
    assert "rng_bit_generator[\n      algorithm=RNG_PHILOX\n      dtype=uint8\n" \
           "      out_sharding=None\n      shape=(2, 3)\n    ]" in text
    new_key, bits = fn(KEY)
    assert new_key.dtype == np.uint32 and new_key.shape == (4,) and bits.dtype == np.uint8
    for got, want in zip(jax.jit(fn)(KEY), fn(KEY)):
        np.testing.assert_array_equal(got, want)
    keys = RNG.integers(0, 2 ** 32, size=(3, 4), dtype=np.uint32)
    for got, want in zip(jax.vmap(fn)(keys), zip(*[fn(k) for k in keys])):
        np.testing.assert_array_equal(got, np.stack(want))
    assert not (np.asarray(jax.vmap(fn)(keys)[1][0]) == np.asarray(fn(keys[1])[1])).all()


def test_reduce_of_a_monoid_is_its_reduction_and_a_closure_over_tracers_folds_in_place():
    assert "reduce_sum" in str(jax.make_jaxpr(lambda a: lax.reduce(a, 0.0, lax.add, (0,)))(X))
    fn = lambda a, c: lax.reduce(a, 0.0, lambda s, e: s * c + e, (1,))  # noqa: E731
    want = (X[:, 0] * 2 + X[:, 1]) * 2 + X[:, 2]
    np.testing.assert_allclose(jax.jit(fn)(X, 2.0), want, rtol=1e-6)
    assert "reduce[" not in str(jax.make_jaxpr(fn)(X, 2.0))


def test_reduce_exports_as_its_definition():
    from tinyjax import export
    fn = jax.jit(CASES["reduce"][0])
    exported = export.deserialize(export.export(fn)(X, X + 2).serialize())
    _close(exported.call(X, X + 2), fn(X, X + 2))


def _reduce_window_ref(x, init, op, window, strides, padding, base_dilation, window_dilation):
    """XLA's reduce_window by loops: each window folds its operand elements (the padding
    and the holes of base dilation are skipped) into ``init``."""
    dilated = [(d - 1) * b + 1 for d, b in zip(x.shape, base_dilation)]
    spans = [(k - 1) * r + 1 for k, r in zip(window, window_dilation)]
    out_shape = [(lo + d + hi - s) // st + 1 for d, (lo, hi), s, st in
                 zip(dilated, padding, spans, strides)]
    out = np.empty(out_shape, x.dtype)
    for o in np.ndindex(*out_shape):
        acc = init
        for w in np.ndindex(*window):
            pos = [oi * st + wi * r - lo for oi, st, wi, r, (lo, _) in
                   zip(o, strides, w, window_dilation, padding)]
            if all(0 <= p < dd and p % b == 0 for p, dd, b in zip(pos, dilated, base_dilation)):
                acc = op(acc, x[tuple(p // b for p, b in zip(pos, base_dilation))])
        out[o] = acc
    return out


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b + 1])
def test_reduce_window_padding_and_dilations_skip_as_xla(op):
    geometry = ((2, 2), (1, 2), ((1, 0), (0, 1)), (1, 2), (2, 1))
    x = RNG.normal(size=(3, 4)).astype(np.float32)
    got = lax.reduce_window(x, 2.0, op, *geometry)
    np.testing.assert_allclose(got, _reduce_window_ref(x, np.float32(2), op, *geometry),
                               rtol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda a: lax.reduce_window(a, 2.0, op, *geometry))(x),
                               got, rtol=1e-6)
