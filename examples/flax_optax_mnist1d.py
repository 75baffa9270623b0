"""Train a Flax NNX CNN on MNIST-1D with Optax -- a program written for JAX, run on tinyjax.

Nothing here names tinyjax: it imports ``jax``, ``flax.nnx`` and ``optax``.  Run it on
tinyjax with

    python -m tinyjax examples/flax_optax_mnist1d.py [--steps 3000]

(the libraries installed without JAX: see docs/ecosystem.rst), or with JAX itself as
``python examples/flax_optax_mnist1d.py``.  The model is the MNIST-1D paper's CNN (three
stride-2 convolutions) with batch normalisation and dropout, trained by AdamW on a
warmup-cosine schedule with gradient clipping, under ``nnx.jit``; it prints the test
accuracy as it goes.
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx


def load_mnist1d(seed: int = 42) -> tuple[np.ndarray, ...]:
    """MNIST-1D (the ``mnist1d`` package's default set), standardised."""
    # examples/mnist1d.py sits next to this file: find the package outside this folder
    here = Path(__file__).resolve().parent
    spec = importlib.machinery.PathFinder.find_spec(
        "mnist1d", [p for p in sys.path if Path(p or ".").resolve() != here])
    if spec is None:
        sys.exit("This example needs the mnist1d package: pip install mnist1d")
    sys.modules["mnist1d"] = package = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package)
    from mnist1d.data import get_dataset_args, make_dataset
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    mean, std = data["x"].mean(), data["x"].std()
    return tuple(a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int32)
                 for a in ((data["x"] - mean) / std, data["y"],
                           (data["x_test"] - mean) / std, data["y_test"]))


class CNN(nnx.Module):
    def __init__(self, channels: int, rngs: nnx.Rngs):
        widths = [(1, channels, 5), (channels, channels, 3), (channels, channels, 3)]
        self.convs = nnx.List([  # (no biases: BatchNorm follows each convolution)
            nnx.Conv(c_in, c_out, (w,), strides=2, padding=1, use_bias=False, rngs=rngs)
            for c_in, c_out, w in widths])
        self.norms = nnx.List([nnx.BatchNorm(channels, rngs=rngs) for _ in widths])
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.head = nnx.Linear(channels * 5, 10, rngs=rngs)

    def __call__(self, x):
        x = x[..., None]
        for conv, norm in zip(self.convs, self.norms):
            x = nnx.relu(norm(conv(x)))
        return self.head(self.dropout(x.reshape(x.shape[0], -1)))


def train(data, steps: int, batch_size: int, learning_rate: float, channels: int,
          seed: int = 0) -> dict:
    x, y, x_test, y_test = (jnp.asarray(a) for a in data)
    model = CNN(channels, nnx.Rngs(seed))
    schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, steps // 20, steps)
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=1e-4))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, xb, yb):
        def loss_fn(model):
            logits = model(xb)
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def accuracy(model, xs, ys):
        return jnp.mean(jnp.argmax(model(xs), axis=-1) == ys)

    key = jax.random.key(seed)
    losses, test_acc = [], []
    start = time.perf_counter()
    for i in range(steps):
        key, sub = jax.random.split(key)
        idx = jax.random.choice(sub, x.shape[0], (batch_size,), replace=False)
        model.train()
        losses.append(float(step(model, optimizer, x[idx], y[idx])))
        if (i + 1) % 200 == 0 or i + 1 == steps:
            model.eval()
            test_acc.append(float(accuracy(model, x_test, y_test)))
            print(f"step {i + 1:>5}  loss {losses[-1]:.3f}  test accuracy {test_acc[-1]:.3f}",
                  flush=True)
    return {"losses": losses, "test_accuracy": test_acc[-1], "history": test_acc,
            "seconds": time.perf_counter() - start}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--channels", type=int, default=32)
    args = parser.parse_args(argv)
    result = train(load_mnist1d(), args.steps, args.batch_size, args.lr, args.channels)
    print(f"final test accuracy {result['test_accuracy']:.3f} "
          f"({args.steps} steps in {result['seconds']:.1f} s, on {jax.__name__})")
    return result


if __name__ == "__main__":
    main()
