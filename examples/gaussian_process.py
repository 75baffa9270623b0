"""Fit a Gaussian process's hyperparameters by gradient descent on its marginal likelihood.

The data are noisy samples of ``sin(3x) + 0.3x`` at scattered points.  The model is a
zero-mean Gaussian process with a squared-exponential kernel (amplitude, length scale)
plus Gaussian noise; the three hyperparameters are optimised on a log scale.  The
negative log marginal likelihood

    0.5 y^T K^-1 y + sum(log diag L) + n/2 log(2 pi),    K = L L^T,

is computed through ``jax.scipy.linalg.cho_factor`` / ``cho_solve``; ``jit(value_and_grad)``
of it compiles one program whose Cholesky factorisation and triangular solves are LAPACK
calls between fused kernels, and whose derivative (through the Cholesky's JVP rule and
the transposed solves) is compiled in the same program.  Once, the gradient is checked
against central finite differences, and at the end the likelihood is recomputed with
SciPy.  Everything runs in float64 (``config.enable_x64``), as GP code usually does.

    python examples/gaussian_process.py              # 200 points, 300 steps
    python examples/gaussian_process.py --steps 30   # smoke run
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg

import tinyjax as jax
import tinyjax.numpy as jnp
import tinyjax.scipy.linalg as jsl
from tinyjax.example_libraries import optimizers

NOISE_TRUE = 0.1


def truth(x):
    return np.sin(3 * x) + 0.3 * x


def make_data(seed: int, n: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-3, 3, n))
    y = truth(x) + NOISE_TRUE * rng.standard_normal(n)
    return x, y


def kernel(params, a, b):
    """The squared-exponential kernel matrix ``k(a_i, b_j)``."""
    amplitude, length = jnp.exp(params["log_amplitude"]), jnp.exp(params["log_length"])
    d = (a[:, None] - b[None, :]) / length
    return amplitude ** 2 * jnp.exp(-0.5 * d ** 2)


def covariance(params, x):
    noise = jnp.exp(params["log_noise"])
    return kernel(params, x, x) + (noise ** 2 + 1e-8) * jnp.eye(x.shape[0])


def neg_log_likelihood(params, x, y):
    """``-log p(y | x, params)``: the Gaussian's density at ``y`` through a Cholesky."""
    factor = jsl.cho_factor(covariance(params, x), lower=True)
    alpha = jsl.cho_solve(factor, y)
    return (0.5 * jnp.dot(y, alpha) + jnp.sum(jnp.log(jnp.diagonal(factor[0])))
            + 0.5 * x.shape[0] * np.log(2 * np.pi))


def predict(params, x, y, x_new):
    """The posterior mean and standard deviation at ``x_new``."""
    factor = jsl.cho_factor(covariance(params, x), lower=True)
    k_new = kernel(params, x_new, x)
    mean = k_new @ jsl.cho_solve(factor, y)
    v = jsl.solve_triangular(factor[0], k_new.T, lower=True)
    var = jnp.exp(2 * params["log_amplitude"]) - jnp.sum(v ** 2, axis=0)
    return mean, jnp.sqrt(jnp.maximum(var, 0.0))


def scipy_neg_log_likelihood(params, x, y) -> float:
    """The same likelihood with SciPy (an independent reference)."""
    p = {k: float(v) for k, v in params.items()}
    d = (x[:, None] - x[None, :]) / np.exp(p["log_length"])
    k = np.exp(2 * p["log_amplitude"]) * np.exp(-0.5 * d ** 2) + \
        (np.exp(2 * p["log_noise"]) + 1e-8) * np.eye(len(x))
    c = scipy.linalg.cho_factor(k, lower=True)
    return float(0.5 * y @ scipy.linalg.cho_solve(c, y) + np.log(np.diag(c[0])).sum()
                 + 0.5 * len(x) * np.log(2 * np.pi))


def check_grad(params, x, y, eps: float = 1e-5) -> tuple[float, float]:
    """grad . v against the central difference of the likelihood along a direction v."""
    direction = {"log_amplitude": 0.3, "log_length": -0.5, "log_noise": 0.8}
    g = jax.grad(neg_log_likelihood)(params, x, y)
    analytic = sum(float(g[k]) * direction[k] for k in params)
    shift = lambda s: {k: params[k] + s * eps * direction[k] for k in params}
    numeric = (float(neg_log_likelihood(shift(1.0), x, y))
               - float(neg_log_likelihood(shift(-1.0), x, y))) / (2 * eps)
    return analytic, numeric


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with jax.config.enable_x64(True):
        x, y = make_data(args.seed, args.points)
        x, y = jnp.asarray(x), jnp.asarray(y)
        params = {"log_amplitude": jnp.asarray(0.0), "log_length": jnp.asarray(0.0),
                  "log_noise": jnp.asarray(np.log(0.5))}

        analytic, numeric = check_grad(params, x, y)
        rel = abs(analytic - numeric) / max(abs(numeric), 1e-12)
        grad_ok = rel < 1e-5
        print(f"gradient check (directional derivative): grad {analytic:.6f}  "
              f"finite differences {numeric:.6f}  relative error {rel:.1e}  ok: {grad_ok}")

        opt_init, opt_update, get_params = optimizers.adam(args.lr)
        opt_state = opt_init(params)

        @jax.jit
        def step(i, opt_state):
            loss, grads = jax.value_and_grad(neg_log_likelihood)(get_params(opt_state), x, y)
            return opt_update(i, grads, opt_state), loss

        losses = []
        for i in range(args.steps):
            opt_state, loss = step(i, opt_state)
            losses.append(float(loss))
            if i == 0 or (i + 1) % max(1, args.steps // 6) == 0 or i + 1 == args.steps:
                print(f"step {i + 1:>5}  negative log likelihood {losses[-1]:.4f}")
        params = get_params(opt_state)
        final = float(neg_log_likelihood(params, x, y))
        reference = scipy_neg_log_likelihood(params, np.asarray(x), np.asarray(y))
        print(f"negative log likelihood {losses[0]:.4f} -> {final:.4f} "
              f"(SciPy: {reference:.4f})")
        learned = {k: float(np.exp(v)) for k, v in params.items()}
        print("learned: amplitude {log_amplitude:.3f}  length scale {log_length:.3f}  "
              "noise {log_noise:.3f}".format(**learned) + f"  (true noise {NOISE_TRUE})")

        x_new = jnp.linspace(-2.5, 2.5, 101)
        mean, std = jax.jit(predict)(params, x, y, x_new)
        rmse = float(np.sqrt(np.mean((np.asarray(mean) - truth(np.asarray(x_new))) ** 2)))
        print(f"posterior mean vs the noiseless function: RMSE {rmse:.4f}  "
              f"(mean posterior std {float(jnp.mean(std)):.4f})")
    return {"losses": losses + [final], "scipy_loss": reference, "grad_ok": grad_ok,
            "grad_check": (analytic, numeric), "hyperparameters": learned, "rmse": rmse}


if __name__ == "__main__":
    main()
