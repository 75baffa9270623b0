"""Running a program of ``programs/`` on tinyjax and comparing its losses with JAX's
(recorded by ``make_reference.py``)."""
from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest

from tests.cuda_support import CUDA_PARAM

DEVICES = ["cpu", CUDA_PARAM]
_RECORD = json.loads((Path(__file__).resolve().parent / "data"
                      / "reference_losses.json").read_text())

# A loss after n training steps carries the rounding of every step before it: tinyjax
# orders and fuses float32 arithmetic differently from XLA, so the two agree to about
# 1e-5 relative (the first step's loss to a few float32 ulps), drifting slowly with steps.
RTOL, ATOL = 2e-4, 1e-6


_DISTRIBUTIONS = {"haiku": "dm-haiku"}  # import name -> distribution, where they differ


def import_library(name: str):
    """The library ``name``, or a skip when it is not installed (it is a test dependency
    installed without JAX: see docs/ecosystem.rst) or is another release than the one
    JAX's losses were recorded with (a machine's own newer Flax, say)."""
    top = name.split(".")[0]
    dist = _DISTRIBUTIONS.get(top, top)
    try:
        found = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        found = None
    pinned = _RECORD["versions"][dist]
    if found is not None and found != pinned:
        pytest.skip(f"{dist} {found} is installed; tests/ecosystem checks {dist} {pinned} "
                    "(tests/ecosystem/requirements.txt)", allow_module_level=True)
    return pytest.importorskip(name)


def programs(module_name: str) -> list[str]:
    """The names of the programs in ``programs/<module_name>.py`` that JAX's record has."""
    prefix = module_name + "."
    return [k[len(prefix):] for k in _RECORD["losses"] if k.startswith(prefix)]


def check_program(module_name: str, program: str, device: str, monkeypatch) -> None:
    """Run ``program`` on ``device`` (the default device for the run) and compare every
    loss with JAX's."""
    monkeypatch.setenv("TINYJAX_DEVICE", device)
    module = importlib.import_module(f"tests.ecosystem.programs.{module_name}")
    losses = module.PROGRAMS[program]()
    expected = _RECORD["losses"][f"{module_name}.{program}"]
    assert len(losses) == len(expected)
    np.testing.assert_allclose(losses, expected, rtol=RTOL, atol=ATOL,
                               err_msg=f"{module_name}.{program} on {device}")
