"""Where arrays live and where computations run: ``device_put``, ``device_get``, the device
of a computation's arguments, and eager operations on a device.

An eager operation whose arguments are committed to a device backend (``cuda``) runs there
as a one-equation program, compiled once per (primitive, parameters, argument types) and
cached, so notebook code keeps its arrays on the GPU.  Uncommitted host arrays and Python
scalars join any computation (copied to its device); arrays committed to two different
devices in one computation are an error, as in JAX.

``jit``'s compiled calls live here too: :class:`Compiled` (a traced and compiled function
for one input signature, run on flat buffers), :class:`CompiledCache` (a jitted function's
compiled calls, bounded: the least recently called go first), :func:`clear_caches`, and the
fallback to op-by-op evaluation where the compiler cannot lower a program.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import sys
import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tinyjax import dtypes, tree_util
from tinyjax.tree_util import physical
from tinyjax.api_util import shaped_abstractify
from tinyjax.array import ArrayImpl, on_default_device, place, placed, to_array, wrap_eager
from tinyjax.backends import Device, backend_name, get_backend, get_device, to_host
from tinyjax.config import config, debug_level, env_int
from tinyjax.core import (Primitive, ShapedArray, Tracer, escaped_tracer_error, get_aval,
                          register_apply_primitive)
from tinyjax.errors import warn_user
from tinyjax.jaxpr import ClosedJaxpr, eval_jaxpr
from tinyjax.memory import Space as MemorySpace
from tinyjax.sharding import (Mesh, NamedSharding, PartitionSpec, Sharding, get_abstract_mesh,
                              SingleDeviceSharding, as_sharding, concrete_mesh, put_sharded,
                              spec_of_axes)
from tinyjax.spmd.partition import Context, given_specs, partition, replicated
from tinyjax.spmd.runtime import MeshProgram
from tinyjax.lax.device_put import ArrayCopySemantics, copy_semantics_for, device_put_p
from tinyjax.lax.fft import fft_p
from tinyjax.lax.platform import register_platform

__all__ = ["device_put", "device_get", "block_until_ready", "computation_device",
           "run_on_device", "run_sharded", "incompatible_devices_error", "Compiled",
           "MeshCompiled", "CompiledCache", "clear_caches", "compile_or_fallback"]


def _describe(x: Any) -> str:
    where = x.sharding if isinstance(x._device, Sharding) else repr(x.device)
    return f"{x.dtype.name}[{','.join(map(str, x.shape))}] on {where}"


def incompatible_devices_error(what: str, args: Sequence[Any]) -> ValueError:
    placed_args = [(i, x) for i, x in enumerate(args)
                   if type(x) is ArrayImpl and x._device is not None]
    parts = [f"argument {i} of {what} with shape {_describe(x)}" for i, x in placed_args]
    return ValueError(f"Received incompatible devices for {what}. Got " + " and ".join(parts)
                      + ". Move arrays explicitly with tinyjax.device_put(x, device).")


def computation_device(args: Sequence[Any], what: str) -> Any:
    """Where a computation on ``args`` runs: None (no committed array), the device key the
    committed arrays live on, or -- when one is laid out over several devices -- its
    sharding (the others must then be on the same devices); ValueError when they are
    committed to different devices."""
    found = None
    for x in args:
        if type(x) is ArrayImpl and x._device is not None and x._device != found \
                and not x.is_deleted():  # (a deleted array raises when it is read)
            if found is None or _same_devices(found, x._device):
                if found is None or isinstance(x._device, Sharding):
                    found = x._device
                continue
            raise incompatible_devices_error(what, args)
    return found


def _device_list(where: Any) -> list:
    if isinstance(where, Sharding):
        return where._device_assignment
    return [get_device(where)]


def _same_devices(a: Any, b: Any) -> bool:
    """Whether two placements (device keys or shardings) cover the same devices, in the
    same order, with one of them a sharding."""
    if not (isinstance(a, Sharding) or isinstance(b, Sharding)):
        return False
    return _device_list(a) == _device_list(b)


# ---- device_put / device_get -------------------------------------------------------------------

def _put_leaf(x: Any, device: str, committed: bool) -> ArrayImpl:
    if (type(x) is ArrayImpl and x._device == device) or isinstance(x, Tracer):
        return x  # (under a transform, placement is the compiled program's)
    if not isinstance(x, ArrayImpl):
        x = to_array(x)  # dtype canonicalisation and weak types, as jnp.asarray
    return place(x, device, committed)


def device_put(x: Any, device: Any = None, *, src: Any = None, donate: bool = False,
               may_alias: Optional[bool] = None) -> Any:
    """Move every array of the pytree ``x`` to ``device``: a Device from
    ``tinyjax.devices()``, a Sharding (several devices: one block per device), a
    PartitionSpec (over the current mesh), a backend name, a memory space
    (``jax.memory.Space``: the array stays on its device, whose memory it is in), or None
    (the default device).
    ``device`` may also be a pytree of these, a prefix of ``x``.  With a device given, the
    results are committed to it; arrays already there are returned as they are."""
    # (a key array's data is placed: device_put(keys) gives key arrays)
    semantics = copy_semantics_for(donate, may_alias)
    if _is_placement(device) or device is None:
        return physical.tree_map(lambda leaf: _put_to(leaf, device, src, semantics), x)
    leaves, tree = physical.tree_flatten(x)
    return tree.unflatten([_put_to(leaf, where, src, semantics) for leaf, where in
                           zip(leaves, _broadcast_placements(device, x))])


def _is_placement(where: Any) -> bool:
    return isinstance(where, (Sharding, PartitionSpec, str, Device, MemorySpace))


def _broadcast_placements(device: Any, x: Any) -> list:
    """``device`` (a pytree prefix of ``x`` whose leaves are placements) repeated over
    ``x``'s leaves: one placement per leaf."""
    leaves = tree_util.tree_leaves(device, is_leaf=_is_placement)
    structure = tree_util.tree_structure(device, is_leaf=_is_placement)
    subtrees = structure.flatten_up_to(x)
    return [d for d, sub in zip(leaves, subtrees) for _ in tree_util.tree_leaves(sub)]


def _put_to(leaf: Any, device: Any, src: Any = None,
            semantics: ArrayCopySemantics = ArrayCopySemantics.REUSE_INPUT) -> Any:
    if isinstance(leaf, Tracer):  # (staged: within a compiled program, the identity)
        return device_put_p.bind(leaf, devices=(device,), srcs=(src,),
                                 copy_semantics=(semantics,))[0]
    if isinstance(device, MemorySpace):  # one memory per device: the array stays on its own
        return leaf if isinstance(leaf, ArrayImpl) else _put_to(leaf, None)
    if isinstance(device, (Sharding, PartitionSpec)):
        sharding = as_sharding(device)
        if isinstance(sharding, SingleDeviceSharding):
            device = sharding._device
        else:
            if not isinstance(leaf, ArrayImpl):
                leaf = to_array(leaf)
            return put_sharded(leaf, sharding)
    key = get_device(device).key if device is not None and not isinstance(device, str) \
        else (None if device is None else get_device(device).key)
    backend = backend_name(key)
    committed = device is not None or backend != "cpu"
    return _put_leaf(leaf, key if key is not None else backend, committed)


def device_get(x: Any) -> Any:
    """Every array of the pytree ``x`` as a host numpy array."""
    return tree_util.tree_map(lambda a: np.asarray(a) if isinstance(a, ArrayImpl) else a, x)


def live_arrays(platform: Optional[str] = None) -> list[ArrayImpl]:
    """Every array alive now (on ``platform``'s devices if given: 'cpu', 'gpu', ...)."""
    arrays = [a for a in gc.get_objects() if type(a) is ArrayImpl]
    if platform is None:
        return arrays
    return [a for a in arrays if a.device.platform == platform]


def effects_barrier() -> None:
    """Wait until every host callback issued so far has run.  Host callbacks run as
    their step of a program runs, before the call returns, so nothing is outstanding."""


def block_until_ready(x: Any) -> Any:
    """Wait until every array of the pytree ``x`` is computed (their devices run work
    asynchronously); returns ``x``."""
    for leaf in physical.tree_leaves(x):
        if isinstance(leaf, ArrayImpl):
            leaf.block_until_ready()
    return x


# ---- eager evaluation -------------------------------------------------------------------------

# Signatures (primitive, input types, params) whose abstract evaluation has passed: eager ops
# validate their input once per signature, so bad input gets the primitive's own error
# instead of whatever numpy would do.
_checked: set = set()


def apply_primitive(primitive: Primitive, args: Sequence[Any], params: dict) -> Any:
    """Evaluate ``primitive`` on concrete ``args`` at once (the eval trace's rule): its numpy
    implementation on host values, or, where an argument is committed to a device, there."""
    values, weak = [], []
    for x in args:
        if type(x) is ArrayImpl:
            if x._device is not None:  # committed to a device: run there
                return _apply_placed(primitive, args, params)
            values.append(x._value)
            weak.append(x.weak_type)
        elif isinstance(x, Tracer):
            raise escaped_tracer_error(x, primitive)
        elif type(x) in (bool, int, float, complex):  # as an array of its (weak) type
            values.append(np.asarray(x, shaped_abstractify(x).dtype))
            weak.append(type(x) is not bool)
        else:
            values.append(x)
            weak.append(False)
    _check(primitive, args, values, params)
    out = _host_impl(primitive, values, params)
    if config.jax_debug_nans or config.jax_debug_infs:
        _raise_on_invalid(primitive, out)
    if not args:  # a constructor (iota): its result goes to the default device
        return on_default_device(wrap_eager(out, False))
    weak_out = primitive.weak_type_rule(weak, **params)
    if primitive.multiple_results:
        if not isinstance(weak_out, (list, tuple)):
            weak_out = [weak_out] * len(out)
        return [wrap_eager(o, w) for o, w in zip(out, weak_out)]
    return wrap_eager(out, weak_out)


def invalid_values(values: Sequence[Any]) -> Optional[str]:
    """'nan' (under jax_debug_nans) or 'inf' (under jax_debug_infs) if a floating-point
    value among ``values`` is one, else None."""
    for v in values:
        v = np.asarray(v._value if type(v) is ArrayImpl else v)
        if v.dtype.kind not in "fc":
            continue
        if config.jax_debug_nans and np.isnan(v).any():
            return "nan"
        if config.jax_debug_infs and np.isinf(v).any():
            return "inf"
    return None


def _raise_on_invalid(primitive: Primitive, out: Any) -> None:
    bad = invalid_values(out if primitive.multiple_results else [out])
    if bad is not None:
        # as JAX, whose eager operations are jitted one-primitive programs
        print(f"Invalid {bad} value encountered in the output of a jax.jit function. "
              "Calling the de-optimized version.")
        raise FloatingPointError(f"invalid value ({bad}) encountered in {primitive.name}")


def _apply_placed(primitive, args, params):
    """An operation on arrays committed to a device."""
    for x in args:
        if isinstance(x, Tracer):
            raise escaped_tracer_error(x, primitive)
    device = computation_device(args, f"primitive `{primitive.name}`")
    if isinstance(device, Sharding):
        return run_sharded(primitive, args, params)
    if not get_backend(device).host:
        return run_on_device(primitive, args, params, device)
    host = [x._value if type(x) is ArrayImpl else x for x in args]
    _check(primitive, args, host, params)
    out = _host_impl(primitive, host, params)
    weak = primitive.weak_type_rule([get_aval(x).weak_type for x in args], **params)
    if primitive.multiple_results:
        weak = weak if isinstance(weak, (list, tuple)) else [weak] * len(out)
        return [placed(np.asarray(o), device, w) for o, w in zip(out, weak)]
    return placed(np.asarray(out), device, weak)


def _check(primitive, args, values, params) -> None:
    try:
        key = (primitive, tuple((getattr(v, "shape", ()), getattr(v, "dtype", type(v)))
                                for v in values), tuple(params.items()))
        if key in _checked:
            return
    except TypeError:  # unhashable params: check every time
        key = None
    primitive.abstract_eval(*map(get_aval, args), **params)
    if key is not None:
        if len(_checked) > 100_000:
            _checked.clear()
        _checked.add(key)


register_apply_primitive(apply_primitive)
register_platform(lambda: backend_name(None))   # lax.platform_dependent's choice


# ---- library calls on stacks of matrices -------------------------------------------------------

# A library-call primitive (linear algebra) on a stack of at least this many matrices runs
# through the CPU backend's routine, whose loop over the stack is in C, instead of its
# implementation's one SciPy call per matrix.
LIBRARY_STACK = 16
_routines: dict = {}


def _host_impl(primitive: Primitive, values: list, params: dict) -> Any:
    """``primitive`` on host values: its implementation, or for a stack of matrices the CPU
    backend's library routine (the same LAPACK routines, looped over in C); an FFT always
    through the CPU backend's routine (the one a jitted program calls)."""
    shape = np.shape(values[0]) if values else ()
    stack = len(shape) >= 3 and int(np.prod(shape[:-2])) >= LIBRARY_STACK
    if not stack and primitive is not fft_p:
        return primitive.impl(*values, **params)
    from tinyjax.compiler.lower.linalg import library_calls  # registers the library calls
    if primitive not in library_calls:
        return primitive.impl(*values, **params)
    avals = [get_aval(v) for v in values]
    out_avals = primitive.abstract_eval(*avals, **params)
    out_avals = list(out_avals) if primitive.multiple_results else [out_avals]
    try:
        key = (primitive, tuple(avals), tuple(params.items()))
        impl = _routines.get(key)
    except TypeError:  # unhashable params
        key, impl = None, None
    if impl is None:
        try:
            impl = get_backend("cpu").library_call(primitive, avals, out_avals, params)
        except (NotImplementedError, RuntimeError, OSError):  # no C compiler
            return primitive.impl(*values, **params)
        if key is not None:
            if len(_routines) > 1024:
                _routines.clear()
            _routines[key] = impl
    outs = [np.empty(a.shape, a.dtype) for a in out_avals]
    impl([np.asarray(v) for v in values], outs)
    return outs if primitive.multiple_results else outs[0]


# ---- eager operations on a device --------------------------------------------------------------

_cache: "OrderedDict[Any, Any]" = OrderedDict()
_CACHE_SIZE = 4096


def _compile_op(primitive, params: dict, avals: list[ShapedArray], backend: str):
    from tinyjax.interpreters.staging import trace_to_closed_jaxpr

    def op(*xs):
        out = primitive.bind(*xs, **params)
        return list(out) if primitive.multiple_results else [out]
    closed = trace_to_closed_jaxpr(op, avals)
    return compile_or_fallback(closed, backend), [a.weak_type for a in closed.out_avals]


def _signature(x: Any) -> Any:
    if type(x) is ArrayImpl:
        b = x._buf if x._device is not None else x._value
        return (b.shape, b.dtype, x.weak_type)
    return get_aval(x)


def _signature_and_layout(x: Any) -> Any:
    sig = _signature(x)
    return (sig, x._device) if type(x) is ArrayImpl and isinstance(x._device, Sharding) \
        else sig


def run_sharded(primitive, args: Sequence[Any], params: dict):
    """Evaluate one primitive application eagerly on arrays laid out over several devices:
    the one-equation program partitioned over their mesh, compiled once per (primitive,
    parameters, argument types and layouts) and run on every device."""
    try:
        key = (primitive, tuple(params.items()), "mesh",
               tuple(map(_signature_and_layout, args)))
        hash(key)
    except TypeError:
        key = None
    entry = _cache.get(key) if key is not None else None
    if entry is None:
        def op(*xs):
            out = primitive.bind(*xs, **params)
            return list(out) if primitive.multiple_results else [out]
        from tinyjax.interpreters.staging import trace_to_closed_jaxpr
        closed = trace_to_closed_jaxpr(op, [get_aval(x) for x in args])
        entry = MeshCompiled(closed, None, list(args))
        if key is not None:
            _cache[key] = entry
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    outs = entry.run_flat(list(args))
    return outs if primitive.multiple_results else outs[0]


def run_on_device(primitive, args: Sequence[Any], params: dict, backend: str):
    """Evaluate one primitive application eagerly on ``backend`` (a device backend): the
    compiled single-op program is cached by primitive, parameters and argument types."""
    try:
        key = (primitive, tuple(params.items()), backend, tuple(map(_signature, args)))
        hash(key)
    except TypeError:  # unhashable parameters: compiled for this call only
        key = None
    entry = _cache.get(key) if key is not None else None
    if entry is None:
        entry = _compile_op(primitive, params, [get_aval(x) for x in args], backend)
        if key is not None:
            _cache[key] = entry
            if len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    exe, weak = entry
    values = [x._buf if type(x) is ArrayImpl and x._device == backend else
              x._value if type(x) is ArrayImpl else x for x in args]
    outs = [placed(o, backend, w) for o, w in zip(exe(*values), weak)]
    return outs if primitive.multiple_results else outs[0]


# ---- jit's compiled calls ------------------------------------------------------------------

def device_key():
    """The default device setting, cheaply (raw, for cache keys only): jax_default_device,
    else tinyjax_device."""
    return config.jax_default_device or config.tinyjax_device


def leaf_signature(x: Any) -> tuple:
    if type(x) is ArrayImpl:
        if isinstance(x._device, Sharding):  # the layout is part of what a program assumes
            return (x.shape, x.dtype, x.weak_type, x._device)
        return (x.shape, x.dtype, x.weak_type)
    aval = shaped_abstractify(x)
    return (aval.shape, aval.dtype, aval.weak_type)


def leaf_value(x: Any, backend: Any) -> Any:
    """The buffer (or host value, copied in by the executable) of an argument; for a
    program over a mesh (``backend`` None) the argument itself."""
    if backend is None:
        return x
    if type(x) is ArrayImpl:
        return x._buf if x._device == backend else x._value
    if type(x) in dtypes.python_scalar_dtypes:  # (JAX's OverflowError for a huge int)
        return dtypes.python_scalar_array(x, shaped_abstractify(x).dtype)
    return np.asarray(x, dtype=shaped_abstractify(x).dtype)


class Compiled:
    """A traced and compiled function for one input signature."""

    def __init__(self, closed: ClosedJaxpr, out_tree: tree_util.PyTreeDef, device: str,
                 donated: tuple[int, ...] = ()):
        """``donated``: the flat arguments the caller donates (``jit``'s
        ``donate_argnums``/``donate_argnames``); ``self.donated`` keeps those an output
        can take (JAX's warning names the others, which stay usable)."""
        self.last_used = 0  # (CompiledCache's clock)
        self.ref_info = None  # (jit's: the mutable array references it reads and writes)
        self.closed = closed
        self.out_tree = out_tree
        self.device = device
        self.donated = _usable_donations(closed, donated)
        self.out_weak = [a.weak_type for a in closed.out_avals]
        # float0 outputs (tangents of integers) are numpy arrays, never device arrays (JAX)
        self.out_float0 = [a.dtype == dtypes.float0 for a in closed.out_avals]
        start = time.perf_counter()
        self.executable = compile_or_fallback(closed, device)
        self.compile_time = time.perf_counter() - start
        # outputs on the host's first device are plain arrays; on another device (or a
        # device backend) they are committed to it
        self.on_host = get_backend(device).host and ":" not in device

    def run_flat(self, flat_values: Sequence[Any]) -> list[ArrayImpl]:
        outs = self.executable(*flat_values)
        return self.wrap_outputs(outs)

    def run_donating(self, flat_args: Sequence[Any]) -> list[ArrayImpl]:
        """Run on the flat arguments (Arrays or host values), deleting the donated Arrays;
        a donated host buffer no one else holds may become an output's (see the
        executable's ``alias_plan``)."""
        values = [leaf_value(x, self.device) for x in flat_args]  # (deleted: an error)
        given = []
        for i in self.donated:
            x = flat_args[i]
            if type(x) is ArrayImpl:
                x.delete()
                if self.on_host and _sole_reference(values, i):
                    given.append(i)
        return self.wrap_outputs(self.executable(*values, donated=tuple(given)))

    def run_updating(self, flat_args: Sequence[Any], updates: dict[int, int]) -> list:
        """Run on the flat arguments, where argument ``i`` of ``updates`` is an array held
        only by the caller (an array reference's value, to be replaced by output
        ``updates[i]``): on the host that output may be written into its memory, so the
        reference keeps its buffer (the caller must drop the argument afterwards)."""
        values = [leaf_value(x, self.device) for x in flat_args]
        given = tuple((i, k) for i, k in updates.items()
                      if self.on_host and _held_only_by_array(values, i))
        return self.wrap_outputs(self.executable(*values, donated=given))

    def wrap_outputs(self, outs: Sequence[Any]) -> list[ArrayImpl]:
        wrap = (lambda o, w: wrap_eager(o, w)) if self.on_host else \
            (lambda o, w: placed(o, self.device, w))
        return [np.zeros(np.shape(o), dtypes.float0) if f0 else wrap(o, w)
                for o, w, f0 in zip(outs, self.out_weak, self.out_float0)]

    def as_text(self) -> str:
        return self.closed.pretty_print()

    def run_leaves(self, flat_args: Sequence[Any]) -> list[ArrayImpl]:
        """Run on the flat arguments (Arrays or host values), donating as compiled to."""
        if self.donated:
            return self.run_donating(flat_args)
        return self.run_flat([leaf_value(x, self.device) for x in flat_args])

    def __call__(self, *args, **kwargs):
        flat, _ = physical.tree_flatten((args, kwargs))
        return tree_util.tree_unflatten(self.out_tree, self.run_leaves(flat))

    def kernels(self) -> list:
        return self.executable.kernels()

    def source(self) -> str:
        return self.executable.source()

    @property
    def num_kernels(self) -> int:
        return self.executable.num_kernels


def mesh_of(placements: Sequence[Any], jaxpr: Any = None) -> Optional[Mesh]:
    """The mesh a computation runs on: that of a ``shard_map`` in ``jaxpr``, else of the
    first NamedSharding among ``placements`` (shardings, arrays or None), else the current
    mesh (``jax.set_mesh``)."""
    if jaxpr is not None:
        mesh = mesh_of_jaxpr(jaxpr)
        if mesh is not None:
            return mesh
    for p in placements:
        s = p._device if type(p) is ArrayImpl else p
        if isinstance(s, NamedSharding) and isinstance(s.mesh, Mesh):
            return s.mesh
    return concrete_mesh()


def runs_on_mesh(closed: ClosedJaxpr, placements: Sequence[Any],
                 out_shardings: Optional[Sequence[Any]]) -> bool:
    """Whether a traced function must be partitioned over a mesh: it has a ``shard_map``,
    or an argument or a result is laid out over several devices."""
    if mesh_of_jaxpr(closed.jaxpr) is not None:
        return True
    for p in list(placements) + list(out_shardings or []):
        s = p._device if type(p) is ArrayImpl else p
        if isinstance(s, Sharding) and not isinstance(s, SingleDeviceSharding):
            return True
    return False


def mesh_of_jaxpr(jaxpr: Any) -> Optional[Mesh]:
    """The mesh of the first ``shard_map`` or sharding constraint of ``jaxpr``, if any."""
    for eqn in jaxpr.eqns:
        mesh = eqn.params.get("mesh")
        sharding = eqn.params.get("sharding")
        if isinstance(sharding, NamedSharding):
            mesh = sharding.mesh
        if isinstance(mesh, Mesh):
            return mesh
    return None


def layout_on(placement: Any, mesh: Mesh, ndim: int) -> Optional[tuple]:
    """The layout (mesh axes per dimension) a sharding or an array has on ``mesh`` (None:
    it says nothing about it)."""
    s = placement._device if type(placement) is ArrayImpl else placement
    if isinstance(s, NamedSharding) and s.spec.unreduced and type(placement) is ArrayImpl:
        raise NotImplementedError(
            f"computations on arrays whose blocks are terms of sums (unreduced mesh axes: "
            f"{s.spec}) are not implemented; jax.reshard(x, P(...)) without unreduced axes "
            f"sums them first")
    if isinstance(s, NamedSharding) and mesh.same_grid(s.mesh):
        return s.spec.normalized(ndim)
    return None


def _typed_result(mesh: Mesh, layout: tuple, aval: Any, types: Any) -> tuple:
    """The (mesh, spec) of a result laid out as ``layout`` on ``mesh``: over the mesh its
    type names -- these devices with that mesh's axis types, or, for another shape of as
    many devices (``use_abstract_mesh`` inside ``jit``), these devices reshaped to it --
    else ``mesh`` with the axis types of ``types``."""
    named = aval.mesh or types
    if aval.spec and named is not None and named.shape_tuple != mesh.shape_tuple and \
            Context(mesh).translate(named, tuple(aval.spec)) == tuple(layout):
        devices = mesh.devices.reshape(named.axis_sizes)
        return Mesh(devices, named.axis_names, named.axis_types), \
            spec_of_axes(aval.spec, full_rank=True)
    out = mesh.retyped_as(named)
    return out, spec_of_axes(layout, bool(out.explicit_axes))


def _axis_types_of(placements: Sequence[Any], mesh: Mesh) -> Any:
    """The mesh (axis types) that results whose types name no mesh lie on: the arguments'
    (over ``mesh``'s devices), else the current one."""
    for p in placements:
        s = p._device if type(p) is ArrayImpl else p
        if isinstance(s, NamedSharding) and mesh.same_grid(s.mesh):
            return s.mesh
    return get_abstract_mesh()


_HLO_NAMES = {"psum": "all-reduce", "pmax": "all-reduce", "pmin": "all-reduce",
              "all_gather": "all-gather", "reduce_scatter": "reduce-scatter",
              "ppermute": "collective-permute", "all_to_all": "all-to-all"}


class MeshCompiled:
    """A traced function for one input signature partitioned over a mesh and compiled for
    each of its devices (:mod:`tinyjax.spmd`).  ``in_placements`` are the flat arguments
    (or the shardings ``jit(in_shardings=)`` gives them); ``out_shardings`` the flat
    shardings wanted for the outputs (None: as the partitioning leaves them)."""

    device = None  # arguments are handed over as arrays (see leaf_value)
    on_host = False
    donated: tuple = ()  # (donation is not done over meshes: nothing is deleted)
    ref_info = None

    def __init__(self, closed: ClosedJaxpr, out_tree: Any, in_placements: Sequence[Any],
                 out_shardings: Optional[Sequence[Any]] = None):
        self.closed, self.out_tree = closed, out_tree
        start = time.perf_counter()
        mesh = mesh_of(list(in_placements) + list(out_shardings or []), closed.jaxpr)
        if mesh is None:
            raise ValueError("a computation over arrays laid out over several devices needs "
                             "their mesh")
        self.mesh = mesh
        in_layouts = [layout_on(p, mesh, a.ndim) or replicated(a.ndim)
                      for p, a in zip(in_placements, closed.in_avals)]
        wanted = None
        if out_shardings is not None:
            wanted = [layout_on(s, mesh, a.ndim) for s, a in zip(out_shardings,
                                                                  closed.out_avals)]
        local, out_layouts = partition(closed, mesh, in_layouts, wanted)
        self.local = local
        # each result over the mesh with the axis types its type has (auto_axes and
        # explicit_axes retype the axes of a mesh)
        types = _axis_types_of(in_placements, mesh)
        typed = [_typed_result(mesh, lay, a, types) for lay, a in
                 zip(out_layouts, closed.out_avals)]
        out_meshes, out_specs = [m for m, _ in typed], [spec for _, spec in typed]
        for k, spec in enumerate(given_specs(closed.jaxpr)):  # as the program says
            if spec is not None and spec.normalized(len(out_layouts[k])) == out_layouts[k]:
                out_specs[k] = spec
        for k, s in enumerate(out_shardings or []):  # as asked for, where given
            if isinstance(s, NamedSharding) and mesh.same_grid(s.mesh):
                out_specs[k], out_meshes[k] = s.spec, s.mesh
        self.program = MeshProgram(local, mesh, [spec_of_axes(lay) for lay in in_layouts],
                                   [NamedSharding(m, spec) for m, spec in
                                    zip(out_meshes, out_specs)], closed.out_avals)
        self.out_shardings = out_shardings
        for d in self.program.devices:
            self.program.executable(d)
        self.compile_time = time.perf_counter() - start

    def run_flat(self, flat_values: Sequence[Any]) -> list[ArrayImpl]:
        outs = self.program(flat_values)
        if self.out_shardings is not None:
            outs = [o if s is None or (isinstance(s, NamedSharding) and
                                       self.mesh.same_grid(s.mesh))
                    else _put_to(o, s) for o, s in zip(outs, self.out_shardings)]
        return outs

    run_leaves = run_flat  # the arguments themselves, as arrays or host values

    def __call__(self, *args, **kwargs):
        flat, _ = physical.tree_flatten((args, kwargs))
        return tree_util.tree_unflatten(self.out_tree, self.run_flat(flat))

    input_shardings = property(lambda self: list(self.program.in_shardings))
    output_shardings = property(lambda self: list(self.program.out_shardings))

    def as_text(self) -> str:
        return self.local.pretty_print()

    def kernels(self) -> list:
        return self.program.executable(self.program.devices[0]).kernels()

    def source(self) -> str:
        """The per-device program's source, after a header naming the mesh and its
        collectives (in XLA's spelling: all-reduce, all-gather, ...)."""
        header = [f"// one program per device of {self.mesh}"]
        header += [f"// {_HLO_NAMES.get(e.primitive.name, e.primitive.name)}("
                   f"{e.params.get('axes', e.params.get('axis_name'))})"
                   for e in self.local.jaxpr.eqns if e.primitive.name in _HLO_NAMES]
        return "\n".join(header) + "\n" + \
            self.program.executable(self.program.devices[0]).source()

    @property
    def num_kernels(self) -> int:
        return self.program.num_kernels


def _sole_reference(values: list, i: int) -> bool:
    """Whether ``values[i]`` is a host array that owns its memory and that nothing but the
    list refers to (no Array, view, or user variable shares it): its memory may be reused."""
    v = values[i]
    return type(v) is np.ndarray and v.base is None and v.flags.c_contiguous and \
        sys.getrefcount(values[i]) == 3  # the list, v, and getrefcount's argument


def _held_only_by_array(values: list, i: int) -> bool:
    """Whether ``values[i]`` is a host buffer that only its array and ``values`` hold."""
    v = values[i]
    return type(v) is np.ndarray and v.base is None and v.flags.c_contiguous and \
        sys.getrefcount(values[i]) == 4  # the array, the list, v, getrefcount's argument


def _usable_donations(closed: ClosedJaxpr, donated: tuple[int, ...]) -> tuple[int, ...]:
    """The donated arguments an output can take (each output one, of the same shape and
    dtype, in order), as JAX decides when it compiles; JAX's warning for the others."""
    outs = [(a.shape, a.dtype) for a in closed.out_avals]
    usable, unusable = [], []
    for i in donated:
        a = closed.in_avals[i]
        if (a.shape, a.dtype) in outs:
            outs.remove((a.shape, a.dtype))
            usable.append(i)
        else:
            unusable.append(f"{a.dtype.name}[{','.join(map(str, a.shape))}]")
    if unusable:
        warn_user("Some donated buffers were not usable: " + ", ".join(unusable) + ".\n"
                  "See an explanation at https://docs.jax.dev/en/latest/faq.html#"
                  "buffer-donation.")
    return tuple(usable)


class EagerExecutable:
    """Fallback when the compiler cannot lower a jaxpr: evaluate it op by op."""

    num_kernels = 0

    def __init__(self, closed: ClosedJaxpr, reason: str, device: str = "cpu"):
        self.closed = closed
        self.reason = reason
        self.device = device

    def __call__(self, *flat_values, donated: tuple[int, ...] = ()):
        """(``donated`` buffers are not reused here.)"""
        args = [wrap_eager(to_host(v)) for v in flat_values]
        consts = [np.asarray(c) if type(c) is ArrayImpl else c for c in self.closed.consts]
        outs = eval_jaxpr(self.closed.jaxpr, consts, *args)
        outs = [np.asarray(o._value if type(o) is ArrayImpl else o) for o in outs]
        backend = get_backend(self.device)
        return outs if backend.host else [backend.asbuffer(o) for o in outs]

    def kernels(self) -> list:
        return []

    def source(self) -> str:
        return f"// not compiled ({self.reason}); evaluated op by op\n"


def compile_for_device(closed: ClosedJaxpr, device: Device):
    """``closed`` compiled for ``device`` by tinyjax's compiler."""
    from tinyjax.compiler.program import compile_jaxpr  # the compiler loads on first use
    return compile_jaxpr(closed, get_backend(device))


# what every compilation of a one-device program calls: compile_for_device, or an entry point
# registered in its place (a mesh program's per-device programs are compiled by spmd.runtime)
_compile_entry: Callable[[ClosedJaxpr, Device], Any] = compile_for_device


def register_compile_entry(entry: Callable[[ClosedJaxpr, Device], Any]) -> None:
    """Make ``entry(closed_jaxpr, device)`` the function every compilation goes through
    (it calls :func:`compile_for_device` in turn); JAX's private compile function that
    Chex intercepts is registered here by :mod:`tinyjax.compat`."""
    global _compile_entry
    _compile_entry = entry


def compile_or_fallback(closed: ClosedJaxpr, device: str):
    """``closed`` compiled for ``device``, or evaluated op by op where the compiler has no
    lowering for it."""
    try:
        return _compile_entry(closed, get_device(device))
    except NotImplementedError as e:
        if debug_level():
            print(f"jit: falling back to eager evaluation: {e}")
        return EagerExecutable(closed, str(e), device)


# ---- jit's caches of compiled calls ----------------------------------------------------

_tick = itertools.count(1).__next__  # a clock for least-recently-used: one tick per use
_caches: "weakref.WeakSet[CompiledCache]" = weakref.WeakSet()
_caches_lock = threading.Lock()


class CompiledCache:
    """One jitted function's compiled calls: input signature -> :class:`Compiled`
    (``get``, ``cache[key] = compiled``), and ``runners``: the fast path's prepared runners
    (fast key -> a function with a ``compiled`` attribute, made from an entry).

    Bounded: at most ``config.tinyjax_executables_per_function`` entries, and at most
    ``config.tinyjax_executables_total`` over every jitted function of the process (unset:
    ``$TINYJAX_EXECUTABLES_PER_FUNCTION``, 128, and ``$TINYJAX_EXECUTABLES_TOTAL``, 512).  Past
    a bound the least recently called entry goes, with its runners; its executable is
    released when the last call running it returns, and with it the compiled library no
    other executable uses (unloaded).  A runner marks its entry used on every call."""

    def __init__(self) -> None:
        self._entries: dict = {}
        self.runners: dict = {}
        with _caches_lock:
            _caches.add(self)

    def get(self, key: Any, default: Any = None) -> Any:
        compiled = self._entries.get(key)
        if compiled is None:
            return default
        compiled.last_used = _tick()
        return compiled

    def __setitem__(self, key: Any, compiled: Compiled) -> None:
        compiled.last_used = _tick()
        with _caches_lock:
            self._entries[key] = compiled
            self._bound()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Any) -> bool:
        return key in self._entries

    def add_runner(self, fast_key: Any, runner: Callable, compiled: Compiled) -> Callable:
        """Keep ``runner`` (made from ``compiled``, an entry) for calls keyed ``fast_key``."""
        runner.compiled = compiled
        self.runners[fast_key] = runner
        return runner

    def clear(self) -> None:
        with _caches_lock:
            self._entries.clear()
            self.runners.clear()

    def _evict(self, key: Any) -> None:
        victim = self._entries.pop(key)
        for fast_key, runner in list(self.runners.items()):
            if runner.compiled is victim:
                del self.runners[fast_key]

    def _bound(self) -> None:
        """Evict least recently used entries beyond the bounds (``_caches_lock`` held)."""
        per_function, limit = _bounds()
        while len(self._entries) > per_function:
            self._evict(min(self._entries, key=lambda k: self._entries[k].last_used))
        caches = list(_caches)
        total = sum(len(c._entries) for c in caches)
        while total > limit:
            owner, key = min(((c, k) for c in caches for k in c._entries),
                             key=lambda ck: ck[0]._entries[ck[1]].last_used)
            owner._evict(key)
            total -= 1


def _bounds() -> tuple[int, int]:
    """(per function, in total): the flags, or where unset, their environment variables."""
    per_function = config.tinyjax_executables_per_function
    total = config.tinyjax_executables_total
    return (env_int("TINYJAX_EXECUTABLES_PER_FUNCTION") if per_function is None
            else per_function,
            env_int("TINYJAX_EXECUTABLES_TOTAL") if total is None else total)


def clear_caches() -> None:
    """Drop every compiled program (JAX's ``jax.clear_caches``): every jitted function's
    compiled calls and the compiled eager operations of devices.  Their executables are
    released (once calls running them return) and the compiled libraries no longer used are
    unloaded; the disk cache is kept (a later call recompiles nothing that is there)."""
    with _caches_lock:
        caches = list(_caches)
    for c in caches:
        c.clear()
    _cache.clear()
    _checked.clear()
    gc.collect()  # executables in reference cycles go now, with their libraries
    _return_free_heap()


def _return_free_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere
    nothing): what the released executables used leaves the process's resident memory."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
