"""custom_gradient, closure_convert, linear_transpose, named_scope/named_call, live_arrays,
print_environment_info, effects_barrier."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax


def test_custom_gradient():
    @jax.custom_gradient
    def clipped_square(x):
        return x ** 2, lambda g: (jnp.clip(g * 2 * x, -1.0, 1.0),)

    assert float(clipped_square(3.0)) == 9.0
    assert float(jax.grad(clipped_square)(3.0)) == 1.0
    assert float(jax.grad(clipped_square)(0.25)) == 0.5
    assert float(jax.jit(jax.grad(clipped_square))(-3.0)) == -1.0

    @jax.custom_gradient
    def mul(x, y):
        return x * y, lambda g: (g * y, g * x)

    gx, gy = jax.grad(mul, argnums=(0, 1))(2.0, 5.0)
    assert (float(gx), float(gy)) == (5.0, 2.0)


def test_closure_convert_hoists_traced_floats():
    def outer(a):
        fn = lambda x: x * a + 1.0  # noqa: E731  (closes over the traced a)
        converted, hoisted = jax.closure_convert(fn, jnp.ones(2))
        assert len(hoisted) == 1
        return converted(jnp.full(2, 3.0), *hoisted).sum()

    assert float(jax.grad(outer)(2.0)) == 6.0
    conv, hoisted = jax.closure_convert(lambda x: x + np.float32(1), 1.0)
    assert hoisted == [] and float(conv(2.0)) == 3.0
    with pytest.raises(TypeError, match="same Pytree structure"):
        conv((2.0,))


def test_linear_transpose_matches_the_matrix_transpose():
    A = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    t = jax.linear_transpose(lambda x: jnp.asarray(A) @ x, jnp.zeros(4))
    ct = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(np.asarray(t(ct)[0]), A.T @ ct, rtol=1e-6)
    cum = jax.jit(jax.linear_transpose(jnp.cumsum, jnp.ones(4)))
    assert np.asarray(cum(jnp.ones(4))[0]).tolist() == [4.0, 3.0, 2.0, 1.0]
    with pytest.raises(TypeError, match="cotangent type does not match"):
        t(jnp.ones(4))
    with pytest.raises(TypeError, match="float or complex"):
        jax.linear_transpose(lambda x: x, jnp.ones(2, np.int32))


def test_named_scope_and_named_call_record_names():
    with jax.named_scope("outer"):
        with jax.named_scope("inner"):
            jaxpr = jax.make_jaxpr(lambda x: x * 2)(1.0)
    assert jaxpr.jaxpr.eqns[0].source_info.name_stack == ("outer", "inner")
    f = jax.named_call(lambda x: lax.sin(x), name="my_sin")
    assert jax.make_jaxpr(f)(1.0).jaxpr.eqns[0].source_info.name_stack == ("my_sin",)
    assert float(f(0.0)) == 0.0
    with pytest.raises(TypeError, match="must be a string"):
        with jax.named_scope(3):
            pass


def test_live_arrays_environment_and_barrier():
    x = jnp.arange(3.0)
    assert any(a is x for a in jax.live_arrays())
    assert any(a is x for a in jax.live_arrays("cpu"))
    info = jax.print_environment_info(return_string=True)
    assert "jax API: 0.10.2" in info and "numpy:" in info
    jax.effects_barrier()
