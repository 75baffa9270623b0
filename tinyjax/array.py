"""``tinyjax.Array`` (the abstract type of every array value) and ``ArrayImpl`` (the
immutable, concrete array of eager mode).

``Array`` is JAX's ``jax.Array``: concrete arrays, tracers and typed key arrays are all
instances (``isinstance(tracer, jax.Array)`` is True, as in JAX), so it is the type to
annotate with and to test for "an array of any kind".  Code that means "a concrete
array" tests ``type(x) is ArrayImpl``.

On the CPU an ArrayImpl wraps a read-only numpy array, so eager operations run
straight through numpy with no compile step.  Operators and methods
(``+``, ``@``, ``.sum()``, ``.at[...]``, indexing, …) are installed by
``tinyjax.numpy`` on this class and on :class:`tinyjax.core.Tracer` alike.

Placement: ``_device`` is None for an array on the host that is not committed to a device
(the default: it moves freely into computations on any device).  Otherwise it says where the
array is committed to (``tinyjax.device_put``, or the result of a computation there):

* a *device key*, a string: a backend's name for its first device in this process ('cpu',
  'cuda') or ``'backend:id'`` for another device ('cpu:3', 'cuda:1').  On a host backend
  ``_buf`` is the numpy value itself; on a device backend such as 'cuda' it is a device
  buffer, and ``_value`` is fetched to the host on first read;
* a :class:`~tinyjax.sharding.Sharding` of several devices (or of a mesh): ``_buf`` is a
  :class:`ShardedBuffer` holding one buffer per device.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

import numpy as np

from tinyjax import dtypes
from tinyjax.backends import backend_name, get_backend, get_device
from tinyjax.config import config
from tinyjax.core import ShapedArray, Tracer


class Array(abc.ABC):
    """The type of arrays (``jax.Array``): concrete arrays (:class:`ArrayImpl`), tracers
    and key arrays are instances of it.  It cannot be instantiated: make arrays with
    ``jnp.asarray`` / ``jnp.array``."""

    __slots__ = ()

    def __new__(cls, *args, **kwargs):
        raise TypeError("jax.Array cannot be instantiated directly; use jnp.asarray or "
                        "jnp.array to make an array")


Array.__module__ = "tinyjax"
Array.register(Tracer)


DELETED = "deleted"  # the ``_device`` of an array whose storage was freed or donated


class _DeletedBuffer:
    """The storage of a deleted array: it keeps the type; reading it raises."""

    __slots__ = ("shape", "dtype", "size", "nbytes")

    def __init__(self, value):
        self.shape, self.dtype, self.size, self.nbytes = (value.shape, value.dtype,
                                                          value.size, value.nbytes)

    def numpy(self):
        shape = ",".join(str(d) for d in self.shape)
        raise RuntimeError(f"Array has been deleted with shape={self.dtype.name}[{shape}].")


class ArrayImpl:
    """A concrete array value: the class of eager arrays (an instance of :class:`Array`)."""

    __slots__ = ("_value", "weak_type", "_device", "_buf", "__weakref__")
    __array_priority__ = 100

    def __new__(cls, *args, **kwargs):
        raise TypeError("ArrayImpl cannot be instantiated directly; use jnp.asarray or "
                        "jnp.array to make an array")

    def __getattr__(self, name: str):
        # only reached for unset slots: the host copy of a device-resident array
        if name == "_value" and self._device is not None:
            value = self._buf.numpy()
            value.flags.writeable = False
            self._value = value
            return value
        raise AttributeError(f"'ArrayImpl' object has no attribute '{name}'")

    shape = property(lambda self: (self._value if self._device is None else self._buf).shape)
    dtype = property(lambda self: (self._value if self._device is None else self._buf).dtype)
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: (self._value if self._device is None else self._buf).size)
    nbytes = property(lambda self: (self._value if self._device is None else self._buf).nbytes)

    @property
    def aval(self) -> ShapedArray:
        where = self._device
        if where is None or type(where) is str:
            return ShapedArray(self.shape, self.dtype, self.weak_type)
        # laid out over several devices: the sharding tells the axes its type names
        return ShapedArray(self.shape, self.dtype, self.weak_type, sharding=where)

    @property
    def device(self):
        """The array's device; for an array over several devices, its sharding."""
        if self._device is not None and type(self._buf) is ShardedBuffer:
            return self._device
        return get_device(self._device)

    @property
    def committed(self) -> bool:
        """Whether the array is committed to its device (see the module docstring)."""
        return self._device is not None

    def devices(self) -> set:
        if self._device is not None and type(self._buf) is ShardedBuffer:
            return set(self._buf.devices)
        return {get_device(self._device)}

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self._value.dtype:
            return self._value.astype(dtype)
        return self._value

    def to_concrete_value(self) -> np.ndarray:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __complex__(self) -> complex:
        return complex(self._value)

    def __index__(self) -> int:
        if not dtypes.is_int(self._value.dtype) and self._value.dtype != np.bool_:
            raise TypeError(f"only integer arrays can be used as an index, got "
                            f"{self._value.dtype}")
        return self._value.__index__()

    def __len__(self) -> int:
        if not self._value.shape:
            raise TypeError("len() of unsized object")
        return self._value.shape[0]

    def __iter__(self):
        if not self._value.shape:
            raise TypeError("iteration over a 0-d array")
        return (wrap_eager(v, self.weak_type) for v in self._value)

    def __hash__(self):
        raise TypeError("unhashable type: 'Array'")

    def item(self, *args):
        return self._value.item(*args)

    def tolist(self):
        return self._value.tolist()

    def block_until_ready(self) -> "ArrayImpl":
        if self._device is not None and not isinstance(self._buf, np.ndarray):
            if type(self._buf) is ShardedBuffer:
                self._buf.synchronize()
            else:
                get_backend(self._device).synchronize()
        return self

    def copy(self) -> "ArrayImpl":
        if self._device is not None and not isinstance(self._buf, np.ndarray):
            if type(self._buf) is ShardedBuffer:
                return placed(self._buf.copy(), self._device, self.weak_type)
            return placed(get_backend(self._device).copy(self._buf), self._device,
                          self.weak_type)
        return wrap_eager(self._value.copy(), self.weak_type)

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (_rebuild, (self._value, self.weak_type))

    def unsafe_buffer_pointer(self) -> int:
        """The address of the array's storage (host memory, or device memory for an
        array on a device)."""
        if self._device is not None and type(self._buf) is ShardedBuffer:
            raise ValueError("unsafe_buffer_pointer() is supported only for an array on "
                             f"one device; this one spans {len(self._buf.devices)}")
        if self._device is not None and not isinstance(self._buf, np.ndarray):
            return int(self._buf.ptr)
        return int(self._value.__array_interface__["data"][0])

    def delete(self) -> None:
        """Free the array's storage; using it afterwards raises RuntimeError (as a
        donated argument of a ``jit`` call)."""
        if self.is_deleted():
            return
        buf = self._buf if self._device is not None else self._value
        try:
            del self._value
        except AttributeError:
            pass
        self._buf = _DeletedBuffer(buf)
        self._device = DELETED

    def is_deleted(self) -> bool:
        return isinstance(self._device, str) and self._device == DELETED

    def __dlpack__(self, *args, **kwargs):
        """DLPack export (``np.from_dlpack(x)``, ``torch.from_dlpack(x)``) of the host copy."""
        return self._value.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._value.__dlpack_device__()

    def copy_to_host_async(self) -> None:
        """Fetch a device-resident array's host copy now (a no-op on the host)."""
        if self._device is not None and not self.is_deleted():
            self._value
    def __repr__(self) -> str:
        if self._unreduced():  # as JAX: the shape and layout, not a sum of its terms
            weak = ", weak_type=True" if self.weak_type else ""
            return f"Array(shape={self.shape}, dtype={self.dtype.name}{weak}, " \
                   f"sharding={self._device})"
        return _array_repr(self._value, self.weak_type)

    def __str__(self) -> str:
        return repr(self) if self._unreduced() else str(self._value)

    def _unreduced(self) -> bool:
        """Whether the array's blocks are terms of sums (unreduced mesh axes)."""
        return self._device is not None and type(self._buf) is ShardedBuffer and \
            self._buf.summands is not None

    def __format__(self, spec: str) -> str:
        if self._value.ndim == 0:
            return format(self._value.item(), spec)
        return format(str(self), spec)


def _rebuild(value, weak_type):
    return wrap_eager(np.asarray(value), weak_type)


# jnp.asarray, registered by tinyjax.numpy when it is imported: the conversion of Python
# scalars, sequences and array-likes (dtype canonicalisation, weak types) lives there.
_asarray: list[Callable[..., ArrayImpl]] = []


def register_asarray(asarray: Callable[..., ArrayImpl]) -> None:
    """Make :func:`to_array` convert as ``asarray`` does."""
    _asarray[:] = [asarray]


Array.register(ArrayImpl)


def to_array(value: Any, dtype: Any = None) -> ArrayImpl:
    """``value`` as an Array, as ``jnp.asarray(value, dtype)`` converts it."""
    return _asarray[0](value, dtype=dtype)


def wrap_eager(value: Any, weak_type: bool = False) -> ArrayImpl:
    """Wrap a numpy value (already of a canonical dtype) as an Array, without a copy."""
    if type(value) is not np.ndarray:
        value = np.asarray(value)
    value.flags.writeable = False
    out = object.__new__(ArrayImpl)
    out._value = value
    out.weak_type = weak_type
    out._device = None
    return out


def on_default_device(x: ArrayImpl) -> ArrayImpl:
    """A new host array moved to the default device (the flag ``tinyjax_device``) when that
    is not the CPU: where array constructors (``jnp.asarray``, ``jnp.zeros``, ...) put
    their result."""
    if config.tinyjax_device == "cpu":
        return x
    backend = backend_name(None)
    return place(x, backend, committed=backend != "cpu")


def place(x: ArrayImpl, device: str, committed: bool = True) -> ArrayImpl:
    """``x`` on ``device`` (a device key; a copy where it lives elsewhere), committed to it
    or (on the CPU only) not: what ``tinyjax.device_put`` does to one array."""
    backend = get_backend(device)
    if device == "cpu" or backend.host:
        value = x._value
        return placed(value, device, x.weak_type) if committed else \
            wrap_eager(value, x.weak_type)
    src = x._buf if x._device is not None and not isinstance(x._buf, (np.ndarray,
                                                                       ShardedBuffer)) \
        else x._value
    buf = backend.asbuffer(src if isinstance(src, np.ndarray) else src.numpy())
    return placed(buf, device, x.weak_type)


def placed(buf: Any, device: Any, weak_type: bool = False) -> ArrayImpl:
    """An Array committed to ``device``: a device key ('cpu': ``buf`` is a numpy array; a
    device backend's key: ``buf`` is one of its buffers), or a sharding (``buf`` is a
    :class:`ShardedBuffer`)."""
    out = object.__new__(ArrayImpl)
    out._buf = buf
    out._device = device
    out.weak_type = weak_type
    if isinstance(buf, np.ndarray):  # a host backend's buffer is the value itself
        buf.flags.writeable = False
        out._value = buf
    return out


class ShardedBuffer:
    """The buffers of an array laid out over several devices: ``buffers[i]`` is on
    ``devices[i]`` and holds the block ``indices[i]`` (a tuple of slices) of the array of
    ``shape``.  Blocks may repeat (replication).  ``summands``, where given (an array with
    unreduced mesh axes), says which buffers are the terms whose sum is the block; the
    others are copies of those."""

    __slots__ = ("shape", "dtype", "devices", "indices", "buffers", "complete", "summands")

    def __init__(self, shape: tuple, dtype: Any, devices: list, indices: list, buffers: list,
                 complete: bool = True, *, summands: list | None = None):
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.devices, self.indices, self.buffers = list(devices), list(indices), list(buffers)
        self.complete = complete  # whether this process holds every block
        self.summands = summands

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def numpy(self) -> np.ndarray:
        """The whole array on the host (the first copy of each block)."""
        if not self.complete:
            raise RuntimeError("Fetching value for `jax.Array` that spans non-addressable "
                               "(non process local) devices is not possible. You can use "
                               "`jax.experimental.multihost_utils.process_allgather` to "
                               "print the global array or use `.addressable_shards`.")
        if self.summands is not None:
            out = np.zeros(self.shape, self.dtype)
            for index, buf, term in zip(self.indices, self.buffers, self.summands):
                if term:
                    out[index] += buf if isinstance(buf, np.ndarray) else buf.numpy()
            return out
        out = np.empty(self.shape, self.dtype)
        for index, buf in reversed(list(zip(self.indices, self.buffers))):
            out[index] = buf if isinstance(buf, np.ndarray) else buf.numpy()
        return out

    def synchronize(self) -> None:
        for d, buf in zip(self.devices, self.buffers):
            if not isinstance(buf, np.ndarray):
                get_backend(d).synchronize()

    def copy(self) -> "ShardedBuffer":
        return ShardedBuffer(self.shape, self.dtype, self.devices, self.indices,
                             [b.copy() if isinstance(b, np.ndarray) else get_backend(d).copy(b)
                              for d, b in zip(self.devices, self.buffers)], self.complete,
                             summands=self.summands)

    def __repr__(self) -> str:
        return f"ShardedBuffer({self.dtype.name}{list(self.shape)} over {len(self.devices)})"


def _array_repr(value: np.ndarray, weak_type: bool) -> str:
    dt = value.dtype
    prefix = "Array("
    if dt == dtypes.bfloat16:
        body = np.array2string(value.astype(np.float32), separator=", ",
                               prefix=prefix)
    else:
        body = np.array2string(value, separator=", ", prefix=prefix)
    weak = ", weak_type=True" if weak_type else ""
    shape = f", shape={value.shape}" if value.size == 0 else ""  # as numpy's and JAX's
    return f"{prefix}{body}{shape}, dtype={dt.name}{weak})"
