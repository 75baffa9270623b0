"""``jax.stages``: the stages of ahead-of-time compilation of a jitted function.

``jit(f).trace(*args)`` gives a :class:`Traced` (the jaxpr and the output types),
``.lower()`` a :class:`Lowered` (the program handed to the compiler), ``.compile()`` a
:class:`Compiled` (callable; its ``as_text()`` is the generated source).  Each stage
reports the input and output types, and ``cost_analysis()`` estimates flops and bytes.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import stablehlo, tree_util
from tinyjax.tree_util import physical
from tinyjax.abstract import ShapeDtypeStruct
from tinyjax.backends import get_device
from tinyjax.core import ShapedArray
from tinyjax.dispatch import Compiled as CompiledCall
from tinyjax.dispatch import leaf_signature
from tinyjax.errors import JaxRuntimeError
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, sub_jaxprs
from tinyjax.sharding import SingleDeviceSharding

__all__ = ["ArgInfo", "CompilerOptions", "Compiled", "Lowered", "Traced", "Wrapped"]

CompilerOptions = dict[str, "str | bool"]


class Wrapped:
    """The type of a function wrapped by ``jit``: callable, and ``.trace`` / ``.lower``
    start ahead-of-time compilation."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def trace(self, *args: Any, **kwargs: Any) -> "Traced":
        raise NotImplementedError

    def lower(self, *args: Any, **kwargs: Any) -> "Lowered":
        raise NotImplementedError


class ArgInfo:
    """The type of one argument of a traced function and whether it is donated."""

    def __init__(self, aval: ShapedArray, donated: bool):
        self._aval, self.donated = aval, donated

    shape = property(lambda self: self._aval.shape)
    dtype = property(lambda self: self._aval.dtype)

    def __repr__(self) -> str:
        return f"ArgInfo(_aval={self._aval!r}, donated={self.donated})"


def _struct(aval: ShapedArray) -> ShapeDtypeStruct:
    return ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


class _Stage:
    """What every stage knows: the program, its argument and result types."""

    def __init__(self, name: str, closed: ClosedJaxpr, in_tree: tree_util.PyTreeDef,
                 out_tree: tree_util.PyTreeDef, donated: Sequence[bool], device: str):
        self.fun_name, self._closed = name, closed
        self.in_tree, self.out_tree = in_tree, out_tree
        self._donated, self._device = list(donated), device

    in_avals = property(lambda self: self.in_tree.unflatten(self._closed.in_avals))
    out_avals = property(lambda self: self.out_tree.unflatten(self._closed.out_avals))

    @property
    def out_info(self) -> Any:
        """The outputs' shapes and dtypes (a pytree of ShapeDtypeStruct)."""
        return self.out_tree.unflatten([_struct(a) for a in self._closed.out_avals])

    @property
    def args_info(self) -> Any:
        return self.in_tree.unflatten([ArgInfo(a, d) for a, d in
                                       zip(self._closed.in_avals, self._donated)])

    @property
    def donate_argnums(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self._donated) if d)

    def cost_analysis(self) -> dict[str, float]:
        """Estimated ``flops`` (multiply-adds count two, elementwise operations and the
        steps of reductions one each, data movement -- reshapes, broadcasts, slices, ... --
        none, as in XLA's cost analysis) and ``bytes accessed`` (every argument and result
        once)."""
        jaxpr = self._closed.jaxpr
        moved = sum(_nbytes(v.aval) for v in list(jaxpr.invars) + list(jaxpr.constvars))
        moved += sum(_nbytes(a.aval) for a in jaxpr.outvars)
        return {"flops": float(_flops(jaxpr)), "bytes accessed": float(moved)}


def _nbytes(aval: ShapedArray) -> int:
    return int(np.prod(aval.shape, dtype=np.int64)) * np.dtype(aval.dtype).itemsize


def _size(aval: ShapedArray) -> int:
    return int(np.prod(aval.shape, dtype=np.int64))


# primitives that move data and compute nothing (XLA counts no flops for them)
_MOVEMENT = frozenset({"reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims",
                       "slice", "dynamic_slice", "dynamic_update_slice", "concatenate", "pad",
                       "rev", "copy", "copy_p"})


def _flops(jaxpr: Jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        subs = list(sub_jaxprs(eqn.params))
        if subs:
            trips = int(eqn.params.get("length", 1))
            total += trips * max(_flops(j) for j in subs)
            continue
        name = eqn.primitive.name
        out = sum(_size(v.aval) for v in eqn.outvars)
        if name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            k = int(np.prod([eqn.invars[0].aval.shape[d] for d in contract], dtype=np.int64))
            total += 2 * out * k
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            total += 2 * out * int(np.prod(rhs, dtype=np.int64)) // max(rhs[0], 1)
        elif name.startswith("reduce_"):  # (k - 1 steps for each of k elements)
            total += _size(eqn.invars[0].aval) - out
        elif name in ("argmax", "argmin"):
            total += _size(eqn.invars[0].aval)
        elif name not in _MOVEMENT:
            total += out
    return total


class Traced(_Stage):
    """A traced jitted function: ``jaxpr`` (a ClosedJaxpr) and the output types;
    ``lower()`` goes on to the next stage."""

    def __init__(self, name, closed, in_tree, out_tree, donated, device,
                 compile_fn: Callable[[], CompiledCall]):
        super().__init__(name, closed, in_tree, out_tree, donated, device)
        self._compile_fn = compile_fn

    @property
    def jaxpr(self) -> ClosedJaxpr:
        return self._closed

    def lower(self, **_: Any) -> "Lowered":
        return Lowered(self.fun_name, self._closed, self.in_tree, self.out_tree,
                       self._donated, self._device, self._compile_fn)


class Lowered(_Stage):
    """The program handed to the compiler; ``as_text()`` prints it, ``compile()``
    compiles it (once: the jitted function reuses the result)."""

    def __init__(self, name, closed, in_tree, out_tree, donated, device,
                 compile_fn: Callable[[], CompiledCall]):
        super().__init__(name, closed, in_tree, out_tree, donated, device)
        self._compile_fn = compile_fn

    def as_text(self, dialect: str | None = None, **_: Any) -> str:
        """The program as StableHLO text (``dialect=None`` or ``"stablehlo"``), as JAX
        prints it, or as tinyjax's jaxpr (``dialect="jaxpr"``).  tinyjax has no XLA, so
        ``"hlo"`` raises NotImplementedError, as does a primitive StableHLO has no
        spelling for here."""
        if dialect == "jaxpr":
            return self._closed.pretty_print()
        if dialect not in (None, "stablehlo"):
            raise NotImplementedError(
                f"Lowered.as_text: dialect {dialect!r} is not available in tinyjax (there is "
                f"no XLA); use 'stablehlo' or 'jaxpr'")
        return stablehlo.module_text(self.fun_name, self._closed, result_names(self.out_tree))

    def compiler_ir(self, dialect: str | None = None) -> ClosedJaxpr:
        return self._closed

    def compile(self, compiler_options: CompilerOptions | None = None) -> "Compiled":
        """The compiled program.  ``compiler_options`` are XLA's (tinyjax has no XLA):
        options named as XLA's (``xla_...``) have no effect; any other name is no compile
        option, a ``JaxRuntimeError`` as in JAX."""
        for name in compiler_options or {}:
            if not str(name).startswith("xla_"):
                raise JaxRuntimeError(f"INVALID_ARGUMENT: No such compile option: '{name}'")
        return Compiled(self.fun_name, self._closed, self.in_tree, self.out_tree,
                        self._donated, self._device, self._compile_fn())

    # tinyjax's views of the compiled program (kept from before the stages existed)
    def kernels(self) -> list:
        return self._compile_fn().kernels()

    def source(self) -> str:
        return self._compile_fn().source()


class Compiled(_Stage):
    """A compiled jitted function: call it with the dynamic (non-static) arguments of
    the types it was compiled for; ``as_text()`` is the generated source."""

    def __init__(self, name, closed, in_tree, out_tree, donated, device,
                 call: CompiledCall):
        super().__init__(name, closed, in_tree, out_tree, donated, device)
        self._call = call

    @property
    def executable(self) -> Any:
        """The device program (kernels and steps)."""
        return self._call.executable

    @property
    def num_kernels(self) -> int:
        """How many kernels the program runs (loop bodies counted once)."""
        return self._call.num_kernels

    def as_text(self) -> str:
        return self._call.source()

    def kernels(self) -> list:
        return self._call.kernels()

    def source(self) -> str:
        return self._call.source()

    @property
    def input_shardings(self) -> Any:
        flat = getattr(self._call, "input_shardings", None)  # a program over a mesh
        return self.in_tree.unflatten(flat or [self._sharding()] * self.in_tree.num_leaves)

    @property
    def output_shardings(self) -> Any:
        flat = getattr(self._call, "output_shardings", None)
        return self.out_tree.unflatten(flat or [self._sharding()] * self.out_tree.num_leaves)

    def _sharding(self) -> SingleDeviceSharding:
        return SingleDeviceSharding(get_device(self._device))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flat, tree = physical.tree_flatten((args, kwargs))
        if tree != self.in_tree:
            # (public structures: a key array stands where a ShapeDtypeStruct of its type
            # did; built only here, they cost each call two walks of the tree)
            want, got = (physical.public_structure(t)[0] for t in (self.in_tree, tree))
            if got != want:
                raise TypeError(f"Function compiled with input pytree does not match the "
                                f"input pytree it was called with: expected {want}, got {got}")
        wrong = [f"Argument {i} compiled with {_sig_str(a)} and called with "
                 f"{_sig_str(ShapedArray(*leaf_signature(x)[:2]))}"
                 for i, (x, a) in enumerate(zip(flat, self._closed.in_avals))
                 if leaf_signature(x)[:2] != (a.shape, a.dtype)]
        if wrong:
            raise TypeError("Argument types differ from the types for which this computation "
                            "was compiled. The mismatches are:\n" + "\n".join(wrong))
        outs = self._call.run_leaves(flat)  # (donating as compiled to)
        return tree_util.tree_unflatten(self.out_tree, outs)

    call = __call__


def result_names(out_tree: tree_util.PyTreeDef) -> list[str]:
    """The names of a function's flat results in its StableHLO text (``result[0]``,
    ``result['a']``, ...: each result's path in the output pytree)."""
    paths = tree_util.tree_flatten_with_path(out_tree.unflatten(range(out_tree.num_leaves)))[0]
    return ["result" + tree_util.keystr(path) for path, _ in paths]


def _sig_str(aval: ShapedArray) -> str:
    return f"{np.dtype(aval.dtype).name}[{','.join(map(str, aval.shape))}]"
