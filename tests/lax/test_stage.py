"""lax.stage binds stage_p, which (as JAX's) lifts its operand into the current trace without
an equation; the identity under jit, grad and vmap; JAX's error for a non-JAX value."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.core import Primitive


def test_stage_p_is_the_primitive_behind_stage():
    assert isinstance(lax.stage_p, Primitive) and lax.stage_p.name == "stage"
    out = lax.stage_p.bind(2)
    assert isinstance(out, jax.Array) and out.dtype == np.int32 and out.weak_type
    jaxpr = jax.make_jaxpr(lambda x: lax.stage(x) + lax.stage(np.float32(2)))(np.float32(1))
    assert [e.primitive.name for e in jaxpr.eqns] == ["add"]


def test_identity_under_the_transforms():
    x = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(jax.jit(lambda v: lax.stage(v) * 2)(x), 2 * x)
    np.testing.assert_array_equal(jax.grad(lambda v: (lax.stage(v) ** 2).sum())(x), 2 * x)
    np.testing.assert_array_equal(jax.vmap(lambda v: lax.stage(v) + v[0])(x[:, None]),
                                  2 * x[:, None])
    np.testing.assert_array_equal(jax.jit(lambda: lax.stage(np.ones(2, np.float32)))(),
                                  np.ones(2))


def test_error_for_a_value_jax_cannot_take():
    with pytest.raises(TypeError, match="Error interpreting argument to stage as a JAX value"):
        jax.jit(lambda: lax.stage(object()))()
    assert jnp.asarray(lax.stage([1, 2])).shape == (2,)
