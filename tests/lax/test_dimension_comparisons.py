"""eq_to, le_to, lt_to: on concrete values the comparisons themselves -- against numpy,
eagerly and compiled on every device, batched against loops, zero derivatives, JAX's
errors and equation names."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tests.cuda_support import CUDA_PARAM

PRIMS = {"eq_to": (lax.eq_to_p, np.equal), "le_to": (lax.le_to_p, np.less_equal),
         "lt_to": (lax.lt_to_p, np.less)}


@pytest.mark.parametrize("name", sorted(PRIMS))
@settings(max_examples=15, deadline=None)
@given(a=st.lists(st.integers(-5, 5), min_size=1, max_size=6), b=st.integers(-5, 5))
def test_eager_values_are_numpys(name, a, b):
    prim, ref = PRIMS[name]
    x = np.array(a, np.int32)
    out = prim.bind(x, np.int32(b))
    assert out.dtype == np.bool_
    np.testing.assert_array_equal(out, ref(x, np.int32(b)))
    assert bool(prim.bind(3, 3)) == bool(ref(3, 3))  # on plain Python sizes


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
@pytest.mark.parametrize("name", sorted(PRIMS))
def test_compiled_batched_and_differentiated(name, device):
    prim, ref = PRIMS[name]
    x = np.array([1.0, 2.0, 3.0, 2.5], np.float32)
    y = np.array([2.0, 2.0, 1.0, 2.5], np.float32)
    xd, yd = (jax.device_put(v, jax.devices(device)[0]) for v in (x, y))
    np.testing.assert_array_equal(jax.jit(prim.bind)(xd, yd), ref(x, y))
    assert f"{name} " in str(jax.make_jaxpr(prim.bind)(x, y))
    rows = np.stack([x, y])
    np.testing.assert_array_equal(jax.vmap(prim.bind, (0, None))(rows, y),
                                  np.stack([ref(r, y) for r in rows]))
    g = jax.grad(lambda v: jnp.where(prim.bind(v, y), v, 0.0).sum())(x)
    np.testing.assert_array_equal(g, ref(x, y).astype(np.float32))


def test_errors():
    with pytest.raises(TypeError, match="lt_to requires arguments to have the same dtypes"):
        lax.lt_to_p.bind(np.float32(1), np.int32(1))
    with pytest.raises(TypeError, match="le_to does not accept dtype c64"):
        lax.le_to_p.bind(np.complex64(1), np.complex64(1))
    assert bool(lax.eq_to_p.bind(np.complex64(1j), np.complex64(1j)))
