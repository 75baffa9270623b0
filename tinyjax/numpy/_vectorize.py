"""``jnp.vectorize``: numpy's vectorize, built on vmap (no Python loop over elements)."""
from __future__ import annotations

import re
from functools import wraps
from typing import Callable

from tinyjax.core import get_aval
from tinyjax.lax._helpers import as_operand
from tinyjax.numpy._util import broadcast_shapes, broadcast_to_shape
from tinyjax.api import vmap

_DIM = r"\w+"
_CORE = rf"\((?:{_DIM}(?:,{_DIM})*)?\)"
_ARGS = rf"{_CORE}(?:,{_CORE})*"
_SIGNATURE = re.compile(rf"^{_ARGS}->{_ARGS}$")


def _parse_signature(signature: str) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]]]:
    sig = signature.replace(" ", "")
    if not _SIGNATURE.match(sig):
        raise ValueError(f"not a valid gufunc signature: {signature}")
    ins, outs = sig.split("->")

    def groups(part):
        return [tuple(d for d in g.split(",") if d) for g in re.findall(r"\(([^)]*)\)", part)]
    return groups(ins), groups(outs)


def vectorize(pyfunc: Callable, *, excluded: frozenset = frozenset(),
              signature: str | None = None) -> Callable:
    """Vectorise ``pyfunc`` over the leading (loop) axes of its arguments, as
    ``numpy.vectorize`` does; ``signature`` (e.g. ``"(n),(n)->()"``) names core
    dimensions that ``pyfunc`` sees whole.  Implemented with nested ``vmap``."""
    in_core, out_core = _parse_signature(signature) if signature else (None, None)

    @wraps(pyfunc)
    def wrapped(*args, **kwargs):
        excluded_pos = {i for i in excluded if isinstance(i, int)}
        dyn_idx = [i for i in range(len(args)) if i not in excluded_pos]
        dyn = [as_operand(args[i]) for i in dyn_idx]
        cores = in_core if in_core is not None else [()] * len(dyn)
        if len(cores) != len(dyn):
            raise TypeError(f"wrong number of positional arguments: expected {len(cores)}, "
                            f"got {len(dyn)}")
        sizes: dict[str, int] = {}
        loop_shapes = []
        for x, core in zip(dyn, cores):
            shape = get_aval(x).shape
            if len(shape) < len(core):
                raise ValueError(f"input with shape {shape} does not have enough dimensions "
                                 f"for its core dimensions {core} in signature {signature}")
            for name, size in zip(core, shape[len(shape) - len(core):]):
                if sizes.setdefault(name, size) != size:
                    raise ValueError(f"inconsistent size for core dimension {name!r}: "
                                     f"{sizes[name]} vs {size}")
            loop_shapes.append(shape[:len(shape) - len(core)])
        loop_shape = broadcast_shapes(*loop_shapes) if loop_shapes else ()
        dyn = [broadcast_to_shape(x, loop_shape + get_aval(x).shape[len(ls):])
               for x, ls in zip(dyn, loop_shapes)]

        def core_fun(*dyn_args):
            full = list(args)
            for i, v in zip(dyn_idx, dyn_args):
                full[i] = v
            out = pyfunc(*full, **kwargs)
            if out_core is not None:
                outs = out if isinstance(out, tuple) else (out,)
                for o, core in zip(outs, out_core):
                    if get_aval(as_operand(o)).ndim != len(core):
                        raise ValueError(f"output has {get_aval(as_operand(o)).ndim} "
                                         f"dimensions, but the signature {signature} "
                                         f"expects core dimensions {core}")
            return out

        fun = core_fun
        for _ in loop_shape:
            fun = vmap(fun)
        return fun(*dyn)

    return wrapped
