"""The jaxpr: tinyjax's one program representation.

A :class:`Jaxpr` is a typed, first-order program in A-normal form: input
variables, a list of equations (each applies one primitive to variables and
literals), and output atoms.  A :class:`ClosedJaxpr` pairs a jaxpr with the
values of its constant variables.  This module holds the data structures, JAX's
text format, a typechecker, an evaluator, and the generic passes (dead-code and
common-subexpression elimination).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from tinyjax import dtypes
from tinyjax.core import (Primitive, ShapedArray, get_aval, register_jaxpr_names,
                          source_override)
from tinyjax.errors import JaxprTypeError


class Var:
    """A variable of a jaxpr.  Named only when printed."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray):
        self.aval = aval

    def __repr__(self) -> str:  # JAX's: the object's id, the type with dtype names in full
        shape = ",".join(map(str, self.aval.shape))
        return f"Var(id={id(self)}):{self.aval.dtype.name}[{shape}]"


class Literal:
    """A scalar constant written inline in an equation, e.g. ``2.0:f32[]``."""

    __slots__ = ("val", "aval")

    def __init__(self, val: Any, aval: ShapedArray):
        self.val = val
        self.aval = aval

    def __repr__(self) -> str:
        value = np.asarray(self.val)
        if value.ndim == 0 and value.dtype.kind in "iu":
            # JAX keeps an integer literal as a TypedInt of the literal's dtype
            return f"Literal(TypedInt({int(value)}, dtype={self.aval.dtype.name}))"
        return f"Literal({self.val})"

    def pp(self) -> str:
        value = np.asarray(self.val)
        if value.dtype == np.bool_:
            text = str(bool(value))
        elif dtypes.is_float(value.dtype):
            text = repr(float(value))
        elif dtypes.is_complex(value.dtype):
            text = repr(complex(value))
        elif value.dtype == dtypes.float0:
            text = str(value.item())  # JAX's (b'',)
        else:
            text = str(int(value))
        return f"{text}:{self.aval.str_short()}"


Atom = Var | Literal


class JaxprEqn:
    """``outvars = primitive[params] invars``, with the user source line that made it."""

    __slots__ = ("invars", "outvars", "primitive", "params", "source_info")

    def __init__(self, invars: Sequence[Atom], outvars: Sequence[Var], primitive: Primitive,
                 params: dict, source_info: str = ""):
        self.invars = list(invars)
        self.outvars = list(outvars)
        self.primitive = primitive
        self.params = params
        self.source_info = source_info

    def replace(self, **kwargs) -> "JaxprEqn":
        fields = dict(invars=self.invars, outvars=self.outvars, primitive=self.primitive,
                      params=self.params, source_info=self.source_info)
        fields.update(kwargs)
        return JaxprEqn(**fields)

    @property
    def effects(self) -> frozenset:
        """The equation's side effects (JAX's ``eqn.effects``): the effectful primitives
        it binds (itself, or inside its sub-jaxprs); empty for a pure equation."""
        own = {self.primitive} if self.primitive.effectful else set()
        return frozenset(own.union(*[j.effects for j in sub_jaxprs(self.params)]))

    def __repr__(self) -> str:
        return _pretty_eqn(self)


class Jaxpr:
    """A first-order program: ``{ lambda constvars ; invars . let eqns in outvars }``."""

    __slots__ = ("constvars", "invars", "outvars", "eqns")

    def __init__(self, constvars: Sequence[Var], invars: Sequence[Var],
                 outvars: Sequence[Atom], eqns: Sequence[JaxprEqn]):
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.outvars = list(outvars)
        self.eqns = list(eqns)

    in_avals = property(lambda self: [v.aval for v in self.invars])
    out_avals = property(lambda self: [v.aval for v in self.outvars])

    @property
    def effects(self) -> frozenset:
        """The side effects of its equations (see :attr:`JaxprEqn.effects`)."""
        return frozenset().union(*[e.effects for e in self.eqns])

    def pretty_print(self) -> str:
        return _pretty(self)

    __str__ = pretty_print

    def __repr__(self) -> str:
        return self.pretty_print()


class ClosedJaxpr:
    """A jaxpr together with the values of its constvars."""

    __slots__ = ("jaxpr", "consts")

    def __init__(self, jaxpr: Jaxpr, consts: Sequence[Any]):
        assert len(jaxpr.constvars) == len(consts)
        self.jaxpr = jaxpr
        self.consts = list(consts)

    in_avals = property(lambda self: self.jaxpr.in_avals)
    out_avals = property(lambda self: self.jaxpr.out_avals)
    literals = property(lambda self: self.consts)  # (JAX's other name for them)
    eqns = property(lambda self: self.jaxpr.eqns)

    def pretty_print(self) -> str:
        return self.jaxpr.pretty_print()

    __str__ = pretty_print

    def __repr__(self) -> str:
        return self.jaxpr.pretty_print()

    def __call__(self, *args):
        return eval_jaxpr(self.jaxpr, self.consts, *args)


# ---------------------------------------------------------------------------
# Pretty-printing in JAX's text format
# ---------------------------------------------------------------------------

_WIDTH = 80


def _var_name(n: int) -> str:
    """a, b, …, z, ba, bb, … (JAX's naming)."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    if n == 0:
        return "a"
    out = ""
    while n:
        out = letters[n % 26] + out
        n //= 26
    return out


# A small layout engine (Wadler's documents, laid out group by group as JAX does): a
# group is printed flat when its own flat text fits the rest of the line, else its
# breaks become newlines at the indentation of their nesting.

class _Doc:
    __slots__ = ("kind", "text", "n", "items")

    def __init__(self, kind: str, text: str = "", n: int = 0, items=()):
        self.kind, self.text, self.n, self.items = kind, text, n, tuple(items)

    def __add__(self, other: "_Doc") -> "_Doc":
        return _concat([self, other])


def _text(s: str) -> _Doc:
    return _Doc("text", s)


def _brk(s: str = " ") -> _Doc:
    return _Doc("brk", s)


def _concat(items) -> _Doc:
    return _Doc("concat", items=items)


def _nest(n: int, doc: _Doc) -> _Doc:
    return _Doc("nest", n=n, items=(doc,))


def _group(doc: _Doc) -> _Doc:
    return _Doc("group", items=(doc,))


def _join(sep: _Doc, docs) -> _Doc:
    out: list = []
    for i, d in enumerate(docs):
        if i:
            out.append(sep)
        out.append(d)
    return _concat(out)


def _flat_width(doc: _Doc, limit: int) -> int:
    """The width of ``doc`` printed flat, counting no further than past ``limit``."""
    width, stack = 0, [doc]
    while stack and width <= limit:
        d = stack.pop()
        if d.kind in ("text", "brk"):
            width += len(d.text)
        else:
            stack.extend(reversed(d.items))
    return width


def _layout(doc: _Doc, width: int = _WIDTH) -> str:
    out: list[str] = []
    col = 0
    stack = [(0, False, doc)]  # (indent, flat, doc)
    while stack:
        indent, flat, d = stack.pop()
        kind = d.kind
        if kind == "text":
            out.append(d.text)
            col += len(d.text)
        elif kind == "brk":
            if flat:
                out.append(d.text)
                col += len(d.text)
            else:
                out.append("\n" + " " * indent)
                col = indent
        elif kind == "concat":
            stack.extend((indent, flat, c) for c in reversed(d.items))
        elif kind == "nest":
            stack.append((indent + d.n, flat, d.items[0]))
        else:  # group
            fits = flat or _flat_width(d.items[0], width - col) <= width - col
            stack.append((indent, fits, d.items[0]))
    return "".join(out)


# How an equation's parameters print, per primitive (JAX's ``pp_eqn_rules``): a rule
# returns the (name, value) pairs to show, in order; by default every parameter, sorted.
pp_eqn_rules: dict[Primitive, Callable[[dict], list[tuple[str, Any]]]] = {}
# Call primitives whose body (the parameter named here) prints with the names of the
# equation's operands and results, as JAX prints a ``jit`` equation.
pp_shared_names: dict[Primitive, str] = {}


class _Printer:
    """Prints a jaxpr and the jaxprs in its parameters with one naming: variables are
    named a, b, … in the order they are printed; an equation's result used nowhere prints
    as ``_``."""

    def __init__(self):
        self.names: dict[Var, str] = {}
        self.count = 0

    def name(self, v: Var) -> str:
        if v not in self.names:
            self.names[v] = _var_name(self.count)
            self.count += 1
        return self.names[v]

    def atom(self, a: Atom) -> str:
        return a.pp() if isinstance(a, Literal) else self.name(a)

    def binders(self, vs, used=None) -> _Doc:
        items = [_text(("_" if used is not None and v not in used else self.name(v)) +
                       ":" + v.aval.str_short()) for v in vs]
        return _nest(2, _group(_join(_group(_brk()), items)))

    def atoms(self, atoms, sep: str = "") -> _Doc:
        return _nest(2, _group(_join(_text(sep) + _group(_brk()),
                                     [_text(self.atom(a)) for a in atoms])))

    def value(self, value: Any) -> _Doc:
        if isinstance(value, ClosedJaxpr):
            value = value.jaxpr
        if isinstance(value, Jaxpr):
            return self.jaxpr(value)
        if isinstance(value, (tuple, list)) and value and all(
                isinstance(v, (Jaxpr, ClosedJaxpr)) for v in value):
            return _group(_concat([_nest(2, _concat([
                _text("("), _brk(""), _join(_brk(), [self.value(v) for v in value])])),
                _brk(""), _text(")")]))
        if isinstance(value, np.dtype):
            return _text(value.name)
        if isinstance(value, type) and issubclass(value, np.generic):
            return _text(np.dtype(value).name)
        if callable(value) and hasattr(value, "__name__"):
            return _text(value.__name__)
        return _text(str(value))

    def eqn(self, eqn: JaxprEqn, used) -> _Doc:
        lhs = self.binders(eqn.outvars, used)
        shared = pp_shared_names.get(eqn.primitive)
        if shared is not None:  # the body's inputs and outputs take the equation's names
            inner = eqn.params[shared]
            inner = inner.jaxpr if isinstance(inner, ClosedJaxpr) else inner
            for v, a in [*zip(inner.invars, eqn.invars), *zip(inner.outvars, eqn.outvars)]:
                if isinstance(v, Var) and isinstance(a, Var) and v not in self.names and (
                        used is None or a in used or a in self.names):
                    self.names[v] = self.name(a)
        rule = pp_eqn_rules.get(eqn.primitive)
        pairs = rule(dict(eqn.params)) if rule is not None else sorted(eqn.params.items())
        rhs = [_text(eqn.primitive.name)]
        if pairs:
            rhs.append(_group(_concat([
                _nest(2, _concat([_text("["), _brk(""), _join(
                    _brk(), [_text(f"{k}=") + self.value(v) for k, v in pairs])])),
                _brk(""), _text("]")])))
        if eqn.invars:
            rhs.append(_text(" ") + self.atoms(eqn.invars))
        if not eqn.outvars:  # (an effect with no results)
            return _concat(rhs)
        return _concat([lhs, _text(" = "), *rhs])

    def jaxpr(self, jaxpr: Jaxpr) -> _Doc:
        used = {a for e in jaxpr.eqns for a in e.invars if isinstance(a, Var)}
        used.update(a for a in jaxpr.outvars if isinstance(a, Var))
        consts = self.binders(jaxpr.constvars)
        invars = self.binders(jaxpr.invars)
        eqns = _join(_brk("; "), [self.eqn(e, used) for e in jaxpr.eqns])
        n = len(jaxpr.outvars)
        outs = _concat([_text("("), self.atoms(jaxpr.outvars, ","),
                        _text(",)" if n == 1 else ")")])
        return _group(_nest(2, _concat([
            _text("{ lambda "), consts, _text("; "), invars, _text(". let"),
            _nest(2, _brk() + eqns), _brk(), _text("in "), outs]))) + _text(" }")


def _pretty(jaxpr: "Jaxpr") -> str:
    return _layout(_Printer().jaxpr(jaxpr))


def _pretty_eqn(eqn: JaxprEqn) -> str:
    return _layout(_Printer().eqn(eqn, None))


# ---------------------------------------------------------------------------
# Evaluation and typechecking
# ---------------------------------------------------------------------------


def eval_jaxpr(jaxpr: Jaxpr, consts: Sequence[Any], *args: Any) -> list[Any]:
    """Interpret ``jaxpr`` by binding each equation's primitive under the current trace."""
    env: dict[Var, Any] = {}

    def read(a: Atom) -> Any:
        return a.val if type(a) is Literal else env[a]

    if len(args) != len(jaxpr.invars):
        raise TypeError(f"eval_jaxpr: the jaxpr takes {len(jaxpr.invars)} arguments, "
                        f"got {len(args)}")
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    outer = source_override[0]
    try:
        for eqn in jaxpr.eqns:
            # equations this makes keep the line the user wrote
            source_override[0] = eqn.source_info or outer
            out = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
            if eqn.primitive.multiple_results:
                env.update(zip(eqn.outvars, out))
            else:
                env[eqn.outvars[0]] = out
    finally:
        source_override[0] = outer
    return [read(a) for a in jaxpr.outvars]


register_jaxpr_names(Atom=Atom, eval_jaxpr=eval_jaxpr)


def _same_type(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def check_jaxpr(jaxpr: Jaxpr) -> None:
    """Check that every variable is defined once before use and every equation's
    output types agree with its primitive's abstract evaluation."""
    defined: set[Var] = set()

    def define(v: Var, where: str):
        if v in defined:
            raise JaxprTypeError(f"Variable {v} defined twice ({where})")
        defined.add(v)

    def read(a: Atom, where: str) -> ShapedArray:
        if isinstance(a, Literal):
            return a.aval
        if a not in defined:
            raise JaxprTypeError(f"Variable {a} used before it is defined ({where})")
        return a.aval

    for v in jaxpr.constvars + jaxpr.invars:
        define(v, "binders")
    for eqn in jaxpr.eqns:
        where = f"in equation `{eqn}`"
        in_avals = [read(a, where) for a in eqn.invars]
        out = eqn.primitive.abstract_eval(*in_avals, **eqn.params)
        out = out if eqn.primitive.multiple_results else [out]
        if len(out) != len(eqn.outvars):
            raise JaxprTypeError(f"{where}: {len(out)} results, {len(eqn.outvars)} binders")
        for v, aval in zip(eqn.outvars, out):
            if not _same_type(v.aval, aval):
                raise JaxprTypeError(f"{where}: binder has type {v.aval.str_short()} "
                                     f"but the primitive returns {aval.str_short()}")
            define(v, where)
    for a in jaxpr.outvars:
        read(a, "in the outputs")


# ---------------------------------------------------------------------------
# Passes
# ---------------------------------------------------------------------------

def sub_jaxprs(params: dict) -> Iterator[Jaxpr]:
    """The (open) jaxprs among an equation's parameters: loop bodies, branches, ..."""
    for v in params.values():
        for j in (v if isinstance(v, (tuple, list)) else (v,)):
            if isinstance(j, ClosedJaxpr):
                yield j.jaxpr
            elif isinstance(j, Jaxpr):
                yield j


def has_effects(jaxpr: Jaxpr) -> bool:
    """Whether running ``jaxpr`` has a side effect (a host callback, say) that must happen
    even when its results are unused."""
    return any(eqn_effectful(e) for e in jaxpr.eqns)


def eqn_effectful(eqn: "JaxprEqn") -> bool:
    """An equation with a side effect: an effectful primitive, or one whose sub-jaxprs
    (a loop body, a branch) have one."""
    return eqn.primitive.effectful or any(has_effects(j) for j in sub_jaxprs(eqn.params))


# Primitives holding sub-jaxprs register how to drop their unused outputs here:
# dce_rules[prim](eqn, used_outputs) -> (used_inputs, new_eqn or None).
dce_rules: dict[Primitive, Callable] = {}


def dce_jaxpr(jaxpr: Jaxpr, used_outputs: Sequence[bool] | None = None,
              prune_invars: bool = False) -> tuple[Jaxpr, list[bool]]:
    """Drop equations whose results are never used.

    Returns the new jaxpr and, per input variable, whether it is still used.  With
    ``prune_invars`` the unused inputs are removed from the new jaxpr.
    """
    if used_outputs is None:
        used_outputs = [True] * len(jaxpr.outvars)
    outvars = [a for a, u in zip(jaxpr.outvars, used_outputs) if u]
    live: set[Var] = {a for a in outvars if isinstance(a, Var)}
    new_eqns: list[JaxprEqn] = []
    for eqn in reversed(jaxpr.eqns):
        used = [v in live for v in eqn.outvars]
        if not any(used) and not eqn_effectful(eqn):
            continue
        rule = dce_rules.get(eqn.primitive)
        if rule is not None:
            used_in, pruned = rule(eqn, used)
            if pruned is None:
                continue
            # used_in is per input of the equation as it was (the pruned one has fewer)
            live.update(v for v, u in zip(eqn.invars, used_in) if u and isinstance(v, Var))
            eqn = pruned
        else:
            live.update(v for v in eqn.invars if isinstance(v, Var))
        new_eqns.append(eqn)
    new_eqns.reverse()
    used_inputs = [v in live for v in jaxpr.invars]
    invars = [v for v, u in zip(jaxpr.invars, used_inputs) if u] if prune_invars \
        else jaxpr.invars
    constvars = [v for v in jaxpr.constvars if v in live]
    return Jaxpr(constvars, invars, outvars, new_eqns), used_inputs


def dce_closed_jaxpr(closed: ClosedJaxpr) -> ClosedJaxpr:
    """DCE that also drops unused constants."""
    jaxpr, _ = dce_jaxpr(closed.jaxpr)
    kept = set(jaxpr.constvars)
    consts = [c for v, c in zip(closed.jaxpr.constvars, closed.consts) if v in kept]
    return ClosedJaxpr(jaxpr, consts)


def _params_key(params: dict) -> Any:
    items = []
    for k, v in params.items():
        if isinstance(v, (Jaxpr, ClosedJaxpr)) or callable(v):
            v = ("id", id(v))
        items.append((k, v))
    key = tuple(items)
    hash(key)
    return key


def cse_jaxpr(jaxpr: Jaxpr) -> Jaxpr:
    """Common-subexpression elimination: reuse the result of an identical equation."""
    rename: dict[Var, Atom] = {}
    seen: dict[Any, list[Var]] = {}
    new_eqns: list[JaxprEqn] = []

    def sub(a: Atom) -> Atom:
        return rename.get(a, a) if isinstance(a, Var) else a

    def atom_key(a: Atom) -> Any:
        if isinstance(a, Literal):
            return ("lit", np.asarray(a.val).item(), a.aval)
        return a

    for eqn in jaxpr.eqns:
        invars = [sub(a) for a in eqn.invars]
        key = None
        if not eqn_effectful(eqn):
            try:
                key = (eqn.primitive, tuple(atom_key(a) for a in invars),
                       _params_key(eqn.params))
            except TypeError:
                key = None
        if key is not None and key in seen:
            rename.update(zip(eqn.outvars, seen[key]))
            continue
        if key is not None:
            seen[key] = eqn.outvars
        new_eqns.append(eqn.replace(invars=invars))
    return Jaxpr(jaxpr.constvars, jaxpr.invars, [sub(a) for a in jaxpr.outvars], new_eqns)


def literal_or_none(x: Any) -> Literal | None:
    """A Literal for Python scalars and 0-d concrete values; None otherwise."""
    if isinstance(x, (bool, int, float)):
        return Literal(x, get_aval(x))
    if isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0):
        return Literal(x, get_aval(x))
    from tinyjax.array import ArrayImpl
    if type(x) is ArrayImpl and x.ndim == 0:
        # a weakly typed one stays an Array, so that evaluating the jaxpr keeps its weak type
        return Literal(x if x.weak_type else x._value, x.aval)
    return None
