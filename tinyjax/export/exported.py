"""``jax.export``: a jitted function traced for given argument types into an
:class:`Exported` -- the program (a jaxpr), its calling convention (argument and result
pytrees and types) and its derivative on demand -- which can be called again from any
tinyjax program, serialized to bytes and read back in another process.

JAX's Exported holds StableHLO for XLA; tinyjax's holds the jaxpr it compiles itself,
so the program runs on whichever device calls it.  ``mlir_module()`` prints it as
StableHLO text.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import stablehlo, stages, tree_util
from tinyjax.tree_util import physical
from tinyjax.abstract import ShapeDtypeStruct
from tinyjax.api import jit, vjp
from tinyjax.backends import default_device
from tinyjax.compiler.lower.registry import host_callbacks, inlined_calls, register_inlined_call
from tinyjax.core import Primitive, ShapedArray
from tinyjax.custom_derivatives import custom_vjp
from tinyjax.export import serialization
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, eval_jaxpr, sub_jaxprs
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import composite_definitions

__all__ = ["DisabledSafetyCheck", "Exported", "export", "deserialize", "call_exported_p",
           "default_export_platform", "minimum_supported_calling_convention_version",
           "maximum_supported_calling_convention_version"]

# The calling-convention versions JAX's exports carry (tinyjax writes the newest).
minimum_supported_calling_convention_version = 9
maximum_supported_calling_convention_version = 10


class DisabledSafetyCheck:
    """A safety check to skip: ``platform()`` lets an Exported run on a platform it was
    not exported for; ``custom_call(name)`` is accepted for JAX's sake (tinyjax's
    programs hold no custom calls)."""

    def __init__(self, _impl: str):
        self._impl = _impl

    @classmethod
    def platform(cls) -> "DisabledSafetyCheck":
        """Allow calling on a platform other than the exported ones."""
        return cls("platform")

    @classmethod
    def custom_call(cls, target_name: str) -> "DisabledSafetyCheck":
        """Allow the custom call ``target_name`` (no effect in tinyjax)."""
        return cls(f"custom_call:{target_name}")

    def is_custom_call(self) -> str | None:
        """The target a ``custom_call`` check names, else None."""
        m = re.match(r"custom_call:(.+)$", self._impl)
        return m.group(1) if m else None

    def __str__(self) -> str:
        return self._impl

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DisabledSafetyCheck) and self._impl == other._impl

    def __hash__(self) -> int:
        return hash(self._impl)


def default_export_platform() -> str:
    """The platform ``export`` targets by default: the default device's ('cpu', 'cuda'
    or 'interp')."""
    return default_device()


@dataclasses.dataclass(frozen=True, eq=False)
class Exported:
    """A jitted function traced for given argument types: its program and calling
    convention.  Fields as JAX's: ``fun_name``, ``in_tree`` (of ``(args, kwargs)``),
    ``in_avals``, ``out_tree``, ``out_avals``, ``in_shardings_hlo`` /
    ``out_shardings_hlo`` (all None: one device), ``nr_devices``, ``platforms``,
    ``ordered_effects`` / ``unordered_effects`` (empty: effects cannot be exported),
    ``disabled_safety_checks``, ``calling_convention_version``, ``module_kept_var_idx``
    (the arguments the program reads), ``uses_global_constants`` (False: no symbolic
    shapes).  The program itself is tinyjax's jaxpr (``jaxpr``)."""

    fun_name: str
    in_tree: tree_util.PyTreeDef
    in_avals: tuple[ShapedArray, ...]
    out_tree: tree_util.PyTreeDef
    out_avals: tuple[ShapedArray, ...]
    in_shardings_hlo: tuple[None, ...]
    out_shardings_hlo: tuple[None, ...]
    nr_devices: int
    platforms: tuple[str, ...]
    ordered_effects: tuple
    unordered_effects: tuple
    disabled_safety_checks: tuple[DisabledSafetyCheck, ...]
    calling_convention_version: int
    module_kept_var_idx: tuple[int, ...]
    uses_global_constants: bool
    jaxpr: ClosedJaxpr
    _get_vjp: Callable[["Exported"], "Exported"] | None

    def __str__(self) -> str:
        return f"Exported(fun_name={self.fun_name}, ...)"

    __repr__ = __str__

    @property
    def mlir_module_serialized(self) -> bytes:
        """The StableHLO text of the program, UTF-8 encoded (JAX's holds bytecode)."""
        return self.mlir_module().encode("utf-8")

    def mlir_module(self, serialized: bool = True) -> str:
        """The program as StableHLO text (as ``jit(f).lower(...).as_text()``); JAX's
        ``serialized=False`` (an MLIR module object) raises NotImplementedError."""
        if not serialized:
            raise NotImplementedError("Exported.mlir_module(serialized=False): tinyjax has no "
                                      "MLIR module objects; the text is mlir_module()")
        return stablehlo.module_text(self.fun_name, self.jaxpr,
                                     stages.result_names(self.out_tree))

    def in_shardings_jax(self, mesh: Any) -> tuple[None, ...]:
        """Per argument, its sharding on ``mesh``: None (exported for one device)."""
        return tuple(None for _ in self.in_avals)

    def out_shardings_jax(self, mesh: Any) -> tuple[None, ...]:
        """Per result, its sharding on ``mesh``: None (exported for one device)."""
        return tuple(None for _ in self.out_avals)

    def has_vjp(self) -> bool:
        """Whether :meth:`vjp` is available (after deserialization: if it was serialized
        with ``vjp_order`` of at least 1)."""
        return self._get_vjp is not None

    def vjp(self) -> "Exported":
        """The exported VJP: takes the flat primal arguments followed by a cotangent per
        flat result, returns the tuple of cotangents of the flat primal arguments."""
        if self._get_vjp is None:
            raise ValueError("No VJP is available")
        cached = self.__dict__.get("_vjp_exported")
        if cached is None:  # (exported once: each backward pass calls it)
            cached = self._get_vjp(self)
            object.__setattr__(self, "_vjp_exported", cached)
        return cached

    def serialize(self, vjp_order: int = 0) -> bytearray:
        """The Exported as bytes (see :func:`deserialize`), with its VJPs up to order
        ``vjp_order`` (2 allows ``grad(grad(...))`` of the read-back function)."""
        return serialization.serialize(self, vjp_order=vjp_order)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the exported function from tinyjax (eagerly, under ``jit``, ``grad``
        through its VJP) with arguments of the structure and types it was exported for."""
        return _call(self)(*args, **kwargs)

    # the program as a jaxpr without constants, those being its first operands
    @property
    def _body(self) -> Jaxpr:
        j = self.jaxpr.jaxpr
        return Jaxpr([], list(j.constvars) + list(j.invars), j.outvars, j.eqns)


# ---- export --------------------------------------------------------------------------------

def export(fun_jit: stages.Wrapped, *, platforms: Sequence[str] | None = None,
           disabled_checks: Sequence[DisabledSafetyCheck] = (),
           _override_lowering_rules: Any = None) -> Callable[..., Exported]:
    """Export the jitted function ``fun_jit``: returns a function that takes its
    arguments -- :class:`~tinyjax.ShapeDtypeStruct` or arrays, in a pytree, static ones
    as values -- and returns the :class:`Exported`.  ``platforms`` are recorded and
    checked when it is called (default: :func:`default_export_platform`)."""
    if not isinstance(fun_jit, stages.Wrapped):
        raise ValueError(
            f"Function to be exported must be the result of `jit` but is: {fun_jit}")
    if _override_lowering_rules is not None:
        raise NotImplementedError("export: _override_lowering_rules (MLIR lowering rules) "
                                  "do not apply to tinyjax, which does not lower to MLIR")
    chosen = tuple(platforms) if platforms is not None else (default_export_platform(),)

    def do_export(*args_specs: Any, **kwargs_specs: Any) -> Exported:
        _reject_symbolic(args_specs, kwargs_specs)
        traced = fun_jit.trace(*args_specs, **kwargs_specs)
        return _exported_from_jaxpr(traced.fun_name, traced.jaxpr, traced.in_tree,
                                    traced.out_tree, chosen, tuple(disabled_checks))
    return do_export


def _reject_symbolic(args_specs: tuple, kwargs_specs: dict) -> None:
    for leaf in tree_util.tree_leaves((args_specs, kwargs_specs)):
        if any(not isinstance(d, (int, np.integer)) for d in getattr(leaf, "shape", ())):
            raise NotImplementedError(
                "export: tinyjax cannot trace with symbolic dimensions (shape "
                f"{tuple(leaf.shape)}); export for each concrete shape instead")


def _compiled_in_place(prim: Primitive) -> bool:
    """An effectful primitive the compiler expands into the program itself, with no host
    step (``rng_uniform``'s draw, ``dce_sink``): the program exports with it."""
    return prim in inlined_calls or prim in composite_definitions


def _check_effects(jaxpr: Jaxpr) -> None:
    for eqn in jaxpr.eqns:
        if eqn.primitive in host_callbacks:
            raise NotImplementedError("serialization of host_callbacks is not yet implemented")
        if eqn.primitive.effectful and not _compiled_in_place(eqn.primitive):
            raise NotImplementedError(f"export: the side effect of `{eqn.primitive.name}` "
                                      "cannot be exported")
        for sub in sub_jaxprs(eqn.params):
            _check_effects(sub)


def _kept_inputs(jaxpr: Jaxpr) -> tuple[int, ...]:
    used = {a for e in jaxpr.eqns for a in e.invars} | set(jaxpr.outvars)
    return tuple(i for i, v in enumerate(jaxpr.invars) if v in used)


def _exported_from_jaxpr(fun_name: str, closed: ClosedJaxpr, in_tree: tree_util.PyTreeDef,
                         out_tree: tree_util.PyTreeDef, platforms: tuple[str, ...],
                         disabled_checks: tuple[DisabledSafetyCheck, ...]) -> Exported:
    """An Exported of the traced program ``closed``; its VJP is exported from it on
    demand."""
    _check_effects(closed.jaxpr)
    n_in, n_out = len(closed.in_avals), len(closed.out_avals)
    return Exported(
        fun_name=fun_name, in_tree=in_tree, in_avals=tuple(closed.in_avals),
        out_tree=out_tree, out_avals=tuple(closed.out_avals),
        in_shardings_hlo=(None,) * n_in, out_shardings_hlo=(None,) * n_out, nr_devices=1,
        platforms=platforms, ordered_effects=(), unordered_effects=(),
        disabled_safety_checks=disabled_checks,
        calling_convention_version=maximum_supported_calling_convention_version,
        module_kept_var_idx=_kept_inputs(closed.jaxpr), uses_global_constants=False,
        jaxpr=closed, _get_vjp=_export_vjp)


def _export_vjp(primal: Exported) -> Exported:
    """Export ``primal``'s VJP: primal arguments and output cotangents in, input
    cotangents out (as JAX exports it)."""
    closed = primal.jaxpr
    n_in = len(primal.in_avals)

    def fun_vjp_jax(*args_and_cts):
        args, cts = args_and_cts[:n_in], args_and_cts[n_in:]
        _, pullback = vjp(lambda *a: eval_jaxpr(closed.jaxpr, closed.consts, *a), *args)
        return pullback(list(cts))

    specs = [_spec(a) for a in primal.in_avals] + \
        [_spec(a.to_tangent_aval()) for a in primal.out_avals]
    return export(jit(fun_vjp_jax), platforms=primal.platforms,
                  disabled_checks=primal.disabled_safety_checks)(*specs)


def _spec(aval: ShapedArray) -> ShapeDtypeStruct:
    return ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def deserialize(blob: bytearray) -> Exported:
    """The Exported that :meth:`Exported.serialize` wrote into ``blob`` (in this or
    another process; custom pytree nodes of its calling convention must be registered
    with :func:`register_pytree_node_serialization` first).  A blob of another format
    version, or a malformed one, raises ValueError."""
    return _from_fields(serialization.deserialize_fields(blob))


def _from_fields(fields: dict) -> Exported:
    vjp_fields = fields.pop("vjp")
    get_vjp = None
    if vjp_fields is not None:
        vjp_exported = _from_fields(vjp_fields)
        get_vjp = lambda _: vjp_exported  # noqa: E731
    version = fields["calling_convention_version"]
    if not minimum_supported_calling_convention_version <= version \
            <= maximum_supported_calling_convention_version:
        raise ValueError(
            f"deserialize: the Exported has calling convention version {version}, outside "
            f"the range of supported versions [{minimum_supported_calling_convention_version}"
            f"..{maximum_supported_calling_convention_version}]")
    checks = tuple(_safety_check(c) for c in fields.pop("disabled_safety_checks"))
    n_in, n_out = len(fields["in_avals"]), len(fields["out_avals"])
    return Exported(**fields, in_shardings_hlo=(None,) * n_in,
                    out_shardings_hlo=(None,) * n_out, ordered_effects=(),
                    unordered_effects=(), disabled_safety_checks=checks,
                    uses_global_constants=False, _get_vjp=get_vjp)


def _safety_check(text: str) -> DisabledSafetyCheck:
    """The DisabledSafetyCheck ``str(check)`` wrote: ``platform`` or ``custom_call:NAME``."""
    check = DisabledSafetyCheck(text)
    if check != DisabledSafetyCheck.platform() and check.is_custom_call() is None:
        raise ValueError(f"deserialize: cannot deserialize the DisabledSafetyCheck {text!r} "
                         "of unknown kind")
    return check


# ---- calling an Exported -------------------------------------------------------------------

call_exported_p = Primitive("call_exported", multiple_results=True)


def _call_exported_impl(*operands: Any, exported: Exported) -> list:
    return _compiled(exported)(*operands)


def _compiled(exported: Exported) -> Callable:
    """The program compiled (once per Exported) for eager calls."""
    body = exported._body
    fun = exported.__dict__.get("_compiled_body")
    if fun is None:
        fun = jit(lambda *operands: eval_jaxpr(body, [], *operands))
        object.__setattr__(exported, "_compiled_body", fun)
    return fun


def _arg_descr(exported: Exported, arg_idx: int) -> str:
    paths = tree_util.tree_flatten_with_path(
        exported.in_tree.unflatten(range(exported.in_tree.num_leaves)))[0]
    (args_path_key, *rest), _ = paths[arg_idx]
    head = "args" if args_path_key.idx == 0 else "kwargs"
    return head + tree_util.keystr(tuple(rest))


def _call_exported_abstract_eval(*avals: ShapedArray, exported: Exported) -> list:
    n_consts = len(exported.jaxpr.consts)
    for i, (want, got) in enumerate(zip(exported.in_avals, avals[n_consts:])):
        where = _arg_descr(exported, i)
        if len(want.shape) != len(got.shape):
            raise ValueError(f"Rank mismatch for {where}: expected {want.shape} and called "
                             f"with {got.shape}")
        if want.dtype != got.dtype:
            raise ValueError(f"Dtype mismatch for {where}: expected {want.dtype} and called "
                             f"with {got.dtype}")
        for d, (a, b) in enumerate(zip(want.shape, got.shape)):
            if a != b:
                raise ValueError(f"Shape mismatch for {where}.shape[{d}] (expected same "
                                 f"constant): expected {want.shape} and called with "
                                 f"{got.shape}")
    return list(exported.out_avals)


call_exported_p.def_impl(_call_exported_impl)
call_exported_p.def_abstract_eval(_call_exported_abstract_eval)
call_exported_p.weak_type_rule = lambda weak, *, exported: [a.weak_type
                                                            for a in exported.out_avals]
# compiled: the program in place, its constants being the equation's first operands
register_inlined_call(call_exported_p, lambda eqn, operands: (eqn.params["exported"]._body,
                                                             operands))


def _check_platform(exported: Exported) -> None:
    here = default_export_platform()
    if here not in exported.platforms and \
            DisabledSafetyCheck.platform() not in exported.disabled_safety_checks:
        raise ValueError(f"Function '{exported.fun_name}' was exported for platforms "
                         f"'{exported.platforms}' but it is used on '{(here,)}'.")


def _call(exported: Exported) -> Callable[..., Any]:
    if not isinstance(exported, Exported):
        raise ValueError(f"The exported argument must be an export.Exported. Found {exported}.")
    consts = list(exported.jaxpr.consts)

    @custom_vjp
    def f_flat(*args_flat):
        return tuple(call_exported_p.bind(*consts, *args_flat, exported=exported))

    def f_flat_fwd(*args_flat):
        return f_flat(*args_flat), args_flat

    def f_flat_bwd(args_flat, cts):
        exp_vjp = exported.vjp()
        return tuple(exp_vjp.call(*args_flat, *cts))

    f_flat.defvjp(f_flat_fwd, f_flat_bwd)

    def f_imported(*args: Any, **kwargs: Any) -> Any:
        flat, in_tree = physical.tree_flatten((args, kwargs))
        if in_tree != exported.in_tree:
            raise ValueError(_structure_error(exported, in_tree))
        _check_platform(exported)
        outs = f_flat(*[as_operand(x) for x in flat])
        return exported.out_tree.unflatten(outs)
    return f_imported


def _structure_error(exported: Exported, in_tree: tree_util.PyTreeDef) -> str:
    return ("The invocation args and kwargs must have the same pytree structure as when the "
            f"function '{exported.fun_name}' was exported, but they differ: the exported "
            f"structure is {exported.in_tree} and the invocation's is {in_tree}.")

