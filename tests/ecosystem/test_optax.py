"""Optax on tinyjax: optimisers, schedules, contrib optimisers and L-BFGS's line search
train models to JAX's losses; schedules and losses give JAX's values."""
import numpy as np
import pytest

from tests.ecosystem.reference import DEVICES, check_program, import_library, programs

optax = import_library("optax")
import jax  # noqa: E402  (tinyjax, installed as jax by conftest)
import jax.numpy as jnp  # noqa: E402


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("program", programs("optax_models"))
def test_training_matches_jax(program, device, monkeypatch):
    check_program("optax_models", program, device, monkeypatch)


def test_schedules_are_traceable_functions_of_the_step():
    schedule = optax.join_schedules([optax.linear_schedule(0.0, 1.0, 4),
                                     optax.cosine_decay_schedule(1.0, 8)], [4])
    steps = np.arange(12)
    eager = np.array([float(schedule(int(s))) for s in steps])
    traced = np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))
    np.testing.assert_allclose(traced, eager, rtol=1e-6)
    expected = np.concatenate([steps[:4] / 4, 0.5 * (1 + np.cos(np.pi * (steps[4:] - 4) / 8))])
    np.testing.assert_allclose(eager, expected, rtol=1e-6, atol=1e-7)


def test_inject_hyperparams_exposes_the_learning_rate_as_state():
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=0.5)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    updates, state = jax.jit(opt.update)({"w": jnp.full(3, 2.0)}, state)
    np.testing.assert_allclose(np.asarray(updates["w"]), -np.ones(3))
    assert float(state.hyperparams["learning_rate"]) == 0.5


def test_losses_match_their_formulas():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    labels = jnp.array([1, 2])
    z = np.asarray(logits, np.float64)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    np.testing.assert_allclose(
        np.asarray(optax.softmax_cross_entropy_with_integer_labels(logits, labels)),
        -log_p[[0, 1], [1, 2]], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(optax.huber_loss(jnp.array([0.5, 3.0]))),
                               [0.125, 2.5], rtol=1e-6)
