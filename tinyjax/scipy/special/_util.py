"""Helpers shared by the special-function modules."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import lax


def polyval(coefs: Sequence[float], x: Any) -> Any:
    """The polynomial with ``coefs`` (highest degree first) at ``x``, by Horner's rule,
    the coefficients rounded to ``x``'s dtype."""
    dt = jnp.result_type(x)
    out = jnp.full_like(x, coefs[0])
    for c in coefs[1:]:
        out = out * x + np.asarray(c, dt)
    return out


def ratio(num: Sequence[float], den: Sequence[float], x: Any) -> Any:
    """``polyval(num, x) / polyval(den, x)``: a rational approximation."""
    return polyval(num, x) / polyval(den, x)


def in_float32_for_16_bits(fn):
    """Run ``fn`` on float32 copies of 16-bit float arguments (the rational
    approximations' constants need float32) and round the results back."""
    def run(x, *args):
        dt = jnp.result_type(x)
        if dt in (np.dtype(np.float16), np.dtype(jnp.bfloat16)):
            out = fn(x.astype(np.float32), *args)
            if isinstance(out, tuple):
                return tuple(o.astype(dt) for o in out)
            return out.astype(dt)
        return fn(x, *args)
    return run



def iterate_until_converged(body: Callable, state: tuple, active: Any,
                            max_iter: int | None = None) -> tuple:
    """A vectorised ``while`` loop: ``body(state) -> (new_state, still_active)`` is
    applied while any element is ``active`` (at most ``max_iter`` times); an element
    keeps its values from the step it became inactive.  For series and continued
    fractions whose terms-to-convergence vary per element."""
    def cond(carry):
        i, on, _ = carry
        more = jnp.any(on)
        return more if max_iter is None else more & (i < max_iter)

    def step(carry):
        i, on, st = carry
        new, still = body(st)
        kept = tuple(jnp.where(on, n, o) for n, o in zip(new, st))
        return i + 1, on & still, kept
    return lax.while_loop(cond, step, (0, jnp.asarray(active), tuple(state)))[2]
