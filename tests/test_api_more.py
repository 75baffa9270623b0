"""More of JAX's top-level API: the flags as context managers, fwd_and_bwd,
make_user_context, copy_to_host_async, jax.monitoring, jax.profiler, jax.dlpack,
jax.custom_batching, and a jitted function called while staging (one ``jit`` equation)."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.custom_batching import custom_vmap, sequential_vmap


def test_flags_as_context_managers():
    assert jax.enable_checks.value is False
    with jax.enable_checks(True):
        assert jax.config.jax_enable_checks is True
        assert float(jax.jit(lambda x: x * 3)(2.0)) == 6.0  # the jaxpr is typechecked
    assert jax.config.jax_enable_checks is False
    with jax.no_tracing(True):
        with pytest.raises(RuntimeError, match="no_tracing"):
            jax.jit(lambda x: x - 1)(2.0)
    with jax.transfer_guard("disallow"):
        assert jax.config.jax_transfer_guard_host_to_device == "disallow"
    assert jax.config.jax_transfer_guard_host_to_device is None
    with jax.checking_leaks():
        assert jax.check_tracer_leaks.value is True
    with jax.default_device(jax.devices("cpu")[0]):
        assert jnp.ones(2).device.platform == "cpu"
    with pytest.raises(NotImplementedError, match="standard type promotion"):
        jax.config.update("jax_numpy_dtype_promotion", "strict")
    with pytest.raises(ValueError):
        jax.config.update("jax_legacy_prng_key", "sometimes")
    assert jax.float0 == jax.dtypes.float0


def test_fwd_and_bwd_matches_vjp():
    def f(x, w):
        return jnp.tanh(x @ w).sum()

    x = jnp.asarray(np.random.RandomState(0).randn(3, 4).astype(np.float32))
    w = jnp.asarray(np.random.RandomState(1).randn(4, 2).astype(np.float32))
    fwd, bwd = jax.fwd_and_bwd(f, argnums=(0, 1))
    y, residuals = fwd(x, w)
    gx, gw = bwd(residuals, jnp.float32(1.0))
    want_y, pullback = jax.vjp(f, x, w)
    wx, ww = pullback(jnp.float32(1.0))
    np.testing.assert_allclose(float(y), float(want_y), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gx), np.asarray(wx), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(gw), np.asarray(ww), rtol=1e-4, atol=1e-6)
    fwd1, bwd1 = jax.fwd_and_bwd(lambda x: (jnp.sin(x), "aux"), argnums=0, has_aux=True,
                                 jitted=False)
    out, res, aux = fwd1(1.0)
    assert aux == "aux" and np.isclose(float(bwd1(res, 1.0)), np.cos(1.0))


def test_user_context_is_part_of_the_jit_key():
    traces = []
    ctx = jax.make_user_context(None)

    @jax.jit
    def f(x):
        traces.append(ctx.value)
        return x * 2

    with ctx(1):
        f(1.0)
        f(1.0)
    with ctx(2):
        f(1.0)
    assert traces == [1, 2] and ctx.value is None


def test_copy_to_host_async_and_dlpack():
    x = jnp.arange(4.0)
    assert jax.copy_to_host_async([x])[0] is x
    np.testing.assert_array_equal(np.from_dlpack(x), np.arange(4.0))
    y = jax.dlpack.from_dlpack(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert y.dtype == np.int32 and y.shape == (2, 3)
    assert jax.dlpack.is_supported_dtype(jnp.bfloat16)
    with pytest.raises(TypeError):
        jax.dlpack.from_dlpack([1, 2])


def test_monitoring_listeners_and_compile_events():
    events, durations = [], []

    def on_event(event, **kw):
        events.append((event, kw))

    def on_duration(event, duration, **kw):
        durations.append(event)

    jax.monitoring.register_event_listener(on_event)
    jax.monitoring.register_event_duration_secs_listener(on_duration)
    try:
        jax.monitoring.record_event("/my/event", step=3)
        jax.jit(lambda x: x + 41)(1.0)
    finally:
        jax.monitoring.unregister_event_listener(on_event)
        jax.monitoring.unregister_event_duration_listener(on_duration)
    assert events == [("/my/event", {"step": 3})]
    assert "/jax/core/compile/jaxpr_trace_duration" in durations
    assert "/jax/core/compile/backend_compile_duration" in durations
    with pytest.raises(AssertionError):
        jax.monitoring.unregister_event_listener(on_event)


def test_profiler_annotations_run_and_tracing_is_not_there():
    with jax.profiler.TraceAnnotation("region", detail=1):
        pass
    with jax.profiler.StepTraceAnnotation("train", step_num=3):
        pass
    assert jax.profiler.annotate_function(lambda a: a + 1, name="inc")(1) == 2
    with pytest.raises(NotImplementedError):
        jax.profiler.start_trace("/tmp/never")
    with pytest.raises(NotImplementedError):
        with jax.profiler.trace("/tmp/never"):
            pass


def test_custom_vmap_rule_under_vmap_jit_and_grad():
    seen = []

    @custom_vmap
    def f(x, y):
        return jnp.sin(x) * y

    @f.def_vmap
    def rule(axis_size, in_batched, x, y):
        seen.append((axis_size, tuple(in_batched)))
        return jnp.sin(x) * y, any(in_batched)

    xs, ys = jnp.linspace(0.0, 1.0, 5), jnp.arange(5.0)
    loop = np.array([np.sin(a) * b for a, b in zip(np.asarray(xs), np.asarray(ys))])
    np.testing.assert_allclose(np.asarray(jax.vmap(f)(xs, ys)), loop, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(xs, ys)), loop, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(jax.vmap(f, (0, None))(xs, 2.0)),
                               2 * np.sin(np.asarray(xs)), rtol=1e-6)
    assert seen[0] == (5, (True, True)) and (5, (True, False)) in seen
    assert np.isclose(float(jax.grad(f)(0.3, 2.0)), 2 * np.cos(0.3))
    out = jax.vmap(jax.vmap(f))(jnp.ones((2, 3)), jnp.ones((2, 3)))
    np.testing.assert_allclose(np.asarray(out), np.full((2, 3), np.sin(1.0)), rtol=1e-6)

    @custom_vmap
    def bad(x):
        return x

    bad.def_vmap(lambda n, b, x: (x, False))  # claims an unbatched result
    with pytest.raises(ValueError, match="expected"):
        jax.vmap(bad)(jnp.ones(3))


def test_sequential_vmap_matches_a_loop():
    w = jnp.asarray([1.0, -2.0, 3.0])
    g = sequential_vmap(lambda x, s: jnp.dot(x, w) * s)
    xs = jnp.asarray(np.random.RandomState(0).randn(4, 3).astype(np.float32))
    want = np.asarray(xs) @ np.asarray(w) * 0.5
    np.testing.assert_allclose(np.asarray(jax.vmap(g, (0, None))(xs, 0.5)), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(g, (0, None)))(xs, 0.5)), want,
                               rtol=1e-5)


def test_jit_called_while_staging_is_one_jit_equation():
    def outer(a):
        @jax.jit
        def inner(x):
            return x + a * jnp.ones(1)
        return a + inner(a - 2.0)

    text = str(jax.make_jaxpr(outer)(5.0))
    assert """    c:f32[1] = jit[
      name=inner
      jaxpr={ lambda ; a:f32[] b:f32[]. let
          d:f32[1] = broadcast_in_dim 1.0:f32[]""" in text
    assert "          c:f32[1] = add g f\n        in (c,) }\n    ] a b" in text
    for f in (outer, jax.jit(outer)):
        np.testing.assert_allclose(np.asarray(f(5.0)), [13.0])
    scalar = lambda a: outer(a)[0]
    eps = 1e-3
    fd = (scalar(5.0 + eps) - scalar(5.0 - eps)) / (2 * eps)
    for g in (jax.grad(scalar), jax.jit(jax.grad(scalar))):
        np.testing.assert_allclose(float(g(5.0)), float(fd), rtol=1e-3)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(outer))(jnp.arange(3.0))),
                               [[-2.0], [1.0], [4.0]])
    # inside a loop body, under reverse mode
    step = jax.jit(lambda c, x: jnp.sin(c) * x)

    def loss(c0):
        c, _ = lax.scan(lambda c, x: (step(c, x), None), c0, jnp.arange(1.0, 4.0))
        return c

    def loss_eager(c0):
        c = c0
        for x in (1.0, 2.0, 3.0):
            c = jnp.sin(c) * x
        return c

    np.testing.assert_allclose(float(jax.jit(jax.grad(loss))(0.7)),
                               float(jax.grad(loss_eager)(0.7)), rtol=1e-5)


def test_linear_call_uses_its_transpose():
    from tinyjax.custom_derivatives import linear_call

    def div_add(x, denom):
        return x + linear_call(lambda r, x: x / r, lambda r, t: t / r, denom, x)

    def transpose(f, example):
        return lambda y: jax.linear_transpose(f, example)(y)[0]

    assert float(div_add(9.0, 3.0)) == 12.0
    assert float(transpose(lambda x: div_add(x, 3.0), 1.0)(18.0)) == 24.0

    def custom_id(x):  # the identity, but its transpose multiplies by 7
        return linear_call(lambda _, x: x, lambda _, t: 7.0 * t, (), x)

    assert float(custom_id(1.0)) == 1.0
    assert float(transpose(custom_id, 1.0)(1.0)) == 7.0
    assert float(transpose(transpose(custom_id, 1.0), 1.0)(1.0)) == 1.0  # fun again
    assert float(jax.grad(custom_id)(3.0)) == 7.0  # reverse mode transposes
    assert float(jax.jit(jax.grad(custom_id))(3.0)) == 7.0
    np.testing.assert_array_equal(np.asarray(jax.vmap(custom_id)(jnp.arange(3.0))),
                                  [0.0, 1.0, 2.0])


def test_symbolic_zero_helpers_and_policy_answers():
    from tinyjax.ad_checkpoint import Offloadable, Recompute, Saveable, saved_residuals
    from tinyjax.custom_derivatives import (CustomVJPPrimal, SymbolicZero,
                                            custom_vjp_primal_tree_values, zero_from_primal)
    zs = zero_from_primal({"a": jnp.ones(3), "b": 2.0}, symbolic_zeros=True)
    assert isinstance(zs["a"], SymbolicZero) and zs["a"].shape == (3,)
    np.testing.assert_array_equal(np.asarray(zs["a"].instantiate()), np.zeros(3))
    dense = zero_from_primal(jnp.ones(2))
    np.testing.assert_array_equal(np.asarray(dense), np.zeros(2))
    tree = {"x": CustomVJPPrimal(1.0, True), "y": [CustomVJPPrimal(2.0, False)]}
    assert custom_vjp_primal_tree_values(tree) == {"x": 1.0, "y": [2.0]}

    def f(x):
        return jnp.sin(jnp.sin(x))

    counts = {}
    for answer in (Saveable, Recompute, Offloadable("device", "pinned_host")):
        g = jax.checkpoint(f, policy=lambda prim, *a, answer=answer, **k: answer)
        assert np.isclose(float(jax.grad(g)(1.0)), np.cos(np.sin(1.0)) * np.cos(1.0))
        counts[repr(answer)] = len(saved_residuals(g, 1.0))
    assert counts["Recompute"] < counts["Saveable"] == counts[
        "Offloadable(src='device', dst='pinned_host')"]


def test_ds_indexes_references_with_traced_starts():
    r = jax.new_ref(jnp.arange(10.0))
    assert jax.ds(2, 3) == slice(2, 5, 1) and jax.ds(4) == slice(None, 4)

    @jax.jit
    def scale(i):
        r[jax.ds(i, 2)] = r[jax.ds(i, 2)] * 10

    scale(3)
    want = np.arange(10.0)
    want[3:5] *= 10
    np.testing.assert_array_equal(np.asarray(r[...]), want)


def test_compilation_cache_dir_and_default_registry(tmp_path):
    from tinyjax.config import cache_dir
    from tinyjax.experimental.compilation_cache import compilation_cache as cc
    cc.set_cache_dir(tmp_path / "cache")
    try:
        assert cache_dir() == str(tmp_path / "cache")
        assert float(jax.jit(lambda x: x * 5)(2.0)) == 10.0
    finally:
        cc.reset_cache()
    assert jax.config.jax_compilation_cache_dir is None
    leaves, tree = jax.tree_util.default_registry.flatten({"a": 1, "b": (2, 3)})
    assert leaves == [1, 2, 3] and tree == jax.tree.structure({"a": 0, "b": (0, 0)})
