"""Keys: raw ``uint32[..., 2]`` keys (``PRNGKey``), typed key arrays (``key``, dtype
``key<fry>``) and the conversions between them; seeding."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from tinyjax import core, dtypes, lax
from tinyjax.array import Array, ArrayImpl, wrap_eager
from tinyjax.config import config
from tinyjax.core import Tracer, get_aval
from tinyjax.lax import random_bits as _rb
from tinyjax.lax._helpers import as_operand
from tinyjax.numpy._extended import register_extended_array
from tinyjax.tree_util.registration import register_extended_leaf

__all__ = ["KeyArray", "PRNGKey", "PRNGKeyArray", "clone", "key", "key_data", "key_dtype",
           "key_impl", "wrap_key_data"]

_IMPL_NAME = "fry"
_IMPL_FULL_NAME = "threefry2x32"


class KeyDtype(dtypes.ExtendedDType):
    """The dtype of typed key arrays, ``key<fry>``: ``jnp.issubdtype(k.dtype,
    jax.dtypes.prng_key)`` is True."""

    type = dtypes.prng_key
    name = f"key<{_IMPL_NAME}>"
    itemsize = 8
    element_shape = (2,)
    physical_dtype = np.dtype(np.uint32)

    def wrap(self, data: Any) -> "PRNGKeyArray":
        return PRNGKeyArray(data)

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeyDtype) or other == self.name

    def __hash__(self) -> int:
        return hash(self.name)


_KEY_DTYPE = KeyDtype()


class PRNGKeyArray:
    """An array of typed PRNG keys; its data is a ``uint32[*shape, 2]`` array.

    A pytree leaf (as in JAX) that the transforms open into its data
    (:mod:`tinyjax.tree_util.physical`), so keys pass through ``jit``, ``vmap`` and
    ``grad`` like arrays.
    """

    __slots__ = ("_base",)

    def __init__(self, base: Any):
        self._base = base

    # (the data may be a ShapeDtypeStruct where keys are described, as under eval_shape)
    shape = property(lambda self: tuple(self._base.shape[:-1]))
    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    dtype = property(lambda self: _KEY_DTYPE)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d key array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, idx: Any) -> "PRNGKeyArray":
        return PRNGKeyArray(self._base[_data_index(idx)])

    @property
    def at(self) -> "_KeyIndexer":
        """Functional updates of key arrays, as JAX's: ``keys.at[idx].set(other_keys)``
        and ``keys.at[idx].get()``."""
        return _KeyIndexer(self)

    def reshape(self, *shape: Any) -> "PRNGKeyArray":
        shape = shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return PRNGKeyArray(lax.reshape(self._base, tuple(shape) + (2,)))

    def __eq__(self, other: object) -> Any:
        if not isinstance(other, PRNGKeyArray):
            return NotImplemented
        return lax.reduce_and(lax.eq(self._base, other._base), (self.ndim,))

    def __ne__(self, other: object) -> Any:
        if not isinstance(other, PRNGKeyArray):
            return NotImplemented
        return lax.bitwise_not(self == other)

    __hash__ = None  # type: ignore[assignment]

    def copy(self) -> "PRNGKeyArray":
        """The same keys (arrays are immutable: the copy shares the data)."""
        return PRNGKeyArray(self._base)

    def block_until_ready(self) -> "PRNGKeyArray":
        return self

    def __repr__(self) -> str:
        data = self._base
        if isinstance(data, Tracer):
            return f"Traced<key<{_IMPL_NAME}>[{','.join(map(str, self.shape))}]>"
        return (f"Array({self.shape}, dtype=key<{_IMPL_NAME}>) overlaying:\n"
                f"{np.asarray(data)}")


def _data_index(idx: Any) -> tuple:
    """The index of a key array's data for the index ``idx`` of the keys."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(i is Ellipsis for i in idx):
        raise NotImplementedError("Ellipsis indexing of key arrays")
    return idx + (slice(None),)


class _KeyIndexer:
    """``keys.at``: ``keys.at[idx]`` is the place to update."""

    def __init__(self, keys: PRNGKeyArray):
        self._keys = keys

    def __getitem__(self, idx: Any) -> "_KeyIndexRef":
        return _KeyIndexRef(self._keys, idx)


class _KeyIndexRef:
    """``keys.at[idx]``: ``set`` gives the key array with the keys there replaced (keys
    broadcast to the indexed shape), ``get`` the keys there."""

    def __init__(self, keys: PRNGKeyArray, idx: Any):
        self._keys, self._idx = keys, idx

    def get(self, **kwargs: Any) -> PRNGKeyArray:
        return PRNGKeyArray(self._keys._base.at[_data_index(self._idx)].get(**kwargs))

    def set(self, values: Any, **kwargs: Any) -> PRNGKeyArray:
        if not isinstance(values, PRNGKeyArray):
            raise TypeError(f"keys.at[...].set takes key arrays, got {type(values).__name__}"
                            f" ({getattr(values, 'dtype', None)}): a key array holds keys "
                            "only")
        data = self._keys._base.at[_data_index(self._idx)].set(values._base, **kwargs)
        return PRNGKeyArray(data)


Array.register(PRNGKeyArray)  # key arrays are jax.Arrays, as in JAX
KeyArray = PRNGKeyArray


def _from_physical(data: Any) -> Any:
    """What a transform made of a key array's data, as a key array; where it made a
    (co)tangent of the data (float0), JAX's (co)tangent of a key array: float0 zeros of
    the key array's shape."""
    if getattr(data, "dtype", None) == dtypes.float0:
        return np.zeros(tuple(data.shape[:-1]), dtypes.float0)
    return PRNGKeyArray(data)


# a pytree leaf, as JAX's; the transforms trace, batch and differentiate its data
register_extended_leaf(PRNGKeyArray, lambda k: k._base, _from_physical)
# jnp.asarray, broadcast_to, stack, ... of key arrays act on their uint32[..., 2] data
register_extended_array(PRNGKeyArray, lambda k: k._base, PRNGKeyArray)


def _check_impl(impl: Any) -> None:
    if impl is not None and impl != _KEY_DTYPE and \
            str(impl) not in ("threefry2x32", "threefry", "fry"):
        raise ValueError(f"unrecognized PRNG implementation {impl!r}: tinyjax has only "
                         "threefry2x32")


def key_dtype(impl_spec: Any = None) -> KeyDtype:
    """The dtype of typed keys of the PRNG ``impl_spec`` (only ``threefry2x32``)."""
    _check_impl(impl_spec)
    return _KEY_DTYPE


def key_impl(keys: Any) -> str:
    """The name of the PRNG implementation behind ``keys``."""
    key_data_of(keys, "key_impl", allow_batched=True)
    return _IMPL_FULL_NAME


def key_data(keys: Any) -> Any:
    """The ``uint32[..., 2]`` data underlying typed (or raw) keys."""
    data, _ = key_data_of(keys, "key_data", allow_batched=True)
    return data


def _impl_or_dtype(name: str, impl: Any, dtype: Any) -> Any:
    if dtype is not None and impl is not None:
        raise ValueError(f"Cannot specify both `impl` and `dtype` arguments to "
                         f"jax.random.{name}")
    _check_impl(impl if dtype is None else dtype)


def wrap_key_data(key_bits_array: Any, *, impl: Any = None, dtype: Any = None
                  ) -> PRNGKeyArray:
    """Typed keys over ``uint32[..., 2]`` data (the inverse of :func:`key_data`);
    ``dtype`` (a key dtype) or ``impl`` names the PRNG, which must be threefry2x32."""
    _impl_or_dtype("wrap_key_data", impl, dtype)
    data = as_operand(key_bits_array)
    aval = get_aval(data)
    if aval.dtype != np.uint32:
        raise TypeError(f"wrap_key_data expects uint32 key data, got {aval.dtype}")
    if aval.shape[-1:] != (2,):
        raise TypeError("JAX encountered invalid PRNG key data: expected key_data.shape to "
                        f"end with (2,); got shape={aval.shape} for impl={_IMPL_FULL_NAME}")
    return PRNGKeyArray(data)


def clone(key: Any) -> Any:
    """A copy of ``key`` (keys are immutable: this is the identity)."""
    return key


def key_data_of(key: Any, name: str, allow_batched: bool = False) -> tuple[Any, bool]:
    """The raw uint32[..., 2] data of ``key`` and whether it was a typed key; ``name``
    (the sampler's) goes into the errors for what is not a key or a batch of keys."""
    if type(key) is ArrayImpl:
        if key.dtype == np.uint32 and key.shape == (2,):
            return key, False
    elif type(key) is PRNGKeyArray and type(key._base) is ArrayImpl:
        if key._base.shape == (2,):
            return key._base, True
    if isinstance(key, PRNGKeyArray):
        data, typed = key._base, True
        if not allow_batched and key.shape:
            raise ValueError(f"{name} accepts a single key, but was given a key array of "
                             f"shape {key.shape} != (). Use jax.vmap for batching.")
        return data, typed
    if isinstance(key, (int, float)) or (isinstance(key, (np.ndarray, np.generic, ArrayImpl,
                                                         Tracer)) and
                                         get_aval(key).dtype != np.uint32):
        raise TypeError(f"{name} requires a PRNG key array (from jax.random.key or "
                        f"jax.random.PRNGKey), got {key!r}")
    data = as_operand(key)
    shape = get_aval(data).shape
    if shape[-1:] != (2,):
        raise TypeError("JAX encountered invalid PRNG key data: expected key_data.shape to "
                        f"end with (2,); got shape={shape} for impl={_IMPL_FULL_NAME}")
    if not allow_batched and shape != (2,):
        raise ValueError(f"{name} accepts a single key, but was given a key array of "
                         f"shape {shape[:-1]} != (). Use jax.vmap for batching.")
    return data, False


def rewrap(data: Any, typed: bool) -> Any:
    """Key data back in the form the caller gave: typed keys or raw data."""
    return PRNGKeyArray(data) if typed else data


def eager_key(data: Any) -> np.ndarray | None:
    """The numpy value of a concrete key when running eagerly (for fast paths)."""
    if type(data) is ArrayImpl and data._device is None and core.is_eager():
        return data._value
    return None


def _seed_operand(seed: Any) -> Any:
    if isinstance(seed, PRNGKeyArray):
        raise TypeError("PRNGKey accepts a scalar seed, but was given a PRNG key.")
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"PRNG key seed must be an integer; got {seed!r}")
    if isinstance(seed, int):
        # JAX converts Python ints through int64 so that hashes work as seeds in x32
        # mode; there they wrap to the low 32 bits.
        value = np.int64(seed)
        if not config.jax_enable_x64:
            value = value.astype(np.int32)
        return as_operand(value)
    return as_operand(seed)


def _seed(seed: Any) -> Any:
    op = _seed_operand(seed)
    if type(op) is ArrayImpl and core.is_eager():
        v = op._value
        if v.shape == () and dtypes.is_int(v.dtype):
            s = int(v)
            hi = (s >> 32) & 0xFFFFFFFF if v.dtype.itemsize == 8 else 0
            return wrap_eager(np.array([hi, s & 0xFFFFFFFF], np.uint32))
    return _rb.threefry_seed(op)


def PRNGKey(seed: Any, *, impl: Any = None) -> Any:
    """A raw ``uint32[2]`` key from an integer seed (``[seed >> 32, seed & 0xFFFFFFFF]``,
    the high word zero for 32-bit seeds)."""
    _check_impl(impl)
    return _seed(seed)


def key(seed: Any, *, impl: Any = None, dtype: Any = None) -> PRNGKeyArray:
    """A typed key (dtype ``key<fry>``, shape ``()``) from an integer seed; ``dtype`` (a
    key dtype) or ``impl`` names the PRNG, which must be threefry2x32."""
    _impl_or_dtype("key", impl, dtype)
    return PRNGKeyArray(_seed(seed))
