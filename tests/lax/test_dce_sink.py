"""dce_sink: no result, eagerly and under jit; its equations (one per leaf) survive
dead-code elimination with the computations of their operands, under grad, vmap and scan."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.jaxpr import dce_jaxpr
from tests.cuda_support import CUDA_PARAM


def _prims(jaxpr):
    return [e.primitive.name for e in jaxpr.eqns]


def test_returns_none_and_stages_one_equation_per_leaf():
    assert lax.dce_sink(1.0) is None and lax.dce_sink({"a": jnp.ones(2), "b": [3]}) is None
    jaxpr = jax.make_jaxpr(lambda x: lax.dce_sink([x, 2 * x]))(1.0)
    assert _prims(jaxpr) == ["mul", "dce_sink", "dce_sink"] and not jaxpr.out_avals
    assert "dce_sink[prevent_mlir_dce=False]" in str(jaxpr)
    flag = jax.make_jaxpr(lambda x: lax.dce_sink(x, prevent_mlir_dce=True))(1.0)
    assert flag.eqns[0].params == {"prevent_mlir_dce": True}


def test_dce_keeps_the_sink_and_its_operand():
    def f(x):
        lax.dce_sink(jnp.sin(x))
        _unused = jnp.cos(x)
        return x * 2
    jaxpr = jax.make_jaxpr(f)(1.0).jaxpr
    kept, _ = dce_jaxpr(jaxpr)
    assert _prims(kept) == ["sin", "dce_sink", "mul"]


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_under_jit_the_results_are_unchanged(device):
    x = jax.device_put(np.arange(3, dtype=np.float32), jax.devices(device)[0])

    def f(x):
        lax.dce_sink(jnp.exp(x))
        return x + 1
    np.testing.assert_array_equal(jax.jit(f)(x), np.arange(3) + 1)
    assert jax.jit(lambda x: lax.dce_sink(x))(x) is None


def test_under_grad_vmap_and_scan():
    def f(x):
        lax.dce_sink(jnp.sin(x))
        return x * 3
    assert float(jax.grad(f)(2.0)) == 3.0
    assert "dce_sink" in _prims(jax.make_jaxpr(jax.grad(f))(2.0))
    batched = jax.make_jaxpr(jax.vmap(f))(jnp.ones(4))
    assert "dce_sink" in _prims(batched)
    np.testing.assert_array_equal(jax.vmap(f)(jnp.arange(4.0)), 3 * np.arange(4.0))
    loop = jax.make_jaxpr(lambda x: lax.scan(lambda c, _: (f(c), None), x, None, length=2))(1.0)
    body = loop.eqns[0].params["jaxpr"]
    body = getattr(body, "jaxpr", body)
    assert "dce_sink" in _prims(body)
    assert jax.linear_transpose(f, 1.0)(1.0) == (3.0,)
