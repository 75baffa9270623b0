"""The persistent compilation cache: ``set_cache_dir(path)`` is
``jax.config.update("jax_compilation_cache_dir", path)``; tinyjax keeps its compiled
libraries there (default: ``TINYJAX_CACHE_DIR``, else ``~/.cache/tinyjax``)."""
from __future__ import annotations

import os
from typing import Any

from tinyjax.config import config

__all__ = ["set_cache_dir", "reset_cache"]


def set_cache_dir(path: Any) -> None:
    """Keep compiled programs in the directory ``path`` from now on."""
    config.update("jax_compilation_cache_dir", os.fspath(path))


def reset_cache() -> None:
    """Back to the default cache directory."""
    config.reset("jax_compilation_cache_dir")
