"""``BEAM=n``: each kernel's passes chosen by timing, not by the cost model.

A beam search over pass sequences: starting from the plain loop nest, every candidate in
the beam is extended by every action that applies (:data:`actions`: which loop runs in
parallel, reduce blocks, upcast rows, tiles), each extension is timed (the caller compiles
and runs it: the search knows no device), and the ``width`` fastest go on; the search stops
when a round finds nothing faster.  The heuristic choice is always a candidate, so the
search never ends slower than the cost model.  The winner's passes are kept in the disk
cache (a ``beam`` entry keyed by the kernel's IR and the target, checked before use), so
the next process replays them without timing anything.
"""
from __future__ import annotations

import copy
import hashlib
import json
import time
from typing import Callable, Iterable, Optional

import numpy as np

from tinyjax.backends import diskcache
from tinyjax.compiler.codegen import opts
from tinyjax.compiler.codegen.loops import LoopKernel, base

__all__ = ["beam_search", "actions", "cached_search", "kernel_timer"]

BLOCKS = (16, 64, 256, 1024, 4096)
TILES = (16, 32, 64)


def actions(lk: LoopKernel) -> Iterable[tuple]:
    """Every ``(pass name, arguments)`` worth trying on ``lk`` (some may not apply)."""
    k = lk.kernel
    for pos in range(len(lk.loops)):
        yield ("parallelize", (pos,))
    if k.reduce_op is not None:
        for b in BLOCKS:
            yield ("block_reduce", (b,))
        for lp in lk.of_kind("global"):
            if not lp.block:
                for b in BLOCKS:
                    if b < k.full_shape[lp.axis] or b == BLOCKS[0]:
                        yield ("upcast", (lp.axis, min(b, k.full_shape[lp.axis])))
        if k.full_epilogue:
            yield ("hoist_row_stores", ())
    else:
        glob = [lp.axis for lp in lk.of_kind("global") if not lp.block]
        for a in glob:
            for b in glob:
                if a != b:
                    for t in TILES:
                        yield ("tile", ((a, b), t))


def beam_search(k, width: int, time_fn: Callable[[LoopKernel], float],
                start: Optional[LoopKernel] = None, rounds: int = 4) -> LoopKernel:
    """The fastest pass sequence found for kernel ``k`` (see the module docstring);
    ``start``: a candidate timed first (the cost model's choice)."""
    plain = base(k)
    timed: dict[tuple, float] = {}

    def cost(lk: LoopKernel) -> float:
        key = tuple(s[:2] for s in lk.applied)
        if key not in timed:
            try:
                timed[key] = time_fn(lk)
            except Exception:  # noqa: BLE001 - a candidate that fails to build is no candidate
                timed[key] = float("inf")
        return timed[key]
    seeds = [plain] + ([start] if start is not None else [])
    beam = sorted(seeds, key=cost)[:width]
    best = beam[0]
    for _ in range(rounds):
        cands = []
        for lk in beam:
            for name, args in actions(lk):
                try:
                    cands.append(opts.PASSES[name](lk, *args))
                except opts.OptError:
                    continue
        if not cands:
            break
        beam = sorted(cands, key=cost)[:width]
        if cost(beam[0]) >= cost(best):
            break
        best = beam[0]
    return best


def kernel_key(k, target: str) -> str:
    """What identifies a kernel's search: its IR (bodies, shapes, buffers) and the target."""
    text = k.dump().split("\n", 1)[-1] + f"\n{k.full_shape}{k.reduce_axes}{target}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_search(k, width: int, time_fn: Callable[[LoopKernel], float],
                  target: str = "cpu", start: Optional[LoopKernel] = None) -> LoopKernel:
    """:func:`beam_search`, its winner kept in the disk cache (an entry checked before use:
    :mod:`tinyjax.backends.diskcache`) and replayed from there.  An entry that is not a
    list of passes this kernel takes is deleted, with a warning, and searched again."""
    key = f"beam\0{kernel_key(k, target)}"
    saved = diskcache.read("beam", key)
    if saved is not None:
        try:
            return opts.replay(base(k), [tuple(s) for s in json.loads(saved)])
        except (ValueError, KeyError, TypeError, opts.OptError) as e:
            diskcache.discard("beam", key, f"not passes of this kernel: {e}")
    best = beam_search(k, width, time_fn, start)
    diskcache.write("beam", key, json.dumps(
        [[name, list(args)] for name, args, _ in best.applied]).encode())
    return best


def kernel_timer(backend, repeats: int = 5):
    """``time(kernel, loop IR)``: the best of ``repeats`` runs of the kernel compiled from
    that loop IR on ``backend``, over buffers of random floats (integers zero: a gather's
    offsets stay in range)."""
    def time_kernel(k, uops) -> float:
        cand = copy.copy(k)
        cand.loop_ir = uops
        _, fns = backend.compile([cand])
        launch = backend.make_launcher(fns[0], cand)
        rng = np.random.default_rng(0)
        arrays = [rng.standard_normal(n).astype(dt) if np.dtype(dt).kind == "f"
                  else np.zeros(n, dt) for dt, n in cand.bufs]
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            launch(arrays)
            best = min(best, time.perf_counter() - t0)
        return best
    return time_kernel
