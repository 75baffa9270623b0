"""``tinyjax.random``: JAX's default PRNG (Threefry-2x32), bit for bit.

Keys are either raw ``uint32[..., 2]`` arrays (``PRNGKey``) or typed key arrays
(``key``, dtype ``key<fry>``) that wrap such data.  Every sampler is written in lax
operations on the ``threefry2x32`` primitive, so it traces under ``jit``, batches
under ``vmap`` (vmap over keys) and differentiates with respect to its parameters
(the random bits are constants).  The samplers follow JAX's algorithms step for step
so that values agree with JAX's to the last bit (float32 ``normal`` included: XLA
evaluates its erf_inv polynomial with fused multiply-adds, emulated here).

Eager calls with a concrete key (``split``, ``fold_in``, ``bits``, ``uniform``,
``normal``) take a numpy fast path that computes the same bits without building
lax operations.
"""
from __future__ import annotations

import functools
import math
import sys
from array import array
from typing import Any, Sequence

import numpy as np

from tinyjax import core, dtypes, lax, tree_util
from tinyjax.array import Array, ArrayImpl, wrap_eager
from tinyjax.config import config
from tinyjax.core import Tracer, get_aval
from tinyjax.lax import random_bits as _rb
from tinyjax.lax._helpers import as_operand

__all__ = [
    "PRNGKey", "key", "key_data", "wrap_key_data", "key_impl", "PRNGKeyArray", "KeyArray",
    "split", "fold_in", "bits", "clone",
    "uniform", "normal", "truncated_normal", "bernoulli", "categorical", "randint",
    "permutation", "choice", "gumbel", "exponential", "laplace", "logistic", "cauchy",
    "rademacher", "multivariate_normal", "orthogonal", "gamma", "loggamma", "beta",
    "dirichlet",
]

_IMPL_NAME = "fry"
_IMPL_FULL_NAME = "threefry2x32"


# ---------------------------------------------------------------------------
# typed keys
# ---------------------------------------------------------------------------


class KeyDtype:
    """The dtype of typed key arrays: ``key<fry>``."""

    name = f"key<{_IMPL_NAME}>"
    itemsize = 8
    type = dtypes.prng_key  # issubdtype(key.dtype, dtypes.prng_key / dtypes.extended)

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

    A pytree node with the data as its one leaf, so keys pass through ``jit``,
    ``vmap`` and ``grad`` like arrays.
    """

    __slots__ = ("_base",)

    def __init__(self, base: Any):
        self._base = base

    shape = property(lambda self: tuple(get_aval(self._base).shape[:-1]))
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
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis for i in idx):
            raise NotImplementedError("Ellipsis indexing of key arrays")
        return PRNGKeyArray(self._base[idx + (slice(None),)])

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

    def block_until_ready(self) -> "PRNGKeyArray":
        return self

    def __repr__(self) -> str:
        data = self._base
        if isinstance(data, Tracer):
            return f"Traced<key<{_IMPL_NAME}>[{','.join(map(str, self.shape))}]>"
        return (f"Array({self.shape}, dtype=key<{_IMPL_NAME}>) overlaying:\n"
                f"{np.asarray(data)}")


Array.register(PRNGKeyArray)  # key arrays are jax.Arrays, as in JAX
KeyArray = PRNGKeyArray

tree_util.register_pytree_node(PRNGKeyArray, lambda k: ((k._base,), None),
                               lambda _, children: PRNGKeyArray(children[0]))


def _check_impl(impl: Any) -> None:
    if impl is not None and str(impl) not in ("threefry2x32", "threefry", "fry"):
        raise ValueError(f"unrecognized PRNG implementation {impl!r}: tinyjax has only "
                         "threefry2x32")


def key_impl(keys: Any) -> str:
    """The name of the PRNG implementation behind ``keys``."""
    _key_data(keys, "key_impl", allow_batched=True)
    return _IMPL_FULL_NAME


def key_data(keys: Any) -> Any:
    """The ``uint32[..., 2]`` data underlying typed (or raw) keys."""
    data, _ = _key_data(keys, "key_data", allow_batched=True)
    return data


def wrap_key_data(key_bits_array: Any, *, impl: Any = None) -> PRNGKeyArray:
    """Typed keys over ``uint32[..., 2]`` data (the inverse of :func:`key_data`)."""
    _check_impl(impl)
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


def _key_data(key: Any, name: str, allow_batched: bool = False) -> tuple[Any, bool]:
    """The raw uint32[..., 2] data of ``key`` and whether it was a typed key."""
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


def _rewrap(data: Any, typed: bool) -> Any:
    return PRNGKeyArray(data) if typed else data


def _eager_key(data: Any) -> np.ndarray | None:
    """The numpy value of a concrete key when running eagerly (for fast paths)."""
    if type(data) is ArrayImpl and data._device is None and core.is_eager():
        return data._value
    return None


# ---------------------------------------------------------------------------
# seeding, split, fold_in, bits
# ---------------------------------------------------------------------------


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


def key(seed: Any, *, impl: Any = None) -> PRNGKeyArray:
    """A typed key (dtype ``key<fry>``, shape ``()``) from an integer seed."""
    _check_impl(impl)
    return PRNGKeyArray(_seed(seed))


@functools.lru_cache(maxsize=64)
def _iota_lanes(n: int) -> int:
    """The counts 0..n-1 packed one per 64-bit lane (for the eager threefry)."""
    return _rb._pack(np.arange(n, dtype=np.uint32))


def _eager_threefry_iota(k: np.ndarray, n: int, xor: bool = False):
    """Threefry of counts (0, i) for i < n under the key ``k``: two uint32[n], or their
    xor when ``xor``."""
    if n == 0 or n > _rb._BIGINT_MAX_SIZE:
        y0, y1 = _rb.threefry2x32_np(k[0], k[1], np.zeros(n, np.uint32),
                                     np.arange(n, dtype=np.uint32))
        return y0 ^ y1 if xor else (y0, y1)
    rep = _rb._lane_ones(n)
    k0, k1 = k.tolist()
    y0, y1 = _rb._threefry_lanes(k0 * rep, k1 * rep, 0, _iota_lanes(n), rep)
    if xor:
        return _rb._unpack(y0 ^ y1, n)
    return _rb._unpack(y0, n), _rb._unpack(y1, n)


def _split(data: Any, shape: tuple[int, ...]) -> Any:
    k = _eager_key(data)
    if k is not None:
        y0, y1 = _eager_threefry_iota(k, math.prod(shape))
        return wrap_eager(np.stack([y0, y1], -1).reshape(shape + (2,)))
    return _rb.threefry_split(data, shape)


def _canonical_shape(shape: Any, name: str = "shape") -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:
        return tuple(int(operator_index(d)) for d in shape)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {shape!r}") from None


def operator_index(d: Any) -> int:
    import operator
    return operator.index(d)


def split(key: Any, num: int | Sequence[int] = 2) -> Any:
    """``num`` new keys from ``key`` (shape ``(num, 2)`` raw, ``(num,)`` typed)."""
    data, typed = _key_data(key, "split")
    return _rewrap(_split(data, _canonical_shape(num, "num")), typed)


def fold_in(key: Any, data: Any) -> Any:
    """A new key from ``key`` and an integer (taken modulo 2**32)."""
    kdata, typed = _key_data(key, "fold_in")
    k = _eager_key(kdata)
    if k is not None and isinstance(data, (int, np.integer)):
        y0, y1 = _rb.threefry2x32_np(k[0], k[1], np.uint32(0), np.uint32(int(data) % 2**32))
        return _rewrap(wrap_eager(np.stack([y0, y1])), typed)
    return _rewrap(_rb.threefry_fold_in(kdata, data), typed)


def _random_bits(data: Any, bit_width: int, shape: tuple[int, ...]) -> Any:
    k = _eager_key(data)
    if k is not None:
        return wrap_eager(_bits_np(k, bit_width, shape))
    return _rb.threefry_random_bits(data, bit_width, shape)


def _bits_np(k: np.ndarray, bit_width: int, shape: tuple[int, ...]) -> np.ndarray:
    n = math.prod(shape)
    if bit_width == 64:
        y0, y1 = _eager_threefry_iota(k, n)
        out = (y0.astype(np.uint64) << np.uint64(32)) | y1
    else:
        out = _eager_threefry_iota(k, n, xor=True)
        if bit_width != 32:
            out = out.astype(f"uint{bit_width}")
    return out.reshape(shape)


def bits(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Uniformly random unsigned integers of ``dtype`` (default uint32)."""
    data, _ = _key_data(key, "bits")
    dtype = dtypes.canonicalize_dtype(np.uint32 if dtype is None else dtype)
    if not dtypes.is_unsigned(dtype):
        raise ValueError(f"dtype argument to `bits` must be an unsigned int dtype, got {dtype}")
    return _random_bits(data, dtype.itemsize * 8, _canonical_shape(shape))


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _check_shape(name: str, shape: tuple[int, ...], *param_shapes: Sequence[int]) -> None:
    if param_shapes:
        try:
            shape_ = np.broadcast_shapes(shape, *param_shapes)
        except ValueError:
            shape_ = None
        if shape_ != tuple(shape):
            raise ValueError(f"{name} parameter shapes must be broadcast-compatible with "
                             "shape argument, and the result of broadcasting the shapes "
                             f"must equal the shape argument, but got result {shape_} for "
                             f"shape argument {shape}.")


def _float_dtype(dtype: Any, name: str) -> np.dtype:
    dt = dtypes.canonicalize_dtype(np.float64 if dtype is None else dtype)
    if not dtypes.is_float(dt):
        raise ValueError(f"dtype argument to `{name}` must be a float dtype, got {dt}")
    return dt


def _const(dtype: Any, value: Any) -> Any:
    return as_operand(np.asarray(value, dtype), weak=False)


def _convert(x: Any, dtype: np.dtype) -> Any:
    x = as_operand(x)
    aval = get_aval(x)
    if aval.dtype == dtype and not aval.weak_type:
        return x
    return lax.convert_element_type(x, dtype)


def _broadcast_to_rank(x: Any, rank: int) -> Any:
    shape = get_aval(x).shape
    if len(shape) >= rank:
        return x
    return lax.broadcast_in_dim(x, (1,) * (rank - len(shape)) + shape,
                                tuple(range(rank - len(shape), rank)))


def _is_eager_scalar(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


# ---------------------------------------------------------------------------
# continuous distributions
# ---------------------------------------------------------------------------


def _bits_to_unit_float_np(b: np.ndarray, dtype: np.dtype, nbits: int, nmant: int,
                           rng_bits: int) -> np.ndarray:
    udt = np.dtype(f"uint{nbits}")
    b = b.astype(udt, copy=False)
    one = np.array(1.0, dtype).view(udt)
    fb = (b >> udt.type(rng_bits - nmant)) | one
    return fb.view(dtype) - dtype.type(1.0)


def _uniform(data: Any, shape: tuple[int, ...], dtype: np.dtype, minval: Any,
             maxval: Any) -> Any:
    finfo = dtypes.finfo(dtype)
    nbits, nmant = finfo.bits, finfo.nmant
    if nbits not in (8, 16, 32, 64):
        raise TypeError(f"uniform only accepts 8-, 16-, 32-, or 64-bit dtypes, got {dtype}.")
    rng_bits = 8 if nmant < 8 else nbits
    k = _eager_key(data)
    if (k is not None and dtype.itemsize >= 4 and _is_eager_scalar(minval)
            and _is_eager_scalar(maxval)):
        floats = _bits_to_unit_float_np(_bits_np(k, rng_bits, shape), dtype, nbits, nmant,
                                        rng_bits)
        lo, hi = dtype.type(minval), dtype.type(maxval)
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.maximum(lo, floats * (hi - lo) + lo)
        return wrap_eager(np.asarray(out, dtype))
    minval = _broadcast_to_rank(_convert(minval, dtype), len(shape))
    maxval = _broadcast_to_rank(_convert(maxval, dtype), len(shape))
    _check_shape("uniform", shape, get_aval(minval).shape, get_aval(maxval).shape)
    udt = np.dtype(f"uint{nbits}")
    b = _rb.threefry_random_bits(data, rng_bits, shape)
    if rng_bits != nbits:
        b = lax.convert_element_type(b, udt)
    float_bits = lax.bitwise_or(lax.shift_right_logical(b, _const(udt, rng_bits - nmant)),
                                _const(udt, np.array(1.0, dtype).view(udt)))
    floats = lax.sub(lax.bitcast_convert_type(float_bits, dtype), _const(dtype, 1.0))
    scaled = lax.add(lax.mul(floats, _bcast(lax.sub(maxval, minval), shape)),
                     _bcast(minval, shape))
    return lax.max(_bcast(minval, shape), scaled)


def _bcast(x: Any, shape: tuple[int, ...]) -> Any:
    xs = get_aval(x).shape
    if xs == shape:
        return x
    keep = tuple(i for i, d in enumerate(xs) if d == shape[i])
    x = lax.reshape(x, tuple(xs[i] for i in keep)) if len(keep) != len(xs) else x
    return lax.broadcast_in_dim(x, shape, keep)


def uniform(key: Any, shape: Sequence[int] = (), dtype: Any = None, minval: Any = 0.,
            maxval: Any = 1.) -> Any:
    """Uniform floats in ``[minval, maxval)``: random mantissa bits under the exponent
    of 1.0 give a float in [1, 2); subtract 1, scale and shift."""
    data, _ = _key_data(key, "uniform")
    return _uniform(data, _canonical_shape(shape), _float_dtype(dtype, "uniform"),
                    minval, maxval)


# XLA's single-precision erf_inv (M. Giles, "Approximating the erfinv function").
_ERFINV_SMALL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                 0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_LARGE = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                 0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)
_ERFINV_SMALL_F32 = tuple(float(np.float32(c)) for c in _ERFINV_SMALL)
_F32 = np.dtype(np.float32)


def _erf_inv_f32_np(x: np.ndarray) -> np.ndarray:
    """XLA's float32 erf_inv on numpy values.  Its Horner steps are fused
    multiply-adds (one rounding each): for float32 operands the float64 product is
    exact, so float64 arithmetic rounded to float32 after each step reproduces them."""
    f32 = np.float32
    edges = np.abs(x) == f32(1)
    if edges.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(edges, x * np.finfo(f32).max,
                            _erf_inv_f32_np(np.where(edges, f32(0), x)))
    w = -np.log1p(-x * x)
    ws = (w - f32(2.5)).ravel().tolist() if x.size <= 64 else None
    if ws is not None and (not ws or max(ws) < 2.5):
        # few elements: Python floats, rounded to float32 by array('f') each step
        coefs = _ERFINV_SMALL_F32
        p = [coefs[0]] * len(ws)
        for c in coefs[1:]:
            p = array("f", [pi * wi + c for pi, wi in zip(p, ws)]).tolist()
        return np.array(p, f32).reshape(x.shape) * x
    lt = w < f32(5.0)
    with np.errstate(invalid="ignore"):
        w = np.where(lt, w - f32(2.5), np.sqrt(w) - f32(3.0)).astype(np.float64)
    p = np.where(lt, f32(_ERFINV_SMALL[0]), f32(_ERFINV_LARGE[0]))
    for cs, cl in zip(_ERFINV_SMALL[1:], _ERFINV_LARGE[1:]):
        c = np.where(lt, f32(cs), f32(cl)).astype(np.float64)
        p = (p * w + c).astype(f32)
    return p * x


def _fma_f32(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once, in float32 lax operations (Dekker's exact product
    and Knuth's exact sum, then one final rounding)."""
    mul, add, sub = lax.mul, lax.add, lax.sub
    p = mul(a, b)
    split = _const(_F32, 4097.0)

    def halves(v):
        t = mul(split, v)
        hi = sub(t, sub(t, v))
        return hi, sub(v, hi)
    ah, al = halves(a)
    bh, bl = halves(b)
    e = add(add(add(sub(mul(ah, bh), p), mul(ah, bl)), mul(al, bh)), mul(al, bl))
    s = add(p, c)
    bb = sub(s, p)
    t = add(sub(p, sub(s, bb)), sub(c, bb))
    return add(s, add(t, e))


def _erf_inv_f32(x: Any) -> Any:
    """XLA's float32 erf_inv in lax operations (same bits as :func:`_erf_inv_f32_np`)."""
    shape = get_aval(x).shape
    w = lax.neg(lax.log1p(lax.neg(lax.mul(x, x))))
    lt = lax.lt(w, _const(_F32, 5.0))
    w = lax.select(lt, lax.sub(w, _const(_F32, 2.5)),
                   lax.sub(lax.sqrt(w), _const(_F32, 3.0)))

    def coef(i):
        return lax.select(lt, lax.full(shape, _ERFINV_SMALL[i], _F32),
                          lax.full(shape, _ERFINV_LARGE[i], _F32))
    p = coef(0)
    for i in range(1, len(_ERFINV_SMALL)):
        p = _fma_f32(p, w, coef(i))
    out = lax.mul(p, x)
    edge = lax.eq(lax.abs(x), _const(_F32, 1.0))
    return lax.select(edge, lax.mul(x, _const(_F32, np.finfo(np.float32).max)), out)


def _erf_inv(u: Any, dtype: np.dtype) -> Any:
    """erf_inv as XLA computes it: float32 (and the 16-bit floats, through float32)
    with XLA's polynomial; float64 with tinyjax's accurate erf_inv."""
    if dtype == np.float64:
        return lax.erf_inv(u)
    if dtype == _F32:
        return _erf_inv_f32(u)
    return lax.convert_element_type(_erf_inv_f32(lax.convert_element_type(u, _F32)), dtype)


_LO_F32 = np.nextafter(np.float32(-1.0), np.float32(0.0))
_SPAN_F32 = float(np.float32(1.0) - _LO_F32)


def _open_uniform_f32_small(k: np.ndarray, n: int) -> list[float]:
    """Uniform float32 draws in (-1, 1), exactly as :func:`_uniform` makes them, for a
    few elements: Python arithmetic with float32 rounding by ``array('f')`` (numpy's
    per-call overhead dominates at this size)."""
    rep = _rb._lane_ones(n)
    k0, k1 = k.tolist()
    y0, y1 = _rb._threefry_lanes(k0 * rep, k1 * rep, 0, _iota_lanes(n), rep)
    words = array("Q", (y0 ^ y1).to_bytes(8 * n, "little")).tolist()
    mantissas = array("I", [(w >> 9) | 0x3F800000 for w in words]).tobytes()
    ones_to_twos = array("f", mantissas).tolist()                      # in [1, 2)
    scaled = array("f", [(v - 1.0) * _SPAN_F32 for v in ones_to_twos]).tolist()
    lo = float(_LO_F32)
    shifted = array("f", [v + lo for v in scaled]).tolist()
    return [v if v > lo else lo for v in shifted]


_SQRT2_F32 = np.float32(np.sqrt(2))


def _normal_real(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    k = _eager_key(data)
    if k is not None and dtype == _F32:
        n = math.prod(shape)
        if 0 < n <= 64 and sys.byteorder == "little":
            u = np.array(_open_uniform_f32_small(k, n), np.float32).reshape(shape)
        else:
            b = _bits_np(k, 32, shape)
            floats = ((b >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) \
                - np.float32(1)
            u = np.maximum(_LO_F32, floats * (np.float32(1) - _LO_F32) + _LO_F32)
        return wrap_eager(_SQRT2_F32 * _erf_inv_f32_np(u))
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = _uniform(data, shape, dtype, _const(dtype, lo), _const(dtype, 1.0))
    return lax.mul(_const(dtype, np.sqrt(2)), _erf_inv(u, dtype))


def normal(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard normal samples: ``sqrt(2) * erf_inv(u)`` for ``u`` uniform in (-1, 1)."""
    data, _ = _key_data(key, "normal")
    return _normal_real(data, _canonical_shape(shape), _float_dtype(dtype, "normal"))


def _shape_of_params(name: str, shape: Any, *params: Any) -> tuple[int, ...]:
    """The sample shape: the broadcast of the parameters' shapes unless ``shape`` is
    given, in which case the parameters must broadcast to it."""
    shapes = [get_aval(p).shape for p in params]
    if shape is None:
        return tuple(np.broadcast_shapes(*shapes))
    shape = _canonical_shape(shape)
    _check_shape(name, shape, *shapes)
    return shape


def truncated_normal(key: Any, lower: Any, upper: Any, shape: Sequence[int] | None = None,
                     dtype: Any = None) -> Any:
    """Standard normal samples truncated to ``(lower, upper)`` (inverse-CDF method)."""
    data, _ = _key_data(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    lower, upper = _convert(lower, dtype), _convert(upper, dtype)
    shape = _shape_of_params("truncated_normal", shape, lower, upper)
    sqrt2 = _const(dtype, np.sqrt(2))
    a = _erf(lax.div(lower, sqrt2))
    b = _erf(lax.div(upper, sqrt2))
    u = _uniform(data, shape, dtype, a, b)
    out = lax.mul(sqrt2, _erf_inv(u, dtype))
    lo = lax.nextafter(lax.stop_gradient(lower), lax.full(get_aval(lower).shape, np.inf, dtype))
    hi = lax.nextafter(lax.stop_gradient(upper), lax.full(get_aval(upper).shape, -np.inf, dtype))
    return lax.clamp(_bcast(_broadcast_to_rank(lo, len(shape)), shape), out,
                     _bcast(_broadcast_to_rank(hi, len(shape)), shape))


def _erf(x: Any) -> Any:
    # lax.erf's eager implementation mishandles 0-d arrays: apply it to a 1-vector
    shape = get_aval(x).shape
    if shape:
        return lax.erf(x)
    return lax.reshape(lax.erf(lax.reshape(x, (1,))), ())


def exponential(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Exponential(1) samples: ``-log1p(-u)``."""
    data, _ = _key_data(key, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    u = _uniform(data, _canonical_shape(shape), dtype, 0.0, 1.0)
    return lax.neg(lax.log1p(lax.neg(as_operand(u))))


def laplace(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Laplace(0, 1) samples: ``sign(u) * log1p(-|u|)`` for u uniform in (-1, 1)."""
    data, _ = _key_data(key, "laplace")
    dtype = _float_dtype(dtype, "laplace")
    u = as_operand(_uniform(data, _canonical_shape(shape), dtype,
                            _const(dtype, -1.0 + dtypes.finfo(dtype).epsneg), 1.0))
    return lax.mul(lax.sign(u), lax.log1p(lax.neg(lax.abs(u))))


def logistic(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard logistic samples: ``log(u / (1 - u))``."""
    data, _ = _key_data(key, "logistic")
    dtype = _float_dtype(dtype, "logistic")
    x = as_operand(_uniform(data, _canonical_shape(shape), dtype,
                            _const(dtype, dtypes.finfo(dtype).eps), 1.0))
    return lax.log(lax.div(x, lax.sub(_const(dtype, 1.0), x)))


def gumbel(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard Gumbel samples: ``-log(-log(u))``."""
    data, _ = _key_data(key, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    return _gumbel(data, _canonical_shape(shape), dtype)


def _gumbel(data: Any, shape: tuple[int, ...], dtype: np.dtype) -> Any:
    u = as_operand(_uniform(data, shape, dtype, _const(dtype, dtypes.finfo(dtype).tiny), 1.0))
    return lax.neg(lax.log(lax.neg(lax.log(u))))


def cauchy(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Standard Cauchy samples: ``tan(pi * (u - 1/2))``."""
    data, _ = _key_data(key, "cauchy")
    dtype = _float_dtype(dtype, "cauchy")
    u = as_operand(_uniform(data, _canonical_shape(shape), dtype,
                            _const(dtype, dtypes.finfo(dtype).eps), 1.0))
    pi = _const(dtype, np.pi)
    return lax.tan(lax.mul(pi, lax.sub(u, _const(dtype, 0.5))))


def rademacher(key: Any, shape: Sequence[int] = (), dtype: Any = None) -> Any:
    """Random signs, -1 or +1 with equal probability."""
    data, _ = _key_data(key, "rademacher")
    dtype = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    b = as_operand(_bernoulli(data, 0.5, _canonical_shape(shape)))
    return lax.convert_element_type(lax.sub(lax.mul(_const(np.int32, 2),
                                                    lax.convert_element_type(b, np.int32)),
                                            _const(np.int32, 1)), dtype)


# ---------------------------------------------------------------------------
# discrete distributions
# ---------------------------------------------------------------------------


def _bernoulli(data: Any, p: Any, shape: tuple[int, ...] | None) -> Any:
    p = as_operand(p)
    pdt = get_aval(p).dtype
    if not dtypes.is_float(pdt):
        raise TypeError(f"bernoulli probability `p` must have a floating dtype, got {pdt}.")
    pshape = get_aval(p).shape
    if shape is None:
        shape = pshape
    else:
        _check_shape("bernoulli", shape, pshape)
    u = as_operand(_uniform(data, shape, pdt, 0.0, 1.0))
    return lax.lt(u, _bcast(_broadcast_to_rank(lax.convert_element_type(p, pdt), len(shape)),
                            shape))


def bernoulli(key: Any, p: Any = 0.5, shape: Sequence[int] | None = None) -> Any:
    """Booleans that are True with probability ``p``: ``uniform < p``."""
    data, _ = _key_data(key, "bernoulli")
    return _bernoulli(data, p, None if shape is None else _canonical_shape(shape))


def _clip_to_dtype(val: Any, dtype: np.dtype) -> Any:
    """``val`` (an integer array) clipped to the range of ``dtype`` and converted."""
    vdt = get_aval(val).dtype
    info_d, info_v = dtypes.iinfo(dtype), dtypes.iinfo(vdt)
    lo = _const(vdt, max(int(info_d.min), int(info_v.min)))
    hi = _const(vdt, min(int(info_d.max), int(info_v.max)))
    shape = get_aval(val).shape
    return lax.convert_element_type(lax.clamp(_bcast(lo, shape), val, _bcast(hi, shape)),
                                    dtype)


def _int_operand(x: Any) -> Any:
    x = as_operand(x)
    dt = get_aval(x).dtype
    if not dtypes.is_int(dt):
        x = lax.convert_element_type(x, dtypes.canonicalize_dtype(np.int64))
    elif get_aval(x).weak_type:
        x = lax.convert_element_type(x, dt)
    return x


def randint(key: Any, shape: Sequence[int], minval: Any, maxval: Any,
            dtype: Any = None) -> Any:
    """Integers uniform in ``[minval, maxval)``: two draws of bits combined modulo the
    span (so the bias for spans that are not powers of two is tiny)."""
    data, _ = _key_data(key, "randint")
    dtype = dtypes.canonicalize_dtype(np.int64 if dtype is None else dtype)
    if not dtypes.is_int(dtype):
        raise TypeError(f"randint only accepts integer dtypes, got {dtype}")
    shape = _canonical_shape(shape)
    minval, maxval = _int_operand(minval), _int_operand(maxval)
    _check_shape("randint", shape, get_aval(minval).shape, get_aval(maxval).shape)
    nbits = dtypes.iinfo(dtype).bits
    mdt = get_aval(maxval).dtype
    top = _clip_to_dtype(_const(dtype, dtypes.iinfo(dtype).max), mdt)
    maxval_out_of_range = lax.gt(maxval, _bcast(top, get_aval(maxval).shape))
    minval = _bcast(_broadcast_to_rank(_clip_to_dtype(minval, dtype), len(shape)), shape)
    maxval = _bcast(_broadcast_to_rank(_clip_to_dtype(maxval, dtype), len(shape)), shape)
    maxval_out_of_range = _bcast(_broadcast_to_rank(maxval_out_of_range, len(shape)), shape)

    k = _split(data, (2,))
    higher = _random_bits(lax.index_in_dim(k, 0, 0, False), nbits, shape)
    lower = _random_bits(lax.index_in_dim(k, 1, 0, False), nbits, shape)
    udt = np.dtype(f"uint{nbits}")
    span = lax.convert_element_type(lax.sub(maxval, minval), udt)
    span = lax.select(lax.le(maxval, minval), lax.full(shape, 1, udt), span)
    span = lax.select(lax.bitwise_and(maxval_out_of_range, lax.gt(maxval, minval)),
                      lax.add(span, lax.full(shape, 1, udt)), span)
    multiplier = lax.rem(lax.full(shape, 2 ** (nbits // 2), udt), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher, span), multiplier), lax.rem(lower, span))
    offset = lax.rem(offset, span)
    return lax.add(minval, lax.convert_element_type(offset, dtype))


def _shuffle(data: Any, x: Any, axis: int) -> Any:
    """Shuffle along ``axis`` by sorting on random 32-bit keys, repeated enough times
    that ties (which would bias the order) are improbable."""
    size = get_aval(x).size
    num_rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(num_rounds):
        k = _split(data, (2,))
        data, sub = lax.index_in_dim(k, 0, 0, False), lax.index_in_dim(k, 1, 0, False)
        sort_keys = _random_bits(sub, 32, get_aval(x).shape)
        _, x = lax.sort_key_val(sort_keys, x, axis)
    return x


def permutation(key: Any, x: Any, axis: int = 0, independent: bool = False) -> Any:
    """A random permutation of ``range(x)`` (integer ``x``) or of ``x`` along ``axis``
    (every slice independently when ``independent``)."""
    import tinyjax.numpy as jnp
    data, _ = _key_data(key, "permutation")
    if isinstance(x, (int, np.integer)) or (hasattr(x, "shape") and not np.shape(x)):
        x_op = as_operand(x)
        if not dtypes.is_int(get_aval(x_op).dtype):
            raise TypeError("x must be an integer or at least 1-dimensional")
        return _shuffle(data, lax.iota(dtypes.canonicalize_dtype(np.int64), int(x_op)), 0)
    x = jnp.asarray(x)
    ndim = get_aval(x).ndim
    if ndim == 0:
        raise TypeError("x must be an integer or at least 1-dimensional")
    axis = axis + ndim if axis < 0 else axis
    if not 0 <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension {ndim}")
    if independent or ndim == 1:
        return _shuffle(data, x, axis)
    n = get_aval(x).shape[axis]
    ind = _shuffle(data, lax.iota(dtypes.canonicalize_dtype(np.int64), n), 0)
    return jnp.take(x, ind, axis, unique_indices=True)


def choice(key: Any, a: Any, shape: Sequence[int] = (), replace: bool = True,
           p: Any = None, axis: int = 0) -> Any:
    """Random draws from ``a`` (an array, or ``range(a)`` for an integer), with or
    without replacement, uniformly or with probabilities ``p``."""
    import tinyjax.numpy as jnp
    data, _ = _key_data(key, "choice")
    if not isinstance(shape, Sequence):
        raise TypeError("shape argument of jax.random.choice must be a sequence, "
                        f"got {shape}")
    shape = _canonical_shape(shape)
    arr = jnp.asarray(a)
    if get_aval(arr).ndim == 0:
        n_inputs = int(a)
    else:
        axis = axis + get_aval(arr).ndim if axis < 0 else axis
        n_inputs = get_aval(arr).shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return jnp.zeros(shape, dtype=get_aval(arr).dtype)
    if n_inputs <= 0:
        raise ValueError("a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"Cannot take a larger sample (size {n_draws}) than population "
                         f"(size {n_inputs}) when 'replace=False'")
    int_dt = dtypes.canonicalize_dtype(np.int64)
    scalar = get_aval(arr).ndim == 0
    if p is None:
        if replace:
            ind = randint(data, shape, 0, n_inputs)
            result = ind if scalar else jnp.take(arr, ind, axis)
        else:
            perm = permutation(data, n_inputs if scalar else arr, axis)
            result = lax.slice_in_dim(perm, 0, n_draws, 1, 0 if scalar else axis)
    else:
        p_arr = as_operand(p)
        if not dtypes.is_float(get_aval(p_arr).dtype):
            p_arr = lax.convert_element_type(p_arr, dtypes.canonicalize_dtype(np.float64))
        if get_aval(p_arr).shape != (n_inputs,):
            raise ValueError("p must be None or match the shape of a")
        pdt = get_aval(p_arr).dtype
        if replace:
            p_cuml = lax.cumsum(p_arr, 0)
            total = lax.index_in_dim(p_cuml, n_inputs - 1, 0, False)
            u = as_operand(_uniform(data, shape, pdt, 0.0, 1.0))
            r = lax.mul(_bcast(total, shape), lax.sub(_const(pdt, 1.0), u))
            # searchsorted (side='left'): the number of cumulative sums below r
            below = lax.lt(lax.broadcast_in_dim(p_cuml, shape + (n_inputs,), (len(shape),)),
                           lax.broadcast_in_dim(r, shape + (n_inputs,),
                                                tuple(range(len(shape)))))
            ind = lax.reduce_sum(lax.convert_element_type(below, int_dt), (len(shape),))
        else:
            g = lax.add(_gumbel(data, (n_inputs,), pdt), lax.log(p_arr))
            ind = lax.convert_element_type(lax.top_k(g, n_draws)[1], int_dt)
        result = ind if scalar else jnp.take(arr, ind, axis)
    ashape = get_aval(arr).shape
    return lax.reshape(result, shape if scalar else
                       ashape[:axis] + tuple(shape) + ashape[axis + 1:])


def categorical(key: Any, logits: Any, axis: int = -1,
                shape: Sequence[int] | None = None) -> Any:
    """Samples of a categorical distribution with unnormalised log-probabilities
    ``logits`` (the Gumbel-max trick)."""
    data, _ = _key_data(key, "categorical")
    logits = as_operand(logits)
    lshape = get_aval(logits).shape
    if axis >= 0:
        axis -= len(lshape)
    batch_shape = tuple(np.delete(np.array(lshape, dtype=np.int64), axis).tolist())
    if shape is None:
        shape = batch_shape
    else:
        shape = _canonical_shape(shape)
        _check_shape("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    logits_shape = list(shape[len(shape) - len(batch_shape):])
    logits_shape.insert(axis % len(lshape), lshape[axis])
    full_shape = (*prefix, *logits_shape)
    g = _gumbel(data, full_shape, get_aval(logits).dtype)
    lg = lax.broadcast_in_dim(logits, full_shape, tuple(range(len(prefix), len(full_shape))))
    return lax.argmax(lax.add(g, lg), axis % len(full_shape),
                      dtypes.canonicalize_dtype(np.int64))


# ---------------------------------------------------------------------------
# multivariate
# ---------------------------------------------------------------------------


def _matvec(m: Any, v: Any) -> Any:
    """``m @ v`` over leading batch axes: ``[..., n, k] x [..., k] -> [..., n]``."""
    nb = get_aval(m).ndim - 2
    return lax.reduce_sum(lax.mul(m, lax.broadcast_in_dim(
        v, get_aval(m).shape, tuple(range(nb)) + (nb + 1,))), (nb + 1,))


def _column(m: Any, j: int) -> Any:
    return lax.index_in_dim(m, j, get_aval(m).ndim - 1, False)


def _stack_last(cols: list) -> Any:
    shape = get_aval(cols[0]).shape
    nd = len(shape)
    return lax.concatenate([lax.broadcast_in_dim(c, shape + (1,), tuple(range(nd)))
                            for c in cols], nd)


def _cholesky(a: Any) -> Any:
    """Lower Cholesky factor of ``[..., n, n]`` matrices, column by column in lax ops."""
    shape = get_aval(a).shape
    n = shape[-1]
    rows = lax.broadcasted_iota(np.int32, shape[:-1], len(shape) - 2)
    cols: list = []
    for j in range(n):
        c = _column(a, j)
        for k, ck in enumerate(cols):
            c = lax.sub(c, lax.mul(ck, _bcast(lax.index_in_dim(ck, j, len(shape) - 2, True),
                                              shape[:-1])))
        d = lax.sqrt(lax.index_in_dim(c, j, len(shape) - 2, True))
        c = lax.div(c, _bcast(d, shape[:-1]))
        c = lax.select(lax.ge(rows, lax.full(shape[:-1], j, np.int32)), c,
                       lax.full(shape[:-1], 0, get_aval(c).dtype))
        cols.append(c)
    return _stack_last(cols)


def multivariate_normal(key: Any, mean: Any, cov: Any, shape: Sequence[int] | None = None,
                        dtype: Any = None, method: str = "cholesky") -> Any:
    """Multivariate normal samples ``mean + factor @ z`` with ``factor factor^T = cov``
    (Cholesky factor; ``method`` 'svd' and 'eigh' are not available)."""
    data, _ = _key_data(key, "multivariate_normal")
    if method not in {"svd", "eigh", "cholesky"}:
        raise ValueError("method must be one of {'svd', 'eigh', 'cholesky'}")
    if method != "cholesky":
        raise NotImplementedError(f"multivariate_normal method={method!r}: tinyjax has "
                                  "only 'cholesky'")
    dtype = _float_dtype(dtype, "multivariate_normal")
    mean, cov = _convert(mean, dtype), _convert(cov, dtype)
    mshape, cshape = get_aval(mean).shape, get_aval(cov).shape
    if not len(mshape) >= 1:
        raise ValueError(f"multivariate_normal requires mean.ndim >= 1, got mean.ndim == "
                         f"{len(mshape)}")
    if not len(cshape) >= 2:
        raise ValueError(f"multivariate_normal requires cov.ndim >= 2, got cov.ndim == "
                         f"{len(cshape)}")
    n = mshape[-1]
    if cshape[-2:] != (n, n):
        raise ValueError(f"multivariate_normal requires cov.shape == (..., n, n) for "
                         f"n={n}, but got cov.shape == {cshape}.")
    if shape is None:
        shape = np.broadcast_shapes(mshape[:-1], cshape[:-2])
    else:
        shape = _canonical_shape(shape)
        _check_shape("normal", shape, mshape[:-1], cshape[:-2])
    factor = _cholesky(cov)
    z = _normal_real(data, tuple(shape) + (n,), dtype)
    full = tuple(shape) + (n, n)
    factor = _bcast(_broadcast_to_rank(factor, len(full)), full)
    out = _matvec(factor, z)
    return lax.add(_bcast(_broadcast_to_rank(mean, len(shape) + 1), tuple(shape) + (n,)), out)


def orthogonal(key: Any, n: int, shape: Sequence[int] = (), dtype: Any = None,
               m: int | None = None) -> Any:
    """Uniformly (Haar) distributed ``n x m`` matrices with orthonormal columns (or rows
    when ``n < m``): the Q factor, with positive diagonal R, of a Gaussian matrix.
    QR by modified Gram-Schmidt in lax ops (JAX's Householder QR with the sign fix
    gives the same factor up to rounding)."""
    data, _ = _key_data(key, "orthogonal")
    dtype = _float_dtype(dtype, "orthogonal")
    shape = _canonical_shape(shape)
    n = operator_index(n)
    m = n if m is None else operator_index(m)
    rows, ncols = max(n, m), min(n, m)
    z = _normal_real(data, (*shape, rows, ncols), dtype)
    nd = len(shape) + 2
    qs: list = []
    for j in range(ncols):
        v = _column(z, j)
        for q in qs:
            proj = lax.reduce_sum(lax.mul(q, v), (nd - 2,))
            v = lax.sub(v, lax.mul(q, lax.broadcast_in_dim(proj, get_aval(v).shape,
                                                           tuple(range(nd - 2)))))
        norm = lax.sqrt(lax.reduce_sum(lax.mul(v, v), (nd - 2,)))
        qs.append(lax.div(v, lax.broadcast_in_dim(norm, get_aval(v).shape,
                                                  tuple(range(nd - 2)))))
    q = _stack_last(qs)
    if n < m:
        perm = tuple(range(nd - 2)) + (nd - 1, nd - 2)
        q = lax.transpose(q, perm)
    return q


# ---------------------------------------------------------------------------
# gamma family
# ---------------------------------------------------------------------------

# Rejection rounds drawn at once (vectorised); Marsaglia–Tsang accepts each
# candidate with probability > 0.95 once alpha >= 1, so all rounds fail with
# probability < 1e-10 per sample, and then the sample falls back to the mode d.
_GAMMA_ROUNDS = 8


def _gamma_log_and_linear(data: Any, a: Any, shape: tuple[int, ...], dtype: np.dtype,
                          log_space: bool) -> Any:
    """Marsaglia–Tsang: for alpha >= 1, x ~ N(0,1), v = (1 + c x)^3 is accepted if
    log U < x^2/2 + d - d v + d log v, giving d*v ~ Gamma(alpha); alpha < 1 is boosted
    to alpha + 1 and multiplied by U^(1/alpha)."""
    a = _bcast(_broadcast_to_rank(a, len(shape)), shape)
    one, zero = _const(dtype, 1.0), _const(dtype, 0.0)
    ones = lax.full(shape, 1.0, dtype)
    boost_mask = lax.ge(a, ones)
    alpha = lax.select(boost_mask, a, lax.add(a, ones))
    d = lax.sub(alpha, lax.full(shape, 1.0 / 3.0, dtype))
    c = lax.div(lax.full(shape, 1.0 / 3.0, dtype), lax.sqrt(d))
    keys = _split(data, (3,))
    kx, ku, kb = (lax.index_in_dim(keys, i, 0, False) for i in range(3))
    rshape = (_GAMMA_ROUNDS,) + shape
    xs = as_operand(_normal_real(kx, rshape, dtype))
    us = as_operand(_uniform(ku, rshape, dtype, 0.0, 1.0))
    dims = tuple(range(1, len(rshape)))
    c_r = lax.broadcast_in_dim(c, rshape, dims)
    d_r = lax.broadcast_in_dim(d, rshape, dims)
    v = lax.add(lax.full(rshape, 1.0, dtype), lax.mul(xs, c_r))
    positive = lax.gt(v, lax.full(rshape, 0.0, dtype))
    v = lax.select(positive, v, lax.full(rshape, 1.0, dtype))
    v3 = lax.mul(lax.mul(v, v), v)
    x2 = lax.mul(xs, xs)
    squeeze = lax.lt(us, lax.sub(lax.full(rshape, 1.0, dtype),
                                 lax.mul(lax.full(rshape, 0.0331, dtype), lax.mul(x2, x2))))
    bound = lax.add(lax.mul(x2, lax.full(rshape, 0.5, dtype)),
                    lax.mul(d_r, lax.add(lax.sub(lax.full(rshape, 1.0, dtype), v3),
                                         lax.log(v3))))
    accept = lax.bitwise_and(positive, lax.bitwise_or(squeeze, lax.lt(lax.log(us), bound)))
    V = ones
    for r in reversed(range(_GAMMA_ROUNDS)):  # the first accepted round wins
        V = lax.select(lax.index_in_dim(accept, r, 0, False),
                       lax.index_in_dim(v3, r, 0, False), V)
    del one, zero
    if log_space:
        log_samples = lax.neg(as_operand(exponential(kb, shape, dtype)))
        log_boost = lax.select(lax.bitwise_or(boost_mask, lax.eq(log_samples,
                                                                 lax.full(shape, 0.0, dtype))),
                               lax.full(shape, 0.0, dtype), lax.div(log_samples, a))
        return lax.add(lax.add(lax.log(d), lax.log(V)), log_boost)
    samples = lax.sub(ones, as_operand(_uniform(kb, shape, dtype, 0.0, 1.0)))
    boost = lax.select(boost_mask, ones, lax.pow(samples, lax.div(ones, a)))
    return lax.mul(lax.mul(d, V), boost)


def _gamma_common(name: str, key: Any, a: Any, shape: Any, dtype: Any,
                  log_space: bool) -> Any:
    data, _ = _key_data(key, name)
    dtype = _float_dtype(dtype, name)
    a = _convert(a, dtype)
    ashape = get_aval(a).shape
    if shape is None:
        shape = ashape
    else:
        shape = _canonical_shape(shape)
        _check_shape(name, shape, ashape)
    # The samples do not follow a differentiable path in ``a`` (JAX uses implicit
    # reparameterisation through the incomplete gamma function, not available here).
    a = _no_grad(a, name)
    return _gamma_log_and_linear(data, a, tuple(shape), dtype, log_space)


def _no_grad(x: Any, name: str) -> Any:
    from tinyjax.custom_derivatives import custom_jvp

    @custom_jvp
    def ident(v):
        return v

    @ident.defjvp
    def _jvp(primals, tangents):
        raise NotImplementedError(
            f"Differentiation of jax.random.{name} with respect to its shape parameter "
            "is not implemented in tinyjax (it needs the derivative of the incomplete "
            "gamma function).")
    if isinstance(x, Tracer):
        return ident(x)
    return x


def gamma(key: Any, a: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Gamma(a, 1) samples (Marsaglia–Tsang rejection, vectorised)."""
    return _gamma_common("gamma", key, a, shape, dtype, False)


def loggamma(key: Any, a: Any, shape: Sequence[int] | None = None, dtype: Any = None) -> Any:
    """Logs of Gamma(a, 1) samples, computed in log space (accurate for small a)."""
    return _gamma_common("loggamma", key, a, shape, dtype, True)


def beta(key: Any, a: Any, b: Any, shape: Sequence[int] | None = None,
         dtype: Any = None) -> Any:
    """Beta(a, b) samples: ``Ga / (Ga + Gb)`` from log-space gamma samples."""
    data, typed = _key_data(key, "beta")
    dtype = _float_dtype(dtype, "beta")
    a, b = _convert(a, dtype), _convert(b, dtype)
    shape = _shape_of_params("beta", shape, a, b)
    k = _split(data, (2,))
    ka, kb = lax.index_in_dim(k, 0, 0, False), lax.index_in_dim(k, 1, 0, False)
    a = _bcast(_broadcast_to_rank(a, len(shape)), shape)
    b = _bcast(_broadcast_to_rank(b, len(shape)), shape)
    log_ga = as_operand(loggamma(ka, a, shape, dtype))
    log_gb = as_operand(loggamma(kb, b, shape, dtype))
    log_max = lax.max(log_ga, log_gb)
    ga = lax.exp(lax.sub(log_ga, log_max))
    gb = lax.exp(lax.sub(log_gb, log_max))
    return lax.div(ga, lax.add(ga, gb))


def dirichlet(key: Any, alpha: Any, shape: Sequence[int] | None = None,
              dtype: Any = None) -> Any:
    """Dirichlet(alpha) samples over the last axis: normalised gamma samples."""
    data, _ = _key_data(key, "dirichlet")
    dtype = _float_dtype(dtype, "dirichlet")
    alpha = _convert(alpha, dtype)
    ashape = get_aval(alpha).shape
    if len(ashape) < 1:
        raise ValueError(f"dirichlet requires alpha.ndim >= 1, got alpha.ndim == "
                         f"{len(ashape)}")
    if shape is None:
        shape = ashape[:-1]
    else:
        shape = _canonical_shape(shape)
        _check_shape("dirichlet", shape, ashape[:-1])
    full = tuple(shape) + ashape[-1:]
    lg = as_operand(loggamma(data, alpha, full, dtype))
    nd = len(full)
    mx = lax.stop_gradient(lax.reduce_max(lg, (nd - 1,)))
    e = lax.exp(lax.sub(lg, lax.broadcast_in_dim(mx, full, tuple(range(nd - 1)))))
    total = lax.reduce_sum(e, (nd - 1,))
    return lax.div(e, lax.broadcast_in_dim(total, full, tuple(range(nd - 1))))
