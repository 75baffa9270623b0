"""Haiku: ``hk.transform`` / ``transform_with_state``, ``hk.nets.MLP``, convolutions,
BatchNorm (state), dropout (``hk.next_rng_key``), an LSTM unrolled by
``hk.dynamic_unroll`` (a scan) and ``hk.remat``, trained with Optax."""
from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import optax

from tests.ecosystem.programs import STEPS, classification_data


def mlp(x, is_training):
    return hk.nets.MLP([32, 32, 10], activation=jax.nn.gelu)(x)


def cnn(x, is_training):
    x = x[..., None]
    x = jax.nn.relu(hk.Conv1D(8, 3, stride=2)(x))
    x = jax.nn.relu(hk.Conv1D(16, 3, stride=2)(x))
    x = hk.MaxPool((2, 1), (2, 1), "VALID")(x)
    x = hk.LayerNorm(-1, create_scale=True, create_offset=True)(hk.Flatten()(x))
    return hk.Linear(10)(x)


def batch_norm(x, is_training):
    x = hk.Linear(32, with_bias=False)(x)  # (BatchNorm follows)
    x = hk.BatchNorm(True, True, 0.9)(x, is_training)
    x = jax.nn.relu(x)
    if is_training:
        x = hk.dropout(hk.next_rng_key(), 0.1, x)
    return hk.Linear(10)(x)


def lstm(x, is_training):
    chunks = x.reshape(x.shape[0], 8, 5).transpose(1, 0, 2)
    core = hk.LSTM(16)
    outputs, _ = hk.dynamic_unroll(core, chunks, core.initial_state(x.shape[0]))
    return hk.remat(hk.Linear(10))(outputs[-1])


def _train(fn):
    x, y = map(jnp.asarray, classification_data())
    model = hk.transform_with_state(fn)
    params, state = model.init(jax.random.key(42), x, True)
    optimizer = optax.adam(0.01)
    opt_state = optimizer.init(params)

    def loss_fn(params, state, key):
        logits, state = model.apply(params, state, key, x, True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

    @jax.jit
    def step(params, state, opt_state, key):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, key)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), state, opt_state, loss

    losses = []
    for i in range(STEPS):
        params, state, opt_state, loss = step(params, state, opt_state,
                                              jax.random.fold_in(jax.random.key(1), i))
        losses.append(float(loss))
    logits, _ = model.apply(params, state, None, x, False)
    losses.append(float(optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()))
    return losses


PROGRAMS = {"mlp": lambda: _train(mlp), "cnn": lambda: _train(cnn),
            "batch_norm": lambda: _train(batch_norm), "lstm": lambda: _train(lstm)}
