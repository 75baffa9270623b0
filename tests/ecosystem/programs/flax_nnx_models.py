"""Flax NNX: stateful modules (BatchNorm, Dropout with its rng stream), ``nnx.Optimizer``,
``nnx.jit`` / ``nnx.value_and_grad``, and layers stacked by ``nnx.vmap`` and run by
``nnx.scan`` (a small transformer)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from tests.ecosystem.programs import STEPS, classification_data


class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(40, 32, use_bias=False, rngs=rngs)  # (BatchNorm follows)
        self.norm = nnx.BatchNorm(32, momentum=0.9, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.dropout(nnx.relu(self.norm(self.hidden(x)))))


class CNN(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 8, (3,), strides=2, rngs=rngs)
        self.conv2 = nnx.Conv(8, 16, (3,), strides=2, rngs=rngs)
        self.norm = nnx.LayerNorm(80, rngs=rngs)
        self.out = nnx.Linear(80, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.conv1(x[..., None]))
        x = nnx.avg_pool(nnx.relu(self.conv2(x)), (2,), strides=(2,))
        return self.out(self.norm(x.reshape(x.shape[0], -1)))


class Block(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.attention = nnx.MultiHeadAttention(2, 16, decode=False, rngs=rngs)
        self.norm = nnx.LayerNorm(16, rngs=rngs)
        self.mlp = nnx.Linear(16, 16, rngs=rngs)

    def __call__(self, x):
        x = x + self.attention(x)
        return x + nnx.gelu(self.mlp(self.norm(x)))


class Transformer(nnx.Module):
    """Two blocks made by ``nnx.vmap`` (one stacked set of weights) and applied in turn by
    ``nnx.scan`` over the stack, on 8 tokens of 5 samples each."""

    def __init__(self, rngs: nnx.Rngs):
        self.embed = nnx.Linear(5, 16, rngs=rngs)

        @nnx.split_rngs(splits=2)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make_blocks(rngs):
            return Block(rngs)
        self.blocks = make_blocks(rngs)
        self.out = nnx.Linear(16 * 8, 10, rngs=rngs)

    def __call__(self, x):
        x = self.embed(x.reshape(x.shape[0], 8, 5))

        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def run(x, block):
            return block(x)
        return self.out(run(x, self.blocks).reshape(x.shape[0], -1))


def _train(model):
    x, y = map(jnp.asarray, classification_data())
    optimizer = nnx.Optimizer(model, optax.adam(0.01), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, x, y):
        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer, x, y)) for _ in range(STEPS)]
    model.eval()
    losses.append(float(optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()))
    return losses


PROGRAMS = {"mlp": lambda: _train(MLP(nnx.Rngs(0))), "cnn": lambda: _train(CNN(nnx.Rngs(0))),
            "transformer": lambda: _train(Transformer(nnx.Rngs(0)))}
