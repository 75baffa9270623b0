"""Flax linen: modules with ``nn.compact``, batch statistics and dropout (mutable
collections, rng streams), lifted transforms (``nn.scan`` over ``nn.remat``, ``nn.vmap``,
``nn.jit``), trained with Optax under ``jit``."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from tests.ecosystem.programs import STEPS, classification_data


class MLP(nn.Module):
    hidden: int = 32

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Dense(self.hidden, use_bias=False)(x)  # (BatchNorm cancels a bias: its
        # gradient is rounding noise, which Adam would amplify into steps)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        x = nn.relu(x)
        x = nn.Dropout(0.1, deterministic=not train)(x)
        return nn.Dense(10)(x)


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = True):
        x = x[..., None]
        for features in (8, 16):
            x = nn.relu(nn.Conv(features, (3,), strides=(2,))(x))
        x = nn.max_pool(x, (2,), strides=(2,))
        x = nn.LayerNorm()(x.reshape(x.shape[0], -1))
        return nn.Dense(10)(x)


class RecurrentCell(nn.Module):
    size: int = 16

    @nn.compact
    def __call__(self, h, x):
        h = jnp.tanh(nn.Dense(self.size)(h) + nn.Dense(self.size, use_bias=False)(x))
        return h, h


class RNN(nn.Module):
    """A recurrent net over 8 chunks of the signal: ``nn.scan`` of a rematerialised cell,
    its weights broadcast across steps; a head vmapped over the batch by ``nn.vmap``."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        chunks = x.reshape(x.shape[0], 8, -1).transpose(1, 0, 2)
        scan = nn.scan(nn.remat(RecurrentCell), variable_broadcast="params",
                       split_rngs={"params": False})
        h, _ = scan()(jnp.zeros((x.shape[0], 16)), chunks)
        head = nn.vmap(nn.Dense, variable_axes={"params": None},
                       split_rngs={"params": False}, in_axes=0)(10)
        return nn.jit(nn.Dense)(10)(h) + head(h)


def _train(model):
    x, y = map(jnp.asarray, classification_data())
    variables = model.init({"params": jax.random.key(0), "dropout": jax.random.key(1)}, x)
    params = variables["params"]
    batch_stats = variables.get("batch_stats", {})
    tx = optax.adam(0.01)
    opt_state = tx.init(params)

    def loss_fn(params, batch_stats, key):
        logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, x,
                                      rngs={"dropout": key}, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, updates.get("batch_stats", {})

    @jax.jit
    def step(params, batch_stats, opt_state, key):
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    losses = []
    for i in range(STEPS):
        params, batch_stats, opt_state, loss = step(params, batch_stats, opt_state,
                                                    jax.random.fold_in(jax.random.key(2), i))
        losses.append(float(loss))
    evaluated = model.apply({"params": params, "batch_stats": batch_stats}, x, train=False)
    losses.append(float(optax.softmax_cross_entropy_with_integer_labels(evaluated, y).mean()))
    return losses


PROGRAMS = {"mlp": lambda: _train(MLP()), "cnn": lambda: _train(CNN()),
            "rnn": lambda: _train(RNN())}
