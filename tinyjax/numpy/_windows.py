"""Window functions for signal processing: ``bartlett``, ``blackman``, ``hamming``,
``hanning``, ``kaiser`` (numpy's definitions, default float dtype), and ``i0``."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from tinyjax import dtypes, lax
from tinyjax.numpy._creation import arange, asarray, concrete_value, ones
from tinyjax.numpy._ufuncs import absolute, cos, exp, sqrt
from tinyjax.numpy._util import check_arraylike, promote_dtypes_inexact

__all__ = ["bartlett", "blackman", "hamming", "hanning", "kaiser", "i0"]


def _length(M: Any, name: str) -> int:
    return operator.index(concrete_value(M, f"M argument of jnp.{name}"))


def _window(name: str, M: Any, formula) -> Any:
    M = _length(M, name)
    dt = dtypes.default_float_dtype()
    if M <= 1:
        return ones(max(M, 0), dt)
    return formula(arange(M, dtype=dt), M)


def bartlett(M: int) -> Any:
    """The Bartlett (triangular) window of ``M`` points."""
    return _window("bartlett", M, lambda n, M: 1 - absolute(2 * n - M + 1) / (M - 1))


def blackman(M: int) -> Any:
    """The Blackman window of ``M`` points."""
    return _window("blackman", M, lambda n, M: 0.42 - 0.5 * cos(2 * np.pi * n / (M - 1)) +
                   0.08 * cos(4 * np.pi * n / (M - 1)))


def hamming(M: int) -> Any:
    """The Hamming window of ``M`` points."""
    return _window("hamming", M, lambda n, M: 0.54 - 0.46 * cos(2 * np.pi * n / (M - 1)))


def hanning(M: int) -> Any:
    """The Hann window of ``M`` points."""
    return _window("hanning", M, lambda n, M: 0.5 - 0.5 * cos(2 * np.pi * n / (M - 1)))


def i0(x: Any) -> Any:
    """The modified Bessel function of the first kind, order 0 (real inputs), as
    ``exp(|x|) * bessel_i0e(x)``."""
    check_arraylike("i0", x)
    (x,) = promote_dtypes_inexact(asarray(x))
    if dtypes.is_complex(x.dtype):
        raise ValueError(f"Unsupported input type to jax.numpy.i0: {x.dtype.name}")
    return exp(absolute(x)) * lax.bessel_i0e(x)


def kaiser(M: int, beta: Any) -> Any:
    """The Kaiser window of ``M`` points with shape parameter ``beta``."""
    def formula(n, M):
        alpha = (M - 1) / 2.0
        return i0(beta * sqrt(1 - ((n - alpha) / alpha) ** 2)) / i0(asarray(beta, n.dtype))
    return _window("kaiser", M, formula)
