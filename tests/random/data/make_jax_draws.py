"""Writes jax_draws.json: JAX's values of the draws in ../draw_cases.py, for
../test_jax_draws.py.  Run it with a JAX install (not tinyjax):
``python make_jax_draws.py jax_draws.json``."""
import json
import os
import sys

import jax
import jax.random
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from draw_cases import CASES  # noqa: E402


def draws(seed: int) -> dict:
    key = jax.random.key(seed)
    out = {}
    for name, draw in CASES.items():
        value = np.asarray(draw(jax.random, key))
        out[name] = {"dtype": str(value.dtype), "values": value.tolist()}
    return out


if __name__ == "__main__":
    data = {"jax_version": jax.__version__,
            "note": "written by tests/random/data/make_jax_draws.py: the draws of "
                    "tests/random/draw_cases.py with jax.random.key(seed), float32 "
                    "(x64 off), on the CPU",
            "draws": {str(s): draws(s) for s in (0, 42)}}
    with open(sys.argv[1], "w") as f:
        json.dump(data, f, indent=0)
