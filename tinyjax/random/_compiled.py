"""Large eager draws run compiled.

Eagerly, a sampler runs op by op on numpy arrays: instant for the small draws of
notebook code, but a draw of millions of elements pays numpy's per-pass memory traffic
(threefry's twenty rounds, the erf_inv polynomial) where one compiled kernel makes a
single pass.  :func:`compiled_when_large` routes an eager call whose draw has at least
:data:`LARGE_DRAW` elements through ``jit`` (cached per shape, dtype and static
arguments, on the default device); smaller draws and calls under a transformation are
unchanged.
"""
from __future__ import annotations

import functools
import inspect
import math
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import core
from tinyjax.api import jit

__all__ = ["LARGE_DRAW", "compiled_when_large"]

# elements from which an eager draw is compiled: below it, compiling (or even loading a
# cached kernel) costs more than numpy's passes over the data
LARGE_DRAW = 1 << 20


def _size(x: Any) -> int:
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (tuple, list)):
        return math.prod(int(d) for d in x)
    return int(np.prod(getattr(x, "shape", ())))


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


def compiled_when_large(static_argnames: Sequence[str] = ("shape", "dtype"),
                        size_argnames: Sequence[str] = ()) -> Callable:
    """Decorate a sampler: an eager call whose draw is large runs through ``jit`` with
    ``static_argnames`` static.  The draw's size is the largest of the ``shape``
    argument's and the sizes of the arguments named in ``size_argnames``."""
    def decorate(sampler: Callable) -> Callable:
        signature = inspect.signature(sampler)
        params = list(signature.parameters)
        names = [n for n in static_argnames if n in params]
        sized = [(n, params.index(n), signature.parameters[n].default)
                 for n in ("shape", *size_argnames) if n in params]
        compiled = jit(sampler, static_argnames=names)

        def draw_size(args: tuple, kwargs: dict) -> int:
            size = 0
            for name, position, default in sized:
                value = kwargs.get(name, args[position] if position < len(args) else default)
                if value is not None and value is not inspect.Parameter.empty:
                    size = max(size, _size(value))
            return size

        @functools.wraps(sampler)
        def run(*args: Any, **kwargs: Any) -> Any:
            if not core.is_eager() or draw_size(args, kwargs) < LARGE_DRAW:
                return sampler(*args, **kwargs)
            arguments = signature.bind(*args, **kwargs).arguments
            return compiled(**{k: _hashable(v) if k in names else v
                               for k, v in arguments.items()})
        run.compiled = compiled  # the jitted sampler large draws go through
        return run
    return decorate
