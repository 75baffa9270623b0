"""Data-parallel training of the MNIST-1D MLP on every device there is.

Runs unchanged on one CPU device, on several (``TINYJAX_NUM_CPU_DEVICES=8``, or
``jax.config.update("jax_num_cpu_devices", 8)`` first thing) and on N GPUs
(``TINYJAX_DEVICE=cuda``): the devices form a one-axis mesh ``data``; every minibatch is
split over it (``NamedSharding(mesh, P('data'))``) and the parameters are replicated
(``P()``).  ``jit`` partitions the training step into one program per device: each
computes the gradient of its share of the batch, and one ``psum`` per gradient adds them
up (the partitioner inserts it: the step is written for the whole batch).  The losses are
the single-device ones up to float32 rounding.

    python examples/mnist1d_data_parallel.py                 # 2000 steps
    TINYJAX_NUM_CPU_DEVICES=8 python examples/mnist1d_data_parallel.py --steps 300
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import random
from tinyjax.example_libraries import optimizers, stax
from tinyjax.sharding import Mesh, NamedSharding, PartitionSpec as P


def load_mnist1d(seed: int = 42) -> tuple[np.ndarray, ...]:
    """MNIST-1D (Greydanus, 2020) from the ``mnist1d`` package: standardised float32
    inputs of length 40 and int32 labels (4000 train, 1000 test)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise SystemExit("This example needs the mnist1d package: pip install mnist1d")
    args = get_dataset_args()
    args.seed = seed
    data = make_dataset(args)
    x, x_test = data["x"].astype(np.float32), data["x_test"].astype(np.float32)
    mean, std = x.mean(), x.std()
    return ((x - mean) / std, data["y"].astype(np.int32),
            (x_test - mean) / std, data["y_test"].astype(np.int32))


def data_mesh(devices=None) -> Mesh:
    """A one-axis mesh, ``data``, over ``devices`` (default: all of them)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.array(devices, dtype=object), ("data",))


def train(mesh: Mesh, data, steps: int, batch_size: int = 128, learning_rate: float = 1e-3,
          seed: int = 0, log_every: int = 0) -> dict:
    """Train the MLP (40-100-100-10) with Adam for ``steps`` minibatches split over
    ``mesh``; the minibatches are drawn on the host, so any mesh sees the same ones."""
    x, y, x_test, y_test = data
    n = mesh.size
    batch_size = max(batch_size // n, 1) * n  # every device gets an equal share
    init_fun, apply_fun = stax.serial(stax.Dense(100), stax.Relu, stax.Dense(100), stax.Relu,
                                      stax.Dense(10), stax.LogSoftmax)
    _, params = init_fun(random.PRNGKey(seed), (batch_size, 40))
    opt_init, opt_update, get_params = optimizers.adam(learning_rate)
    replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    opt_state = jax.device_put(opt_init(params), replicated)

    def loss_fn(params, xb, yb):
        logp = apply_fun(params, xb)
        return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(yb, 10), axis=1))

    @jax.jit
    def step(i, opt_state, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(get_params(opt_state), xb, yb)
        return opt_update(i, grads, opt_state), loss

    @jax.jit
    def accuracy(params, xs, ys):
        return jnp.mean(jnp.argmax(apply_fun(params, xs), axis=1) == ys)

    order = np.random.default_rng(seed)
    losses = []
    start = time.perf_counter()
    for i in range(steps):
        idx = order.choice(x.shape[0], batch_size, replace=False)
        xb, yb = jax.device_put((x[idx], y[idx]), split)
        opt_state, loss = step(i, opt_state, xb, yb)
        losses.append(float(loss))
        if log_every and ((i + 1) % log_every == 0 or i + 1 == steps):
            acc = float(accuracy(get_params(opt_state), x_test, y_test))
            print(f"step {i + 1:5d}  loss {losses[-1]:.4f}  test accuracy {acc:.3f}")
    seconds = time.perf_counter() - start
    test_acc = float(accuracy(get_params(opt_state), x_test, y_test))
    return {"losses": losses, "test_accuracy": test_acc, "seconds": seconds,
            "devices": n, "batch_size": batch_size,
            "param_sharding": jax.tree.leaves(get_params(opt_state))[0].sharding}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    args = parser.parse_args(argv)
    mesh = data_mesh()
    print(f"{mesh.size} device(s): {jax.devices()}")
    result = train(mesh, load_mnist1d(), args.steps, args.batch_size, args.learning_rate,
                   log_every=max(args.steps // 10, 1))
    print(f"final test accuracy {result['test_accuracy']:.3f} after {args.steps} steps "
          f"of {result['batch_size']} ({result['seconds']:.1f} s)")
    return result


if __name__ == "__main__":
    main()
