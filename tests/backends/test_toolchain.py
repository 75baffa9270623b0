"""Without a working C compiler -- none on PATH, or one that exits 0 and writes nothing
(``CC=/bin/true``) -- jit warns once, naming what it looked for and how to install one, and
runs its kernels on the interpreter, also when the kernels are in the disk cache already."""
from __future__ import annotations

import os

import pytest

from tests.subprocess_support import describe, run_python

PROGRAM = """
import numpy as np
import tinyjax as jax, tinyjax.numpy as jnp
x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(4, 6)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(0) * 2)
g = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
for _ in range(2):
    assert np.allclose(np.asarray(f(x)), np.tanh(x @ x.T).sum(0) * 2, rtol=1e-5), "f"
    e = np.exp(x - x.max(-1, keepdims=True))
    assert np.allclose(np.asarray(g(x)), e / e.sum(-1, keepdims=True), rtol=1e-5), "g"
print("correct;", "k0" in f.lower(x).compile().source())
"""


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("warm") / "cache")
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": d})
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    assert "Warning" not in proc.stderr, describe(proc)
    return d


def check_interpreter_fallback(proc, what: str) -> None:
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    assert proc.stderr.count("UserWarning") == 1, describe(proc)  # once, not per program
    assert what in proc.stderr and "interpreter device" in proc.stderr, describe(proc)
    assert "apt install gcc" in proc.stderr, describe(proc)


def test_a_compiler_that_writes_nothing(warm_cache):
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": warm_cache, "CC": "/bin/true"})
    check_interpreter_fallback(proc, "'/bin/true' does not work")


def test_no_compiler_on_path(warm_cache, tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": warm_cache, "CC": None,
                                "PATH": str(empty)})
    check_interpreter_fallback(proc, "no C compiler found (looked for $CC, cc, gcc and clang")


def test_a_compiler_that_fails(warm_cache, tmp_path):
    broken = tmp_path / "cc"
    broken.write_text("#!/bin/sh\necho 'cc: internal compiler error' >&2\nexit 4\n")
    os.chmod(broken, 0o755)
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": warm_cache, "CC": str(broken)})
    check_interpreter_fallback(proc, "internal compiler error")
