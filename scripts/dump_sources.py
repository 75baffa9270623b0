"""Render the C and CUDA source of every program of the bench workloads, without running them.

Each jitted function of bench/workloads.py (CPU cases) and bench/gpu.py (GPU cases) is
traced by ``jit`` as the bench traces it and compiled for a capture backend that records
the kernels the compiler hands it and renders them with the C renderer and the CUDA
renderer (no C compiler run, no GPU needed).  The output folder holds one file per program
and per kernel and a manifest of their hashes::

    OUT/<case>[.<n>]/c/program.c         the whole C source of the program (what is compiled)
    OUT/<case>[.<n>]/c/kernel03.c         one kernel's C
    OUT/<case>[.<n>]/c/native.c          the C function running the program (its loops)
    OUT/<case>[.<n>]/cuda/program.cu     the same for CUDA
    OUT/MANIFEST.sha256                  "<sha256>  <path>" per file

``<n>`` numbers the programs of a case that compiles more than one (matmul.bf16 converts
its inputs in a program of its own).  A refactoring that must not change the generated code
renders before and after and compares::

    python scripts/dump_sources.py /tmp/before                 # on the old commit
    python scripts/dump_sources.py --compare /tmp/before       # on the new one: exit 1 on a change
    python scripts/dump_sources.py --compare /tmp/before --cases matmul mlp_step

Source lines in the kernels' comments are written relative to the checkout, so a worktree
compares with a rendering made in another.  Otherwise the sources depend on the machine
only through what the renderers read from it (core counts, environment variables such as
TINYJAX_OMP_SCHEDULE): compare renderings made on one machine with one environment.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import tinyjax  # noqa: E402
import tinyjax.numpy as tnp  # noqa: E402
from tinyjax.backends import get_backend, register_backend  # noqa: E402
from tinyjax.backends.base import HostBackend  # noqa: E402
from tinyjax.backends.c.program import render_program  # noqa: E402
from tinyjax.backends.cuda.render import CUDALanguage, render_source  # noqa: E402
from tinyjax.compiler.codegen import attach_loop_ir  # noqa: E402
from workloads import (SMALL_STEPS, _adam_step, _chain, _mlp_setup,  # noqa: E402
                       _mlp_step_fn, _sgd, attention_loss_fn, attention_setup, cnn_loss_fn,
                       cnn_setup, per_example_loss_fn, per_example_setup, rnn_loss_fn,
                       rnn_setup)

MANIFEST = "MANIFEST.sha256"
CAPTURE = "dump_sources"
LARGE = 2 ** 28       # bench/gpu.py's ".large" cases
MATMUL_GPU = 8192     # bench/gpu.py's matmul size


def spec(*shape, dtype=np.float32) -> tinyjax.ShapeDtypeStruct:
    return tinyjax.ShapeDtypeStruct(shape, np.dtype(dtype))


def specs(tree):
    return tinyjax.tree_util.tree_map(lambda a: spec(*np.shape(a), dtype=np.asarray(a).dtype),
                                      tree)


def _softmax(x):
    m = tnp.max(x, axis=-1, keepdims=True)
    e = tnp.exp(x - m)
    return e / tnp.sum(e, axis=-1, keepdims=True)


def _step(setup, loss_fn):
    params, *data = setup()
    return _sgd(tinyjax, loss_fn(tnp, tinyjax)), (specs(params), *specs(data))


def _mlp_step():
    params, x, y = _mlp_setup()
    return _mlp_step_fn(tnp, tinyjax), (specs(params), spec(*x.shape), spec(*y.shape))


def _per_example():
    params, x, y = per_example_setup()
    f = tinyjax.vmap(tinyjax.grad(per_example_loss_fn(tnp)), in_axes=(None, 0, 0))
    return f, (specs(params), spec(*x.shape), spec(*y.shape))


def _small_step(name: str):
    """A research-size Adam step: (step counter, params, m, v, data)."""
    setup, loss_fn = SMALL_STEPS[name]
    params, *data = setup()
    p = specs(params)
    return (_adam_step(tinyjax, loss_fn(tnp, tinyjax)),
            (spec(dtype=np.int32), p, p, p, *specs(data)))


def _rnn_scan():
    params, xs = rnn_setup()
    return tinyjax.value_and_grad(rnn_loss_fn(tnp, tinyjax)), (specs(params), spec(*xs.shape))


def _ode_fori():
    def solve(y):
        return tinyjax.lax.fori_loop(0, 10000, lambda i, y: y + 1e-3 * tnp.sin(y), y)
    return solve, (spec(16),)


def _matmul(n: int, dtype=np.float32, precision=None):
    return (lambda a, b: tnp.matmul(a, b, precision=precision)), (spec(n, n, dtype=dtype),) * 2


def cases() -> dict[str, list[Callable[[], tuple]]]:
    """Each case: the programs it compiles, as thunks returning (function, argument specs)."""
    bf16 = tinyjax.dtypes.bfloat16
    n_large = int(np.sqrt(LARGE))
    return {
        "dispatch_overhead": [lambda: ((lambda x: x + 1.0), (spec(8),))],
        "elementwise_chain": [lambda: ((lambda x: _chain(tnp, x)), (spec(2 ** 24),))],
        "elementwise_chain.large": [lambda: ((lambda x: _chain(tnp, x)), (spec(LARGE),))],
        "softmax_rows": [lambda: (_softmax, (spec(4096, 4096),))],
        "softmax_rows.large": [lambda: (_softmax, (spec(n_large, n_large),))],
        "matmul.1024": [lambda: ((lambda a, b: a @ b), (spec(1024, 1024),) * 2)],
        "matmul.2048": [lambda: ((lambda a, b: a @ b), (spec(2048, 2048),) * 2)],
        "matmul.bf16": [lambda: ((lambda v: v.astype(bf16)), (spec(MATMUL_GPU, MATMUL_GPU),)),
                        lambda: _matmul(MATMUL_GPU, bf16)],
        "matmul.tf32": [lambda: _matmul(MATMUL_GPU)],
        "matmul.f32": [lambda: _matmul(MATMUL_GPU, precision=tinyjax.lax.Precision.HIGHEST)],
        "mlp_step": [_mlp_step],
        "cnn_step": [lambda: _step(cnn_setup, cnn_loss_fn)],
        "attention_step": [lambda: _step(attention_setup, attention_loss_fn)],
        "per_example_grads": [_per_example],
        **{name: [lambda name=name: _small_step(name)] for name in SMALL_STEPS},
        "rnn_scan": [_rnn_scan],
        "ode_fori": [_ode_fori],
    }


class CaptureBackend(HostBackend):
    """A host backend that keeps the kernels of every compile and runs nothing."""

    name = CAPTURE

    def __init__(self):
        self.compiled: list[list] = []
        self.programs: list = []   # the program of each compile

    def load_program(self, program):
        self.programs.append(program)
        return super().load_program(program)

    def render(self, kernels: list) -> str:
        return ""

    def compile(self, kernels: list):
        self.compiled.append(list(kernels))
        return self.render(kernels), [None] * len(kernels)

    def make_launcher(self, fn, kernel):
        def launch(arrays):
            raise RuntimeError("dump_sources renders programs; it does not run them")
        return launch


# the source lines kernels name in comments: relative to the checkout (worktrees compare
# alike), and without line numbers where they point into this script
_OWN_LINES = re.compile(re.escape(str(ROOT) + os.sep) + r"|(?<=scripts/dump_sources\.py):\d+")


def render(kernels: list, program) -> dict[str, str]:
    """Relative path -> source, for one program's kernels in both languages (the CUDA
    kernels given their CUDA loop IR: an H100's, warpgroup MMA on) and the C function
    running the program (its loops and branches)."""
    cpu = get_backend("cpu")
    cuda = CUDALanguage()
    gpu = [copy.copy(k) for k in kernels]
    for k in gpu:
        k.loop_ir = None
    attach_loop_ir(gpu, SimpleNamespace(loop_ir_target="cuda", sms=132, wgmma=True))
    files = {"c/program.c": cpu.render(kernels), "cuda/program.cu": render_source(gpu),
             "c/native.c": render_program(program)}
    for i, (k, g) in enumerate(zip(kernels, gpu)):
        files[f"c/kernel{i:02d}.c"] = cpu.language.render_kernel(k)
        files[f"cuda/kernel{i:02d}.cu"] = cuda.render_kernel(g)
    return {path: _OWN_LINES.sub("", src) for path, src in files.items()}


def chosen(name: str, selected: list[str] | None) -> bool:
    """Whether a case or program folder (``matmul.bf16.0``) belongs to the selection
    (cases or workloads: ``matmul.bf16``, ``matmul``)."""
    return not selected or any(name == s or name.startswith((s + ".", s + "-"))
                               for s in selected)


def programs(selected: list[str] | None) -> Iterator[tuple[str, list]]:
    """(program folder, kernels) for every program of the selected cases."""
    register_backend(CAPTURE, CaptureBackend)
    backend = get_backend(CAPTURE)
    for case, thunks in cases().items():
        if not chosen(case, selected):
            continue
        for n, thunk in enumerate(thunks):
            fn, args = thunk()
            before = len(backend.compiled)
            tinyjax.jit(fn, device=CAPTURE).lower(*args).compile()
            for j, (kernels, program) in enumerate(zip(backend.compiled[before:],
                                                        backend.programs[before:])):
                name = case if len(thunks) == 1 else f"{case}.{n}"
                yield (name if j == 0 else f"{name}-{j}"), kernels, program


def dump(out: Path, selected: list[str] | None = None) -> dict[str, str]:
    """Write every source under ``out`` (emptied first) and the manifest; path -> sha256."""
    if out.exists():
        shutil.rmtree(out)
    hashes = {}
    for folder, kernels, program in programs(selected):
        for rel, src in render(kernels, program).items():
            path = out / folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(src)
            hashes[f"{folder}/{rel}"] = hashlib.sha256(src.encode()).hexdigest()
    (out / MANIFEST).write_text("".join(f"{h}  {p}\n" for p, h in sorted(hashes.items())))
    return hashes


def read_manifest(folder: Path) -> dict[str, str]:
    lines = (folder / MANIFEST).read_text().splitlines()
    return {p: h for h, p in (ln.split("  ", 1) for ln in lines if ln)}


def compare(before: Path, after: Path, selected: list[str] | None, context: int) -> int:
    """Print how ``after``'s sources differ from ``before``'s; the number of differences."""
    old, new = read_manifest(before), read_manifest(after)
    old = {p: h for p, h in old.items() if chosen(p.split("/")[0], selected)}
    changed = sorted(p for p in old.keys() & new.keys() if old[p] != new[p])
    missing, added = sorted(old.keys() - new.keys()), sorted(new.keys() - old.keys())
    for p in changed:
        print(f"changed: {p}")
        a = (before / p).read_text().splitlines(keepends=True)
        b = (after / p).read_text().splitlines(keepends=True)
        sys.stdout.writelines(list(difflib.unified_diff(a, b, f"before/{p}", f"after/{p}",
                                                        n=context))[:200])
    for p in missing:
        print(f"missing: {p}")
    for p in added:
        print(f"new: {p}")
    n = len(changed) + len(missing) + len(added)
    print(f"{len(new)} files rendered; {len(old.keys() & new.keys()) - len(changed)} identical, "
          f"{len(changed)} changed, {len(missing)} missing, {len(added)} new")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", nargs="?", help="folder to render into (emptied first)")
    ap.add_argument("--compare", metavar="BEFORE", help="render into a temporary folder (or "
                    "OUT) and compare with BEFORE's manifest; exit status 1 on a difference")
    ap.add_argument("--cases", nargs="*", help="only these cases (or workloads: 'matmul')")
    ap.add_argument("--context", type=int, default=3, help="lines of context in diffs")
    args = ap.parse_args(argv)
    if not args.out and not args.compare:
        ap.error("give OUT, --compare BEFORE, or both")
    if not args.compare:
        hashes = dump(Path(args.out), args.cases)
        print(f"{len(hashes)} files in {args.out}")
        return 0
    tmp = None if args.out else tempfile.mkdtemp(prefix="tj-sources-")
    try:
        after = Path(args.out or tmp)
        dump(after, args.cases)
        return 1 if compare(Path(args.compare), after, args.cases, args.context) else 0
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
