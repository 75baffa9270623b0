"""Where a cold compile goes: the first call of each research-size training step (bench's
``small_compile``) in this fresh process with an empty compile cache, split into its stages.

    python scripts/compile_profile.py                      # the three small steps
    python scripts/compile_profile.py small_cnn_step mlp_step

Stages (seconds, summed over the call): ``trace`` (the function traced to a jaxpr, its
transforms and DCE/CSE), ``lower`` (jaxpr -> low-level ops), ``schedule`` (fusion into
kernels), ``program`` (the program's steps and arena plan, lowering and scheduling
excluded), ``codegen`` (each kernel's loop IR and its passes), ``render`` (C source),
``cc`` (the C compiler, wall time of its processes), ``load`` (loading the library, the
launcher) and ``other`` (what is left of the first call: dispatch, running it once).  The
compiler's probes of itself run before the first step and are shown apart (``toolchain``).
"""
from __future__ import annotations

import collections
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ["TINYJAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="tj-compile-profile-")
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import workloads  # noqa: E402

from tinyjax import api  # noqa: E402
from tinyjax.backends.c import compiler, runtime, toolchain  # noqa: E402
from tinyjax.compiler import codegen, executable, program  # noqa: E402

TIMES: collections.Counter = collections.Counter()


def timed(owner, name: str, stage: str) -> None:
    """Time every call of ``owner.name`` into ``stage`` (nested stages are subtracted)."""
    fn = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        outer = dict(TIMES)
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.perf_counter() - start
            inner = sum(TIMES[k] - outer.get(k, 0.0) for k in TIMES)
            TIMES[stage] += spent - inner
    setattr(owner, name, wrapper)


timed(api, "trace_to_closed_jaxpr", "trace")
timed(program, "lower_jaxpr", "lower")
timed(program, "schedule", "schedule")
timed(program, "build_program", "program")
timed(program, "prepare_kernels", "codegen")
timed(runtime.CLanguage, "render_kernel", "render")
timed(runtime, "render_program", "render")
timed(compiler, "build_library", "cc")
timed(executable.Executable, "__init__", "load")


def main(names: list[str]) -> None:
    start = time.perf_counter()
    toolchain.compiler_flags()
    compiler.compiler_problem()
    print(f"{'toolchain':<16} {time.perf_counter() - start:6.3f} s (probes, once per cache)")
    steps = {name: workloads._small_step("tinyjax", name) for name in names}
    stages = ["trace", "lower", "schedule", "program", "codegen", "render", "cc", "load"]
    print(f"{'step':<16} {'first call':>10} " + " ".join(f"{s:>8}" for s in stages)
          + f" {'other':>8}")
    for name, (step, params, m, v, data) in steps.items():
        TIMES.clear()
        start = time.perf_counter()
        workloads.block(step(0, params, m, v, *data)[3])
        total = time.perf_counter() - start
        other = total - sum(TIMES.values())
        print(f"{name:<16} {total:>10.3f} " + " ".join(f"{TIMES[s]:>8.3f}" for s in stages)
              + f" {other:>8.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(workloads.SMALL_STEPS))
