"""The on-disk compile cache the backends share: compiled C libraries, the program launcher,
compiler-flag probes and CUDA cubins, so a fresh process compiles nothing it compiled before.

Where: ``config.jax_compilation_cache_dir``, else ``$TINYJAX_CACHE_DIR`` (default
``~/.cache/tinyjax``).  A directory that cannot be created or written (read-only, a file in
its place, no permission) is replaced, for the rest of the process, by a temporary one
(removed at exit), with one warning.

An entry is one file ``<kind>_<hash of its key>.tjc``::

    MAGIC (8 bytes) | sha256(key) (32) | payload length (8, little endian) | sha256(payload) (32)
    | payload

and is checked before anything uses it: an entry that is short, long, of another key (a file
swapped into its place) or whose bytes do not match their checksum is a miss -- deleted, one
warning, rebuilt by the caller.  Writes are atomic and durable: a temporary file in the same
directory, ``fsync``, ``rename`` into place, ``fsync`` of the directory; a reader sees a whole
entry or none.

Size: at most ``config.jax_compilation_cache_max_size`` bytes, else
``$TINYJAX_CACHE_MAX_SIZE`` (default 1 GiB; 0 turns the disk cache off, -1 leaves it
unbounded).  A hit refreshes the
entry's modification time; when a write takes the directory over the bound, the least
recently used entries are deleted, down to 90 % of it (so the writes that follow need
not scan the directory again).  Several processes may share a directory: an entry
deleted under a reader is a miss for it, never a partial read.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import struct
import tempfile
import threading
import time
from typing import Optional

from tinyjax.config import cache_dir as configured_cache_dir
from tinyjax.config import config, env_int
from tinyjax.errors import warn_user

__all__ = ["cache_dir", "max_size", "read", "write", "discard", "clear", "entry_path",
           "MAGIC", "SUFFIX"]

MAGIC = b"TJCACHE1"
SUFFIX = ".tjc"
_HEADER = struct.Struct("<8s32sQ32s")
_STALE_TEMP_SECONDS = 3600  # a writer's temporary file older than this was left by a crash
_OLD_ENTRIES = ("k_", "rt_", "flag_", "cu_")  # earlier versions' files: evicted first

_LOW_WATER = 0.9              # a scan over the bound deletes down to this share of it
_lock = threading.Lock()
_scanning = threading.Lock()  # held by the one thread scanning a directory for its size
_resolved: dict = {}          # configured path -> the directory in use for it
_fallback: Optional[str] = None
_estimated_size: dict = {}    # directory -> bytes, estimated since its last scan


def _configured() -> str:
    return configured_cache_dir()


def max_size() -> int:
    """The bound in bytes (0: no disk cache, -1: none)."""
    size = config.jax_compilation_cache_max_size
    return env_int("TINYJAX_CACHE_MAX_SIZE") if size is None else size


def cache_dir() -> str:
    """The directory entries are read from and written to (see the module docstring)."""
    wanted = _configured()
    d = _resolved.get(wanted)
    if d is None:
        with _lock:
            d = _resolved.get(wanted)
            if d is None:
                d = _resolved[wanted] = _usable_or_fallback(wanted)
    return d


def _usable_or_fallback(wanted: str) -> str:
    problem = _unusable(wanted)
    if problem is None:
        return wanted
    fallback = _temporary_dir()
    warn_user(f"tinyjax: the compile cache directory {wanted!r} cannot be used ({problem}); "
              f"compiling into the temporary directory {fallback} for this process (set "
              f"TINYJAX_CACHE_DIR or config.jax_compilation_cache_dir to a writable "
              f"directory to keep compiled code between runs)")
    return fallback


def _unusable(d: str) -> Optional[str]:
    """Why ``d`` cannot hold the cache (None: it can): created if missing, then written."""
    try:
        os.makedirs(d, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=d)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        return e.strerror or str(e)
    return None


def _temporary_dir() -> str:
    global _fallback
    if _fallback is None:
        _fallback = tempfile.mkdtemp(prefix="tinyjax-cache-")
        atexit.register(shutil.rmtree, _fallback, True)
    return _fallback


def _abandon(d: str, problem: str) -> str:
    """Stop using ``d`` (a write to it failed) for the temporary directory; one warning."""
    with _lock:
        for wanted, used in list(_resolved.items()):
            if used == d:
                _resolved[wanted] = _temporary_dir()
    warn_user(f"tinyjax: writing to the compile cache directory {d!r} failed ({problem}); "
              f"compiling into the temporary directory {_temporary_dir()} for this process")
    return _temporary_dir()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def entry_path(kind: str, key: str) -> str:
    """The file of the entry ``key`` of ``kind`` ('k': a kernel library, 'rt': the
    launcher, 'flag': a compiler probe, 'cu': a cubin)."""
    return os.path.join(cache_dir(), f"{kind}_{_digest(key).hex()[:40]}{SUFFIX}")


def _enabled() -> bool:
    return max_size() != 0


def read(kind: str, key: str) -> Optional[bytes]:
    """The payload stored for ``key``, or None (a miss: absent, or damaged -- then deleted,
    with a warning)."""
    if not _enabled():
        return None
    path = entry_path(kind, key)
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    problem = _problem(blob, key)
    if problem is not None:
        _discard(path, problem)
        return None
    try:
        os.utime(path)  # recently used: the last to be evicted
    except OSError:
        pass
    return blob[_HEADER.size:]


def _problem(blob: bytes, key: str) -> Optional[str]:
    """What is wrong with the entry ``blob`` of ``key`` (None: nothing)."""
    if len(blob) < _HEADER.size:
        return f"{len(blob)} bytes, shorter than its header"
    magic, key_digest, length, payload_digest = _HEADER.unpack_from(blob)
    if magic != MAGIC:
        return "not a tinyjax cache entry"
    if key_digest != _digest(key):
        return "the entry of another program"
    if length != len(blob) - _HEADER.size:
        return f"{len(blob) - _HEADER.size} bytes of payload where the header says {length}"
    if hashlib.sha256(memoryview(blob)[_HEADER.size:]).digest() != payload_digest:
        return "its bytes do not match their checksum"
    return None


def discard(kind: str, key: str, problem: str) -> None:
    """Delete the entry ``key`` (a user found it unusable: ``problem``), with a warning."""
    _discard(entry_path(kind, key), problem)


def _discard(path: str, problem: str) -> None:
    try:
        os.remove(path)
        what = "deleted; it will be rebuilt"
    except OSError as e:
        what = f"could not be deleted ({e.strerror}); it is ignored and rebuilt"
    warn_user(f"tinyjax: damaged compile cache entry {path} ({problem}): {what}")


def write(kind: str, key: str, payload: bytes) -> None:
    """Store ``payload`` for ``key``: atomically and durably (see the module docstring).  A
    directory that refuses the write is abandoned for a temporary one (one warning)."""
    if not _enabled():
        return
    blob = _HEADER.pack(MAGIC, _digest(key), len(payload),
                        hashlib.sha256(payload).digest()) + payload
    path = entry_path(kind, key)
    try:
        _write_durably(path, blob)
    except OSError as e:
        d = os.path.dirname(path)
        if d == _fallback:
            raise
        _abandon(d, e.strerror or str(e))
        path = entry_path(kind, key)
        _write_durably(path, blob)
    _bound_size(os.path.dirname(path), len(blob))


def _write_durably(path: str, blob: bytes) -> None:
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(d)


def _fsync_dir(d: str) -> None:
    """Make a rename in ``d`` durable (where directories can be opened: POSIX)."""
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _bound_size(d: str, added: int) -> None:
    """Delete the least recently used entries of ``d`` while it holds more than the bound.
    The directory is scanned (one ``stat`` per entry: about a second for 60,000 entries)
    only when the bytes written since its last scan may have taken it over, and a scan that
    finds it over deletes down to ``_LOW_WATER`` of the bound, so that the writes after it
    do not each scan again.  One thread of the process scans at a time; a write meanwhile
    leaves the bounding to that scan instead of waiting for it."""
    limit = max_size()
    if limit < 0:
        return
    with _lock:
        estimate = _estimated_size.get(d)
        if estimate is not None and estimate + added <= limit:
            _estimated_size[d] = estimate + added
            return
    if not _scanning.acquire(blocking=False):
        return
    try:
        size = _evict(d, limit)
        with _lock:
            _estimated_size[d] = size
    finally:
        _scanning.release()


def _entries(d: str) -> list[tuple[float, int, str]]:
    """(modification time, size, path) of every entry of ``d``; writers' temporary files
    left by a crash are deleted on the way."""
    out = []
    now = time.time()
    try:
        with os.scandir(d) as listing:
            files = [f for f in listing if f.name.endswith((SUFFIX, ".tmp"))
                     or f.name.startswith(_OLD_ENTRIES)]
    except OSError:
        return out
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        if not f.name.endswith(".tmp"):
            out.append((st.st_mtime, st.st_size, f.path))
        elif now - st.st_mtime > _STALE_TEMP_SECONDS:
            _remove(f.path)
    return out


def _evict(d: str, limit: int) -> int:
    """When ``d`` holds more than ``limit`` bytes, delete its oldest entries until it holds at
    most ``_LOW_WATER`` of them; returns what it holds then."""
    entries = sorted(_entries(d))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return total
    for _, size, path in entries:
        if total <= limit * _LOW_WATER:
            break
        if _remove(path):
            total -= size
    return total


def _remove(path: str) -> bool:
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def clear() -> None:
    """Delete every entry of the cache directory in use (compiled code then recompiles)."""
    d = cache_dir()
    with _lock:
        for _, _, path in _entries(d):
            _remove(path)
        _estimated_size.pop(d, None)
