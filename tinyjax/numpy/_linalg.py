"""Products and contractions of ``tinyjax.numpy``: dot, matmul, tensordot, einsum, ...

Every product lowers to one ``lax.dot_general`` (einsum: one per pairwise
contraction); the operands are first promoted to their common dtype, which is also
the result dtype (``int8 @ int8 -> int8``, as in JAX), unless
``preferred_element_type`` names another.
"""
from __future__ import annotations

import itertools
import math
import string
from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.core import get_aval
from tinyjax.lax.elementwise import _convert_weak
from tinyjax.lax.sharding_constraint import type_sharding
from tinyjax.numpy._ufuncs import conj
from tinyjax.numpy._util import (broadcast_shapes, broadcast_to_shape, check_arraylike,
                                 promote_dtypes)

__all__ = ["dot", "vdot", "inner", "outer", "matmul", "tensordot", "einsum", "einsum_path",
           "kron", "trace",
           "cross", "vecdot", "matvec", "vecmat"]

from tinyjax.numpy._util import dtype_of as _dtype
from tinyjax.numpy._util import ndim_of as _ndim
from tinyjax.numpy._util import shape_of as _shape


def _operands(name: str, *xs: Any) -> list[Any]:
    check_arraylike(name, *xs)
    return promote_dtypes(*xs)


def _canon_axis(axis: int, ndim: int, name: str = "axis") -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} {axis} is out of bounds for array of dimension {ndim}")
    return axis % ndim if ndim else axis


def _moveaxis(x: Any, src: int, dst: int) -> Any:
    nd = _ndim(x)
    src, dst = _canon_axis(src, nd), _canon_axis(dst, nd)
    if src == dst:
        return x
    perm = [i for i in range(nd) if i != src]
    perm.insert(dst, src)
    return lax.transpose(x, tuple(perm))


def _full_like(x: Any, value: Any) -> Any:
    return lax.full_like_aval(get_aval(x), value)


def _ravel(x: Any) -> Any:
    return x if _ndim(x) == 1 else lax.reshape(x, (math.prod(_shape(x)),))


def _reduce_add(x: Any, axes: Sequence[int]) -> Any:
    """Sum over ``axes`` keeping the dtype (OR for booleans, as JAX's einsum)."""
    axes = tuple(axes)
    if not axes:
        return x
    if _dtype(x) == np.bool_:
        return lax.reduce_or(x, axes)
    return lax.reduce_sum(x, axes)


def _dot_general(a, b, dims, precision, preferred_element_type, out_sharding=None):
    # as JAX's jnp: the product's dtype is asked for explicitly (the operands' common
    # dtype), and the result is weakly typed when both operands are
    dt = _dtype(a)
    if preferred_element_type is not None or dt == np.bool_ or dt != _dtype(b):
        return lax.dot_general(a, b, dims, precision=precision,
                               preferred_element_type=preferred_element_type,
                               out_sharding=out_sharding)
    out = lax.dot_general(a, b, dims, precision=precision, preferred_element_type=dt,
                          out_sharding=out_sharding)
    if dtypes.is_weakly_typed(a) and dtypes.is_weakly_typed(b):
        out = _convert_weak(out, dt, True)
    return out


# ---------------------------------------------------------------------------
# dot, vdot, inner, outer, matmul, tensordot
# ---------------------------------------------------------------------------


def dot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None,
        out_sharding: Any = None) -> Any:
    """numpy's ``dot``: a product for scalars, a contraction of ``a``'s last axis with
    ``b``'s last (1-D ``b``) or second-to-last axis otherwise."""
    a, b = _operands("dot", a, b)
    na, nb = _ndim(a), _ndim(b)
    if na == 0 or nb == 0:
        out = lax.mul(*_broadcast_pair(a, b))
        return _convert_preferred(out, preferred_element_type)
    cb = 0 if nb == 1 else nb - 2
    if _shape(a)[-1] != _shape(b)[cb]:
        raise TypeError(f"Incompatible shapes for dot: got {_shape(a)} and {_shape(b)}.")
    return _dot_general(a, b, (((na - 1,), (cb,)), ((), ())), precision,
                        preferred_element_type, out_sharding)


def _broadcast_pair(a: Any, b: Any) -> tuple[Any, Any]:
    shape = broadcast_shapes(_shape(a), _shape(b))
    return broadcast_to_shape(a, shape), broadcast_to_shape(b, shape)


def _convert_preferred(x: Any, preferred_element_type: Any) -> Any:
    if preferred_element_type is None:
        return x
    return lax.convert_element_type(x, dtypes.canonicalize_dtype(preferred_element_type))


def vdot(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Dot product of the flattened arrays (``a`` conjugated)."""
    a, b = _operands("vdot", a, b)
    return dot(conj(_ravel(a)), _ravel(b), precision=precision,
               preferred_element_type=preferred_element_type)


def inner(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None) -> Any:
    """Contraction of the last axes of ``a`` and ``b`` (a product for scalars)."""
    a, b = _operands("inner", a, b)
    if _ndim(a) == 0 or _ndim(b) == 0:
        return _convert_preferred(lax.mul(*_broadcast_pair(a, b)), preferred_element_type)
    return tensordot(a, b, (-1, -1), precision=precision,
                     preferred_element_type=preferred_element_type)


def outer(a: Any, b: Any, out: None = None) -> Any:
    """``ravel(a)[:, None] * ravel(b)[None, :]``."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.outer is not supported.")
    a, b = _operands("outer", a, b)
    a, b = _ravel(a), _ravel(b)
    m, n = _shape(a)[0], _shape(b)[0]
    return lax.mul(lax.broadcast_in_dim(a, (m, n), (0,)), lax.broadcast_in_dim(b, (m, n), (1,)))


def matmul(a: Any, b: Any, *, precision: Any = None, preferred_element_type: Any = None,
           out_sharding: Any = None) -> Any:
    """Matrix product with numpy's rules: 1-D operands gain (and lose) an axis, the
    leading (batch) axes broadcast."""
    a, b = _operands("matmul", a, b)
    for i, x in enumerate((a, b)):
        if _ndim(x) < 1:
            raise ValueError(f"matmul input operand {i} must have ndim at least 1, "
                             f"but it has ndim {_ndim(x)}")
    sa, sb = _shape(a), _shape(b)
    a_vec, b_vec = len(sa) == 1, len(sb) == 1
    ka, kb = sa[-1], sb[0] if b_vec else sb[-2]
    if ka != kb:
        raise ValueError(f"matmul: Input operand 1 has a mismatch in its core dimension 0, "
                         f"with gufunc signature (n?,k),(k,m?)->(n?,m?) (size {kb} is "
                         f"different from {ka})")
    a_batch, b_batch = sa[:-2] if not a_vec else (), sb[:-2] if not b_vec else ()
    nbatch = max(len(a_batch), len(b_batch))
    a_off, b_off = nbatch - len(a_batch), nbatch - len(b_batch)
    # For each broadcast batch position: batched in both, or free in the one with the
    # non-1 size (a size-1 axis opposite is squeezed out rather than broadcast).
    a_squeeze, b_squeeze, batch, a_free, b_free = [], [], [], [], []
    for i in range(nbatch):
        da = a_batch[i - a_off] if i >= a_off else None
        db = b_batch[i - b_off] if i >= b_off else None
        if da is not None and db is not None and da == db:
            batch.append(i)
        elif db is None:
            a_free.append(i)
        elif da is None:
            b_free.append(i)
        elif da == 1:
            a_squeeze.append(i - a_off)
            b_free.append(i)
        elif db == 1:
            b_squeeze.append(i - b_off)
            a_free.append(i)
        else:
            raise ValueError("Incompatible shapes for matmul arguments: "
                             f"{sa} and {sb}")
    if a_squeeze:
        a = lax.reshape(a, tuple(d for j, d in enumerate(sa) if j not in a_squeeze))
    if b_squeeze:
        b = lax.reshape(b, tuple(d for j, d in enumerate(sb) if j not in b_squeeze))

    def pos(i, off, squeezed):  # position of broadcast batch axis i in the squeezed array
        j = i - off
        return j - sum(1 for s in squeezed if s < j)
    a_bdims = tuple(pos(i, a_off, a_squeeze) for i in batch)
    b_bdims = tuple(pos(i, b_off, b_squeeze) for i in batch)
    na, nb = _ndim(a), _ndim(b)
    dims = (((na - 1,), (nb - 1 if b_vec else nb - 2,)), (a_bdims, b_bdims))
    # dot_general's axis order: batch, a's free (batch axes, then rows), b's free
    labels = ([("b", i) for i in batch] + [("b", i) for i in a_free]
              + ([] if a_vec else [("m",)]) + [("b", i) for i in b_free]
              + ([] if b_vec else [("n",)]))
    want = ([("b", i) for i in range(nbatch)] + ([] if a_vec else [("m",)])
            + ([] if b_vec else [("n",)]))
    perm = tuple(labels.index(w) for w in want)
    out = _dot_general(a, b, dims, precision, preferred_element_type,
                       _before_transpose(out_sharding, perm))
    return out if perm == tuple(range(len(perm))) else lax.transpose(out, perm)


def _before_transpose(out_sharding: Any, perm: Sequence[int]) -> Any:
    """The layout a product must have for ``transpose(product, perm)`` to be laid out as
    ``out_sharding`` says (None: as the product's rule gives it)."""
    if out_sharding is None:
        return None
    s = type_sharding(out_sharding, len(perm))
    parts = [None] * len(perm)
    for i, p in enumerate(perm):
        parts[p] = s.spec[i]
    return s.update(spec=parts)


def vecdot(x1: Any, x2: Any, /, *, axis: int = -1, precision: Any = None,
           preferred_element_type: Any = None) -> Any:
    """Vector dot product (``x1`` conjugated) over ``axis``, broadcasting the rest."""
    x1, x2 = _operands("vecdot", x1, x2)
    n1, n2 = _ndim(x1), _ndim(x2)
    if _shape(x1)[_canon_axis(axis, n1)] != _shape(x2)[_canon_axis(axis, n2)]:
        raise ValueError(f"axes must match; got shapes {_shape(x1)} and {_shape(x2)} with "
                         f"axis={axis}")
    x1 = _moveaxis(conj(x1), axis, -1)
    x2 = _moveaxis(x2, axis, -1)
    x1 = lax.expand_dims(x1, (n1 - 1,))
    x2 = lax.expand_dims(x2, (n2,))
    out = matmul(x1, x2, precision=precision, preferred_element_type=preferred_element_type)
    return lax.reshape(out, _shape(out)[:-2])


def matvec(x1: Any, x2: Any, /) -> Any:
    """Matrix-vector product over the last axes, broadcasting the rest."""
    x2 = lax.expand_dims(_operands("matvec", x2)[0], (_ndim(x2),))
    out = matmul(x1, x2)
    return lax.reshape(out, _shape(out)[:-1])


def vecmat(x1: Any, x2: Any, /) -> Any:
    """Vector-matrix product over the last axes, broadcasting the rest."""
    x1 = conj(_operands("vecmat", x1)[0])
    out = matmul(lax.expand_dims(x1, (_ndim(x1) - 1,)), x2)
    return lax.reshape(out, _shape(out)[:-2] + _shape(out)[-1:])


def tensordot(a: Any, b: Any, axes: Any = 2, *, precision: Any = None,
              preferred_element_type: Any = None, out_sharding: Any = None) -> Any:
    """Contract ``a``'s and ``b``'s axes: ``axes=n`` pairs a's last n with b's first n;
    ``axes=(a_axes, b_axes)`` names the pairs."""
    a, b = _operands("tensordot", a, b)
    na, nb = _ndim(a), _ndim(b)
    if type(axes) is int or isinstance(axes, (np.integer,)):
        axes = int(axes)
        if axes < 0 or axes > min(na, nb):
            raise TypeError(f"Number of tensordot axes (axes={axes}) exceeds input ranks "
                            f"({na} and {nb})")
        ca, cb = tuple(range(na - axes, na)), tuple(range(axes))
    elif isinstance(axes, (list, tuple)) and len(axes) == 2:
        ax_a, ax_b = axes
        if isinstance(ax_a, (int, np.integer)) and isinstance(ax_b, (int, np.integer)):
            ax_a, ax_b = [ax_a], [ax_b]
        elif isinstance(ax_a, (int, np.integer)) or isinstance(ax_b, (int, np.integer)):
            raise TypeError("tensordot requires both axes lists to be either ints, tuples or "
                            f"lists, got {ax_a} and {ax_b}")
        ax_a, ax_b = list(ax_a), list(ax_b)
        if len(ax_a) != len(ax_b):
            raise TypeError("tensordot requires axes lists to have equal length, got "
                            f"{ax_a} and {ax_b}.")
        ca = tuple(_canon_axis(x, na) for x in ax_a)
        cb = tuple(_canon_axis(x, nb) for x in ax_b)
    else:
        raise TypeError("tensordot axes argument must be an int, a pair of ints, or a pair "
                        f"of lists/tuples of ints; got {axes}")
    for i, j in zip(ca, cb):
        if _shape(a)[i] != _shape(b)[j]:
            raise TypeError(f"tensordot requires contracted dimensions to have the same "
                            f"size, got shapes {_shape(a)} and {_shape(b)} with axes "
                            f"{ca} and {cb}")
    return _dot_general(a, b, ((ca, cb), ((), ())), precision, preferred_element_type,
                        out_sharding)


def kron(a: Any, b: Any) -> Any:
    """Kronecker product: block ``(i, j, ...)`` is ``a[i, j, ...] * b``."""
    a, b = _operands("kron", a, b)
    nd = max(_ndim(a), _ndim(b))
    sa = (1,) * (nd - _ndim(a)) + _shape(a)
    sb = (1,) * (nd - _ndim(b)) + _shape(b)
    full = tuple(d for pair in zip(sa, sb) for d in pair)
    a = lax.broadcast_in_dim(lax.reshape(a, sa), full, tuple(range(0, 2 * nd, 2)))
    b = lax.broadcast_in_dim(lax.reshape(b, sb), full, tuple(range(1, 2 * nd, 2)))
    return lax.reshape(lax.mul(a, b), tuple(x * y for x, y in zip(sa, sb)))


def _sum_dtype(dt: np.dtype) -> np.dtype:
    """jnp.sum's default result dtype: small ints and bools widen to the default int."""
    if dt == np.bool_ or (dtypes.is_signed(dt) and dt.itemsize < dtypes.default_int_dtype()
                          .itemsize):
        return dtypes.default_int_dtype()
    if dtypes.is_unsigned(dt) and dt.itemsize < dtypes.default_uint_dtype().itemsize:
        return dtypes.default_uint_dtype()
    return dt


def trace(a: Any, offset: int = 0, axis1: int = 0, axis2: int = 1, dtype: Any = None,
          out: None = None) -> Any:
    """Sum along a diagonal of ``a`` (axes ``axis1``, ``axis2``, shifted by ``offset``)."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.trace is not supported.")
    (a,) = _operands("trace", a)
    nd = _ndim(a)
    if nd < 2:
        raise ValueError("diag requires an array of at least two dimensions")
    ax1, ax2 = _canon_axis(axis1, nd, "axis1"), _canon_axis(axis2, nd, "axis2")
    if ax1 == ax2:
        raise ValueError("axis1 and axis2 must not be equal")
    rest = [i for i in range(nd) if i not in (ax1, ax2)]
    a = lax.transpose(a, tuple(rest) + (ax1, ax2))
    shape = _shape(a)
    rows = lax.broadcasted_iota(np.int32, shape, nd - 2)
    cols = lax.broadcasted_iota(np.int32, shape, nd - 1)
    on_diag = lax.eq(lax.add(rows, _full_like(rows, int(offset))), cols)
    out_dt = dtypes.canonicalize_dtype(dtype) if dtype is not None else _sum_dtype(_dtype(a))
    a = lax.convert_element_type(a, out_dt)
    a = lax.select(on_diag, a, _full_like(a, 0))
    return _reduce_add(a, (nd - 2, nd - 1))


def cross(a: Any, b: Any, axisa: int = -1, axisb: int = -1, axisc: int = -1,
          axis: int | None = None) -> Any:
    """Cross product of 2- or 3-vectors along ``axisa``/``axisb`` (``axis`` sets all)."""
    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = _operands("cross", a, b)
    a, b = _moveaxis(a, axisa, -1), _moveaxis(b, axisb, -1)
    na, nb = _shape(a)[-1], _shape(b)[-1]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError("Dimension must be either 2 or 3 for cross product")
    if na == 2 and nb == 2:
        a0, a1 = _components(a, 2)
        b0, b1 = _components(b, 2)
        shape = broadcast_shapes(_shape(a0), _shape(b0))
        a0, a1, b0, b1 = (broadcast_to_shape(x, shape) for x in (a0, a1, b0, b1))
        return lax.sub(lax.mul(a0, b1), lax.mul(a1, b0))
    a0, a1, a2 = _components(a, 3)
    b0, b1, b2 = _components(b, 3)
    shape = broadcast_shapes(_shape(a0), _shape(b0))
    a0, a1, a2, b0, b1, b2 = (broadcast_to_shape(x, shape) for x in (a0, a1, a2, b0, b1, b2))
    c = [lax.sub(lax.mul(a1, b2), lax.mul(a2, b1)),
         lax.sub(lax.mul(a2, b0), lax.mul(a0, b2)),
         lax.sub(lax.mul(a0, b1), lax.mul(a1, b0))]
    c = lax.concatenate([lax.expand_dims(x, (len(shape),)) for x in c], len(shape))
    return _moveaxis(c, -1, axisc)


def _components(x: Any, n: int) -> list[Any]:
    """The ``n`` components along the last axis (a zero third one for 2-vectors)."""
    nd = _ndim(x)
    parts = [lax.index_in_dim(x, i, nd - 1, keepdims=False) for i in range(_shape(x)[-1])]
    while len(parts) < n:
        parts.append(_full_like(parts[0], 0))
    return parts


# ---------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------


def _parse_interleaved(args: Sequence[Any]) -> tuple[str, list[Any]]:
    """``einsum(a, [0, 1], b, [1, 2], [0, 2])`` → ``("ab,bc->ac", [a, b])``."""
    args = list(args)
    out_sub = args.pop() if len(args) % 2 else None
    operands, subs = args[0::2], args[1::2]

    def letters(sub):
        return "".join("..." if s is Ellipsis else string.ascii_letters[int(s)] for s in sub)
    spec = ",".join(letters(s) for s in subs)
    if out_sub is not None:
        spec += "->" + letters(out_sub)
    return spec, operands


def _parse_subscripts(spec: str, shapes: Sequence[tuple[int, ...]]
                      ) -> tuple[list[str], str]:
    """Input and output labels with the ellipses replaced by fresh labels."""
    spec = spec.replace(" ", "")
    if "->" in spec:
        ins, out = spec.split("->")
        explicit = True
    else:
        ins, out, explicit = spec, "", False
    in_subs = ins.split(",")
    if len(in_subs) != len(shapes):
        raise ValueError(f"einstein sum subscripts string contains {len(in_subs)} operands "
                         f"but {len(shapes)} operands were given")
    used = set(spec) - set(".,->")
    for c in used:
        if c not in string.ascii_letters:
            raise ValueError(f"invalid subscript '{c}' in einstein sum subscripts string, "
                             "subscripts must be letters")
    fresh = [c for c in string.ascii_letters if c not in used]
    ell_nd = 0
    expanded = []
    for sub, shape in zip(in_subs, shapes):
        if "..." in sub:
            pre, post = sub.split("...")
            if "." in pre or "." in post:
                raise ValueError("einstein sum subscript string contains a '.' that is not "
                                 "part of an ellipsis ('...')")
            n = len(shape) - len(pre) - len(post)
            if n < 0:
                raise ValueError(f"einstein sum subscripts string {sub!r} has too many "
                                 f"subscripts for operand of shape {shape}")
            ell_nd = max(ell_nd, n)
            sub = pre + "\0" * n + post
        elif "." in sub:
            raise ValueError("einstein sum subscript string contains a '.' that is not part "
                             "of an ellipsis ('...')")
        if len(sub) != len(shape):
            raise ValueError(f"einstein sum subscripts string {sub!r} has {len(sub)} "
                             f"subscripts but operand has {len(shape)} dimensions "
                             f"(shape {shape})")
        expanded.append(sub)
    # ellipsis axes are right-aligned over ell_nd fresh labels
    ell = fresh[:ell_nd]
    in_labels = []
    for sub in expanded:
        n = sub.count("\0")
        in_labels.append(sub.replace("\0" * n, "".join(ell[ell_nd - n:])) if n else sub)
    if explicit:
        if out.count("...") > 1 or ("." in out.replace("...", "")):
            raise ValueError("einstein sum subscript string contains a '.' that is not part "
                             "of an ellipsis ('...')")
        out_labels = out.replace("...", "".join(ell))
        for c in out_labels:
            if out_labels.count(c) > 1:
                raise ValueError(f"einstein sum subscripts string includes output subscript "
                                 f"'{c}' multiple times")
            if not any(c in s for s in in_labels):
                raise ValueError(f"einstein sum subscripts string included output subscript "
                                 f"'{c}' which never appeared in an input")
    else:
        counts = {}
        for s in in_labels:
            for c in s:
                if c not in ell:
                    counts[c] = counts.get(c, 0) + 1
        out_labels = "".join(ell) + "".join(sorted(c for c, k in counts.items() if k == 1))
    return in_labels, out_labels


def einsum(subscripts: Any, /, *operands: Any, out: None = None, optimize: Any = "auto",
           precision: Any = None, preferred_element_type: Any = None,
           _dot_general: Any = None, out_sharding: Any = None) -> Any:
    """Einstein summation.  Each pairwise contraction lowers to one ``lax.dot_general``;
    ``optimize`` picks the pair order: False (left to right), True/'greedy'/'auto'
    (cheapest result first), 'optimal' (exhaustive search over orders, few operands)."""
    if out is not None:
        raise NotImplementedError("The 'out' argument to jnp.einsum is not supported.")
    terms, out_labels, sizes = _einsum_terms("einsum", subscripts, operands)
    path = _contraction_path([lab for _, lab in terms], out_labels, sizes, optimize)
    layout = None if out_sharding is None else type_sharding(out_sharding, len(out_labels))
    for n, (i, j) in enumerate(path):
        (x, lx), (y, ly) = terms[i], terms[j]
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        keep = set(out_labels).union(*[set(lab) for _, lab in rest])
        last = layout if n == len(path) - 1 else None  # the result's layout, by label
        terms = rest + [_contract_pair(x, lx, y, ly, keep, precision, preferred_element_type,
                                       last, out_labels)]
    (x, labels), = terms
    if layout is not None and not path:
        x = lax.with_sharding_constraint(x, layout)
    x, labels = _sum_out(x, labels, set(out_labels))
    perm = tuple(labels.index(c) for c in out_labels)
    if perm != tuple(range(len(perm))):
        x = lax.transpose(x, perm)
    if len(path) == 0:
        x = _convert_preferred(x, preferred_element_type)
    return x


def _einsum_terms(name: str, subscripts: Any, operands: tuple
                  ) -> tuple[list[tuple[Any, str]], str, dict[str, int]]:
    """The operands of an einsum with their labels (diagonals taken), the output
    labels, and the size of every label."""
    if not isinstance(subscripts, str):
        subscripts, operands = _parse_interleaved((subscripts,) + operands)
    if not operands:
        raise ValueError("No input operands")
    ops = _operands(name, *operands)
    in_labels, out_labels = _parse_subscripts(subscripts, [_shape(x) for x in ops])
    sizes: dict[str, int] = {}
    for k, (labels, x) in enumerate(zip(in_labels, ops)):
        for c, d in zip(labels, _shape(x)):
            if d != 1 and sizes.get(c, 1) not in (1, d):
                raise ValueError(f"Size of label '{c}' for operand {k} ({d}) does not match "
                                 f"previous terms ({sizes[c]}).")
            if d != 1 or c not in sizes:
                sizes[c] = d
    terms = [_prepare(x, labels, sizes) for x, labels in zip(ops, in_labels)]
    return terms, out_labels, sizes


def einsum_path(subscripts: Any, /, *operands: Any, optimize: Any = "auto"
                ) -> tuple[list[tuple[int, ...]], str]:
    """The order in which :func:`einsum` contracts the operands: a list of position
    pairs (in the shrinking list of terms, each result appended last) and a summary."""
    terms, out_labels, sizes = _einsum_terms("einsum_path", subscripts, operands)
    labels = [lab for _, lab in terms]
    path = _contraction_path(labels, out_labels, sizes, optimize)
    lines = [f"  Complete contraction:  {','.join(labels)}->{out_labels}"]
    for i, j in path:
        rest = [t for k, t in enumerate(labels) if k not in (i, j)]
        merged = _merged(labels[i], labels[j], rest, out_labels)
        lines.append(f"  {labels[i]},{labels[j]}->{merged}")
        labels = rest + [merged]
    return [tuple(p) for p in path], "\n".join(lines)


def _sum_out(x: Any, labels: str, keep: set[str]) -> tuple[Any, str]:
    axes = [i for i, c in enumerate(labels) if c not in keep]
    return _reduce_add(x, axes), "".join(c for c in labels if c in keep)


def _prepare(x: Any, labels: str, sizes: dict[str, int]) -> tuple[Any, str]:
    """Drop broadcast size-1 axes and take the diagonal of repeated labels."""
    shape = _shape(x)
    drop = [i for i, c in enumerate(labels) if shape[i] == 1 and sizes[c] != 1]
    if drop:
        x = lax.reshape(x, tuple(d for i, d in enumerate(shape) if i not in drop))
        labels = "".join(c for i, c in enumerate(labels) if i not in drop)
    while True:
        rep = next((c for c in labels if labels.count(c) > 1), None)
        if rep is None:
            return x, labels
        i = labels.index(rep)
        j = labels.index(rep, i + 1)
        shape = _shape(x)
        mask = lax.eq(lax.broadcasted_iota(np.int32, shape, i),
                      lax.broadcasted_iota(np.int32, shape, j))
        x = _reduce_add(lax.select(mask, x, _full_like(x, 0)), (j,))
        labels = labels[:j] + labels[j + 1:]


def _contract_pair(x, lx, y, ly, keep, precision, preferred_element_type, layout=None,
                   layout_labels=""):
    """One pairwise contraction; ``layout`` (over ``layout_labels``): the layout its result
    is to have, per label."""
    # labels in one operand only and needed nowhere else are summed first
    x, lx = _sum_out(x, lx, keep | set(ly))
    y, ly = _sum_out(y, ly, keep | set(lx))
    batch = [c for c in lx if c in ly and c in keep]
    contract = [c for c in lx if c in ly and c not in keep]
    dims = ((tuple(lx.index(c) for c in contract), tuple(ly.index(c) for c in contract)),
            (tuple(lx.index(c) for c in batch), tuple(ly.index(c) for c in batch)))
    labels = ("".join(batch) + "".join(c for c in lx if c not in ly)
              + "".join(c for c in ly if c not in lx))
    if layout is not None:
        entry = dict(zip(layout_labels, layout.spec))
        layout = layout.update(spec=[entry.get(c) for c in labels])
    out = lax.dot_general(x, y, dims, precision=precision,
                          preferred_element_type=preferred_element_type, out_sharding=layout)
    return out, labels


def _pair_cost(la: str, lb: str, keep: set[str], sizes: dict[str, int]) -> tuple[int, int]:
    """(flops, size of the result) of contracting terms with labels ``la`` and ``lb``."""
    union = set(la) | set(lb)
    result = [c for c in union if c in keep]
    return (math.prod(sizes[c] for c in union), math.prod(sizes[c] for c in result))


def _contraction_path(labels: list[str], out: str, sizes: dict[str, int],
                      optimize: Any) -> list[tuple[int, int]]:
    """Pairs of positions in the shrinking list of terms (the result goes last)."""
    if optimize in (None,):
        optimize = False
    if isinstance(optimize, (list, tuple)) and optimize and optimize[0] == "einsum_path":
        optimize = "greedy"
    if optimize not in (False, True, "auto", "greedy", "optimal", "dp", "eager"):
        raise ValueError(f"einsum: optimize={optimize!r} is not one of False, True, "
                         "'auto', 'greedy', 'optimal'.")
    terms = list(labels)
    if optimize is False:
        path = []
        while len(terms) > 1:
            path.append((0, 1))
            terms = terms[2:] + [_merged(terms[0], terms[1], terms[2:], out)]
        return path
    if optimize in ("optimal", "dp") and len(terms) <= 6:
        return _optimal_path(terms, out, sizes)[1]
    path = []
    while len(terms) > 1:
        best = None
        for i, j in itertools.combinations(range(len(terms)), 2):
            rest = [t for k, t in enumerate(terms) if k not in (i, j)]
            keep = set(out).union(*map(set, rest))
            flops, size = _pair_cost(terms[i], terms[j], keep, sizes)
            # greedy: the smallest result relative to its inputs, then the fewest flops;
            # pairs that share no label (outer products) last
            shares = bool(set(terms[i]) & set(terms[j]))
            removed = size - math.prod(sizes[c] for c in terms[i]) - \
                math.prod(sizes[c] for c in terms[j])
            key = (not shares, removed, flops)
            if best is None or key < best[0]:
                best = (key, (i, j))
        i, j = best[1]
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        terms = rest + [_merged(terms[i], terms[j], rest, out)]
        path.append((i, j))
    return path


def _merged(la: str, lb: str, rest: Sequence[str], out: str) -> str:
    keep = set(out).union(*map(set, rest))
    return "".join(sorted((set(la) | set(lb)) & keep))


def _optimal_path(terms: list[str], out: str, sizes: dict[str, int]
                  ) -> tuple[int, list[tuple[int, int]]]:
    """The pairwise order of least total flops (exhaustive; few terms only)."""
    if len(terms) == 1:
        return 0, []
    best: tuple[int, list] | None = None
    for i, j in itertools.combinations(range(len(terms)), 2):
        rest = [t for k, t in enumerate(terms) if k not in (i, j)]
        keep = set(out).union(*map(set, rest))
        flops, _ = _pair_cost(terms[i], terms[j], keep, sizes)
        sub_cost, sub_path = _optimal_path(rest + [_merged(terms[i], terms[j], rest, out)],
                                           out, sizes)
        if best is None or flops + sub_cost < best[0]:
            best = (flops + sub_cost, [(i, j)] + sub_path)
    return best
