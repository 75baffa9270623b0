"""``jax.image``: resampling images (any arrays) to new shapes.

Pixels are half-centred: output pixel ``i`` of a dimension scaled by ``s`` and
translated by ``t`` samples the input at ``(i + 0.5 - t) / s - 0.5``.  Each resampled
dimension is a product with a weight matrix built from the method's kernel; when
downsampling with ``antialias`` the kernel is stretched by ``1 / s`` (a low-pass
filter).  The weights of an output pixel are normalised to sum to one, and an output
pixel whose sample falls outside the input is zero.
"""
from __future__ import annotations

import enum
from typing import Any, Callable, Sequence

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax

__all__ = ["ResizeMethod", "resize", "scale_and_translate"]


class ResizeMethod(enum.Enum):
    """How ``resize`` and ``scale_and_translate`` interpolate."""
    NEAREST = 0
    LINEAR = 1
    LANCZOS3 = 2
    LANCZOS5 = 3
    CUBIC = 4
    CUBIC_PYTORCH = 5
    AREA = 6

    @staticmethod
    def from_string(s: str) -> "ResizeMethod":
        for method, names in _NAMES.items():
            if s in names:
                return method
        raise ValueError(f'Unknown resize method "{s}"')


_NAMES = {
    ResizeMethod.NEAREST: ("nearest",),
    ResizeMethod.LINEAR: ("linear", "bilinear", "trilinear", "triangle"),
    ResizeMethod.LANCZOS3: ("lanczos3",),
    ResizeMethod.LANCZOS5: ("lanczos5",),
    ResizeMethod.CUBIC: ("cubic", "bicubic", "tricubic"),
    ResizeMethod.CUBIC_PYTORCH: ("cubic-pytorch", "bicubic-pytorch"),
    ResizeMethod.AREA: ("area",),
}


# ---- kernels: weight as a function of the distance |x| in input pixels -------------------

def _triangle(x):
    return jnp.maximum(0.0, 1.0 - x)


def _keys_cubic(x, a=-0.5):
    """Keys' cubic convolution kernel (``a = -0.5``; OpenCV and PyTorch use -0.75)."""
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return jnp.where(x >= 2.0, 0.0, jnp.where(x >= 1.0, far, near))


def _lanczos(radius: float) -> Callable:
    def kernel(x):
        safe = jnp.where(x > 1e-3, x, 1.0)
        value = radius * jnp.sin(np.pi * safe) * jnp.sin(np.pi * safe / radius) / (
            np.pi ** 2 * safe ** 2)
        return jnp.where(x > radius, 0.0, jnp.where(x > 1e-3, value, 1.0))
    return kernel


_KERNELS: dict[ResizeMethod, tuple[int, Callable | None]] = {
    ResizeMethod.LINEAR: (1, _triangle),
    ResizeMethod.LANCZOS3: (3, _lanczos(3.0)),
    ResizeMethod.LANCZOS5: (5, _lanczos(5.0)),
    ResizeMethod.CUBIC: (2, _keys_cubic),
    ResizeMethod.CUBIC_PYTORCH: (2, lambda x: _keys_cubic(x, -0.75)),
    ResizeMethod.AREA: (1, None),  # the overlap of pixel intervals, not a kernel
}


def _weights(n_in: int, n_out: int, scale: Any, translation: Any, method: ResizeMethod,
             antialias: bool, edge_padding: bool, dtype) -> Any:
    """The (n_in, n_out) matrix taking one dimension of the input to the output."""
    radius, kernel = _KERNELS[method]
    inv = 1.0 / scale
    out_idx = jnp.arange(n_out, dtype=dtype)
    if kernel is None:  # area: overlap of [i, i + 1) / s - t/s with each input pixel
        left = out_idx * inv - translation * inv
        lo = jnp.arange(n_in, dtype=dtype)
        w = jnp.maximum(0.0, jnp.minimum(left[None, :] + inv, lo[:, None] + 1.0)
                        - jnp.maximum(left[None, :], lo[:, None]))
        return _normalized(w)
    stretch = jnp.maximum(inv, 1.0) if antialias else 1.0
    sample = (out_idx + 0.5) * inv - translation * inv - 0.5
    pad = radius if edge_padding else 0
    src = jnp.arange(-pad, n_in + pad, dtype=dtype)
    w = kernel(jnp.abs(sample[None, :] - src[:, None]) / stretch)
    if edge_padding:  # the weight of a sample off the edge goes to the edge pixel
        rows = np.clip(np.arange(-pad, n_in + pad), 0, n_in - 1)
        onehot = jnp.asarray((rows[None, :] == np.arange(n_in)[:, None]).astype(np.float32),
                             dtype)
        return _normalized(onehot @ w)
    inside = jnp.logical_and(sample >= -0.5, sample <= n_in - 0.5)
    return jnp.where(inside[None, :], _normalized(w), 0.0)


def _normalized(w):
    total = jnp.sum(w, axis=0, keepdims=True)
    ok = jnp.abs(total) > 1000.0 * float(np.finfo(np.float32).eps)
    return jnp.where(ok, w / jnp.where(total != 0, total, 1.0), 0.0)


def _method(method: str | ResizeMethod) -> ResizeMethod:
    if isinstance(method, str):
        return ResizeMethod.from_string(method)
    if not isinstance(method, ResizeMethod):
        raise TypeError(f"resize method must be a string or a ResizeMethod, got {method!r}")
    return method


def _resample(image, shape, dims, scales, translations, method, antialias, edge_padding):
    if method is ResizeMethod.CUBIC_PYTORCH and antialias:
        method = ResizeMethod.CUBIC
    edge_padding = edge_padding and method is ResizeMethod.CUBIC_PYTORCH and not antialias
    x = image
    for d, s, t in zip(dims, scales, translations):
        w = _weights(image.shape[d], shape[d], s, t, method, antialias, edge_padding,
                     x.dtype)
        # contract dimension d with the weights, keeping the dimension order
        x = jnp.moveaxis(jnp.tensordot(x, w.astype(x.dtype), axes=([d], [0]),
                                       precision=lax.Precision.HIGHEST), -1, d)
    return x


def _check_shape(image, shape) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) != image.ndim:
        raise ValueError("shape must have length equal to the number of dimensions of x; "
                         f" {shape} vs {image.shape}")
    return shape


def _inexact(image):
    image = jnp.asarray(image)
    if not dtypes.issubdtype(image.dtype, np.inexact):
        image = image.astype(dtypes.default_float_dtype())
    return image


def resize(image: Any, shape: Sequence[int], method: str | ResizeMethod,
           antialias: bool = True, precision: Any = None) -> Any:
    """``image`` resampled to ``shape`` (every dimension, batch and channel ones
    included: leave those sizes unchanged).  ``method``: 'nearest', 'linear',
    'cubic', 'cubic-pytorch', 'lanczos3', 'lanczos5', 'area' (or a ResizeMethod).
    Interpolating methods give a floating-point result."""
    shape = _check_shape(jnp.asarray(image), shape)
    method = _method(method)
    if method is ResizeMethod.NEAREST:
        return _resize_nearest(jnp.asarray(image), shape)
    image = _inexact(image)
    dims = [d for d in range(image.ndim) if image.shape[d] != shape[d]]
    scales = [shape[d] / image.shape[d] if shape[d] else 1.0 for d in dims]
    return _resample(image, shape, dims, scales, [0.0] * len(dims), method, antialias,
                     edge_padding=True)


def _resize_nearest(image, shape):
    for d in range(image.ndim):
        n_in, n_out = image.shape[d], shape[d]
        if n_in == n_out:
            continue
        src = np.floor((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int32)
        image = jnp.take(image, np.minimum(src, n_in - 1), axis=d)
    return image


def scale_and_translate(image: Any, shape: Sequence[int], spatial_dims: Sequence[int],
                        scale: Any, translation: Any, method: str | ResizeMethod,
                        antialias: bool = True, precision: Any = None) -> Any:
    """``image`` resampled to ``shape`` by the map ``x -> x * scale + translation`` of
    each of ``spatial_dims`` (the inverse map gives the sample positions); samples
    outside the input are zero.  ``scale`` and ``translation`` may be traced."""
    image = _inexact(image)
    shape = _check_shape(image, shape)
    method = _method(method)
    if method is ResizeMethod.NEAREST:
        raise ValueError("Nearest neighbor resampling is not currently supported for "
                         "scale_and_translate.")
    dims = [d % image.ndim for d in spatial_dims]
    scale, translation = jnp.asarray(scale, image.dtype), jnp.asarray(translation,
                                                                     image.dtype)
    if scale.shape != (len(dims),) or translation.shape != (len(dims),):
        raise ValueError(f"scale_and_translate: scale and translation need one entry per "
                         f"spatial dimension ({len(dims)}), got shapes {scale.shape} and "
                         f"{translation.shape}")
    return _resample(image, shape, dims, [scale[i] for i in range(len(dims))],
                     [translation[i] for i in range(len(dims))], method, antialias,
                     edge_padding=True)
