"""``jax.experimental.checkify``: run-time checks as values.

``checkify(f, errors=...)`` returns a function giving ``(error, f(*args))``.  Inside it,
``check(pred, msg, *fmt_args)`` records a failed check instead of raising, and the
automatic checks chosen by ``errors`` (``index_checks``: out-of-bounds gathers and
slices, ``nan_checks``: a primitive producing a NaN, ``div_checks``: division by zero)
are added around the primitives.  The error is a pytree of arrays (a flag, the code of
the first failed check, and each check's payload), so checkified functions work under
``jit``, ``vmap`` (one error per batch element) and ``grad``; ``error.get()`` is its
message and ``error.throw()`` raises it as ``JaxRuntimeError``.

The function is traced to a jaxpr, then evaluated equation by equation under the current
trace, threading the error state through ``cond``/``switch``, ``scan``/``fori_loop`` and
``while_loop`` bodies.  Outside ``checkify`` an eager ``check`` raises at once; a staged
one (under ``jit``) is an error, as in JAX.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyjax import lax, tree_util
from tinyjax.tree_util import physical
from tinyjax.array import Array, wrap_eager
from tinyjax.compiler.lower.registry import inlined_calls
from tinyjax.core import Primitive, ShapedArray, get_aval, is_eager
from tinyjax.interpreters import ad, batching
from tinyjax.interpreters.staging import trace_to_closed_jaxpr
from tinyjax.jaxpr import ClosedJaxpr, Jaxpr, Literal, eval_jaxpr, sub_jaxprs
from tinyjax.lax._helpers import as_operand
from tinyjax.lax.control_flow import cond_p, scan_p, while_p
from tinyjax.sharding import PartitionSpec
from tinyjax.spmd.shard_map import map_blocks, shard_map_p
import tinyjax.numpy as jnp

__all__ = ["Error", "ErrorCategory", "JaxRuntimeError", "all_checks", "automatic_checks",
           "check", "check_error", "checkify", "debug_check", "div_checks", "float_checks",
           "index_checks", "init_error", "nan_checks", "user_checks"]


# ---- error categories ----------------------------------------------------------------------

class JaxRuntimeError(ValueError):
    """A failed check, raised (a ValueError, as JAX's checkify raises it; not
    ``jax.errors.JaxRuntimeError``)."""


class JaxException(Exception):
    """The base of the kinds of checkify errors (``ErrorCategory``)."""


class FailedCheckError(JaxException):
    """A ``checkify.check`` whose predicate was false."""


class OOBError(JaxException):
    """An out-of-bounds index in a gather, scatter or dynamic slice."""


class NaNError(JaxException):
    """A primitive produced a NaN."""


class DivisionByZeroError(JaxException):
    """A division or remainder by zero."""


ErrorCategory = type[JaxException]
user_checks = frozenset({FailedCheckError})
index_checks = frozenset({OOBError})
nan_checks = frozenset({NaNError})
div_checks = frozenset({DivisionByZeroError})
float_checks = nan_checks | div_checks
automatic_checks = float_checks | index_checks
all_checks = automatic_checks | user_checks


# ---- check sites: what can fail, and the message it gives --------------------------------

class Site:
    """One place that can fail: its kind, how its message reads, the avals of its
    payload (the run-time values the message shows).  Compared by identity."""

    def __init__(self, kind: ErrorCategory, payload_avals: Sequence[ShapedArray],
                 message: Callable[[list[np.ndarray]], str]):
        self.kind, self.payload_avals, self._message = kind, list(payload_avals), message

    def message(self, payload: Sequence[Any]) -> str:
        return self._message([np.asarray(p) for p in payload])

    def __repr__(self) -> str:
        return f"Site({self.kind.__name__})"


class UserCheck:
    """The static part of a ``check``: its message template and the structure of its
    formatting arguments."""

    def __init__(self, msg: str, fmt_tree: tree_util.PyTreeDef, debug: bool):
        self.msg, self.fmt_tree, self.debug = msg, fmt_tree, debug

    def format(self, values: Sequence[Any]) -> str:
        args, kwargs = self.fmt_tree.unflatten([wrap_eager(np.asarray(v)) for v in values])
        return f"{self.msg.format(*args, **kwargs)} (`check` failed)"

    def __repr__(self) -> str:
        return f"UserCheck({self.msg!r})"


# ---- the check primitive -------------------------------------------------------------------

_functionalizing = [0]  # > 0 while checkify traces a function: checks may be staged


@contextmanager
def _tracing_for_checkify() -> Iterator[None]:
    _functionalizing[0] += 1
    try:
        yield
    finally:
        _functionalizing[0] -= 1


check_p = Primitive("check", multiple_results=True)
check_p.effectful = True


def _check_impl(pred, *payload, check, batched=False):
    if not np.all(pred):
        raise JaxRuntimeError(check.format(_first_failure(np.asarray(pred), payload)))
    return []


def _first_failure(pred: np.ndarray, payload: Sequence[Any]) -> list[Any]:
    """The payload at the first failing batch element (a batched check), else as is."""
    if pred.ndim == 0:
        return list(payload)
    i = int(np.argmax(~pred.reshape(-1)))
    return [np.asarray(p).reshape((-1,) + np.shape(p)[pred.ndim:])[i] for p in payload]


def _check_abstract_eval(pred, *payload, check, batched=False):
    if pred.dtype != np.bool_:
        raise TypeError(f"check: the predicate must be a boolean, got {pred.str_short()}")
    if not _functionalizing[0] and not is_eager():
        raise ValueError("Cannot abstractly evaluate a checkify.check which was not "
                         "functionalized. This probably means you tried to stage "
                         "(jit/scan/pmap/...) a `check` without functionalizing it through "
                         "`checkify.checkify`.")
    return []


check_p.def_impl(_check_impl)
check_p.def_abstract_eval(_check_abstract_eval)
ad.primitive_jvps[check_p] = lambda primals, tangents, **params: (
    check_p.bind(*primals, **params), [])


def _check_batch(vals, dims, *, check, batched=False):
    """A batched check holds every element's predicate and payload (batch axis first)."""
    size = next(v.shape[d] for v, d in zip(vals, dims) if d is not None)
    moved = [batching.bdim_at_front(v, d, size) if d is not None else
             lax.broadcast(v, (size,)) for v, d in zip(vals, dims)]
    check_p.bind(*moved, check=check, batched=True)
    return [], []


batching.primitive_batchers[check_p] = _check_batch


def _is_array(x: Any) -> bool:
    return isinstance(x, (Array, np.ndarray, np.generic))


def check(pred: Any, msg: str, *fmt_args: Any, **fmt_kwargs: Any) -> None:
    """Check that ``pred`` holds; if not, the message ``msg.format(*fmt_args,
    **fmt_kwargs)`` (formatted with the run-time values of the array arguments).  Inside
    ``checkify`` a failure becomes the returned error; eagerly it raises
    JaxRuntimeError."""
    _bind_check(pred, msg, fmt_args, fmt_kwargs, debug=False)


def debug_check(pred: Any, msg: str, *fmt_args: Any, **fmt_kwargs: Any) -> None:
    """A ``check`` that does nothing outside ``checkify``."""
    if _functionalizing[0]:
        _bind_check(pred, msg, fmt_args, fmt_kwargs, debug=True)


def _bind_check(pred, msg, fmt_args, fmt_kwargs, debug: bool) -> None:
    if not isinstance(msg, str):
        raise TypeError(f"checkify.check takes a message string, got {msg!r}")
    leaves, fmt_tree = physical.tree_flatten((fmt_args, fmt_kwargs))
    for leaf in leaves:
        if not _is_array(leaf):
            raise TypeError("Formatting arguments to checkify.check need to be PyTrees of "
                            f"arrays, but got {leaf!r} of type {type(leaf)}.")
    pred = as_operand(pred)
    if get_aval(pred).shape:
        pred = jnp.all(pred)
    check_p.bind(pred, *[as_operand(v) for v in leaves],
                 check=UserCheck(msg, fmt_tree, debug))


# ---- the error value -----------------------------------------------------------------------

class Error:
    """The result of a checkified function: whether a check failed, which one first, and
    its payload.  A pytree; batched (one error per element) under ``vmap``."""

    def __init__(self, err: Any, code: Any, payloads: Sequence[Sequence[Any]],
                 sites: Sequence[Site]):
        self._err, self._code = err, code
        self._payloads = tuple(tuple(p) for p in payloads)
        self._sites = tuple(sites)

    def _messages(self) -> list[tuple[Any, str]]:
        """(batch index or None, message) of every failing element, in order."""
        err, code = np.asarray(self._err), np.asarray(self._code)
        out = []
        for idx in np.ndindex(err.shape):
            if err[idx]:
                site = self._sites[int(code[idx])]
                payload = [np.asarray(p)[idx] for p in self._payloads[int(code[idx])]]
                out.append((idx if err.shape else None, site.message(payload)))
        return out

    def get(self) -> str | None:
        """The error's message (per failing element when batched), or None."""
        msgs = self._messages()
        if not msgs:
            return None
        if msgs[0][0] is None:
            return msgs[0][1]
        return "\n".join(f"at mapped index {i[0] if len(i) == 1 else i}: {m}"
                         for i, m in msgs)

    def get_exception(self) -> JaxRuntimeError | None:
        msgs = self._messages()
        return JaxRuntimeError(msgs[0][1]) if msgs else None

    def throw(self) -> None:
        """Raise the first failure as JaxRuntimeError (nothing if no check failed)."""
        exc = self.get_exception()
        if exc is not None:
            raise exc

    def __repr__(self) -> str:
        return f"Error({self.get()})"


tree_util.register_pytree_node(
    Error, lambda e: ((e._err, e._code, e._payloads), e._sites),
    lambda sites, ch: Error(ch[0], ch[1], ch[2], sites))


# an error with no failed check
init_error = Error(wrap_eager(np.asarray(False)), wrap_eager(np.asarray(0, np.int32)), [], [])


def check_error(error: Error) -> None:
    """Raise ``error`` (eagerly) or carry it into the enclosing checkify's error."""
    if not isinstance(error, Error):
        raise TypeError(f"check_error takes a checkify.Error, got {error!r}")
    if not error._sites:
        return
    if is_eager():
        error.throw()
        return
    raise NotImplementedError("checkify.check_error of a traced error: return the error "
                              "from the checkified function instead")


# ---- the checker ---------------------------------------------------------------------------

def checkify(fun: Callable, errors: frozenset = user_checks) -> Callable:
    """``fun`` returning ``(error, out)``: the failed checks of the kinds in ``errors``
    (``user_checks``, ``index_checks``, ``nan_checks``, ``div_checks``, ``float_checks``,
    ``automatic_checks``, ``all_checks`` or their unions) as a value."""
    errors = frozenset(errors)
    unknown = [e for e in errors if not (isinstance(e, type) and issubclass(e, JaxException))]
    if unknown:
        raise TypeError(f"checkify errors must be checkify error categories, got {unknown}")

    def checked(*args: Any, **kwargs: Any) -> tuple[Error, Any]:
        leaves, in_tree = physical.tree_flatten((args, kwargs))
        # arrays are traced; Python values reach ``fun`` as they are (as in JAX)
        dynamic = [i for i, x in enumerate(leaves) if _is_array(x)]
        flat = [as_operand(leaves[i]) for i in dynamic]
        out_tree: list = []

        def flat_fun(*xs):
            full = list(leaves)
            for i, x in zip(dynamic, xs):
                full[i] = x
            a, k = in_tree.unflatten(full)
            outs, tree = physical.tree_flatten(fun(*a, **k))
            out_tree.append(tree)
            return [as_operand(x) for x in outs]

        with _tracing_for_checkify():
            closed = trace_to_closed_jaxpr(flat_fun, [get_aval(x) for x in flat])
        checker = _Checker(errors)
        checker.collect(closed.jaxpr)
        state = checker.initial_state()
        state, outs = checker.eval(closed.jaxpr, closed.consts, flat, state)
        err, code, payloads = state
        return Error(err, code, payloads, checker.sites), out_tree[0].unflatten(outs)

    checked.__name__ = f"checkify({getattr(fun, '__name__', 'fun')})"
    return checked


def _open(j: Any) -> tuple[Jaxpr, list[Any]]:
    """An open jaxpr and the constants its leading invars take."""
    if isinstance(j, ClosedJaxpr):
        return Jaxpr([], list(j.jaxpr.constvars) + list(j.jaxpr.invars), j.jaxpr.outvars,
                     j.jaxpr.eqns), list(j.consts)
    return Jaxpr([], list(j.constvars) + list(j.invars), j.outvars, j.eqns), []


_DIV = ("div", "rem")
_INDEXING = ("gather", "dynamic_slice", "dynamic_update_slice", "scatter", "scatter-add",
             "scatter-mul", "scatter-min", "scatter-max", "scatter_add", "scatter_mul",
             "scatter_min", "scatter_max")


class _Checker:
    """Evaluates a jaxpr under the current trace with the error state threaded through."""

    def __init__(self, errors: frozenset):
        self.errors = errors
        self.sites: list[Site] = []
        self.site_of: dict[tuple[int, int], int] = {}  # (id(eqn), part) -> site number

    # -- the sites, found by a walk before evaluating (the state's layout is fixed) --
    def collect(self, jaxpr: Jaxpr) -> None:
        for eqn in jaxpr.eqns:
            for part, site in enumerate(self._sites_of(eqn)):
                self.site_of[(id(eqn), part)] = len(self.sites)
                self.sites.append(site)
            for sub in sub_jaxprs(eqn.params):
                self.collect(sub)

    def _sites_of(self, eqn) -> list[Site]:
        """The checks of one equation, in the order they are made."""
        name, prim = eqn.primitive.name, eqn.primitive
        if prim is check_p:
            chk = eqn.params["check"]
            if FailedCheckError not in self.errors and not chk.debug:
                return []
            avals = [a.aval for a in eqn.invars[1:]]
            if eqn.params.get("batched"):
                avals = [a.update(shape=a.shape[1:]) for a in avals]
            return [Site(FailedCheckError, avals, chk.format)]
        if prim in (cond_p, scan_p, while_p) or prim in inlined_calls:
            return []  # their bodies' equations are checked
        sites = []
        if OOBError in self.errors and name in _INDEXING and \
                "FILL_OR_DROP" not in str(eqn.params.get("mode", "")):
            shape = eqn.invars[0].aval.shape
            i32 = ShapedArray((), np.int32)
            sites.append(Site(OOBError, [i32, i32], lambda p, s=shape: (
                f"out-of-bounds indexing for array of shape {s}: index {int(p[0])} is out "
                f"of bounds for axis {int(p[1])} with size {s[int(p[1])]}. ")))
        if DivisionByZeroError in self.errors and name in _DIV:
            sites.append(Site(DivisionByZeroError, [], lambda _: "division by zero"))
        if NaNError in self.errors and any(v.aval.dtype.kind in "fc" for v in eqn.outvars):
            sites.append(Site(NaNError, [], lambda _, n=name: f"nan generated by primitive: "
                                                              f"{n}."))
        return sites

    def initial_state(self) -> tuple:
        payloads = [[jnp.zeros(a.shape, a.dtype) for a in s.payload_avals] for s in self.sites]
        return (jnp.asarray(False), jnp.asarray(0, np.int32), payloads)

    def _update(self, state, site: int, failed: Any, payload: Sequence[Any]) -> tuple:
        err, code, payloads = state
        first = jnp.logical_and(failed, jnp.logical_not(err))
        payloads = list(payloads)
        payloads[site] = [jnp.where(first, new, old)
                          for new, old in zip(payload, payloads[site])]
        return (jnp.logical_or(err, failed), jnp.where(first, np.int32(site), code), payloads)

    def _has_sites(self, jaxpr: Jaxpr) -> bool:
        return any((id(e), 0) in self.site_of or any(self._has_sites(j) for j in
                                                    sub_jaxprs(e.params))
                   for e in jaxpr.eqns)

    # -- evaluation --
    def eval(self, jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any], state
             ) -> tuple[tuple, list[Any]]:
        env: dict = {}

        def read(a):
            return a.val if isinstance(a, Literal) else env[a]

        env.update(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        for eqn in jaxpr.eqns:
            ins = [read(a) for a in eqn.invars]
            state, outs = self._eval_eqn(eqn, ins, state)
            env.update(zip(eqn.outvars, outs))
        return state, [read(a) for a in jaxpr.outvars]

    def _eval_eqn(self, eqn, ins: list, state) -> tuple[tuple, list]:
        prim = eqn.primitive
        if prim is check_p:
            site = self.site_of.get((id(eqn), 0))
            if site is None:
                return state, []
            pred, payload = ins[0], ins[1:]
            if eqn.params.get("batched"):
                bad = jnp.logical_not(pred).reshape(-1)
                i = jnp.argmax(bad)
                payload = [p.reshape((-1,) + p.shape[pred.ndim:])[i] for p in payload]
                return self._update(state, site, jnp.any(bad), payload), []
            return self._update(state, site, jnp.logical_not(pred), payload), []
        if any(self._has_sites(j) for j in sub_jaxprs(eqn.params)):
            if prim is scan_p:
                return self._scan(eqn, ins, state)
            if prim is cond_p:
                return self._cond(eqn, ins, state)
            if prim is while_p:
                return self._while(eqn, ins, state)
            if prim is shard_map_p:
                return self._shard_map(eqn, ins, state)
            if prim in inlined_calls:  # evaluated in place (the call's own rules unused)
                inner, operands = inlined_calls[prim](eqn, ins)
                body, consts = _open(inner)
                return self.eval(body, [], consts + [as_operand(x) for x in operands],
                                 state)
        out = prim.bind(*ins, **eqn.params)
        outs = list(out) if prim.multiple_results else [out]
        part = 0
        while (id(eqn), part) in self.site_of:
            state = self._automatic(eqn, self.site_of[(id(eqn), part)], ins, outs, state)
            part += 1
        return state, outs

    def _automatic(self, eqn, site: int, ins: list, outs: list, state) -> tuple:
        kind = self.sites[site].kind
        if kind is NaNError:
            failed = jnp.asarray(False)
            for o in outs:
                if get_aval(o).dtype.kind in "fc":
                    failed = jnp.logical_or(failed, jnp.any(jnp.isnan(o)))
            return self._update(state, site, failed, [])
        if kind is DivisionByZeroError:
            return self._update(state, site, jnp.any(ins[1] == 0), [])
        return self._update(state, site, *_out_of_bounds(eqn, ins))

    # -- control flow: the error state as extra carry / operands --
    def _scan(self, eqn, ins, state):
        p = eqn.params
        body, body_consts = _open(p["jaxpr"])
        nc, ncar = p["num_consts"], p["num_carry"]
        consts, init, xs = ins[:nc], ins[nc:nc + ncar], ins[nc + ncar:]

        def step(carry, x):
            st, c = carry
            xs_now = [] if x is None else list(x)
            st, outs = self.eval(body, [], body_consts + consts + list(c) + xs_now, st)
            return (st, outs[:ncar]), outs[ncar:]

        (state, carry), ys = lax.scan(step, (state, init), xs if xs else None,
                                      length=p["length"], reverse=p["reverse"])
        return state, list(carry) + list(ys)

    def _cond(self, eqn, ins, state):
        index, ops = ins[0], ins[1:]

        def branch(j):
            body, consts = _open(j)
            return lambda st, *xs: self.eval(body, [], consts + list(xs), st)

        state, outs = lax.switch(index, [branch(b) for b in eqn.params["branches"]],
                                 state, *ops)
        return state, list(outs)

    def _shard_map(self, eqn, ins, state):
        """Each device checks its blocks from a fresh state, returned stacked over the
        devices; the first device that failed gives the error (as JAX reports it)."""
        p = eqn.params
        body, mesh = p["jaxpr"], p["mesh"]
        n_out = len(body.outvars)
        leaves, state_tree = physical.tree_flatten(self.initial_state())

        def per_device(*xs):
            st, outs = self.eval(body, [], list(xs), self.initial_state())
            return list(outs) + [lax.expand_dims(x, (0,))
                                 for x in physical.tree_leaves(st)]

        every_axis = PartitionSpec(tuple(mesh.axis_names))
        outs = map_blocks(per_device, ins, p["in_specs"],
                          list(p["out_specs"]) + [every_axis] * len(leaves), mesh,
                          p["check_vma"])
        errs, codes, payloads = tree_util.tree_unflatten(state_tree, outs[n_out:])
        first = jnp.argmax(errs)
        failed = jnp.any(errs)
        err, code, old_payloads = state
        take = jnp.logical_and(failed, jnp.logical_not(err))
        new_payloads = [[jnp.where(take, new[first], old) for new, old in zip(site, old_site)]
                        for site, old_site in zip(payloads, old_payloads)]
        return ((jnp.logical_or(err, failed), jnp.where(take, codes[first], code),
                 new_payloads), outs[:n_out])

    def _while(self, eqn, ins, state):
        p = eqn.params
        cond_j, cond_consts = _open(p["cond_jaxpr"])
        body_j, body_consts = _open(p["body_jaxpr"])
        if self._has_sites(cond_j):
            raise NotImplementedError("checkify: checks in a while_loop's cond_fun")
        ncc, nbc = p["cond_nconsts"], p["body_nconsts"]
        cc, bc, init = ins[:ncc], ins[ncc:ncc + nbc], ins[ncc + nbc:]

        def cond_fun(carry):
            return eval_jaxpr(cond_j, [], *(cond_consts + cc + list(carry[1])))[0]

        def body_fun(carry):
            st, c = carry
            st, outs = self.eval(body_j, [], body_consts + bc + list(c), st)
            return st, outs

        state, carry = lax.while_loop(cond_fun, body_fun, (state, init))
        return state, list(carry)


def _out_of_bounds(eqn, ins) -> tuple[Any, list[Any]]:
    """(whether an index is out of bounds, [the first such index, its axis])."""
    name, operand = eqn.primitive.name, ins[0]
    shape = get_aval(operand).shape
    if name == "dynamic_slice":
        starts, sizes = ins[1:], eqn.params["slice_sizes"]
        pairs = [(jnp.asarray(s), d, shape[d] - sizes[d]) for d, s in enumerate(starts)]
    elif name == "dynamic_update_slice":
        update, starts = ins[1], ins[2:]
        pairs = [(jnp.asarray(s), d, shape[d] - get_aval(update).shape[d])
                 for d, s in enumerate(starts)]
    elif name == "gather":
        dn, sizes = eqn.params["dimension_numbers"], eqn.params["slice_sizes"]
        idx = ins[1]
        pairs = [(idx[..., j], d, shape[d] - sizes[d])
                 for j, d in enumerate(dn.start_index_map)]
    else:  # a scatter: windows of the updates
        dn, idx, updates = eqn.params["dimension_numbers"], ins[1], ins[2]
        window = iter(get_aval(updates).shape[d] for d in dn.update_window_dims)
        sizes = [1 if d in dn.inserted_window_dims else next(window) for d in range(len(shape))]
        pairs = [(idx[..., j], d, shape[d] - sizes[d])
                 for j, d in enumerate(dn.scatter_dims_to_operand_dims)]
    failed, first_index, first_axis = jnp.asarray(False), jnp.asarray(0, np.int32), \
        jnp.asarray(0, np.int32)
    for index, axis, upper in reversed(pairs):  # the first axis that fails wins
        bad = jnp.logical_or(index < 0, index > upper).reshape(-1)
        value = index.reshape(-1)[jnp.argmax(bad)] if bad.shape[0] else jnp.asarray(0)
        hit = jnp.any(bad)
        first_index = jnp.where(hit, value.astype(np.int32), first_index)
        first_axis = jnp.where(hit, np.int32(axis), first_axis)
        failed = jnp.logical_or(failed, hit)
    return failed, [first_index, first_axis]
