"""jit's options as JAX has them: static arguments by position or by name, wrappers of one
function sharing their compiled programs, clear_caches, and the flags that change jit."""
import logging

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


def scaled(x, n):
    return x * n if n > 3 else x  # Python control flow on n: n must be static


@pytest.mark.parametrize("how", [dict(static_argnames=["n"]), dict(static_argnames="n"),
                                 dict(static_argnums=1), dict(static_argnums=(-1,))])
def test_static_argument_by_position_or_name(how):
    f = jax.jit(scaled, **how)
    assert int(f(10, 20)) == 200 and int(f(10, n=20)) == 200 and int(f(10, 2)) == 10


def test_static_argnums_and_argnames_both_given_are_taken_as_given():
    # as JAX's: no inference from the signature (a wrapper's signature, as functools.wraps
    # gives it, may name another function's arguments)
    def g(x, n, m):
        return x * n if n > 3 else x

    f = jax.jit(g, static_argnums=1, static_argnames="m")
    assert f.static_argnums == (1,) and f.static_argnames == ("m",)
    assert int(f(10, 20, m=object())) == 200  # m by name: static (not an array)
    with pytest.raises(TypeError):  # m by position: not static, and not an array
        f(10, 20, object())
    inferred = jax.jit(g, static_argnames="n")
    assert inferred.static_argnums == (1,)


def test_static_argument_left_to_its_default():
    def g(x, n=5):
        return x * n if n > 3 else x
    assert int(jax.jit(g, static_argnums=1)(10)) == 50


def test_static_argument_errors():
    with pytest.raises(ValueError, match="only accepts 2 positional arguments"):
        jax.jit(scaled, static_argnums=3)
    with pytest.raises(ValueError, match="invalid argnames {'m'}"):
        jax.jit(scaled, static_argnames="m")
    with pytest.raises(ValueError, match="Non-hashable static arguments"):
        jax.jit(lambda x, s: x, static_argnums=1)(1.0, [1])
    # *args and **kwargs accept any position or name
    assert jax.jit(lambda *a: a[0], static_argnums=3)(1.0) == 1.0


def test_wrappers_of_one_function_share_the_trace():
    traced = []

    def f(x):
        traced.append(1)
        return x + 1

    jax.jit(f)(1.0)
    jax.jit(f)(2.0)  # the second wrapper reuses the first trace, as in JAX
    assert len(traced) == 1
    jax.jit(f, static_argnums=0)(3.0)  # other options: another cache
    assert len(traced) == 2
    jax.clear_caches()
    jax.jit(f)(1.0)
    assert len(traced) == 3


def test_pytree_and_python_scalar_arguments_trace_once_per_structure():
    traced = []

    @jax.jit
    def step(i, state, batch):
        traced.append(1)
        w, (m, flag) = state
        return i * w + m, batch["x"].sum() * flag

    w, m = jnp.ones(3), jnp.arange(3.0)
    batch = {"x": jnp.ones((2, 2))}
    for i in range(4):               # new int values: the same compiled step
        out, s = step(i, (w, (m, True)), batch)
        np.testing.assert_allclose(out, i * np.ones(3) + np.arange(3.0))
        assert float(s) == 4.0 and out.dtype == np.float32
    assert len(traced) == 1
    step(1.5, (w, (m, False)), batch)          # a float step: another signature
    step(0, (w, (m, True)), {"x": jnp.ones((3, 2))})   # another shape
    step(0, [w, (m, True)], batch)             # another structure
    assert len(traced) == 4
    with pytest.raises(OverflowError, match="too large to convert to int32"):
        step(2 ** 40, (w, (m, True)), batch)


def test_cache_follows_x64_flag():
    f = jax.jit(lambda: jnp.arange(3))
    assert f().dtype == np.int32
    with jax.enable_x64(True):
        assert f().dtype == np.int64
    assert f().dtype == np.int32


def test_disable_jit_runs_python():
    seen = []
    with jax.disable_jit():
        jax.jit(lambda x: seen.append(type(x).__name__) or x)(1.0)
        out = lax.while_loop(lambda c: c < 3, lambda c: seen.append(c) or c + 1, 0)
        carry, ys = lax.scan(lambda c, x: (c + x, c * 2), 0.0, jnp.arange(3.0))
        branch = lax.cond(True, lambda: "python", lambda: "other")
        # an abstract predicate under jit still stages the loop
        staged = jax.jit(lambda x: lax.while_loop(lambda c: c < x, lambda c: c + 1, 0.0))
        assert float(staged(2.5)) == 3.0
    assert seen == ["float", 0, 1, 2] and out == 3 and branch == "python"
    assert float(carry) == 3.0 and np.asarray(ys).tolist() == [0.0, 0.0, 2.0]
    assert not jax.config.jax_disable_jit


def test_debug_nans_eager_and_jit(capsys):
    f = lambda x: jnp.log(-3 * jnp.square(x))  # noqa: E731
    with jax.debug_nans(True):
        with pytest.raises(FloatingPointError, match=r"invalid value \(nan\) encountered in log"):
            f(5.0)
        with pytest.raises(FloatingPointError, match="encountered in log"):
            jax.jit(f)(5.0)
        assert "de-optimized" in capsys.readouterr().out
        assert float(jax.jit(jnp.exp)(0.0)) == 1.0
    assert np.isnan(float(jax.jit(f)(5.0)))  # the flag is off again
    with jax.debug_infs(True):
        with pytest.raises(FloatingPointError, match=r"\(inf\)"):
            jax.jit(lambda x: 1.0 / x)(0.0)


def test_log_compiles(caplog):
    with caplog.at_level(logging.WARNING, logger="tinyjax"), jax.log_compiles(True):
        jax.jit(lambda x: x * 3)(np.float32(1.0))
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Finished tracing + transforming <lambda>") for m in messages)
    assert any("Compiling <lambda> with global shapes and types [ShapedArray(float32[])]"
               in m for m in messages)


def test_flag_states():
    assert jax.debug_nans.value is False
    with jax.default_matmul_precision("highest"):
        assert jax.config.jax_default_matmul_precision == "highest"
    assert jax.config.jax_default_matmul_precision is None
    jax.config.update("jax_debug_infs", True)
    try:
        assert jax.debug_infs.value
    finally:
        jax.config.update("jax_debug_infs", False)


def test_donated_arguments_are_deleted_when_an_output_can_take_them():
    import warnings

    def add(x, y):
        return x + y

    x, y = jax.device_put(np.ones((2, 3))), jax.device_put(np.ones((2, 3)))
    donating = jax.jit(add, donate_argnums=(1,))
    np.testing.assert_array_equal(np.asarray(donating(x, y)), np.full((2, 3), 2.0))
    assert y.is_deleted() and not x.is_deleted()
    with pytest.raises(RuntimeError, match=r"Array has been deleted with shape=float32\[2,3\]"):
        y + 1
    with pytest.raises(ValueError, match="Buffer has been deleted or donated"):
        donating(x, y)  # the compiled program exists: its argument check, as JAX
    with pytest.raises(RuntimeError, match="Array has been deleted"):
        jax.jit(add, donate_argnums=(0, 1))(x, y)
    small = jax.device_put(np.ones((1, 3)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        donating(x, small)  # no output of its type: kept, with JAX's warning
    assert not small.is_deleted()
    assert any("Some donated buffers were not usable" in str(w.message) for w in caught)
    xs = [jax.device_put(np.ones((2, 3))), jax.device_put(np.ones((3, 4)))]
    jax.jit(lambda xs: [a + 1 for a in xs], donate_argnames="xs")(xs=xs)
    assert all(a.is_deleted() for a in xs)
    info = jax.jit(add, donate_argnums=1).trace(x, x).args_info
    assert [a.donated for a in info[0]] == [False, True]


def test_jitted_function_repr_and_signature_are_jaxs():
    import inspect

    def f(x, y=2):
        return x

    g = jax.jit(f)
    assert repr(g) == f"<PjitFunction of {f!r}>" and type(g).__name__ == "PjitFunction"
    assert str(inspect.signature(g, follow_wrapped=False)) == "(x, y=2)"
    assert jax.jit(max).__signature__ is None  # (a builtin without a signature)
