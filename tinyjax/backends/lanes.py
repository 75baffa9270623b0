"""Independent kernels side by side: which stream ("lane") each kernel of a program runs on
and which kernels of other lanes it must wait for.

A compiled program is a list of kernels in an order that is correct to run one after
another.  Many of them do not depend on each other -- in a training step's backward pass a
layer's weight gradient and the gradient that flows on to the layer below both read the
same inputs and nothing of each other -- and small kernels leave most of a GPU idle.  Given
the memory each kernel writes and reads (byte ranges of the actual buffers, so that a
buffer reused for a later value orders its readers before its next writer), kernel ``j``
depends on an earlier ``i`` when one writes what the other reads or writes.  The kernels
are launched in order of their depth in that dependence graph (program order among equals),
each on the lane whose last kernel it depends on, else on one whose last kernel is no
deeper than its own inputs, so that a kernel ready early does not queue behind one ready
late; every dependence across lanes becomes a wait for an event recorded after the kernel
it depends on, unless the lane is already ordered after that point.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

__all__ = ["Launch", "dependences", "plan_lanes"]

Range = tuple[int, int]  # [start, end) in bytes


class Launch(NamedTuple):
    kernel: int              # index in program order
    lane: int
    waits: tuple[int, ...]   # kernels on other lanes that must finish first


def _overlap(a: Sequence[Range], b: Sequence[Range]) -> bool:
    return any(s < e2 and s2 < e for s, e in a for s2, e2 in b)


def dependences(writes: Sequence[Sequence[Range]],
                reads: Sequence[Sequence[Range]]) -> list[set[int]]:
    """For each kernel, the earlier kernels it must run after (read after write, write after
    read, write after write)."""
    deps = []
    for j in range(len(writes)):
        deps.append({i for i in range(j) if _overlap(writes[i], reads[j]) or
                     _overlap(writes[i], writes[j]) or _overlap(reads[i], writes[j])})
    return deps


def plan_lanes(writes: Sequence[Sequence[Range]], reads: Sequence[Sequence[Range]],
               lanes: int) -> list[Launch]:
    """The launches of a program (see the module docstring), in the order to issue them."""
    deps = dependences(writes, reads)
    depth: list[int] = []
    for d in deps:
        depth.append(1 + max((depth[i] for i in d), default=-1))
    order = sorted(range(len(deps)), key=lambda j: (depth[j], j))
    tail = [-1] * lanes                      # the last kernel issued on each lane
    lane_of: dict[int, int] = {}
    pos: dict[int, int] = {}                 # a kernel's position on its lane
    count = [0] * lanes
    # after[l][m]: lane l is ordered after the first after[l][m] kernels of lane m
    after = [[0] * lanes for _ in range(lanes)]
    seen_at: dict[int, list[int]] = {}       # after[lane] as it was when a kernel was issued
    plan = []

    def tail_depth(lane: int) -> int:
        return depth[tail[lane]] if tail[lane] >= 0 else -1
    for j in order:
        d = deps[j]
        own = [l for l in range(lanes) if tail[l] in d]
        if own:  # continue the deepest chain it extends
            lane = max(own, key=tail_depth)
        else:  # the deepest lane done by the time its inputs are, else the shallowest
            ready = max((depth[i] for i in d), default=-1)
            early = [l for l in range(lanes) if tail_depth(l) <= ready]
            lane = max(early, key=tail_depth) if early else min(range(lanes), key=tail_depth)
        waits = []
        for i in sorted(d, key=lambda i: -depth[i]):
            m = lane_of[i]
            if m == lane or after[lane][m] > pos[i]:
                continue
            waits.append(i)
            for x in range(lanes):  # waiting for i orders this lane after all i was after
                after[lane][x] = max(after[lane][x], seen_at[i][x])
            after[lane][m] = max(after[lane][m], pos[i] + 1)
        lane_of[j], pos[j] = lane, count[lane]
        count[lane] += 1
        after[lane][lane] = count[lane]
        seen_at[j] = list(after[lane])
        tail[lane] = j
        plan.append(Launch(j, lane, tuple(sorted(waits))))
    return plan
