"""Record what every program of ``programs/`` prints under JAX itself.

Run from the repository root, in an environment with JAX and the libraries installed
(not tinyjax as ``jax``)::

    python tests/ecosystem/make_reference.py

It writes ``data/reference_losses.json``: the losses of each program, and the versions of
JAX and the libraries that produced them.  The tests compare tinyjax's losses with these.
"""
from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parent / "data" / "reference_losses.json"
MODULES = ("optax_models", "chex_models", "flax_linen_models", "flax_nnx_models",
           "equinox_models", "haiku_models")
DISTRIBUTIONS = ("jax", "jaxlib", "optax", "chex", "flax", "equinox", "dm-haiku")


def main() -> None:
    sys.path.insert(0, str(ROOT))
    import jax
    if not jax.__file__ or "tinyjax" in jax.__file__:
        raise SystemExit("make_reference.py records JAX's own results: run it where `jax` "
                         "is JAX, not tinyjax")
    jax.config.update("jax_platforms", "cpu")
    losses = {}
    for name in MODULES:
        module = importlib.import_module(f"tests.ecosystem.programs.{name}")
        for program, run in module.PROGRAMS.items():
            losses[f"{name}.{program}"] = run()
            print(f"{name}.{program}: {losses[f'{name}.{program}'][-1]:.7g}")
    record = {"versions": {d: version(d) for d in DISTRIBUTIONS}, "losses": losses}
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
