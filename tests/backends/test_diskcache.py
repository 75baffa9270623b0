"""The on-disk compile cache: entries are checked before use (a damaged, swapped or foreign
entry is a miss, deleted with a warning), unusable directories give way to a temporary one,
and the size stays under its bound (least recently used entries first)."""
from __future__ import annotations

import os
import time

import pytest

from tinyjax.backends import diskcache
from tinyjax.config import config


@pytest.fixture
def cache(tmp_path):
    with config.override(jax_compilation_cache_dir=str(tmp_path / "cache")):
        yield tmp_path / "cache"


def test_round_trip_and_layout(cache):
    assert diskcache.read("k", "key one") is None
    diskcache.write("k", "key one", b"payload bytes")
    assert diskcache.read("k", "key one") == b"payload bytes"
    (entry,) = cache.iterdir()
    assert entry.name.startswith("k_") and entry.name.endswith(diskcache.SUFFIX)
    assert entry.read_bytes().startswith(diskcache.MAGIC)
    assert diskcache.read("k", "key two") is None
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]  # no temporary left


DAMAGES = {
    "truncated": lambda blob, other: blob[:len(blob) // 2],
    "garbage": lambda blob, other: bytes((b * 7 + 13) % 256 for b in blob),
    "one flipped byte": lambda blob, other: blob[:-1] + bytes([blob[-1] ^ 1]),
    "empty": lambda blob, other: b"",
    "swapped": lambda blob, other: other,
    "longer": lambda blob, other: blob + b"\0",
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_entry_is_a_miss_deleted_with_a_warning(cache, damage):
    diskcache.write("k", "mine", b"my library " * 100)
    diskcache.write("k", "other", b"another program's library " * 50)
    path = diskcache.entry_path("k", "mine")
    other = open(diskcache.entry_path("k", "other"), "rb").read()
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(DAMAGES[damage](blob, other))
    with pytest.warns(UserWarning, match="damaged compile cache entry .*deleted"):
        assert diskcache.read("k", "mine") is None
    assert not os.path.exists(path)
    diskcache.write("k", "mine", b"rebuilt")
    assert diskcache.read("k", "mine") == b"rebuilt"
    assert diskcache.read("k", "other") == b"another program's library " * 50


def test_a_path_that_is_a_file_gives_way_to_a_temporary_directory(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("in the way")
    with config.override(jax_compilation_cache_dir=str(not_a_dir)):
        with pytest.warns(UserWarning, match="cannot be used .*temporary directory"):
            d = diskcache.cache_dir()
        assert d != str(not_a_dir) and os.path.isdir(d)
        diskcache.write("k", "key", b"value")
        assert diskcache.read("k", "key") == b"value"


def read_only_directory(tmp_path) -> str:
    """An existing directory this process cannot create files in (as root, chmod does not
    stop writes: sysfs refuses them)."""
    if os.geteuid() == 0:
        return "/sys"
    d = tmp_path / "read-only"
    d.mkdir()
    d.chmod(0o555)
    return str(d)


def test_a_read_only_directory_gives_way_to_a_temporary_directory(tmp_path):
    with config.override(jax_compilation_cache_dir=read_only_directory(tmp_path)):
        with pytest.warns(UserWarning, match="cannot be used"):
            d = diskcache.cache_dir()
        diskcache.write("flag", "probe", b"1")
        assert diskcache.read("flag", "probe") == b"1"
        assert os.path.exists(os.path.join(d, os.path.basename(
            diskcache.entry_path("flag", "probe"))))


def test_size_bound_evicts_the_least_recently_used(cache):
    blob = b"x" * 1000  # entries of 1080 bytes: four are over the bound, three under 90 % of it
    with config.override(jax_compilation_cache_max_size=4000):
        for i in range(3):
            diskcache.write("k", f"entry {i}", blob)
            t = time.time() - 100 + i  # entry 0 oldest
            os.utime(diskcache.entry_path("k", f"entry {i}"), (t, t))
        assert diskcache.read("k", "entry 0") == blob  # used now: the most recent
        diskcache.write("k", "entry 3", blob)  # over the bound: one must go
        present = {i for i in range(4) if os.path.exists(diskcache.entry_path("k", f"entry {i}"))}
        assert present == {0, 2, 3}
        assert sum(p.stat().st_size for p in cache.iterdir()) <= 3600


def test_writes_at_the_bound_do_not_each_scan_the_directory(cache, monkeypatch):
    """A scan that finds the directory over the bound deletes down to 90 % of it, so the
    writes after it add a tenth of the bound before the next scan (a full directory of tens
    of thousands of entries scanned at every write made compiling beside a busy thread take
    minutes)."""
    scans = []
    entries = diskcache._entries
    monkeypatch.setattr(diskcache, "_entries", lambda d: scans.append(d) or entries(d))
    blob = b"x" * 920  # entries of 1000 bytes
    with config.override(jax_compilation_cache_max_size=100_000):
        for i in range(300):
            diskcache.write("k", f"entry {i}", blob)
        held = sum(p.stat().st_size for p in cache.iterdir())
    assert 90_000 <= held <= 100_000
    # the first write's scan, then one per ten writes over the bound
    assert len(scans) <= 1 + (300 - 100) // 10 + 1, len(scans)


def test_size_zero_turns_the_disk_cache_off(cache):
    with config.override(jax_compilation_cache_max_size=0):
        diskcache.write("k", "key", b"value")
        assert diskcache.read("k", "key") is None
    assert not cache.exists() or not list(cache.iterdir())


def test_clear_deletes_every_entry(cache):
    for i in range(3):
        diskcache.write("k", str(i), b"v")
    diskcache.clear()
    assert not list(cache.iterdir())


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="jax_compilation_cache_max_size must be an integer"):
        config.update("jax_compilation_cache_max_size", -2)
    with pytest.raises(TypeError, match="jax_compilation_cache_dir expects a path"):
        config.update("jax_compilation_cache_dir", 3)
