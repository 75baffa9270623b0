"""Where arrays live and where computations run: ``device_put``, ``device_get``, the device
of a computation's arguments, and eager operations on a device.

An eager operation whose arguments are committed to a device backend (``cuda``) runs there
as a one-equation program, compiled once per (primitive, parameters, argument types) and
cached, so notebook code keeps its arrays on the GPU.  Uncommitted host arrays and Python
scalars join any computation (copied to its device); arrays committed to two different
devices in one computation are an error, as in JAX.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Optional, Sequence

import numpy as np

from tinyjax import tree_util
from tinyjax.array import Array, placed, wrap_eager
from tinyjax.core import ShapedArray, get_aval

__all__ = ["device_put", "device_get", "block_until_ready", "computation_device",
           "run_on_device", "incompatible_devices_error"]


def _describe(x: Any) -> str:
    return f"{x.dtype.name}[{','.join(map(str, x.shape))}] on {x.device}"


def incompatible_devices_error(what: str, args: Sequence[Any]) -> ValueError:
    placed_args = [(i, x) for i, x in enumerate(args)
                   if type(x) is Array and x._device is not None]
    parts = [f"argument {i} of {what} with shape {_describe(x)}" for i, x in placed_args]
    return ValueError(f"Received incompatible devices for {what}. Got " + " and ".join(parts)
                      + ". Move arrays explicitly with tinyjax.device_put(x, device).")


def computation_device(args: Sequence[Any], what: str) -> Optional[str]:
    """The backend the committed arrays among ``args`` live on (None: no committed array);
    ValueError when they are committed to different devices."""
    found = None
    for x in args:
        if type(x) is Array and x._device is not None and x._device != found:
            if found is not None:
                raise incompatible_devices_error(what, args)
            found = x._device
    return found


# ---- device_put / device_get -------------------------------------------------------------------

def _put_leaf(x: Any, backend: str, committed: bool) -> Array:
    from tinyjax.core import Tracer
    from tinyjax.devices import get_backend
    from tinyjax.numpy import asarray
    if (type(x) is Array and x._device == backend) or isinstance(x, Tracer):
        return x  # (under a transform, placement is the compiled program's)
    if not isinstance(x, Array):
        x = asarray(x)  # dtype canonicalisation and weak types, as jnp.asarray
    if backend == "cpu" or get_backend(backend).host:
        value = x._value
        return placed(value, backend) if committed else wrap_eager(value, x.weak_type)
    src = x._buf if x._device not in (None, "cpu") else x._value
    buf = get_backend(backend).asbuffer(src if isinstance(src, np.ndarray) else src.numpy())
    return placed(buf, backend, x.weak_type)


def device_put(x: Any, device: Any = None, *, src: Any = None, donate: bool = False,
               may_alias: Optional[bool] = None) -> Any:
    """Move every array of the pytree ``x`` to ``device`` (a Device from
    ``tinyjax.devices()``, a backend name, or None: the default device).  With a device
    given, the results are committed to it; arrays already there are returned as they are."""
    from tinyjax.devices import backend_name
    backend = backend_name(device)
    committed = device is not None or backend != "cpu"
    return tree_util.tree_map(lambda leaf: _put_leaf(leaf, backend, committed), x)


def device_get(x: Any) -> Any:
    """Every array of the pytree ``x`` as a host numpy array."""
    return tree_util.tree_map(lambda a: np.asarray(a) if isinstance(a, Array) else a, x)


def block_until_ready(x: Any) -> Any:
    """Wait until every array of the pytree ``x`` is computed (their devices run work
    asynchronously); returns ``x``."""
    for leaf in tree_util.tree_leaves(x):
        if isinstance(leaf, Array):
            leaf.block_until_ready()
    return x


# ---- eager operations on a device --------------------------------------------------------------

_cache: "OrderedDict[Any, Any]" = OrderedDict()
_CACHE_SIZE = 4096


def _compile_op(primitive, params: dict, avals: list[ShapedArray], backend: str):
    from tinyjax.transforms.jit import _compile
    from tinyjax.transforms.staging import trace_to_closed_jaxpr

    def op(*xs):
        out = primitive.bind(*xs, **params)
        return list(out) if primitive.multiple_results else [out]
    closed = trace_to_closed_jaxpr(op, avals)
    return _compile(closed, backend), [a.weak_type for a in closed.out_avals]


def _signature(x: Any) -> Any:
    if type(x) is Array:
        b = x._buf if x._device is not None else x._value
        return (b.shape, b.dtype, x.weak_type)
    return get_aval(x)


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
    values = [x._buf if type(x) is Array and x._device == backend else
              x._value if type(x) is Array else x for x in args]
    outs = [placed(o, backend, w) for o, w in zip(exe(*values), weak)]
    return outs if primitive.multiple_results else outs[0]
