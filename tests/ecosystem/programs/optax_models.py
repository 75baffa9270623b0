"""Optax: its optimisers, schedules, contrib optimisers and losses driving plain-JAX
models under ``jit``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tests.ecosystem.programs import STEPS, classification_data


def _train(loss, params, optimizer, steps=STEPS, extra_args=False):
    state = optimizer.init(params)

    @jax.jit
    def step(params, state):
        value, grads = jax.value_and_grad(loss)(params)
        if extra_args:
            updates, state = optimizer.update(grads, state, params, value=value, grad=grads,
                                              value_fn=loss)
        else:
            updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    losses = []
    for _ in range(steps):
        params, state, value = step(params, state)
        losses.append(float(value))
    return losses


def linear_regression():
    """A least-squares fit of one weight vector with Adam (Optax's quickstart)."""
    rng = np.random.RandomState(1)
    x = jnp.asarray(rng.randn(24, 6).astype(np.float32))
    y = jnp.asarray(rng.randn(24).astype(np.float32))

    def loss(params):
        return jnp.mean(optax.l2_loss(x @ params["w"], y))
    return _train(loss, {"w": jnp.ones(6)}, optax.adam(0.05))


def _mlp_init(key, sizes):
    params = []
    for k, (m, n) in zip(jax.random.split(key, len(sizes) - 1), zip(sizes[:-1], sizes[1:])):
        params.append({"w": jax.random.normal(k, (m, n)) / np.sqrt(m), "b": jnp.zeros(n)})
    return params


def _mlp_loss(x, y):
    def loss(params):
        h = x
        for layer in params[:-1]:
            h = jax.nn.gelu(h @ layer["w"] + layer["b"])
        logits = h @ params[-1]["w"] + params[-1]["b"]
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss


def mlp_optimisers():
    """One MLP trained by a chain of transformations with a warmup-cosine schedule, by
    AdamW with masked weight decay, and by two contrib optimisers; losses concatenated."""
    x, y = map(jnp.asarray, classification_data())
    params = _mlp_init(jax.random.key(0), [40, 32, 32, 10])
    loss = _mlp_loss(x, y)
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.02, 3, STEPS)
    chained = optax.chain(optax.clip_by_global_norm(1.0), optax.scale_by_adam(),
                          optax.scale_by_learning_rate(schedule))
    decay_mask = jax.tree.map(lambda p: p.ndim > 1, params)
    out = []
    for optimizer in (chained, optax.adamw(0.01, weight_decay=1e-2, mask=decay_mask),
                      optax.contrib.schedule_free_adamw(0.01, warmup_steps=2),
                      optax.contrib.muon(0.01)):
        out += _train(loss, params, optimizer)
    return out


def lbfgs_linesearch():
    """L-BFGS with its zoom line search (a while_loop inside the update) on a smooth
    logistic-regression loss."""
    x, y = map(jnp.asarray, classification_data(2))
    w0 = jnp.zeros((40, 10))

    def loss(w):
        return optax.softmax_cross_entropy_with_integer_labels(x @ w, y).mean() + \
            1e-2 * jnp.sum(w * w)
    return _train(loss, w0, optax.lbfgs(), steps=6, extra_args=True)


PROGRAMS = {"linear_regression": linear_regression, "mlp_optimisers": mlp_optimisers,
            "lbfgs_linesearch": lbfgs_linesearch}
