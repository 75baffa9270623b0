"""Flax linen on tinyjax: modules with batch statistics and dropout, convolutions, and
the lifted transforms (``nn.scan`` of ``nn.remat``, ``nn.vmap``, ``nn.jit``) train to
JAX's losses; ``init`` shapes and lazy initialisation work."""
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

nn = import_library("flax.linen")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("flax_linen_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("flax_linen_models", program, device, monkeypatch)


def test_lazy_init_and_eval_shape_trace_without_computing():
    model = nn.Dense(7)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.ones((2, 3)))
    assert shapes["params"]["kernel"].shape == (3, 7)
    lazy = model.lazy_init(jax.random.key(0), jax.ShapeDtypeStruct((2, 3), jnp.float32))
    assert lazy["params"]["bias"].shape == (7,)


def test_a_module_used_outside_its_transform_is_an_error():
    class Leaky(nn.Module):
        @nn.compact
        def __call__(self, x):
            self.sow("intermediates", "h", x)
            return nn.Dense(2)(x)

    variables = Leaky().init(jax.random.key(0), jnp.ones((1, 3)))
    _, state = Leaky().apply(variables, jnp.ones((1, 3)), mutable=["intermediates"])
    assert state["intermediates"]["h"][0].shape == (1, 3)
