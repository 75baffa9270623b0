"""Pictures of how arrays are laid out over devices: ``jax.debug.visualize_array_sharding``
and ``visualize_sharding``, drawn as JAX draws them (a box per block, labelled with the
devices that hold it, sized after the block) in box-drawing characters."""
from __future__ import annotations

import builtins
from typing import Any, Sequence

from tinyjax.array import ArrayImpl
from tinyjax.core import Tracer
from tinyjax.sharding import Sharding, sharding_of

__all__ = ["visualize_sharding", "visualize_array_sharding"]


def _chunk(size: int, s: slice) -> int:
    start, stop, _ = s.indices(size)
    return 0 if stop - start == size else start // (stop - start)


def _cells(shape: Sequence[int], sharding: Sharding):
    """{(row, column): (device ids, height fraction or None, width fraction)}."""
    cells: dict = {}
    for dev, index in sharding.devices_indices_map(tuple(shape)).items():
        if len(shape) == 2:
            key = (_chunk(shape[0], index[0]), _chunk(shape[1], index[1]))
            h = len(range(*index[0].indices(shape[0]))) / shape[0]
            w = len(range(*index[1].indices(shape[1]))) / shape[1]
        else:
            key, h = (0, _chunk(shape[0], index[0])), None
            w = len(range(*index[0].indices(shape[0]))) / shape[0]
        ids, _, _ = cells.get(key, (set(), h, w))
        cells[key] = (ids | {dev.id}, h, w)
    return cells


def visualize_sharding(shape: Sequence[int], sharding: Sharding, *, use_color: bool = True,
                       scale: float = 1.0, min_width: int = 9, max_width: int = 80,
                       color_map: Any = None) -> None:
    """Print how an array of ``shape`` (1 or 2 dimensions) is laid out by ``sharding``:
    one box per block, labelled with the devices holding it."""
    if not 1 <= len(shape) <= 2:
        raise ValueError("`visualize_sharding` only works for shapes with 1 and 2 "
                         "dimensions.")
    base_height = int(10 * scale)
    base_width = int(base_height * (shape[1] if len(shape) == 2 else 1) / shape[0])
    kind = next(iter(sharding.device_set)).platform.upper()
    cells = _cells(shape, sharding)
    rows = max(k[0] for k in cells) + 1
    cols = max(k[1] for k in cells) + 1
    grid = [[None] * cols for _ in range(rows)]
    for (i, j), (ids, h, w) in cells.items():
        entry = f"{kind} " + ",".join(str(d) for d in sorted(ids))
        width = min(max(int(w * base_width * 2.5), min_width), max_width)
        height = 1 if h is None else int(h * base_height)
        left, rem = divmod(width - len(entry) - 2, 2)
        top, rem_v = divmod(height - 2, 2)
        grid[i][j] = (entry, max(left, 0), max(left + rem, 0), max(top, 0),
                      max(top + rem_v, 0))
    widths = [max(len(c[0]) + c[1] + c[2] for c in (grid[i][j] for i in range(rows)))
              for j in range(cols)]
    lines = ["┌" + "┬".join("─" * w for w in widths) + "┐"]
    for i, row in enumerate(grid):
        height = max(1 + c[3] + c[4] for c in row)
        for line in range(height):
            parts = []
            for (entry, left, right, top, bottom), w in zip(row, widths):
                inner = w - left - right
                text = entry if line == top else ""
                pad = inner - len(text)
                parts.append(" " * left + " " * (pad // 2) + text + " " * (pad - pad // 2)
                             + " " * right)
            lines.append("│" + "│".join(parts) + "│")
        if i < rows - 1:
            lines.append("├" + "┼".join("─" * w for w in widths) + "┤")
    lines.append("└" + "┴".join("─" * w for w in widths) + "┘")
    builtins.print("\n".join(lines))


def visualize_array_sharding(arr: Any, **kwargs: Any) -> None:
    """Print how the array ``arr`` is laid out over its devices (see
    :func:`visualize_sharding`)."""
    if isinstance(arr, Tracer):
        raise NotImplementedError("visualize_array_sharding of a traced value: call it on "
                                  "a concrete array (outside jit)")
    if type(arr) is not ArrayImpl:
        raise TypeError(f"visualize_array_sharding expects an Array, got {arr!r}")
    visualize_sharding(arr.shape, sharding_of(arr), **kwargs)

