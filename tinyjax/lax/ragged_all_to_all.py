"""``ragged_all_to_all``: slices of ragged rows exchanged between the positions of a named
axis.

Every position sends ``operand[input_offsets[i] : input_offsets[i] + send_sizes[i]]`` to
position ``i // (K / n)`` (``K`` slices, ``n`` positions), which writes it into its copy of
``output`` at the offset the sender's ``output_offsets[i]`` names, ``recv_sizes`` rows long
(the receiver's sizes, which must agree with the senders').

Its definition (a composite primitive, :mod:`tinyjax.lax.composite`) is made of the
collectives the communicators run: every position gathers the operands of all
(``all_gather``) and the offsets meant for it (``all_to_all`` of the offsets), then
selects, row by row, the received rows over ``output``.  Under a vmap of the named axis
(and so in an eager ``shard_map``) the same row selection runs on the batch.  It is linear
in ``operand`` and ``output``; its transpose is the definition's (the cotangent rows go
back the way they came, summed where one row was sent several times; the cotangent of
``output`` is kept where nothing was written).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import Primitive, ShapedArray, get_aval
from tinyjax.interpreters import ad, batching
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.composite import define_composite, derive_rules
from tinyjax.lax.parallel import (_groups, _unbound, all_gather, all_to_all, axis_names,
                                  axis_size)

__all__ = ["ragged_all_to_all", "ragged_all_to_all_p"]

ragged_all_to_all_p = Primitive("ragged_all_to_all")

_OFFSET_NAMES = ("input_offsets", "send_sizes", "output_offsets", "recv_sizes")


# ---- the row selection every receiver runs ---------------------------------------------------

def _rows_within(rows, start, size):
    """A mask over ``rows``: start <= row < start + size."""
    from tinyjax.lax.elementwise import add, bitwise_and, ge, lt
    return bitwise_and(ge(rows, start), lt(rows, add(start, size)))


def _broadcast_rows(mask, aval: ShapedArray):
    from tinyjax.lax.shape import broadcast_in_dim
    return broadcast_in_dim(mask, aval.shape, (0,))


def _take_rows(x, rows):
    """``x[rows]`` along the leading dimension (``rows`` in range)."""
    from tinyjax.lax.gather_scatter import GatherDimensionNumbers, gather
    from tinyjax.lax.slicing import expand_dims
    shape = get_aval(x).shape
    dnums = GatherDimensionNumbers(offset_dims=tuple(range(1, len(shape))),
                                   collapsed_slice_dims=(0,), start_index_map=(0,))
    return gather(x, expand_dims(rows, (1,)), dnums, (1,) + tuple(shape[1:]),
                  mode="promise_in_bounds")


def _receive(output, sent, rows_per_source: int, slices_per_source: int, in_offsets,
             out_offsets, recv_sizes):
    """``output`` with the received slices written: slice ``i`` comes from source
    ``i // slices_per_source``, whose rows are ``sent[source * rows_per_source:][:N]``,
    starting at ``in_offsets[i]``; it is written at ``out_offsets[i]``, ``recv_sizes[i]``
    rows long."""
    from tinyjax.lax.elementwise import add, clamp, select_n, sub
    from tinyjax.lax.shape import iota
    from tinyjax.lax.slicing import index_in_dim
    out_aval = get_aval(output)
    rows = iota(np.int32, out_aval.shape[0])
    result = output
    for i in range(get_aval(in_offsets).shape[0]):
        start, size = index_in_dim(out_offsets, i, 0, False), index_in_dim(recv_sizes, i, 0,
                                                                           False)
        within = add(index_in_dim(in_offsets, i, 0, False), sub(rows, start))
        within = clamp(as_operand(0, np.int32), within,
                       as_operand(rows_per_source - 1, np.int32))
        source = (i // slices_per_source) * rows_per_source
        taken = _take_rows(sent, add(within, as_operand(source, np.int32)))
        mask = _broadcast_rows(_rows_within(rows, start, size), out_aval)
        result = select_n(mask, result, taken)
    return result


def _int32(x):
    from tinyjax.lax.elementwise import convert_element_type
    return convert_element_type(x, np.int32)


def _definition(operand, output, input_offsets, send_sizes, output_offsets, recv_sizes, *,
                axis_name, axis_index_groups):
    n = axis_size(axis_name)
    sent = all_gather(operand, axis_name, axis=0, tiled=True)
    in_offsets = all_to_all(_int32(input_offsets), axis_name, 0, 0, tiled=True)
    out_offsets = all_to_all(_int32(output_offsets), axis_name, 0, 0, tiled=True)
    return _receive(output, sent, get_aval(operand).shape[0],
                    get_aval(input_offsets).shape[0] // n, in_offsets, out_offsets,
                    _int32(recv_sizes))


# ---- rules -----------------------------------------------------------------------------------

def _abstract_eval(operand, output, input_offsets, send_sizes, output_offsets, recv_sizes, *,
                   axis_name, axis_index_groups):
    offsets = (input_offsets, send_sizes, output_offsets, recv_sizes)
    for name, a in zip(_OFFSET_NAMES, offsets):
        if not dtypes.issubdtype(a.dtype, np.integer):
            raise ValueError(f"ragged_all_to_all {name} must be integer type.")
    for name, a in zip(_OFFSET_NAMES, offsets):
        if len(a.shape) != 1 or a.shape[0] < 1:
            raise ValueError(f"ragged_all_to_all {name} must be rank 1 with positive "
                             f"dimension size, but got shape {a.shape}")
    if len({a.shape for a in offsets}) != 1:
        raise ValueError("ragged_all_to_all input_offsets, send_sizes, output_offsets and "
                         "recv_sizes must have the same shape, got "
                         f"{[a.shape for a in offsets]}")
    n = axis_size(axis_name)
    if input_offsets.shape[0] % n:
        raise ValueError(f"ragged_all_to_all: the number of slices {input_offsets.shape[0]} "
                         f"must be divisible by the size {n} of axis {axis_name}")
    if operand.shape[1:] != output.shape[1:] or operand.dtype != output.dtype:
        raise TypeError("ragged_all_to_all operand and output must have the same dtype and "
                        "trailing dimensions, got "
                        f"{operand.str_short()} and {output.str_short()}")
    return output.update(weak_type=False)


def _jvp(primals, tangents, **params):
    operand_dot, output_dot = tangents[:2]
    out = ragged_all_to_all_p.bind(*primals, **params)
    if type(operand_dot) is ad.Zero and type(output_dot) is ad.Zero:
        return out, ad.Zero.from_primal(out)
    dots = [ad.instantiate_zeros(t) for t in (operand_dot, output_dot)]
    return out, ragged_all_to_all_p.bind(*dots, *primals[2:], **params)


def _batch(axis_data, vals, dims, *, axis_name, axis_index_groups):
    names = axis_names(axis_name)
    if axis_data.name not in names:
        return _batch_other_axis(axis_data, vals, dims, axis_name, axis_index_groups)
    if len(names) > 1:
        raise NotImplementedError(f"ragged_all_to_all over the axes {axis_name}, of which "
                                  f"only {axis_data.name!r} is a vmapped axis")
    return _batch_this_axis(axis_data, vals, dims), 0


def _batch_this_axis(axis_data, vals, dims):
    """The exchange over the vmapped axis: the batch is every position's operand; each
    receiver's offsets are the senders' (a transpose of the (source, receiver, slice)
    blocks)."""
    from tinyjax.lax.shape import reshape, transpose
    n = axis_data.size
    operand, output, *offsets = [batching.moveaxis(v, d, 0, n) for v, d in zip(vals, dims)]
    operand_aval = get_aval(operand)
    rows = operand_aval.shape[1]
    sent = reshape(operand, (n * rows,) + operand_aval.shape[2:])
    k = get_aval(offsets[0]).shape[1]

    def to_receivers(x):  # x[source, receiver * spd + j] -> [receiver, source * spd + j]
        x = reshape(_int32(x), (n, n, k // n))
        return reshape(transpose(x, (1, 0, 2)), (n, k))
    in_offsets, out_offsets = to_receivers(offsets[0]), to_receivers(offsets[2])
    receive = lambda out, i, o, s: [_receive(out, sent, rows, k // n, i, o, s)]
    return batching.vmap_flat(receive, batching.AxisData(object(), n),
                              [output, in_offsets, out_offsets, _int32(offsets[3])],
                              [0, 0, 0, 0], [0])[0]


def _batch_other_axis(axis_data, vals, dims, axis_name, axis_index_groups):
    """A vmap of another axis around the collective: one exchange per batch element."""
    from tinyjax.lax.slicing import concatenate, expand_dims, index_in_dim
    if all(d is None for d in dims):
        return ragged_all_to_all_p.bind(*vals, axis_name=axis_name,
                                        axis_index_groups=axis_index_groups), None
    outs = []
    for b in range(axis_data.size):
        args = [v if d is None else index_in_dim(v, b, d, keepdims=False)
                for v, d in zip(vals, dims)]
        out = ragged_all_to_all_p.bind(*args, axis_name=axis_name,
                                       axis_index_groups=axis_index_groups)
        outs.append(expand_dims(out, (0,)))
    return concatenate(outs, 0), 0


def _unbound_impl(*args, axis_name, axis_index_groups):
    raise _unbound(axis_names(axis_name)[0])


ragged_all_to_all_p.def_abstract_eval(_abstract_eval)
ragged_all_to_all_p.def_impl(_unbound_impl)
ad.primitive_jvps[ragged_all_to_all_p] = _jvp
batching.fancy_primitive_batchers[ragged_all_to_all_p] = _batch
define_composite(ragged_all_to_all_p, _definition, eager=False)
# the transpose: the definition's, so that rows sent to several receivers gather the sum
# of their cotangents (a ragged_all_to_all back, as JAX's rule is, would keep one)
derive_rules(ragged_all_to_all_p, linear=(0, 1))


def ragged_all_to_all(operand: Any, output: Any, input_offsets: Any, send_sizes: Any,
                      output_offsets: Any, recv_sizes: Any, *, axis_name: Any,
                      axis_index_groups: Sequence | None = None) -> Any:
    """Exchange ragged slices of rows between the positions of the named axis: position
    ``p`` sends ``operand[input_offsets[i]:][:send_sizes[i]]`` for each ``i`` to position
    ``i // (K / n)`` (``K = len(input_offsets)``, ``n`` the axis size), which writes them
    into ``output`` at ``output_offsets[i]`` (the sender's), ``recv_sizes[i]`` rows long
    (the receiver's).  Returns ``output`` with the received rows written."""
    _groups(axis_index_groups, "ragged_all_to_all")
    args = [as_operand(a) for a in (operand, output, input_offsets, send_sizes,
                                    output_offsets, recv_sizes)]
    names = axis_names(axis_name)
    # (checked here too: under a vmap of the axis the batching rule runs, not the
    # abstract evaluation)
    _abstract_eval(*[get_aval(a) for a in args], axis_name=names, axis_index_groups=None)
    return ragged_all_to_all_p.bind(*args, axis_name=names, axis_index_groups=None)
