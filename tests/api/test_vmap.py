"""vmap against explicit Python loops; in_axes/out_axes and their errors."""
import numpy as np
import pytest

import tinyjax as jax
from tinyjax import lax


def loop(f, *args, in_axes=0):
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    n = next(np.shape(a)[ax] for a, ax in zip(args, axes) if ax is not None)
    outs = [f(*[a if ax is None else np.take(a, i, axis=ax) for a, ax in zip(args, axes)])
            for i in range(n)]
    return np.stack([np.asarray(o) for o in outs])


def test_vmap_matches_loop_with_mixed_axes():
    f = lambda x, y: lax.sin(x) * y + 1.0
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((3,)).astype(np.float32)
    np.testing.assert_allclose(jax.vmap(f, in_axes=(1, None))(x, y),
                               loop(f, x, y, in_axes=(1, None)), rtol=1e-6)


def test_out_axes_none_for_a_batched_output_names_it():
    # JAX's messages: the output's path for an unnamed axis, the axis name otherwise
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match=r"^at vmap out_axes\['b'\]\[1\], got axis spec "
                                         r"None but output was batched on axis 0$"):
        jax.vmap(lambda v: {"a": v, "b": (1.0, v)}, out_axes={"a": 0, "b": (0, None)})(x)
    with pytest.raises(ValueError, match=r"^at vmap out_axes, got axis spec None"):
        jax.vmap(lambda v: v, out_axes=None)(x)
    with pytest.raises(ValueError, match=r"^vmap has mapped output \(axis_name=i\) but "
                                         r"out_axes is None$"):
        jax.vmap(lambda v: v, out_axes=None, axis_name="i")(x)
    assert float(jax.vmap(lambda v: 2.0, out_axes=None)(x)) == 2.0


def test_out_axes_and_negative_axes():
    x = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    out = jax.vmap(lambda r: r * 2.0, in_axes=-1, out_axes=1)(x)
    np.testing.assert_allclose(out, x * 2)


def test_eqn_count_does_not_depend_on_batch_size():
    f = jax.vmap(lambda x: lax.reduce_sum(lax.exp(x) * x, (0,)))
    n1 = len(jax.make_jaxpr(f)(np.ones((2, 5), np.float32)).eqns)
    n2 = len(jax.make_jaxpr(f)(np.ones((7, 5), np.float32)).eqns)
    assert n1 == n2


def test_per_example_gradients_match_loop():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3,)).astype(np.float32)
    xs = rng.standard_normal((5, 3)).astype(np.float32)
    ys = rng.standard_normal((5,)).astype(np.float32)
    loss = lambda w, x, y: (lax.reduce_sum(w * x, (0,)) - y) ** 2
    per_ex = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
    expected = np.stack([np.asarray(jax.grad(loss)(w, x, y)) for x, y in zip(xs, ys)])
    np.testing.assert_allclose(per_ex, expected, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(
        w, xs, ys), expected, rtol=1e-5)


def test_nested_vmap_and_grad_of_vmap():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(jax.vmap(jax.vmap(lambda v: v * v))(x), x * x)
    g = jax.grad(lambda x: lax.reduce_sum(jax.vmap(lax.sin)(x), (0, 1)))(x)
    np.testing.assert_allclose(g, np.cos(x), rtol=1e-6)


def test_pytree_in_axes_prefix():
    tree = {"a": np.ones((2, 3), np.float32), "b": np.ones(3, np.float32)}
    out = jax.vmap(lambda t: t["a"] + t["b"], in_axes=({"a": 0, "b": None},))(tree)
    assert out.shape == (2, 3)


def test_inconsistent_sizes_error():
    with pytest.raises(ValueError, match="vmap got inconsistent sizes for array axes to be "
                                         "mapped"):
        jax.vmap(lambda x, y: x + y)(np.ones(3, np.float32), np.ones(4, np.float32))


def test_axis_out_of_range_error():
    with pytest.raises(ValueError, match="vmap was requested to map its argument along axis 2"):
        jax.vmap(lambda x: x, in_axes=2)(np.ones(3, np.float32))


def test_all_none_in_axes_error():
    with pytest.raises(ValueError, match="at least one non-None value in in_axes"):
        jax.vmap(lambda x: x, in_axes=None)(np.ones(3, np.float32))


def test_in_axes_length_mismatch_error():
    with pytest.raises(ValueError, match="len\\(in_axes\\)=2, len\\(args\\)=1"):
        jax.vmap(lambda x: x, in_axes=(0, 0))(np.ones(3, np.float32))


def test_batched_scalar_meets_unbatched_vector():
    out = jax.vmap(lambda a, b: a * b, in_axes=(None, 0))(np.ones(2, np.float32),
                                                         np.array([1.0, 2.0, 3.0], np.float32))
    np.testing.assert_allclose(out, [[1, 1], [2, 2], [3, 3]])
    outer = jax.vmap(jax.vmap(lambda a, b: a * b, in_axes=(None, 0)), in_axes=(0, None))
    np.testing.assert_allclose(outer(np.array([1.0, 2.0], np.float32),
                                     np.array([1.0, 2.0, 3.0], np.float32)),
                               np.outer([1, 2], [1, 2, 3]))


def test_vmap_of_jacfwd_and_jacrev_match_loops():
    f = lambda x: lax.sin(x) * lax.reduce_sum(x * x, (0,))
    xs = np.random.default_rng(3).standard_normal((4, 3)).astype(np.float32)
    expected = np.stack([np.asarray(jax.jacfwd(f)(x)) for x in xs])
    np.testing.assert_allclose(jax.vmap(jax.jacfwd(f))(xs), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jax.vmap(jax.jacrev(f))(xs), expected, rtol=1e-5, atol=1e-6)


def test_keyword_arguments_are_mapped_over_their_leading_axis():
    # in_axes covers the positional arguments only; keyword ones map over axis 0 (as JAX)
    x, m = np.arange(6.0, dtype=np.float32).reshape(3, 2), np.arange(10.0, dtype=np.float32)
    m = m.reshape(2, 5)
    out = jax.vmap(lambda x, *, m: x * m.sum(), in_axes=1)(x, m=m)
    np.testing.assert_allclose(out, np.stack([x[:, i] * m[i].sum() for i in range(2)]))
    with pytest.raises(ValueError, match="inconsistent sizes"):
        jax.vmap(lambda x, *, m: x * m.sum(), in_axes=1)(x, m=m.T)
