"""Equinox on tinyjax: modules trained with ``filter_jit`` / ``filter_value_and_grad`` /
``filter_vmap`` to JAX's losses (MLP, CNN, attention, BatchNorm with state); tracers are
``jax.Array``s, so filtered transforms keep them out of static parts."""
import numpy as np
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

eqx = import_library("equinox")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("equinox_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("equinox_models", program, device, monkeypatch)


def test_filter_vmap_batches_array_leaves_and_passes_the_rest():
    def f(x, tag):
        return {"y": 2 * x, "tag": tag}

    out = eqx.filter_vmap(f, in_axes=(0, None))(jnp.arange(3.0), "label")
    assert out["tag"] == "label"
    np.testing.assert_allclose(np.asarray(out["y"]), [0.0, 2.0, 4.0])


def test_filter_grad_differentiates_floating_leaves_only():
    def loss(params):
        return jnp.sum(params["w"] ** 2) * params["scale"]

    grads = eqx.filter_grad(loss)({"w": jnp.array([1.0, 2.0]), "scale": 3.0,
                                  "n": jnp.array(4)})
    np.testing.assert_allclose(np.asarray(grads["w"]), [6.0, 12.0])
    assert grads["n"] is None


def test_error_if_raises_under_jit():
    @eqx.filter_jit
    def checked(x):
        return eqx.error_if(x, x < 0, "negative input")

    np.testing.assert_allclose(np.asarray(checked(jnp.ones(2))), [1.0, 1.0])
    with pytest.raises(Exception, match="negative input"):
        checked(-jnp.ones(2))
