"""jax.experimental: primal_tangent_dtype (made and inspected; arrays cannot take it),
EArray (an extended-dtype array around its data), cur_qdd."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax.experimental import EArray, cur_qdd, primal_tangent_dtype


def test_primal_tangent_dtype():
    dt = primal_tangent_dtype(jnp.int8, jnp.bfloat16)
    assert str(dt) == "PrimalTangentDType{i8/bf16}"
    assert dt.primal_dtype == np.dtype(np.int8) and dt.tangent_dtype == jnp.bfloat16
    assert jax.dtypes.issubdtype(dt, jax.dtypes.extended)
    assert repr(primal_tangent_dtype("int8", "float32", name="q8")) == "q8"
    with pytest.raises(NotImplementedError, match="extended dtype"):
        jnp.arange(3, dtype=jnp.int8).astype(dt)


def test_earray_forwards_to_aval_and_data():
    data = jnp.arange(6.0).reshape(2, 3)
    e = EArray(jax.core.ShapedArray((2, 3), np.float32), data)
    assert (e.shape, e.ndim, e.size, len(e)) == ((2, 3), 2, 6, 2)
    assert e.dtype == np.float32 and isinstance(e, jax.Array)
    assert e.devices() == data.devices() and e.sharding == data.sharding
    assert repr(e) == "E" + repr(data)
    assert e.block_until_ready() is e
    with pytest.raises(TypeError, match="len"):
        len(EArray(jax.core.ShapedArray((), np.float32), jnp.float32(1)))


def test_cur_qdd_of_values_without_any():
    with pytest.raises(AttributeError, match="cur_qdd"):
        cur_qdd(jnp.ones(2))

    class Holder:  # a value of a mutable high-level type answers with its data
        def cur_qdd(self):
            return ("shape", 3)
    assert cur_qdd(Holder()) == ("shape", 3)
