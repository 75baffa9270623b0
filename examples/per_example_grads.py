"""Differentially private SGD with per-example gradients: ``vmap(grad(loss))``.

DP-SGD (Abadi et al., 2016) needs the gradient of every example in a minibatch, not
just their mean: each one is clipped to an L2 norm of at most ``--clip``, the clipped
gradients are summed, Gaussian noise of standard deviation ``--noise * --clip`` is
added, and the result is averaged.  ``vmap(grad(loss), in_axes=(None, 0, 0))``
computes all per-example gradients in one vectorised program, and the whole private
step runs under ``jit``.

The task is MNIST-1D (an MLP, 40-100-10) when the ``mnist1d`` package is installed,
otherwise a synthetic ten-class Gaussian-mixture problem.  (No privacy accounting
here: this shows the mechanics, not an epsilon.)

    python examples/per_example_grads.py              # 1500 steps
    python examples/per_example_grads.py --steps 50   # smoke run
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.example_libraries import optimizers, stax
from tinyjax.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten


def load_data(seed: int = 0) -> tuple[str, tuple[np.ndarray, ...]]:
    """MNIST-1D (standardised) if the package is installed, else synthetic data."""
    # examples/mnist1d.py shadows the package when this folder is on sys.path.
    here = str(pathlib.Path(__file__).resolve().parent)
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", here)]
    loaded = sys.modules.get("mnist1d")
    shadow = loaded if str(getattr(loaded, "__file__", "")).startswith(here) else None
    if shadow is not None:
        del sys.modules["mnist1d"]
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        if shadow is not None:
            sys.modules["mnist1d"] = shadow
        print("mnist1d is not installed (pip install mnist1d): using synthetic data")
        return "synthetic", synthetic_data(seed)
    finally:
        sys.path[:] = saved
    args = get_dataset_args()
    args.seed = 42
    data = make_dataset(args)
    x, x_test = data["x"].astype(np.float32), data["x_test"].astype(np.float32)
    mean, std = x.mean(), x.std()
    return "MNIST-1D", ((x - mean) / std, data["y"].astype(np.int32),
                        (x_test - mean) / std, data["y_test"].astype(np.int32))


def synthetic_data(seed: int, n_train: int = 4000, n_test: int = 1000,
                   dim: int = 40, classes: int = 10) -> tuple[np.ndarray, ...]:
    """Ten Gaussian clusters in 40 dimensions, overlapping enough to be non-trivial."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)).astype(np.float32) * 0.6

    def sample(n):
        y = rng.integers(0, classes, n).astype(np.int32)
        return (centers[y] + rng.normal(size=(n, dim)).astype(np.float32)), y
    x, y = sample(n_train)
    x_test, y_test = sample(n_test)
    return x, y, x_test, y_test


init_fun, predict = stax.serial(stax.Dense(100), stax.Relu, stax.Dense(10), stax.LogSoftmax)


def loss(params, x, y):
    """Cross-entropy of one example: ``x`` has shape (40,), ``y`` is a scalar label."""
    logp = predict(params, x[None])
    return -logp[0, y]


def accuracy(params, xs, ys):
    return jnp.mean(jnp.argmax(predict(params, xs), axis=1) == ys)


per_example_grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))


def clip_and_noise(grads, key, l2_clip: float, noise_multiplier: float):
    """Clip each example's gradient to ``l2_clip``, sum, add noise, average."""
    leaves, treedef = tree_flatten(grads)
    batch = leaves[0].shape[0]
    norms = jnp.sqrt(sum(jnp.sum(g.reshape(batch, -1) ** 2, axis=1) for g in leaves))
    scale = jnp.minimum(1.0, l2_clip / (norms + 1e-12))
    keys = random.split(key, len(leaves))
    private = []
    for g, k in zip(leaves, keys):
        clipped = g * scale.reshape((batch,) + (1,) * (g.ndim - 1))
        noise = noise_multiplier * l2_clip * random.normal(k, g.shape[1:])
        private.append((clipped.sum(0) + noise) / batch)
    return tree_unflatten(treedef, private), norms


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--clip", type=float, default=1.0, help="per-example L2 norm bound")
    parser.add_argument("--noise", type=float, default=1.0, help="noise multiplier")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    name, (x, y, x_test, y_test) = load_data(args.seed)
    key = random.PRNGKey(args.seed)
    key, init_key = random.split(key)
    _, params = init_fun(init_key, (-1, x.shape[1]))
    opt_init, opt_update, get_params = optimizers.momentum(args.lr, mass=0.9)
    opt_state = opt_init(params)

    @jax.jit
    def private_step(i, opt_state, xb, yb, key):
        grads = per_example_grads(get_params(opt_state), xb, yb)
        private, norms = clip_and_noise(grads, key, args.clip, args.noise)
        return opt_update(i, private, opt_state), jnp.mean(norms)

    eval_acc = jax.jit(accuracy)

    # vmap(grad) computes exactly what a Python loop of grad does, one example at a time.
    batched = per_example_grads(params, x[:4], y[:4])
    looped = [jax.grad(loss)(params, x[i], y[i]) for i in range(4)]
    stacked = tree_map(lambda *gs: jnp.stack(gs), *looped)
    diff = max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(tree_leaves(batched), tree_leaves(stacked)))
    grads_match = diff < 1e-5
    print(f"per-example grads (vmap) match a loop of grad: {grads_match} (max |diff| {diff:.1e})")

    x_dev, y_dev = jnp.asarray(x), jnp.asarray(y)
    n_batches = x.shape[0] // args.batch_size
    acc0 = float(eval_acc(params, x_test, y_test))
    print(f"{name}: {x.shape[0]} training examples, test accuracy before training {acc0:.3f}")
    for i in range(args.steps):
        if i % n_batches == 0:
            key, perm_key = random.split(key)
            perm = random.permutation(perm_key, x.shape[0])
        idx = perm[(i % n_batches) * args.batch_size:(i % n_batches + 1) * args.batch_size]
        key, noise_key = random.split(key)
        opt_state, mean_norm = private_step(i, opt_state, x_dev[idx], y_dev[idx], noise_key)
        if (i + 1) % max(1, args.steps // 5) == 0 or i + 1 == args.steps:
            acc = float(eval_acc(get_params(opt_state), x_test, y_test))
            print(f"step {i + 1:>5}  mean per-example grad norm {float(mean_norm):6.3f}"
                  f"  test accuracy {acc:.3f}")
    final = float(eval_acc(get_params(opt_state), x_test, y_test))
    print(f"final test accuracy (DP-SGD, clip {args.clip}, noise {args.noise}): {final:.3f}"
          f"  (chance 0.100)")
    return {"data": name, "grads_match": grads_match, "max_diff": diff,
            "initial_accuracy": acc0, "test_accuracy": final}


if __name__ == "__main__":
    main()
