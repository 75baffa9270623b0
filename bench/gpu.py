"""The workloads of ../shared/BENCH.md on a CUDA GPU: tinyjax, jax and torch on one device.

``python bench/gpu.py CASE FRAMEWORK`` prints one JSON line:
``{"value": ..., "unit": ..., "seconds": ..., ...}`` (``seconds``: median time per call;
``bytes``: the least memory traffic of one call, for the bandwidth workloads).  Failures
print ``{"error": ...}`` (the traceback goes to stderr).

Timing is device-side in the sense of BENCH.md: the device is synchronised before the clock
is read.  Each of >= 20 samples runs ``inner`` calls back to back (the device queue stays
full; training steps feed their outputs back in, so params stay on the device) and then
waits for the last result; ``inner`` is picked so that a sample lasts about 10 ms.  Only
``dispatch_overhead`` waits for every call (a blocking round trip, as JAX's figure).

``reference.copy`` / ``reference.read`` (torch only) measure the GPU's copy bandwidth (a
1 GiB ``y.copy_(x)``, bytes read + written) and read bandwidth (``x.sum()``); the torch
column of the ``matmul`` rows is the reference matmul rate.

``BENCH_GPU_PLATFORM=cpu`` runs the same code on the CPU (to check it without a GPU).
"""
from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np

from workloads import (SMALL_STEPS, _adam_step, _chain, _first, _linalg_fn, _mlp_setup,
                       _mlp_step_fn, _sgd, attention_loss_fn, attention_setup, cnn_loss_fn,
                       cnn_setup, linalg_args, per_example_loss_fn, per_example_setup,
                       rnn_loss_fn, rnn_setup)

FRAMEWORKS = ("tinyjax", "jax", "torch")
REPEATS = 20
SAMPLE_SECONDS = 0.01       # one timed sample lasts about this long
SLOW_CALL_SECONDS = 1.0     # calls slower than this get fewer samples (time limit)
MATMUL_N = 8192
LARGE = 2 ** 28             # elements of the ".large" cases: 1 GiB of float32
PLATFORM = os.environ.get("BENCH_GPU_PLATFORM", "cuda")


class Framework:
    """One framework on the GPU: arrays go there, functions run there, ``sync`` waits."""

    def __init__(self, name: str):
        self.name = name
        if name == "torch":
            import torch
            self.xnp = self.lib = torch
            if PLATFORM == "cuda" and not torch.cuda.is_available():
                raise RuntimeError("torch sees no CUDA device")
            self.dev = torch.device(PLATFORM)
            torch.backends.cuda.matmul.allow_tf32 = True   # JAX's default f32 precision on GPU
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True           # autotuned convs, as XLA's
        elif name == "jax":
            import jax
            import jax.numpy as jnp
            self.lib, self.xnp = jax, jnp
            self.dev = jax.devices("gpu" if PLATFORM == "cuda" else PLATFORM)[0]
        elif name == "tinyjax":
            import tinyjax
            import tinyjax.numpy as tnp
            self.lib, self.xnp = tinyjax, tnp
            self.dev = tinyjax.devices(PLATFORM)[0]
        else:
            raise ValueError(f"{name} is not a GPU framework (one of {FRAMEWORKS})")

    @property
    def is_torch(self) -> bool:
        return self.name == "torch"

    def put(self, a: np.ndarray, requires_grad: bool = False):
        """A host array copied to the device (float64 setups become float32: BENCH.md's dtype)."""
        a = np.asarray(a)
        if a.dtype == np.float64:
            a = a.astype(np.float32)
        if self.is_torch:
            t = self.lib.from_numpy(np.ascontiguousarray(a)).to(self.dev)
            return t.requires_grad_() if requires_grad else t
        return self.lib.device_put(a, self.dev)

    def put_tree(self, tree):
        return self.lib.tree_util.tree_map(self.put, tree)

    def jit(self, f: Callable) -> Callable:
        return f if self.is_torch else self.lib.jit(f)

    def sync(self, out: Any = None) -> None:
        """Wait until the device has finished everything queued (``out``: the last result)."""
        if self.is_torch:
            if PLATFORM == "cuda":
                self.lib.cuda.synchronize()
            return
        for leaf in self.lib.tree_util.tree_leaves(out):
            if hasattr(leaf, "block_until_ready"):
                leaf.block_until_ready()


def device_time(fw: Framework, call: Callable[[Any], Any], state: Any = None, *,
                warmup: int = 3, per_call_sync: bool = False) -> tuple[float, dict]:
    """Median seconds per ``state = call(state)`` and the sampling used (see module doc)."""
    for _ in range(warmup):
        state = call(state)
    fw.sync(state)
    start = time.perf_counter()
    state = call(state)
    fw.sync(state)
    probe = time.perf_counter() - start
    inner = max(1, min(1000, int(SAMPLE_SECONDS / max(probe, 1e-7))))
    repeats = REPEATS if probe < SLOW_CALL_SECONDS else 5
    times = []
    for _ in range(repeats):
        fw.sync(state)
        start = time.perf_counter()
        for _ in range(inner):
            state = call(state)
            if per_call_sync:
                fw.sync(state)
        fw.sync(state)
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times), {"inner": inner, "repeats": repeats}


def timed(fw: Framework, call: Callable, state: Any = None, *, unit: str = "ms",
          per_call_sync: bool = False, **extra) -> dict:
    """The result line of ``call``: ``value`` in ``unit`` ('ms', 'us/call', 'ms/step')."""
    t, meta = device_time(fw, call, state, per_call_sync=per_call_sync)
    scale = 1e6 if unit.startswith("us") else 1e3
    return {"value": t * scale, "unit": unit, "seconds": t, **meta, **extra}


def _normal(shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


# --- workloads ---------------------------------------------------------------------------


def dispatch_overhead(fw: Framework, case: str) -> dict:
    x = fw.put(np.ones(8, np.float32))
    f = fw.jit(lambda x: x + 1.0)
    return timed(fw, lambda _: f(x), unit="us/call", per_call_sync=True)


def elementwise_chain(fw: Framework, case: str) -> dict:
    n = LARGE if case.endswith(".large") else 2 ** 24
    x = fw.put(_normal(n))
    f = fw.jit(lambda x: _chain(fw.xnp, x))
    return timed(fw, lambda _: f(x), bytes=4 * n)           # x read once


def softmax_rows(fw: Framework, case: str) -> dict:
    n = math.isqrt(LARGE) if case.endswith(".large") else 4096
    x = fw.put(_normal((n, n)))
    xnp = fw.xnp

    def softmax(x):
        if fw.is_torch:
            return xnp.softmax(x, dim=-1)
        m = xnp.max(x, axis=-1, keepdims=True)
        e = xnp.exp(x - m)
        return e / xnp.sum(e, axis=-1, keepdims=True)
    f = fw.jit(softmax)
    return timed(fw, lambda _: f(x), bytes=2 * 4 * n * n)   # x read once, result written once


def matmul(fw: Framework, case: str) -> dict:
    """8192^2: ``bf16``; ``tf32``: float32 at JAX's default precision (TF32 on the GPU, torch
    with allow_tf32); ``f32``: float32 at Precision.HIGHEST (torch without TF32)."""
    kind = case.split(".")[1]
    n = MATMUL_N
    a, b = _normal((n, n), 0), _normal((n, n), 1)
    if fw.is_torch:
        torch = fw.lib
        torch.backends.cuda.matmul.allow_tf32 = kind != "f32"
        a, b = fw.put(a), fw.put(b)
        if kind == "bf16":
            a, b = a.to(torch.bfloat16), b.to(torch.bfloat16)
        f = torch.matmul
    else:
        a, b = fw.put(a), fw.put(b)
        if kind == "bf16":
            to_bf16 = fw.jit(lambda v: v.astype(fw.xnp.bfloat16))
            a, b = to_bf16(a), to_bf16(b)
        precision = fw.lib.lax.Precision.HIGHEST if kind == "f32" else None
        f = fw.jit(lambda a, b: fw.xnp.matmul(a, b, precision=precision))
    t, meta = device_time(fw, lambda _: f(a, b))
    return {"value": 2 * n ** 3 / t / 1e12, "unit": "TFLOP/s", "seconds": t, **meta}


def _jax_step(fw: Framework, setup: Callable, loss_fn: Callable) -> dict:
    """``jit(value_and_grad + SGD)``, the new params fed back into the next step."""
    params, *data = setup()
    params, data = fw.put_tree(params), [fw.put(d) for d in data]
    step = fw.jit(_sgd(fw.lib, loss_fn(fw.xnp, fw.lib)))
    return timed(fw, lambda s: step(s[0], *data), (params, None), unit="ms/step")


def _torch_step(fw: Framework, params: list, loss: Callable) -> dict:
    """Eager torch: autograd.grad of ``loss(params)``, SGD in place on the device."""
    torch = fw.lib

    def step(_):
        value = loss(params)
        grads = torch.autograd.grad(value, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p.add_(g, alpha=-0.01)
        return value
    return timed(fw, step, unit="ms/step")


def _torch_xent(torch, logits, y):
    return -(torch.log_softmax(logits, -1) * y).sum(-1).mean()


def mlp_step(fw: Framework, case: str) -> dict:
    if not fw.is_torch:
        params, x, y = _mlp_setup()
        params, x, y = fw.put_tree(params), fw.put(x), fw.put(y)
        step = fw.jit(_mlp_step_fn(fw.xnp, fw.lib))
        return timed(fw, lambda s: step(s[0], x, y), (params, None), unit="ms/step")
    torch = fw.lib
    params, x, y = _mlp_setup()
    ps = [fw.put(a, requires_grad=True) for pair in params for a in pair]
    x, y = fw.put(x), fw.put(y)

    def loss(ps):
        h = x
        for w, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = torch.relu(h @ w + b)
        return _torch_xent(torch, h @ ps[-2] + ps[-1], y)
    return _torch_step(fw, ps, loss)


def cnn_step(fw: Framework, case: str) -> dict:
    if not fw.is_torch:
        return _jax_step(fw, cnn_setup, cnn_loss_fn)
    torch = fw.lib
    F = torch.nn.functional
    p, x, y = cnn_setup()
    # NCHW / OIHW, torch's native layouts; the dense rows reordered for NCHW's flattening
    w = p["w"].reshape(14, 14, 64, 10).transpose(2, 0, 1, 3).reshape(-1, 10)
    ps = [fw.put(np.ascontiguousarray(a), requires_grad=True) for a in
          (p["c1"].transpose(3, 2, 0, 1), p["b1"], p["c2"].transpose(3, 2, 0, 1), p["b2"],
           w, p["b"])]
    x, y = fw.put(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), fw.put(y)

    def loss(ps):
        c1, b1, c2, b2, w, b = ps
        h = torch.relu(F.conv2d(x, c1, b1, padding=1))
        h = torch.relu(F.conv2d(h, c2, b2, padding=1))
        h = F.max_pool2d(h, 2).flatten(1)
        return _torch_xent(torch, h @ w + b, y)
    return _torch_step(fw, ps, loss)


def attention_step(fw: Framework, case: str, heads: int = 4) -> dict:
    if not fw.is_torch:
        return _jax_step(fw, attention_setup, attention_loss_fn)
    torch = fw.lib
    p, x, target = attention_setup()
    names = list(p)
    ps = [fw.put(p[k], requires_grad=True) for k in names]
    x, target = fw.put(x), fw.put(target)
    b, s, d = x.shape
    hd = d // heads
    causal = torch.tril(torch.ones((s, s), dtype=torch.bool, device=x.device))

    def layer_norm(x, g):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * g

    def loss(ps):
        p = dict(zip(names, ps))
        qkv = layer_norm(x, p["ln1"]) @ p["qkv"]
        q, k, v = qkv.reshape(b, s, 3, heads, hd).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(~causal, -1e9)
        att = torch.softmax(scores, -1) @ v
        h1 = x + att.transpose(1, 2).reshape(b, s, d) @ p["o"]
        h = torch.relu(layer_norm(h1, p["ln2"]) @ p["w1"] + p["b1"])
        return ((h1 + h @ p["w2"] + p["b2"] - target) ** 2).mean()
    return _torch_step(fw, ps, loss)


def per_example_grads(fw: Framework, case: str) -> dict:
    params, x, y = per_example_setup()
    x, y = fw.put(x), fw.put(y)
    if fw.is_torch:
        torch = fw.lib
        params = tuple(fw.put(a) for pair in params for a in pair)

        def loss(params, x, y):          # one example: x (784,), y (10,)
            w1, b1, w2, b2 = params
            h = torch.relu(x @ w1 + b1)
            return -(torch.log_softmax(h @ w2 + b2, -1) * y).sum()
        f = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))
    else:
        params = fw.put_tree(params)
        f = fw.jit(fw.lib.vmap(fw.lib.grad(per_example_loss_fn(fw.xnp)), in_axes=(None, 0, 0)))
    return timed(fw, lambda _: f(params, x, y), unit="ms/call")


def small_step(fw: Framework, case: str) -> dict:
    """A research-size Adam step (workloads.SMALL_STEPS), the new state fed back, in µs."""
    if fw.is_torch:
        return {"error": "not written for torch"}
    setup, loss_fn = SMALL_STEPS[case]
    params, *data = setup()
    params = fw.put_tree(params)
    data = [fw.put(d) for d in data]
    zeros = fw.lib.tree_util.tree_map(fw.xnp.zeros_like, params)
    step = fw.jit(_adam_step(fw.lib, loss_fn(fw.xnp, fw.lib)))

    def call(state):
        i, p, m, v, _ = state
        return (i + 1, *step(i, p, m, v, *data))
    return timed(fw, call, (0, params, zeros, zeros, None), unit="us/step")


def rnn_scan(fw: Framework, case: str) -> dict:
    if fw.is_torch:
        return {"error": "not written for torch"}
    params, xs = rnn_setup()
    params, xs = fw.put_tree(params), fw.put(xs)
    f = fw.jit(fw.lib.value_and_grad(rnn_loss_fn(fw.xnp, fw.lib)))
    return timed(fw, lambda _: f(params, xs), unit="ms/call")


def ode_fori(fw: Framework, case: str) -> dict:
    if fw.is_torch:
        return {"error": "not written for torch"}
    y0 = fw.put(np.linspace(-1, 1, 16).astype(np.float32))
    lax = fw.lib.lax
    f = fw.jit(lambda y: lax.fori_loop(0, 10000, lambda i, y: y + 1e-3 * fw.xnp.sin(y), y))
    return timed(fw, lambda _: f(y0), unit="ms/call")


def linalg(fw: Framework, case: str) -> dict:
    """The CPU table's library calls (workloads.Linalg) on the GPU: cuSOLVER/cuFFT."""
    fn = _linalg_fn(case, fw.name)
    args = [fw.put(a) for a in linalg_args(case)]
    return timed(fw, lambda _: _first(fn(*args)), unit="ms")


def reference(fw: Framework, case: str) -> dict:
    """torch on the same GPU: ``copy`` (1 GiB ``y.copy_(x)``, bytes read + written) and
    ``read`` (``x.sum()`` of 1 GiB) bandwidth in TB/s."""
    if not fw.is_torch:
        return {"error": "references are measured with torch"}
    torch = fw.lib
    x = torch.empty(LARGE, dtype=torch.float32, device=fw.dev).normal_()
    if case.endswith(".copy"):
        y = torch.empty_like(x)
        nbytes = 2 * x.nbytes
        t, meta = device_time(fw, lambda _: y.copy_(x))
    else:
        nbytes = x.nbytes
        t, meta = device_time(fw, lambda _: x.sum())
    gpu = torch.cuda.get_device_name() if PLATFORM == "cuda" else PLATFORM
    return {"value": nbytes / t / 1e12, "unit": "TB/s", "seconds": t, "bytes": nbytes,
            "gpu": gpu, **meta}


# case names: "<workload>" or "<workload>.<variant>"; the first case of each is BENCH.md's
WORKLOADS: dict[str, tuple[Callable, list[str]]] = {
    "reference": (reference, ["reference.copy", "reference.read"]),
    "dispatch_overhead": (dispatch_overhead, ["dispatch_overhead"]),
    "elementwise_chain": (elementwise_chain, ["elementwise_chain", "elementwise_chain.large"]),
    "softmax_rows": (softmax_rows, ["softmax_rows", "softmax_rows.large"]),
    "matmul": (matmul, ["matmul.bf16", "matmul.tf32", "matmul.f32"]),
    "mlp_step": (mlp_step, ["mlp_step"]),
    "cnn_step": (cnn_step, ["cnn_step"]),
    "attention_step": (attention_step, ["attention_step"]),
    "per_example_grads": (per_example_grads, ["per_example_grads"]),
    **{name: (small_step, [name]) for name in SMALL_STEPS},
    "rnn_scan": (rnn_scan, ["rnn_scan"]),
    "ode_fori": (ode_fori, ["ode_fori"]),
    "linalg": (linalg, ["linalg.cho_solve", "linalg.svd", "linalg.rfft"]),
}


def main(case: str, framework: str) -> None:
    try:
        fn, _ = WORKLOADS[case.split(".")[0]]
        result = fn(Framework(framework), case)
    except Exception as e:  # one failing (case, framework) is a '-' in the table
        traceback.print_exc()
        result = {"error": f"{type(e).__name__}: {e}".splitlines()[0][:200]}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
