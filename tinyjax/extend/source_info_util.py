"""``jax.extend.source_info_util``: where equations say they were made.

tinyjax records with each staged equation the first frame outside tinyjax (its
``file:line``); a library built on tinyjax registers its own files so that equations
name the user's line, not the library's."""
from __future__ import annotations

from tinyjax.core import register_source_exclusion

__all__ = ["register_exclusion"]


def register_exclusion(path: str) -> None:
    """Frames in files under ``path`` are not the user's source."""
    register_source_exclusion(path)
