"""``jax.experimental.layout``: an array's memory layout together with its sharding.

tinyjax keeps every array in one layout (row-major, dense); a :class:`Format` records a
layout and a sharding for code that builds and inspects them."""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["Format", "Layout"]


class Layout:
    """The order of an array's dimensions in memory, most major first."""

    def __init__(self, major_to_minor: Sequence[int]):
        self.major_to_minor = tuple(major_to_minor)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.major_to_minor == other.major_to_minor

    def __hash__(self) -> int:
        return hash(self.major_to_minor)

    def __repr__(self) -> str:
        return f"Layout(major_to_minor={self.major_to_minor})"


class Format:
    """A layout (None: the default) and a sharding."""

    def __init__(self, layout: Layout | None = None, sharding: Any = None):
        self.layout, self.sharding = layout, sharding

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Format) and self.layout == other.layout
                and self.sharding == other.sharding)

    def __hash__(self) -> int:
        return hash((self.layout, self.sharding))

    def __repr__(self) -> str:
        return f"Format({self.layout}, {self.sharding})"
