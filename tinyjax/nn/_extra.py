"""``jax.nn``'s small activations and reductions beyond the classic set: ``identity``,
``tanh``, ``log1mexp``, ``logmeanexp``, ``sparse_plus``, ``sparse_sigmoid``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import tinyjax.numpy as jnp
from tinyjax.numpy._util import check_arraylike
from tinyjax.scipy.special import logsumexp
from tinyjax.scipy.special._logsumexp import log1mexp

__all__ = ["identity", "tanh", "log1mexp", "logmeanexp", "sparse_plus", "sparse_sigmoid"]

tanh = jnp.tanh


def identity(x: Any) -> Any:
    """The identity activation: ``x`` as an array."""
    check_arraylike("identity", x)
    return jnp.asarray(x)


def logmeanexp(x: Any, axis: Any = None, where: Any = None, keepdims: bool = False) -> Any:
    """``log(mean(exp(x)))`` over ``axis`` without overflow (entries where ``where`` is
    False are left out of both the sum and the count)."""
    check_arraylike("logmeanexp", x)
    x = jnp.asarray(x)
    lse = logsumexp(x, axis=axis, keepdims=keepdims, where=where)
    if where is None:
        shape = np.shape(x)
        axes = range(len(shape)) if axis is None else \
            [a % len(shape) for a in ((axis,) if np.ndim(axis) == 0 else axis)]
        count = math.prod(shape[a] for a in axes)
        return lse - math.log(count) if count else lse - np.log(0.0)
    count = jnp.sum(jnp.broadcast_to(where, np.shape(x)), axis=axis, keepdims=keepdims,
                    dtype=lse.dtype)
    return lse - jnp.log(count)


def sparse_plus(x: Any) -> Any:
    """The sparse-plus activation: 0 below -1, ``x`` above 1, ``(x + 1)**2 / 4``
    between (a smooth ReLU whose support is bounded)."""
    check_arraylike("sparse_plus", x)
    x = jnp.asarray(x)
    return jnp.where(x <= -1.0, 0.0, jnp.where(x >= 1.0, x, (x + 1.0) ** 2 / 4))


def sparse_sigmoid(x: Any) -> Any:
    """The sparse sigmoid: ``clip((x + 1) / 2, 0, 1)`` (the derivative of sparse_plus)."""
    check_arraylike("sparse_sigmoid", x)
    return 0.5 * jnp.clip(jnp.asarray(x) + 1.0, 0.0, 2.0)
