"""``jax.nn``'s activation and normalisation functions, written with tinyjax.numpy and
lax (the same formulas and derivative rules as ``jax/_src/nn/functions.py``)."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax import dtypes, lax
from tinyjax.numpy._util import check_arraylike
from tinyjax.scipy.special._logsumexp import log_softmax_along, logsumexp, softmax_along
from tinyjax.custom_derivatives import custom_jvp

__all__ = ["celu", "elu", "gelu", "glu", "hard_sigmoid", "hard_silu", "hard_swish",
           "hard_tanh", "leaky_relu", "log_sigmoid", "log_softmax", "logsumexp", "mish",
           "one_hot", "relu", "relu6", "selu", "sigmoid", "silu", "soft_sign", "softmax",
           "softplus", "squareplus", "standardize", "swish"]


def _zeros_like(g: Any) -> Any:
    return jnp.zeros_like(g)


@custom_jvp
def relu(x: Any) -> Any:
    """Rectified linear unit ``max(x, 0)``; its derivative at 0 is taken to be 0."""
    return jnp.maximum(x, 0)


relu.defjvps(lambda g, ans, x: lax.select(x > 0, g, _zeros_like(g)))


@custom_jvp
def relu6(x: Any) -> Any:
    """``min(max(x, 0), 6)``; derivative 0 at both kinks (0 and 6)."""
    return jnp.minimum(jnp.maximum(x, 0), 6.)


relu6.defjvps(lambda g, ans, x: lax.select((x > 0) & (x < 6), g, _zeros_like(g)))


def squareplus(x: Any, b: Any = 4) -> Any:
    """``(x + sqrt(x^2 + b)) / 2``, a smooth approximation of relu."""
    check_arraylike("squareplus", x)
    x = jnp.asarray(x)
    y = x + jnp.sqrt(jnp.square(x) + b)
    return y / 2


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, computed as ``logaddexp(x, 0)`` (no overflow)."""
    check_arraylike("softplus", x)
    x_arr = jnp.asarray(x)
    # zeros of x's shape: tinyjax's jnp.logaddexp does not broadcast a scalar operand
    return jnp.logaddexp(x_arr, jnp.zeros_like(x_arr))


def soft_sign(x: Any) -> Any:
    """``x / (|x| + 1)``."""
    check_arraylike("soft_sign", x)
    x_arr = jnp.asarray(x)
    return x_arr / (jnp.abs(x_arr) + 1)


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))`` (``lax.logistic``)."""
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        x = x.astype(jnp.result_type(float))
    return lax.logistic(x)


def silu(x: Any) -> Any:
    """SiLU / swish: ``x * sigmoid(x)``."""
    check_arraylike("silu", x)
    x_arr = jnp.asarray(x)
    return x_arr * sigmoid(x_arr)


swish = silu


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``."""
    check_arraylike("mish", x)
    x_arr = jnp.asarray(x)
    return x_arr * jnp.tanh(softplus(x_arr))


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x))`` computed as ``-softplus(-x)``."""
    check_arraylike("log_sigmoid", x)
    x_arr = jnp.asarray(x)
    return -softplus(-x_arr)


def elu(x: Any, alpha: Any = 1.0) -> Any:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``; the exponential only sees
    non-positive values so neither branch overflows (no NaN in the gradient)."""
    check_arraylike("elu", x)
    x_arr = jnp.asarray(x)
    safe_x = jnp.where(x_arr > 0, 0., x_arr)
    return jnp.where(x_arr > 0, x_arr, alpha * jnp.expm1(safe_x))


def leaky_relu(x: Any, negative_slope: Any = 1e-2) -> Any:
    """``x`` for ``x >= 0``, else ``negative_slope * x``."""
    check_arraylike("leaky_relu", x)
    x_arr = jnp.asarray(x)
    return jnp.where(x_arr >= 0, x_arr, negative_slope * x_arr)


def hard_tanh(x: Any) -> Any:
    """``x`` clipped to [-1, 1]."""
    check_arraylike("hard_tanh", x)
    x_arr = jnp.asarray(x)
    return jnp.where(x_arr > 1, 1, jnp.where(x_arr < -1, -1, x_arr))


def celu(x: Any, alpha: Any = 1.0) -> Any:
    """``max(x, 0) + alpha * expm1(min(x, 0) / alpha)``."""
    check_arraylike("celu", x)
    x_arr = jnp.asarray(x)
    return jnp.maximum(x_arr, 0.0) + alpha * jnp.expm1(jnp.minimum(x_arr, 0.0) / alpha)


def selu(x: Any) -> Any:
    """Scaled ELU with the self-normalising constants of Klambauer et al. (2017)."""
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return scale * elu(x, alpha)


def gelu(x: Any, approximate: bool = True) -> Any:
    """Gaussian error linear unit: the tanh approximation
    ``x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` by default, else the exact
    ``x/2 erfc(-x/sqrt(2))``."""
    x_arr = jnp.asarray(x)
    if not jnp.issubdtype(x_arr.dtype, jnp.inexact):
        x_arr = x_arr.astype(jnp.result_type(float))
    dtype = x_arr.dtype
    if approximate:
        sqrt_2_over_pi = np.sqrt(2 / np.pi).astype(dtype)
        cdf = 0.5 * (1.0 + jnp.tanh(sqrt_2_over_pi * (x_arr + 0.044715 * (x_arr ** 3))))
        return x_arr * cdf
    sqrt_half = np.sqrt(0.5).astype(dtype)
    return jnp.array(0.5 * x_arr * lax.erfc(-x_arr * sqrt_half), dtype=dtype)


def glu(x: Any, axis: int = -1) -> Any:
    """Gated linear unit: split ``x`` in halves ``a, b`` along ``axis``; ``a *
    sigmoid(b)``."""
    check_arraylike("glu", x)
    x_arr = jnp.asarray(x)
    size = x_arr.shape[axis]
    assert size % 2 == 0, "axis size must be divisible by 2"
    x1, x2 = jnp.split(x_arr, 2, axis)
    return x1 * sigmoid(x2)


def hard_sigmoid(x: Any) -> Any:
    """``relu6(x + 3) / 6``."""
    return relu6(x + 3.) / 6.


def hard_silu(x: Any) -> Any:
    """``x * hard_sigmoid(x)``."""
    check_arraylike("hard_silu", x)
    x_arr = jnp.asarray(x)
    return x_arr * hard_sigmoid(x_arr)


hard_swish = hard_silu


def log_softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``x - logsumexp(x, axis)``, with the (stop-gradient) maximum subtracted first.

    Entries outside ``where`` are ``-inf`` and do not take part.
    """
    check_arraylike("log_softmax", x)
    return log_softmax_along(jnp.asarray(x), axis, where)


def softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``exp(x) / sum(exp(x), axis)`` computed on ``x - max(x)``, with JAX's custom
    derivative ``y * (dx - sum(y * dx))`` (no differentiation through the max).

    Entries outside ``where`` are 0 and do not take part.
    """
    check_arraylike("softmax", x)
    return softmax_along(jnp.asarray(x), axis, where)


def standardize(x: Any, axis: Any = -1, mean: Any = None, variance: Any = None,
                epsilon: Any = 1e-5, where: Any = None) -> Any:
    """``(x - mean) / sqrt(variance + epsilon)``, with the mean and (biased) variance
    over ``axis`` computed when not given."""
    check_arraylike("standardize", x)
    x = jnp.asarray(x)
    if mean is None:
        mean = jnp.mean(x, axis, keepdims=True, where=where)
    if variance is None:
        # E[x^2] - E[x]^2 as JAX (one pass; fine for normalised activations)
        variance = jnp.mean(jnp.square(x), axis, keepdims=True, where=where) - \
            jnp.square(mean)
    return jnp.subtract(x, jnp.asarray(mean)) * lax.rsqrt(jnp.asarray(variance) + epsilon)


def one_hot(x: Any, num_classes: int, *, dtype: Any = None, axis: int = -1) -> Any:
    """One-hot encoding of the integers ``x``: a new axis ``axis`` of size
    ``num_classes`` holding 1 at index ``x`` (all 0 where ``x`` is out of range)."""
    try:
        num_classes = operator.index(num_classes)
    except TypeError as e:
        raise TypeError("The error arose in jax.nn.one_hot argument `num_classes`: "
                        f"expected a concrete integer, got {num_classes!r}.") from e
    dtype = jnp.result_type(float) if dtype is None else dtypes.canonicalize_dtype(dtype)
    x = jnp.asarray(x)
    out_axis = operator.index(axis)
    if not -(x.ndim + 1) <= out_axis <= x.ndim:
        raise ValueError(f"axis {axis} is out of bounds for array of dimension "
                         f"{x.ndim + 1}")
    out_axis %= x.ndim + 1
    lhs = lax.expand_dims(x, (out_axis,))
    rhs_shape = [1] * x.ndim
    rhs_shape.insert(out_axis, num_classes)
    rhs = lax.broadcasted_iota(x.dtype, tuple(rhs_shape), out_axis)
    return (lhs == rhs).astype(dtype)
