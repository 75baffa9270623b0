"""A single strided, offset, masked view of a flat buffer.

Element ``(i_0, ..., i_{n-1})`` of a :class:`View` lives at buffer index
``offset + sum(i_k * strides[k])`` and is valid (readable; otherwise it reads as 0) iff
``mask[k][0] <= i_k < mask[k][1]`` for every dimension ``k`` (``mask is None``: all valid).

Canonical form (enforced by :meth:`View.create`, so equal views compare/hash equal):

* strides of size-1 dimensions are 0;
* a dimension whose mask admits exactly one index ``b`` gets stride 0 (``b * stride`` is
  folded into the offset, the address of valid elements is unchanged);
* a mask that covers the whole shape becomes ``None``;
* a mask that admits no element becomes ``((0, 0),) * ndim`` with zero strides and offset;
* a shape containing 0 has zero strides, offset 0 and no mask.

All movement methods return a new :class:`View`; only :meth:`View.reshape` can fail (it
returns ``None`` when the result is not expressible as one view).  Invalid arguments raise
``ValueError`` naming the op and the shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np

from .symbolic import Node, Const, add, mul, and_, ge, lt, to_node

__all__ = ["View", "strides_for_shape", "prod"]

Shape = tuple[int, ...]
Mask = Optional[tuple[tuple[int, int], ...]]


def prod(xs: Iterable[int]) -> int:
    out = 1
    for x in xs:
        out *= x
    return out


def strides_for_shape(shape: Sequence[int]) -> Shape:
    """Row-major (C order) strides, 0 for size-1 dimensions."""
    out, acc = [], 1
    for s in reversed(tuple(shape)):
        out.append(acc if s != 1 else 0)
        acc *= s
    return tuple(reversed(out))


def _ints(op: str, what: str, xs) -> tuple[int, ...]:
    try:
        xs = tuple(xs)
    except TypeError:
        raise ValueError(f"{op}: {what} must be a sequence of ints, got {xs!r}") from None
    if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) for x in xs):
        raise ValueError(f"{op}: {what} must contain ints, got {xs!r}")
    return tuple(int(x) for x in xs)


def _shape(op: str, shape) -> Shape:
    shape = _ints(op, "shape", shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: negative dimension in shape {shape}")
    return shape


def _pairs(op: str, arg, ndim: int, shape: Shape) -> tuple[tuple[int, int], ...]:
    try:
        arg = tuple(tuple(p) for p in arg)
    except TypeError:
        raise ValueError(f"{op}: expected one (int, int) pair per dimension of {shape}, got {arg!r}") from None
    if len(arg) != ndim or any(len(p) != 2 for p in arg):
        raise ValueError(f"{op}: expected {ndim} (int, int) pairs for shape {shape}, got {arg!r}")
    return tuple(_ints(op, "pair", p) for p in arg)  # type: ignore[misc]


def _ceildiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class View:
    shape: Shape
    strides: Shape
    offset: int
    mask: Mask
    contiguous: bool

    # ---- construction -------------------------------------------------------------------
    @staticmethod
    def create(shape: Sequence[int], strides: Optional[Sequence[int]] = None, offset: int = 0,
               mask: Optional[Sequence[tuple[int, int]]] = None) -> "View":
        """Build a view in canonical form (see the module docstring)."""
        shape = _shape("View.create", shape)
        n = len(shape)
        strides = strides_for_shape(shape) if strides is None else _ints("View.create", "strides", strides)
        if len(strides) != n:
            raise ValueError(f"View.create: {len(strides)} strides {strides} for shape {shape}")
        offset = _ints("View.create", "offset", (offset,))[0]
        if 0 in shape:
            return View(shape, (0,) * n, 0, None, True)
        strides = [st if s != 1 else 0 for s, st in zip(shape, strides)]
        if mask is not None:
            m = _pairs("View.create", mask, n, shape)
            m = tuple((max(b, 0), min(e, s)) for (b, e), s in zip(m, shape))
            if any(b >= e for b, e in m):
                return View(shape, (0,) * n, 0, ((0, 0),) * n, False)
            for k, ((b, e), s) in enumerate(zip(m, shape)):
                if e - b == 1 and strides[k] != 0:
                    offset += b * strides[k]
                    strides[k] = 0
            mask = None if all(b == 0 and e == s for (b, e), s in zip(m, shape)) else m
        strides = tuple(strides)
        contiguous = offset == 0 and mask is None and strides == strides_for_shape(shape)
        return View(shape, strides, offset, mask, contiguous)

    # ---- basic properties ---------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def fully_masked(self) -> bool:
        """True if no element is valid (everything reads as 0); False for empty shapes."""
        return self.mask is not None and any(b >= e for b, e in self.mask)

    def _mask(self) -> tuple[tuple[int, int], ...]:
        return self.mask if self.mask is not None else tuple((0, s) for s in self.shape)

    def min_max_index(self) -> Optional[tuple[int, int]]:
        """(smallest, largest) buffer index over the valid elements; None if there are none."""
        if self.size == 0 or self.fully_masked:
            return None
        lo = hi = self.offset
        for (b, e), st in zip(self._mask(), self.strides):
            x, y = b * st, (e - 1) * st
            lo += min(x, y)
            hi += max(x, y)
        return lo, hi

    # ---- movement ops -------------------------------------------------------------------
    def permute(self, order: Sequence[int]) -> "View":
        order = _ints("permute", "order", order)
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute: {order} is not a permutation of the axes of shape {self.shape}")
        return View.create(tuple(self.shape[i] for i in order), tuple(self.strides[i] for i in order),
                           self.offset, None if self.mask is None else tuple(self.mask[i] for i in order))

    def expand(self, new_shape: Sequence[int]) -> "View":
        new_shape = _shape("expand", new_shape)
        if len(new_shape) != self.ndim:
            raise ValueError(f"expand: rank mismatch, cannot expand shape {self.shape} to {new_shape}")
        for s, n in zip(self.shape, new_shape):
            if s != n and s != 1:
                raise ValueError(f"expand: can only expand size-1 dims, cannot expand shape {self.shape} to {new_shape}")
        if new_shape == self.shape:
            return self
        mask = None
        if self.mask is not None:
            mask = tuple(m if s == n else ((0, n) if m[1] > m[0] else (0, 0))
                         for m, s, n in zip(self.mask, self.shape, new_shape))
        return View.create(new_shape, self.strides, self.offset, mask)

    def pad(self, arg: Sequence[tuple[int, int]]) -> "View":
        arg = _pairs("pad", arg, self.ndim, self.shape)
        if any(b < 0 or a < 0 for b, a in arg):
            raise ValueError(f"pad: padding must be non-negative, got {arg} for shape {self.shape}")
        if all(b == 0 and a == 0 for b, a in arg):
            return self
        shape = tuple(s + b + a for s, (b, a) in zip(self.shape, arg))
        mask = tuple((mb + b, me + b) for (mb, me), (b, _) in zip(self._mask(), arg))
        offset = self.offset - sum(b * st for (b, _), st in zip(arg, self.strides))
        return View.create(shape, self.strides, offset, mask)

    def shrink(self, arg: Sequence[tuple[int, int]]) -> "View":
        arg = _pairs("shrink", arg, self.ndim, self.shape)
        if any(not 0 <= b <= e <= s for (b, e), s in zip(arg, self.shape)):
            raise ValueError(f"shrink: bounds {arg} out of range for shape {self.shape}")
        if all(b == 0 and e == s for (b, e), s in zip(arg, self.shape)):
            return self
        shape = tuple(e - b for b, e in arg)
        mask = None
        if self.mask is not None:
            mask = tuple((max(mb, b) - b, min(me, e) - b) for (mb, me), (b, e) in zip(self.mask, arg))
        offset = self.offset + sum(b * st for (b, _), st in zip(arg, self.strides))
        return View.create(shape, self.strides, offset, mask)

    def flip(self, axes: Iterable[int]) -> "View":
        axes = _ints("flip", "axes", axes)
        norm = []
        for a in axes:
            if not -self.ndim <= a < self.ndim:
                raise ValueError(f"flip: axis {a} out of range for shape {self.shape}")
            norm.append(a % self.ndim)
        if len(set(norm)) != len(norm):
            raise ValueError(f"flip: repeated axis in {axes} for shape {self.shape}")
        strides, offset, mask = list(self.strides), self.offset, list(self._mask())
        for a in norm:
            s = self.shape[a]
            offset += (s - 1) * strides[a]
            strides[a] = -strides[a]
            b, e = mask[a]
            mask[a] = (s - e, s - b)
        return View.create(self.shape, strides, offset, mask)

    def stride(self, steps: Sequence[int]) -> "View":
        """``x[::k0, ::k1, ...]`` for nonzero ints (negative: reversed, numpy semantics)."""
        steps = _ints("stride", "steps", steps)
        if len(steps) != self.ndim:
            raise ValueError(f"stride: expected {self.ndim} steps for shape {self.shape}, got {steps}")
        if any(k == 0 for k in steps):
            raise ValueError(f"stride: steps must be nonzero, got {steps} for shape {self.shape}")
        shape, strides, offset, mask = [], [], self.offset, []
        for k, s, st, (b, e) in zip(steps, self.shape, self.strides, self._mask()):
            if k < 0:
                offset += (s - 1) * st if s > 0 else 0
                st, b, e, k = -st, s - e, s - b, -k
            n = _ceildiv(s, k)
            shape.append(n)
            strides.append(st * k)
            mask.append((min(_ceildiv(b, k), n), min(_ceildiv(e, k), n)))
        return View.create(shape, strides, offset, mask)

    def reshape(self, new_shape: Sequence[int]) -> Optional["View"]:
        """Reshape in C order if expressible as one view, else None."""
        new_shape = _shape("reshape", new_shape)
        if prod(new_shape) != self.size:
            raise ValueError(f"reshape: cannot reshape shape {self.shape} ({self.size} elements) "
                             f"to {new_shape} ({prod(new_shape)} elements)")
        if new_shape == self.shape:
            return self
        if self.size == 0:
            return View.create(new_shape)
        if self.fully_masked:  # (a rank-0 view has no way to say "invalid": needs two views)
            return View.create(new_shape, mask=((0, 0),) * len(new_shape)) if new_shape else None
        if self.contiguous:
            return View.create(new_shape)
        mask = self._mask()
        old = [(s, st, m) for s, st, m in zip(self.shape, self.strides, mask) if s != 1]
        new = [(j, n) for j, n in enumerate(new_shape) if n != 1]
        new_strides = [0] * len(new_shape)
        new_mask = [(0, 1)] * len(new_shape)
        offset = self.offset
        i = j = 0
        while i < len(old):
            # minimal group: old[i0:i] and new[j0:j] with equal element counts
            i0, j0 = i, j
            po, pn = old[i][0], new[j][1]
            i, j = i + 1, j + 1
            while po != pn:
                if po < pn:
                    po *= old[i][0]
                    i += 1
                else:
                    pn *= new[j][1]
                    j += 1
            merged = _merge_group(old[i0:i])
            if merged is None:
                return None
            stride, (lo, hi), doff = merged
            offset += doff
            split = _split_group(stride, lo, hi, [n for _, n in new[j0:j]])
            if split is None:
                return None
            for (dim, _), (st, m) in zip(new[j0:j], split):
                new_strides[dim] = st
                new_mask[dim] = m
        return View.create(new_shape, new_strides, offset, new_mask)

    # ---- indexing -----------------------------------------------------------------------
    def expr_idxs(self, idxs: Sequence) -> tuple[Node, Node]:
        """(buffer index expression, validity expression) for per-dimension index expressions."""
        idxs = tuple(to_node(i) for i in idxs)
        if len(idxs) != self.ndim:
            raise ValueError(f"expr_idxs: {len(idxs)} indices for shape {self.shape}")
        index = add(self.offset, *(mul(i, st) for i, st in zip(idxs, self.strides) if st != 0))
        if self.mask is None:
            return index, Const(1)
        conds = []
        for i, (b, e), s in zip(idxs, self.mask, self.shape):
            if b > 0:
                conds.append(ge(i, b))
            if e < s or e <= b:
                conds.append(lt(i, e))
        return index, and_(*conds)


def _merge_group(dims) -> Optional[tuple[int, tuple[int, int], int]]:
    """Merge consecutive dims [(size, stride, (b, e)), ...] (outer to inner) into one flat dim.

    Returns (stride, (lo, hi) valid interval of the flat index, offset delta) or None when
    the valid set is not an interval or the address is not affine in the flat index."""
    n = len(dims)
    weights = [0] * n
    acc = 1
    for k in range(n - 1, -1, -1):
        weights[k] = acc
        acc *= dims[k][0]
    total = acc
    p = max((k for k, (s, _, (b, e)) in enumerate(dims) if (b, e) != (0, s)), default=None)
    if p is None:
        fixed, varying, lo, hi = [], list(range(n)), 0, total
    else:
        if any(e - b != 1 for _, _, (b, e) in dims[:p]):
            return None
        fixed = list(range(p))
        b_p, e_p = dims[p][2]
        varying = list(range(p + 1, n))
        if e_p - b_p == 1:
            fixed.append(p)
        else:
            varying.insert(0, p)
        lo = sum(dims[k][2][0] * weights[k] for k in range(p)) + b_p * weights[p]
        hi = lo + (e_p - b_p) * weights[p]
    for a, b in zip(varying, varying[1:]):
        if dims[a][1] != dims[b][1] * dims[b][0]:
            return None
    stride = dims[varying[-1]][1] if varying else 0
    doff = sum(dims[k][2][0] * (dims[k][1] - stride * weights[k]) for k in fixed)
    return stride, (lo, hi), doff


def _split_group(stride: int, lo: int, hi: int, sizes: list[int]):
    """Split a flat dim (stride, valid [lo, hi)) into dims of the given sizes (outer to inner).

    Returns [(stride, (b, e)), ...] or None when the interval is not a box in the new radix."""
    out = []
    total = prod(sizes)
    for k, n in enumerate(sizes):
        inner = total // n
        total = inner
        st = stride * inner
        if lo % inner == 0 and hi % inner == 0:
            out.append((st, (lo // inner, hi // inner)))
            out.extend((stride * prod(sizes[q + 1:]), (0, m)) for q, m in enumerate(sizes[k + 1:], start=k + 1))
            return out
        if lo // inner != (hi - 1) // inner:
            return None
        q = lo // inner
        out.append((st, (q, q + 1)))
        lo, hi = lo - q * inner, hi - q * inner
    return out  # pragma: no cover - the innermost dim always satisfies the first branch
