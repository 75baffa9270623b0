"""Collectives in a compiled per-device program: a step kind of their own.

A program that runs on every device of a mesh (``shard_map``, ``pmap``, a ``jit`` over
sharded arrays) reaches its collectives as steps: the operands come off the device, the
device's communicator for the named axes (:func:`tinyjax.backends.collectives.current`)
does the exchange on whole buffers, the result goes on.  So that the communicator only
ever works along the leading dimension (what NCCL offers), :func:`canonicalize` first
rewrites each collective into that form with the transposes and reshapes around it
(ordinary equations, fused into the neighbouring kernels): an ``all_gather`` along
dimension ``d`` gathers a leading axis and moves it to ``d``; ``psum_scatter`` and
``all_to_all`` move their dimensions to the front and back.  ``pvary`` is the identity.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tinyjax.backends.collectives import current
from tinyjax.core import ShapedArray
from tinyjax.jaxpr import Jaxpr, JaxprEqn, Var
from tinyjax.lax.parallel import (COLLECTIVES, REDUCTIONS, all_gather_p, all_to_all_p,
                                  axis_index_p, axis_names, ppermute_p, pvary_p,
                                  reduce_scatter_p)
from tinyjax.lax.shape import reshape_p, transpose_p

__all__ = ["COLLECTIVES", "canonicalize", "collective_routine"]


# ---- the leading-dimension form ----------------------------------------------------------------

class _Rewriter:
    """Builds the replacement equations of one collective."""

    def __init__(self, eqn: JaxprEqn):
        self.eqn, self.eqns = eqn, []

    def emit(self, prim, x: Var, aval: ShapedArray, **params) -> Var:
        out = Var(aval)
        self.eqns.append(JaxprEqn([x], [out], prim, params, self.eqn.source_info))
        return out

    def transpose(self, x: Var, perm: Sequence[int]) -> Var:
        perm = tuple(perm)
        if perm == tuple(range(len(perm))):
            return x
        shape = tuple(x.aval.shape[p] for p in perm)
        return self.emit(transpose_p, x, x.aval.update(shape=shape), permutation=perm)

    def reshape(self, x: Var, shape: Sequence[int]) -> Var:
        shape = tuple(shape)
        if shape == x.aval.shape:
            return x
        return self.emit(reshape_p, x, x.aval.update(shape=shape), new_sizes=shape,
                         dimensions=None, sharding=None)

    def collective(self, x: Var, shape: Sequence[int], **params) -> Var:
        p = dict(self.eqn.params)
        p.update(params)
        return self.emit(self.eqn.primitive, x, x.aval.update(shape=tuple(shape)), **p)


def _to_front(d: int, ndim: int) -> list[int]:
    return [d] + [i for i in range(ndim) if i != d]


def _from_front(d: int, ndim: int) -> list[int]:
    return list(range(1, d + 1)) + [0] + list(range(d + 1, ndim))


def _all_gather(r: _Rewriter, x: Var) -> Var:
    p = r.eqn.params
    d, n, s = p["all_gather_dimension"], p["axis_size"], x.aval.shape
    if p["tiled"] and d == 0:
        return r.collective(x, (n * s[0],) + s[1:], all_gather_dimension=0, tiled=True)
    g = r.collective(r.reshape(x, (1,) + s), (n,) + s, all_gather_dimension=0, tiled=True)
    if not p["tiled"]:
        return r.transpose(g, _from_front(d, len(s) + 1))
    g = r.transpose(g, _from_front(d, len(s) + 1))  # (..., n, s[d], ...)
    return r.reshape(g, s[:d] + (n * s[d],) + s[d + 1:])


def _reduce_scatter(r: _Rewriter, x: Var) -> Var:
    p = r.eqn.params
    d, n, s = p["scatter_dimension"], p["axis_size"], x.aval.shape
    front = r.transpose(x, _to_front(d, len(s)))
    rest = tuple(s[i] for i in range(len(s)) if i != d)
    out = r.collective(front, (s[d] // n,) + rest, scatter_dimension=0, tiled=True)
    if not p["tiled"]:
        return r.reshape(out, rest)
    return r.transpose(out, _from_front(d, len(s)))


def _all_to_all(r: _Rewriter, x: Var) -> Var:
    p = r.eqn.params
    sa, ca, s = p["split_axis"], p["concat_axis"], x.aval.shape
    front = r.transpose(x, _to_front(sa, len(s)))
    z = r.collective(front, front.aval.shape, split_axis=0, concat_axis=0, tiled=True)
    if sa == ca:  # split and concatenation along one dimension: the leading form is it
        return r.transpose(z, _from_front(sa, len(s)))
    out_shape = r.eqn.outvars[0].aval.shape
    n = s[sa] // out_shape[sa]
    others = [k for k in range(len(s)) if k != sa]
    # z: the blocks from every source j, j major: (j, block, other dimensions)
    z3 = r.reshape(z, (n, s[sa] // n) + tuple(s[k] for k in others))

    def position(k: int) -> int:  # of the local dimension k within z3
        return 1 if k == sa else 2 + others.index(k)
    order = [position(k) for k in range(ca)] + [0] + [position(k) for k in range(ca, len(s))]
    return r.reshape(r.transpose(z3, order), out_shape)


_REWRITES = {all_gather_p: _all_gather, reduce_scatter_p: _reduce_scatter,
             all_to_all_p: _all_to_all}


def canonicalize(jaxpr: Jaxpr) -> Jaxpr:
    """``jaxpr`` with every collective in its leading-dimension form (see the module
    docstring) and every ``pvary`` removed."""
    if not any(e.primitive in COLLECTIVES for e in jaxpr.eqns):
        return jaxpr
    sub: dict = {}
    eqns: list[JaxprEqn] = []

    def read(a):
        return sub.get(a, a) if isinstance(a, Var) else a

    for e in jaxpr.eqns:
        e = e.replace(invars=[read(a) for a in e.invars])
        if e.primitive is pvary_p:
            sub[e.outvars[0]] = e.invars[0]
            continue
        rewrite = _REWRITES.get(e.primitive)
        if rewrite is None:
            eqns.append(e)
            continue
        r = _Rewriter(e)
        out = rewrite(r, e.invars[0])
        if out.aval.shape != e.outvars[0].aval.shape:
            raise AssertionError(f"{e.primitive.name}: leading form gives {out.aval.shape}, "
                                 f"want {e.outvars[0].aval.shape}")
        eqns.extend(r.eqns)
        sub[e.outvars[0]] = out
    return Jaxpr(jaxpr.constvars, jaxpr.invars, [read(a) for a in jaxpr.outvars], eqns)


# ---- the step ------------------------------------------------------------------------------

def collective_routine(primitive, params: dict, backend: Any):
    """``run(ins, outs)`` of a collective (in its leading-dimension form) in a compiled
    program: the calling device's communicator for the named axes exchanges the operand's
    buffer; the result is copied into the program's buffer."""
    def run(ins: list, outs: list) -> None:
        result = _apply(current(), primitive, params, ins, backend)
        backend.copy_into(outs[0], result)
    return run


def _apply(participant, prim, p: dict, args: list, backend: Any) -> Any:
    if prim is axis_index_p:
        index = participant.axis_index(axis_names(p["axis_name"]))
        return backend.put(np.asarray(index, np.int32))
    (x,) = args
    if prim in REDUCTIONS:
        return participant.communicator(p["axes"]).all_reduce(x, REDUCTIONS[prim])
    comm = participant.communicator(axis_names(p["axis_name"]))
    if prim is all_gather_p:
        return comm.all_gather(x)
    if prim is reduce_scatter_p:
        return comm.reduce_scatter(x, "sum")
    if prim is all_to_all_p:
        return comm.all_to_all(x)
    if prim is ppermute_p:
        return comm.permute(x, p["perm"])
    raise NotImplementedError(f"no collective for '{prim.name}'")
