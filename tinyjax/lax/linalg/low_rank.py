"""``symmetric_product`` (``alpha a a^T + beta c``) and ``cholesky_update`` (the
Cholesky factor of a rank-1 update), composite primitives: each is defined once in lax
operations (:mod:`tinyjax.lax.composite`), which eager evaluation interprets and the
compiler expands into fused kernels on every device -- as JAX lowers both on the CPU.

JAX defines them on real floating types only.  Their jvp and batching come from the
definitions (JAX has neither for ``cholesky_update``, nor a jvp for
``symmetric_product``).
"""
from __future__ import annotations

from typing import Any

from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.lax import elementwise as ew
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.control_flow import fori_loop
from tinyjax.lax.linalg._common import (T, check_real, check_same_dtypes, linalg_primitive,
                                        matmul, tril)
from tinyjax.lax.shape import full
from tinyjax.lax.slicing import dynamic_index_in_dim, dynamic_update_index_in_dim

__all__ = ["symmetric_product", "symmetric_product_p", "cholesky_update",
           "cholesky_update_p"]

# ---------------------------------------------------------------------------
# symmetric_product
# ---------------------------------------------------------------------------


def _symmetric_product_shape(a_shape, c_shape, **_):
    if a_shape[0] != c_shape[1] or c_shape[0] != c_shape[1]:
        raise ValueError("symmetric_update expects a rectangular matrix of shape (m, n) and "
                         f"a square matrix of shape (m, m). Got shapes {tuple(a_shape)} and "
                         f"{tuple(c_shape)}.")
    return tuple(c_shape)


symmetric_product_p = linalg_primitive(
    "symmetric_product", (2, 2), _symmetric_product_shape,
    lambda *dts, **_: check_same_dtypes("symmetric_product", *dts), None,
    accepts=lambda i, aval: check_real("symmetric_product", i, aval))


def _symmetric_product(a, c, *, alpha, beta):
    dt = get_aval(c).dtype
    return ew.add(ew.mul(full((), alpha, dt), matmul(a, T(a))),
                  ew.mul(full((), beta, dt), c))


define_composite(symmetric_product_p, _symmetric_product)
derive_rules(symmetric_product_p)


def symmetric_product(a_matrix: Any, c_matrix: Any, *, alpha: float = 1.,
                      beta: float = 0., symmetrize_output: bool = False) -> Any:
    """``alpha a a^T + beta c`` for ``a`` of shape ``[..., m, n]`` and symmetric ``c`` of
    shape ``[..., m, m]``.  JAX guarantees only the lower triangle (cuSOLVER's ``syrk``
    fills no other); tinyjax computes the whole product everywhere.  With
    ``symmetrize_output`` the upper triangle is the lower one transposed."""
    out = symmetric_product_p.bind(as_operand(a_matrix), as_operand(c_matrix),
                                   alpha=alpha, beta=beta)
    if symmetrize_output:
        out = ew.add(tril(out), T(tril(out, -1)))
    return out


# ---------------------------------------------------------------------------
# cholesky_update
# ---------------------------------------------------------------------------

cholesky_update_p = Primitive("cholesky_update")


def _cholesky_update_abstract_eval(r, w):
    for i, (aval, rank) in enumerate(((r, 2), (w, 1))):
        if aval.ndim != rank:
            raise TypeError(f"Input {i} to cholesky_update must have a rank of exactly "
                            f"{rank}, but got shape={aval.shape}")
        check_real("cholesky_update", i, aval)
    dt = check_same_dtypes("cholesky_update", r.dtype, w.dtype)
    if r.shape[0] != r.shape[1] or w.shape[0] != r.shape[1]:
        raise ValueError("Rank-1 update to Cholesky decomposition takes a square matrix and "
                         f"a vector of the same size as input. Got shapes {r.shape} and "
                         f"{w.shape} instead")
    return ShapedArray(r.shape, dt)


cholesky_update_p.def_abstract_eval(_cholesky_update_abstract_eval)


def _rotate_row(k, carry):
    """Row ``k`` of ``R`` and the vector ``z`` turned by the Givens rotation that zeroes
    ``z[k]`` against ``R[k, k]`` (scaled by the larger of the two, so no square
    overflows); the rotation is the identity where ``z[k]`` is already zero."""
    r, z = carry
    row = dynamic_index_in_dim(r, k, 0, keepdims=False)
    x = dynamic_index_in_dim(row, k, 0, keepdims=False)
    y = dynamic_index_in_dim(z, k, 0, keepdims=False)
    dt = get_aval(r).dtype
    one, zero = full((), 1, dt), full((), 0, dt)
    skip = ew.eq(y, zero)
    scale = ew.select(skip, one, ew.max(ew.abs(x), ew.abs(y)))
    xs, ys = ew.div(x, scale), ew.div(y, scale)
    norm = ew.sqrt(ew.add(ew.mul(xs, xs), ew.mul(ys, ys)))
    cos = ew.select(skip, one, ew.div(xs, norm))
    sin = ew.select(skip, zero, ew.div(ys, norm))
    new_row = ew.add(ew.mul(cos, row), ew.mul(sin, z))
    new_z = ew.sub(ew.mul(cos, z), ew.mul(sin, row))
    return dynamic_update_index_in_dim(r, new_row, k, 0), new_z


def _cholesky_update(r, w):
    return fori_loop(0, get_aval(r).shape[0], _rotate_row, (r, w))[0]


define_composite(cholesky_update_p, _cholesky_update)
derive_rules(cholesky_update_p)


def cholesky_update(r_matrix: Any, w_vector: Any) -> Any:
    """The upper Cholesky factor ``R'`` of ``R^T R + w w^T`` from the upper factor ``R``
    of ``A = R^T R`` (``n x n``) and ``w`` (``n``), in ``O(n^2)`` by Givens rotations."""
    return cholesky_update_p.bind(as_operand(r_matrix), as_operand(w_vector))

