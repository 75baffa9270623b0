"""device_put_p: what jax.device_put binds on traced values -- JAX's parameters, the
identity in compiled programs and eager evaluation of jaxprs, linear (its tangents and
cotangents are put as well), batched; JAX's copy-semantics rules and errors."""
import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax
from tinyjax.jaxpr import eval_jaxpr
from tinyjax.lax.device_put import ArrayCopySemantics
from tinyjax.test_util import check_grads
from tests.cuda_support import CUDA_PARAM


def _puts(jaxpr):
    return [e for e in jaxpr.eqns if e.primitive is lax.device_put_p]


def test_traced_device_put_binds_the_primitive_with_jax_parameters():
    dev = jax.devices()[0]
    eqn, = _puts(jax.make_jaxpr(lambda x: jax.device_put(x, dev))(1.0))
    assert eqn.params == {"devices": (dev,), "srcs": (None,),
                          "copy_semantics": (ArrayCopySemantics.REUSE_INPUT,)}
    eqn, = _puts(jax.make_jaxpr(lambda x: jax.device_put(x, may_alias=False))(1.0))
    assert eqn.params["copy_semantics"] == (ArrayCopySemantics.ALWAYS_COPY,)
    eqn, = _puts(jax.make_jaxpr(lambda x: jax.device_put(x, donate=True))(1.0))
    assert eqn.params["copy_semantics"] == (ArrayCopySemantics.DONATE_INPUT,)
    assert "ArrayCopySemantics.DONATE_INPUT" in str(eqn)
    assert len(_puts(jax.make_jaxpr(lambda t: jax.device_put(t))((1.0, jnp.ones(2))))) == 2
    with pytest.raises(ValueError, match="may_alias and donate cannot be True"):
        jax.device_put(1.0, donate=True, may_alias=True)


@pytest.mark.parametrize("device", ["cpu", "interp", CUDA_PARAM])
def test_compiled_and_eager_it_is_the_identity(device):
    x = jax.device_put(np.arange(6, dtype=np.float32).reshape(2, 3), jax.devices(device)[0])
    np.testing.assert_array_equal(jax.jit(lambda v: jax.device_put(v) * 2)(x),
                                  2 * np.asarray(x))
    closed = jax.make_jaxpr(lambda v: jax.device_put(v) * 2)(x)
    np.testing.assert_array_equal(eval_jaxpr(closed.jaxpr, closed.consts, x)[0],
                                  2 * np.asarray(x))


def test_derivatives_and_batching():
    f = lambda v: jnp.sin(jax.device_put(v)) * v  # noqa: E731
    x = np.linspace(-1, 1, 5).astype(np.float32)
    check_grads(f, (x,), order=2, modes=("fwd", "rev"))
    grad_jaxpr = jax.make_jaxpr(jax.grad(lambda v: jax.device_put(v).sum()))(x)
    back = _puts(grad_jaxpr)[-1]  # the cotangent put back: a fresh copy, as JAX's
    assert back.params["copy_semantics"] == (ArrayCopySemantics.ALWAYS_COPY,)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(jax.vmap(lambda r: jax.device_put(r) + r[0])(rows),
                                  np.stack([r + r[0] for r in rows]))
    outs = lax.device_put_p.bind(np.float32(1), np.ones(2, np.int32), devices=(None, None),
                                 srcs=(None, None),
                                 copy_semantics=(ArrayCopySemantics.REUSE_INPUT,) * 2)
    assert [o.dtype for o in outs] == [np.float32, np.int32]
