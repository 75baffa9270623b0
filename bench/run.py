"""Benchmarks of ../shared/BENCH.md: tinyjax against numpy, jax, torch, tinygrad.

Each (workload, framework) pair runs in its own process; the parent prints one
table with the median time and the ratio tinyjax / peer, and writes the results
to ``bench/results/<host>-<date>.json``.  Peers that are not installed are
skipped.  Timings are medians of >= 20 timed calls after warm-up.

    python bench/run.py                  # every workload
    python bench/run.py eager_op matmul  # a selection
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FRAMEWORKS = ("tinyjax", "numpy", "jax", "torch")


def available(framework: str) -> bool:
    if framework in ("tinyjax", "numpy"):
        return True
    try:
        __import__(framework)
        return True
    except Exception:
        return False


def run_one(workload: str, framework: str, timeout: float = 600) -> dict:
    cmd = [sys.executable, str(HERE / "workloads.py"), workload, framework]
    env = dict(os.environ, PYTHONPATH=str(HERE.parent) + os.pathsep +
               os.environ.get("PYTHONPATH", ""))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": "timeout"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {"error": "no result"}


def main(argv: list[str]) -> None:
    from workloads import WORKLOADS  # noqa: E402  (same folder)
    names = argv or list(WORKLOADS)
    results: dict[str, dict[str, dict]] = {}
    peers = [f for f in FRAMEWORKS if available(f)]
    print(f"frameworks: {', '.join(peers)}")
    header = f"{'workload':<28}" + "".join(f"{f:>14}" for f in peers) + \
        "".join(f"{'tj/' + f:>10}" for f in peers if f != "tinyjax")
    print(header)
    for name in names:
        for case in WORKLOADS[name].cases():
            row = {f: run_one(case, f) for f in peers}
            results[case] = row
            unit = next((r.get("unit") for r in row.values() if "unit" in r), "")
            cells = []
            for f in peers:
                r = row[f]
                cells.append(f"{r['value']:>14.4g}" if "value" in r else f"{'-':>14}")
            ratios = []
            tj = row.get("tinyjax", {}).get("seconds")
            for f in peers:
                if f == "tinyjax":
                    continue
                peer = row[f].get("seconds")
                ratios.append(f"{tj / peer:>10.2f}" if tj and peer else f"{'-':>10}")
            print(f"{case + ' (' + unit + ')':<28}" + "".join(cells) + "".join(ratios))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = out_dir / f"{platform.node() or 'host'}-{stamp}.json"
    path.write_text(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                                "results": results}, indent=1))
    print(f"results written to {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main(sys.argv[1:])
