"""``jax.ffi``: calling foreign (C) functions from traced and compiled code.

JAX's FFI hands buffers to handlers written against XLA's FFI headers (the typed FFI,
``custom_call_api_version=4``, registered with ``api_version=1``).  tinyjax has no XLA,
so it cannot run those; what it runs is XLA's *legacy CPU custom call* -- a C function

.. code-block:: c

    void fn(void* out, const void** in, const char* opaque, size_t opaque_len,
            void* status);

registered with ``register_ffi_target(name, pycapsule(lib.fn), platform="cpu",
api_version=0)`` and called with ``ffi_call(name, ..., custom_call_api_version=3,
legacy_backend_config=opaque)`` (the one legacy version XLA:CPU still runs).  ``in[i]``
points to operand ``i`` and ``out`` to the result (or, for several results, to an array
of pointers to them), each a dense buffer in the layout asked for (row-major by
default); ``status`` must not be written (tinyjax provides no
``XlaCustomCallStatusSetFailure``).  The call is a host step of the compiled program
(as ``pure_callback``; ``io_callback`` with ``has_side_effect``), on whichever device
the program runs, vectorised under ``vmap`` as ``vmap_method`` says, and not
differentiable.  Everything that needs XLA's FFI runtime raises NotImplementedError
saying so.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.callback import VMAP_METHODS, vmap_method_rule
from tinyjax.compiler.lower.registry import register_host_callback
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.errors import JaxRuntimeError
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand

__all__ = ["build_ffi_lowering_function", "ffi_call", "ffi_lowering", "include_dir",
           "pycapsule", "register_ffi_target", "register_ffi_type_id", "register_ffi_type",
           "register_ffi_target_as_batch_partitionable"]

_NO_XLA_FFI = ("tinyjax has no XLA, so handlers of XLA's typed FFI (built against its "
               "FFI headers, custom_call_api_version=4) cannot run; register a C function of "
               "XLA's legacy CPU custom-call signature with register_ffi_target(..., "
               "api_version=0) and call it with ffi_call(..., custom_call_api_version=3), or "
               "call Python with jax.pure_callback")

# target name -> address of its C function (legacy CPU custom-call signature)
_targets: dict[str, int] = {}

_LEGACY_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                     ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p)


# ---- targets -------------------------------------------------------------------------------

def pycapsule(funcptr: Any) -> Any:
    """Wrap a ctypes function pointer (``lib.fn`` of a ``ctypes.CDLL``) in a PyCapsule, the
    form :func:`register_ffi_target` takes."""
    address = ctypes.cast(funcptr, ctypes.c_void_p).value
    if not address:
        raise ValueError(f"pycapsule: {funcptr!r} is not a function pointer")
    new = ctypes.pythonapi.PyCapsule_New
    new.restype = ctypes.py_object
    new.argtypes = (ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)
    return new(address, None, None)


def _address(fn: Any) -> int:
    """The function address a PyCapsule (unnamed, as :func:`pycapsule` makes) or a ctypes
    function pointer holds."""
    if isinstance(fn, ctypes._CFuncPtr):
        return ctypes.cast(fn, ctypes.c_void_p).value
    if type(fn).__name__ == "PyCapsule":
        get = ctypes.pythonapi.PyCapsule_GetPointer
        get.restype = ctypes.c_void_p
        get.argtypes = (ctypes.py_object, ctypes.c_char_p)
        return get(fn, None)
    raise TypeError("register_ffi_target: fn must be a PyCapsule (jax.ffi.pycapsule(lib.fn)) "
                    f"or a ctypes function pointer, got {type(fn).__name__}")


def register_ffi_target(name: str, fn: Any, platform: str = "cpu", api_version: int = 1,
                        **kwargs: Any) -> None:
    """Register the C function ``fn`` (a PyCapsule or ctypes function pointer) as the FFI
    target ``name``.  tinyjax runs CPU functions of XLA's legacy custom-call signature
    (``api_version=0``; see the module doc); typed FFI handlers (``api_version=1``), other
    platforms and extra options raise NotImplementedError."""
    if kwargs:
        raise NotImplementedError(f"register_ffi_target: the options {sorted(kwargs)} are "
                                  "XLA's, which tinyjax does not have")
    if platform.lower() not in ("cpu", "host"):
        raise NotImplementedError(
            f"register_ffi_target: platform {platform!r}: tinyjax runs FFI targets on the "
            "host only (as a CPU function; a program on another device hands it host copies)")
    if api_version == 1:
        raise NotImplementedError(f"register_ffi_target({name!r}, api_version=1): "
                                  + _NO_XLA_FFI)
    if api_version != 0:
        raise ValueError(f"register_ffi_target: api_version must be 0 or 1, got {api_version}")
    if isinstance(fn, dict):
        raise NotImplementedError("register_ffi_target: a dict of FFI stages is the typed "
                                  "FFI's; " + _NO_XLA_FFI)
    _targets[name] = _address(fn)


def register_ffi_type_id(name: str, obj: Any, platform: str = "cpu") -> None:
    """Not available (nor in current JAX): use :func:`register_ffi_type`."""
    raise ValueError("register_ffi_type_id is no longer supported (as in JAX); use "
                     "register_ffi_type")


def register_ffi_type(name: str, type_registration: Any, platform: str = "cpu") -> None:
    """Custom FFI types belong to XLA's typed FFI: raises NotImplementedError."""
    raise NotImplementedError(f"register_ffi_type({name!r}): " + _NO_XLA_FFI)


def register_ffi_target_as_batch_partitionable(name: str) -> None:
    """Raises NotImplementedError: tinyjax does not partition FFI calls over devices."""
    raise NotImplementedError(
        f"register_ffi_target_as_batch_partitionable({name!r}): tinyjax runs FFI calls on "
        "the host and does not partition them over the devices of a mesh")


def include_dir() -> str:
    """Raises NotImplementedError: tinyjax ships no XLA FFI headers."""
    raise NotImplementedError("include_dir: tinyjax ships no XLA FFI headers (it has no XLA); "
                              "write the target with XLA's legacy CPU custom-call signature, "
                              "which needs none (see the tinyjax.ffi module doc)")


def ffi_lowering(call_target_name: str, **kwargs: Any) -> Callable:
    """Raises NotImplementedError: tinyjax does not lower to MLIR."""
    raise NotImplementedError(
        f"ffi_lowering({call_target_name!r}): an MLIR lowering rule, which tinyjax (no MLIR, "
        "no XLA) cannot use; call the target with jax.ffi.ffi_call instead")


def build_ffi_lowering_function(call_target_name: str, **kwargs: Any) -> Callable:
    """Raises NotImplementedError: tinyjax does not lower to MLIR."""
    raise NotImplementedError(
        f"build_ffi_lowering_function({call_target_name!r}): an MLIR lowering, which "
        "tinyjax (no MLIR, no XLA) cannot use; call the target with jax.ffi.ffi_call instead")


# ---- the host call -------------------------------------------------------------------------

def _permutation(layout: Any, ndim: int, what: str) -> tuple[int, ...]:
    """A layout (major-to-minor axis order, None for row-major) as a permutation."""
    if layout is None:
        return tuple(range(ndim))
    if not isinstance(layout, Sequence) or sorted(layout) != list(range(ndim)):
        raise ValueError(f"ffi_call: {what} layout {layout!r} is not a major-to-minor order "
                         f"of the {ndim} axes (only sequences of axes are supported)")
    return tuple(int(a) for a in layout)


class LegacyCpuCall:
    """The host step of an ``ffi_call``: numpy operands in, numpy results out, through the
    C function of ``target`` (legacy CPU custom-call signature).  Compared by value."""

    def __init__(self, target: str, result_avals: tuple[ShapedArray, ...],
                 in_perms: tuple, out_perms: tuple, aliases: tuple, opaque: bytes):
        self.target, self.result_avals = target, result_avals
        self.in_perms, self.out_perms = in_perms, out_perms
        self.aliases, self.opaque = aliases, opaque
        self._fn = _LEGACY_SIGNATURE(_targets[target])
        self._key = (target, result_avals, in_perms, out_perms, aliases, opaque)

    def batched(self, size: int) -> "LegacyCpuCall":
        """The call on operands and results with a leading batch axis of ``size``."""
        lift = lambda p: (0,) + tuple(a + 1 for a in p)  # noqa: E731 (the batch axis major)
        return LegacyCpuCall(
            self.target, tuple(ShapedArray((size,) + a.shape, a.dtype)
                               for a in self.result_avals),
            tuple(map(lift, self.in_perms)), tuple(map(lift, self.out_perms)), self.aliases,
            self.opaque)

    def __call__(self, *values: np.ndarray) -> list[np.ndarray]:
        aliased = {i: o for i, o in self.aliases}
        ins = [np.array(np.transpose(v, p), order="C", copy=True) if i in aliased
               else np.ascontiguousarray(np.transpose(v, p))
               for i, (v, p) in enumerate(zip(values, self.in_perms))]
        outs = [np.empty([a.shape[d] for d in p], a.dtype)
                for a, p in zip(self.result_avals, self.out_perms)]
        for i, o in aliased.items():  # the result buffer is the operand's (holding it)
            outs[o] = ins[i]
        in_ptrs = (ctypes.c_void_p * max(len(ins), 1))(*[a.ctypes.data for a in ins])
        out_ptrs = (ctypes.c_void_p * max(len(outs), 1))(*[a.ctypes.data for a in outs])
        out = out_ptrs[0] if len(outs) == 1 else ctypes.addressof(out_ptrs)
        status = ctypes.create_string_buffer(64)  # (never read: see the module doc)
        self._fn(out, ctypes.cast(in_ptrs, ctypes.POINTER(ctypes.c_void_p)), self.opaque,
                 len(self.opaque), ctypes.addressof(status))
        return [np.transpose(r, np.argsort(p)) for r, p in zip(outs, self.out_perms)]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LegacyCpuCall) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    def __repr__(self) -> str:
        return f"LegacyCpuCall({self.target})"


def _impl(*values, callback, **_):
    return callback(*values)


def _abstract_eval(*avals, callback, target_name, **_):
    ranks = [len(p) for p in callback.in_perms]
    if [a.ndim for a in avals] != ranks:
        raise TypeError(f"ffi_call: the call to `{target_name}` was made for {len(ranks)} "
                        f"operands of ranks {ranks}, got operands of types "
                        f"{[a.str_short() for a in avals]}")
    return list(callback.result_avals)


def _jvp(primals, tangents, *, target_name, **_):
    raise ValueError(f"The FFI call to `{target_name}` cannot be differentiated. You can use "
                     "`jax.custom_jvp` or `jax.custom_vjp` to add support.")


ffi_call_p = Primitive("ffi_call", multiple_results=True)
# (has_side_effect=True: the same call, never dropped nor merged)
ffi_call_effect_p = Primitive("ffi_call", multiple_results=True)
ffi_call_effect_p.effectful = True
for _p in (ffi_call_p, ffi_call_effect_p):
    _p.def_impl(_impl)
    _p.def_abstract_eval(_abstract_eval)
    register_host_callback(_p)
    ad.primitive_jvps[_p] = _jvp
    batching.primitive_batchers[_p] = vmap_method_rule(_p)


def _check_aliases(aliases: dict[int, int] | None, in_avals: list, result_avals: tuple,
                   in_perms: tuple, out_perms: tuple) -> tuple:
    checked = []
    for i, o in sorted((aliases or {}).items()):
        i, o = int(i), int(o)
        if not 0 <= i < len(in_avals):
            raise ValueError(f"input_output_aliases contains the mapping '{i}:{o}' with input "
                             f"index {i} outside the range [0, {len(in_avals)}).")
        if not 0 <= o < len(result_avals):
            raise ValueError(f"input_output_aliases contains the mapping '{i}:{o}' with "
                             f"output index {o} outside the range [0, {len(result_avals)}).")
        a, b = in_avals[i], result_avals[o]
        if (a.shape, a.dtype) != (b.shape, b.dtype):
            raise ValueError(f"input_output_aliases contains the mapping '{i}:{o}' referring "
                             f"to an input with abstract value {a} and an output with a "
                             f"different abstract value {b}.")
        if in_perms[i] != out_perms[o]:
            raise ValueError(f"input_output_aliases contains the mapping '{i}:{o}' referring "
                             f"to an input with layout {in_perms[i]} and an output with a "
                             f"different layout {out_perms[o]}.")
        checked.append((i, o))
    return tuple(checked)


def _result_avals(results: Sequence[Any]) -> tuple[ShapedArray, ...]:
    avals = []
    for r in results:
        if not (hasattr(r, "shape") and hasattr(r, "dtype")):
            raise ValueError("All elements of result_shape_dtypes must have shape and dtype "
                             f"attributes; got {r!r}")
        avals.append(ShapedArray(r.shape, dtypes.canonicalize_dtype(r.dtype)))
    return tuple(avals)


def ffi_call(target_name: str, result_shape_dtypes: Any, *, has_side_effect: bool = False,
             vmap_method: str | None = None, input_layouts: Sequence[Any] | None = None,
             output_layouts: Any = None, input_output_aliases: dict[int, int] | None = None,
             custom_call_api_version: int = 4,
             legacy_backend_config: str | None = None) -> Callable[..., Any]:
    """A function calling the FFI target ``target_name`` with its positional array
    arguments, returning arrays of ``result_shape_dtypes`` (one object with ``shape``
    and ``dtype``, or a sequence of them).  tinyjax calls targets of XLA's legacy CPU
    signature (``custom_call_api_version=3``, ``legacy_backend_config`` the opaque
    string); see the module doc.  ``input_layouts``/``output_layouts`` are major-to-minor
    axis orders (the buffers are transposed to them); ``input_output_aliases`` maps an
    operand to the result that starts as (and shares the buffer of) it."""
    if vmap_method not in VMAP_METHODS + (None,):
        raise ValueError(f"vmap_method must be on of the allowed methods "
                         f"{list(VMAP_METHODS) + [None]}, but got: {vmap_method}")
    if custom_call_api_version >= 4 and legacy_backend_config is not None:
        raise ValueError("The use of the legacy_backend_config parameter requires "
                         f"custom_call_api_version < 4; got {custom_call_api_version}.")
    several = isinstance(result_shape_dtypes, Sequence)
    result_avals = _result_avals(result_shape_dtypes if several else [result_shape_dtypes])
    out_layouts = output_layouts if several else (output_layouts,)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if kwargs and custom_call_api_version < 4:
            raise ValueError("The use of ffi_call attributes requires a custom call API "
                             f"version of at least 4; got api_version={custom_call_api_version}.")
        if custom_call_api_version >= 4:
            raise NotImplementedError(f"ffi_call({target_name!r}): " + _NO_XLA_FFI)
        if custom_call_api_version != 3:
            raise NotImplementedError(
                f"ffi_call({target_name!r}): custom call API version "
                f"{custom_call_api_version} is not supported on the CPU (nor by XLA:CPU); "
                "use custom_call_api_version=3 (the signature in the tinyjax.ffi module doc)")
        if target_name not in _targets:
            raise JaxRuntimeError(f"NOT_FOUND: No FFI handler registered for {target_name} "
                                  "on a platform Host (register it with "
                                  "jax.ffi.register_ffi_target(..., api_version=0))")
        operands = [as_operand(x) for x in args]
        in_avals = [get_aval(x) for x in operands]
        layouts = [None] * len(operands) if input_layouts is None else list(input_layouts)
        if len(layouts) != len(operands):
            raise ValueError(f"The number of input arguments ({len(operands)}) must equal the "
                             f"number of input layouts ({len(layouts)}).")
        outs = [None] * len(result_avals) if out_layouts is None else list(out_layouts)
        if len(outs) != len(result_avals):
            raise ValueError(f"The number of outputs ({len(result_avals)}) must equal the "
                             f"number of output layouts ({len(outs)}).")
        in_perms = tuple(_permutation(lay, a.ndim, "input")
                         for lay, a in zip(layouts, in_avals))
        out_perms = tuple(_permutation(lay, a.ndim, "output")
                          for lay, a in zip(outs, result_avals))
        aliases = _check_aliases(input_output_aliases, in_avals, result_avals, in_perms,
                                 out_perms)
        call = LegacyCpuCall(target_name, result_avals, in_perms, out_perms, aliases,
                             (legacy_backend_config or "").encode("utf-8"))
        prim = ffi_call_effect_p if has_side_effect else ffi_call_p
        results = prim.bind(*operands, callback=call, vmap_method=vmap_method,
                            target_name=target_name,
                            custom_call_api_version=custom_call_api_version)
        if not several:
            return results[0]
        return tuple(results) if isinstance(result_shape_dtypes, tuple) else list(results)

    return wrapped
