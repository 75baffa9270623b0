"""Benchmarks of ../shared/BENCH.md: tinyjax against numpy, jax, torch, tinygrad.

Each (workload, framework) pair runs in its own process; the parent prints one
table with the median time and the ratio tinyjax / peer, and writes the results
to ``bench/results/<host>-<date>.json``.  Peers that are not installed are
skipped.  Timings are medians of >= 20 timed calls after warm-up.

    python bench/run.py                  # every workload
    python bench/run.py eager_op matmul  # a selection
    python bench/run.py --device cuda    # on the GPU (gpu.py): tinyjax, jax, torch
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("tinyjax", "numpy", "jax", "torch")
GPU_FRAMEWORKS = ("tinyjax", "jax", "torch")
SCRIPT = {"cpu": "workloads.py", "cuda": "gpu.py"}
TIMEOUT = {"cpu": 600.0, "cuda": 90.0}     # seconds per (case, framework) process
BUDGET = {"cpu": None, "cuda": 360.0}      # seconds for the whole run; then cases are skipped


def available(framework: str) -> bool:
    if framework in ("tinyjax", "numpy"):
        return True
    try:
        __import__(framework)
        return True
    except Exception:
        return False


def run_one(workload: str, framework: str, timeout: float = 600,
            script: str = "workloads.py") -> dict:
    cmd = [sys.executable, str(HERE / script), workload, framework]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout ({timeout:.0f} s)"}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 and not lines:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(lines[-1]) if lines else {"error": "no result"}


# --- the table -----------------------------------------------------------------------------


def ratio_peers(peers: list[str]) -> list[str]:
    return [f for f in peers if f != "tinyjax"]


def header(peers: list[str], extra: tuple[str, ...] = ()) -> str:
    return f"{'workload':<28}" + "".join(f"{f:>14}" for f in peers) + \
        "".join(f"{'tj/' + f:>10}" for f in ratio_peers(peers)) + \
        "".join(f"{e:>10}" for e in extra)


def table_row(case: str, row: dict[str, dict], peers: list[str],
              extra: tuple[float | None, ...] = ()) -> str:
    """One line: each framework's figure, tinyjax's time / each peer's, then ``extra``
    (percentages, '-' where None)."""
    unit = next((r.get("unit") for r in row.values() if "unit" in r), "")
    cells = [f"{row[f]['value']:>14.4g}" if "value" in row[f] else f"{'-':>14}" for f in peers]
    tj = row.get("tinyjax", {}).get("seconds")
    ratios = []
    for f in ratio_peers(peers):
        peer = row[f].get("seconds")
        ratios.append(f"{tj / peer:>10.2f}" if tj and peer else f"{'-':>10}")
    pcts = [f"{p:>9.0f}%" if p is not None else f"{'-':>10}" for p in extra]
    label = f"{case} ({unit})" if unit else case
    return f"{label:<28}" + "".join(cells) + "".join(ratios) + "".join(pcts)


def write_results(data: dict, device: str) -> Path:
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tag = "" if device == "cpu" else f"{device}-"
    path = out_dir / f"{platform.node() or 'host'}-{tag}{stamp}.json"
    path.write_text(json.dumps(data, indent=1))
    return path


# --- cpu -------------------------------------------------------------------------------------


def main_cpu(names: list[str], timeout: float) -> None:
    from workloads import WORKLOADS  # noqa: E402  (same folder)
    results: dict[str, dict[str, dict]] = {}
    peers = [f for f in FRAMEWORKS if available(f)]
    print(f"frameworks: {', '.join(peers)}")
    print(header(peers))
    for name in names:
        for case in WORKLOADS[name].cases():
            row = {f: run_one(case, f, timeout) for f in peers}
            results[case] = row
            print(table_row(case, row, peers))
    path = write_results({"machine": platform.platform(), "cpus": os.cpu_count(),
                          "results": results}, "cpu")
    print(f"results written to {path.relative_to(HERE.parent)}")


# --- cuda ------------------------------------------------------------------------------------


def reference_pct(case: str, fw: str, row: dict[str, dict], refs: dict[str, dict]
                  ) -> float | None:
    """% of the GPU's reference reached by ``fw``: bandwidth workloads (those reporting
    ``bytes``) against torch's copy bandwidth, matmul against torch's rate on that case."""
    r = row.get(fw, {})
    if "seconds" not in r:
        return None
    copy = refs.get("reference.copy", {})
    if "bytes" in r and "seconds" in copy:
        return 100 * (r["bytes"] / r["seconds"]) / (copy["bytes"] / copy["seconds"])
    torch = row.get("torch", {})
    if case.startswith("matmul") and "seconds" in torch:
        return 100 * torch["seconds"] / r["seconds"]
    return None


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=20)
        return out.stdout.strip().splitlines()[0]
    except Exception:
        return ""


def main_cuda(names: list[str], timeout: float, budget: float | None) -> None:
    from gpu import WORKLOADS  # noqa: E402  (same folder)
    start = time.monotonic()

    def run(case: str, fw: str) -> dict:
        if fw not in installed:
            return {"error": f"{fw} is not installed"}
        left = timeout if budget is None else min(timeout, budget - (time.monotonic() - start))
        if left < 5:
            return {"error": "skipped: the run's time budget is spent"}
        return run_one(case, fw, left, SCRIPT["cuda"])

    peers = list(GPU_FRAMEWORKS)           # all of them: a missing one shows as '-'
    installed = [f for f in peers if available(f)]
    gpu = gpu_name()
    print(f"frameworks: {', '.join(installed)}; device: cuda{' (' + gpu + ')' if gpu else ''}")
    refs = {case: run(case, "torch") for case in WORKLOADS["reference"][1]}
    for case, r in refs.items():
        what = {"reference.copy": "copy bandwidth, y.copy_(x), read + write of 1 GiB",
                "reference.read": "read bandwidth, x.sum() of 1 GiB"}[case]
        fig = f"{r['value']:.3g} {r['unit']}" if "value" in r else f"- ({r.get('error')})"
        print(f"reference (torch): {what}: {fig}")
    print(header(peers, ("tj %ref", "jax %ref")))
    results: dict[str, dict[str, dict]] = {}
    for name in names:
        for case in WORKLOADS[name][1]:
            row = {f: run(case, f) for f in peers}
            pcts = tuple(reference_pct(case, f, row, refs) for f in ("tinyjax", "jax"))
            for f, p in zip(("tinyjax", "jax"), pcts):
                if p is not None:
                    row[f]["pct_of_reference"] = round(p, 1)
            results[case] = row
            print(table_row(case, row, peers, pcts))
    peaks = {c: results[c].get("torch", {}).get("value") for c in results
             if c.startswith("matmul")}
    if peaks:
        print("reference (torch): matmul 8192^2: " + ", ".join(
            f"{c.split('.')[1]} {v:.4g} TFLOP/s" if v else f"{c.split('.')[1]} -"
            for c, v in peaks.items()))
    print("%ref: bandwidth workloads as % of the copy bandwidth (bytes: least traffic of one "
          "call); matmul as % of torch's rate")
    errors = {f"{c}/{f}": r["error"] for c, row in results.items() for f, r in row.items()
              if "error" in r}
    for key, err in errors.items():
        print(f"  {key}: {err}")
    path = write_results({"machine": platform.platform(), "cpus": os.cpu_count(),
                          "device": "cuda", "gpu": gpu or next(
                              (r["gpu"] for r in refs.values() if "gpu" in r), ""),
                          "references": refs, "results": results}, "cuda")
    print(f"results written to {path.relative_to(HERE.parent)} "
          f"({time.monotonic() - start:.0f} s)")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the BENCH.md workloads.")
    parser.add_argument("workloads", nargs="*", help="workload names (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per (case, framework) process (cpu 600, cuda 90)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds for the whole run, then the remaining cases are "
                             "skipped (cuda 360; cpu: none)")
    args = parser.parse_args(argv)
    if args.device == "cuda":
        from gpu import WORKLOADS
        known = [w for w in WORKLOADS if w != "reference"]
    else:
        from workloads import WORKLOADS
        known = list(WORKLOADS)
    unknown = [w for w in args.workloads if w not in known]
    if unknown:
        parser.error(f"unknown {args.device} workload(s) {', '.join(unknown)}; "
                     f"choose from {', '.join(known)}")
    args.workloads = args.workloads or known
    args.timeout = args.timeout or TIMEOUT[args.device]
    args.budget = args.budget or BUDGET[args.device]
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.device == "cuda":
        main_cuda(args.workloads, args.timeout, args.budget)
    else:
        main_cpu(args.workloads, args.timeout)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main(sys.argv[1:])
