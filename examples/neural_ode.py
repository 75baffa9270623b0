"""Fit an ODE's vector field by differentiating through an RK4 solver.

The data are noisy trajectories of a damped oscillator (a spiral in the phase
plane), ``dy/dt = A_true @ y``, from a few initial points.  The model is the same
ODE with unknown ``A`` (started near zero), integrated by a fixed-step
fourth-order Runge-Kutta solver written with ``lax.scan`` (over the observation
times) and ``lax.fori_loop`` (RK4 sub-steps between them); ``model_field`` can be
any function of ``(y, t, params)``, a neural network included.  ``grad``
differentiates through both loops (reverse mode, as in discretise-then-optimise),
``vmap`` runs the solver over all initial points at once, and Adam fits the
parameters under ``jit``.  Once, the gradient is checked against central finite
differences.

    python examples/neural_ode.py              # 300 steps
    python examples/neural_ode.py --steps 30   # smoke run
"""
from __future__ import annotations

import argparse

import numpy as np

import tinyjax as jax
import tinyjax.numpy as jnp
from tinyjax import lax, random
from tinyjax.example_libraries import optimizers
from tinyjax.tree_util import tree_leaves, tree_map

A_TRUE = np.array([[-0.1, 2.0], [-2.0, -0.1]], dtype=np.float32)


def rk4_step(f, y, t, dt, params):
    k1 = f(y, t, params)
    k2 = f(y + dt / 2 * k1, t + dt / 2, params)
    k3 = f(y + dt / 2 * k2, t + dt / 2, params)
    k4 = f(y + dt * k3, t + dt, params)
    return y + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def odeint(f, y0, ts, params, substeps: int = 2):
    """``y(t)`` at each time in ``ts`` (with ``y(ts[0]) = y0``) for ``dy/dt = f(y, t, params)``."""
    def interval(y, t_span):
        t0, t1 = t_span
        dt = (t1 - t0) / substeps
        y = lax.fori_loop(0, substeps, lambda i, y: rk4_step(f, y, t0 + i * dt, dt, params), y)
        return y, y
    _, ys = lax.scan(interval, y0, (ts[:-1], ts[1:]))
    return jnp.concatenate([y0[None], ys])


def model_field(y, t, a):
    """The vector field: linear in ``y`` with parameters ``a`` (a 2x2 matrix)."""
    return a @ y


def init_params(key):
    return 0.1 * random.normal(key, (2, 2))


def make_data(key, n_traj: int, ts, noise: float = 0.01):
    k0, kn = random.split(key)
    y0s = random.uniform(k0, (n_traj, 2), minval=-2.0, maxval=2.0)
    solve = jax.vmap(odeint, in_axes=(None, 0, None, None))
    ys = solve(model_field, y0s, ts, jnp.asarray(A_TRUE))
    return y0s, ys + noise * random.normal(kn, ys.shape)


def loss_fn(params, y0s, ts, ys):
    pred = jax.vmap(odeint, in_axes=(None, 0, None, None))(model_field, y0s, ts, params)
    return jnp.mean((pred - ys) ** 2)


def check_grad(params, y0s, ts, ys, eps: float = 1e-2) -> tuple[float, float]:
    """grad . v against the central difference of the loss along a random direction v."""
    leaves = tree_leaves(params)
    keys = random.split(random.PRNGKey(1), len(leaves))
    v = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params),
                                     [random.normal(k, x.shape) for k, x in zip(keys, leaves)])
    g = jax.grad(loss_fn)(params, y0s, ts, ys)
    analytic = sum(float(jnp.vdot(a, b)) for a, b in zip(tree_leaves(g), tree_leaves(v)))
    shift = lambda s: tree_map(lambda p, d: p + s * eps * d, params, v)
    numeric = (float(loss_fn(shift(1.0), y0s, ts, ys)) -
               float(loss_fn(shift(-1.0), y0s, ts, ys))) / (2 * eps)
    return analytic, numeric


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--trajectories", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    ts = jnp.linspace(0.0, 3.0, 16)
    key = random.PRNGKey(args.seed)
    data_key, init_key = random.split(key)
    y0s, ys = make_data(data_key, args.trajectories, ts)
    params = init_params(init_key)

    analytic, numeric = check_grad(params, y0s, ts, ys)
    rel = abs(analytic - numeric) / max(abs(numeric), 1e-8)
    grad_ok = rel < 1e-2
    print(f"gradient check (directional derivative): grad {analytic:.5f}  "
          f"finite differences {numeric:.5f}  relative error {rel:.1e}  ok: {grad_ok}")

    opt_init, opt_update, get_params = optimizers.adam(args.lr)
    opt_state = opt_init(params)

    @jax.jit
    def step(i, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(get_params(opt_state), y0s, ts, ys)
        return opt_update(i, grads, opt_state), loss

    losses = []
    for i in range(args.steps):
        opt_state, loss = step(i, opt_state)
        losses.append(float(loss))
        if i == 0 or (i + 1) % max(1, args.steps // 6) == 0 or i + 1 == args.steps:
            print(f"step {i + 1:>5}  loss {losses[-1]:.5f}")
    final = float(loss_fn(get_params(opt_state), y0s, ts, ys))
    print(f"loss {losses[0]:.5f} -> {final:.5f}")
    a = np.asarray(get_params(opt_state))
    print(f"learned A:\n{np.round(a, 3)}\ntrue A:\n{A_TRUE}")
    return {"losses": losses + [final], "grad_check": (analytic, numeric), "grad_ok": grad_ok,
            "A": a}


if __name__ == "__main__":
    main()
