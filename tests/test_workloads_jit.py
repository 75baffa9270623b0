"""``jit(grad(loss))`` of the benchmark workloads (small versions) compiles to kernels and
matches eager ``grad(loss)``, on the cpu device and on cuda where one is present."""
import sys
from pathlib import Path

import numpy as np
import pytest

import tinyjax as jax
import tinyjax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import workloads  # noqa: E402
from tests.cuda_support import CUDA_PARAM  # noqa: E402

DEVICES = ["cpu", CUDA_PARAM]

MLP_KERNEL_BOUND = 40


def _mlp():
    (w1, b1), (w2, b2), (w3, b3) = workloads._mlp_setup()[0]
    _, x, y = workloads._mlp_setup()
    params = [(w1[:64, :32], b1[:32]), (w2[:32, :32], b2[:32]), (w3[:32], b3)]
    x, y = x[:4, :64], y[:4]

    def loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = jnp.maximum(h @ w + b, 0.0)
        w, b = params[-1]
        return workloads._xent(jnp, h @ w + b, y)
    return loss, params, x, y


def _cnn():
    params, x, y = workloads.cnn_setup(batch=4)
    return workloads.cnn_loss_fn(jnp, jax), params, x, y


def _attention():
    params, x, t = workloads.attention_setup(batch=2, seq=8, d=32, mlp=64)
    return workloads.attention_loss_fn(jnp, jax), params, x, t


def _per_example():
    params, x, y = workloads.per_example_setup(batch=4)
    g = jax.vmap(jax.grad(workloads.per_example_loss_fn(jnp)), in_axes=(None, 0, 0))
    return (lambda p, x, y: g(p, x, y)), params, x, y


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,make", [("mlp", _mlp), ("cnn", _cnn),
                                       ("attention", _attention)])
def test_jit_grad_matches_eager(name, make, device):
    loss, params, *data = make()
    params = jax.tree_util.tree_map(jnp.asarray, params)
    data = [jnp.asarray(d) for d in data]
    eager = jax.grad(loss)(params, *data)
    jitted = jax.jit(jax.grad(loss), device=device)
    got = jitted(params, *data)
    compiled = jitted.lower(params, *data).compile()
    assert type(compiled.executable).__name__ != "EagerExecutable", \
        compiled.executable.reason
    print(f"{name} on {device}: jit(grad(loss)) -> {compiled.num_kernels} kernels")
    if name == "mlp":
        assert 0 < compiled.num_kernels <= MLP_KERNEL_BOUND
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(eager)):
        scale = float(np.abs(np.asarray(e)).max()) or 1.0
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-4,
                                   atol=1e-5 * scale)


@pytest.mark.parametrize("device", DEVICES)
def test_jit_per_example_grads_matches_loop(device):
    fn, params, x, y = _per_example()
    params = jax.tree_util.tree_map(jnp.asarray, params)
    jitted = jax.jit(fn, device=device)
    got = jitted(params, jnp.asarray(x), jnp.asarray(y))
    assert type(jitted.lower(params, jnp.asarray(x), jnp.asarray(y)).compile()
                .executable).__name__ != "EagerExecutable"
    grad = jax.grad(workloads.per_example_loss_fn(jnp))
    loop = [grad(params, jnp.asarray(x[i]), jnp.asarray(y[i])) for i in range(len(x))]
    for leaf, *per in zip(jax.tree_util.tree_leaves(got),
                          *[jax.tree_util.tree_leaves(g) for g in loop]):
        np.testing.assert_allclose(np.asarray(leaf), np.stack([np.asarray(p) for p in per]),
                                   rtol=1e-4, atol=1e-6)
