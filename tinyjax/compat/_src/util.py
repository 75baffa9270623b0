"""``jax._src.util``: the list helpers that programs written against JAX's internals import
(JAX's "custom interpreters" tutorial evaluates jaxprs with ``safe_map``)."""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

__all__ = ["safe_map", "safe_zip", "unzip2", "split_list"]


def _check_lengths(args: Sequence[Sequence[Any]]) -> None:
    n = len(args[0])
    for arg in args[1:]:
        if len(arg) != n:
            raise ValueError(f"length mismatch: {list(map(len, args))}")


def safe_map(f: Callable, *args: Sequence[Any]) -> list[Any]:
    """``list(map(f, *args))``, raising ValueError when the sequences' lengths differ."""
    args = [list(a) for a in args]
    _check_lengths(args)
    return list(map(f, *args))


def safe_zip(*args: Sequence[Any]) -> list[tuple]:
    """``list(zip(*args))``, raising ValueError when the sequences' lengths differ."""
    args = [list(a) for a in args]
    _check_lengths(args)
    return list(zip(*args))


def unzip2(pairs: Iterable[tuple[Any, Any]]) -> tuple[tuple, tuple]:
    """The firsts and the seconds of ``pairs``, as two tuples."""
    firsts, seconds = [], []
    for a, b in pairs:
        firsts.append(a)
        seconds.append(b)
    return tuple(firsts), tuple(seconds)


def split_list(args: Sequence[Any], ns: Sequence[int]) -> list[list[Any]]:
    """``args`` cut into pieces of the lengths ``ns``, then the rest."""
    args, out = list(args), []
    for n in ns:
        out.append(args[:n])
        args = args[n:]
    return out + [args]
