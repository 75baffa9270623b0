"""The workloads of ../shared/BENCH.md, one framework per process.

``python bench/workloads.py CASE FRAMEWORK`` prints one JSON line:
``{"value": ..., "unit": ..., "seconds": ...}`` where ``seconds`` is the median
time per call (lower is better) and ``value`` the figure BENCH.md reports.
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Callable

import numpy as np

REPEATS = 20


def median_time(fn: Callable[[], object], repeats: int = REPEATS, warmup: int = 3,
                inner: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times)


def block(x):
    """Wait for an asynchronous result (jax, torch on a GPU)."""
    if hasattr(x, "block_until_ready"):
        return x.block_until_ready()
    return x


class Workload:
    def cases(self) -> list[str]:
        return [self.name]


# --- framework adapters ----------------------------------------------------------------


def frameworks(name: str):
    """(np-like module, jit, grad) of a framework; numpy has neither jit nor grad."""
    if name == "tinyjax":
        import tinyjax
        import tinyjax.numpy as tnp
        return tnp, tinyjax.jit, tinyjax
    if name == "jax":
        import jax
        import jax.numpy as jnp
        return jnp, jax.jit, jax
    if name == "numpy":
        return np, (lambda f: f), None
    if name == "torch":
        import torch
        return torch, (lambda f: f), None
    raise ValueError(name)


def as_input(framework: str, array: np.ndarray):
    if framework == "torch":
        import torch
        return torch.from_numpy(array)
    if framework in ("tinyjax", "jax"):
        xnp, _, _ = frameworks(framework)
        return xnp.asarray(array)
    return array


# --- workloads ------------------------------------------------------------------------


class EagerOp(Workload):
    name = "eager_op"

    def cases(self):
        return ["eager_op.add", "eager_op.ravel"]

    def run(self, case, fw):
        xnp, _, _ = frameworks(fw)
        if case == "eager_op.add":
            x = as_input(fw, np.ones(8, np.float32))
            fn = (lambda: x + 1.0)
        else:
            if fw == "torch":
                import torch
                fn = (lambda: torch.ravel(torch.ones((10, 10))))
            else:
                fn = (lambda: xnp.ravel(xnp.ones((10, 10))))
        t = median_time(lambda: block(fn()), inner=1000)
        return {"value": t * 1e6, "unit": "us/call", "seconds": t}


class Dispatch(Workload):
    name = "dispatch_overhead"

    def run(self, case, fw):
        xnp, jit, _ = frameworks(fw)
        x = as_input(fw, np.ones(8, np.float32))
        f = jit(lambda x: x + 1.0)
        t = median_time(lambda: block(f(x)), inner=1000)
        return {"value": t * 1e6, "unit": "us/call", "seconds": t}


def _chain(xnp, x):
    return xnp.sum(xnp.tanh(x * 1.5 + 0.5) * xnp.exp(-x * x) + xnp.sqrt(xnp.abs(x) + 1))


class ElementwiseChain(Workload):
    name = "elementwise_chain"

    def run(self, case, fw):
        xnp, jit, _ = frameworks(fw)
        data = np.random.default_rng(0).standard_normal(2 ** 24).astype(np.float32)
        x = as_input(fw, data)
        f = jit(lambda x: _chain(xnp, x))
        t = median_time(lambda: block(f(x)))
        return {"value": data.nbytes / t / 1e9, "unit": "GB/s", "seconds": t}


class SoftmaxRows(Workload):
    name = "softmax_rows"

    def run(self, case, fw):
        xnp, jit, _ = frameworks(fw)
        data = np.random.default_rng(0).standard_normal((4096, 4096)).astype(np.float32)
        x = as_input(fw, data)

        def softmax(x):
            if fw == "torch":
                import torch
                return torch.softmax(x, dim=-1)
            m = xnp.max(x, axis=-1, keepdims=True)
            e = xnp.exp(x - m)
            return e / xnp.sum(e, axis=-1, keepdims=True)
        f = jit(softmax)
        t = median_time(lambda: block(f(x)))
        return {"value": t * 1e3, "unit": "ms", "seconds": t}


class Matmul(Workload):
    name = "matmul"

    def cases(self):
        return ["matmul.1024", "matmul.2048"]

    def run(self, case, fw):
        xnp, jit, _ = frameworks(fw)
        n = int(case.split(".")[1])
        rng = np.random.default_rng(0)
        a = as_input(fw, rng.standard_normal((n, n)).astype(np.float32))
        b = as_input(fw, rng.standard_normal((n, n)).astype(np.float32))
        f = jit(lambda a, b: a @ b)
        t = median_time(lambda: block(f(a, b)))
        return {"value": 2 * n ** 3 / t / 1e9, "unit": "GFLOP/s", "seconds": t}


def _mlp_setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    sizes = [784, 1024, 1024, 10]
    params = [(rng.standard_normal((m, n)).astype(np.float32) * np.sqrt(2 / m),
               np.zeros(n, np.float32)) for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((256, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    return params, x, y


def _mlp_step_fn(xnp, lib):
    def loss(params, x, y):
        h = x
        for w, b in params[:-1]:
            h = xnp.maximum(h @ w + b, 0.0)
        w, b = params[-1]
        logits = h @ w + b
        logits = logits - xnp.max(logits, axis=-1, keepdims=True)
        logp = logits - xnp.log(xnp.sum(xnp.exp(logits), axis=-1, keepdims=True))
        return -xnp.mean(xnp.sum(logp * y, axis=-1))

    def step(params, x, y):
        value, grads = lib.value_and_grad(loss)(params, x, y)
        new = lib.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
        return new, value
    return step


class MlpStep(Workload):
    name = "mlp_step"

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return self.run_torch() if fw == "torch" else {"error": "no autodiff"}
        xnp, jit, lib = frameworks(fw)
        params, x, y = _mlp_setup()
        params = [(as_input(fw, w), as_input(fw, b)) for w, b in params]
        x, y = as_input(fw, x), as_input(fw, y)
        step = jit(_mlp_step_fn(xnp, lib))
        t = median_time(lambda: block(step(params, x, y)[1]))
        return {"value": t * 1e3, "unit": "ms/step", "seconds": t}

    def run_torch(self):
        import torch
        params, x, y = _mlp_setup()
        ps = [torch.tensor(p, requires_grad=True) for pair in params for p in pair]
        x, y = torch.from_numpy(x), torch.from_numpy(y)

        def step():
            h = x
            for i in range(0, len(ps) - 2, 2):
                h = torch.relu(h @ ps[i] + ps[i + 1])
            logits = h @ ps[-2] + ps[-1]
            loss = -(torch.log_softmax(logits, -1) * y).sum(-1).mean()
            grads = torch.autograd.grad(loss, ps)
            with torch.no_grad():
                for p, g in zip(ps, grads):
                    p -= 0.01 * g
            return loss
        t = median_time(step)
        return {"value": t * 1e3, "unit": "ms/step", "seconds": t}


class CompileTime(Workload):
    """First call of the jitted mlp_step in a fresh process: ``cold`` with an empty compiler
    disk cache, ``warm`` with the cache a previous process left (tinyjax only: JAX keeps no
    persistent cache by default, so both of its figures are cold)."""
    name = "compile_time"

    def cases(self):
        return ["compile_time.cold", "compile_time.warm"]

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no jit"}
        import os
        import shutil
        import subprocess
        import tempfile
        cache = os.environ.get("BENCH_CACHE_DIR") or tempfile.mkdtemp(prefix="tj-bench-")
        try:
            if fw == "tinyjax":
                os.environ["TINYJAX_CACHE_DIR"] = cache
                if case.endswith("warm"):
                    env = dict(os.environ, BENCH_CACHE_DIR=cache)
                    subprocess.run([sys.executable, __file__, "compile_time.cold", fw],
                                   env=env, check=True, capture_output=True)
            xnp, jit, lib = frameworks(fw)
            params, x, y = _mlp_setup()
            params = [(as_input(fw, w), as_input(fw, b)) for w, b in params]
            x, y = as_input(fw, x), as_input(fw, y)
            step = jit(_mlp_step_fn(xnp, lib))
            start = time.perf_counter()
            block(step(params, x, y)[1])
            t = time.perf_counter() - start
        finally:
            if not os.environ.get("BENCH_CACHE_DIR"):
                shutil.rmtree(cache, ignore_errors=True)
        return {"value": t, "unit": "s", "seconds": t}


def _xent(xnp, logits, y):
    logits = logits - xnp.max(logits, axis=-1, keepdims=True)
    logp = logits - xnp.log(xnp.sum(xnp.exp(logits), axis=-1, keepdims=True))
    return -xnp.mean(xnp.sum(logp * y, axis=-1))


def _sgd(lib, loss):
    def step(params, *data):
        value, grads = lib.value_and_grad(loss)(params, *data)
        new = lib.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads)
        return new, value
    return step


def _run_step(fw, setup, loss_fn):
    """Time ``jit(value_and_grad + SGD)`` of ``loss_fn(xnp, lib)`` on ``setup()``."""
    if fw in ("numpy", "torch"):
        return {"error": "no autodiff" if fw == "numpy" else "not written for torch"}
    xnp, jit, lib = frameworks(fw)
    params, *data = setup()
    params = lib.tree_util.tree_map(lambda a: as_input(fw, a), params)
    data = [as_input(fw, d) for d in data]
    step = jit(_sgd(lib, loss_fn(xnp, lib)))
    t = median_time(lambda: block(step(params, *data)[1]))
    return {"value": t * 1e3, "unit": "ms/step", "seconds": t}


# --- cnn_step ----------------------------------------------------------------------------


def cnn_setup(batch: int = 64, seed: int = 0):
    """Params (NHWC / HWIO) and a batch of 28x28x1 images with one-hot labels."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
    params = {"c1": he((3, 3, 1, 32), 9), "b1": np.zeros(32, np.float32),
              "c2": he((3, 3, 32, 64), 9 * 32), "b2": np.zeros(64, np.float32),
              "w": he((14 * 14 * 64, 10), 14 * 14 * 64), "b": np.zeros(10, np.float32)}
    x = rng.standard_normal((batch, 28, 28, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return params, x, y


def cnn_loss_fn(xnp, lib):
    lax = lib.lax
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(p, x, y):
        h = lax.conv_general_dilated(x, p["c1"], (1, 1), "SAME", dimension_numbers=dn)
        h = xnp.maximum(h + p["b1"], 0.0)
        h = lax.conv_general_dilated(h, p["c2"], (1, 1), "SAME", dimension_numbers=dn)
        h = xnp.maximum(h + p["b2"], 0.0)
        h = lax.reduce_window(h, -xnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape((h.shape[0], -1))
        return _xent(xnp, h @ p["w"] + p["b"], y)
    return loss


class CnnStep(Workload):
    name = "cnn_step"

    def run(self, case, fw):
        return _run_step(fw, cnn_setup, cnn_loss_fn)


# --- attention_step ----------------------------------------------------------------------


def attention_setup(batch: int = 16, seq: int = 128, d: int = 256, mlp: int = 1024,
                    seed: int = 0):
    """Params of one pre-LN transformer block, inputs and MSE targets."""
    rng = np.random.default_rng(seed)

    def w(m, n):
        return (rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32)
    params = {"ln1": np.ones(d, np.float32), "ln2": np.ones(d, np.float32),
              "qkv": w(d, 3 * d), "o": w(d, d), "w1": w(d, mlp),
              "b1": np.zeros(mlp, np.float32), "w2": w(mlp, d), "b2": np.zeros(d, np.float32)}
    x = rng.standard_normal((batch, seq, d)).astype(np.float32)
    target = rng.standard_normal((batch, seq, d)).astype(np.float32)
    return params, x, target


def attention_loss_fn(xnp, lib, heads: int = 4):
    def layer_norm(x, g):
        mu = xnp.mean(x, axis=-1, keepdims=True)
        var = xnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
        return (x - mu) / xnp.sqrt(var + 1e-5) * g

    def loss(p, x, target):
        b, s, d = x.shape
        hd = d // heads
        qkv = layer_norm(x, p["ln1"]) @ p["qkv"]                      # b s 3d
        qkv = qkv.reshape((b, s, 3, heads, hd)).transpose((2, 0, 3, 1, 4))
        q, k, v = qkv[0], qkv[1], qkv[2]                             # b h s hd
        scores = q @ k.transpose((0, 1, 3, 2)) / np.sqrt(hd).astype(np.float32)
        causal = xnp.tril(xnp.ones((s, s), dtype=bool))
        scores = xnp.where(causal, scores, -1e9)
        scores = scores - xnp.max(scores, axis=-1, keepdims=True)
        e = xnp.exp(scores)
        att = (e / xnp.sum(e, axis=-1, keepdims=True)) @ v           # b h s hd
        x = x + att.transpose((0, 2, 1, 3)).reshape((b, s, d)) @ p["o"]
        h = xnp.maximum(layer_norm(x, p["ln2"]) @ p["w1"] + p["b1"], 0.0)
        x = x + h @ p["w2"] + p["b2"]
        return xnp.mean((x - target) ** 2)
    return loss


class AttentionStep(Workload):
    name = "attention_step"

    def run(self, case, fw):
        return _run_step(fw, attention_setup, attention_loss_fn)


# --- per_example_grads -------------------------------------------------------------------


def per_example_setup(batch: int = 128, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = [(rng.standard_normal((784, 256)).astype(np.float32) * np.sqrt(2 / 784),
               np.zeros(256, np.float32)),
              (rng.standard_normal((256, 10)).astype(np.float32) * np.sqrt(2 / 256),
               np.zeros(10, np.float32))]
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return params, x, y


def per_example_loss_fn(xnp):
    def loss(params, x, y):          # one example: x (784,), y (10,)
        (w1, b1), (w2, b2) = params
        h = xnp.maximum(x @ w1 + b1, 0.0)
        return _xent(xnp, h @ w2 + b2, y)
    return loss


class PerExampleGrads(Workload):
    name = "per_example_grads"

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no vmap/grad" if fw == "numpy" else "not written for torch"}
        xnp, jit, lib = frameworks(fw)
        params, x, y = per_example_setup()
        params = [(as_input(fw, w), as_input(fw, b)) for w, b in params]
        x, y = as_input(fw, x), as_input(fw, y)
        f = jit(lib.vmap(lib.grad(per_example_loss_fn(xnp)), in_axes=(None, 0, 0)))
        t = median_time(lambda: block(f(params, x, y)[0][0]))
        return {"value": t * 1e3, "unit": "ms/call", "seconds": t}


# --- eager_random ------------------------------------------------------------------------


class EagerRandom(Workload):
    name = "eager_random"

    def cases(self):
        # the first call before the median: with an empty TINYJAX_CACHE_DIR it compiles
        return ["eager_random.split", "eager_random.normal", "eager_random.normal_large_first",
                "eager_random.normal_large"]

    def run(self, case, fw):
        if fw not in ("tinyjax", "jax"):
            return {"error": "no counter-based PRNG keys"}
        _, _, lib = frameworks(fw)
        key = lib.random.PRNGKey(0)
        if case.startswith("eager_random.normal_large"):
            # un-jitted normal(key, (5000, 5000)): the first call of the process (tracing
            # and compiling, or loading the compiled kernel from the disk cache), or the
            # median of later calls
            def draw():
                return block(lib.random.normal(key, (5000, 5000)))
            if case.endswith("_first"):
                start = time.perf_counter()
                draw()
                t = time.perf_counter() - start
            else:
                t = median_time(draw, repeats=5, warmup=1)
            return {"value": t, "unit": "s/call", "seconds": t}
        if case == "eager_random.split":
            fn = (lambda: lib.random.split(key))
        else:
            fn = (lambda: lib.random.normal(key, (3,)))
        t = median_time(lambda: block(fn()), inner=200)
        return {"value": t * 1e6, "unit": "us/call", "seconds": t}


# --- linear algebra and FFT (library calls) --------------------------------------------


def _linalg_fn(case: str, fw: str) -> Callable:
    """The library routine of ``case`` in framework ``fw`` (jitted where it can be)."""
    if fw == "torch":
        import torch
        return {"linalg.cho_solve": lambda a, b: torch.cholesky_solve(b, torch.linalg.cholesky(a)),
                "linalg.svd": lambda a: torch.linalg.svd(a, full_matrices=False),
                "linalg.rfft": torch.fft.rfft}[case]
    if fw == "numpy":
        import scipy.linalg
        return {"linalg.cho_solve": lambda a, b: scipy.linalg.cho_solve(
                    scipy.linalg.cho_factor(a, lower=True), b),
                "linalg.svd": lambda a: np.linalg.svd(a, full_matrices=False),
                "linalg.rfft": np.fft.rfft}[case]
    xnp, jit, lib = frameworks(fw)
    __import__(f"{lib.__name__}.scipy.linalg")
    sl = lib.scipy.linalg
    return jit({"linalg.cho_solve": lambda a, b: sl.cho_solve(sl.cho_factor(a, lower=True), b),
                "linalg.svd": lambda a: xnp.linalg.svd(a, full_matrices=False),
                "linalg.rfft": xnp.fft.rfft}[case])


class Linalg(Workload):
    """Library calls: Cholesky factorisation + solve of a 1024x1024 SPD matrix (16
    right-hand sides), the thin SVD of a 512x512 matrix, the real FFT of 2^20 points
    (all float32)."""
    name = "linalg"

    def cases(self):
        return ["linalg.cho_solve", "linalg.svd", "linalg.rfft"]

    def run(self, case, fw):
        fn = _linalg_fn(case, fw)
        args = [as_input(fw, a) for a in linalg_args(case)]
        t = median_time(lambda: block(_first(fn(*args))))
        return {"value": t * 1e3, "unit": "ms", "seconds": t}


def linalg_args(case: str) -> list[np.ndarray]:
    """The float32 operands of a ``linalg.*`` case (seeded)."""
    rng = np.random.default_rng(0)
    if case == "linalg.cho_solve":
        m = rng.standard_normal((1024, 1024)).astype(np.float32)
        return [m @ m.T / 1024 + np.eye(1024, dtype=np.float32),
                rng.standard_normal((1024, 16)).astype(np.float32)]
    if case == "linalg.svd":
        return [rng.standard_normal((512, 512)).astype(np.float32)]
    return [rng.standard_normal(2 ** 20).astype(np.float32)]


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out
# --- research-size workloads (BENCH.md's second table) --------------------------------------


def _adam_step(lib, loss, lr: float = 1e-3, b1: float = 0.9, b2: float = 0.999,
               eps: float = 1e-8):
    """``jit``-able ``step(i, params, m, v, *data) -> (params, m, v, loss)``: value_and_grad
    and an Adam update written with tree_map (the step counter ``i`` a Python int)."""
    tm = lib.tree_util.tree_map

    def step(i, params, m, v, *data):
        value, g = lib.value_and_grad(loss)(params, *data)
        m = tm(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tm(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        t = i + 1
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = tm(lambda p, m, v: p - lr * (m / c1) / ((v / c2) ** 0.5 + eps), params, m, v)
        return params, m, v, value
    return step


def small_mlp_setup(batch: int = 128, seed: int = 0):
    """MLP 40-100-100-10 on MNIST-1D-sized inputs (params as a list of dicts)."""
    rng = np.random.default_rng(seed)
    sizes = [40, 100, 100, 10]
    params = [{"w": (rng.standard_normal((m, n)) * np.sqrt(2 / m)).astype(np.float32),
               "b": np.zeros(n, np.float32)} for m, n in zip(sizes[:-1], sizes[1:])]
    x = rng.standard_normal((batch, 40)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return params, x, y


def small_mlp_loss_fn(xnp, lib):
    def loss(params, x, y):
        h = x
        for layer in params[:-1]:
            h = xnp.maximum(h @ layer["w"] + layer["b"], 0.0)
        return _xent(xnp, h @ params[-1]["w"] + params[-1]["b"], y)
    return loss


def small_cnn_setup(batch: int = 128, seed: int = 0):
    """1-D CNN on length-40 sequences (NWC / WIO): conv k5 s2 1->32, k3 s2 32->32,
    k3 s1 32->32, dense -> 10."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2 / fan_in)).astype(np.float32)
    params = {"c1": he((5, 1, 32), 5), "b1": np.zeros(32, np.float32),
              "c2": he((3, 32, 32), 96), "b2": np.zeros(32, np.float32),
              "c3": he((3, 32, 32), 96), "b3": np.zeros(32, np.float32),
              "w": he((10 * 32, 10), 320), "b": np.zeros(10, np.float32)}
    x = rng.standard_normal((batch, 40, 1)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return params, x, y


def small_cnn_loss_fn(xnp, lib):
    lax = lib.lax
    dn = ("NWC", "WIO", "NWC")

    def loss(p, x, y):
        h = x
        for c, b, s in (("c1", "b1", 2), ("c2", "b2", 2), ("c3", "b3", 1)):
            h = lax.conv_general_dilated(h, p[c], (s,), "SAME", dimension_numbers=dn)
            h = xnp.maximum(h + p[b], 0.0)
        h = h.reshape((h.shape[0], -1))
        return _xent(xnp, h @ p["w"] + p["b"], y)
    return loss


def char_lm_setup(batch: int = 16, seq: int = 32, d: int = 64, mlp: int = 256,
                  vocab: int = 32, layers: int = 2, seed: int = 0):
    """A 2-layer pre-LN transformer LM: token ids and their next tokens (one-hot)."""
    rng = np.random.default_rng(seed)

    def w(m, n):
        return (rng.standard_normal((m, n)) / np.sqrt(m)).astype(np.float32)
    params = {"emb": w(vocab, d), "pos": (rng.standard_normal((seq, d)) * 0.02).astype(
        np.float32), "lnf": np.ones(d, np.float32), "out": w(d, vocab),
        "layers": [{"ln1": np.ones(d, np.float32), "ln2": np.ones(d, np.float32),
                    "qkv": w(d, 3 * d), "o": w(d, d), "w1": w(d, mlp),
                    "b1": np.zeros(mlp, np.float32), "w2": w(mlp, d),
                    "b2": np.zeros(d, np.float32)} for _ in range(layers)]}
    tokens = rng.integers(0, vocab, (batch, seq + 1))
    x = np.eye(vocab, dtype=np.float32)[tokens[:, :-1]]
    y = np.eye(vocab, dtype=np.float32)[tokens[:, 1:]]
    return params, x, y


def char_lm_loss_fn(xnp, lib, heads: int = 4):
    def layer_norm(x, g):
        mu = xnp.mean(x, axis=-1, keepdims=True)
        var = xnp.mean((x - mu) ** 2, axis=-1, keepdims=True)
        return (x - mu) / xnp.sqrt(var + 1e-5) * g

    def block(p, x):
        b, s, d = x.shape
        hd = d // heads
        qkv = (layer_norm(x, p["ln1"]) @ p["qkv"]).reshape((b, s, 3, heads, hd))
        qkv = qkv.transpose((2, 0, 3, 1, 4))
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = q @ k.transpose((0, 1, 3, 2)) / np.float32(np.sqrt(hd))
        scores = xnp.where(xnp.tril(xnp.ones((s, s), dtype=bool)), scores, -1e9)
        scores = scores - xnp.max(scores, axis=-1, keepdims=True)
        e = xnp.exp(scores)
        att = (e / xnp.sum(e, axis=-1, keepdims=True)) @ v
        x = x + att.transpose((0, 2, 1, 3)).reshape((b, s, d)) @ p["o"]
        h = xnp.maximum(layer_norm(x, p["ln2"]) @ p["w1"] + p["b1"], 0.0)
        return x + h @ p["w2"] + p["b2"]

    def loss(p, x, y):
        h = x @ p["emb"] + p["pos"]
        for layer in p["layers"]:
            h = block(layer, h)
        logits = layer_norm(h, p["lnf"]) @ p["out"]
        return _xent(xnp, logits.reshape((-1, logits.shape[-1])), y.reshape((-1, y.shape[-1])))
    return loss


SMALL_STEPS = {"small_mlp_step": (small_mlp_setup, small_mlp_loss_fn),
               "small_cnn_step": (small_cnn_setup, small_cnn_loss_fn),
               "char_lm_step": (char_lm_setup, char_lm_loss_fn)}


def _small_step(fw: str, name: str):
    """(step, params, m, v, data) of a research-size Adam step on ``fw``."""
    xnp, jit, lib = frameworks(fw)
    setup, loss_fn = SMALL_STEPS[name]
    params, *data = setup()
    params = lib.tree_util.tree_map(lambda a: as_input(fw, a), params)
    zeros = lib.tree_util.tree_map(xnp.zeros_like, params)
    data = [as_input(fw, d) for d in data]
    return jit(_adam_step(lib, loss_fn(xnp, lib))), params, zeros, zeros, data


class SmallStep(Workload):
    """One ``jit`` Adam step of a research-size model, in µs; the new params are fed back
    (the step counter a Python int, as training loops pass it)."""

    def __init__(self, name: str):
        self.name = name

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no autodiff" if fw == "numpy" else "not written for torch"}
        step, params, m, v, data = _small_step(fw, self.name)
        state = [params, m, v, 0]

        def one():
            p, m, v, loss = step(state[3], *state[:3], *data)
            state[:] = [p, m, v, state[3] + 1]
            return block(loss)
        t = median_time(one, repeats=50, warmup=5, inner=10)
        return {"value": t * 1e6, "unit": "us/step", "seconds": t}


def rnn_setup(hidden: int = 64, steps: int = 1000, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = {"wh": (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32),
              "wx": (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32),
              "b": np.zeros(hidden, np.float32)}
    xs = rng.standard_normal((steps, hidden)).astype(np.float32)
    return params, xs


def rnn_loss_fn(xnp, lib):
    def loss(p, xs):
        def cell(h, x):
            h = xnp.tanh(h @ p["wh"] + x @ p["wx"] + p["b"])
            return h, xnp.sum(h * h)
        h, ys = lib.lax.scan(cell, xnp.zeros(p["b"].shape, xnp.float32), xs)
        return xnp.mean(ys) + xnp.sum(h)
    return loss


class RnnScan(Workload):
    """``jit(value_and_grad)`` of a tanh RNN scanned over 1000 steps, in ms."""
    name = "rnn_scan"

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no autodiff" if fw == "numpy" else "not written for torch"}
        xnp, jit, lib = frameworks(fw)
        params, xs = rnn_setup()
        params = lib.tree_util.tree_map(lambda a: as_input(fw, a), params)
        xs = as_input(fw, xs)
        f = jit(lib.value_and_grad(rnn_loss_fn(xnp, lib)))
        t = median_time(lambda: block(f(params, xs)[0]))
        return {"value": t * 1e3, "unit": "ms/call", "seconds": t}


class OdeFori(Workload):
    """``jit`` of a fori_loop over 10,000 Euler steps of ``y + 1e-3 * sin(y)`` on 16 floats."""
    name = "ode_fori"

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no fori_loop" if fw == "numpy" else "not written for torch"}
        xnp, jit, lib = frameworks(fw)
        y0 = as_input(fw, np.linspace(-1, 1, 16).astype(np.float32))
        f = jit(lambda y: lib.lax.fori_loop(0, 10000, lambda i, y: y + 1e-3 * xnp.sin(y), y))
        t = median_time(lambda: block(f(y0)))
        return {"value": t * 1e3, "unit": "ms/call", "seconds": t}


class SmallCompile(Workload):
    """The first call of each of the three research-size steps in a fresh process with an
    empty compiler disk cache, in s (the sum)."""
    name = "small_compile"

    def run(self, case, fw):
        if fw in ("numpy", "torch"):
            return {"error": "no jit"}
        import os
        import shutil
        import tempfile
        cache = tempfile.mkdtemp(prefix="tj-bench-")
        try:
            os.environ["TINYJAX_CACHE_DIR"] = cache
            steps = [_small_step(fw, name) for name in SMALL_STEPS]
            start = time.perf_counter()
            for step, params, m, v, data in steps:
                block(step(0, params, m, v, *data)[3])
            t = time.perf_counter() - start
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        return {"value": t, "unit": "s", "seconds": t}


WORKLOADS = {w.name: w for w in (EagerOp(), EagerRandom(), Dispatch(), ElementwiseChain(),
                                 SoftmaxRows(), Matmul(), MlpStep(), CnnStep(),
                                 AttentionStep(), PerExampleGrads(), CompileTime(),
                                 *(SmallStep(name) for name in SMALL_STEPS), RnnScan(),
                                 OdeFori(), SmallCompile(), Linalg())}


def main(case: str, framework: str) -> None:
    workload = WORKLOADS[case.split(".")[0]]
    print(json.dumps(workload.run(case, framework)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
