"""``vmap``: vectorise a function over an axis of its inputs."""
from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from tinyjax import tree_util
from tinyjax.core import get_aval
from tinyjax.transforms.batching import AxisData, vmap_flat


def _one_level(x: Any):
    return tree_util.tree_flatten(x, is_leaf=lambda y: y is not x)


def broadcast_prefix(prefix: Any, tree: Any, what: str) -> list[Any]:
    """One entry of ``prefix`` per leaf of ``tree``, where ``prefix`` is a tree prefix
    of ``tree`` whose leaves are ints or None."""
    out: list[Any] = []

    def rec(p, t):
        if p is None or isinstance(p, int):
            out.extend([p] * len(tree_util.tree_leaves(t)))
            return
        p_children, p_def = _one_level(p)
        t_children, t_def = _one_level(t)
        if p_def != t_def:
            raise ValueError(f"{what} specification must be a tree prefix of the "
                             f"corresponding value, got specification {prefix} for value "
                             f"tree {tree_util.tree_structure(tree)}.")
        for pc, tc in zip(p_children, t_children):
            rec(pc, tc)

    rec(prefix, tree)
    return out


def _check_axis_spec(spec: Any, name: str) -> None:
    for leaf in tree_util.tree_leaves(spec, is_leaf=lambda x: x is None):
        if leaf is not None and not isinstance(leaf, int):
            raise TypeError(f"vmap {name} must be an int, None, or (nested) container with "
                            f"those types as leaves, but got {spec}.")


def vmap(fun: Callable, in_axes: Any = 0, out_axes: Any = 0, axis_name: Any = None,
         axis_size: int | None = None, spmd_axis_name: Any = None) -> Callable:
    """Vectorise ``fun`` over the axes ``in_axes`` of its positional arguments; the
    mapped axis of each output is placed at ``out_axes``.  ``axis_name`` names the
    axis for collectives (``lax.psum`` …)."""
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)
    if not (in_axes is None or isinstance(in_axes, (int, tuple, dict))) and \
            not tree_util.all_leaves([in_axes]):
        raise TypeError("vmap in_axes must be an int, None, or a tuple of entries "
                        "corresponding to the positional arguments passed to the function, "
                        f"but got in_axes={in_axes}.")
    _check_axis_spec(in_axes, "in_axes")
    _check_axis_spec(out_axes, "out_axes")

    @wraps(fun)
    def vmap_f(*args, **kwargs):
        from tinyjax.lax._helpers import as_operand
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError("vmap in_axes must be an int, None, or a tuple of entries "
                             "corresponding to the positional arguments passed to the "
                             f"function, but got len(in_axes)={len(in_axes)}, "
                             f"len(args)={len(args)}")
        axes_per_arg = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        flat_args, in_tree = tree_util.tree_flatten(args)
        flat_axes = broadcast_prefix(axes_per_arg, args, "vmap in_axes")
        flat_args = [as_operand(a) if ax is not None else a
                     for a, ax in zip(flat_args, flat_axes)]
        dims, sizes = [], []
        for i, (a, ax) in enumerate(zip(flat_args, flat_axes)):
            if ax is None:
                dims.append(None)
                continue
            aval = get_aval(a)
            if not -aval.ndim <= ax < aval.ndim:
                raise ValueError(f"vmap was requested to map its argument along axis {ax}, "
                                 f"which implies that its rank should be at least "
                                 f"{(ax + 1) if ax >= 0 else -ax}, but is only {aval.ndim} "
                                 f"(its shape is {aval.shape})")
            d = ax % aval.ndim
            dims.append(d)
            sizes.append((aval.shape[d], d, i, aval))
        size_set = {s for s, *_ in sizes}
        if axis_size is not None:
            size_set.add(axis_size)
        if not size_set:
            raise ValueError("vmap must have at least one non-None value in in_axes")
        if len(size_set) > 1:
            lines = [f"  * one axis had size {s}: axis {d} of argument {i} of type "
                     f"{aval.str_short()}" for s, d, i, aval in sizes]
            if axis_size is not None:
                lines.append(f"  * axis_size={axis_size} was given")
            raise ValueError("vmap got inconsistent sizes for array axes to be mapped:\n"
                             + ";\n".join(lines))
        size = size_set.pop()
        out_store: list[Any] = []

        def flat_fun(*flat):
            out = fun(*tree_util.tree_unflatten(in_tree, flat), **kwargs)
            flat_out, out_tree = tree_util.tree_flatten(out)
            out_store.append((out, out_tree))
            return flat_out

        # out_axes depend on the output tree, known only after tracing: resolve lazily.
        class LazyOutDims:
            def __iter__(self):
                out, out_tree = out_store[0]
                flat_out_axes = broadcast_prefix(out_axes, out, "vmap out_axes")
                outs_avals = [get_aval(o) for o in tree_util.tree_leaves(out)]
                return iter([None if d is None else d % (aval.ndim + 1)
                             for d, aval in zip(flat_out_axes, outs_avals)])

        flat_out = vmap_flat(flat_fun, AxisData(axis_name, size, spmd_axis_name),
                             flat_args, dims, LazyOutDims())
        return tree_util.tree_unflatten(out_store[0][1], flat_out)

    return vmap_f
