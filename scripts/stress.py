"""Stress: the workloads of bench/ from several processes and threads at once.

``python scripts/stress.py [--minutes 10] [--processes 4] [--threads 4] [--small]``

Each worker process builds every workload (the jitted programs of ``bench/workloads.py`` at
their bench sizes, or smaller ones with ``--small``), computes a single-threaded reference
result for each, then runs them from ``--threads`` threads for ``--minutes``, each call on a
workload picked at random, comparing every result with the reference *bit for bit* (the
determinism guarantee: a program gives the same bits run to run on the CPU).  One workload
trains three steps with donated parameters; eager operations and random numbers run beside
the compiled ones; every ``--clear-every`` seconds one thread calls ``jax.clear_caches()``
while the others run.  All workers share one fresh compile cache directory, so their first
compiles race on it.  Workers report their resident memory every ``--report-every`` seconds,
and a digest of their reference results, which must agree between processes; the parent
prints RSS over time per process (lowest and highest per minute) and a summary, and exits
with status 1 on any mismatch or error.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- the workloads ---------------------------------------------------------------------------

def build_workloads(small: bool) -> dict:
    """name -> a function of no arguments returning a list of numpy arrays (one call)."""
    import tinyjax as jax
    import tinyjax.numpy as jnp
    import workloads as wl

    rng = np.random.default_rng(0)
    n_chain, n_soft, n_mat = (2 ** 16, 256, 128) if small else (2 ** 24, 4096, 1024)
    jobs = {}

    def leaves(out):
        return [np.asarray(x) for x in jax.tree_util.tree_leaves(out)]

    x = jnp.asarray(rng.standard_normal(n_chain).astype(np.float32))
    chain = jax.jit(lambda x: wl._chain(jnp, x))
    jobs["elementwise_chain"] = lambda: leaves(chain(x))

    s = jnp.asarray(rng.standard_normal((n_soft, n_soft)).astype(np.float32))
    softmax = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    jobs["softmax_rows"] = lambda: leaves(softmax(s))

    a = jnp.asarray(rng.standard_normal((n_mat, n_mat)).astype(np.float32))
    b = jnp.asarray(rng.standard_normal((n_mat, n_mat)).astype(np.float32))
    matmul = jax.jit(lambda a, b: a @ b)
    jobs["matmul"] = lambda: leaves(matmul(a, b))

    one = jnp.ones(8)
    plus_one = jax.jit(lambda x: x + 1.0)
    jobs["dispatch_overhead"] = lambda: leaves(plus_one(one))
    e = jnp.asarray(rng.standard_normal((64, 64)).astype(np.float32))
    jobs["eager_op"] = lambda: leaves(jnp.tanh(e @ e) + e.sum(0))
    key = jax.random.PRNGKey(0)
    jobs["eager_random"] = lambda: leaves((jax.random.split(key),
                                           jax.random.normal(key, (3,))))

    def step_job(setup, loss_fn):
        params, *data = setup()
        params = jax.tree_util.tree_map(jnp.asarray, params)
        data = [jnp.asarray(d) for d in data]
        step = jax.jit(wl._sgd(jax, loss_fn))
        return lambda: leaves(step(params, *data))

    batch = 16 if small else None
    jobs["mlp_step"] = step_job(wl._mlp_setup, lambda p, x, y: _mlp_loss(jnp, p, x, y))
    jobs["cnn_step"] = step_job(lambda: wl.cnn_setup(batch or 64), wl.cnn_loss_fn(jnp, jax))
    jobs["attention_step"] = step_job(
        lambda: wl.attention_setup(batch or 16, 32 if small else 128),
        wl.attention_loss_fn(jnp, jax))
    pe_params, pe_x, pe_y = wl.per_example_setup(batch or 128)
    pe_params = jax.tree_util.tree_map(jnp.asarray, pe_params)
    per_example = jax.jit(jax.vmap(jax.grad(wl.per_example_loss_fn(jnp)),
                                   in_axes=(None, 0, 0)))
    jobs["per_example_grads"] = lambda: leaves(per_example(pe_params, jnp.asarray(pe_x),
                                                            jnp.asarray(pe_y)))

    # training with donated parameters: three steps from a fresh copy of the start
    params0, x0, y0 = wl._mlp_setup(1)
    donated_step = jax.jit(wl._sgd(jax, lambda p, x, y: _mlp_loss(jnp, p, x, y)),
                           donate_argnums=0)

    def train_donated():
        params = [(jnp.asarray(w) + 0, jnp.asarray(b) + 0) for w, b in params0]
        losses = []
        for _ in range(3):
            old = params
            params, loss = donated_step(params, jnp.asarray(x0), jnp.asarray(y0))
            assert all(w.is_deleted() for w, _ in old), "donated parameters not deleted"
            losses.append(loss)
        return leaves((params, losses))
    jobs["mlp_train_donated"] = train_donated
    return jobs


def _mlp_loss(xnp, params, x, y):
    import workloads as wl
    h = x
    for w, b in params[:-1]:
        h = xnp.maximum(h @ w + b, 0.0)
    w, b = params[-1]
    return wl._xent(xnp, h @ w + b, y)


# ---- a worker process ------------------------------------------------------------------------

def worker(args) -> None:
    import tinyjax as jax
    start = time.time()
    report = lambda **kw: print(json.dumps({"t": round(time.time() - start, 1),  # noqa: E731
                                            "rss_mb": round(rss_mb(), 1),
                                            "load": round(os.getloadavg()[0], 2), **kw}),
                                flush=True)
    report(event="start")
    jobs = build_workloads(args.small)
    names = sorted(jobs)
    reference = {name: jobs[name]() for name in names}  # single-threaded, first call
    report(event="reference", workloads=names, digests={
        name: hashlib.sha256(b"".join(r.tobytes() for r in reference[name])).hexdigest()[:16]
        for name in names})
    deadline = time.time() + args.minutes * 60
    counts = {n: 0 for n in names}
    clears = [0]
    failures: list = []
    lock = threading.Lock()

    def run_thread(i: int) -> None:
        rnd = random.Random(args.seed * 1000 + args.worker * 10 + i)
        last_clear = time.time()
        while time.time() < deadline and not failures:
            name = rnd.choice(names)
            try:
                out = jobs[name]()
                same = len(out) == len(reference[name]) and all(
                    o.shape == r.shape and o.dtype == r.dtype and o.tobytes() == r.tobytes()
                    for o, r in zip(out, reference[name]))
                if not same:
                    diff = max(float(np.max(np.abs(o.astype(np.float64) - r)))
                               for o, r in zip(out, reference[name]) if o.shape == r.shape)
                    raise AssertionError(f"{name}: differs from the reference (max |diff| "
                                         f"{diff:.3g})")
            except Exception:  # noqa: BLE001 - reported and counted
                with lock:
                    failures.append(traceback.format_exc(limit=6))
                return
            with lock:
                counts[name] += 1
            if i == 0 and args.clear_every and time.time() - last_clear > args.clear_every:
                jax.clear_caches()
                clears[0] += 1
                last_clear = time.time()

    threads = [threading.Thread(target=run_thread, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(timeout=args.report_every / len(threads))
        report(event="progress", calls=sum(counts.values()))
    report(event="done", counts=counts, clears=clears[0], failures=failures)


# ---- the parent ------------------------------------------------------------------------------

def parent(args) -> int:
    cache = tempfile.mkdtemp(prefix="tinyjax-stress-cache-")
    env = dict(os.environ, TINYJAX_CACHE_DIR=cache, PYTHONPATH=str(ROOT))
    base = [sys.executable, __file__, "--minutes", str(args.minutes), "--threads",
            str(args.threads), "--report-every", str(args.report_every), "--clear-every",
            str(args.clear_every), "--seed", str(args.seed)] + (["--small"] if args.small else [])
    procs = [subprocess.Popen(base + ["--worker", str(i)], stdout=subprocess.PIPE, env=env,
                              text=True) for i in range(args.processes)]
    reports: list[list[dict]] = [[] for _ in procs]

    def collect(i, p):
        for line in p.stdout:
            try:
                reports[i].append(json.loads(line))
            except json.JSONDecodeError:
                print(f"[worker {i}] {line.rstrip()}")
    readers = [threading.Thread(target=collect, args=(i, p)) for i, p in enumerate(procs)]
    for r in readers:
        r.start()
    codes = [p.wait() for p in procs]
    for r in readers:
        r.join()
    return summarize(args, reports, codes)


def summarize(args, reports: list[list[dict]], codes: list[int]) -> int:
    print(f"stress: {args.processes} processes x {args.threads} threads, {args.minutes} min"
          f"{', small sizes' if args.small else ''}, on {os.cpu_count()} cores")
    width = max(args.report_every, 60.0)
    print(f"\nresident memory (MB, lowest-highest reported) per {width:.0f} s: time s | "
          + " | ".join(f"  proc {i}  " for i in range(len(reports))) + " | load (1 min)")
    for t in sorted({r["t"] // width * width for rs in reports for r in rs}):
        row, load = [], []
        for rs in reports:
            rss = [r["rss_mb"] for r in rs if r["t"] // width * width == t]
            row.append(f"{min(rss):5.0f}-{max(rss):<5.0f}" if rss else "     -     ")
            load += [r["load"] for r in rs if r["t"] // width * width == t]
        print(f"  {t:12.0f} | " + " | ".join(row) + f" | {max(load):5.1f}")
    ok = True
    totals: dict = {}
    for i, (rs, code) in enumerate(zip(reports, codes)):
        done = [r for r in rs if r.get("event") == "done"]
        ref = next((r for r in rs if r.get("event") == "reference"), None)
        if code != 0 or not done:
            print(f"\nworker {i}: exit status {code}, no final report")
            ok = False
            continue
        for name, n in done[0]["counts"].items():
            totals[name] = totals.get(name, 0) + n
        for failure in done[0]["failures"]:
            print(f"\nworker {i} FAILED:\n{failure}")
            ok = False
        if ref is not None:
            after = [r["rss_mb"] for r in rs if r["t"] >= ref["t"]]
            print(f"worker {i}: RSS after the reference {ref['rss_mb']:.1f} MB, peak "
                  f"{max(after):.1f}, end {after[-1]:.1f}")
    digests = [next((r["digests"] for r in rs if r.get("event") == "reference"), None)
               for rs in reports]
    differing = sorted({name for d in digests if d for name in d
                        if any(e and e.get(name) != d[name] for e in digests)})
    if differing:
        print(f"\nthe processes' references differ (not deterministic): {differing}")
        ok = False
    else:
        print(f"\nevery process computed the same reference bits for every workload")
    clears = sum(r.get("clears", 0) for rs in reports for r in rs if r.get("event") == "done")
    print(f"jax.clear_caches() called {clears} times while other threads ran")
    print("calls per workload (all compared bit for bit with the reference): " +
          ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))
    print(f"total {sum(totals.values())} calls; " + ("no mismatch, no error" if ok else
                                                     "FAILURES above"))
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=4)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--small", action="store_true", help="smaller inputs than bench/'s")
    p.add_argument("--report-every", type=float, default=15.0, help="seconds")
    p.add_argument("--clear-every", type=float, default=60.0,
                   help="seconds between jax.clear_caches() calls (0: never)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker is not None:
        worker(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
