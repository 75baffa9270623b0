"""Fault injection on the compile cache: each kind of cache file (program libraries,
compiler-flag probes) truncated, filled with garbage, swapped for another
entry, emptied or made read-only, and unusable cache directories; then a fresh process (a
subprocess: a crash fails the test, not the run) must give correct results, warning about
what it found damaged."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.backends.test_diskcache import read_only_directory
from tests.subprocess_support import describe, run_python

PROGRAM = """
import numpy as np
import tinyjax as jax, tinyjax.numpy as jnp
from tinyjax.backends.c.native import launcher_usable
x = np.linspace(-2, 2, 64 * 64, dtype=np.float32).reshape(64, 64)
f = jax.jit(lambda x: jnp.tanh(x @ x.T) * 2 + jnp.exp(-x).sum(0))
out = np.asarray(f(x))
expected = np.tanh(x @ x.T) * 2 + np.exp(-x).sum(0)
assert np.allclose(out, expected, rtol=1e-4, atol=1e-4), "wrong values"
assert launcher_usable(), "no launcher"
print("correct")
"""

KINDS = {"kernel library": "k_", "flag probe": "flag_"}


def damage(path: str, how: str, other: str) -> None:
    data = open(path, "rb").read()
    if how == "read-only":
        os.chmod(path, 0o444)
        return
    new = {"truncated": data[:len(data) // 2],
           "garbage": bytes((b * 31 + 7) % 256 for b in data),
           "swapped": open(other, "rb").read(),
           "empty": b""}[how]
    with open(path, "wb") as f:
        f.write(new)


@pytest.fixture(scope="module")
def warm_cache(tmp_path_factory):
    """A cache directory filled by one run of PROGRAM."""
    d = str(tmp_path_factory.mktemp("warm") / "cache")
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": d})
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    names = os.listdir(d)
    assert all(any(n.startswith(p) for n in names) for p in KINDS.values()), names
    return d


def run_with(warm_cache: str, tmp_path, kind: str, how: str) -> None:
    d = str(tmp_path / "cache")
    shutil.copytree(warm_cache, d)
    files = sorted(os.path.join(d, n) for n in os.listdir(d))
    mine = [f for f in files if os.path.basename(f).startswith(KINDS[kind])]
    others = [f for f in files if f not in mine]
    for i, path in enumerate(mine):  # swapped: another kind's entry (another key)
        damage(path, how, others[i % len(others)])
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": d})
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    if how == "read-only":
        assert "damaged" not in proc.stderr, describe(proc)
    else:
        assert "damaged compile cache entry" in proc.stderr, describe(proc)
        # rebuilt: the next process finds everything whole and says nothing
        proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": d})
        assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
        assert "Warning" not in proc.stderr, describe(proc)


FAST = [("kernel library", "truncated"), ("kernel library", "garbage"), ("flag probe", "swapped")]
ALL = [(k, h) for k in KINDS for h in ("truncated", "garbage", "swapped", "empty", "read-only")]


@pytest.mark.parametrize("kind,how", FAST)
def test_damaged_cache_file(warm_cache, tmp_path, kind, how):
    run_with(warm_cache, tmp_path, kind, how)


@pytest.mark.slow
@pytest.mark.parametrize("kind,how", [c for c in ALL if c not in FAST])
def test_damaged_cache_file_every_combination(warm_cache, tmp_path, kind, how):
    run_with(warm_cache, tmp_path, kind, how)


@pytest.mark.parametrize("where", ["read-only", pytest.param("a file", marks=pytest.mark.slow),
                                   pytest.param("unreachable", marks=pytest.mark.slow)])
def test_unusable_cache_directory(tmp_path, where):
    if where == "a file":
        d = tmp_path / "file"
        d.write_text("in the way")
    elif where == "read-only":
        d = read_only_directory(tmp_path)
    else:
        d = "/proc/no-such-directory/tinyjax"
    proc = run_python(PROGRAM, {"TINYJAX_CACHE_DIR": str(d)})
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    assert "cannot be used" in proc.stderr and "temporary directory" in proc.stderr, \
        describe(proc)


def test_a_damaged_beam_choice_is_searched_again(tmp_path):
    """``BEAM``'s choices are cache entries too: garbage (or a valid entry that is no list
    of passes) is deleted with a warning and the kernel searched again."""
    import numpy as np

    import tinyjax as jax
    import tinyjax.numpy as jnp
    from tinyjax.backends import diskcache
    from tinyjax.compiler.codegen.search import cached_search, kernel_key
    from tinyjax.compiler.lower.jaxpr import lower_jaxpr
    from tinyjax.compiler.schedule import schedule
    from tinyjax.config import config

    x = np.ones((64, 100), np.float32)
    (k,) = schedule(*lower_jaxpr(jax.make_jaxpr(lambda x: jnp.max(x, axis=1))(x).jaxpr)).kernels
    timings = []

    def time_fn(lk):
        timings.append(lk)
        return float(len(lk.applied))  # (a deterministic stand-in for running it)
    with config.override(jax_compilation_cache_dir=str(tmp_path)):
        first = cached_search(k, 1, time_fn)
        searched = len(timings)
        assert cached_search(k, 1, time_fn).applied == first.applied and len(timings) == searched
        key = f"beam\0{kernel_key(k, 'cpu')}"
        diskcache.write("beam", key, b"[[\"no_such_pass\", []]]")  # whole, but not passes
        with pytest.warns(UserWarning, match="damaged compile cache entry .*not passes"):
            again = cached_search(k, 1, time_fn)
        assert again.applied == first.applied and len(timings) > searched
