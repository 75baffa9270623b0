"""What every linear-algebra primitive shares: the primitive builder (JAX's rank and
dtype checks, batching over leading dimensions, the eager implementation mapped over
the batch) and the matrix helpers the derivative rules are written with.

A linear-algebra primitive works on the trailing ``rank`` dimensions of each operand
(a matrix: 2, a vector: 1) and maps over the leading ones, which every operand must
have alike.  So vmap only moves the batch axes to the front.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax.dot import Precision, dot_general
from tinyjax.lax.reductions import reduce_sum
from tinyjax.lax.shape import broadcast_in_dim, broadcasted_iota, full, transpose
from tinyjax.lax.slicing import slice as lax_slice
from tinyjax.interpreters import batching

__all__ = ["linalg_primitive", "check_square", "check_real", "check_same_dtypes",
           "LAPACK_DTYPES", "T", "H", "matmul", "tril", "triu", "eye", "diagonal",
           "diag_matrix", "symmetrize", "batch_dims", "map_matrices", "nan_like"]

# The element types LAPACK (and cuSOLVER) work in: jnp.linalg promotes others to these.
LAPACK_DTYPES = tuple(np.dtype(d) for d in (np.float32, np.float64, np.complex64,
                                            np.complex128))


def _check_dtype(name: str, i: int, aval: ShapedArray) -> None:
    if aval.dtype not in LAPACK_DTYPES:
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} (input {i}). "
                        "Accepted dtypes are float32, float64, complex64, complex128.")


def check_real(name: str, i: int, aval: ShapedArray) -> None:
    """``accepts`` for the primitives JAX defines on real floating types only."""
    if aval.dtype not in LAPACK_DTYPES[:2]:
        raise TypeError(f"{name} does not accept dtype {aval.dtype.name} (input {i}). "
                        "Accepted dtypes are float32, float64.")


def check_same_dtypes(name: str, *dts: Any) -> np.dtype:
    """JAX's rule for primitives whose operands share one dtype; returns it."""
    if any(d != dts[0] for d in dts):
        raise TypeError(f"lax.{name} requires arguments to have the same dtypes, got "
                        f"{', '.join(np.dtype(d).name for d in dts)}.")
    return dts[0]


def _check_ranks(name: str, ranks: Sequence[int], avals: Sequence[ShapedArray]) -> tuple:
    """JAX's rank checks; returns the batch dimensions the operands share."""
    batches = []
    for i, (rank, aval) in enumerate(zip(ranks, avals)):
        if aval.ndim < rank:
            raise TypeError(f"Input {i} to {name} must have rank at least {rank}, but got "
                            f"shape={aval.shape}")
        batches.append(aval.shape[:aval.ndim - rank])
    if any(len(b) != len(batches[0]) for b in batches):
        raise TypeError(f"All inputs to {name} must have the same number of batch "
                        f"dimensions, but got {[len(b) for b in batches]} batch dimensions "
                        "for the inputs.")
    if any(b != batches[0] for b in batches):
        raise TypeError(f"All inputs to {name} must have the same batch dimensions, but got "
                        f"{batches}.")
    return batches[0]


def check_square(name: str, shape: Sequence[int]) -> None:
    if len(shape) < 2:
        raise TypeError(f"Input 0 to {name} must have rank at least 2, but got "
                        f"shape={tuple(shape)}")
    if shape[-1] != shape[-2]:
        raise ValueError(f"The input to {name} must be a square matrix. Got shape "
                         f"{tuple(shape)}.")


def linalg_primitive(name: str, ranks: Sequence[int], shape_rule: Callable,
                     dtype_rule: Callable, impl: Callable | None,
                     multiple_results: bool = False,
                     accepts: Callable[[int, ShapedArray], None] | None = None) -> Primitive:
    """A primitive over the trailing ``ranks`` dimensions of its operands.

    ``shape_rule(*core_shapes, **params)`` and ``dtype_rule(*dtypes, **params)`` give the
    result's core shape(s) and dtype(s); the batch dimensions are prepended.
    ``impl(*matrices, **params)`` computes one batch element on numpy arrays (LAPACK
    through SciPy), returning one array or a tuple; the builder maps it over the batch.
    ``impl=None`` leaves the implementation to a composite definition
    (:func:`~tinyjax.lax.composite.define_composite`).
    ``accepts(i, aval)`` checks operand ``i`` (default: a LAPACK float or complex type).
    """
    prim = Primitive(name, multiple_results)
    check = accepts or (lambda i, aval: _check_dtype(name, i, aval))

    def abstract_eval(*avals, **params):
        batch = _check_ranks(name, ranks, avals)
        for i, aval in enumerate(avals):
            check(i, aval)
        cores = [a.shape[a.ndim - r:] for a, r in zip(avals, ranks)]
        shapes = shape_rule(*cores, **params)
        dts = dtype_rule(*[a.dtype for a in avals], **params)
        if not multiple_results:
            return ShapedArray(batch + tuple(shapes), dts)
        return [ShapedArray(batch + tuple(s), d) for s, d in zip(shapes, dts)]

    def eager(*args, **params):
        out = abstract_eval(*[ShapedArray(a.shape, a.dtype) for a in args], **params)
        outs = map_matrices(impl, args, ranks, out if multiple_results else [out], params)
        return outs if multiple_results else outs[0]

    if impl is not None:
        prim.def_impl(eager)
    prim.def_abstract_eval(abstract_eval)

    def batch(vals, dims, **params):
        size = batching.batch_size(vals, dims)
        vals = [batching.moveaxis(v, d, 0, size) for v, d in zip(vals, dims)]
        out = prim.bind(*vals, **params)
        return out, [0] * len(out) if multiple_results else 0
    batching.primitive_batchers[prim] = batch
    return prim


def map_matrices(fn: Callable, args: Sequence[np.ndarray], ranks: Sequence[int],
                 out_avals: Sequence[ShapedArray], params: dict) -> list[np.ndarray]:
    """``fn`` applied to each batch element of ``args`` (their trailing ``ranks``
    dimensions), the results stacked into arrays of ``out_avals``."""
    batch = args[0].shape[:args[0].ndim - ranks[0]]
    count = int(np.prod(batch, dtype=np.int64))
    flat = [np.ascontiguousarray(a).reshape((count,) + a.shape[a.ndim - r:])
            for a, r in zip(args, ranks)]
    outs = [np.empty(a.shape, a.dtype) for a in out_avals]
    views = [o.reshape((count,) + o.shape[len(batch):]) for o in outs]
    for i in range(count):
        res = fn(*[f[i] for f in flat], **params)
        for view, r in zip(views, res if isinstance(res, tuple) else (res,)):
            view[i] = r
    return outs


def nan_like(shape: Sequence[int], dtype: Any) -> np.ndarray:
    """An array of NaNs (NaN + NaN i for complex): JAX's result where LAPACK fails."""
    dt = np.dtype(dtype)
    value = complex(np.nan, np.nan) if dtypes.is_complex(dt) else np.nan
    return np.full(shape, value, dt)


def batch_dims(x: Any, rank: int = 2) -> tuple[int, ...]:
    shape = get_aval(x).shape
    return shape[:len(shape) - rank]


# ---------------------------------------------------------------------------
# matrix helpers (lax-level, so the rules are differentiable and batchable)
# ---------------------------------------------------------------------------


def T(x: Any) -> Any:
    """Swap the last two axes."""
    n = get_aval(x).ndim
    return transpose(x, tuple(range(n - 2)) + (n - 1, n - 2))


def H(x: Any) -> Any:
    """The conjugate transpose (the transpose for real ``x``)."""
    t = T(x)
    return ew.conj(t) if dtypes.is_complex(get_aval(x).dtype) else t


def matmul(a: Any, b: Any) -> Any:
    """The product over the last two axes, mapped over the leading (equal) ones, at the
    highest precision (as JAX's rules ask)."""
    n = get_aval(a).ndim
    batch = tuple(range(n - 2))
    return dot_general(a, b, (((n - 1,), (n - 2,)), (batch, batch)),
                       precision=Precision.HIGHEST)


def _band_mask(shape: Sequence[int], k: int, lower: bool) -> Any:
    rows = broadcasted_iota(np.int32, shape[-2:], 0)
    cols = broadcasted_iota(np.int32, shape[-2:], 1)
    keep = ew.ge(ew.add(rows, np.int32(k)), cols) if lower else \
        ew.le(ew.add(rows, np.int32(k)), cols)
    return broadcast_in_dim(keep, tuple(shape), (len(shape) - 2, len(shape) - 1))


def tril(x: Any, k: int = 0) -> Any:
    """``x`` with the elements above the ``k``-th diagonal zeroed."""
    aval = get_aval(x)
    return ew.select(_band_mask(aval.shape, k, True), x, full(aval.shape, 0, aval.dtype))


def triu(x: Any, k: int = 0) -> Any:
    """``x`` with the elements below the ``k``-th diagonal zeroed."""
    aval = get_aval(x)
    return ew.select(_band_mask(aval.shape, k, False), x, full(aval.shape, 0, aval.dtype))


def _diagonal_mask(shape: Sequence[int]) -> Any:
    n = shape[-1]
    on = ew.eq(broadcasted_iota(np.int32, (n, n), 0), broadcasted_iota(np.int32, (n, n), 1))
    return broadcast_in_dim(on, tuple(shape), (len(shape) - 2, len(shape) - 1))


def eye(n: int, dtype: Any, shape: Sequence[int] | None = None) -> Any:
    """The identity of size ``n`` (broadcast to ``shape`` if given)."""
    return ew.convert_element_type(_diagonal_mask((n, n) if shape is None else shape), dtype)


def diagonal(x: Any) -> Any:
    """The main diagonal of the last two axes (as a last axis of length min(m, n))."""
    aval = get_aval(x)
    k = min(aval.shape[-2:])
    sq = lax_slice(x, (0,) * aval.ndim, aval.shape[:-2] + (k, k))
    shape = aval.shape[:-2] + (k, k)
    picked = ew.select(_diagonal_mask(shape), sq, full(shape, 0, aval.dtype))
    return reduce_sum(picked, (aval.ndim - 1,))


def diag_matrix(d: Any) -> Any:
    """The (batched) diagonal matrix with ``d`` on its diagonal."""
    aval = get_aval(d)
    shape = aval.shape + (aval.shape[-1],)
    spread = broadcast_in_dim(d, shape, tuple(range(aval.ndim - 1)) + (aval.ndim,))
    return ew.select(_diagonal_mask(shape), spread, full(shape, 0, aval.dtype))


def symmetrize(x: Any) -> Any:
    """``(x + x^H) / 2``."""
    return ew.div(ew.add(x, H(x)), full((), 2, get_aval(x).dtype))
