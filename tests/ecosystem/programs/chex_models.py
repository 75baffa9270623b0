"""Chex: an MLP whose parameters are a ``chex.dataclass``, its training step checked by
static assertions (shapes, ranks, dtypes, tree structure) and by value assertions under
``chex.chexify`` (finite gradients), with a trace counter on the jitted step."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import optax

from tests.ecosystem.programs import STEPS, classification_data


@chex.dataclass
class Layer:
    w: chex.Array
    b: chex.Array


def _init(key, sizes):
    keys = jax.random.split(key, len(sizes) - 1)
    return [Layer(w=jax.random.normal(k, (m, n)) * (2.0 / m) ** 0.5, b=jnp.zeros(n))
            for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def dataclass_mlp():
    x, y = map(jnp.asarray, classification_data())
    params = _init(jax.random.key(0), [40, 32, 10])
    optimizer = optax.sgd(0.1, momentum=0.9)
    opt_state = optimizer.init(params)
    chex.clear_trace_counter()

    def loss_fn(params):
        h = x
        for layer in params[:-1]:
            chex.assert_rank(layer.w, 2)
            h = jax.nn.relu(h @ layer.w + layer.b)
        logits = h @ params[-1].w + params[-1].b
        chex.assert_shape(logits, (x.shape[0], 10))
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @chex.chexify
    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        chex.assert_trees_all_equal_shapes_and_dtypes(params, grads)
        chex.assert_tree_all_finite(grads)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(STEPS):
        params, opt_state, loss = step(params, opt_state)
        chex.assert_type(loss, float)
        losses.append(float(loss))
    step.wait_checks()
    return losses


PROGRAMS = {"dataclass_mlp": dataclass_mlp}
