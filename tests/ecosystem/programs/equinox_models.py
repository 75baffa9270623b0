"""Equinox: modules as pytrees, ``filter_jit`` / ``filter_value_and_grad`` /
``filter_vmap``, ``eqx.nn`` layers (MLP, Conv1d, pooling, LayerNorm, MultiheadAttention,
Dropout, BatchNorm with ``nn.State``), trained with Optax."""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from tests.ecosystem.programs import STEPS, classification_data


class CNN(eqx.Module):
    layers: list

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.layers = [eqx.nn.Conv1d(1, 8, 3, stride=2, key=k1), jax.nn.relu,
                       eqx.nn.Conv1d(8, 16, 3, stride=2, key=k2), jax.nn.relu,
                       eqx.nn.MaxPool1d(2, 2), jnp.ravel, eqx.nn.LayerNorm(64),
                       eqx.nn.Linear(64, 10, key=k3)]

    def __call__(self, x, key=None):
        x = x[None]
        for layer in self.layers:
            x = layer(x)
        return x


class Transformer(eqx.Module):
    embed: eqx.nn.Linear
    attention: eqx.nn.MultiheadAttention
    norm: eqx.nn.LayerNorm
    dropout: eqx.nn.Dropout
    head: eqx.nn.MLP

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.embed = eqx.nn.Linear(5, 16, key=k1)
        self.attention = eqx.nn.MultiheadAttention(2, 16, key=k2)
        self.norm = eqx.nn.LayerNorm(16)
        self.dropout = eqx.nn.Dropout(0.1)
        self.head = eqx.nn.MLP(16 * 8, 10, 32, 1, key=k3)

    def __call__(self, x, key=None):
        tokens = jax.vmap(self.embed)(x.reshape(8, 5))
        tokens = tokens + self.attention(tokens, tokens, tokens)
        tokens = self.dropout(jax.vmap(self.norm)(tokens), key=key, inference=key is None)
        return self.head(tokens.ravel())


def _train(model):
    x, y = map(jnp.asarray, classification_data())
    optimizer = optax.adamw(0.01)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_value_and_grad
    def loss_fn(model, key):
        keys = jax.random.split(key, x.shape[0])
        logits = eqx.filter_vmap(model)(x, keys)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @eqx.filter_jit
    def step(model, opt_state, key):
        loss, grads = loss_fn(model, key)
        updates, opt_state = optimizer.update(grads, opt_state,
                                              eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    losses = []
    for i in range(STEPS):
        model, opt_state, loss = step(model, opt_state, jax.random.fold_in(jax.random.key(1), i))
        losses.append(float(loss))
    return losses


class _MLPWithKey(eqx.Module):
    mlp: eqx.nn.MLP

    def __call__(self, x, key=None):
        return self.mlp(x)


def batch_norm():
    """A net with ``eqx.nn.BatchNorm``: its running statistics live in an ``eqx.nn.State``
    threaded through the vmapped, jitted step (``axis_name`` batching)."""
    x, y = map(jnp.asarray, classification_data())
    k1, k2 = jax.random.split(jax.random.key(3))
    model, state = eqx.nn.make_with_state(eqx.nn.Sequential)([
        eqx.nn.Linear(40, 32, use_bias=False, key=k1),
        eqx.nn.BatchNorm(32, axis_name="batch", momentum=0.9, mode="ema"),
        eqx.nn.Lambda(jax.nn.relu), eqx.nn.Linear(32, 10, key=k2)])
    optimizer = optax.sgd(0.1, momentum=0.9)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    def loss_fn(model, state):
        logits, state = jax.vmap(model, axis_name="batch", in_axes=(0, None),
                                 out_axes=(0, None))(x, state)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), state

    @eqx.filter_jit
    def step(model, state, opt_state):
        (loss, state), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(model, state)
        updates, opt_state = optimizer.update(grads, opt_state)
        return eqx.apply_updates(model, updates), state, opt_state, loss

    losses = []
    for _ in range(STEPS):
        model, state, opt_state, loss = step(model, state, opt_state)
        losses.append(float(loss))
    inference = eqx.nn.inference_mode(model)
    logits, _ = jax.vmap(inference, axis_name="batch", in_axes=(0, None),
                         out_axes=(0, None))(x, state)
    losses.append(float(optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()))
    return losses


PROGRAMS = {
    "mlp": lambda: _train(_MLPWithKey(eqx.nn.MLP(40, 10, 32, 2, key=jax.random.key(0)))),
    "cnn": lambda: _train(CNN(jax.random.key(0))),
    "transformer": lambda: _train(Transformer(jax.random.key(0))),
    "batch_norm": batch_norm,
}
