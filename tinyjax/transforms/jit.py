"""``jit``: trace once per input signature, compile, cache, and run.

A jitted function is traced to a jaxpr once per (pytree structure, static
arguments, input avals, device), compiled by :mod:`tinyjax.lowering` into a list of
kernel launches, and cached; later calls with the same signature take the fast
path: flatten, one dict lookup, launch, wrap the outputs.  Called inside another
transform (grad, vmap, an outer jit), a jitted function is traced through inline,
so the enclosing transform sees — and the compiler fuses — the whole program.
"""
from __future__ import annotations

import os
import time
from functools import update_wrapper
from typing import Any, Callable, Sequence

import numpy as np

from tinyjax import core, tree_util
from tinyjax.array import Array, placed, wrap_eager
from tinyjax.config import config
from tinyjax.jaxpr import ClosedJaxpr, cse_jaxpr, dce_jaxpr, eval_jaxpr
from tinyjax.transforms.placement import computation_device
from tinyjax.transforms.staging import (argument_origins, shaped_abstractify,
                                        trace_to_closed_jaxpr)

_state = core._state
_eval_trace = core.eval_trace
_new_array = object.__new__
# os.environ's underlying bytes mapping (POSIX): a lookup without encoding the key
_environ_data = getattr(os.environ, "_data", None)
if not isinstance(_environ_data, dict) or not all(isinstance(k, bytes) for k in
                                                  list(_environ_data)[:1]):
    _environ_data = None


def _device_key():
    """The TINYJAX_DEVICE setting, cheaply (raw, for cache keys only)."""
    if _environ_data is not None:
        return _environ_data.get(b"TINYJAX_DEVICE")
    return os.environ.get("TINYJAX_DEVICE")


def _normalize_argnums(argnums, name: str) -> tuple[int, ...]:
    if argnums is None:
        return ()
    if isinstance(argnums, int):
        return (argnums,)
    return tuple(int(a) for a in argnums)


def _hashable_static(value: Any) -> Any:
    try:
        hash(value)
    except TypeError as e:
        raise ValueError(
            "Non-hashable static arguments are not supported. An error occurred while "
            f"trying to hash an object of type {type(value)}, {value!r}. The error "
            f"was:\nTypeError: {e}") from None
    return value


def _leaf_signature(x: Any) -> tuple:
    if type(x) is Array:
        return (x.shape, x.dtype, x.weak_type)
    aval = shaped_abstractify(x)
    return (aval.shape, aval.dtype, aval.weak_type)


def _leaf_value(x: Any, backend: str) -> Any:
    """The buffer (or host value, copied in by the executable) of an argument."""
    if type(x) is Array:
        return x._buf if x._device == backend else x._value
    return np.asarray(x, dtype=shaped_abstractify(x).dtype)


class Compiled:
    """A traced and compiled function for one input signature."""

    def __init__(self, closed: ClosedJaxpr, out_tree: tree_util.PyTreeDef, device: str):
        self.closed = closed
        self.out_tree = out_tree
        self.device = device
        self.out_weak = [a.weak_type for a in closed.out_avals]
        start = time.perf_counter()
        self.executable = _compile(closed, device)
        self.compile_time = time.perf_counter() - start
        # outputs on the host are plain arrays; on a device they are committed to it
        from tinyjax.devices import get_backend
        self.on_host = get_backend(device).host

    def run_flat(self, flat_values: Sequence[Any]) -> list[Array]:
        outs = self.executable(*flat_values)
        if self.on_host:
            return [wrap_eager(o, w) for o, w in zip(outs, self.out_weak)]
        return [placed(o, self.device, w) for o, w in zip(outs, self.out_weak)]

    def __call__(self, *args, **kwargs):
        flat, _ = tree_util.tree_flatten((args, kwargs))
        return tree_util.tree_unflatten(self.out_tree, self.run_flat(
            [_leaf_value(x, self.device) for x in flat]))

    def as_text(self) -> str:
        return self.closed.pretty_print()

    def kernels(self) -> list:
        return self.executable.kernels()

    def source(self) -> str:
        return self.executable.source()

    @property
    def num_kernels(self) -> int:
        return self.executable.num_kernels


class EagerExecutable:
    """Fallback when the compiler cannot lower a jaxpr: evaluate it op by op."""

    num_kernels = 0

    def __init__(self, closed: ClosedJaxpr, reason: str, device: str = "cpu"):
        self.closed = closed
        self.reason = reason
        self.device = device

    def __call__(self, *flat_values):
        from tinyjax.devices import get_backend, to_host
        args = [wrap_eager(to_host(v)) for v in flat_values]
        consts = [np.asarray(c) if type(c) is Array else c for c in self.closed.consts]
        outs = eval_jaxpr(self.closed.jaxpr, consts, *args)
        outs = [np.asarray(o._value if type(o) is Array else o) for o in outs]
        backend = get_backend(self.device)
        return outs if backend.host else [backend.asbuffer(o) for o in outs]

    def kernels(self) -> list:
        return []

    def source(self) -> str:
        return f"// not compiled ({self.reason}); evaluated op by op\n"


def _compile(closed: ClosedJaxpr, device: str):
    try:
        from tinyjax.lowering import compile_jaxpr
    except ImportError:
        return EagerExecutable(closed, "the compiler is not available", device)
    try:
        return compile_jaxpr(closed, device)
    except NotImplementedError as e:
        if os.environ.get("DEBUG"):
            print(f"jit: falling back to eager evaluation: {e}")
        return EagerExecutable(closed, str(e), device)


class Lowered:
    """The result of ``jit(f).lower(*args)``: the traced program, ready to compile."""

    def __init__(self, wrapped: "JitWrapped", args, kwargs):
        self._wrapped = wrapped
        self._args, self._kwargs = args, kwargs
        self._compiled: Compiled | None = None

    def compile(self) -> Compiled:
        if self._compiled is None:
            self._compiled = self._wrapped._get_compiled(self._args, self._kwargs)[0]
        return self._compiled

    def as_text(self) -> str:
        return self.compile().as_text()

    def kernels(self) -> list:
        return self.compile().kernels()

    def source(self) -> str:
        return self.compile().source()


class JitWrapped:
    """A jit-compiled function (``tinyjax.jit(f)``)."""

    def __init__(self, fun: Callable, static_argnums, static_argnames, donate_argnums,
                 device):
        update_wrapper(self, fun, updated=())  # first: it copies attributes of fun
        self.fun = fun
        self.static_argnums = _normalize_argnums(static_argnums, "static_argnums")
        self.static_argnames = (static_argnames,) if isinstance(static_argnames, str) \
            else tuple(static_argnames or ())
        self.donate_argnums = _normalize_argnums(donate_argnums, "donate_argnums")
        self.device = device
        self.cache: dict[Any, Compiled] = {}
        # the fast path: calls whose arguments are all positional Arrays, keyed by
        # (device, *(shape, dtype, weak_type) per argument) -> a prepared runner
        self._fast: dict[Any, Callable] = {}

    def _split(self, args: tuple, kwargs: dict):
        n = len(args)
        static_nums = tuple(i % n if i < 0 else i for i in self.static_argnums)
        for i in static_nums:
            if i >= n:
                raise ValueError(f"jitted function has static_argnums={self.static_argnums}"
                                 f" but was called with only {n} positional arguments.")
        static = tuple((i, _hashable_static(args[i])) for i in static_nums)
        static_kw = tuple(sorted((k, _hashable_static(v)) for k, v in kwargs.items()
                                 if k in self.static_argnames))
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static_nums)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        return static, static_kw, dyn_args, dyn_kwargs

    def _device_name(self, flat: Sequence[Any]) -> str:
        """Where to run: ``jit(device=)``, else where the committed arguments are, else
        the default device."""
        from tinyjax.devices import backend_name
        if self.device is not None:
            return backend_name(self.device)
        name = getattr(self.fun, "__name__", "fun")
        return computation_device(flat, f"jit({name})") or backend_name(None)

    def _get_compiled(self, args: tuple, kwargs: dict):
        static, static_kw, dyn_args, dyn_kwargs = self._split(args, kwargs)
        flat, in_tree = tree_util.tree_flatten((dyn_args, dyn_kwargs))
        device = self._device_name(flat)
        # the matmul precision flag is read when lowering: part of what a compile depends on
        key = (in_tree, static, static_kw, device, config.jax_default_matmul_precision,
               tuple(_leaf_signature(x) for x in flat))
        compiled = self.cache.get(key)
        if compiled is None:
            from tinyjax.devices import devices
            devices(device)  # RuntimeError naming the platforms present if it has none
            compiled = self._trace_and_compile(args, kwargs, static, flat, in_tree, device)
            self.cache[key] = compiled
        return compiled, flat

    def _trace_and_compile(self, args, kwargs, static, flat, in_tree, device) -> Compiled:
        static_map = dict(static)
        out_store: list = []

        def flat_fun(*flat_args):
            dyn_args, dyn_kwargs = tree_util.tree_unflatten(in_tree, flat_args)
            it = iter(dyn_args)
            full = [static_map[i] if i in static_map else next(it)
                    for i in range(len(args))]
            full_kwargs = dict(dyn_kwargs)
            full_kwargs.update({k: kwargs[k] for k in kwargs if k in self.static_argnames})
            out = self.fun(*full, **full_kwargs)
            flat_out, out_tree = tree_util.tree_flatten(out)
            out_store.append(out_tree)
            return flat_out

        in_avals = [shaped_abstractify(x) for x in flat]
        origins = argument_origins(self.fun, tuple(a for i, a in enumerate(args)
                                                   if i not in static_map), {})
        closed = trace_to_closed_jaxpr(flat_fun, in_avals, origins)
        jaxpr, _ = dce_jaxpr(cse_jaxpr(closed.jaxpr))
        kept = set(jaxpr.constvars)
        consts = [c for v, c in zip(closed.jaxpr.constvars, closed.consts) if v in kept]
        closed = ClosedJaxpr(jaxpr, consts)
        compiled = Compiled(closed, out_store[0], device)
        if os.environ.get("DEBUG"):
            name = getattr(self.fun, "__name__", "fun")
            print(f"jit({name}): {compiled.num_kernels} kernels, compiled in "
                  f"{compiled.compile_time * 1e3:.1f} ms")
        return compiled

    def __call__(self, *args, **kwargs):
        if _state.trace is not _eval_trace:
            return self.fun(*args, **kwargs)  # traced inline by the enclosing transform
        if not kwargs and not self.static_argnums:
            key = [self.device or _device_key(), config.jax_default_matmul_precision]
            for a in args:
                if type(a) is not Array:
                    break
                if a._device is None:
                    v = a._value
                    key.append((v.shape, v.dtype, a.weak_type))
                else:  # committed arrays choose the device: part of the key
                    b = a._buf
                    key.append((b.shape, b.dtype, a.weak_type, a._device))
            else:
                runner = self._fast.get(tuple(key))
                if runner is None:
                    runner = self._fast[tuple(key)] = self._make_runner(args)
                return runner(args)
        compiled, flat = self._get_compiled(args, kwargs)
        outs = compiled.run_flat([_leaf_value(x, compiled.device) for x in flat])
        return tree_util.tree_unflatten(compiled.out_tree, outs)

    def _make_runner(self, args) -> Callable:
        """A runner for positional Array arguments: no flattening, no signature building."""
        compiled, _ = self._get_compiled(args, {})
        exe, out_tree, weak = compiled.executable, compiled.out_tree, compiled.out_weak
        if not compiled.on_host:
            device, run_flat = compiled.device, compiled.run_flat

            def run_on_device(args):
                return tree_util.tree_unflatten(out_tree, run_flat(
                    [a._buf if a._device == device else a._value for a in args]))
            return run_on_device
        sentinel = object()
        if tree_util.tree_unflatten(out_tree, [sentinel]) is sentinel if \
                out_tree.num_leaves == 1 else False:
            w0 = weak[0]

            def run_single(args):
                out = exe(*[a._value for a in args])[0]
                out.flags.writeable = False
                r = _new_array(Array)
                r._value, r.weak_type, r._device = out, w0, None
                return r
            return run_single

        def run(args):
            outs = exe(*[a._value for a in args])
            return tree_util.tree_unflatten(out_tree,
                                            [wrap_eager(o, w) for o, w in zip(outs, weak)])
        return run

    def lower(self, *args, **kwargs) -> Lowered:
        return Lowered(self, args, kwargs)

    def eval_shape(self, *args, **kwargs):
        from tinyjax.transforms.staging import eval_shape
        return eval_shape(self.fun, *args, **kwargs)

    def clear_cache(self) -> None:
        self.cache.clear()
        self._fast.clear()

    def __get__(self, instance, owner):
        if instance is None:
            return self
        from functools import partial
        return partial(self, instance)


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] | None = None,
        static_argnames: str | Sequence[str] | None = None,
        donate_argnums: int | Sequence[int] | None = None, device: Any = None,
        **unsupported: Any) -> Any:
    """Compile ``fun``: traced once per input signature, fused into a few kernels.

    ``static_argnums``/``static_argnames`` mark arguments that are Python values
    baked into the trace (they must be hashable; a new value retraces).
    ``donate_argnums`` is accepted for compatibility (buffers are not donated).
    Usable as a decorator, with or without arguments.
    """
    for name in unsupported:
        if name not in ("inline", "keep_unused", "backend", "abstracted_axes",
                        "in_shardings", "out_shardings", "compiler_options"):
            raise TypeError(f"jit() got an unexpected keyword argument '{name}'")
    if fun is None:
        return lambda f: jit(f, static_argnums=static_argnums,
                             static_argnames=static_argnames,
                             donate_argnums=donate_argnums, device=device)
    if not callable(fun):
        raise TypeError(f"Expected a callable value, got {fun!r}")
    return JitWrapped(fun, static_argnums, static_argnames, donate_argnums, device)
