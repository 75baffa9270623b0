"""Where the time of a training step goes on the GPU: for bench's mlp_step, cnn_step and
attention_step (or those named), the step time, the host time to queue one step, and the
DEBUG=2 table of one call (each kernel's device time between two events and its plan),
queued behind three untimed steps so that the host's launch latency stays out of it.

With ``--replay``, instead: each kernel of the step on its own, launched 50 times back to
back in a CUDA graph over scratch buffers, the best of five replays per launch -- its time
inside a step's graph, without the two events' overhead of the DEBUG=2 table.

    python3 scripts/gpu_profile.py [mlp cnn attention] [--device cuda] [--replay]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))

import tinyjax as jax  # noqa: E402
import tinyjax.numpy as jnp  # noqa: E402
from workloads import (_mlp_setup, _mlp_step_fn, _sgd, attention_loss_fn,  # noqa: E402
                       attention_setup, cnn_loss_fn, cnn_setup)

STEPS = {
    "mlp": (_mlp_setup, lambda: _mlp_step_fn(jnp, jax)),
    "cnn": (cnn_setup, lambda: _sgd(jax, cnn_loss_fn(jnp, jax))),
    "attention": (attention_setup, lambda: _sgd(jax, attention_loss_fn(jnp, jax))),
}


def profile(name: str, device, calls: int = 50) -> None:
    setup, make = STEPS[name]
    params, *data = jax.device_put(setup(), device)
    step = jax.jit(make())
    t0 = time.perf_counter()
    jax.block_until_ready(step(params, *data))
    compile_s = time.perf_counter() - t0
    for _ in range(5):
        params, _ = step(params, *data)
    jax.block_until_ready(params)
    t0 = time.perf_counter()
    for _ in range(calls):
        params, loss = step(params, *data)
    queued = time.perf_counter() - t0
    jax.block_until_ready(loss)
    total = time.perf_counter() - t0
    print(f"== {name}_step: {total / calls * 1e3:.3f} ms/step, host {queued / calls * 1e6:.0f} "
          f"us/step to queue, first call {compile_s:.2f} s")
    for _ in range(3):  # keep the GPU busy while the timed call's launches are queued
        params, _ = step(params, *data)
    os.environ["DEBUG"] = "2"
    try:
        jax.block_until_ready(step(params, *data))
    finally:
        del os.environ["DEBUG"]


def replay(name: str, reps: int = 50) -> None:
    """Print each kernel's time of the ``name`` step, replayed alone (see the module doc).
    The scratch buffers hold small random values (integers: 0, so offsets are in range)."""
    import numpy as np
    from tinyjax.backends import get_backend
    from tinyjax.compiler.codegen import prepare_kernels
    from tinyjax.compiler.lower.jaxpr import lower_jaxpr
    from tinyjax.compiler.schedule import schedule
    setup, make = STEPS[name]
    params, *data = setup()
    leaves, outs = lower_jaxpr(jax.make_jaxpr(make())(params, *data).jaxpr)
    kernels = schedule(leaves, outs).kernels
    dev = get_backend("cuda")
    drv = dev.driver
    prepare_kernels(kernels, dev)
    _, fns = dev.compile(kernels)
    rng = np.random.default_rng(0)
    start, end = drv.event(), drv.event()
    total = 0.0
    print(f"== {name}_step: {len(kernels)} kernels, each replayed {reps} times")
    for k, fn in zip(kernels, fns):
        bufs = [dev.put((rng.standard_normal(n) * 0.1).astype(dt)) for dt, n in k.bufs]
        ptrs = [b.ptr for b in bufs]
        graph = drv.capture(lambda streams: [fn.launch(drv, ptrs, streams[0]) for _ in range(reps)])
        best = float("inf")
        for _ in range(5):
            drv.record(start)
            drv.graph_launch(graph)
            drv.record(end)
            best = min(best, drv.elapsed_ms(start, end) * 1e3 / reps)
        drv.graph_destroy(graph)
        total += best
        print(f"{k.name:<6} {best:8.2f} us  [{dev.launch_info(k)}] {', '.join(k.source_lines)}")
    print(f"{'total':<6} {total:8.2f} us")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("steps", nargs="*", help=f"of {', '.join(STEPS)} (default: all)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--replay", action="store_true",
                    help="each kernel's time replayed alone in a CUDA graph")
    args = ap.parse_args()
    unknown = set(args.steps) - set(STEPS)
    if unknown:
        ap.error(f"unknown steps {sorted(unknown)}; choose from {list(STEPS)}")
    device = jax.devices(args.device)[0]
    for name in args.steps or list(STEPS):
        if args.replay:
            replay(name)
        else:
            profile(name, device)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
