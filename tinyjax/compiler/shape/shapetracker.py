"""ShapeTracker: a stack of views describing how a logical array maps onto a flat buffer.

``views[0]`` indexes the real buffer.  Every later view indexes the *contiguous* (row-major)
layout of the previous view's shape: the buffer index it computes is unravelled into indices
of ``views[i-1].shape`` and fed to that view; validities are and-ed.  ``views[-1].shape`` is
the logical shape.  Movement ops edit ``views[-1]``; only a reshape that cannot be expressed
on ``views[-1]`` pushes a fresh contiguous view.  Whenever a tracker has several views, every
op ends with :meth:`simplify`, which merges adjacent views wherever one view suffices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

from .symbolic import (Const, Node, Var, and_, as_affine, as_bounds, floordiv, linear_terms, mod,
                       to_node)
from .view import View, prod

__all__ = ["ShapeTracker", "loop_vars", "unravel", "merge_views"]


def loop_vars(shape: Sequence[int], prefix: str = "idx") -> list[Var]:
    """The kernel loop variables ``idx0..idx{n-1}`` with ranges ``[0, shape[i]-1]``."""
    return [Var(f"{prefix}{i}", 0, max(s - 1, 0)) for i, s in enumerate(shape)]


def unravel(idx, shape: Sequence[int]) -> list[Node]:
    """Row-major indices into ``shape`` of the flat index ``idx`` (no modulo on the outermost
    non-trivial dim: callers guarantee ``0 <= idx < prod(shape)`` wherever it matters)."""
    idx = to_node(idx)
    out: list[Node] = []
    acc = 1
    outer = next((k for k, s in enumerate(shape) if s != 1), None)
    for k in range(len(shape) - 1, -1, -1):
        s = shape[k]
        if s == 1:
            out.append(Const(0))
            continue
        e = floordiv(idx, acc)
        out.append(e if k == outer else mod(e, s))
        acc *= s
    return out[::-1]


def merge_views(inner: View, outer: View) -> Optional[View]:
    """One view equivalent to ``outer`` applied on top of the contiguous layout of ``inner``'s
    shape (over the valid elements), or None if there is none.

    Works symbolically: index ``outer`` with variables restricted to its mask box, push the
    index through ``inner`` and check that the address is affine and the validity a box."""
    if outer.size == 0 or outer.fully_masked:
        return outer
    if inner.fully_masked:  # a rank-0 view cannot be fully masked on its own
        return View.create(outer.shape, mask=((0, 0),) * outer.ndim) if outer.ndim else None
    if inner.contiguous:
        return outer
    if outer.contiguous and outer.size == inner.size:
        r = inner.reshape(outer.shape)
        if r is not None:
            return r
    box = outer._mask()
    vs = [Var(f"m{k}", b, e - 1) for k, (b, e) in enumerate(box)]
    idx, _ = outer.expr_idxs(vs)  # the validity of outer is exactly the box
    addr, valid = inner.expr_idxs(unravel(idx, inner.shape))
    if isinstance(valid, Const) and valid.value == 0:
        return View.create(outer.shape, mask=((0, 0),) * outer.ndim) if outer.ndim else None
    aff = as_affine(addr)
    bounds = as_bounds(valid)
    if aff is None or bounds is None:
        return None
    coeffs, offset = aff
    mask = []
    for v, (b, e) in zip(vs, box):
        lo, hi = bounds.get(v, (None, None))
        mask.append((b if lo is None else max(b, lo), e if hi is None else min(e, hi)))
    return View.create(outer.shape, [coeffs.get(v, 0) for v in vs], offset, mask)


@dataclass(frozen=True)
class ShapeTracker:
    views: tuple[View, ...]

    def __post_init__(self):
        views = tuple(self.views)
        if not views or not all(isinstance(v, View) for v in views):
            raise ValueError(f"ShapeTracker: need a non-empty tuple of Views, got {self.views!r}")
        object.__setattr__(self, "views", views)

    @staticmethod
    def from_shape(shape: Sequence[int]) -> "ShapeTracker":
        return ShapeTracker((View.create(shape),))

    # ---- properties ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return prod(self.shape)

    @property
    def contiguous(self) -> bool:
        """One view, row-major strides, offset 0, no mask: element i is ``buf[i]``."""
        return len(self.views) == 1 and self.views[0].contiguous

    @property
    def size_of_buffer(self) -> int:
        """Elements the backing buffer needs: 1 + the largest index read by ``views[0]`` over
        its valid elements (exact for a single view, an upper bound otherwise; 0 when nothing
        is read)."""
        mm = self.views[0].min_max_index()
        if mm is None or self.size == 0:
            return 0
        return mm[1] + 1

    # ---- movement ops -------------------------------------------------------------------
    def _with_last(self, v: View) -> "ShapeTracker":
        out = ShapeTracker(self.views[:-1] + (v,))
        return out.simplify() if len(out.views) > 1 else out

    def reshape(self, new_shape: Sequence[int]) -> "ShapeTracker":
        v = self.views[-1].reshape(new_shape)
        if v is not None:
            return self._with_last(v)
        return ShapeTracker(self.views + (View.create(new_shape),)).simplify()

    def permute(self, order: Sequence[int]) -> "ShapeTracker":
        return self._with_last(self.views[-1].permute(order))

    def expand(self, new_shape: Sequence[int]) -> "ShapeTracker":
        return self._with_last(self.views[-1].expand(new_shape))

    def pad(self, arg: Sequence[tuple[int, int]]) -> "ShapeTracker":
        return self._with_last(self.views[-1].pad(arg))

    def shrink(self, arg: Sequence[tuple[int, int]]) -> "ShapeTracker":
        return self._with_last(self.views[-1].shrink(arg))

    def flip(self, axes: Iterable[int]) -> "ShapeTracker":
        return self._with_last(self.views[-1].flip(axes))

    def stride(self, steps: Sequence[int]) -> "ShapeTracker":
        return self._with_last(self.views[-1].stride(steps))

    def simplify(self) -> "ShapeTracker":
        """Merge adjacent views wherever the pair is expressible as one view."""
        views = list(self.views)
        changed = True
        while changed and len(views) > 1:
            changed = False
            for i in range(len(views) - 1, 0, -1):
                m = merge_views(views[i - 1], views[i])
                if m is not None:
                    views[i - 1:i + 1] = [m]
                    changed = True
                    break
        return self if len(views) == len(self.views) else ShapeTracker(tuple(views))

    # ---- indexing -----------------------------------------------------------------------
    def expr_idxs(self, idxs: Optional[Sequence] = None) -> tuple[Node, Node]:
        """(buffer index, validity) for per-dimension indices; default: :func:`loop_vars`."""
        if idxs is None:
            idxs = loop_vars(self.shape)
        idxs = [to_node(i) for i in idxs]
        if len(idxs) != self.ndim:
            raise ValueError(f"expr_idxs: {len(idxs)} indices for shape {self.shape}")
        if self.size == 0:
            return Const(0), Const(0)
        idx, valid = self.views[-1].expr_idxs(idxs)
        for v in reversed(self.views[:-1]):
            if isinstance(valid, Const) and valid.value == 0:
                break
            idx, valid2 = v.expr_idxs(unravel(idx, v.shape))
            valid = and_(valid, valid2)
        if isinstance(valid, Const) and valid.value == 0:
            return Const(0), Const(0)
        return idx, valid

    def expr_node(self, idx: Union[None, str, Node] = None) -> tuple[Node, Node]:
        """(buffer index, validity) for a single flat (row-major) index over the logical shape;
        default variable ``idx`` in ``[0, size-1]``."""
        if idx is None or isinstance(idx, str):
            idx = Var(idx or "idx", 0, max(self.size - 1, 0))
        return self.expr_idxs(unravel(idx, self.shape))

    def real_strides(self, ignore_valid: bool = False) -> tuple[Optional[int], ...]:
        """Per-dimension stride of the final index in each loop variable, or None where the index
        is not affine in it (or, unless ``ignore_valid``, where the validity depends on it)."""
        vs = loop_vars(self.shape)
        idx, valid = self.expr_idxs(vs)
        terms, _ = linear_terms(idx)
        in_valid = valid.vars()
        nonlinear: set = set()
        for a in terms:
            if not isinstance(a, Var):
                nonlinear |= a.vars()
        out = []
        for v in vs:
            if v in nonlinear or (not ignore_valid and v in in_valid):
                out.append(None)
            else:
                out.append(terms.get(v, 0))
        return tuple(out)

    def unit_stride_axes(self, ignore_valid: bool = False) -> list[int]:
        return [i for i, st in enumerate(self.real_strides(ignore_valid)) if st == 1]

    def is_expanded_axis(self, i: int) -> bool:
        """True if axis ``i`` (size > 1) is a broadcast: neither the index nor validity use it."""
        if not -self.ndim <= i < self.ndim:
            raise ValueError(f"is_expanded_axis: axis {i} out of range for shape {self.shape}")
        i %= self.ndim
        return self.shape[i] != 1 and self.real_strides()[i] == 0
