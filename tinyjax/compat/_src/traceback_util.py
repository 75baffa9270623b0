"""``jax._src.traceback_util``: the files whose frames are the library's, not the user's.

JAX hides such frames from tracebacks; tinyjax shows whole tracebacks (as JAX does with
``JAX_TRACEBACK_FILTERING=off``), and uses the registered files to name the user's line in
staged equations (:func:`tinyjax.extend.source_info_util.register_exclusion`)."""
from __future__ import annotations

from types import FrameType
from typing import Callable, TypeVar

from tinyjax.core import is_excluded_source
from tinyjax.extend.source_info_util import register_exclusion as _register_source_exclusion

__all__ = ["api_boundary", "include_frame", "register_exclusion"]

C = TypeVar("C", bound=Callable)

_exclude_paths: list[str] = []  # (Flax edits this list directly, as JAX's)


def register_exclusion(path: str) -> None:
    """Frames in files under ``path`` belong to a library built on tinyjax."""
    _exclude_paths.append(path)
    _register_source_exclusion(path)


def api_boundary(fun: C, *, repro_api_name: str | None = None,
                 repro_user_func: bool = False) -> C:
    """``fun`` itself: a boundary for traceback filtering, which tinyjax does not do."""
    return fun


def include_frame(frame: FrameType) -> bool:
    """Whether ``frame`` is the user's (not tinyjax's nor a registered library's)."""
    return not is_excluded_source(frame.f_code.co_filename)
