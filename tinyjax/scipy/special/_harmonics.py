"""Spherical harmonics."""
from __future__ import annotations

from typing import Any

__all__ = ["sph_harm_y"]


def sph_harm_y(n: Any, m: Any, theta: Any, phi: Any, diff_n: int | None = None,
               n_max: int | None = None) -> Any:
    """The spherical harmonic ``Y_n^m(theta, phi)``: complex-valued, so not available
    until tinyjax has complex numbers."""
    raise NotImplementedError("jax.scipy.special.sph_harm_y returns complex numbers, which "
                              "tinyjax does not support yet")
