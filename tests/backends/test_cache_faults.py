"""Fault injection on the compile cache: each kind of cache file (program libraries, the
support library, compiler-flag probes; CUDA cubins on the cuda device) truncated, filled
with garbage, swapped for another entry (another program's valid library where there is
one), emptied, or made read-only (whole, or damaged too), and unusable cache directories;
then a fresh process (a subprocess: a crash fails the test, not the run) must give correct
results, warning about what it found damaged, and the process after it finds the cache
whole."""
from __future__ import annotations

import os
import shutil

import pytest

from tests.backends.test_diskcache import read_only_directory
from tests.cuda_support import needs_cuda
from tests.subprocess_support import describe, run_python

PROGRAM = """
import numpy as np
import tinyjax as jax, tinyjax.numpy as jnp
from tinyjax.backends.c.native import launcher_usable
device = {device!r}
jax.config.update("jax_default_matmul_precision", "highest")  # (full float32 on CUDA too)
x = np.linspace(-2, 2, 64 * 64, dtype=np.float32).reshape(64, 64)
f = jax.jit(lambda x: jnp.tanh(x @ x.T) * 2 + jnp.exp(-x).sum(0), device=device)
out = np.asarray(f(x))
expected = np.tanh(x @ x.T) * 2 + np.exp(-x).sum(0)
assert np.allclose(out, expected, rtol=1e-4, atol=1e-4), "wrong values"
assert device != "cpu" or launcher_usable(), "no launcher"
g = jax.jit(lambda x: jnp.sin(x) - 1.0, device=device)  # a second entry of each kind
assert np.allclose(np.asarray(g(x)), np.sin(x) - 1.0, atol=1e-5), "wrong values"
print("correct")
"""

# kind of cache file -> (the device whose program writes it, its file name's prefix)
KINDS = {"kernel library": ("cpu", "k_"), "support library": ("cpu", "rt_"),
         "flag probe": ("cpu", "flag_"), "cubin": ("cuda", "cu_")}
HOWS = ("truncated", "garbage", "swapped", "empty", "read-only", "read-only garbage")


def damage(path: str, how: str, other: bytes) -> None:
    """Damage the entry ``path`` as ``how`` says (``other``: the bytes swapped in)."""
    data = open(path, "rb").read()
    new = {"truncated": data[:len(data) // 2],
           "garbage": bytes((b * 31 + 7) % 256 for b in data),
           "read-only garbage": bytes((b * 31 + 7) % 256 for b in data),
           "swapped": other,
           "empty": b"",
           "read-only": data}[how]
    with open(path, "wb") as f:
        f.write(new)
    if how.startswith("read-only"):
        os.chmod(path, 0o444)


def program(device: str) -> str:
    return PROGRAM.format(device=device)


@pytest.fixture(scope="module")
def warm_caches(tmp_path_factory):
    """device -> a cache directory filled by one run of its PROGRAM (made when first asked)."""
    made: dict = {}

    def warm(device: str) -> str:
        if device not in made:
            d = str(tmp_path_factory.mktemp(f"warm-{device}") / "cache")
            proc = run_python(program(device), {"TINYJAX_CACHE_DIR": d})
            assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
            names = os.listdir(d)
            assert all(any(n.startswith(prefix) for n in names)
                       for dev, prefix in KINDS.values() if dev == device), names
            made[device] = d
        return made[device]
    return warm


def swap_partners(mine: list[str], others: list[str]) -> list[str]:
    """The entry each of ``mine`` is replaced by: the next of its own kind (another program's
    valid library, another probe's answer) where there are two or more, else another
    kind's."""
    if len(mine) > 1:
        return mine[1:] + mine[:1]
    return [others[i % len(others)] for i in range(len(mine))]


def run_with(warm_caches, tmp_path, kind: str, how: str) -> None:
    device, prefix = KINDS[kind]
    d = str(tmp_path / "cache")
    shutil.copytree(warm_caches(device), d)
    files = sorted(os.path.join(d, n) for n in os.listdir(d))
    mine = [f for f in files if os.path.basename(f).startswith(prefix)]
    others = [f for f in files if f not in mine]
    originals = {f: open(f, "rb").read() for f in files}
    for path, other in zip(mine, swap_partners(mine, others)):
        damage(path, how, originals[other])
    # read-only files stay read-only for the process even when the tests run as root
    proc = run_python(program(device), {"TINYJAX_CACHE_DIR": d}, obey_file_modes=True)
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    if how == "read-only":  # whole entries: used as they are, nothing rebuilt
        assert "Warning" not in proc.stderr, describe(proc)
        assert all(open(f, "rb").read() == originals[f] for f in mine)
        return
    assert "damaged compile cache entry" in proc.stderr, describe(proc)
    # rebuilt: the next process finds everything whole and says nothing
    proc = run_python(program(device), {"TINYJAX_CACHE_DIR": d}, obey_file_modes=True)
    assert proc.returncode == 0 and "correct" in proc.stdout, describe(proc)
    assert "Warning" not in proc.stderr, describe(proc)


def cases(device: str) -> list:
    return [(k, h) for k, (dev, _) in KINDS.items() if dev == device for h in HOWS]


FAST = [("kernel library", "truncated"), ("kernel library", "swapped"),
        ("flag probe", "garbage"), ("support library", "read-only garbage")]


@pytest.mark.parametrize("kind,how", FAST)
def test_damaged_cache_file(warm_caches, tmp_path, kind, how):
    run_with(warm_caches, tmp_path, kind, how)


@pytest.mark.slow
@pytest.mark.parametrize("kind,how", [c for c in cases("cpu") if c not in FAST])
def test_damaged_cache_file_every_combination(warm_caches, tmp_path, kind, how):
    run_with(warm_caches, tmp_path, kind, how)


@needs_cuda
@pytest.mark.parametrize("kind,how", cases("cuda"))
def test_damaged_cuda_cubin(warm_caches, tmp_path, kind, how):
    run_with(warm_caches, tmp_path, kind, how)


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
    proc = run_python(program("cpu"), {"TINYJAX_CACHE_DIR": str(d)})
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
