"""JAX's shape-polymorphism entry points (``symbolic_shape`` and friends), for the part
tinyjax supports: tinyjax traces with concrete shapes only, so a shape specification may
hold integers, ``_`` (the dimension of ``like``) and ``...`` (the rest of ``like``'s
dimensions); a dimension variable or expression (``"b, 4"``, ``"2*n"``) raises
NotImplementedError saying so, and ``is_symbolic_dim`` is False for every value."""
from __future__ import annotations

import re
from typing import Any, Sequence

from tinyjax import dtypes, tree_util
from tinyjax.abstract import ShapeDtypeStruct

__all__ = ["SymbolicScope", "is_symbolic_dim", "symbolic_shape", "symbolic_args_specs"]

_NO_SYMBOLS = ("tinyjax cannot trace with symbolic dimensions (shape polymorphism); "
               "export the function for each concrete shape instead")
_EXPRESSION = re.compile(r"^[A-Za-z0-9_+\-*/%(). ,]+$")


class SymbolicScope:
    """A scope of dimension variables and their constraints.  tinyjax has no dimension
    variables: a scope without constraints is accepted (and changes nothing); any
    constraint raises NotImplementedError."""

    def __init__(self, constraints_str: Sequence[str] = ()):
        if isinstance(constraints_str, str):
            raise ValueError("The symbolic constraints should be a sequence of strings. "
                             f"Got {constraints_str!r}")
        if constraints_str:
            raise NotImplementedError(f"SymbolicScope constraints {list(constraints_str)}: "
                                      + _NO_SYMBOLS)
        self.constraints_str = tuple(constraints_str)

    def __repr__(self) -> str:
        return "SymbolicScope()"


def is_symbolic_dim(p: Any) -> bool:
    """Whether ``p`` is a symbolic dimension: never, in tinyjax (see the module doc)."""
    return False


def _split_dims(spec: str) -> list[str]:
    """The top-level comma-separated parts of ``spec`` (parentheses around the whole
    removed)."""
    text = spec.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    parts = [p.strip() for p in parts]
    return parts[:-1] if parts and parts[-1] == "" else parts


def _syntax_error(spec: str, i: int, why: str) -> ValueError:
    return ValueError(f"syntax error in symbolic shape '{spec}' in dimension {i}: {why}")


def symbolic_shape(shape_spec: str | None, *, constraints: Sequence[str] = (),
                   scope: SymbolicScope | None = None,
                   like: Sequence[int | None] | None = None) -> tuple[int, ...]:
    """The shape ``shape_spec`` describes (e.g. ``"3, _"`` with ``like=(3, 5)`` is
    ``(3, 5)``; ``None`` is ``like``).  Dimension variables raise NotImplementedError:
    tinyjax has no symbolic shapes."""
    if constraints:
        raise NotImplementedError(f"symbolic_shape constraints {list(constraints)}: "
                                  + _NO_SYMBOLS)
    if shape_spec is None:
        if like is None:
            raise ValueError("symbolic_shape: shape_spec None needs `like`")
        return tuple(int(d) for d in like)
    if not isinstance(shape_spec, str):
        raise ValueError(f"polymorphic shape spec should be None or a string. Found "
                         f"{shape_spec!r}.")
    dims: list[int] = []
    parts = _split_dims(shape_spec)
    for i, part in enumerate(parts):
        known = None if like is None or i >= len(like) else like[i]
        if part == "...":
            if i != len(parts) - 1:
                raise _syntax_error(shape_spec, i, "... may only be the last dimension")
            if like is None:
                raise _syntax_error(shape_spec, i, "... needs `like`")
            dims.extend(int(d) for d in like[i:])
            return tuple(dims)
        if part == "_":
            if known is None:
                raise _syntax_error(shape_spec, i, "_ needs a known dimension in `like`")
            dims.append(int(known))
        elif re.fullmatch(r"\d+", part):
            if known is not None and int(part) != known:
                raise _syntax_error(shape_spec, i, f"different size {part} for known "
                                    f"dimension; like={tuple(like)}")
            dims.append(int(part))
        elif part and _EXPRESSION.match(part):
            raise NotImplementedError(f"symbolic shape '{shape_spec}' has the dimension "
                                      f"'{part}': " + _NO_SYMBOLS)
        else:
            raise _syntax_error(shape_spec, i, f"cannot read {part!r}")
    if like is not None and len(dims) != len(like):
        raise ValueError(f"syntax error in symbolic shape '{shape_spec}': it has "
                         f"{len(dims)} dimensions but like={tuple(like)} has {len(like)}")
    return tuple(dims)


def symbolic_args_specs(args: Any, shapes_specs: Any, constraints: Sequence[str] = (),
                        scope: SymbolicScope | None = None) -> Any:
    """``args`` as a pytree of :class:`~tinyjax.ShapeDtypeStruct`, each shape read from
    ``shapes_specs`` (a pytree prefix of ``args`` of strings or None; one string for
    every argument) like each argument's shape."""
    leaves, tree = tree_util.tree_flatten(args)
    if shapes_specs is None or isinstance(shapes_specs, str):
        specs = [shapes_specs] * len(leaves)
    else:
        prefix = tree_util.tree_structure(shapes_specs, is_leaf=lambda s: s is None)
        specs = [spec for spec, sub in zip(
                     tree_util.tree_leaves(shapes_specs, is_leaf=lambda s: s is None),
                     prefix.flatten_up_to(args))
                 for _ in tree_util.tree_leaves(sub)]
    out = []
    for leaf, spec in zip(leaves, specs):
        shape = symbolic_shape(spec, constraints=constraints, scope=scope,
                               like=tuple(leaf.shape))
        out.append(ShapeDtypeStruct(shape, dtypes.canonicalize_dtype(leaf.dtype)))
    return tree.unflatten(out)
