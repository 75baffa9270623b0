"""Flax NNX on tinyjax: stateful modules trained by ``nnx.Optimizer`` under ``nnx.jit``,
layers stacked by ``nnx.vmap`` and run by ``nnx.scan``, to JAX's losses; a module's trace
state tells the transform it was made under."""
import numpy as np
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

nnx = import_library("flax.nnx")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("flax_nnx_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("flax_nnx_models", program, device, monkeypatch)


def test_a_module_cannot_be_mutated_inside_a_plain_jax_transform():
    model = nnx.Linear(2, 2, rngs=nnx.Rngs(0))

    def mutate(x):
        model.kernel[...] = model.kernel[...] + x  # made outside this trace
        return x

    with pytest.raises(Exception, match="trace"):
        jax.jit(mutate)(jnp.ones((2, 2)))


def test_split_merge_round_trips_state():
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    doubled = jax.jit(lambda s: jax.tree.map(lambda v: 2 * v, s))(state)
    new = nnx.merge(graphdef, doubled)
    np.testing.assert_allclose(np.asarray(new.kernel[...]),
                               2 * np.asarray(model.kernel[...]), rtol=1e-6)
