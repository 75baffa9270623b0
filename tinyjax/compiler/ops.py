"""The low-level op graph (device independent) that jaxprs lower to.

A :class:`LazyOp` is one node of a lazy dataflow graph.  Its kinds:

* ``LOAD``   a buffer given to the program (an input or a bound constant); ``arg`` = slot
* ``CONST``  a scalar constant (shape ``()``); ``arg`` = Python value
* ``IDX``    ``[0, 1, ..., n-1]`` (shape ``(n,)``), the source of iota
* ``VIEW``   a movement of ``srcs[0]``: ``arg`` is a :class:`ShapeTracker` over the contiguous
  layout of the source's shape; positions outside its mask read as 0.  Movement ops never
  move data: they only edit this tracker.
* ``ALU``    elementwise unary/binary/ternary op; ``arg`` = a name in :data:`ALU`
* ``CAST``   elementwise conversion to ``dtype`` (XLA semantics: float->int truncates and
  saturates, NaN -> 0; anything -> bool is ``!= 0``)
* ``BITCAST`` elementwise reinterpretation of the bits as ``dtype`` (same item size)
* ``DLOAD``  a data-dependent read (the gather kernel kind): ``srcs = (x, offset)``; element
  ``i`` is ``x.flat[offset[i]]`` (``x`` is materialised; offsets must be in range)
* ``SCATTER`` ``srcs = (x, offset, updates, valid)``, ``arg`` = combine (``replace``, ``add``,
  ``mul``, ``min``, ``max``): ``x`` with, for every element ``u`` of ``updates`` in C order
  where ``valid[u]``, ``out.flat[offset[u]] = combine(out.flat[offset[u]], updates[u])``
  (the scatter kernel kind: a serial loop after a copy of ``x``)
* ``SORTPERM`` ``srcs`` = keys (same shape), ``arg = (axis, descending)``: int64, the
  stable sorting permutation of every row along ``axis`` (lexicographic over the keys;
  ascending: NaN after everything; descending: XLA's TopK total order) (the sort kernel kind)
* ``REDUCE`` ``arg = (op, axes)`` with op in :data:`REDUCE_OPS`; reduced axes are kept
  with size 1 (a reshape view drops them).

Every node records the source line (``source_info``) of the jaxpr equation that made it.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.compiler.shape.shapetracker import ShapeTracker

__all__ = ["LazyOp", "Alu", "ALU", "REDUCE_OPS", "load", "const", "idx", "alu", "cast", "reduce",
           "reshape", "permute", "expand", "pad", "shrink", "flip", "stride", "broadcast_to",
           "where", "current_source", "reduce_identity", "dload", "scatter", "bitcast",
           "sortperm"]


class Alu(NamedTuple):
    """One ALU op.  ``arity``: its operands; ``cost``: what computing it costs relative to an
    add (the scheduler recomputes cheap expressions in their consumers rather than storing
    them); ``infix``: its C-family operator, or ``libm``: its C-family math function on
    float operands (renderers spell the rest themselves); ``primitive``: whether it is the
    lax primitive of the same name, with that primitive's semantics."""
    arity: int
    cost: int = 1
    infix: Optional[str] = None
    libm: Optional[str] = None
    primitive: bool = True


_CALL = 4  # a math library call or a division


def _unary_calls(*names: str, libm: bool = True) -> dict[str, Alu]:
    return {n: Alu(1, _CALL, libm=n if libm else None) for n in names}


def _infix(**ops: str) -> dict[str, Alu]:
    return {n: Alu(2, infix=op) for n, op in ops.items()}


ALU: dict[str, Alu] = {
    **{n: Alu(1) for n in ("neg", "sign", "is_finite", "abs", "not", "population_count",
                           "clz")},
    "floor": Alu(1, libm="floor"), "ceil": Alu(1, libm="ceil"),
    "round_even": Alu(1, libm="rint", primitive=False),
    "round_away": Alu(1, libm="round", primitive=False),
    "recip": Alu(1, primitive=False),
    **_unary_calls("exp", "exp2", "log", "log1p", "expm1", "tanh", "sin", "cos", "tan", "asin",
                   "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "sqrt", "cbrt",
                   "erf", "erfc", "lgamma"),
    **_unary_calls("logistic", "rsqrt", "erf_inv", "digamma", libm=False),
    **_infix(add="+", sub="-", mul="*", eq="==", ne="!=", lt="<", le="<=", gt=">", ge=">=",
             **{"and": "&", "or": "|", "xor": "^"}),
    **{n: Alu(2) for n in ("max", "min", "shift_left", "shift_right_arithmetic",
                           "shift_right_logical", "mulhi")},
    "nextafter": Alu(2, libm="nextafter"),
    "pow": Alu(2, _CALL, libm="pow"), "atan2": Alu(2, _CALL, libm="atan2"),
    **{n: Alu(2, _CALL) for n in ("div", "rem", "polygamma")},
    "where": Alu(3, primitive=False),
}
COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})

# The reference (numpy) semantics of ops, for the interpreter backend, registered by the
# lowering rules that emit them: an ALU op named after a lax primitive means that primitive's
# implementation, ``"CAST"`` convert_element_type's (``impl(x, new_dtype=...)``), and
# ``"SORTPERM"`` is ``impl(keys, axis, descending) -> permutation``.
reference_impls: dict[str, Callable] = {}


def register_reference_impl(op: str, impl: Callable) -> None:
    """Give ``op`` (an ALU op's name, ``"CAST"`` or ``"SORTPERM"``) its numpy semantics."""
    reference_impls[op] = impl


REDUCE_OPS = ("sum", "prod", "max", "min", "and", "or", "xor")


def reduce_identity(op: str, dt):
    """The identity of the reduction ``op`` (one of :data:`REDUCE_OPS`) on ``dt``."""
    dt = np.dtype(dt)
    if op in ("sum", "or", "xor"):
        return 0
    if op == "prod":
        return 1
    if op == "and":  # every bit set
        return True if dt == np.bool_ else (-1 if dt.kind == "i" else int(np.iinfo(dt).max))
    if dt == np.bool_:
        return op == "min"
    if dtypes.is_float(dt):
        return -np.inf if op == "max" else np.inf
    info = np.iinfo(dt)
    return info.min if op == "max" else info.max


_source = [""]


def current_source(info: Optional[str] = None) -> str:
    """Get (or with an argument, set) the source line stamped on new nodes."""
    if info is not None:
        _source[0] = info
    return _source[0]


class LazyOp:
    """One node of the low-level op graph (identity semantics: ``is`` comparison)."""

    __slots__ = ("op", "srcs", "arg", "dtype", "shape", "source_info", "__weakref__")

    def __init__(self, op: str, srcs: Sequence["LazyOp"], arg: Any, dtype, shape):
        self.op = op
        self.srcs = tuple(srcs)
        self.arg = arg
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.source_info = _source[0]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        arg = self.arg
        if isinstance(arg, ShapeTracker):
            arg = "views=" + "; ".join(
                f"{v.shape} st={v.strides} off={v.offset}" + (f" mask={v.mask}" if v.mask else "")
                for v in arg.views)
        return f"{self.op}[{arg}]:{self.dtype.name}{list(self.shape)}"


# ---- leaves ------------------------------------------------------------------------------

def load(slot: int, shape, dtype) -> LazyOp:
    return LazyOp("LOAD", (), slot, dtype, shape)


def const(value, dtype, shape=()) -> LazyOp:
    dtype = np.dtype(dtype)
    value = np.asarray(value).astype(dtype).item()
    c = LazyOp("CONST", (), value, dtype, ())
    return broadcast_to(c, shape) if tuple(shape) else c


def idx(n: int, dtype) -> LazyOp:
    return LazyOp("IDX", (), None, dtype, (n,))


# ---- compute -----------------------------------------------------------------------------

def alu(name: str, *srcs: LazyOp, dtype=None) -> LazyOp:
    arity = ALU[name].arity if name in ALU else None
    if arity != len(srcs):
        raise ValueError(f"alu: {name} takes {arity} operands, got {len(srcs)}")
    shape = srcs[-1].shape
    if any(s.shape != shape for s in srcs):
        raise ValueError(f"alu {name}: operand shapes differ: {[s.shape for s in srcs]}")
    if dtype is None:
        if name in COMPARISONS or name == "is_finite":
            dtype = np.bool_
        else:
            dtype = srcs[-1].dtype
    return LazyOp("ALU", srcs, name, dtype, shape)


def where(cond: LazyOp, x: LazyOp, y: LazyOp) -> LazyOp:
    return alu("where", cond, x, y)


def dload(x: LazyOp, offset: LazyOp) -> LazyOp:
    """``x.flat[offset]`` elementwise over ``offset``'s shape (an integer array)."""
    return LazyOp("DLOAD", (x, cast(offset, np.int64)), None, x.dtype, offset.shape)


def scatter(x: LazyOp, offset: LazyOp, updates: LazyOp, valid: LazyOp, combine: str) -> LazyOp:
    """``x`` updated at flat offsets (see ``SCATTER``); offset/updates/valid share a shape."""
    if not (offset.shape == updates.shape == valid.shape):
        raise ValueError("scatter: offset, updates and valid shapes differ")
    return LazyOp("SCATTER", (x, cast(offset, np.int64), cast(updates, x.dtype),
                              cast(valid, np.bool_)), combine, x.dtype, x.shape)


def sortperm(keys: Sequence[LazyOp], axis: int, descending: bool = False) -> LazyOp:
    shape = keys[0].shape
    if any(k.shape != shape for k in keys):
        raise ValueError("sortperm: key shapes differ")
    return LazyOp("SORTPERM", tuple(keys), (int(axis), bool(descending)), np.int64, shape)


def bitcast(x: LazyOp, dtype) -> LazyOp:
    dtype = np.dtype(dtype)
    if dtype.itemsize != x.dtype.itemsize:
        raise ValueError("bitcast: item sizes differ")
    return x if dtype == x.dtype else LazyOp("BITCAST", (x,), dtype, dtype, x.shape)


def cast(x: LazyOp, dtype) -> LazyOp:
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    return LazyOp("CAST", (x,), dtype, dtype, x.shape)


def reduce(x: LazyOp, op: str, axes: Iterable[int], allow_tf32: bool = False) -> LazyOp:
    """Reduce over ``axes``, keeping them with size 1.  ``allow_tf32``: a float32 contraction
    that may run on TF32 tensor cores (JAX's default matmul precision on GPUs); the arg is
    ``(op, axes, allow_tf32)``."""
    axes = tuple(sorted({int(a) % max(x.ndim, 1) for a in axes}))
    if op not in REDUCE_OPS:
        raise ValueError(f"reduce: unknown op {op}")
    if not axes:
        return x
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape))
    return LazyOp("REDUCE", (x,), (op, axes, bool(allow_tf32)), x.dtype, shape)


# ---- movement (views) ----------------------------------------------------------------------

def _view(x: LazyOp, method: str, *args) -> LazyOp:
    if x.op == "VIEW":
        src, st = x.srcs[0], x.arg
    else:
        src, st = x, ShapeTracker.from_shape(x.shape)
    st = getattr(st, method)(*args)
    if st.shape == src.shape and st.contiguous:
        return src
    return LazyOp("VIEW", (src,), st, src.dtype, st.shape)


def reshape(x: LazyOp, shape: Sequence[int]) -> LazyOp:
    shape = tuple(int(s) for s in shape)
    return x if shape == x.shape else _view(x, "reshape", shape)


def permute(x: LazyOp, order: Sequence[int]) -> LazyOp:
    order = tuple(int(o) for o in order)
    return x if order == tuple(range(x.ndim)) else _view(x, "permute", order)


def expand(x: LazyOp, shape: Sequence[int]) -> LazyOp:
    shape = tuple(int(s) for s in shape)
    return x if shape == x.shape else _view(x, "expand", shape)


def pad(x: LazyOp, arg: Sequence[tuple[int, int]]) -> LazyOp:
    arg = tuple((int(a), int(b)) for a, b in arg)
    return x if all(p == (0, 0) for p in arg) else _view(x, "pad", arg)


def shrink(x: LazyOp, arg: Sequence[tuple[int, int]]) -> LazyOp:
    arg = tuple((int(a), int(b)) for a, b in arg)
    return x if arg == tuple((0, s) for s in x.shape) else _view(x, "shrink", arg)


def flip(x: LazyOp, axes: Sequence[int]) -> LazyOp:
    axes = tuple(int(a) for a in axes if x.shape[int(a)] > 1)
    return x if not axes else _view(x, "flip", axes)


def stride(x: LazyOp, steps: Sequence[int]) -> LazyOp:
    steps = tuple(int(s) for s in steps)
    return x if all(s == 1 for s in steps) else _view(x, "stride", steps)


def broadcast_to(x: LazyOp, shape: Sequence[int]) -> LazyOp:
    """numpy-style broadcast (leading dims added) as reshape + expand."""
    shape = tuple(int(s) for s in shape)
    x = reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
    return expand(x, shape)


def is_float(dt) -> bool:
    return dtypes.is_float(np.dtype(dt))
