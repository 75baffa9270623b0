"""The main job against JAX: ``examples/mnist1d.py`` run with tinyjax and, with only its
imports changed, with JAX, alternating model by model in one sitting.

    python bench/mnist1d_vs_jax.py --jax-python /path/to/venv-with-jax/bin/python

The JAX interpreter needs ``jax`` and ``mnist1d``; this one needs tinyjax.  Prints one
table (steps/s of each and their ratio) and writes it to ``bench/results/`` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "mnist1d.py"
JAX_IMPORTS = [("import tinyjax.numpy as jnp", "import jax.numpy as jnp"),
               ("import tinyjax as jax", "import jax"),
               ("from tinyjax.", "from jax."), ("from tinyjax import", "from jax import")]


def jax_copy(directory: str) -> Path:
    """The example with its imports pointed at JAX (nothing else changed)."""
    source = EXAMPLE.read_text()
    for old, new in JAX_IMPORTS:
        assert old in source, f"examples/mnist1d.py no longer has {old!r}"
        source = source.replace(old, new)
    path = Path(directory) / "mnist1d_with_jax.py"
    path.write_text(source)
    return path


def run(python: str, script: Path, model: str, steps: int) -> dict:
    """One model trained by one framework in a fresh process: its result row."""
    out = subprocess.run([python, str(script), "--model", model, "--steps", str(steps)],
                         capture_output=True, text=True, cwd=ROOT, check=True,
                         env={**os.environ, "MPLBACKEND": "Agg"}).stdout
    row = [line.split() for line in out.splitlines() if line.split()[:1] == [model]][-1]
    return {"test_accuracy": float(row[1]), "steps_per_s": float(row[2]),
            "compile_s": float(row[3]), "kernels": int(row[4]) if row[4].isdigit() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax-python", required=True, help="a Python with jax and mnist1d")
    parser.add_argument("--steps", type=int, default=6000)
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        with_jax = jax_copy(tmp)
        for model in ("mlp", "cnn"):
            rows[model] = {"tinyjax": run(sys.executable, EXAMPLE, model, args.steps),
                           "jax": run(args.jax_python, with_jax, model, args.steps)}
    print(f"{'model':<6}{'tinyjax steps/s':>16}{'JAX steps/s':>13}{'tj/jax':>8}"
          f"{'tj acc':>8}{'jax acc':>9}")
    for model, r in rows.items():
        tj, jx = r["tinyjax"], r["jax"]
        print(f"{model:<6}{tj['steps_per_s']:>16.0f}{jx['steps_per_s']:>13.0f}"
              f"{tj['steps_per_s'] / jx['steps_per_s']:>8.2f}"
              f"{tj['test_accuracy']:>8.3f}{jx['test_accuracy']:>9.3f}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = ROOT / "bench" / "results" / f"mnist1d-{platform.node()}-{stamp}.json"
    out.write_text(json.dumps({"steps": args.steps, "load": os.getloadavg(),
                               "results": rows}, indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
