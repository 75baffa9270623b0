"""Ahead-of-time stages: jit(f).trace / .lower / .compile."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.sharding import SingleDeviceSharding


def f(x, y, scale):
    return {"s": (x @ y).sum() * scale, "m": x.mean(0)}


def test_trace_lower_compile():
    x, y = jnp.ones((2, 3)), jnp.ones((3, 4))
    wrapped = jax.jit(f, static_argnames="scale")
    assert isinstance(wrapped, jax.stages.Wrapped)
    traced = wrapped.trace(x, y, scale=2.0)
    assert isinstance(traced, jax.stages.Traced) and traced.fun_name == "f"
    assert "dot_general" in str(traced.jaxpr)
    assert traced.out_info == {"s": jax.ShapeDtypeStruct((), np.float32),
                               "m": jax.ShapeDtypeStruct((3,), np.float32)}
    (ax, ay), kw = traced.args_info
    assert ax.shape == (2, 3) and ay.dtype == np.float32 and not ax.donated and kw == {}
    lowered = traced.lower()
    assert "dot_general" in lowered.as_text()
    compiled = lowered.compile()
    assert isinstance(compiled, jax.stages.Compiled)
    out = compiled(x, y)
    assert float(out["s"]) == 48.0 and np.asarray(out["m"]).tolist() == [1.0] * 3
    assert compiled.as_text()  # the generated source
    dev = jax.devices()[0]
    assert compiled.output_shardings == {"s": SingleDeviceSharding(dev),
                                         "m": SingleDeviceSharding(dev)}
    with pytest.raises(TypeError, match="compiled with float32\\[2,3\\] and called with "
                                        "float32\\[2,2\\]"):
        compiled(jnp.ones((2, 2)), y)
    with pytest.raises(TypeError, match="does not match the input pytree it was called with"):
        compiled((x,), y)


def test_compiling_ahead_of_time_fills_the_cache():
    traced = []

    def g(x):
        traced.append(1)
        return x * 2

    jg = jax.jit(g)
    jg.lower(jnp.ones(3)).compile()
    assert float(jg(jnp.ones(3))[0]) == 2.0 and len(traced) == 1


def test_compile_takes_xla_option_names_and_rejects_others():
    lowered = jax.jit(lambda x: 2 * x + 1).lower(jnp.ones(2))
    compiled = lowered.compile(compiler_options={"xla_gpu_autotune_level": "0"})
    assert np.asarray(compiled(jnp.ones(2))).tolist() == [3.0, 3.0]
    with pytest.raises(jax.errors.JaxRuntimeError,
                       match="No such compile option: 'not an option'"):
        lowered.compile(compiler_options={"not an option": "1"})


def test_cost_analysis_counts_products():
    a, b = jnp.ones((8, 16)), jnp.ones((16, 4))
    cost = jax.jit(lambda a, b: a @ b).lower(a, b).cost_analysis()
    assert cost["flops"] == 2 * 8 * 16 * 4
    assert cost["bytes accessed"] == 4 * (8 * 16 + 16 * 4 + 8 * 4)


def test_cost_analysis_counts_no_flops_for_data_movement():
    # as XLA's: a broadcast, reshape, transpose, slice or concatenation computes nothing;
    # elementwise operations count one per element, a sum of k elements k - 1
    x, b = jnp.ones((8, 16)), jnp.ones(16)

    def flops(f):
        return jax.jit(f).lower(x, b).cost_analysis()["flops"]

    assert flops(lambda x, b: x + b) == 8 * 16
    assert flops(lambda x, b: x.reshape(16, 8).T * 2) == 8 * 16
    assert flops(lambda x, b: jnp.concatenate([x, x[:4]]) + 1) == 12 * 16
    assert flops(lambda x, b: x[:4].sum()) == 4 * 16 - 1
    assert flops(lambda x, b: x.sum(0)) == 8 * 16 - 16
